// Package backend is one pipelined connection to a Redis node, shared by every client session of
// a cluster. Senders append request frames to one pending buffer and then Flush. The first
// flusher takes the writer's part: it yields once, so that every session that is ready to run
// queues its requests too, then writes them all in one syscall. Under load, many clients'
// requests share each backend write, as in twemproxy's event loop, and there is no writer
// goroutine to wake and park for each write. Replies are matched to requests in FIFO order, by a
// reader goroutine of the connection's own or by a Poller (an event loop). A fault
// (I/O error, protocol error) fails exactly the requests that were on the connection, and the
// next request redials.
//
// A read timeout is each request's own: a request with no reply ReadTimeout after it was
// written fails, and only it. The connection stays, the node's late reply is read and dropped
// in its turn, so that one client's slow command (KEYS over a big keyspace, a long script)
// does not fail the other requests that share the connection and would still be answered in
// time. The connection is reset only when the node looks gone (see watchdog).
//
// Concurrency: a Conn is safe for concurrent use: any number of sessions Send and Flush on it
// at once (one mutex guards the pending buffer; one flusher at a time writes), its replies are
// read by one goroutine at a time (its reader, or the Poller's loop), and a Request is the
// reader's from Send until its Waiter is released, its sender's before and after. A
// DedicatedPool is safe for concurrent use; a Dedicated connection is one session's at a time.
package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/redisdial"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Request is one request to a node and, once done, its reply. The caller owns it and may reuse
// it after its Waiter has been released.
type Request struct {
	// Reply holds the node's raw reply frame, or an error reply made by the backend when the
	// request failed. Valid after Done has been called on the Waiter.
	Reply []byte
	// Failure says why Reply was made by the proxy (FailNone when the node answered).
	Failure Failure
	// Unsent reports a failure of a request that was never written to the node (no
	// connection, a refused dial, the Conn closed, or queued behind a write that failed): the
	// node cannot have run it, so it is safe to send again, elsewhere.
	Unsent bool
	// batch: wg is a BatchWaiter and onDone is nil, so that deliver may release it in a run.
	batch bool
	// lendable: sent by SendLending, so that a big reply may be lent rather than copied
	// (lend.go).
	lendable bool

	// sent is when it was written (monoNanos); set only when Options.Latency or ReadTimeout
	// is. Not a time.Time: a third of the size, for the many sub requests of a split.
	sent int64

	wg     Waiter
	onDone func(*Request)
	budget *Budget // nil: the reply is kept whatever its size
	// lent holds a lent Reply's lease. A pointer, made on the first loan: the many sub
	// requests of split commands, never lent, stay small.
	lent *loan
}

// Budget bounds the reply bytes that a group of requests (one client's batch) holds: a reply
// is kept only if it fits in what the group's earlier replies left of the limit; one that does
// not is still read off the connection in its turn (the replies of the requests behind it on
// the shared connection stay theirs) but dropped: Reply empty, Failure FailDropped, Dropped
// true. The replies of one group come from several connections, hence the atomics.
type Budget struct {
	used    atomic.Int64
	limit   int64
	dropped atomic.Bool
}

// Reset starts a new group under limit bytes. No request charged to b may be outstanding;
// the requests of the group are sent after it (Send orders it before their replies).
func (b *Budget) Reset(limit int) {
	if b.used.Load() != 0 {
		b.used.Store(0)
	}
	if b.dropped.Load() {
		b.dropped.Store(false)
	}
	b.limit = int64(limit)
}

// Take charges n bytes; false (and Dropped from now on) when they do not fit. Once a reply is
// refused every later one is too: the whole group is over.
func (b *Budget) Take(n int) bool { return b.fits(b.used.Add(int64(n))) }

// fits reports whether the group's replies, used bytes up to and including one more, are
// within the limit; when not, the group is dropped from now on.
func (b *Budget) fits(used int64) bool {
	if used <= b.limit {
		return true
	}
	b.dropped.Store(true)
	return false
}

// Used is what the group's replies came to, kept or not.
func (b *Budget) Used() int64 { return b.used.Load() }

// Dropped reports whether a reply of the group did not fit.
func (b *Budget) Dropped() bool { return b.dropped.Load() }

// Charge makes the request's replies count against b from now on (nil: none).
func (r *Request) Charge(b *Budget) { r.budget = b }

// Waiter is what a request releases once its reply is in: a *sync.WaitGroup, or a session's
// own count of the replies its batch waits for.
type Waiter interface{ Done() }

// Bind sets the Waiter that the request releases when its reply is in. The caller must have
// added to it before Send.
func (r *Request) Bind(wg Waiter) {
	r.wg = wg
	_, ok := wg.(BatchWaiter)
	r.batch = ok && r.onDone == nil
}

// BatchWaiter is a Waiter that can release n requests in one call, as n calls of Done would.
// Its dynamic type must be comparable (a pointer): requests are grouped by it.
type BatchWaiter interface {
	Waiter
	DoneN(n int)
}

