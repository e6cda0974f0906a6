package e2e

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestTransactions: MULTI/EXEC with a hash tag runs as one transaction on the keys' node;
// without, a key elsewhere is refused at queue time and EXEC answers EXECABORT with nothing
// written; WATCH makes concurrent read-modify-write loops exact — in both modes.
func TestTransactions(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, e *modeEnv) {
		c := e.a.client(t)
		var incr *redis.IntCmd
		var lpush *redis.IntCmd
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "{order7}.total", "10", 0)
			incr = p.IncrBy(ctx, "{order7}.total", 32)
			lpush = p.LPush(ctx, "{order7}.items", "a", "b")
			return nil
		})
		if err != nil || incr.Val() != 42 || lpush.Val() != 2 {
			t.Fatalf("MULTI/EXEC with a hash tag: %v, INCRBY %d, LPUSH %d", err, incr.Val(), lpush.Val())
		}

		// Without a common tag: refused, nothing written.
		want := "ERR keys of a transaction must all be on one node (use hash tags)"
		if e.cluster {
			want = "CROSSSLOT Keys in request don't hash to the same slot"
		}
		r := redistest.DialRaw(t, e.a.Addr)
		steps := []struct {
			args []string
			want string
		}{
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", e.apart[0], "x"}, "QUEUED"},
			{[]string{"SET", e.apart[1], "x"}, "error: " + want},
			{[]string{"EXEC"}, "error: EXECABORT Transaction discarded because of previous errors."},
			{[]string{"GET", e.apart[0]}, "(nil)"},
			{[]string{"EXEC"}, "error: ERR EXEC without MULTI"},
		}
		for _, st := range steps {
			got, err := r.Do(st.args...)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != st.want {
				t.Fatalf("%v: %q, want %q", st.args, got, st.want)
			}
		}
		_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, e.apart[0], "x", 0)
			p.Set(ctx, e.apart[1], "x", 0)
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "EXECABORT") && !strings.Contains(err.Error(), want) {
			t.Fatalf("go-redis transaction across nodes: %v, want a refusal", err)
		}
		if n, _ := c.Exists(ctx, e.apart[0], e.apart[1]).Result(); n != 0 {
			t.Fatalf("a refused transaction wrote %d keys", n)
		}

		// WATCH: concurrent increments by read-modify-write are all kept, none doubled.
		const workers, each = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc := e.a.client(t)
				for i := 0; i < each; {
					err := wc.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "{ctr}.n").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "{ctr}.n", n+1, 0)
							return nil
						})
						return err
					}, "{ctr}.n")
					switch {
					case err == nil:
						i++
					case errors.Is(err, redis.TxFailedErr): // lost the race: retry
					default:
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("WATCH loop: %v", err)
		}
		if n, err := c.Get(ctx, "{ctr}.n").Int(); err != nil || n != workers*each {
			t.Fatalf("counter = %d, %v; want %d (WATCH let a lost update through)", n, err, workers*each)
		}
	})
}
