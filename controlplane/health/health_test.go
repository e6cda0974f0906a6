package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

const (
	interval  = 50 * time.Millisecond
	failLimit = 3
	patience  = 10 * time.Second // generous: the machine may be slow, the logic is not timed
)

// logSink keeps logs for assertions.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// changes records every OnChange call.
type changes struct {
	mu    sync.Mutex
	calls [][]string
}

func (c *changes) record(ejected []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, ejected)
}

func (c *changes) get() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

type harness struct {
	checker *Checker
	changes *changes
	logs    *logSink
	stop    func() // cancels Run and waits for it to return
}

// start runs a Checker until the test ends (or stop is called).
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{changes: &changes{}, logs: &logSink{}}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "test", Output: io.MultiWriter(h.logs, testlog.Writer(t)), Level: hclog.Debug})
	cfg.OnChange = h.changes.record
	h.checker = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.checker.Run(ctx); close(done) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(patience):
				t.Errorf("Run did not return within %v of cancel", patience)
			}
		})
	}
	t.Cleanup(h.stop) // runs before the servers' cleanups, so no ping outlives the test
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ejectedIs(c *Checker, want ...string) func() bool {
	return func() bool { return slices.Equal(c.Ejected(), want) }
}

// TestEjectAndRestore breaks one of two nodes in several real ways and checks that only it
// is ejected, not too early, and that it is restored once it answers again.
func TestEjectAndRestore(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		// breakNode makes s fail pings and returns what heals it.
		breakNode func(t *testing.T, s *redistest.Server) (heal func())
		reason    string // expected in the ejection log line
	}{
		{
			name: "killed node (connection refused)",
			breakNode: func(t *testing.T, s *redistest.Server) func() {
				s.Kill()
				return s.Restart
			},
			reason: "connect: connection refused",
		},
		{
			name:    "paused node (timeout)",
			timeout: 100 * time.Millisecond,
			breakNode: func(t *testing.T, s *redistest.Server) func() {
				s.Pause()
				return s.Resume
			},
			reason: "i/o timeout",
		},
		{
			name: "error reply (NOAUTH)",
			breakNode: func(t *testing.T, s *redistest.Server) func() {
				if _, err := s.Do("CONFIG", "SET", "requirepass", "secret"); err != nil {
					t.Fatalf("set requirepass: %v", err)
				}
				c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "secret", MaxRetries: -1})
				t.Cleanup(func() { c.Close() })
				// Connections made before stay authenticated; drop them so pings redial.
				if err := c.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal").Err(); err != nil {
					t.Fatalf("kill clients: %v", err)
				}
				return func() {
					if err := c.ConfigSet(context.Background(), "requirepass", "").Err(); err != nil {
						t.Fatalf("clear requirepass: %v", err)
					}
				}
			},
			reason: `reply \"-NOAUTH Authentication required.\" is not +PONG`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad, good := redistest.Start(t), redistest.Start(t)
			h := start(t, Config{
				Cluster: "c1", Nodes: []string{good.Addr, bad.Addr, good.Addr},
				Interval: interval, FailLimit: failLimit, Timeout: tt.timeout,
			})

			time.Sleep(5 * interval) // healthy nodes stay in
			if got := h.checker.Ejected(); len(got) != 0 {
				t.Fatalf("ejected %v while all nodes are healthy", got)
			}

			heal := tt.breakNode(t, bad)
			waitFor(t, "the broken node to be ejected", ejectedIs(h.checker, bad.Addr))
			// Ejected at the FailLimit-th consecutive failure, not the first. (Counted, not
			// timed: on a loaded machine a stalled ticker delivers ticks back to back.)
			if lines(h.logs.String(), "node ejected", "consecutive_failures="+strconv.Itoa(failLimit)) != 1 {
				t.Errorf("no ejection log line at failure %d in:\n%s", failLimit, h.logs.String())
			}
			if logs := h.logs.String(); !strings.Contains(logs, "node ejected") || !strings.Contains(logs, tt.reason) {
				t.Errorf("no ejection log line with reason %q in:\n%s", tt.reason, logs)
			}

			heal()
			waitFor(t, "the node to be restored", ejectedIs(h.checker))
			h.stop()

			want := [][]string{{bad.Addr}, nil}
			if got := h.changes.get(); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("OnChange calls = %q, want %q (the healthy node %s must never appear)", got, want, good.Addr)
			}
			logs := h.logs.String()
			if n := strings.Count(logs, "node ejected"); n != 1 {
				t.Errorf("%d ejection log lines, want 1", n)
			}
			if n := lines(logs, "node up", "node="+bad.Addr); n != 1 {
				t.Errorf("%d 'node up' log lines, want 1", n)
			}
			if n := lines(logs, "node down", "node="+bad.Addr); n != 1 {
				t.Errorf("%d 'node down' log lines, want 1 (DOWN at the first failure, before the ejection)", n)
			}
			if !strings.Contains(logs, "cluster=c1") || !strings.Contains(logs, "node="+bad.Addr) {
				t.Errorf("log lines lack cluster or node:\n%s", logs)
			}
		})
	}
}

