// Package netpoll runs event loops: one goroutine serves many sockets, waiting for all of them
// at once in an epoll set of its own, instead of one goroutine per socket. Its one job is
// the waiting and the dispatch: which sockets are ready, in what order their owners are called,
// and one call at the end of each turn. What a ready socket means (reading a client's commands,
// a backend's replies) is the caller's: the proxy's sessions are Clients, the backend
// connections' readers are watched funcs (backend.Poller).
//
// Why: a goroutine per client parks and wakes twice per unpipelined request (waiting for the
// client's next command, then for the replies) and tries a read that finds nothing before each
// park; profiles put that at ~20% of asterd's CPU per request (docs/benchmarks.md). A Loop
// waits in its epoll set through Go's netpoller (so a loop with nothing to do parks like any
// goroutine and holds no thread), takes each turn's ready sockets, calls the ready backend
// connections first (their replies complete batches whose clients may then be served this
// turn; after a wait that filled its room, all of them, see run), then the ready and kicked
// clients, then the turn's end func (the proxy flushes the backends there: one write per node
// per turn).
//
// Concurrency: a Loop owns one goroutine (Start starts it, Stop ends it). Client.Turn, the
// watched ready funcs and the end func run on that goroutine only, one at a time; Client.Hangup
// runs there too, with the Loop's lock held, so it must not call back into the Loop. Add,
// Remove, Watch, its unwatch func, Kick and KickAll may be called from any goroutine, also from
// within a Turn. A Client is whoever's it is: the Loop only calls it, and never while it is not
// registered (Add until Remove) or kicked. Without epoll (not Linux) New fails with
// errors.ErrUnsupported and the caller serves each socket on a goroutine of its own.
package netpoll

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// Client is a socket's owner that a Loop serves: a proxy session.
type Client interface {
	// Turn serves the client once: its socket may be readable, or it was kicked. On the
	// goroutine of from, the loop calling it: a client that moved to another loop meanwhile
	// (it was in from's list of the turn when it left) is called by from all the same, and
	// must pass the turn on to its loop rather than run on from's goroutine.
	Turn(from *Loop)
	// Hangup says the peer hung up (or the socket failed) before this turn's Turn: the
	// client should read on to the end even after a short read. On the loop's goroutine,
	// with the loop's lock held.
	Hangup()
}

// A Loop serves many clients, and reads backend connections, on one goroutine.
type Loop struct {
	p       *poller
	done    chan struct{}
	endTurn func()

	mu sync.Mutex
	// clients are the registered clients by slot (an id's low 32 bits, less one); an id's
	// bits 32-62 are its slot's generation, so that an event read before its client left is
	// not taken for the slot's next client. A slice, not a map: with thousands of clients
	// each event's lookup is a cache miss or two, and a map's hashing on top.
	clients  []slot
	free     []uint32 // slots no client holds
	nclients int
	backends map[uint64]*polled // the backend connections the loop reads
	kicked   []Client           // to serve on the next turn without waiting for their sockets

	replies []func()  // this turn's readable backends (the loop's goroutine only)
	polls   []*polled // after a full wait, the backends with no event (idem)
	turn    uint64    // turns taken, for polled.turn (idem, under mu)
	ready   []Client  // this turn's clients (the loop's goroutine only)
}

// New makes a loop; endTurn, if not nil, is called at the end of each turn, on the loop's
// goroutine. errors.ErrUnsupported where there is no epoll.
func New(endTurn func()) (*Loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &Loop{p: p, done: make(chan struct{}), endTurn: endTurn, backends: make(map[uint64]*polled)}, nil
}

// slot is a client's place in Loop.clients.
type slot struct {
	c   Client // nil: free
	gen uint32
}

// Start starts the loop's goroutine.
func (l *Loop) Start() { go l.run() }

// Stop ends the loop, once its clients are gone.
func (l *Loop) Stop() {
	l.p.close()
	<-l.done
	l.p.free()
}

// Add has the loop serve c, whose socket is raw, from now on. It stores the id Remove takes
// in *id before c can have a turn (which may remove it). On an error (the socket closed
// meanwhile, or the kernel refused it), c stays registered under *id: the caller closes the
// socket and kicks c, whose turn finds it closed and removes it.
func (l *Loop) Add(raw *rawio.Conn, c Client, id *uint64) error {
	l.mu.Lock() // publishes *id, and what the caller set up for c, to the loop's goroutine
	var i uint32
	if n := len(l.free); n > 0 {
		i = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		i = uint32(len(l.clients))
		l.clients = append(l.clients, slot{})
	}
	sl := &l.clients[i]
	sl.c, sl.gen = c, (sl.gen+1)&genMask
	l.nclients++
	*id = uint64(sl.gen)<<32 | uint64(i+1)
	at := *id
	l.mu.Unlock()
	return l.p.add(raw, at)
}

