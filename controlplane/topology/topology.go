// Package topology keeps a Redis Cluster's slot map true: it asks the cluster's nodes for
// CLUSTER SLOTS at start, every fetch interval and soon after the data plane hints that the
// map is stale (MOVED seen, a node failing), and hands each changed map to its consumer.
//
// It runs off the hot path on one goroutine; the data plane only ever sees finished, immutable
// route.SlotMap values.
package topology

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout = time.Second
	DefaultReadTimeout = time.Second
	DefaultMinGap      = 200 * time.Millisecond
)

// maxReplySize bounds a CLUSTER SLOTS reply; even a cluster of a thousand nodes answers with a
// few hundred KiB.
const maxReplySize = 16 << 20

// Backoff of Run's first fetch, which retries until it has a map.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// Config configures a Fetcher.
type Config struct {
	Cluster     string        // the cluster's name, for logs
	Seeds       []string      // host:port
	Interval    time.Duration // periodic refresh (config `fetch`); 0 = only on hints
	DialTimeout time.Duration // per node asked; default DefaultDialTimeout
	ReadTimeout time.Duration // per node asked, for the whole reply; default DefaultReadTimeout
	MinGap      time.Duration // debounce: at most one fetch per MinGap; default DefaultMinGap
	Logger      hclog.Logger  // default hclog.NewNullLogger()
	// Username and Password, when Password is set, are sent as AUTH before CLUSTER SLOTS
	// (backend_auth / backend_password).
	Username, Password string
	// TLS, when set, wraps every connection to a node (backend_tls).
	TLS *tls.Config
	// OnChange is called on the fetcher's goroutine with each new map that differs (Equal) from
	// the previous one, including the first. Must not block long.
	OnChange func(*route.SlotMap)
}

// Fetcher fetches a cluster's slot map. Fetch, Hint and Current may be called from any
// goroutine; Run is called once.
type Fetcher struct {
	cfg  Config
	log  hclog.Logger
	cur  atomic.Pointer[route.SlotMap]
	hint chan struct{} // capacity 1: pending hints coalesce into one

	fetches atomic.Int64 // fetches Run made, for tests of the debounce
}

