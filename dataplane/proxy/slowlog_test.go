package proxy_test

import (
	"strings"
	"testing"
	"time"
)

func TestSlowLog(t *testing.T) {
	// A threshold the fast commands miss and a 300 ms script hits.
	e := startEnv(t, envOpts{nodes: 1, slowMax: 3, slowOver: 200 * time.Millisecond})
	rc := e.raw(t)
	rc.send("SET fast 1\r\n")
	rc.line()
	script := "local t=redis.call('TIME') while true do local n=redis.call('TIME') if (n[1]-t[1])*1000000+(n[2]-t[2])>=300000 then break end end return 1"
	for i := 0; i < 4; i++ {
		if err := e.client.Eval(ctx, script, []string{"slow" + string(rune('a'+i))}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.client.Do(ctx, "SLOWLOG", "LEN").Int(); err != nil || n != 3 {
		t.Fatalf("SLOWLOG LEN = %d, %v; want 3 (max_len 3, 4 slow commands, fast ones not logged)", n, err)
	}
	entries, err := e.client.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("SLOWLOG GET -1 returned %d entries", len(entries))
	}
	// Newest first, ids descending, the script and its key as arguments.
	if entries[0].ID != 3 || entries[2].ID != 1 {
		t.Errorf("ids %d..%d, want 3..1 (newest first; the first slow command was dropped)", entries[0].ID, entries[2].ID)
	}
	if got := entries[0].Args; len(got) != 4 || !strings.EqualFold(got[0], "evalsha") && !strings.EqualFold(got[0], "eval") || got[3] != "slowd" {
		t.Errorf("newest entry args %q", got)
	}
	if d := entries[0].Duration; d < 300*time.Millisecond {
		t.Errorf("duration %v, want at least the script's 300ms", d)
	}
	if !strings.HasPrefix(entries[0].ClientAddr, "127.0.0.1:") {
		t.Errorf("client %q", entries[0].ClientAddr)
	}
	if err := e.client.Do(ctx, "SLOWLOG", "RESET").Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.client.Do(ctx, "SLOWLOG", "LEN").Int(); n != 0 {
		t.Fatalf("SLOWLOG LEN after RESET = %d", n)
	}
}

func TestSlowLogOff(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	if n, err := e.client.Do(ctx, "SLOWLOG", "LEN").Int(); err != nil || n != 0 {
		t.Fatalf("SLOWLOG LEN with the slow log off = %d, %v", n, err)
	}
}

// TestSlowLogSkipsRefusedCommands: as in Redis, a command refused before it runs (before
// AUTH, wrong number of arguments, unknown) is not in the slow log; what runs is.
func TestSlowLogSkipsRefusedCommands(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, slowMax: 100, slowOver: 0, users: map[string]string{"default": "pw"}})
	rc := e.raw(t)
	for _, tc := range []struct{ cmd, want string }{
		{"GET noauth-key\r\n", "-NOAUTH Authentication required."},
		{"SET noauth-key 1\r\n", "-NOAUTH Authentication required."},
		{"AUTH pw\r\n", "+OK"},
		{"GET arity-key extra\r\n", "-ERR wrong number of arguments for 'get' command"},
		{"SET arity-key\r\n", "-ERR wrong number of arguments for 'set' command"},
		{"NOSUCHCMD unknown-key\r\n", "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'unknown-key' "},
		{"GET ran-key\r\n", "$-1"},
	} {
		rc.send(tc.cmd)
		if got := rc.line(); got != tc.want {
			t.Fatalf("%q: %q, want %q", tc.cmd, got, tc.want)
		}
	}
	entries, err := e.client.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	for _, en := range entries {
		args := strings.Join(en.Args, " ")
		if strings.Contains(args, "noauth-key") || strings.Contains(args, "arity-key") || strings.Contains(args, "unknown-key") {
			t.Errorf("a refused command is in the slow log: %q", args)
		}
		ran = ran || args == "GET ran-key"
	}
	if !ran {
		t.Fatalf("the command that ran is not in the slow log: %v", entries)
	}
}

// TestConfigSetAppliesToTheRestOfItsPipeline: as in Redis, a CONFIG SET holds from the next
// command, also of the same pipeline: the session takes the generation the CONFIG SET built
// for the rest of its batch, so the SET sent in the same write as a lowered threshold is
// timed against it and logged.
func TestConfigSetAppliesToTheRestOfItsPipeline(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, slowMax: 16, slowOver: time.Hour})
	rc := e.raw(t)
	rc.send("PING\r\n") // the session is set up: the pipeline below arrives in one read
	if l := rc.line(); l != "+PONG" {
		t.Fatalf("PING: %q", l)
	}
	rc.send("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$23\r\nslowlog-log-slower-than\r\n$1\r\n0\r\n" +
		"*3\r\n$3\r\nSET\r\n$8\r\nmidbatch\r\n$1\r\nv\r\n")
	for i := 0; i < 2; i++ {
		if l := rc.line(); l != "+OK" {
			t.Fatalf("reply %d: %q", i, l)
		}
	}
	entries, err := e.client.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		for _, a := range en.Args {
			if a == "midbatch" {
				return
			}
		}
	}
	t.Fatalf("the SET after CONFIG SET slowlog-log-slower-than 0 in one pipeline is not in the slow log: %+v", entries)
}
