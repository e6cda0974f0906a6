package proxy_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// infoField reads one INFO field of a real server, over the server's monitoring client (one
// connection, so that counting clients does not add any).
func infoField(t *testing.T, s *redistest.Server, field string) int {
	t.Helper()
	mu.Lock()
	c := monitors[s]
	if c == nil {
		c = s.Client()
		monitors[s] = c
	}
	mu.Unlock()
	info, err := c.Info(ctx, "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

var (
	mu       sync.Mutex
	monitors = map[*redistest.Server]*redis.Client{}
)

// waitField waits until a server's INFO field has the wanted value.
func waitField(t *testing.T, s *redistest.Server, field string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for infoField(t, s, field) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s %s = %d, want %d", s.Addr, field, infoField(t, s, field), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBlockingPopReleasedByPush: BLPOP waits on a connection of its own, after the replies
// before it were written; meanwhile the shared connection to the same node keeps serving other
// clients, an RPUSH from one of them releases it, and the commands the client pipelined after
// BLPOP are answered after it, in order.
func TestBlockingPopReleasedByPush(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send(cmdFrame("SET", "before", "1") + cmdFrame("BLPOP", "q", "0") + cmdFrame("GET", "before"))
	if got := rc.line(); got != "+OK" {
		t.Fatalf("reply before BLPOP = %q", got)
	}
	waitField(t, e.servers[0], "blocked_clients", 1)
	start := time.Now()
	for i := 0; i < 20; i++ { // the shared pipeline to the blocked node is not stalled
		if err := e.client.Set(ctx, "other", i, 0).Err(); err != nil {
			t.Fatalf("SET while another client blocks: %v", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 SETs took %v while a client blocked", d)
	}
	rc.send(cmdFrame("GET", "other")) // sent while blocked: kept for after the reply
	if err := e.client.RPush(ctx, "q", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if got := wholeReply(rc); got != "*2\r\n$1\r\nq\r\n$1\r\nx\r\n" {
		t.Fatalf("BLPOP = %q", got)
	}
	if got := wholeReply(rc); got != "$1\r\n1\r\n" {
		t.Fatalf("GET after BLPOP = %q", got)
	}
	if got := wholeReply(rc); got != "$2\r\n19\r\n" {
		t.Fatalf("GET sent while blocked = %q", got)
	}
	// The dedicated connection is kept for the next blocking command: no new connection.
	conns := infoField(t, e.servers[0], "connected_clients")
	rc.send(cmdFrame("BRPOP", "q", "0.1"))
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BRPOP on an empty list = %q", got)
	}
	if n := infoField(t, e.servers[0], "connected_clients"); n != conns {
		t.Errorf("connected clients %d after a second blocking command, %d before", n, conns)
	}
}

// TestBlockingTimeout: the command's own timeout governs, not read_timeout (shorter here) nor
// the client idle timeout; a blocking command whose keys are on two nodes is refused.
func TestBlockingTimeout(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2, readTimeout: 150 * time.Millisecond, idle: 2 * time.Second})
	rc := e.raw(t)
	start := time.Now()
	rc.send(cmdFrame("BLPOP", "empty", "2.5"))
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BLPOP timed out = %q, want a null array", got)
	}
	if d := time.Since(start); d < 2400*time.Millisecond || d > 4*time.Second {
		t.Fatalf("BLPOP 2.5 answered after %v", d)
	}
	rc.send(cmdFrame("BZPOPMIN", "z", "0.2") + cmdFrame("XREAD", "BLOCK", "200", "STREAMS", "s", "$") + "PING\r\n")
	for _, want := range []string{"*-1\r\n", "*-1\r\n", "+PONG\r\n"} {
		if got := wholeReply(rc); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	ring := e.install(t, 2, nodesOf(e))
	a, b := keyOn(t, ring, 0, "a"), keyOn(t, ring, 1, "b")
	rc.send(cmdFrame("BLPOP", a, b, "0"))
	if got := rc.line(); got != "-CROSSSLOT Keys in request don't hash to the same node (use hash tags)" {
		t.Fatalf("BLPOP across nodes = %q", got)
	}
	rc.send(cmdFrame("BLPOP", "{t}"+a, "{t}"+b, "0.1"))
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BLPOP with a hash tag = %q", got)
	}
}

// TestBlockingClientDisconnectReleases: a client that leaves while blocked releases the node's
// connection at once (nothing is popped for it afterwards), and its session ends.
func TestBlockingClientDisconnectReleases(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	srv := e.servers[0]
	before := infoField(t, srv, "connected_clients")
	rc := e.raw(t)
	rc.send(cmdFrame("BLPOP", "gone", "0"))
	waitField(t, srv, "blocked_clients", 1)
	rc.nc.Close()
	waitField(t, srv, "blocked_clients", 0)
	waitField(t, srv, "connected_clients", before)
	if err := e.client.RPush(ctx, "gone", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := e.client.LLen(ctx, "gone").Result(); err != nil || n != 1 {
		t.Fatalf("LLEN after the blocked client left = %d, %v; want 1 (nothing popped)", n, err)
	}
}

// TestBlockingNodeFailure: a dedicated connection that fails answers an error, and the next
// blocking command dials a new one.
func TestBlockingNodeFailure(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send(cmdFrame("BLPOP", "k", "0"))
	waitField(t, e.servers[0], "blocked_clients", 1)
	if err := e.servers[0].Client().ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	if got := rc.line(); !strings.HasPrefix(got, "-ERR backend "+e.servers[0].Addr+": ") {
		t.Fatalf("BLPOP on a killed connection = %q", got)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		e.client.RPush(ctx, "k", "v")
	}()
	rc.send(cmdFrame("BLPOP", "k", "5"))
	if got := wholeReply(rc); got != "*2\r\n$1\r\nk\r\n$1\r\nv\r\n" {
		t.Fatalf("BLPOP after the failure = %q", got)
	}
}

// TestXReadWithAndWithoutBlock: XREAD without BLOCK is an ordinary pipelined read; with
// BLOCK it waits for an XADD from another client.
func TestXReadWithAndWithoutBlock(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	if err := e.client.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"f", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	rc := e.raw(t)
	rc.send(cmdFrame("XREAD", "COUNT", "1", "STREAMS", "st", "0"))
	if got := wholeReply(rc); !strings.Contains(got, "1-1") {
		t.Fatalf("XREAD = %q", got)
	}
	rc.send(cmdFrame("XREAD", "BLOCK", "0", "STREAMS", "st", "$"))
	time.Sleep(100 * time.Millisecond)
	if err := e.client.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "2-1", Values: []string{"f", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := wholeReply(rc); !strings.Contains(got, "2-1") || strings.Contains(got, "1-1") {
		t.Fatalf("XREAD BLOCK = %q", got)
	}
}

// TestBlockedClientDoesNotHoldShutdown: draining the cluster ends a blocked client's session
// at once (its node connection released) instead of waiting for the grace period.
func TestBlockedClientDoesNotHoldShutdown(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send(cmdFrame("PING") + cmdFrame("BLPOP", "k", "0"))
	if got := rc.line(); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	waitField(t, e.servers[0], "blocked_clients", 1)
	start := time.Now()
	e.cluster.Drain()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Drain took %v with a blocked client", d)
	}
	waitField(t, e.servers[0], "blocked_clients", 0)
	if _, err := rc.br.ReadByte(); err == nil {
		t.Fatal("blocked client still connected after Drain")
	}
}

// TestDedicatedConnectionClosedWhenNodeLeaves: a session keeps its dedicated connection for
// reuse, and closes it once the routing table no longer names its node.
func TestDedicatedConnectionClosedWhenNodeLeaves(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	ring := e.install(t, 2, nodesOf(e))
	k := keyOn(t, ring, 0, "a")
	before := infoField(t, e.servers[0], "connected_clients")
	rc := e.raw(t)
	rc.send(cmdFrame("BLPOP", k, "0.05"))
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BLPOP = %q", got)
	}
	if n := infoField(t, e.servers[0], "connected_clients"); n != before+1 {
		t.Fatalf("%d clients on the node after BLPOP, want %d (the dedicated connection kept)", n, before+1)
	}
	e.install(t, 3, nodesOf(e)[1:])
	rc.send(cmdFrame("BLPOP", k, "0.05"))
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BLPOP on the new table = %q", got)
	}
	waitField(t, e.servers[0], "connected_clients", before)
}

// TestBlockedClientPipelinesMore: a blocked client that keeps sending (more than the proxy
// buffers meanwhile) gets every reply, in order, once it is released.
func TestBlockedClientPipelinesMore(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send(cmdFrame("BLPOP", "more", "0"))
	waitField(t, e.servers[0], "blocked_clients", 1)
	const n = 300000 // 1.8 MB of PINGs and ECHOs: past what is read while blocked
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			b.WriteString(cmdFrame("ECHO", strconv.Itoa(i)))
		} else {
			b.WriteString("PING\r\n")
		}
	}
	go func() { _, _ = rc.nc.Write([]byte(b.String())) }()
	time.Sleep(200 * time.Millisecond)
	if err := e.client.RPush(ctx, "more", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if got := wholeReply(rc); got != "*2\r\n$4\r\nmore\r\n$1\r\nv\r\n" {
		t.Fatalf("BLPOP = %q", got)
	}
	for i := 0; i < n; i++ {
		want := "+PONG\r\n"
		if i%1000 == 0 {
			want = bulk(strconv.Itoa(i))
		}
		if got := wholeReply(rc); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}
