package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClusterBigRepliesBesideRedirects: pipelines whose big replies (lent from the node
// connections' read buffers, not copied) share a batch with commands that a half-moved slot
// answers with ASK. Such a batch leaves the event loop to follow the redirect while its big
// replies wait, and the connections read on for other clients meanwhile: every reply must
// still be the value asked for. The asterd under test is built with the race detector, whose
// builds overwrite a lent reply once it is given back, so one used after that shows here.
func TestClusterBigRepliesBesideRedirects(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	want := map[string]string{}
	var bigs []string
	for i := 0; i < 12; i++ {
		k := spreadKey("lent:", i)
		want[k] = strings.Repeat(fmt.Sprintf("%s-%d|", k, i), (20<<10+i*4<<10)/len(k))
		bigs = append(bigs, k)
	}
	for i := 0; i < 10; i++ {
		want[fmt.Sprintf("{mv}.%d", i)] = fmt.Sprintf("small-%d", i)
	}
	for k, v := range want {
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Half of {mv}'s keys move to another node: the source answers ASK for them.
	startMigration(t, rc, "{mv}").move("{mv}.0", "{mv}.1", "{mv}.2", "{mv}.3", "{mv}.4")

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	// round runs one pipeline of big GETs, with GETs of moved keys among them if redirects.
	round := func(cl *redis.Client, id, n int, redirects bool) error {
		p := cl.Pipeline()
		var keys []string
		for i := 0; i < 24; i++ {
			k := bigs[(i*5+id+n)%len(bigs)]
			if redirects && i%4 == 1 {
				k = fmt.Sprintf("{mv}.%d", (i+n)%10)
			}
			keys = append(keys, k)
			p.Get(ctx, k)
		}
		cmds, err := p.Exec(ctx)
		if err != nil {
			return fmt.Errorf("client %d round %d: %w", id, n, err)
		}
		for i, cmd := range cmds {
			if got := cmd.(*redis.StringCmd).Val(); got != want[keys[i]] {
				return fmt.Errorf("client %d round %d: GET %s: %d bytes %.30q, want %d", id, n, keys[i], len(got), got, len(want[keys[i]]))
			}
		}
		return nil
	}
	run := func(id int, redirects bool) {
		defer wg.Done()
		// Each cycle a new connection: a session serves on an event loop (and borrows big
		// replies) until a redirect hands it to a goroutine. Its first rounds, without
		// redirects, grow its batches to whole pipelines; then one mixes in moved keys.
		for cycle := 0; cycle < 6; cycle++ {
			cl := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, PoolSize: 1, ReadTimeout: 10 * time.Second})
			for n := 0; n < 4; n++ {
				if err := round(cl, id, cycle*4+n, redirects && n == 3); err != nil {
					errs <- err
					cl.Close()
					return
				}
			}
			cl.Close()
		}
	}
	for id := 0; id < 8; id++ {
		wg.Add(1)
		go run(id, id%2 == 0) // the others' big replies keep the connections reading
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
