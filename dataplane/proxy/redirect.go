package proxy

import (
	"bytes"
	"slices"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
)

const (
	// maxRedirects bounds how often one batch follows MOVED/ASK or retries TRYAGAIN and
	// CLUSTERDOWN before the client gets the last reply as it is.
	maxRedirects = 5
	// retryBackoff is the first pause before retrying TRYAGAIN/CLUSTERDOWN; it grows per hop.
	retryBackoff = 25 * time.Millisecond
)

var (
	movedPrefix       = []byte("-MOVED ")
	askPrefix         = []byte("-ASK ")
	tryAgainPrefix    = []byte("-TRYAGAIN")
	clusterDownPrefix = []byte("-CLUSTERDOWN")
	askingFrame       = []byte("*1\r\n$6\r\nASKING\r\n")
)

// followRedirects re-sends, in cluster mode, the requests of the batch that never reached
// their node (retry.go), then every request that a node redirected or asked to retry, until
// none is left or the hop limit is reached. Requests are re-sent in
// the batch's order, so a client's commands to one key stay in order on the new node.
func (s *session) followRedirects() {
	s.retryUnsent()
	for hop := 0; hop < maxRedirects; hop++ {
		retry := false
		s.eachCall(func(c *call) {
			retry = retry || bytes.HasPrefix(c.req.Reply, tryAgainPrefix) || bytes.HasPrefix(c.req.Reply, clusterDownPrefix)
		})
		if retry {
			s.c.hint()
			time.Sleep(retryBackoff << hop)
		}
		resent := false
		s.eachCall(func(c *call) {
			resent = s.resend(c) || resent
		})
		if !resent {
			return
		}
		s.flush()
		s.pend.Wait()
	}
	if s.c.metrics.on {
		s.eachCall(func(c *call) {
			if bytes.HasPrefix(c.req.Reply, movedPrefix) || bytes.HasPrefix(c.req.Reply, askPrefix) {
				s.c.metrics.exhausted.Inc()
			}
		})
	}
}

// redirectOrRetry reports whether an error reply is one that followRedirects acts on.
func redirectOrRetry(r []byte) bool {
	return bytes.HasPrefix(r, movedPrefix) || bytes.HasPrefix(r, askPrefix) ||
		bytes.HasPrefix(r, tryAgainPrefix) || bytes.HasPrefix(r, clusterDownPrefix)
}

func (s *session) eachCall(f func(*call)) {
	for _, pl := range s.places[:s.n] {
		switch pl.kind {
		case placeForward:
			f(&pl.main)
		case placeSplit:
			for _, c := range pl.subs[:pl.nsubs] {
				f(c)
			}
		}
	}
}

// resend sends c again when its reply is a redirect or a retry; false when the reply stands.
func (s *session) resend(c *call) bool {
	r := c.req.Reply
	if len(r) == 0 || r[0] != '-' {
		return false
	}
	switch {
	case bytes.HasPrefix(r, movedPrefix):
		conn := s.redirectConn(r[len(movedPrefix):])
		if conn == nil {
			return false
		}
		s.c.hint() // the slot map is stale
		s.c.metrics.inc(s.c.metrics.moved)
		s.send(c, conn, c.frame)
	case bytes.HasPrefix(r, askPrefix):
		conn := s.redirectConn(r[len(askPrefix):])
		if conn == nil {
			return false
		}
		// ASKING and the command in one write, so that no other session's command can come
		// between them on the shared connection.
		s.c.metrics.inc(s.c.metrics.ask)
		s.sendAsking(c, conn)
	case bytes.HasPrefix(r, tryAgainPrefix), bytes.HasPrefix(r, clusterDownPrefix):
		if c.asked {
			// A multi-key command on the importing node while some of its keys are still on
			// the other one: the retry must come with ASKING again, or the node sends MOVED
			// back to the migrating one.
			s.sendAsking(c, c.conn)
		} else {
			s.send(c, s.retryConn(c.conn), c.frame)
		}
	default:
		return false
	}
	return true
}

// retryConn is where a read that conn answered with CLUSTERDOWN or TRYAGAIN is retried: the
// master of the slot when conn is one of its replicas (read_from_slave), which may still be
// joining, whose view of the cluster lags the master's, and which would keep answering so
// until every retry is spent; else conn itself.
func (s *session) retryConn(conn *backend.Conn) *backend.Conn {
	slots := s.routes.table.Slots
	if slots == nil {
		return conn
	}
	for node, p := range s.routes.pools {
		if slices.Contains(p.conns, conn) {
			if m := slots.MasterOf(node); m >= 0 {
				return s.conn(m)
			}
			return conn
		}
	}
	return conn
}

// sendAsking sends c to conn preceded by ASKING.
func (s *session) sendAsking(c *call, conn *backend.Conn) {
	c.conn, c.asked = conn, true
	s.pend.Add(2)
	if c.ask == nil { // made on the first ASK only: a split makes thousands of calls
		c.ask = &backend.Request{}
		c.ask.Bind(&s.pend)
	}
	conn.SendPrefixed(&c.req, c.ask, askingFrame, c.frame)
	s.touch(conn)
}

// redirectConn returns this session's connection to the node a redirect names; nil when the
// reply is malformed or the cluster is closing.
func (s *session) redirectConn(rest []byte) *backend.Conn {
	addr, ok := redirectAddr(rest)
	if !ok {
		return nil
	}
	p := s.c.poolFor(addr)
	if p == nil {
		return nil
	}
	return p.conns[s.id%uint64(len(p.conns))]
}

// redirectAddr parses the "<slot> <host:port>\r\n" that follows -MOVED or -ASK.
func redirectAddr(rest []byte) (string, bool) {
	sp := bytes.IndexByte(rest, ' ')
	end := bytes.Index(rest, []byte("\r\n"))
	if sp <= 0 || end < sp+2 {
		return "", false
	}
	if _, ok := resp.ParseInt64Arg(rest[:sp]); !ok {
		return "", false
	}
	addr := rest[sp+1 : end]
	if bytes.LastIndexByte(addr, ':') <= 0 || bytes.IndexByte(addr, ' ') >= 0 {
		return "", false
	}
	return string(addr), true
}
