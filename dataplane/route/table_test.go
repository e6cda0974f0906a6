package route_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// slotTable is a three-master Redis Cluster table: A (slots 0-5460, replica A1), B
// (5461-10922, replica B1), C (10923-16383). Node order is by address: A, A1, B, B1, C.
func slotTable(t testing.TB) *route.Table {
	t.Helper()
	a, a1 := route.SlotNode{Addr: "10.0.0.1:7000"}, route.SlotNode{Addr: "10.0.0.2:7000"}
	b, b1 := route.SlotNode{Addr: "10.0.0.3:7000"}, route.SlotNode{Addr: "10.0.0.4:7000"}
	c := route.SlotNode{Addr: "10.0.0.5:7000"}
	m, err := route.NewSlotMap([]route.SlotRange{
		{Start: 0, End: 5460, Master: a, Replicas: []route.SlotNode{a1}},
		{Start: 5461, End: 10922, Master: b, Replicas: []route.SlotNode{b1}},
		{Start: 10923, End: 16383, Master: c},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &route.Table{Version: 1, Slots: m}
}

// ringTable is a ring of three nodes; with replicas, a Sentinel table whose first node has two
// read replicas and the third one.
func ringTable(t testing.TB, replicas bool) *route.Table {
	t.Helper()
	var nodes []route.Node
	for i := range 3 {
		nodes = append(nodes, route.Node{Addr: fmt.Sprintf("10.0.1.%d:6379", i+1), Weight: 1})
	}
	r, err := route.NewRing(nodes, nil, "{}")
	if err != nil {
		t.Fatal(err)
	}
	tb := &route.Table{Version: 1, Ring: r}
	if replicas {
		tb.Replicas = [][]string{{"10.0.2.1:6379", "10.0.2.2:6379"}, nil, {"10.0.2.3:6379"}}
	}
	return tb
}

func TestTableCheck(t *testing.T) {
	r := ringTable(t, false).Ring
	m := slotTable(t).Slots
	for _, tc := range []struct {
		t  *route.Table
		ok bool
	}{
		{nil, false}, {&route.Table{}, false}, {&route.Table{Ring: r, Slots: m}, false},
		{&route.Table{Ring: r}, true}, {&route.Table{Slots: m}, true},
	} {
		if err := tc.t.Check(); (err == nil) != tc.ok {
			t.Errorf("Check(%+v) = %v, want ok %v", tc.t, err, tc.ok)
		}
	}
}

func TestTableSlotMap(t *testing.T) {
	tb := slotTable(t)
	if !tb.Cluster() || tb.CacheType() != "redis_cluster" || tb.Tag() != "{}" || tb.Groups() != route.Slots {
		t.Fatalf("Cluster %v, CacheType %q, Tag %q, Groups %d", tb.Cluster(), tb.CacheType(), tb.Tag(), tb.Groups())
	}
	want := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.4:7000", "10.0.0.5:7000"}
	if got := tb.Addrs(); !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want %v", got, want)
	}
	if got := tb.Primaries(); !slices.Equal(got, []int{0, 2, 4}) {
		t.Fatalf("Primaries = %v, want the masters [0 2 4]", got)
	}
	// "foo" is slot 12182 (C), "bar" 5061 (A).
	if g := tb.Group([]byte("foo")); g != 12182 || tb.Master(g) != 4 {
		t.Fatalf("Group(foo) = %d, master %d; want slot 12182 on node 4", g, tb.Master(g))
	}
	args := [][]byte{[]byte("MGET"), []byte("{foo}1"), []byte("{foo}2"), []byte("bar")}
	if g, err := tb.Together(args, []int{1, 2}); g != 12182 || err != nil {
		t.Fatalf("Together(tagged keys) = %d, %v", g, err)
	}
	if _, err := tb.Together(args, []int{1, 3}); err != route.ErrCrossSlot {
		t.Fatalf("Together(two slots) = %v, want ErrCrossSlot", err)
	}
	if _, err := tb.Together(args[1:], nil); err != route.ErrCrossSlot {
		t.Fatalf("Together(all, two slots) = %v, want ErrCrossSlot", err)
	}
	if g, err := tb.Together(args, []int{}); g != -1 || err != nil {
		t.Fatalf("Together(no keys) = %d, %v; want -1", g, err)
	}
	if tb.Keyless() != 0 {
		t.Fatalf("Keyless = %d, want slot 0's master 0", tb.Keyless())
	}
	// Writes go to the master; reads with read_from_slave take master and replica in turn.
	var rr uint32
	bar := tb.Group([]byte("bar"))
	if n := tb.Node(bar, false, true, &rr); n != 0 || rr != 0 {
		t.Fatalf("Node(bar, write) = %d (rr %d), want master 0 with rr untouched", n, rr)
	}
	seen := map[int]int{}
	for range 4 {
		seen[tb.Node(bar, true, true, &rr)]++
	}
	if seen[0] != 2 || seen[1] != 2 {
		t.Fatalf("reads of bar went to %v, want master 0 and replica 1 twice each", seen)
	}
	for range 2 {
		if n := tb.Node(bar, true, false, &rr); n != 0 {
			t.Fatalf("read of bar without read_from_slave = %d, want master 0", n)
		}
	}
	if n := tb.Node(tb.Group([]byte("foo")), true, true, &rr); n != 4 {
		t.Fatalf("read of foo (no replica) = %d, want master 4", n)
	}
	if tb.Master(-1) != -1 || tb.Master(route.Slots) != -1 || tb.ReadReplicas(route.Slots) != nil {
		t.Fatal("a group out of range must have no node")
	}
	if got := tb.NoNode("c1"); got != route.ErrClusterDown {
		t.Fatalf("NoNode = %q", got)
	}
}

func TestTableUncoveredSlot(t *testing.T) {
	m, err := route.NewSlotMap([]route.SlotRange{{Start: 100, End: 200, Master: route.SlotNode{Addr: "10.0.0.9:7000"}}})
	if err != nil {
		t.Fatal(err)
	}
	tb := &route.Table{Slots: m}
	var rr uint32
	if tb.Master(0) != -1 || tb.Node(0, true, true, &rr) != -1 {
		t.Fatal("slot 0 is not served: want no node")
	}
	if tb.Keyless() != 0 {
		t.Fatalf("Keyless = %d, want the first master when slot 0 has none", tb.Keyless())
	}
	empty, _ := route.NewSlotMap(nil)
	if k := (&route.Table{Slots: empty}).Keyless(); k != -1 {
		t.Fatalf("Keyless of an empty map = %d, want -1", k)
	}
}

func TestTableRing(t *testing.T) {
	tb := ringTable(t, false)
	if tb.Cluster() || tb.CacheType() != "redis" || tb.Tag() != "{}" || tb.Groups() != 3 {
		t.Fatalf("Cluster %v, CacheType %q, Tag %q, Groups %d", tb.Cluster(), tb.CacheType(), tb.Tag(), tb.Groups())
	}
	if got := tb.Primaries(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("Primaries = %v", got)
	}
	// Find two keys on different nodes; the group is the ring's node.
	var a, b []byte
	for i := 0; b == nil; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		switch {
		case a == nil:
			a = k
		case tb.Group(k) != tb.Group(a):
			b = k
		}
	}
	if g := tb.Group(a); g != tb.Ring.Pick(a) || tb.Master(g) != g {
		t.Fatalf("Group(%s) = %d, ring picks %d, master %d", a, g, tb.Ring.Pick(a), tb.Master(g))
	}
	args := [][]byte{a, b, []byte("x{" + string(a) + "}")}
	if _, err := tb.Together(args, []int{0, 1}); err != route.ErrCrossNode {
		t.Fatalf("Together(two nodes) = %v, want ErrCrossNode", err)
	}
	if g, err := tb.Together(args, []int{0, 2}); err != nil || g != tb.Group(a) {
		t.Fatalf("Together(hash-tagged) = %d, %v", g, err)
	}
	if tb.Keyless() != tb.Ring.Pick(nil) {
		t.Fatalf("Keyless = %d, want the owner of the first point %d", tb.Keyless(), tb.Ring.Pick(nil))
	}
	var rr uint32
	if n := tb.Node(tb.Group(a), true, true, &rr); n != tb.Group(a) {
		t.Fatalf("read without replicas = %d, want the node", n)
	}
	if got := tb.NoNode("c1"); got != "ERR no backend node available in cluster c1" {
		t.Fatalf("NoNode = %q", got)
	}
	empty, _ := route.NewRing(nil, nil, "")
	et := &route.Table{Ring: empty}
	if g := et.Group(a); g != -1 || et.Master(g) != -1 || et.Keyless() != -1 || et.Groups() != 0 {
		t.Fatal("an empty ring has no node")
	}
}

