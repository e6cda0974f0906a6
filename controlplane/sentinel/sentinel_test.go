package sentinel

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/internal/redistest"
)

func TestQuorum(t *testing.T) {
	for configured, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 16: 9} {
		if got := Quorum(configured); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", configured, got, want)
		}
	}
}

func TestAgree(t *testing.T) {
	const a, b = "10.0.0.1:6379", "10.0.0.2:6379"
	tests := []struct {
		name       string
		answers    []string
		configured int
		want       string
	}{
		{"all agree", []string{a, a, a}, 3, a},
		{"one down", []string{a, a}, 3, a},
		{"one behind after a failover", []string{b, a, b}, 3, b},
		{"two down: one answer is no quorum of three", []string{a}, 3, ""},
		{"split with one down", []string{a, b}, 3, ""},
		{"unknown group counts for nothing", []string{a, "", ""}, 3, ""},
		{"half of four is not a majority", []string{a, a, b, b}, 4, ""},
		{"three of four", []string{a, b, a, a}, 4, a},
		{"a single sentinel is its own quorum", []string{a}, 1, a},
		{"none answered", nil, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Agree(tc.answers, tc.configured)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("Agree(%q, %d) = %q, %v; want %q", tc.answers, tc.configured, got, ok, tc.want)
			}
		})
	}
}

// TestReadable: only replicas that Sentinel sees up, linked and replicating the agreed master
// serve reads; a demoted old master still pointing elsewhere or resyncing does not.
func TestReadable(t *testing.T) {
	const m = "10.0.0.2:6379"
	reps := []replica{
		{addr: "10.0.0.3:6379", master: m, flags: "slave", link: "ok"},
		{addr: "10.0.0.4:6379", master: m, flags: "s_down,slave", link: "ok"},
		{addr: "10.0.0.5:6379", master: m, flags: "slave,disconnected", link: "ok"},
		{addr: "10.0.0.1:6379", master: "10.0.0.9:6379", flags: "slave", link: "ok"}, // old master, not yet reconfigured
		{addr: "10.0.0.6:6379", master: m, flags: "slave", link: "err"},              // resyncing
		{addr: m, master: m, flags: "slave", link: "ok"},                             // the master itself
		{addr: "10.0.0.0:6379", master: m, flags: "slave", link: "ok"},
	}
	if got, want := readable(reps, m), []string{"10.0.0.0:6379", "10.0.0.3:6379"}; !slices.Equal(got, want) {
		t.Errorf("readable = %q, want %q", got, want)
	}
}

func TestParseReplies(t *testing.T) {
	addr, err := parseMasterAddr([]byte("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n"))
	if err != nil || addr != "127.0.0.1:6380" {
		t.Errorf("master = %q, %v", addr, err)
	}
	if addr, err := parseMasterAddr([]byte("*-1\r\n")); err != nil || addr != "" {
		t.Errorf("unknown master = %q, %v", addr, err)
	}
	for _, bad := range []string{"*1\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\nx\r\n", "*2\r\n$1\r\na\r\n$5\r\n70000\r\n", "-ERR x\r\n", ":1\r\n"} {
		if _, err := parseMasterAddr([]byte(bad)); err == nil {
			t.Errorf("parseMasterAddr(%q) accepted", bad)
		}
	}
	reps, err := parseReplicas([]byte("*1\r\n*10\r\n$2\r\nip\r\n$8\r\n10.0.0.3\r\n$4\r\nport\r\n$4\r\n6379\r\n$5\r\nflags\r\n$5\r\nslave\r\n" +
		"$11\r\nmaster-host\r\n$8\r\n10.0.0.2\r\n$11\r\nmaster-port\r\n$4\r\n6379\r\n"))
	if err != nil || len(reps) != 1 || reps[0] != (replica{addr: "10.0.0.3:6379", master: "10.0.0.2:6379", flags: "slave"}) {
		t.Errorf("replicas = %+v, %v", reps, err)
	}
	if reps, err := parseReplicas([]byte("-ERR No such master with that name\r\n")); err != nil || reps != nil {
		t.Errorf("unknown master's replicas = %+v, %v", reps, err)
	}
}

// logBuffer collects a watcher's log lines for the test to wait on.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Log(strings.TrimSpace(string(p)))
	return b.buf.Write(p)
}

func (b *logBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

func startWatcher(t *testing.T, cfg Config) (*Watcher, chan []Group, *logBuffer) {
	t.Helper()
	logs := &logBuffer{t: t}
	ch := make(chan []Group, 64)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	cfg.OnChange = func(gs []Group) { ch <- gs }
	w := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, ch, logs
}

// waitGroups waits for a change whose groups satisfy ok; with w, hinting it all along (as a
// short poll interval would).
func waitGroups(t *testing.T, ch chan []Group, what string, ok func([]Group) bool, w ...*Watcher) []Group {
	t.Helper()
	// Generous: a sentinel on a loaded machine may enter TILT mode, and does nothing for 30 s.
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			for _, w := range w {
				w.Hint()
			}
		case gs := <-ch:
			if ok(gs) {
				return gs
			}
		case <-deadline:
			t.Fatalf("no %s within 90s", what)
		}
	}
}

