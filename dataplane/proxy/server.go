package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/rawio"
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
	// Env.Hint). May be nil.
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
	// listeners are the client sockets by listenKey, each owned by one cluster generation.
	listeners map[string]*listener
	version   uint64
	closed    bool
	wg        sync.WaitGroup
}

// NewServer returns a data plane that serves nothing until Apply.
func NewServer(opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Server{opts: opts, clusters: map[string]*Cluster{}, specs: map[string]route.ClusterSpec{},
		listeners: map[string]*listener{}}
}

// Apply makes the served clusters those of snap, all or nothing. It first builds what the
// new state needs without touching the served one (prepare: every setting checked, TLS files
// read, access rules compiled, every new listener opened); only when all of it succeeded does
// it install it (commit, which cannot fail). On a failure it closes what it opened and
// returns the cause: every cluster, listener, session and metric stays as it was (only the
// routing tables of clusters whose settings it does not change follow it: tablesOnlyLocked).
//
// Per cluster, what changes decides what happens (route.Changed), and no change drops a
// client: listen (protocol, address) opens the new listener, then closes the old one, whose
// clients stay; access (users, rules, limits, TLS on or off and its files) is swapped on the cluster,
// logged-in clients stay; backend settings get new backend connections; live knobs are set in
// place. Clusters snap no longer names stop accepting and drain; a listener such a cluster
// lets go is handed to the cluster that takes its address in snap.
// A snapshot not newer than the last one applied is ignored.
func (s *Server) Apply(snap *route.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("apply snapshot: data plane closed")
	}
	if snap.Version <= s.version {
		return nil
	}
	steps, err := s.prepareLocked(snap)
	if err != nil {
		for _, st := range steps {
			if st.opened {
				st.ln.close()
			}
		}
		s.tablesOnlyLocked(snap)
		return fmt.Errorf("refused whole, nothing changed: %w", err)
	}
	s.version = snap.Version
	s.commitLocked(steps)
	s.budgetLocked()
	return nil
}

// tablesOnlyLocked installs the routing tables of snap's clusters whose settings are those
// served, after snap was refused. Tables are observed state (a failover, an ejection), not
// settings: a data plane fed by a remote control plane, which refuses every snapshot while one
// of its clusters cannot listen there, keeps following the topology of the others. For the
// snapshot of a refused reload this changes nothing: it carries the tables served already.
// s.mu must be held.
func (s *Server) tablesOnlyLocked(snap *route.Snapshot) {
	for _, spec := range snap.Clusters {
		c, old := s.clusters[spec.Name], s.specs[spec.Name]
		t := spec.Table
		if c == nil || t.Check() != nil || len(route.Changed(old, spec)) > 0 ||
			(old.Table != nil && t.Version <= old.Table.Version) {
			continue
		}
		if err := c.Update(t); err == nil {
			old.Table = t
			s.specs[spec.Name] = old
		}
	}
}

// step is what Apply does to one cluster of a snapshot, prepared before anything changes.
type step struct {
	spec route.ClusterSpec
	cur  *Cluster // serving under this name now; nil for a new cluster
	// ln is the listener of a new cluster, or of one whose listen settings change: opened by
	// this Apply (opened) or handed over from the cluster that had it.
	ln     *listener
	opened bool
	prepared
}

// prepared is what may fail of building a cluster's next generation, done before anything
// changes.
type prepared struct {
	acc    *access      // the new access settings, when they changed (or a new cluster)
	rights *rightsTable // with acc
	bTLS   *tls.Config  // the backend TLS configuration, when the backend settings changed
}

// prepare builds what spec needs that may fail: its access settings (TLS files read, users'
// rules compiled) when access, its backend TLS configuration when backend.
func prepare(spec route.ClusterSpec, access, backend bool) (prepared, error) {
	var p prepared
	if access {
		acc, rights, err := buildAccess(spec)
		if err != nil {
			return p, err
		}
		p.acc, p.rights = acc, rights
	}
	if b := spec.Backend; backend && b.BackendTLS {
		cfg, err := tlsconf.Client(b.BackendTLSCAFile, b.BackendTLSServerName)
		if err != nil {
			return p, fmt.Errorf("cluster %q: backend TLS: %w", spec.Name, err)
		}
		p.bTLS = cfg
	}
	return p, nil
}

