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
}
