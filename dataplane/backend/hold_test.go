package backend_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/netpoll"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// loopPoller reads connections on a netpoll.Loop and flushes, at the end of each turn, those
// that asked for it (flushLater), as the proxy's loops do.
type loopPoller struct {
	l       *netpoll.Loop
	touched []*backend.Conn // the loop's goroutine only
}

func newLoopPoller(t *testing.T) *loopPoller {
	p := &loopPoller{}
	l, err := netpoll.New(func() {
		backend.FlushAll(p.touched...)
		clear(p.touched)
		p.touched = p.touched[:0]
	})
	if err != nil {
		t.Skipf("no event loop here: %v", err)
	}
	p.l = l
	l.Start()
	t.Cleanup(l.Stop)
	return p
}

// acceptOne listens on a loopback port and hands over the first connection to it: a node the
// test answers by hand (or never), to hold requests unanswered as long as it likes. The
// listener closes with the test.
func acceptOne(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		if nc, err := ln.Accept(); err == nil {
			ch <- nc
		}
	}()
	return ln.Addr().String(), ch
}

func (p *loopPoller) Watch(raw *rawio.Conn, ready func(), waiting func() bool) (func(), func(*backend.Conn), error) {
	unwatch, err := p.l.Watch(raw, ready, waiting)
	return unwatch, func(c *backend.Conn) { p.touched = append(p.touched, c) }, err
}

// TestBigRepliesHoldRequests: with replies of 16 KiB, a connection with HoldInFlight requests
// unanswered keeps a new one queued rather than writing it at once (the node gets it with
// whatever else queues meanwhile); the node's next reply releases it, or, when the node
// answers none, their read timeout does. The node here is a socket the test answers by hand,
// so that it can leave requests unanswered.
func TestBigRepliesHoldRequests(t *testing.T) {
	t.Run("released by a reply", func(t *testing.T) { testHold(t, false) })
	t.Run("released by the timeout", func(t *testing.T) { testHold(t, true) })
}

func testHold(t *testing.T, expire bool) {
	addr, accepted := acceptOne(t)
	type node struct {
		nc net.Conn
		rd *bufio.Reader
	}
	timeout := time.Minute
	if expire {
		timeout = 300 * time.Millisecond
	}
	c := backend.New(backend.Options{Addr: addr, Poller: newLoopPoller(t), ReadTimeout: timeout})
	defer c.Close()

	value := strings.Repeat("v", 16<<10)
	bulk := "$" + strconv.Itoa(len(value)) + "\r\n" + value + "\r\n"
	var wg sync.WaitGroup
	reqs := make([]*backend.Request, 0, 64)
	send := func(n int) {
		for range n {
			r := &backend.Request{}
			r.Bind(&wg)
			wg.Add(1)
			c.Send(r, resp.AppendCommand(nil, []byte("GET"), []byte("k")))
			reqs = append(reqs, r)
		}
		c.Flush()
	}
	var n node
	// expect reads k requests (GET k: 5 lines each) on the node's side.
	expect := func(k int) {
		t.Helper()
		_ = n.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 5 * k {
			if _, err := n.rd.ReadString('\n'); err != nil {
				t.Fatalf("the node did not get a request: %v", err)
			}
		}
	}
	answer := func(k int) {
		t.Helper()
		if _, err := n.nc.Write([]byte(strings.Repeat(bulk, k))); err != nil {
			t.Fatal(err)
		}
	}
	// Replies of 16 KiB teach the connection its reply size, one round trip at a time.
	send(1)
	nc := <-accepted
	n = node{nc, bufio.NewReader(nc)}
	defer n.nc.Close()
	for range 5 {
		expect(1)
		answer(1)
		wg.Wait()
		send(1)
	}
	expect(1)
	send(backend.HoldInFlight - 1) // now HoldInFlight unanswered
	expect(backend.HoldInFlight - 1)
	before := c.Holds()
	send(1)
	if c.Holds() == before {
		t.Fatalf("a request sent with %d unanswered ones of 16 KiB was not held", backend.HoldInFlight)
	}
	held := reqs[len(reqs)-1]
	_ = n.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if line, err := n.rd.ReadString('\n'); err == nil {
		t.Fatalf("the held request reached the node: %q", line)
	}
	if expire {
		// No reply comes: the unanswered ones time out, and the held one goes out then.
		expect(1)
		answer(backend.HoldInFlight + 1) // the timed-out ones' replies are dropped in turn
		wg.Wait()
		for i, r := range reqs[len(reqs)-1-backend.HoldInFlight : len(reqs)-1] {
			if r.Failure != backend.FailTimeout {
				t.Errorf("unanswered request %d: failure %v, want a timeout", i, r.Failure)
			}
		}
		if string(held.Reply) != bulk || held.Failure != backend.FailNone {
			t.Fatalf("the held request: %d bytes, failure %v", len(held.Reply), held.Failure)
		}
		return
	}
	// One reply: fewer in flight, the held request goes out at the end of the loop's turn.
	answer(1)
	expect(1)
	answer(backend.HoldInFlight)
	wg.Wait()
	for i, r := range reqs {
		if string(r.Reply) != bulk || r.Failure != backend.FailNone {
			t.Fatalf("request %d: %d bytes, failure %v", i, len(r.Reply), r.Failure)
		}
	}
}

// TestHeldRequestsAllAnswered: many senders pipelining GETs of 16 KiB values over one polled
// connection to a real redis-server, so that requests are held and released all the time:
// every one gets its own value, and holding did happen.
func TestHeldRequestsAllAnswered(t *testing.T) {
	srv := redistest.Start(t)
	setup := backend.New(backend.Options{Addr: srv.Addr})
	defer setup.Close()
	const keys = 32
	for i := range keys {
		v := fmt.Sprintf("%d:%s", i, strings.Repeat("x", 16<<10))
		if got := do(t, setup, "SET", fmt.Sprintf("hk:%d", i), v); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	c := backend.New(backend.Options{Addr: srv.Addr, Poller: newLoopPoller(t), ReadTimeout: 10 * time.Second})
	defer c.Close()
	var senders sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for round := range 30 {
				var wg sync.WaitGroup
				reqs := make([]backend.Request, 16)
				for i := range reqs {
					reqs[i].Bind(&wg)
					wg.Add(1)
					k := (g*7 + round*3 + i) % keys
					c.Send(&reqs[i], resp.AppendCommand(nil, []byte("GET"), []byte(fmt.Sprintf("hk:%d", k))))
				}
				c.Flush()
				select {
				case <-released(&wg):
				case <-time.After(20 * time.Second):
					errs <- fmt.Errorf("sender %d round %d: replies still missing after 20 s", g, round)
					return
				}
				for i := range reqs {
					k := (g*7 + round*3 + i) % keys
					if want := fmt.Sprintf("%d:", k); !strings.Contains(string(reqs[i].Reply), "\r\n"+want) {
						errs <- fmt.Errorf("GET hk:%d = %.20q (failure %v)", k, reqs[i].Reply, reqs[i].Failure)
						return
					}
				}
			}
		}()
	}
	senders.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c.Holds() == 0 {
		t.Fatal("no request was held: the test did not test holding")
	}
	t.Logf("%d flushes held their requests", c.Holds())
}
