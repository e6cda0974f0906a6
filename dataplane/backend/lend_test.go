package backend_test

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/race"
	"github.com/aster-proxy/aster/internal/redistest"
)

// batchWG is a BatchWaiter, as a proxy session's count is: the replies of a batch read
// together from one connection are finished in a run, where lending happens.
type batchWG struct{ sync.WaitGroup }

func (b *batchWG) DoneN(n int) {
	for range n {
		b.Done()
	}
}

// lendEnv is a node with keys of every size around lendMin and well past a read buffer's
// worth, each value its own bytes, and a connection to it read either by its own goroutine or
// by an event loop.
type lendEnv struct {
	c    *backend.Conn
	keys []string
	want map[string][]byte // the whole reply frame of GET key
}

func newLendEnv(t *testing.T, polled bool) *lendEnv {
	srv := redistest.Start(t)
	opts := backend.Options{Addr: srv.Addr}
	if polled {
		opts.Poller = newLoopPoller(t)
	}
	c := backend.New(opts)
	t.Cleanup(c.Close)
	e := &lendEnv{c: c, want: map[string][]byte{}}
	sizes := []int{10, backend.LendMin - 3, backend.LendMin - 2, backend.LendMin, 5000, 16 << 10, 40 << 10, 100 << 10, backend.MaxKeptBuf + 1000}
	for i, size := range sizes {
		key := fmt.Sprintf("lend:%d", i)
		val := bytes.Repeat([]byte(fmt.Sprintf("%s-%d|", key, size)), size/8+1)[:size]
		if got := do(t, c, "SET", key, string(val)); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", key, got)
		}
		e.keys = append(e.keys, key)
		e.want[key] = []byte(fmt.Sprintf("$%d\r\n%s\r\n", size, val))
	}
	return e
}

// getAll sends GET of every key rounds times in one batch (lending or not) and waits for the
// replies.
func (e *lendEnv) getAll(rounds int, lending bool) []*backend.Request {
	var wg batchWG
	reqs := make([]*backend.Request, 0, rounds*len(e.keys))
	for range rounds {
		for _, k := range e.keys {
			r := &backend.Request{}
			r.Bind(&wg)
			wg.Add(1)
			frame := resp.AppendCommand(nil, []byte("GET"), []byte(k))
			if lending {
				e.c.SendLending(r, frame)
			} else {
				e.c.Send(r, frame)
			}
			reqs = append(reqs, r)
		}
	}
	e.c.Flush()
	wg.Wait()
	return reqs
}

// check fails unless each request has its key's reply, lent exactly when lending and it is
// lendMin bytes or more.
func (e *lendEnv) check(t *testing.T, reqs []*backend.Request, lending bool, when string) {
	t.Helper()
	for i, r := range reqs {
		k := e.keys[i%len(e.keys)]
		if !bytes.Equal(r.Reply, e.want[k]) {
			t.Fatalf("%s: reply %d (GET %s): %d bytes %.40q..., want %d bytes", when, i, k, len(r.Reply), r.Reply, len(e.want[k]))
		}
		if wantLent := lending && len(e.want[k]) >= backend.LendMin; r.Lent() != wantLent {
			t.Fatalf("%s: reply %d of %d bytes: lent %v, want %v", when, i, len(r.Reply), r.Lent(), wantLent)
		}
	}
}

func returnAll(reqs []*backend.Request) {
	for _, r := range reqs {
		r.Return()
	}
}

// allBack fails unless, with every lease given back, nothing counts as pinned and the
// connection still answers right (lending, from the buffers that came back).
func (e *lendEnv) allBack(t *testing.T) {
	t.Helper()
	if n := backend.PinnedBytes(); n != 0 {
		t.Fatalf("%d bytes counted as pinned with every lease back", n)
	}
	again := e.getAll(1, true)
	e.check(t, again, true, "after every lease is back")
	returnAll(again)
}

// TestLentRepliesStayWhileHeld: a lent reply stays as it was read for as long as its lease is
// held, whatever the connection reads meanwhile (here many read buffers' worth, in both
// reading modes); once given back, the request's Reply is empty, and when every lease is back
// nothing is counted as pinned. Plain Send never lends, and replies under lendMin are copied.
func TestLentRepliesStayWhileHeld(t *testing.T) {
	for _, polled := range []bool{false, true} {
		t.Run(fmt.Sprintf("polled=%v", polled), func(t *testing.T) {
			e := newLendEnv(t, polled)
			held := e.getAll(3, true)
			e.check(t, held, true, "first batch")
			plain := e.getAll(1, false)
			e.check(t, plain, false, "plain Send")
			// ~2.5 MiB per batch of 15 rounds: the reader fills and leaves many buffers while
			// the first batch's leases are out.
			for i := range 8 {
				more := e.getAll(15, true)
				e.check(t, more, true, fmt.Sprintf("batch %d", i+2))
				returnAll(more)
			}
			e.check(t, held, true, "first batch, after 8 more")
			if backend.PinnedBytes() == 0 {
				t.Fatalf("nothing counted as pinned while the first batch's leases are out")
			}
			for _, r := range held {
				lent := r.Lent()
				r.Return()
				if r.Lent() || lent && len(r.Reply) != 0 {
					t.Fatalf("after Return: lent %v, %d bytes of Reply", r.Lent(), len(r.Reply))
				}
			}
			e.allBack(t)
		})
	}
}

