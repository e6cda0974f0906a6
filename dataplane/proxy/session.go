package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aster-proxy/aster/dataplane/acl"
	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
)

const (
	readBufSize = 4 << 10
	// maxBatch bounds the commands one session has in flight: the session stops reading its
	// client until their replies are written, which is what keeps memory bounded whatever a
	// client pipelines. The session's window (pace) bounds them further by reply bytes.
	maxBatch = 1024
	// Output buffers that grew past this are dropped after the batch.
	maxKeptOut = 256 << 10
	// Scratch slices of reply elements longer than this are dropped after the batch.
	maxKeptElems = 4096
	// A forwarded reply this big is written from its request's buffer (writev) rather than
	// copied into the output: the copy, and an output buffer that must grow to a batch of big
	// replies, cost more than an iovec.
	bigReply = 4 << 10
)

type placeKind uint8

const (
	placeLocal   placeKind = iota // reply made by the proxy, in local
	placeForward                  // one backend request
	placeSplit                    // several backend requests, merged by policy
)

// place is one client command's place in the batch's reply order: the reply made here, or
// the backend requests whose replies make it. (Not "slot": that is Redis Cluster's hash slot,
// which the same functions handle.) Places are reused across batches; their backend requests
// must not move while in flight, hence pointers.
type place struct {
	// First, what every command touches (nextPlace, forward, assemble, release), on as few
	// cache lines as will take it: with thousands of clients or deep pipelines, the places of
	// a batch are out of the cache when its replies come, and each line is a miss.
	kind   placeKind
	policy command.Policy
	// proto3: the client spoke RESP3 when it sent this command, so its reply must be RESP3.
	// shape: how the reply converts when the backends speak the other protocol (see resp3.go).
	proto3 bool
	silent bool // CLIENT REPLY OFF or SKIP: the reply is dropped (clientreply.go)
	// cacheOn: a GET or HGET whose reply goes to the client cache (cached, clientcache.go)
	cacheOn bool
	nsubs   int
	local   []byte
	main    call   // placeForward
	raw     []byte // the command as the client sent it, for the slow log; nil when it is off
	// budget is what the place's replies count against: the session's (see overLimit), or
	// nil for the first place of a batch, whose reply goes whatever its size. Places are reused
	// at the same position in every batch, so it is set once.
	budget *backend.Budget
	shape  *resp.Shape
	// splitBuf holds a split's sub-commands, one after the other (planSplit)
	splitBuf []byte
	subs     []*call // requests of a split command, one per node (or slot) group

	cached cacheMiss
	order  []uint16 // split: each key's sub request (group), in the client's key order
	// keyspace commands (keyspace.go): how replies merge; for SCAN, the position of the node
	// scanned among scanNodes
	ksOp               keyspaceOp
	scanPos, scanNodes int
	rawBuf             []byte // raw re-encoded from an inline command
}

// call is one backend request and what it takes to send it again after a redirect.
type call struct {
	req   backend.Request
	frame []byte // as sent: the client's own bytes (valid until the next blocking read) or buf
	buf   []byte // frame bytes the call owns
	conn  *backend.Conn
	ask   *backend.Request // reply to the ASKING sent ahead of it after an ASK redirect; ignored
	asked bool             // last sent after an ASK redirect, with ASKING ahead of it
	keys  int32            // a split's sub-command: how many of the client's keys it carries (in asked's padding)
}

// pending counts the backend requests of a session's batch that have no reply yet, plus one
// count of the session's own while it is still sending, so that the count reaches zero only
// once the batch is complete. A goroutine session waits for that (Wait); in a loop session
// (loop.go) whatever brings the count to zero completes the batch then and there (onZero).
type pending struct {
	n      atomic.Int32
	wake   chan struct{}
	onZero func() // nil for a goroutine session
}

func (p *pending) init(onZero func()) {
	p.n.Store(1)
	p.wake = make(chan struct{}, 1)
	p.onZero = onZero
}

func (p *pending) Add(d int) { p.n.Add(int32(d)) }

// Done releases one request, or a loop session's own count.
func (p *pending) Done() { p.DoneN(1) }

// DoneN releases n requests at once (backend.BatchWaiter: the replies of a batch's requests
// read together from one connection).
func (p *pending) DoneN(n int) {
	if p.n.Add(int32(-n)) == 0 {
		if p.onZero != nil {
			p.onZero()
			return
		}
		p.wake <- struct{}{}
	}
}

// Wait gives up the session's own count and waits until every request has its reply; the
// session holds its count again when Wait returns. Only the last request's Done can then bring
// the count to zero, so each wake-up belongs to exactly one Wait.
func (p *pending) Wait() {
	if p.n.Add(-1) != 0 {
		<-p.wake
	}
	p.n.Store(1)
}

func newCall(wg backend.Waiter, b *backend.Budget) *call {
	c := &call{}
	c.req.Bind(wg)
	c.req.Charge(b)
	return c
}

