package proxy_test

import (
	"fmt"
	"os"
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

// TestFaultyBackendLinksNeverMixAnswers puts a relay that delays and cuts connections at
// random between the proxy and its nodes: every client request must get its own answer or an
// error, never another request's answer. Most clients pipeline SET and GET over the shared
// connections; some run transactions and blocking pops, which go over dedicated connections
// that move between sessions through the cluster's pool (backend.DedicatedPool) and sessions that move
// between a goroutine and a loop.
func TestFaultyBackendLinksNeverMixAnswers(t *testing.T) {
	var nodes []route.Node
	for i := 0; i < 2; i++ {
		s := redistest.Start(t)
		r := redistest.StartRelay(t, s.Addr, 2*time.Millisecond, 0.01)
		nodes = append(nodes, route.Node{Addr: r.Addr, Name: "r" + strconv.Itoa(i), Weight: 1})
	}
	c := proxy.MustCluster(t, route.ClusterSpec{Name: "faulty",
		Listen:  route.ListenSettings{Addr: "127.0.0.1:0"},
		Backend: route.BackendSettings{ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second, DialTimeout: time.Second}},
		proxy.Env{Logger: testLogger(t)})
	h, _ := route.Hash("fnv1a_64")
	ring, _ := route.NewRing(nodes, h, "{}")
	if err := c.Update(&route.Table{Version: 1, Ring: ring}); err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	go c.Serve()
	t.Cleanup(c.Close)

	// make soak sets ASTER_SOAK to run the same checks for minutes instead of 150 rounds.
	soak, _ := time.ParseDuration(os.Getenv("ASTER_SOAK"))
	end := time.Now().Add(soak)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	count := func(good bool) {
		mu.Lock()
		if good {
			ok++
		} else {
			failed++
		}
		mu.Unlock()
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := redis.NewClient(&redis.Options{Addr: c.Addr().String(), MaxRetries: -1, PoolSize: 1, ReadTimeout: 5 * time.Second})
			defer cl.Close()
			for i := 0; i < 100 || time.Now().Before(end); i++ {
				k := fmt.Sprintf("faulty:x%d:%d", w, i) // a new key each time: a pop that failed leaves its value behind
				v := k + ":" + strings.Repeat("v", i%40)
				if w%2 == 0 {
					var get *redis.StringCmd
					_, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k, v, 0)
						get = p.Get(ctx, k)
						return nil
					})
					count(err == nil)
					if got, gerr := get.Result(); err == nil && (gerr != nil || got != v) {
						t.Errorf("MULTI/SET/GET/EXEC %s: GET answered %q, %v", k, got, gerr)
					}
					continue
				}
				pipe := cl.Pipeline()
				push := pipe.RPush(ctx, k, v)
				pop := pipe.BLPop(ctx, time.Second, k)
				_, _ = pipe.Exec(ctx)
				count(push.Err() == nil && pop.Err() == nil)
				if got, err := pop.Result(); err == nil && (len(got) != 2 || got[0] != k || got[1] != v) {
					t.Errorf("RPUSH, BLPOP %s answered %q: another request's answer", k, got)
				}
			}
		}()
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := redis.NewClient(&redis.Options{Addr: c.Addr().String(), MaxRetries: -1, PoolSize: 1, ReadTimeout: 5 * time.Second})
			defer cl.Close()
			for i := 0; i < 150 || time.Now().Before(end); i++ {
				k := fmt.Sprintf("faulty:%d:%d", w, i)
				v := k + ":" + strings.Repeat("v", i%40)
				// ECHO is answered by the proxy; SET/GET go through the faulty links.
				pipe := cl.Pipeline()
				set := pipe.Set(ctx, k, v, 0)
				get := pipe.Get(ctx, k)
				_, _ = pipe.Exec(ctx)
				count(set.Err() == nil && get.Err() == nil)
				if err := set.Err(); err == nil && set.Val() != "OK" {
					t.Errorf("SET %s answered %q", k, set.Val())
				}
				if got, err := get.Result(); err == nil && got != v {
					t.Errorf("GET %s answered %q: another request's answer", k, got)
				}
			}
		}(w)
	}
	wg.Wait()
	t.Logf("%d request groups answered right, %d failed with an error", ok, failed)
	if ok == 0 {
		t.Fatal("nothing got through the relay")
	}
}
