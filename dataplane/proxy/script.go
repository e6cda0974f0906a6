package proxy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Scripts live in each server's script cache, and EVALSHA goes wherever its keys are: so
// SCRIPT LOAD, EXISTS and FLUSH (command.Broadcast) go to every node of the routing table —
// in cluster mode replicas too, which serve EVALSHA_RO with read_from_slave. A node that
// lost its scripts (a restart, a failover to a replica that was not loaded) answers EVALSHA
// with NOSCRIPT, and clients then load the script again (redis-py's Script, Lock).

// broadcast sends the command as it came to every node; merge puts the replies together
// (mergeBroadcast). KILL goes to every node that may run a script, on connections of its own
// (kill). DEBUG acts on one server's debugger session, which the proxy cannot pick, so it is
// refused; everything else, unknown subcommands and wrong arities included, is the servers' to
// answer, with Redis's own errors.
func (s *session) broadcast(pl *place, spec *command.Spec, cmd *resp.Command) {
	if sub := cmd.Args[1]; bytes.EqualFold(sub, []byte("kill")) {
		s.kill(pl, spec, cmd)
		return
	} else if bytes.EqualFold(sub, []byte("debug")) {
		pl.setError("ERR " + strings.ToUpper(spec.Name) + " " + strings.ToUpper(string(sub)) + " is not supported by the proxy")
		return
	}
	nodes := s.allNodes()
	if len(nodes) <= 1 {
		s.forward(pl, len(nodes)-1, cmd) // one node (or none: -1 answers so)
		return
	}
	s.toEvery(pl, spec.Policy, 0, nodes, cmd)
}

// mergeBroadcast appends the client's reply to a broadcast command whose sub replies hold no
// error: for arrays of integers (SCRIPT EXISTS) each element is 1 only where every node
// answered 1, since an EVALSHA may go to any of them; otherwise (the SHA1 of SCRIPT LOAD,
// which every node computes alike, FLUSH's +OK, HELP) the first node's reply.
func (s *session) mergeBroadcast(out []byte, pl *place) []byte {
	subs := pl.subs[:pl.nsubs]
	first := subs[0].req.Reply
	elems, err := resp.ArrayElems(first, s.elems[:0])
	defer func() { s.keepElems(elems) }() // the last elems, however far it grew
	if err != nil || len(elems) == 0 || elems[0][0] != ':' {
		return append(out, first...)
	}
	n := len(elems)
	for i, c := range subs[1:] {
		if elems, err = resp.ArrayElems(c.req.Reply, elems); err != nil || len(elems) != n*(i+2) {
			return resp.AppendError(out, "ERR unexpected reply from backend: SCRIPT EXISTS arrays differ")
		}
	}
	out = resp.AppendArrayHeader(out, n)
	for i := range n {
		all := int64(1)
		for j := i; j < len(elems); j += n {
			if v, err := resp.ParseInt(elems[j]); err != nil || v == 0 {
				all = 0
			}
		}
		out = resp.AppendInt(out, all)
	}
	return out
}

// SCRIPT KILL and FUNCTION KILL stop a script that wedges its node: any client may send them,
// as in Redis. The node running the script answers nothing until its busy-reply-threshold
// (lua-time-limit, 5 s by default) has passed; from then on it serves, between steps of the
// script, the commands allowed while busy (AUTH, HELLO, the KILLs, SHUTDOWN NOSAVE) and
// answers -BUSY to the rest. A KILL queued on a shared connection would wait behind the very
// script it is meant to stop (a connection's commands run in order), so it goes out on a
// dedicated connection to each node: an idle one from the cluster's pool, or one dialled for
// it whose handshake sends AUTH alone (READONLY is refused while the node is busy).
//
// It goes to every node that may be running one of the cluster's scripts: the ring's nodes; in
// cluster mode the masters, and the replicas too when reads go to them (read_from_slave,
// backup reads: EVAL_RO and FCALL_RO then run there). The replies merge as Redis's
// response policy for these commands (one_succeeded) says: +OK when some node killed a script;
// otherwise the first error that is not NOTBUSY (UNKILLABLE: the script has written; BUSY: a
// function runs and SCRIPT KILL was sent, or the reverse; a node that could not be reached);
// otherwise -NOTBUSY, Redis's own, from the first node.

