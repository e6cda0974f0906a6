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
	// A replica that is loading a full resync, or whose link to its master is down with
	// replica-serve-stale-data no, refuses reads with these while the master serves them.
	loadingPrefix    = []byte("-LOADING")
	masterDownPrefix = []byte("-MASTERDOWN")
	askingFrame      = []byte("*1\r\n$6\r\nASKING\r\n")
)

// followRedirects re-sends the reads of the batch that failed on a read replica to its master
// (in cluster mode, and in a ring with read replicas: Sentinel mode), in cluster mode the
// requests that never reached their node (retry.go), then every request that a node redirected
// or asked to retry, or that a read replica refused, until none is left or the hop limit is
// reached. Requests are re-sent in the batch's order, so a client's commands to one key stay
// in order on the new node.
func (s *session) followRedirects() {
	s.replicaFailuresToMasters()
	if s.routes.table.Cluster() {
		s.retryUnsent()
	}
	for hop := 0; hop < maxRedirects; hop++ {
		retry := false // a node asked for a retry of its own: give it time
		s.eachCall(func(c *call) {
			r := c.req.Reply
			retry = retry || (bytes.HasPrefix(r, tryAgainPrefix) || bytes.HasPrefix(r, clusterDownPrefix)) &&
				(c.asked || s.replicaMaster(c.conn) == nil)
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

// redirectOrRetry reports whether an error reply is one that followRedirects may act on.
func redirectOrRetry(r []byte) bool {
	return bytes.HasPrefix(r, movedPrefix) || bytes.HasPrefix(r, askPrefix) ||
		bytes.HasPrefix(r, tryAgainPrefix) || bytes.HasPrefix(r, clusterDownPrefix) ||
		bytes.HasPrefix(r, loadingPrefix) || bytes.HasPrefix(r, masterDownPrefix)
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
		} else if !s.toMaster(c) {
			s.send(c, c.conn, c.frame)
		}
	case bytes.HasPrefix(r, loadingPrefix), bytes.HasPrefix(r, masterDownPrefix):
		return s.toMaster(c) // from a master the reply stands: no other node has the key
	default:
		return false
	}
	return true
}

// replicaFailuresToMasters re-sends each request of the batch that failed on a read replica's
// connection (refused, reset, closed: not a timeout, which has cost its time already) to the
// replica's master at once. Only reads go to replicas, and a read may run twice; the table may
// name a dead replica for seconds yet (a Redis Cluster's node timeout, Sentinel's down-after).
func (s *session) replicaFailuresToMasters() {
	resent := false
	s.eachCall(func(c *call) {
		resent = c.req.Failure == backend.FailBackend && s.toMaster(c) || resent
	})
	if resent {
		s.flush()
		s.pend.Wait()
	}
}

// toMaster sends c again to the master of the read replica it went to; false when it did not
// go to a replica.
func (s *session) toMaster(c *call) bool {
	m := s.replicaMaster(c.conn)
	if m == nil {
		return false
	}
	s.send(c, m, c.frame)
	return true
}

// replicaMaster is where a read that conn refused is sent instead when conn is a read
// replica's (read_from_slave): to its master, which serves it, where the replica would keep
// refusing until every retry is spent (a replica that has just joined, whose view of the
// cluster lags the master's; one loading a full resync; one cut off from its master). nil
// when conn is not a replica's.
func (s *session) replicaMaster(conn *backend.Conn) *backend.Conn {
	for node, p := range s.routes.pools {
		if slices.Contains(p.conns, conn) {
			if m := s.routes.table.MasterOf(node); m >= 0 {
				return s.conn(m)
			}
			return nil
		}
	}
	return nil
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