// genMask keeps a slot's generation within bits 32-62 of an id: bit 63 is the backends'.
const genMask = 1<<31 - 1

// client is the client registered under id, or nil; l.mu held.
func (l *Loop) client(id uint64) Client {
	i := uint32(id) - 1
	if int(i) >= len(l.clients) {
		return nil
	}
	if sl := &l.clients[i]; sl.gen == uint32(id>>32) {
		return sl.c
	}
	return nil
}

// Remove takes the client id out of the loop: it gets no more turns.
func (l *Loop) Remove(id uint64, raw *rawio.Conn) {
	l.Forget(id)
	l.p.del(raw) // fails harmlessly when the socket is closed already (and so out of the set)
}

// Forget is Remove for a client whose socket the caller closes next, its only descriptor:
// closing it takes it out of the epoll set, which saves Remove's system call, one for each
// client that leaves. Until then its events find no client (its id is stale) and are dropped.
func (l *Loop) Forget(id uint64) {
	l.mu.Lock()
	if l.client(id) != nil {
		i := uint32(id) - 1
		l.clients[i].c = nil
		l.free = append(l.free, i)
		l.nclients--
	}
	l.mu.Unlock()
}

// Counts is how many clients and backend connections the loop serves now.
func (l *Loop) Counts() (clients, backends int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nclients, len(l.backends)
}

// backendIDs number the backend connections a loop reads, apart from the clients' ids (which
// Add keeps below backendBit).
var backendIDs atomic.Uint64

const backendBit = 1 << 63

// maxBackendPolls bounds the backend connections read without an event after a full wait
// (see run): a quarter of the events the wait took.
const maxBackendPolls = 64

// polled is a backend connection the loop reads.
type polled struct {
	ready   func()
	waiting func() bool // nil: read only on its socket's events
	turn    uint64      // the last turn with an event of its socket's (under Loop.mu)
}

// Watch has the loop read a backend connection: a backend.Poller. ready reads it; it is called
// when the socket becomes readable, and, if waiting (may be nil) says replies are owed, after
// a wait that filled its room (see run).
func (l *Loop) Watch(raw *rawio.Conn, ready func(), waiting func() bool) (func(), error) {
	id := backendBit | backendIDs.Add(1)
	l.mu.Lock()
	l.backends[id] = &polled{ready: ready, waiting: waiting}
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

// Kick has the loop serve c on its next turn.
func (l *Loop) Kick(c Client) {
	l.mu.Lock()
	l.kicked = append(l.kicked, c)
	first := len(l.kicked) == 1
	l.mu.Unlock()
	if first {
		l.p.wake()
	}
}

// KickAll has the loop serve all its clients on its next turn: after their sockets were
// closed, which raises no event of its own.
func (l *Loop) KickAll() {
	l.mu.Lock()
	for _, sl := range l.clients {
		if sl.c != nil {
			l.kicked = append(l.kicked, sl.c)
		}
	}
	l.mu.Unlock()
	l.p.wake()
}

func (l *Loop) run() {
	defer close(l.done)
	for {
		evs, err := l.p.wait()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		l.turn++
		for _, ev := range evs {
			if ev.id&backendBit != 0 { // a backend connection (Watch), not a client
				if w := l.backends[ev.id]; w != nil {
					w.turn = l.turn
					l.replies = append(l.replies, w.ready)
				}
				continue
			}
			if c := l.client(ev.id); c != nil {
				if ev.hup {
					c.Hangup()
				}
				l.ready = append(l.ready, c)
			}
		}
		// A full wait may have left events in the kernel's ready list, and a backend
		// connection's, raised after thousands of clients', would wait there for turns: its
		// replies unread while the loop reads more requests (with 10,000 clients a third of
		// the GETs spent over 10 ms in the proxy). So after a full wait the backend
		// connections that owe replies are read too, event or not: at most maxBackendPolls
		// of them a turn, so that a cluster of hundreds of nodes costs a full turn no more
		// than that (the map's order, random each time, spreads them over the turns).
		if l.p.full() {
			for _, w := range l.backends {
				if len(l.polls) == maxBackendPolls {
					break
				}
				if w.turn != l.turn && w.waiting != nil {
					l.polls = append(l.polls, w)
				}
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
		// waiting is asked here, not under l.mu: it takes the connection's lock, under which
		// the connection may unwatch (which takes l.mu).
		for _, w := range l.polls {
			if w.waiting() {
				w.ready()
			}
		}
		clear(l.polls)
		l.polls = l.polls[:0]
		for _, c := range l.ready {
			c.Turn(l)
		}
		clear(l.ready)
		l.ready = l.ready[:0]
		if l.endTurn != nil {
			l.endTurn()
		}
		// Let the other goroutines run between turns (clients handed to goroutines of their
		// own, reader goroutines of connections no loop reads): the next turn then finds more
		// clients ready, whose commands go to each node in one write.
		runtime.Gosched()
	}
}