// connectionsReceived reads the server's accepted-connection counter; the INFO call itself
// is one connection.
func connectionsReceived(t *testing.T, s *redistest.Server) int {
	t.Helper()
	v, err := s.Do("INFO", "stats")
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	for _, line := range strings.Split(v.(string), "\r\n") {
		if n, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			c, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return c
		}
	}
	t.Fatalf("no total_connections_received in INFO")
	return 0
}

// TestFailLimit: whatever the limit, a node is pinged on one reused connection and is DOWN
// once it dies; only a positive limit ejects it.
func TestFailLimit(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failLimit int
	}{
		{"zero pings, marks down, never ejects", 0},
		{"positive pings and ejects", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := redistest.Start(t)
			before := connectionsReceived(t, s)
			// A long timeout: a slow reply on a busy machine must not make the checker redial.
			h := start(t, Config{Cluster: "c1", Nodes: []string{s.Addr}, Interval: interval, Timeout: 5 * time.Second, FailLimit: tt.failLimit})
			time.Sleep(6 * interval)
			// Count while the checker is still running, so its connection is in.
			if opened := connectionsReceived(t, s) - before - 1; opened != 1 {
				t.Errorf("checker opened %d connections to a healthy node, want 1 reused", opened)
			}

			s.Kill()
			waitFor(t, "DOWN", stateIs(h.checker, s.Addr, Down, Ejected))
			if tt.failLimit == 0 {
				time.Sleep(10 * interval) // far past any limit
				if st, _ := h.checker.State(s.Addr); st.State != Down || st.Fails < 5 {
					t.Errorf("FailLimit 0: state %v after %d failures, want down", st.State, st.Fails)
				}
				if got := h.checker.Ejected(); len(got) != 0 {
					t.Errorf("FailLimit 0 ejected %v", got)
				}
				if got := h.changes.get(); len(got) != 0 {
					t.Errorf("FailLimit 0 called OnChange %q", got)
				}
			} else {
				waitFor(t, "ejection", ejectedIs(h.checker, s.Addr))
			}
		})
	}
}

func stateIs(c *Checker, addr string, want ...State) func() bool {
	return func() bool {
		st, ok := c.State(addr)
		return ok && slices.Contains(want, st.State)
	}
}

