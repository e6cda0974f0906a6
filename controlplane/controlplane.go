// Package controlplane keeps the data plane's routing true: it joins the desired state (the
// configuration, reloadable) with the observed state (node health, Redis Cluster topology) and
// operators' decisions (eject, restore), builds new immutable tables whenever any of them
// changes, and hands the whole snapshot to its Sink. It never touches a client connection.
//
// Concurrency: a ControlPlane's methods are safe for concurrent use (the admin API, SIGHUP
// reloads and the data plane's hints call them from their own goroutines). One mutex
// serialises every change; each cluster's watchers (health, topology, sentinel) run on
// goroutines of their own that Run starts, and report back under that mutex. The Sink gets one
// Apply at a time, with increasing versions; the snapshots it gets are immutable.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/controlplane/health"
	"github.com/aster-proxy/aster/controlplane/sentinel"
	"github.com/aster-proxy/aster/controlplane/topology"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Sink receives snapshots: the in-process data plane, or the stream to a remote one. Apply is
// called with increasing versions, one call at a time, and must not block on the network.
type Sink interface {
	Apply(s *route.Snapshot) error
}

// Metrics receives the control plane's events so that they can be counted. Its methods are
// called with the control plane's lock held, on whichever goroutine made the change: they must
// be quick, must not block and must not call back into the ControlPlane. State (which nodes
// are up, each table's version) is not pushed here: read it with Clusters when needed.
type Metrics interface {
	// NodeEjected is called once each time a node of a standalone cluster leaves the ring;
	// reason is EjectedByHealth or EjectedByOperator.
	NodeEjected(cluster, node, reason string)
	// TopologyRefreshed is called for each Redis Cluster topology refresh: result is
	// RefreshChanged (a new slot map was published), RefreshUnchanged or RefreshFailed (then
	// from the topology watch's goroutine, without the lock).
	TopologyRefreshed(cluster, result string)
}

// SentinelMetrics is what a Metrics may add for Sentinel mode: SentinelSwitched is called once
// each time a group's master is replaced by another (not when it is first resolved), under the
// same rules as Metrics' methods.
type SentinelMetrics interface {
	SentinelSwitched(cluster, group string)
}

// Reasons passed to Metrics.NodeEjected, and results passed to Metrics.TopologyRefreshed.
const (
	EjectedByHealth   = "health"
	EjectedByOperator = "operator"
	// RefreshChanged: a fetched slot map differed from the last one and was published;
	// RefreshUnchanged: the watch found the same map; RefreshFailed: no node answered.
	RefreshChanged   = topology.RefreshChanged
	RefreshUnchanged = topology.RefreshUnchanged
	RefreshFailed    = topology.RefreshFailed
)

// Option configures New.
type Option func(*ControlPlane)

// WithMetrics makes the control plane report its events to m.
func WithMetrics(m Metrics) Option {
	return func(cp *ControlPlane) { cp.metrics = m }
}

// noMetrics is the default Metrics: it counts nothing.
type noMetrics struct{}

func (noMetrics) NodeEjected(string, string, string) {}
func (noMetrics) TopologyRefreshed(string, string)   {}

// Errors that callers (the admin API) map to their own codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalid      = errors.New("invalid")
	ErrUnsupported  = errors.New("not supported")
	ErrReloadFailed = errors.New("reload failed")
)

// ControlPlane runs the slow path of every configured cluster. Its methods are safe for
// concurrent use; every change is serialised by one mutex and published as a new snapshot.
type ControlPlane struct {
	log     hclog.Logger
	sink    Sink
	metrics Metrics

	mu       sync.Mutex
	cfg      *config.Config
	clusters []*cluster // in config order
	version  uint64     // of the last snapshot and of the newest table in it
	runCtx   context.Context
	wg       sync.WaitGroup
	snapshot *route.Snapshot
	watchers map[chan struct{}]struct{}

	// fetchers is a copy of the Redis Cluster fetchers and Sentinel watchers by cluster name,
	// replaced whenever the clusters change, so that Hint, called from the data plane, never
	// waits for cp.mu.
	fetchers atomic.Pointer[map[string]hinter]
}