// OnDone makes the request call f, instead of releasing a Waiter, once Reply is in: on the
// goroutine that reads the connection's replies, or within Send when the request fails at once. f must not
// block and must not call Send on the same Conn synchronously.
func (r *Request) OnDone(f func(*Request)) {
	r.onDone = f
	_, ok := r.wg.(BatchWaiter)
	r.batch = ok && f == nil
}

func (r *Request) done() {
	if r.onDone != nil {
		r.onDone(r)
		return
	}
	r.wg.Done()
}

// Failure classifies a request that got no answer from its node.
type Failure uint8

// Failures, for error metrics.
const (
	FailNone    Failure = iota
	FailBackend         // connection refused, reset, closed, bad reply
	FailTimeout         // no reply within ReadTimeout
	FailDropped         // the node answered, but the reply did not fit the request's Budget
)

func (r *Request) finish(reply []byte) {
	r.Fill(reply, FailNone)
	r.done()
}

// finishRun is finish for consecutive replies of requests that share a BatchWaiter and a
// Budget (one client's batch on this connection): the budget is charged and the waiter
// released once for the run rather than once a request. Those two atomic adds, full fences on
// x86, were a tenth of the CPU of a pipelined cluster MGET. The outcome is that of finishing
// them one by one with no other connection's charge in between; a run of one is finish.
//
// Requests sent by SendLending with a reply of lendMin bytes or more borrow it from rb, the
// buffer the frames are in (nil: none does).
func finishRun(reqs []*Request, frames [][]byte, rb *rbuf) {
	b := reqs[0].budget
	var used int64 // the budget's charge before each reply, as one Take after another would see it
	if b != nil {
		var total int64
		for _, f := range frames {
			total += int64(len(f))
		}
		used = b.used.Add(total) - total
	}
	for i, q := range reqs {
		keep := true
		if b != nil {
			used += int64(len(frames[i]))
			keep = b.fits(used)
		}
		if keep && q.lendable && rb != nil && len(frames[i]) >= lendMin && canLend() {
			q.lend(frames[i], rb)
			continue
		}
		q.set(frames[i], FailNone, keep)
	}
	reqs[0].wg.(BatchWaiter).DoneN(len(reqs))
}

// Fill sets Reply to a copy of reply (and Failure to why), or, when reply does not fit the
// request's Budget, to nothing (FailDropped). It does not release the Waiter. The request
// was written: Unsent is cleared.
func (r *Request) Fill(reply []byte, why Failure) {
	r.set(reply, why, r.budget == nil || r.budget.Take(len(reply)))
}

// set is Fill once the budget has decided: keep false leaves Reply empty (FailDropped).
func (r *Request) set(reply []byte, why Failure, keep bool) {
	r.Unsent = false
	r.Return()
	if !keep {
		r.Reply, r.Failure = r.Reply[:0], FailDropped
		return
	}
	r.Reply, r.Failure = append(r.Reply[:0], reply...), why
}

func (r *Request) fail(msg string, why Failure) { r.failAs(msg, why, false) }

// failAs fails r; unsent: it was never written (see Request.Unsent).
func (r *Request) failAs(msg string, why Failure, unsent bool) {
	r.Return()
	r.Reply = resp.AppendError(r.Reply[:0], msg)
	r.Failure, r.Unsent = why, unsent
	r.done()
}

// errTimeout marks the watchdog's faults and expiries, so that their requests count as
// timeouts. stalled: the node has sent nothing for d (the connection is reset), rather than
// one request's reply being later than d.
type errTimeout struct {
	d       time.Duration
	stalled bool
}

func (e errTimeout) Error() string {
	if e.stalled {
		return fmt.Sprintf("read timeout: node sent nothing for %v; connection reset", e.d)
	}
	return fmt.Sprintf("read timeout: no reply within %v", e.d)
}

const (
	// stallFactor × ReadTimeout without a single byte from the node, while requests wait,
	// resets the connection. By then every request written before the last ReadTimeout has
	// failed on its own deadline already, so the reset costs at most the requests of that last
	// ReadTimeout, and only when the node would have answered them in time; in exchange a
	// connection that died without a reset from the peer (a partition, a host gone) is noticed
	// and redialled instead of failing every request one deadline at a time.
	stallFactor = 4
)

// maxAbandoned bounds the requests that failed on their deadline and whose replies are still
// owed (8 bytes of queue each): a node that keeps reading but never answers cannot grow the
// queue without limit. Past it the connection is reset. A variable for tests only.
var maxAbandoned = 1 << 16

