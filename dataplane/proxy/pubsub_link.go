package proxy

import (
	"errors"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// Pub/sub: the session's connections to the nodes (links): which are dialled, with what
// backoff, what is subscribed on each, and reconcile, which re-places subscriptions when a link
// dies or the routing table changes.

// linksFor dials the connections that the names of kind not subscribed yet need and the
// session lacks, before any is confirmed: when the cluster's share of descriptors has no
// room for one (errNoFDs), the SUBSCRIBE is refused whole, as Redis refuses a command it
// cannot run, and the connections dialled for it, which carry nothing yet, are closed. Other
// dial failures are not the client's: the subscription is confirmed and placed when the node
// can be reached (reconcile).
func (p *pubsub) linksFor(kind subKind, names [][]byte) error {
	var dialled []*psLink
	var nodes []int
	for _, n := range names {
		if p.subs[kind][string(n)] { // the session goroutine writes the sets: no lock to read
			continue
		}
		nodes = p.nodesFor(nodes[:0], kind, string(n))
		for _, node := range nodes {
			had := p.links[p.s.routes.pools[node].addr]
			l, err := p.linkTo(node)
			if errors.Is(err, errNoFDs) {
				for _, d := range dialled {
					if d.empty() && p.links[d.addr] == d {
						p.closeLink(d)
						delete(p.links, d.addr)
					}
				}
				return err
			}
			if l != nil && l != had {
				dialled = append(dialled, l)
			}
		}
	}
	return nil
}

// linkTo returns the session's connection to node, dialling it unless the node failed
// recently; nil when there is none for now, with errNoFDs when the cluster's share of
// descriptors has no room for it (not a node failure: no backoff, no hint).
func (p *pubsub) linkTo(node int) (*psLink, error) {
	addr := p.s.routes.pools[node].addr
	if l := p.links[addr]; l != nil {
		if !l.dead() {
			return l, nil
		}
		p.dropLink(l)
	}
	if b := p.retry[addr]; b != nil && time.Now().Before(b.until) {
		return nil, nil
	}
	nc, hold, err := p.s.dialNode(node)
	if errors.Is(err, errNoFDs) {
		return nil, err
	}
	if err != nil {
		if p.backoff(addr) == pubsubMinBackoff {
			p.log.Warn("subscription connection failed; retrying with backoff", "node", addr, "error", err)
		}
		p.log.Debug("subscription connection failed", "node", addr, "error", err)
		p.s.c.hint()
		return nil, nil
	}
	delete(p.retry, addr)
	l := &psLink{addr: addr, nc: nc, hold: hold, ack: make(chan struct{}, 1), done: make(chan struct{})}
	for i := range l.subs {
		l.subs[i] = make(map[string]bool)
	}
	p.links[addr] = l
	p.wg.Add(1)
	go p.readLink(l)
	return l, nil
}

// backoff delays the next dial of addr, longer each time until a dial succeeds, and returns
// the delay.
func (p *pubsub) backoff(addr string) time.Duration {
	b := p.retry[addr]
	if b == nil {
		b = &psBackoff{delay: pubsubMinBackoff}
		p.retry[addr] = b
	} else if b.delay *= 2; b.delay > pubsubMaxBackoff {
		b.delay = pubsubMaxBackoff
	}
	b.until = time.Now().Add(b.delay)
	return b.delay
}

// dropLink forgets a dead link; what was subscribed on it is placed again by reconcile, after a
// pause when the link failed (a node that refuses a subscription, e.g. with MOVED while the
// table is stale, must not be redialled in a loop).
func (p *pubsub) dropLink(l *psLink) {
	if p.links[l.addr] == l {
		delete(p.links, l.addr)
	}
	if !l.closing.Load() {
		p.backoff(l.addr)
	}
	p.closeLink(l)
	p.markDirty()
}

func (p *pubsub) closeLink(l *psLink) {
	l.closing.Store(true)
	l.close()
}

// close closes the connection and gives its descriptor back to the cluster's share; every
// closer calls it (never nc.Close alone): the session, the reader, a failed write.
func (l *psLink) close() {
	_ = l.nc.Close()
	l.hold.release()
}

func (p *pubsub) anyDead() bool {
	for _, l := range p.links {
		if l.dead() {
			return true
		}
	}
	return false
}

func (l *psLink) dead() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *psLink) empty() bool {
	return len(l.subs[0]) == 0 && len(l.subs[1]) == 0 && len(l.subs[2]) == 0
}

