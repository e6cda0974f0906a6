package e2e

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// modeEnv is asterd in front of real servers, in one of the two modes.
type modeEnv struct {
	a       *asterd
	servers []*redistest.Server // every server behind asterd
	cluster bool
	// apart are two keys that must not be together: on two nodes (standalone), in two slots
	// (cluster), with the error a command holding both gets.
	apart    [2]string
	crossMsg string
}

// bothModes runs f against asterd in front of three plain redis-servers (read_timeout 300ms)
// and in front of a real three-master Redis Cluster (read_timeout 1s).
func bothModes(t *testing.T, f func(t *testing.T, e *modeEnv)) {
	t.Run("standalone", func(t *testing.T) {
		servers := startServers(t, 3)
		a := startAsterd(t, `
[[clusters]]
name = "plain"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
read_timeout = 300
`)
		e := &modeEnv{a: a, servers: servers, crossMsg: "CROSSSLOT Keys in request don't hash to the same node (use hash tags)"}
		e.apart = apartKeys(t, a.client(t), servers)
		f(t, e)
	})
	t.Run("cluster", func(t *testing.T) {
		rc := redistest.StartCluster(t, 3, 0)
		a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
		waitServing(t, a.client(t), 10*time.Second)
		// Slots 15495 and 3300: on two different masters of three.
		e := &modeEnv{a: a, servers: rc.Nodes, cluster: true, apart: [2]string{"{a}.k", "{b}.k"},
			crossMsg: "CROSSSLOT Keys in request don't hash to the same slot"}
		f(t, e)
	})
}

// apartKeys finds two keys that asterd puts on different servers.
func apartKeys(t *testing.T, c *redis.Client, servers []*redistest.Server) [2]string {
	t.Helper()
	var keys [2]string
	first := -1
	for i := 0; i < 100; i++ {
		k := spreadKey("apart:", i)
		if err := c.Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		holder := -1
		for j, s := range servers {
			if n, _ := s.Client().Exists(ctx, k).Result(); n == 1 {
				holder = j
			}
		}
		c.Del(ctx, k)
		switch {
		case first < 0:
			keys[0], first = k, holder
		case holder != first:
			keys[1] = k
			return keys
		}
	}
	t.Fatal("no two keys on different servers")
	return keys
}

// blocked sums the servers' blocked clients.
func (e *modeEnv) blocked(t *testing.T) int {
	t.Helper()
	total := 0
	for _, s := range e.servers {
		info, err := s.Do("INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info.(string), "\r\n") {
			if v, ok := strings.CutPrefix(l, "blocked_clients:"); ok {
				n, _ := strconv.Atoi(v)
				total += n
			}
		}
	}
	return total
}