// session serves one client connection: read every command available, route and send them all,
// and once their replies are in, write them in order with one write; repeat. A loop runs it
// (loop.go), or a goroutine of its own (serve).
//
// Ownership. At any moment one goroutine owns a session and alone touches its fields, except
// those its groups below name; ownership passes as follows, and each pass publishes what the
// previous owner wrote (through lmu, a loop's mu, a go statement or pending's atomic count).
//
//   - Goroutine session (serve, serveFrom): its goroutine owns it. While it waits for a
//     blocking reply or is subscribed, it lends the client's input (rd, cmd) to a watcher
//     goroutine (watchClient, subscribed) and takes it back before reading again.
//   - Loop session, idle (busy false): the loop owns it; nothing runs for it until its client is
//     ready or it is kicked.
//   - Running a batch (Turn sets busy, step): the loop's goroutine reads the client, routes
//     the commands and sends them, then gives up the session's own count (pend.Done); with no
//     command to run it gives the session back at once (idle) or ends it.
//   - In flight: no goroutine touches the fields; the backend connections fill the batch's
//     requests (their replies, the budget) until the last reply brings the count to zero.
//   - Completing (complete, pending.onZero): the goroutine that brought the count to zero owns
//     it: a loop reading that backend (not necessarily the session's), a connection's reader
//     goroutine, or step itself when nothing went out. It writes the replies, then gives the
//     session back to its loop (idle: busy false), hands it over (handOver) or ends it (end).
//   - Handed over: a goroutine of its own owns it (serveFrom), and busy stays true; once it
//     needs a goroutine no more, backToLoop adds it to a loop and clears busy last.
//
// The flags under lmu are how the loop, which learns of a session's client from its own
// goroutine, meets the session's owner: busy says whether the session is owned by anyone but
// its idle loop (a turn, a batch in flight, a goroutine); a loop that finds it busy sets again
// instead of serving it, and whoever clears busy (idle, backToLoop) kicks the loop for it.
// more says the client may have more to read though no new edge will come (a read that filled
// the buffer, a full window, a hang-up the loop saw): idle kicks for it too. A session that
// starts on a goroutine (TLS, an idle timeout, no table yet) is in no loop: its flags matter
// from backToLoop on.
type session struct {
	// The groups are laid out by how often a batch touches them, the loop's flags and the
	// input first, the scratch of split commands last: with thousands of clients the sessions
	// are out of the cache when their turn comes, and each cache line touched is a miss. First,
	// on the first cache lines, what every batch reads at once (step's loop, beginBatch), each
	// field owned as the group its comment names.
	n        int           // the batch: places used by the current batch
	window   int           // the batch: how many commands the next batch may take (pace)
	quit     bool          // the client's state
	enterSub bool          // the batch: a SUBSCRIBE ends it: subscribed mode follows (pubsub.go)
	authed   bool          // the client's state: no password configured, or the client authenticated
	proto3   bool          // the client's state: the client switched to RESP3 with HELLO 3
	deferred *command.Spec // exclusive connections (below)
	c        *Cluster      // set when the session is made (below)
	raw      *rawio.Conn   // set when the session is made: for any plain-socket client
	gen      *generation   // the batch: the cluster's, loaded with routes (beginBatch): knobs, access rules
	routes   *routes       // the batch

	// Loop state (loop.go). loop and rerr are the owner's; lmu guards busy, again and more,
	// which the loop reads and writes from its goroutine whoever owns the session (see above).
	loop  *loop
	rerr  error // a loop session's read failure, acted on once its batch is answered
	lmu   sync.Mutex
	busy  bool        // owned by a turn, a batch in flight or a goroutine: not the loop's to serve
	again bool        // the loop saw the client ready while busy: serve it once not busy
	more  bool        // the client may have more to read: a full read, a full window, or a hang-up
	ended atomic.Bool // end ran: whoever sees the end first closes the session, once

	// The client's input: the owner's, or lent to a watcher goroutine (see above). src is what
	// rd reads from a plain socket: blocking for a goroutine session (loop.add, handOver).
	rd  *resp.Reader
	cmd resp.Command
	src clientReader

	// The batch: built by the owner (handle), in flight, then collected by its completer.
	// out holds the replies in order, but for the big ones (bigReply) that assemble leaves in
	// their requests' buffers: bigs says where they go in out; vec is the output cut around
	// them, for writev (outVec). The requests' buffers are the session's, not the backend
	// connection's (Request.Fill copied them), and nothing fills them again before the next
	// batch, which starts only once this one's output is written.
	out    []byte
	bigs   []bigPart
	vec    [][]byte
	pend   pending
	places []*place
	// budget bounds the reply bytes the batch holds beyond its first reply (overLimit); the
	// backend connections charge it while the batch is in flight.
	budget  backend.Budget
	start   time.Time       // when the batch's first command was read, with metrics or the slow log
	touched []*backend.Conn // connections with requests of this batch not yet flushed
	cw      cacheWrites     // keys the batch wrote, for the client cache (clientcache.go)

	// The client's state that every batch or command reads, kept across batches: the owner's.
	// On the lines after the batch's, for the same reason as the groups above.
	trkPre []byte // invalidations queued before the batch began, written first (tracking.go)
	// trkQueue: invalidations may be queued for the session (tracking.go: its own, or as a
	// REDIRECT target); proto3Pub mirrors proto3 for the tracking links' goroutines.
	trkQueue, proto3Pub atomic.Bool
	// tracks: CLIENT TRACKING is on; trkCaching: CLIENT CACHING applies to the next command
	// (tracking.go).
	tracks, trkCaching bool
	// reply is CLIENT REPLY's mode (clientreply.go).
	reply replyMode
	// username is who the client authenticated as ("" before, or without passwords); user
	// its rules (nil: every right), resolved from rightsOf (acl.go).
	username string
	user     *acl.User
	rightsOf *rightsTable
	lastSpec *command.Spec // the last command's (LookupRecent; CLIENT LIST's cmd)
	prevSpec *command.Spec // the one before, when another (LookupRecent)
	tally    tally         // commands not yet in the cluster's counts (tally.go)
	keys     []int         // scratch: the command's key positions
	rr       uint32        // round robin over a slot's replicas
	hotTick  uint32        // commands since the last hot-key sample
	// id is set when the session is made, read-only after: any goroutine may read it. Here,
	// not with the others of its kind below, for conn, which every forwarded command calls:
	// there it was on a line that nothing else of a batch reads, a cache miss per batch.
	id uint64
	// tx is the transaction, which needs a goroutine session (afterBatch); every command reads
	// whether one is open (its first field).
	tx txState
	// stat is what the owner publishes for CLIENT LIST from other sessions (clientlist.go):
	// publishStat reads its first fields every batch.
	stat clientStat

	// Set when the session is made, read-only after (as id, above): any goroutine may read
	// them. Only the session's owner closes nc; Cluster.Drain and Close, CLIENT KILL, a
	// tracking or pub/sub output over its limit shut it down from theirs (shutdownClient).
	nc      net.Conn
	rw      io.ReadWriter // nc's reads and writes: raw system calls for plain TCP (package rawio)
	idleRd  *idleReader   // reads the client when the cluster has client_idle_timeout (idle.go); else nil
	created time.Time     // CLIENT LIST's age
	// lid is the id its loop knows it by (netpoll.Loop.Add): set by loop.add, the owner's.
	lid uint64

	// The client's state, kept across batches and read when asked for: the owner's.
	remote string // the client's address, once the slow log needed it
	name   string // CLIENT SETNAME's (client.go)
	// psub is the session's pub/sub while subscribed, for invalidations sent from a tracking
	// link's goroutine (tracking.go); set and cleared by subscribed.
	psub   atomic.Pointer[pubsub]
	killed atomic.Bool // CLIENT KILL chose it: not listed, nor killed (counted) again

	// Exclusive connections, which need a goroutine session (afterBatch), as the transaction
	// (tx, above) does. deferred is a command that must run alone, after the batch's replies
	// are written, on a dedicated connection (a blocking command, EXEC, WATCH, ...): the batch
	// ends with it and runDeferred runs it (the field is on the first line, above). deferNode
	// is its node, when known when it was read.
	// deferMute: the deferred command's reply is silenced (CLIENT REPLY, clientreply.go).
	deferMute bool
	deferNode int
	blk       []byte     // a deferred command's frame, copied out of the read buffer
	ded       []*dedConn // this session's dedicated connections, one per node at most
	dedRoutes *routes    // the table ded was last checked against (pruneDed)
	// blocked: what a blocking command waits on, for CLIENT UNBLOCK (clientunblock.go).
	blocked blockMark

	// Scratch space reused by the commands that need it (splits, RESP3), the owner's.
	conv    []byte      // replies converted between RESP2 and RESP3
	groupOf map[int]int // group key → sub request index, once there are many (findGroup)
	grpIdx  []uint16    // group → sub request index + 1 instead, for a table of few groups (findGroup)
	gks     []int       // group key of each sub request
	counts  []int       // keys per sub request of a split command
	sizes   []int       // bytes per sub request of a split command
	targets []int       // node of each sub request
	elems   [][]byte
	base    []int // where each sub reply's next element is (MGET merge)
	hotKeys []int // key positions of a sampled command
}

