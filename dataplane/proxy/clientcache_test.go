package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

var cacheOn = route.ClientCacheSpec{Enabled: true, MaxEntries: 1000, MaxValueBytes: 4096, ShardCount: 4}

// ownerOf is the server of e that key lives on (the ring e installed).
func ownerOf(t *testing.T, e *env, key string) *redistest.Server {
	t.Helper()
	for _, s := range e.servers {
		if v, err := s.Do("EXISTS", key); err == nil && v.(int64) == 1 {
			return s
		}
	}
	t.Fatalf("no server has %s", key)
	return nil
}

// waitCached GETs key through c until a GET no longer reaches srv: the tracking link is up
// and the reply is cached.
func waitCached(t *testing.T, c *redis.Client, srv *redistest.Server, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.Get(ctx, key)
		before, _ := srv.CommandStats(t, "get")
		c.Get(ctx, key)
		if after, _ := srv.CommandStats(t, "get"); after == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s keeps reaching %s", key, srv.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func getVal(t *testing.T, c *redis.Client, key string) string {
	t.Helper()
	v, err := c.Get(ctx, key).Result()
	if err == redis.Nil {
		return "(nil)"
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func TestClientCacheServesRepeatedReads(t *testing.T) {
	for _, resp3 := range []bool{false, true} {
		t.Run("backend_resp3="+strconv.FormatBool(resp3), func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 2, clientCache: cacheOn, resp3: resp3})
			if err := e.client.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			srv := ownerOf(t, e, "k")
			waitCached(t, e.client, srv, "k")
			gets, _ := srv.CommandStats(t, "get")
			for range 100 {
				if v := getVal(t, e.client, "k"); v != "v" {
					t.Fatalf("GET k = %q", v)
				}
			}
			if after, _ := srv.CommandStats(t, "get"); after != gets {
				t.Fatalf("%d GETs reached the server, want 0: not served from the cache", after-gets)
			}

			// HGET fields, a missing one included, and MGET of cached keys; a RESP3 client
			// gets RESP3's null.
			e.client.HSet(ctx, "h", "f", "x")
			e.client.Set(ctx, "k2", "w", 0)
			for _, proto := range []int{2, 3} {
				c := redis.NewClient(&redis.Options{Addr: e.addr, Protocol: proto, MaxRetries: -1})
				defer c.Close()
				r := e.raw(t)
				if proto == 3 {
					r.send("HELLO 3\r\n")
					for l := r.line(); l != "modules"; l = r.line() { // HELLO's map ends with modules
					}
					if l := r.line(); l != "*0" {
						t.Fatalf("HELLO's modules: %q", l)
					}
				}
				for range 3 { // the first fill the cache; the last are hits
					r.send("HGET h f\r\nHGET h nope\r\nMGET k k2 missing\r\n")
					got := []string{r.line(), r.line(), r.line(), r.line(), r.line(), r.line(), r.line(), r.line(), r.line()}
					null := "$-1"
					if proto == 3 {
						null = "_"
					}
					want := []string{"$1", "x", null, "*3", "$1", "v", "$1", "w", null}
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("RESP%d: replies %q, want %q", proto, got, want)
						}
					}
					c.Get(ctx, "k2")
					c.Get(ctx, "missing")
				}
			}
			hgets := 0
			for _, s := range e.servers {
				n, _ := s.CommandStats(t, "hget")
				hgets += n
			}
			r := e.raw(t)
			for range 10 {
				r.send("HGET h f\r\n")
				r.line()
				r.line()
			}
			n := 0
			for _, s := range e.servers {
				c, _ := s.CommandStats(t, "hget")
				n += c
			}
			if n != hgets {
				t.Fatalf("%d HGETs reached the servers, want 0", n-hgets)
			}
		})
	}
}

