package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT UNBLOCK id [TIMEOUT|ERROR] names a client of the proxy (CLIENT ID's): a client
// blocked in a blocking command waits on a connection of its own to the node (blocking.go),
// so the proxy finds that connection among the node's clients (CLIENT LIST, by its address)
// and sends the node CLIENT UNBLOCK for it, on a connection of its own. The blocked session
// holds its blockMark while it waits and takes its lock to clear it, so the connection cannot
// go back to serve another command while an UNBLOCK for it is under way.

// blockMark is what a session is blocked on, for CLIENT UNBLOCK from another session.
type blockMark struct {
	mu    sync.Mutex
	addr  string // the node
	local string // the connection's address, as the node lists it (addr=)
	on    bool
}

// blockedOn marks the session blocked on d until the returned func runs.
func (s *session) blockedOn(d *dedConn) func() {
	m := &s.blocked
	m.mu.Lock()
	m.on, m.local = true, d.nc.LocalAddr().String()
	m.addr = d.addr
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.on = false
		m.mu.Unlock()
	}
}

// clientUnblock answers CLIENT UNBLOCK (args, arity checked in handle) as Redis does: :1 when
// the client was blocked and is unblocked, else :0.
func (s *session) clientUnblock(pl *place, args [][]byte) {
	var mode []byte
	switch {
	case len(args) > 4:
		pl.setError("ERR unknown subcommand or wrong number of arguments for '" + clip(args[1]) + "'. Try CLIENT HELP.")
		return
	case len(args) == 4:
		if m := strings.ToLower(string(args[3])); m != "timeout" && m != "error" {
			pl.setError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
		mode = args[3]
	}
	id, ok := resp.ParseInt64Arg(args[2])
	if !ok {
		pl.setError("ERR value is not an integer or out of range")
		return
	}
	var t *session
	s.c.mu.Lock()
	for o := range s.c.sessions {
		if int64(o.id) == id {
			t = o
		}
	}
	s.c.mu.Unlock()
	if t == nil || t == s {
		pl.kind = placeLocal
		pl.local = resp.AppendInt(pl.local[:0], 0)
		return
	}
	node := -1
	if s.routes != nil {
		node = s.keylessNode()
	}
	if node < 0 {
		pl.setError(s.noNodeMsg())
		return
	}
	pl.kind = placeForward
	c := &pl.main
	c.conn, c.asked = s.conn(node), false // named for its protocol only (assemble)
	s.pend.Add(1)
	wg := &s.pend
	go func() {
		s.c.unblock(&t.blocked, mode).fill(c)
		wg.Done()
	}()
}

var zeroReply = []byte(":0\r\n")

// unblock unblocks the client blocked on m's connection, if it still is.
func (c *Cluster) unblock(m *blockMark, mode []byte) killReply {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return killReply{reply: zeroReply}
	}
	t := killTarget{addr: m.addr, what: "client unblock"}
	if p := c.poolFor(m.addr); p != nil {
		t.from, t.opts = p, p.opts
	}
	list := c.killOne(t, resp.AppendCommand(nil, []byte("CLIENT"), []byte("LIST"), []byte("TYPE"), []byte("normal")))
	if resp.IsError(list.reply) {
		return list
	}
	var id []byte
	for _, line := range bytes.Split(list.reply, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 1 && string(f[1]) == "addr="+m.local && bytes.HasPrefix(f[0], []byte("id=")) {
			id = f[0][3:]
		}
	}
	if _, err := strconv.ParseUint(string(id), 10, 64); err != nil {
		return killReply{reply: zeroReply}
	}
	frame := [][]byte{[]byte("CLIENT"), []byte("UNBLOCK"), id}
	if mode != nil {
		frame = append(frame, mode)
	}
	return c.killOne(t, resp.AppendCommand(nil, frame...))
}
