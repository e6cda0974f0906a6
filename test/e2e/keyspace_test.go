package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClusterKeyspaceCommands: in front of a real Redis Cluster with replicas (and reads spread
// over them), SCAN walks the masters, so the client's loop returns every key once, DBSIZE
// counts each key once (masters only, not their replicas), and FUNCTION LOAD goes to the
// masters only (replicas refuse it and get the library by replication), after which FCALL_RO
// runs on any node.
func TestClusterKeyspaceCommands(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds()[:1], "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	// waitServing's probe keys are there too: count what the masters hold.
	const n = 500
	for i := 0; i < n; i++ {
		if err := c.Set(ctx, fmt.Sprintf("ks:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	masters := map[string]bool{}
	for slot := 0; slot < 16384; slot += 100 {
		masters[rc.MasterOf(slot).Addr] = true
	}
	for addr := range masters {
		k, err := rc.Node(addr).Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += k
	}
	if len(masters) != 3 || total < n {
		t.Fatalf("%d masters holding %d keys", len(masters), total)
	}
	if got, err := c.DBSize(ctx).Result(); err != nil || got != total {
		t.Fatalf("DBSIZE through asterd = %d, %v; the masters hold %d", got, err, total)
	}
	seen := map[string]int{}
	var cursor uint64
	for calls := 0; ; calls++ {
		if calls > 10000 {
			t.Fatal("SCAN did not end")
		}
		keys, next, err := c.Scan(ctx, cursor, "ks:*", 100).Result()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		for _, k := range keys {
			seen[k]++
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	for i := 0; i < n; i++ {
		if k := fmt.Sprintf("ks:%d", i); seen[k] != 1 {
			t.Fatalf("SCAN returned %s %d times, want once (masters only)", k, seen[k])
		}
	}
	if len(seen) != n {
		t.Fatalf("SCAN MATCH ks:* returned %d keys, want %d", len(seen), n)
	}

	lib := "#!lua name=klib\nredis.register_function{function_name='kget', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}"
	if got, err := c.FunctionLoad(ctx, lib).Result(); err != nil || got != "klib" {
		t.Fatalf("FUNCTION LOAD through asterd = %q, %v", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 60; i++ { // keys on every master, reads spread over replicas
		k := fmt.Sprintf("ks:%d", i)
		v, err := c.FCallRO(ctx, "kget", []string{k}).Text()
		if err != nil && time.Now().Before(deadline) { // a replica not caught up yet
			time.Sleep(50 * time.Millisecond)
			i--
			continue
		}
		if err != nil || v != fmt.Sprint(i) {
			t.Fatalf("FCALL_RO kget %s = %q, %v", k, v, err)
		}
	}
}
