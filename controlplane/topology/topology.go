// Package topology keeps a Redis Cluster's slot map true: it asks the cluster's nodes for
// CLUSTER SLOTS at start, then watches the cluster by asking one node again every
// WatchInterval (1 s) on a connection it keeps, and at once (debounced) when the data plane
// hints that the map is stale (MOVED seen, a node failing). Every fetch interval the kept
// connection is dropped and the nodes are asked afresh. Each changed map goes to its consumer;
// an unchanged one costs a byte comparison of the reply.
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

	"github.com/aster-proxy/aster/dataplane/redisdial"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout = time.Second
	DefaultReadTimeout = time.Second
	DefaultMinGap      = 200 * time.Millisecond
	// DefaultWatchInterval is how often the cluster is watched: a failover is published at
	// most about this long after a node shows it, even when no request hinted it.
	DefaultWatchInterval = time.Second
)

// Results of a refresh, for OnRefresh (and the aster_topology_refreshes_total metric).
const (
	RefreshChanged   = "changed"
	RefreshUnchanged = "unchanged"
	RefreshFailed    = "failed"
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
	Cluster  string        // the cluster's name, for logs
	Seeds    []string      // host:port
	Interval time.Duration // full refresh on fresh connections (config `fetch`); 0 = none
	// WatchInterval is how often the kept connection is asked for CLUSTER SLOTS; default
	// DefaultWatchInterval, < 0 = no watch (only Interval and hints).
	WatchInterval time.Duration
	DialTimeout   time.Duration // per node asked; default DefaultDialTimeout
	ReadTimeout   time.Duration // per node asked, for the whole reply; default DefaultReadTimeout
	MinGap        time.Duration // debounce: at most one fetch per MinGap; default DefaultMinGap
	Logger        hclog.Logger  // default hclog.NewNullLogger()
	// Username and Password, when Password is set, are sent as AUTH before CLUSTER SLOTS
	// (backend_auth / backend_password).
	Username, Password string
	// TLS, when set, wraps every connection to a node (backend_tls).
	TLS *tls.Config
	// OnChange is called on the fetcher's goroutine with each new map that differs (Equal) from
	// the previous one, including the first. Must not block long.
	OnChange func(*route.SlotMap)
	// OnRefresh, when set, is told the result of every refresh Run makes (RefreshChanged,
	// RefreshUnchanged, RefreshFailed), after OnChange for a change. Must not block.
	OnRefresh func(result string)
}