func TestTableRingReplicas(t *testing.T) {
	tb := ringTable(t, true)
	want := []string{"10.0.1.1:6379", "10.0.1.2:6379", "10.0.1.3:6379", "10.0.2.1:6379", "10.0.2.2:6379", "10.0.2.3:6379"}
	if got := tb.Addrs(); !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want ring nodes then replicas %v", got, want)
	}
	if got := tb.Primaries(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("Primaries = %v, want the ring's nodes only", got)
	}
	var rr uint32
	seen := map[int]int{}
	for range 4 {
		seen[tb.Node(0, true, false, &rr)]++
	}
	if seen[3] != 2 || seen[4] != 2 {
		t.Fatalf("reads of node 0 went to %v, want its replicas 3 and 4 twice each (not the master)", seen)
	}
	if n := tb.Node(0, false, false, &rr); n != 0 {
		t.Fatalf("write = %d, want the master", n)
	}
	if n := tb.Node(1, true, false, &rr); n != 1 {
		t.Fatalf("read of node 1 (no replicas) = %d, want 1", n)
	}
	if got := tb.ReadReplicas(2); !slices.Equal(got, []int{5}) {
		t.Fatalf("ReadReplicas(2) = %v", got)
	}
	// A replica's reads fall back to the node it serves them for; a master has none.
	for node, want := range []int{-1, -1, -1, 0, 0, 2, -1} {
		if got := tb.MasterOf(node); got != want {
			t.Errorf("MasterOf(%d) = %d, want %d", node, got, want)
		}
	}
	if got := ringTable(t, false).MasterOf(3); got != -1 {
		t.Errorf("MasterOf in a ring without replicas = %d, want -1", got)
	}
	st := slotTable(t)
	for node := range st.Addrs() {
		if got, want := st.MasterOf(node), st.Slots.MasterOf(node); got != want {
			t.Errorf("slot map: MasterOf(%d) = %d, want the map's %d", node, got, want)
		}
	}
}

