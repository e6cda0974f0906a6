package topology

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// results collects OnRefresh's results.
type results struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *results) add(res string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[res]++
}

func (r *results) get(res string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[res]
}

// connectionsReceived reads a node's total_connections_received.
func connectionsReceived(t *testing.T, s *redistest.Server) int {
	t.Helper()
	info, err := s.Do("INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := info.(string)
	i := strings.Index(text, "total_connections_received:")
	if i < 0 {
		t.Fatalf("INFO stats of %s has no total_connections_received", s.Addr)
	}
	line := text[i+len("total_connections_received:"):]
	n, err := strconv.Atoi(strings.TrimSpace(line[:strings.IndexByte(line, '\n')]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWatchPublishesChangesOnly: with no fetch interval and no hint, the watch alone picks up a
// change on the node; in between, unchanged maps are counted as such and not published, and
// every poll goes over the one kept connection.
func TestWatchPublishesChangesOnly(t *testing.T) {
	s := loneNode(t, 8191)
	var res results
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: []string{s.Addr}, WatchInterval: 50 * time.Millisecond,
		OnRefresh: res.add})
	if m := waitChange(t, changes, 5*time.Second); m.Covered() != 8192 {
		t.Fatalf("first map covers %d slots, want 8192", m.Covered())
	}
	conns := connectionsReceived(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for res.get(RefreshUnchanged) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d unchanged refreshes in 5s with a 50ms watch", res.get(RefreshUnchanged))
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case m := <-changes:
		t.Fatalf("unchanged map published again: %v", m.Ranges())
	default:
	}
	// INFO itself is one connection each time it is read.
	if got := connectionsReceived(t, s) - conns; got > 1 {
		t.Errorf("the watch opened %d connections for %d polls; want it to keep one", got-1, res.get(RefreshUnchanged))
	}
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", 8192, route.Slots-1); err != nil {
		t.Fatal(err)
	}
	if m := waitChange(t, changes, 5*time.Second); m.Covered() != route.Slots {
		t.Fatalf("second map covers %d slots, want %d", m.Covered(), route.Slots)
	}
	if f.Current().Covered() != route.Slots {
		t.Error("Current() is not the new map")
	}
	for deadline := time.Now().Add(time.Second); res.get(RefreshChanged) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // OnRefresh comes after OnChange
	}
	if res.get(RefreshChanged) != 2 || res.get(RefreshFailed) != 0 {
		t.Errorf("results %v, want 2 changed and no failed", res.n)
	}
}

// TestWatchMovesOnWhenWatchedNodeDies: when the watched node dies, the next refresh asks the
// other nodes at once (no fetch interval, no hint) and publishes what they say; with every
// node gone it reports failures and keeps the map.
func TestWatchMovesOnWhenWatchedNodeDies(t *testing.T) {
	a, b := loneNode(t, route.Slots-1), loneNode(t, route.Slots-1) // two one-node clusters
	var res results
	f, changes := runFetcher(t, Config{Cluster: "c", Seeds: []string{a.Addr, b.Addr}, WatchInterval: 50 * time.Millisecond,
		OnRefresh: res.add, DialTimeout: 200 * time.Millisecond})
	first := waitChange(t, changes, 5*time.Second)
	if got := first.Nodes()[first.Master(0)].Addr; got != a.Addr {
		t.Fatalf("first map names %s, want the first seed %s", got, a.Addr)
	}
	a.Kill()
	m := waitChange(t, changes, 5*time.Second)
	if got := m.Nodes()[m.Master(0)].Addr; got != b.Addr {
		t.Fatalf("after %s died the map names %s, want %s", a.Addr, got, b.Addr)
	}
	b.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for res.get(RefreshFailed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed refresh reported with every node down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f.Current() != m {
		t.Error("a failed refresh replaced the map")
	}
}
