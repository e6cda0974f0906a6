package backend

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// Dedicated is a connection to one node that belongs to one user at a time: a client session
// runs its blocking commands and transactions on it, one exchange at a time. A DedicatedPool
// holds those no session is using.
type Dedicated interface {
	// Node is the address of the node it is connected to.
	Node() string
	// Buffered is how many bytes it received and holds unread: Put closes one that holds
	// any (its state is unknown).
	Buffered() int
	// Conn is its connection, which Take looks at for anything that arrived while idle.
	Conn() net.Conn
	// Close closes it (and gives back whatever its owner counts it against); as often as
	// anyone likes.
	Close()
}

// DedicatedPool holds the dedicated node connections that no session is using, per node
// address, for the next session that needs one. It is the exclusive counterpart of the shared
// connections: a shared Conn carries every session's requests at once, a Dedicated one
// session's at a time, and the pool hands it from one session to the next. Without it, every
// client that ever ran a blocking command or a transaction kept a connection of its own to
// that node for life: 10,000 such clients meant 10,000 connections per node, Redis's default
// maxclients. A session gives its connections back between batches, once no transaction or
// WATCH holds state on them.
//
// Idle connections are closed once unused for IdleFor, not when there are "too many": a
// burst of queue workers woken at once by a burst of jobs gives back hundreds of connections
// that it takes again a moment later, and closing them would make it dial them all again.
// MaxIdle per node only bounds a pathological case.
//
// Concurrency: safe for concurrent use; one mutex guards the idle lists, and connections are
// closed outside it. A connection is the pool's between Put and Take, the caller's otherwise.
// The zero value is ready, with the default bounds; set IdleFor and MaxIdle before first use.
type DedicatedPool[D Dedicated] struct {
	IdleFor time.Duration // an idle connection is closed after this long (0: 30 s)
	MaxIdle int           // idle connections kept per node; more are closed at once (0: 1,024)

	mu    sync.Mutex
	idle  map[string][]idleDed[D] // by node address; the most recently used last
	sweep *time.Timer             // armed while any connection is idle
	// keep is the last Retain's: a connection in use while a new table dropped its node (or
	// new settings made it stale) comes back after Retain ran, and is closed instead of kept
	// for a node nothing routes to, or reused with the old settings. refuse: Retain(nil) ran
	// last, and no connection out now may come back.
	keep   func(D) bool
	refuse bool
	closed bool
}

type idleDed[D Dedicated] struct {
	d     D
	since time.Time
}

func (p *DedicatedPool[D]) idleFor() time.Duration {
	if p.IdleFor > 0 {
		return p.IdleFor
	}
	return 30 * time.Second
}

func (p *DedicatedPool[D]) maxIdle() int {
	if p.MaxIdle > 0 {
		return p.MaxIdle
	}
	return 1024
}

// Put keeps d for reuse, or closes it: the pool is closed or full for its node, the last
// Retain dropped its node, or d holds bytes nobody asked for (its state is unknown).
func (p *DedicatedPool[D]) Put(d D) {
	if d.Buffered() == 0 {
		p.mu.Lock()
		if !p.closed && !p.refuse && (p.keep == nil || p.keep(d)) && len(p.idle[d.Node()]) < p.maxIdle() {
			if p.idle == nil {
				p.idle = make(map[string][]idleDed[D])
			}
			p.idle[d.Node()] = append(p.idle[d.Node()], idleDed[D]{d, time.Now()})
			if p.sweep == nil {
				p.sweep = time.AfterFunc(p.idleFor(), p.expire)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	d.Close()
}

// Take returns an idle connection to addr that is still open; ok false when there is none.
func (p *DedicatedPool[D]) Take(addr string) (d D, ok bool) {
	for {
		p.mu.Lock()
		list := p.idle[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			return d, false
		}
		d = list[len(list)-1].d
		list[len(list)-1] = idleDed[D]{}
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()
		if quiet(d.Conn()) {
			return d, true
		}
		d.Close()
	}
}

// expire closes the connections idle for IdleFor or longer (the oldest of each node's
// list come first), and comes back while any are left.
func (p *DedicatedPool[D]) expire() {
	var drop []D
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	cutoff := time.Now().Add(-p.idleFor())
	next := time.Duration(0)
	for addr, list := range p.idle {
		n := 0
		for n < len(list) && !list[n].since.After(cutoff) {
			drop = append(drop, list[n].d)
			n++
		}
		if n == len(list) {
			delete(p.idle, addr)
			continue
		}
		clear(list[:n])
		p.idle[addr] = list[n:]
		if wait := list[n].since.Sub(cutoff); next == 0 || wait < next {
			next = wait
		}
	}
	if next > 0 {
		p.sweep = time.AfterFunc(next, p.expire)
	} else {
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, d := range drop {
		d.Close()
	}
}

// Retain closes the idle connections keep reports false for (to nodes a new table no longer
// names, or dialled with settings since replaced), or every one (nil: the backend settings
// changed). Until the next Retain, Put closes a connection keep drops, or every one after
// Retain(nil) (keep must be safe to call under the pool's lock, from any goroutine).
func (p *DedicatedPool[D]) Retain(keep func(D) bool) {
	var drop []D
	p.mu.Lock()
	p.keep, p.refuse = keep, keep == nil
	for addr, list := range p.idle {
		kept := list[:0]
		for _, e := range list {
			if keep != nil && keep(e.d) {
				kept = append(kept, e)
			} else {
				drop = append(drop, e.d)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = kept
		}
	}
	p.mu.Unlock()
	for _, d := range drop {
		d.Close()
	}
}

// EvictOne closes the connection idle the longest, to make room in the caller's share of
// descriptors: idle connections count there, and give way to a client or a dial that needs
// the room. false when none is idle.
func (p *DedicatedPool[D]) EvictOne() bool {
	p.mu.Lock()
	oldest := ""
	var since time.Time
	for addr, list := range p.idle {
		if len(list) > 0 && (oldest == "" || list[0].since.Before(since)) {
			oldest, since = addr, list[0].since
		}
	}
	if oldest == "" {
		p.mu.Unlock()
		return false
	}
	list := p.idle[oldest]
	d := list[0].d
	list[0] = idleDed[D]{}
	if len(list) == 1 {
		delete(p.idle, oldest)
	} else {
		p.idle[oldest] = list[1:]
	}
	p.mu.Unlock()
	d.Close()
	return true
}

// Close closes every idle connection; later ones are closed as they are put back.
func (p *DedicatedPool[D]) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, list := range idle {
		for _, e := range list {
			e.d.Close()
		}
	}
}

// quiet reports whether an idle dedicated connection may be used again: nothing arrived on it
// while it was idle, neither the node's close (a timeout, a restart, CLIENT KILL) nor bytes
// nobody asked for. A TLS connection's socket is checked underneath: whatever is read there
// means it is not clean, so the bytes consumed do not matter.
func quiet(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	raw := rawio.New(nc)
	if raw == nil {
		return true // no way to look without waiting: its first use finds out
	}
	var b [1]byte
	n, err := raw.TryRead(b[:])
	return n == 0 && err == nil
}
