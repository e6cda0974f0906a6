package route

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testNodes returns n nodes r1..rn on 10.0.0.i:6379 with the given weights (1 when nil).
func testNodes(weights ...int) []Node {
	nodes := make([]Node, len(weights))
	for i, w := range weights {
		nodes[i] = Node{Addr: "10.0.0." + strconv.Itoa(i+1) + ":6379", Name: "r" + strconv.Itoa(i+1), Weight: w}
	}
	return nodes
}

// share returns the fraction of keys each node of r gets over n generated keys.
func share(t *testing.T, r *Ring, n int) []float64 {
	t.Helper()
	counts := make([]int, len(r.Nodes()))
	key := make([]byte, 0, 32)
	for i := range n {
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(i), 10)
		idx := r.Pick(key)
		if idx < 0 || idx >= len(counts) {
			t.Fatalf("Pick(%q) = %d, out of range", key, idx)
		}
		counts[idx]++
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = float64(c) / float64(n)
	}
	return out
}

func mustRing(t *testing.T, nodes []Node, hash, tag string) *Ring {
	t.Helper()
	h, err := Hash(hash)
	if err != nil {
		t.Fatalf("Hash(%q): %v", hash, err)
	}
	r, err := NewRing(nodes, h, tag)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func TestRingEqualWeightsDistribution(t *testing.T) {
	for _, hash := range []string{"fnv1a_64", "murmur", "md5", "crc32a"} {
		t.Run(hash, func(t *testing.T) {
			got := share(t, mustRing(t, testNodes(1, 1, 1, 1), hash, ""), 100000)
			for i, s := range got {
				if s < 0.20 || s > 0.30 {
					t.Errorf("node %d gets %.1f%% of keys, want 25%% +- 5", i, 100*s)
				}
			}
			t.Logf("shares: %.3f", got)
		})
	}
}

func TestRingWeights(t *testing.T) {
	cases := []struct {
		name    string
		weights []int
		points  []int // per node, by twemproxy's formula
	}{
		{name: "equal", weights: []int{1, 1, 1, 1}, points: []int{160, 160, 160, 160}},
		{name: "1 2 1 3", weights: []int{1, 2, 1, 3}, points: []int{88, 180, 88, 272}},
		{name: "2 to 1", weights: []int{2, 1}, points: []int{212, 104}},
		{name: "single", weights: []int{5}, points: []int{160}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRing(t, testNodes(tc.weights...), "fnv1a_64", "")
			got := make([]int, len(tc.weights))
			for _, o := range r.owner {
				got[o]++
			}
			for i := range got {
				if got[i] != tc.points[i] {
					t.Errorf("node %d (weight %d) has %d points, want %d", i, tc.weights[i], got[i], tc.points[i])
				}
			}
			for i := 1; i < len(r.points); i++ {
				if r.points[i-1] > r.points[i] {
					t.Fatalf("points not sorted at %d", i)
				}
			}
		})
	}

	// A node of weight 2 gets about twice the keys of a node of weight 1.
	s := share(t, mustRing(t, testNodes(2, 1, 1), "fnv1a_64", ""), 100000)
	for i := 1; i <= 2; i++ {
		if ratio := s[0] / s[i]; ratio < 1.6 || ratio > 2.4 {
			t.Errorf("weight-2 node gets %.2f times the keys of weight-1 node %d, want about 2", ratio, i)
		}
	}
}

// TestRingPlacementFollowsName: the ring hashes the alias, so renaming a node moves keys but
// moving a node to another address under the same alias does not.
func TestRingPlacementFollowsName(t *testing.T) {
	base := testNodes(1, 1, 1, 1)
	moved := testNodes(1, 1, 1, 1)
	moved[2].Addr = "192.168.7.7:7000"
	renamed := testNodes(1, 1, 1, 1)
	renamed[2].Name = "r3-new"
	unnamed := testNodes(1, 1, 1, 1)
	for i := range unnamed {
		unnamed[i].Name = ""
	}

	cases := []struct {
		name  string
		nodes []Node
		same  bool
	}{
		{name: "address change, same alias", nodes: moved, same: true},
		{name: "alias change", nodes: renamed, same: false},
		{name: "aliases dropped", nodes: unnamed, same: false},
	}
	r0 := mustRing(t, base, "fnv1a_64", "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRing(t, tc.nodes, "fnv1a_64", "")
			diff := 0
			for i := range 20000 {
				k := []byte("key:" + strconv.Itoa(i))
				if r.Pick(k) != r0.Pick(k) {
					diff++
				}
			}
			if tc.same && diff != 0 {
				t.Errorf("%d of 20000 keys moved, want none", diff)
			}
			if !tc.same && diff == 0 {
				t.Error("no key moved, want some")
			}
		})
	}
}

