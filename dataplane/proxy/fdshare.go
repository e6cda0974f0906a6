package proxy

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A cluster's share of the open-file limit (Cluster.fdShare, fdlimit.Plan) bounds the
// descriptors its clients hold, not only its client count: a client connection counts one,
// and so does each backend connection dialled for one client alone (a blocking command's or a
// transaction's dedicated connection, a subscription's connection to each node, SCRIPT KILL's),
// for as long as it is open, idle in the cluster's pool too. Otherwise a flood of BLPOP or
// SUBSCRIBE clients holds two or more descriptors each, and takes those of other clusters.
//
// Cluster.held is the one count. A client takes its descriptor at accept (Serve) and gives it
// back in forget; a backend connection takes it in holdFD, before its dial, and gives it
// back through its fdHold, once, when it closes. When the share is used up, an idle pooled
// connection is closed to make room; when none is idle, a new client is refused at accept
// and a dial fails its client's command with errNoFDs: never another cluster's.

// errNoFDs is what a client whose command needs a backend connection of its own is told when
// its cluster's share has no room left: Redis's maxclients error, so that clients that handle
// that one handle this one, with the reason after it.
var errNoFDs = errors.New("max number of clients reached")

// fdHold is one backend connection counted in its cluster's held descriptors. release gives
// the count back exactly once, whichever of the connection's closers calls it first and
// however many do: a connection may be closed by its session, by the goroutine watching its
// client, by its reader, by the pool.
type fdHold struct {
	c    *Cluster
	done atomic.Bool
}

// release gives h's descriptor back; nil-safe, idempotent.
func (h *fdHold) release() {
	if h != nil && h.done.CompareAndSwap(false, true) {
		h.c.held.Add(-1)
		h.c.dedHeld.Add(-1)
	}
}

// holdFD counts a backend connection about to be dialled for one client in the cluster's
// share; the caller releases it when the dial fails or the connection closes. It fails with
// errNoFDs when the share has no room left even after closing the idle pooled connections.
func (c *Cluster) holdFD() (*fdHold, error) {
	if !c.takeFD() {
		// Not counted in the request metrics here: a subscription waiting for room retries
		// in the background (pubsub reconcile), and would count every retry.
		c.fdFullLog.refused(c)
		return nil, fmt.Errorf("%w: cluster %s has no file descriptors left in its share for this client's own backend connection",
			errNoFDs, c.name)
	}
	c.dedHeld.Add(1)
	return &fdHold{c: c}, nil
}

// takeFD counts one more descriptor in held when the share has room, closing idle pooled
// dedicated connections (oldest first) to make some; false when it has none. Without a share
// (no open-file limit known) it always counts.
func (c *Cluster) takeFD() bool {
	for {
		share, n := c.fdShare.Load(), c.held.Load()
		if share > 0 && n >= share {
			if c.dedIdle.EvictOne() {
				continue
			}
			return false
		}
		if c.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// fdFullLog logs that a cluster's share ran out for a backend connection at most once per
// fdFullLogEvery: a flood refuses one command per client, which must not make one line each.
type fdFullLog struct {
	mu   sync.Mutex
	last time.Time
	n    int // refusals since the last line
}

const fdFullLogEvery = 10 * time.Second

func (l *fdFullLog) refused(c *Cluster) {
	l.mu.Lock()
	l.n++
	if now := time.Now(); now.Sub(l.last) >= fdFullLogEvery {
		n := l.n
		l.last, l.n = now, 0
		l.mu.Unlock()
		c.log.Warn("cluster's share of the open-file limit used up: commands needing a backend connection of their own are refused",
			"share", c.fdShare.Load(), "held", c.held.Load(), "backend_held", c.dedHeld.Load(), "refused", n)
		return
	}
	l.mu.Unlock()
}
