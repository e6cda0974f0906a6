package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestSlowLogThroughAsterctl logs every command (threshold 0) and reads them back with
// SLOWLOG on the client connection and with asterctl through the admin API.
func TestSlowLogThroughAsterctl(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	a, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "slow"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
slowlog_log_slower_than = 0
slowlog_max_len = 5
`)
	c := a.client(t)
	for _, k := range []string{"k1", "k2", "k3"} {
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Do(ctx, "SLOWLOG", "LEN").Int(); err != nil || n != 5 {
		t.Fatalf("SLOWLOG LEN = %d, %v; want 5 (max_len; every command is logged)", n, err)
	}
	r := asterctl(t, nil, "--addr", admin, "-o", "json", "cluster", "slowlog", "slow", "-n", "2")
	if r.code != 0 {
		t.Fatalf("cluster slowlog: %v", r)
	}
	var resp struct {
		Entries []struct {
			Args   []string
			Client string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(resp.Entries) != 2 {
		t.Fatalf("%d entries, want 2:\n%s", len(resp.Entries), r.stdout)
	}
	// Newest first: the SLOWLOG LEN itself, then SET k3.
	if got := strings.Join(resp.Entries[1].Args, " "); !strings.EqualFold(got, "set k3 v") {
		t.Errorf("second newest entry %q, want set k3 v", got)
	}
	r = asterctl(t, nil, "--addr", admin, "cluster", "slowlog", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "NotFound") {
		t.Fatalf("slowlog of an unknown cluster: %v", r)
	}
	r = asterctl(t, nil, "--addr", admin, "cluster", "slowlog", "slow")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(strings.ToLower(r.stdout), "set k2 v") {
		t.Fatalf("table output: %v", r)
	}
}

// TestSlowLogNamesCommandSlowedByBackend: a backend busy in DEBUG SLEEP (sent to it directly)
// makes the GET waiting behind it slow; SLOWLOG names that GET with its duration, and the fast
// commands before it are not logged.
func TestSlowLogNamesCommandSlowedByBackend(t *testing.T) {
	// Not parallel: it needs twenty SETs to stay under a 100 ms slow-log threshold and DEBUG SLEEP
	// to start within 100 ms.
	srv := redistest.Start(t, "--enable-debug-command", "yes")
	a := startAsterd(t, `
[[clusters]]
name = "slowbe"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList([]*redistest.Server{srv}, []int{1}, true)+`
slowlog_log_slower_than = 100000
slowlog_max_len = 16
`)
	c := a.client(t)
	for i := 0; i < 20; i++ {
		if err := c.Set(ctx, "fast", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	slept := make(chan error, 1)
	go func() { _, err := srv.Do("DEBUG", "SLEEP", "0.5"); slept <- err }()
	time.Sleep(100 * time.Millisecond) // DEBUG SLEEP has the server now
	if err := c.Get(ctx, "slowkey").Err(); err != redis.Nil {
		t.Fatalf("GET slowkey: %v", err)
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP on the backend: %v", err)
	}
	entries, err := c.Do(ctx, "SLOWLOG", "GET").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("SLOWLOG GET has %d entries, want only the GET behind DEBUG SLEEP: %v", len(entries), entries)
	}
	e := entries[0].([]any) // id, time, duration µs, args, client, name
	us, args := e[2].(int64), fmt.Sprint(e[3])
	if !strings.Contains(strings.ToLower(args), "get slowkey") || us < 250000 {
		t.Fatalf("entry %v: want GET slowkey taking ≥ 250ms", e)
	}
}