// TestClientCacheCoherence: a write made on the server directly is seen through the proxy;
// a write through the proxy is read back at once, in the same pipeline too; and a tracking
// link killed on the server, then a direct write, never yields the old value.
func TestClientCacheCoherence(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, clientCache: cacheOn})
	srv := e.servers[0]
	e.client.Set(ctx, "k", "v1", 0)
	waitCached(t, e.client, srv, "k")

	if _, err := srv.Do("SET", "k", "v2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for getVal(t, e.client, "k") != "v2" {
		if time.Since(start) > 5*time.Second {
			t.Fatal("a direct write is not seen through the proxy")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("direct write seen after %v", time.Since(start))

	for i := range 50 {
		v := "p" + strconv.Itoa(i)
		if err := e.client.Set(ctx, "k", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got := getVal(t, e.client, "k"); got != v {
			t.Fatalf("read %q after writing %q through the proxy", got, v)
		}
		cmds, err := e.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "k")
			p.Set(ctx, "k", v+"x", 0)
			p.Get(ctx, "k")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := cmds[2].(*redis.StringCmd).Val(); got != v+"x" {
			t.Fatalf("pipelined GET after SET read %q, want %q", got, v+"x")
		}
	}

	for round := range 5 {
		e.client.Set(ctx, "k", "old", 0)
		waitCached(t, e.client, srv, "k")
		ids := srv.TrackingClients(t)
		if len(ids) != 1 {
			t.Fatalf("%d tracking links on the server, want 1", len(ids))
		}
		if _, err := srv.Do("CLIENT", "KILL", "ID", ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Do("SET", "k", "new"); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if got := getVal(t, e.client, "k"); got != "new" {
				t.Fatalf("round %d: stale %q read after the tracking link was killed", round, got)
			}
		}
	}
}

// TestClientCacheLive turns the cache on and off with CONFIG SET: off, no tracking link
// and every GET reaches the server; on, the link is back and GETs are served.
func TestClientCacheLive(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	srv := e.servers[0]
	e.client.Set(ctx, "k", "v", 0)
	if n := len(srv.TrackingClients(t)); n != 0 {
		t.Fatalf("%d tracking links with the cache off", n)
	}
	if err := e.client.ConfigSet(ctx, "client-cache-enabled", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	waitCached(t, e.client, srv, "k")
	if v := e.client.ConfigGet(ctx, "client-cache-max-entries").Val(); v["client-cache-max-entries"] != "100000" {
		t.Fatalf("CONFIG GET client-cache-max-entries = %v", v)
	}
	if err := e.client.ConfigSet(ctx, "client-cache-max-entries", "0").Err(); err == nil {
		t.Fatal("client-cache-max-entries 0 accepted")
	}
	if err := e.client.ConfigSet(ctx, "client-cache-enabled", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.TrackingClients(t)); n != 0 {
		t.Fatalf("%d tracking links left with the cache off", n)
	}
	gets, _ := srv.CommandStats(t, "get")
	for range 10 {
		getVal(t, e.client, "k")
	}
	if after, _ := srv.CommandStats(t, "get"); after != gets+10 {
		t.Fatalf("%d of 10 GETs reached the server with the cache off", after-gets)
	}
}

// TestClientCacheHitAllocatesNothing: GET, HGET and MGET answered from the cache allocate
// nothing once warm, pipelined or not.
func TestClientCacheHitAllocatesNothing(t *testing.T) {
	// No PONG on the links while it counts: a PONG the link has not read yet makes a hit
	// forward (the peek cannot tell it from an invalidation), and on a loaded machine the
	// link read late enough for 16 of the P16 reads to reach the servers.
	t.Cleanup(proxy.SetCacheLinkPing(time.Hour))
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 2, metrics: m, clientCache: cacheOn})
	val := strings.Repeat("v", 64)
	e.client.Set(ctx, "{a}1", val, 0)
	e.client.Set(ctx, "{a}2", val, 0)
	e.client.HSet(ctx, "h", "f", val)
	waitCached(t, e.client, ownerOf(t, e, "{a}1"), "{a}1")
	e.client.Get(ctx, "{a}2") // MGET is served from what GET stored
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	bulk := "$64\r\n" + val + "\r\n"
	for _, tc := range []struct {
		name, frame, reply string
		depth              int
	}{
		{"GET P1", "*2\r\n$3\r\nGET\r\n$4\r\n{a}1\r\n", bulk, 1},
		{"GET P16", "*2\r\n$3\r\nGET\r\n$4\r\n{a}1\r\n", bulk, 16},
		{"HGET P16", "*3\r\n$4\r\nHGET\r\n$1\r\nh\r\n$1\r\nf\r\n", bulk, 16},
		{"MGET P16", "*3\r\n$4\r\nMGET\r\n$4\r\n{a}1\r\n$4\r\n{a}2\r\n", "*2\r\n" + bulk + bulk, 16},
	} {
		batch := []byte(strings.Repeat(tc.frame, tc.depth))
		buf := make([]byte, len(tc.reply)*tc.depth)
		roundTrip := func() {
			if _, err := nc.Write(batch); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(br, buf); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 {
			roundTrip()
		}
		if string(buf[:len(tc.reply)]) != tc.reply {
			t.Fatalf("%s: reply %q, want %q", tc.name, buf[:len(tc.reply)], tc.reply)
		}
		reads := func() (n int) {
			for _, s := range e.servers {
				for _, c := range []string{"get", "hget", "mget"} {
					calls, _ := s.CommandStats(t, c)
					n += calls
				}
			}
			return n
		}
		before := reads()
		if n := testing.AllocsPerRun(500, roundTrip); n >= 0.5 {
			t.Errorf("%s: %.2f allocations per round trip served from the cache, want 0", tc.name, n)
		}
		if n := reads() - before; n != 0 {
			t.Errorf("%s: %d reads reached the servers, want all served from the cache", tc.name, n)
		}
	}
}

// TestClientCacheBackendAuth: the tracking links authenticate as the backend connections
// do; with the servers' password they come up and the cache serves.
func TestClientCacheBackendAuth(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, clientCache: cacheOn, serverArgs: []string{"--requirepass", "s3cret"}, backendPass: "s3cret"})
	if err := e.client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitCachedAuth(t, e, "k")
}