// Options configure a Conn.
type Options struct {
	Addr         string
	DialTimeout  time.Duration // 0: no limit but the OS's
	ReadTimeout  time.Duration // longest wait for a reply while requests are outstanding; 0: none
	WriteTimeout time.Duration // 0: none
	Logger       hclog.Logger
	// OnFailure is told (without blocking) when the connection fails or cannot be dialled, or
	// requests on it time out; the data plane forwards it to the control plane as a hint. May
	// be nil.
	OnFailure func(addr string, err error)
	// Poller, when set, reads plain-TCP connections instead of a goroutine of their own.
	Poller Poller
	// TLS, when set, wraps every connection (after the TCP dial, before the handshake). With
	// no ServerName it verifies the certificate for Addr's host.
	TLS *tls.Config
	// Latency, when set, observes each reply's time since its request was written: n replies
	// of d each, for requests written together.
	Latency interface{ ObserveDurationN(d time.Duration, n int) }
	// Failed, when set, counts n requests that failed on this node (FailBackend: the
	// connection failed or is down; FailTimeout: no reply in time), for per-node error metrics.
	Failed func(why Failure, n int)
	// Username and Password, when Password is set, are sent as AUTH on every new connection
	// before anything else (backend_auth); a refusal fails the dial.
	Username, Password string
	// ReadOnly sends READONLY on every new connection, so that Redis Cluster replicas serve
	// reads.
	ReadOnly bool
	// RESP3 makes every connection switch to RESP3 (HELLO 3) so that replies come in RESP3
	// types; the proxy converts them for RESP2 clients.
	RESP3 bool
	// MaxReplyLine bounds a status or error line of a reply (0: resp.MaxReplyLineLen); a
	// longer one fails the connection as a bad reply from the node.
	MaxReplyLine int
}

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 1 * time.Second
	readBufLen = 16 << 10
	// Buffers that grew past this are dropped after use rather than kept for the connection's life.
	maxKeptBuf = 256 << 10
)

// ErrClosed is the failure reason of requests sent to a closed Conn.
var ErrClosed = errors.New("connection closed")

// Conn is a lazily dialled, self-healing, pipelined connection to one node. Send is safe for
// concurrent use and never blocks on the network.
type Conn struct {
	opts Options
	log  hclog.Logger

	mu        sync.Mutex
	out       []byte    // frames not yet written, in queue order
	queue     reqQueue  // requests sent and not yet answered, in write order
	nc        net.Conn  // current connection; nil when not connected
	w         io.Writer // writes to nc: raw system calls for plain TCP (package rawio)
	gen       uint64    // connection generation: stale readers/writers notice they are stale
	unwatch   func()    // ends the Poller's reading of nc, when it reads it
	downUntil time.Time // after a failed dial, requests fail fast until then
	downErr   error     // why the node is down
	backoff   time.Duration
	closed    bool
	writing   bool   // a flusher has taken the writer's part and has not yet found out empty
	spare     []byte // the last written buffer, for out to reuse
	unsent    int    // requests at the end of queue whose frames are still in out
	// abandoned requests at the head of queue failed on their deadline; their slots are nil
	// and their replies, once they come, are read and dropped.
	abandoned int
	// replySize is the moving average of the node's reply sizes (deliver), for holdLocked.
	replySize int
	holds     atomic.Uint64 // flushes that held the frames back (holdLocked), for tests
	reads     atomic.Uint64 // reads that brought bytes, for the stall watchdog

	wg sync.WaitGroup
	// ctx is done once Close is called: it stops the watchdog and a dial in progress.
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a Conn to opts.Addr; it dials on first use.
func New(opts Options) *Conn {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	c := &Conn{
		opts: opts,
		log:  opts.Logger.With("node", opts.Addr),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.ReadTimeout > 0 {
		c.wg.Add(1)
		go c.watchdog()
	}
	return c
}

// Addr is the node's address.
func (c *Conn) Addr() string { return c.opts.Addr }

// RESP3 reports whether the connection speaks RESP3 (Options.RESP3).
func (c *Conn) RESP3() bool { return c.opts.RESP3 }

// Send queues frame (one complete RESP command) for r; Flush sends it. frame is copied before
// Send returns, and Send never blocks on the network. r's Waiter is released when the reply
// arrives or the request fails.
func (c *Conn) Send(r *Request, frame []byte) {
	r.lendable = false
	c.send(r, frame)
}

// SendLending is Send for a caller that takes a big reply (lendMin bytes or more) as it lies
// in the connection's read buffer rather than copied into Reply (Request.Lent): it must then
// Return the request's lease (or TakeLease and Return that) after its last use of the reply,
// and soon: the buffer is not read into again until every lease on it is back. The copy it
// saves was a quarter of the proxy's CPU time for 16 KiB values.
func (c *Conn) SendLending(r *Request, frame []byte) {
	r.lendable = true
	c.send(r, frame)
}

func (c *Conn) send(r *Request, frame []byte) {
	c.mu.Lock()
	if err := c.unavailableLocked(); err != nil {
		c.mu.Unlock()
		c.failed(FailBackend, 1)
		r.failAs(c.failMsg(err), FailBackend, true)
		return
	}
	c.out = append(c.out, frame...)
	c.queue.push(r)
	c.unsent++
	early := c.writeEarlyLocked()
	c.mu.Unlock()
	if early {
		c.writeQueued(false)
	}
}

// SendPrefixed is Send with a leading command (e.g. ASKING) whose reply is read and discarded;
// both go in the same write so that nothing from another session comes between them.
func (c *Conn) SendPrefixed(r *Request, prefix *Request, prefixFrame, frame []byte) {
	r.lendable, prefix.lendable = false, false
	c.mu.Lock()
	if err := c.unavailableLocked(); err != nil {
		c.mu.Unlock()
		c.failed(FailBackend, 1) // one client request; the prefix is the proxy's own
		prefix.failAs(c.failMsg(err), FailBackend, true)
		r.failAs(c.failMsg(err), FailBackend, true)
		return
	}
	c.out = append(c.out, prefixFrame...)
	c.out = append(c.out, frame...)
	c.queue.push(prefix)
	c.queue.push(r)
	c.unsent += 2
	early := c.writeEarlyLocked()
	c.mu.Unlock()
	if early {
		c.writeQueued(false)
	}
}

// writeEarly is how many queued bytes a connection writes at once, without waiting for its
// senders' flush. A flush per batch (per turn of a loop) made one write of everything a turn
// queued; with big values that was hundreds of KiB per node (50 SETs of 16 KiB over 4 nodes),
// a buffer past maxKeptBuf, dropped after each write and grown again from nothing for the
// next: ~900 bytes allocated per SET of 16 KiB, and the garbage collector's cycles in the
// tail latency. Written at half maxKeptBuf, the two buffers a connection alternates between
// stay small enough to keep (but for a frame that alone is bigger). At a quarter of it the
// nodes spent 4-8% more CPU per SET of 16 KiB (woken for less input each time); at half, 2-3%.
const writeEarly = maxKeptBuf / 2

// writeEarlyLocked takes the writer's part when writeEarly bytes are queued and nobody has
// it; the caller then writes them (writeQueued), after releasing c.mu. c.mu must be held.
func (c *Conn) writeEarlyLocked() bool {
	if len(c.out) < writeEarly || c.writing || c.holdLocked() {
		return false
	}
	c.writing = true
	return true
}

// unavailableLocked says why a request cannot be queued now, or nil. c.mu must be held.
func (c *Conn) unavailableLocked() error {
	if c.closed {
		return ErrClosed
	}
	if c.nc == nil && c.downErr != nil && time.Now().Before(c.downUntil) {
		return c.downErr
	}
	return nil
}

func (c *Conn) failMsg(err error) string {
	return fmt.Sprintf("ERR backend %s: %v", c.opts.Addr, err)
}

// Busy reports whether requests sent on the connection still wait for their replies: queued
// or written, not those that failed on their deadline already.
func (c *Conn) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.len()-c.abandoned > 0
}

// Close fails everything outstanding and stops the connection's goroutines.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.resetLocked(ErrClosed)
	c.mu.Unlock()
	c.cancel() // a dial in progress gives up rather than holding Close for up to its timeouts
	c.wg.Wait()
}

