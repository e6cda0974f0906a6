package proxy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClientPauseReachesServers: CLIENT PAUSE through the proxy pauses every node (two here):
// another client's write is held by the node that owns its key until CLIENT UNPAUSE, sent
// through the proxy as well, lifts it — on a connection of its own, since the paused write
// holds its shared one. Bad arguments get Redis's own error.
func TestClientPauseReachesServers(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	ref := redistest.Start(t)
	c := redistest.DialFrames(t, e.addr)
	rc := redistest.DialFrames(t, ref.Addr)
	for _, args := range [][]string{{"CLIENT", "PAUSE", "x"}, {"CLIENT", "PAUSE", "10", "SOME"}, {"CLIENT", "UNPAUSE", "x"}} {
		if got, want := string(c.Do(args...)), string(rc.Do(args...)); got != want {
			t.Errorf("%q = %q, redis %q", args, got, want)
		}
	}
	// A key on each node, found before the pause.
	keyOn := make([]string, len(e.servers))
	for j, found := 0, 0; found < len(e.servers); j++ {
		k := "paused-" + strconv.Itoa(j)
		c.Do("SET", k, "0")
		for i, srv := range e.servers {
			if keyOn[i] == "" && string(redistest.DialFrames(t, srv.Addr).Do("EXISTS", k)) == ":1\r\n" {
				keyOn[i] = k
				found++
			}
		}
	}
	if r := string(c.Do("CLIENT", "PAUSE", "60000", "WRITE")); r != "+OK\r\n" {
		t.Fatalf("CLIENT PAUSE = %q", r)
	}
	w := redistest.DialFrames(t, e.addr)
	for i, srv := range e.servers {
		w.Send([]string{"SET", keyOn[i], "1"})
		b := redistest.DialFrames(t, srv.Addr)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(string(b.Do("INFO", "clients")), "blocked_clients:1") {
			if time.Now().After(deadline) {
				t.Fatalf("node %s: no client held by the pause", srv.Addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r := string(b.Do("CLIENT", "UNPAUSE")); r != "+OK\r\n" { // the next node stays paused
			t.Fatalf("UNPAUSE on %s = %q", srv.Addr, r)
		}
		if r := string(w.Read()); r != "+OK\r\n" {
			t.Fatalf("SET = %q", r)
		}
	}
	if r := string(c.Do("CLIENT", "PAUSE", "60000", "WRITE")); r != "+OK\r\n" {
		t.Fatalf("CLIENT PAUSE = %q", r)
	}
	w.Send([]string{"SET", "held", "1"})
	if r := string(c.Do("CLIENT", "UNPAUSE")); r != "+OK\r\n" {
		t.Fatalf("CLIENT UNPAUSE = %q", r)
	}
	if r := string(w.Read()); r != "+OK\r\n" {
		t.Fatalf("SET after UNPAUSE = %q", r)
	}
}
