// Package sentinel follows the masters of Sentinel-managed groups: it asks every configured
// sentinel for each group's master (SENTINEL GET-MASTER-ADDR-BY-NAME) and replicas (SENTINEL
// REPLICAS), keeps a subscription to each sentinel's events (+switch-master and the others
// that change a group) that makes it ask again at once, and asks every PollInterval besides,
// in case an event was lost. A group's master is the address a quorum of the configured
// sentinels reports (Agree); while none has a quorum, the group keeps the master it had.
//
// It runs off the hot path on one goroutine (plus one per sentinel for its subscription);
// its consumer sees finished []Group values only.
package sentinel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/redisdial"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = time.Second
	DefaultPollInterval = time.Second
	// settlePoll is how soon the sentinels are asked again while they disagree on a group's
	// master (a failover spreading from sentinel to sentinel) or no quorum agrees: the new
	// master is used as soon as a quorum knows it, not a PollInterval later.
	settlePoll = 100 * time.Millisecond
	// minGap debounces events and hints: a failover sends several events per sentinel, and a
	// dead master makes the data plane hint on every failed request.
	minGap = 50 * time.Millisecond
)

// maxReply bounds one reply of a sentinel: SENTINEL REPLICAS of a group with a hundred
// replicas is a few tens of KiB.
const maxReply = 1 << 20

// Backoff of a subscription that cannot (re)connect.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// Events subscribed to on every sentinel: each may change a group's master or the set of its
// replicas that can serve reads. Any of them makes the watcher ask the sentinels again.
var events = []string{
	"+switch-master", "+failover-end", "+convert-to-slave", "+slave", "+slave-reconf-done",
	"+sdown", "-sdown", "+odown", "-odown", "+reset-master",
}

// Config configures a Watcher.
type Config struct {
	Cluster   string   // the cluster's name, for logs
	Sentinels []string // host:port of every configured sentinel
	Masters   []string // the groups' Sentinel master names
	// Username and Password, when Password is set, are sent to every sentinel as AUTH
	// (sentinel_auth). Never logged.
	Username, Password string
	DialTimeout        time.Duration // per sentinel; default DefaultDialTimeout
	ReadTimeout        time.Duration // per sentinel, for all the replies of one round; default DefaultReadTimeout
	PollInterval       time.Duration // default DefaultPollInterval
	// Initial are the groups known before (those of the cluster a reload replaces): served as
	// they are until the sentinels are asked, so a reload does not wait for them.
	Initial []Group
	Logger  hclog.Logger // default hclog.NewNullLogger()
	// OnChange is called on Run's goroutine with every group (in Masters order) whenever a
	// group's master or replicas changed. It must not block long.
	OnChange func([]Group)
}

// Group is one Sentinel-managed group as the watcher last saw it.
type Group struct {
	Name   string // the Sentinel master name
	Master string // host:port; "" while no quorum of sentinels ever agreed on one
	// Replicas are the replicas that can serve reads: up for Sentinel (no s_down, o_down or
	// disconnected flag), with their link to Master "ok", and replicating Master (a demoted
	// old master that has not resynced yet is not one of them). Sorted.
	Replicas []string
	// Since is when Master became the group's master here (for a master known at start,
	// when it was first agreed on).
	Since time.Time
}

// Quorum is how many of configured sentinels must report the same address for it to be a
// group's master: a majority of the configured ones, whether or not they answer. It is the
// number Sentinel itself needs to authorise a failover, so an address a quorum reports is one
// Sentinel's own failover agreed on; a partitioned minority (or a single restarted sentinel
// with a stale view) can never outvote it, and two addresses can never both have a quorum.
func Quorum(configured int) int { return configured/2 + 1 }

// Agree returns the master address at least Quorum(configured) sentinels report. answers
// has one entry per sentinel that answered ("" for one that did not know the group or did
// not answer). ok is false when no address has a quorum.
func Agree(answers []string, configured int) (addr string, ok bool) {
	votes := make(map[string]int, len(answers))
	for _, a := range answers {
		if a == "" {
			continue
		}
		votes[a]++
		if votes[a] >= Quorum(configured) {
			return a, true
		}
	}
	return "", false
}

