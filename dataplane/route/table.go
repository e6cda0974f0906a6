package route

// Table is one immutable routing snapshot of a cluster, as the control plane publishes it and
// the data plane swaps it in whole. A newer snapshot has a higher Version.
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
}
