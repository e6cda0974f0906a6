package backend_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// sendOne queues one command on c, flushes it, and returns the request and what releases it.
func sendOne(c *backend.Conn, args ...string) (*backend.Request, <-chan struct{}) {
	var wg sync.WaitGroup
	r := &backend.Request{}
	r.Bind(&wg)
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	wg.Add(1)
	c.Send(r, resp.AppendCommand(nil, bargs...))
	c.Flush()
	return r, released(&wg)
}

func waitReleased(t *testing.T, what string, ch <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: no reply or failure within %v", what, d)
	}
}

// TestReadTimeoutFailsOnlyLateRequests: one request that waits past read_timeout (a BLPOP
// that holds the node's connection, as a slow KEYS or script would) fails alone with a read
// timeout; requests queued behind it that the node answers within their own deadline get
// their own replies; the late reply is read and dropped in its turn; and the connection is the
// same one throughout (the node's CLIENT ID does not change).
func TestReadTimeoutFailsOnlyLateRequests(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 2 * time.Second
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: timeout})
	defer c.Close()
	if _, err := srv.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	id := do(t, c, "CLIENT", "ID")

	slow, slowDone := sendOne(c, "BLPOP", "blk", "0")
	time.Sleep(timeout * 3 / 4)
	before, beforeDone := sendOne(c, "GET", "k") // queued before the slow one's deadline
	waitReleased(t, "slow request", slowDone, 10*timeout)
	if slow.Failure != backend.FailTimeout || !strings.Contains(string(slow.Reply), "read timeout") {
		t.Fatalf("slow request: %q (failure %v), want a read timeout", slow.Reply, slow.Failure)
	}
	after, afterDone := sendOne(c, "GET", "k") // queued after it failed
	select {
	case <-beforeDone:
		t.Fatalf("request queued behind the slow one finished before the node answered: %q", before.Reply)
	default:
	}
	// The node answers now: the BLPOP's reply comes first and must go nowhere.
	if _, err := srv.Do("LPUSH", "blk", "late"); err != nil {
		t.Fatal(err)
	}
	waitReleased(t, "request queued before the deadline", beforeDone, 10*timeout)
	waitReleased(t, "request queued after the deadline", afterDone, 10*timeout)
	for name, r := range map[string]*backend.Request{"before": before, "after": after} {
		if string(r.Reply) != "$1\r\nv\r\n" || r.Failure != backend.FailNone {
			t.Errorf("GET queued %s the slow request's deadline: %q (failure %v), want v", name, r.Reply, r.Failure)
		}
	}
	for i := range 20 { // FIFO matching is exact after the dropped reply
		if got, want := do(t, c, "ECHO", fmt.Sprint(i)), fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(i)), i); got != want {
			t.Fatalf("ECHO %d: %q", i, got)
		}
	}
	if again := do(t, c, "CLIENT", "ID"); again != id {
		t.Fatalf("CLIENT ID %q then %q: the connection was reset", id, again)
	}
}

// TestStalledNodeResetsConnection: a node that sends nothing at all (a stopped process, a
// partition) for 4 × read_timeout while requests wait gets its connection reset and
// redialled, so that a dead link is not kept for ever one deadline at a time; the requests
// still within their deadline then fail with a read timeout that says so.
func TestStalledNodeResetsConnection(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 200 * time.Millisecond
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: timeout})
	defer c.Close()
	id := do(t, c, "CLIENT", "ID")
	srv.Pause()
	stalled := false
	for start := time.Now(); !stalled && time.Since(start) < 20*time.Second; {
		r, done := sendOne(c, "GET", "k")
		time.Sleep(timeout / 4)
		select {
		case <-done:
			if r.Failure != backend.FailTimeout {
				t.Fatalf("request to a stopped node: %q (failure %v)", r.Reply, r.Failure)
			}
			stalled = strings.Contains(string(r.Reply), "connection reset")
		default:
		}
	}
	srv.Resume()
	if !stalled {
		t.Fatal("no request failed with the stall reset while the node was stopped")
	}
	var again string
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		if again = do(t, c, "CLIENT", "ID"); strings.HasPrefix(again, ":") {
			break
		}
	}
	if again == id || !strings.HasPrefix(again, ":") {
		t.Fatalf("CLIENT ID %q before the stall, %q after: want a new connection", id, again)
	}
}

// TestOwedRepliesBounded: a node that owes more late replies than the bound gets its
// connection reset at once, without waiting for the stall bound (4 × read_timeout).
func TestOwedRepliesBounded(t *testing.T) {
	defer backend.SetMaxAbandoned(10)()
	srv := redistest.Start(t)
	const timeout = time.Second
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: timeout})
	defer c.Close()
	id := do(t, c, "CLIENT", "ID")
	srv.Pause()
	var dones []<-chan struct{}
	for range 20 {
		_, done := sendOne(c, "GET", "k")
		dones = append(dones, done)
	}
	for _, done := range dones {
		waitReleased(t, "request to a stopped node", done, 10*timeout)
	}
	time.Sleep(timeout / 2) // the watchdog resets on the tick that expired them; resumed well before 4 s
	srv.Resume()
	if again := do(t, c, "CLIENT", "ID"); again == id {
		t.Fatalf("CLIENT ID %q unchanged: 20 owed replies (bound 10) did not reset the connection", id)
	}
}

// TestWriteDeadlineLeftByDialDoesNotFailLaterWrites: the write after a dial runs on the
// dialling goroutine with write_timeout's deadline; later writes from a flusher set none (they
// never wait), so that deadline must be gone once it passes, or every write after it fails.
func TestWriteDeadlineLeftByDialDoesNotFailLaterWrites(t *testing.T) {
	srv := redistest.Start(t)
	const wt = 100 * time.Millisecond
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: wt})
	defer c.Close()
	id := do(t, c, "CLIENT", "ID") // dials: written by the dialling goroutine
	time.Sleep(3 * wt)             // past the deadline that write had
	for i := range 3 {
		if got := do(t, c, "PING"); got != "+PONG\r\n" {
			t.Fatalf("PING %d after the first write's deadline passed: %q", i, got)
		}
	}
	if again := do(t, c, "CLIENT", "ID"); again != id {
		t.Fatalf("CLIENT ID %q then %q: a write failed and the connection was redialled", id, again)
	}
}
