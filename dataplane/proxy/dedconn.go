package proxy

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// dedConn is a connection to one node that belongs to one session (see dialNode): blocking
// commands and transactions run on it, one exchange at a time, on the session's goroutine.
// A session keeps its dedicated connections, one per node, while it uses them, and gives them
// back to its cluster's pool between batches (backend.DedicatedPool, releaseDed).
type dedConn struct {
	addr string
	from *pool // whose options dialled it: pooled only while that pool is the node's (Retain)
	nc   net.Conn
	rr   *resp.ReplyReader
	hold *fdHold // its descriptor in the cluster's share: close gives it back
}

// Close closes the connection and gives its descriptor back to the cluster's share; every
// closer calls it (never nc.Close alone), as often as it likes.
func (d *dedConn) Close() {
	_ = d.nc.Close()
	d.hold.release()
}

// Node, Buffered and Conn are what the cluster's backend.DedicatedPool looks at.
func (d *dedConn) Node() string   { return d.addr }
func (d *dedConn) Buffered() int  { return d.rr.Buffered() }
func (d *dedConn) Conn() net.Conn { return d.nc }

// dedPool is the cluster's pool of the dedicated connections no session is using.
type dedPool = backend.DedicatedPool[*dedConn]

var (
	dedIdleFor = 30 * time.Second // an idle dedicated connection is closed after this long
	dedIdleMax = 1024             // per node; more are closed at once
)

// dedicated returns the session's dedicated connection to node of its routes, dialling it
// when there is none.
func (s *session) dedicated(node int) (*dedConn, error) {
	if node < 0 || node >= len(s.routes.pools) {
		return nil, fmt.Errorf("cluster %s: no node %d in the routing table", s.c.name, node)
	}
	p := s.routes.pools[node]
	if d := s.reuseDed(p.addr); d != nil {
		return d, nil
	}
	nc, hold, err := s.dialNode(node)
	if err != nil {
		return nil, err
	}
	return s.keepDed(p, nc, hold), nil
}

// dedicatedAt is dedicated for a node a redirect names, which the table may not know yet.
func (s *session) dedicatedAt(addr string) (*dedConn, error) {
	if d := s.reuseDed(addr); d != nil {
		return d, nil
	}
	for i, p := range s.routes.pools {
		if p.addr == addr {
			nc, hold, err := s.dialNode(i)
			if err != nil {
				return nil, err
			}
			return s.keepDed(p, nc, hold), nil
		}
	}
	p := s.c.poolFor(addr)
	if p == nil {
		return nil, fmt.Errorf("cluster %s: closed", s.c.name)
	}
	nc, hold, err := s.dialDedicated(p.opts)
	if err != nil {
		return nil, err
	}
	return s.keepDed(p, nc, hold), nil
}

// reuseDed is the session's own dedicated connection to addr, or one from the cluster's pool;
// nil when there is neither.
func (s *session) reuseDed(addr string) *dedConn {
	for _, d := range s.ded {
		if d.addr == addr {
			return d
		}
	}
	if d, ok := s.c.dedIdle.Take(addr); ok {
		return s.adoptDed(d)
	}
	return nil
}

// keepDed caches a new dedicated connection, dialled with from's options.
func (s *session) keepDed(from *pool, nc net.Conn, hold *fdHold) *dedConn {
	return s.adoptDed(&dedConn{addr: from.addr, from: from, nc: nc, rr: resp.NewReplyReader(nc, 4<<10), hold: hold})
}

// adoptDed makes d one of the session's dedicated connections.
func (s *session) adoptDed(d *dedConn) *dedConn {
	s.pruneDed()
	s.ded = append(s.ded, d)
	return d
}

// pruneDed closes the dedicated connections to nodes the current table no longer names (the
// one holding WATCHed keys excepted: EXEC must find it). It runs when the session's table
// changed since it last ran.
func (s *session) pruneDed() {
	if s.dedRoutes == s.routes {
		return
	}
	s.dedRoutes = s.routes
	kept := s.ded[:0]
	for _, d := range s.ded {
		if d == s.tx.watch || s.named(d.addr) {
			kept = append(kept, d)
		} else {
			d.Close()
		}
	}
	clear(s.ded[len(kept):])
	s.ded = kept
}

func (s *session) named(addr string) bool {
	for _, p := range s.routes.pools {
		if p.addr == addr {
			return true
		}
	}
	return false
}

// dropDed closes a dedicated connection that failed or whose state is unknown. Watches it
// held are gone with it: the transaction's EXEC then fails as if a watched key changed.
func (s *session) dropDed(d *dedConn) {
	d.Close()
	for i, x := range s.ded {
		if x == d {
			last := len(s.ded) - 1
			copy(s.ded[i:], s.ded[i+1:])
			s.ded[last] = nil
			s.ded = s.ded[:last]
			break
		}
	}
	if s.tx.watch == d {
		s.tx.watch = nil
		s.tx.watchLost = true
	}
}

// closeDedicated closes every dedicated connection: the session is over.
func (s *session) closeDedicated() {
	for i, d := range s.ded {
		d.Close()
		s.ded[i] = nil
	}
	s.ded = s.ded[:0]
}

// write sends frames in one write.
func (d *dedConn) write(frames []byte, timeout time.Duration) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	_ = d.nc.SetWriteDeadline(deadline)
	if _, err := d.nc.Write(frames); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readReply returns the next reply frame, valid until the next readReply. It waits at most
// timeout for the whole reply (0: no limit).
func (d *dedConn) readReply(timeout time.Duration) ([]byte, error) {
	d.rr.Shrink(maxKeptOut, 4<<10) // the previous reply is no longer used
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	_ = d.nc.SetReadDeadline(deadline)
	return d.rr.Next()
}

// isRedirect reports the address a -MOVED or -ASK reply names; ask tells which one it was.
func isRedirect(reply []byte) (addr string, ask, ok bool) {
	switch {
	case bytes.HasPrefix(reply, movedPrefix):
		addr, ok = redirectAddr(reply[len(movedPrefix):])
	case bytes.HasPrefix(reply, askPrefix):
		addr, ok = redirectAddr(reply[len(askPrefix):])
		ask = true
	}
	return addr, ask, ok
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
		s.c.dedIdle.Put(d)
		s.ded[i] = nil
	}
	s.ded = s.ded[:0]
}