// Watcher follows the groups of one cluster. Hint and Groups may be called from any
// goroutine; Run is called once.
type Watcher struct {
	cfg  Config
	log  hclog.Logger
	hint chan struct{} // capacity 1: pending hints coalesce
	cur  atomic.Pointer[[]Group]

	// Run's goroutine only.
	conns []*conn // the polling connection of each sentinel, nil when not open
	// failed is when each sentinel last failed to answer (zero while it answers): it is not
	// asked again before a PollInterval has passed, so that one that hangs (partitioned
	// away, not refusing) does not hold every round, the quick ones of a failover included,
	// for its dial or read timeout.
	failed   []time.Time
	groups   []Group         // in cfg.Masters order
	unagreed map[string]bool // groups without a quorum at the last round (logged once)
	unreach  map[string]bool // sentinels that did not answer the last round (logged once)
}

// New returns a watcher for cfg, with defaults filled in. It does nothing until Run.
func New(cfg Config) *Watcher {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	w := &Watcher{
		cfg: cfg, log: cfg.Logger.Named("sentinel").With("cluster", cfg.Cluster),
		hint: make(chan struct{}, 1), conns: make([]*conn, len(cfg.Sentinels)), failed: make([]time.Time, len(cfg.Sentinels)),
		unagreed: map[string]bool{}, unreach: map[string]bool{},
	}
	for _, name := range cfg.Masters {
		g := Group{Name: name}
		for _, p := range cfg.Initial {
			if p.Name == name {
				g = p
				g.Replicas = slices.Clone(p.Replicas)
			}
		}
		w.groups = append(w.groups, g)
	}
	w.store()
	return w
}

// Groups returns the groups as last resolved (or as given by Config.Initial before that).
func (w *Watcher) Groups() []Group { return *w.cur.Load() }

func (w *Watcher) store() {
	gs := slices.Clone(w.groups)
	w.cur.Store(&gs)
}

// Hint asks for the sentinels to be asked at once (a node failing). It never blocks; hints
// made before the round starts coalesce into it.
func (w *Watcher) Hint() {
	select {
	case w.hint <- struct{}{}:
	default:
	}
}

// Run subscribes to every sentinel's events and asks the sentinels at once, then whenever an
// event or a Hint comes (debounced), every PollInterval, and every settlePoll while a group's
// master is in doubt. It returns, with every connection closed, when ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, addr := range w.cfg.Sentinels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.subscribe(ctx, addr)
		}()
	}
	defer func() {
		for i, c := range w.conns {
			if c != nil {
				c.close()
				w.conns[i] = nil
			}
		}
		wg.Wait()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.hint:
			if !sleep(ctx, minGap) {
				return
			}
			select { // the events of one failover come in a burst: one round for them
			case <-w.hint:
			default:
			}
		case <-timer.C:
		}
		next := w.cfg.PollInterval
		if !w.round(ctx) {
			next = min(next, settlePoll)
		}
		if ctx.Err() != nil {
			return
		}
		timer.Reset(next)
	}
}

// errResting stands for the answer of a sentinel not asked this round: it failed less than a
// PollInterval ago.
var errResting = errors.New("not asked: failed less than a poll interval ago")

// answer is what one sentinel said of one group.
type answer struct {
	master   string
	replicas []replica
}