// resetLocked closes the current connection and fails every queued request with err.
// c.mu must be held.
func (c *Conn) resetLocked(err error) {
	if c.unwatch != nil {
		c.unwatch()
		c.unwatch = nil
	}
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc, c.w = nil, nil
	}
	c.gen++
	c.out = c.out[:0]
	// The last c.unsent requests of the queue were never handed to a write (a writer takes
	// them all before it writes anything): those alone are safe to send again.
	written := c.queue.len() - c.unsent
	c.unsent = 0
	for ; c.abandoned > 0; c.abandoned-- {
		c.queue.pop() // failed already
		written--
	}
	msg, why := c.failMsg(err), FailBackend
	if _, ok := err.(errTimeout); ok {
		why = FailTimeout
	}
	n := 0
	for i := 0; ; i++ {
		r := c.queue.pop()
		if r == nil {
			break
		}
		r.failAs(msg, why, i >= written)
		n++
	}
	c.failed(why, n)
}

// failed counts n requests failed on this node, when the owner asked for it.
func (c *Conn) failed(why Failure, n int) {
	if c.opts.Failed != nil && n > 0 {
		c.opts.Failed(why, n)
	}
}

// fault handles a failure seen by the reader or writer of generation gen.
func (c *Conn) fault(gen uint64, err error) {
	c.mu.Lock()
	if gen != c.gen || c.closed {
		c.mu.Unlock()
		return
	}
	n := c.queue.len()
	c.resetLocked(err)
	c.mu.Unlock()
	c.log.Warn("backend connection failed", "error", err, "failed_requests", n)
	if c.opts.OnFailure != nil {
		c.opts.OnFailure(c.opts.Addr, err)
	}
}

// Flush writes what is queued, unless another flusher is on its way (it will find these
// frames too). Senders call it after queueing a batch. It may block while the node's socket
// buffer is full, not on a dial; use FlushAll to flush several connections with one yield.
func (c *Conn) Flush() { FlushAll(c) }

// FlushAll flushes conns (reordering the slice): it claims the writer's part of each that has
// frames queued and no flusher, yields once so that the sessions that are ready run first and
// queue their requests (they then go out in the same write instead of one write each), and
// writes them.
func FlushAll(conns ...*Conn) {
	claimed := 0
	for i, c := range conns {
		if c.claim() {
			conns[claimed], conns[i] = conns[i], conns[claimed]
			claimed++
		}
	}
	if claimed == 0 {
		return
	}
	runtime.Gosched()
	for _, c := range conns[:claimed] {
		c.writeQueued(false)
	}
}

// claim takes the writer's part when frames are queued and nobody has it.
func (c *Conn) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || len(c.out) == 0 || c.closed {
		return false
	}
	if c.holdLocked() {
		c.holds.Add(1)
		return false
	}
	c.writing = true
	return true
}

