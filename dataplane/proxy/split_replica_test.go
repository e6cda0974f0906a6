package proxy

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// splitRing is a session over a ring of n nodes; with reps, each node has one read replica
// (a Sentinel group with read_from_slave), listed after the nodes in the table's node order.
func splitRing(t *testing.T, n int, reps bool) *session {
	h, _ := route.Hash("fnv1a_64")
	var nodes []route.Node
	var replicas [][]string
	for i := range n {
		nodes = append(nodes, route.Node{Addr: "10.0.0." + strconv.Itoa(i+1) + ":6379", Weight: 1})
		replicas = append(replicas, []string{"10.0.1." + strconv.Itoa(i+1) + ":6379"})
	}
	r, err := route.NewRing(nodes, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	tb := &route.Table{Ring: r}
	if reps {
		tb.Replicas = replicas
	}
	return &session{c: &Cluster{name: "ex", log: hclog.NewNullLogger()}, routes: &routes{table: tb, readFromSlave: reps}}
}

// subKeys parses a sub-command's keys (every other argument from 1 for MSET).
func subKeys(t *testing.T, frame []byte, stride int) []string {
	var sc resp.Command
	if err := resp.NewReader(bytes.NewReader(frame), 1<<16).Read(&sc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 1; i < len(sc.Args); i += stride {
		keys = append(keys, string(sc.Args[i]))
	}
	return keys
}

// TestSplitReadsGoToReadReplicas: a split read on a ring whose nodes have read replicas goes,
// like a GET, to each group's replica (the table's Node), a write to the node itself; a split
// over more ring nodes than planSplit scans for (scanGroups) groups every key on its node.
func TestSplitReadsGoToReadReplicas(t *testing.T) {
	s := splitRing(t, 2, true)
	keys := [][]byte{[]byte("MGET")}
	for i := range 20 {
		keys = append(keys, []byte("k"+strconv.Itoa(i)))
	}
	tb := s.routes.table
	for _, c := range []struct {
		cmd  string
		want func(g int) int // the node group g's sub-command goes to
	}{
		{"mget", func(g int) int { return tb.ReadReplicas(g)[0] }},
		{"del", func(g int) int { return g }},
	} {
		pl := s.nextPlace()
		if plan, _ := s.planSplit(pl, command.Lookup([]byte(c.cmd)), &resp.Command{Args: keys}); plan != splitSubs {
			t.Fatalf("%s over 2 nodes: plan %d", c.cmd, plan)
		}
		for i, sub := range pl.subs[:pl.nsubs] {
			g := tb.Group([]byte(subKeys(t, sub.frame, 1)[0]))
			if got, want := s.targets[i], c.want(g); got != want {
				t.Errorf("%s: group %d's keys go to node %d (%s), want %d (%s)", c.cmd, g, got, tb.Addrs()[got], want, tb.Addrs()[want])
			}
		}
	}
	pl := s.nextPlace()
	one := &resp.Command{Args: [][]byte{[]byte("MGET"), []byte("{t}a"), []byte("{t}b")}}
	if plan, node := s.planSplit(pl, command.Lookup([]byte("mget")), one); plan != splitWhole || node != tb.ReadReplicas(tb.Group([]byte("t")))[0] {
		t.Errorf("MGET of one group: plan %d to node %d, want whole to its read replica", plan, node)
	}

	s = splitRing(t, 40, false)
	tb = s.routes.table
	args := [][]byte{[]byte("MGET")}
	for i := range 4000 {
		args = append(args, []byte("key:"+strconv.Itoa(i*7919)))
	}
	for round := range 2 { // the second reuses the group index the first left empty
		pl := s.nextPlace()
		if plan, _ := s.planSplit(pl, command.Lookup([]byte("mget")), &resp.Command{Args: args}); plan != splitSubs || pl.nsubs <= scanGroups {
			t.Fatalf("round %d: MGET of 4000 keys over 40 nodes: plan %d, %d subs", round, plan, pl.nsubs)
		}
		var seen []string
		for i, sub := range pl.subs[:pl.nsubs] {
			for _, k := range subKeys(t, sub.frame, 1) {
				if g := tb.Group([]byte(k)); g != s.targets[i] {
					t.Fatalf("round %d: %s (node %d) sent to node %d", round, k, g, s.targets[i])
				}
				seen = append(seen, k)
			}
		}
		if len(seen) != 4000 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 4000 {
			t.Fatalf("round %d: %d keys sent, want each of 4000 once", round, len(seen))
		}
	}
}