// waitCachedAuth is waitCached for a server that wants a password.
func waitCachedAuth(t *testing.T, e *env, key string) {
	t.Helper()
	direct := redis.NewClient(&redis.Options{Addr: e.servers[0].Addr, Password: "s3cret"})
	defer direct.Close()
	calls := func() string {
		info := direct.Info(ctx, "commandstats").Val()
		for _, l := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(l, "cmdstat_get:") {
				return strings.Split(l, ",")[0]
			}
		}
		return ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.client.Get(ctx, key)
		before := calls()
		e.client.Get(ctx, key)
		if calls() == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("GETs keep reaching the server: the tracking link did not come up with AUTH")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkProxyGETCached is BenchmarkProxyGET with the client cache on: the GETs after the
// warm-up are hits, answered without a round trip to the server.
func BenchmarkProxyGETCached(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("P"+strconv.Itoa(depth), func(b *testing.B) {
			benchPipelineEnv(b, envOpts{nodes: 3, clientCache: cacheOn}, "", "*2\r\n$3\r\nGET\r\n$9\r\nbench:key\r\n",
				depth, "$64\r\n"+val64+"\r\n")
		})
	}
}

// TestClientCacheReadYourWrites: writers SET their keys through the proxy and read them back
// at once while readers keep GETting the same keys (filling the cache with what they read,
// possibly just before a write): a writer always reads its own last write, and once every
// write is answered, every key reads the server's value.
func TestClientCacheReadYourWrites(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2, clientCache: cacheOn})
	e.client.Set(ctx, "warm", "1", 0)
	waitCached(t, e.client, ownerOf(t, e, "warm"), "warm") // the links are up
	const writers, keysEach, rounds = 4, 4, 200
	var readers, ws sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1})
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Get(ctx, "ryw:"+strconv.Itoa((i+r)%(writers*keysEach)))
			}
		}()
	}
	errs := make(chan error, writers)
	for w := range writers {
		ws.Add(1)
		go func() {
			defer ws.Done()
			c := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1})
			defer c.Close()
			for i := range rounds {
				k := "ryw:" + strconv.Itoa(w*keysEach+i%keysEach)
				v := strconv.Itoa(i)
				if err := c.Set(ctx, k, v, 0).Err(); err != nil {
					errs <- err
					return
				}
				if got := c.Get(ctx, k).Val(); got != v {
					errs <- fmt.Errorf("writer %d read %q from %s right after writing %q", w, got, k, v)
					return
				}
			}
		}()
	}
	ws.Wait()
	close(stop)
	readers.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for k := range writers * keysEach {
		key := "ryw:" + strconv.Itoa(k)
		want := "(nil)"
		for _, s := range e.servers {
			if v, err := s.Do("GET", key); err == nil {
				want = v.(string)
			}
		}
		if got := getVal(t, e.client, key); got != want {
			t.Fatalf("GET %s = %q after the writes, the server has %q", key, got, want)
		}
	}
}
