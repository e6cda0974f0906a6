package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// clusterConfig is failoverConfig with a topology fetch every second.
func clusterConfig(seeds []string, extra string) string {
	return failoverConfig(seeds, "fetch = 1\n"+extra)
}

// waitServing waits until every probe key can be written through the proxy.
func waitServing(t *testing.T, c *redis.Client, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			err = c.Set(ctx, spreadKey("probe:", i), "1", 0).Err()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not serving every slot after %v: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterModePlainClient(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	// Every seed but the last is down at start: asterd must skip them and serve.
	seeds := []string{
		"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)),
		"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)),
		rc.Seeds()[len(rc.Seeds())-1],
	}
	a := startAsterd(t, clusterConfig(seeds, ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	direct := rc.Client()
	for i := 0; i < 300; i++ {
		k := spreadKey("rc:", i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := direct.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("cluster has %s = %q, %v", k, v, err)
		}
	}
	// Multi-key commands across slots, split and merged in order.
	var keys []string
	var kv []any
	for i := 0; i < 20; i++ {
		k := spreadKey("multi:", i)
		keys = append(keys, k)
		if i%4 != 3 {
			kv = append(kv, k, "m"+strconv.Itoa(i))
		}
	}
	if err := c.MSet(ctx, kv...).Err(); err != nil {
		t.Fatalf("MSET across slots: %v", err)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatalf("MGET across slots: %v", err)
	}
	for i, v := range vals {
		if (i%4 == 3 && v != nil) || (i%4 != 3 && v != "m"+strconv.Itoa(i)) {
			t.Fatalf("MGET[%d] = %v", i, v)
		}
	}
	if n, err := c.Exists(ctx, keys...).Result(); err != nil || n != 15 {
		t.Fatalf("EXISTS = %d, %v; want 15", n, err)
	}
	if n, err := c.Del(ctx, keys...).Result(); err != nil || n != 15 {
		t.Fatalf("DEL = %d, %v; want 15", n, err)
	}
	// Same-slot multi-key commands pass; cross-slot ones are refused as Redis does.
	c.Set(ctx, "{u1}.a", "x", 0)
	if err := c.Rename(ctx, "{u1}.a", "{u1}.b").Err(); err != nil {
		t.Fatalf("RENAME within a slot: %v", err)
	}
	err = c.Rename(ctx, "{u1}.b", "{u2}.b").Err()
	if err == nil || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
		t.Fatalf("RENAME across slots: %v", err)
	}
	info, _ := c.Info(ctx).Result()
	if !strings.Contains(info, "cache_type:redis_cluster") {
		t.Errorf("INFO lacks cache_type:redis_cluster")
	}
	// The Keyspace section adds up the masters' counts, as DBSIZE does.
	if n, err := c.DBSize(ctx).Result(); err != nil || n == 0 ||
		!strings.Contains(info, "\r\n# Keyspace\r\ndb0:keys="+strconv.FormatInt(n, 10)+",") {
		t.Errorf("INFO keyspace does not match DBSIZE %d (%v):\n%s", n, err, info)
	}
}

func TestClusterReshardWithoutErrors(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "redis-cli")
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds()[:1], ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	// A client doing verified writes and reads while slots move.
	load := startVerifiedLoad(c, "rs", 4, 500)
	// Move 1000 slots from the first master to the second, key by key (MIGRATE, ASK, MOVED).
	ids := map[string]string{}
	for _, n := range rc.Nodes {
		id, err := n.Do("CLUSTER", "MYID")
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Addr] = id.(string)
	}
	from, to := rc.MasterOf(0), rc.MasterOf(16383)
	out, err := exec.Command("redis-cli", "--cluster", "reshard", rc.Seeds()[0],
		"--cluster-from", ids[from.Addr], "--cluster-to", ids[to.Addr],
		"--cluster-slots", "1000", "--cluster-yes", "--cluster-pipeline", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("reshard: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	load.Stop()
	if rc.MasterOf(0) != to {
		t.Fatalf("slot 0 did not move")
	}
	// Migration moves keys with their values: not even a miss is acceptable.
	load.check(t, "during the reshard", 0, 100)
}

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	for i := 0; i < 100; i++ {
		c.Set(ctx, spreadKey("fo:", i), i, 0)
	}
	victim := rc.MasterOf(0)
	victim.Kill()
	killed := time.Now()
	// The cluster promotes the replica after cluster-node-timeout (2s); the proxy must follow.
	waitServing(t, c, 30*time.Second)
	t.Logf("every slot served again %v after the master died", time.Since(killed))
	// A verified load loop runs clean on the new topology.
	for i := 0; i < 300; i++ {
		k := spreadKey("fo2:", i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET after failover: %v", err)
		}
		if v, err := c.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET after failover: %q, %v", v, err)
		}
	}
	for i := 0; i < 100; i++ { // written before the failover, replicated, still there
		if v, err := c.Get(ctx, spreadKey("fo:", i)).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("value written before failover: %q, %v", v, err)
		}
	}
	// The published slot map names the promoted master, not the dead one.
	promoted := rc.MasterOf(0)
	if promoted == nil || promoted == victim {
		t.Fatalf("cluster did not promote a replica")
	}
	lines := strings.Split(a.log.String(), "\n")
	last := ""
	for _, l := range lines {
		if strings.Contains(l, "slot map published") {
			last = l
		}
	}
	if !strings.Contains(last, promoted.Addr) || strings.Contains(last, victim.Addr) {
		t.Fatalf("last published slot map %q should name %s and not %s", last, promoted.Addr, victim.Addr)
	}
}

