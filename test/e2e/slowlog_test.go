package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSlowLogThroughAsterctl logs every command (threshold 0) and reads them back with
// SLOWLOG on the client connection and with asterctl through the admin API.
func TestSlowLogThroughAsterctl(t *testing.T) {
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
