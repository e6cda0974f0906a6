package controlplane

import (
	"fmt"
	"time"

	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/controlplane/health"
)

// ClusterStatus is what an operator sees of one cluster.
type ClusterStatus struct {
	Name         string
	CacheType    config.CacheType
	ListenAddr   string
	ListenProto  string
	TableVersion uint64
	LastRefresh  time.Time
	Nodes        []NodeStatus
}

// Node roles and states, as reported.
const (
	RoleNode    = "node" // a standalone server
	RoleMaster  = "master"
	RoleReplica = "replica"

	StateUp      = "up"
	StateEjected = "ejected"
	StateDown    = "down"
)

// NodeStatus is one node of a ClusterStatus.
type NodeStatus struct {
	Addr  string
	Alias string
	// Group is the Sentinel master name of the node's group (redis_sentinel), else "".
	Group  string
	Weight int
	Role   string
	State  string
	Reason string // why not up
	SetBy  string // who decided the state: "health", "operator" or "topology"
	Slots  [][2]uint16
	// Since is when the node entered State; zero when unknown (health checks not running).
	Since time.Time
	// LastError is the last failed ping's error and LastErrorAt its time, kept after the
	// node answers again; FailedPings counts consecutive failed pings (0 while it answers).
	LastError   string
	LastErrorAt time.Time
	FailedPings int
}

// Serving reports whether the cluster has a node that can serve requests. Standalone: a
// node UP (in the ring and answering pings). Redis Cluster: a master of some slot range UP;
// replicas do not count, since they cannot take writes and one replacing a dead master shows
// as a master in the next slot map. Readiness is not lost while some node serves: a backend
// failure hits every proxy alike, and taking them all out of rotation would turn a partial
// outage into a total one.
func (s ClusterStatus) Serving() bool {
	for _, n := range s.Nodes {
		if n.State != StateUp {
			continue
		}
		switch s.CacheType {
		case config.CacheRedisCluster:
			if n.Role == RoleMaster && len(n.Slots) > 0 {
				return true
			}
		case config.CacheRedisSentinel:
			if n.Role == RoleMaster { // replicas serve no writes, as in a Redis Cluster
				return true
			}
		default:
			return true
		}
	}
	return false
}

// Clusters returns the status of every cluster, in configuration order.
func (cp *ControlPlane) Clusters() []ClusterStatus {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := make([]ClusterStatus, 0, len(cp.clusters))
	for _, c := range cp.clusters {
		out = append(out, c.statusLocked())
	}
	return out
}

// Cluster returns one cluster's status.
func (cp *ControlPlane) Cluster(name string) (ClusterStatus, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	c, err := cp.findLocked(name)
	if err != nil {
		return ClusterStatus{}, err
	}
	return c.statusLocked(), nil
}

func (c *cluster) statusLocked() ClusterStatus {
	st := ClusterStatus{
		Name: c.cfg.Name, CacheType: c.cfg.CacheType, ListenAddr: c.cfg.ListenAddr,
		ListenProto: c.cfg.ListenProto, LastRefresh: c.lastRefresh,
	}
	if c.table != nil {
		st.TableVersion = c.table.Version
	}
	var states map[string]health.NodeHealth
	if c.checker != nil {
		hs := c.checker.States()
		states = make(map[string]health.NodeHealth, len(hs))
		for _, h := range hs {
			states[h.Addr] = h
		}
	}
	if c.watcher != nil {
		c.sentinelStatusLocked(&st, states)
		return st
	}
	if c.fetcher == nil {
		for _, s := range c.cfg.Servers {
			n := NodeStatus{Addr: s.Addr, Alias: s.Alias, Weight: s.Weight, Role: RoleNode, State: StateUp}
			h, pinged := states[s.Addr]
			n.withHealth(h, pinged)
			if op, ok := c.operator[s.Addr]; ok {
				n.State, n.Reason, n.SetBy, n.Since = StateEjected, op.reason, "operator", op.since
			} else if why, ok := c.healthEjected[s.Addr]; ok {
				n.State, n.Reason, n.SetBy = StateEjected, why, "health"
				if h.LastError != "" {
					n.Reason = fmt.Sprintf("%s: %s", why, h.LastError)
				}
			}
			st.Nodes = append(st.Nodes, n)
		}
		return st
	}
	if c.table == nil || c.table.Slots == nil {
		for _, s := range c.cfg.Servers {
			n := NodeStatus{Addr: s.Addr, Weight: 1, Role: RoleMaster}
			h, pinged := states[s.Addr]
			n.withHealth(h, pinged)
			n.State, n.Reason, n.SetBy = StateDown, "no slot map fetched yet", "topology"
			st.Nodes = append(st.Nodes, n)
		}
		return st
	}
	m := c.table.Slots
	idx := map[string]int{}
	add := func(addr, role string) int {
		i, ok := idx[addr]
		if !ok {
			i = len(st.Nodes)
			idx[addr] = i
			n := NodeStatus{Addr: addr, Weight: 1, Role: role, State: StateUp, SetBy: "topology"}
			h, pinged := states[addr]
			n.withHealth(h, pinged)
			st.Nodes = append(st.Nodes, n)
		}
		return i
	}
	for _, r := range m.Ranges() {
		i := add(r.Master.Addr, RoleMaster)
		st.Nodes[i].Slots = append(st.Nodes[i].Slots, [2]uint16{r.Start, r.End})
		for _, rep := range r.Replicas {
			add(rep.Addr, RoleReplica)
		}
	}
	return st
}

// withHealth fills n from the health checker's view of the node: since-when and last error
// always, and DOWN (set by health) while its pings fail. Ejections are the caller's: the ring
// follows the control plane's ejected set, not the checker's latest word.
func (n *NodeStatus) withHealth(h health.NodeHealth, pinged bool) {
	if !pinged {
		return
	}
	n.Since, n.LastError, n.LastErrorAt, n.FailedPings = h.Since, h.LastError, h.LastErrorAt, h.Fails
	if h.State != health.Up {
		n.State, n.Reason, n.SetBy = StateDown, h.LastError, "health"
	}
}
