// Package proxy is the data plane's front: one listener per cluster, client sessions served by
// event loops (loop.go) or, while they must wait, by a goroutine each (session.go says who owns
// a session when), requests routed through the cluster's current routing table (one atomic load
// per batch) onto shared pipelined backend connections, replies written back in request order.
//
// Concurrency: Server and Cluster methods are safe for concurrent use (Server.Apply calls are
// serialised; the control plane and the admin API call them from their own goroutines). A
// cluster's serving state is one immutable generation (routes, settings, users' rules),
// rebuilt under Cluster.mu and installed with one atomic swap, which sessions load once per
// batch. A session is owned by one goroutine at a time — its event loop's, or a goroutine of
// its own while it must wait — as session.go's ownership rules say; the backend connections it
// shares with the other sessions are safe for concurrent use (package backend).
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/hotkey"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Env is what a cluster takes from the process that serves it rather than from its spec.
type Env struct {
	Logger hclog.Logger
	// Version is reported by INFO.
	Version string
	// AnnounceIP is the address CLUSTER SLOTS/SHARDS/NODES name; empty: the listener's.
	AnnounceIP string
	// Hint is called, without blocking, when the data plane sees that the topology it routes
	// by is stale: a MOVED reply or a failing node. The control plane refreshes. May be nil.
	Hint func()
	// Metrics, when set, receive the cluster's traffic, errors and latencies.
	Metrics *Metrics
	// RetireGrace is how long a node's connections outlive the last table that names it, so
	// that requests already on them complete; also how long a retired cluster drains.
	// Default 5s.
	RetireGrace time.Duration
}

// DefaultOutputLimit is client_output_limit when unset (AccessSettings.ClientOutputLimit
// 0): Redis's pubsub client-output-buffer-limit (32mb), which is also what a subscriber may
// have unread here.
const DefaultOutputLimit = 32 << 20

// routes is a routing table joined with the connection pools of the nodes it names, so a
// request needs one atomic load to route and reach its node. ("Snapshot" is only what the
// control plane publishes, route.Snapshot; a cluster's routing is its routes.)
type routes struct {
	// table says where a key goes (route.Table's methods); pools are index-aligned with its
	// nodes (table.Addrs), replicas included.
	table *route.Table
	pools []*pool
	// readFromSlave and resp3 (the pools speak RESP3) are the generation's backend settings,
	// copied here next to the pools they made, for the routing code that has only its routes.
	readFromSlave bool
	resp3         bool
	// replaced is closed once newer routes are installed, for the sessions that wait for
	// one (retry.go).
	replaced chan struct{}
}

// redirects reports whether a batch's error replies may need following (redirect.go): a Redis
// Cluster's nodes redirect and ask for retries; a read replica, of a slot or of a ring node,
// may refuse a read that its master serves.
func (r *routes) redirects() bool { return r.table.Cluster() || r.table.Replicas != nil }

// generation is a cluster's serving state as one immutable value: the routing table with the
// pools of its nodes, the client access settings, the users' rules and the live knobs. A
// session loads it once per batch; every change (a table, a reload, CONFIG SET) builds a new
// one from the current one under Cluster.mu and installs it with one atomic swap, so a
// session never sees half of a change. The hot-key tracker and the slow log are stateful:
// a generation whose sizes did not change shares them with its predecessor.
type generation struct {
	routes  *routes      // nil until the first table
	acc     *access      // never nil
	rights  *rightsTable // nil when no user has rules
	backend backendConf  // how routes' pools reach the nodes
	// Live knobs (live.go): knobs are their values as CONFIG GET shows them; slow, hot and
	// backup what sessions use.
	knobs  knobs
	slow   *slowLog             // nil when off
	hot    *hotkey.Tracker      // never nil
	backup *route.BackupRequest // nil when off
	cache  *clientCache         // nil when off (clientcache.go)
}

// backendConf is how a generation's pools reach the nodes: route.GroupBackend with its TLS
// files read.
type backendConf struct {
	readTimeout, writeTimeout, dialTimeout time.Duration
	nodeConns                              int // ≥ 1
	readFromSlave                          bool
	user, password                         string
	resp3                                  bool
	tls                                    *tls.Config // nil: plain
}

