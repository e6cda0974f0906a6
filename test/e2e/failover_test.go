package e2e

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// failoverConfig is a redis_cluster cluster with the default fetch (600 s): what follows a
// failover here is the topology watch, hints and the retry of unsent requests, not a short
// refresh period.
func failoverConfig(seeds []string, extra string) string {
	var q []string
	for _, s := range seeds {
		q = append(q, strconv.Quote(s))
	}
	return `
[[clusters]]
name = "rc"
listen_addr = "%LISTEN%"
cache_type = "redis_cluster"
servers = [` + strings.Join(q, ", ") + `]
read_timeout = 1000
dial_timeout = 300
` + extra
}

// killAndWaitPromotion kills the master of slot and returns once a surviving node's CLUSTER
// SLOTS names another master for it: the moment the promotion is visible.
func killAndWaitPromotion(t *testing.T, rc *redistest.Cluster, slot int) (victim, promoted *redistest.Server, at time.Time) {
	t.Helper()
	victim = rc.MasterOf(slot)
	victim.Kill()
	killed := time.Now()
	for {
		if m := rc.MasterOf(slot); m != nil && m != victim {
			t.Logf("%s killed; %s master of slot %d %v later", victim.Addr, m.Addr, slot, time.Since(killed))
			return victim, m, time.Now()
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("no replica of %s promoted within 30s", victim.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cleanRun runs n verified SET/GET pairs over keys of every slot through a new client and fails
// the test on any error or wrong value.
func cleanRun(t *testing.T, a *asterd, what string, n int) {
	t.Helper()
	c := a.client(t)
	for i := 0; i < n; i++ {
		k, v := spreadKey("clean:"+what+":", i), what+strconv.Itoa(i)
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatalf("%s: SET %d of %d: %v", what, i, n, err)
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != v {
			t.Fatalf("%s: GET %d of %d = %q, %v; want %q", what, i, n, got, err, v)
		}
	}
}

// failoverLoad is clients writing and reading back their keys all along, counting errors by
// when the operation started, and wrong answers (never allowed).
type failoverLoad struct {
	stop  atomic.Bool
	wg    sync.WaitGroup
	ops   atomic.Int64
	mu    sync.Mutex
	errs  []loadErr
	wrong []string
}

type loadErr struct {
	start time.Time
	err   error
}

func startFailoverLoad(a *asterd, t *testing.T, workers int) *failoverLoad {
	l := &failoverLoad{}
	for w := 0; w < workers; w++ {
		c := a.client(t)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stop.Load(); i++ {
				k, v := spreadKey(fmt.Sprintf("load%d:", w), i%300), strconv.Itoa(i)
				start := time.Now()
				err := c.Set(ctx, k, v, 0).Err()
				if err == nil {
					var got string
					got, err = c.Get(ctx, k).Result()
					if err == nil && got != v || errors.Is(err, redis.Nil) {
						l.mu.Lock()
						l.wrong = append(l.wrong, fmt.Sprintf("GET %s = %q, %v after SET %q", k, got, err, v))
						l.mu.Unlock()
						err = nil
					}
				}
				l.ops.Add(1)
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, loadErr{start, err})
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// Stop ends the load and fails the test on any wrong answer or on an error of an operation
// that started after clean.
func (l *failoverLoad) Stop(t *testing.T, clean time.Time) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	late := 0
	var first error
	for _, e := range l.errs {
		if e.start.After(clean) {
			late++
			if first == nil {
				first = e.err
			}
		}
	}
	t.Logf("load: %d operations, %d errors, %d of them started 1s after the promotion or later", l.ops.Load(), len(l.errs), late)
	if len(l.wrong) > 0 {
		t.Errorf("%d wrong answers under failover; first: %s", len(l.wrong), l.wrong[0])
	}
	if late > 0 {
		t.Errorf("%d operations started 1s after the promotion failed; first: %v", late, first)
	}
}

// TestFailoverCostsOnlyWhatItMust kills masters of a 3+3 Redis Cluster. First with no traffic
// at all: a client that starts 1 s after the promotion is visible on a surviving node sees no
// error (asterd watched the cluster; it did not wait for a request to fail). Then under
// continuous verified load: requests in flight may fail, but no answer is ever wrong, every
// operation that starts 1 s after the promotion succeeds, and so does a new client.
func TestFailoverCostsOnlyWhatItMust(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, failoverConfig(rc.Seeds(), ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	cleanRun(t, a, "before", 50)

	// No traffic between the kill and the new client.
	_, _, at := killAndWaitPromotion(t, rc, 0)
	time.Sleep(time.Until(at.Add(time.Second)))
	cleanRun(t, a, "idle", 200)

	// Under load, another master (slot 16383 is not the first victim's).
	load := startFailoverLoad(a, t, 4)
	time.Sleep(300 * time.Millisecond)
	_, _, at = killAndWaitPromotion(t, rc, 16383)
	time.Sleep(time.Until(at.Add(time.Second)))
	cleanRun(t, a, "loaded", 200)
	time.Sleep(300 * time.Millisecond)
	load.Stop(t, at.Add(time.Second))
}

// TestReplicaInClusterDownReadsGoToMaster: with read_from_slave, a replica whose view of the
// cluster is down (one that has just joined, or lost sight of a master) answers reads with
// CLUSTERDOWN while its master serves them. Those reads are retried on the master: no client
// sees the error. (CI saw it as a flake of TestReplicaJoinedLaterServesReads; here a replica
// forgets another master, CLUSTER FORGET, which makes its cluster state fail at once.)
func TestReplicaInClusterDownReadsGoToMaster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, failoverConfig(rc.Seeds(), "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	const n = 100
	for i := 0; i < n; i++ {
		if err := c.Set(ctx, spreadKey("cd:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	master := rc.MasterOf(0)
	other := rc.MasterOf(16383)
	var replica *redistest.Server // the node whose ROLE names master's port
	_, port, _ := strings.Cut(master.Addr, ":")
	for _, s := range rc.Nodes {
		if role, err := s.Do("ROLE"); err == nil {
			if r, ok := role.([]any); ok && len(r) > 2 && r[0] == "slave" && fmt.Sprint(r[2]) == port {
				replica = s
			}
		}
	}
	if replica == nil || master == other {
		t.Fatalf("no replica of slot 0's master %s, or slots 0 and 16383 on one master", master.Addr)
	}
	otherID, err := other.Do("CLUSTER", "MYID")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Do("CLUSTER", "FORGET", otherID); err != nil {
		t.Fatalf("CLUSTER FORGET on the replica: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := replica.Do("CLUSTER", "INFO")
		if err == nil && strings.Contains(fmt.Sprint(info), "cluster_state:fail") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s: cluster state not fail after CLUSTER FORGET: %v %v", replica.Addr, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, rejectedBefore := replica.CommandStats(t, "get")
	for round := 0; round < 3; round++ {
		for i := 0; i < n; i++ {
			if v, err := c.Get(ctx, spreadKey("cd:", i)).Result(); err != nil || v != strconv.Itoa(i) {
				t.Fatalf("GET through asterd while a replica is in CLUSTERDOWN: %q, %v; want %d", v, err, i)
			}
		}
	}
	if _, rejected := replica.CommandStats(t, "get"); rejected == rejectedBefore {
		t.Fatalf("the replica in CLUSTERDOWN was never asked (rejected GETs %d): the test did not test it", rejected)
	}
}

// TestReplicaJoinedLaterServesReads: with read_from_slave, a replica added after asterd
// started gets reads within seconds, without any request failing or hinting.
func TestReplicaJoinedLaterServesReads(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, failoverConfig(rc.Seeds(), "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	for i := 0; i < 100; i++ {
		if err := c.Set(ctx, spreadKey("rj:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	replica := rc.AddReplica(t, rc.MasterOf(0), 20*time.Second)
	added := time.Now()
	for {
		for i := 0; i < 100; i++ {
			if v, err := c.Get(ctx, spreadKey("rj:", i)).Result(); err != nil || v != strconv.Itoa(i) {
				t.Fatalf("GET through asterd: %q, %v; want %d", v, err, i)
			}
		}
		if calls, _ := replica.CommandStats(t, "get"); calls > 0 {
			t.Logf("the new replica %s served %d GETs %v after it joined", replica.Addr, calls, time.Since(added))
			return
		}
		if time.Since(added) > 5*time.Second {
			t.Fatalf("the replica %s that joined 5s ago served no read with read_from_slave = true", replica.Addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
