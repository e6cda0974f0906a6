package proxy

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

// servedSpec is a one-node cluster spec on a free port, routed to a real redis-server.
func servedSpec(t *testing.T, version uint64) route.ClusterSpec {
	t.Helper()
	r := redistest.Start(t)
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: r.Addr, Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	return route.ClusterSpec{Name: "a",
		Table:  &route.Table{Version: version, Ring: ring},
		Listen: route.ListenSettings{Addr: "127.0.0.1:0", Proto: "tcp"}}
}

// A reload that changes every group a cluster keeps (access, backend, live, table) installs
// one new generation holding all of it, and the generation sessions already loaded stays as
// it was: a session never sees half of a change, and never a change in the middle of a batch.
func TestReloadBuildsOneNewGeneration(t *testing.T) {
	s := NewServer(ServerOptions{Logger: testlog.New(t, t.Name(), hclog.Warn)})
	defer s.Close()
	spec := servedSpec(t, 1)
	spec.Access.MaxConnections, spec.Live.SlowLogMaxLen, spec.Live.SlowLogSlowerThan = 10, 5, time.Millisecond
	if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	c := s.cluster("a")
	old := c.gen.Load()
	oldPools := old.routes.pools
	oldSlow, oldHot := old.slow, old.hot

	next := spec
	next.Access.MaxConnections = 20
	next.Backend.ReadTimeout = 3 * time.Second
	next.Live.SlowLogMaxLen = 7
	next.Table = &route.Table{Version: 2, Ring: spec.Table.Ring}
	if err := s.Apply(&route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{next}}); err != nil {
		t.Fatal(err)
	}
	g := c.gen.Load()
	if g == old {
		t.Fatal("the reload installed no new generation")
	}
	if g.acc.maxConns != 20 || g.knobs.slowMax != 7 || g.routes.table.Version != 2 || g.routes.pools[0] == oldPools[0] ||
		g.routes.pools[0].opts.ReadTimeout != 3*time.Second {
		t.Fatalf("new generation: max_connections %d, slowlog-max-len %d, table %d, new pool %v, read timeout %v",
			g.acc.maxConns, g.knobs.slowMax, g.routes.table.Version, g.routes.pools[0] != oldPools[0], g.routes.pools[0].opts.ReadTimeout)
	}
	if old.acc.maxConns != 10 || old.knobs.slowMax != 5 || old.routes.table.Version != 1 || old.routes.pools[0] != oldPools[0] ||
		old.slow != oldSlow || old.hot != oldHot {
		t.Fatal("the reload changed the generation sessions had loaded")
	}
	select {
	case <-old.routes.replaced: // sessions waiting for a newer table are woken
	default:
		t.Fatal("the old table's waiters were not woken")
	}
	// The stateful parts carry over when their sizes stay: the tracker (sizes unchanged)
	// is the same object; the slow log was resized, keeping its entries.
	if g.hot != oldHot {
		t.Fatal("the hot-key tracker was replaced though its sizes did not change")
	}
	if g.slow == oldSlow || g.slow.Max() != 7 {
		t.Fatal("the slow log was not resized")
	}
}

// CONFIG SET is an overlay on the file's live settings, by knob: a reload that changes a part
// of them (hot-key sizes, slow log, backup policy) takes the file's values for that part and
// keeps what CONFIG SET set of the others; a reload that changes none of them keeps all.
func TestConfigSetOverlayPerPart(t *testing.T) {
	s := NewServer(ServerOptions{Logger: testlog.New(t, t.Name(), hclog.Warn)})
	defer s.Close()
	spec := servedSpec(t, 1)
	spec.Live.SlowLogMaxLen, spec.Live.SlowLogSlowerThan = 5, time.Millisecond
	spec.Live.BackupRequest = route.BackupRequest{Multiplier: 3}
	apply := func(v uint64) {
		t.Helper()
		spec.Table = &route.Table{Version: v, Ring: spec.Table.Ring}
		if err := s.Apply(&route.Snapshot{Version: v, Clusters: []route.ClusterSpec{spec}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(1)
	knob := func(name string) string {
		t.Helper()
		ks, ok := s.ClusterKnobs("a", name)
		if !ok || len(ks) != 1 {
			t.Fatalf("knob %s: %v", name, ks)
		}
		return ks[0].Value
	}
	set := func() {
		t.Helper()
		for name, v := range map[string]string{"hotkey-capacity": "77", "slowlog-max-len": "9", "backup-request-multiplier": "6"} {
			if _, err := s.SetClusterKnob("a", name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, want map[string]string) {
		t.Helper()
		for name, w := range want {
			if v := knob(name); v != w {
				t.Errorf("%s: %s = %s, want %s", what, name, v, w)
			}
		}
	}
	set()
	spec.Access.MaxConnections = 50 // no live setting changes
	apply(2)
	check("a reload changing no live setting", map[string]string{"hotkey-capacity": "77", "slowlog-max-len": "9", "backup-request-multiplier": "6"})

	spec.Live.BackupRequest.Multiplier = 4
	apply(3)
	check("a reload changing the backup policy", map[string]string{"hotkey-capacity": "77", "slowlog-max-len": "9", "backup-request-multiplier": "4"})

	set()
	spec.Live.SlowLogMaxLen = 8
	apply(4)
	check("a reload changing the slow log", map[string]string{"hotkey-capacity": "77", "slowlog-max-len": "8", "backup-request-multiplier": "6"})

	set()
	spec.Live.Hotkey.Capacity = 300
	apply(5)
	check("a reload changing the hot-key sizes", map[string]string{"hotkey-capacity": "300", "slowlog-max-len": "9", "backup-request-multiplier": "6"})

	// A CONFIG SET after the reload applies on top of the file again.
	if _, err := s.SetClusterKnob("a", "hotkey-capacity", "55"); err != nil {
		t.Fatal(err)
	}
	apply(6)
	check("CONFIG SET after a reload", map[string]string{"hotkey-capacity": "55"})
}
