package route

import (
	"reflect"
	"strings"
	"sync"
	"testing"
)

var (
	nA  = SlotNode{Addr: "10.0.0.1:7000", ID: "aaaa"}
	nB  = SlotNode{Addr: "10.0.0.2:7000", ID: "bbbb"}
	nC  = SlotNode{Addr: "10.0.0.3:7000", ID: "cccc"}
	nA1 = SlotNode{Addr: "10.0.1.1:7000", ID: "a111"}
	nB1 = SlotNode{Addr: "10.0.1.2:7000", ID: "b111"}
)

// threeShards is the layout redis-cli --cluster create gives three masters with one replica each.
func threeShards() []SlotRange {
	return []SlotRange{
		{Start: 0, End: 5460, Master: nA, Replicas: []SlotNode{nA1}},
		{Start: 5461, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
		{Start: 10923, End: 16383, Master: nC},
	}
}

func mustSlotMap(t testing.TB, ranges []SlotRange) *SlotMap {
	t.Helper()
	m, err := NewSlotMap(ranges)
	if err != nil {
		t.Fatalf("NewSlotMap: %v", err)
	}
	return m
}

func addrOf(m *SlotMap, i int) string {
	if i < 0 {
		return "<none>"
	}
	return m.Nodes()[i].Addr
}

func TestNewSlotMap(t *testing.T) {
	cases := []struct {
		name    string
		ranges  []SlotRange
		wantErr string
		covered int
		// slot → master address ("<none>" when unserved) and replica addresses
		master   map[uint16]string
		replicas map[uint16][]string
	}{
		{
			name:    "three shards cover everything",
			ranges:  threeShards(),
			covered: Slots,
			master:  map[uint16]string{0: nA.Addr, 5460: nA.Addr, 5461: nB.Addr, 10922: nB.Addr, 10923: nC.Addr, 16383: nC.Addr},
			replicas: map[uint16][]string{
				0: {nA1.Addr}, 5461: {nB1.Addr}, 16383: nil,
			},
		},
		{
			name: "gaps are unserved",
			ranges: []SlotRange{
				{Start: 100, End: 199, Master: nB},
				{Start: 300, End: 300, Master: nA, Replicas: []SlotNode{nA1}},
			},
			covered:  101,
			master:   map[uint16]string{0: "<none>", 99: "<none>", 100: nB.Addr, 199: nB.Addr, 200: "<none>", 300: nA.Addr, 301: "<none>"},
			replicas: map[uint16][]string{0: nil, 300: {nA1.Addr}},
		},
		{
			name: "one master several ranges, replicas merged",
			ranges: []SlotRange{
				{Start: 0, End: 9, Master: nA, Replicas: []SlotNode{nB1}},
				{Start: 20, End: 29, Master: nA, Replicas: []SlotNode{nA1, nB1}},
			},
			covered:  20,
			master:   map[uint16]string{0: nA.Addr, 10: "<none>", 29: nA.Addr},
			replicas: map[uint16][]string{0: {nA1.Addr, nB1.Addr}, 25: {nA1.Addr, nB1.Addr}},
		},
		{name: "empty is valid and serves nothing", covered: 0, master: map[uint16]string{0: "<none>", 16383: "<none>"}},
		{name: "end beyond last slot", ranges: []SlotRange{{Start: 0, End: Slots, Master: nA}}, wantErr: "invalid slot range 0-16384"},
		{name: "end before start", ranges: []SlotRange{{Start: 10, End: 9, Master: nA}}, wantErr: "invalid slot range 10-9"},
		{
			name:    "overlap",
			ranges:  []SlotRange{{Start: 0, End: 100, Master: nA}, {Start: 100, End: 200, Master: nB}},
			wantErr: "slot 100 claimed by both 10.0.0.1:7000 and 10.0.0.2:7000",
		},
		{
			name:    "same range twice",
			ranges:  []SlotRange{{Start: 5, End: 5, Master: nA}, {Start: 5, End: 5, Master: nA}},
			wantErr: "slot 5 claimed by both",
		},
		{name: "master without address", ranges: []SlotRange{{Start: 0, End: 1, Master: SlotNode{ID: "x"}}}, wantErr: `node "x" has no address`},
		{
			name:    "replica without address",
			ranges:  []SlotRange{{Start: 0, End: 1, Master: nA, Replicas: []SlotNode{{ID: "y"}}}},
			wantErr: `node "y" has no address`,
		},
		{
			name:    "own replica",
			ranges:  []SlotRange{{Start: 0, End: 1, Master: nA, Replicas: []SlotNode{nA}}},
			wantErr: "is its own replica",
		},
		{
			name:    "address with two IDs",
			ranges:  []SlotRange{{Start: 0, End: 1, Master: nA}, {Start: 2, End: 3, Master: SlotNode{Addr: nA.Addr, ID: "zzzz"}}},
			wantErr: "address 10.0.0.1:7000 named by two nodes, aaaa and zzzz",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewSlotMap(tc.ranges)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewSlotMap error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSlotMap: %v", err)
			}
			if got := m.Covered(); got != tc.covered {
				t.Errorf("Covered() = %d, want %d", got, tc.covered)
			}
			for slot, want := range tc.master {
				if got := addrOf(m, m.Master(slot)); got != want {
					t.Errorf("Master(%d) = %s, want %s", slot, got, want)
				}
			}
			for slot, want := range tc.replicas {
				var got []string
				for _, i := range m.Replicas(slot) {
					got = append(got, addrOf(m, i))
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Replicas(%d) = %v, want %v", slot, got, want)
				}
			}
		})
	}
}

