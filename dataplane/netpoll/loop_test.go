//go:build linux

package netpoll

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// recorder is a Client that reports its turns, and whether a hangup came before them.
type recorder struct {
	turns chan bool // hung up before this turn
	hup   bool      // under the loop's lock (Hangup), then read on its goroutine (Turn)
}

func (r *recorder) Hangup()    { r.hup = true }
func (r *recorder) Turn(*Loop) { r.turns <- r.hup }

// pair is a connected loopback TCP pair: the loop's end, raw, and the peer.
func pair(t *testing.T) (*rawio.Conn, net.Conn) {
	t.Helper()
	raw, _, peer := pairConn(t)
	return raw, peer
}

// pairConn is pair with the loop's end as a net.Conn too.
func pairConn(t *testing.T) (*rawio.Conn, net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return rawio.New(nc), nc, peer
}

func waitTurn(t *testing.T, r *recorder, what string) bool {
	t.Helper()
	select {
	case hup := <-r.turns:
		return hup
	case <-time.After(10 * time.Second):
		t.Fatalf("no turn: %s", what)
		return false
	}
}

// A client gets a turn when its socket becomes readable, when kicked, and after a hangup that
// it is told of first; the end func follows each turn; a removed client gets no more turns.
func TestLoopClientTurns(t *testing.T) {
	turnEnds := make(chan struct{}, 100)
	l, err := New(func() {
		select {
		case turnEnds <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Stop()
	raw, peer := pair(t)
	r := &recorder{turns: make(chan bool, 10)}
	var id uint64
	if err := l.Add(raw, r, &id); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.Counts(); n != 1 {
		t.Fatalf("Counts: %d clients, want 1", n)
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if waitTurn(t, r, "after a write") {
		t.Fatal("hangup reported before the peer hung up")
	}
	select {
	case <-turnEnds:
	case <-time.After(10 * time.Second):
		t.Fatal("the end func was not called after a turn")
	}
	l.Kick(r)
	waitTurn(t, r, "after Kick")
	peer.Close()
	if !waitTurn(t, r, "after the peer hung up") {
		t.Fatal("the turn after the peer hung up came without Hangup")
	}
	l.Remove(id, raw)
	if n, _ := l.Counts(); n != 0 {
		t.Fatalf("Counts after Remove: %d clients, want 0", n)
	}
	l.KickAll() // none registered: no turn
	select {
	case <-r.turns:
		t.Fatal("a removed client got a turn")
	case <-time.After(100 * time.Millisecond):
	}
}

// A watched connection's ready func is called when it becomes readable, until unwatched.
func TestLoopWatch(t *testing.T) {
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Stop()
	raw, peer := pair(t)
	ready := make(chan struct{}, 10)
	unwatch, err := l.Watch(raw, func() {
		var b [16]byte
		_, _ = raw.TryRead(b[:]) // drain, as an edge-triggered reader must
		ready <- struct{}{}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, n := l.Counts(); n != 1 {
		t.Fatalf("Counts: %d backends, want 1", n)
	}
	if _, err := peer.Write([]byte("+OK\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("ready not called for a readable watched socket")
	}
	unwatch()
	if _, n := l.Counts(); n != 0 {
		t.Fatalf("Counts after unwatch: %d backends, want 0", n)
	}
}

// Add after Stop fails, and a loop stops with nothing registered.
func TestLoopStopped(t *testing.T) {
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	l.Stop()
	raw, _ := pair(t)
	var id uint64
	if err := l.Add(raw, &recorder{turns: make(chan bool, 1)}, &id); err == nil {
		t.Fatal("Add on a stopped loop succeeded")
	}
}

// A slot a removed client leaves is reused, under a new id: the old id (an event read before
// the client left, a second Remove) reaches neither the new client nor anyone else, and a
// kick of all reaches each client once.
func TestLoopSlotReuse(t *testing.T) {
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.p.free()
	a, b, c := &recorder{}, &recorder{}, &recorder{}
	rawA, _ := pair(t)
	rawB, _ := pair(t)
	rawC, _ := pair(t)
	var idA, idB, idC uint64
	for _, r := range []struct {
		raw *rawio.Conn
		c   *recorder
		id  *uint64
	}{{rawA, a, &idA}, {rawB, b, &idB}} {
		if err := l.Add(r.raw, r.c, r.id); err != nil {
			t.Fatal(err)
		}
	}
	l.Remove(idA, rawA)
	if err := l.Add(rawC, c, &idC); err != nil {
		t.Fatal(err)
	}
	if uint32(idC) != uint32(idA) || idC == idA {
		t.Fatalf("ids %#x then %#x: want the freed slot under a new generation", idA, idC)
	}
	l.mu.Lock()
	gotA, gotB, gotC := l.client(idA), l.client(idB), l.client(idC)
	l.mu.Unlock()
	if gotA != nil || gotB != Client(b) || gotC != Client(c) {
		t.Fatalf("client(old id) = %v, client(b) = %v, client(c) = %v", gotA, gotB, gotC)
	}
	if l.client(0) != nil || l.client(backendBit|1) != nil || l.client(1<<32|99) != nil {
		t.Fatal("an id never given out found a client")
	}
	l.Remove(idA, rawA) // again, now that c holds the slot
	if n, _ := l.Counts(); n != 2 {
		t.Fatalf("Counts after a stale Remove: %d clients, want 2", n)
	}
	l.KickAll()
	if len(l.kicked) != 2 || l.kicked[0] == l.kicked[1] {
		t.Fatalf("KickAll kicked %v, want b and c", l.kicked)
	}
}

// A client the loop forgets gets no more turns, whatever its socket raises before it is
// closed; Forget leaves the socket in the loop's epoll set (it saves Remove's system call),
// and closing the socket then leaves the set empty.
func TestLoopForget(t *testing.T) {
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Stop()
	raw, nc, peer := pairConn(t)
	r := &recorder{turns: make(chan bool, 10)}
	var id uint64
	if err := l.Add(raw, r, &id); err != nil {
		t.Fatal(err)
	}
	if n := watched(t, l); n != 1 {
		t.Fatalf("%d sockets in the loop's epoll set, want 1", n)
	}
	l.Forget(id)
	if n, _ := l.Counts(); n != 0 {
		t.Fatalf("Counts after Forget: %d clients, want 0", n)
	}
	if n := watched(t, l); n != 1 {
		t.Fatalf("%d sockets in the loop's epoll set after Forget, want 1: the close takes it out, not a system call of Forget's", n)
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.turns:
		t.Fatal("a forgotten client got a turn")
	case <-time.After(100 * time.Millisecond):
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := watched(t, l); n != 0 {
		t.Fatalf("%d sockets in the loop's epoll set after the forgotten one closed, want 0", n)
	}
}

// watched is how many descriptors l's epoll set holds besides its eventfd.
func watched(t *testing.T, l *Loop) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", l.p.epfd))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "tfd:") - 1
}

// orderLog records the order of the loop's calls: client turns and a backend's ready.
type orderLog struct {
	mu    sync.Mutex
	calls []string
}

func (o *orderLog) add(s string) {
	o.mu.Lock()
	o.calls = append(o.calls, s)
	o.mu.Unlock()
}

// until waits up to 10 s for cond to hold of the calls so far, and reports whether it did.
func (o *orderLog) until(cond func(calls []string) bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		o.mu.Lock()
		ok := cond(o.calls)
		o.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

type orderClient struct{ o *orderLog }

// readyClients adds n clients to l that log their turns to o, and makes their sockets readable
// (before the loop starts, so that its first wait finds them all).
func readyClients(t *testing.T, l *Loop, o *orderLog, n int) {
	t.Helper()
	for range n {
		raw, peer := pair(t)
		var id uint64
		if err := l.Add(raw, orderClient{o}, &id); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

func (c orderClient) Hangup()    {}
func (c orderClient) Turn(*Loop) { c.o.add("client") }

// With more sockets ready than one wait takes, a backend connection that owes replies and whose
// input came last is still read in the first turn, before any client: its event would
// otherwise queue behind the clients' for turns, its replies unread while the loop reads more
// requests. One that owes none (waiting false, or no waiting func) is not read without an
// event: that read would find nothing.
func TestLoopFullWaitReadsBackendsFirst(t *testing.T) {
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &orderLog{}
	n := maxPolls + maxPolls/2
	// Every client readable before the backend, and all of it before the loop's first wait.
	readyClients(t, l, o, n)
	braw, bpeer := pair(t)
	if _, err := l.Watch(braw, func() {
		var b [16]byte
		if k, _ := braw.TryRead(b[:]); k > 0 {
			o.add("backend")
		}
	}, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	for _, waiting := range []func() bool{func() bool { return false }, nil} {
		idle, _ := pair(t)
		if _, err := l.Watch(idle, func() { o.add("idle backend") }, waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bpeer.Write([]byte("+OK\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // loopback delivery
	l.Start()
	defer l.Stop()
	if !o.until(func(calls []string) bool { return len(calls) >= n+1 }) {
		t.Fatal("not every client had a turn, or the backend was never read")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if slices.Contains(o.calls, "idle backend") {
		t.Fatal("a backend that owes no replies was read without an event")
	}
	switch before := slices.Index(o.calls, "backend"); before {
	case 0:
	case -1:
		t.Fatal("the backend was never read")
	default:
		t.Fatalf("the backend was read after %d client turns, want before the first", before)
	}
	if len(o.calls) != n+1 {
		t.Fatalf("%d calls, want %d client turns and the backend's read", len(o.calls), n)
	}
}

// After a full wait, at most maxBackendPolls backend connections are read without an event
// in one turn, however many owe replies: a cluster of hundreds of nodes must not cost each
// full turn a read of every node.
func TestLoopFullWaitPollsBounded(t *testing.T) {
	o := &orderLog{}
	l, err := New(func() { o.add("end") })
	if err != nil {
		t.Fatal(err)
	}
	readyClients(t, l, o, maxPolls+8)
	for range maxBackendPolls + 16 {
		raw, _ := pair(t)
		if _, err := l.Watch(raw, func() { o.add("poll") }, func() bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // loopback delivery
	l.Start()
	defer l.Stop()
	if !o.until(func(calls []string) bool { return slices.Contains(calls, "end") }) {
		t.Fatal("no turn ended")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	polls := 0
	for _, c := range o.calls[:slices.Index(o.calls, "end")] {
		if c == "poll" {
			polls++
		}
	}
	if polls == 0 || polls > maxBackendPolls {
		t.Fatalf("the first (full) turn read %d backends without an event, want 1-%d", polls, maxBackendPolls)
	}
}
