package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

// env is a proxy cluster in front of real redis-servers.
type env struct {
	servers []*redistest.Server
	cluster *proxy.Cluster
	addr    string
	client  *redis.Client
}

type envOpts struct {
	nodes       int
	readTimeout time.Duration
	metrics     *proxy.Metrics
	users       map[string]string
	maxConns    int
	idle        time.Duration
	serverArgs  []string // extra redis-server arguments (e.g. requirepass)
	backendPass string
	slowMax     int
	slowOver    time.Duration
	logs        io.Writer // also receives the cluster's log (Warn and above)
	resp3       bool      // backend connections speak RESP3
	outLimit    int       // client output limit (bytes); 0: the default
	clientCache route.ClientCacheSpec
}

func testLogger(t testing.TB) hclog.Logger { return testlog.New(t, t.Name(), hclog.Warn) }

func startEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 3
	}
	if o.readTimeout == 0 {
		o.readTimeout = 2 * time.Second
	}
	e := &env{}
	// Registered first, so it runs last: after the proxy and the clients are closed, every
	// goroutine they started (sessions, backend readers and writers, watchdogs) must be gone.
	baseline := runtime.NumGoroutine()
	t.Cleanup(func() { checkNoLeak(t, baseline) })
	var nodes []route.Node
	for i := 0; i < o.nodes; i++ {
		s := redistest.Start(t, o.serverArgs...)
		e.servers = append(e.servers, s)
		nodes = append(nodes, route.Node{Addr: s.Addr, Name: "r" + strconv.Itoa(i+1), Weight: 1})
	}
	logger := testLogger(t)
	if o.logs != nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: io.MultiWriter(testlog.Writer(t), o.logs)})
	}
	e.cluster = proxy.MustCluster(t, route.ClusterSpec{Name: "test",
		Listen:  route.ListenSettings{Addr: "127.0.0.1:0"},
		Access:  route.AccessSettings{Users: o.users, MaxConnections: o.maxConns, IdleTimeout: o.idle, ClientOutputLimit: o.outLimit},
		Backend: route.BackendSettings{ReadTimeout: o.readTimeout, WriteTimeout: time.Second, DialTimeout: time.Second, BackendPassword: o.backendPass, BackendRESP3: o.resp3},
		Live:    route.LiveSettings{SlowLogMaxLen: o.slowMax, SlowLogSlowerThan: o.slowOver, ClientCache: o.clientCache}},
		proxy.Env{Logger: logger, Metrics: o.metrics})
	e.install(t, 1, nodes)
	if err := e.cluster.Listen(); err != nil {
		t.Fatal(err)
	}
	go e.cluster.Serve()
	t.Cleanup(e.cluster.Close)
	e.addr = e.cluster.Addr().String()
	copts := &redis.Options{Addr: e.addr, MaxRetries: -1, PoolSize: 4}
	if p, ok := o.users["default"]; ok {
		copts.Password = p
	}
	e.client = redis.NewClient(copts)
	t.Cleanup(func() { e.client.Close() })
	return e
}