// TestStateMachine feeds ping results to record and checks each node state, since-when,
// ejected set and log line: one line per change of state, none per repeated result.
func TestStateMachine(t *testing.T) {
	errRefused := errors.New("dial 10.0.0.1:6379: connect: connection refused")
	const ok, fail = true, false
	type step struct {
		ok        bool
		want      State
		changed   bool   // the state changed (Since moves, one log line)
		log       string // the line logged, when changed
		ejectedOn bool   // OnChange reports the node ejected (only on a change of the set)
	}
	for _, tt := range []struct {
		name      string
		failLimit int
		steps     []step
	}{
		{"limit 0: down, never ejected, up again", 0, []step{
			{ok, Up, false, "", false},
			{fail, Down, true, "node down", false},
			{fail, Down, false, "", false},
			{fail, Down, false, "", false},
			{fail, Down, false, "", false},
			{ok, Up, true, "node up", false},
			{ok, Up, false, "", false},
		}},
		{"limit 3: down, then ejected, up again", 3, []step{
			{fail, Down, true, "node down", false},
			{fail, Down, false, "", false},
			{fail, Ejected, true, "node ejected", true},
			{fail, Ejected, false, "", true},
			{ok, Up, true, "node up", false},
			{fail, Down, true, "node down", false},
			{ok, Up, true, "node up", false},
		}},
		{"limit 1: ejected at the first failure", 1, []step{
			{fail, Ejected, true, "node ejected", true},
			{fail, Ejected, false, "", true},
			{ok, Up, true, "node up", false},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const node = "10.0.0.1:6379"
			logs := &logSink{}
			var calls [][]string
			c := New(Config{Cluster: "c1", Nodes: []string{node}, FailLimit: tt.failLimit,
				Logger:   hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
				OnChange: func(e []string) { calls = append(calls, e) }})
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			prev, _ := c.State(node)
			lines := 0
			for i, s := range tt.steps {
				at = at.Add(time.Second)
				r := result{addr: node, at: at}
				if !s.ok {
					r.err = errRefused
				}
				before := len(logs.String())
				c.record(r)
				st, _ := c.State(node)
				if st.State != s.want {
					t.Fatalf("step %d: state %v, want %v", i, st.State, s.want)
				}
				if s.changed != !st.Since.Equal(prev.Since) {
					t.Errorf("step %d: since %v → %v, changed must be %v", i, prev.Since, st.Since, s.changed)
				}
				if s.changed && !st.Since.Equal(at) {
					t.Errorf("step %d: since %v, want the result's time %v", i, st.Since, at)
				}
				newLines := logs.String()[before:]
				if s.changed {
					lines++
					if strings.Count(newLines, "\n") != 1 || !strings.Contains(newLines, s.log) || !strings.Contains(newLines, "node="+node) {
						t.Errorf("step %d: logged %q, want one %q line naming the node", i, newLines, s.log)
					}
					if s.log != "node up" && (!strings.Contains(newLines, "[WARN]") || !strings.Contains(newLines, "connection refused")) {
						t.Errorf("step %d: %q is not a WARN line with the reason", i, newLines)
					}
				} else if newLines != "" {
					t.Errorf("step %d: state unchanged, yet logged %q", i, newLines)
				}
				if s.ok && st.Fails != 0 || !s.ok && st.Fails != prev.Fails+1 {
					t.Errorf("step %d: %d consecutive failures after %d", i, st.Fails, prev.Fails)
				}
				if !s.ok && (st.LastError != errRefused.Error() || !st.LastErrorAt.Equal(at)) {
					t.Errorf("step %d: last error %q at %v", i, st.LastError, st.LastErrorAt)
				}
				if s.ok && prev.LastError != st.LastError {
					t.Errorf("step %d: a good ping changed the last error to %q", i, st.LastError)
				}
				if got := slices.Contains(c.Ejected(), node); got != s.ejectedOn {
					t.Errorf("step %d: ejected %v, want %v", i, got, s.ejectedOn)
				}
				prev = st
			}
			if n := strings.Count(logs.String(), "\n"); n != lines {
				t.Errorf("%d log lines for %d changes:\n%s", n, lines, logs)
			}
			// OnChange only when the ejected set changes: once out, once back, per ejection.
			var want [][]string
			was := false
			for _, s := range tt.steps {
				if s.ejectedOn != was {
					if s.ejectedOn {
						want = append(want, []string{node})
					} else {
						want = append(want, nil)
					}
					was = s.ejectedOn
				}
			}
			if !slices.EqualFunc(calls, want, slices.Equal) {
				t.Errorf("OnChange calls %q, want %q", calls, want)
			}
		})
	}
}

