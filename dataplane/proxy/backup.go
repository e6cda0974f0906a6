package proxy

import (
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Backup reads (backup_request, Redis Cluster only): a read routed to a slot's master that has
// no reply after the threshold is sent to one of the slot's replicas too, and whichever answer
// comes first is the client's. The other answer still arrives on its connection, in FIFO order,
// and is dropped there: each leg is a Request of the race's own, never the session's, so
// nothing but the race sees it. With backup reads off the session never gets here.

// minBackupDelay is the floor of the relative threshold: below it, ordinary jitter of a fast
// master would double the read load.
const minBackupDelay = time.Millisecond

// backupDelay is when to send the backup: TriggerSlow, or Multiplier × the master's moving
// average latency (at least minBackupDelay), whichever is earlier; 0 while neither is known.
func backupDelay(b *route.BackupRequest, avg time.Duration) time.Duration {
	d := b.TriggerSlow
	if b.Multiplier > 0 && avg > 0 {
		rel := max(time.Duration(b.Multiplier*float64(avg)), minBackupDelay)
		if d <= 0 || rel < d {
			d = rel
		}
	}
	return d
}

// race is one read with a possible backup. It is pooled: it lives until both legs and its
// timer are done, which may be long after the session has had its answer.
type race struct {
	mu      sync.Mutex
	primary backend.Request
	backup  backend.Request
	timer   *time.Timer

	c       *Cluster
	master  *pool
	replica *backend.Conn
	frame   []byte           // the session's frame: valid only while !delivered
	buf     []byte           // the race's own copy, for the backup leg
	dst     *backend.Request // the session's request that gets the winning reply
	wg      backend.Waiter   // the session's, released once by the winner
	sent    time.Time

	pending   int // legs and timer not yet finished
	delivered bool
}

var racePool sync.Pool // of *race

func getRace() *race {
	if r, ok := racePool.Get().(*race); ok {
		return r
	}
	r := &race{}
	r.primary.OnDone(r.onPrimary)
	r.backup.OnDone(r.onBackup)
	return r
}

// forwardWithBackup sends a read to the master of group g as a race; false when the read does
// not qualify (node is a replica already, or the group has none) and goes the ordinary way.
func (s *session) forwardWithBackup(pl *place, b *route.BackupRequest, g, node int, cmd *resp.Command) bool {
	t := s.routes.table
	reps := t.ReadReplicas(g)
	if node != t.Master(g) || len(reps) == 0 {
		return false
	}
	s.rr++
	rep := reps[s.rr%uint32(len(reps))]
	master := s.routes.pools[node]
	c := &pl.main
	pl.kind = placeForward
	c.frame, c.conn = frameOf(cmd, &c.buf), s.conn(node)

	r := getRace()
	r.c, r.master, r.replica = s.c, master, s.conn(rep)
	r.frame, r.dst, r.wg = c.frame, &c.req, &s.pend
	r.sent = time.Now()
	r.pending, r.delivered = 1, false
	delay := backupDelay(b, time.Duration(master.avgLatency.Load()))
	if delay > 0 {
		r.pending++
		if r.timer == nil {
			r.timer = time.AfterFunc(delay, r.fire)
		} else {
			r.timer.Reset(delay)
		}
	}
	s.pend.Add(1)
	c.conn.Send(&r.primary, c.frame)
	s.touch(c.conn)
	return true
}

// deliverLocked hands req's reply to the session. r.mu must be held; called once.
func (r *race) deliverLocked(req *backend.Request) {
	r.delivered = true
	r.dst.Fill(req.Reply, req.Failure) // within the session's output limit, as any reply
	r.dst.Unsent = req.Unsent          // unsent: the read may be sent again
	r.frame, r.dst = nil, nil
	if r.timer != nil && r.pending > 1 && r.timer.Stop() {
		r.pending-- // the timer will not run
	}
	wg := r.wg
	r.wg = nil
	wg.Done()
}

// doneLocked ends one leg or the timer; true when the race can go back to the pool.
func (r *race) doneLocked() bool {
	r.pending--
	return r.pending == 0
}

func (r *race) release() {
	r.c, r.master, r.replica = nil, nil, nil
	racePool.Put(r)
}

// onPrimary: the master answered (or failed). It wins unless the replica was faster; its
// latency feeds the master's moving average either way.
func (r *race) onPrimary(req *backend.Request) {
	r.mu.Lock()
	if req.Failure == backend.FailNone {
		r.master.observeLatency(time.Since(r.sent))
	}
	if !r.delivered {
		r.deliverLocked(req)
	}
	free := r.doneLocked()
	r.mu.Unlock()
	if free {
		r.release()
	}
}

// onBackup: the replica answered. A reply from the replica wins if the master has not
// answered yet; a failure of the replica's connection does not (the master may still answer),
// nor does an error reply: a replica refuses reads its master serves (LOADING, MASTERDOWN,
// CLUSTERDOWN, TRYAGAIN), and for any other error the master's answer is the one to give.
func (r *race) onBackup(req *backend.Request) {
	r.mu.Lock()
	if !r.delivered && req.Failure == backend.FailNone && !resp.IsError(req.Reply) {
		if won := r.c.metrics.backupWon; won != nil {
			won.Inc()
		}
		r.deliverLocked(req)
	}
	free := r.doneLocked()
	r.mu.Unlock()
	if free {
		r.release()
	}
}

// fire runs when the threshold passes: if the master has not answered, the backup goes out.
func (r *race) fire() {
	r.mu.Lock()
	if r.delivered {
		free := r.doneLocked()
		r.mu.Unlock()
		if free {
			r.release()
		}
		return
	}
	// The timer's share becomes the backup leg's. The session still waits, so r.frame is
	// valid here; copy it, since it may not be once the lock is released.
	r.buf = append(r.buf[:0], r.frame...)
	conn, sent := r.replica, r.c.metrics.backupSent
	r.mu.Unlock()
	if sent != nil {
		sent.Inc()
	}
	conn.Send(&r.backup, r.buf)
	conn.Flush()
}

// observeLatency folds one reply time into the node's moving average (1/8 weight per sample).
// Racing updates may lose a sample; that is fine for an average.
func (p *pool) observeLatency(d time.Duration) {
	old := p.avgLatency.Load()
	if old == 0 {
		p.avgLatency.Store(int64(d))
		return
	}
	p.avgLatency.Store(old + (int64(d)-old)/8)
}