// TestClusterAskDuringManualMigration moves one slot by hand, as redis-cli does, and checks
// that reads and writes of its keys work while the slot is half-moved (the source answers ASK
// for keys it no longer has).
func TestClusterAskDuringManualMigration(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	slot := int(route.Slot([]byte("{ask}")))
	if got := rc.Client().ClusterKeySlot(ctx, "{ask}").Val(); got != int64(slot) {
		t.Fatalf("slot of {ask}: cluster says %d, we say %d", got, slot)
	}
	for i := 0; i < 10; i++ {
		if err := c.Set(ctx, fmt.Sprintf("{ask}.%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m := startMigration(t, rc, "{ask}")
	m.move("{ask}.0", "{ask}.1", "{ask}.2", "{ask}.3", "{ask}.4") // half the keys move
	askBefore := askingCalls(t, m.dst)
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("{ask}.%d", i)
		if v, err := c.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET %s mid-migration: %q, %v", k, v, err)
		}
	}
	// A multi-key read whose keys are split between the two nodes cannot be served until the
	// move ends: Redis says TRYAGAIN (after ASK), and the client must get that or the values,
	// never a redirect meant for cluster clients.
	if err := c.MGet(ctx, "{ask}.0", "{ask}.missing").Err(); err != nil &&
		(!strings.HasPrefix(err.Error(), "TRYAGAIN") || strings.Contains(err.Error(), "MOVED")) {
		t.Fatalf("MGET across the half-moved slot: %v; want the values or TRYAGAIN", err)
	}
	// A new key of the migrating slot is created on the target, via ASK.
	if err := c.Set(ctx, "{ask}.new", "n", 0).Err(); err != nil {
		t.Fatalf("SET of a new key mid-migration: %v", err)
	}
	raw := redistest.DialRaw(t, m.dst.Addr) // the importing node answers only after ASKING
	if _, err := raw.Do("ASKING"); err != nil {
		t.Fatal(err)
	}
	if v, err := raw.Do("EXISTS", "{ask}.new"); err != nil || v != "1" {
		t.Fatalf("new key not created on the importing node: %q, %v", v, err)
	}
	if askingCalls(t, m.dst) <= askBefore {
		t.Fatalf("the importing node saw no ASKING: ASK was not followed")
	}
	// A transaction on keys on both sides cannot run until the move ends (the source answers
	// ASK for one, and the target cannot take ASKING inside MULTI): asterd runs it again
	// until the slot has moved, and it runs there, once.
	txDone := make(chan error, 1)
	go func() {
		var first, last *redis.IntCmd
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			first, last = p.Incr(ctx, "{ask}.0"), p.Incr(ctx, "{ask}.9")
			return nil
		})
		if err == nil && (first.Val() != 1 || last.Val() != 10) {
			err = fmt.Errorf("INCR answered %d and %d, want 1 and 10", first.Val(), last.Val())
		}
		txDone <- err
	}()
	time.Sleep(100 * time.Millisecond) // it meets the half-moved slot
	// Finish the move; MOVED takes over and every key stays readable.
	m.move("{ask}.5", "{ask}.6", "{ask}.7", "{ask}.8", "{ask}.9")
	m.finish(rc)
	if err := <-txDone; err != nil {
		t.Fatalf("MULTI/INCR/INCR/EXEC across the migration: %v", err)
	}
	for i := 0; i < 10; i++ {
		k, want := fmt.Sprintf("{ask}.%d", i), i
		if i == 0 || i == 9 {
			want++ // the transaction's
		}
		if v, err := c.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(want) {
			t.Fatalf("GET %s after migration: %q, %v; want %d", k, v, err, want)
		}
	}
}

// askingCalls reads how many ASKING commands a node has served.
func askingCalls(t *testing.T, s *redistest.Server) int {
	stats, err := s.Client().Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(stats, "cmdstat_asking:calls=")
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(strings.SplitN(stats[i+len("cmdstat_asking:calls="):], ",", 2)[0])
	return n
}

func TestClusterReadFromSlave(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	for i := 0; i < 50; i++ {
		if err := c.Set(ctx, spreadKey("rs:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let replication catch up
	for i := 0; i < 300; i++ {
		if err := c.Get(ctx, spreadKey("rs:", i%50)).Err(); err != nil {
			t.Fatalf("GET: %v", err)
		}
	}
	replicaGets := 0
	for _, n := range rc.Nodes {
		role, _ := n.Do("ROLE")
		if r, ok := role.([]any); ok && r[0] == "slave" {
			stats, _ := n.Client().Info(ctx, "commandstats").Result()
			if i := strings.Index(stats, "cmdstat_get:calls="); i >= 0 {
				n, _ := strconv.Atoi(strings.SplitN(stats[i+len("cmdstat_get:calls="):], ",", 2)[0])
				replicaGets += n
			}
		}
	}
	if replicaGets == 0 {
		t.Fatalf("no GET reached a replica with read_from_slave = true")
	}
	t.Logf("%d of 300 GETs served by replicas", replicaGets)
}