// Holding requests back for big replies. Redis writes a client's replies at most 64 KiB per
// turn of its event loop, and answers what one read of the socket brought before it reads
// again. With replies of several KiB a flush per loop turn (the proxy's) gave a node a few
// requests per read (8 at 16 KiB, against predixy's 58), and the node paid per read and in
// page faults for its reply blocks: 10.2 against 8.6 µs of its CPU per GET of 16 KiB
// (docs/benchmarks.md). So while holdInFlight requests of a connection read by a Poller are
// unanswered and its replies average holdReplySize or more, a flush leaves the new requests
// queued; the Poller's turn that reads the next replies flushes them (Poller.Watch's
// flushLater), all that queued meanwhile in one write. The node is busy meanwhile writing out
// at least holdInFlight × holdReplySize bytes, so it does not idle for it. With small replies
// the same hold left the node idle between batches (−6-11% GET throughput at 64 B, -P 16), so
// it is off for them.
const (
	holdInFlight  = 8
	holdReplySize = 4 << 10
)

// holdLocked reports whether a flush leaves the queued frames for a later one (see above).
// c.mu must be held.
func (c *Conn) holdLocked() bool {
	return c.replySize >= holdReplySize && c.unwatch != nil && c.nc != nil &&
		c.queue.len()-c.unsent-c.abandoned >= holdInFlight
}

// writeQueued writes until nothing is queued and then gives up the writer's part. With no
// connection it hands the writer's part to a goroutine that dials: a dial can take up to
// DialTimeout, and the flusher's other nodes (and every session queued on them) must not wait
// for it. own: the caller is such a goroutine, and may wait for the node (see write).
func (c *Conn) writeQueued(own bool) {
	c.mu.Lock()
	for len(c.out) > 0 && !c.closed {
		if c.nc == nil {
			c.wg.Add(1) // under c.mu and not closed: Close's Wait sees it
			c.mu.Unlock()
			go c.dialAndWrite()
			return
		}
		buf, nc, w, gen := c.out, c.nc, c.w, c.gen
		c.out = c.spare[:0]
		if c.opts.Latency != nil || c.opts.ReadTimeout > 0 {
			// One clock read per write rather than per request: they all leave now.
			c.queue.stampLast(c.unsent, time.Now())
		}
		c.unsent = 0
		c.spare = nil
		c.mu.Unlock()
		if own && c.opts.WriteTimeout > 0 {
			// Only a write that may wait needs a deadline (a flusher's never waits): a timer
			// set per flush cost more than the rest of the flush.
			_ = nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		}
		n, err := c.write(w, buf, own)
		if err == nil && n < len(buf) {
			// The node's socket buffer is full (a slow or stopped node), or it is TLS: the
			// rest waits for it on a goroutine of its own, not on the flusher, whose other
			// nodes go on.
			c.mu.Lock()
			if !c.closed {
				c.wg.Add(1)
				c.mu.Unlock()
				go c.writeRest(nc, w, buf, n, gen)
				return
			}
			break
		}
		if err != nil {
			c.fault(gen, fmt.Errorf("write: %w", err))
		}
		c.mu.Lock()
		c.keepSpare(buf)
	}
	if own && c.nc != nil && c.opts.WriteTimeout > 0 {
		// A deadline left behind would fail the flushers' writes once it passed. Cleared
		// before the writer's part is given up, so never over the next own writer's.
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	c.writing = false
	c.mu.Unlock()
}

// write writes buf, waiting for the node as long as it takes when own (the caller is a
// goroutine of the connection's own). A flusher must not wait: on a plain socket it writes
// what the socket takes now; a TLS connection cannot stop half way through a record without
// waiting, so the flusher writes nothing there and the whole write goes to a goroutine.
func (c *Conn) write(w io.Writer, buf []byte, own bool) (int, error) {
	if own {
		return w.Write(buf)
	}
	if rw, ok := w.(*rawio.Conn); ok {
		return rw.TryWrite(buf)
	}
	return 0, nil
}

// writeRest finishes a write the node could not take at once, holding the writer's part, and
// then writes what was queued meanwhile.
func (c *Conn) writeRest(nc net.Conn, w io.Writer, buf []byte, n int, gen uint64) {
	defer c.wg.Done()
	if c.opts.WriteTimeout > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	}
	if _, err := w.Write(buf[n:]); err != nil {
		c.fault(gen, fmt.Errorf("write: %w", err))
	}
	c.mu.Lock()
	c.keepSpare(buf)
	c.mu.Unlock()
	c.writeQueued(true)
}

// keepSpare keeps a written buffer for the next batch unless it grew too big. c.mu must be held.
func (c *Conn) keepSpare(buf []byte) {
	if cap(buf) <= maxKeptBuf && c.spare == nil {
		c.spare = buf
	}
}

// dialAndWrite dials, then writes what is queued, holding the writer's part throughout. A
// failed dial has failed everything queued (and Send fails fast during the backoff).
func (c *Conn) dialAndWrite() {
	defer c.wg.Done()
	if c.dial() {
		c.writeQueued(true)
		return
	}
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
}