// bigPart is a big reply of the batch, written from its request's buffer after out[:at], or
// from the backend connection's read buffer where it was lent (lease; SendLending).
type bigPart struct {
	at    int
	reply []byte
	lease backend.Lease
}

// newSession makes the session of client nc (TCP_NODELAY set: Go's Accept and
// rawio.Listener set it).
func newSession(c *Cluster, nc net.Conn) *session {
	if c.sockable() {
		// Out of the runtime's epoll set: an event loop will serve it (rawio.Sock says why).
		// acceptLoop made it a Sock already unless the settings changed meanwhile.
		if sk := rawio.NewSock(nc); sk != nil {
			nc = sk
		}
	}
	s := &session{c: c, nc: nc, id: c.nextID.Add(1), created: time.Now()}
	s.stat.last, s.stat.cmd, s.stat.multi = s.created.Unix(), "NULL", -1
	if s.raw = rawio.New(nc); s.raw != nil {
		// The session's owner alone closes nc (end, serveFrom); every other goroutine shuts
		// it down (shutdownClient), so its loop reads and writes the descriptor directly.
		s.raw.Own()
		// Blocking until a loop takes the session (clientReader).
		s.rw, s.src = s.raw, clientReader{raw: s.raw, block: true}
		// Its read buffer is taken when input comes and given back between batches on a loop
		// (idle): most clients are idle most of the time, or connect for one command.
		s.rd = resp.NewPooledReader(&s.src)
	} else {
		s.rw = nc
		s.rd = resp.NewReader(nc, readBufSize)
		s.stat.inBuf = readBufSize
	}
	s.watchIdle()
	s.setAuthed(len(c.access().users) == 0)
	s.pend.init(nil)
	s.window = 1 // grown by pace as replies prove small
	// Sessions start at different points of the sampling period, so that short-lived clients
	// are sampled too.
	s.hotTick = uint32(s.id % uint64(c.gen.Load().hot.Config().SampleEvery))
	return s
}

