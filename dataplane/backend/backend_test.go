package backend_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

func do(t *testing.T, c *backend.Conn, args ...string) string {
	t.Helper()
	var wg sync.WaitGroup
	var r backend.Request
	r.Bind(&wg)
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	wg.Add(1)
	c.Send(&r, resp.AppendCommand(nil, bargs...))
	c.Flush()
	wg.Wait()
	return string(r.Reply)
}

// released is closed once wg is released.
func released(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// TestRESP3PushesSkipped: a RESP3 connection says HELLO 3 first, and a push message the node
// sends between replies (here a client-tracking invalidation) is not taken as a reply: every
// request still gets its own, on the same connection (a push taken for a reply would either
// answer the wrong request or, with none waiting, reset the connection).
func TestRESP3PushesSkipped(t *testing.T) {
	srv := redistest.Start(t)
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, RESP3: true})
	defer c.Close()
	if !c.RESP3() {
		t.Fatal("RESP3() false")
	}
	do(t, c, "HSET", "h", "a", "1")
	if got := do(t, c, "HGETALL", "h"); got != "%1\r\n$1\r\na\r\n$1\r\n1\r\n" {
		t.Fatalf("HGETALL over RESP3: %q", got)
	}
	if got := do(t, c, "CLIENT", "TRACKING", "on"); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING: %q", got)
	}
	id := do(t, c, "CLIENT", "ID")
	do(t, c, "SET", "k", "v1")
	do(t, c, "GET", "k") // now tracked
	other := redistest.DialFrames(t, srv.Addr)
	other.Do("SET", "k", "v2") // the node pushes an invalidation to c
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if got := do(t, c, "GET", "k"); got != "$2\r\nv2\r\n" {
			t.Fatalf("GET after a push: %q", got)
		}
		other.Do("SET", "k", "v2")
	}
	if got := do(t, c, "PING"); !strings.HasPrefix(got, "+PONG") {
		t.Fatalf("PING: %q", got)
	}
	if got := do(t, c, "CLIENT", "ID"); got != id {
		t.Fatalf("connection changed (client id %q, then %q): a push reset it", id, got)
	}
}

// TestRESP3RefusedHello: a node that refuses HELLO 3 fails the dial with its message.
func TestRESP3RefusedHello(t *testing.T) {
	srv := redistest.Start(t, "--rename-command", "HELLO", "")
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, RESP3: true})
	defer c.Close()
	if got := do(t, c, "PING"); !strings.Contains(got, "unknown command") {
		t.Fatalf("PING through a node without HELLO: %q", got)
	}
}

type latencies struct {
	mu sync.Mutex
	v  []float64
}

func (l *latencies) ObserveDurationN(d time.Duration, n int) {
	l.mu.Lock()
	for range n {
		l.v = append(l.v, d.Seconds())
	}
	l.mu.Unlock()
}

// TestLatencyObservedFromWrite: every reply, plain or behind a prefix (ASKING after an ASK
// redirect), observes the time since its request went out: a few milliseconds at most on
// loopback, never the time since the zero time an unstamped request would give.
func TestLatencyObservedFromWrite(t *testing.T) {
	srv := redistest.Start(t)
	lat := &latencies{}
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, Latency: lat})
	defer c.Close()
	do(t, c, "SET", "k", "v")
	var wg sync.WaitGroup
	var r, prefix, other backend.Request
	r.Bind(&wg)
	prefix.Bind(&wg)
	other.Bind(&wg)
	wg.Add(3)
	c.SendPrefixed(&r, &prefix, resp.AppendCommand(nil, []byte("PING")), resp.AppendCommand(nil, []byte("GET"), []byte("k")))
	c.Send(&other, resp.AppendCommand(nil, []byte("GET"), []byte("k")))
	c.Flush()
	wg.Wait()
	if string(r.Reply) != "$1\r\nv\r\n" || string(prefix.Reply) != "+PONG\r\n" || string(other.Reply) != "$1\r\nv\r\n" {
		t.Fatalf("replies %q %q %q", prefix.Reply, r.Reply, other.Reply)
	}
	lat.mu.Lock()
	defer lat.mu.Unlock()
	if len(lat.v) != 4 {
		t.Fatalf("%d latencies observed for 4 replies: %v", len(lat.v), lat.v)
	}
	for _, s := range lat.v {
		if s < 0 || s > 1 {
			t.Fatalf("latency %v s observed: not measured from the write", s)
		}
	}
}