func TestKetamaName(t *testing.T) {
	cases := []struct {
		name string
		node Node
		want string
	}{
		{name: "alias wins", node: Node{Addr: "10.0.0.1:6379", Name: "r1"}, want: "r1"},
		{name: "host:port without alias", node: Node{Addr: "10.0.0.1:6379"}, want: "10.0.0.1:6379"},
		{name: "port 11211 left out", node: Node{Addr: "10.0.0.1:11211"}, want: "10.0.0.1"},
		{name: "port 11211 with alias", node: Node{Addr: "10.0.0.1:11211", Name: "m"}, want: "m"},
		{name: "port 111211 kept", node: Node{Addr: "10.0.0.1:111211"}, want: "10.0.0.1:111211"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.node.ketamaName(); got != tc.want {
				t.Errorf("ketamaName(%+v) = %q, want %q", tc.node, got, tc.want)
			}
		})
	}
}

func TestNewRing(t *testing.T) {
	cases := []struct {
		name    string
		nodes   []Node
		tag     string
		wantErr string // "" for success
	}{
		{name: "ok", nodes: testNodes(1, 2, 3)},
		{name: "ok with tag", nodes: testNodes(1, 1), tag: "{}"},
		{name: "ok same address different aliases", nodes: []Node{{Addr: "a:1", Name: "x", Weight: 1}, {Addr: "a:1", Name: "y", Weight: 1}}},
		{name: "empty", nodes: nil},
		{name: "zero weight", nodes: testNodes(1, 0), wantErr: "weight 0"},
		{name: "negative weight", nodes: testNodes(-1), wantErr: "weight -1"},
		{name: "no address", nodes: []Node{{Name: "x", Weight: 1}}, wantErr: "no address"},
		{name: "duplicate alias", nodes: []Node{{Addr: "a:1", Name: "x", Weight: 1}, {Addr: "b:1", Name: "x", Weight: 1}}, wantErr: "same name"},
		{name: "duplicate address without alias", nodes: []Node{{Addr: "a:1", Weight: 1}, {Addr: "a:1", Weight: 2}}, wantErr: "same name"},
		{name: "one-char tag", nodes: testNodes(1), tag: "{", wantErr: "hash tag"},
		{name: "three-char tag", nodes: testNodes(1), tag: "{}}", wantErr: "hash tag"},
		{name: "total weight overflow", nodes: testNodes(1<<31-1, 1<<31-1, 2), wantErr: "total weight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRing(tc.nodes, nil, tc.tag)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewRing error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRing: %v", err)
			}
			if len(r.Nodes()) != len(tc.nodes) {
				t.Fatalf("Nodes() has %d nodes, want %d", len(r.Nodes()), len(tc.nodes))
			}
			got := r.Pick([]byte("k"))
			if len(tc.nodes) == 0 && got != -1 {
				t.Errorf("empty ring Pick = %d, want -1", got)
			}
			if len(tc.nodes) > 0 && (got < 0 || got >= len(tc.nodes)) {
				t.Errorf("Pick = %d, want an index below %d", got, len(tc.nodes))
			}
		})
	}
}

func TestNewRingCopiesNodes(t *testing.T) {
	nodes := testNodes(1, 1)
	r := mustRing(t, nodes, "fnv1a_64", "")
	nodes[0].Addr = "changed:1"
	if r.Nodes()[0].Addr == "changed:1" {
		t.Error("ring shares the caller's node slice")
	}
}

func TestRingPickEdges(t *testing.T) {
	r := mustRing(t, testNodes(1, 1, 1), "fnv1a_64", "{}")
	first, last := int(r.owner[0]), int(r.owner[len(r.owner)-1])
	cases := []struct {
		name string
		hash uint32
		want int
	}{
		{name: "zero goes to first point", hash: 0, want: first},
		{name: "exact point value", hash: r.points[len(r.points)/2], want: int(r.owner[len(r.points)/2])},
		{name: "just above a point goes to the next", hash: r.points[10] + 1, want: int(r.owner[11])},
		{name: "last point", hash: r.points[len(r.points)-1], want: last},
		{name: "past the last point wraps", hash: r.points[len(r.points)-1] + 1, want: first},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fixed := *r
			fixed.hash = func([]byte) uint32 { return tc.hash }
			if got := fixed.Pick([]byte("x")); got != tc.want {
				t.Errorf("Pick with hash %#x = %d, want %d", tc.hash, got, tc.want)
			}
		})
	}
	// Hash tags: keys sharing a tag share a node; the empty key takes hash 0.
	for i := range 200 {
		a, b := r.Pick([]byte("{tag"+strconv.Itoa(i)+"}:a")), r.Pick([]byte("tag"+strconv.Itoa(i)))
		if a != b {
			t.Fatalf("{tag%d}:a on node %d, tag%d on node %d", i, a, i, b)
		}
	}
	if got := r.Pick(nil); got != first {
		t.Errorf("Pick(empty key) = %d, want %d (hash 0)", got, first)
	}
}

