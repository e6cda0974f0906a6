package backend_test

import (
	"bufio"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// keepWaiting is a loopPoller that keeps the waiting func a connection gives it.
type keepWaiting struct {
	*loopPoller
	mu      sync.Mutex
	waiting func() bool
}

func (p *keepWaiting) Watch(raw *rawio.Conn, ready func(), waiting func() bool) (func(), func(*backend.Conn), error) {
	p.mu.Lock()
	p.waiting = waiting
	p.mu.Unlock()
	return p.loopPoller.Watch(raw, ready, waiting)
}

// TestWaitingMeansRepliesOwed: the waiting func a connection gives its Poller (which then
// reads it without an event, after a full wait) says true exactly while replies are owed:
// from a request's write to its reply, also when the request timed out meanwhile (its late
// reply is still read, and dropped), and false once every reply came. The node is a socket
// the test answers by hand, to leave requests unanswered as long as it likes.
func TestWaitingMeansRepliesOwed(t *testing.T) {
	addr, accepted := acceptOne(t)
	p := &keepWaiting{loopPoller: newLoopPoller(t)}
	c := backend.New(backend.Options{Addr: addr, Poller: p, ReadTimeout: 200 * time.Millisecond})
	defer c.Close()
	var wg sync.WaitGroup
	send := func() *backend.Request {
		r := &backend.Request{}
		r.Bind(&wg)
		wg.Add(1)
		c.Send(r, resp.AppendCommand(nil, []byte("PING")))
		c.Flush()
		return r
	}
	r := send()
	nc := <-accepted
	defer nc.Close()
	rd := bufio.NewReader(nc)
	expect := func() { // PING: 3 lines
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 3 {
			if _, err := rd.ReadString('\n'); err != nil {
				t.Fatalf("the node did not get the request: %v", err)
			}
		}
	}
	expect()
	p.mu.Lock()
	waiting := p.waiting
	p.mu.Unlock()
	if waiting == nil {
		t.Fatal("the connection gave its Poller no waiting func")
	}
	if !waiting() {
		t.Fatal("waiting is false with a request written and unanswered")
	}
	if _, err := nc.Write([]byte("+PONG\r\n")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if string(r.Reply) != "+PONG\r\n" {
		t.Fatalf("reply %q", r.Reply)
	}
	if waiting() {
		t.Fatal("waiting is true with every reply in")
	}
	// A request that times out still owes its reply.
	r = send()
	expect()
	wg.Wait()
	if r.Failure != backend.FailTimeout {
		t.Fatalf("failure %v, want a timeout", r.Failure)
	}
	if !waiting() {
		t.Fatal("waiting is false with a timed-out request's reply still owed")
	}
	if _, err := nc.Write([]byte("+PONG\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for waiting() {
		if time.Now().After(deadline) {
			t.Fatal("waiting stays true after the late reply came")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
