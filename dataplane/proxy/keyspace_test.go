package proxy_test

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestScanAndDBSizeOverNodes: SCAN through the proxy walks every node of the ring, so the
// usual client loop returns every key (MATCH, COUNT and TYPE passed on), and DBSIZE is the sum
// of the nodes' counts; compared with what the servers hold.
func TestScanAndDBSizeOverNodes(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	const n = 600
	for i := 0; i < n; i++ {
		if err := e.client.Set(ctx, fmt.Sprintf("scan:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		if err := e.client.RPush(ctx, fmt.Sprintf("list:%d", i), "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	var onNodes int64
	for _, s := range e.servers {
		k, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			t.Fatalf("node %s holds no key: the test would not cover several nodes", s.Addr)
		}
		onNodes += k
	}
	if got, err := e.client.DBSize(ctx).Result(); err != nil || got != onNodes || got != n+20 {
		t.Fatalf("DBSIZE = %d, %v; the nodes hold %d", got, err, onNodes)
	}

	scan := func(match string, count int64, typ string) map[string]int {
		seen := map[string]int{}
		var cursor uint64
		for calls := 0; ; calls++ {
			if calls > 10000 {
				t.Fatal("SCAN did not end")
			}
			var keys []string
			var err error
			if typ != "" {
				keys, cursor, err = e.client.ScanType(ctx, cursor, match, count, typ).Result()
			} else {
				keys, cursor, err = e.client.Scan(ctx, cursor, match, count).Result()
			}
			if err != nil {
				t.Fatalf("SCAN: %v", err)
			}
			for _, k := range keys {
				seen[k]++
			}
			if cursor == 0 {
				return seen
			}
		}
	}
	all := scan("", 50, "")
	if len(all) != n+20 {
		t.Fatalf("SCAN returned %d distinct keys, want %d", len(all), n+20)
	}
	for i := 0; i < n; i++ {
		if all[fmt.Sprintf("scan:%d", i)] == 0 {
			t.Fatalf("SCAN missed scan:%d", i)
		}
	}
	if lists := scan("*", 1000, "list"); len(lists) != 20 {
		t.Fatalf("SCAN TYPE list returned %d keys, want 20", len(lists))
	}
	if some := scan("scan:1?", 10, ""); len(some) != 10 {
		t.Fatalf("SCAN MATCH scan:1? returned %d keys, want 10", len(some))
	}

	// A cursor that is no number is refused as Redis does; one past the last node ends the scan.
	if err := e.client.Do(ctx, "SCAN", "x").Err(); err == nil || err.Error() != "ERR invalid cursor" {
		t.Fatalf("SCAN x: %v", err)
	}
	keys, cursor, err := e.client.Scan(ctx, 1<<63, "", 10).Result()
	if err != nil || cursor != 0 || len(keys) != 0 {
		t.Fatalf("SCAN past the last node: %v %d %v", keys, cursor, err)
	}
	if err := e.client.Do(ctx, "SCAN").Err(); err == nil || err == redis.Nil {
		t.Fatalf("SCAN without a cursor: %v", err)
	}
}
