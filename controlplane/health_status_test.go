package controlplane_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/internal/redistest"
)

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStatusShowsDownWithoutEjection: with ping_fail_limit 0 a dead node is DOWN in the
// status (set by health, with its error and since-when) yet stays in the ring; a reload that
// changes the cluster keeps its state and since-when and logs nothing again; an EJECTED node
// whose cluster turns ejection off is DOWN, in the ring.
func TestStatusShowsDownWithoutEjection(t *testing.T) {
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
ping_interval = 200
slowlog_max_len = %d
`, live.Addr, dead.Addr, failLimit, slowlogLen), "test.toml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	logs := &lockedBuffer{}
	sink := &lastSink{}
	cp, err := controlplane.New(conf(128, 0), sink, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	node := func(addr string) controlplane.NodeStatus {
		st, err := cp.Cluster("cache")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.Addr == addr {
				return n
			}
		}
		t.Fatalf("no node %s", addr)
		return controlplane.NodeStatus{}
	}
	waitUntil(t, "both nodes pinged", func() bool { return !node(live.Addr).Since.IsZero() && !node(dead.Addr).Since.IsZero() })

	dead.Kill()
	waitUntil(t, "DOWN", func() bool { return node(dead.Addr).State == controlplane.StateDown })
	down := node(dead.Addr)
	if down.SetBy != "health" || down.Reason == "" || down.Reason != down.LastError || !strings.Contains(down.LastError, dead.Addr) || down.FailedPings < 1 {
		t.Errorf("DOWN node %+v", down)
	}
	if got := sink.ringAddrs(t, "cache"); len(got) != 2 {
		t.Errorf("ring %v: ping_fail_limit 0 must not eject", got)
	}
	st, _ := cp.Cluster("cache")
	if !st.Serving() {
		t.Errorf("cluster with a live node not serving")
	}

	if _, err := cp.Reload(conf(256, 0)); err != nil {
		t.Fatal(err)
	}
	after := node(dead.Addr)
	if after.State != controlplane.StateDown || !after.Since.Equal(down.Since) {
		t.Errorf("after the reload: %+v; want DOWN since %v still", after, down.Since)
	}
	waitUntil(t, "more failed pings by the new checker", func() bool { return node(dead.Addr).FailedPings > after.FailedPings+2 })
	if n := countLines(logs.String(), "node down", "node="+dead.Addr); n != 1 {
		t.Errorf("%d 'node down' lines, want 1 across the reload:\n%s", n, logs)
	}

	// Ejection on, then off again: the ejected node is DOWN, back in the ring.
	if _, err := cp.Reload(conf(256, 2)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "ejection", func() bool { return slices.Equal(sink.ringAddrs(t, "cache"), []string{live.Addr}) })
	if n := node(dead.Addr); n.State != controlplane.StateEjected || n.SetBy != "health" || !strings.Contains(n.Reason, dead.Addr) {
		t.Errorf("ejected node %+v", n)
	}
	if _, err := cp.Reload(conf(256, 0)); err != nil {
		t.Fatal(err)
	}
	if n := node(dead.Addr); n.State != controlplane.StateDown || len(sink.ringAddrs(t, "cache")) != 2 {
		t.Errorf("ejection turned off: node %+v, ring %v; want DOWN, in the ring", n, sink.ringAddrs(t, "cache"))
	}

	live.Kill()
	waitUntil(t, "no serving node", func() bool { st, _ := cp.Cluster("cache"); return !st.Serving() })
	dead.Restart()
	waitUntil(t, "UP again", func() bool { return node(dead.Addr).State == controlplane.StateUp })
	if n := countLines(logs.String(), "node up", "node="+dead.Addr); n != 1 {
		t.Errorf("%d 'node up' lines, want 1:\n%s", n, logs)
	}
}

// countLines counts the lines of log that hold every one of parts.
func countLines(log string, parts ...string) int {
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
