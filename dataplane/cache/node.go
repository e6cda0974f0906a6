package cache

import "sync/atomic"

// State is where a node's tracking link is.
type State int32

const (
	// Unconfirmed: the link has not confirmed tracking yet; the node is bypassed.
	Unconfirmed State = iota
	// Up: the link tracks every key of the node; its replies are stored and served.
	Up
	// Draining: the link was lost; the node's entries were flushed and it is bypassed until
	// the link is back.
	Draining
	// Gone: the node left the cache (Remove); it is bypassed for good.
	Gone
)

func (s State) String() string {
	switch s {
	case Unconfirmed:
		return "unconfirmed"
	case Up:
		return "up"
	case Draining:
		return "draining"
	}
	return "gone"
}

// Node is a backend node the cache reads from, with the state of its tracking link. Its
// methods are safe for concurrent use.
type Node struct {
	c    *Cache
	addr string
	// state is a State; epoch moves on every change of state and every flush, so that
	// entries and tickets of an earlier epoch are never served or stored.
	state atomic.Int32
	epoch atomic.Uint64
	// fd is the link's socket while the node is Up (-1 otherwise): a hit first peeks it, so
	// that an invalidation (or the link's end) that reached asterd but was not read yet is
	// not overtaken by a hit. The link clears it and leaves Up before it closes the socket,
	// so a peek of a descriptor reused meanwhile is voided by the epoch check after it.
	fd      atomic.Int64
	peekBuf [1]byte
}

// Node returns a new node of c for addr, Unconfirmed.
func (c *Cache) Node(addr string) *Node {
	n := &Node{c: c, addr: addr}
	n.fd.Store(-1)
	c.mu.Lock()
	c.nodes[n] = struct{}{}
	c.mu.Unlock()
	return n
}

// Remove flushes n and bypasses it for good: the node left the table.
func (c *Cache) Remove(n *Node) {
	n.set(Gone)
	c.mu.Lock()
	delete(c.nodes, n)
	c.mu.Unlock()
}

// Addr is the node's address.
func (n *Node) Addr() string { return n.addr }

// State is the node's link state.
func (n *Node) State() State { return State(n.state.Load()) }

// SetUp marks the node's link as tracking: its replies may be stored from now on.
func (n *Node) SetUp() { n.set(Up) }

// SetDraining marks the node's link as lost: its entries are flushed and it is bypassed.
func (n *Node) SetDraining() { n.set(Draining) }

// Flush drops every entry that came from n (the node flushed its keys: FLUSHALL).
func (n *Node) Flush() {
	n.epoch.Add(1)
	n.c.flushNode(n)
}

// quiet reports whether n's link has nothing unread: no invalidation waiting and no end.
func (n *Node) quiet() bool {
	fd := n.fd.Load()
	return fd < 0 || !pending(int(fd), &n.peekBuf)
}

// set changes n's state; leaving Up flushes n. A Gone node stays Gone.
func (n *Node) set(s State) {
	for {
		old := n.state.Load()
		if State(old) == Gone {
			return
		}
		if n.state.CompareAndSwap(old, int32(s)) {
			break
		}
	}
	if s != Up {
		n.fd.Store(-1)
	}
	n.epoch.Add(1)
	if s != Up {
		n.c.flushNode(n)
	}
}
