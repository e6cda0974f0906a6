package proxy

import (
	"errors"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// A loop serves many plain-socket client sessions of a cluster on one goroutine, as an
// event-driven proxy does, instead of one goroutine per client.
//
// Why: a goroutine per client parks and wakes twice per unpipelined request (waiting for the
// client's next command, then for the replies) and tries a read that finds nothing before each
// park; profiles put that at ~20% of asterd's CPU per request (docs/benchmarks.md). A loop
// waits for all its clients at once in an epoll set of its own (which it waits on through Go's
// netpoller), reads each ready client once (a short read means the socket is drained: new input
// raises a new edge), routes its commands and flushes the backends once per turn. The loops
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
	c    *Cluster
	p    *poller
	done chan struct{}

	mu       sync.Mutex
	byID     map[uint64]*session
	backends map[uint64]func() // ready funcs of the backend connections the loop reads
	kicked   []*session        // to serve on the next turn without waiting for their sockets

	replies []func()        // this turn's readable backends (the loop's goroutine only)
	ready   []*session      // this turn's sessions (the loop's goroutine only)
	touched []*backend.Conn // connections this turn queued requests on (the loop's goroutine only)
}

// startLoops starts one loop per CPU that Go may use; none where there is no epoll.
func startLoops(c *Cluster) []*loop {
	var loops []*loop
	for range runtime.GOMAXPROCS(0) {
		p, err := newPoller()
		if err != nil {
			c.log.Debug("client event loops unavailable: a goroutine per client", "error", err)
			break
		}
		l := &loop{c: c, p: p, done: make(chan struct{}), byID: make(map[uint64]*session),
			backends: make(map[uint64]func())}
		go l.run()
		loops = append(loops, l)
	}
	return loops
}

// stop ends the loop once its sessions are gone.
func (l *loop) stop() {
	l.p.close()
	<-l.done
	l.p.free()
}

// add has the loop serve s from now on.
func (l *loop) add(s *session) {
	s.loop = l
	s.src.block = false
	s.pend.onZero = s.complete
	l.mu.Lock() // publishes the above to the loop's goroutine
	l.byID[s.id] = s
	l.mu.Unlock()
	if err := l.p.add(s.raw, s.id); err != nil {
		// Closed meanwhile (Cluster.Close may have kicked it already), or the kernel refused:
		// either way the loop's turn finds it closed and ends it.
		if !errors.Is(err, net.ErrClosed) {
			l.c.log.Error("client not added to an event loop; closed", "remote", s.nc.RemoteAddr().String(), "error", err)
		}
		_ = s.nc.Close()
		l.kick(s)
	}
}

// remove takes s out of the loop: it gets no more turns.
func (l *loop) remove(s *session) {
	l.mu.Lock()
	delete(l.byID, s.id)
	l.mu.Unlock()
	l.p.del(s.raw) // fails harmlessly when the socket is closed already (and so out of the set)
}

// backendIDs number the backend connections a loop reads, apart from the sessions' ids.
var backendIDs atomic.Uint64

// Watch has the loop read a backend connection: the backend.Poller of the cluster's pools.
func (l *loop) Watch(raw *rawio.Conn, ready func()) (func(), error) {
	id := 1<<63 | backendIDs.Add(1)
	l.mu.Lock()
	l.backends[id] = ready
	l.mu.Unlock()
	unwatch := func() {
		l.mu.Lock()
		delete(l.backends, id)
		l.mu.Unlock()
		l.p.del(raw)
	}
	if err := l.p.add(raw, id); err != nil {
		unwatch()
		return nil, err
	}
	return unwatch, nil
}

// kick has the loop serve s on its next turn.
func (l *loop) kick(s *session) {
	l.mu.Lock()
	l.kicked = append(l.kicked, s)
	first := len(l.kicked) == 1
	l.mu.Unlock()
	if first {
		l.p.wake()
	}
}

// kickAll has the loop serve all its sessions on its next turn: after Cluster.Close closed
// their sockets, which raises no event of its own.
func (l *loop) kickAll() {
	l.mu.Lock()
	for _, s := range l.byID {
		l.kicked = append(l.kicked, s)
	}
	l.mu.Unlock()
	l.p.wake()
}

