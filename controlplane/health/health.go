// Package health pings the backend nodes of a cluster and keeps each one's state: UP while it
// answers, DOWN from its first failed ping (a refused or timed-out dial, an AUTH or TLS
// failure, no PONG within the timeout) and, when FailLimit > 0, EJECTED after FailLimit
// consecutive failures; the first successful ping makes it UP again. Every node is pinged,
// whatever FailLimit says: FailLimit decides only whether a DOWN node leaves the ring
// (ping_fail_limit; 0 never ejects, as twemproxy's auto_eject_hosts: false), never whether its
// health is observed. An ejected node is pinged at a pace of its own (ping_succ_interval),
// usually a slower one, until it answers.
//
// DOWN at the first failure, not after a streak: a ping already waits up to its timeout for a
// PONG, so one failure means the node did not answer a trivial command for that long; with the
// default 1 s interval a dead node is DOWN at most one interval plus one timeout after it died.
// DOWN alone changes no routing; it is what operators, metrics and readiness see.
//
// Each node is pinged on a connection of its own, never a data connection, so a backlog of
// client traffic cannot make a healthy node look dead (or hide a dead one), and each node is
// pinged by its own goroutine, so a hung node never delays the others' pings. The set of nodes
// may change while Run runs (SetNodes: a Redis Cluster's topology). States change on the
// goroutine that runs Run, which logs one line per change; the consumer hears of changes to
// the ejected set through OnChange and builds a new routing table from them, and reads states
// with States at any time.
package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/redisdial"
)

// State is a node's health as the checker sees it.
type State uint8