// TestPreviousStates: a checker that replaces another (a reload) keeps the states of nodes
// still named, with their since-when and last error, and logs nothing for them.
func TestPreviousStates(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := []NodeHealth{
		{Addr: "a:1", State: Down, Since: since, Fails: 4, LastError: "boom", LastErrorAt: since},
		{Addr: "b:1", State: Ejected, Since: since, Fails: 9, LastError: "gone", LastErrorAt: since},
		{Addr: "c:1", State: Ejected, Since: since, Fails: 9, LastError: "gone", LastErrorAt: since},
		{Addr: "gone:1", State: Down, Since: since},
	}
	c := New(Config{Nodes: []string{"a:1", "b:1", "c:1", "new:1"}, FailLimit: 2, Ejected: []string{"b:1"}, Previous: prev})
	got := c.States()
	want := []NodeHealth{
		prev[0],
		prev[1],
		{Addr: "c:1", State: Down, Since: since, Fails: 9, LastError: "gone", LastErrorAt: since}, // not in Ejected: DOWN, not out
		{Addr: "new:1", State: Up, Since: got[3].Since},
	}
	if !slices.Equal(got, want) {
		t.Errorf("states\n got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(c.Ejected(), []string{"b:1"}) {
		t.Errorf("ejected %v", c.Ejected())
	}
	// With ejection now off, nothing starts ejected.
	c = New(Config{Nodes: []string{"b:1"}, Ejected: []string{"b:1"}, Previous: prev})
	if st, _ := c.State("b:1"); st.State != Down || len(c.Ejected()) != 0 {
		t.Errorf("FailLimit 0: %v, ejected %v", st.State, c.Ejected())
	}
}

// TestSetNodes: the set of pinged nodes follows SetNodes while Run runs: a new dead node goes
// DOWN, a removed one is forgotten and no longer pinged.
func TestSetNodes(t *testing.T) {
	s := redistest.Start(t)
	dead := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	h := start(t, Config{Cluster: "c1", Nodes: []string{s.Addr}, Interval: interval})
	waitFor(t, "a ping", func() bool { calls, _ := s.CommandStats(t, "ping"); return calls >= 1 })

	h.checker.SetNodes([]string{s.Addr, dead, dead})
	waitFor(t, "the new dead node DOWN", stateIs(h.checker, dead, Down))
	if st, _ := h.checker.State(s.Addr); st.State != Up {
		t.Errorf("live node %v", st.State)
	}

	h.checker.SetNodes([]string{dead})
	if _, ok := h.checker.State(s.Addr); ok {
		t.Errorf("removed node still has a state")
	}
	time.Sleep(20 * interval) // its pinger stops
	c0, _ := s.CommandStats(t, "ping")
	time.Sleep(10 * interval)
	if c1, _ := s.CommandStats(t, "ping"); c1 != c0 {
		t.Errorf("removed node still pinged: %d pings", c1-c0)
	}
	if got := h.checker.States(); len(got) != 1 || got[0].Addr != dead {
		t.Errorf("states %+v", got)
	}
}

// TestRunEndsGoroutines checks that cancel ends every goroutine promptly, even one blocked
// on a hung node with a long timeout, or dialling a node that does not exist.
func TestRunEndsGoroutines(t *testing.T) {
	hung, ok := redistest.Start(t), redistest.Start(t)
	hung.Pause()
	refused := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	blackhole := "192.0.2.1:6379" // TEST-NET-1: the dial hangs until its timeout or cancel
	baseline := runtime.NumGoroutine()

	h := start(t, Config{
		Cluster: "c1", Nodes: []string{hung.Addr, ok.Addr, refused, blackhole},
		Interval: interval, FailLimit: 1, Timeout: time.Minute,
	})
	waitFor(t, "the refused node to be ejected", func() bool { return slices.Contains(h.checker.Ejected(), refused) })
	if slices.Contains(h.checker.Ejected(), ok.Addr) {
		t.Errorf("healthy node ejected: %v", h.checker.Ejected())
	}

	stopped := time.Now()
	h.stop()
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("Run took %v to return after cancel; a ping timeout must not delay it", took)
	}
	waitFor(t, "goroutines to return to baseline "+strconv.Itoa(baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		name                   string
		in                     Config
		wantInterval, wantTime time.Duration
		wantNodes              []string
	}{
		{"timeout capped at 1s", Config{Interval: 5 * time.Second}, 5 * time.Second, time.Second, nil},
		{"timeout follows a short interval", Config{Interval: 200 * time.Millisecond}, 200 * time.Millisecond, 200 * time.Millisecond, nil},
		{"explicit timeout kept", Config{Interval: time.Second, Timeout: 3 * time.Second}, time.Second, 3 * time.Second, nil},
		{"non-positive interval", Config{Interval: -1}, time.Second, time.Second, nil},
		{"nodes sorted and deduplicated", Config{Interval: time.Second, Nodes: []string{"b:1", "a:1", "b:1"}},
			time.Second, time.Second, []string{"a:1", "b:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.in)
			if c.cfg.Interval != tt.wantInterval || c.cfg.Timeout != tt.wantTime {
				t.Errorf("interval, timeout = %v, %v; want %v, %v", c.cfg.Interval, c.cfg.Timeout, tt.wantInterval, tt.wantTime)
			}
			if !slices.Equal(c.nodes, tt.wantNodes) {
				t.Errorf("nodes = %v, want %v", c.nodes, tt.wantNodes)
			}
			if got := c.Ejected(); len(got) != 0 {
				t.Errorf("new checker has ejected %v", got)
			}
		})
	}
}

// TestPingAuthenticates checks that a node with requirepass stays up when the checker has the
// password, and is ejected (NOAUTH on PING) when it has a wrong one.
func TestPingAuthenticates(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "pw")
	for _, c := range []struct {
		name, pass string
		ejected    bool
	}{{"right password", "pw", false}, {"wrong password", "nope", true}} {
		t.Run(c.name, func(t *testing.T) {
			changes := make(chan []string, 10)
			chk := New(Config{
				Cluster: "t", Nodes: []string{srv.Addr}, Interval: 20 * time.Millisecond,
				FailLimit: 2, Password: c.pass, OnChange: func(e []string) { changes <- e },
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { chk.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			select {
			case e := <-changes:
				if !c.ejected {
					t.Fatalf("node ejected with the right password: %v", e)
				}
			case <-time.After(500 * time.Millisecond):
				if c.ejected {
					t.Fatal("node not ejected with a wrong password")
				}
			}
		})
	}
}

func TestNewSuccIntervalDefault(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       Config
		wantSucc time.Duration
	}{
		{"unset follows interval", Config{Interval: 200 * time.Millisecond}, 200 * time.Millisecond},
		{"unset follows the default interval", Config{}, time.Second},
		{"set is kept", Config{Interval: 200 * time.Millisecond, SuccInterval: 3 * time.Second}, 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.in).cfg.SuccInterval; got != tt.wantSucc {
				t.Errorf("SuccInterval = %v, want %v", got, tt.wantSucc)
			}
		})
	}
}

