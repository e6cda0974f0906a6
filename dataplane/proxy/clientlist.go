package proxy

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT LIST, CLIENT INFO and CLIENT KILL list and kill the proxy's own clients, the
// connections of its cluster's sessions, as Redis lists and kills its own: the servers'
// clients are the proxy's connections, not the users'. The fields are Redis 7.0's, filled
// with what the proxy knows of the client (age, idle, name, flags, subscriptions, MULTI, its
// input buffer, the last command, user, protocol); what a proxy has no counterpart for (a
// database other than 0, argument copies, reply lists, tracking) is 0, empty or Redis's
// value for "none".
//
// A session's fields are its owner's (session), so another session reads only what the
// owner publishes for it (clientStat): at the end of each batch, before its replies are
// written, and when its subscriptions change. A session listing itself reads its live state,
// so that CLIENT INFO shows the command running.

// clientStat is what a session publishes of itself for CLIENT LIST from other sessions.
type clientStat struct {
	mu sync.Mutex
	clientFields
}

// clientFields are a session's published fields: first those publishStat checks every batch
// (together, on as few cache lines as they take), then those published as they change
// (publishIdentity, publishSubs, publishOut).
type clientFields struct {
	last     int64  // the end of the last batch, in Unix seconds (idle, as Redis counts it)
	cmd      string // the last command, by name only (client|list): never its arguments
	multi    int    // commands queued in MULTI; -1 outside one
	multiMem int
	qbuf     int // input bytes read and not yet run
	inBuf    int // the input buffer's size
	outBuf   int // the reply buffer's capacity
	omem     int // replies not yet written (a client reading slowly)
	name     string
	user     string
	resp3    bool
	pubsub   bool // in subscribed mode
	subs     [3]int
}

// clientView is one client's CLIENT LIST line, as read from a session.
type clientView struct {
	id           uint64
	addr, laddr  string
	fd           int
	age, idle    int64
	flags        string
	st           clientFields
	events, user string
}

// publishStat publishes the state of the session once a batch's replies are in (assemble), or
// a deferred command's (runDeferred), on its owner's goroutine, before the client has them.
// now is when the client last had its turn (a batch's start serves: CLIENT LIST's idle is in
// seconds); zero: read the clock. Once per batch, so it stores and locks only when something
// changed: the same command within the same second, the common case, only reads one line.
// Only the owner writes the fields, so it reads them without the lock.
func (s *session) publishStat(now time.Time) {
	st := &s.stat
	cmd := "NULL"
	if sp := s.lastSpec; sp != nil {
		cmd = sp.Name
		if len(sp.Subcommands) > 0 { // the subcommand's full name, as Redis shows it
			if a := s.cmd.Args; len(a) > 1 && command.Lookup(a[0]) == sp {
				if sc := sp.Subcommand(a); sc != nil {
					cmd = sc.Name
				}
			}
		}
	}
	if now.IsZero() {
		now = time.Now()
	}
	multi, multiMem := -1, 0
	if s.tx.active {
		multi, multiMem = s.tx.n, len(s.tx.frames)
	}
	last, qbuf, inBuf, outBuf := now.Unix(), s.rd.Buffered(), s.rd.Size(), cap(s.out)
	if s.loop != nil && s.rd.Releasable() {
		inBuf = 0 // idle gives it back once the replies are out
	}
	if st.last == last && st.cmd == cmd && st.multi == multi && st.multiMem == multiMem &&
		st.qbuf == qbuf && st.inBuf == inBuf && st.outBuf == outBuf && st.omem == 0 {
		return
	}
	st.mu.Lock()
	st.last, st.cmd, st.multi, st.multiMem = last, cmd, multi, multiMem
	st.qbuf, st.inBuf, st.outBuf, st.omem = qbuf, inBuf, outBuf, 0
	st.mu.Unlock()
}

// publishIdentity publishes what CLIENT SETNAME, AUTH, HELLO and RESET change, as they change
// it: publishStat, once per batch, then touches only the fields that move with every batch.
func (s *session) publishIdentity() {
	st := &s.stat
	st.mu.Lock()
	st.name, st.user, st.resp3 = s.name, s.username, s.proto3
	st.mu.Unlock()
}