// The states of a node.
const (
	// Up: the last ping was answered (or none has been sent yet).
	Up State = iota
	// Down: the last ping failed; the node still has its place in the ring.
	Down
	// Ejected: FailLimit consecutive pings failed; the node is out of the ring until it answers.
	Ejected
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Ejected:
		return "ejected"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// NodeHealth is one node's state.
type NodeHealth struct {
	Addr  string
	State State
	// Since is when the node entered State (when the checker first knew it, for a node that
	// has been UP all along).
	Since time.Time
	// Fails counts consecutive failed pings; 0 while the node answers.
	Fails int
	// LastError is the error of the last failed ping, kept after the node is UP again;
	// LastErrorAt is when it happened. "" and zero when no ping ever failed.
	LastError   string
	LastErrorAt time.Time
}

// Config configures a Checker.
type Config struct {
	Cluster string   // cluster name, for logs
	Nodes   []string // node addresses, host:port; duplicates are pinged once
	// Interval is the time between two pings of a node in the ring (ping_interval); ≤ 0
	// means 1s.
	Interval time.Duration
	// SuccInterval is the time between two pings of an ejected node (ping_succ_interval);
	// ≤ 0 means Interval. Once the node answers it is restored and back to Interval.
	SuccInterval time.Duration
	// FailLimit consecutive failures eject a node (ping_fail_limit); 0 never ejects. Nodes
	// are pinged and go DOWN either way.
	FailLimit int
	// Timeout bounds the dial and the reply of one ping; min(Interval, 1s) when 0.
	Timeout time.Duration
	// Logger receives one line per change of a node's state (WARN, with node and reason), and
	// debug lines for failures that change nothing. Default: hclog.NewNullLogger().
	Logger hclog.Logger
	// Username and Password, when Password is set, are sent as AUTH on every new ping
	// connection before the first PING (backend_auth / backend_password).
	Username, Password string
	// TLS, when set, wraps every ping connection (backend_tls).
	TLS *tls.Config
	// Ejected are nodes that start ejected, e.g. carried over from the checker this one
	// replaces on a reload: they stay out of the ring, paced at SuccInterval, until they answer,
	// instead of coming back until FailLimit more pings fail. Ignored when FailLimit is 0;
	// addresses not in Nodes are ignored.
	Ejected []string
	// Previous are the states a replaced checker held (States of the checker this one
	// replaces on a reload): nodes still in Nodes keep their state, since-when and last error,
	// so a reload neither forgets a DOWN node nor logs its change again. An EJECTED node not in
	// Ejected is DOWN.
	Previous []NodeHealth
	// OnChange is called on the goroutine running Run with the full sorted list of ejected
	// addresses every time that set changes; the slice is the callee's to keep. It must not
	// block for long: pings keep running, but their results wait for it.
	OnChange func(ejected []string)
	// OnState, when set, is called on the goroutine running Run after each change of a node's
	// state (not per ping), with the node's new state. Same contract as OnChange.
	OnState func(NodeHealth)
}

// Checker pings nodes and tracks their states.
type Checker struct {
	cfg Config
	log hclog.Logger

	mu      sync.Mutex
	nodes   []string               // sorted, deduplicated; the set Run pings
	states  map[string]*NodeHealth // one per node of nodes; written by Run and SetNodes
	ejected []string               // sorted; replaced, never modified, so it can be handed out
	wake    chan struct{}          // tells Run that nodes changed; buffered, never blocks
}

// New returns a Checker for cfg, with defaults filled in. It does nothing until Run, but
// States already lists every node.
func New(cfg Config) *Checker {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.SuccInterval <= 0 {
		cfg.SuccInterval = cfg.Interval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(cfg.Interval, time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	c := &Checker{
		cfg:    cfg,
		log:    cfg.Logger.Named("health").With("cluster", cfg.Cluster),
		states: map[string]*NodeHealth{},
		wake:   make(chan struct{}, 1),
	}
	c.nodes = sortedSet(cfg.Nodes)
	prev := make(map[string]NodeHealth, len(cfg.Previous))
	for _, p := range cfg.Previous {
		prev[p.Addr] = p
	}
	ejected := make(map[string]bool, len(cfg.Ejected))
	for _, a := range cfg.Ejected {
		ejected[a] = cfg.FailLimit > 0 // nothing would restore it with ejection off
	}
	now := time.Now()
	for _, a := range c.nodes {
		s := &NodeHealth{Addr: a, State: Up, Since: now}
		p, known := prev[a]
		if known {
			*s = p
		}
		switch {
		case ejected[a]:
			if s.State != Ejected {
				s.State, s.Since = Ejected, now
			}
			s.Fails = max(s.Fails, cfg.FailLimit)
			c.ejected = append(c.ejected, a)
		case s.State == Ejected:
			s.State = Down // ejected no longer: failing still, in the ring
		}
		c.states[a] = s
	}
	return c
}

func sortedSet(addrs []string) []string {
	out := slices.Clone(addrs)
	slices.Sort(out)
	return slices.Compact(out)
}

// Ejected returns the sorted addresses currently ejected. Safe from any goroutine.
func (c *Checker) Ejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ejected)
}

// States returns every node's state, sorted by address. Safe from any goroutine.
func (c *Checker) States() []NodeHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeHealth, 0, len(c.nodes))
	for _, a := range c.nodes {
		out = append(out, *c.states[a])
	}
	return out
}

// State returns one node's state; ok is false for a node the checker does not ping.
func (c *Checker) State(addr string) (h NodeHealth, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.states[addr]; s != nil {
		return *s, true
	}
	return NodeHealth{}, false
}

