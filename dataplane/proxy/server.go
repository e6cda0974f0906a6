package proxy

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/fdlimit"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	Logger  hclog.Logger
	Version string // reported by INFO
	// AnnounceIP is the address CLUSTER SLOTS/SHARDS/NODES name (asterd --ip); empty: the listener's.
	AnnounceIP string
	// Hint is called, without blocking, when a cluster's topology looks stale (see
	// Options.Hint). May be nil.
	Hint func(cluster string)
	// Metrics, when set, receive every cluster's traffic, errors and latencies.
	Metrics *Metrics
	// FDLimit is the process's open-file limit (fdlimit.Raise); when set, each cluster takes
	// at most its share of it (fdlimit.Plan), so one cluster's flood of clients never takes
	// the descriptors of another's clients or of the backend connections. 0: no budget, each
	// cluster takes its MaxConnections.
	FDLimit uint64
}

// Server is the whole data plane: it serves the clusters of the latest snapshot it was given.
// Apply may be called from any goroutine; calls are serialised.
type Server struct {
	opts ServerOptions

	mu       sync.Mutex
	clusters map[string]*Cluster
	specs    map[string]route.ClusterSpec
	version  uint64
	closed   bool
	wg       sync.WaitGroup
}

// NewServer returns a data plane that serves nothing until Apply.
func NewServer(opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Server{opts: opts, clusters: map[string]*Cluster{}, specs: map[string]route.ClusterSpec{}}
}

// listenerChanged reports whether a spec change needs a new listener. Client access settings
// count too: sessions read them without locks, so a change takes a fresh cluster (the old one
// drains). Live knobs (slow log, hot keys, backup reads) are not here: see applyLive.
func listenerChanged(a, b route.ClusterSpec) bool {
	return a.ListenAddr != b.ListenAddr || a.ListenProto != b.ListenProto ||
		!maps.Equal(a.Users, b.Users) || a.MaxConnections != b.MaxConnections ||
		a.IdleTimeout != b.IdleTimeout || a.TLSCertFile != b.TLSCertFile ||
		a.TLSKeyFile != b.TLSKeyFile || a.TLSCAFile != b.TLSCAFile ||
		a.BackendTLS != b.BackendTLS || a.BackendTLSCAFile != b.BackendTLSCAFile ||
		a.BackendTLSServerName != b.BackendTLSServerName ||
		a.ClientOutputLimit != b.ClientOutputLimit
}

// backendChanged reports whether a spec change needs new backend connections.
func backendChanged(a, b route.ClusterSpec) bool {
	return a.ReadTimeout != b.ReadTimeout || a.WriteTimeout != b.WriteTimeout ||
		a.DialTimeout != b.DialTimeout || a.NodeConnections != b.NodeConnections ||
		a.ReadFromSlave != b.ReadFromSlave || a.BackendUser != b.BackendUser ||
		a.BackendPassword != b.BackendPassword || a.BackendRESP3 != b.BackendRESP3
}

// Apply reconciles the served clusters with snap: new clusters get a listener, clusters it no
// longer names stop accepting and drain, changed settings take effect, and every cluster gets
// its table. Clusters whose spec did not change are untouched: no client is dropped. A snapshot
// not newer than the last one is ignored. Errors (e.g. a port in use) are reported together;
// the other clusters are still applied.
func (s *Server) Apply(snap *route.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("apply snapshot: data plane closed")
	}
	if snap.Version <= s.version {
		return nil
	}
	s.version = snap.Version
	var errs []error
	named := map[string]bool{}
	for _, spec := range snap.Clusters {
		named[spec.Name] = true
		c, old := s.clusters[spec.Name], s.specs[spec.Name]
		var replaced *Cluster
		if c != nil && listenerChanged(old, spec) {
			s.retireLocked(c)
			replaced, c = c, nil
		}
		if c == nil {
			nc, err := s.openLocked(spec, replaced, old)
			if err != nil {
				errs = append(errs, err)
				delete(s.clusters, spec.Name)
				delete(s.specs, spec.Name)
				continue
			}
			c = nc
		} else {
			if backendChanged(old, spec) {
				c.reconfigure(spec)
			}
			c.applyLive(old, spec)
			if err := c.applyRights(old, spec); err != nil {
				errs = append(errs, err)
			}
		}
		if replaced != nil {
			// The replaced cluster's sessions drain under the new rules, too.
			_ = replaced.setRights(spec.Users, spec.UserRights)
		}
		s.specs[spec.Name] = spec
		if spec.Table != nil {
			if err := c.Update(spec.Table); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for name, c := range s.clusters {
		if !named[name] {
			s.retireLocked(c)
			delete(s.clusters, name)
			delete(s.specs, name)
		}
	}
	s.budgetLocked()
	return errors.Join(errs...)
}

// budgetLocked shares the open-file limit among the served clusters (fdlimit.Plan), after
// every snapshot: clusters, their max_connections and their node counts change with it. A
// lowered share refuses new clients beyond it and closes none. It logs each cluster's share
// when it changes and differs from max_connections. s.mu must be held.
func (s *Server) budgetLocked() {
	if s.opts.FDLimit == 0 || len(s.clusters) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(s.clusters))
	ds := make([]fdlimit.Demand, len(names))
	for i, name := range names {
		spec := s.specs[name]
		ds[i] = fdlimit.Demand{MaxClients: spec.MaxConnections, Nodes: tableNodes(spec.Table),
			NodeConnections: max(spec.NodeConnections, 1), Loops: runtime.GOMAXPROCS(0)}
	}
	for i, share := range fdlimit.Plan(s.opts.FDLimit, ds) {
		c, configured := s.clusters[names[i]], ds[i].MaxClients
		prev := int(c.fdShare.Swap(int64(share)))
		want := fdlimit.PerClient * configured
		if prev == share || (share == want && prev == 0) {
			continue
		}
		// effective is the descriptors the cluster's clients may hold: their connections and
		// the backend connections they hold for themselves (fdshare.go).
		log := c.log.With("max_connections", configured, "effective", share, "open_file_limit", s.opts.FDLimit)
		switch {
		case share == want:
			log.Info("descriptor share back to what max_connections needs: the open-file limit holds it again")
		case configured > 0 && share < configured:
			log.Warn("max_connections lowered to this cluster's share of the open-file limit")
		default:
			log.Info("descriptor share set to this cluster's share of the open-file limit (clients and their own backend connections)")
		}
	}
}

