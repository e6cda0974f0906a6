package proxy

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT PAUSE and CLIENT UNPAUSE go to the servers: a pause holds the clients of a server,
// and the proxy's connections are a server's clients, so pausing every node holds every
// client of the cluster's commands (the writes, with WRITE) as a pause holds a server's. They
// are sent at once to the nodes a SCRIPT KILL goes to (script.go: the masters, and the replicas
// when reads go to them), on connections of their own — a shared connection may be held by
// the pause it would lift — and answer +OK when every node did, else the first node's error
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
	targets := s.killTargets(nodes, "client pause")
	frame := resp.AppendCommand(nil, args...)
	s.pend.Add(1)
	wg := &s.pend
	go func() {
		s.c.pauseAll(targets, frame).fill(c)
		wg.Done()
	}()
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