// serve runs the session on a goroutine of its own until the client goes, or until an event
// loop takes it (true: the session lives on there).
func (s *session) serve() bool { return s.serveFrom(nil) }

// serveFrom is serve for a session a loop handed over (loop.go): resume first finishes the
// batch it was in; false means the client is gone.
func (s *session) serveFrom(resume func() bool) (looped bool) {
	defer func() {
		if !looped {
			s.closeDedicated()
			_ = s.nc.Close()
		}
	}()
	defer s.recoverPanic()
	if resume != nil && !resume() {
		return false
	}
	for !s.quit {
		s.releaseDed()
		s.releaseInput()
		if s.backToLoop() {
			return true
		}
		err := s.readCommand()
		if err != nil {
			s.readFailed(err)
			return false
		}
		s.beginBatch()
		s.handle(&s.cmd)
		for s.n < s.window && !s.quit && !s.enterSub && s.deferred == nil {
			ok, err := s.rd.TryRead(&s.cmd)
			if err != nil {
				s.finishBatch()
				s.readFailed(err)
				return false
			}
			if !ok {
				break
			}
			s.handle(&s.cmd)
		}
		if !s.finishBatch() || !s.afterBatch() {
			return false
		}
	}
	return false
}

// recoverPanic is deferred by a goroutine session: a bug must cost one client its connection,
// never the process.
func (s *session) recoverPanic() {
	if r := recover(); r != nil {
		s.logPanic(r)
	}
}

func (s *session) logPanic(r any) {
	s.c.log.Error("session panicked; connection closed", "remote", s.nc.RemoteAddr().String(),
		"panic", r, "stack", string(debug.Stack()))
}

// afterBatch runs what follows a written batch on the session's goroutine: the command it
// deferred, or subscribed mode. false: the client is gone.
func (s *session) afterBatch() bool {
	if s.deferred != nil && !s.runDeferred() {
		return false
	}
	if s.enterSub {
		s.enterSub = false
		if !s.subscribed(&s.cmd) {
			return false
		}
	}
	if s.rd.Buffered() == 0 {
		// Let the other ready sessions write their replies first: by the time this one
		// reads again its client has often sent the next command, which saves a read that
		// finds nothing, and the park and wake-up after it.
		runtime.Gosched()
	}
	return true
}

// beginBatch starts a batch: the routing table it goes by, and its start time when metrics
// or the slow log need it.
func (s *session) beginBatch() {
	if s.gen = s.c.gen.Load(); s.c.metrics.on || s.gen.slow != nil {
		s.start = time.Now()
	} else {
		s.start = time.Time{}
	}
	if s.gen.routes == nil {
		s.gen = s.c.current()
	}
	s.routes = s.gen.routes
	s.budget.Reset(s.gen.acc.outputLimit)
	if s.trkQueue.Load() {
		s.trkPre = s.takePushes(s.trkPre[:0])
	}
	if s.username != "" {
		s.refreshUser()
	}
}

// readFailed answers a protocol error as Redis does (an error reply, then close); EOF and
// network errors just end the session.
func (s *session) readFailed(err error) {
	var pe *resp.ProtocolError
	if errors.As(err, &pe) {
		s.c.metrics.inc(s.c.metrics.protocol)
		s.out = resp.AppendError(s.out[:0], "ERR "+pe.Error())
		if s.loop != nil {
			_, _ = s.raw.TryWrite(s.out) // a loop must not wait for a client; it is closed next
		} else {
			_, _ = s.rw.Write(s.out)
		}
		s.c.log.Debug("client protocol error", "remote", s.nc.RemoteAddr().String(), "error", err)
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.c.log.Debug("client read failed", "remote", s.nc.RemoteAddr().String(), "error", err)
	}
}

// finishBatch waits for the batch's replies and writes them in order. false: the client is
// gone, or was disconnected (overLimit).
func (s *session) finishBatch() bool {
	out, n, ok := s.collectBatch()
	return ok && s.writeBatch(out, n)
}

