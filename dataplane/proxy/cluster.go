// Package proxy is the data plane's front: one listener per cluster, one goroutine per client
// session, requests routed through the cluster's current routing table (one atomic load per
// batch) onto shared pipelined backend connections, replies written back in request order.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Options configure one cluster's data plane.
type Options struct {
	Name            string
	ListenAddr      string
	ListenProto     string // "tcp" (default) or "unix"
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	DialTimeout     time.Duration
	NodeConnections int // shared connections per node; a session always uses the same one
	// RetireGrace is how long a node's connections outlive the last table that names it, so
	// that requests already on them complete. Default 5s.
	RetireGrace time.Duration
	Logger      hclog.Logger
	// Version is reported by INFO.
	Version string
}

// snapshot is a routing table joined with the connection pools of the nodes it names, so a
// request needs one atomic load to route and reach its node.
type snapshot struct {
	table *route.Table
	pools []*pool // index-aligned with table.Ring.Nodes()
}

// pool is the node's shared connections.
type pool struct {
	addr  string
	conns []*backend.Conn
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// Cluster serves one cluster's clients. Update may be called from any goroutine.
type Cluster struct {
	opts Options
	log  hclog.Logger

	snap atomic.Pointer[snapshot]
	// ready is closed when the first table is in, so sessions that start earlier can wait.
	ready     chan struct{}
	readyOnce sync.Once

	mu       sync.Mutex // serialises Update; guards pools
	pools    map[string]*pool
	ln       net.Listener
	sessions map[*session]struct{}
	closed   bool
	nextID   atomic.Uint64
	wg       sync.WaitGroup
	retiring map[*pool]*time.Timer // pools no table names any more, closed after RetireGrace
}

// NewCluster returns a cluster that has no table yet; requests wait for the first Update.
func NewCluster(opts Options) *Cluster {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.NodeConnections <= 0 {
		opts.NodeConnections = 1
	}
	if opts.RetireGrace <= 0 {
		opts.RetireGrace = 5 * time.Second
	}
	if opts.ListenProto == "" {
		opts.ListenProto = "tcp"
	}
	return &Cluster{
		opts:     opts,
		log:      opts.Logger.Named("dataplane").With("cluster", opts.Name),
		ready:    make(chan struct{}),
		pools:    make(map[string]*pool),
		sessions: make(map[*session]struct{}),
		retiring: make(map[*pool]*time.Timer),
	}
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.opts.Name }

// Update installs a new routing table: the Sink the control plane calls. Tables with a version
// not newer than the current one are ignored. Connection pools are carried over by address;
// pools of nodes the new table no longer names are closed after RetireGrace.
func (c *Cluster) Update(t *route.Table) error {
	if t == nil || t.Ring == nil {
		return errors.New("update: table has no ring")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("update cluster %q: closed", c.opts.Name)
	}
	if cur := c.snap.Load(); cur != nil && t.Version <= cur.table.Version {
		return nil
	}
	nodes := t.Ring.Nodes()
	next := &snapshot{table: t, pools: make([]*pool, len(nodes))}
	named := make(map[string]bool, len(nodes))
	for i, n := range nodes {
		p := c.pools[n.Addr]
		if p == nil {
			p = c.newPoolLocked(n.Addr)
			c.pools[n.Addr] = p
		}
		next.pools[i] = p
		named[n.Addr] = true
	}
	c.snap.Store(next)
	c.readyOnce.Do(func() { close(c.ready) })
	for addr, p := range c.pools {
		if !named[addr] {
			delete(c.pools, addr)
			c.retireLocked(p)
		}
	}
	c.log.Debug("routing table installed", "version", t.Version, "nodes", len(nodes))
	return nil
}

// retireLocked closes p after the grace period. c.mu must be held.
func (c *Cluster) retireLocked(p *pool) {
	c.retiring[p] = time.AfterFunc(c.opts.RetireGrace, func() {
		c.mu.Lock()
		delete(c.retiring, p)
		c.mu.Unlock()
		p.close()
	})
}

func (c *Cluster) newPoolLocked(addr string) *pool {
	p := &pool{addr: addr, conns: make([]*backend.Conn, c.opts.NodeConnections)}
	for i := range p.conns {
		p.conns[i] = backend.New(backend.Options{
			Addr:         addr,
			DialTimeout:  c.opts.DialTimeout,
			ReadTimeout:  c.opts.ReadTimeout,
			WriteTimeout: c.opts.WriteTimeout,
			Logger:       c.log.Named("backend"),
		})
	}
	return p
}

// Listen opens the cluster's listener.
func (c *Cluster) Listen() error {
	if c.opts.ListenProto == "unix" {
		_ = os.Remove(c.opts.ListenAddr) // a stale socket file from a previous run
	}
	ln, err := net.Listen(c.opts.ListenProto, c.opts.ListenAddr)
	if err != nil {
		return fmt.Errorf("cluster %q: listen on %s %s: %w", c.opts.Name, c.opts.ListenProto, c.opts.ListenAddr, err)
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	c.log.Info("listening", "addr", ln.Addr().String(), "proto", c.opts.ListenProto)
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
		return fmt.Errorf("cluster %q: serve before listen", c.opts.Name)
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return nil
			}
			// Out of file descriptors and the like: back off instead of spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			c.log.Error("accept failed", "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s := newSession(c, nc)
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return nil
		}
		c.sessions[s] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			s.serve()
			c.mu.Lock()
			delete(c.sessions, s)
			c.mu.Unlock()
		}()
	}
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
	if c.ln != nil {
		c.ln.Close()
	}
	for s := range c.sessions {
		s.nc.Close()
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
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	c.wg.Wait()
	for _, p := range toClose {
		p.close()
	}
}

// current returns the current snapshot, waiting (bounded) for the first one.
func (c *Cluster) current() *snapshot {
	if s := c.snap.Load(); s != nil {
		return s
	}
	select {
	case <-c.ready:
	case <-time.After(5 * time.Second):
	}
	return c.snap.Load()
}
