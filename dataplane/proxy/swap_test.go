package proxy_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aster-proxy/aster/dataplane/route"
)

// TestTableSwapStorm swaps routing tables as fast as it can while clients run verified
// commands: under -race this shows the data plane reads tables without data races, and no
// request is lost or answered wrongly across swaps.
func TestTableSwapStorm(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	all := nodesOf(e)
	// Every table names all three nodes in another order, so keys keep their node and
	// values stay verifiable while the snapshot object changes underneath.
	orders := [][]route.Node{{all[0], all[1], all[2]}, {all[2], all[0], all[1]}, {all[1], all[2], all[0]}}
	var stop atomic.Bool
	var version atomic.Uint64
	version.Store(1)
	var swaps int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			e.install(t, version.Add(1), orders[i%len(orders)])
			swaps++
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k, v := "swap:"+strconv.Itoa(w)+":"+strconv.Itoa(i%50), strconv.Itoa(i)
				if err := e.client.Set(ctx, k, v, 0).Err(); err != nil {
					failed.Add(1)
					continue
				}
				if got, err := e.client.Get(ctx, k).Result(); err != nil || got != v {
					failed.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	stop.Store(true)
	<-done
	t.Logf("%d table swaps during 4000 verified commands", swaps)
	if failed.Load() > 0 {
		t.Fatalf("%d commands failed or read a wrong value across table swaps", failed.Load())
	}
	if swaps < 10 {
		t.Fatalf("only %d swaps happened", swaps)
	}
}
