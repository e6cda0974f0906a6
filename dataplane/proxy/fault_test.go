package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
)

// keyOn returns a key that the ring places on node idx.
func keyOn(t *testing.T, ring *route.Ring, idx int, prefix string) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := prefix + strconv.Itoa(i)
		if ring.Pick([]byte(k)) == idx {
			return k
		}
	}
	t.Fatalf("no key for node %d", idx)
	return ""
}

func TestNodeKilledMidPipelineFailsOnlyItsRequests(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	ring := e.install(t, 2, nodesOf(e))
	dead, alive := keyOn(t, ring, 0, "dead:"), keyOn(t, ring, 1, "alive:")
	e.client.Set(ctx, alive, "ok", 0)

	// A pipeline blocked behind a slow script on the doomed node, killed while it waits.
	rc := e.raw(t)
	var b strings.Builder
	const n = 200
	fmt.Fprintf(&b, "EVAL \"local t=redis.call('TIME') while true do local n=redis.call('TIME') if n[1]-t[1]>=2 then break end end return 1\" 1 %s\r\n", dead)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "GET %s\r\nGET %s\r\n", dead, alive)
	}
	rc.send(b.String())
	time.Sleep(300 * time.Millisecond)
	e.servers[0].Kill()

	deadline := time.Now().Add(10 * time.Second)
	_ = rc.nc.SetReadDeadline(deadline)
	if got := rc.line(); !strings.HasPrefix(got, "-ERR backend "+e.servers[0].Addr) {
		t.Fatalf("EVAL on killed node: %q, want a backend error", got)
	}
	for i := 0; i < n; i++ {
		if got := rc.line(); !strings.HasPrefix(got, "-ERR backend ") {
			t.Fatalf("GET %d on killed node: %q, want a backend error", i, got)
		}
		if h, v := rc.line(), rc.line(); h != "$2" || v != "ok" {
			t.Fatalf("GET %d on live node: %q %q", i, h, v)
		}
	}
	// The live node keeps serving; the dead one fails fast, never hangs.
	if v, err := e.client.Get(ctx, alive).Result(); err != nil || v != "ok" {
		t.Fatalf("live node after the kill: %q, %v", v, err)
	}
	start := time.Now()
	if err := e.client.Get(ctx, dead).Err(); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("dead node: %v, want backend error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("request to a dead node took %v", time.Since(start))
	}
	// Back again: served again without restarting the proxy.
	e.servers[0].Restart()
	waitFor(t, 10*time.Second, func() bool { return e.client.Set(ctx, dead, "back", 0).Err() == nil })
}

func TestHungNodeTimesOutAndRecovers(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2, readTimeout: 300 * time.Millisecond})
	ring := e.install(t, 2, nodesOf(e))
	hung, alive := keyOn(t, ring, 0, "hung:"), keyOn(t, ring, 1, "alive:")
	e.client.Set(ctx, hung, "h", 0)
	e.client.Set(ctx, alive, "a", 0)

	e.servers[0].Pause()
	errc := make(chan error, 1)
	go func() { errc <- e.client.Get(ctx, hung).Err() }()
	// Meanwhile the other node's keys are served.
	for i := 0; i < 20; i++ {
		if v, err := e.client.Get(ctx, alive).Result(); err != nil || v != "a" {
			t.Fatalf("live node while the other hangs: %q, %v", v, err)
		}
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "read timeout") {
			t.Fatalf("GET on hung node: %v, want read timeout error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GET on hung node did not fail within 5s (read_timeout 300ms)")
	}
	e.servers[0].Resume()
	waitFor(t, 10*time.Second, func() bool {
		v, err := e.client.Get(ctx, hung).Result()
		return err == nil && v == "h"
	})
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEmptyRingAnswersAnError(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	e.install(t, 2, nil)
	err := e.client.Get(ctx, "x").Err()
	if err == nil || !strings.Contains(err.Error(), "no backend node available") {
		t.Fatalf("GET with every node ejected: %v", err)
	}
	e.install(t, 3, nodesOf(e))
	if err := e.client.Set(ctx, "x", "1", 0).Err(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}