// tableNodes is the number of nodes t routes to (0 while there is no table).
func tableNodes(t *route.Table) int {
	switch {
	case t == nil:
		return 0
	case t.Ring != nil:
		return len(t.Ring.Nodes())
	case t.Slots != nil:
		return len(t.Slots.Nodes())
	}
	return 0
}

// clientLimit is how many clients the cluster takes at most (0: no bound): MaxConnections,
// or its share of the open-file limit when smaller. Accept checks both (Serve, takeFD): the
// share counts the backend connections clients hold for themselves too.
func (c *Cluster) clientLimit() int {
	n, share := c.opts.MaxConnections, int(c.fdShare.Load())
	if share > 0 && (n <= 0 || share < n) {
		return share
	}
	return n
}

// openLocked starts serving spec on a new listener. replaced, when set, is the cluster it
// replaces (whose spec was old): its live knobs carry over (inheritLive).
func (s *Server) openLocked(spec route.ClusterSpec, replaced *Cluster, old route.ClusterSpec) (*Cluster, error) {
	name := spec.Name
	opts := Options{
		Name: name, ListenAddr: spec.ListenAddr, ListenProto: spec.ListenProto,
		ReadTimeout: spec.ReadTimeout, WriteTimeout: spec.WriteTimeout, DialTimeout: spec.DialTimeout,
		NodeConnections: spec.NodeConnections, ReadFromSlave: spec.ReadFromSlave,
		Logger: s.opts.Logger, Version: s.opts.Version, Metrics: s.opts.Metrics, AnnounceIP: s.opts.AnnounceIP,
		Users: spec.Users, Rights: spec.UserRights, BackendUser: spec.BackendUser, BackendPassword: spec.BackendPassword,
		MaxConnections: spec.MaxConnections, IdleTimeout: spec.IdleTimeout,
		SlowLogMaxLen: spec.SlowLogMaxLen, SlowLogSlowerThan: spec.SlowLogSlowerThan,
		BackendRESP3: spec.BackendRESP3,
		Hotkey:       spec.Hotkey, BackupRequest: spec.BackupRequest,
		OutputLimit: spec.ClientOutputLimit,
	}
	if s.opts.Hint != nil {
		opts.Hint = func() { s.opts.Hint(name) }
	}
	if spec.TLSCertFile != "" {
		cfg, err := tlsconf.Server(spec.TLSCertFile, spec.TLSKeyFile, spec.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		opts.TLS = cfg
	}
	if spec.BackendTLS {
		cfg, err := tlsconf.Client(spec.BackendTLSCAFile, spec.BackendTLSServerName)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: backend TLS: %w", name, err)
		}
		opts.BackendTLS = cfg
	}
	c := NewCluster(opts)
	if replaced != nil {
		c.inheritLive(replaced, old, spec)
	}
	if err := c.Listen(); err != nil {
		c.Close()
		return nil, err
	}
	s.clusters[name] = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := c.Serve(); err != nil {
			c.log.Error("serve failed", "error", err)
		}
	}()
	return c, nil
}

// retireLocked drains c in the background: no new clients, in-flight requests complete.
func (s *Server) retireLocked(c *Cluster) {
	// Stop accepting now, not in the drain below: a replacement binds the same address.
	c.closeListener()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.Drain()
	}()
}

// Ready reports whether every cluster has a listener and a routing table.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clusters {
		if c.snap.Load() == nil {
			return false
		}
	}
	return len(s.clusters) > 0
}

// Shutdown stops accepting on every cluster and lets each session finish the commands it has
// read (bounded by each cluster's grace period), then closes everything: SIGTERM's path.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closed = true
	clusters := s.clusters
	s.clusters = map[string]*Cluster{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Drain()
		}()
	}
	wg.Wait()
	s.wg.Wait()
}

// Close stops every cluster and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	clusters := s.clusters
	s.clusters = map[string]*Cluster{}
	s.mu.Unlock()
	for _, c := range clusters {
		c.Close()
	}
	s.wg.Wait()
}