// backendOf is b with its TLS configuration (read by prepare; nil unless b.BackendTLS).
func backendOf(b route.BackendSettings, tlsConf *tls.Config) backendConf {
	conf := backendConf{readTimeout: b.ReadTimeout, writeTimeout: b.WriteTimeout, dialTimeout: b.DialTimeout,
		nodeConns: max(b.NodeConnections, 1), readFromSlave: b.ReadFromSlave,
		user: b.BackendUser, password: b.BackendPassword, resp3: b.BackendRESP3}
	if b.BackendTLS {
		conf.tls = tlsConf
	}
	return conf
}

// settings are what a new generation takes from outside its predecessor: a reload's parts,
// a routing table. A nil part is the predecessor's.
type settings struct {
	acc     *access
	rights  *rightsTable // with acc
	backend *backendConf
	live    *route.LiveSettings
	table   *route.Table // installed when newer than the predecessor's
}

// buildLocked makes the generation that follows prev (nil: the first) with in, to be
// installed by publishLocked; every change of what a cluster serves goes through it. New
// backend settings give it new pools (the old ones finish what they carry and close after
// RetireGrace); the live knobs are the file's (in.live, or as before) with CONFIG SET's
// overlay on top; the slow log and hot-key tracker carry over while their sizes stay;
// pools a new table no longer names are retired. c.mu must be held.
func (c *Cluster) buildLocked(prev *generation, in settings) *generation {
	g := &generation{}
	if prev != nil {
		*g = *prev
	}
	if in.acc != nil {
		g.acc, g.rights = in.acc, in.rights
	}
	if in.backend != nil {
		g.backend = *in.backend
		if prev != nil {
			c.rebuildPoolsLocked(g)
			b := g.backend
			c.log.Info("backend settings changed", "read_timeout", b.readTimeout, "node_connections", b.nodeConns,
				"backend_resp3", b.resp3, "backend_tls", b.tls != nil)
		}
	}
	if in.live != nil {
		c.setLiveLocked(*in.live)
	}
	if g.hot == nil {
		g.hot = hotkey.New(hotkeyConfig(c.live.Hotkey))
	}
	c.buildLiveLocked(g)
	if t := in.table; t != nil && (g.routes == nil || t.Version > g.routes.table.Version) {
		c.installLocked(g, t)
	}
	c.buildCacheLocked(g)
	return g
}

// publishLocked installs g, the next generation: sessions see it from their next batch.
// Sessions waiting for a newer table (retry.go) are woken when g brings one. c.mu must be
// held.
func (c *Cluster) publishLocked(g *generation) {
	prev := c.gen.Swap(g)
	if prev != nil && prev.routes != nil && prev.routes != g.routes {
		close(prev.routes.replaced)
	}
	if g.routes != nil {
		c.readyOnce.Do(func() { close(c.ready) })
	}
}

// pool is the node's shared connections.
type pool struct {
	addr  string
	opts  backend.Options // how its connections dial: also what dedicated connections use
	conns []*backend.Conn
	// avgLatency is a moving average of reply times in nanoseconds, kept for backup reads
	// only (0 until the first); see backupDelay.
	avgLatency atomic.Int64
}

