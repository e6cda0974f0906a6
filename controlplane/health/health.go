// Package health pings the backend nodes of a plain-Redis cluster and ejects the ones that
// stop answering: after FailLimit consecutive failed pings a node is ejected, and the first
// successful ping afterwards restores it (ping_fail_limit / ping_interval in the config).
// An ejected node is pinged at a pace of its own (ping_succ_interval), usually a slower one,
// until it answers.
//
// Each node is pinged on a connection of its own, never a data connection, so a backlog of
// client traffic cannot make a healthy node look dead (or hide a dead one), and each node is
// pinged by its own goroutine, so a hung node never delays the others' pings. The ejection
// state lives on the goroutine that runs Run; the consumer hears of changes through OnChange
// and builds a new routing table from them.
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

	"github.com/aster-proxy/aster/internal/tlsconf"
)

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
	// FailLimit consecutive failures eject a node (ping_fail_limit); 0 never ejects, and Run
	// then sends no pings at all.
	FailLimit int
	// Timeout bounds the dial and the reply of one ping; min(Interval, 1s) when 0.
	Timeout time.Duration
	// Logger receives one line per ejection and per restore (with node and reason), and
	// debug lines for failures below the limit. Default: hclog.NewNullLogger().
	Logger hclog.Logger
	// Username and Password, when Password is set, are sent as AUTH on every new ping
	// connection before the first PING (backend_auth / backend_password).
	Username, Password string
	// TLS, when set, wraps every ping connection (backend_tls).
	TLS *tls.Config
	// Ejected are nodes that start ejected, e.g. carried over from the checker this one
	// replaces on a reload: they stay out of the ring, paced at SuccInterval, until they answer,
	// instead of coming back until FailLimit more pings fail. Addresses not in Nodes are ignored.
	Ejected []string
	// OnChange is called on the goroutine running Run with the full sorted list of ejected
	// addresses every time that set changes; the slice is the callee's to keep. It must not
	// block for long: pings keep running, but their results wait for it.
	OnChange func(ejected []string)
}

// Checker pings nodes and tracks which ones are ejected.
type Checker struct {
	cfg   Config
	nodes []string
	log   hclog.Logger

	mu      sync.Mutex
	ejected []string // sorted; replaced, never modified, so it can be handed out
}

// New returns a Checker for cfg, with defaults filled in. It does nothing until Run.
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
	nodes := slices.Clone(cfg.Nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	var ejected []string
	for _, a := range nodes {
		if slices.Contains(cfg.Ejected, a) {
			ejected = append(ejected, a)
		}
	}
	return &Checker{
		cfg:     cfg,
		nodes:   nodes,
		log:     cfg.Logger.Named("health").With("cluster", cfg.Cluster),
		ejected: ejected,
	}
}

// Ejected returns the sorted addresses currently ejected. Safe from any goroutine.
func (c *Checker) Ejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ejected)
}

// result is one ping's outcome, sent from a node's goroutine to Run.
type result struct {
	node int
	err  error
}

// nodeState is the ejection state machine of one node; owned by Run's goroutine.
type nodeState struct {
	fails   int
	ejected bool
}

// Run pings every node every Interval (every SuccInterval while it is ejected) until ctx is
// done, then closes its connections and returns once all of its goroutines have ended. Call
// it at most once.
func (c *Checker) Run(ctx context.Context) {
	if c.cfg.FailLimit <= 0 || len(c.nodes) == 0 {
		<-ctx.Done()
		return
	}
	states := make([]nodeState, len(c.nodes))
	for i, addr := range c.nodes {
		if slices.Contains(c.ejected, addr) { // Config.Ejected: out until it answers
			states[i] = nodeState{fails: c.cfg.FailLimit, ejected: true}
		}
	}
	results := make(chan result, len(c.nodes))
	var wg sync.WaitGroup
	for i, addr := range c.nodes {
		host, _, _ := net.SplitHostPort(addr)
		p := &pinger{addr: addr, timeout: c.cfg.Timeout, auth: authCommand(c.cfg.Username, c.cfg.Password),
			tls: tlsconf.ForHost(c.cfg.TLS, host)}
		fails := states[i].fails
		wg.Go(func() { p.loop(ctx, i, fails, c.pace, results) })
	}
	defer wg.Wait()

	for {
		select {
		case <-ctx.Done():
			return
		case r := <-results:
			if c.record(&states[r.node], c.nodes[r.node], r.err) {
				c.publish(states)
			}
		}
	}
}

