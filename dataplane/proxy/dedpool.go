package proxy

import (
	"crypto/tls"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// dedPool holds the dedicated node connections (dedconn.go) that no session is using, per node
// address, for the next session that needs one. Without it, every client that ever ran a
// blocking command or a transaction kept a connection of its own to that node for life: 10,000
// such clients meant 10,000 connections per node, Redis's default maxclients. A session gives
// its connections back between batches, once no transaction or WATCH holds state on them
// (releaseDed).
//
// Idle connections are closed once unused for dedIdleFor, not when there are "too many": a
// burst of queue workers woken at once by a burst of jobs gives back hundreds of connections
// that it takes again a moment later, and closing them would make it dial them all again.
// dedIdleMax per node only bounds a pathological case.
type dedPool struct {
	mu     sync.Mutex
	idle   map[string][]idleDed // by node address; the most recently used last
	sweep  *time.Timer          // armed while any connection is idle
	closed bool
}

type idleDed struct {
	d     *dedConn
	since time.Time
}

var (
	dedIdleFor = 30 * time.Second // an idle dedicated connection is closed after this long
	dedIdleMax = 1024             // per node; more are closed at once
)

// put keeps d for reuse, or closes it: the pool is closed or full for its node, or d holds
// bytes nobody asked for (its state is unknown).
func (p *dedPool) put(d *dedConn) {
	if d.rr.Buffered() == 0 {
		p.mu.Lock()
		if !p.closed && len(p.idle[d.addr]) < dedIdleMax {
			if p.idle == nil {
				p.idle = make(map[string][]idleDed)
			}
			p.idle[d.addr] = append(p.idle[d.addr], idleDed{d, time.Now()})
			if p.sweep == nil {
				p.sweep = time.AfterFunc(dedIdleFor, p.expire)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	d.close()
}

// take returns an idle connection to addr that is still open, nil when there is none.
func (p *dedPool) take(addr string) *dedConn {
	for {
		p.mu.Lock()
		list := p.idle[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		d := list[len(list)-1].d
		list[len(list)-1] = idleDed{}
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()
		if d.open() {
			return d
		}
		d.close()
	}
}

// expire closes the connections idle for dedIdleFor or longer (the oldest of each node's
// list come first), and comes back while any are left.
func (p *dedPool) expire() {
	var drop []*dedConn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	cutoff := time.Now().Add(-dedIdleFor)
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
		d.close()
	}
}

// retain closes the idle connections to nodes that keep reports false for: nodes a new table
// no longer names, or every node (nil) when the backend settings changed.
func (p *dedPool) retain(keep func(addr string) bool) {
	var drop []*dedConn
	p.mu.Lock()
	for addr, list := range p.idle {
		if keep == nil || !keep(addr) {
			for _, e := range list {
				drop = append(drop, e.d)
			}
			delete(p.idle, addr)
		}
	}
	p.mu.Unlock()
	for _, d := range drop {
		d.close()
	}
}

// evictOne closes the connection idle the longest, to make room in the cluster's share of
// descriptors (takeFD): idle connections count there, and give way to a client or a dial
// that needs the room. false when none is idle.
func (p *dedPool) evictOne() bool {
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
	list[0] = idleDed{}
	if len(list) == 1 {
		delete(p.idle, oldest)
	} else {
		p.idle[oldest] = list[1:]
	}
	p.mu.Unlock()
	d.close()
	return true
}

// close closes every idle connection; later ones are closed as they are put back.
func (p *dedPool) close() {
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
			e.d.close()
		}
	}
}

// open reports whether an idle dedicated connection may be used again: nothing arrived on it
// while it was idle, neither the node's close (a timeout, a restart, CLIENT KILL) nor bytes
// nobody asked for. A TLS connection's socket is checked underneath: whatever is read there
// means it is not clean, so the bytes consumed do not matter.
func (d *dedConn) open() bool {
	nc := d.nc
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

// holdsConnState reports whether a transaction or WATCH is open or a command is deferred: the
// session's dedicated connections may then carry state, and it needs its goroutine.
func (s *session) holdsConnState() bool {
	return s.tx.active || s.tx.watch != nil || s.deferred != nil
}

// releaseDed gives the session's dedicated connections back to the cluster's pool, between
// batches, once nothing holds state on them. Blocking commands and EXEC leave their
// connection idle.
func (s *session) releaseDed() {
	if len(s.ded) == 0 || s.holdsConnState() {
		return
	}
	for i, d := range s.ded {
		s.c.dedIdle.put(d)
		s.ded[i] = nil
	}
	s.ded = s.ded[:0]
}
