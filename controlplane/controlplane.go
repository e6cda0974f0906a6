// Package controlplane keeps each cluster's routing table true: it joins the desired state (the
// configuration) with the observed state (node health), builds a new immutable table whenever
// either changes, and hands it to the cluster's Sink. It never touches a client connection.
package controlplane

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/controlplane/health"
	"github.com/aster-proxy/aster/controlplane/topology"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Sink receives a cluster's routing tables. The data plane implements it. Update is called
// from one goroutine at a time per cluster, with increasing versions, and must not block on
// the network.
type Sink interface {
	Update(t *route.Table) error
}

// ControlPlane runs the slow path of every configured cluster.
type ControlPlane struct {
	log      hclog.Logger
	clusters []*cluster
}

// cluster is the control plane's state of one cluster.
type cluster struct {
	cfg     config.Cluster
	sink    Sink
	hash    route.HashFunc
	log     hclog.Logger
	fetcher *topology.Fetcher // redis_cluster only

	mu      sync.Mutex // serialises rebuilds; guards the fields below
	ejected map[string]bool
	version uint64
}

// New builds and publishes the first table of every standalone cluster in cfg to its sink
// (sinks are keyed by cluster name), so that the data plane can serve as soon as New returns.
// A Redis Cluster's first slot map comes from Run's first topology fetch.
func New(cfg *config.Config, sinks map[string]Sink, logger hclog.Logger) (*ControlPlane, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cp := &ControlPlane{log: logger.Named("controlplane")}
	for _, cc := range cfg.Clusters {
		sink := sinks[cc.Name]
		if sink == nil {
			return nil, fmt.Errorf("cluster %q: no data plane sink", cc.Name)
		}
		hash, err := route.Hash(cc.HashMethod)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", cc.Name, err)
		}
		c := &cluster{
			cfg: cc, sink: sink, hash: hash, ejected: map[string]bool{},
			log: cp.log.With("cluster", cc.Name),
		}
		if cc.CacheType == config.CacheRedisCluster {
			seeds := make([]string, len(cc.Servers))
			for i, s := range cc.Servers {
				seeds[i] = s.Addr
			}
			c.fetcher = topology.New(topology.Config{
				Cluster:     cc.Name,
				Seeds:       seeds,
				Interval:    cc.Fetch,
				DialTimeout: cc.DialTimeout,
				ReadTimeout: cc.ReadTimeout,
				Logger:      cp.log,
				OnChange:    c.publishSlots,
			})
		} else if err := c.publish(); err != nil {
			return nil, err
		}
		cp.clusters = append(cp.clusters, c)
	}
	return cp, nil
}

// Hint asks for an early topology refresh of the named cluster (the data plane saw a MOVED
// or a failing node). It never blocks; hints coalesce. Standalone clusters ignore it: their
// health checker finds failing nodes by itself.
func (cp *ControlPlane) Hint(name string) {
	for _, c := range cp.clusters {
		if c.cfg.Name == name && c.fetcher != nil {
			c.fetcher.Hint()
		}
	}
}

// Run runs health checking (standalone) and topology refreshes (Redis Cluster) for every
// cluster until ctx is done.
func (cp *ControlPlane) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range cp.clusters {
		if c.fetcher != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.fetcher.Run(ctx)
			}()
			continue
		}
		if c.cfg.PingFailLimit <= 0 {
			continue
		}
		addrs := make([]string, len(c.cfg.Servers))
		for i, s := range c.cfg.Servers {
			addrs[i] = s.Addr
		}
		chk := health.New(health.Config{
			Cluster:   c.cfg.Name,
			Nodes:     addrs,
			Interval:  c.cfg.PingInterval,
			FailLimit: c.cfg.PingFailLimit,
			Logger:    cp.log,
			OnChange:  c.setEjected,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			chk.Run(ctx)
		}()
	}
	wg.Wait()
}

// setEjected records the health checker's verdict and publishes a table without those nodes.
func (c *cluster) setEjected(addrs []string) {
	c.mu.Lock()
	c.ejected = make(map[string]bool, len(addrs))
	for _, a := range addrs {
		c.ejected[a] = true
	}
	c.mu.Unlock()
	if err := c.publish(); err != nil {
		c.log.Error("publish routing table failed", "error", err)
	}
}

// publishSlots hands a new slot map over, as a new table version.
func (c *cluster) publishSlots(m *route.SlotMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	if err := c.sink.Update(&route.Table{Version: c.version, Slots: m}); err != nil {
		c.log.Error("install slot map failed", "version", c.version, "error", err)
		return
	}
	var masters []string
	for _, r := range m.Ranges() {
		if !slices.Contains(masters, r.Master.Addr) {
			masters = append(masters, r.Master.Addr)
		}
	}
	sort.Strings(masters)
	c.log.Info("slot map published", "version", c.version, "nodes", len(m.Nodes()),
		"covered_slots", m.Covered(), "masters", masters)
}

// publish builds a new table from the configuration minus the ejected nodes and hands it over.
// An ejection is a new table, never an edit of the current one.
func (c *cluster) publish() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var nodes []route.Node
	var out []string
	for _, s := range c.cfg.Servers {
		if c.ejected[s.Addr] {
			out = append(out, s.Addr)
			continue
		}
		nodes = append(nodes, route.Node{Addr: s.Addr, Name: s.Alias, Weight: s.Weight})
	}
	ring, err := route.NewRing(nodes, c.hash, c.cfg.HashTag)
	if err != nil {
		return fmt.Errorf("cluster %q: build ring: %w", c.cfg.Name, err)
	}
	c.version++
	if err := c.sink.Update(&route.Table{Version: c.version, Ring: ring}); err != nil {
		return fmt.Errorf("cluster %q: install table version %d: %w", c.cfg.Name, c.version, err)
	}
	sort.Strings(out)
	c.log.Info("routing table published", "version", c.version, "nodes", len(nodes), "ejected", out)
	return nil
}