// TestWatcherFollowsFailover: real sentinels over two groups; with one sentinel down all
// along, a master killed is replaced by its replica as soon as a quorum names it, the other
// group is untouched, and the old master coming back (demoted) is never the master again.
func TestWatcherFollowsFailover(t *testing.T) {
	a, b := redistest.StartGroup(t, "grp-a", 1), redistest.StartGroup(t, "grp-b", 1)
	ss := redistest.StartSentinels(t, 3, a, b)
	w, ch, _ := startWatcher(t, Config{Cluster: "c", Sentinels: ss.Addrs(), Masters: []string{"grp-a", "grp-b"}, PollInterval: time.Hour})
	gs := waitGroups(t, ch, "first resolution", func(gs []Group) bool {
		return gs[0].Master == a.Servers[0].Addr && gs[1].Master == b.Servers[0].Addr &&
			slices.Equal(gs[0].Replicas, []string{a.Servers[1].Addr}) && slices.Equal(gs[1].Replicas, []string{b.Servers[1].Addr})
	})
	since := gs[0].Since

	ss.List[2].Kill()
	a.Servers[0].Kill()
	// PollInterval is an hour: only the events (and the quick re-asking while the sentinels
	// disagree) can bring the switch.
	gs = waitGroups(t, ch, "switch of grp-a", func(gs []Group) bool { return gs[0].Master == a.Servers[1].Addr })
	if !gs[0].Since.After(since) || gs[1].Master != b.Servers[0].Addr {
		t.Errorf("after the switch: %+v", gs)
	}
	// The watcher needs only a quorum of the sentinels it reaches; ss.Master asks every live
	// one and a loaded sentinel may answer late: wait for the majority, then compare.
	if m := ss.WaitSwitch("grp-a", a.Servers[0].Addr, 30*time.Second); m != a.Servers[1].Addr {
		t.Errorf("sentinels say %q", m)
	}
	// Sentinel sees the old master back, demotes it and, once it has resynced, lists its link
	// as up: no event says the latter, polls find it.
	a.Servers[0].Restart()
	waitGroups(t, ch, "the old master serving as a replica", func(gs []Group) bool {
		return slices.Equal(gs[0].Replicas, []string{a.Servers[0].Addr})
	}, w)
	if got := w.Groups()[0].Master; got != a.Servers[1].Addr {
		t.Errorf("master after the old one came back = %q", got)
	}
}

// TestWatcherNoQuorum: with two of three sentinels down, the one left is no quorum: a group
// with no master yet gets none, and one known keeps it; with one back, the master is used.
func TestWatcherNoQuorum(t *testing.T) {
	a := redistest.StartGroup(t, "grp-a", 0)
	ss := redistest.StartSentinels(t, 3, a)
	ss.List[0].Kill()
	ss.List[1].Kill()
	w, ch, logs := startWatcher(t, Config{Cluster: "c", Sentinels: ss.Addrs(), Masters: []string{"grp-a"},
		PollInterval: 100 * time.Millisecond, Initial: []Group{{Name: "grp-x", Master: "127.0.0.1:1"}}})
	deadline := time.Now().Add(20 * time.Second)
	for !logs.has("no quorum of sentinels agrees") {
		if time.Now().After(deadline) {
			t.Fatal("no 'no quorum' log within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if g := w.Groups()[0]; g.Master != "" {
		t.Errorf("one sentinel of three decided the master: %+v", g)
	}
	select {
	case gs := <-ch:
		t.Errorf("change without a quorum: %+v", gs)
	default:
	}
	ss.List[1].Restart()
	waitGroups(t, ch, "resolution with two sentinels of three", func(gs []Group) bool { return gs[0].Master == a.Servers[0].Addr })
}

// silentSentinel accepts connections and never answers, as a sentinel that hangs or whose
// answers are lost; it counts the connections that asked for a master (the polls, not the
// subscription).
func silentSentinel(t *testing.T) (addr string, polls func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 256)
				k, _ := io.ReadAtLeast(c, buf, 20)
				if bytes.Contains(buf[:k], []byte("GET-MASTER-ADDR-BY-NAME")) {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// TestWatcherHungSentinelRests: a sentinel that hangs is asked once, then rests for a poll
// interval; the failover the two others (a quorum of three) announce meanwhile is followed
// without asking it again, rather than each round waiting out its read timeout.
func TestWatcherHungSentinelRests(t *testing.T) {
	a := redistest.StartGroup(t, "grp-a", 1)
	ss := redistest.StartSentinels(t, 2, a)
	silent, polls := silentSentinel(t)
	_, ch, _ := startWatcher(t, Config{Cluster: "c", Sentinels: append(ss.Addrs(), silent), Masters: []string{"grp-a"},
		ReadTimeout: 2 * time.Second, PollInterval: time.Hour})
	waitGroups(t, ch, "first resolution", func(gs []Group) bool { return gs[0].Master == a.Servers[0].Addr })
	a.Servers[0].Kill()
	waitGroups(t, ch, "switch of grp-a", func(gs []Group) bool { return gs[0].Master == a.Servers[1].Addr })
	if n := polls(); n != 1 {
		t.Errorf("the hung sentinel was asked %d times, want once", n)
	}
}
