package proxy

import (
	"errors"
	"math"
	"net"
	"runtime"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/netpoll"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// A loop serves many plain-socket client sessions of a cluster on one goroutine, as an
// event-driven proxy does, instead of one goroutine per client: a netpoll.Loop (which says why,
// and how it waits and dispatches), whose Clients are the sessions (Turn, Hangup). The loops
// read the backend connections too (backend.Poller), so the reply that completes a batch is
// read on a loop, which writes the batch's replies to the client then and there. (Connections
// dialled before the first loop client, and TLS ones, keep a reader goroutine; the reply is then
// written from there.)
//
// Whatever must wait hands the session over to a goroutine of its own (handOver): blocking
// commands and transactions, subscribed mode, redirects to follow, a client that does not take
// its replies. The goroutine gives it back to a loop once it needs a goroutine no more
// (backToLoop). TLS clients and clients of a cluster with an idle timeout stay on a goroutine;
// clients that arrive before the first routing table start on one.
type loop struct {
	*netpoll.Loop
	c *Cluster

	touched []*backend.Conn // connections this turn queued requests on (the loop's goroutine only)
}

// startLoops starts one loop per CPU that Go may use; none where there is no epoll.
func startLoops(c *Cluster) []*loop {
	var loops []*loop
	for range runtime.GOMAXPROCS(0) {
		l := &loop{c: c}
		nl, err := netpoll.New(l.flush)
		if err != nil {
			c.log.Debug("client event loops unavailable: a goroutine per client", "error", err)
			break
		}
		l.Loop = nl
		l.Start()
		loops = append(loops, l)
	}
	return loops
}

// stop ends the loop once its sessions are gone.
func (l *loop) stop() { l.Stop() }

// add has the loop serve s from now on.
func (l *loop) add(s *session) {
	s.loop = l
	s.src.block = false
	s.pend.onZero = s.complete
	// Out of the runtime's epoll set, where waiting on a goroutine put it: the loop's alone
	// watches it. Failing (no descriptor to spare), it stays in both, which costs only time.
	_ = s.raw.Unpoll()
	if err := l.Add(s.raw, s, &s.lid); err != nil {
		// Closed meanwhile (Cluster.Close may have kicked it already), or the kernel refused:
		// either way the loop's turn finds it closed and ends it.
		if !errors.Is(err, net.ErrClosed) {
			l.c.log.Error("client not added to an event loop; closed", "remote", s.nc.RemoteAddr().String(), "error", err)
		}
		s.shutdownClient() // its owner, the turn, closes it
		l.kick(s)
	}
}

// remove takes s out of the loop: it gets no more turns.
func (l *loop) remove(s *session) { l.Remove(s.lid, s.raw) }

// kick has the loop serve s on its next turn.
func (l *loop) kick(s *session) { l.Kick(s) }

// kickAll has the loop serve all its sessions on its next turn: after Cluster.Close closed
// their sockets, which raises no event of its own.
func (l *loop) kickAll() { l.KickAll() }

// flush ends a turn: one write per node for the whole turn.
func (l *loop) flush() {
	if len(l.touched) > 0 {
		backend.FlushAll(l.touched...)
		clear(l.touched)
		l.touched = l.touched[:0]
	}
}

// Hangup has a loop session read on to the end even after a short read (netpoll.Client).
func (s *session) Hangup() {
	s.lmu.Lock()
	s.more = true
	s.lmu.Unlock()
}

// Turn gives s a turn unless it is busy; then it comes back once its batch is answered
// (netpoll.Client). A turn from a loop s has left (it was in that loop's list of the turn
// while it moved to a goroutine and on to another loop) is passed on to s's loop: run on the
// old loop's goroutine, its batch would note its connections in the other loop's touched list,
// which that loop's goroutine owns.
func (s *session) Turn(from *netpoll.Loop) {
	s.lmu.Lock()
	if s.busy {
		s.again = true
		s.lmu.Unlock()
		return
	}
	if l := s.loop; l == nil || l.Loop != from {
		s.lmu.Unlock()
		if l != nil {
			l.kick(s)
		}
		return
	}
	s.busy = true
	s.lmu.Unlock()
	s.step()
}

// touch notes connections a session queued requests on, for the end of the turn.
func (l *loop) touch(conns []*backend.Conn) {
	for _, c := range conns {
		l.touchOne(c)
	}
}

// touchOne notes one connection for the end of the turn; also the backend's flushLater for
// the connections the loop reads (called from their ready funcs, on the loop's goroutine).
func (l *loop) touchOne(c *backend.Conn) {
	if !containsConn(l.touched, c) {
		l.touched = append(l.touched, c)
	}
}

// clientReader reads a client: blocking in a goroutine session, else without waiting
// (resp.ErrWouldBlock when nothing is there), noting whether a read filled all the room it was
// given, in which case the socket may hold more.
type clientReader struct {
	raw   *rawio.Conn
	block bool
	full  bool
}

func (r *clientReader) Read(p []byte) (int, error) {
	if r.block {
		return r.raw.Read(p)
	}
	n, err := r.raw.TryRead(p)
	r.full = n == len(p)
	if n == 0 && err == nil {
		if testEmptyRead != nil {
			testEmptyRead()
		}
		return 0, resp.ErrWouldBlock
	}
	return n, err
}

// testEmptyRead is set only by tests (export_test.go): it is told of each read of a loop
// session's client that found nothing.
var testEmptyRead func()

// step reads what a loop session's client sent and starts a batch with the complete commands in
// it, on the loop's goroutine, which owns the session (busy) until the batch is sent: then the
// goroutine that reads its last reply completes it (complete).
func (s *session) step() {
	defer s.endOnPanic()
	handled := false // s.n stays 0 for a batch of only a deferred command
	for s.n < s.window && !s.quit && !s.enterSub && s.deferred == nil {
		ok, err := s.rd.TryRead(&s.cmd)
		if err != nil {
			s.rerr = err
			break
		}
		if !ok {
			if handled {
				break // reading more may move the bytes this batch's commands point into
			}
			err := s.rd.Fill(math.MaxInt)
			s.lmu.Lock()
			s.more = s.src.full || (s.more && err == nil)
			s.lmu.Unlock()
			if err != nil {
				if err != resp.ErrWouldBlock {
					s.rerr = err
				}
				break
			}
			continue
		}
		if !handled {
			s.beginBatch()
			handled = true
		}
		s.handle(&s.cmd)
	}
	if s.n == s.window && s.rd.Buffered() > 0 {
		// More commands are buffered: another turn serves them once this batch is answered.
		// With none, more says whether the socket may hold more (a full read, a hang-up); a
		// short read means it did not, and what comes later raises an event. (Set here
		// regardless, it cost every client an empty read after its first command, with the
		// window at one.)
		s.lmu.Lock()
		s.more = true
		s.lmu.Unlock()
	}
	if !handled {
		if s.rerr != nil {
			s.readFailed(s.rerr)
			s.endAnswered()
			return
		}
		if s.flushPushes() { // kicked for invalidations (tracking.go)
			return
		}
		s.idle()
		return
	}
	s.loop.touch(s.touched)
	clear(s.touched)
	s.touched = s.touched[:0]
	s.pend.Done() // the session's own count: the batch completes now if nothing went out
}

// complete finishes a loop session's batch once its last reply is in, on the goroutine that
// brought the count to zero: it writes the replies and gives the session back to its loop, or
// hands it over to a goroutine of its own for whatever must wait.
func (s *session) complete() {
	defer s.endOnPanic()
	s.pend.n.Store(1) // the session's own count again, for the next batch
	if s.overLimit() {
		s.endAnswered()
		return
	}
	if s.routes != nil && s.routes.redirects() && s.redirected() {
		s.handOver(func() bool {
			s.followRedirects()
			return !s.overLimit() && s.writeBatch(s.assemble()) && s.afterBatch()
		})
		return
	}
	out, n := s.assemble()
	var w int
	var err error
	vec := s.outVec(out)
	if vec != nil {
		vec, err = s.raw.TryWritev(vec)
	} else {
		w, err = s.raw.TryWrite(out)
	}
	if left := len(vec) > 0 || vec == nil && w < len(out); err == nil && left {
		vec = s.ownVec(vec)
		s.publishOut(unwritten(vec, out[w:]))
		s.handOver(func() bool { // the client is not taking its replies fast enough
			var err error
			if vec != nil {
				err = s.raw.Writev(vec)
				s.dropVec()
			} else {
				_, err = s.raw.Write(out[w:])
			}
			s.batchDone(n)
			s.keepOut(out)
			return err == nil && s.afterBatch()
		})
		return
	}
	s.dropVec()
	s.batchDone(n)
	s.keepOut(out)
	switch {
	case err != nil || s.quit:
		s.endAnswered()
	case s.rerr != nil:
		s.readFailed(s.rerr)
		s.endAnswered()
	case s.deferred != nil || s.enterSub:
		s.handOver(s.afterBatch)
	default:
		s.idle()
	}
}

// endOnPanic is recoverPanic for a loop session's code, which then ends the session.
func (s *session) endOnPanic() {
	if r := recover(); r != nil {
		s.logPanic(r)
		s.end()
	}
}

// redirected reports whether a reply of the batch is a redirect or a retry to follow, or a
// request failed unsent (retry.go) or on a read replica's connection (redirect.go).
func (s *session) redirected() bool {
	found := false
	s.eachCall(func(c *call) {
		if r := c.req.Reply; len(r) > 0 && r[0] == '-' {
			found = found || redirectOrRetry(r) || c.req.Unsent ||
				c.req.Failure == backend.FailBackend && s.replicaMaster(c.conn) != nil
		}
	})
	return found
}

// idle gives a loop session back to its loop, which comes back to it at once when the client
// may have more to read. Once busy is cleared the session is the loop's, whose next turn may
// already run it (and hand it over: s.loop changes), so nothing of it is read after that.
func (s *session) idle() {
	s.releaseInput()
	s.rd.Release() // nothing points into it now; the next read takes a buffer again
	l := s.loop
	s.lmu.Lock()
	s.busy = false
	again := s.again || s.more
	s.again = false
	s.lmu.Unlock()
	if again {
		l.kick(s)
	}
}

// handOver moves a loop session whose batch is answered to a goroutine of its own; resume
// finishes the batch there. The loop no longer serves it (it stays busy there) until the
// goroutine gives it back (backToLoop).
func (s *session) handOver(resume func() bool) {
	s.c.handOver.Add(1)
	s.loop.remove(s)
	s.loop = nil
	s.src.block = true
	s.pend.onZero = nil
	go func() {
		if !s.serveFrom(resume) {
			s.c.forget(s)
		}
	}()
}

// backToLoop gives a goroutine session to an event loop, between batches, once nothing it does
// needs a goroutine: no transaction or WATCH open, nothing deferred, not subscribed. Then a
// client that once ran a blocking command or a transaction, hit a redirect or read slowly costs
// no goroutine while idle. (Its dedicated connections went back to the cluster's pool just
// before: releaseDed.) true: the loop owns the session now, and the caller must not touch it.
func (s *session) backToLoop() bool {
	c := s.c
	if !c.loopable(s) || s.quit || s.holdsConnState() || s.enterSub {
		return false
	}
	c.mu.Lock()
	var l *loop
	if !c.closed {
		l = c.loopForLocked(s)
	}
	c.mu.Unlock()
	if l == nil {
		return false
	}
	// Commands already read are served on the loop's first turn; new input raises an event
	// (adding a socket that is readable reports it). The session is handed over while still
	// busy, and busy is cleared last: a loop that had it in its turn's list from before it
	// was handed to this goroutine may serve it as soon as it is not busy, and must find it
	// whole. A loop that found it busy meanwhile noted it (again): it is served then.
	buffered := s.rd.Buffered() > 0
	l.add(s)
	s.lmu.Lock()
	again := s.again
	s.busy, s.again, s.more = false, false, false
	s.lmu.Unlock()
	if buffered || again {
		l.kick(s)
	}
	return true
}

// endAnswered is end for a session whose batch is answered: nothing in flight points into its
// read buffer, which goes back to the pool first. (end alone, as after a panic, leaves the
// buffer to the garbage collector: a request in flight may still point into it.)
func (s *session) endAnswered() {
	s.rd.Release()
	s.end()
}

// end closes a loop session; once, whoever sees the end first (the goroutine that owns it).
func (s *session) end() {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	if l := s.loop; l != nil {
		l.Forget(s.lid) // closing the socket, next, takes it out of the loop's epoll set
	}
	_ = s.nc.Close()
	s.c.forget(s)
}

// unwritten is how many bytes of a batch's replies the client has not taken: what is left of
// the writev vector, or of out when the batch had no big reply.
func unwritten(vec [][]byte, rest []byte) int {
	if vec == nil {
		return len(rest)
	}
	n := 0
	for _, b := range vec {
		n += len(b)
	}
	return n
}