// busy reports whether a request on one of p's connections still waits for its reply.
func (p *pool) busy() bool {
	for _, c := range p.conns {
		if c.Busy() {
			return true
		}
	}
	return false
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// Cluster serves one cluster's clients. Update may be called from any goroutine.
type Cluster struct {
	name    string
	env     Env
	listen  route.ListenSettings // what Listen opens (a cluster of a Server gets its listener from it)
	log     hclog.Logger
	metrics clusterMetrics
	// commands counts client commands for INFO's total_commands_processed, metrics on or off.
	commands atomic.Uint64
	// readonly: connections open with READONLY for backup reads even without ReadFromSlave.
	readonly bool
	// live are the file's live settings (those of the spec served); overlay
	// the knobs CONFIG SET changed on top of them, by canonical name. Both guarded by mu;
	// every generation is built from both (buildLiveLocked).
	live    route.LiveSettings
	overlay map[string]func(*knobs)
	// cc is the client cache and its nodes' tracking links (clientcache.go); guarded by mu.
	cc cacheLinks
	// trk is CLIENT TRACKING's hub (tracking.go), made when a client first uses it.
	trk     atomic.Pointer[trackHub]
	trkOnce sync.Once

	// gen is what the cluster serves from (generation): sessions load it once per batch;
	// writers build the next one under mu and install it with one swap (publishLocked).
	gen atomic.Pointer[generation]
	// ready is closed when the first table is in, so sessions that start earlier can wait.
	ready     chan struct{}
	readyOnce sync.Once

	mu       sync.Mutex // serialises Update; guards pools
	pools    map[string]*pool
	ln       net.Listener
	sharedLn bool // ln is the Server's (listener), handed on to a successor: not closed here
	draining bool // retired by a reload: admits no client
	sessions map[*session]struct{}
	loops    []*loop // started with the first client they may serve
	loopNext int
	noLoops  atomic.Bool   // starting them failed (no epoll here): not tried again
	handOver atomic.Uint64 // loop sessions handed to a goroutine (loop.go), for tests
	dedIdle  dedPool       // dedicated connections no session is using (dedconn.go)
	kills    killRounds    // SCRIPT KILL and FUNCTION KILL rounds in flight (script.go)
	pauses   pauseQueue    // CLIENT PAUSE and UNPAUSE, one round at a time (clientpause.go)
	closed   bool
	nextID   atomic.Uint64
	wg       sync.WaitGroup
	retiring map[*pool]*time.Timer // pools no table names any more, closed after RetireGrace
	// fdShare, when > 0, is the cluster's share of the process's open-file limit
	// (Server.budgetLocked): the bound on held, besides MaxConnections on clients (fdshare.go).
	fdShare atomic.Int64
	// held counts the descriptors the cluster's clients hold: each client connection, and
	// each backend connection dialled for one client alone (dedicated, subscription, SCRIPT
	// KILL's), pooled idle ones included; dedHeld counts those backend connections alone.
	held, dedHeld atomic.Int64
	fdFullLog     fdFullLog // one log line when the share runs out, not one per refusal
	fdCut         bool      // fdShare differs from what max_connections needs (guarded by the Server's mu)
}

// NewCluster returns a cluster that serves spec: its settings, and its table when it has
// one (requests wait for the first table otherwise: Update). It fails, with nothing started,
// when spec's TLS files cannot be read or its users' rules do not compile.
func NewCluster(spec route.ClusterSpec, env Env) (*Cluster, error) {
	p, err := prepare(spec, true, true)
	if err != nil {
		return nil, err
	}
	return newCluster(spec, env, p), nil
}

// newCluster makes the cluster of spec from its prepared parts (p.acc set).
func newCluster(spec route.ClusterSpec, env Env, p prepared) *Cluster {
	if env.Logger == nil {
		env.Logger = hclog.NewNullLogger()
	}
	if env.RetireGrace <= 0 {
		env.RetireGrace = 5 * time.Second
	}
	c := &Cluster{
		name:     spec.Name,
		env:      env,
		listen:   spec.Listen,
		metrics:  newClusterMetrics(env.Metrics, spec.Name),
		log:      env.Logger.Named("dataplane").With("cluster", spec.Name),
		ready:    make(chan struct{}),
		pools:    make(map[string]*pool),
		sessions: make(map[*session]struct{}),
		retiring: make(map[*pool]*time.Timer),
	}
	c.dedIdle.IdleFor, c.dedIdle.MaxIdle = dedIdleFor, dedIdleMax
	b, live := backendOf(spec.Backend, p.bTLS), spec.Live
	in := settings{acc: p.acc, rights: p.rights, backend: &b, live: &live}
	if t := spec.Table; t.Check() == nil {
		in.table = t
	}
	c.mu.Lock()
	c.publishLocked(c.buildLocked(nil, in))
	c.mu.Unlock()
	return c
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.name }

// Update installs a new routing table: the Sink the control plane calls. Tables with a version
// not newer than the current one are ignored. Connection pools are carried over by address;
// pools of nodes the new table no longer names are closed after RetireGrace.
func (c *Cluster) Update(t *route.Table) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("update cluster %q: closed", c.name)
	}
	if cur := c.gen.Load().routes; cur != nil && t.Version <= cur.table.Version {
		return nil
	}
	c.publishLocked(c.buildLocked(c.gen.Load(), settings{table: t}))
	c.log.Debug("routing table installed", "version", t.Version, "nodes", tableNodes(t))
	return nil
}

