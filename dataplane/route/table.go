package route

import (
	"errors"
	"slices"
	"sync"
)

// Table is one cluster's immutable routing table, as the control plane publishes it (in a
// Snapshot) and the data plane swaps it in whole. A newer table has a higher Version.
//
// The data plane asks a table, never its Ring or Slots, where a key goes (see the methods):
// that is what keeps the cluster's mode (a ketama ring, a ring of Sentinel groups with read
// replicas, a Redis Cluster slot map) in this file. A key's group is where the keys a command
// may use together must all be (a ring node, a hash slot); a group's node is an index into
// Addrs, the table's one node order, with which the proxy aligns its connection pools.
type Table struct {
	Version uint64
	// Ring routes a standalone (consistent-hash) cluster: it holds only the nodes that serve,
	// ejected ones are left out.
	Ring *Ring
	// Slots routes a Redis Cluster; Ring is nil then.
	Slots *SlotMap
	// Replicas, with a Ring, lists for each of its nodes (same index as Ring.Nodes()) the
	// replicas its reads go to (Sentinel mode with read_from_slave); nil, or an empty entry,
	// when they go to the node itself. Writes always go to the node.
	Replicas [][]string

	// index is derived from the fields above on first use: tables are also written as
	// literals, so it cannot be built by a constructor.
	once sync.Once
	idx  tableIndex
}

// tableIndex is what the lookups need beyond the ring or slot map.
type tableIndex struct {
	addrs     []string // every node: a ring's nodes, then their replicas; a slot map's nodes
	primaries []int    // the nodes that hold the keyspace
	reps      [][]int  // a ring node's read replicas, as indexes into addrs
}

// The errors a table answers for a command whose keys are in different groups: Redis
// Cluster's own, and for a ring the same code with the rule a client can follow. The proxy
// writes them to the client as they are.
var (
	ErrCrossSlot = errors.New("CROSSSLOT Keys in request don't hash to the same slot")
	ErrCrossNode = errors.New("CROSSSLOT Keys in request don't hash to the same node (use hash tags)")
)

// ErrClusterDown is Redis Cluster's answer for a key whose slot no node serves.
const ErrClusterDown = "CLUSTERDOWN Hash slot not served"

// errBadTable refuses a table that has both or neither of a ring and a slot map.
var errBadTable = errors.New("a table needs exactly one of a ring or a slot map")

// Check fails for a table the data plane cannot route by.
func (t *Table) Check() error {
	if t == nil || (t.Ring == nil) == (t.Slots == nil) {
		return errBadTable
	}
	return nil
}

func (t *Table) index() *tableIndex {
	t.once.Do(func() {
		x := &t.idx
		if t.Slots != nil {
			for _, n := range t.Slots.Nodes() {
				x.addrs = append(x.addrs, n.Addr)
			}
			x.primaries = t.Slots.Masters()
			return
		}
		nodes := t.Ring.Nodes()
		at := make(map[string]int, len(nodes))
		for i, n := range nodes {
			x.addrs = append(x.addrs, n.Addr)
			x.primaries = append(x.primaries, i)
			at[n.Addr] = i
		}
		if len(t.Replicas) == 0 {
			return
		}
		x.reps = make([][]int, len(nodes))
		for i, reps := range t.Replicas[:min(len(t.Replicas), len(nodes))] {
			for _, a := range reps {
				j, ok := at[a]
				if !ok {
					j = len(x.addrs)
					x.addrs = append(x.addrs, a)
					at[a] = j
				}
				x.reps[i] = append(x.reps[i], j)
			}
		}
	})
	return &t.idx
}

// Cluster reports whether the nodes form one Redis Cluster, so that what follows from its
// protocol applies: nodes redirect a request for another slot (MOVED/ASK), a PUBLISH reaches
// every node over the cluster bus, and groups are hash slots, the same in every table of the
// cluster, so a request can be routed again by a newer table. Callers branch on it only for
// such protocol matters; where a key goes, they ask the other methods.
func (t *Table) Cluster() bool { return t.Slots != nil }

// CacheType is the mode as the cache_type setting names it (INFO shows it).
func (t *Table) CacheType() string {
	if t.Slots != nil {
		return "redis_cluster"
	}
	return "redis"
}

// Addrs lists the addresses of every node the table names, in the order node indexes use: a
// slot map's nodes (masters and replicas) by address; a ring's nodes in its order, then their
// read replicas. Shared: must not be modified.
func (t *Table) Addrs() []string { return t.index().addrs }

// Primaries are the nodes that hold the keyspace, each key on exactly one, in a fixed order:
// where keyspace commands (SCAN, DBSIZE, ...) and a ring's pattern subscriptions go. Shared:
// must not be modified.
func (t *Table) Primaries() []int { return t.index().primaries }

// Tag is the hash tag of the table's keys ("{}"), or "" when it has none.
func (t *Table) Tag() string {
	if t.Slots != nil {
		return "{}"
	}
	return t.Ring.Tag()
}

// Group returns key's group: its hash slot, or its ring node. -1 only for an empty ring. It
// does not allocate.
func (t *Table) Group(key []byte) int {
	if t.Slots != nil {
		return int(Slot(key))
	}
	return t.Ring.Pick(key)
}