func (e *modeEnv) waitBlocked(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.blocked(t) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients blocked on the servers, want %d", e.blocked(t), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBlockingCommands: BLPOP is released by an RPUSH from another client while the shared
// connections keep serving, times out on its own timeout (longer than read_timeout), is
// refused across nodes/slots, and a client that disconnects while blocked releases the
// server's connection — in both modes.
func TestBlockingCommands(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, e *modeEnv) {
		c, other := e.a.client(t), e.a.client(t)

		type result struct {
			vals []string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			v, err := c.BLPop(ctx, 0, "{q}.jobs").Result()
			done <- result{v, err}
		}()
		e.waitBlocked(t, 1)
		for i := 0; i < 50; i++ { // the shared pipeline does not wait behind BLPOP
			if err := other.Set(ctx, "{q}.other", i, 0).Err(); err != nil {
				t.Fatalf("SET while a client blocks: %v", err)
			}
		}
		select {
		case r := <-done:
			t.Fatalf("BLPOP returned before any push: %v %v", r.vals, r.err)
		default:
		}
		if err := other.RPush(ctx, "{q}.jobs", "job1").Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.err != nil || len(r.vals) != 2 || r.vals[0] != "{q}.jobs" || r.vals[1] != "job1" {
				t.Fatalf("BLPOP = %v, %v", r.vals, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("BLPOP not released by RPUSH")
		}

		start := time.Now()
		err := c.BLPop(ctx, 2*time.Second, "{q}.empty").Err()
		if !errors.Is(err, redis.Nil) {
			t.Fatalf("BLPOP on an empty list: %v, want a timeout (nil)", err)
		}
		if d := time.Since(start); d < 1900*time.Millisecond || d > 5*time.Second {
			t.Fatalf("BLPOP with timeout 2s answered after %v", d)
		}
		if err := c.BLPop(ctx, time.Second, e.apart[0], e.apart[1]).Err(); err == nil || err.Error() != e.crossMsg {
			t.Fatalf("BLPOP across nodes: %v, want %q", err, e.crossMsg)
		}
		// Other blocking commands, released the same way.
		go func() {
			time.Sleep(200 * time.Millisecond)
			other.ZAdd(ctx, "{q}.z", redis.Z{Score: 1, Member: "m"})
			other.XAdd(ctx, &redis.XAddArgs{Stream: "{q}.s", ID: "5-1", Values: []string{"f", "v"}})
		}()
		if z, err := c.BZPopMin(ctx, 5*time.Second, "{q}.z").Result(); err != nil || z.Member != "m" {
			t.Fatalf("BZPOPMIN = %v, %v", z, err)
		}
		if s, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{"{q}.s", "0"}, Block: 5 * time.Second}).Result(); err != nil || s[0].Messages[0].ID != "5-1" {
			t.Fatalf("XREAD BLOCK = %v, %v", s, err)
		}

		// A client that leaves while blocked releases the server at once.
		nc, err := net.Dial("tcp", e.a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write([]byte("*3\r\n$5\r\nBLPOP\r\n$8\r\n{q}.gone\r\n$1\r\n0\r\n")); err != nil {
			t.Fatal(err)
		}
		e.waitBlocked(t, 1)
		nc.Close()
		e.waitBlocked(t, 0)
		other.RPush(ctx, "{q}.gone", "v")
		if n, err := other.LLen(ctx, "{q}.gone").Result(); err != nil || n != 1 {
			t.Fatalf("LLEN after the blocked client left = %d, %v; want 1 (nothing popped for it)", n, err)
		}
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("asterd after the blocked client left: %v", err)
		}
	})
}

// TestClusterBlockingAndTransactionFollowMoved: when a slot moved and asterd's slot map is
// stale (fetch is long here), a blocking command and a transaction sent to the old owner
// follow its MOVED to the new one on a dedicated connection there.
func TestClusterBlockingAndTransactionFollowMoved(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	q := make([]string, len(rc.Seeds()))
	for i, s := range rc.Seeds() {
		q[i] = strconv.Quote(s)
	}
	a := startAsterd(t, `
[[clusters]]
name = "rc"
listen_addr = "%LISTEN%"
cache_type = "redis_cluster"
servers = [`+strings.Join(q, ", ")+`]
fetch = 600
`)
	c, other := a.client(t), a.client(t)
	waitServing(t, c, 10*time.Second)
	move := func(key string) *redistest.Server {
		t.Helper()
		slot := int(route.Slot([]byte(key)))
		src := rc.MasterOf(slot)
		var dst *redistest.Server
		for _, n := range rc.Nodes {
			if n != src {
				dst = n
				break
			}
		}
		dstID, err := dst.Do("CLUSTER", "MYID")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range append([]*redistest.Server{dst, src}, rc.Nodes...) {
			if _, err := n.Do("CLUSTER", "SETSLOT", slot, "NODE", dstID); err != nil {
				t.Fatalf("SETSLOT on %s: %v", n.Addr, err)
			}
		}
		return dst
	}

	dst := move("{mv1}")
	done := make(chan error, 1)
	go func() {
		v, err := c.BLPop(ctx, 0, "{mv1}.l").Result()
		if err == nil && (len(v) != 2 || v[1] != "x") {
			err = fmt.Errorf("BLPOP = %v", v)
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := dst.Do("INFO", "clients")
		if err == nil && strings.Contains(info.(string), "blocked_clients:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BLPOP not blocked on the slot's new owner %s", dst.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := other.RPush(ctx, "{mv1}.l", "x").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BLPOP not released")
	}

	dst = move("{mv2}")
	var incr *redis.IntCmd
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{mv2}.a", "1", 0)
		incr = p.Incr(ctx, "{mv2}.a")
		return nil
	}); err != nil || incr.Val() != 2 {
		t.Fatalf("transaction on a moved slot: %v, INCR %d", err, incr.Val())
	}
	if v, err := dst.Do("GET", "{mv2}.a"); err != nil || v != "2" {
		t.Fatalf("new owner has {mv2}.a = %v, %v", v, err)
	}
}

