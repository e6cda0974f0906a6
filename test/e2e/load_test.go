package e2e

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// verifiedLoad is a client loop that writes a key and reads it back, counting operations,
// failures (errors and wrong values) and misses (nil reads), until Stop.
type verifiedLoad struct {
	stop                  atomic.Bool
	ops, failures, misses atomic.Int64
	firstErr              atomic.Value
	wg                    sync.WaitGroup
}

// startVerifiedLoad runs workers goroutines over keys keys each, named by prefix.
func startVerifiedLoad(c *redis.Client, prefix string, workers, keys int) *verifiedLoad {
	l := &verifiedLoad{}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			for i := 0; !l.stop.Load(); i++ {
				k, v := spreadKey(fmt.Sprintf("%s%d:", prefix, w), i%keys), strconv.Itoa(i)
				err := c.Set(ctx, k, v, 0).Err()
				if err == nil {
					var got string
					got, err = c.Get(ctx, k).Result()
					if errors.Is(err, redis.Nil) {
						l.misses.Add(1)
						err = nil
					} else if err == nil && got != v {
						err = fmt.Errorf("GET %s = %q after SET %q", k, got, v)
					}
				}
				l.ops.Add(1)
				if err != nil {
					l.failures.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}(w)
	}
	return l
}

// Stop ends the loop and waits for its workers.
// waitOps waits until the load has made n verified operations in all: a loaded CPU may take
// seconds for what an idle one does in a fraction of one.
func (l *verifiedLoad) waitOps(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for l.ops.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d verified operations within 60s; first error: %v", l.ops.Load(), n, l.firstErr.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *verifiedLoad) Stop() {
	l.stop.Store(true)
	l.wg.Wait()
}

// check fails the test on any failure, or when misses exceed maxMissPct percent of the
// operations, or when fewer than minOps operations ran.
func (l *verifiedLoad) check(t *testing.T, what string, maxMissPct int64, minOps int64) {
	t.Helper()
	ops, failures, misses := l.ops.Load(), l.failures.Load(), l.misses.Load()
	t.Logf("%d verified operations %s, %d failed, %d read misses", ops, what, failures, misses)
	if failures > 0 {
		t.Fatalf("%d of %d operations failed %s; first: %v", failures, ops, what, l.firstErr.Load())
	}
	if misses*100 > ops*maxMissPct {
		t.Fatalf("%d of %d reads missed %s: more than allowed (%d%%)", misses, ops, what, maxMissPct)
	}
	if ops < minOps {
		t.Fatalf("only %d operations ran %s", ops, what)
	}
}
