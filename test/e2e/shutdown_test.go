package e2e

import (
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestGracefulShutdownLosesNoAcknowledgedWrite sends SIGTERM while clients write: asterd must
// exit 0, and every SET it acknowledged must be on a backend.
func TestGracefulShutdownLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a := startAsterd(t, `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
`)
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, PoolSize: 1})
			defer c.Close()
			for i := 0; ; i++ {
				k, v := spreadKey("gs"+strconv.Itoa(w)+":", i), strconv.Itoa(i)
				if err := c.Set(ctx, k, v, 0).Err(); err != nil {
					return // the proxy is going away: this write was not acknowledged
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}(w)
	}
	// Shut down under load: once a hundred writes are in (counted, not slept for: a loaded
	// CPU may take seconds for them).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s", n)
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		t.Fatal("asterd did not exit within 15s of SIGTERM")
	}
	wg.Wait()
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("asterd exit code %d after SIGTERM, want 0", code)
	}
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged before shutdown", len(acked))
	}
	clients := make([]*redis.Client, len(servers))
	for i, s := range servers {
		clients[i] = s.Client()
	}
	for k, v := range acked {
		found := false
		for _, c := range clients {
			if got, err := c.Get(ctx, k).Result(); err == nil && got == v {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("acknowledged write %s=%s is on no backend", k, v)
		}
	}
	t.Logf("%d acknowledged writes, all on the backends", len(acked))
}