// hinter is what Hint reaches: a topology fetcher or a Sentinel watcher.
type hinter interface{ Hint() }

// cluster is the control plane's state of one cluster.
type cluster struct {
	cfg     config.Cluster
	hash    route.HashFunc
	log     hclog.Logger
	fetcher *topology.Fetcher // redis_cluster only
	watcher *sentinel.Watcher // redis_sentinel only
	cancel  context.CancelFunc

	// guarded by ControlPlane.mu
	healthEjected map[string]string   // addr → why, from the health checker
	operator      map[string]ejection // addr → why and since when, from an operator: holds until restored
	table         *route.Table
	lastRefresh   time.Time
	groups        []sentinel.Group // redis_sentinel: as last resolved, in Servers order

	// checker pings every node (standalone: the servers; redis_cluster: the slot map's
	// masters and replicas) while Run runs; nil before. prevHealth are the states of the
	// checker of the cluster this one replaces (a reload), handed to its own checker.
	checker    *health.Checker
	prevHealth []health.NodeHealth
}

// New builds the first snapshot from cfg and hands it to sink, so that the data plane can
// serve as soon as New returns (a Redis Cluster's slot map follows from Run's first fetch).
func New(cfg *config.Config, sink Sink, logger hclog.Logger, opts ...Option) (*ControlPlane, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cp := &ControlPlane{log: logger.Named("controlplane"), sink: sink, metrics: noMetrics{}, watchers: map[chan struct{}]struct{}{}}
	for _, o := range opts {
		o(cp)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.cfg = cfg
	for _, cc := range cfg.Clusters {
		c, err := cp.newCluster(cc)
		if err != nil {
			return nil, err
		}
		cp.clusters = append(cp.clusters, c)
	}
	if err := cp.publishLocked(); err != nil {
		return nil, err
	}
	cp.log.Info("configuration loaded", "clusters", len(cfg.Clusters))
	for _, cc := range cfg.Clusters {
		logClusterSummary(cp.log, cc)
	}
	return cp, nil
}

func (cp *ControlPlane) newCluster(cc config.Cluster) (*cluster, error) {
	hash, err := route.Hash(cc.HashMethod)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cc.Name, err)
	}
	c := &cluster{
		cfg: cc, hash: hash, log: cp.log.With("cluster", cc.Name),
		healthEjected: map[string]string{}, operator: map[string]ejection{},
	}
	if prev, err := cp.findLocked(cc.Name); err == nil && prev.checker != nil {
		c.prevHealth = prev.checker.States() // a reload: node states outlive the rebuild
	}
	if cc.CacheType == config.CacheRedisCluster {
		seeds := make([]string, len(cc.Servers))
		for i, s := range cc.Servers {
			seeds[i] = s.Addr
		}
		user, pass := backendCredentials(cc)
		c.fetcher = topology.New(topology.Config{
			Cluster: cc.Name, Seeds: seeds, Interval: cc.Fetch,
			DialTimeout: cc.DialTimeout, ReadTimeout: cc.ReadTimeout, Logger: cp.log,
			Username: user, Password: pass, TLS: backendTLS(cc),
			OnChange: func(m *route.SlotMap) { cp.slotsChanged(c, m) },
			// A change is counted where it is published (slotsChanged); the watch's other
			// results here.
			OnRefresh: func(result string) {
				if result != topology.RefreshChanged {
					cp.metrics.TopologyRefreshed(cc.Name, result)
				}
			},
		})
		return c, nil
	}
	if cc.CacheType == config.CacheRedisSentinel {
		if err := cp.newWatcher(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	cp.version++
	if err := c.buildRing(cp.version); err != nil {
		return nil, err
	}
	return c, nil
}

// buildRing makes the cluster's ring from its servers minus the ejected ones, as a new table:
// an ejection is a new table, never an edit of the current one.
func (c *cluster) buildRing(version uint64) error {
	if c.watcher != nil {
		return c.buildSentinelRing(version)
	}
	var nodes []route.Node
	for _, s := range c.cfg.Servers {
		if _, out := c.healthEjected[s.Addr]; out {
			continue
		}
		if _, out := c.operator[s.Addr]; out {
			continue
		}
		nodes = append(nodes, route.Node{Addr: s.Addr, Name: s.Alias, Weight: s.Weight})
	}
	ring, err := route.NewRing(nodes, c.hash, c.cfg.HashTag)
	if err != nil {
		return fmt.Errorf("cluster %q: build ring: %w", c.cfg.Name, err)
	}
	c.table = &route.Table{Version: version, Ring: ring}
	c.lastRefresh = time.Now()
	return nil
}

// publishLocked hands the current state to the sink as a new snapshot. Only a snapshot the
// sink took becomes the current one (what Snapshot returns to remote data planes, and the
// fetchers hints reach): a refused one changed nothing there either. cp.mu must be held.
func (cp *ControlPlane) publishLocked() error {
	cp.version++
	snap := &route.Snapshot{Version: cp.version}
	for _, c := range cp.clusters {
		snap.Clusters = append(snap.Clusters, c.spec())
	}
	if err := cp.sink.Apply(snap); err != nil {
		return fmt.Errorf("apply snapshot version %d: %w", snap.Version, err)
	}
	fetchers := map[string]hinter{}
	for _, c := range cp.clusters {
		if c.fetcher != nil {
			fetchers[c.cfg.Name] = c.fetcher
		}
		if c.watcher != nil {
			fetchers[c.cfg.Name] = c.watcher
		}
	}
	cp.fetchers.Store(&fetchers)
	cp.snapshot = snap
	for w := range cp.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	return nil
}

// spec is what the data plane serves of c: its settings and current table. It is the one
// place a configuration key becomes a data-plane setting.
func (c *cluster) spec() route.ClusterSpec {
	cc := c.cfg
	rc := cc.CacheType == config.CacheRedisCluster
	spec := route.ClusterSpec{
		Name:   cc.Name,
		Listen: route.ListenSettings{Proto: cc.ListenProto, Addr: cc.ListenAddr},
		Access: route.AccessSettings{
			Users: clientUsers(cc), UserRights: clientRights(cc),
			MaxConnections: cc.MaxConnections, IdleTimeout: cc.ClientIdleTimeout,
			ClientOutputLimit: cc.ClientOutputLimit,
			TLSCertFile:       cc.TLSCertFile, TLSKeyFile: cc.TLSKeyFile, TLSCAFile: cc.TLSCAFile,
		},
		Backend: route.BackendSettings{
			ReadTimeout: cc.ReadTimeout, WriteTimeout: cc.WriteTimeout, DialTimeout: cc.DialTimeout,
			NodeConnections: cc.NodeConnections, ReadFromSlave: cc.ReadFromSlave && rc,
			BackendRESP3: cc.BackendRespVersion == "resp3",
			BackendTLS:   cc.BackendTLS, BackendTLSCAFile: cc.BackendTLSCAFile, BackendTLSServerName: cc.BackendTLSServerName,
		},
		Live: route.LiveSettings{Hotkey: route.HotkeySpec{
			SampleEvery: cc.HotkeySampleEvery, Width: cc.HotkeySketchWidth, Depth: cc.HotkeySketchDepth,
			Capacity: cc.HotkeyCapacity, Decay: cc.HotkeyDecay,
		}},
		Table: c.table,
	}
	spec.Backend.BackendUser, spec.Backend.BackendPassword = backendCredentials(cc)
	if cc.SlowlogLogSlowerThan >= 0 {
		spec.Live.SlowLogMaxLen, spec.Live.SlowLogSlowerThan = cc.SlowlogMaxLen, cc.SlowlogLogSlowerThan
	}
	spec.Live.ClientCache = route.ClientCacheSpec{Enabled: cc.ClientCache.Enabled, MaxEntries: cc.ClientCache.MaxEntries,
		MaxValueBytes: cc.ClientCache.MaxValueBytes, ShardCount: cc.ClientCache.ShardCount, HotOnly: cc.ClientCache.HotOnly,
		MaxMemory: cc.ClientCache.MaxMemory}
	if rc {
		b := cc.BackupRequest
		spec.Live.BackupRequest = route.BackupRequest{Enabled: b.Enabled, TriggerSlow: b.TriggerSlow, Multiplier: b.Multiplier}
	}
	return spec
}

// changedGroups names what differs between two configurations of one cluster: the data
// plane's groups (route.Changed: listen, access, backend, live), "routing" (servers, hashing,
// cache type), "health" (pings, topology fetch) and "other" for the rest.
func changedGroups(prev, next *cluster) []string {
	groups := route.Changed(prev.spec(), next.spec())
	a, b := prev.cfg, next.cfg
	if a.CacheType != b.CacheType || !slices.Equal(a.Servers, b.Servers) || a.HashTag != b.HashTag ||
		a.HashMethod != b.HashMethod || a.HashDistribution != b.HashDistribution ||
		!slices.Equal(a.Sentinels, b.Sentinels) || !reflect.DeepEqual(a.SentinelAuth, b.SentinelAuth) ||
		a.ReadFromSlave != b.ReadFromSlave && b.CacheType == config.CacheRedisSentinel {
		groups = append(groups, "routing")
	}
	if a.PingFailLimit != b.PingFailLimit || a.PingInterval != b.PingInterval ||
		a.PingSuccInterval != b.PingSuccInterval || a.Fetch != b.Fetch || a.SentinelPollInterval != b.SentinelPollInterval {
		groups = append(groups, "health")
	}
	if len(groups) == 0 {
		groups = append(groups, "other")
	}
	return groups
}

// Snapshot returns the latest snapshot and a channel that receives when a newer one exists;
// stop releases the channel. For remote data planes.
func (cp *ControlPlane) Snapshot() (snap *route.Snapshot, changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.watchers[ch] = struct{}{}
	return cp.snapshot, ch, func() {
		cp.mu.Lock()
		delete(cp.watchers, ch)
		cp.mu.Unlock()
	}
}

// Hint asks for an early topology refresh of the named cluster (the data plane saw a MOVED or
// a failing node). It never blocks; hints coalesce. Standalone clusters ignore it: their health
// checker finds failing nodes by itself.
func (cp *ControlPlane) Hint(name string) {
	if m := cp.fetchers.Load(); m != nil {
		if f := (*m)[name]; f != nil {
			f.Hint()
		}
	}
}

// Run runs health checking (standalone) and topology refreshes (Redis Cluster) for every
// cluster until ctx is done; clusters added by a reload start theirs too.
func (cp *ControlPlane) Run(ctx context.Context) {
	cp.mu.Lock()
	cp.runCtx = ctx
	for _, c := range cp.clusters {
		cp.startLocked(c)
	}
	cp.mu.Unlock()
	<-ctx.Done()
	cp.wg.Wait()
}

// startLocked starts c's background loops when Run is running. cp.mu must be held.
func (cp *ControlPlane) startLocked(c *cluster) {
	if cp.runCtx == nil || c.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(cp.runCtx)
	c.cancel = cancel
	if c.fetcher != nil {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			c.fetcher.Run(ctx)
		}()
	}
	if c.watcher != nil {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			c.watcher.Run(ctx)
		}()
	}
	cp.startHealthLocked(ctx, c)
}

