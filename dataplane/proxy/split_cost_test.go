package proxy

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// bigSplit is one big multi-key command as a client sends it, with the sub replies its nodes
// would give, over one topology: what the split cost benchmark and bound test run.
type bigSplit struct {
	name  string
	spec  *command.Spec
	raw   []byte // the command as the client sent it
	keys  int
	topo  uint8
	value []byte // MGET: each key's value
}

func bigSplits(keys int) []bigSplit {
	var out []bigSplit
	for _, name := range []string{"DEL", "EXISTS", "MGET", "MSET"} {
		for _, topo := range []struct {
			name string
			t    uint8
		}{{"ring3", 3}, {"cluster3", 0x12}} {
			args := [][]byte{[]byte(name)}
			for i := range keys {
				args = append(args, []byte("key:"+strconv.Itoa(i)))
				if name == "MSET" {
					args = append(args, []byte("v"))
				}
			}
			out = append(out, bigSplit{name: name + "/" + topo.name, spec: command.Lookup([]byte(name)),
				raw: resp.AppendCommand(nil, args...), keys: keys, topo: topo.t, value: resp.AppendBulk(nil, []byte("v"))})
		}
	}
	// Cluster mode at its worst: a key per slot, so one sub request per key.
	perSlot := make([][]byte, route.Slots)
	for i, left := 0, route.Slots; left > 0; i++ {
		k := []byte("k" + strconv.Itoa(i))
		if sl := route.Slot(k); perSlot[sl] == nil {
			perSlot[sl] = k
			left--
		}
	}
	for _, name := range []string{"DEL", "MGET"} {
		args := append([][]byte{[]byte(name)}, perSlot...)
		out = append(out, bigSplit{name: name + "/cluster3-key-per-slot", spec: command.Lookup([]byte(name)),
			raw: resp.AppendCommand(nil, args...), keys: len(perSlot), topo: 0x12, value: resp.AppendBulk(nil, []byte("v"))})
	}
	return out
}

// run reads the command, plans its split, answers each sub as its node would and merges the
// replies into a new reply buffer, on a fresh session (as a new client's first big command),
// and returns the bytes the proxy's code allocated for it (every byte but the network's and
// the fake sub replies') and the number of sub requests it made.
func (b *bigSplit) run(tb testing.TB, topos *fuzzTopos) (allocated uint64, subs int) {
	var m0, m1, m2, m3 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s := &session{c: &Cluster{name: "cost", log: hclog.NewNullLogger()}, routes: topos.routes(b.topo)}
	s.rd = resp.NewReader(bytes.NewReader(b.raw), readBufSize)
	if err := s.rd.Read(&s.cmd); err != nil {
		tb.Fatal(err)
	}
	pl := s.nextPlace()
	if plan, _ := s.planSplit(pl, b.spec, &s.cmd); plan != splitSubs {
		tb.Fatalf("plan %d", plan)
	}
	runtime.ReadMemStats(&m1)
	for g := range pl.subs[:pl.nsubs] {
		c := pl.subs[g]
		n := s.counts[g]
		switch b.spec.Policy {
		case command.SplitMGet:
			c.req.Reply = resp.AppendArrayHeader(nil, n)
			for range n {
				c.req.Reply = append(c.req.Reply, b.value...)
			}
		case command.SplitMSet:
			c.req.Reply = okReply
		default:
			c.req.Reply = resp.AppendInt(nil, int64(n))
		}
	}
	runtime.ReadMemStats(&m2)
	out := s.merge(nil, pl)
	runtime.ReadMemStats(&m3)
	if len(out) == 0 || out[0] == '-' {
		tb.Fatalf("merged %.80q", out)
	}
	return (m1.TotalAlloc - m0.TotalAlloc) + (m3.TotalAlloc - m2.TotalAlloc), pl.nsubs
}

// BenchmarkSplitBig: the proxy's cost of one big split command (100,000 keys), reading it
// included; B/key is what it allocates per key. Compare with the key's own size in the
// command: "$9\r\nkey:12345\r\n" is 16 bytes.
func BenchmarkSplitBig(b *testing.B) {
	topos := buildTopos(b)
	for _, bs := range bigSplits(100_000) {
		b.Run(bs.name, func(b *testing.B) {
			var total uint64
			n := 0
			for b.Loop() {
				a, _ := bs.run(b, topos)
				total += a
				n++
			}
			b.ReportMetric(float64(total)/float64(n*bs.keys), "B/key")
			b.ReportMetric(float64(len(bs.raw))/float64(bs.keys), "cmdB/key")
		})
	}
}

// TestSplitCostPerArgument: what the proxy allocates for one big split command (DEL, EXISTS,
// MGET, MSET of 200,000 keys, and DEL and MGET of a key per slot of a Redis Cluster), reading it
// and merging its replies included, follows the bytes of its arguments and the number of
// sub requests, nothing else: per argument at most 5 times the argument's own bytes in the
// command (the read buffer grows by doubling while the command arrives; the sub-commands copy
// each argument once) plus 40 bytes (its Args slice header, its group index), and per sub
// request (one per node on a ring, one per slot in a cluster) at most 224 bytes (the call
// that waits for its reply, its header, its scratch). Before, a split allocated a key
// reference, a group key and an element slice per key and grew each sub-command by appends:
// 330 to 560 bytes per 15-byte key.
func TestSplitCostPerArgument(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MiB in all")
	}
	topos := buildTopos(t)
	for _, bs := range bigSplits(200_000) {
		t.Run(bs.name, func(t *testing.T) {
			var cmd resp.Command
			if err := resp.NewReader(bytes.NewReader(bs.raw), 1<<20).Read(&cmd); err != nil {
				t.Fatal(err)
			}
			nargs := len(cmd.Args) - 1
			allocated, subs := bs.run(t, topos)
			argBytes := float64(len(bs.raw)) / float64(nargs)
			bound := float64(nargs)*(5*argBytes+40) + float64(subs)*224
			t.Logf("%.1f bytes allocated per argument of %.1f bytes, %d sub requests (bound %.1f per argument)",
				float64(allocated)/float64(nargs), argBytes, subs, bound/float64(nargs))
			if float64(allocated) > bound {
				t.Fatalf("%d bytes allocated for %d arguments of %.1f bytes and %d sub requests, bound %.0f",
					allocated, nargs, argBytes, subs, bound)
			}
		})
	}
}