// Fetcher fetches a cluster's slot map. Fetch, Hint and Current may be called from any
// goroutine; Run is called once.
type Fetcher struct {
	cfg  Config
	log  hclog.Logger
	cur  atomic.Pointer[route.SlotMap]
	hint chan struct{} // capacity 1: pending hints coalesce into one

	// Run's goroutine only: the connection kept to the node watched, and the CLUSTER SLOTS
	// reply that gave the current map (a reply equal byte for byte is an unchanged map).
	kept      net.Conn
	keptAddr  string
	lastReply []byte
	lastFrom  string // the node that sent lastReply (a node's reply names itself by what it was asked)

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
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = DefaultWatchInterval
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
		m, _, conn, err := f.fetchFrom(ctx, addr)
		if err == nil {
			conn.Close()
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

// fetchFrom asks one node for CLUSTER SLOTS on a fresh connection, and returns the map, the
// raw reply and the connection, still open, for the caller to keep or close.
func (f *Fetcher) fetchFrom(ctx context.Context, addr string) (*route.SlotMap, []byte, net.Conn, error) {
	conn, err := redisdial.Dial(ctx, redisdial.Options{
		Addr: addr, DialTimeout: f.cfg.DialTimeout, ReplyTimeout: f.cfg.ReadTimeout, TLS: f.cfg.TLS,
		Username: f.cfg.Username, Password: f.cfg.Password,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	reply, err := f.askSlots(ctx, conn, addr)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	m, err := slotMapOf(reply, addr)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	return m, reply, conn, nil
}

// exchange bounds one exchange on conn by ReadTimeout (and ctx): it sets the deadline and
// returns what ends the watch on ctx.
func (f *Fetcher) exchange(ctx context.Context, conn net.Conn) (stop func() bool) {
	deadline := time.Now().Add(f.cfg.ReadTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	// End the exchange at once when ctx is cancelled.
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

var clusterSlotsFrame = resp.AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))

// askSlots sends CLUSTER SLOTS on conn and returns the whole reply.
func (f *Fetcher) askSlots(ctx context.Context, conn net.Conn, addr string) ([]byte, error) {
	stop := f.exchange(ctx, conn)
	defer stop()
	if _, err := conn.Write(clusterSlotsFrame); err != nil {
		return nil, fmt.Errorf("%s: send CLUSTER SLOTS: %w", addr, err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return nil, fmt.Errorf("%s: read CLUSTER SLOTS reply: %w", addr, err)
	}
	return reply, nil
}

// slotMapOf parses the CLUSTER SLOTS reply of the node at addr.
func slotMapOf(reply []byte, addr string) (*route.SlotMap, error) {
	host, _, _ := net.SplitHostPort(addr)
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

// Run fetches once at start (retrying with backoff until it has a map or ctx ends), then
// watches: every WatchInterval with no other refresh, and whenever Hint was called (debounced
// by MinGap), it asks the node it keeps a connection to (the last that answered) for CLUSTER
// SLOTS, and the other nodes in turn when that fails; every Interval it drops that connection
// and asks afresh. Each map that differs from the previous one is stored for Current and given
// to OnChange. Run closes its connection when ctx is done.
func (f *Fetcher) Run(ctx context.Context) {
	defer f.dropKept()
	backoff := firstBackoff
	for f.cur.Load() == nil {
		if _, err := f.refresh(ctx); err == nil {
			break
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}

	var nextFull time.Time
	if f.cfg.Interval > 0 {
		nextFull = time.Now().Add(f.cfg.Interval)
	}
	timer := time.NewTimer(f.wait(nextFull))
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
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
		if !nextFull.IsZero() && !last.Before(nextFull) {
			f.dropKept() // the full refresh: every node may be asked again, seeds included
			nextFull = last.Add(f.cfg.Interval)
		}
		_, _ = f.refresh(ctx)
		timer.Stop()
		select { // a timer that fired meanwhile (Go < 1.23 semantics): drained
		case <-timer.C:
		default:
		}
		timer.Reset(f.wait(nextFull))
	}
}

// wait is how long Run waits for a hint before its next refresh: WatchInterval, or until the
// next full refresh when that comes first; a long time when neither is set.
func (f *Fetcher) wait(nextFull time.Time) time.Duration {
	d := time.Duration(1<<63 - 1)
	if f.cfg.WatchInterval > 0 {
		d = f.cfg.WatchInterval
	}
	if !nextFull.IsZero() {
		d = min(d, max(time.Until(nextFull), 0))
	}
	return d
}

// dropKept closes the connection kept to the watched node. Run's goroutine only.
func (f *Fetcher) dropKept() {
	if f.kept != nil {
		f.kept.Close()
		f.kept, f.keptAddr = nil, ""
	}
}

// poll gets the cluster's CLUSTER SLOTS reply: on the kept connection when there is one,
// else (or when it fails) from the nodes in turn as Fetch asks them, keeping the connection
// of the first that answers. unchanged: the reply is the one that gave the current map.
// Run's goroutine only.
func (f *Fetcher) poll(ctx context.Context) (m *route.SlotMap, reply []byte, unchanged bool, err error) {
	if f.kept != nil {
		reply, err = f.askSlots(ctx, f.kept, f.keptAddr)
		if err == nil && f.cur.Load() != nil && f.lastFrom == f.keptAddr && bytes.Equal(reply, f.lastReply) {
			return nil, reply, true, nil
		}
		if err == nil {
			m, err = slotMapOf(reply, f.keptAddr)
		}
		if err == nil {
			return m, reply, false, nil
		}
		f.log.Debug("watched node did not answer; asking the others", "node", f.keptAddr, "error", err)
		f.dropKept()
	}
	var failures []string
	for _, addr := range f.candidates() {
		if err := ctx.Err(); err != nil {
			failures = append(failures, "stopped: "+err.Error())
			break
		}
		m, reply, conn, err := f.fetchFrom(ctx, addr)
		if err == nil {
			f.kept, f.keptAddr = conn, addr
			return m, reply, false, nil
		}
		failures = append(failures, err.Error())
		f.log.Debug("node did not give a slot map", "node", addr, "error", err)
	}
	if len(failures) == 0 {
		return nil, nil, false, fmt.Errorf("fetch slot map of cluster %q: no seeds", f.cfg.Cluster)
	}
	return nil, nil, false, fmt.Errorf("fetch slot map of cluster %q: %s", f.cfg.Cluster, strings.Join(failures, "; "))
}

// refresh fetches a map and publishes it when it differs from the current one; it returns
// the result (RefreshChanged, ...).
func (f *Fetcher) refresh(ctx context.Context) (string, error) {
	f.fetches.Add(1)
	result, err := f.refreshOnce(ctx)
	if f.cfg.OnRefresh != nil && ctx.Err() == nil {
		f.cfg.OnRefresh(result)
	}
	return result, err
}

func (f *Fetcher) refreshOnce(ctx context.Context) (string, error) {
	m, reply, unchanged, err := f.poll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("slot map refresh failed, keeping the previous map", "error", err)
		}
		return RefreshFailed, err
	}
	if unchanged {
		return RefreshUnchanged, nil
	}
	f.lastReply, f.lastFrom = append(f.lastReply[:0], reply...), f.keptAddr
	prev := f.cur.Load()
	if prev.Equal(m) {
		f.log.Trace("slot map unchanged")
		return RefreshUnchanged, nil
	}
	f.cur.Store(m)
	f.log.Info("slot map changed", "nodes", len(m.Nodes()), "ranges", len(m.Ranges()),
		"slots_covered", m.Covered(), "masters", describeMasters(m), "from", f.keptAddr)
	if f.cfg.OnChange != nil {
		f.cfg.OnChange(m)
	}
	return RefreshChanged, nil
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