// prepareLocked checks snap and builds everything its clusters need that may fail. It
// returns the steps (those with opened listeners included, for the caller to close on
// error). s.mu must be held.
func (s *Server) prepareLocked(snap *route.Snapshot) ([]*step, error) {
	var steps []*step
	claimed := map[string]string{} // listener key → cluster taking it in snap
	for _, spec := range snap.Clusters {
		st := &step{spec: spec, cur: s.clusters[spec.Name]}
		steps = append(steps, st)
		if t := spec.Table; t != nil {
			if err := t.Check(); err != nil {
				return steps, fmt.Errorf("cluster %q: %w", spec.Name, err)
			}
		}
		if p := spec.Listen.Network(); p != "tcp" && p != "unix" {
			return steps, fmt.Errorf("cluster %q: listen_proto %q is not tcp or unix", spec.Name, p)
		}
		key := listenKey(spec)
		if other, dup := claimed[key]; dup {
			return steps, fmt.Errorf("cluster %q: listen on %s: also the address of cluster %q", spec.Name, key, other)
		}
		claimed[key] = spec.Name
		old, had := s.specs[spec.Name]
		p, err := prepare(spec, !had || !old.Access.Equal(spec.Access), !had || old.Backend != spec.Backend)
		if err != nil {
			return steps, err
		}
		st.prepared = p
		if had && listenKey(old) == listenKey(spec) {
			continue
		}
		// A listener on this key already is handed over: its owner lets it go in snap (it is
		// removed or moves elsewhere), or the key would be claimed twice above.
		if l := s.listeners[key]; l != nil {
			st.ln = l
			continue
		}
		ln, err := listen(spec.Name, spec.Listen)
		if err != nil {
			return steps, err
		}
		st.ln = &listener{key: key, ln: ln, log: s.opts.Logger.Named("dataplane").With("listen", ln.Addr().String())}
		st.opened = true
	}
	return steps, nil
}

// buildAccess makes the access settings of spec: its TLS files read, its users' rules
// compiled. Nothing is installed.
func buildAccess(spec route.ClusterSpec) (*access, *rightsTable, error) {
	as := spec.Access
	a := &access{users: as.Users, maxConns: as.MaxConnections, idle: as.IdleTimeout, outputLimit: as.ClientOutputLimit}
	if a.outputLimit <= 0 {
		a.outputLimit = DefaultOutputLimit
	}
	if as.TLSCertFile != "" {
		cfg, err := tlsconf.Server(as.TLSCertFile, as.TLSKeyFile, as.TLSCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
		}
		a.tls = cfg
	}
	rights, err := compileRights(as.Users, as.UserRights)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
	}
	return a, rights, nil
}

// listen opens the socket l names for cluster name.
func listen(name string, l route.ListenSettings) (net.Listener, error) {
	if l.Network() == "unix" {
		_ = os.Remove(l.Addr) // a stale socket file from a previous run
	}
	// Plain TCP, as Redis listens: Go's listeners take MPTCP by default where Linux has it,
	// whose accept path (a subflow request per connection, then the fallback to TCP for
	// every client that is not MPTCP, which Redis clients are not) cost each connection
	// ~1.5% more of the proxy's CPU for a client that connects per command.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), l.Network(), l.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err) // "listen tcp ADDR: bind: ..."
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		// Clients served from event loops are accepted straight onto rawio.Socks (acceptLoop).
		// Failing (no descriptor to spare for the duplicate), it accepts as any listener does.
		if rl, err := rawio.NewListener(tl); err == nil {
			return rl, nil
		}
	}
	return ln, nil
}

