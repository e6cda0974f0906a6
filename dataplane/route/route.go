// Package route holds the immutable routing tables of the data plane and answers where a key
// goes: a Table (table.go) names a cluster's nodes and answers the routing questions (a key's
// group, its node for a read or a write, the keyspace's primaries) whatever the mode, over a
// ketama ring that places keys exactly as twemproxy (nutcracker 0.5.0) does or a Redis Cluster
// slot map. A Snapshot is what the control plane publishes: every cluster's spec and table.
//
// Concurrency: a table (Ring, SlotMap, Table, Snapshot) is built once, never modified, and then
// read by any number of goroutines without locks; a change of nodes is a new table. Building
// may be slow; lookups must not allocate.
package route

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Node is one backend as configured: "host:port:weight alias".
type Node struct {
	Addr   string // host:port
	Name   string // alias; "" when none
	Weight int
}

// ketamaName returns the string twemproxy hashes onto the continuum for n: the alias when
// given, else "host:port", except that the port is left out when it is 11211 (twemproxy keeps
// this for libmemcached compatibility).
func (n Node) ketamaName() string {
	if n.Name != "" {
		return n.Name
	}
	if host, ok := strings.CutSuffix(n.Addr, ":11211"); ok {
		return host
	}
	return n.Addr
}

// twemproxy's ketama constants (nc_ketama.c).
const (
	pointsPerServer = 160 // at equal weights
	pointsPerHash   = 4   // one md5 digest gives four 32-bit points
)

// Ring is a ketama continuum built exactly as twemproxy builds it, so that Aster and a
// nutcracker over the same servers send every key to the same server.
//
// A Ring is immutable and safe for concurrent use.
type Ring struct {
	nodes  []Node
	points []uint32 // sorted point values
	owner  []int32  // owner[i] is the index into nodes of points[i]
	// start[b] is the first point at or above bucket b's lowest hash, the hash space cut into
	// len(start)-1 equal buckets (about one point each): Pick searches one bucket, not the
	// whole ring.
	start []int32
	shift uint // hash >> shift is its bucket
	// fast[h>>fastShift] is the owner of every hash in that 1/4096th of the hash space when
	// no point lies inside it (most do not: ~85% with 160 points a node and four nodes), else
	// mixed, and Pick searches as above. One load from 4 KiB instead of three from the
	// arrays above: Pick was 3.5% of the proxy's CPU at SET P16, most of it those arrays'
	// cache misses on a core the servers share. nil for rings of mixed or more nodes.
	fast   []uint8
	hash   HashFunc
	tag    [2]byte
	hasTag bool
}

// NewRing builds the ring over nodes, all of which are live: the caller removes ejected nodes
// before building. hash nil means DefaultHash. hashTag is "" for none or two bytes such as "{}".
// Like nutcracker's config check, it refuses a weight below 1 and two nodes with the same
// ketama name (the alias, else the address). No nodes gives an empty ring.
func NewRing(nodes []Node, hash HashFunc, hashTag string) (*Ring, error) {
	if hash == nil {
		hash = hashFNV1a64
	}
	r := &Ring{nodes: slices.Clone(nodes), hash: hash}
	switch len(hashTag) {
	case 0:
	case 2:
		r.tag, r.hasTag = [2]byte{hashTag[0], hashTag[1]}, true
	default:
		return nil, fmt.Errorf("route: build ring: hash tag %q must be two characters or empty", hashTag)
	}
	if len(nodes) > math.MaxInt32 {
		return nil, fmt.Errorf("route: build ring: %d nodes is too many", len(nodes))
	}

	seen := make(map[string]int, len(nodes))
	var total uint64
	for i, n := range nodes {
		if n.Addr == "" {
			return nil, fmt.Errorf("route: build ring: node %d has no address", i)
		}
		if n.Weight < 1 || n.Weight > math.MaxInt32 {
			return nil, fmt.Errorf("route: build ring: node %d (%s) has weight %d, want >= 1", i, n.Addr, n.Weight)
		}
		name := n.ketamaName()
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("route: build ring: nodes %d and %d have the same name %q", j, i, name)
		}
		seen[name] = i
		total += uint64(n.Weight)
	}
	if total > math.MaxUint32 { // twemproxy sums weights in 32 bits
		return nil, fmt.Errorf("route: build ring: total weight %d exceeds %d", total, uint32(math.MaxUint32))
	}

	type point struct {
		value uint32
		node  int32
	}
	var pts []point
	live := float32(len(nodes))
	var buf []byte
	for i, n := range nodes {
		// twemproxy computes the share in single precision, adds a tiny double before
		// flooring, and rounds down to a multiple of four. Each step is converted explicitly
		// so that no fused multiply-add changes a borderline count.
		pct := float32(n.Weight) / float32(total)
		f := float32(pct * pointsPerServer)
		f = float32(f / pointsPerHash)
		f = float32(f * live)
		f = float32(float64(f) + 0.0000000001)
		count := uint32(math.Floor(float64(f))) * pointsPerHash

		name := n.ketamaName()
		for h := uint32(0); h < count/pointsPerHash; h++ {
			buf = strconv.AppendUint(append(append(buf[:0], name...), '-'), uint64(h), 10)
			sum := md5.Sum(buf)
			for x := range pointsPerHash {
				pts = append(pts, point{binary.LittleEndian.Uint32(sum[4*x:]), int32(i)})
			}
		}
	}
	// Stable, like glibc's merge-sort qsort, so equal points keep server order.
	slices.SortStableFunc(pts, func(a, b point) int { return cmp.Compare(a.value, b.value) })
	r.points = make([]uint32, len(pts))
	r.owner = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i], r.owner[i] = p.value, p.node
	}
	r.index()
	return r, nil
}