// TestRingIndexMatchesSearch: Pick, which searches one bucket of its index, picks what a search
// of the whole ring picks, for rings of many sizes and weights and hashes all over the space
// (bucket edges, points themselves, either side of them).
func TestRingIndexMatchesSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sizes []int
	for n := 2; n <= 70; n += 7 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 254, 255, 300) // the last node fast can name, and rings too big for it
	for _, n := range sizes {
		weights := make([]int, n)
		for i := range weights {
			weights[i] = 1 + rng.IntN(5)
		}
		r := mustRing(t, testNodes(weights...), "fnv1a_64", "")
		want := func(h uint32) int {
			i, _ := slices.BinarySearch(r.points, h)
			if i == len(r.points) {
				i = 0
			}
			return int(r.owner[i])
		}
		hashes := []uint32{0, 1, math.MaxUint32, r.points[0], r.points[len(r.points)-1]}
		for range 2000 {
			p := r.points[rng.IntN(len(r.points))]
			hashes = append(hashes, rng.Uint32(), p, p-1, p+1, p&^(1<<r.shift-1), p|(1<<r.shift-1),
				p&^(1<<fastShift-1), p|(1<<fastShift-1), p&^(1<<fastShift-1)-1, p|(1<<fastShift-1)+1)
		}
		if (r.fast != nil) != (n < mixed) {
			t.Fatalf("%d nodes: fast table %v", n, r.fast != nil)
		}
		for _, h := range hashes {
			fixed := *r
			fixed.hash = func([]byte) uint32 { return h }
			if got := fixed.Pick([]byte("x")); got != want(h) {
				t.Fatalf("%d nodes: Pick with hash %#x = %d, want %d", n, h, got, want(h))
			}
		}
	}
}

// TestRingFastTableEdges: points on the first and last hash of fast's buckets (which md5
// points almost never hit), against a search of the whole ring, on a ring made by hand.
func TestRingFastTableEdges(t *testing.T) {
	r := &Ring{nodes: make([]Node, 3), hash: func([]byte) uint32 { return 0 }}
	// Alone in their buckets: on the first hash, the last, the one before the last.
	r.points = []uint32{0x000fffff, 0x00100000, 0x00100001, 0x00300000, 0x005ffffe, 0x7fffffff,
		0x80000000, 0x80000001, 0xa0000001, 0xffffffff}
	r.owner = []int32{0, 1, 2, 0, 1, 0, 1, 2, 0, 1}
	r.index()
	for _, p := range r.points {
		for _, h := range []uint32{p - 1, p, p + 1, p - 2, p + 2} {
			i, _ := slices.BinarySearch(r.points, h)
			want := int(r.owner[i%len(r.points)])
			fixed := *r
			fixed.hash = func([]byte) uint32 { return h }
			if got := fixed.Pick([]byte("x")); got != want {
				t.Errorf("Pick with hash %#x = %d, want %d", h, got, want)
			}
		}
	}
}

// TestRingFastTableCovers: the fast table answers most hashes of a usual ring (4 nodes, 160
// points each) by itself; a table of mixed buckets alone would still pick right (the test
// above) but buy nothing.
func TestRingFastTableCovers(t *testing.T) {
	r := mustRing(t, testNodes(1, 1, 1, 1), "fnv1a_64", "")
	pure := 0
	for _, o := range r.fast {
		if o != mixed {
			pure++
		}
	}
	if share := float64(pure) / float64(len(r.fast)); share < 0.8 {
		t.Errorf("%d of %d buckets answered by the fast table (%.0f%%), want most", pure, len(r.fast), 100*share)
	}
}

// TestRingConcurrentPick reads one ring from many goroutines; run under -race.
func TestRingConcurrentPick(t *testing.T) {
	r := mustRing(t, testNodes(1, 2, 3), "fnv1a_64", "{}")
	want := make([]int, 1000)
	for i := range want {
		want[i] = r.Pick([]byte("key:" + strconv.Itoa(i)))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for i := range want {
				if got := r.Pick([]byte("key:" + strconv.Itoa(i))); got != want[i] {
					errs <- "key:" + strconv.Itoa(i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for k := range errs {
		t.Errorf("concurrent Pick(%q) disagreed", k)
	}
}

func TestRingPickDoesNotAllocate(t *testing.T) {
	for _, tag := range []string{"", "{}"} {
		r := mustRing(t, testNodes(1, 2, 1, 3), "fnv1a_64", tag)
		key := []byte("{user1000}.following")
		if n := testing.AllocsPerRun(1000, func() { r.Pick(key) }); n != 0 {
			t.Errorf("Pick with tag %q allocates %v times per call", tag, n)
		}
	}
}

func BenchmarkRingPick(b *testing.B) {
	for _, bc := range []struct {
		name  string
		nodes int
		tag   string
	}{
		{"4 nodes", 4, ""},
		{"4 nodes hash tag", 4, "{}"},
		{"64 nodes", 64, ""},
	} {
		weights := make([]int, bc.nodes)
		for i := range weights {
			weights[i] = 1
		}
		h, _ := Hash("fnv1a_64")
		r, err := NewRing(testNodes(weights...), h, bc.tag)
		if err != nil {
			b.Fatal(err)
		}
		keys := make([][]byte, 1024)
		for i := range keys {
			keys[i] = []byte("{user" + strconv.Itoa(i) + "}:session:abcdef")
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.Pick(keys[i&1023])
				i++
			}
		})
	}
}