func TestSlotMapNodesSortedAndDeduplicated(t *testing.T) {
	// The same master in two ranges, a replica named twice: each address once, in order.
	m := mustSlotMap(t, []SlotRange{
		{Start: 9, End: 9, Master: nC, Replicas: []SlotNode{nA1}},
		{Start: 0, End: 0, Master: SlotNode{Addr: nA.Addr}}, // ID learnt from the next range
		{Start: 1, End: 1, Master: nA, Replicas: []SlotNode{nA1}},
	})
	want := []SlotNode{nA, nC, nA1} // string order of addresses
	if got := m.Nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes() = %v, want %v", got, want)
	}
	if got := m.Master(Slots); got != -1 {
		t.Errorf("Master(Slots) = %d, want -1", got)
	}
}

func TestSlotMapRanges(t *testing.T) {
	cases := []struct {
		name string
		in   []SlotRange
		want []SlotRange
	}{
		{name: "round trip", in: threeShards(), want: threeShards()},
		{
			name: "adjacent ranges of one master merge, order by slot",
			in: []SlotRange{
				{Start: 200, End: 299, Master: nB},
				{Start: 100, End: 199, Master: nA, Replicas: []SlotNode{nA1}},
				{Start: 0, End: 99, Master: nA, Replicas: []SlotNode{nA1}},
				{Start: 16383, End: 16383, Master: nA, Replicas: []SlotNode{nA1}},
			},
			want: []SlotRange{
				{Start: 0, End: 199, Master: nA, Replicas: []SlotNode{nA1}},
				{Start: 200, End: 299, Master: nB},
				{Start: 16383, End: 16383, Master: nA, Replicas: []SlotNode{nA1}},
			},
		},
		{name: "empty", in: nil, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustSlotMap(t, tc.in).Ranges()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Ranges() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestSlotMapEqual(t *testing.T) {
	base := mustSlotMap(t, threeShards())
	reordered := threeShards()
	reordered[0], reordered[2] = reordered[2], reordered[0]
	cases := []struct {
		name  string
		other []SlotRange
		want  bool
	}{
		{name: "same ranges", other: threeShards(), want: true},
		{name: "ranges in another order", other: reordered, want: true},
		{name: "split range", other: append([]SlotRange{
			{Start: 0, End: 10, Master: nA, Replicas: []SlotNode{nA1}},
			{Start: 11, End: 5460, Master: nA, Replicas: []SlotNode{nA1}},
		}, threeShards()[1:]...), want: true},
		{name: "one slot moved", other: []SlotRange{
			{Start: 0, End: 5459, Master: nA, Replicas: []SlotNode{nA1}},
			{Start: 5460, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
			{Start: 10923, End: 16383, Master: nC},
		}, want: false},
		{name: "failover swaps master and replica", other: []SlotRange{
			{Start: 0, End: 5460, Master: nA1, Replicas: []SlotNode{nA}},
			{Start: 5461, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
			{Start: 10923, End: 16383, Master: nC},
		}, want: false},
		{name: "replica gone", other: []SlotRange{
			{Start: 0, End: 5460, Master: nA},
			{Start: 5461, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
			{Start: 10923, End: 16383, Master: nC},
		}, want: false},
		{name: "slot unserved", other: []SlotRange{
			{Start: 0, End: 5460, Master: nA, Replicas: []SlotNode{nA1}},
			{Start: 5461, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
			{Start: 10923, End: 16382, Master: nC},
		}, want: false},
		{name: "node ID changed", other: []SlotRange{
			{Start: 0, End: 5460, Master: nA, Replicas: []SlotNode{nA1}},
			{Start: 5461, End: 10922, Master: nB, Replicas: []SlotNode{nB1}},
			{Start: 10923, End: 16383, Master: SlotNode{Addr: nC.Addr, ID: "new"}},
		}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := mustSlotMap(t, tc.other)
			if got := base.Equal(o); got != tc.want {
				t.Errorf("Equal = %v, want %v", got, tc.want)
			}
			if got := o.Equal(base); got != tc.want {
				t.Errorf("reverse Equal = %v, want %v", got, tc.want)
			}
		})
	}
	var nilMap *SlotMap
	if base.Equal(nil) || nilMap.Equal(base) || !nilMap.Equal(nil) {
		t.Error("Equal with nil: only nil equals nil")
	}
}

func TestSlotMapLookupDoesNotAllocate(t *testing.T) {
	m := mustSlotMap(t, threeShards())
	var sink int
	allocs := testing.AllocsPerRun(1000, func() {
		for _, s := range []uint16{0, 5461, 16383} {
			sink += m.Master(s) + len(m.Replicas(s))
		}
	})
	if allocs != 0 {
		t.Errorf("Master+Replicas allocate %v times per run, want 0", allocs)
	}
	_ = sink
}

// TestSlotMapConcurrentReads reads one map from many goroutines under -race.
func TestSlotMapConcurrentReads(t *testing.T) {
	m := mustSlotMap(t, threeShards())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for s := range uint16(Slots) {
				if m.Master(s) < 0 {
					t.Errorf("goroutine %d: slot %d unserved", g, s)
					return
				}
				_ = m.Replicas(s)
			}
		})
	}
	wg.Wait()
}

func BenchmarkSlotMapMaster(b *testing.B) {
	m := mustSlotMap(b, threeShards())
	key := []byte("user:{1000}:profile")
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		s := Slot(key)
		sink += m.Master(s) + len(m.Replicas(s))
	}
	_ = sink
}

// TestSlotMapMasters: Masters lists the nodes that serve slots, in address order, never a
// replica, and each master once however many ranges it has.
func TestSlotMapMasters(t *testing.T) {
	m, err := NewSlotMap([]SlotRange{
		{Start: 0, End: 99, Master: nC},
		{Start: 100, End: 199, Master: nA, Replicas: []SlotNode{nA1}},
		{Start: 200, End: 299, Master: nC},
		{Start: 300, End: 399, Master: nB, Replicas: []SlotNode{nB1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range m.Masters() {
		got = append(got, m.Nodes()[i].Addr)
	}
	if want := []string{nA.Addr, nB.Addr, nC.Addr}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Masters = %v, want %v", got, want)
	}
}

// TestSlotMapMasterOf: a replica's master, and -1 for a master or a node index the map lacks.
func TestSlotMapMasterOf(t *testing.T) {
	m := mustSlotMap(t, threeShards())
	for i, n := range m.Nodes() {
		want := ""
		switch n.Addr {
		case nA1.Addr:
			want = nA.Addr
		case nB1.Addr:
			want = nB.Addr
		}
		got := m.MasterOf(i)
		if want == "" && got != -1 || want != "" && addrOf(m, got) != want {
			t.Errorf("MasterOf(%s) = %s, want %q", n.Addr, addrOf(m, got), want)
		}
	}
	if got := m.MasterOf(len(m.Nodes())); got != -1 {
		t.Errorf("MasterOf(out of range) = %d, want -1", got)
	}
}
