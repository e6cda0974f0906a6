package proxy_test

import (
	"context"
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

// TestClientPausePipelinedInOrder: a client's pipelined CLIENT PAUSE and UNPAUSE reach every
// node in the order sent, so after PAUSE, UNPAUSE, ..., UNPAUSE no node is left paused; and a
// flood of the same command costs each node one connection, not one per command.
func TestClientPausePipelinedInOrder(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	received := func() []int {
		var n []int
		for _, srv := range e.servers {
			info := string(redistest.DialFrames(t, srv.Addr).Do("INFO", "stats"))
			_, v, _ := strings.Cut(info, "total_connections_received:")
			v, _, _ = strings.Cut(v, "\r\n")
			i, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO stats of %s: %q", srv.Addr, info)
			}
			n = append(n, i)
		}
		return n
	}
	c := redistest.DialFrames(t, e.addr)
	before := received()
	var flood [][]string
	for range 200 {
		flood = append(flood, []string{"CLIENT", "PAUSE", "0", "WRITE"})
	}
	c.Send(flood...)
	for range flood {
		if r := string(c.Read()); r != "+OK\r\n" {
			t.Fatalf("CLIENT PAUSE 0 = %q", r)
		}
	}
	after := received()
	for i := range after {
		// one for the flood, one for each INFO above
		if d := after[i] - before[i] - 1; d > 2 {
			t.Errorf("node %s: %d connections for 200 pipelined CLIENT PAUSEs, want at most 2", e.servers[i].Addr, d)
		}
	}

	for round := range 5 {
		var pipe [][]string
		for range 10 {
			pipe = append(pipe, []string{"CLIENT", "PAUSE", "20000", "WRITE"}, []string{"CLIENT", "UNPAUSE"})
		}
		c.Send(pipe...)
		for range pipe {
			if r := string(c.Read()); r != "+OK\r\n" {
				t.Fatalf("round %d: %q", round, r)
			}
		}
		for _, srv := range e.servers {
			// A paused node holds the write for 20 s; an unpaused one answers at once.
			d := srv.Client()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := d.Set(ctx, "pause-probe", "1", 0).Err()
			cancel()
			if err != nil {
				d.Do(context.Background(), "CLIENT", "UNPAUSE")
				t.Fatalf("round %d: node %s paused after the pipeline's last UNPAUSE: SET %v", round, srv.Addr, err)
			}
		}
	}
}