// TestEjectedNodePace counts the pings a real server receives: while a node is in the ring
// it is pinged every Interval, once ejected every SuccInterval (Interval when unset), and
// once restored every Interval again. The node stays up throughout and only refuses PING
// (ACL), so every ping of the ejected phase is counted. Bounds are loose (several times
// the ideal count either way) since the machine is noisy; only the pace is under test.
func TestEjectedNodePace(t *testing.T) {
	const (
		fast   = 20 * time.Millisecond
		window = 2 * time.Second
	)
	for _, tt := range []struct {
		name string
		succ time.Duration
		// bounds on the pings an ejected node gets in window
		minEjected, maxEjected int
	}{
		// ideal 4 pings: far from the 100 at the fast pace.
		{"succ interval slower", 500 * time.Millisecond, 1, 10},
		// ideal 100 pings: today's behaviour, ejected nodes keep the fast pace.
		{"succ interval unset", 0, 25, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := redistest.Start(t)
			h := start(t, Config{Cluster: "c1", Nodes: []string{s.Addr}, Interval: fast, SuccInterval: tt.succ, FailLimit: failLimit})
			waitFor(t, "the first pings", func() bool { calls, _ := s.CommandStats(t, "ping"); return calls >= 2 })

			if _, err := s.Do("ACL", "SETUSER", "default", "-ping"); err != nil {
				t.Fatalf("take PING away: %v", err)
			}
			refused := time.Now()
			waitFor(t, "ejection", ejectedIs(h.checker, s.Addr))
			took := time.Since(refused)
			// The failures up to the limit come at the fast pace: failLimit-1 fast intervals,
			// nowhere near one slow interval (which would be 1s here if the slow pace began
			// at the first failure).
			if tt.succ > 0 && took >= (failLimit-1)*tt.succ*9/10 {
				t.Errorf("ejected %v after PING was refused: the failures before ejection were slowed down", took)
			}
			_, r0 := s.CommandStats(t, "ping")
			time.Sleep(window)
			_, r1 := s.CommandStats(t, "ping")
			t.Logf("ejected %v after PING was refused; %d pings in %v while ejected", took, r1-r0, window)
			if n := r1 - r0; n < tt.minEjected || n > tt.maxEjected {
				t.Errorf("ejected node got %d pings in %v, want %d..%d (interval %v, succ interval %v)",
					n, window, tt.minEjected, tt.maxEjected, fast, tt.succ)
			}
			if !slices.Equal(h.checker.Ejected(), []string{s.Addr}) {
				t.Fatalf("node no longer ejected while PING is refused: %v", h.checker.Ejected())
			}

			if _, err := s.Do("ACL", "SETUSER", "default", "+ping"); err != nil {
				t.Fatalf("give PING back: %v", err)
			}
			waitFor(t, "restore", ejectedIs(h.checker))
			c0, _ := s.CommandStats(t, "ping")
			time.Sleep(window / 2)
			c1, _ := s.CommandStats(t, "ping")
			t.Logf("%d pings in %v after restore", c1-c0, window/2)
			// ideal 50 at the fast pace, 2 at the slow one.
			if n := c1 - c0; n < 12 {
				t.Errorf("restored node got %d pings in %v, want ≥ 12: not back to interval %v", n, window/2, fast)
			}
		})
	}
}

