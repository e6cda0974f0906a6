package proxy

import (
	"bytes"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// A Redis Cluster node that died leaves the slot map naming it until the control plane sees
// the failover. A request that failed without ever being written to it (backend.Request.Unsent:
// a refused dial, the backoff after it, a connection closed before the write) cannot have run,
// so it is sent once more, to the node a newer table names for its slot, instead of failing:
// from the moment the cluster shows the promotion, clients see no error. A request that may
// have been written is never sent again: a write to a dead master may have run.

// unsentWait bounds how long a batch with unsent requests waits for a table that moves them
// elsewhere (the hint makes the control plane refresh within ~200 ms); past it, they fail as
// they are.
const unsentWait = time.Second

// retryUnsent re-sends, in cluster mode, the batch's unsent requests whose slot a newer table
// gives to another node, once, in the batch's order, and waits for their replies. It may wait
// up to unsentWait: a loop session comes here on a goroutine of its own (complete hands it over).
func (s *session) retryUnsent() {
	if !s.anyUnsent() {
		return
	}
	s.c.hint() // the node is failing: the topology may have changed
	old := s.routes
	deadline := time.Now().Add(unsentWait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	next := old
	for {
		if cur := s.c.gen.Load().routes; cur != nil && cur != next {
			next = cur // waited on below: the one after it
			// Routed again by its group in a newer table: a Redis Cluster's slots outlive
			// the table (route.Table.Cluster); a ring's node indexes do not.
			if next.table.Cluster() && s.movesUnsent(next) {
				break
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case <-next.replaced:
		case <-timer.C:
			return
		}
	}
	// Routed by the new table; the batch keeps its own afterwards (a deferred command's node
	// is an index into it).
	s.routes = next
	resent := false
	s.eachRetryable(func(c *call, slot uint16, read bool) {
		node := s.groupNode(int(slot), read)
		if node < 0 {
			return
		}
		s.send(c, s.conn(node), c.frame)
		resent = true
	})
	s.routes = old
	if !resent {
		return
	}
	s.flush()
	s.pend.Wait()
}

// anyUnsent reports whether a request of the batch failed unsent.
func (s *session) anyUnsent() bool {
	found := false
	s.eachCall(func(c *call) { found = found || c.req.Unsent })
	return found
}

// movesUnsent reports whether rt sends a retryable request of the batch to another
// connection than the one it failed on: another node, or the same node's new pool after a
// backend settings change (pools are carried over by address, so a table that still names a dead node
// gives the same connection, and moves nothing).
func (s *session) movesUnsent(rt *routes) bool {
	moved := false
	connOf := func(node int) *backend.Conn {
		conns := rt.pools[node].conns
		return conns[s.id%uint64(len(conns))]
	}
	s.eachRetryable(func(c *call, slot uint16, read bool) {
		m := rt.table.Master(int(slot))
		if moved || m < 0 {
			return
		}
		if connOf(m) != c.conn {
			moved = true
			return
		}
		if read && rt.readFromSlave {
			for _, r := range rt.table.ReadReplicas(int(slot)) {
				moved = moved || connOf(r) != c.conn
			}
		}
	})
	return moved
}

// eachRetryable calls f with each unsent request of the batch that may be sent again, its
// slot and whether it only reads: one whose command names a key (keyless ones went to a node
// for what it is, not for a slot), and behind which no request of the batch went out on the
// same connection (re-sent now, it would run after that one: a client's commands to one node
// stay in order).
func (s *session) eachRetryable(f func(c *call, slot uint16, read bool)) {
	type retryable struct {
		c    *call
		slot uint16
		read bool
	}
	var calls []*call
	s.eachCall(func(c *call) { calls = append(calls, c) })
	var after []*backend.Conn // connections a later request of the batch went out on
	var found []retryable     // in reverse order
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		if !c.req.Unsent {
			if !containsConn(after, c.conn) {
				after = append(after, c.conn)
			}
			continue
		}
		if containsConn(after, c.conn) {
			continue
		}
		if slot, read, ok := frameSlot(c.frame); ok {
			found = append(found, retryable{c, slot, read})
		}
	}
	for i := len(found) - 1; i >= 0; i-- {
		f(found[i].c, found[i].slot, found[i].read)
	}
}

func containsConn(list []*backend.Conn, c *backend.Conn) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// frameSlot is the slot of the first key of a command frame and whether the command only
// reads; ok is false for a command without keys or a frame that does not parse.
func frameSlot(frame []byte) (slot uint16, read, ok bool) {
	rd := resp.NewReader(bytes.NewReader(frame), len(frame)+16)
	var cmd resp.Command
	if err := rd.Read(&cmd); err != nil || len(cmd.Args) == 0 {
		return 0, false, false
	}
	spec := command.Lookup(cmd.Args[0])
	if spec == nil {
		return 0, false, false
	}
	keys, kok := spec.Keys(cmd.Args, nil)
	if !kok || len(keys) == 0 {
		return 0, false, false
	}
	return route.Slot(cmd.Args[keys[0]]), command.IsReadOnly(spec), true
}
