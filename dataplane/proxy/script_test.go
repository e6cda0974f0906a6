package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestScriptOnEveryNode: SCRIPT LOAD reaches every node, so EVALSHA runs whichever node its
// key is on; SCRIPT EXISTS says 1 only when every node has the script; SCRIPT FLUSH empties
// every node; errors and refusals are Redis's (or the proxy's for DEBUG and in MULTI).
func TestScriptOnEveryNode(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	ring := e.install(t, 2, nodesOf(e))
	const body = "return redis.call('GET', KEYS[1])"
	sha, err := e.client.ScriptLoad(ctx, body).Result()
	if err != nil || len(sha) != 40 {
		t.Fatalf("SCRIPT LOAD = %q, %v", sha, err)
	}
	for _, s := range e.servers {
		if got, err := s.Do("SCRIPT", "EXISTS", sha); err != nil || got.([]any)[0] != int64(1) {
			t.Errorf("node %s: SCRIPT EXISTS = %v, %v; want the script loaded everywhere", s.Addr, got, err)
		}
	}
	for i := range e.servers {
		k := keyOn(t, ring, i, "script:")
		e.client.Set(ctx, k, k, 0)
		if v, err := e.client.EvalSha(ctx, sha, []string{k}).Result(); err != nil || v != k {
			t.Errorf("EVALSHA on node %d's key %s = %v, %v", i, k, v, err)
		}
	}

	// One node lost it (restart, failover): EXISTS says so; LOAD puts it back.
	if _, err := e.servers[1].Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.client.ScriptExists(ctx, sha, strings.Repeat("0", 40)).Result(); err != nil || got[0] || got[1] {
		t.Errorf("SCRIPT EXISTS with one node flushed = %v, %v; want [false false]", got, err)
	}
	e.client.ScriptLoad(ctx, body)
	if got, err := e.client.ScriptExists(ctx, sha).Result(); err != nil || !got[0] {
		t.Errorf("SCRIPT EXISTS after LOAD = %v, %v; want [true]", got, err)
	}
	if err := e.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	for _, s := range e.servers {
		if got, _ := s.Do("SCRIPT", "EXISTS", sha); got.([]any)[0] != int64(0) {
			t.Errorf("node %s still has the script after SCRIPT FLUSH", s.Addr)
		}
	}

	ref := redistest.Start(t)
	steps := []resetStep{
		{cmds: cmds([]string{"SCRIPT", "LOAD"}), want: "-ERR wrong number of arguments for 'script|load' command\r\n"},
		{cmds: cmds([]string{"SCRIPT", "NOSUCH"}), want: "-ERR unknown subcommand 'NOSUCH'. Try SCRIPT HELP.\r\n"},
		{cmds: cmds([]string{"SCRIPT", "LOAD", "return +"})},
		{cmds: cmds([]string{"SCRIPT", "FLUSH", "bad"})},
		{cmds: cmds([]string{"SCRIPT", "EXISTS", sha}), want: "*1\r\n:0\r\n"},
	}
	checkResetScript(t, e.addr, ref.Addr, steps)
	rc := redistest.DialFrames(t, e.addr)
	if r := string(rc.Do("SCRIPT", "DEBUG", "YES")); r != "-ERR SCRIPT DEBUG is not supported by the proxy\r\n" {
		t.Errorf("SCRIPT DEBUG = %q", r)
	}
	rc.Send([]string{"MULTI"}, []string{"SCRIPT", "LOAD", body}, []string{"EXEC"})
	var b strings.Builder
	for range 3 {
		b.Write(rc.Read())
	}
	if want := "+OK\r\n-ERR script inside a transaction is not supported by the proxy\r\n-EXECABORT"; !strings.HasPrefix(b.String(), want) {
		t.Errorf("SCRIPT LOAD in MULTI: %q, want %q...", b.String(), want)
	}
}

// busyFrom waits until srv runs a script past its busy-reply-threshold: it then answers PING
// with -BUSY.
func busyFrom(t *testing.T, srv *redistest.Server) {
	t.Helper()
	rc := redistest.DialFrames(t, srv.Addr)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if r := string(rc.Do("PING")); strings.HasPrefix(r, "-BUSY") {
			return
		}
	}
	t.Fatalf("node %s never got busy with the script", srv.Addr)
}

