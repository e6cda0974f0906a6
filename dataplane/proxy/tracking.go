package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Client-side caching for the proxy's clients (CLIENT TRACKING, docs/client-tracking.md), as
// Redis 7.0 offers it, built on tracking links (tracking_link.go): one BCAST connection per
// master tells the cluster's trackHub of every key written on it; the hub knows which of its
// sessions read which keys (default mode) or which prefixes they follow (BCAST), and sends
// them invalidations. The hub's state is guarded by its mu: the links call it from their own
// goroutines, sessions from whoever owns them. A push for a RESP3 session is queued in its
// trackState and written by the session's owner, before its next replies or, when it is idle
// in a loop, on a turn the hub kicks (flushPushes); a subscribed session's goes through its
// pub/sub writer, which is safe from any goroutine.

var (
	// trackMaxKeys bounds the (key, session) pairs remembered in default mode across the
	// cluster, trackMaxSessionKeys those of one session: past either, a remembered key is
	// evicted by invalidating it, as Redis does past tracking-table-max-keys.
	trackMaxKeys        = 1 << 20
	trackMaxSessionKeys = 1 << 16
)

const (
	// trackMaxPrefixes bounds the prefixes of one BCAST session.
	trackMaxPrefixes = 1024
	// trackMaxQueue bounds the pushes a session has not written yet: past it the client is
	// disconnected, as Redis does past its output buffer limit.
	trackMaxQueue = 32 << 20
	// trackNoloopMax bounds the keys remembered as written by a NOLOOP session, and
	// trackNoloopTTL how long such a mark waits for its invalidation.
	trackNoloopMax = 1 << 16
	trackNoloopTTL = time.Second
	// trackLinger is how long the links stay once no session tracks.
	trackLinger = time.Minute
	// trackUpWait bounds how long CLIENT TRACKING ON waits for the links to come up.
	trackUpWait = 2 * time.Second
)

const invalidateChannel = "__redis__:invalidate"

// trackState is one tracking session's mode and what it tracks; guarded by the hub's mu.
type trackState struct {
	s                                       *session
	on, bcast, optin, optout, noloop, broke bool
	redirect                                uint64
	target                                  *session
	prefixes                                []string
	keys                                    map[string]struct{}
}

type noloopMark struct {
	by   map[*session]struct{}
	when time.Time
}

// trackHub is a cluster's client tracking: its links and tracking sessions.
type trackHub struct {
	c   *Cluster
	log hclog.Logger

	mu       sync.Mutex
	sessions map[*session]*trackState
	keys     map[string]map[*session]struct{} // default mode: who read each key
	nkeys    int
	bcast    map[*session]*trackState
	queues   map[*session][]byte // pushes not written yet, per session (its owner writes them)
	noloop   map[string]*noloopMark
	links    map[string]*trackLink
	routes   *routes
	linger   *time.Timer
	closed   bool
}

func (c *Cluster) tracking() *trackHub {
	c.trkOnce.Do(func() {
		c.trk.Store(&trackHub{c: c, log: c.log.Named("tracking"), sessions: map[*session]*trackState{},
			keys: map[string]map[*session]struct{}{}, bcast: map[*session]*trackState{},
			noloop: map[string]*noloopMark{}, queues: map[*session][]byte{}, links: map[string]*trackLink{}})
	})
	return c.trk.Load()
}

// ensureLocked gives every master of r a link (and every replica too when reads may go to
// replicas: a replica tells of a write when it applies it, which is when a read there can see
// it) and stops the links of nodes r no longer names (their clients are told to flush). It
// returns the links it started. h.mu must be held.
func (h *trackHub) ensureLocked(r *routes) (started []*trackLink) {
	if r == nil || h.closed || r == h.routes {
		return nil
	}
	h.routes = r
	want := map[string]int{}
	if r.readFromSlave {
		for i, p := range r.pools {
			want[p.addr] = i
		}
	} else {
		for _, i := range r.table.Primaries() {
			want[r.pools[i].addr] = i
		}
	}
	for addr, i := range want {
		if h.links[addr] == nil {
			l := startTrackLink(h, addr, r.pools[i].opts)
			h.links[addr] = l
			started = append(started, l)
		}
	}
	for addr, l := range h.links {
		if _, ok := want[addr]; !ok {
			delete(h.links, addr)
			go l.stop()
			h.flushAllLocked()
		}
	}
	return started
}