// TestBlockingAndTransactionOverTLS: with TLS on both sides, dedicated connections speak TLS
// to the servers, and a blocked client's TLS connection survives the watch being stopped by a
// read deadline: it is served normally afterwards.
func TestBlockingAndTransactionOverTLS(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	servers := []*redistest.Server{redistest.StartTLS(t, certs), redistest.StartTLS(t, certs)}
	a := startAsterd(t, `
[[clusters]]
name = "tls"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
tls_cert_file = `+strconv.Quote(certs.CertFile)+`
tls_key_file = `+strconv.Quote(certs.KeyFile)+`
backend_tls = true
backend_tls_ca_file = `+strconv.Quote(certs.CAFile)+`
`)
	c := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, PoolSize: 1, TLSConfig: certs.ClientTLS(t, false)})
	defer c.Close()
	other := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, TLSConfig: certs.ClientTLS(t, false)})
	defer other.Close()
	// Connections the servers accepted: the shared ones are dialled by the first GET, the
	// dedicated one by the first BLPOP; the later BLPOP and MULTI/EXEC reuse it from the pool.
	accepted := func() (n int) {
		for _, s := range servers {
			direct := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, TLSConfig: certs.ClientTLS(t, false)})
			info, err := direct.Info(ctx, "stats").Result()
			direct.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(info, "\r\n") {
				if v, ok := strings.CutPrefix(l, "total_connections_received:"); ok {
					k, _ := strconv.Atoi(v)
					n += k - 1 // this INFO's own connection
				}
			}
		}
		return n
	}
	if err := other.Get(ctx, "{t}.x").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET over TLS: %v", err)
	}
	if err := c.BLPop(ctx, time.Second, "{t}.l").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP timing out over TLS: %v", err)
	}
	before := accepted()
	go func() {
		time.Sleep(300 * time.Millisecond)
		other.RPush(ctx, "{t}.l", "v")
	}()
	if v, err := c.BLPop(ctx, 5*time.Second, "{t}.l").Result(); err != nil || v[1] != "v" {
		t.Fatalf("BLPOP released over TLS: %v, %v", v, err)
	}
	var incr *redis.IntCmd
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, "{t}.n")
		return nil
	}); err != nil || incr.Val() != 1 {
		t.Fatalf("MULTI/EXEC over TLS: %v, %d", err, incr.Val())
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("same connection after blocking: %v", err)
	}
	// Each accepted() call adds its own connection per server, counted once already.
	if got := accepted() - before - len(servers); got != 0 {
		t.Errorf("%d new node connections for a BLPOP and a transaction after the first BLPOP; the pooled TLS connection should serve them", got)
	}
}

// TestBlockedClientFollowsFailover: a client blocked in BLPOP on a master that a failover
// turns replica is not told UNBLOCKED (Redis's word to its own clients then): the command was
// not served, so asterd sends it to the new master, where the push that comes later releases
// it.
func TestBlockedClientFollowsFailover(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	c, other := a.client(t), a.client(t)
	waitServing(t, c, 10*time.Second)
	master := rc.MasterOf(0)
	replica := replicaOf(t, rc, master)
	key := keyOn(t, rc, master)
	done := make(chan error, 1)
	go func() {
		v, err := c.BLPop(ctx, 20*time.Second, key).Result()
		if err == nil && (len(v) != 2 || v[1] != "x") {
			err = fmt.Errorf("BLPOP = %v", v)
		}
		done <- err
	}()
	waitInfo(t, master, "INFO clients", "blocked_clients:1")
	if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
		t.Fatal(err)
	}
	waitMaster(t, rc, 0, replica, 20*time.Second)
	select {
	case err := <-done:
		t.Fatalf("BLPOP ended with the failover: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	waitInfo(t, replica, "INFO clients", "blocked_clients:1") // blocked again, on the new master
	if err := other.RPush(ctx, key, "x").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("BLPOP across the failover: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("BLPOP not released by the push")
	}
}