// writeBatch writes a collected batch of n commands' replies. false: the client is gone.
func (s *session) writeBatch(out []byte, n int) bool {
	var err error
	if vec := s.outVec(out); vec != nil {
		err = s.raw.Writev(s.ownVec(vec))
		s.dropVec()
	} else if len(out) > 0 { // empty when the batch was only a deferred command
		_, err = s.rw.Write(out)
	}
	s.batchDone(n)
	s.keepOut(out)
	return err == nil
}

// collectBatch sends the batch, waits for its replies and returns them in order (in s.out's
// buffer, valid until the next batch) with the batch's command count; the batch is over.
// false: the replies went over the output limit and the client must be disconnected.
func (s *session) collectBatch() ([]byte, int, bool) {
	s.flush()
	s.pend.Wait()
	if s.overLimit() {
		return nil, 0, false
	}
	if s.routes != nil && s.routes.redirects() && s.redirected() {
		s.followRedirects()
		if s.overLimit() {
			return nil, 0, false
		}
	}
	out, n := s.assemble()
	return out, n, true
}

// overLimit checks a batch whose requests are all answered against the output limit
// (client_output_limit, Options.OutputLimit). The window (pace) keeps the replies of a batch
// within half the limit, but it is learnt from replies already seen: a client whose replies
// grow at once (a connection warmed up with small replies, then a pipeline of big ones) could
// still make asterd hold a whole window of them. So, as they arrive, the replies after the
// batch's first count against the limit; one that does not fit is read off its shared
// connection in its turn and dropped, and the batch is over: like Redis with a client past its
// hard output limit, the client is disconnected, with one log line. What asterd holds for one
// client's replies is thus at most the limit plus the first reply. true: so it is; the batch's
// replies are let go and the caller closes the connection.
func (s *session) overLimit() bool {
	if !s.budget.Dropped() {
		return false
	}
	held := 0
	s.eachCall(func(c *call) { held += len(c.req.Reply) })
	for _, pl := range s.places[:s.n] {
		if pl.kind == placeLocal {
			held += len(pl.local)
		}
		pl.main.req.Return()
		pl.local, pl.main.req.Reply = nil, nil
		for _, c := range pl.subs[:pl.nsubs] {
			c.req.Reply = nil
		}
	}
	s.c.log.Warn("client disconnected: its pipelined replies passed client_output_limit",
		"remote", s.nc.RemoteAddr().String(), "limit_bytes", s.gen.acc.outputLimit,
		"commands", s.n, "reply_bytes", s.budget.Used(), "held_bytes", held)
	s.c.metrics.inc(s.c.metrics.outputLimit)
	s.flushTally()
	s.n = 0
	s.quit = true
	if testOverLimit != nil {
		testOverLimit(held)
	}
	return true
}

// testOverLimit is set only by tests (export_test.go): it is told the reply bytes a session
// held when overLimit disconnected its client.
var testOverLimit func(held int)

// assemble puts the replies of a batch whose requests are all answered in order (see
// collectBatch).
func (s *session) assemble() ([]byte, int) {
	out := s.out[:0]
	s.bigs = s.bigs[:0]
	cm := &s.c.metrics
	// What the places keep for the next batch: a quarter of the limit, on top of the output.
	biggest, room := 0, s.gen.acc.outputLimit/4
	if s.cw.wrote {
		s.cacheWritten()
	}
	if len(s.trkPre) > 0 {
		out = append(out, s.trkPre...) // invalidations queued before the batch (tracking.go)
		s.trkPre = s.trkPre[:0]
	}
	for _, pl := range s.places[:s.n] {
		at := len(out)
		switch pl.kind {
		case placeLocal:
			out = append(out, pl.local...)
			if cm.on && len(pl.local) > 0 && pl.local[0] == '-' {
				cm.refused.Inc()
			}
		case placeForward:
			if pl.cacheOn {
				s.cacheStore(pl)
			}
			if pl.proto3 != pl.main.conn.RESP3() {
				out = s.convert(out, pl.main.req.Reply, pl)
			} else if r := pl.main.req.Reply; len(r) >= bigReply && s.raw != nil && !pl.silent {
				s.bigs = append(s.bigs, bigPart{at: len(out), reply: r, lease: pl.main.req.TakeLease()})
				biggest = max(biggest, len(r))
			} else {
				out = append(out, r...)
			}
			cm.failure(pl.main.req.Failure)
		case placeSplit:
			if pl.proto3 != pl.subs[0].conn.RESP3() {
				s.conv = s.merge(s.conv[:0], pl)
				out = s.convert(out, s.conv, pl)
				s.keepConv()
			} else {
				out = s.merge(out, pl)
			}
			for _, c := range pl.subs[:pl.nsubs] {
				if c.req.Failure != backend.FailNone {
					cm.failure(c.req.Failure)
					break // one client request, one error
				}
			}
		}
		if pl.silent {
			out = out[:at]
		}
		biggest = max(biggest, len(out)-at)
		pl.release(&room)
	}
	if s.trkQueue.Load() {
		out = s.takePushes(out) // invalidations that came while the batch ran follow it
	}
	n := s.n
	s.n = 0
	s.flushTally()
	s.pace(n, biggest)
	s.publishStat(s.start) // for CLIENT LIST (clientlist.go), before the client has the replies and may ask
	return out, n
}

