package controlplane

import (
	"time"

	"github.com/aster-proxy/aster/controlplane/config"
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
	Addr   string
	Alias  string
	Weight int
	Role   string
	State  string
	Reason string // why not up
	SetBy  string // who decided the state: "health", "operator" or "topology"
	Slots  [][2]uint16
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
	if c.fetcher == nil {
		for _, s := range c.cfg.Servers {
			n := NodeStatus{Addr: s.Addr, Alias: s.Alias, Weight: s.Weight, Role: RoleNode, State: StateUp}
			if why, ok := c.operator[s.Addr]; ok {
				n.State, n.Reason, n.SetBy = StateEjected, why, "operator"
			} else if why, ok := c.healthEjected[s.Addr]; ok {
				n.State, n.Reason, n.SetBy = StateEjected, why, "health"
			}
			st.Nodes = append(st.Nodes, n)
		}
		return st
	}
	if c.table == nil || c.table.Slots == nil {
		for _, s := range c.cfg.Servers {
			st.Nodes = append(st.Nodes, NodeStatus{Addr: s.Addr, Weight: 1, Role: RoleMaster,
				State: StateDown, Reason: "no slot map fetched yet", SetBy: "topology"})
		}
		return st
	}
	m := c.table.Slots
	idx := map[string]int{}
	for _, r := range m.Ranges() {
		i, ok := idx[r.Master.Addr]
		if !ok {
			i = len(st.Nodes)
			idx[r.Master.Addr] = i
			st.Nodes = append(st.Nodes, NodeStatus{Addr: r.Master.Addr, Weight: 1, Role: RoleMaster, State: StateUp, SetBy: "topology"})
		}
		st.Nodes[i].Slots = append(st.Nodes[i].Slots, [2]uint16{r.Start, r.End})
		for _, rep := range r.Replicas {
			if _, ok := idx[rep.Addr]; !ok {
				idx[rep.Addr] = len(st.Nodes)
				st.Nodes = append(st.Nodes, NodeStatus{Addr: rep.Addr, Weight: 1, Role: RoleReplica, State: StateUp, SetBy: "topology"})
			}
		}
	}
	return st
}