// installLocked makes t the table of g, the next generation, with the pools of the nodes it
// names; pools of nodes it no longer names are retired. c.mu must be held. It returns t's
// node addresses.
func (c *Cluster) installLocked(g *generation, t *route.Table) []string {
	addrs := t.Addrs()
	next := &routes{table: t, pools: make([]*pool, len(addrs)), readFromSlave: g.backend.readFromSlave,
		resp3: g.backend.resp3, replaced: make(chan struct{})}
	named := make(map[string]bool, len(addrs))
	for i, addr := range addrs {
		next.pools[i] = c.poolLocked(g, addr)
		named[addr] = true
	}
	g.routes = next
	for addr, p := range c.pools {
		if !named[addr] {
			delete(c.pools, addr)
			c.retireLocked(p)
			c.metrics.forgetNode(addr)
		}
	}
	// A dedicated connection stays pooled while the table names its node and it was dialled
	// with the options of that node's current pool (not a retired one's).
	live := make(map[string]*pool, len(next.pools))
	for _, p := range next.pools {
		live[p.addr] = p
	}
	c.dedIdle.Retain(func(d *dedConn) bool { p := live[d.addr]; return p != nil && p == d.from })
	return addrs
}

// change installs, as one new generation, what a reload changes of a served cluster (old is
// the spec it served, spec the new one, p what prepare built of it): the access settings
// when p has them, the backend settings when they changed, the live settings, and spec's
// table when it is newer. Clients stay connected.
func (c *Cluster) change(old, spec route.ClusterSpec, p prepared) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	in := settings{acc: p.acc, rights: p.rights, table: spec.Table, live: &spec.Live}
	if old.Backend != spec.Backend {
		b := backendOf(spec.Backend, p.bTLS)
		in.backend = &b
	}
	c.publishLocked(c.buildLocked(c.gen.Load(), in))
}

// rebuildPoolsLocked replaces every pool of g, the next generation, with one made from the
// current options; the old ones finish what they carry and close after the grace period.
// c.mu must be held.
func (c *Cluster) rebuildPoolsLocked(g *generation) {
	c.dedIdle.Retain(nil) // idle dedicated connections were dialled with the old options too
	for addr, p := range c.pools {
		delete(c.pools, addr)
		c.retireLocked(p)
	}
	if g.routes != nil {
		c.installLocked(g, g.routes.table)
	}
}

// readonlyLocked reports whether new connections of g open with READONLY. c.mu must be held.
func (c *Cluster) readonlyLocked(g *generation) bool { return g.backend.readFromSlave || c.readonly }

// retireLocked closes p once the grace period has passed and no request on it waits for a
// reply any more, or once a request written by then would have failed on its own deadline
// (read_timeout; a minute with none): a node in the middle of a failover may hold its replies
// for seconds (a manual failover pauses writes up to 5 s), and closing the pool would fail
// what it is about to answer (with MOVED, which the session follows). c.mu must be held.
func (c *Cluster) retireLocked(p *pool) {
	wait := p.opts.ReadTimeout
	if wait <= 0 {
		wait = time.Minute
	}
	deadline := time.Now().Add(c.env.RetireGrace + wait)
	var check func()
	check = func() {
		busy := p.busy() // before c.mu: it takes each connection's lock
		c.mu.Lock()
		if !c.closed && busy && time.Now().Before(deadline) {
			c.retiring[p] = time.AfterFunc(retireRecheck, check)
			c.mu.Unlock()
			return
		}
		delete(c.retiring, p)
		c.mu.Unlock()
		p.close()
	}
	c.retiring[p] = time.AfterFunc(c.env.RetireGrace, check)
}

// retireRecheck is how often a retired pool still busy past the grace period is looked at.
const retireRecheck = 200 * time.Millisecond

