package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/rawio/rawiotest"
)

// waitLoopSessions waits until c's event loops serve n client sessions.
func waitLoopSessions(t *testing.T, c *proxy.Cluster, n int) {
	t.Helper()
	waitLoopCount(t, "client sessions", func() int { s, _ := proxy.LoopCounts(c); return s }, n)
}

// waitLoopBackends waits until c's event loops read n backend connections.
func waitLoopBackends(t *testing.T, c *proxy.Cluster, n int) {
	t.Helper()
	waitLoopCount(t, "backend connections", func() int { _, b := proxy.LoopCounts(c); return b }, n)
}

func waitLoopCount(t *testing.T, what string, count func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("event loops hold %d %s, want %d", count(), what, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// twoLoopClients connects two plain clients that each SET k to v, once both are on loops.
func twoLoopClients(t *testing.T, e *env) (a, b *rawConn) {
	t.Helper()
	a, b = e.raw(t), e.raw(t)
	for _, c := range []*rawConn{a, b} {
		c.send(cmdFrame("SET", "k", "v"))
		if got := c.line(); got != "+OK" {
			t.Fatalf("SET = %q", got)
		}
	}
	waitLoopSessions(t, e.cluster, 2)
	return a, b
}

// Plain TCP clients are served by the event loops. A client moves to a goroutine of its own
// for a blocking command or a transaction, and comes back to a loop once that is over; while
// a WATCH holds its keys it stays on the goroutine.
func TestPlainClientsRunOnEventLoops(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	a, b := twoLoopClients(t, e)

	handOvers := proxy.HandOvers(e.cluster)
	a.send(cmdFrame("BLPOP", "empty", "0.05"))
	if got := a.line(); got != "*-1" {
		t.Fatalf("BLPOP timing out = %q", got)
	}
	if proxy.HandOvers(e.cluster) != handOvers+1 {
		t.Fatal("BLPOP did not move the client to a goroutine")
	}
	waitLoopSessions(t, e.cluster, 2) // back on a loop, its dedicated connection pooled
	a.send(cmdFrame("GET", "k"))
	if got := a.line() + a.line(); got != "$1v" {
		t.Fatalf("GET after the hand-over = %q", got)
	}
	a.send(cmdFrame("LPUSH", "list", "x") + cmdFrame("BLPOP", "list", "1"))
	if got := a.line() + a.line() + a.line() + a.line() + a.line() + a.line(); got != ":1*2$4list$1x" {
		t.Fatalf("LPUSH, BLPOP = %q", got)
	}

	a.send(cmdFrame("WATCH", "k"))
	if got := a.line(); got != "+OK" {
		t.Fatalf("WATCH = %q", got)
	}
	b.send(cmdFrame("SET", "k", "changed")) // b, on its loop, breaks a's watch
	if got := b.line(); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	time.Sleep(20 * time.Millisecond)
	if n, _ := proxy.LoopCounts(e.cluster); n != 1 {
		t.Fatalf("%d loop sessions while a WATCH is open, want 1 (b)", n)
	}
	a.send(cmdFrame("MULTI") + cmdFrame("SET", "k", "mine") + cmdFrame("EXEC"))
	if got := a.line() + a.line() + a.line(); got != "+OK+QUEUED*-1" {
		t.Fatalf("MULTI, SET, EXEC after the watched key changed = %q", got)
	}
	waitLoopSessions(t, e.cluster, 2)
	a.send(cmdFrame("MULTI") + cmdFrame("SET", "k", "mine") + cmdFrame("EXEC") + cmdFrame("GET", "k"))
	if got := a.line() + a.line() + a.line() + a.line() + a.line() + a.line(); got != "+OK+QUEUED*1+OK$4mine" {
		t.Fatalf("MULTI, SET, EXEC, GET = %q", got)
	}
	waitLoopSessions(t, e.cluster, 2)

	a.nc.Close()
	b.nc.Close()
	waitLoopSessions(t, e.cluster, 0)
}

// A client that sends its commands and shuts its side at once (data and FIN may arrive in
// one event) still gets every reply, then the connection closes.
func TestHalfClosedClientIsAnswered(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	for round := range 20 {
		c := e.raw(t)
		c.send("PING\r\n" + cmdFrame("SET", "h", strconv.Itoa(round)) + cmdFrame("GET", "h"))
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(c.br)
		want := "+PONG\r\n+OK\r\n$" + strconv.Itoa(len(strconv.Itoa(round))) + "\r\n" + strconv.Itoa(round) + "\r\n"
		if err != nil || string(all) != want {
			t.Fatalf("round %d: read %q, %v; want %q then EOF", round, all, err, want)
		}
	}
}

// More commands in one write than one batch takes (maxBatch, 1024): the rest is served in
// later batches, in order, with no new input to wake the loop. A big command first grows the
// session's read buffer, so that the short commands after it arrive in one read.
func TestPipelineLongerThanABatch(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	const n = 3000
	c := e.raw(t)
	// 200 KiB grows the session's read buffer to 256 KiB, which it keeps (resp.Reader drops
	// only bigger ones).
	c.send(cmdFrame("SET", "big", strings.Repeat("v", 200<<10)))
	if got := c.line(); got != "+OK" {
		t.Fatalf("SET big = %q", got)
	}
	// Sent on their own, the short commands (~50 KB) arrive at once and in one read that
	// does not fill that buffer: only the batch limit's own wake-up serves the rest.
	var req bytes.Buffer
	for i := range n {
		if i%3 == 0 {
			req.WriteString("PING\r\n") // answered by the proxy itself
		} else {
			req.WriteString(cmdFrame("INCR", "ctr"))
		}
	}
	c.send(req.String())
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second)) // stuck commands fail sooner
	ctr := 0
	for i := range n {
		got := c.line()
		want := "+PONG"
		if i%3 != 0 {
			ctr++
			want = ":" + strconv.Itoa(ctr)
		}
		if got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}

// A command that arrives a few bytes at a time is answered once it is whole.
func TestCommandInPieces(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := e.raw(t)
	frame := cmdFrame("SET", "piece", strings.Repeat("x", 100)) + cmdFrame("GET", "piece")
	for i := 0; i < len(frame); i += 7 {
		c.send(frame[i:min(i+7, len(frame))])
		time.Sleep(time.Millisecond)
	}
	if got := c.line(); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	if got := c.line() + c.line(); got != "$100"+strings.Repeat("x", 100) {
		t.Fatalf("GET = %q", got)
	}
}

// A client that does not read its replies for a while: the loop hands it to a goroutine of its
// own rather than wait, and it gets every byte once it reads.
func TestSlowReaderGetsEveryReply(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	big := strings.Repeat("b", 1<<20)
	if err := e.client.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := e.raw(t)
	c.send("PING\r\n")
	if got := c.line(); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	waitLoopSessions(t, e.cluster, 2) // and e.client's pooled connection
	const n = 16
	c.send(strings.Repeat(cmdFrame("GET", "big"), n))
	time.Sleep(300 * time.Millisecond) // 16 MiB waiting: far more than the socket buffers
	for i := range n {
		if got := c.line(); got != "$"+strconv.Itoa(len(big)) {
			t.Fatalf("reply %d header = %q", i, got)
		}
		if got := c.line(); got != big {
			t.Fatalf("reply %d: %d bytes, not the value", i, len(got))
		}
	}
	c.send("PING\r\n")
	if got := c.line(); got != "+PONG" {
		t.Fatalf("PING after the slow read = %q", got)
	}
	if proxy.HandOvers(e.cluster) == 0 {
		t.Fatal("the loop waited for the slow reader instead of handing it over")
	}
	waitLoopSessions(t, e.cluster, 2) // and c is back on a loop
}

// Closing the cluster ends idle loop clients: a closed socket raises no event of its own.
func TestCloseEndsIdleLoopClients(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := e.raw(t)
	c.send("PING\r\n")
	if got := c.line(); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	done := make(chan struct{})
	go func() {
		e.cluster.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with an idle client connected")
	}
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("client still open after Close")
	}
}