// publishOut publishes the replies a slow client has not taken yet (loop.go's handOver).
func (s *session) publishOut(n int) {
	s.stat.mu.Lock()
	s.stat.omem = n
	s.stat.mu.Unlock()
}

// publishSubs publishes the subscriptions of a subscribed session (p nil: it left subscribed
// mode): before a (un)subscribe's confirmations can reach the client, as Redis shows them, and
// after each command. Its goroutine writes the sets: it may read them.
func (s *session) publishSubs(p *pubsub) {
	st := &s.stat
	st.mu.Lock()
	st.subs = [3]int{}
	if p != nil {
		st.subs = [3]int{len(p.subs[kindChannel]), len(p.subs[kindPattern]), len(p.subs[kindShard])}
		if a := s.cmd.Args; len(a) > 0 {
			if sp := command.Lookup(a[0]); sp != nil {
				st.cmd = sp.Name
			}
		}
		st.last = time.Now().Unix()
	}
	st.pubsub = st.subs != [3]int{}
	st.mu.Unlock()
}

// view reads session t for CLIENT LIST from session s: t's live state when it is s, else
// what t published.
func (s *session) view(t *session, now time.Time) clientView {
	v := clientView{id: t.id, addr: addrOf(t.nc.RemoteAddr()), laddr: addrOf(t.nc.LocalAddr()),
		fd: rawio.FD(t.nc), age: int64(now.Sub(t.created) / time.Second), events: "r"}
	if t == s {
		st := &v.st
		st.name, st.user, st.resp3, st.multi = s.name, s.username, s.proto3, -1
		if s.tx.active {
			st.multi, st.multiMem = s.tx.n, len(s.tx.frames)
		}
		st.qbuf = len(s.cmd.Raw) + s.rd.Buffered() // the running command is still in it, as in Redis
		st.inBuf, st.outBuf = s.rd.Size(), cap(s.out)
		st.cmd = "NULL"
		if a := s.cmd.Args; len(a) > 1 {
			if sp := command.Lookup(a[0]); sp != nil {
				if sc := sp.Subcommand(a); sc != nil {
					st.cmd = sc.Name
				}
			}
		}
		s.stat.mu.Lock() // its own subscriptions: published by the same goroutine
		st.subs, st.pubsub = s.stat.subs, s.stat.pubsub
		s.stat.mu.Unlock()
	} else {
		t.stat.mu.Lock()
		v.st = t.stat.clientFields
		t.stat.mu.Unlock()
		v.idle = max(now.Unix()-v.st.last, 0)
	}
	if v.user = v.st.user; v.user == "" {
		v.user = "default"
	}
	if v.st.omem > 0 {
		v.events = "rw"
	}
	var f []byte
	if v.st.pubsub {
		f = append(f, 'P')
	}
	if v.st.multi >= 0 {
		f = append(f, 'x')
	}
	t.blocked.mu.Lock()
	if t.blocked.on {
		f = append(f, 'b')
	}
	t.blocked.mu.Unlock()
	if len(f) == 0 {
		f = append(f, 'N')
	}
	v.flags = string(f)
	return v
}

