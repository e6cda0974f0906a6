package backend_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestUnsentOnlyWhenNeverWritten: a failed request is marked Unsent (safe to send again)
// exactly when it never reached a write to the node: a refused dial, the fail-fast backoff
// after it, a closed Conn, a request still queued when the connection died. A request that
// was written is never Unsent, whatever ended it: the node dying, a read timeout.
func TestUnsentOnlyWhenNeverWritten(t *testing.T) {
	check := func(t *testing.T, what string, r *backend.Request, unsent bool) {
		t.Helper()
		if r.Failure == backend.FailNone {
			t.Fatalf("%s: answered %q, want a failure", what, r.Reply)
		}
		if r.Unsent != unsent {
			t.Errorf("%s: Unsent = %v, want %v (reply %q)", what, r.Unsent, unsent, r.Reply)
		}
	}

	t.Run("refused dial and its backoff", func(t *testing.T) {
		down := redistest.Start(t)
		down.Kill()
		c := backend.New(backend.Options{Addr: down.Addr, DialTimeout: time.Second})
		defer c.Close()
		r, done := sendOne(c, "SET", "k", "v")
		waitReleased(t, "request to a dead node", done, 5*time.Second)
		check(t, "refused dial", r, true)
		r, done = sendOne(c, "SET", "k", "v")
		waitReleased(t, "request during the backoff", done, 5*time.Second)
		check(t, "request during the backoff", r, true)
	})

	t.Run("closed conn", func(t *testing.T) {
		srv := redistest.Start(t)
		c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second})
		c.Close()
		r, done := sendOne(c, "SET", "k", "v")
		waitReleased(t, "request to a closed Conn", done, 5*time.Second)
		check(t, "closed Conn", r, true)
	})

	t.Run("node dies", func(t *testing.T) {
		srv := redistest.Start(t)
		c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second})
		defer c.Close()
		if got := do(t, c, "PING"); !strings.HasPrefix(got, "+PONG") {
			t.Fatalf("PING: %q", got)
		}
		written, writtenDone := sendOne(c, "BLPOP", "blk", "0") // the node holds it
		time.Sleep(100 * time.Millisecond)
		// Queued behind it and never flushed: still in the Conn's buffer when the node dies.
		var wg sync.WaitGroup
		queued := &backend.Request{}
		queued.Bind(&wg)
		wg.Add(1)
		c.Send(queued, resp.AppendCommand(nil, []byte("SET"), []byte("k"), []byte("v")))
		queuedDone := released(&wg)
		srv.Kill()
		waitReleased(t, "written request", writtenDone, 5*time.Second)
		waitReleased(t, "queued request", queuedDone, 5*time.Second)
		check(t, "written request when the node died", written, false)
		check(t, "queued request when the node died", queued, true)
	})

	t.Run("read timeout", func(t *testing.T) {
		srv := redistest.Start(t)
		c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond})
		defer c.Close()
		r, done := sendOne(c, "BLPOP", "blk", "0")
		waitReleased(t, "late request", done, 5*time.Second)
		check(t, "read timeout", r, false)
		// The same Request reused for an answered command is no longer Unsent.
		c2 := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second})
		defer c2.Close()
		var wg sync.WaitGroup
		r.Bind(&wg)
		wg.Add(1)
		r.Unsent = true
		c2.Send(r, resp.AppendCommand(nil, []byte("PING")))
		c2.Flush()
		wg.Wait()
		if r.Failure != backend.FailNone || r.Unsent {
			t.Errorf("answered request: failure %v, Unsent %v", r.Failure, r.Unsent)
		}
	})
}