// Dial opens one connection to opts.Addr as a Conn would, through redisdial: TCP, TLS when
// opts.TLS is set, then AUTH, HELLO 3 (with opts.RESP3) and READONLY as opts ask, replies
// checked, the handshake's replies waited for up to ReadTimeout. Sessions use it for the
// dedicated connections that blocking commands, transactions and subscriptions need.
func Dial(opts Options) (net.Conn, error) { return DialContext(context.Background(), opts) }

// DialContext is Dial, given up (connect, TLS handshake and handshake alike) when ctx is done.
func DialContext(ctx context.Context, opts Options) (net.Conn, error) {
	ro := redisdial.Options{
		Addr: opts.Addr, DialTimeout: opts.DialTimeout, ReplyTimeout: opts.ReadTimeout, TLS: opts.TLS,
		Username: opts.Username, Password: opts.Password, ReadOnly: opts.ReadOnly,
	}
	if opts.RESP3 {
		ro.Protocol = 3
	}
	return redisdial.Dial(ctx, ro)
}

// dial connects and starts the reader; on failure it fails what is queued and backs off.
func (c *Conn) dial() bool {
	nc, err := DialContext(c.ctx, c.opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		if err == nil {
			nc.Close()
		}
		return false
	}
	if err != nil {
		if c.backoff == 0 {
			c.backoff = minBackoff
		} else if c.backoff *= 2; c.backoff > maxBackoff {
			c.backoff = maxBackoff
		}
		c.downErr = err
		c.downUntil = time.Now().Add(c.backoff)
		c.resetLocked(c.downErr)
		c.log.Debug("connect failed", "error", err, "backoff", c.backoff)
		if c.opts.OnFailure != nil {
			go c.opts.OnFailure(c.opts.Addr, err)
		}
		return false
	}
	c.backoff, c.downErr = 0, nil
	c.nc, c.w = nc, rawio.ReadWriter(nc)
	c.gen++
	if c.opts.Poller != nil {
		if raw := rawio.New(nc); raw != nil {
			r := newReplies(c, c.gen)
			r.raw = raw
			if unwatch, later, err := c.opts.Poller.Watch(raw, r.ready, r.waiting); err == nil {
				c.unwatch = unwatch
				r.later = later
				return true
			}
		}
	}
	c.wg.Add(1)
	go c.readLoop(nc, c.gen)
	return true
}

// Poller reads connections for them: an event loop that waits for many sockets at once, so
// that no reader goroutine wakes per reply batch (see the proxy's loop.go). Watch registers a
// plain socket; the poller then calls ready, from one goroutine at a time, whenever it may have
// become readable (edge-triggered: ready reads until a short read), and may call it without an
// event when waiting (safe from any goroutine) says replies are owed. unwatch ends that; the
// Conn calls it before it closes the socket. flushLater, called from within ready, has the
// poller flush the Conn once the current turn's ready calls are done (FlushAll): requests
// held back (holdLocked) go out then, with whatever the turn queued.
type Poller interface {
	Watch(raw *rawio.Conn, ready func(), waiting func() bool) (unwatch func(), flushLater func(*Conn), err error)
}

// replies reads one connection's replies and finishes their requests in FIFO order: from a
// goroutine of the connection's own (readLoop), or when a Poller says the socket is ready.
type replies struct {
	c          *Conn
	gen        uint64
	buf        []byte // rb.b
	start, end int
	rb         *rbuf // the buffer read into, held (a reference) until the next one
	frames     [][]byte
	reqs       []*Request
	// The reply at buf[start:] scanned so far, kept across reads so that a big reply is not
	// rescanned from its start after each one; new with each connection.
	sc   resp.ReplyScanner
	raw  *rawio.Conn // polled: the socket
	done bool        // polled: the connection failed or was replaced
	// later is the Poller's flushLater: set by dial under c.mu after Watch, so read by deliver
	// only once it has held c.mu (the poller may call ready before Watch returns).
	later func(*Conn)
}

func newReplies(c *Conn, gen uint64) *replies {
	r := &replies{c: c, gen: gen}
	r.use(newRbuf(readBufLen))
	r.sc.MaxLine = c.opts.MaxReplyLine
	return r
}

// room is where the next read goes: the free end of the buffer, made when there is none. The
// unfinished reply at the end moves to the front; when it fills more than an eighth of the
// buffer (big replies: a 16 KiB one would move nearly whole after each read of a 32 KiB
// buffer, a copy as big as the reply), the buffer doubles instead, up to maxKeptBuf, so that
// the moves become rare and each read takes many replies.
//
// What was read before r.start is overwritten only while no lease is out on it (SendLending):
// with leases out, reads go on past them, and once less than an eighth of the buffer is left
// the unfinished reply moves to another buffer of the same size (from the pool) instead.
func (r *replies) room() []byte {
	if r.rb.lent() && len(r.buf)-r.end < len(r.buf)/8 {
		size := len(r.buf)
		if size > maxKeptBuf && r.end-r.start < maxKeptBuf/2 {
			size = maxKeptBuf // grown for a huge reply, lent: not made again for the next ones
		}
		r.moveTo(newRbuf(size))
	}
	// rb has no lease out here, or room left: only this goroutine lends from it.
	if r.end == len(r.buf) {
		tail := r.end - r.start
		if r.start > 0 && (tail <= len(r.buf)/8 || len(r.buf) >= maxKeptBuf) {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		} else {
			r.moveTo(newRbuf(2 * len(r.buf)))
		}
	}
	return r.buf[r.end:]
}