// queue adds one command for name; flushLink sends what is queued.
func (l *psLink) queue(word, name string) {
	l.wbuf = resp.AppendArrayHeader(l.wbuf, 2)
	l.wbuf = resp.AppendBulkString(l.wbuf, word)
	l.wbuf = resp.AppendBulkString(l.wbuf, name)
}

func (p *pubsub) flushLink(l *psLink) {
	if len(l.wbuf) == 0 {
		return
	}
	timeout := p.s.c.gen.Load().backend.writeTimeout
	if timeout <= 0 {
		timeout = pubsubAckWait
	}
	_ = l.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := l.nc.Write(l.wbuf)
	l.wbuf = l.wbuf[:0]
	if err != nil {
		p.log.Warn("subscription connection failed", "node", l.addr, "error", err)
		l.close() // its reader sees it and asks for a reconcile
	}
}

// reconcile places every subscription where the current table says it belongs: it moves those
// whose node changed, and resubscribes those whose connection died, redialling with backoff.
func (p *pubsub) reconcile() {
	rt := p.s.c.gen.Load().routes
	if rt == nil {
		return
	}
	p.s.routes, p.lastRoutes = rt, rt
	for _, l := range p.links {
		if l.dead() {
			p.dropLink(l)
		}
	}
	type want struct {
		node  int
		names [3]map[string]bool
	}
	wants := make(map[string]*want)
	p.unplaced = false
	var nodes []int
	for kind := range p.subs {
		for name := range p.subs[kind] {
			nodes = p.nodesFor(nodes[:0], subKind(kind), name)
			if len(nodes) == 0 {
				p.unplaced = true
			}
			for _, n := range nodes {
				addr := rt.pools[n].addr
				w := wants[addr]
				if w == nil {
					w = &want{node: n}
					for i := range w.names {
						w.names[i] = make(map[string]bool)
					}
					wants[addr] = w
				}
				w.names[kind][name] = true
			}
		}
	}
	// Leave the nodes a subscription no longer belongs to, then join the ones it does.
	for addr, l := range p.links {
		w := wants[addr]
		for kind := range l.subs {
			for name := range l.subs[kind] {
				if w == nil || !w.names[kind][name] {
					delete(l.subs[kind], name)
					l.queue(kindWords[kind].unsub, name)
					if subKind(kind) == kindShard {
						l.sunsubPending.Add(1)
					}
				}
			}
		}
		if w == nil && l.empty() {
			p.closeLink(l)
			delete(p.links, addr)
			continue
		}
		p.flushLink(l)
	}
	for _, w := range wants {
		l, _ := p.linkTo(w.node) // errNoFDs too: placed when the share has room
		if l == nil {
			p.unplaced = true
			continue
		}
		moved := 0
		for kind := range w.names {
			for name := range w.names[kind] {
				if !l.subs[kind][name] {
					l.subs[kind][name] = true
					l.queue(kindWords[kind].sub, name)
					l.sent++
					moved++
				}
			}
		}
		if moved > 0 {
			p.log.Info("subscriptions placed", "node", l.addr, "count", moved)
		}
		p.flushLink(l)
	}
}

// close leaves subscribed mode: every link is closed and its reader gone, and the client has
// been sent everything queued for it.
func (p *pubsub) close() {
	for addr, l := range p.links {
		p.closeLink(l)
		delete(p.links, addr)
	}
	p.mu.Lock()
	p.stop, p.hold = true, false
	p.cond.Signal()
	p.mu.Unlock()
	p.wg.Wait()
}
