package proxy_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// wholeNode starts a one-node Redis Cluster that serves every slot.
func wholeNode(t *testing.T) *redistest.Server {
	t.Helper()
	s := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"))
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", 0, route.Slots-1); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", s.Addr, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, _ := s.Do("CLUSTER", "INFO")
		if text, _ := info.(string); strings.Contains(text, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("one-node cluster %s not ok", s.Addr)
		}
	}
}

// slotTable is a table that gives every slot to addr.
func slotTable(t *testing.T, version uint64, addr string) *route.Table {
	t.Helper()
	m, err := route.NewSlotMap([]route.SlotRange{{Start: 0, End: route.Slots - 1, Master: route.SlotNode{Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	return &route.Table{Version: version, Slots: m}
}

// failoverProxy serves a cluster-mode proxy whose first table names first; a hint (what the
// data plane sends when a node fails) installs, after a moment, as the control plane would
// once it has seen the failover, a table that names then. It returns a client and the number
// of hints. idle > 0 (client_idle_timeout) serves clients on goroutines rather than event loops.
func failoverProxy(t *testing.T, first, then string, idle time.Duration) (*redis.Client, *atomic.Int64, *proxy.Cluster) {
	t.Helper()
	baseline := runtime.NumGoroutine()
	t.Cleanup(func() { checkNoLeak(t, baseline) })
	var hints atomic.Int64
	var c *proxy.Cluster
	next := slotTable(t, 2, then)
	c = proxy.MustCluster(t, route.ClusterSpec{Name: "test",
		Listen:  route.ListenSettings{Addr: "127.0.0.1:0"},
		Access:  route.AccessSettings{IdleTimeout: idle},
		Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second}},
		proxy.Env{Logger: testLogger(t), Hint: func() {
			if hints.Add(1) == 1 {
				time.AfterFunc(100*time.Millisecond, func() { _ = c.Update(next) })
			}
		}})
	if err := c.Update(slotTable(t, 1, first)); err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	go c.Serve()
	t.Cleanup(c.Close)
	cl := redis.NewClient(&redis.Options{Addr: c.Addr().String(), MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { cl.Close() })
	return cl, &hints, c
}

// TestUnsentRequestsRetriedOnNewTable: requests to a node that refuses connections never reach
// it; once a newer table names another node for their slots, they go there, in order, and the
// client sees their replies instead of the dial error.
func TestUnsentRequestsRetriedOnNewTable(t *testing.T) {
	live := wholeNode(t)
	for _, tc := range []struct {
		name string
		idle time.Duration
	}{{"event loop session", 0}, {"goroutine session", time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := live.Do("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
			testUnsentRetried(t, live, tc.idle)
		})
	}
}

func testUnsentRetried(t *testing.T, live *redistest.Server, idle time.Duration) {
	dead := redistest.Start(t)
	dead.Kill()
	c, hints, pc := failoverProxy(t, dead.Addr, live.Addr, idle)
	ctx := context.Background()

	pipe := c.Pipeline()
	set1 := pipe.Set(ctx, "k", "1", 0)
	set2 := pipe.Set(ctx, "k", "2", 0)
	get := pipe.Get(ctx, "k")
	other := pipe.Set(ctx, "other", "o", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline over a failover: %v (set %v, set %v, get %v)", err, set1.Err(), set2.Err(), get.Err())
	}
	if v := get.Val(); v != "2" {
		t.Fatalf("GET after SET 1, SET 2 = %q: order lost", v)
	}
	if other.Err() != nil {
		t.Fatal(other.Err())
	}
	if v, err := live.Do("GET", "other"); err != nil || v != "o" {
		t.Fatalf("the new node has other = %v, %v", v, err)
	}
	if hints.Load() == 0 {
		t.Error("no hint for the dead node")
	}
	if idle == 0 && proxy.HandOvers(pc) == 0 {
		t.Error("the event loop waited for the new table itself: no session was handed to a goroutine")
	}
	// A later client is served by the new table at once.
	if err := c.Set(ctx, "k2", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestWrittenRequestNeverRetried: a request written to a node that then dies fails with an
// error even though a newer table names another node: the dead node may have run it.
func TestWrittenRequestNeverRetried(t *testing.T) {
	a, b := wholeNode(t), wholeNode(t)
	c, _, _ := failoverProxy(t, a.Addr, b.Addr, 0)
	ctx := context.Background()
	if err := c.Set(ctx, "warm", "1", 0).Err(); err != nil { // the connection to a is up
		t.Fatal(err)
	}
	// a reads the next write and holds it unanswered until it dies.
	if _, err := a.Do("CLIENT", "PAUSE", 60000, "WRITE"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Set(ctx, "k", "v", 0).Err() }()
	time.Sleep(200 * time.Millisecond)
	a.Kill()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply 10s after the node died")
	}
	if err == nil || !strings.Contains(err.Error(), a.Addr) {
		t.Fatalf("SET written to a node that died: %v, want its error", err)
	}
	if calls, _ := b.CommandStats(t, "set"); calls != 0 {
		t.Fatalf("the other node ran %d SETs: a request that was written was sent again", calls)
	}
	// The next request goes to the new table's node.
	deadline := time.Now().Add(5 * time.Second)
	for c.Set(ctx, "k", "v2", 0).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("not served by the new table")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