// startHealthLocked starts the pings of every node of c, whatever ping_fail_limit says: it
// decides only whether a DOWN node leaves the ring. A Redis Cluster's nodes are never ejected
// (the cluster's own failover decides who serves); their set follows the slot map. cp.mu must
// be held.
func (cp *ControlPlane) startHealthLocked(ctx context.Context, c *cluster) {
	user, pass := backendCredentials(c.cfg)
	hc := health.Config{
		Cluster: c.cfg.Name, Interval: c.cfg.PingInterval, SuccInterval: c.cfg.PingSuccInterval,
		Logger: cp.log, Username: user, Password: pass, TLS: backendTLS(c.cfg),
		Previous: c.prevHealth,
	}
	if c.fetcher != nil {
		hc.Nodes = c.topologyNodes()
		// A node that stops answering is worth a fresh look at the topology at once: it may be
		// a master about to be replaced. Hints coalesce and never block.
		hc.OnState = func(h health.NodeHealth) {
			if h.State != health.Up {
				c.fetcher.Hint()
			}
		}
	} else if c.watcher != nil {
		// As for a Redis Cluster: pings only say how nodes are; Sentinel decides who serves,
		// and a group is never ejected (its keys would move to the other groups).
		hc.Nodes = c.sentinelNodes()
		hc.OnState = func(h health.NodeHealth) {
			if h.State != health.Up {
				c.watcher.Hint()
			}
		}
	} else {
		for _, s := range c.cfg.Servers {
			hc.Nodes = append(hc.Nodes, s.Addr)
		}
		hc.FailLimit = c.cfg.PingFailLimit
		for a := range c.healthEjected {
			hc.Ejected = append(hc.Ejected, a)
		}
		hc.OnChange = func(ejected []string) { cp.healthChanged(c, ejected) }
	}
	chk := health.New(hc)
	c.checker, c.prevHealth = chk, nil
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		chk.Run(ctx)
	}()
}