// moveTo makes nb the buffer read into, with the unfinished reply at its start, and lets the
// old one go: to the pool once the last lease on it is back.
func (r *replies) moveTo(nb *rbuf) {
	old := r.rb
	r.end = copy(nb.b, r.buf[r.start:r.end])
	r.start = 0
	r.use(nb)
	old.drop()
}

func (r *replies) use(rb *rbuf) { r.rb, r.buf = rb, rb.b }

// deliver takes n bytes just read into room and finishes the requests whose replies are
// whole. false: the connection is over (failed here, or replaced meanwhile).
func (r *replies) deliver(n int) bool {
	c := r.c
	r.end += n
	c.reads.Add(1)
	r.frames = r.frames[:0]
	for r.start < r.end {
		m, err := r.sc.Scan(r.buf[r.start:r.end])
		if err != nil {
			c.fault(r.gen, fmt.Errorf("bad reply: %w", err))
			return false
		}
		if m == 0 {
			break
		}
		if r.buf[r.start] == '>' {
			// A RESP3 push is no reply to a request; shared connections never subscribe,
			// so it can only be stray (e.g. tracking) and is dropped.
			r.start += m
			continue
		}
		r.frames = append(r.frames, r.buf[r.start:r.start+m])
		r.start += m
	}
	if len(r.frames) == 0 {
		return true
	}
	r.reqs = r.reqs[:0]
	size := 0
	for _, f := range r.frames {
		size += len(f)
	}
	c.mu.Lock()
	if r.gen != c.gen {
		c.mu.Unlock()
		return false
	}
	c.replySize += (size/len(r.frames) - c.replySize) / 8
	// Frames queued and no writer: held back, or queued since the turn's flush; either way
	// the poller's end of turn flushes them.
	flush := r.later != nil && len(c.out) > 0 && !c.writing
	for range r.frames {
		if c.abandoned > 0 {
			// The reply of a request that failed on its deadline: dropped (nil) in its turn.
			c.queue.pop()
			c.abandoned--
			r.reqs = append(r.reqs, nil)
			continue
		}
		q := c.queue.pop()
		if q == nil {
			break
		}
		r.reqs = append(r.reqs, q)
	}
	c.mu.Unlock()
	if lat := c.opts.Latency; lat != nil {
		// Requests flushed together share their sent time: one observation each run.
		now := time.Now()
		for i := 0; i < len(r.reqs); {
			q := r.reqs[i]
			if q == nil {
				i++
				continue
			}
			j := i + 1
			for j < len(r.reqs) && r.reqs[j] != nil && r.reqs[j].sent == q.sent {
				j++
			}
			lat.ObserveDurationN(time.Duration(monoNanos(now)-q.sent), j-i)
			i = j
		}
	}
	for i := 0; i < len(r.reqs); {
		q := r.reqs[i]
		if q == nil {
			i++
			continue
		}
		if !q.batch {
			q.finish(r.frames[i])
			i++
			continue
		}
		j := i + 1
		for j < len(r.reqs) && r.reqs[j] != nil && r.reqs[j].batch && r.reqs[j].budget == q.budget && r.reqs[j].wg == q.wg {
			j++
		}
		finishRun(r.reqs[i:j], r.frames[i:j], r.rb)
		i = j
	}
	// The frames point into buf: cleared, they keep no big buffer alive once it is dropped.
	clear(r.frames)
	if len(r.reqs) < len(r.frames) {
		c.fault(r.gen, errors.New("reply without a request"))
		return false
	}
	if r.start == r.end && !r.rb.lent() {
		r.start, r.end = 0, 0
		if len(r.buf) > maxKeptBuf {
			r.moveTo(newRbuf(readBufLen))
		}
	}
	if flush {
		r.later(c)
	}
	return true
}

func (c *Conn) readLoop(nc net.Conn, gen uint64) {
	defer c.wg.Done()
	rd := rawio.ReadWriter(nc)
	r := newReplies(c, gen)
	for {
		n, err := rd.Read(r.room())
		if err != nil {
			c.fault(gen, fmt.Errorf("read: %w", err))
			return
		}
		if !r.deliver(n) {
			return
		}
	}
}

// ready is what a Poller calls: read until a short read (the socket is drained; more input
// raises a new edge), delivering as readLoop does.
func (r *replies) ready() {
	for !r.done {
		p := r.room()
		n, err := r.raw.TryRead(p)
		if err != nil {
			r.done = true
			r.c.fault(r.gen, fmt.Errorf("read: %w", err))
			return
		}
		if n == 0 {
			return
		}
		if !r.deliver(n) {
			r.done = true
			return
		}
		if n < len(p) {
			return
		}
	}
}