// appendLine appends v as Redis's catClientInfoString writes it, with its newline.
func (v *clientView) appendLine(b []byte) []byte {
	st := &v.st
	num := func(key string, n int64) {
		b = append(b, ' ')
		b = append(b, key...)
		b = append(b, '=')
		b = strconv.AppendInt(b, n, 10)
	}
	str := func(key, val string) {
		b = append(b, ' ')
		b = append(b, key...)
		b = append(b, '=')
		b = append(b, val...)
	}
	b = append(b, "id="...)
	b = strconv.AppendUint(b, v.id, 10)
	str("addr", v.addr)
	str("laddr", v.laddr)
	num("fd", int64(v.fd))
	str("name", st.name)
	num("age", v.age)
	num("idle", v.idle)
	str("flags", v.flags)
	num("db", 0) // the proxy serves database 0 only
	num("sub", int64(st.subs[kindChannel]))
	num("psub", int64(st.subs[kindPattern]))
	num("ssub", int64(st.subs[kindShard]))
	num("multi", int64(st.multi))
	num("qbuf", int64(st.qbuf))
	num("qbuf-free", int64(max(st.inBuf-st.qbuf, 0)))
	num("argv-mem", 0) // arguments are read in place, never copied
	num("multi-mem", int64(st.multiMem))
	num("rbs", int64(st.outBuf))
	num("rbp", 0)
	num("obl", 0) // replies are written in one buffer per batch: no reply list
	num("oll", 0)
	num("omem", int64(st.omem))
	num("tot-mem", int64(st.inBuf+st.outBuf+st.omem+st.multiMem))
	str("events", v.events)
	str("cmd", st.cmd)
	str("user", v.user)
	num("redir", -1) // CLIENT TRACKING's redirection: none
	resp := int64(2)
	if st.resp3 {
		resp = 3
	}
	num("resp", resp)
	return append(b, '\n')
}

func addrOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if a.Network() == "unix" {
		return a.String() + ":0" // Redis's form for a Unix socket
	}
	return a.String()
}

// clientTypes are CLIENT LIST's and KILL's TYPE names. The proxy's clients are normal or
// pubsub: replicas and masters connect to the servers, not to it.
var clientTypes = map[string]string{
	"normal": "normal", "pubsub": "pubsub", "master": "master", "replica": "replica", "slave": "replica",
}

func (v *clientView) typ() string {
	if v.st.pubsub {
		return "pubsub"
	}
	return "normal"
}

