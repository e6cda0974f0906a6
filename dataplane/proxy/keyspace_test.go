package proxy_test

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestKeyspaceCommandsOverNodes: SCAN through the proxy walks every node of the ring, so the
// usual client loop returns every key (MATCH, COUNT and TYPE passed on); DBSIZE is the sum of
// the nodes' counts, KEYS their keys, RANDOMKEY finds a key while any node has one, FLUSHDB
// empties every node; compared with what the servers hold.
func TestKeyspaceCommandsOverNodes(t *testing.T) {
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

	if keys, err := e.client.Keys(ctx, "list:*").Result(); err != nil || len(keys) != 20 {
		t.Fatalf("KEYS list:* = %d keys, %v; want 20", len(keys), err)
	}
	if keys, err := e.client.Keys(ctx, "*").Result(); err != nil || len(keys) != n+20 {
		t.Fatalf("KEYS * = %d keys, %v; want %d", len(keys), err, n+20)
	}
	if _, err := e.client.Time(ctx).Result(); err != nil {
		t.Fatalf("TIME: %v", err)
	}
	// RANDOMKEY: a key, and still one when all keys are on a single node.
	if k, err := e.client.RandomKey(ctx).Result(); err != nil || all[k] == 0 {
		t.Fatalf("RANDOMKEY = %q, %v", k, err)
	}
	for _, s := range e.servers[1:] {
		if err := s.Client().FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		if k, err := e.client.RandomKey(ctx).Result(); err != nil || k == "" {
			t.Fatalf("RANDOMKEY with keys on one node of three: %q, %v", k, err)
		}
	}
	if err := e.client.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
	for _, s := range e.servers {
		if k, _ := s.Client().DBSize(ctx).Result(); k != 0 {
			t.Fatalf("node %s still holds %d keys after FLUSHDB through the proxy", s.Addr, k)
		}
	}
	if err := e.client.RandomKey(ctx).Err(); err != redis.Nil {
		t.Fatalf("RANDOMKEY on empty nodes: %v, want nil", err)
	}
}

// TestFunctionOnEveryNode: FUNCTION LOAD through the proxy reaches every node, so FCALL works
// whatever node its keys are on; DELETE removes the library everywhere; KILL is refused.
func TestFunctionOnEveryNode(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	lib := "#!lua name=plib\nredis.register_function('pget', function(keys, args) return redis.call('GET', keys[1]) end)"
	if got, err := e.client.FunctionLoad(ctx, lib).Result(); err != nil || got != "plib" {
		t.Fatalf("FUNCTION LOAD = %q, %v", got, err)
	}
	for _, s := range e.servers {
		libs, err := s.Client().FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: "plib"}).Result()
		if err != nil || len(libs) != 1 {
			t.Fatalf("node %s: FUNCTION LIST = %v, %v", s.Addr, libs, err)
		}
	}
	for i := 0; i < 30; i++ { // keys on every node
		k := fmt.Sprintf("fk:%d", i)
		if err := e.client.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := e.client.FCall(ctx, "pget", []string{k}).Text(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("FCALL pget %s = %q, %v", k, v, err)
		}
	}
	if libs, err := e.client.FunctionList(ctx, redis.FunctionListQuery{}).Result(); err != nil || len(libs) != 1 || libs[0].Name != "plib" {
		t.Fatalf("FUNCTION LIST through the proxy = %v, %v", libs, err)
	}
	if err := e.client.Do(ctx, "FUNCTION", "KILL").Err(); err == nil || err.Error() != "NOTBUSY No scripts in execution right now." {
		t.Fatalf("FUNCTION KILL with nothing running: %v, want NOTBUSY (TestScriptKill has the rest)", err)
	}
	if err := e.client.FunctionDelete(ctx, "plib").Err(); err != nil {
		t.Fatalf("FUNCTION DELETE: %v", err)
	}
	for _, s := range e.servers {
		if libs, _ := s.Client().FunctionList(ctx, redis.FunctionListQuery{}).Result(); len(libs) != 0 {
			t.Fatalf("node %s still has %v after FUNCTION DELETE", s.Addr, libs)
		}
	}
}