func (e *env) install(t testing.TB, version uint64, nodes []route.Node) *route.Ring {
	t.Helper()
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing(nodes, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cluster.Update(&route.Table{Version: version, Ring: ring}); err != nil {
		t.Fatal(err)
	}
	return ring
}

// rawConn is a plain TCP client for byte-exact protocol checks.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (e *env) raw(t testing.TB) *rawConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// line reads one reply line (without CRLF).
func (r *rawConn) line() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

var ctx = context.Background()

// checkNoLeak waits (bounded) for the goroutine count to fall back to baseline and fails the
// test with the goroutines' stacks when it does not.
func checkNoLeak(t testing.TB, baseline int) {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("%d goroutines left, %d before the test:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKeysSpreadOverEveryNodeOnce(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 4})
	const n = 2000
	for i := 0; i < n; i++ {
		if err := e.client.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	total := int64(0)
	for _, s := range e.servers {
		size, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size < n/10 {
			t.Errorf("node %s holds %d of %d keys: not spread", s.Addr, size, n)
		}
		total += size
	}
	if total != n {
		t.Fatalf("nodes hold %d keys in all, want %d (a key doubled or lost)", total, n)
	}
	for i := 0; i < n; i += 97 {
		v, err := e.client.Get(ctx, fmt.Sprintf("key:%d", i)).Result()
		if err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET key:%d = %q, %v", i, v, err)
		}
	}
}

func TestMultiKeyCommandsAcrossNodes(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	var kv []any
	var keys []string
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("mk:%d", i)
		keys = append(keys, k)
		if i%3 != 2 { // every third key stays missing
			kv = append(kv, k, "v"+strconv.Itoa(i))
		}
	}
	if err := e.client.MSet(ctx, kv...).Err(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	vals, err := e.client.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatalf("MGET: %v", err)
	}
	for i, v := range vals {
		if i%3 == 2 {
			if v != nil {
				t.Errorf("MGET[%d] = %v, want nil", i, v)
			}
		} else if v != "v"+strconv.Itoa(i) {
			t.Errorf("MGET[%d] = %v, want v%d", i, v, i)
		}
	}
	if n, err := e.client.Exists(ctx, append(keys, keys[0])...).Result(); err != nil || n != 21 {
		t.Errorf("EXISTS = %d, %v; want 21 (20 present + 1 repeated)", n, err)
	}
	if n, err := e.client.Touch(ctx, keys...).Result(); err != nil || n != 20 {
		t.Errorf("TOUCH = %d, %v; want 20", n, err)
	}
	if n, err := e.client.Del(ctx, keys[:15]...).Result(); err != nil || n != 10 {
		t.Errorf("DEL = %d, %v; want 10", n, err)
	}
	if n, err := e.client.Unlink(ctx, keys...).Result(); err != nil || n != 10 {
		t.Errorf("UNLINK = %d, %v; want 10", n, err)
	}
	if n, err := e.client.Exists(ctx, keys...).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after DEL = %d, %v; want 0", n, err)
	}
	// A wrong type on one node: the client sees that node's error.
	e.client.LPush(ctx, "mk:list", "x")
	if err := e.client.MGet(ctx, "mk:1", "mk:list").Err(); err != nil {
		t.Errorf("MGET with a list key: %v (Redis answers nil for it)", err)
	}
}

