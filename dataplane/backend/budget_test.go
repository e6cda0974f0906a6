package backend_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// bigValueConn is a connection to a fresh node whose key "big" holds 1,000 bytes, and the
// reply to its GET.
func bigValueConn(t *testing.T) (*backend.Conn, string) {
	srv := redistest.Start(t)
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	t.Cleanup(c.Close)
	val := strings.Repeat("v", 1000)
	if got := do(t, c, "SET", "big", val); got != "+OK\r\n" {
		t.Fatalf("SET = %q", got)
	}
	return c, "$1000\r\n" + val + "\r\n"
}

// A Budget keeps replies while they fit and drops the rest, which are still read off the
// connection in their turn: the requests queued behind them, charged or not, get their own
// replies. After Reset the group starts afresh.
func TestBudgetDropsRepliesThatDoNotFitAndKeepsOrder(t *testing.T) {
	c, bulk := bigValueConn(t)
	var b backend.Budget
	for round := range 2 {
		b.Reset(2500) // two of the values fit, not three
		var wg sync.WaitGroup
		reqs := make([]backend.Request, 6)
		for i := range reqs {
			reqs[i].Bind(&wg)
			wg.Add(1)
			if i == 4 {
				// Not charged: another client's request on the same connection.
				c.Send(&reqs[i], resp.AppendCommand(nil, []byte("ECHO"), []byte("mine")))
				continue
			}
			reqs[i].Charge(&b)
			c.Send(&reqs[i], resp.AppendCommand(nil, []byte("GET"), []byte("big")))
		}
		c.Flush()
		wg.Wait()
		for i, r := range reqs {
			switch {
			case i == 4:
				if string(r.Reply) != "$4\r\nmine\r\n" || r.Failure != backend.FailNone {
					t.Fatalf("round %d: uncharged request got %q (failure %d)", round, r.Reply, r.Failure)
				}
			case i < 2:
				if string(r.Reply) != bulk || r.Failure != backend.FailNone {
					t.Fatalf("round %d: request %d, within the budget, got %d bytes (failure %d)", round, i, len(r.Reply), r.Failure)
				}
			default:
				if len(r.Reply) != 0 || r.Failure != backend.FailDropped {
					t.Fatalf("round %d: request %d, past the budget, got %d bytes (failure %d)", round, i, len(r.Reply), r.Failure)
				}
			}
		}
		if !b.Dropped() || b.Used() != int64(5*len(bulk)) {
			t.Fatalf("round %d: Dropped %v, Used %d: want true, %d", round, b.Dropped(), b.Used(), 5*len(bulk))
		}
	}
	if got := do(t, c, "ECHO", strconv.Itoa(42)); got != "$2\r\n42\r\n" {
		t.Fatalf("the connection after dropped replies: %q", got)
	}
}

// batchWaiter is a backend.BatchWaiter that counts what it is released by and wakes its
// waiter once all n are in.
type batchWaiter struct {
	mu       sync.Mutex
	left     int
	calls    int
	released int
	all      chan struct{}
}

func newBatchWaiter(n int) *batchWaiter { return &batchWaiter{left: n, all: make(chan struct{})} }

func (w *batchWaiter) Done() { w.DoneN(1) }

func (w *batchWaiter) DoneN(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.released += n
	if w.left -= n; w.left == 0 {
		close(w.all)
	}
}

// The replies of one client's requests read together are charged and released as a run
// (finishRun): kept and dropped exactly as one by one, the uncharged request and another
// client's between them in their own runs, and every request released once.
func TestBudgetRunKeepsAndDropsAsOneByOne(t *testing.T) {
	c, bulk := bigValueConn(t)
	for round := range 3 {
		var b backend.Budget
		b.Reset(2500 + round*len(bulk)) // 2, 3, then 4 of the charged values fit
		mine := newBatchWaiter(8)
		other := newBatchWaiter(2)
		reqs := make([]backend.Request, 10)
		// 0: the batch's first, uncharged; 1-4 charged; 5, 6 another client's; 7-9 charged.
		for i := range reqs {
			switch {
			case i == 5 || i == 6:
				reqs[i].Bind(other)
				c.Send(&reqs[i], resp.AppendCommand(nil, []byte("ECHO"), []byte("theirs")))
				continue
			case i > 0:
				reqs[i].Charge(&b)
			}
			reqs[i].Bind(mine)
			c.Send(&reqs[i], resp.AppendCommand(nil, []byte("GET"), []byte("big")))
		}
		c.Flush()
		for _, w := range []*batchWaiter{mine, other} {
			select {
			case <-w.all:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: requests not all released", round)
			}
		}
		fit := 2 + round
		charged := 0
		for i, r := range reqs {
			want, why := bulk, backend.FailNone
			switch {
			case i == 5 || i == 6:
				want = "$6\r\ntheirs\r\n"
			case i > 0:
				if charged++; charged > fit {
					want, why = "", backend.FailDropped
				}
			}
			if string(r.Reply) != want || r.Failure != why {
				t.Fatalf("round %d: request %d got %d bytes (failure %d), want %d bytes (failure %d)", round, i, len(r.Reply), r.Failure, len(want), why)
			}
		}
		if b.Dropped() != (fit < 7) || b.Used() != int64(7*len(bulk)) {
			t.Fatalf("round %d: Dropped %v, Used %d: want %v, %d", round, b.Dropped(), b.Used(), fit < 7, 7*len(bulk))
		}
		mine.mu.Lock()
		if mine.released != 8 || mine.calls > 8 {
			t.Fatalf("round %d: released %d in %d calls", round, mine.released, mine.calls)
		}
		mine.mu.Unlock()
	}
}
