package proxy_test

import (
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestScriptOnEveryNode: SCRIPT LOAD reaches every node, so EVALSHA runs whichever node its
// key is on; SCRIPT EXISTS says 1 only when every node has the script; SCRIPT FLUSH empties
// every node; errors and refusals are Redis's (or the proxy's for KILL and in MULTI).
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
	if r := string(rc.Do("SCRIPT", "KILL")); r != "-ERR SCRIPT KILL is not supported by the proxy\r\n" {
		t.Errorf("SCRIPT KILL = %q", r)
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
