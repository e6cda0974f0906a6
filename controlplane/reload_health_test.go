package controlplane_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// lastSink keeps the last snapshot published.
type lastSink struct {
	mu   sync.Mutex
	last *route.Snapshot
}

func (s *lastSink) Apply(snap *route.Snapshot) error {
	s.mu.Lock()
	s.last = snap
	s.mu.Unlock()
	return nil
}

// ringAddrs are the nodes of the named cluster's ring in the last snapshot.
func (s *lastSink) ringAddrs(t *testing.T, name string) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.last.Clusters {
		if c.Name == name && c.Table != nil && c.Table.Ring != nil {
			var out []string
			for _, n := range c.Table.Ring.Nodes() {
				out = append(out, n.Addr)
			}
			return out
		}
	}
	t.Fatalf("no ring for cluster %q in the last snapshot", name)
	return nil
}

// TestReloadKeepsHealthEjections: a reload that changes a standalone cluster (here only its
// slow log length) keeps the nodes its health checker had ejected out of the ring, instead
// of routing to a dead node again until ping_fail_limit more pings fail; the new checker
// restores the node once it answers. Health checking turned off by a reload brings them back.
func TestReloadKeepsHealthEjections(t *testing.T) {
	live, dead := redistest.Start(t), redistest.Start(t)
	conf := func(slowlogLen, failLimit int) *config.Config {
		t.Helper()
		cfg, err := config.Parse(fmt.Appendf(nil, `
[[clusters]]
name = "cache"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
servers = ["%s:1 live", "%s:1 dead"]
ping_fail_limit = %d
ping_interval = 50
ping_succ_interval = 50
slowlog_max_len = %d
`, live.Addr, dead.Addr, failLimit, slowlogLen), "test.toml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	sink := &lastSink{}
	cp, err := controlplane.New(conf(128, 3), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	dead.Kill()
	waitUntil(t, "the dead node's ejection", func() bool {
		return slices.Equal(sink.ringAddrs(t, "cache"), []string{live.Addr})
	})

	res, err := cp.Reload(conf(256, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changed, []string{"cache"}) {
		t.Fatalf("reload result %+v: want cache changed", res)
	}
	if got := sink.ringAddrs(t, "cache"); !slices.Equal(got, []string{live.Addr}) {
		t.Fatalf("ring right after the reload: %v; the ejected node is back in it", got)
	}
	st, err := cp.Cluster("cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Addr == dead.Addr && (n.State != controlplane.StateEjected || n.SetBy != "health") {
			t.Fatalf("dead node after the reload: %+v, want ejected by health", n)
		}
	}
	// Still out a while later: the new checker does not let it back in while it fails.
	time.Sleep(300 * time.Millisecond)
	if got := sink.ringAddrs(t, "cache"); !slices.Equal(got, []string{live.Addr}) {
		t.Fatalf("ring after the new checker's first pings: %v", got)
	}

	dead.Restart()
	waitUntil(t, "the node's restore by the new checker", func() bool {
		return len(sink.ringAddrs(t, "cache")) == 2
	})

	// Health checking off: an ejection must not outlive it (nothing would restore the node).
	dead.Kill()
	waitUntil(t, "the second ejection", func() bool {
		return slices.Equal(sink.ringAddrs(t, "cache"), []string{live.Addr})
	})
	if _, err := cp.Reload(conf(256, 0)); err != nil {
		t.Fatal(err)
	}
	if got := sink.ringAddrs(t, "cache"); len(got) != 2 {
		t.Fatalf("ring after turning health checks off: %v, want both nodes", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