// The loops read the backend connections too; one that fails is given up (no stale
// registration) and its replacement is read by a loop again.
func TestBackendsReadByLoops(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	c := e.raw(t)
	get := func(key string) string {
		t.Helper()
		c.send(cmdFrame("GET", key))
		return c.line()
	}
	var keys []string // enough to land on both nodes
	for i := range 32 {
		keys = append(keys, "key:"+strconv.Itoa(i))
	}
	for _, k := range keys {
		if got := get(k); got != "$-1" {
			t.Fatalf("GET %s = %q", k, got)
		}
	}
	waitLoopBackends(t, e.cluster, 2)

	for _, s := range e.servers {
		if err := s.Client().ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitLoopBackends(t, e.cluster, 0)
	deadline := time.Now().Add(5 * time.Second)
	for _, k := range keys {
		for {
			got := get(k)
			if got == "$-1" {
				break
			}
			if !strings.HasPrefix(got, "-ERR") || time.Now().After(deadline) {
				t.Fatalf("GET %s after the nodes dropped the proxy = %q", k, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLoopBackends(t, e.cluster, 2)
	e.cluster.Close()
	if _, n := proxy.LoopCounts(e.cluster); n != 0 {
		t.Fatalf("%d backend connections still registered after Close", n)
	}
}

// A loop client's socket is watched by its loop's epoll set alone, not also by the Go
// runtime's (rawio.Sock): there every packet would raise a second event for the scheduler to
// collect. A blocking command, or subscribed mode, moves the client to a goroutine, which waits
// through the runtime; back on a loop, the loop alone watches it again. One descriptor per
// client throughout.
func TestLoopClientsOutsideTheRuntimesPoller(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	a, b := twoLoopClients(t, e)
	ino := rawiotest.TCPInode(t, a.nc.RemoteAddr(), a.nc.LocalAddr())
	if ino == 0 {
		t.Fatal("the proxy's socket of the client not found in /proc/self/net/tcp")
	}
	watched := func(when string, sets int) {
		t.Helper()
		if fds := rawiotest.Descriptors(t, ino); len(fds) != 1 {
			t.Fatalf("%s: the client's socket has descriptors %v, want one", when, fds)
		}
		if n := rawiotest.EpollSets(t, ino); n != sets {
			t.Fatalf("%s: the client's socket is in %d epoll sets, want %d", when, n, sets)
		}
	}
	watched("on a loop", 1)

	for round := range 3 {
		handOvers := proxy.HandOvers(e.cluster)
		a.send(cmdFrame("BLPOP", "list", "5"))
		for proxy.HandOvers(e.cluster) == handOvers {
			time.Sleep(time.Millisecond)
		}
		b.send(cmdFrame("LPUSH", "list", "x"))
		if got := b.line(); got != ":1" {
			t.Fatalf("round %d: LPUSH = %q", round, got)
		}
		if got := a.line() + a.line() + a.line() + a.line() + a.line(); got != "*2$4list$1x" {
			t.Fatalf("round %d: BLPOP = %q", round, got)
		}
		waitLoopSessions(t, e.cluster, 2)
		watched(fmt.Sprintf("round %d: back on a loop after BLPOP", round), 1)

		// Subscribed mode: a reader and a writer goroutine, both waiting through the runtime.
		a.send(cmdFrame("SUBSCRIBE", "ch"))
		if got := strings.Join([]string{a.line(), a.line(), a.line(), a.line(), a.line(), a.line()}, " "); got != "*3 $9 subscribe $2 ch :1" {
			t.Fatalf("round %d: SUBSCRIBE = %q", round, got)
		}
		a.send(cmdFrame("UNSUBSCRIBE", "ch"))
		if got := strings.Join([]string{a.line(), a.line(), a.line(), a.line(), a.line(), a.line()}, " "); got != "*3 $11 unsubscribe $2 ch :0" {
			t.Fatalf("round %d: UNSUBSCRIBE = %q", round, got)
		}
		waitLoopSessions(t, e.cluster, 2)
		watched(fmt.Sprintf("round %d: back on a loop after subscribed mode", round), 1)
		a.send(cmdFrame("GET", "k"))
		if got := a.line() + a.line(); got != "$1v" {
			t.Fatalf("round %d: GET = %q", round, got)
		}
	}
}

// Clients that move between their loop and a goroutine on every other batch (transactions,
// blocking pops) while others stay on the loops: every reply still comes, right and in order.
func TestClientsMovingBetweenLoopAndGoroutine(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	const workers, rounds = 8, 150
	errs := make(chan error, workers)
	for w := range workers {
		go func() { errs <- moveAround(e.addr, w, rounds) }()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if proxy.HandOvers(e.cluster) < workers/2*rounds {
		t.Fatalf("%d hand-overs, want at least %d", proxy.HandOvers(e.cluster), workers/2*rounds)
	}
	waitLoopSessions(t, e.cluster, 0)
}

// moveAround runs one client of TestClientsMovingBetweenLoopAndGoroutine: odd workers run a
// transaction or a blocking pop every round, even ones only plain commands.
func moveAround(addr string, w, rounds int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	key, list := "mv:"+strconv.Itoa(w), "mvl:"+strconv.Itoa(w)
	for i := 1; i <= rounds; i++ {
		n := strconv.Itoa(i)
		var req, want string
		switch {
		case w%2 == 0:
			req = cmdFrame("INCR", key) + cmdFrame("GET", key)
			want = ":" + n + "$" + strconv.Itoa(len(n)) + n
		case i%2 == 0:
			req = cmdFrame("MULTI") + cmdFrame("INCR", key) + cmdFrame("EXEC") + cmdFrame("GET", key)
			want = "+OK+QUEUED*1:" + n + "$" + strconv.Itoa(len(n)) + n
		default:
			req = cmdFrame("INCR", key) + cmdFrame("RPUSH", list, n) + cmdFrame("BLPOP", list, "1")
			want = ":" + n + ":1*2$" + strconv.Itoa(len(list)) + list + "$" + strconv.Itoa(len(n)) + n
		}
		if _, err := nc.Write([]byte(req)); err != nil {
			return err
		}
		var got strings.Builder
		for got.Len() < len(want) {
			l, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("worker %d round %d: %w after %q", w, i, err, got.String())
			}
			got.WriteString(strings.TrimSuffix(l, "\r\n"))
		}
		if got.String() != want {
			return fmt.Errorf("worker %d round %d: got %q, want %q", w, i, got.String(), want)
		}
	}
	return nil
}

// A client that sends one command at a time costs its loop one read per command: none that
// finds nothing after a batch that used its whole window (a new client's first, at one
// command) when the read before was short, and so the socket had nothing more; what comes
// later raises an event. Before, each client paid such a read after its first command: a
// third more reads for clients that connect, send a command and leave.
func TestNoEmptyReadsBetweenCommands(t *testing.T) {
	var empty atomic.Int64
	t.Cleanup(proxy.SetEmptyReadHook(func() { empty.Add(1) })) // restored after the cluster closed
	e := startEnv(t, envOpts{nodes: 1})
	const clients, commands = 10, 4
	for range clients {
		c := e.raw(t)
		for range commands {
			c.send(cmdFrame("SET", "k", "v"))
			if got := c.line(); got != "+OK" {
				t.Fatalf("SET = %q", got)
			}
		}
		c.nc.Close()
	}
	waitLoopSessions(t, e.cluster, 0)
	if n := empty.Load(); n != 0 {
		t.Fatalf("%d reads found nothing for %d clients sending %d commands one at a time, want 0", n, clients, commands)
	}
}