// TestScriptKill: SCRIPT KILL and FUNCTION KILL from any client reach the node that runs an
// endless script, on a connection of their own (the script's shared connection, and the
// requests queued on it behind the script, would hold them for ever): the node kills it and
// serves again; the script's client gets Redis's error. With nothing running the reply is
// Redis's NOTBUSY; a script that wrote cannot be killed, and the node's UNKILLABLE is passed
// on. Pipelined KILLs cost each node a connection or two, not one each.
func TestScriptKill(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3, readTimeout: 10 * time.Second, serverArgs: []string{"--lua-time-limit", "100"}})
	ring := e.install(t, 2, nodesOf(e))
	ref := redistest.DialFrames(t, redistest.Start(t).Addr)
	notBusy := string(ref.Do("SCRIPT", "KILL"))
	if !strings.HasPrefix(notBusy, "-NOTBUSY ") {
		t.Fatalf("reference SCRIPT KILL: %q", notBusy)
	}
	rc := redistest.DialFrames(t, e.addr)
	for _, cmd := range [][]string{{"SCRIPT", "KILL"}, {"FUNCTION", "KILL"}, {"script", "kill"}} {
		if r := string(rc.Do(cmd...)); r != notBusy {
			t.Errorf("%q with nothing running = %q, want %q", cmd, r, notBusy)
		}
	}
	rc3 := redistest.DialFrames(t, e.addr) // a RESP3 client: the reply is converted, and the same
	rc3.Do("HELLO", "3")
	if r := string(rc3.Do("FUNCTION", "KILL")); r != notBusy {
		t.Errorf("FUNCTION KILL from a RESP3 client = %q, want %q", r, notBusy)
	}
	for _, cmd := range [][]string{{"SCRIPT", "KILL", "x"}, {"FUNCTION", "KILL", "x"}} {
		if r, want := string(rc.Do(cmd...)), string(ref.Do(cmd...)); r != want {
			t.Errorf("%q = %q, want Redis's %q", cmd, r, want)
		}
	}

	// The busy node is the last one, so the others' NOTBUSY come first.
	busy := e.servers[2]
	key, other := keyOn(t, ring, 2, "spin:"), keyOn(t, ring, 0, "other:")
	e.client.Set(ctx, key, "v", 0)
	e.client.Set(ctx, other, "o", 0)
	lib := "#!lua name=spinlib\nredis.register_function('spin', function() while true do end end)"
	if r := string(rc.Do("FUNCTION", "LOAD", lib)); r != "$7\r\nspinlib\r\n" {
		t.Fatalf("FUNCTION LOAD = %q", r)
	}
	cases := []struct {
		name       string
		run        []string
		kill       []string
		wrongKill  []string // the other KILL: the node's BUSY error is passed on
		wantScript string   // what the script's client gets
	}{
		{"eval", []string{"EVAL", "while true do end", "1", key}, []string{"SCRIPT", "KILL"}, []string{"FUNCTION", "KILL"}, "-ERR Script killed by user with SCRIPT KILL"},
		{"fcall", []string{"FCALL", "spin", "1", key}, []string{"FUNCTION", "KILL"}, []string{"SCRIPT", "KILL"}, "-ERR Script killed by user with SCRIPT KILL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runner, queued := redistest.DialFrames(t, e.addr), redistest.DialFrames(t, e.addr)
			runner.Send(tc.run)
			busyFrom(t, busy)
			queued.Send([]string{"GET", key}) // waits behind the script on the shared connection
			if r := string(rc.Do(tc.wrongKill...)); !strings.HasPrefix(r, "-BUSY ") {
				t.Errorf("%q while a %s runs = %q, want the node's BUSY", tc.wrongKill, tc.name, r)
			}
			if r := string(rc.Do(tc.kill...)); r != "+OK\r\n" {
				t.Fatalf("%q = %q, want +OK", tc.kill, r)
			}
			if r := string(runner.Read()); !strings.HasPrefix(r, tc.wantScript) {
				t.Errorf("the script's client got %q, want %q...", r, tc.wantScript)
			}
			if r := string(queued.Read()); r != "$1\r\nv\r\n" {
				t.Errorf("GET queued behind the script = %q", r)
			}
			if v, err := e.client.Get(ctx, key).Result(); err != nil || v != "v" {
				t.Errorf("node after the kill: %q, %v", v, err)
			}
		})
	}

	t.Run("pipelined kills", func(t *testing.T) {
		before := make([]int64, len(e.servers))
		for i, s := range e.servers {
			before[i] = connectionsReceived(t, s)
		}
		var cmds [][]string
		for range 200 {
			cmds = append(cmds, []string{"SCRIPT", "KILL"}, []string{"FUNCTION", "KILL"})
		}
		rc.Send(cmds...)
		for i := range cmds {
			if r := string(rc.Read()); r != notBusy {
				t.Fatalf("pipelined KILL %d = %q", i, r)
			}
		}
		for i, s := range e.servers {
			if n := connectionsReceived(t, s) - before[i]; n > 8 {
				t.Errorf("node %s: %d connections for 400 pipelined KILLs", s.Addr, n)
			}
		}
	})

	t.Run("unkillable", func(t *testing.T) {
		runner := redistest.DialFrames(t, e.addr)
		runner.Send([]string{"EVAL", "redis.call('SET', KEYS[1], 'w') while true do end", "1", key})
		busyFrom(t, busy)
		if r := string(rc.Do("SCRIPT", "KILL")); !strings.HasPrefix(r, "-UNKILLABLE ") {
			t.Errorf("SCRIPT KILL of a script that wrote = %q, want the node's UNKILLABLE", r)
		}
		if v, err := e.client.Get(ctx, other).Result(); err != nil || v != "o" {
			t.Errorf("another node meanwhile: %q, %v", v, err)
		}
		busy.Kill() // SHUTDOWN NOSAVE's way: the script cannot end otherwise
	})
}

// connectionsReceived is the server's total_connections_received.
func connectionsReceived(t *testing.T, s *redistest.Server) int64 {
	t.Helper()
	v, err := s.Do("INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(v.(string), "\r\n") {
		if n, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			var c int64
			fmt.Sscan(n, &c)
			return c
		}
	}
	t.Fatal("no total_connections_received in INFO stats")
	return 0
}