// linkUp notes a link confirmed tracking. Reads made while it was not (back) up may have
// missed writes, so the tracking clients are told to flush: unless this is the link's first
// time up and CLIENT TRACKING ON was still waiting for it (waitUpLocked), which is how a link
// comes up when nothing could have been read yet.
func (h *trackHub) linkUp(l *trackLink) {
	select {
	case <-l.up:
		h.flushAll() // back after a loss
	default:
		if time.Since(l.start) >= trackUpWait {
			h.flushAll()
		}
		close(l.up)
	}
}

// linkLost tells every tracking session to flush: writes on the node are not told until the
// link is back.
func (h *trackHub) linkLost(addr string) { h.flushAll() }

func (h *trackHub) flushAll() {
	h.mu.Lock()
	h.flushAllLocked()
	h.mu.Unlock()
}

func (h *trackHub) flushAllLocked() {
	for _, ts := range h.sessions {
		h.forgetKeysLocked(ts)
		h.deliverLocked(ts, nil)
	}
}

// invalidate handles the keys one invalidation of a link names: in default mode one message
// per key and session (and the key is forgotten), in BCAST one per session and prefix, as
// Redis sends them. A key a NOLOOP session wrote through the proxy is not sent to it.
func (h *trackHub) invalidate(keys [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var marks map[string]map[*session]struct{}
	if len(h.noloop) > 0 {
		now := time.Now()
		for _, k := range keys {
			if m := h.noloop[string(k)]; m != nil {
				delete(h.noloop, string(k))
				if now.Sub(m.when) < trackNoloopTTL {
					if marks == nil {
						marks = map[string]map[*session]struct{}{}
					}
					marks[string(k)] = m.by
				}
			}
		}
	}
	skip := func(ts *trackState, k []byte) bool {
		_, no := marks[string(k)][ts.s]
		return no && ts.noloop
	}
	var one [1][]byte
	for _, k := range keys {
		set := h.keys[string(k)]
		if set == nil {
			continue
		}
		delete(h.keys, string(k))
		for s := range set {
			h.nkeys--
			ts := h.sessions[s]
			if ts == nil {
				continue
			}
			delete(ts.keys, string(k))
			if !skip(ts, k) {
				one[0] = k
				h.deliverLocked(ts, one[:])
			}
		}
	}
	var matched [][]byte
	for _, ts := range h.bcast {
		for _, p := range ts.prefixes {
			matched = matched[:0]
			for _, k := range keys {
				if bytes.HasPrefix(k, []byte(p)) && !skip(ts, k) {
					matched = append(matched, k)
				}
			}
			if len(matched) > 0 {
				h.deliverLocked(ts, matched)
			}
		}
	}
}

// deliverLocked sends ts an invalidation of keys (nil: flush everything), where its mode
// says: its redirect target, or itself in RESP3.
func (h *trackHub) deliverLocked(ts *trackState, keys [][]byte) {
	to := ts.s
	if ts.redirect != 0 {
		t := ts.target
		if t == nil || t.ended.Load() || h.gone(t) {
			if !ts.broke && ts.s.proto3Pub.Load() {
				ts.broke = true
				f := resp.AppendBulkString([]byte(">2\r\n"), "tracking-redir-broken")
				h.pushLocked(ts.s, resp.AppendInt(f, int64(ts.redirect)))
			}
			return
		}
		to = t
	}
	if p := to.psub.Load(); p != nil {
		p.mu.Lock()
		if p.resp3 || p.subs[kindChannel][invalidateChannel] {
			p.appendLocked(invalidation(nil, p.resp3, keys))
		}
		p.mu.Unlock()
		return
	}
	if !to.proto3Pub.Load() {
		return // RESP2 has no pushes: Redis sends nothing either
	}
	h.pushLocked(to, invalidation(nil, true, keys))
}

// gone reports whether t ended (forget ran for it). h.mu must be held.
func (h *trackHub) gone(t *session) bool {
	h.c.mu.Lock()
	_, ok := h.c.sessions[t]
	h.c.mu.Unlock()
	return !ok
}

// pushLocked queues push for session s and wakes it.
func (h *trackHub) pushLocked(s *session, push []byte) {
	q := h.queues[s]
	if len(q)+len(push) > trackMaxQueue {
		h.log.Error("tracking client disconnected: invalidations queued past the limit (it reads slower than they come)",
			"limit_bytes", trackMaxQueue)
		delete(h.queues, s)
		s.shutdownClient()
		return
	}
	h.queues[s] = append(q, push...)
	s.trkQueue.Store(true)
	if len(q) == 0 {
		go s.wakeForPush() // not under h.mu: the session's turn takes it
	}
}

// invalidation is the message for keys (nil: all) in RESP3 (a push) or RESP2 (a message on
// __redis__:invalidate).
func invalidation(dst []byte, proto3 bool, keys [][]byte) []byte {
	if proto3 {
		dst = append(dst, ">2\r\n$10\r\ninvalidate\r\n"...)
	} else {
		dst = append(dst, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"...)
	}
	if keys == nil {
		if proto3 {
			return append(dst, "_\r\n"...)
		}
		return append(dst, "*-1\r\n"...)
	}
	dst = resp.AppendArrayHeader(dst, len(keys))
	for _, k := range keys {
		dst = resp.AppendBulk(dst, k)
	}
	return dst
}

// wakeForPush has an idle loop session written its queued pushes (step); a busy one finds
// them when its batch is written, or is served again once idle.
func (s *session) wakeForPush() {
	s.lmu.Lock()
	if s.busy {
		s.again = true
		s.lmu.Unlock()
		return
	}
	l := s.loop
	s.lmu.Unlock()
	if l != nil {
		l.kick(s)
	}
}

// takePushes appends s's queued pushes to out (the session's owner). A batch writes those
// queued before it began ahead of its replies (beginBatch keeps them in trkPre), and those
// that came while it ran after them: an invalidation caused by the batch's own writes follows
// their replies, as Redis sends it, and a read's reply never follows the invalidation of the
// value it may carry (the client would keep a stale value).
func (s *session) takePushes(out []byte) []byte {
	h := s.c.trk.Load()
	if h == nil {
		return out
	}
	h.mu.Lock()
	if q := h.queues[s]; len(q) > 0 {
		out = append(out, q...)
		if cap(q) > maxKeptOut {
			q = nil
		}
		h.queues[s] = q[:0]
	}
	h.mu.Unlock()
	return out
}

// flushPushes writes an idle loop session's queued pushes; true: the session was handed over
// or ended, and the caller must not touch it.
func (s *session) flushPushes() bool {
	if !s.trkQueue.Load() {
		return false
	}
	out := s.takePushes(nil)
	if len(out) == 0 {
		return false
	}
	w, err := s.raw.TryWrite(out)
	if err != nil {
		s.end()
		return true
	}
	if w < len(out) {
		s.handOver(func() bool {
			_, err := s.raw.Write(out[w:])
			return err == nil
		})
		return true
	}
	return false
}

// forgetKeysLocked drops what ts tracks in default mode.
func (h *trackHub) forgetKeysLocked(ts *trackState) {
	for k := range ts.keys {
		if set := h.keys[k]; set != nil {
			delete(set, ts.s)
			h.nkeys--
			if len(set) == 0 {
				delete(h.keys, k)
			}
		}
	}
	clear(ts.keys)
}

// forget drops an ended session.
func (h *trackHub) forget(s *session) {
	h.mu.Lock()
	if ts := h.sessions[s]; ts != nil {
		h.offLocked(ts)
	}
	delete(h.queues, s)
	h.mu.Unlock()
}

func (h *trackHub) offLocked(ts *trackState) {
	h.forgetKeysLocked(ts)
	delete(h.sessions, ts.s)
	delete(h.bcast, ts.s)
	if len(h.sessions) == 0 && len(h.links) > 0 && h.linger == nil && !h.closed {
		h.linger = time.AfterFunc(trackLinger, h.stopIdle)
	}
}

// stopIdle stops the links once no session has tracked for trackLinger.
func (h *trackHub) stopIdle() {
	h.mu.Lock()
	h.linger = nil
	if len(h.sessions) > 0 {
		h.mu.Unlock()
		return
	}
	links := h.links
	h.links, h.routes = map[string]*trackLink{}, nil
	h.mu.Unlock()
	for _, l := range links {
		l.stop()
	}
	if len(links) > 0 {
		h.log.Info("client tracking: links stopped, no client tracks", "links", len(links))
	}
}

// close stops every link: the cluster closes.
func (h *trackHub) close() {
	h.mu.Lock()
	h.closed = true
	if h.linger != nil {
		h.linger.Stop()
	}
	links := h.links
	h.links = map[string]*trackLink{}
	h.mu.Unlock()
	for _, l := range links {
		l.stop()
	}
}

// trackCommand notes what a command of a tracking session means for its tracking: the keys
// a read makes it track, the keys a NOLOOP session writes. Called before the command is sent.
func (s *session) trackCommand(spec *command.Spec, args [][]byte) {
	h := s.c.trk.Load()
	caching := s.trkCaching
	if spec.Name != "client" {
		s.trkCaching = false
	}
	if spec.Policy == command.Local || spec.Policy == command.Unsupported {
		return
	}
	read, write := command.IsReadOnly(spec), !command.IsReadOnly(spec)
	if script := scriptBody(spec, args); script != nil {
		read = scriptReads(script)
	} else if scriptSpecs[spec.Name] {
		read = true // its body is not in sight (EVALSHA, FCALL): track, the safe side
	}
	keys, _ := spec.Keys(args, s.keys[:0])
	s.keys = keys
	if len(keys) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.sessions[s]
	if ts == nil {
		return
	}
	h.ensureLocked(s.routes)
	if write && ts.noloop {
		now := time.Now()
		for _, i := range keys {
			k := string(args[i])
			m := h.noloop[k]
			if m == nil {
				if len(h.noloop) >= trackNoloopMax {
					continue // not remembered: the client is told of its own write, the safe side
				}
				m = &noloopMark{by: map[*session]struct{}{}}
				h.noloop[k] = m
			}
			m.by[s], m.when = struct{}{}, now
		}
	}
	if !read || ts.bcast || (ts.optin && !caching) || (ts.optout && caching) {
		return
	}
	for _, i := range keys {
		k := string(args[i])
		if _, ok := ts.keys[k]; ok {
			continue
		}
		if len(ts.keys) >= trackMaxSessionKeys {
			h.evictLocked(ts)
		}
		for h.nkeys >= trackMaxKeys {
			h.evictLocked(nil)
		}
		set := h.keys[k]
		if set == nil {
			set = map[*session]struct{}{}
			h.keys[k] = set
		}
		set[s] = struct{}{}
		ts.keys[k] = struct{}{}
		h.nkeys++
	}
}

// evictLocked invalidates one remembered key: one of ts's, or any (ts nil).
func (h *trackHub) evictLocked(ts *trackState) {
	var key string
	if ts != nil {
		for k := range ts.keys {
			key = k
			break
		}
	} else {
		for k := range h.keys {
			key = k
			break
		}
	}
	if ts != nil {
		set := h.keys[key]
		delete(set, ts.s)
		if len(set) == 0 {
			delete(h.keys, key)
		}
		delete(ts.keys, key)
		h.nkeys--
		h.deliverLocked(ts, [][]byte{[]byte(key)})
		return
	}
	set := h.keys[key]
	delete(h.keys, key)
	for s := range set {
		h.nkeys--
		if t := h.sessions[s]; t != nil {
			delete(t.keys, key)
			h.deliverLocked(t, [][]byte{[]byte(key)})
		}
	}
}

// clientTracking answers CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO as Redis 7.0 does.
func (s *session) clientTracking(sub string, out []byte, args [][]byte) []byte {
	h := s.c.tracking()
	switch sub {
	case "getredir":
		if len(args) != 2 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'client|getredir' command")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if ts := h.sessions[s]; ts != nil {
			return resp.AppendInt(out, int64(ts.redirect))
		}
		return resp.AppendInt(out, -1)
	case "trackinginfo":
		if len(args) != 2 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'client|trackinginfo' command")
		}
		return s.trackingInfo(h, out)
	case "caching":
		if len(args) != 3 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'client|caching' command")
		}
		h.mu.Lock()
		ts := h.sessions[s]
		h.mu.Unlock()
		if ts == nil {
			return resp.AppendError(out, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
		}
		switch strings.ToLower(string(args[2])) {
		case "yes":
			if !ts.optin {
				return resp.AppendError(out, "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
			}
		case "no":
			if !ts.optout {
				return resp.AppendError(out, "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
			}
		default:
			return resp.AppendError(out, "ERR syntax error")
		}
		s.trkCaching = true
		return resp.AppendSimple(out, "OK")
	}
	if len(args) < 3 {
		return resp.AppendError(out, "ERR wrong number of arguments for 'client|tracking' command")
	}
	var redir uint64
	var bcast, optin, optout, noloop bool
	var prefixes []string
	for j := 3; j < len(args); j++ {
		more := len(args) - 1 - j
		switch o := strings.ToLower(string(args[j])); {
		case o == "redirect" && more > 0:
			j++
			if redir != 0 {
				return resp.AppendError(out, "ERR A client can only redirect to a single other client")
			}
			id, err := strconv.ParseInt(string(args[j]), 10, 64)
			if err != nil {
				return resp.AppendError(out, "ERR value is not an integer or out of range")
			}
			if s.c.sessionByID(uint64(id)) == nil {
				return resp.AppendError(out, "ERR The client ID you want redirect to does not exist")
			}
			redir = uint64(id)
		case o == "bcast":
			bcast = true
		case o == "optin":
			optin = true
		case o == "optout":
			optout = true
		case o == "noloop":
			noloop = true
		case o == "prefix" && more > 0:
			j++
			prefixes = append(prefixes, string(args[j]))
		default:
			return resp.AppendError(out, "ERR syntax error")
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.sessions[s]
	switch strings.ToLower(string(args[2])) {
	case "off":
		if ts != nil {
			h.offLocked(ts)
		}
		s.tracks, s.trkCaching = false, false
		return resp.AppendSimple(out, "OK")
	case "on":
	default:
		return resp.AppendError(out, "ERR syntax error")
	}
	if !bcast && len(prefixes) > 0 {
		return resp.AppendError(out, "ERR PREFIX option requires BCAST mode to be enabled")
	}
	if ts != nil && ts.bcast != bcast {
		return resp.AppendError(out, "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
	}
	if bcast && (optin || optout) {
		return resp.AppendError(out, "ERR OPTIN and OPTOUT are not compatible with BCAST")
	}
	if optin && optout {
		return resp.AppendError(out, "ERR You can't use both OPTIN and OPTOUT")
	}
	if ts != nil && ((optin && ts.optout) || (optout && ts.optin)) {
		return resp.AppendError(out, "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
	}
	if bcast {
		for i, p := range prefixes {
			if ts != nil {
				for _, q := range ts.prefixes {
					if overlaps(p, q) {
						return resp.AppendError(out, "ERR Prefix '"+p+"' overlaps with an existing prefix '"+q+"'. Prefixes for a single client must not overlap.")
					}
				}
			}
			for _, q := range prefixes[i+1:] {
				if overlaps(p, q) {
					return resp.AppendError(out, "ERR Prefix '"+p+"' overlaps with another provided prefix '"+q+"'. Prefixes for a single client must not overlap.")
				}
			}
		}
		if len(prefixes) == 0 {
			prefixes = []string{""}
		}
		if ts != nil && len(ts.prefixes)+len(prefixes) > trackMaxPrefixes || len(prefixes) > trackMaxPrefixes {
			return resp.AppendError(out, "ERR too many prefixes: the proxy allows "+strconv.Itoa(trackMaxPrefixes)+" per client")
		}
	}
	if ts == nil {
		ts = &trackState{s: s, keys: map[string]struct{}{}}
		h.sessions[s] = ts
		if h.linger != nil {
			h.linger.Stop()
			h.linger = nil
		}
	}
	ts.on, ts.bcast, ts.optin, ts.optout, ts.noloop, ts.broke = true, bcast, optin, optout, noloop, false
	ts.redirect, ts.target = redir, nil
	if redir != 0 {
		ts.target = s.c.sessionByID(redir)
	}
	if bcast {
		for _, p := range prefixes {
			dup := false
			for _, q := range ts.prefixes {
				dup = dup || q == p
			}
			if !dup {
				ts.prefixes = append(ts.prefixes, p)
			}
		}
		h.bcast[s] = ts
	}
	s.tracks, s.trkCaching = true, false
	h.waitUpLocked(h.ensureLocked(s.routes))
	return resp.AppendSimple(out, "OK")
}

// waitUpLocked waits, briefly, for links just started to confirm tracking: reads made before
// a link is up would miss invalidations. Only once per link: a node that is down must not hold
// every later CLIENT TRACKING ON (and the event loop that runs it). It lets go of h.mu while
// waiting.
func (h *trackHub) waitUpLocked(started []*trackLink) {
	var ups []chan struct{}
	for _, l := range started {
		select {
		case <-l.up:
		default:
			ups = append(ups, l.up)
		}
	}
	if len(ups) == 0 {
		return
	}
	h.mu.Unlock()
	defer h.mu.Lock()
	deadline := time.After(trackUpWait)
	for _, up := range ups {
		select {
		case <-up:
		case <-deadline:
			return
		}
	}
}

// overlaps reports whether one of a and b is a prefix of the other.
func overlaps(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }

// trackingInfo answers CLIENT TRACKINGINFO.
func (s *session) trackingInfo(h *trackHub, out []byte) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.sessions[s]
	flags := []string{"off"}
	redir := int64(-1)
	var prefixes []string
	if ts != nil {
		flags = []string{"on"}
		if ts.bcast {
			flags = append(flags, "bcast")
		}
		if ts.optin {
			flags = append(flags, "optin")
			if s.trkCaching {
				flags = append(flags, "caching-yes")
			}
		}
		if ts.optout {
			flags = append(flags, "optout")
			if s.trkCaching {
				flags = append(flags, "caching-no")
			}
		}
		if ts.noloop {
			flags = append(flags, "noloop")
		}
		if ts.broke {
			flags = append(flags, "broken_redirect")
		}
		redir = int64(ts.redirect)
		prefixes = ts.prefixes
		if len(prefixes) == 1 && prefixes[0] == "" {
			prefixes = []string{""}
		}
	}
	if s.proto3 {
		out = append(out, "%3\r\n"...)
	} else {
		out = append(out, "*6\r\n"...)
	}
	out = resp.AppendBulkString(out, "flags")
	if s.proto3 {
		out = append(out, '~')
		out = strconv.AppendInt(out, int64(len(flags)), 10)
		out = append(out, "\r\n"...)
	} else {
		out = resp.AppendArrayHeader(out, len(flags))
	}
	for _, f := range flags {
		out = resp.AppendBulkString(out, f)
	}
	out = resp.AppendBulkString(out, "redirect")
	out = resp.AppendInt(out, redir)
	out = resp.AppendBulkString(out, "prefixes")
	out = resp.AppendArrayHeader(out, len(prefixes))
	for _, p := range prefixes {
		out = resp.AppendBulkString(out, p)
	}
	return out
}

// sessionByID is the cluster's session with id, or nil.
func (c *Cluster) sessionByID(id uint64) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.sessions {
		if s.id == id {
			return s
		}
	}
	return nil
}

// scriptSpecs are the commands that run a script on its declared keys.
var scriptSpecs = map[string]bool{"eval": true, "eval_ro": true, "evalsha": true, "evalsha_ro": true,
	"fcall": true, "fcall_ro": true}

// scriptBody is the script of an EVAL or EVAL_RO, nil for any other command.
func scriptBody(spec *command.Spec, args [][]byte) []byte {
	if (spec.Name == "eval" || spec.Name == "eval_ro") && len(args) > 1 {
		return args[1]
	}
	return nil
}

// scriptReads reports whether a script may call a read-only command: Redis tracks a script's
// declared keys only then. The proxy does not run the script, so it reads the names of its
// redis.call / redis.pcall calls; a name it cannot read (not a string literal) counts as a read.
func scriptReads(body []byte) bool {
	for _, call := range [][]byte{[]byte("redis.call("), []byte("redis.pcall(")} {
		rest := body
		for {
			i := bytes.Index(rest, call)
			if i < 0 {
				break
			}
			rest = bytes.TrimLeft(rest[i+len(call):], " \t")
			if len(rest) == 0 || (rest[0] != '\'' && rest[0] != '"') {
				return true
			}
			end := bytes.IndexByte(rest[1:], rest[0])
			if end < 0 {
				return true
			}
			spec := command.Lookup(rest[1 : 1+end])
			if spec == nil || command.IsReadOnly(spec) {
				return true
			}
			rest = rest[1+end:]
		}
	}
	return false
}