// TestFlushDoesNotWaitForADial: a flush that covers a node still being dialled (here one that
// accepts TCP but never answers the connection's handshake) and a healthy node writes to the healthy
// one at once; the dial holds up only its own node's requests.
func TestFlushDoesNotWaitForADial(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			nc, err := silent.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, nc)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		heldMu.Unlock()
	}()
	srv := redistest.Start(t)
	// The handshake (AUTH) waits up to ReadTimeout for its reply: the dial hangs that long
	// unless the silent server hangs up first.
	slow := backend.New(backend.Options{Addr: silent.Addr().String(), DialTimeout: time.Second, ReadTimeout: 8 * time.Second,
		Password: "pw"})
	defer slow.Close()
	fast := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 10 * time.Second})
	defer fast.Close()

	var slowWG, fastWG sync.WaitGroup
	var slowReq, fastReq backend.Request
	slowReq.Bind(&slowWG)
	fastReq.Bind(&fastWG)
	slowWG.Add(1)
	fastWG.Add(1)
	ping := resp.AppendCommand(nil, []byte("PING"))
	slow.Send(&slowReq, ping)
	fast.Send(&fastReq, ping)
	// The dialling node first: the order that used to hold the other up. A session would flush
	// on its own goroutine; so does this one.
	go backend.FlushAll(slow, fast)

	select {
	case <-released(&fastWG):
	case <-time.After(4 * time.Second):
		t.Fatal("the healthy node's request waited for the other node's dial")
	}
	if string(fastReq.Reply) != "+PONG\r\n" {
		t.Fatalf("healthy node answered %q", fastReq.Reply)
	}
	slowDone := released(&slowWG)
	select {
	case <-slowDone:
		t.Fatalf("the silent node's request finished (%q) although its dial cannot", slowReq.Reply)
	default:
	}
	heldMu.Lock()
	for _, nc := range held {
		nc.Close() // the handshake gets EOF: the dial fails, and with it the request
	}
	heldMu.Unlock()
	<-slowDone
	if !strings.HasPrefix(string(slowReq.Reply), "-ERR backend ") {
		t.Fatalf("the failed dial answered %q", slowReq.Reply)
	}
}

// TestCloseDoesNotWaitForADial: closing a connection whose dial hangs (the node accepts TCP but
// never answers the handshake) ends the dial at once and fails its requests, instead of holding
// Close (a reload, a shutdown) for up to the dial's timeouts.
func TestCloseDoesNotWaitForADial(t *testing.T) {
	addr, accepted := acceptOne(t) // never answered
	c := backend.New(backend.Options{Addr: addr, DialTimeout: 30 * time.Second,
		ReadTimeout: 30 * time.Second, Password: "pw"})
	var wg sync.WaitGroup
	var r backend.Request
	r.Bind(&wg)
	wg.Add(1)
	c.Send(&r, resp.AppendCommand(nil, []byte("PING")))
	c.Flush()
	held := <-accepted // the dial is now waiting for the handshake's reply
	defer held.Close()

	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the dial in progress")
	}
	wg.Wait()
	if !strings.HasPrefix(string(r.Reply), "-ERR backend ") {
		t.Fatalf("the request of the abandoned dial got %q", r.Reply)
	}
}

// TestFlushDoesNotWaitForAFullNode: a flush that covers a node that has stopped reading (its
// socket buffers full) and a healthy node writes to the healthy one at once; only the full
// node's requests wait for it.
func TestFlushDoesNotWaitForAFullNode(t *testing.T) {
	testFlushDoesNotWaitForAFullNode(t, nil, nil)
}

// TestFlushDoesNotWaitForAFullTLSNode: the same with a TLS node, whose writes cannot stop
// half way without waiting: the flusher hands them to a goroutine instead of writing them.
func TestFlushDoesNotWaitForAFullTLSNode(t *testing.T) {
	certs := redistest.GenCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	testFlushDoesNotWaitForAFullNode(t,
		&tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
}

// testFlushDoesNotWaitForAFullNode: a node that stops reading (its socket buffer full) holds
// up neither the flusher nor the other node flushed with it. serverTLS/clientTLS: the full
// node speaks TLS.
func testFlushDoesNotWaitForAFullNode(t *testing.T, serverTLS, clientTLS *tls.Config) {
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := stuck.Accept()
		if err != nil {
			return
		}
		if serverTLS != nil {
			tc := tls.Server(nc, serverTLS)
			if tc.Handshake() != nil {
				nc.Close()
				return
			}
			nc = tc
		}
		accepted <- nc // never read from
	}()
	srv := redistest.Start(t)
	full := backend.New(backend.Options{Addr: stuck.Addr().String(), DialTimeout: time.Second, TLS: clientTLS})
	defer full.Close()
	fast := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 10 * time.Second})
	defer fast.Close()
	// Connect both first, so that the flush below writes rather than dials.
	do(t, fast, "PING")
	var warmWG sync.WaitGroup
	var warm backend.Request
	warm.Bind(&warmWG)
	warmWG.Add(1)
	full.Send(&warm, resp.AppendCommand(nil, []byte("PING")))
	full.Flush()
	held := <-accepted
	defer held.Close()

	var fullWG, fastWG sync.WaitGroup
	var big, ping backend.Request
	big.Bind(&fullWG)
	ping.Bind(&fastWG)
	fullWG.Add(1)
	fastWG.Add(1)
	full.Send(&big, resp.AppendCommand(nil, []byte("SET"), []byte("k"), make([]byte, 64<<20)))
	fast.Send(&ping, resp.AppendCommand(nil, []byte("PING")))
	flushed := make(chan struct{})
	go func() {
		backend.FlushAll(full, fast) // the full node first: the order that used to hold the other up
		close(flushed)
	}()

	select {
	case <-released(&fastWG):
	case <-time.After(4 * time.Second):
		t.Fatal("the healthy node's request waited for the full node's write")
	}
	if string(ping.Reply) != "+PONG\r\n" {
		t.Fatalf("healthy node answered %q", ping.Reply)
	}
	select {
	case <-flushed:
	case <-time.After(4 * time.Second):
		t.Fatal("the flusher waited for the full node's write")
	}
	held.Close() // the write fails: the full node's requests fail, nobody else's
	fullWG.Wait()
	warmWG.Wait()
	if !strings.HasPrefix(string(big.Reply), "-ERR backend ") {
		t.Fatalf("the full node's request got %q", big.Reply)
	}
}