// poolLocked returns the pool of addr, making it with g's backend settings when there is
// none. c.mu must be held.
func (c *Cluster) poolLocked(g *generation, addr string) *pool {
	if p := c.pools[addr]; p != nil {
		return p
	}
	b := g.backend
	opts := backend.Options{
		Addr:         addr,
		DialTimeout:  b.dialTimeout,
		ReadTimeout:  b.readTimeout,
		WriteTimeout: b.writeTimeout,
		Logger:       c.log.Named("backend"),
		Latency:      c.metrics.nodeLatency(addr),
		Failed:       c.metrics.nodeFailures(addr),
		RESP3:        b.resp3,
		TLS:          b.tls, // redisdial names each node's host as ServerName when b.tls names none
	}
	if c.env.Hint != nil {
		opts.OnFailure = func(string, error) { c.env.Hint() }
	}
	opts.Username, opts.Password, opts.ReadOnly = b.user, b.password, c.readonlyLocked(g)
	if opts.TLS == nil {
		opts.Poller = loopPoller{c}
	}
	p := &pool{addr: addr, opts: opts, conns: make([]*backend.Conn, b.nodeConns)}
	for i := range p.conns {
		p.conns[i] = backend.New(opts)
	}
	c.pools[addr] = p
	return p
}

var maxClientsReply = []byte("-ERR max number of clients reached\r\n")