// record applies one ping result to a node's state and reports whether the node was
// ejected or restored by it.
func (c *Checker) record(s *nodeState, addr string, err error) bool {
	if err == nil {
		s.fails = 0
		if !s.ejected {
			return false
		}
		s.ejected = false
		c.log.Info("node restored", "node", addr)
		return true
	}
	s.fails++
	if s.ejected {
		return false
	}
	if !c.ejectedAfter(s.fails) {
		c.log.Debug("ping failed", "node", addr, "reason", err, "consecutive_failures", s.fails)
		return false
	}
	s.ejected = true
	c.log.Warn("node ejected", "node", addr, "reason", err, "consecutive_failures", s.fails)
	return true
}

// ejectedAfter reports whether fails consecutive failures keep a node ejected: the node is
// out exactly while its failure streak has reached FailLimit, since one success ends both.
func (c *Checker) ejectedAfter(fails int) bool {
	return fails >= c.cfg.FailLimit
}

// pace is the time until the next ping of a node after fails consecutive failures.
func (c *Checker) pace(fails int) time.Duration {
	if c.ejectedAfter(fails) {
		return c.cfg.SuccInterval
	}
	return c.cfg.Interval
}

// publish stores the new ejected set and tells OnChange.
func (c *Checker) publish(states []nodeState) {
	var ejected []string
	for i, s := range states {
		if s.ejected {
			ejected = append(ejected, c.nodes[i]) // c.nodes is sorted, so ejected is too
		}
	}
	c.mu.Lock()
	c.ejected = ejected
	c.mu.Unlock()
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(slices.Clone(ejected))
	}
}

// pinger owns one node's ping connection.
type pinger struct {
	addr    string
	timeout time.Duration
	auth    []byte // AUTH command sent on each new connection; nil for none
	tls     *tls.Config

	mu   sync.Mutex // guards conn against the cancel callback
	conn net.Conn
	rd   *bufio.Reader
}

var (
	pingCmd  = []byte("PING\r\n")
	okLine   = []byte("+OK\r\n")
	pongLine = []byte("+PONG\r\n")
)

// loop pings at once, then every pace(consecutive failures so far, starting at fails), until
// ctx is done.
func (p *pinger) loop(ctx context.Context, node int, fails int, pace func(fails int) time.Duration, results chan<- result) {
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
		case results <- result{node: node, err: err}:
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
	if p.conn == nil {
		d := net.Dialer{Timeout: p.timeout}
		conn, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", p.addr, err)
		}
		if p.tls != nil {
			tc := tls.Client(conn, p.tls)
			_ = tc.SetDeadline(time.Now().Add(p.timeout))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return fmt.Errorf("TLS handshake with %s: %w", p.addr, err)
			}
			conn = tc
		}
		p.mu.Lock()
		p.conn = conn
		p.mu.Unlock()
		if ctx.Err() != nil { // cancelled while dialling: the callback missed this conn
			p.drop()
			return ctx.Err()
		}
		if p.rd == nil {
			p.rd = bufio.NewReaderSize(conn, 64)
		} else {
			p.rd.Reset(conn)
		}
		if p.auth != nil {
			if err := p.roundTrip(ctx, p.auth, okLine, "AUTH"); err != nil {
				p.drop()
				return err
			}
		}
	}
	err := p.exchange(ctx)
	if err != nil {
		p.drop()
	}
	return err
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
		return fmt.Errorf("%s %s: write: %w", what, p.addr, err)
	}
	line, err := p.rd.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%s %s: reply %q... is not %s", what, p.addr, line, bytes.TrimSpace(want))
	case err != nil:
		return fmt.Errorf("%s %s: read reply: %w", what, p.addr, err)
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

// authCommand is the AUTH command for the credentials, or nil when there is no password.
func authCommand(user, pass string) []byte {
	switch {
	case pass == "":
		return nil
	case user == "":
		return fmt.Appendf(nil, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(pass), pass)
	default:
		return fmt.Appendf(nil, "*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(user), user, len(pass), pass)
	}
}
