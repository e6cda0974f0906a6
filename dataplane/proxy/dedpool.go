package proxy

import (
	"crypto/tls"
	"sync"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// dedPool holds the dedicated node connections (dedconn.go) that no session is using, per node
// address, for the next session that needs one. Without it, every client that ever ran a
// blocking command or a transaction kept a connection of its own to that node for life: 10,000
// such clients meant 10,000 connections per node, Redis's default maxclients. A session gives
// its connections back between batches, once no transaction or WATCH holds state on them
// (releaseDed); the pool keeps a few per node and closes the rest.
type dedPool struct {
	mu     sync.Mutex
	idle   map[string][]*dedConn // by node address; the most recently used last
	closed bool
}

// dedIdlePerNode bounds the idle dedicated connections kept per node.
const dedIdlePerNode = 16

// put keeps d for reuse, or closes it: the pool is closed or full for its node, or d holds
// bytes nobody asked for (its state is unknown).
func (p *dedPool) put(d *dedConn) {
	if d.rr.Buffered() == 0 {
		p.mu.Lock()
		if !p.closed && len(p.idle[d.addr]) < dedIdlePerNode {
			if p.idle == nil {
				p.idle = make(map[string][]*dedConn)
			}
			p.idle[d.addr] = append(p.idle[d.addr], d)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	_ = d.nc.Close()
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
		d := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()
		if d.open() {
			return d
		}
		_ = d.nc.Close()
	}
}

// retain closes the idle connections to nodes that keep reports false for: nodes a new table
// no longer names, or every node (nil) when the backend settings changed.
func (p *dedPool) retain(keep func(addr string) bool) {
	var drop []*dedConn
	p.mu.Lock()
	for addr, list := range p.idle {
		if keep == nil || !keep(addr) {
			drop = append(drop, list...)
			delete(p.idle, addr)
		}
	}
	p.mu.Unlock()
	for _, d := range drop {
		_ = d.nc.Close()
	}
}

// close closes every idle connection; later ones are closed as they are put back.
func (p *dedPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, list := range idle {
		for _, d := range list {
			_ = d.nc.Close()
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

// releaseDed gives the session's dedicated connections back to the cluster's pool, between
// batches, once nothing holds state on them: no transaction or WATCH open, nothing deferred.
// Blocking commands and EXEC leave their connection idle.
func (s *session) releaseDed() {
	if len(s.ded) == 0 || s.tx.active || s.tx.watch != nil || s.deferred != nil {
		return
	}
	for i, d := range s.ded {
		s.c.dedIdle.put(d)
		s.ded[i] = nil
	}
	s.ded = s.ded[:0]
}