func TestTableSameRouting(t *testing.T) {
	s1, s2 := slotTable(t), slotTable(t)
	r1, r2 := ringTable(t, false), ringTable(t, false)
	if !s1.SameRouting(s2) || !r1.SameRouting(r2) {
		t.Fatal("equal tables must route the same")
	}
	if s1.SameRouting(r1) || r1.SameRouting(ringTable(t, true)) {
		t.Fatal("a slot map and a ring, or a ring with and without replicas, do not route the same")
	}
	moved, err := route.NewSlotMap(append(s1.Slots.Ranges()[:2:2], route.SlotRange{Start: 10923, End: 16383,
		Master: route.SlotNode{Addr: "10.0.0.4:7000"}}))
	if err != nil {
		t.Fatal(err)
	}
	if s1.SameRouting(&route.Table{Slots: moved}) {
		t.Fatal("a slot range moved: not the same routing")
	}
}

// A ring over the same addresses places keys elsewhere when a weight, a name, the hash or the
// hash tag changes: that is not the same routing (the client cache keeps its entries only
// across tables of the same routing).
func TestTableSameRoutingRingPlacement(t *testing.T) {
	ring := func(weight2 int, name2 string, hash string, tag string) *route.Table {
		t.Helper()
		nodes := []route.Node{
			{Addr: "10.0.1.1:6379", Weight: 1},
			{Addr: "10.0.1.2:6379", Weight: weight2, Name: name2},
			{Addr: "10.0.1.3:6379", Weight: 1},
		}
		h, err := route.Hash(hash)
		if err != nil {
			t.Fatal(err)
		}
		r, err := route.NewRing(nodes, h, tag)
		if err != nil {
			t.Fatal(err)
		}
		return &route.Table{Ring: r}
	}
	base := ring(1, "", "fnv1a_64", "{}")
	if !base.SameRouting(ring(1, "", "fnv1a_64", "{}")) {
		t.Fatal("the same ring built twice must route the same")
	}
	for name, other := range map[string]*route.Table{
		"weight": ring(3, "", "fnv1a_64", "{}"),
		"alias":  ring(1, "cache2", "fnv1a_64", "{}"),
		"hash":   ring(1, "", "murmur", "{}"),
		"tag":    ring(1, "", "fnv1a_64", ""),
	} {
		if base.SameRouting(other) {
			t.Errorf("a ring whose %s changed over the same addresses must not route the same", name)
		}
	}
}