// outVec is the batch's output cut around its big replies, for writev; nil when it has none
// (out is the whole output).
func (s *session) outVec(out []byte) [][]byte {
	if len(s.bigs) == 0 {
		return nil
	}
	vec, from := s.vec[:0], 0
	for _, b := range s.bigs {
		vec = append(vec, out[from:b.at], b.reply)
		from = b.at
	}
	vec = append(vec, out[from:])
	s.vec = vec
	return vec
}

// ownVec is vec, what is left to write of a batch's output, with the big replies that backend
// connections lent (SendLending) copied into one buffer of the session's own and their leases
// given back: for a write that waits for the client, which must not keep those connections
// from reading into their buffers again meanwhile. Without a lent reply it is vec.
func (s *session) ownVec(vec [][]byte) [][]byte {
	lent := false
	for i := range s.bigs {
		lent = lent || s.bigs[i].lease.Held()
	}
	if !lent {
		return vec
	}
	own := slices.Concat(vec...)
	s.dropVec()
	return [][]byte{own}
}

// dropVec forgets the big replies of a written batch: s.vec and s.bigs point into the
// requests' buffers, which a place may have let go (release) and must not keep alive.
func (s *session) dropVec() {
	for i := range s.bigs {
		s.bigs[i].lease.Return()
	}
	clear(s.vec[:cap(s.vec)])
	s.vec = s.vec[:0]
	clear(s.bigs)
	s.bigs = s.bigs[:0]
	if cap(s.bigs) > maxKeptElems {
		s.bigs, s.vec = nil, nil
	}
}

// pace sets how many commands the next batch may take (s.window), after a batch of n commands
// whose biggest reply was biggest bytes (OutputLimit, client_output_limit). Between batches
// nothing is read from the client: the session reads again only once the batch's output is
// written, so what it holds for a client that does not read is one batch's replies. Their size
// is known only once they are in (they are on shared, pipelined connections and must be read
// off them), so the window is learnt: a session starts with one command per batch, doubles its
// window each time a batch uses it all, and cuts it to what fits half the limit at the biggest
// reply it saw, so that replies up to twice as big as the last batch's biggest still fit; at
// least one command always goes (one reply larger than the limit is delivered). A client whose
// replies grow faster than that at once has a batch in flight whose replies do not fit:
// overLimit disconnects it rather than hold them.
func (s *session) pace(n, biggest int) {
	w := s.window
	if n >= w {
		w = min(2*w, maxBatch)
	}
	if biggest > 0 {
		w = min(w, s.gen.acc.outputLimit/(2*biggest))
	}
	s.window = max(w, 1)
}

// release drops the place's buffers that grew past what is kept between batches once its reply
// is assembled, so that a big reply is held once (in the output, or for one written from its
// request's buffer, by the batch's vec until written) while the client reads it, and an idle
// client holds no more than small buffers. room is what the session's places may
// still keep in all: each place's buffers are small, but places are many, and those of a batch
// of big replies must not all stay.
func (pl *place) release(room *int) {
	pl.local = keep(pl.local, room)
	pl.splitBuf = keep(pl.splitBuf, room)
	pl.main.release(room)
	for _, c := range pl.subs[:pl.nsubs] {
		c.release(room)
	}
}

// The frame is let go either way: it may point into a big buffer (the client's, a split's),
// and the next send sets it.
func (c *call) release(room *int) {
	c.req.Return()
	c.req.Reply = keep(c.req.Reply, room)
	c.buf, c.frame = keep(c.buf, room), nil
}

// keepElems stores elems, emptied, as the scratch of the next merge. Its entries point into
// node replies or the client's frame, which must not stay alive through it, so they are
// cleared where they were set (the keyspace and broadcast merges, never the split path); the
// whole capacity, since a parse that failed may have written past the length it returned. A
// big one is dropped.
func (s *session) keepElems(elems [][]byte) {
	if cap(elems) > maxKeptElems {
		s.elems = nil
		return
	}
	clear(elems[:cap(elems)])
	s.elems = elems[:0]
}

// keep returns b to be reused, or nil when it is bigger than maxKeptOut or than what room
// leaves, which it takes from room.
func keep(b []byte, room *int) []byte {
	n := cap(b)
	if n > maxKeptOut || n > *room {
		return nil
	}
	*room -= n
	return b
}

// batchDone observes the latency of a batch of n commands that began at s.start, and logs
// them when slow.
func (s *session) batchDone(n int) {
	cm := &s.c.metrics
	if slow := s.gen.slow; cm.on || slow != nil {
		elapsed := time.Since(s.start)
		cm.batchDone(n, elapsed)
		// s.start is set when the batch began; a slow log turned on mid-batch skips it.
		if slow != nil && !s.start.IsZero() && elapsed >= slow.SlowerThan() {
			s.logSlow(slow, n, elapsed)
		}
	}
}

// keepOut keeps a written output buffer for the next batch, unless it grew too big.
func (s *session) keepOut(out []byte) {
	if cap(out) > maxKeptOut {
		out = nil
	}
	s.out = out
}