func (l *loop) run() {
	defer close(l.done)
	for {
		evs, err := l.p.wait()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		for _, ev := range evs {
			if f := l.backends[ev.id]; f != nil {
				l.replies = append(l.replies, f)
				continue
			}
			if s := l.byID[ev.id]; s != nil {
				if ev.hup {
					s.lmu.Lock()
					s.more = true // read on to the end even after a short read
					s.lmu.Unlock()
				}
				l.ready = append(l.ready, s)
			}
		}
		l.ready = append(l.ready, l.kicked...)
		clear(l.kicked)
		l.kicked = l.kicked[:0]
		l.mu.Unlock()
		// Replies first: they complete batches, whose clients may then be served this turn.
		for _, f := range l.replies {
			f()
		}
		clear(l.replies)
		l.replies = l.replies[:0]
		for _, s := range l.ready {
			l.serve(s)
		}
		clear(l.ready)
		l.ready = l.ready[:0]
		if len(l.touched) > 0 {
			backend.FlushAll(l.touched...) // one write per node for the whole turn
			clear(l.touched)
			l.touched = l.touched[:0]
		}
		// Let the other goroutines run between turns (sessions handed over, reader goroutines
		// of connections no loop reads): the next turn then finds more clients ready, whose
		// commands go to each node in one write.
		runtime.Gosched()
	}
}

// serve gives s a turn unless it is busy; then it comes back once its batch is answered.
func (l *loop) serve(s *session) {
	s.lmu.Lock()
	if s.busy {
		s.again = true
		s.lmu.Unlock()
		return
	}
	s.busy = true
	s.lmu.Unlock()
	s.step()
}

// touch notes connections a session queued requests on, for the end of the turn.
func (l *loop) touch(conns []*backend.Conn) {
next:
	for _, c := range conns {
		for _, t := range l.touched {
			if t == c {
				continue next
			}
		}
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
		return 0, resp.ErrWouldBlock
	}
	return n, err
}

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
	if s.n == s.window {
		s.lmu.Lock()
		s.more = true // more commands may be buffered
		s.lmu.Unlock()
	}
	if !handled {
		if s.rerr != nil {
			s.readFailed(s.rerr)
			s.end()
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
		s.end()
		return
	}
	if s.snap != nil && s.snap.table.Cluster() && s.redirected() { // only Redis Cluster nodes redirect
		s.handOver(func() bool {
			s.followRedirects()
			return !s.overLimit() && s.writeBatch(s.assemble()) && s.afterBatch()
		})
		return
	}
	out, n := s.assemble()
	w, err := s.raw.TryWrite(out)
	if err == nil && w < len(out) {
		s.handOver(func() bool { // the client is not taking its replies fast enough
			_, err := s.raw.Write(out[w:])
			s.batchDone(n)
			s.keepOut(out)
			return err == nil && s.afterBatch()
		})
		return
	}
	s.batchDone(n)
	s.keepOut(out)
	switch {
	case err != nil || s.quit:
		s.end()
	case s.rerr != nil:
		s.readFailed(s.rerr)
		s.end()
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
// request failed unsent (retry.go).
func (s *session) redirected() bool {
	found := false
	s.eachCall(func(c *call) {
		if r := c.req.Reply; len(r) > 0 && r[0] == '-' {
			found = found || redirectOrRetry(r) || c.req.Unsent
		}
	})
	return found
}

// idle gives a loop session back to its loop, which comes back to it at once when the client
// may have more to read.
func (s *session) idle() {
	s.releaseInput()
	s.lmu.Lock()
	s.busy = false
	again := s.again || s.more
	s.again = false
	s.lmu.Unlock()
	if again {
		s.loop.kick(s)
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

// end closes a loop session; once, whoever sees the end first (the goroutine that owns it).
func (s *session) end() {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	if l := s.loop; l != nil {
		l.remove(s)
	}
	_ = s.nc.Close()
	s.c.forget(s)
}