// The hot-path lookups must not allocate.
func TestTableLookupsDoNotAllocate(t *testing.T) {
	args := [][]byte{[]byte("{k}1"), []byte("{k}2"), []byte("{k}3")}
	keys := []int{0, 1, 2}
	for _, tb := range []*route.Table{slotTable(t), ringTable(t, true)} {
		var rr uint32
		tb.Addrs() // the index is built once, on first use
		n := testing.AllocsPerRun(100, func() {
			g, _ := tb.Together(args, keys)
			_ = tb.Node(g, true, true, &rr) + tb.Keyless() + tb.Master(tb.Group(args[0]))
			_, _ = tb.Together(args, nil)
		})
		if n != 0 {
			t.Errorf("cluster %v: %v allocs per lookup, want 0", tb.Cluster(), n)
		}
	}
}

// The errors a Redis Cluster table answers are a real Redis Cluster node's, byte for byte.
func TestTableErrorsAreRedisClusters(t *testing.T) {
	s := redistest.Start(t, "--cluster-enabled", "yes")
	if _, err := s.Do("GET", "foo"); err == nil || err.Error() != route.ErrClusterDown {
		t.Fatalf("GET on a node without slots: %v, want %q", err, route.ErrClusterDown)
	}
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("MGET", "foo", "bar"); err == nil || err.Error() != route.ErrCrossSlot.Error() {
		t.Fatalf("MGET over two slots: %v, want %q", err, route.ErrCrossSlot)
	}
}

// BenchmarkTableRoute measures what a single-key or three-key command costs to route through
// the table (Together, then Node) against the same lookups made on the ring or slot map
// directly, as the proxy made them before it asked the table: the table must cost nothing
// that matters.
func BenchmarkTableRoute(b *testing.B) {
	one := [][]byte{[]byte("GET"), []byte("user:1000")}
	three := [][]byte{[]byte("MGET"), []byte("{u}:1"), []byte("{u}:2"), []byte("{u}:3")}
	for _, mode := range []struct {
		name string
		tb   *route.Table
	}{{"cluster", slotTable(b)}, {"ring", ringTable(b, false)}} {
		tb := mode.tb
		for _, c := range []struct {
			name string
			args [][]byte
			keys []int
		}{{"1key", one, []int{1}}, {"3keys", three, []int{1, 2, 3}}} {
			b.Run(mode.name+"/"+c.name+"/table", func(b *testing.B) {
				var rr uint32
				sink := 0
				for b.Loop() {
					g, err := tb.Together(c.args, c.keys)
					if err != nil {
						b.Fatal(err)
					}
					sink += tb.Node(g, false, false, &rr)
				}
				_ = sink
			})
			b.Run(mode.name+"/"+c.name+"/direct", func(b *testing.B) {
				sink := 0
				for b.Loop() {
					if m := tb.Slots; m != nil {
						slot := route.Slot(c.args[c.keys[0]])
						for _, k := range c.keys[1:] {
							if route.Slot(c.args[k]) != slot {
								b.Fatal("cross slot")
							}
						}
						sink += m.Master(slot)
						continue
					}
					node := tb.Ring.Pick(c.args[c.keys[0]])
					for _, k := range c.keys[1:] {
						if tb.Ring.Pick(c.args[k]) != node {
							b.Fatal("cross node")
						}
					}
					sink += node
				}
				_ = sink
			})
		}
	}
}

// BenchmarkTableTogetherOneKey is the routing of a one-key command (GET k): its group.
func BenchmarkTableTogetherOneKey(b *testing.B) {
	for _, c := range []struct {
		name string
		tb   *route.Table
	}{{"ring", ringTable(b, false)}, {"cluster", slotTable(b)}} {
		b.Run(c.name, func(b *testing.B) {
			args, keys := [][]byte{[]byte("GET"), []byte("key:000000012345")}, []int{1}
			for b.Loop() {
				if _, err := c.tb.Together(args, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
