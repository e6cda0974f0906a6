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

// A Budget keeps replies while they fit and drops the rest, which are still read off the
// connection in their turn: the requests queued behind them, charged or not, get their own
// replies. After Reset the group starts afresh.
func TestBudgetDropsRepliesThatDoNotFitAndKeepsOrder(t *testing.T) {
	srv := redistest.Start(t)
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	defer c.Close()
	val := strings.Repeat("v", 1000)
	if got := do(t, c, "SET", "big", val); got != "+OK\r\n" {
		t.Fatalf("SET = %q", got)
	}
	bulk := "$1000\r\n" + val + "\r\n"
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