// killWait bounds how long a node has to answer a KILL (and the dial of a connection for it):
// twice Redis's default busy-reply-threshold, before which a busy node answers nothing at all,
// or read_timeout when that is longer.
const killWait = 10 * time.Second

// killTarget is one node a KILL goes to, with how to reach it.
type killTarget struct {
	addr string
	from *pool // whose options opts are (nil: none known), for the dedicated pool (Retain)
	opts backend.Options
	what string // what the frame does, for errors: "" is a KILL
}

// kill handles SCRIPT KILL and FUNCTION KILL: sent at once, on connections of their own, from
// goroutines; the reply fills the command's place when every node has answered (the session's
// batch waits for it as for a backend request).
func (s *session) kill(pl *place, spec *command.Spec, cmd *resp.Command) {
	if len(cmd.Args) != 2 {
		pl.setError("ERR wrong number of arguments for '" + spec.Name + "|kill' command")
		return
	}
	// The reply is a node's, or a failure to reach one: it goes through the place as a
	// forwarded command's (metrics count a failure as a backend error); the shared connection
	// is named only for its protocol, which assemble reads.
	nodes := s.clientCommandNodes()
	if len(nodes) == 0 {
		s.noNode(pl)
		return
	}
	pl.kind = placeForward
	c := &pl.main
	c.conn, c.asked = s.conn(nodes[0]), false
	s.pend.Add(1)
	if !s.c.kills.join(spec.Name, killWaiter{c, &s.pend}) {
		return // a round is in flight: its reply is this command's too
	}
	targets := s.killTargets(nodes, "")
	frame := resp.AppendCommand(nil, []byte(strings.ToUpper(spec.Name)), []byte("KILL"))
	go s.c.kills.run(spec.Name, func() killReply { return s.c.killAll(targets, frame) })
}

// clientCommandNodes are the nodes a command about the servers' running clients goes to
// (SCRIPT KILL, FUNCTION KILL, CLIENT PAUSE): every node a client command may reach. Replicas
// take client commands only with read_from_slave (a ring lists its read replicas only then)
// or backup reads; otherwise the primaries are all of them.
func (s *session) clientCommandNodes() []int {
	if !s.routes.readFromSlave && s.gen.backup == nil {
		return s.routes.table.Primaries()
	}
	return s.allNodes()
}

// killTargets are nodes' addresses and connection options, for connections of their own;
// what names the command in errors ("" for a KILL).
func (s *session) killTargets(nodes []int, what string) []killTarget {
	targets := make([]killTarget, len(nodes))
	for i, n := range nodes {
		p := s.routes.pools[n]
		targets[i] = killTarget{addr: p.addr, from: p, opts: p.opts, what: what}
	}
	return targets
}

// killReply is the merged reply of a KILL round; failure is FailBackend when it says that a
// node could not be reached.
type killReply struct {
	reply   []byte
	failure backend.Failure
}

// killWaiter is a KILL command waiting for a round's reply: its call gets the reply, then
// its session's batch is released.
type killWaiter struct {
	c  *call
	wg backend.Waiter
}

// killRounds lets one round of a KILL run at a time per cluster and command: a KILL that comes
// while one is in flight joins it and gets its reply. However many KILLs clients pipeline,
// each node gets at most one connection per command for them, and a waiting KILL costs a
// list entry, not a goroutine.
type killRounds struct {
	mu      sync.Mutex
	waiting map[string][]killWaiter // by command, while its round is in flight
}