// TestStartsEjected: nodes in Config.Ejected (a reload's carry-over) are ejected from the
// start: a live one is restored by its first successful ping; a dead one stays out without any
// OnChange (no flap back into the ring).
func TestStartsEjected(t *testing.T) {
	s := redistest.Start(t)
	deadAddr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)) // nothing listens there
	cfg := func(node string) Config {
		return Config{Cluster: "c1", Nodes: []string{node}, Interval: 20 * time.Millisecond,
			FailLimit: failLimit, Ejected: []string{node, "127.0.0.1:1"}}
	}

	// Read before Run: its first ping may restore the live node at once.
	if got := New(cfg(s.Addr)).Ejected(); !slices.Equal(got, []string{s.Addr}) {
		t.Fatalf("ejected at start: %v, want the node alone (addresses outside Nodes ignored)", got)
	}
	live := start(t, cfg(s.Addr))
	waitFor(t, "the live node's restore", ejectedIs(live.checker))
	if got := live.changes.get(); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("OnChange calls %q, want one, with nothing ejected", got)
	}

	dead := start(t, cfg(deadAddr))
	time.Sleep(300 * time.Millisecond) // ~15 failed pings
	if got := dead.checker.Ejected(); !slices.Equal(got, []string{deadAddr}) {
		t.Fatalf("dead node: ejected %v", got)
	}
	if got := dead.changes.get(); len(got) != 0 {
		t.Fatalf("dead node: OnChange calls %q, want none", got)
	}
}

