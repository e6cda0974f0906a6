package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
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

	// Adding a node moves some keys to it: a key written just before the swap reads as nil
	// just after it, as with any consistent-hash cache. Such misses are counted, bounded.
	load := startVerifiedLoad(c, "rl", 4, 400)
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
	load.waitOps(t, 50)

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
	load.waitOps(t, load.ops.Load()+100) // the load goes on after the reload
	load.Stop()
	load.check(t, "across the reloads", 10, 100)
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