// round asks every sentinel at once and applies what a quorum agrees on. It reports whether
// every group is settled: a quorum agrees on its master and no sentinel that answered names
// another (one that does not know the group does not keep it unsettled).
func (w *Watcher) round(ctx context.Context) bool {
	answers := make([][]answer, len(w.cfg.Sentinels)) // [sentinel][group]
	errs := make([]error, len(w.cfg.Sentinels))
	var wg sync.WaitGroup
	now := time.Now()
	for i := range w.cfg.Sentinels {
		if f := w.failed[i]; !f.IsZero() && now.Sub(f) < w.cfg.PollInterval {
			errs[i] = errResting
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = w.ask(ctx, i)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return true
	}
	for i, addr := range w.cfg.Sentinels {
		switch {
		case errs[i] == errResting:
			continue
		case errs[i] != nil:
			w.failed[i] = time.Now()
		default:
			w.failed[i] = time.Time{}
		}
		switch {
		case errs[i] != nil && !w.unreach[addr]:
			w.unreach[addr] = true
			w.log.Warn("sentinel not answering", "sentinel", addr, "error", errs[i])
		case errs[i] == nil && w.unreach[addr]:
			delete(w.unreach, addr)
			w.log.Info("sentinel answering again", "sentinel", addr)
		}
	}

	settled, changed := true, false
	now = time.Now()
	for gi := range w.groups {
		g := &w.groups[gi]
		votes := make([]string, 0, len(answers))
		var from []answer // the answers that name the agreed master, in config order
		for _, a := range answers {
			if a != nil {
				votes = append(votes, a[gi].master)
			}
		}
		addr, ok := Agree(votes, len(w.cfg.Sentinels))
		if !ok {
			settled = false
			if !w.unagreed[g.Name] {
				w.unagreed[g.Name] = true
				w.log.Warn("no quorum of sentinels agrees on a master: keeping the one in use",
					"group", g.Name, "answers", votes, "quorum", Quorum(len(w.cfg.Sentinels)),
					"sentinels", len(w.cfg.Sentinels), "master", g.Master)
			}
			continue
		}
		if w.unagreed[g.Name] {
			delete(w.unagreed, g.Name)
			w.log.Info("a quorum of sentinels agrees on the master again", "group", g.Name, "master", addr)
		}
		for _, v := range votes {
			if v != "" && v != addr {
				settled = false // a sentinel has not caught up (or has a newer view): ask again soon
			}
		}
		for _, a := range answers {
			if a != nil && a[gi].master == addr {
				from = append(from, a[gi])
			}
		}
		reps := readable(from[0].replicas, addr)
		switched := addr != g.Master
		if switched {
			if g.Master == "" {
				w.log.Info("group master resolved", "group", g.Name, "master", addr, "replicas", reps)
			} else {
				w.log.Warn("group master switched", "group", g.Name, "from", g.Master, "to", addr, "replicas", reps)
			}
			g.Master, g.Since, changed = addr, now, true
		}
		if !slices.Equal(reps, g.Replicas) {
			if !switched {
				w.log.Info("group replicas changed", "group", g.Name, "master", addr, "replicas", reps)
			}
			g.Replicas, changed = reps, true
		}
	}
	if changed {
		w.store()
		if w.cfg.OnChange != nil {
			w.cfg.OnChange(w.Groups())
		}
	}
	return settled
}

// replica is one entry of SENTINEL REPLICAS, reduced to what decides whether it serves reads.
type replica struct {
	addr, master, flags, link string
}

// readable lists the replicas of master that can serve reads (see Group.Replicas), sorted.
func readable(reps []replica, master string) []string {
	var out []string
	for _, r := range reps {
		flags := strings.Split(r.flags, ",")
		if r.addr == master || r.master != master || r.link != "ok" || !slices.Contains(flags, "slave") ||
			slices.ContainsFunc(flags, func(f string) bool { return f == "s_down" || f == "o_down" || f == "disconnected" }) {
			continue
		}
		out = append(out, r.addr)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ask asks sentinel i for every group's master and replicas on its kept connection (opened
// when needed), all commands pipelined. On any failure the connection is dropped; the next
// round opens a new one.
func (w *Watcher) ask(ctx context.Context, i int) ([]answer, error) {
	addr := w.cfg.Sentinels[i]
	c := w.conns[i]
	if c == nil {
		var err error
		if c, err = w.dial(ctx, addr); err != nil {
			return nil, err
		}
		w.conns[i] = c
	}
	out, err := w.query(ctx, c)
	if err != nil {
		c.close()
		w.conns[i] = nil
		return nil, fmt.Errorf("sentinel %s: %w", addr, err)
	}
	return out, nil
}

func (w *Watcher) query(ctx context.Context, c *conn) ([]answer, error) {
	stop := c.deadline(ctx, w.cfg.ReadTimeout)
	defer stop()
	var req []byte
	for _, m := range w.cfg.Masters {
		req = resp.AppendCommand(req, []byte("SENTINEL"), []byte("GET-MASTER-ADDR-BY-NAME"), []byte(m))
		req = resp.AppendCommand(req, []byte("SENTINEL"), []byte("REPLICAS"), []byte(m))
	}
	if _, err := c.nc.Write(req); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	out := make([]answer, len(w.cfg.Masters))
	for gi, m := range w.cfg.Masters {
		reply, err := c.next()
		if err != nil {
			return nil, fmt.Errorf("read master of %q: %w", m, err)
		}
		if out[gi].master, err = parseMasterAddr(reply); err != nil {
			return nil, fmt.Errorf("master of %q: %w", m, err)
		}
		if reply, err = c.next(); err != nil {
			return nil, fmt.Errorf("read replicas of %q: %w", m, err)
		}
		if out[gi].replicas, err = parseReplicas(reply); err != nil {
			return nil, fmt.Errorf("replicas of %q: %w", m, err)
		}
	}
	return out, nil
}

// dial opens a connection to a sentinel and authenticates it (redisdial: the one handshake
// for every Redis connection).
func (w *Watcher) dial(ctx context.Context, addr string) (*conn, error) {
	nc, err := redisdial.Dial(ctx, redisdial.Options{Addr: addr, DialTimeout: w.cfg.DialTimeout,
		ReplyTimeout: w.cfg.ReadTimeout, Username: w.cfg.Username, Password: w.cfg.Password})
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: %w", addr, err)
	}
	return &conn{nc: nc, buf: make([]byte, 0, 4<<10)}, nil
}

// subscribe keeps a subscription to one sentinel's events until ctx is done, reconnecting
// with backoff; every event, and every new subscription (events may have been missed while
// there was none), makes Run ask the sentinels again.
func (w *Watcher) subscribe(ctx context.Context, addr string) {
	backoff := firstBackoff
	for ctx.Err() == nil {
		err := w.listen(ctx, addr, func() { backoff = firstBackoff })
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("sentinel subscription lost", "sentinel", addr, "error", err)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen subscribes on a new connection and reads events until it fails or ctx is done.
func (w *Watcher) listen(ctx context.Context, addr string, subscribed func()) error {
	c, err := w.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	args := [][]byte{[]byte("SUBSCRIBE")}
	for _, e := range events {
		args = append(args, []byte(e))
	}
	_ = c.nc.SetDeadline(time.Now().Add(w.cfg.ReadTimeout))
	if _, err := c.nc.Write(resp.AppendCommand(nil, args...)); err != nil {
		return fmt.Errorf("send SUBSCRIBE: %w", err)
	}
	for range events {
		reply, err := c.next()
		if err != nil {
			return fmt.Errorf("read SUBSCRIBE reply: %w", err)
		}
		if resp.IsError(reply) {
			return fmt.Errorf("SUBSCRIBE refused: %s", trim(reply))
		}
	}
	_ = c.nc.SetDeadline(time.Time{}) // events come when they come; TCP keepalive finds a dead peer
	subscribed()
	w.Hint()
	for {
		reply, err := c.next()
		if err != nil {
			return err
		}
		if f, err := resp.ArrayElems(reply, nil); err == nil && len(f) == 3 {
			if kind, _, _ := bulk(f[0]); string(kind) == "message" {
				ch, _, _ := bulk(f[1])
				payload, _, _ := bulk(f[2])
				w.log.Debug("sentinel event", "sentinel", addr, "event", string(ch), "payload", string(payload))
				w.Hint()
			}
		}
	}
}

// conn is a connection to a sentinel and the bytes read from it past the last reply.
type conn struct {
	nc   net.Conn
	buf  []byte // buf[:len] read, not yet consumed
	once sync.Once
}

func (c *conn) close() { c.once.Do(func() { c.nc.Close() }) }

// deadline bounds the exchanges that follow by d (and ctx), until stop.
func (c *conn) deadline(ctx context.Context, d time.Duration) (stop func() bool) {
	_ = c.nc.SetDeadline(time.Now().Add(d))
	return context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
}

// next returns the next complete reply, at most maxReply bytes. The reply is valid until the
// next call.
func (c *conn) next() ([]byte, error) {
	var sc resp.ReplyScanner
	for {
		if len(c.buf) > 0 {
			n, err := sc.Scan(c.buf)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				reply := bytes.Clone(c.buf[:n])
				c.buf = c.buf[:copy(c.buf, c.buf[n:])]
				return reply, nil
			}
		}
		if len(c.buf) == cap(c.buf) {
			if cap(c.buf) >= maxReply {
				return nil, fmt.Errorf("reply larger than %d bytes", maxReply)
			}
			c.buf = slices.Grow(c.buf, cap(c.buf))
		}
		n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// parseMasterAddr reads a GET-MASTER-ADDR-BY-NAME reply: [ip, port], or null (a master the
// sentinel does not know) as "".
func parseMasterAddr(reply []byte) (string, error) {
	if resp.IsNull(reply) {
		return "", nil
	}
	if resp.IsError(reply) {
		return "", fmt.Errorf("answered %s", trim(reply))
	}
	f, err := resp.ArrayElems(reply, nil)
	if err != nil {
		return "", err
	}
	if len(f) != 2 {
		return "", fmt.Errorf("%d fields, want ip and port", len(f))
	}
	host, _, err1 := bulk(f[0])
	port, _, err2 := bulk(f[1])
	if err1 != nil || err2 != nil || len(host) == 0 {
		return "", fmt.Errorf("bad address in %s", trim(reply))
	}
	if p, err := strconv.Atoi(string(port)); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort(string(host), string(port)), nil
}

// parseReplicas reads a SENTINEL REPLICAS reply: an array of field/value arrays. An error
// reply (a master the sentinel does not know) is no replicas.
func parseReplicas(reply []byte) ([]replica, error) {
	if resp.IsError(reply) || resp.IsNull(reply) {
		return nil, nil
	}
	entries, err := resp.ArrayElems(reply, nil)
	if err != nil {
		return nil, err
	}
	out := make([]replica, 0, len(entries))
	for _, e := range entries {
		f, err := resp.ArrayElems(e, nil)
		if err != nil {
			return nil, err
		}
		kv := map[string]string{}
		for i := 0; i+1 < len(f); i += 2 {
			k, _, err1 := bulk(f[i])
			v, _, err2 := bulk(f[i+1])
			if err1 == nil && err2 == nil {
				kv[string(k)] = string(v)
			}
		}
		if kv["ip"] == "" || kv["port"] == "" {
			continue
		}
		r := replica{addr: net.JoinHostPort(kv["ip"], kv["port"]), flags: kv["flags"], link: kv["master-link-status"]}
		if kv["master-host"] != "" {
			r.master = net.JoinHostPort(kv["master-host"], kv["master-port"])
		}
		out = append(out, r)
	}
	return out, nil
}

// bulk returns the payload of a bulk or simple string frame; null reports a null.
func bulk(frame []byte) (b []byte, null bool, err error) {
	switch {
	case resp.IsNull(frame):
		return nil, true, nil
	case len(frame) >= 3 && frame[0] == '+':
		return frame[1 : len(frame)-2], false, nil
	case len(frame) >= 3 && frame[0] == '$':
		i := bytes.IndexByte(frame, '\r')
		if i < 0 {
			return nil, false, resp.ErrMalformedReply
		}
		l, ok := resp.ParseInt64Arg(frame[1:i])
		if !ok || l < 0 || i+2+int(l)+2 != len(frame) {
			return nil, false, resp.ErrMalformedReply
		}
		return frame[i+2 : i+2+int(l)], false, nil
	}
	return nil, false, fmt.Errorf("%w: want a string, got %s", resp.ErrMalformedReply, trim(frame))
}

// trim shortens a reply for an error message.
func trim(b []byte) string {
	const max = 120
	b = bytes.TrimRight(b, "\r\n")
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
