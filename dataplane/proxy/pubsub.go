package proxy

import (
	"bytes"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Pub/sub. A session that subscribes leaves the request/reply loop for subscribed mode: the
// proxy owns the client's subscriptions (and answers their confirmations with Redis's counts),
// places each on a backend connection of the session's own — a channel on the node PUBLISH
// routes it to, a pattern on every node (standalone) or on one (cluster: PUBLISH is broadcast
// over the cluster bus), a shard channel on its slot's master — and forwards the messages those
// connections receive. A reconcile step re-places subscriptions whenever a connection dies, a
// node drops a shard channel, or the routing table changes (failover, MOVED, ejection).
//
// By concern: this file has the commands and the subscription sets (session goroutine);
// pubsub_link.go the connections to the nodes and reconcile; pubsub_relay.go what the nodes
// send; pubsub_out.go the client's output queue and its writer; pubsub_resp.go the framing.

const (
	// pubsubResync is how often a subscribed session looks for a new routing table to follow.
	pubsubResync = time.Second
	// pubsubRetry is how soon a subscription that has no connection is tried again.
	pubsubRetry = 100 * time.Millisecond
	// Redials of a node that failed back off between these.
	pubsubMinBackoff = 100 * time.Millisecond
	pubsubMaxBackoff = 2 * time.Second
	// pubsubAckWait bounds how long a SUBSCRIBE waits for the nodes' own confirmations before
	// the proxy confirms anyway (the subscription is then retried in the background).
	pubsubAckWait = 5 * time.Second
)

// pubsubOutputLimit bounds the output a subscribed client has not read yet, as Redis's
// client-output-buffer-limit pubsub (32mb hard) does: a client past it is disconnected. A
// variable so that tests can lower it.
var pubsubOutputLimit = 32 << 20

// subKind is one of the three subscription namespaces.
type subKind uint8

const (
	kindChannel subKind = iota // SUBSCRIBE
	kindPattern                // PSUBSCRIBE
	kindShard                  // SSUBSCRIBE
)

var kindWords = [3]struct{ sub, unsub string }{
	{"subscribe", "unsubscribe"},
	{"psubscribe", "punsubscribe"},
	{"ssubscribe", "sunsubscribe"},
}

// subscribeCommand handles a (P|S)(UN)SUBSCRIBE in normal mode: an unsubscribe is answered here
// (there is nothing to unsubscribe), a subscribe ends the batch and enters subscribed mode once
// the batch's replies are written.
func (s *session) subscribeCommand(pl *place, spec *command.Spec, args [][]byte) {
	kind, sub := subKindOf(spec.Name)
	msg := s.checkShardSlots(kind, args[1:])
	if msg == "" && sub {
		msg = s.checkKeyspaceEvents(kind, args[1:]) // keyless.go
	}
	if msg != "" {
		pl.setError(msg)
		return
	}
	pl.kind = placeLocal
	if sub {
		s.enterSub = true // s.cmd stays intact: serve reads nothing more before subscribed mode
		return
	}
	out := pl.local[:0]
	if len(args) == 1 {
		out = appendSubReply(out, kindWords[kind].unsub, nil, 0, s.proto3)
	}
	for _, name := range args[1:] {
		out = appendSubReply(out, kindWords[kind].unsub, name, 0, s.proto3)
	}
	pl.local = out
}

func subKindOf(name string) (kind subKind, sub bool) {
	switch name {
	case "subscribe":
		return kindChannel, true
	case "psubscribe":
		return kindPattern, true
	case "ssubscribe":
		return kindShard, true
	case "unsubscribe":
		return kindChannel, false
	case "punsubscribe":
		return kindPattern, false
	default: // sunsubscribe
		return kindShard, false
	}
}

// checkShardSlots refuses, in cluster mode, shard channels of different slots in one command, as
// Redis does; "" when fine. Shard channels are a Redis Cluster notion: elsewhere each goes to
// its own node.
func (s *session) checkShardSlots(kind subKind, names [][]byte) string {
	if kind != kindShard || len(names) < 2 || s.routes == nil || !s.routes.table.Cluster() {
		return ""
	}
	if _, err := s.routes.table.Together(names, nil); err != nil {
		return err.Error()
	}
	return ""
}

// channelNode is the node a channel's PUBLISH and SUBSCRIBE go to: its group's master. -1
// when none.
func channelNode(rt *routes, ch []byte) int {
	t := rt.table
	return t.Master(t.Group(ch))
}

// channelCommand routes PUBLISH and PUBSUB by channel name.
func (s *session) channelCommand(pl *place, spec *command.Spec, cmd *resp.Command) {
	args := cmd.Args
	if spec.Name == "publish" {
		s.forward(pl, channelNode(s.routes, args[1]), cmd)
		return
	}
	sub := args[1]
	if !bytes.EqualFold(sub, []byte("numsub")) && !bytes.EqualFold(sub, []byte("shardnumsub")) {
		pl.setError("ERR PUBSUB " + clip(bytes.ToUpper(sub)) + " is not supported by the proxy (channels are spread over several servers)")
		return
	}
	if len(args) == 2 {
		pl.kind = placeLocal
		pl.local = resp.AppendArrayHeader(pl.local[:0], 0)
		return
	}
	node := channelNode(s.routes, args[2])
	for _, ch := range args[3:] {
		if channelNode(s.routes, ch) != node {
			pl.setError("ERR PUBSUB " + clip(bytes.ToUpper(sub)) + " channels on several servers: ask for them one server at a time")
			return
		}
	}
	s.forward(pl, node, cmd)
}

// pubsub is a session's subscribed mode. The session goroutine owns links, retry and the
// subscription sets' writes; link readers read the sets and append to out under mu.
type pubsub struct {
	s     *session
	log   hclog.Logger
	resp3 bool // the client speaks RESP3 (fixed: HELLO is refused while subscribed)

	mu     sync.Mutex
	cond   *sync.Cond            // the writer waits on it
	subs   [3]map[string]bool    // the client's subscriptions: what it is told and sent
	out    []byte                // output not yet written to the client
	hold   bool                  // a SUBSCRIBE waits for its nodes: keep out back meanwhile
	stop   bool                  // leaving: the writer writes what is left and ends
	broken bool                  // the client is gone or over its output limit: drop output
	links  map[string]*psLink    // by node address
	retry  map[string]*psBackoff // nodes that failed to dial, by address

	dirty      chan struct{} // a link died or lost a subscription: reconcile
	unplaced   bool          // some subscription has no connection yet
	lastRoutes *routes       // the table the placement was last computed with
	wg         sync.WaitGroup

	// writing is the capacity of the writer's buffer (being written, or kept for the next
	// write): with out's capacity, the memory the client's output holds (overLimitLocked).
	// Guarded by mu.
	writing int
}

type psBackoff struct {
	delay time.Duration
	until time.Time
}

// psLink is one dedicated connection to a node and what is subscribed on it.
type psLink struct {
	addr string
	nc   net.Conn
	hold *fdHold            // its descriptor in the cluster's share: close gives it back
	subs [3]map[string]bool // session goroutine only
	wbuf []byte

	sent          int64        // subscriptions and PINGs sent; session goroutine only
	acks          atomic.Int64 // their confirmations and pongs, counted by the reader
	ack           chan struct{}
	sunsubPending atomic.Int64 // SUNSUBSCRIBE confirmations we asked for
	closing       atomic.Bool  // closed by the session: not a failure
	done          chan struct{}
}

func newPubSub(s *session) *pubsub {
	p := &pubsub{
		s:     s,
		resp3: s.proto3,
		log:   s.c.log.Named("pubsub").With("remote", s.nc.RemoteAddr().String()),
		links: make(map[string]*psLink),
		retry: make(map[string]*psBackoff),
		dirty: make(chan struct{}, 1),
	}
	p.cond = sync.NewCond(&p.mu)
	for i := range p.subs {
		p.subs[i] = make(map[string]bool)
	}
	return p
}

func (p *pubsub) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// subscribed runs subscribed mode, first handling cmd (a subscribe), until the client has no
// subscription left (true: back to normal mode) or the session must end (false).
func (s *session) subscribed(first *resp.Command) bool {
	// Redis does not time out subscribed clients.
	_ = s.nc.SetReadDeadline(time.Time{})
	s.c.metrics.subscribed(1)
	defer s.c.metrics.subscribed(-1)
	p := newPubSub(s)
	s.psub.Store(p) // tracking invalidations redirected here (tracking.go)
	defer s.psub.Store(nil)
	p.wg.Add(1)
	go p.writeLoop()
	defer s.publishSubs(nil)
	leave := p.command(first)
	s.publishSubs(p) // CLIENT LIST (clientlist.go)
	if leave {
		p.close()
		return !s.quit
	}
	// The client is read on a goroutine of its own so that this one can also follow the
	// topology; it reads one command at a time and waits, so that the commands after the last
	// UNSUBSCRIBE stay in the reader for normal mode.
	cmds := make(chan error)
	next := make(chan bool)
	go func() {
		for {
			err := s.rd.Read(&s.cmd)
			cmds <- err
			if err != nil || !<-next {
				return
			}
		}
	}()
	timer := time.NewTimer(pubsubResync)
	defer timer.Stop()
	for {
		select {
		case err := <-cmds:
			if err != nil {
				p.close()
				s.readFailed(err)
				return false
			}
			leave := p.command(&s.cmd)
			s.publishSubs(p)
			if leave {
				next <- false
				p.close()
				return !s.quit
			}
			next <- true
		case <-p.dirty:
			p.reconcile()
		case <-timer.C:
			if p.unplaced || s.c.gen.Load().routes != p.lastRoutes || p.anyDead() {
				p.reconcile()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if p.unplaced {
			timer.Reset(pubsubRetry)
		} else {
			timer.Reset(pubsubResync)
		}
	}
}

// command handles one client command in subscribed mode; true when the session leaves it (no
// subscription left, RESET, or QUIT).
func (p *pubsub) command(cmd *resp.Command) (leave bool) {
	s := p.s
	args := cmd.Args
	spec := command.Lookup(args[0])
	if p.resp3 && !subscribedModeCommand(spec) {
		p.run(cmd, spec)
		return false
	}
	s.c.request(spec)
	switch {
	case spec == nil:
		p.reply(resp.AppendError(nil, unknownCommand(args)))
		return false
	case !spec.CheckArity(len(args)) || (spec.Name == "ping" && len(args) > 2):
		p.reply(resp.AppendError(nil, "ERR wrong number of arguments for '"+spec.Name+"' command"))
		return false
	case !s.permittedSubscribed(p, spec, args):
		return false
	}
	switch spec.Name {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		s.gen = s.c.current()
		if s.routes = s.gen.routes; s.routes == nil {
			p.reply(resp.AppendError(nil, "ERR cluster "+s.c.name+" has no routing table yet"))
			return false
		}
		kind, sub := subKindOf(spec.Name)
		msg := s.checkShardSlots(kind, args[1:])
		if msg == "" && sub {
			msg = s.checkKeyspaceEvents(kind, args[1:]) // keyless.go
		}
		if msg != "" {
			p.reply(resp.AppendError(nil, msg))
			return false
		}
		if sub {
			p.subscribe(kind, args[1:])
			return p.total() == 0 // a first SUBSCRIBE refused (linksFor) subscribed nothing
		}
		p.unsubscribe(kind, args[1:])
		return p.total() == 0
	case "ping":
		p.barrier()
		if p.resp3 { // RESP3 has no subscribed context: PING answers as usual
			if len(args) == 2 {
				p.reply(resp.AppendBulk(nil, args[1]))
			} else {
				p.reply(resp.AppendSimple(nil, "PONG"))
			}
			break
		}
		out := resp.AppendArrayHeader(nil, 2)
		out = resp.AppendBulkString(out, "pong")
		if len(args) == 2 {
			out = resp.AppendBulk(out, args[1])
		} else {
			out = resp.AppendBulkString(out, "")
		}
		p.reply(out)
	case "quit":
		p.reply(resp.AppendSimple(nil, "OK"))
		s.quit = true
		return true
	case "reset":
		// Like Redis: every subscription goes without a word, the connection is as new.
		p.mu.Lock()
		for i := range p.subs {
			clear(p.subs[i])
		}
		p.mu.Unlock()
		s.publishSubs(nil)
		p.reply(resp.AppendSimple(nil, "RESET"))
		s.resetConn()
		return true
	default:
		p.reply(resp.AppendError(nil, errPubSubContext(spec.Name)))
	}
	return false
}

// subscribedModeCommand reports whether spec is one of the commands RESP2 allows in subscribed
// mode, which subscribed mode handles itself in RESP3 too.
func subscribedModeCommand(spec *command.Spec) bool {
	if spec == nil {
		return false
	}
	switch spec.Name {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
		"ping", "quit", "reset":
		return true
	}
	return false
}

// run executes any other command for a RESP3 client, which has no subscribed context (as with
// Redis 6+, e.g. a client that multiplexes pushes and commands on one connection): routed as in
// normal mode, its reply queued in order with the messages. Not the commands that need the
// connection to themselves for a while (blocking ones, MULTI/EXEC/WATCH) nor HELLO, which
// could change the protocol under the subscriptions.
func (p *pubsub) run(cmd *resp.Command, spec *command.Spec) {
	s := p.s
	if spec != nil && (spec.Policy == command.Transaction || spec.Name == "hello" || blocks(spec, cmd.Args)) {
		s.c.request(spec)
		p.reply(resp.AppendError(nil, "ERR '"+spec.Name+"' is not supported by the proxy in subscribed mode"))
		return
	}
	s.beginBatch()
	s.handle(cmd)
	// One command: its reply is the batch's first, which no output limit refuses.
	out, n, _ := s.collectBatch()
	p.reply(out) // copied into the write queue
	s.batchDone(n)
	s.keepOut(out)
}

// blocks reports whether a command of spec with args may block its connection.
func blocks(spec *command.Spec, args [][]byte) bool {
	if spec.Policy != command.Block || !spec.CheckArity(len(args)) {
		return false
	}
	_, b := command.BlockTimeout(spec, args)
	return b
}

// total is the client's subscription count; session goroutine only (it writes the sets).
func (p *pubsub) total() int {
	return len(p.subs[kindChannel]) + len(p.subs[kindPattern]) + len(p.subs[kindShard])
}

// count is what a confirmation of kind reports: shard channels are counted apart, as in Redis 7.
func (p *pubsub) countLocked(kind subKind) int {
	if kind == kindShard {
		return len(p.subs[kindShard])
	}
	return len(p.subs[kindChannel]) + len(p.subs[kindPattern])
}

// subscribe adds names of kind, confirming each once the nodes confirmed theirs (bounded), so
// that a PUBLISH after the confirmation reaches the client, as with Redis.
func (p *pubsub) subscribe(kind subKind, names [][]byte) {
	if err := p.linksFor(kind, names); err != nil {
		p.reply(resp.AppendError(nil, "ERR "+err.Error()))
		return
	}
	p.mu.Lock()
	p.hold = true
	var fresh []string
	for _, n := range names {
		if !p.subs[kind][string(n)] {
			name := string(n)
			p.subs[kind][name] = true
			fresh = append(fresh, name)
		}
		p.appendLocked(appendSubReply(nil, kindWords[kind].sub, n, p.countLocked(kind), p.resp3))
	}
	p.mu.Unlock()
	var touched []*psLink
	var nodes []int
	for _, name := range fresh {
		nodes = p.nodesFor(nodes[:0], kind, name)
		if len(nodes) == 0 {
			p.unplaced = true
		}
		for _, n := range nodes {
			l, _ := p.linkTo(n)
			if l == nil {
				p.unplaced = true
				continue
			}
			if !l.subs[kind][name] {
				l.subs[kind][name] = true
				l.queue(kindWords[kind].sub, name)
				l.sent++
				if !containsLink(touched, l) {
					touched = append(touched, l)
				}
			}
		}
	}
	for _, l := range touched {
		p.flushLink(l)
	}
	p.waitAcks(touched)
	p.s.publishSubs(p) // before the confirmations can leave: CLIENT LIST agrees with them
	p.mu.Lock()
	p.hold = false
	p.cond.Signal()
	p.mu.Unlock()
}

func containsLink(ls []*psLink, l *psLink) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// waitAcks waits until every link has confirmed what was sent on it, has died, or the wait
// is over.
func (p *pubsub) waitAcks(links []*psLink) {
	if len(links) == 0 {
		return
	}
	timer := time.NewTimer(pubsubAckWait)
	defer timer.Stop()
	for _, l := range links {
		for l.acks.Load() < l.sent {
			select {
			case <-l.ack:
			case <-l.done:
				goto nextLink
			case <-timer.C:
				p.log.Warn("nodes did not confirm a subscription or answer a PING in time; subscriptions are retried in the background", "wait", pubsubAckWait)
				return
			}
		}
	nextLink:
	}
}

var (
	pingFrame = []byte("*1\r\n$4\r\nPING\r\n")
	pongReply = []byte("+PONG\r\n")
)

// barrier sends PING on every link and waits for the pongs (bounded as a SUBSCRIBE's wait
// is), before the client's PING is answered: a message a node sent before its pong is then
// in the client's output already. From one Redis server, what was published before a
// subscriber's PING reaches it before the pong, and clients rely on it (redis-py's health
// check in subscribed mode, tests that PING to flush); a pong made at once could overtake
// messages still on their way from the nodes.
func (p *pubsub) barrier() {
	var links []*psLink
	for _, l := range p.links {
		if l.dead() {
			continue
		}
		l.wbuf = append(l.wbuf, pingFrame...)
		l.sent++
		p.flushLink(l)
		links = append(links, l)
	}
	p.waitAcks(links)
}

// unsubscribe removes names of kind (all of that kind when none are named) and confirms each.
func (p *pubsub) unsubscribe(kind subKind, names [][]byte) {
	var gone []string
	p.mu.Lock()
	if len(names) == 0 {
		for name := range p.subs[kind] {
			gone = append(gone, name)
		}
		sort.Strings(gone) // a stable order for the client (Redis's is its dict's)
		for _, name := range gone {
			delete(p.subs[kind], name)
			p.appendLocked(appendSubReply(nil, kindWords[kind].unsub, []byte(name), p.countLocked(kind), p.resp3))
		}
		if len(gone) == 0 {
			p.appendLocked(appendSubReply(nil, kindWords[kind].unsub, nil, p.countLocked(kind), p.resp3))
		}
	} else {
		for _, n := range names {
			if p.subs[kind][string(n)] {
				gone = append(gone, string(n))
				delete(p.subs[kind], string(n))
			}
			p.appendLocked(appendSubReply(nil, kindWords[kind].unsub, n, p.countLocked(kind), p.resp3))
		}
	}
	// Published before the writer can take the confirmations (it needs p.mu).
	p.s.publishSubs(p)
	p.mu.Unlock()
	if p.total() == 0 {
		return // every link closes as the session leaves subscribed mode
	}
	for addr, l := range p.links {
		for _, name := range gone {
			if l.subs[kind][name] {
				delete(l.subs[kind], name)
				l.queue(kindWords[kind].unsub, name)
				if kind == kindShard {
					l.sunsubPending.Add(1)
				}
			}
		}
		if l.empty() {
			p.closeLink(l)
			delete(p.links, addr)
			continue
		}
		p.flushLink(l)
	}
}

// nodesFor appends the node indexes of the current routes where a subscription belongs.
func (p *pubsub) nodesFor(dst []int, kind subKind, name string) []int {
	rt := p.s.routes
	// A pattern may match channels of any node; a Redis Cluster spreads every PUBLISH over
	// its bus, so there one node (the name's) sees them all.
	if kind == kindPattern && !rt.table.Cluster() {
		return append(dst, rt.table.Primaries()...)
	}
	if n := channelNode(rt, []byte(name)); n >= 0 {
		dst = append(dst, n)
	}
	return dst
}