func TestHashTagsKeepKeysTogether(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 4})
	for i := 0; i < 50; i++ {
		if err := e.client.Set(ctx, fmt.Sprintf("{user42}.f%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	holders := 0
	for _, s := range e.servers {
		if n, _ := s.Client().DBSize(ctx).Result(); n > 0 {
			holders++
			if n != 50 {
				t.Errorf("node %s holds %d tagged keys, want all 50 or none", s.Addr, n)
			}
		}
	}
	if holders != 1 {
		t.Fatalf("tagged keys on %d nodes, want 1", holders)
	}
	if err := e.client.Rename(ctx, "{user42}.f1", "{user42}.g1").Err(); err != nil {
		t.Fatalf("RENAME within a tag: %v", err)
	}
	if v, _ := e.client.Get(ctx, "{user42}.g1").Result(); v != "1" {
		t.Fatalf("after RENAME GET = %q", v)
	}
	// Keys on different nodes cannot be renamed into each other: refused, connection kept.
	var a, b string
	ring := e.install(t, 2, nodesOf(e))
	for i := 0; a == "" || b == ""; i++ {
		k := "plain:" + strconv.Itoa(i)
		if ring.Pick([]byte(k)) == 0 && a == "" {
			a = k
		} else if ring.Pick([]byte(k)) == 1 && b == "" {
			b = k
		}
	}
	e.client.Set(ctx, a, "x", 0)
	err := e.client.Rename(ctx, a, b).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("RENAME across nodes: %v, want CROSSSLOT error", err)
	}
	if err := e.client.Ping(ctx).Err(); err != nil {
		t.Fatalf("connection broken after refusal: %v", err)
	}
}

func nodesOf(e *env) []route.Node {
	var nodes []route.Node
	for i, s := range e.servers {
		nodes = append(nodes, route.Node{Addr: s.Addr, Name: "r" + strconv.Itoa(i+1), Weight: 1})
	}
	return nodes
}

func TestTenThousandPipelinedCommandsInOrder(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	rc := e.raw(t)
	const n = 10000
	var b strings.Builder
	for i := 0; i < n; i++ {
		k, v := "p:"+strconv.Itoa(i), strconv.Itoa(i*7)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		fmt.Fprintf(&b, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
	}
	go rc.send(b.String()) // one write; replies are read concurrently
	for i := 0; i < n; i++ {
		if got := rc.line(); got != "+OK" {
			t.Fatalf("reply %d to SET = %q", i, got)
		}
		want := strconv.Itoa(i * 7)
		if got := rc.line(); got != "$"+strconv.Itoa(len(want)) {
			t.Fatalf("reply %d to GET header = %q", i, got)
		}
		if got := rc.line(); got != want {
			t.Fatalf("reply %d to GET = %q, want %q (out of order)", i, got, want)
		}
	}
}

func TestErrorsKeepTheConnection(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	rc := e.raw(t)
	cases := []struct{ send, want string }{
		{"*2\r\n$6\r\nFOOBAR\r\n$1\r\nx\r\n", "-ERR unknown command 'FOOBAR', with args beginning with: 'x' "},
		{"*3\r\n$4\r\nMOVE\r\n$1\r\nk\r\n$1\r\n1\r\n", "-ERR move is not supported by the proxy"},
		{"*1\r\n$7\r\nMONITOR\r\n", "-ERR monitor is not supported by the proxy"},
		{"*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'get' command"},
		{"*1\r\n$4\r\nEXEC\r\n", "-ERR EXEC without MULTI"},
		{"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n", "-ERR wait is not supported by the proxy"},
		{"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n", "-ERR DB index is out of range"},
		{"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", "+OK"},
		{"PING\r\n", "+PONG"},
		{"set inl \"a b\"\r\n", "+OK"},
		{"*2\r\n$6\r\nMEMORY\r\n$5\r\nSTATS\r\n", "-ERR 'memory' without keys cannot be routed by the proxy"},
	}
	for _, c := range cases {
		rc.send(c.send)
		if got := rc.line(); got != c.want {
			t.Errorf("%q: got %q, want %q", c.send, got, c.want)
		}
	}
	rc.send("GET inl\r\n")
	if h, v := rc.line(), rc.line(); h != "$3" || v != "a b" {
		t.Errorf("GET inl = %q %q", h, v)
	}
	rc.send("*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n")
	if h, v := rc.line(), rc.line(); h != "$5" || v != "hello" {
		t.Errorf("ECHO = %q %q", h, v)
	}
}

func TestProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	good := e.raw(t)
	bad := e.raw(t)
	bad.send("*1\r\n$abc\r\n")
	if got := bad.line(); got != "-ERR Protocol error: invalid bulk length" {
		t.Fatalf("got %q", got)
	}
	if _, err := bad.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after protocol error: %v", err)
	}
	good.send("PING\r\n")
	if got := good.line(); got != "+PONG" {
		t.Fatalf("other client: %q", got)
	}
}

func TestLocalCommands(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	info, err := e.client.Info(ctx).Result()
	if err != nil || !strings.Contains(info, "proxy:aster") || !strings.Contains(info, "cluster:test") {
		t.Errorf("INFO = %q, %v", info, err)
	}
	n, err := e.client.Do(ctx, "COMMAND", "COUNT").Int64()
	if err != nil || n < 100 {
		t.Errorf("COMMAND COUNT = %d, %v", n, err)
	}
	cmds, err := e.client.Command(ctx).Result()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	if g := cmds["get"]; g == nil || g.Arity != 2 || !g.ReadOnly || g.FirstKeyPos != 1 {
		t.Errorf("COMMAND get = %+v", g)
	}
	if _, ok := cmds["monitor"]; ok {
		t.Errorf("COMMAND lists monitor, which the proxy refuses")
	}
	keys, err := e.client.Do(ctx, "COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2").StringSlice()
	if err != nil || strings.Join(keys, ",") != "a,b" {
		t.Errorf("COMMAND GETKEYS = %v, %v", keys, err)
	}
	err = e.client.Do(ctx, "AUTH", "x").Err()
	if err == nil || !strings.Contains(err.Error(), "without any password configured") {
		t.Errorf("AUTH = %v", err)
	}
}

func TestQuitClosesAfterReply(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send("PING\r\nQUIT\r\nPING\r\n")
	if a, b := rc.line(), rc.line(); a != "+PONG" || b != "+OK" {
		t.Fatalf("got %q %q", a, b)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection open after QUIT: %v", err)
	}
}
