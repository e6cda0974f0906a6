package proxy_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

// TestBackendSettingsReloadUnderTransactionsBlockingAndPubSub reloads the backend settings
// (timeouts, node connections) again and again while clients run what reads them outside a
// batch's own pointer load — transactions, blocking commands, subscriptions and plain
// commands. Each reads the settings of the generation it loaded, so nothing races (run under
// -race: the old per-cluster fields raced here) and no client sees an error.
func TestBackendSettingsReloadUnderTransactionsBlockingAndPubSub(t *testing.T) {
	r := redistest.Start(t)
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: r.Addr, Name: "r", Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	port := redistest.FreePort(t)
	spec := route.ClusterSpec{Name: "a",
		Listen:  route.ListenSettings{Proto: "tcp", Addr: "127.0.0.1:" + strconv.Itoa(port)},
		Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second},
		Table:   &route.Table{Version: 1, Ring: ring}}
	s := proxy.NewServer(proxy.ServerOptions{Logger: testlog.New(t, t.Name(), hclog.Warn)})
	defer s.Close()
	if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	addr := spec.Listen.Addr

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	client := func(work func(c *redis.Client) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1, ReadTimeout: 10 * time.Second})
			defer c.Close()
			for !stop.Load() {
				if err := work(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	client(func(c *redis.Client) error { // transactions
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "tx", "1", 0)
			p.Incr(ctx, "tx")
			return nil
		})
		return err
	})
	client(func(c *redis.Client) error { // blocking commands
		if err := c.BLPop(ctx, 20*time.Millisecond, "nothing").Err(); !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	})
	client(func(c *redis.Client) error { return c.Set(ctx, "plain", "1", 0).Err() })
	wg.Add(1)
	go func() { // a subscriber receiving what a publisher sends meanwhile
		defer wg.Done()
		sub := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer sub.Close()
		ps := sub.Subscribe(ctx, "ch")
		defer ps.Close()
		pub := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer pub.Close()
		for i := 0; !stop.Load(); i++ {
			if err := pub.Publish(ctx, "ch", strconv.Itoa(i)).Err(); err != nil {
				errs <- err
				return
			}
			if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
				errs <- err
				return
			}
		}
	}()

	for v := uint64(2); v <= 31; v++ {
		next := spec
		next.Backend.ReadTimeout = time.Duration(1+v%3) * time.Second
		next.Backend.WriteTimeout = time.Duration(1+v%2) * time.Second
		next.Backend.NodeConnections = int(1 + v%2)
		if err := s.Apply(&route.Snapshot{Version: v, Clusters: []route.ClusterSpec{next}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client error across backend reloads: %v", err)
	}
}
