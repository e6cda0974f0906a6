package proxy

import (
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// BenchmarkSplitMGet10 plans an MGET of 10 keys and merges its sub replies, without a network:
// the proxy's own cost of a split, over a 4-node ring (up to 4 subs) and over a 3-master
// cluster (one sub per slot: 10).
func BenchmarkSplitMGet10(b *testing.B) {
	topos := buildTopos(b)
	spec := command.Lookup([]byte("MGET"))
	args := [][]byte{[]byte("MGET")}
	for i := range 10 {
		args = append(args, []byte("key:"+strconv.Itoa(i*7919)))
	}
	value := resp.AppendBulk(nil, make([]byte, 64))
	for _, bc := range []struct {
		name string
		topo uint8
	}{{"ring4", 4}, {"cluster3", 0x12}} {
		b.Run(bc.name, func(b *testing.B) {
			s := &session{c: &Cluster{name: "bench", log: hclog.NewNullLogger()}, routes: topos.routes(bc.topo)}
			cmd := &resp.Command{Args: args}
			pl := s.nextPlace()
			if plan, _ := s.planSplit(pl, spec, cmd); plan != splitSubs {
				b.Fatalf("plan %d", plan)
			}
			// The sub replies stay in place: planning again does not touch them.
			for g, c := range pl.subs[:pl.nsubs] {
				c.req.Reply = resp.AppendArrayHeader(nil, s.counts[g])
				for range s.counts[g] {
					c.req.Reply = append(c.req.Reply, value...)
				}
			}
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				s.planSplit(pl, spec, cmd)
				out = s.merge(out[:0], pl)
			}
			if n, err := resp.ScanReply(out); err != nil || n != len(out) || out[0] != '*' {
				b.Fatalf("merged %q", out)
			}
		})
	}
}
