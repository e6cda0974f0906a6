// Package fdlimit sizes asterd to its open-file limit, as Redis's adjustOpenFilesLimit does:
// Raise lifts the soft RLIMIT_NOFILE towards what the clusters need (never past the hard
// limit), and Plan splits what the limit allows among the clusters, so that one cluster's
// flood of clients is refused at its own share ("-ERR max number of clients reached") and
// never takes the descriptors another cluster's clients or any backend connection needs.
//
// A cluster's share counts its client connections and the backend connections its clients
// hold for themselves (blocking commands, transactions, subscriptions: one per node each,
// idle pooled ones too), one descriptor each.
package fdlimit

import (
	"math"
	"sort"
)

// Reserved is what the process needs besides clusters: stdio, the Go runtime's poller, the
// admin API and metrics listeners and their connections, config and certificate reads.
// Redis reserves 32 (CONFIG_MIN_RESERVED_FDS); asterd serves more besides its clients.
const Reserved = 64

// PerClient is the descriptors a cluster wants per client of its max_connections: the
// client's own and one backend connection it may hold for itself (a blocking command, a
// transaction, a subscription), so that max_connections such clients fit when the limit
// allows.
const PerClient = 2

// perNodeExtra are descriptors per backend node beyond its shared connections: the health
// checker's ping connection and a topology fetch or redial in progress.
const perNodeExtra = 2

// Demand is what one cluster asks of the open-file limit.
type Demand struct {
	// MaxClients is the cluster's max_connections; 0 means it sets no bound of its own and
	// takes whatever share the limit leaves it.
	MaxClients int
	// Nodes is the number of backend nodes the cluster routes to; NodeConnections the shared
	// connections to each.
	Nodes, NodeConnections int
	// Loops is the number of client event loops (each an epoll and an eventfd descriptor).
	Loops int
}

// backend is the descriptors d needs whatever its clients do: its listener, its event loops,
// its shared backend connections and their health checks.
func (d Demand) backend() int {
	return 1 + 2*max(d.Loops, 0) + max(d.Nodes, 0)*(max(d.NodeConnections, 0)+perNodeExtra)
}

// Need is the open-file limit at which every cluster can have its MaxClients clients, each
// holding one backend connection of its own (PerClient), besides everything else; clusters
// with no bound count as wanting none (their share is what is left).
func Need(ds []Demand) uint64 {
	n := uint64(Reserved)
	for _, d := range ds {
		n += uint64(d.backend()) + PerClient*uint64(max(d.MaxClients, 0))
	}
	return n
}

// Plan returns each cluster's share of an open-file limit of limit: the descriptors its
// clients may hold, their own connections and the backend connections they hold for
// themselves. A cluster wants PerClient×MaxClients; it gets that when every cluster's fits,
// else a max-min fair share of what the reserve and the backends leave (a cluster that wants
// less than an equal share keeps what it wants, the rest is split evenly among the others),
// never less than 1. A cluster with MaxClients 0 gets its share too: under a finite limit
// nothing is unbounded. limit 0 means no limit is known: the shares are the MaxClients
// (0: none), which then bound clients only.
func Plan(limit uint64, ds []Demand) []int {
	eff := make([]int, len(ds))
	if limit == 0 {
		for i, d := range ds {
			eff[i] = max(d.MaxClients, 0)
		}
		return eff
	}
	// What clients may have once the reserve and every backend are provided for.
	avail := int64(min(limit, math.MaxInt32)) - Reserved
	for _, d := range ds {
		avail -= int64(d.backend())
	}
	want := func(d Demand) int64 {
		if d.MaxClients <= 0 {
			return math.MaxInt64
		}
		return PerClient * int64(d.MaxClients)
	}
	// Water-filling: smallest wants first, each takes at most an equal share of what remains.
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return want(ds[order[a]]) < want(ds[order[b]]) })
	left := max(avail, 0)
	for k, i := range order {
		share := left / int64(len(order)-k)
		got := min(want(ds[i]), share)
		left -= got
		eff[i] = int(max(got, 1))
	}
	return eff
}