// TestTakenLeaseOutlivesItsRequest: TakeLease moves the hold to the caller: the request's
// Reply is empty and may be reused, the bytes the caller kept stay until it returns the lease.
func TestTakenLeaseOutlivesItsRequest(t *testing.T) {
	e := newLendEnv(t, true)
	reqs := e.getAll(1, true)
	type taken struct {
		reply []byte
		lease backend.Lease
		key   string
	}
	var kept []taken
	for i, r := range reqs {
		if !r.Lent() {
			if l := r.TakeLease(); l.Held() {
				t.Fatalf("a lease taken from a reply that is not lent")
			}
			continue
		}
		reply := r.Reply
		kept = append(kept, taken{reply, r.TakeLease(), e.keys[i]})
		if r.Lent() || len(r.Reply) != 0 {
			t.Fatalf("after TakeLease: lent %v, %d bytes of Reply", r.Lent(), len(r.Reply))
		}
	}
	for range 5 {
		returnAll(e.getAll(15, true))
	}
	for _, k := range kept {
		if !bytes.Equal(k.reply, e.want[k.key]) {
			t.Fatalf("GET %s: the taken reply changed while its lease was held", k.key)
		}
		k.lease.Return()
		k.lease.Return() // again: nothing
		if race.Enabled && bytes.Equal(k.reply, e.want[k.key]) {
			t.Fatalf("GET %s: a returned reply is not poisoned under the race detector", k.key)
		}
	}
	if n := backend.PinnedBytes(); n != 0 {
		t.Fatalf("%d bytes counted as pinned with every lease back", n)
	}
}

// TestPinnedBoundCopiesReplies: once leases hold more than the bound of buffers their
// readers have left, big replies are copied instead, still right; when the leases are back,
// lending resumes.
func TestPinnedBoundCopiesReplies(t *testing.T) {
	defer backend.SetMaxPinned(2 * backend.MaxKeptBuf)()
	e := newLendEnv(t, true)
	var held []*backend.Request
	copied := false
	for i := 0; i < 40 && !copied; i++ {
		batch := e.getAll(4, true)
		for j, r := range batch {
			k := e.keys[j%len(e.keys)]
			if !bytes.Equal(r.Reply, e.want[k]) {
				t.Fatalf("batch %d, GET %s: wrong reply", i, k)
			}
			if len(r.Reply) >= backend.LendMin && !r.Lent() {
				copied = true
			}
		}
		held = append(held, batch...)
	}
	if !copied {
		t.Fatalf("still lending with %d bytes pinned, bound %d", backend.PinnedBytes(), 2*backend.MaxKeptBuf)
	}
	if n := backend.PinnedBytes(); n < 2*backend.MaxKeptBuf || n > 4*backend.MaxKeptBuf {
		t.Fatalf("%d bytes pinned when lending stopped, bound %d: past it by more than a buffer or two", n, 2*backend.MaxKeptBuf)
	}
	e.check(t, held[:len(e.keys)], true, "first batch, at the bound")
	returnAll(held)
	e.allBack(t)
}

// TestUnreturnedLeasesUnpinnedByGC: leases that are never given back (their requests dropped,
// as a session that panicked drops them) stop counting as pinned once the garbage collector
// has freed them, so that they cannot stop lending for good.
func TestUnreturnedLeasesUnpinnedByGC(t *testing.T) {
	e := newLendEnv(t, true)
	func() {
		held := e.getAll(3, true)
		for range 4 {
			returnAll(e.getAll(15, true))
		}
		e.check(t, held, true, "held")
	}()
	if backend.PinnedBytes() == 0 {
		t.Fatalf("nothing counted as pinned while leases are out")
	}
	leaked := backend.LeakedBuffers()
	deadline := time.Now().Add(10 * time.Second)
	for backend.PinnedBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted as pinned after the leases' requests were collected", backend.PinnedBytes())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if backend.LeakedBuffers() == leaked {
		t.Fatalf("buffers collected with leases out, not counted as leaked")
	}
}