// poolFor returns the pool of a node named by a redirect, which the current table may not
// know yet. Redirects are rare, so a lock here costs the hot path nothing. nil once closed.
func (c *Cluster) poolFor(addr string) *pool {
	if s := c.gen.Load().routes; s != nil {
		for _, p := range s.pools {
			if p.addr == addr {
				return p
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	return c.poolLocked(c.gen.Load(), addr)
}

// hint tells the control plane that the topology looks stale.
func (c *Cluster) hint() {
	if c.env.Hint != nil {
		c.env.Hint()
	}
}

// Listen opens the cluster's listener.
func (c *Cluster) Listen() error {
	ln, err := listen(c.name, c.listen)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	c.log.Info("listening", "addr", ln.Addr().String(), "proto", c.listen.Network())
	return nil
}

// Addr is the listener's address (useful with port 0).
func (c *Cluster) Addr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// Serve accepts clients until Close. Listen must have succeeded.
func (c *Cluster) Serve() error {
	c.mu.Lock()
	ln := c.ln
	c.mu.Unlock()
	if ln == nil {
		return fmt.Errorf("cluster %q: serve before listen", c.name)
	}
	acceptLoop(ln, c.log, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	}, c.sockable, func(nc net.Conn) bool {
		if !c.admit(nc) {
			nc.Close()
			return false
		}
		return true
	})
	return nil
}

// admit makes nc a client of c under its current access settings, or refuses it with Redis's
// max-clients error. It returns false, nc untouched, when c takes no clients any more (closed,
// or draining after a reload retired it).
func (c *Cluster) admit(nc net.Conn) bool {
	c.mu.Lock()
	gone := c.closed || c.draining
	c.mu.Unlock()
	if gone {
		return false
	}
	if a := c.access(); a.tls != nil {
		nc = tls.Server(nc, a.tls)
	}
	s := newSession(c, nc)
	nc = s.nc // which may have taken the socket over (rawio.Sock)
	// The client's descriptor in the share first, without c.mu: making room closes idle
	// pooled connections, and closing a TLS one writes.
	room := c.takeFD()
	c.mu.Lock()
	if c.closed || c.draining {
		c.mu.Unlock()
		if room {
			c.held.Add(-1)
		}
		nc.Close()
		return true
	}
	if max := c.access().maxConns; !room || (max > 0 && len(c.sessions) >= max) {
		c.mu.Unlock()
		if room {
			c.held.Add(-1)
		}
		c.metrics.inc(c.metrics.refused)
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write(maxClientsReply)
		nc.Close()
		return true
	}
	c.sessions[s] = struct{}{}
	c.wg.Add(1)
	l := c.loopForLocked(s)
	c.mu.Unlock()
	c.metrics.clientOpened()
	if l != nil {
		l.add(s)
		return true
	}
	go func() {
		if !s.serve() {
			c.forget(s)
		}
	}()
	return true
}

// loopable reports whether an event loop may serve s: a plain socket (not TLS), no read
// deadline to keep (client_idle_timeout), and loops here (epoll). It takes no lock.
func (c *Cluster) loopable(s *session) bool {
	return s.raw != nil && s.idleRd == nil && !c.noLoops.Load()
}

// loopForLocked picks the event loop that serves s (loop.go), starting the loops with the first
// client they may serve; nil when s needs a goroutine of its own. c.mu must be held.
func (c *Cluster) loopForLocked(s *session) *loop {
	if !c.loopable(s) || c.gen.Load().routes == nil {
		return nil // (or a first table to wait for)
	}
	if c.loops == nil {
		if c.loops = startLoops(c); c.loops == nil {
			c.noLoops.Store(true)
			return nil
		}
	}
	return c.nextLoopLocked()
}

// nextLoopLocked is the next of the cluster's loops in turn, nil when it has none. c.mu must be
// held.
func (c *Cluster) nextLoopLocked() *loop {
	if len(c.loops) == 0 {
		return nil
	}
	c.loopNext = (c.loopNext + 1) % len(c.loops)
	return c.loops[c.loopNext]
}

// loopPoller has the cluster's event loops read its backend connections (backend.Poller),
// spread over them in turn; until the first loop client starts the loops, connections have
// reader goroutines of their own.
type loopPoller struct{ c *Cluster }

func (p loopPoller) Watch(raw *rawio.Conn, ready func(), waiting func() bool) (func(), func(*backend.Conn), error) {
	c := p.c
	c.mu.Lock()
	var l *loop
	if !c.closed {
		l = c.nextLoopLocked()
	}
	c.mu.Unlock()
	if l == nil {
		return nil, nil, errors.New("no event loop")
	}
	unwatch, err := l.Watch(raw, ready, waiting)
	return unwatch, l.touchOne, err
}

// forget drops a session that has ended.
func (c *Cluster) forget(s *session) {
	c.mu.Lock()
	delete(c.sessions, s)
	c.mu.Unlock()
	if h := c.trk.Load(); h != nil {
		h.forget(s)
	}
	c.held.Add(-1) // taken at accept (takeFD)
	c.metrics.clientClosed()
	c.wg.Done()
}

// Drain stops accepting and lets every session finish the commands it has read, then closes
// the cluster: the way a cluster removed by a reload goes.
func (c *Cluster) Drain() {
	c.mu.Lock()
	c.draining = true
	if c.ln != nil && !c.sharedLn {
		c.ln.Close()
	}
	for s := range c.sessions {
		// The session's next read sees EOF; replies to what it already read are still written.
		nc := s.nc
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn() // half-closing the TCP connection under TLS ends its reads too
		}
		if cr, ok := nc.(interface{ CloseRead() error }); ok {
			_ = cr.CloseRead()
		} else {
			s.nc.Close()
		}
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(c.env.RetireGrace):
	}
	c.log.Info("cluster drained and closed")
	c.Close()
}

// Close stops accepting, closes client sessions and backend connections, and waits for the
// sessions to end.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.ln != nil && !c.sharedLn {
		c.ln.Close()
	}
	for s := range c.sessions {
		s.shutdownClient() // not closed: only its owner closes a session's socket (rawio.Own)
	}
	loops := c.loops
	for _, l := range loops {
		l.kickAll() // a closed socket raises no event: the loops find out by reading
	}
	toClose := make([]*pool, 0, len(c.pools)+len(c.retiring))
	for _, p := range c.pools {
		toClose = append(toClose, p)
	}
	for p, t := range c.retiring {
		if t.Stop() { // else its timer is closing it already
			toClose = append(toClose, p)
		}
	}
	c.pools = nil
	c.stopCacheLocked()
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	if h := c.trk.Load(); h != nil {
		h.close()
	}
	c.wg.Wait()
	for _, l := range loops {
		l.stop()
	}
	for _, p := range toClose {
		p.close()
	}
	c.dedIdle.Close()
}

// current returns the current generation, waiting (bounded) for one with a table.
func (c *Cluster) current() *generation {
	if g := c.gen.Load(); g.routes != nil {
		return g
	}
	select {
	case <-c.ready:
	case <-time.After(5 * time.Second):
	}
	return c.gen.Load()
}