// TestIdleConnectionClosed: a server that closes idle connections between two pings (Redis's
// `timeout`) is not DOWN: a ping that finds its connection closed tries once on a fresh one.
func TestIdleConnectionClosed(t *testing.T) {
	s := redistest.Start(t, "--timeout", "1")
	var downs sync.Map
	cfg := Config{Cluster: "c1", Nodes: []string{s.Addr}, Interval: 2500 * time.Millisecond,
		OnState: func(h NodeHealth) { downs.Store(h.Since, h) }}
	h := start(t, cfg)
	before := connectionsReceived(t, s)
	time.Sleep(6 * time.Second) // two pings, each after Redis closed the connection
	if opened := connectionsReceived(t, s) - before - 1; opened < 1 {
		t.Fatalf("%d new ping connections: the server did not close idle ones, the test proves nothing", opened)
	}
	downs.Range(func(_, v any) bool {
		t.Errorf("state changed: %+v", v)
		return true
	})
	if st, _ := h.checker.State(s.Addr); st.State != Up || st.LastError != "" {
		t.Errorf("node %+v, want UP without an error", st)
	}
}

// TestTLSFailureIsDown: a node whose TLS handshake fails — an untrusted certificate, or a
// server that does not speak TLS at all — is DOWN with the handshake error; one that TLS
// verifies is UP.
func TestTLSFailureIsDown(t *testing.T) {
	certs, other := redistest.GenCerts(t), redistest.GenCerts(t)
	good := redistest.StartTLS(t, certs)
	untrusted := redistest.StartTLS(t, other)
	plain := redistest.Start(t)
	h := start(t, Config{Cluster: "c1", Nodes: []string{good.Addr, untrusted.Addr, plain.Addr},
		Interval: interval, Timeout: 5 * time.Second, TLS: certs.ClientTLS(t, false)}) // a busy machine's handshake may take a while
	for _, addr := range []string{untrusted.Addr, plain.Addr} {
		waitFor(t, addr+" DOWN", stateIs(h.checker, addr, Down))
		if st, _ := h.checker.State(addr); !strings.Contains(st.LastError, "TLS handshake with "+addr) {
			t.Errorf("%s: last error %q, want the TLS handshake's", addr, st.LastError)
		}
	}
	time.Sleep(5 * interval) // the verified node's pings succeed meanwhile
	if st, _ := h.checker.State(good.Addr); st.State != Up || st.LastError != "" {
		t.Errorf("verified node: %+v", st)
	}
}

// lines counts the lines of log that hold every one of parts.
func lines(log string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// TestWrongPasswordError: a node that refuses the password is DOWN with the server's whole
// error line, and the password is nowhere in the state or the log.
func TestWrongPasswordError(t *testing.T) {
	s := redistest.Start(t, "--requirepass", "right-pw")
	h := start(t, Config{Cluster: "c1", Nodes: []string{s.Addr}, Interval: interval, Timeout: 5 * time.Second, Password: "wrong-pw"})
	waitFor(t, "DOWN", stateIs(h.checker, s.Addr, Down))
	st, _ := h.checker.State(s.Addr)
	if want := `handshake with ` + s.Addr + `: node refused AUTH: WRONGPASS invalid username-password pair or user is disabled.`; !strings.Contains(st.LastError, want) {
		t.Errorf("last error %q, want it to hold %q", st.LastError, want)
	}
	h.stop()
	if strings.Contains(fmt.Sprint(st), "wrong-pw") || strings.Contains(h.logs.String(), "wrong-pw") {
		t.Errorf("the password shows: %+v\n%s", st, h.logs)
	}
}
