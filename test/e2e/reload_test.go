package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

func TestReloadUnderLoad(t *testing.T) {
	servers := startServers(t, 3)
	newPort := redistest.FreePort(t)
	base := `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = %SERVERS%
`
	a := startAsterd(t, strings.ReplaceAll(base, "%SERVERS%", serverList(servers[:2], []int{1, 1}, true)))
	path := a.cmd.Args[2]
	listen := a.Addr
	c := a.client(t)

	var stop atomic.Bool
	var ops, failures, misses atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k, v := spreadKey(fmt.Sprintf("rl%d:", w), i%400), strconv.Itoa(i)
				err := c.Set(ctx, k, v, 0).Err()
				if err == nil {
					var got string
					got, err = c.Get(ctx, k).Result()
					if err == redis.Nil {
						// The added node takes over some keys: a key written just before the
						// swap is a miss just after it, as with any consistent-hash cache.
						misses.Add(1)
						err = nil
					} else if err == nil && got != v {
						err = fmt.Errorf("GET %s = %q, want %q", k, got, v)
					}
				}
				ops.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}(w)
	}
	write := func(content string) {
		t.Helper()
		content = strings.ReplaceAll(content, "%LISTEN%", listen)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)

	// A broken file is refused whole; service goes on.
	write(base + "bogus_key = 1\n")
	waitLog(t, a, "reload refused")

	// Add a node to the cluster and a whole new cluster.
	write(strings.ReplaceAll(base, "%SERVERS%", serverList(servers, []int{1, 1, 1}, true)) + `
[[clusters]]
name = "extra"
listen_addr = "127.0.0.1:` + strconv.Itoa(newPort) + `"
cache_type = "redis"
servers = ` + serverList(servers[2:], []int{1}, true) + "\n")
	waitLog(t, a, "configuration reloaded")
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d verified operations across the reloads, %d failed, %d misses from rehashing", ops.Load(), failures.Load(), misses.Load())
	if failures.Load() > 0 {
		t.Fatalf("%d operations failed across the reloads; first: %v", failures.Load(), firstErr.Load())
	}
	if misses.Load() > ops.Load()/10 {
		t.Fatalf("%d of %d reads missed: more than a ring change explains", misses.Load(), ops.Load())
	}
	if n, _ := servers[2].Client().DBSize(ctx).Result(); n == 0 {
		t.Fatalf("the added node got no keys")
	}
	extra := redistest.DialRaw(t, "127.0.0.1:"+strconv.Itoa(newPort))
	if v, err := extra.Do("SET", "x", "1"); err != nil || v != "OK" {
		t.Fatalf("new cluster's listener: %q, %v", v, err)
	}

	// Remove the extra cluster again: its listener closes, the main one keeps serving.
	write(strings.ReplaceAll(base, "%SERVERS%", serverList(servers, []int{1, 1, 1}, true)))
	deadline := time.Now().Add(10 * time.Second)
	for redistest.Listening("127.0.0.1:" + strconv.Itoa(newPort)) {
		if time.Now().After(deadline) {
			t.Fatalf("removed cluster still listening")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Set(ctx, "after", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func containsLog(a *asterd, what string) bool { return strings.Contains(a.log.String(), what) }

func waitLog(t *testing.T, a *asterd, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !containsLog(a, what) {
		if time.Now().After(deadline) {
			t.Fatalf("asterd never logged %q", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