// join adds w to the round of name in flight, or starts a list for a new one: true means the
// caller must run it (run).
func (k *killRounds) join(name string, w killWaiter) (lead bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	list, ok := k.waiting[name]
	if k.waiting == nil {
		k.waiting = make(map[string][]killWaiter)
	}
	k.waiting[name] = append(list, w)
	return !ok
}

// run runs the round of name and gives its reply to every KILL that joined it.
func (k *killRounds) run(name string, round func() killReply) {
	r := round()
	k.mu.Lock()
	list := k.waiting[name]
	delete(k.waiting, name)
	k.mu.Unlock()
	for _, w := range list {
		r.fill(w.c)
		w.wg.Done()
	}
}

// fill gives r to the call c as its reply; the caller then releases c's batch, which reads
// the reply after.
func (r killReply) fill(c *call) {
	c.req.Return()
	c.req.Reply = append(c.req.Reply[:0], r.reply...)
	c.req.Failure, c.req.Unsent = r.failure, false
}

// sendAll sends frame to every target at once, each on a connection of its own (killOne),
// and returns their replies in the targets' order.
func (c *Cluster) sendAll(targets []killTarget, frame []byte) []killReply {
	replies := make([]killReply, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = c.killOne(t, frame)
		}()
	}
	wg.Wait()
	return replies
}

// killAll sends frame to every target at once and merges their replies (see above).
func (c *Cluster) killAll(targets []killTarget, frame []byte) killReply {
	replies := c.sendAll(targets, frame)
	var notBusy, failed *killReply
	for i := range replies {
		r := &replies[i]
		switch {
		case !resp.IsError(r.reply):
			return *r // +OK: a script was killed
		case bytes.HasPrefix(r.reply, []byte("-NOTBUSY")):
			if notBusy == nil {
				notBusy = r
			}
		default:
			if failed == nil {
				failed = r
			}
		}
	}
	if failed != nil {
		return *failed
	}
	return *notBusy
}

// killOne sends frame to one node on a dedicated connection and returns its reply, or an error
// reply naming the node when it could not be had in time (killWait).
func (c *Cluster) killOne(t killTarget, frame []byte) killReply {
	wait := max(killWait, t.opts.ReadTimeout)
	d, ok := c.dedIdle.Take(t.addr)
	if !ok {
		hold, err := c.holdFD() // it joins the pool: counted in the cluster's share like any
		if err != nil {
			return c.killFailed(t, err)
		}
		opts := t.opts
		opts.Latency, opts.OnFailure, opts.RESP3, opts.ReadOnly = nil, nil, false, false
		opts.ReadTimeout = wait // the handshake's AUTH, too, waits for the busy threshold
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		nc, err := backend.DialContext(ctx, opts)
		cancel()
		if err != nil {
			hold.release()
			return c.killFailed(t, err)
		}
		d = &dedConn{addr: t.addr, nc: nc, rr: resp.NewReplyReader(nc, 512), hold: hold}
		if !t.opts.ReadOnly {
			// Dialled as the pool's own dedicated connections are: the next client may have
			// it. Without the READONLY they send, it is not pooled (a read on a replica
			// would be redirected).
			d.from = t.from
		}
	}
	reply, err := func() ([]byte, error) {
		if err := d.write(frame, wait); err != nil {
			return nil, err
		}
		return d.readReply(wait)
	}()
	if err != nil {
		d.Close()
		return c.killFailed(t, err)
	}
	reply = append([]byte(nil), reply...)
	c.dedIdle.Put(d)
	return killReply{reply: reply}
}

func (c *Cluster) killFailed(t killTarget, err error) killReply {
	what := t.what
	if what == "" {
		what = "kill of a running script"
	}
	c.log.Warn(what+": node did not answer", "node", t.addr, "error", err)
	msg := fmt.Sprintf("ERR backend %s: %s: %v", t.addr, what, err)
	return killReply{reply: resp.AppendError(nil, msg), failure: backend.FailBackend}
}