// views reads the cluster's clients that keep picks, in connection order.
func (s *session) views(keep func(t *session) bool) []clientView {
	s.c.mu.Lock()
	ts := make([]*session, 0, len(s.c.sessions))
	for t := range s.c.sessions {
		if keep(t) && (t == s || !t.killed.Load()) { // a killed client is gone for Redis
			ts = append(ts, t)
		}
	}
	s.c.mu.Unlock()
	slices.SortFunc(ts, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	now := time.Now()
	out := make([]clientView, len(ts))
	for i, t := range ts {
		out[i] = s.view(t, now)
	}
	return out
}

// clientList answers CLIENT LIST [TYPE type] [ID id ...] as Redis 7.0 does.
func (s *session) clientList(out []byte, args [][]byte) []byte {
	typ, byID := "", false
	var ids []uint64
	switch {
	case len(args) == 2:
	case len(args) == 4 && strings.EqualFold(string(args[2]), "type"):
		t, ok := clientTypes[strings.ToLower(string(args[3]))]
		if !ok {
			return resp.AppendError(out, "ERR Unknown client type '"+clip(args[3])+"'")
		}
		typ = t
	case len(args) > 3 && strings.EqualFold(string(args[2]), "id"):
		byID = true
		for _, a := range args[3:] {
			id, ok := resp.ParseInt64Arg(a)
			if !ok {
				return resp.AppendError(out, "ERR Invalid client ID")
			}
			if id > 0 {
				ids = append(ids, uint64(id))
			}
		}
	default:
		return resp.AppendError(out, "ERR syntax error")
	}
	var text []byte
	if byID {
		// By ID: in the order asked, as Redis answers; each client read once.
		want := make(map[uint64]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		vs := s.views(func(t *session) bool { return want[t.id] })
		at := make(map[uint64]int, len(vs))
		for i := range vs {
			at[vs[i].id] = i
		}
		for _, id := range ids {
			if i, ok := at[id]; ok {
				text = vs[i].appendLine(text)
			}
		}
	} else {
		vs := s.views(func(*session) bool { return true })
		for i := range vs {
			if typ == "" || vs[i].typ() == typ {
				text = vs[i].appendLine(text)
			}
		}
	}
	return resp.AppendBulk(out, text)
}

// clientInfo answers CLIENT INFO: this connection's line.
func (s *session) clientInfo(out []byte) []byte {
	v := s.view(s, time.Now())
	return resp.AppendBulk(out, v.appendLine(nil))
}

// clientKill answers CLIENT KILL ip:port (OK, or "No such client") and CLIENT KILL with
// filters (the number killed), as Redis 7.0 does. A killed client's connection is shut down:
// its session reads the end of its input and ends as when a client hangs up, the replies of
// a batch in flight dropped. This connection, when it is among them, is closed after the
// reply.
func (s *session) clientKill(out []byte, args [][]byte) []byte {
	var (
		id                uint64
		addr, laddr, user string
		hasAddr, hasLaddr bool
		typ               string
		skipme            = true
		old               = len(args) == 3
	)
	if old {
		addr, hasAddr, skipme = string(args[2]), true, false
	} else {
		if len(args)%2 != 0 { // an option without its value
			return resp.AppendError(out, "ERR syntax error")
		}
		for i := 2; i < len(args); i += 2 {
			val := args[i+1]
			switch strings.ToLower(string(args[i])) {
			case "id":
				n, ok := resp.ParseInt64Arg(val)
				if !ok || n < 1 {
					return resp.AppendError(out, "ERR client-id should be greater than 0")
				}
				id = uint64(n)
			case "type":
				t, ok := clientTypes[strings.ToLower(string(val))]
				if !ok {
					return resp.AppendError(out, "ERR Unknown client type '"+clip(val)+"'")
				}
				typ = t
			case "addr":
				addr, hasAddr = string(val), true
			case "laddr":
				laddr, hasLaddr = string(val), true
			case "user":
				if !s.c.userExists(string(val)) {
					return resp.AppendError(out, "ERR No such user '"+clip(val)+"'")
				}
				user = string(val)
			case "skipme":
				switch strings.ToLower(string(val)) {
				case "yes":
					skipme = true
				case "no":
					skipme = false
				default:
					return resp.AppendError(out, "ERR syntax error")
				}
			default:
				return resp.AppendError(out, "ERR syntax error")
			}
		}
	}
	now := time.Now()
	var victims []*session
	s.c.mu.Lock()
	all := make([]*session, 0, len(s.c.sessions))
	for t := range s.c.sessions {
		all = append(all, t)
	}
	s.c.mu.Unlock()
	for _, t := range all {
		if (id != 0 && t.id != id) || (t == s && skipme) || t.killed.Load() {
			continue
		}
		if hasAddr && addrOf(t.nc.RemoteAddr()) != addr || hasLaddr && addrOf(t.nc.LocalAddr()) != laddr {
			continue
		}
		if typ != "" || user != "" {
			v := s.view(t, now)
			if typ != "" && v.typ() != typ || user != "" && v.user != user {
				continue
			}
		}
		victims = append(victims, t)
	}
	killed := 0
	for _, t := range victims {
		// A client killed already (here or by a concurrent CLIENT KILL) is not counted
		// again, though its session may not have left the list yet: Redis frees it at once.
		if !t.killed.CompareAndSwap(false, true) {
			continue
		}
		killed++
		if t == s {
			s.quit = true // after this reply, as Redis closes a client that killed itself
			continue
		}
		t.shutdownClient()
	}
	if killed > 0 {
		s.c.log.Info("clients killed by CLIENT KILL", "killed", killed, "by", addrOf(s.nc.RemoteAddr()))
	}
	if old {
		if killed == 0 {
			return resp.AppendError(out, "ERR No such client")
		}
		return resp.AppendSimple(out, "OK")
	}
	return resp.AppendInt(out, int64(killed))
}

// shutdownClient shuts the client's connection down from any goroutine but its owner's. The
// owner, the only one that may close it (its loop does I/O on the descriptor directly:
// rawio.Own), then reads the end of the input (or fails to write) and ends the session as when
// the client hangs up; an event loop is told by the socket itself.
func (t *session) shutdownClient() { rawio.Shutdown(t.nc) }

// userExists reports whether CLIENT KILL USER names a user of the cluster: one with a
// password, or default.
func (c *Cluster) userExists(name string) bool {
	if name == "default" {
		return true
	}
	_, ok := c.access().users[name]
	return ok
}