// Groups is how many groups the table's keys fall into, each Group in [0, Groups()): a Redis
// Cluster's hash slots, a ring's nodes (0 for an empty ring). For a caller that indexes
// groups in an array.
func (t *Table) Groups() int {
	if t.Slots != nil {
		return Slots
	}
	return len(t.Ring.Nodes())
}

// Together returns the group of the keys args[i] for i in keys (every arg when keys is nil),
// or ErrCrossSlot / ErrCrossNode when they are not all in one. -1 with no keys. It does not
// allocate.
func (t *Table) Together(args [][]byte, keys []int) (int, error) {
	if len(keys) == 1 { // most commands name one key: its group, without a loop or a second call
		k := args[keys[0]]
		if t.Slots != nil {
			return int(Slot(k)), nil
		}
		return t.Ring.Pick(k), nil
	}
	g := -1
	if keys == nil {
		for i, a := range args {
			if i == 0 {
				g = t.Group(a)
			} else if t.Group(a) != g {
				return -1, t.crossErr()
			}
		}
		return g, nil
	}
	for i, k := range keys {
		if i == 0 {
			g = t.Group(args[k])
		} else if t.Group(args[k]) != g {
			return -1, t.crossErr()
		}
	}
	return g, nil
}

func (t *Table) crossErr() error {
	if t.Slots != nil {
		return ErrCrossSlot
	}
	return ErrCrossNode
}

// Master returns the node that serves group's writes, -1 when none does (an uncovered slot,
// an empty ring).
func (t *Table) Master(group int) int {
	if t.Slots != nil {
		if group < 0 || group >= Slots {
			return -1
		}
		return t.Slots.Master(uint16(group))
	}
	if group < 0 || group >= len(t.Ring.Nodes()) {
		return -1
	}
	return group
}

// ReadReplicas returns the nodes group's reads may go to besides its master: a slot's replicas, a
// ring node's read replicas. Shared: must not be modified.
func (t *Table) ReadReplicas(group int) []int {
	if t.Slots != nil {
		if group < 0 || group >= Slots {
			return nil
		}
		return t.Slots.Replicas(uint16(group))
	}
	x := t.index()
	if group < 0 || group >= len(x.reps) {
		return nil
	}
	return x.reps[group]
}

// MasterOf returns the node whose reads replica node serves (a slot's master, a ring node),
// or -1 when node is no read replica (a master, or a node the table does not know).
func (t *Table) MasterOf(node int) int {
	if t.Slots != nil {
		return t.Slots.MasterOf(node)
	}
	for g, reps := range t.index().reps {
		if slices.Contains(reps, node) {
			return g
		}
	}
	return -1
}

// Node returns the node a request of group goes to: its master, or for a read the next in
// turn of *rr (which it advances) among a ring node's read replicas (a Sentinel group's
// master takes the writes only), or with readFromSlave among a slot's master and replicas.
// readFromSlave is the backend setting, which a slot map's replicas need (their connections
// say READONLY); a ring lists read replicas only when they are to be read. -1 when no node
// serves group. It does not allocate.
func (t *Table) Node(group int, read, readFromSlave bool, rr *uint32) int {
	m := t.Master(group)
	if !read || m < 0 {
		return m
	}
	if t.Slots != nil {
		if !readFromSlave {
			return m
		}
	} else if len(t.Replicas) == 0 {
		return m // a ring without read replicas: no need to ask the index (a split's every group)
	}
	reps := t.ReadReplicas(group)
	if len(reps) == 0 {
		return m
	}
	*rr++
	if t.Slots == nil {
		return reps[*rr%uint32(len(reps))]
	}
	if i := *rr % uint32(len(reps)+1); i > 0 {
		return reps[i-1]
	}
	return m
}

// Keyless is the node for a command that names no key yet needs a server (a keyless script,
// a transaction without keys): the same for every client, so that such a script sees one
// server. The owner of a ring's first point; the master of slot 0, else the first master.
// -1 when no node serves.
func (t *Table) Keyless() int {
	if t.Slots != nil {
		if n := t.Slots.Master(0); n >= 0 {
			return n
		}
		if masters := t.Slots.Masters(); len(masters) > 0 {
			return masters[0]
		}
		return -1
	}
	return t.Ring.Pick(nil)
}

// NoNode is the error for a request no node serves: every ring node ejected, or an uncovered
// slot. cluster names the cluster in a ring's message.
func (t *Table) NoNode(cluster string) string {
	if t.Slots != nil {
		return ErrClusterDown
	}
	return "ERR no backend node available in cluster " + cluster
}

// SameRouting reports whether t and o send every key to the same node and read replicas, in
// the same node order: a cache of t's routing stays valid under o.
func (t *Table) SameRouting(o *Table) bool {
	if !slices.Equal(t.Addrs(), o.Addrs()) || t.Cluster() != o.Cluster() {
		return false
	}
	if t.Slots == nil {
		return t.Ring.SamePlacement(o.Ring) && slices.EqualFunc(t.index().reps, o.index().reps, slices.Equal)
	}
	for s := range Slots {
		if t.Master(s) != o.Master(s) || !slices.Equal(t.ReadReplicas(s), o.ReadReplicas(s)) {
			return false
		}
	}
	return true
}
