package controlplane

import (
	"fmt"
	"slices"
	"time"

	"github.com/aster-proxy/aster/controlplane/health"
	"github.com/aster-proxy/aster/controlplane/sentinel"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Sentinel mode: a ring exactly as a standalone cluster's, whose nodes are Sentinel-managed
// groups. Each ring node is named by its group's alias (else master name) and its address is
// the group's current master, so a failover changes an address and moves no key. The table
// is published once every group has a master a quorum of sentinels agrees on; until then the
// cluster serves the table it had (none at start, the previous one after a reload).

// newWatcher makes c's Sentinel watcher and, when every group's master is known already (a
// reload carries the groups of the cluster it replaces), its first table. cp.mu must be held.
func (cp *ControlPlane) newWatcher(c *cluster) error {
	cc := c.cfg
	masters := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		masters[i] = s.Master
	}
	var initial []sentinel.Group
	if prev, err := cp.findLocked(cc.Name); err == nil && prev.watcher != nil && slices.Equal(prev.cfg.Sentinels, cc.Sentinels) {
		initial = prev.groups
	}
	var user, pass string
	if a := cc.SentinelAuth; a != nil {
		user, pass = a.Username, a.Password
	}
	c.watcher = sentinel.New(sentinel.Config{
		Cluster: cc.Name, Sentinels: cc.Sentinels, Masters: masters, Username: user, Password: pass,
		DialTimeout: cc.DialTimeout, ReadTimeout: cc.ReadTimeout, PollInterval: cc.SentinelPollInterval,
		Initial: initial, Logger: cp.log,
		OnChange: func(gs []sentinel.Group) { cp.sentinelChanged(c, gs) },
	})
	c.groups = c.watcher.Groups()
	if len(unresolved(c.groups)) > 0 {
		return nil
	}
	cp.version++
	return c.buildRing(cp.version)
}

// unresolved names the groups without a master.
func unresolved(gs []sentinel.Group) []string {
	var out []string
	for _, g := range gs {
		if g.Master == "" {
			out = append(out, g.Name)
		}
	}
	return out
}

// buildSentinelRing makes c's ring over its groups' current masters, with their replicas as
// the nodes' read replicas when read_from_slave is on.
func (c *cluster) buildSentinelRing(version uint64) error {
	nodes := make([]route.Node, 0, len(c.cfg.Servers))
	var replicas [][]string
	for i, s := range c.cfg.Servers {
		g := c.groups[i]
		if g.Master == "" {
			return fmt.Errorf("cluster %q: build ring: group %q has no master yet", c.cfg.Name, g.Name)
		}
		nodes = append(nodes, route.Node{Addr: g.Master, Name: s.Key(), Weight: s.Weight})
		if c.cfg.ReadFromSlave {
			replicas = append(replicas, slices.Clone(g.Replicas))
		}
	}
	ring, err := route.NewRing(nodes, c.hash, c.cfg.HashTag)
	if err != nil {
		return fmt.Errorf("cluster %q: build ring: %w", c.cfg.Name, err)
	}
	c.table = &route.Table{Version: version, Ring: ring, Replicas: replicas}
	c.lastRefresh = time.Now()
	return nil
}

// sentinelChanged takes the groups c's watcher resolved and publishes a new table when what
// routes changed: a master, or a replica with read_from_slave.
func (cp *ControlPlane) sentinelChanged(c *cluster, gs []sentinel.Group) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.currentLocked(c) {
		return
	}
	prev := c.groups
	routing := len(prev) != len(gs)
	for i, g := range gs {
		if routing {
			break
		}
		p := prev[i]
		if p.Master != g.Master {
			routing = true
			if p.Master != "" {
				if m, ok := cp.metrics.(SentinelMetrics); ok {
					m.SentinelSwitched(c.cfg.Name, g.Name)
				}
			}
		}
		if c.cfg.ReadFromSlave && !slices.Equal(p.Replicas, g.Replicas) {
			routing = true
		}
	}
	c.groups = gs
	if c.checker != nil {
		c.checker.SetNodes(c.sentinelNodes())
	}
	if !routing && c.table != nil {
		return
	}
	if missing := unresolved(gs); len(missing) > 0 {
		c.log.Warn("routing table not published: groups without a master", "groups", missing)
		return
	}
	cp.version++
	if err := c.buildRing(cp.version); err != nil {
		c.log.Error("build ring failed", "error", err)
		return
	}
	masters := make([]string, len(gs))
	for i, g := range gs {
		masters[i] = g.Name + "=" + g.Master
	}
	c.log.Info("routing table published", "version", cp.version, "masters", masters)
	if err := cp.publishLocked(); err != nil {
		c.log.Error("publish failed", "error", err)
	}
}

// sentinelNodes are the nodes of c's groups to ping: masters and replicas.
func (c *cluster) sentinelNodes() []string {
	var out []string
	for _, g := range c.groups {
		if g.Master != "" {
			out = append(out, g.Master)
		}
		out = append(out, g.Replicas...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sentinelStatusLocked lists each group of c: its master (State DOWN with a reason while no
// quorum named one), then its replicas, all with Group set. states are the health checker's.
func (c *cluster) sentinelStatusLocked(st *ClusterStatus, states map[string]health.NodeHealth) {
	for i, s := range c.cfg.Servers {
		g := sentinel.Group{Name: s.Master}
		if i < len(c.groups) {
			g = c.groups[i]
		}
		n := NodeStatus{Addr: g.Master, Alias: s.Alias, Group: s.Master, Weight: s.Weight, Role: RoleMaster,
			State: StateUp, SetBy: "sentinel"}
		if g.Master == "" {
			n.State, n.Reason = StateDown, "no quorum of sentinels has named a master yet"
		} else {
			h, pinged := states[g.Master]
			n.withHealth(h, pinged)
			if n.State == StateUp {
				n.Since = g.Since // since when this master serves the group
			}
		}
		st.Nodes = append(st.Nodes, n)
		for _, r := range g.Replicas {
			rn := NodeStatus{Addr: r, Alias: s.Alias, Group: s.Master, Weight: s.Weight, Role: RoleReplica,
				State: StateUp, SetBy: "sentinel"}
			h, pinged := states[r]
			rn.withHealth(h, pinged)
			st.Nodes = append(st.Nodes, rn)
		}
	}
}