// waiting reports whether the connection owes replies: requests written and not yet answered
// (abandoned ones too: their late replies are read and dropped). A Poller's read without an
// event is worth a system call only then. Only c's state, under c.mu: a reset (which r.done
// would say on the poller's goroutine) moves c.gen on.
func (r *replies) waiting() bool {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.gen == c.gen && c.queue.len()-c.unsent > 0
}

// watchdog enforces ReadTimeout; checking it from here costs the hot path nothing. Each tick
// it fails the requests written ReadTimeout ago or earlier that have no reply yet (expireLocked),
// and it resets the connection when the node has sent nothing at all for stallFactor ×
// ReadTimeout while requests wait, or when more than maxAbandoned replies are owed.
func (c *Conn) watchdog() {
	defer c.wg.Done()
	tick := c.opts.ReadTimeout / 4
	if tick < 5*time.Millisecond {
		tick = 5 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastReads uint64
	var lastGen uint64
	var stalledSince time.Time
	var expired []*Request
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			reads := c.reads.Load()
			c.mu.Lock()
			waiting := c.queue.len()-c.unsent > 0 && c.nc != nil
			gen := c.gen
			expired = expired[:0]
			if waiting {
				expired = c.expireLocked(now, expired)
			}
			owed := c.abandoned
			c.mu.Unlock()
			if len(expired) > 0 {
				// Failed outside the lock, as replies are finished: a request's OnDone may
				// complete a whole batch. Their slots are empty: nothing else touches them.
				n, msg := len(expired), c.failMsg(errTimeout{d: c.opts.ReadTimeout})
				c.failed(FailTimeout, n)
				for i, r := range expired {
					r.fail(msg, FailTimeout)
					expired[i] = nil
				}
				if cap(expired) > 4096 {
					expired = nil // a burst's worth is not kept for the connection's life
				}
				c.log.Debug("requests timed out; connection kept", "timed_out", n, "replies_owed", owed)
				// Requests held back (holdLocked) for the replies of these may go out now.
				c.Flush()
				if c.opts.OnFailure != nil {
					// A hint as a reset gave one (a Redis Cluster's topology is fetched again:
					// the node may have failed over), at most once a tick.
					c.opts.OnFailure(c.opts.Addr, errTimeout{d: c.opts.ReadTimeout})
				}
			}
			if owed > maxAbandoned {
				c.fault(gen, errTimeout{d: c.opts.ReadTimeout})
				continue
			}
			if !waiting || reads != lastReads || gen != lastGen {
				lastReads, lastGen, stalledSince = reads, gen, now
				continue
			}
			if stall := stallFactor * c.opts.ReadTimeout; now.Sub(stalledSince) >= stall {
				c.fault(gen, errTimeout{d: stall, stalled: true})
			}
		}
	}
}

// expireLocked takes the written requests that have waited ReadTimeout or longer out of the
// queue and appends them to expired, for the caller to fail. They are the oldest, at the head
// of the queue (requests are stamped as they are written, in queue order); their slots stay,
// empty, so that their replies are matched and dropped in turn. c.mu must be held.
func (c *Conn) expireLocked(now time.Time, expired []*Request) []*Request {
	written := c.queue.len() - c.unsent
	for c.abandoned < written {
		r := c.queue.at(c.abandoned)
		if time.Duration(monoNanos(now)-r.sent) < c.opts.ReadTimeout {
			break
		}
		c.queue.set(c.abandoned, nil)
		c.abandoned++
		expired = append(expired, r)
	}
	return expired
}

// reqQueue is a FIFO ring of requests that grows as needed and never shrinks below its peak,
// so steady state allocates nothing. Its length is a power of two, so that a position is a
// mask away (i & mask) rather than a division (i % len), which each request paid three times.
type reqQueue struct {
	buf        []*Request
	head, size int
}

func (q *reqQueue) len() int { return q.size }

// slot is the index into buf of the i-th request from the head.
func (q *reqQueue) slot(i int) int { return (q.head + i) & (len(q.buf) - 1) }

func (q *reqQueue) push(r *Request) {
	if q.size == len(q.buf) {
		n := 2 * len(q.buf)
		if n == 0 {
			n = 64
		}
		nb := make([]*Request, n)
		for i := 0; i < q.size; i++ {
			nb[i] = q.buf[q.slot(i)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[q.slot(q.size)] = r
	q.size++
}

// at is the i-th request from the head.
func (q *reqQueue) at(i int) *Request { return q.buf[q.slot(i)] }

// set replaces the i-th request from the head.
func (q *reqQueue) set(i int, r *Request) { q.buf[q.slot(i)] = r }

// stampLast sets sent on the last n requests.
func (q *reqQueue) stampLast(n int, t time.Time) {
	at := monoNanos(t)
	for i := q.size - n; i < q.size; i++ {
		q.buf[q.slot(i)].sent = at
	}
}

// monoEpoch is when the process started, as the monotonic clock tells: Request.sent counts
// from it.
var monoEpoch = time.Now()

// monoNanos is t (from time.Now) in nanoseconds since monoEpoch, by the monotonic clock.
func monoNanos(t time.Time) int64 { return int64(t.Sub(monoEpoch)) }

func (q *reqQueue) pop() *Request {
	if q.size == 0 {
		return nil
	}
	r := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = q.slot(1)
	q.size--
	return r
}