// commitLocked installs prepared steps; nothing in it fails. s.mu must be held.
func (s *Server) commitLocked(steps []*step) {
	named := map[string]bool{}
	for _, st := range steps {
		spec := st.spec
		named[spec.Name] = true
		old := s.specs[spec.Name]
		c := st.cur
		if c == nil {
			c = s.startLocked(st)
		} else if groups := route.Changed(old, spec); len(groups) > 0 {
			// The access settings first: a client the new listener accepts gets them.
			c.change(old, spec, st.prepared)
			if st.ln != nil {
				s.listenLocked(c, st)
			}
			c.log.Debug("cluster changed", "groups", groups)
		}
		s.specs[spec.Name] = spec
		if spec.Table != nil {
			_ = c.Update(spec.Table) // checked in prepare; a closed cluster is not served
		}
	}
	for name, c := range s.clusters {
		if !named[name] {
			c.metrics.forget() // before a later snapshot may serve the name again
			s.retireLocked(c)
			delete(s.clusters, name)
			delete(s.specs, name)
		}
	}
	// A listener no served cluster listens on any more (removed, or moved elsewhere) closes;
	// the clients it accepted stay with their cluster.
	for key, l := range s.listeners {
		if o := l.owner.Load(); o == nil || s.clusters[o.Name()] != o || listenKey(s.specs[o.Name()]) != key {
			l.close()
			delete(s.listeners, key)
		}
	}
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
		conns := max(spec.Backend.NodeConnections, 1)
		if s.clusters[name].gen.Load().cache != nil {
			conns++ // the client cache's tracking link to each node
		}
		ds[i] = fdlimit.Demand{MaxClients: spec.Access.MaxConnections, Nodes: tableNodes(spec.Table),
			NodeConnections: conns, Loops: runtime.GOMAXPROCS(0)}
	}
	for i, share := range fdlimit.Plan(s.opts.FDLimit, ds) {
		c, configured := s.clusters[names[i]], ds[i].MaxClients
		prev := int(c.fdShare.Swap(int64(share)))
		want := fdlimit.PerClient * configured
		// Logged when the share starts or stops differing from what max_connections needs,
		// or moves while it differs: not when max_connections itself changes and still holds.
		cut, wasCut := share != want, c.fdCut
		c.fdCut = cut
		if (!cut && !wasCut) || (cut && wasCut && prev == share) {
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

// tableNodes is the number of nodes t names, read replicas included (0 while there is no
// table).
func tableNodes(t *route.Table) int {
	if t.Check() != nil {
		return 0
	}
	return len(t.Addrs())
}

// clientLimit is how many clients the cluster takes at most (0: no bound): MaxConnections,
// or its share of the open-file limit when smaller. Accept checks both (Serve, takeFD): the
// share counts the backend connections clients hold for themselves too.
func (c *Cluster) clientLimit() int {
	n, share := c.access().maxConns, int(c.fdShare.Load())
	if share > 0 && (n <= 0 || share < n) {
		return share
	}
	return n
}

// startLocked starts serving a new cluster on st.ln. s.mu must be held.
func (s *Server) startLocked(st *step) *Cluster {
	spec := st.spec
	name := spec.Name
	env := Env{Logger: s.opts.Logger, Version: s.opts.Version, Metrics: s.opts.Metrics, AnnounceIP: s.opts.AnnounceIP}
	if s.opts.Hint != nil {
		env.Hint = func() { s.opts.Hint(name) }
	}
	c := newCluster(spec, env, st.prepared)
	s.clusters[name] = c
	s.listenLocked(c, st)
	return c
}

// listenLocked makes st.ln c's listener: new clients reach c there from now on. A listener c
// had before closes in commitLocked, after this one is open; the clients it accepted stay, as
// Redis keeps its clients when CONFIG SET port moves its listener. s.mu must be held.
func (s *Server) listenLocked(c *Cluster, st *step) {
	l := st.ln
	c.mu.Lock()
	c.ln, c.sharedLn = l.ln, true
	c.mu.Unlock()
	l.owner.Store(c)
	if !st.opened {
		return // handed over: its accept loop runs already
	}
	s.listeners[l.key] = l
	c.log.Info("listening", "addr", l.ln.Addr().String(), "proto", st.spec.Listen.Network(), "tls", c.access().tls != nil)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		asSock := func() bool {
			c := l.owner.Load()
			return c != nil && c.sockable()
		}
		acceptLoop(l.ln, l.log, l.closed.Load, asSock, func(nc net.Conn) bool { l.give(nc); return true })
	}()
}

// retireLocked drains c (a cluster no longer served) in the background: no new clients,
// in-flight requests complete. Its listener, the Server's, is closed by commitLocked unless
// a cluster of the same snapshot took it.
func (s *Server) retireLocked(c *Cluster) {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.Drain()
	}()
}

// TableVersions returns the version of the routing table each served cluster routes by (0
// while it has none), for a --role data asterd's metrics.
func (s *Server) TableVersions() map[string]uint64 {
	s.mu.Lock()
	clusters := maps.Clone(s.clusters)
	s.mu.Unlock()
	out := make(map[string]uint64, len(clusters))
	for name, c := range clusters {
		if g := c.gen.Load(); g != nil && g.routes != nil {
			out[name] = g.routes.table.Version
		} else {
			out[name] = 0
		}
	}
	return out
}

// Ready reports whether every cluster has a listener and a routing table.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clusters {
		if c.gen.Load().routes == nil {
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
	for key, l := range s.listeners {
		l.close()
		delete(s.listeners, key)
	}
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
	for key, l := range s.listeners {
		l.close()
		delete(s.listeners, key)
	}
	s.mu.Unlock()
	for _, c := range clusters {
		c.Close()
	}
	s.wg.Wait()
}
