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

// TestReplicaRefusingReadsSendsThemToMaster: with read_from_slave, a replica refuses reads its
// master serves when its view of the cluster is down (CLUSTERDOWN: one that has just joined,
// or lost sight of a master), when it is loading a full resync (LOADING), and when its link to
// the master is down with replica-serve-stale-data no (MASTERDOWN). Those reads are sent to
// the master: no client sees the refusal. (CI saw the first as a flake of
// TestReplicaJoinedLaterServesReads.) Each case makes a real replica refuse, and checks that
// it did refuse GETs (its rejected_calls) while every GET through asterd was answered.
func TestReplicaRefusingReadsSendsThemToMaster(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// refuse makes replica (of master) refuse reads; asterd's reads go on until done.
		refuse func(t *testing.T, rc *redistest.Cluster, master, replica *redistest.Server) (done func() bool)
	}{
		{"CLUSTERDOWN", func(t *testing.T, rc *redistest.Cluster, master, replica *redistest.Server) func() bool {
			// Forgetting another master fails the replica's cluster state at once.
			other := rc.MasterOf(16383)
			if other == master {
				t.Fatalf("slots 0 and 16383 on one master %s", master.Addr)
			}
			otherID, err := other.Do("CLUSTER", "MYID")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := replica.Do("CLUSTER", "FORGET", otherID); err != nil {
				t.Fatalf("CLUSTER FORGET on the replica: %v", err)
			}
			waitInfo(t, replica, "CLUSTER INFO", "cluster_state:fail")
			return func() bool { return true }
		}},
		{"MASTERDOWN", func(t *testing.T, _ *redistest.Cluster, _, replica *redistest.Server) func() bool {
			// A replica that cannot authenticate to its master stays cut off from it.
			cutOff(t, replica, "replica-serve-stale-data", "no")
			return func() bool { return true }
		}},
		{"LOADING", func(t *testing.T, rc *redistest.Cluster, master, replica *redistest.Server) func() bool {
			// Cut off, the replica falls behind the master's (smallest) backlog; let back in,
			// it needs a full resync, which it loads slowly (key-load-delay, µs per key) and
			// answers LOADING meanwhile (events every KiB loaded, not every 2 MiB).
			for _, kv := range [][2]string{{"repl-backlog-size", "16384"}, {"repl-diskless-sync-delay", "0"}} {
				if _, err := master.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, kv := range [][2]string{{"key-load-delay", "300"}, {"loading-process-events-interval-bytes", "1024"}} {
				if _, err := replica.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			cutOff(t, replica)
			tag := "{" + keyOn(t, rc, master) + "}"
			p := master.Client().Pipeline()
			for i := range 3000 {
				p.Set(ctx, fmt.Sprintf("%s:fill:%d", tag, i), strings.Repeat("x", 100), 0)
			}
			if _, err := p.Exec(ctx); err != nil {
				t.Fatalf("filling the master: %v", err)
			}
			if _, err := replica.Do("CONFIG", "SET", "masterauth", ""); err != nil {
				t.Fatal(err)
			}
			return func() bool {
				info, err := replica.Do("INFO", "replication")
				return err == nil && strings.Contains(fmt.Sprint(info), "master_link_status:up")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.StartCluster(t, 3, 1)
			a := startAsterd(t, failoverConfig(rc.Seeds(), "read_from_slave = true\n"))
			c := a.client(t)
			waitServing(t, c, 10*time.Second)
			const n = 100
			for i := 0; i < n; i++ {
				if err := c.Set(ctx, spreadKey("rf:", i), i, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			master := rc.MasterOf(0)
			replica := replicaOf(t, rc, master)
			if err := master.Client().Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
				t.Fatalf("WAIT for the replica: %v", err)
			}
			_, rejectedBefore := replica.CommandStats(t, "get")
			done := tc.refuse(t, rc, master, replica)
			deadline := time.Now().Add(20 * time.Second)
			for round := 0; ; round++ {
				for i := 0; i < n; i++ {
					if v, err := c.Get(ctx, spreadKey("rf:", i)).Result(); err != nil || v != strconv.Itoa(i) {
						t.Fatalf("GET through asterd while a replica refuses reads: %q, %v; want %d", v, err, i)
					}
				}
				_, rejected := replica.CommandStats(t, "get")
				if round >= 2 && rejected > rejectedBefore && done() {
					t.Logf("the replica refused %d GETs, all answered by its master", rejected-rejectedBefore)
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the replica refused %d GETs in %d rounds (done %v): the test did not test it", rejected-rejectedBefore, round+1, done())
				}
			}
		})
	}
}

// TestDeadReplicaReadsGoToMaster: with read_from_slave, reads a replica took when it died, and
// those that find it gone (refused, in the backoff after), are answered by its master, well
// before the cluster marks it failed (cluster-node-timeout) and asterd stops sending it reads.
func TestDeadReplicaReadsGoToMaster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, failoverConfig(rc.Seeds(), "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	master := rc.MasterOf(0)
	replica := replicaOf(t, rc, master)
	tag := "{" + keyOn(t, rc, master) + "}"
	const n = 200
	for i := range n {
		if err := c.Set(ctx, fmt.Sprintf("%s:%d", tag, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := master.Client().Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
		t.Fatalf("WAIT for the replica: %v", err)
	}
	before, _ := replica.CommandStats(t, "get")
	get := func(when string) {
		t.Helper()
		p := c.Pipeline()
		cmds := make([]*redis.StringCmd, n)
		for i := range cmds {
			cmds[i] = p.Get(ctx, fmt.Sprintf("%s:%d", tag, i))
		}
		_, _ = p.Exec(ctx)
		for i, cmd := range cmds {
			if v, err := cmd.Result(); err != nil || v != strconv.Itoa(i) {
				t.Fatalf("GET %d %s: %q, %v", i, when, v, err)
			}
		}
	}
	get("with the replica up")
	if after, _ := replica.CommandStats(t, "get"); after == before {
		t.Fatal("the replica served no GET: the test would not test it")
	}
	// Pipelines in flight while it dies; then more, while the cluster still lists it.
	stop := make(chan struct{})
	go func() {
		time.Sleep(5 * time.Millisecond)
		replica.Kill()
		close(stop)
	}()
	for dead := false; !dead; {
		select {
		case <-stop:
			dead = true
		default:
		}
		get("as the replica dies")
	}
	for range 5 {
		get("after the replica died")
	}
}

// cutOff drops replica's link to its master and keeps it down (the replica cannot authenticate,
// the master having no password), after setting the given configuration pairs.
func cutOff(t *testing.T, replica *redistest.Server, config ...string) {
	t.Helper()
	args := append([]any{"CONFIG", "SET", "masterauth", "not-the-password"}, anySlice(config)...)
	if _, err := replica.Do(args...); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Do("CLIENT", "KILL", "TYPE", "master"); err != nil {
		t.Fatal(err)
	}
	waitInfo(t, replica, "INFO replication", "master_link_status:down")
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// waitInfo waits up to 10 s until the reply to cmd (words) on s contains want.
func waitInfo(t *testing.T, s *redistest.Server, cmd, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Do(anySlice(strings.Fields(cmd))...)
		if err == nil && strings.Contains(fmt.Sprint(info), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not show %s: %v %v", s.Addr, cmd, want, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyOn returns a key whose slot master serves.
func keyOn(t *testing.T, rc *redistest.Cluster, master *redistest.Server) string {
	t.Helper()
	for i := range 10000 {
		k := "k" + strconv.Itoa(i)
		if rc.MasterOf(int(rc.Client().ClusterKeySlot(ctx, k).Val())) == master {
			return k
		}
	}
	t.Fatalf("no key on %s", master.Addr)
	return ""
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