// keepConv drops the conversion buffer once a use grew it too big. Where it is used, not per
// batch (keepOut): it is on a line of its own that most batches never touch.
func (s *session) keepConv() {
	if cap(s.conv) > maxKeptOut {
		s.conv = nil
	}
}

// logSlow records the batch's commands in the slow log: each waited as long as the batch.
func (s *session) logSlow(l *slowLog, n int, elapsed time.Duration) {
	now := time.Now()
	if s.remote == "" {
		s.remote = s.nc.RemoteAddr().String()
	}
	for _, pl := range s.places[:n] {
		if pl.raw != nil {
			l.Add(pl.raw, now, elapsed, s.remote)
		}
	}
}

// nextPlace returns a cleared place for the next command.
func (s *session) nextPlace() *place {
	if s.n == len(s.places) {
		pl := &place{}
		if s.n > 0 {
			pl.budget = &s.budget
		}
		pl.main.req.Bind(&s.pend)
		pl.main.req.Charge(pl.budget)
		s.places = append(s.places, pl)
	}
	pl := s.places[s.n]
	s.n++
	pl.local = pl.local[:0]
	pl.nsubs = 0
	pl.raw = nil
	pl.proto3, pl.shape = s.proto3, nil
	pl.cacheOn = false
	return pl
}

func (pl *place) setError(msg string) {
	pl.kind = placeLocal
	pl.local = resp.AppendError(pl.local[:0], msg)
}

// testPanicHook is set only by tests (export_test.go), to make a session panic and check the
// guards (recoverPanic, endOnPanic). It is checked on the unknown-command path alone, which builds an error
// string anyway, so the commands that matter pay nothing for it.
var testPanicHook func(args [][]byte)

// handle routes one command: answered here, forwarded, or split.
func (s *session) handle(cmd *resp.Command) {
	pl := s.nextPlace()
	args := cmd.Args
	spec := command.LookupRecent(args[0], s.lastSpec, s.prevSpec)
	if spec != s.lastSpec {
		s.prevSpec, s.lastSpec = s.lastSpec, spec
	}
	pl.silent = s.reply.silent(spec)
	if spec != nil && spec.Policy == command.Local {
		s.flushTally() // INFO counts the commands before it, as Redis's does, not itself
	}
	s.count(spec)
	if spec == nil && !s.authed {
		pl.setError(errNoAuth)
		return
	}
	if spec == nil {
		if testPanicHook != nil {
			testPanicHook(args)
		}
		pl.setError(unknownCommand(args))
		s.tx.refused()
		return
	}
	if !s.authed && !allowedBeforeAuth(spec) {
		pl.setError(errNoAuth)
		return
	}
	if !spec.CheckArity(len(args)) {
		pl.setError("ERR wrong number of arguments for '" + spec.Name + "' command")
		s.tx.refused()
		return
	}
	if msg := spec.SubcommandError(args); msg != "" { // Redis checks a subcommand as a command
		pl.setError(msg)
		s.tx.refused()
		return
	}
	if s.user != nil && !s.permitted(pl, spec, args) {
		return
	}
	// The slow log records what runs: not the commands refused above (unknown, before AUTH,
	// wrong arity, not permitted), which Redis refuses before it runs them and does not log.
	if s.gen.slow != nil {
		if pl.raw = cmd.Raw; pl.raw == nil {
			pl.rawBuf = resp.AppendCommand(pl.rawBuf[:0], args...)
			pl.raw = pl.rawBuf
		}
	}
	if s.tracks {
		s.trackCommand(spec, args)
	}
	if cc := s.gen.cache; cc != nil && s.cacheCommand(pl, cc, spec, cmd) {
		return
	}
	if s.tx.active && s.queue(pl, spec, cmd) {
		return
	}
	switch spec.Policy {
	case command.Local:
		s.local(pl, spec, args)
		if pl.budget != nil && !pl.budget.Take(len(pl.local)) {
			pl.local = nil // some are big (COMMAND, CLIENT LIST): counted as backend replies are
		}
		return
	case command.Unsupported:
		pl.setError("ERR " + spec.Name + " is not supported by the proxy")
		return
	}
	if s.routes == nil {
		pl.setError("ERR cluster " + s.c.name + " has no routing table yet")
		return
	}
	if s.proto3 != s.routes.resp3 {
		pl.shape = command.ReplyShape(spec, args)
	}
	if t := s.gen.hot; t.Enabled() {
		s.sampleKeys(t, spec, args)
	}
	switch spec.Policy {
	case command.SplitMGet, command.SplitMSet, command.SplitSum:
		s.split(pl, spec, cmd)
	case command.Subscribe:
		s.subscribeCommand(pl, spec, args)
	case command.Channel:
		s.channelCommand(pl, spec, cmd)
	case command.Block:
		s.block(pl, spec, cmd)
	case command.Transaction:
		s.transaction(pl, spec, cmd)
	case command.Broadcast:
		s.broadcast(pl, spec, cmd)
	case command.Keyspace:
		s.keyspace(pl, spec, cmd)
	default:
		s.forwardByKeys(pl, spec, cmd)
	}
}

