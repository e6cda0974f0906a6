// Package cache is the proxy's own cache of read replies (GET, and HGET's fields), kept
// coherent by Redis key tracking: every node the cache reads from has a tracking link
// (track.go) whose invalidation messages drop the keys they name, and a node's entries are
// stored and served only while its link is up.
//
// Concurrency: a Cache is safe for concurrent use by any number of sessions and links. It is
// split into shards, each with its own mutex, LRU list and entry budget; a key's entries (its
// GET reply and its hash fields) all live in the shard of the key, so that an invalidation is
// one shard's work. Lookup allocates nothing.
//
// Coherence: a miss takes a Ticket (Begin) before its request goes to the node, and the reply
// is stored with it (Store) only if nothing that could make it stale happened meanwhile: no
// invalidation of a key of the same stripe of its shard, no change of the node's link (which
// flushes the node). Otherwise a reply read before a write could be stored after that write's
// invalidation and be served stale until the key is written again.
package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Config sizes a Cache.
type Config struct {
	// MaxEntries bounds the entries (a GET reply or one hash field) of the whole cache.
	MaxEntries int
	// MaxValueBytes bounds an entry: its key, field and reply bytes together; a bigger
	// reply is not stored.
	MaxValueBytes int
	// Shards is how many independently locked parts the cache has; clipped to MaxEntries.
	Shards int
	// MaxBytes bounds what all entries cost, EntryOverhead each included (≤ 0: only
	// MaxEntries × (MaxValueBytes + EntryOverhead) does): each shard evicts past its share.
	MaxBytes int64
}

// EntryOverhead is what an entry costs beyond its key, field and reply bytes (the entry, its
// share of the key's item and of the maps, and the allocator's rounding), for the memory
// bound: a cache holds at most MaxEntries × (MaxValueBytes + EntryOverhead) bytes, and at
// most MaxBytes.
const EntryOverhead = 512

// stripes is how many invalidation epochs a shard keeps: a key's invalidation voids the
// tickets of the keys of its stripe only.
const stripes = 16

// Stats are a cache's counters; they may outlive a cache (a resized one counts on).
type Stats struct {
	Hits, Misses, Invalidations atomic.Uint64
}

// Cache holds reply bytes keyed by key (and hash field).
type Cache struct {
	cfg      Config
	seed     maphash.Seed
	shards   []shard
	perShard int
	// perShardBytes is each shard's share of MaxBytes (0: none).
	perShardBytes int64
	stats         *Stats

	entries atomic.Int64
	bytes   atomic.Int64

	mu    sync.Mutex // guards nodes
	nodes map[*Node]struct{}
}

type shard struct {
	mu     sync.Mutex
	items  map[string]*item
	lru    entry // sentinel of a ring: lru.next is the most recently used
	n      int
	bytes  int64 // what its entries cost
	epochs [stripes]atomic.Uint64
	_      [64]byte // keeps neighbouring shards' mutexes off one cache line
}

// item is one key's entries.
type item struct {
	key    string
	get    *entry
	fields map[string]*entry // HGET fields; nil until the first
}

type entry struct {
	prev, next *entry
	it         *item
	field      string // "" with isGet
	isGet      bool
	node       *Node
	nodeEpoch  uint64
	null       bool   // the reply was a null (no such key or field)
	val        []byte // the reply frame, a bulk string, when not null
	cost       int
}

// New returns an empty cache sized by cfg (MaxEntries and MaxValueBytes ≥ 1; Shards ≤ 0 is
// 1), counting into stats (nil: counters of its own).
func New(cfg Config, stats *Stats) *Cache {
	cfg.MaxEntries = max(cfg.MaxEntries, 1)
	cfg.MaxValueBytes = max(cfg.MaxValueBytes, 1)
	cfg.Shards = min(max(cfg.Shards, 1), cfg.MaxEntries)
	if stats == nil {
		stats = &Stats{}
	}
	c := &Cache{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]shard, cfg.Shards),
		perShard: cfg.MaxEntries / cfg.Shards, stats: stats, nodes: map[*Node]struct{}{}}
	if cfg.MaxBytes > 0 {
		c.perShardBytes = max(cfg.MaxBytes/int64(cfg.Shards), 1)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.items = map[string]*item{}
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return c
}