// index builds start: a power of two of buckets, at least as many as points (at most 2^16).
func (r *Ring) index() {
	bits := uint(1)
	for bits < 16 && 1<<bits < len(r.points) {
		bits++
	}
	r.shift = 32 - bits
	r.start = make([]int32, 1<<bits+1)
	i := 0
	for b := range 1 << bits {
		low := uint32(b) << r.shift
		for i < len(r.points) && r.points[i] < low {
			i++
		}
		r.start[b] = int32(i)
	}
	r.start[1<<bits] = int32(len(r.points))
	r.indexFast()
}

const (
	fastShift = 20 // 4096 buckets of fast
	mixed     = math.MaxUint8
)

// indexFast builds fast, for rings whose node indexes fit below mixed.
func (r *Ring) indexFast() {
	if len(r.points) == 0 || len(r.nodes) >= mixed {
		return
	}
	r.fast = make([]uint8, 1<<(32-fastShift))
	for b := range r.fast {
		lo := uint32(b) << fastShift
		hi := lo | (1<<fastShift - 1)
		// Every hash of the bucket goes to the first point at or above it; the same point for
		// all of them when the first at or above lo is also the first at or above hi.
		i, _ := slices.BinarySearch(r.points, lo)
		if j, _ := slices.BinarySearch(r.points, hi); i != j {
			r.fast[b] = mixed
			continue
		}
		if i == len(r.points) {
			i = 0
		}
		r.fast[b] = uint8(r.owner[i])
	}
}

// Pick returns the index into Nodes of the node owning key, after applying the hash tag: the
// owner of the first point at or after the key's hash, wrapping to the first point. An empty
// key hashes to 0, as in twemproxy. It returns -1 only for an empty ring. It does not allocate.
func (r *Ring) Pick(key []byte) int {
	n := len(r.points)
	if n == 0 {
		return -1
	}
	if len(r.nodes) == 1 {
		return 0
	}
	if r.hasTag {
		key = tagged(key, r.tag[0], r.tag[1])
	}
	var h uint32 // twemproxy does not hash an empty key: it takes hash 0
	if len(key) > 0 {
		h = r.hash(key)
	}
	if r.fast != nil {
		if o := r.fast[h>>fastShift]; o != mixed {
			return int(o)
		}
	}
	// Lower bound: the first point whose value is >= h. It is in h's bucket, or else the
	// first point of the next ones (start[b+1]).
	b := h >> r.shift
	lo, hi := int(r.start[b]), int(r.start[b+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid] < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n {
		lo = 0
	}
	return int(r.owner[lo])
}

// Tag returns the ring's hash tag ("{}"), or "" when it has none.
func (r *Ring) Tag() string {
	if !r.hasTag {
		return ""
	}
	return string(r.tag[:])
}

// SamePlacement reports whether r and o send every key to the same node index: the same
// points with the same owners, the same key hash and the same hash tag. Node addresses are
// the caller's to compare; a change of weight, name or hash moves keys between the same
// nodes, which this catches.
func (r *Ring) SamePlacement(o *Ring) bool {
	return len(r.nodes) == len(o.nodes) && r.hasTag == o.hasTag && r.tag == o.tag &&
		reflect.ValueOf(r.hash).Pointer() == reflect.ValueOf(o.hash).Pointer() &&
		slices.Equal(r.points, o.points) && slices.Equal(r.owner, o.owner)
}

// Nodes returns the ring's nodes in the order given to NewRing. The slice is shared and must
// not be modified.
func (r *Ring) Nodes() []Node { return r.nodes }

// HashTag returns the part of key to hash given a two-character tag such as "{}": the bytes
// between the first tag[0] and the first tag[1] after it, when there is at least one byte
// between them. Otherwise (no start, no end, or nothing between) and when tag is not two
// characters, it returns key. This is twemproxy's rule, and with "{}" also Redis Cluster's.
func HashTag(key []byte, tag string) []byte {
	if len(tag) != 2 {
		return key
	}
	return tagged(key, tag[0], tag[1])
}