// forwardByKeys sends a command whose keys must all live together to the node that has them:
// in standalone mode all keys on one node, in cluster mode all in one slot, as Redis requires.
func (s *session) forwardByKeys(pl *place, spec *command.Spec, cmd *resp.Command) {
	keys, ok := spec.Keys(cmd.Args, s.keys[:0])
	s.keys = keys
	if !ok || (len(keys) == 0 && spec.AnyNode(cmd.Args)) {
		s.forward(pl, s.keylessNode(), cmd) // keyless.go; malformed: the node answers its error
		return
	}
	if len(keys) == 0 {
		pl.setError("ERR '" + spec.Name + "' without keys cannot be routed by the proxy")
		return
	}
	t := s.routes.table
	g, err := t.Together(cmd.Args, keys)
	if err != nil {
		pl.setError(err.Error())
		return
	}
	if spec.Name == "sort" || spec.Name == "sort_ro" {
		if msg := s.sortPatternRefused(cmd.Args, g); msg != "" { // keyless.go
			pl.setError(msg)
			return
		}
	}
	read := command.IsReadOnly(spec)
	node := s.groupNode(g, read)
	if read && node >= 0 {
		if b := s.gen.backup; b != nil && s.forwardWithBackup(pl, b, g, node, cmd) {
			return
		}
	}
	s.forward(pl, node, cmd)
}

// groupNode picks the node for a group's request: its master, or for a read with
// read_from_slave one of its replicas (and master) in turn. -1 when no node serves it.
func (s *session) groupNode(g int, read bool) int {
	return s.routes.table.Node(g, read, s.routes.readFromSlave, &s.rr)
}

// frameOf is the command as the backend must receive it: the client's own bytes when it sent
// RESP, re-encoded into buf when it sent an inline command.
func frameOf(cmd *resp.Command, buf *[]byte) []byte {
	if cmd.Raw != nil {
		return cmd.Raw
	}
	*buf = resp.AppendCommand((*buf)[:0], cmd.Args...)
	return *buf
}

func (s *session) conn(node int) *backend.Conn {
	conns := s.routes.pools[node].conns
	return conns[s.id%uint64(len(conns))]
}

func (s *session) forward(pl *place, node int, cmd *resp.Command) {
	if node < 0 {
		s.noNode(pl)
		return
	}
	pl.kind = placeForward
	s.pend.Add(1)
	// A loop session writes its replies as soon as the batch's last is in, and owns
	// (ownVec) those it cannot write at once: it may borrow big ones from the connection.
	s.sendVia(&pl.main, s.conn(node), frameOf(cmd, &pl.main.buf), s.loop != nil)
}

// noNode answers a command for which no node serves: every node ejected, or an uncovered slot.
func (s *session) noNode(pl *place) {
	pl.setError(s.noNodeMsg())
}

func (s *session) noNodeMsg() string {
	return s.routes.table.NoNode(s.c.name)
}

func (s *session) send(c *call, conn *backend.Conn, frame []byte) {
	s.pend.Add(1)
	s.sendAdded(c, conn, frame)
}

// sendAdded is send for a caller that has already counted the request in s.pend (one Add for
// all the sub requests of a split).
func (s *session) sendAdded(c *call, conn *backend.Conn, frame []byte) {
	s.sendVia(c, conn, frame, false)
}

// sendVia is sendAdded; lend: the reply, when big, may stay in the connection's read buffer
// (backend.Conn.SendLending), to be given back once written (dropVec) or copied (release).
func (s *session) sendVia(c *call, conn *backend.Conn, frame []byte, lend bool) {
	c.frame, c.conn, c.asked = frame, conn, false
	if lend {
		conn.SendLending(&c.req, frame)
	} else {
		conn.Send(&c.req, frame)
	}
	s.touch(conn)
}

// touch notes that conn has requests of this batch queued, so that flush writes them.
func (s *session) touch(conn *backend.Conn) {
	if !containsConn(s.touched, conn) {
		s.touched = append(s.touched, conn)
	}
}

// flush writes the batch's requests: one write per node for the whole batch, shared with the
// other sessions that are ready (backend.FlushAll).
func (s *session) flush() {
	backend.FlushAll(s.touched...)
	clear(s.touched)
	s.touched = s.touched[:0]
}

// unknownCommand is Redis's answer to a command it does not know: the name and the first
// arguments, 128 bytes of them in all (each cut at a NUL byte, as Redis's C strings are), so
// that a command of a million arguments costs no more than a short one.
func unknownCommand(args [][]byte) string {
	cut := func(b []byte, n int) []byte {
		for i, c := range b[:min(len(b), n)] {
			if c == 0 {
				return b[:i]
			}
		}
		return b[:min(len(b), n)]
	}
	msg := make([]byte, 0, 64+2*128)
	msg = append(append(append(msg, "ERR unknown command '"...), cut(args[0], 128)...), "', with args beginning with: "...)
	start := len(msg)
	for _, a := range args[1:] {
		if len(msg)-start >= 128 {
			break
		}
		msg = append(append(append(msg, '\''), cut(a, 128-(len(msg)-start))...), "' "...)
	}
	return string(msg)
}

func clip(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
