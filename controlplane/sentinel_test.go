package controlplane_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

func sentinelConf(t *testing.T, sentinels []string, servers ...string) *config.Config {
	t.Helper()
	var q, s []string
	for _, a := range sentinels {
		q = append(q, strconv.Quote(a))
	}
	for _, a := range servers {
		s = append(s, strconv.Quote(a))
	}
	cfg, err := config.Parse([]byte(`[[clusters]]
name = "sen"
listen_addr = "127.0.0.1:7000"
cache_type = "redis_sentinel"
sentinels = [`+strings.Join(q, ", ")+`]
servers = [`+strings.Join(s, ", ")+`]
sentinel_poll_interval = 100
`), "s.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// lastTable returns the newest snapshot's table of cluster "sen", nil when none.
func lastTable(s *refusingSink) *route.Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.taken) == 0 {
		return nil
	}
	for _, c := range s.taken[len(s.taken)-1].Clusters {
		if c.Name == "sen" {
			return c.Table
		}
	}
	return nil
}

func waitTable(t *testing.T, s *refusingSink, what string, ok func(*route.Table) bool) *route.Table {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if tb := lastTable(s); tb != nil && ok(tb) {
			return tb
		}
		if time.Now().After(deadline) {
			t.Fatalf("no table with %s within 20s; last: %+v", what, lastTable(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSentinelGroupWithoutMasterIsNotRouted: a table is published only once every group has
// a master a quorum of sentinels names, and ring nodes are named by alias (else master name)
// with the master's address. A reload adding a group the sentinels do not know keeps the old
// table (no key moves to the others) and shows the group DOWN; once they watch it, the new
// ring is published. Eject is refused.
func TestSentinelGroupWithoutMasterIsNotRouted(t *testing.T) {
	ga, gb := redistest.StartGroup(t, "grp-a", 0), redistest.StartGroup(t, "grp-b", 0)
	ss := redistest.StartSentinels(t, 3, ga)
	sink := &refusingSink{}
	cp, err := controlplane.New(sentinelConf(t, ss.Addrs(), "grp-a:2 a"), sink, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if tb := lastTable(sink); tb != nil {
		t.Fatalf("a table before any sentinel was asked: %+v", tb)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	tb := waitTable(t, sink, "grp-a", func(tb *route.Table) bool { return tb.Ring != nil })
	if n := tb.Ring.Nodes(); len(n) != 1 || n[0] != (route.Node{Addr: ga.Servers[0].Addr, Name: "a", Weight: 2}) {
		t.Fatalf("ring nodes %+v", n)
	}
	if _, err := cp.Eject("sen", "a", "test"); err == nil {
		t.Error("eject of a Sentinel group accepted")
	}

	res, err := cp.Reload(sentinelConf(t, ss.Addrs(), "grp-a:2 a", "grp-b"))
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	time.Sleep(500 * time.Millisecond) // rounds every 100 ms: several have found no master for grp-b
	if now := lastTable(sink); now == nil || now.Version != tb.Version || len(now.Ring.Nodes()) != 1 {
		t.Fatalf("a group without a master changed the table: %+v", now)
	}
	st, err := cp.Cluster("sen")
	if err != nil {
		t.Fatal(err)
	}
	var b *controlplane.NodeStatus
	for i, n := range st.Nodes {
		if n.Group == "grp-b" {
			b = &st.Nodes[i]
		}
	}
	if b == nil || b.State != controlplane.StateDown || !strings.Contains(b.Reason, "no quorum") || b.Addr != "" {
		t.Fatalf("grp-b status %+v", b)
	}

	ss.Monitor(gb)
	tb = waitTable(t, sink, "grp-b", func(tb *route.Table) bool { return len(tb.Ring.Nodes()) == 2 })
	if n := tb.Ring.Nodes(); n[0] != (route.Node{Addr: ga.Servers[0].Addr, Name: "a", Weight: 2}) ||
		n[1] != (route.Node{Addr: gb.Servers[0].Addr, Name: "grp-b", Weight: 1}) {
		t.Fatalf("ring nodes %+v", n)
	}
}
