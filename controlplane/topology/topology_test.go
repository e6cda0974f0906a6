package topology

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

// testLogger routes a component's logs to t.Log.
func testLogger(t *testing.T) hclog.Logger { return testlog.New(t, "test", hclog.Debug) }

// downAddr returns a loopback address nothing listens on.
func downAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
}

// loneNode starts one cluster-enabled redis-server serving slots [0, last] by itself.
func loneNode(t *testing.T, last int) *redistest.Server {
	t.Helper()
	s := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"))
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", 0, last); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", s.Addr, err)
	}
	return s
}

// runFetcher runs f until the test ends and reports each OnChange map on the returned channel.
func runFetcher(t *testing.T, cfg Config) (*Fetcher, <-chan *route.SlotMap) {
	t.Helper()
	changes := make(chan *route.SlotMap, 100)
	cfg.Logger = testLogger(t)
	cfg.OnChange = func(m *route.SlotMap) { changes <- m }
	f := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return f, changes
}

func waitChange(t *testing.T, changes <-chan *route.SlotMap, d time.Duration) *route.SlotMap {
	t.Helper()
	select {
	case m := <-changes:
		return m
	case <-time.After(d):
		t.Fatalf("no slot map published within %v", d)
		return nil
	}
}

// TestFetchLive asks a real 3+3 cluster through seed lists with dead and wrong seeds.
func TestFetchLive(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	plain := redistest.Start(t) // answers CLUSTER SLOTS with an error
	down := downAddr(t)
	ctx := context.Background()

	t.Run("first seed down", func(t *testing.T) {
		f := New(Config{Cluster: "c", Seeds: []string{down, plain.Addr, c.Nodes[4].Addr}, Logger: testLogger(t)})
		m, err := f.Fetch(ctx)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if m.Covered() != route.Slots {
			t.Errorf("Covered() = %d, want %d", m.Covered(), route.Slots)
		}
		if len(m.Nodes()) != 6 {
			t.Errorf("map names %d nodes, want 6: %v", len(m.Nodes()), m.Nodes())
		}
		for _, slot := range []uint16{0, 5000, 5461, 10923, 16383} {
			want := c.MasterOf(int(slot))
			if got := m.Nodes()[m.Master(slot)].Addr; got != want.Addr {
				t.Errorf("Master(%d) = %s, want %s", slot, got, want.Addr)
			}
			if reps := m.Replicas(slot); len(reps) != 1 {
				t.Errorf("slot %d has %d replicas, want 1", slot, len(reps))
			}
		}
		if f.Current() != nil {
			t.Error("Fetch published a map; only Run does")
		}
	})

	t.Run("every seed failing names each", func(t *testing.T) {
		f := New(Config{Cluster: "c", Seeds: []string{down, plain.Addr}, DialTimeout: 200 * time.Millisecond})
		_, err := f.Fetch(ctx)
		if err == nil {
			t.Fatal("Fetch succeeded with no cluster node among the seeds")
		}
		for _, want := range []string{`cluster "c"`, down, "connection refused", plain.Addr, "cluster support disabled"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("no seeds", func(t *testing.T) {
		if _, err := New(Config{Cluster: "c"}).Fetch(ctx); err == nil || !strings.Contains(err.Error(), "no seeds") {
			t.Errorf("Fetch error = %v, want no seeds", err)
		}
	})

	t.Run("known nodes asked before seeds", func(t *testing.T) {
		f := New(Config{Cluster: "c", Seeds: []string{down}})
		first, err := New(Config{Seeds: c.Seeds()}).Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.cur.Store(first)
		m, err := f.Fetch(ctx)
		if err != nil {
			t.Fatalf("Fetch with only a dead seed but a known map: %v", err)
		}
		if !m.Equal(first) {
			t.Error("map from known nodes differs from the first")
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := New(Config{Seeds: c.Seeds()}).Fetch(cctx); err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("Fetch error = %v, want context canceled", err)
		}
	})
}

// TestRunFailoverAfterHint: a manual failover makes a replica master; after Hint the fetcher
// publishes a map that names it.
func TestRunFailoverAfterHint(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: c.Seeds()[:1]})
	first := waitChange(t, changes, 5*time.Second)
	if f.Current() != first {
		t.Fatal("Current() is not the published map")
	}
	const slot = 0
	oldMaster := first.Nodes()[first.Master(slot)].Addr
	reps := first.Replicas(slot)
	if len(reps) != 1 {
		t.Fatalf("slot %d has replicas %v, want one", slot, reps)
	}
	promoted := first.Nodes()[reps[0]].Addr

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Node(promoted).Client().Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", promoted, err)
	}
	// Nodes learn of the failover by gossip, so a hint may still fetch the old view: hint
	// until the fetcher publishes the new one.
	for {
		f.Hint()
		select {
		case m := <-changes:
			if got := m.Nodes()[m.Master(slot)].Addr; got != promoted {
				continue // an intermediate view
			}
			if f.Current() != m {
				t.Error("Current() is not the latest published map")
			}
			if r := m.Replicas(slot); len(r) == 1 && m.Nodes()[r[0]].Addr != oldMaster {
				t.Errorf("replica of slot %d is %s, want the old master %s", slot, m.Nodes()[r[0]].Addr, oldMaster)
			}
			return
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("no map with %s as master of slot %d after the failover; current master %s",
				promoted, slot, f.Current().Nodes()[f.Current().Master(slot)].Addr)
		}
	}
}

