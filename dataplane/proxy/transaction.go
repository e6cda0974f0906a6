package proxy

import (
	"bytes"
	"time"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// txState is a session's transaction. Between MULTI and EXEC the proxy queues the commands
// itself (answering +QUEUED, or an error that dooms the transaction, as Redis does) and checks
// that every key is on one node — one slot in cluster mode, as Redis Cluster requires — and
// on the node of the WATCHed keys. EXEC sends MULTI, the commands and EXEC in one write on the
// session's dedicated connection to that node. WATCH goes to that connection at once, so that
// the node tracks the keys from then on.
type txState struct {
	active bool   // between MULTI and EXEC/DISCARD
	dirty  bool   // a command was refused while queueing: EXEC answers EXECABORT
	frames []byte // MULTI and the queued commands, as they go to the node
	n      int    // queued commands

	// Where the transaction's and the watched keys are, once some key fixed it: their group
	// (route.Table.Group) and, for a table whose groups do not outlive it (a ring's nodes),
	// the address of the group's node.
	grouped bool
	group   int
	addr    string

	watch     *dedConn // the connection holding WATCHed keys; nil when none
	watchLost bool     // that connection failed: the watches are gone, so EXEC must fail

	// The keys the queued commands write, while the client cache is on: dropped from it once
	// more after EXEC ran (cacheExecuted), so that the client's next read cannot hit a value
	// cached meanwhile whose invalidation is still on its way. Only queued commands' keys,
	// so bounded as frames are.
	written     []byte
	writtenLens []int
}

// maxTxBytes bounds a queued transaction, as one command is bounded.
const maxTxBytes = resp.MaxCommandLen

var (
	multiFrame   = []byte("*1\r\n$5\r\nMULTI\r\n")
	execFrame    = []byte("*1\r\n$4\r\nEXEC\r\n")
	unwatchFrame = []byte("*1\r\n$7\r\nUNWATCH\r\n")
	nullArray    = []byte("*-1\r\n")
)

// noMulti are the commands Redis 7.0 flags no-multi: refused inside a transaction with
// Redis's own error (the proxy refuses them outside one too).
var noMulti = map[string]bool{"save": true, "shutdown": true, "psync": true, "sync": true}

// refused dooms an open transaction: a command in it was refused.
func (tx *txState) refused() {
	if tx.active {
		tx.dirty = true
	}
}

// reset ends the transaction and forgets the watches (EXEC and DISCARD do both).
func (tx *txState) reset() {
	tx.active, tx.dirty, tx.n = false, false, 0
	tx.frames = tx.frames[:0]
	if cap(tx.frames) > maxKeptOut {
		tx.frames = nil
	}
	tx.grouped, tx.addr = false, ""
	tx.watch, tx.watchLost = nil, false
	tx.written, tx.writtenLens = tx.written[:0], tx.writtenLens[:0]
	if cap(tx.written) > maxKeptOut {
		tx.written, tx.writtenLens = nil, nil
	}
}

// transaction handles MULTI, EXEC, DISCARD, WATCH and UNWATCH outside a transaction, and
// MULTI, EXEC, DISCARD and WATCH inside one (queue handles the rest).
func (s *session) transaction(pl *place, spec *command.Spec, cmd *resp.Command) {
	tx := &s.tx
	pl.kind = placeLocal
	switch spec.Name {
	case "multi":
		if tx.active {
			pl.setError("ERR MULTI calls can not be nested")
			return
		}
		tx.active, tx.dirty, tx.n = true, false, 0
		tx.frames = append(tx.frames[:0], multiFrame...)
		pl.local = append(pl.local[:0], okReply...)
	case "exec":
		if !tx.active {
			pl.setError("ERR EXEC without MULTI")
			return
		}
		s.deferTo(spec, -1)
	case "discard":
		if !tx.active {
			pl.setError("ERR DISCARD without MULTI")
			return
		}
		if tx.watch != nil {
			s.deferTo(spec, -1) // UNWATCH on the node, after the batch
			return
		}
		tx.reset()
		pl.local = append(pl.local[:0], okReply...)
	case "watch":
		if tx.active {
			pl.setError("ERR WATCH inside MULTI is not allowed")
			return
		}
		node, msg := s.txKeys(spec, cmd.Args)
		if msg != "" {
			pl.setError(msg)
			return
		}
		s.deferTo(spec, node)
	case "unwatch": // outside a transaction; inside, it is queued
		if tx.watch != nil {
			s.deferTo(spec, -1)
			return
		}
		tx.reset()
		pl.local = append(pl.local[:0], okReply...)
	}
}

// queue handles a command inside a transaction: queued (+QUEUED) or refused (which dooms the
// transaction). false: the command is not queued but handled as usual (MULTI, EXEC, DISCARD,
// WATCH, QUIT).
func (s *session) queue(pl *place, spec *command.Spec, cmd *resp.Command) bool {
	tx := &s.tx
	switch spec.Policy {
	case command.Transaction:
		if spec.Name != "unwatch" {
			return false
		}
	case command.Local:
		switch spec.Name {
		case "quit", "reset":
			return false
		case "ping", "echo": // the node answers them as the proxy would
		default:
			pl.setError("ERR " + spec.Name + " inside a transaction is not supported by the proxy")
			tx.dirty = true
			return true
		}
	case command.Unsupported:
		if noMulti[spec.Name] {
			pl.setError("ERR Command not allowed inside a transaction") // Redis's, for its no-multi flag
		} else {
			pl.setError("ERR " + spec.Name + " is not supported by the proxy")
		}
		tx.dirty = true
		return true
	case command.Broadcast, command.Keyspace: // every node, where a transaction has one
		pl.setError("ERR " + spec.Name + " inside a transaction is not supported by the proxy")
		tx.dirty = true
		return true
	}
	if s.routes == nil {
		pl.setError("ERR cluster " + s.c.name + " has no routing table yet")
		tx.dirty = true
		return true
	}
	// Malformed key arguments are the node's to refuse when EXEC runs them, as Redis does.
	if _, ok := spec.Keys(cmd.Args, s.keys[:0]); ok {
		if _, msg := s.txKeys(spec, cmd.Args); msg != "" {
			pl.setError(msg)
			tx.dirty = true
			return true
		}
	}
	frame := frameOf(cmd, &pl.main.buf)
	if len(tx.frames)+len(frame) > maxTxBytes {
		pl.setError("ERR transaction too large for the proxy")
		tx.dirty = true
		return true
	}
	if !tx.dirty {
		tx.frames = append(tx.frames, frame...)
		tx.n++
		s.cacheQueued(spec, cmd.Args) // bounded with the frames: the keys are in them
	}
	pl.kind = placeLocal
	pl.local = resp.AppendSimple(pl.local[:0], "QUEUED")
	return true
}

// txKeys checks that the command's keys are together and with the transaction's (and the
// watched) keys, fixing where they are on the first keys. It returns the node of the keys
// (-1 when none) or the client's error.
func (s *session) txKeys(spec *command.Spec, args [][]byte) (node int, msg string) {
	g, msg := s.keyGroup(spec, args)
	if msg != "" || g < 0 {
		return -1, msg
	}
	tx := &s.tx
	// A Redis Cluster's groups, slots, are the same in every table: a transaction keeps to
	// its slot, wherever the slot moves. A ring's node indexes are one table's only: it
	// keeps to its node, by address.
	cluster := s.routes.table.Cluster()
	if cluster && tx.grouped && g != tx.group {
		return -1, route.ErrCrossSlot.Error()
	}
	if node = s.groupNode(g, false); node < 0 {
		return -1, s.noNodeMsg()
	}
	addr := s.routes.pools[node].addr
	switch {
	case !tx.grouped:
		tx.grouped, tx.group, tx.addr = true, g, addr
	case !cluster && addr != tx.addr:
		return -1, "ERR keys of a transaction must all be on one node (use hash tags)"
	}
	return node, ""
}

// txNode is the node a transaction runs on: that of its keys, or keylessNode's for one
// without keys.
func (s *session) txNode() (node int, msg string) {
	tx := &s.tx
	switch {
	case tx.grouped && s.routes.table.Cluster(): // the slot's master in this table (see txKeys)
		node = s.groupNode(tx.group, false)
	case tx.grouped:
		node = -1
		for i, p := range s.routes.pools {
			if p.addr == tx.addr {
				node = i
			}
		}
		if node < 0 {
			return -1, "ERR node " + tx.addr + " left cluster " + s.c.name + "; transaction discarded"
		}
	default:
		node = s.keylessNode()
	}
	if node < 0 {
		return -1, s.noNodeMsg()
	}
	return node, ""
}

// runTransaction runs a deferred EXEC, DISCARD, WATCH or UNWATCH and appends its reply.
func (s *session) runTransaction(out []byte, spec *command.Spec) []byte {
	tx := &s.tx
	switch spec.Name {
	case "exec":
		out = s.exec(out)
		s.cacheExecuted()
		tx.reset() // the node forgets the watches at EXEC, whatever its outcome
		return out
	case "discard":
		s.unwatch()
		tx.reset()
		return append(out, okReply...)
	case "unwatch":
		s.unwatch()
		tx.reset()
		return append(out, okReply...)
	}
	return s.watchKeys(out)
}

// maxTxHops bounds how often EXEC follows MOVED or waits for a migrating slot (pausing
// retryBackoff, doubled each time up to maxTxPause: ~1.6 s in all) before the client gets
// the node's EXECABORT.
const (
	maxTxHops  = 10
	maxTxPause = 200 * time.Millisecond
)

// exec runs the queued transaction on its node and appends EXEC's reply.
func (s *session) exec(out []byte) []byte {
	tx := &s.tx
	if tx.dirty {
		s.unwatch() // Redis forgets the watches of a discarded transaction too
		s.c.metrics.inc(s.c.metrics.refused)
		return resp.AppendError(out, "EXECABORT Transaction discarded because of previous errors.")
	}
	if tx.watchLost {
		// The connection that held the watches failed: whether a watched key changed is
		// unknown, so the transaction fails as when one did.
		s.unwatch()
		return append(out, nullArray...)
	}
	d := tx.watch
	if d == nil {
		node, msg := s.txNode()
		if msg != "" {
			return resp.AppendError(out, msg)
		}
		var err error
		if d, err = s.dedicated(node); err != nil {
			return resp.AppendError(out, "ERR "+err.Error())
		}
	}
	tx.frames = append(tx.frames, execFrame...)
	for hop := 0; ; hop++ {
		reply, moved, migrating, err := s.execOn(d)
		if err != nil {
			s.dropDed(d)
			s.c.metrics.inc(s.c.metrics.backendErr)
			return resp.AppendError(out, "ERR backend "+d.addr+": "+err.Error())
		}
		if moved == "" && !migrating {
			return append(out, reply...)
		}
		// The node ran none of it (EXECABORT, or EXEC itself redirected). With watches on
		// that node, running it again, or elsewhere, would ignore them.
		if hop == maxTxHops || tx.watch != nil {
			return append(out, reply...)
		}
		if moved == "" {
			// The slot is migrating: its keys are on both nodes, and the importing one
			// cannot run a transaction (ASKING does not reach into MULTI). Once the slot
			// has moved, the node answers MOVED, followed here.
			time.Sleep(min(retryBackoff<<hop, maxTxPause))
			continue
		}
		s.c.hint() // the slot map is stale
		s.c.metrics.inc(s.c.metrics.moved)
		if d, err = s.dedicatedAt(moved); err != nil {
			return resp.AppendError(out, "ERR "+err.Error())
		}
	}
}

// execOn sends the transaction on d and returns EXEC's reply, the node a MOVED reply (to a
// queued command, or to EXEC) named ("" when none), and whether an ASK or TRYAGAIN reply said
// the slot is migrating.
func (s *session) execOn(d *dedConn) (reply []byte, moved string, migrating bool, err error) {
	if err = d.write(s.tx.frames, s.gen.backend.writeTimeout); err != nil {
		return nil, "", false, err
	}
	note := func(r []byte) {
		if addr, ask, ok := isRedirect(r); ok && !ask && moved == "" {
			moved = addr
		} else if ok && ask || bytes.HasPrefix(r, tryAgainPrefix) {
			migrating = true
		}
	}
	for i := 0; i <= s.tx.n; i++ { // MULTI's reply, then each command's
		r, err := d.readReply(s.gen.backend.readTimeout)
		if err != nil {
			return nil, "", false, err
		}
		note(r)
	}
	if reply, err = d.readReply(s.gen.backend.readTimeout); err == nil {
		note(reply)
	}
	return reply, moved, migrating, err
}

// unwatch makes the node forget the session's watches.
func (s *session) unwatch() {
	d := s.tx.watch
	if d == nil {
		return
	}
	if _, _, _, err := s.dedDo(d, unwatchFrame, s.gen.backend.readTimeout, false, false); err != nil {
		s.c.log.Debug("UNWATCH failed; connection dropped", "node", d.addr, "error", err)
	}
	s.tx.watch = nil
}

// watchKeys sends a deferred WATCH to the node of its keys on the dedicated connection that
// will run the transaction.
func (s *session) watchKeys(out []byte) []byte {
	tx := &s.tx
	node := s.deferNode
	if tx.watch != nil && tx.watch.addr != s.routes.pools[node].addr {
		// The keys' slot moved since the first WATCH.
		return resp.AppendError(out, "ERR keys of a transaction must all be on one node (use hash tags)")
	}
	d, err := s.dedicated(node)
	if err != nil {
		s.ungroupUnwatched()
		return resp.AppendError(out, "ERR "+err.Error())
	}
	reply, used, _, err := s.dedDo(d, frameOf(&s.cmd, &s.blk), s.gen.backend.readTimeout, tx.watch == nil, false)
	if err != nil {
		s.ungroupUnwatched()
		return resp.AppendError(out, "ERR "+err.Error())
	}
	if len(reply) > 0 && reply[0] == '+' {
		tx.watch = used
	} else {
		s.ungroupUnwatched()
	}
	return append(out, reply...)
}

// ungroupUnwatched forgets where the keys are when nothing holds them there any more.
func (s *session) ungroupUnwatched() {
	if tx := &s.tx; tx.watch == nil && !tx.watchLost && !tx.active {
		tx.grouped, tx.addr = false, ""
	}
}