// Config is the configuration c was made with (clipped as New does).
func (c *Cache) Config() Config { return c.cfg }

// Len is the number of entries held.
func (c *Cache) Len() int { return int(c.entries.Load()) }

// Bytes is what the entries held cost, EntryOverhead each included.
func (c *Cache) Bytes() int64 { return c.bytes.Load() }

// Stats are the counters c counts into.
func (c *Cache) Stats() *Stats { return c.stats }

func (c *Cache) shardOf(key []byte) (*shard, uint64) {
	h := maphash.Bytes(c.seed, key)
	return &c.shards[h%uint64(len(c.shards))], h >> 60 // stripes = 16: the top 4 bits
}

// Lookup appends to dst the reply cached for key (field == nil: GET key; else HGET key
// field) as it came from node, in the client's protocol (resp3: a null is RESP3's), and
// reports whether there was one. Nothing is found for a node whose link is not up, or for an
// entry that came from another node (the key moved).
func (c *Cache) Lookup(node *Node, key, field []byte, resp3 bool, dst []byte) ([]byte, bool) {
	if node == nil || State(node.state.Load()) != Up {
		c.stats.Misses.Add(1) // bypassed: a miss to whoever watches the hit rate
		return dst, false
	}
	epoch := node.epoch.Load()
	if !node.quiet() || node.epoch.Load() != epoch {
		c.stats.Misses.Add(1)
		return dst, false
	}
	sh, _ := c.shardOf(key)
	sh.mu.Lock()
	e := sh.findLocked(key, field)
	if e == nil || e.node != node || e.nodeEpoch != epoch {
		sh.mu.Unlock()
		c.stats.Misses.Add(1)
		return dst, false
	}
	sh.touchLocked(e)
	switch {
	case !e.null:
		dst = append(dst, e.val...)
	case resp3:
		dst = append(dst, "_\r\n"...)
	default:
		dst = append(dst, "$-1\r\n"...)
	}
	sh.mu.Unlock()
	c.stats.Hits.Add(1)
	return dst, true
}

func (sh *shard) findLocked(key, field []byte) *entry {
	it := sh.items[string(key)]
	if it == nil {
		return nil
	}
	if field == nil {
		return it.get
	}
	return it.fields[string(field)]
}

func (sh *shard) touchLocked(e *entry) {
	if sh.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	sh.pushLocked(e)
}

func (sh *shard) pushLocked(e *entry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = e
	sh.lru.next = e
}

// Ticket is what Begin saw, for Store to check that nothing made the reply stale since.
type Ticket struct {
	c          *Cache
	node       *Node
	nodeEpoch  uint64
	stripe     uint64
	stripeSeen uint64
	shard      *shard
}

// Valid reports whether t may store a reply (Begin found the node's link up).
func (t Ticket) Valid() bool { return t.node != nil }

// Begin is called for a miss before its request is sent to node: the returned ticket lets
// Store keep the reply only if no invalidation of key (or of a key sharing its stripe) and
// no change of node's link came in between. It is not Valid when node's link is not up.
func (c *Cache) Begin(node *Node, key []byte) Ticket {
	if node == nil || State(node.state.Load()) != Up {
		return Ticket{}
	}
	t := Ticket{c: c, node: node, nodeEpoch: node.epoch.Load()}
	t.shard, t.stripe = c.shardOf(key)
	t.stripeSeen = t.shard.epochs[t.stripe].Load()
	if State(node.state.Load()) != Up || node.epoch.Load() != t.nodeEpoch {
		return Ticket{}
	}
	return t
}

