package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// cachedGET GETs key through c until a GET no longer reaches srv (INFO commandstats): the
// tracking link of srv is up and key's reply is in the proxy's cache.
func cachedGET(t *testing.T, c *redis.Client, srv *redistest.Server, key string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.Get(ctx, key)
		before, _ := srv.CommandStats(t, "get")
		c.Get(ctx, key)
		if after, _ := srv.CommandStats(t, "get"); after == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s keeps reaching %s: not cached", key, srv.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ownerServer(t *testing.T, servers []*redistest.Server, key string) *redistest.Server {
	t.Helper()
	for _, s := range servers {
		if v, err := s.Do("EXISTS", key); err == nil && v.(int64) == 1 {
			return s
		}
	}
	t.Fatalf("no server has %s", key)
	return nil
}

// TestClientCache: repeated GETs are answered by asterd without reaching the server; a
// write made on the server directly is seen through asterd; the tracking connection killed
// on the server and a direct write never yield the old value; the cache holds no more than
// max_entries; the metrics count it all.
func TestClientCache(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	cfg, maddr := metricsConfig(t, servers, "")
	cfg += `client_cache = { enabled = true, max_entries = 64, max_value_bytes = 1024, shard_count = 4 }
`
	a := startAsterd(t, cfg)
	c := a.client(t)

	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv := ownerServer(t, servers, "k")
	cachedGET(t, c, srv, "k")
	gets, _ := srv.CommandStats(t, "get")
	for range 200 {
		if v := c.Get(ctx, "k").Val(); v != "v1" {
			t.Fatalf("GET k = %q", v)
		}
	}
	if after, _ := srv.CommandStats(t, "get"); after != gets {
		t.Fatalf("%d of 200 repeated GETs reached the server", after-gets)
	}

	t.Run("direct write is seen", func(t *testing.T) {
		if _, err := srv.Do("SET", "k", "v2"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for c.Get(ctx, "k").Val() != "v2" {
			if time.Since(start) > 10*time.Second {
				t.Fatal("a write made on the server is not seen through asterd")
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("direct write seen through asterd after %v", time.Since(start))
	})

	t.Run("tracking link killed, then a direct write", func(t *testing.T) {
		for round := range 5 {
			c.Set(ctx, "k", "old", 0)
			cachedGET(t, c, srv, "k")
			ids := srv.TrackingClients(t)
			if len(ids) != 1 {
				t.Fatalf("%d tracking connections on %s, want 1", len(ids), srv.Addr)
			}
			if _, err := srv.Do("CLIENT", "KILL", "ID", ids[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Do("SET", "k", "new"); err != nil {
				t.Fatal(err)
			}
			for range 50 {
				if v := c.Get(ctx, "k").Val(); v != "new" {
					t.Fatalf("round %d: stale %q read after the tracking connection was killed", round, v)
				}
			}
		}
	})

	t.Run("memory bound", func(t *testing.T) {
		val := strings.Repeat("x", 900)
		for i := range 500 {
			k := spreadKey("mem:", i)
			c.Set(ctx, k, val, 0)
			c.Get(ctx, k)
			c.Get(ctx, k)
		}
		big := strings.Repeat("y", 2000) // over max_value_bytes: never cached
		c.Set(ctx, "big", big, 0)
		bigSrv := ownerServer(t, servers, "big")
		before, _ := bigSrv.CommandStats(t, "get")
		for range 5 {
			if v := c.Get(ctx, "big").Val(); v != big {
				t.Fatal("GET big")
			}
		}
		if after, _ := bigSrv.CommandStats(t, "get"); after != before+5 {
			t.Fatalf("a reply over max_value_bytes was served from the cache (%d of 5 reached the server)", after-before)
		}
		_, mfs := scrape(t, maddr)
		entries, ok := sample(mfs, "aster_client_cache_entries", map[string]string{"cluster": "m"})
		if !ok || entries > 64 || entries == 0 {
			t.Fatalf("aster_client_cache_entries = %v (present %v), want 1..64 (max_entries)", entries, ok)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		_, mfs := scrape(t, maddr)
		for _, s := range []struct {
			name   string
			labels map[string]string
		}{
			{"aster_client_cache_lookups_total", map[string]string{"cluster": "m", "result": "hit"}},
			{"aster_client_cache_lookups_total", map[string]string{"cluster": "m", "result": "miss"}},
			{"aster_client_cache_invalidations_total", map[string]string{"cluster": "m"}},
		} {
			if v, ok := sample(mfs, s.name, s.labels); !ok || v == 0 {
				t.Errorf("%s%v = %v (present %v), want > 0", s.name, s.labels, v, ok)
			}
		}
		hits, _ := sample(mfs, "aster_client_cache_lookups_total", map[string]string{"cluster": "m", "result": "hit"})
		if hits < 200 {
			t.Errorf("hits %v, want at least the 200 repeated GETs", hits)
		}
		redistest.Need(t, "promtool")
		body, _ := scrape(t, maddr)
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// TestClientCacheClusterFailoverAndReshard: in a Redis Cluster, a key's cached value does
// not outlive a failover of its master (the promoted replica's new value is read, never the
// old one) nor a reshard of its slot.
func TestClientCacheClusterFailoverAndReshard(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), `client_cache = { enabled = true, max_entries = 1000, max_value_bytes = 1024 }
`))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	t.Run("reshard", func(t *testing.T) {
		key := "{rs}k"
		c.Set(ctx, key, "old", 0)
		cachedGET(t, c, rc.MasterOf(int(route.Slot([]byte(key)))), key)
		m := startMigration(t, rc, key)
		m.move(key)
		m.finish(rc)
		m.do(m.dst, "SET", key, "new") // on the new owner directly
		deadline := time.Now().Add(15 * time.Second)
		for n := 0; n < 50; {
			v, err := c.Get(ctx, key).Result()
			switch {
			case err != nil && time.Now().After(deadline):
				t.Fatalf("GET %s after the reshard: %v", key, err)
			case err != nil:
				time.Sleep(20 * time.Millisecond)
			case v != "new":
				t.Fatalf("stale %q read after the reshard", v)
			default:
				n++
			}
		}
	})

	t.Run("failover", func(t *testing.T) {
		key := "{fo}k"
		slot := int(route.Slot([]byte(key)))
		c.Set(ctx, key, "old", 0)
		cachedGET(t, c, rc.MasterOf(slot), key)
		_, promoted, _ := killAndWaitPromotion(t, rc, slot)
		if _, err := promoted.Do("SET", key, "new"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for n := 0; n < 50; {
			v, err := c.Get(ctx, key).Result()
			switch {
			case err != nil && time.Now().After(deadline):
				t.Fatalf("GET %s after the failover: %v", key, err)
			case err != nil:
				time.Sleep(20 * time.Millisecond)
			case v != "new":
				t.Fatalf("stale %q read after the failover", v)
			default:
				n++
			}
		}
		// And the promoted master's replies are cached again once its link is up.
		cachedGET(t, c, promoted, key)
	})
}

// TestClientCacheHotOnly: with hot_only, only keys the hot-key tracker names are cached.
func TestClientCacheHotOnly(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	a := startAsterd(t, `
[[clusters]]
name = "h"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
hotkey_sample_every = 1
client_cache = { enabled = true, hot_only = true }
`)
	c := a.client(t)
	srv := servers[0]
	c.Set(ctx, "cold", "v", 0)
	before, _ := srv.CommandStats(t, "get")
	for range 20 {
		c.Get(ctx, "cold")
	}
	if after, _ := srv.CommandStats(t, "get"); after != before+20 {
		t.Fatalf("%d of 20 GETs reached the server with the tracker off: a key it does not name was cached", after-before)
	}
	if err := c.Do(ctx, "HOTKEY", "ENABLE").Err(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c.Get(ctx, "cold")
	}
	if top := fmt.Sprint(c.Do(ctx, "HOTKEY", "GET").Val()); !strings.Contains(top, "cold") {
		t.Fatalf("HOTKEY GET = %s", top)
	}
	cachedGET(t, c, srv, "cold")
}

// TestClientCacheReload turns the cache on and off by reloading the file: on, the server has
// a tracking client and GETs stop reaching it; off, the tracking client is gone and every GET
// reaches the server; and adding a server to the ring (keys move) keeps reads true.
func TestClientCacheReload(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	base := `
[[clusters]]
name = "r"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = %SERVERS%
`
	a := startAsterd(t, strings.ReplaceAll(base, "%SERVERS%", serverList(servers[:1], []int{1}, true)))
	path, listen := a.cmd.Args[2], a.Addr
	reloads := 0
	write := func(content string) {
		t.Helper()
		content = strings.ReplaceAll(content, "%LISTEN%", listen)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloads++
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(a.log.String(), "configuration reloaded") < reloads {
			if time.Now().After(deadline) {
				t.Fatal("reload not done")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c := a.client(t)
	c.Set(ctx, "k", "v", 0)
	srv := servers[0]
	if n := len(srv.TrackingClients(t)); n != 0 {
		t.Fatalf("%d tracking clients with the cache off", n)
	}
	on := "client_cache = { enabled = true, max_entries = 100 }\n"
	write(strings.ReplaceAll(base, "%SERVERS%", serverList(servers[:1], []int{1}, true)) + on)
	cachedGET(t, c, srv, "k")

	// A second server: the ring changes (some keys move to it) and the cache is flushed; a
	// value written on both servers directly is then what every key reads.
	for i := range 50 {
		c.Set(ctx, spreadKey("rk", i), "one", 0)
		c.Get(ctx, spreadKey("rk", i))
	}
	write(strings.ReplaceAll(base, "%SERVERS%", serverList(servers, []int{1, 1}, true)) + on)
	for i := range 50 {
		for _, s := range servers {
			if _, err := s.Do("SET", spreadKey("rk", i), "two"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 50 {
		if v := c.Get(ctx, spreadKey("rk", i)).Val(); v != "two" {
			t.Fatalf("GET %s = %q after the ring changed and both servers say \"two\"", spreadKey("rk", i), v)
		}
	}

	write(strings.ReplaceAll(base, "%SERVERS%", serverList(servers, []int{1, 1}, true)))
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.TrackingClients(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("tracking clients left after the cache was turned off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gets := func() (n int) {
		for _, s := range servers {
			calls, _ := s.CommandStats(t, "get")
			n += calls
		}
		return n
	}
	before := gets()
	for range 10 {
		c.Get(ctx, "k")
	}
	if after := gets(); after != before+10 {
		t.Fatalf("%d of 10 GETs reached the servers after the cache was turned off", after-before)
	}
}

// TestClientCacheBackendTLS: the tracking link dials as the backend connections do, over
// TLS verified with backend_tls_ca_file; the cache then serves.
func TestClientCacheBackendTLS(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	srv := redistest.StartTLS(t, certs)
	a := startAsterd(t, `
[[clusters]]
name = "tls"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList([]*redistest.Server{srv}, []int{1}, true)+`
backend_tls = true
backend_tls_ca_file = `+fmt.Sprintf("%q", certs.CAFile)+`
client_cache = { enabled = true }
`)
	c := a.client(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, TLSConfig: certs.ClientTLS(t, false)})
	defer direct.Close()
	gets := func() string {
		for _, l := range strings.Split(direct.Info(ctx, "commandstats").Val(), "\r\n") {
			if strings.HasPrefix(l, "cmdstat_get:") {
				return strings.Split(l, ",")[0]
			}
		}
		return ""
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.Get(ctx, "k")
		before := gets()
		c.Get(ctx, "k")
		if gets() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GETs keep reaching the TLS server: no tracking link; CLIENT LIST:\n%s", direct.ClientList(ctx).Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := direct.Set(ctx, "k", "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for c.Get(ctx, "k").Val() != "w" {
		if time.Now().After(deadline) {
			t.Fatal("a direct write on the TLS server is not seen through asterd")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClientCacheWriterReadsItsWrites: a client's read after its write sees what it wrote,
// whatever the write (SET, a split MSET, a script's declared key, a transaction), even while
// another client keeps caching the key's old value and the tracking link's invalidation
// comes late (a relay delays every link to the node by up to 5 ms).
func TestClientCacheWriterReadsItsWrites(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	relay := redistest.StartRelay(t, srv.Addr, 5*time.Millisecond, 0)
	a := startAsterd(t, `
[[clusters]]
name = "w"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ["`+relay.Addr+`:1 r1"]
read_timeout = 5000
client_cache = { enabled = true }
`)
	writer, reader := a.client(t), a.client(t)
	const key = "wcache:k"
	if err := writer.Set(ctx, key, "v0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // keeps the key's current value cached, as other clients of a hot key do
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				reader.Get(ctx, key)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	writes := []struct {
		name  string
		write func(v string) error
	}{
		{"SET", func(v string) error { return writer.Set(ctx, key, v, 0).Err() }},
		{"MSET", func(v string) error { return writer.MSet(ctx, key, v, "wcache:other", v).Err() }},
		{"EVAL", func(v string) error {
			return writer.Eval(ctx, "return redis.call('SET', KEYS[1], ARGV[1])", []string{key}, v).Err()
		}},
		{"MULTI/SET/EXEC", func(v string) error {
			_, err := writer.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, v, 0)
				return nil
			})
			return err
		}},
	}
	for i := 1; i <= 200; i++ {
		w := writes[len(writes)-1] // every other write a transaction: the one tracking alone would miss
		if i%2 == 0 {
			w = writes[i/2%(len(writes)-1)]
		}
		v := "v" + strconv.Itoa(i)
		if err := w.write(v); err != nil {
			t.Fatalf("%s %d: %v", w.name, i, err)
		}
		if got, err := writer.Get(ctx, key).Result(); err != nil || got != v {
			t.Fatalf("GET after %s %d = %q, %v; want %q: the cache served the value the write replaced", w.name, i, got, err, v)
		}
	}
}
