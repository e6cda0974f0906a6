package route

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// SlotNode is one node of a Redis Cluster as seen in CLUSTER SLOTS/SHARDS.
type SlotNode struct {
	Addr string // host:port clients connect to
	ID   string // the node's cluster ID; "" when not known
}

// SlotRange is a contiguous run of slots [Start, End] served by one master and its replicas.
type SlotRange struct {
	Start, End uint16
	Master     SlotNode
	Replicas   []SlotNode
}

// SlotMap routes the 16384 slots of a Redis Cluster to their master and replicas.
//
// A SlotMap is immutable and safe for concurrent use; a topology change is a new SlotMap. The
// slices its methods return are shared and must not be modified.
type SlotMap struct {
	nodes    []SlotNode // sorted by Addr, so equal topologies give equal indexes
	master   [Slots]int16
	replicas [][]int // replicas[i] are the replica node indexes of master node i
	masters  []int   // indexes of the nodes that serve at least one slot, ascending
	covered  int
}

// NewSlotMap builds a map from ranges. Nodes are deduplicated by address and indexed in address
// order, so two maps of the same topology are Equal whatever the order of ranges. A master's
// replicas are the union of those listed with any of its ranges. It fails on a slot beyond
// Slots, a range that ends before it starts, overlapping ranges, a node without an address, a
// node that is its own replica, and one address named with two different IDs.
func NewSlotMap(ranges []SlotRange) (*SlotMap, error) {
	m := &SlotMap{}
	ids := make(map[string]string)
	addNode := func(n SlotNode) error {
		if n.Addr == "" {
			return fmt.Errorf("route: build slot map: node %q has no address", n.ID)
		}
		id, seen := ids[n.Addr]
		switch {
		case !seen || id == "":
			ids[n.Addr] = n.ID
		case n.ID != "" && n.ID != id:
			return fmt.Errorf("route: build slot map: address %s named by two nodes, %s and %s", n.Addr, id, n.ID)
		}
		return nil
	}
	for _, r := range ranges {
		if r.Start > r.End || r.End >= Slots {
			return nil, fmt.Errorf("route: build slot map: invalid slot range %d-%d (slots are 0-%d)", r.Start, r.End, Slots-1)
		}
		if err := addNode(r.Master); err != nil {
			return nil, err
		}
		for _, rep := range r.Replicas {
			if rep.Addr == r.Master.Addr {
				return nil, fmt.Errorf("route: build slot map: slots %d-%d: node %s is its own replica", r.Start, r.End, rep.Addr)
			}
			if err := addNode(rep); err != nil {
				return nil, err
			}
		}
	}
	if len(ids) > math.MaxInt16 {
		return nil, fmt.Errorf("route: build slot map: %d nodes is too many (at most %d)", len(ids), math.MaxInt16)
	}
	m.nodes = make([]SlotNode, 0, len(ids))
	for addr, id := range ids {
		m.nodes = append(m.nodes, SlotNode{Addr: addr, ID: id})
	}
	slices.SortFunc(m.nodes, func(a, b SlotNode) int { return cmp.Compare(a.Addr, b.Addr) })
	index := make(map[string]int, len(m.nodes))
	for i, n := range m.nodes {
		index[n.Addr] = i
	}

	for i := range m.master {
		m.master[i] = -1
	}
	m.replicas = make([][]int, len(m.nodes))
	for _, r := range ranges {
		mi := index[r.Master.Addr]
		for s := int(r.Start); s <= int(r.End); s++ {
			if prev := m.master[s]; prev >= 0 {
				return nil, fmt.Errorf("route: build slot map: slot %d claimed by both %s and %s", s, m.nodes[prev].Addr, r.Master.Addr)
			}
			m.master[s] = int16(mi)
		}
		m.covered += int(r.End) - int(r.Start) + 1
		for _, rep := range r.Replicas {
			ri := index[rep.Addr]
			if !slices.Contains(m.replicas[mi], ri) {
				m.replicas[mi] = append(m.replicas[mi], ri)
			}
		}
	}
	for _, reps := range m.replicas {
		slices.Sort(reps)
	}
	for _, mi := range m.master {
		if mi >= 0 && !slices.Contains(m.masters, int(mi)) {
			m.masters = append(m.masters, int(mi))
		}
	}
	slices.Sort(m.masters)
	return m, nil
}

// Nodes returns every node the map names, masters and replicas, sorted by address. Master and
// Replicas return indexes into it.
func (m *SlotMap) Nodes() []SlotNode { return m.nodes }

// Master returns the index into Nodes of the master serving slot, or -1 when no node serves
// it (or slot is beyond Slots). It does not allocate.
func (m *SlotMap) Master(slot uint16) int {
	if slot >= Slots {
		return -1
	}
	return int(m.master[slot])
}

// Replicas returns the indexes into Nodes of the replicas of slot's master, in address order;
// empty when it has none or the slot is not served. It does not allocate.
func (m *SlotMap) Replicas(slot uint16) []int {
	mi := m.Master(slot)
	if mi < 0 {
		return nil
	}
	return m.replicas[mi]
}

// MasterOf returns the index into Nodes of the master that node replicates, or -1 when node
// replicates none (a master, or a node the map does not know).
func (m *SlotMap) MasterOf(node int) int {
	for mi, reps := range m.replicas {
		if slices.Contains(reps, node) {
			return mi
		}
	}
	return -1
}

// Ranges returns the map as the fewest contiguous ranges, in slot order, each with its master
// and replicas: what an admin API or a CLUSTER SLOTS answer would show. The result is new.
func (m *SlotMap) Ranges() []SlotRange {
	var out []SlotRange
	for s := 0; s < Slots; {
		mi := m.master[s]
		e := s
		for e+1 < Slots && m.master[e+1] == mi {
			e++
		}
		if mi >= 0 {
			r := SlotRange{Start: uint16(s), End: uint16(e), Master: m.nodes[mi]}
			for _, ri := range m.replicas[mi] {
				r.Replicas = append(r.Replicas, m.nodes[ri])
			}
			out = append(out, r)
		}
		s = e + 1
	}
	return out
}

// Masters returns the indexes into Nodes of the nodes that serve at least one slot, in
// address order.
func (m *SlotMap) Masters() []int { return m.masters }

// Covered returns how many slots have a master; Slots when the whole cluster is served.
func (m *SlotMap) Covered() int { return m.covered }

// Equal reports whether m and o name the same nodes and give every slot the same master and
// replicas, so that publishing o in place of m would change nothing. Nil equals only nil.
func (m *SlotMap) Equal(o *SlotMap) bool {
	if m == nil || o == nil {
		return m == o
	}
	if m == o {
		return true
	}
	return m.covered == o.covered && m.master == o.master &&
		slices.Equal(m.nodes, o.nodes) &&
		slices.EqualFunc(m.replicas, o.replicas, slices.Equal)
}