// New returns a fetcher for cfg, with defaults filled in. It does nothing until Run or Fetch.
func New(cfg Config) *Fetcher {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MinGap <= 0 {
		cfg.MinGap = DefaultMinGap
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Fetcher{
		cfg:  cfg,
		log:  cfg.Logger.Named("topology").With("cluster", cfg.Cluster),
		hint: make(chan struct{}, 1),
	}
}

// Current returns the last map Run published, nil before the first. Safe from any goroutine.
func (f *Fetcher) Current() *route.SlotMap { return f.cur.Load() }

// Hint asks for an early refresh (MOVED seen, node failing). It never blocks; calls made
// before the refresh starts coalesce into it.
func (f *Fetcher) Hint() {
	select {
	case f.hint <- struct{}{}:
	default:
	}
}

// Fetch asks, in turn, the nodes of the last known map then the seeds (a down or failing node
// is skipped, each with DialTimeout/ReadTimeout) for CLUSTER SLOTS, and returns the map of the
// first that answers with a non-empty map. The error names every node tried and why it failed.
// Fetch does not publish the map; Run does.
func (f *Fetcher) Fetch(ctx context.Context) (*route.SlotMap, error) {
	var failures []string
	for _, addr := range f.candidates() {
		if err := ctx.Err(); err != nil {
			failures = append(failures, "stopped: "+err.Error())
			break
		}
		m, err := f.fetchFrom(ctx, addr)
		if err == nil {
			return m, nil
		}
		failures = append(failures, err.Error())
		f.log.Debug("node did not give a slot map", "node", addr, "error", err)
	}
	if len(failures) == 0 {
		return nil, fmt.Errorf("fetch slot map of cluster %q: no seeds", f.cfg.Cluster)
	}
	return nil, fmt.Errorf("fetch slot map of cluster %q: %s", f.cfg.Cluster, strings.Join(failures, "; "))
}

// candidates lists the addresses to ask: the current map's masters, its replicas, then the
// seeds, each once.
func (f *Fetcher) candidates() []string {
	var out []string
	seen := make(map[string]bool)
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if m := f.cur.Load(); m != nil {
		for _, r := range m.Ranges() {
			add(r.Master.Addr)
		}
		for _, n := range m.Nodes() {
			add(n.Addr)
		}
	}
	for _, s := range f.cfg.Seeds {
		add(s)
	}
	return out
}

// fetchFrom asks one node for CLUSTER SLOTS on a fresh connection.
func (f *Fetcher) fetchFrom(ctx context.Context, addr string) (*route.SlotMap, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: bad address: %w", addr, err)
	}
	d := net.Dialer{Timeout: f.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if f.cfg.TLS != nil {
		tc := tls.Client(conn, tlsconf.ForHost(f.cfg.TLS, host))
		_ = tc.SetDeadline(time.Now().Add(f.cfg.ReadTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: TLS handshake: %w", addr, err)
		}
		conn = tc
	}
	defer conn.Close()
	deadline := time.Now().Add(f.cfg.ReadTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	// End the exchange at once when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if f.cfg.Password != "" {
		auth := [][]byte{[]byte("AUTH"), []byte(f.cfg.Password)}
		if f.cfg.Username != "" {
			auth = [][]byte{[]byte("AUTH"), []byte(f.cfg.Username), []byte(f.cfg.Password)}
		}
		if _, err := conn.Write(resp.AppendCommand(nil, auth...)); err != nil {
			return nil, fmt.Errorf("%s: send AUTH: %w", addr, err)
		}
		reply, err := readReply(conn)
		if err != nil {
			return nil, fmt.Errorf("%s: read AUTH reply: %w", addr, err)
		}
		if resp.IsError(reply) {
			return nil, fmt.Errorf("%s: AUTH refused: %s", addr, bytes.TrimSpace(reply[1:]))
		}
	}
	if _, err := conn.Write(resp.AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))); err != nil {
		return nil, fmt.Errorf("%s: send CLUSTER SLOTS: %w", addr, err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return nil, fmt.Errorf("%s: read CLUSTER SLOTS reply: %w", addr, err)
	}
	m, err := parseClusterSlots(reply, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if m.Covered() == 0 {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS names no slots", addr)
	}
	return m, nil
}

// readReply reads exactly one complete reply from conn.
func readReply(conn net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 16<<10)
	var sc resp.ReplyScanner // resumes where the last read stopped
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxReplySize {
				return nil, fmt.Errorf("reply larger than %d bytes", maxReplySize)
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if m, serr := sc.Scan(buf); serr != nil {
			return nil, serr
		} else if m > 0 {
			return buf[:m], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Run fetches once at start (retrying with backoff until it has a map or ctx ends), then every
// Interval and whenever Hint was called (debounced by MinGap), until ctx is done. Each map
// that differs from the previous one is stored for Current and given to OnChange.
func (f *Fetcher) Run(ctx context.Context) {
	backoff := firstBackoff
	for f.cur.Load() == nil {
		if err := f.refresh(ctx); err == nil {
			break
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}

	var tick <-chan time.Time
	var timer *time.Timer
	if f.cfg.Interval > 0 {
		timer = time.NewTimer(f.cfg.Interval)
		defer timer.Stop()
		tick = timer.C
	}
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-f.hint:
			if !sleep(ctx, f.cfg.MinGap-time.Since(last)) {
				return
			}
		}
		// This fetch answers every hint made so far.
		select {
		case <-f.hint:
		default:
		}
		last = time.Now()
		_ = f.refresh(ctx)
		if timer != nil {
			timer.Reset(f.cfg.Interval)
		}
	}
}

// refresh fetches a map and publishes it when it differs from the current one.
func (f *Fetcher) refresh(ctx context.Context) error {
	f.fetches.Add(1)
	m, err := f.Fetch(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("slot map refresh failed, keeping the previous map", "error", err)
		}
		return err
	}
	prev := f.cur.Load()
	if prev.Equal(m) {
		f.log.Trace("slot map unchanged")
		return nil
	}
	f.cur.Store(m)
	f.log.Info("slot map changed", "nodes", len(m.Nodes()), "ranges", len(m.Ranges()),
		"slots_covered", m.Covered(), "masters", describeMasters(m))
	if f.cfg.OnChange != nil {
		f.cfg.OnChange(m)
	}
	return nil
}

// describeMasters lists "start-end=addr" for the log.
func describeMasters(m *route.SlotMap) string {
	var b strings.Builder
	for i, r := range m.Ranges() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d-%d=%s", r.Start, r.End, r.Master.Addr)
	}
	return b.String()
}

// sleep waits d or until ctx is done, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
