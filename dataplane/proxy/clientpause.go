package proxy

import (
	"bytes"
	"sync"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT PAUSE and CLIENT UNPAUSE go to the servers: a pause holds the clients of a server,
// and the proxy's connections are a server's clients, so pausing every node holds every
// client of the cluster's commands (the writes, with WRITE) as a pause holds a server's. They
// are sent to the nodes a SCRIPT KILL goes to (script.go: the masters, and the replicas when
// reads go to them), on connections of their own — a shared connection may be held by the
// pause it would lift — one round at a time in the order they came (pauseQueue), and answer
// +OK when every node did, else the first node's error
// (Redis's own for bad arguments). A node holds a paused command on the shared connection it
// came on, so the other commands queued behind it on that connection wait too (reads behind a
// write, with WRITE), and a pause longer than read_timeout fails them.

// clientPause forwards CLIENT PAUSE or UNPAUSE (args) to the nodes; its reply fills the
// place as a forwarded command's.
func (s *session) clientPause(pl *place, args [][]byte) {
	if s.routes == nil {
		pl.setError("ERR cluster " + s.c.name + " has no routing table yet")
		return
	}
	nodes := s.clientCommandNodes() // as SCRIPT KILL's (script.go)
	if len(nodes) == 0 {
		s.noNode(pl)
		return
	}
	pl.kind = placeForward
	c := &pl.main
	c.conn, c.asked = s.conn(nodes[0]), false
	s.pend.Add(1)
	s.c.pauses.add(s.c, pauseJob{
		frame:   resp.AppendCommand(nil, args...),
		targets: s.killTargets(nodes, "client pause"),
		w:       killWaiter{c, &s.pend},
	})
}

// pauseQueue runs a cluster's CLIENT PAUSE and UNPAUSE commands one round at a time, in the
// order they came: a client's pipelined PAUSE then UNPAUSE must reach each node in that order
// (sent at once on connections of their own, they raced, and a node could end up paused), and
// a node gets one connection for them however many are pipelined: each costs a queue entry,
// not a goroutine and a connection. The queue is the cluster's; one goroutine drains it while
// it is not empty.
type pauseQueue struct {
	mu      sync.Mutex
	running bool // a goroutine drains jobs
	jobs    []pauseJob
}

// pauseJob is one PAUSE or UNPAUSE: its frame, its nodes and the command waiting for the reply.
type pauseJob struct {
	frame   []byte
	targets []killTarget
	w       killWaiter
}

// add queues j, and starts draining the queue unless a goroutine is at it.
func (q *pauseQueue) add(c *Cluster, j pauseJob) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.drain(c)
	}
}

// drain runs the queued rounds in order until the queue is empty.
func (q *pauseQueue) drain(c *Cluster) {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running, q.jobs = false, nil
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs[0] = pauseJob{} // the queue no longer holds its session's call
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		c.pauseAll(j.targets, j.frame).fill(j.w.c)
		j.w.wg.Done()
	}
}

// pauseAll sends frame to every target at once: the first error, else the first +OK.
func (c *Cluster) pauseAll(targets []killTarget, frame []byte) killReply {
	replies := c.sendAll(targets, frame)
	for _, r := range replies {
		if resp.IsError(r.reply) {
			return r
		}
	}
	return replies[0]
}

// isPause reports whether a CLIENT subcommand is PAUSE or UNPAUSE.
func isPause(sub []byte) bool {
	return bytes.EqualFold(sub, []byte("pause")) || bytes.EqualFold(sub, []byte("unpause"))
}