// INFO's Keyspace section adds up the nodes' own: keys and expires summed per database, avg_ttl
// weighted by expires, next to the proxy's sections. With a node down INFO still answers and
// says how many nodes are missing from the counts; a RESP3 client gets a verbatim string.
func TestInfoKeyspaceAddsUpNodes(t *testing.T) {
	for _, backendRESP3 := range []bool{false, true} {
		t.Run("backend RESP3 "+strconv.FormatBool(backendRESP3), func(t *testing.T) {
			testInfoKeyspace(t, backendRESP3)
		})
	}
}

func testInfoKeyspace(t *testing.T, backendRESP3 bool) {
	e := startEnv(t, envOpts{nodes: 3, resp3: backendRESP3})
	for i := range 300 {
		ttl := time.Duration(0)
		if i%3 == 0 {
			ttl = time.Hour
		}
		if err := e.client.Set(ctx, fmt.Sprintf("info:%d", i), i, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Redis's avg_ttl is an estimate its expire cycle moves towards the truth little by little:
	// the proxy's must be the nodes' own, weighted by their expires, read just before and after.
	nodesTTL := func() float64 {
		var sum, expires float64
		for _, srv := range e.servers {
			v, err := srv.Do("INFO", "keyspace")
			if err != nil {
				t.Fatal(err)
			}
			var keys, exp, ttl float64
			if _, err := fmt.Sscanf(strings.TrimPrefix(v.(string), "# Keyspace\r\n"), "db0:keys=%g,expires=%g,avg_ttl=%g", &keys, &exp, &ttl); err != nil {
				t.Fatalf("node INFO keyspace %q: %v", v, err)
			}
			sum, expires = sum+ttl*exp, expires+exp
		}
		return sum / expires
	}
	before := nodesTTL()
	info, err := e.client.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	after := nodesTTL()
	for _, want := range []string{"# Server\r\n", "# Proxy\r\n", "# Keyspace\r\ndb0:keys=300,expires=100,avg_ttl="} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO lacks %q:\n%s", want, info)
		}
	}
	ttl, _ := strconv.ParseFloat(strings.TrimSuffix(info[strings.Index(info, "avg_ttl=")+len("avg_ttl="):], "\r\n"), 64)
	if lo, hi := min(before, after), max(before, after); ttl < lo*0.95-1 || ttl > hi*1.05+1 {
		t.Fatalf("avg_ttl = %.0f ms, want the nodes' weighted average %.0f-%.0f", ttl, lo, hi)
	}
	ks, err := e.client.Info(ctx, "keyspace").Result()
	if err != nil || !strings.HasPrefix(ks, "# Keyspace\r\ndb0:keys=300,expires=100,") || strings.Contains(ks, "# Server") {
		t.Fatalf("INFO keyspace = %q, %v", ks, err)
	}
	if s, err := e.client.Info(ctx, "server").Result(); err != nil || strings.Contains(s, "Keyspace") {
		t.Fatalf("INFO server = %q, %v", s, err)
	}

	r2 := e.raw(t)
	r2.send(cmdFrame("INFO", "keyspace"))
	if got := wholeReply(r2); !strings.HasPrefix(got, "$") || !strings.Contains(got, "\r\n# Keyspace\r\ndb0:keys=300,") {
		t.Fatalf("INFO keyspace to a RESP2 client = %q, want a bulk string", got)
	}
	r3 := e.raw(t)
	r3.send(cmdFrame("HELLO", "3") + cmdFrame("INFO", "keyspace"))
	if got := wholeReply(r3); !strings.HasPrefix(got, "%") {
		t.Fatalf("HELLO 3 = %q", got)
	}
	hdr := r3.line()
	if !strings.HasPrefix(hdr, "=") {
		t.Fatalf("INFO keyspace to a RESP3 client: header %q, want a verbatim string", hdr)
	}
	n, _ := strconv.Atoi(hdr[1:])
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r3.br, body); err != nil || !strings.HasPrefix(string(body), "txt:# Keyspace\r\ndb0:keys=300,") {
		t.Fatalf("INFO keyspace to a RESP3 client = %q, %v", body, err)
	}

	e.servers[1].Kill()
	ks, err = e.client.Info(ctx, "keyspace").Result()
	if err != nil || !strings.Contains(ks, "keyspace_nodes_failed:1\r\n") || strings.Contains(ks, "keys=300,") {
		t.Fatalf("INFO keyspace with a node down = %q, %v", ks, err)
	}
}