// Store keeps reply, the node's answer to GET key (field nil) or HGET key field, under
// ticket t from Begin. Only a bulk string or a null is kept, and only when key, field and
// reply fit MaxValueBytes; it reports whether it was kept.
func (c *Cache) Store(t Ticket, key, field, reply []byte) bool {
	if !t.Valid() || t.c != c || len(reply) < 3 {
		return false
	}
	null := false
	switch reply[0] {
	case '$':
		null = reply[1] == '-'
	case '_':
		null = true
	default:
		return false // errors (and anything unexpected) are never cached
	}
	size := len(key) + len(field)
	if !null {
		size += len(reply)
	}
	if size > c.cfg.MaxValueBytes {
		return false
	}
	sh := t.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := t.node
	if sh.epochs[t.stripe].Load() != t.stripeSeen || n.epoch.Load() != t.nodeEpoch || State(n.state.Load()) != Up {
		return false
	}
	it := sh.items[string(key)]
	if it == nil {
		it = &item{key: string(key)}
		sh.items[it.key] = it
	}
	var old *entry
	if field == nil {
		old = it.get
	} else {
		old = it.fields[string(field)]
	}
	if old != nil {
		sh.removeLocked(c, old, false)
	}
	e := &entry{it: it, isGet: field == nil, field: string(field), node: n, nodeEpoch: t.nodeEpoch, null: null,
		cost: size + EntryOverhead}
	if !null {
		e.val = append([]byte(nil), reply...)
	}
	if e.isGet {
		it.get = e
	} else {
		if it.fields == nil {
			it.fields = map[string]*entry{}
		}
		it.fields[e.field] = e
	}
	sh.pushLocked(e)
	sh.n++
	sh.bytes += int64(e.cost)
	c.entries.Add(1)
	c.bytes.Add(int64(e.cost))
	for sh.n > c.perShard || (c.perShardBytes > 0 && sh.bytes > c.perShardBytes && sh.n > 0) {
		sh.removeLocked(c, sh.lru.prev, true)
	}
	return true
}

// removeLocked drops e; drop also its item when it was the item's last entry and prune.
func (sh *shard) removeLocked(c *Cache, e *entry, prune bool) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	it := e.it
	if e.isGet {
		it.get = nil
	} else {
		delete(it.fields, e.field)
	}
	if prune && it.get == nil && len(it.fields) == 0 {
		delete(sh.items, it.key)
	}
	sh.n--
	sh.bytes -= int64(e.cost)
	c.entries.Add(-1)
	c.bytes.Add(-int64(e.cost))
}

// Invalidate drops every entry of key (its GET reply and all its fields) and voids the
// tickets of misses in flight for it: a tracking link's invalidation, counted in Stats.
func (c *Cache) Invalidate(key []byte) {
	c.Drop(key)
	c.stats.Invalidations.Add(1)
}

// Drop is Invalidate for a write the proxy itself forwards: not counted.
func (c *Cache) Drop(key []byte) {
	sh, stripe := c.shardOf(key)
	sh.mu.Lock()
	sh.epochs[stripe].Add(1)
	if it := sh.items[string(key)]; it != nil {
		sh.dropItemLocked(c, it)
	}
	sh.mu.Unlock()
}

func (sh *shard) dropItemLocked(c *Cache, it *item) {
	if it.get != nil {
		sh.removeLocked(c, it.get, false)
	}
	for _, e := range it.fields {
		sh.removeLocked(c, e, false)
	}
	delete(sh.items, it.key)
}

// flushNode drops every entry that came from n; n's epoch was moved first, so that no
// ticket taken before stores (Store checks it under the shard's lock).
func (c *Cache) flushNode(n *Node) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for e := sh.lru.next; e != &sh.lru; {
			next := e.next
			if e.node == n {
				sh.removeLocked(c, e, true)
			}
			e = next
		}
		sh.mu.Unlock()
	}
}

// Flush drops every entry and voids every ticket.
func (c *Cache) Flush() {
	c.mu.Lock()
	for n := range c.nodes {
		n.epoch.Add(1)
	}
	c.mu.Unlock()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for s := range sh.epochs {
			sh.epochs[s].Add(1)
		}
		for e := sh.lru.next; e != &sh.lru; {
			next := e.next
			sh.removeLocked(c, e, true)
			e = next
		}
		sh.mu.Unlock()
	}
}