// TestRunDebouncesHints: a storm of hints gives a handful of fetches, at most one per MinGap,
// and an unchanged map is not published again.
func TestRunDebouncesHints(t *testing.T) {
	s := loneNode(t, route.Slots-1)
	const gap = 200 * time.Millisecond
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: []string{s.Addr}, MinGap: gap})
	waitChange(t, changes, 5*time.Second)
	base := f.fetches.Load()

	const storm = time.Second
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Go(func() {
			for time.Since(start) < storm {
				f.Hint()
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	time.Sleep(2 * gap) // let the last hint be served
	got := f.fetches.Load() - base
	t.Logf("%v of hints from 4 goroutines: %d fetches", storm, got)
	maxFetches := int64(storm/gap) + 2
	if got < 2 || got > maxFetches {
		t.Errorf("%v of hints caused %d fetches, want 2..%d", storm, got, maxFetches)
	}
	select {
	case m := <-changes:
		t.Errorf("unchanged map published again: %v", m.Ranges())
	default:
	}
}

// TestRunPeriodic: with an Interval and no hints, a change on the server is picked up.
func TestRunPeriodic(t *testing.T) {
	s := loneNode(t, 8191)
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: []string{s.Addr}, Interval: 100 * time.Millisecond})
	if m := waitChange(t, changes, 5*time.Second); m.Covered() != 8192 {
		t.Fatalf("first map covers %d slots, want 8192", m.Covered())
	}
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", 8192, route.Slots-1); err != nil {
		t.Fatal(err)
	}
	if m := waitChange(t, changes, 3*time.Second); m.Covered() != route.Slots {
		t.Errorf("second map covers %d slots, want %d", m.Covered(), route.Slots)
	}
	if n := f.fetches.Load(); n < 2 {
		t.Errorf("%d fetches, want periodic ones", n)
	}
}

// TestRunRetriesFirstFetch: Run keeps trying while the only seed is down and publishes once it
// is back.
func TestRunRetriesFirstFetch(t *testing.T) {
	s := loneNode(t, route.Slots-1)
	s.Kill()
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: []string{s.Addr}})
	time.Sleep(400 * time.Millisecond)
	if f.Current() != nil {
		t.Fatal("a map was published while the only seed was down")
	}
	if n := f.fetches.Load(); n < 2 {
		t.Errorf("%d fetch attempts while the seed was down, want retries", n)
	}
	s.Restart() // nodes.conf keeps its slots
	if m := waitChange(t, changes, 5*time.Second); m.Covered() != route.Slots {
		t.Errorf("map covers %d slots, want %d", m.Covered(), route.Slots)
	}
}

func TestHintNeverBlocks(t *testing.T) {
	f := New(Config{}) // not running: nobody drains hints
	done := make(chan struct{})
	go func() {
		for range 1000 {
			f.Hint()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Hint blocked with no Run draining it")
	}
}

// TestFetchAuthenticates asks a password-protected node: with the password the fetch gets
// past AUTH (the node is not in cluster mode, so CLUSTER SLOTS itself then fails), without it
// the error says AUTH was refused, with the node's reason.
func TestFetchAuthenticates(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "pw")
	for _, c := range []struct{ name, pass, want string }{
		{"right", "pw", "cluster support disabled"},
		{"wrong", "nope", "node refused AUTH: WRONGPASS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := New(Config{Cluster: "t", Seeds: []string{srv.Addr}, Password: c.pass})
			_, err := f.Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Fetch: %v, want an error containing %q", err, c.want)
			}
		})
	}
}