// topologyNodes are the nodes of a Redis Cluster to ping: every master and replica of the
// slot map in force, or the seeds while there is none.
func (c *cluster) topologyNodes() []string {
	var addrs []string
	if c.table != nil && c.table.Slots != nil {
		for _, n := range c.table.Slots.Nodes() {
			addrs = append(addrs, n.Addr)
		}
		return addrs
	}
	for _, s := range c.cfg.Servers {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// stopLocked ends c's background loops. cp.mu must be held.
func (cp *ControlPlane) stopLocked(c *cluster) {
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
}

// current reports whether c is still one of the configured clusters (a reload may have
// replaced it while its goroutines were finishing). cp.mu must be held.
func (cp *ControlPlane) currentLocked(c *cluster) bool {
	return slices.Contains(cp.clusters, c)
}

func (cp *ControlPlane) healthChanged(c *cluster, ejected []string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.currentLocked(c) {
		return
	}
	prev := c.healthEjected
	c.healthEjected = make(map[string]string, len(ejected))
	for _, a := range ejected {
		c.healthEjected[a] = fmt.Sprintf("failed %d pings in a row", c.cfg.PingFailLimit)
		if _, was := prev[a]; !was {
			cp.metrics.NodeEjected(c.cfg.Name, a, EjectedByHealth)
		}
	}
	cp.rebuildLocked(c)
}

func (cp *ControlPlane) slotsChanged(c *cluster, m *route.SlotMap) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.currentLocked(c) {
		return
	}
	cp.version++
	c.table = &route.Table{Version: cp.version, Slots: m}
	c.lastRefresh = time.Now()
	if c.checker != nil {
		c.checker.SetNodes(c.topologyNodes())
	}
	var masters []string
	for _, r := range m.Ranges() {
		if !slices.Contains(masters, r.Master.Addr) {
			masters = append(masters, r.Master.Addr)
		}
	}
	sort.Strings(masters)
	cp.metrics.TopologyRefreshed(c.cfg.Name, RefreshChanged)
	c.log.Info("slot map published", "version", cp.version, "nodes", len(m.Nodes()),
		"covered_slots", m.Covered(), "masters", masters)
	if err := cp.publishLocked(); err != nil {
		c.log.Error("publish failed", "error", err)
	}
}

// rebuildLocked builds c's ring anew and publishes. cp.mu must be held.
func (cp *ControlPlane) rebuildLocked(c *cluster) {
	cp.version++
	if err := c.buildRing(cp.version); err != nil {
		c.log.Error("rebuild ring failed", "error", err)
		return
	}
	var out []string
	for a := range c.healthEjected {
		out = append(out, a)
	}
	for a := range c.operator {
		out = append(out, a)
	}
	sort.Strings(out)
	c.log.Info("routing table published", "version", cp.version, "nodes", len(c.table.Ring.Nodes()), "ejected", out)
	if err := cp.publishLocked(); err != nil {
		c.log.Error("publish failed", "error", err)
	}
}

func (cp *ControlPlane) findLocked(name string) (*cluster, error) {
	for _, c := range cp.clusters {
		if c.cfg.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
}

// ejection is an operator's eject of a node: why, and since when.
type ejection struct {
	reason string
	since  time.Time
}

// nodeAddr resolves an alias or host:port of c's servers to the address.
func (c *cluster) nodeAddr(node string) (string, error) {
	for _, s := range c.cfg.Servers {
		if s.Addr == node || (s.Alias != "" && s.Alias == node) {
			return s.Addr, nil
		}
	}
	return "", fmt.Errorf("cluster %q: node %q: %w", c.cfg.Name, node, ErrNotFound)
}

// Eject takes a node of a standalone cluster out of the ring until Restore, whatever its
// health checks say.
func (cp *ControlPlane) Eject(clusterName, node, reason string) (NodeStatus, error) {
	return cp.setOperator(clusterName, node, func(c *cluster, addr string) {
		if reason == "" {
			reason = "ejected by operator"
		}
		since := time.Now()
		if prev, already := c.operator[addr]; !already {
			cp.metrics.NodeEjected(c.cfg.Name, addr, EjectedByOperator)
		} else {
			since = prev.since
		}
		c.operator[addr] = ejection{reason: reason, since: since}
		c.log.Warn("node ejected by operator", "node", addr, "reason", reason)
	})
}

// Restore undoes an operator's Eject. A node that health checks eject stays out until it
// answers again.
func (cp *ControlPlane) Restore(clusterName, node string) (NodeStatus, error) {
	return cp.setOperator(clusterName, node, func(c *cluster, addr string) {
		delete(c.operator, addr)
		c.log.Info("node restored by operator", "node", addr)
	})
}

func (cp *ControlPlane) setOperator(clusterName, node string, change func(*cluster, string)) (NodeStatus, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	c, err := cp.findLocked(clusterName)
	if err != nil {
		return NodeStatus{}, err
	}
	if c.fetcher != nil {
		return NodeStatus{}, fmt.Errorf("cluster %q is a Redis Cluster: its nodes follow the cluster's own failover: %w", clusterName, ErrUnsupported)
	}
	if c.watcher != nil {
		return NodeStatus{}, fmt.Errorf("cluster %q is Sentinel-managed: its masters follow Sentinel's failover: %w", clusterName, ErrUnsupported)
	}
	addr, err := c.nodeAddr(node)
	if err != nil {
		return NodeStatus{}, err
	}
	change(c, addr)
	cp.rebuildLocked(c)
	for _, n := range c.statusLocked().Nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return NodeStatus{}, fmt.Errorf("node %q vanished: %w", node, ErrNotFound)
}

// ReloadResult says what a reload changed, by cluster name.
type ReloadResult struct {
	Added, Removed, Changed, Unchanged []string
	Version                            uint64
}

// Reload replaces the configuration with cfg (already validated), all or nothing: the new
// state is built aside and handed to the sink as one snapshot; only when the sink took it do
// new clusters start, removed ones stop and changed ones replace theirs. When the sink
// refuses it (a listener that cannot open), every cluster stays as it was, here and in the
// data plane, and the error says why. Unchanged clusters keep their state and their clients;
// a changed one is logged once with the groups of settings that changed. Operator ejections
// of nodes still configured survive a change.
func (cp *ControlPlane) Reload(cfg *config.Config) (ReloadResult, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var res ReloadResult
	old := map[string]*cluster{}
	for _, c := range cp.clusters {
		old[c.cfg.Name] = c
	}
	next := make([]*cluster, 0, len(cfg.Clusters))
	var started, stopped []*cluster
	groups := map[string][]string{}
	for _, cc := range cfg.Clusters {
		if prev := old[cc.Name]; prev != nil {
			delete(old, cc.Name)
			if reflect.DeepEqual(prev.cfg, cc) {
				res.Unchanged = append(res.Unchanged, cc.Name)
				next = append(next, prev)
				continue
			}
			c, err := cp.newCluster(cc)
			if err != nil {
				return ReloadResult{}, fmt.Errorf("%w: %w", ErrReloadFailed, err)
			}
			for addr, why := range prev.operator {
				if _, err := c.nodeAddr(addr); err == nil {
					c.operator[addr] = why
				}
			}
			// Nodes the health checker had ejected stay out (its successor starts with them
			// ejected) rather than taking traffic until ping_fail_limit more pings fail. Not
			// when health checking is now off: nothing would ever restore them.
			if c.fetcher == nil && c.watcher == nil && cc.PingFailLimit > 0 {
				for addr, why := range prev.healthEjected {
					if _, err := c.nodeAddr(addr); err == nil {
						c.healthEjected[addr] = why
					}
				}
			}
			if c.fetcher == nil && c.watcher == nil && len(c.operator)+len(c.healthEjected) > 0 {
				if err := c.buildRing(c.table.Version); err != nil {
					return ReloadResult{}, fmt.Errorf("%w: %w", ErrReloadFailed, err)
				}
			} else if c.fetcher != nil || c.watcher != nil && c.table == nil {
				// Keep routing by the old map (ring) until the new fetcher's first (until
				// every group, a new one too, has a master).
				c.table = prev.table
			}
			groups[cc.Name] = changedGroups(prev, c)
			res.Changed = append(res.Changed, cc.Name)
			next = append(next, c)
			started, stopped = append(started, c), append(stopped, prev)
			continue
		}
		c, err := cp.newCluster(cc)
		if err != nil {
			return ReloadResult{}, fmt.Errorf("%w: %w", ErrReloadFailed, err)
		}
		res.Added = append(res.Added, cc.Name)
		next = append(next, c)
		started = append(started, c)
	}
	for name, c := range old {
		stopped = append(stopped, c)
		res.Removed = append(res.Removed, name)
	}
	sort.Strings(res.Removed)
	if len(res.Added)+len(res.Removed)+len(res.Changed) == 0 {
		cp.cfg = cfg // equal clusters; [admin] and [metrics] are read at start only
		res.Version = cp.version
		cp.log.Info("configuration unchanged", "clusters", len(res.Unchanged))
		return res, nil
	}
	prevCfg, prevClusters := cp.cfg, cp.clusters
	cp.cfg, cp.clusters = cfg, next
	if err := cp.publishLocked(); err != nil {
		cp.cfg, cp.clusters = prevCfg, prevClusters
		return ReloadResult{}, fmt.Errorf("%w: %w", ErrReloadFailed, err)
	}
	for _, c := range stopped {
		cp.stopLocked(c)
	}
	for _, c := range started {
		cp.startLocked(c)
	}
	res.Version = cp.version
	for _, name := range res.Changed {
		cp.log.Info("cluster changed", "cluster", name, "groups", groups[name])
	}
	cp.log.Info("configuration reloaded", "added", res.Added, "removed", res.Removed,
		"changed", res.Changed, "unchanged", len(res.Unchanged), "version", res.Version)
	return res, nil
}

// logClusterSummary logs the effective settings of a cluster once, secrets left out.
func logClusterSummary(log hclog.Logger, cc config.Cluster) {
	user, pass := backendCredentials(cc)
	log.Info("cluster configured", "cluster", cc.Name, "cache_type", cc.CacheType,
		"listen", cc.ListenProto+"://"+cc.ListenAddr, "servers", len(cc.Servers),
		"hash_method", cc.HashMethod, "hash_tag", cc.HashTag,
		"read_timeout", cc.ReadTimeout, "write_timeout", cc.WriteTimeout, "dial_timeout", cc.DialTimeout,
		"node_connections", cc.NodeConnections, "ping_fail_limit", cc.PingFailLimit,
		"ping_interval", cc.PingInterval, "ping_succ_interval", cc.PingSuccInterval, "fetch", cc.Fetch, "read_from_slave", cc.ReadFromSlave,
		"client_auth", len(clientUsers(cc)) > 0, "backend_auth", pass != "" || user != "",
		"sentinels", len(cc.Sentinels), "sentinel_auth", cc.SentinelAuth != nil,
		"max_connections", cc.MaxConnections, "client_idle_timeout", cc.ClientIdleTimeout,
		"slowlog_slower_than", cc.SlowlogLogSlowerThan, "slowlog_max_len", cc.SlowlogMaxLen,
		"backend_resp_version", cc.BackendRespVersion,
		"hotkey_sample_every", cc.HotkeySampleEvery, "hotkey_capacity", cc.HotkeyCapacity,
		"backup_request", cc.BackupRequest.Enabled && cc.CacheType == config.CacheRedisCluster)
}