// SetNodes replaces the set of nodes to ping (a Redis Cluster's topology changed): new nodes
// start UP and are pinged at once, nodes gone are no longer pinged and forgotten, the others
// keep their state. Safe from any goroutine, before or while Run runs; it never blocks on
// pings.
func (c *Checker) SetNodes(addrs []string) {
	nodes := sortedSet(addrs)
	c.mu.Lock()
	if slices.Equal(nodes, c.nodes) {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	keep := make(map[string]bool, len(nodes))
	for _, a := range nodes {
		keep[a] = true
		if c.states[a] == nil {
			c.states[a] = &NodeHealth{Addr: a, State: Up, Since: now}
		}
	}
	for _, a := range c.nodes {
		if !keep[a] {
			delete(c.states, a)
		}
	}
	c.nodes = nodes
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// result is one ping's outcome, sent from a node's goroutine to Run.
type result struct {
	addr string
	err  error
	at   time.Time
}

// Run pings every node every Interval (every SuccInterval while it is ejected) until ctx is
// done, then closes its connections and returns once all of its goroutines have ended. Call
// it at most once.
func (c *Checker) Run(ctx context.Context) {
	results := make(chan result, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	pingers := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range pingers {
			cancel()
		}
	}()
	// follow starts a pinger for each new node and stops those of nodes gone.
	follow := func() {
		c.mu.Lock()
		nodes := c.nodes
		fails := make(map[string]int, len(nodes))
		for _, a := range nodes {
			fails[a] = c.states[a].Fails
		}
		c.mu.Unlock()
		for a, cancel := range pingers {
			if _, keep := fails[a]; !keep {
				cancel()
				delete(pingers, a)
			}
		}
		for _, addr := range nodes {
			if pingers[addr] != nil {
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			pingers[addr] = cancel
			p := &pinger{addr: addr, timeout: c.cfg.Timeout, dial: redisdial.Options{
				Addr: addr, DialTimeout: c.cfg.Timeout, ReplyTimeout: c.cfg.Timeout, TLS: c.cfg.TLS,
				Username: c.cfg.Username, Password: c.cfg.Password,
			}}
			f := fails[addr]
			wg.Go(func() { p.loop(pctx, f, c.pace, results) })
		}
		c.publishIfChanged() // a node gone may have been ejected
	}
	follow()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			follow()
		case r := <-results:
			c.record(r)
		}
	}
}

// record applies one ping result to its node's state, logs a change of state once, and
// publishes a change of the ejected set.
func (c *Checker) record(r result) {
	c.mu.Lock()
	s := c.states[r.addr]
	if s == nil { // the node left while its ping was out
		c.mu.Unlock()
		return
	}
	was, wasSince := s.State, s.Since
	if r.err == nil {
		s.Fails = 0
		if was == Up {
			c.mu.Unlock()
			return
		}
		s.State, s.Since = Up, r.at
	} else {
		s.Fails++
		s.LastError, s.LastErrorAt = r.err.Error(), r.at
		next := Down
		if was == Ejected || c.ejectedAfter(s.Fails) {
			next = Ejected // an ejected node stays out until it answers
		}
		if next == was {
			fails := s.Fails
			c.mu.Unlock()
			c.log.Debug("ping failed", "node", r.addr, "state", was, "reason", r.err, "consecutive_failures", fails)
			return
		}
		s.State, s.Since = next, r.at
	}
	now := *s
	c.mu.Unlock()

	switch now.State {
	case Up:
		// WARN like the line that took it down, so that a log filtered at WARN shows both.
		c.log.Warn("node up", "node", r.addr, "was", was, "for", r.at.Sub(wasSince).Round(time.Millisecond))
	case Down:
		c.log.Warn("node down", "node", r.addr, "reason", r.err, "consecutive_failures", now.Fails,
			"ejects_after", c.cfg.FailLimit)
	case Ejected:
		c.log.Warn("node ejected", "node", r.addr, "reason", r.err, "consecutive_failures", now.Fails)
	}
	if c.cfg.OnState != nil {
		c.cfg.OnState(now)
	}
	if was == Ejected || now.State == Ejected {
		c.publishIfChanged()
	}
}

// ejectedAfter reports whether fails consecutive failures keep a node ejected: the node is
// out exactly while its failure streak has reached FailLimit, since one success ends both.
// Never with FailLimit 0.
func (c *Checker) ejectedAfter(fails int) bool {
	return c.cfg.FailLimit > 0 && fails >= c.cfg.FailLimit
}

// pace is the time until the next ping of a node after fails consecutive failures.
func (c *Checker) pace(fails int) time.Duration {
	if c.ejectedAfter(fails) {
		return c.cfg.SuccInterval
	}
	return c.cfg.Interval
}

// publishIfChanged stores the ejected set and tells OnChange, when it differs from the last.
// Called only from Run's goroutine.
func (c *Checker) publishIfChanged() {
	var ejected []string
	c.mu.Lock()
	for _, a := range c.nodes { // sorted, so ejected is too
		if c.states[a].State == Ejected {
			ejected = append(ejected, a)
		}
	}
	same := slices.Equal(ejected, c.ejected)
	if !same {
		c.ejected = ejected
	}
	c.mu.Unlock()
	if !same && c.cfg.OnChange != nil {
		c.cfg.OnChange(slices.Clone(ejected))
	}
}

// pinger owns one node's ping connection.
type pinger struct {
	addr    string
	timeout time.Duration
	dial    redisdial.Options // how a new ping connection is opened (TLS, AUTH)

	mu   sync.Mutex // guards conn against the cancel callback
	conn net.Conn
	rd   *bufio.Reader
}

var (
	pingCmd  = []byte("PING\r\n")
	pongLine = []byte("+PONG\r\n")
)

// loop pings at once, then every pace(consecutive failures so far, starting at fails), until
// ctx is done.
func (p *pinger) loop(ctx context.Context, fails int, pace func(fails int) time.Duration, results chan<- result) {
	// A cancel must not wait for a hung node's reply deadline: expire it now.
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		if p.conn != nil {
			_ = p.conn.SetDeadline(time.Unix(1, 0))
		}
		p.mu.Unlock()
	})
	defer stop()
	defer p.drop()

	// The pinger keeps its own failure streak, the one Run's state for this node follows, so
	// it knows the node's pace (ejected or not) without waiting for Run to catch up.
	interval := pace(fails)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := p.ping(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case results <- result{addr: p.addr, err: err, at: time.Now()}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			fails++
		} else {
			fails = 0
		}
		if next := pace(fails); next != interval {
			interval = next
			tick.Reset(interval) // the next ping is one new interval from now
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// ping sends one PING and expects +PONG within the timeout. Any failure closes the
// connection, so that the next ping starts on a fresh one rather than reading a late reply.
func (p *pinger) ping(ctx context.Context) error {
	reused := p.conn != nil
	err := p.try(ctx)
	// A connection that idled between pings may have been closed by the server (Redis's
	// `timeout`) or something in between, or the node restarted: that says nothing about
	// whether the node answers now, so one fresh connection decides. Not after a timeout: a
	// hung node must not get twice the time to be found DOWN.
	var ce *connError
	if reused && errors.As(err, &ce) && !isTimeout(err) && ctx.Err() == nil {
		err = p.try(ctx)
	}
	return err
}

// try dials when there is no connection, then sends one PING; any failure drops the
// connection.
func (p *pinger) try(ctx context.Context) error {
	if p.conn == nil {
		conn, err := redisdial.Dial(ctx, p.dial)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.conn = conn
		p.mu.Unlock()
		if ctx.Err() != nil { // cancelled while dialling: the callback missed this conn
			p.drop()
			return ctx.Err()
		}
		if p.rd == nil {
			// Room for a whole Redis error line (-MASTERDOWN ... is 81 bytes), so the node's
			// error reads in full; a longer reply line is cut there, never buffered further.
			p.rd = bufio.NewReaderSize(conn, 256)
		} else {
			p.rd.Reset(conn)
		}
	}
	err := p.exchange(ctx)
	if err != nil {
		p.drop()
	}
	return err
}

// connError is a failure to write to or read from the ping connection (not a wrong reply).
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *pinger) exchange(ctx context.Context) error {
	return p.roundTrip(ctx, pingCmd, pongLine, "ping")
}

// roundTrip sends cmd and expects the one-line reply want, within the timeout.
func (p *pinger) roundTrip(ctx context.Context, cmd, want []byte, what string) error {
	if err := p.conn.SetDeadline(time.Now().Add(p.timeout)); err != nil {
		return fmt.Errorf("%s %s: set deadline: %w", what, p.addr, err)
	}
	// Checked after setting the deadline: a cancel from here on finds the cancel callback
	// still to run, and it moves the deadline to the past.
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := p.conn.Write(cmd); err != nil {
		return &connError{fmt.Errorf("%s %s: write: %w", what, p.addr, err)}
	}
	line, err := p.rd.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%s %s: reply %q... is not %s", what, p.addr, line, bytes.TrimSpace(want))
	case err != nil:
		return &connError{fmt.Errorf("%s %s: read reply: %w", what, p.addr, err)}
	case !bytes.Equal(line, want):
		return fmt.Errorf("%s %s: reply %q is not %s", what, p.addr, bytes.TrimRight(line, "\r\n"), bytes.TrimSpace(want))
	}
	return nil
}

// drop closes the ping connection, if any.
func (p *pinger) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}
