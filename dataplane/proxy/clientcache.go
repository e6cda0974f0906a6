package proxy

import (
	"context"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/cache"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// The client cache (client_cache, docs/client-cache.md): GET and HGET replies kept in the
// proxy (package cache), served without a round trip while the tracking link of the node they
// came from is up, and MGET served whole when every key hits. A miss goes to the key's
// master (never a replica: the tracking link of the node a reply came from is what keeps
// it true) and stores the reply when it arrives, if nothing invalidated the key meanwhile.
// Writes through the proxy drop their keys when sent and again when answered, so a client
// reads its own writes; the rest of a batch after a write bypasses the cache.

// clientCache is a generation's view of the cluster's cache: nil when the cache is off.
type clientCache struct {
	c       *cache.Cache
	routes  *routes       // the routes nodes is aligned with
	nodes   []*cache.Node // index-aligned with routes.pools
	hotOnly bool
}

// cacheLinks is the cluster's cache and its nodes' tracking links, carried over from
// generation to generation while the cache's sizes and the backend settings stay. Guarded by
// Cluster.mu.
type cacheLinks struct {
	cache   *cache.Cache
	sizes   route.ClientCacheSpec // what cache was made with (Enabled, HotOnly cleared)
	backend backendConf           // what the links dial with
	table   *route.Table          // the table the nodes were last set for
	nodes   map[string]*trackedNode
	stats   cache.Stats // counted across caches, for the metrics
	seen    bool        // the cache was on once: its series exist
}

type trackedNode struct {
	node *cache.Node
	link *cache.Link
}

// applyCacheDefaults fills the sizes a spec left zero with the config's defaults and keeps
// them in range whatever set them.
func applyCacheDefaults(k *route.ClientCacheSpec) {
	fill := func(v *int, def int, r limits.Int) {
		if *v <= 0 {
			*v = def
		}
		*v = int(min(max(int64(*v), r.Min), r.Max))
	}
	fill(&k.MaxEntries, 100_000, limits.ClientCacheMaxEntries)
	fill(&k.MaxValueBytes, 512<<10, limits.ClientCacheMaxValueBytes)
	fill(&k.ShardCount, 32, limits.ClientCacheShardCount)
	fill(&k.MaxMemory, 256<<20, limits.ClientCacheMaxMemory)
}

// buildCacheLocked gives g, the next generation, its view of the client cache: none when the
// knobs turn it off (the links stop and the cache is dropped); else the cache, made anew when
// its sizes or the backend settings changed, with a tracking link for each node of g's table.
// A node that left the table is flushed; a table that moved keys between nodes (a reshard, a
// failover) flushes everything, since what a node said of a key it no longer owns is not
// tracked any more. c.mu must be held.
func (c *Cluster) buildCacheLocked(g *generation) {
	k := g.knobs.cache
	cl := &c.cc
	g.cache = nil
	if !k.Enabled || c.closed {
		if cl.cache != nil {
			c.stopCacheLocked()
			c.log.Info("client cache off")
		}
		return
	}
	sizes := k
	sizes.Enabled, sizes.HotOnly = false, false
	if cl.cache == nil || cl.sizes != sizes || cl.backend != g.backend {
		c.stopCacheLocked()
		cl.cache = cache.New(cache.Config{MaxEntries: k.MaxEntries, MaxValueBytes: k.MaxValueBytes, Shards: k.ShardCount,
			MaxBytes: int64(k.MaxMemory)}, &cl.stats)
		cl.sizes, cl.backend, cl.seen = sizes, g.backend, true
		cl.nodes = make(map[string]*trackedNode)
		c.log.Info("client cache on", "max_entries", k.MaxEntries, "max_value_bytes", k.MaxValueBytes,
			"shard_count", k.ShardCount, "max_memory", k.MaxMemory, "hot_only", k.HotOnly)
	}
	if g.routes == nil {
		return
	}
	if t := g.routes.table; cl.table != nil && cl.table != t && !sameRouting(cl.table, t) {
		cl.cache.Flush()
		c.log.Info("client cache flushed: the routing table moved keys", "version", t.Version)
	}
	cl.table = g.routes.table
	view := &clientCache{c: cl.cache, routes: g.routes, nodes: make([]*cache.Node, len(g.routes.pools)), hotOnly: k.HotOnly}
	named := make(map[string]bool, len(g.routes.pools))
	for i, p := range g.routes.pools {
		named[p.addr] = true
		tn := cl.nodes[p.addr]
		if tn == nil {
			tn = c.trackLocked(cl.cache, p)
			cl.nodes[p.addr] = tn
		}
		view.nodes[i] = tn.node
	}
	for addr, tn := range cl.nodes {
		if !named[addr] {
			cl.cache.Remove(tn.node) // flushed at once; the link ends after
			tn.link.Stop()
			delete(cl.nodes, addr)
		}
	}
	g.cache = view
}

// trackLocked starts the tracking link of p's node: its own connection, dialled as p's are
// (AUTH, TLS, READONLY) but always RESP3, which pushes invalidations on the same connection.
func (c *Cluster) trackLocked(cc *cache.Cache, p *pool) *trackedNode {
	opts := p.opts
	opts.RESP3, opts.Poller, opts.Latency, opts.OnFailure = true, nil, nil, nil
	n := cc.Node(p.addr)
	dial := func(ctx context.Context) (net.Conn, error) { return backend.DialContext(ctx, opts) }
	return &trackedNode{node: n, link: cache.Track(n, dial, cacheLinkTimings, c.log.Named("client_cache"))}
}

// cacheLinkTimings are the tracking links' ping and redial timings; zero fields take
// cache.DefaultLinkTimings. A variable for tests only (SetCacheLinkPing).
var cacheLinkTimings cache.LinkTimings

// stopCacheLocked stops every tracking link and drops the cache. c.mu must be held.
func (c *Cluster) stopCacheLocked() {
	cl := &c.cc
	for _, tn := range cl.nodes {
		cl.cache.Remove(tn.node)
		tn.link.Stop()
	}
	cl.cache, cl.nodes, cl.table = nil, nil, nil
}

// sameRouting reports whether a and b send every key to the same node (and replicas).
func sameRouting(a, b *route.Table) bool { return a.SameRouting(b) }

var (
	specGet  = command.Lookup([]byte("get"))
	specHGet = command.Lookup([]byte("hget"))
	specMGet = command.Lookup([]byte("mget"))
	// noField is HGET's field when the client sent an empty one: never nil, which is GET's.
	noField = []byte{}
)

// cacheMiss is what a place keeps of a GET or HGET that missed, to store its reply (while
// the place's cacheOn is set).
type cacheMiss struct {
	t      cache.Ticket
	conn   *backend.Conn // the request went there; a redirected one is not stored
	key    []byte        // key, then field
	keyLen int
	hash   bool // HGET: key[keyLen:] is the field
}

// cacheWrites are the keys a batch wrote, dropped again once the writes are answered.
type cacheWrites struct {
	wrote bool
	keys  []byte
	lens  []int
}

// cacheCommand serves cmd from the client cache cc when it can (true: pl is answered or
// sent); it notes the keys of a write. Called by handle for every command while the cache
// is on.
func (s *session) cacheCommand(pl *place, cc *clientCache, spec *command.Spec, cmd *resp.Command) bool {
	switch {
	case spec == specGet || spec == specHGet:
		return !s.tx.active && s.cacheGet(pl, cc, spec, cmd)
	case spec == specMGet:
		return !s.tx.active && s.cacheMGet(pl, cc, spec, cmd)
	case spec.Policy == command.Local || spec.Policy == command.Unsupported || command.IsReadOnly(spec):
		return false
	}
	keys, _ := spec.Keys(cmd.Args, s.keys[:0])
	s.keys = keys
	for _, k := range keys {
		key := cmd.Args[k]
		cc.c.Drop(key)
		s.cw.keys = append(s.cw.keys, key...)
		s.cw.lens = append(s.cw.lens, len(key))
		s.cw.wrote = true
	}
	return false
}

// cacheQueued notes the keys a queued write will write when EXEC runs (cacheExecuted).
func (s *session) cacheQueued(spec *command.Spec, args [][]byte) {
	if s.gen.cache == nil || spec.Policy == command.Local || command.IsReadOnly(spec) {
		return
	}
	keys, _ := spec.Keys(args, s.keys[:0])
	s.keys = keys
	tx := &s.tx
	for _, k := range keys {
		tx.written = append(tx.written, args[k]...)
		tx.writtenLens = append(tx.writtenLens, len(args[k]))
	}
}

// cacheExecuted drops again the keys a transaction wrote, now that EXEC ran: a read of
// another client may have cached a value since they were queued, and the tracking link's
// invalidation of it may still be on its way when this client reads next.
func (s *session) cacheExecuted() {
	if cc := s.gen.cache; cc != nil {
		cc.dropAll(s.tx.written, s.tx.writtenLens)
	}
}

// dropAll drops keys, given as their bytes end to end and each one's length.
func (cc *clientCache) dropAll(keys []byte, lens []int) {
	at := 0
	for _, l := range lens {
		cc.c.Drop(keys[at : at+l])
		at += l
	}
}

// cacheNode is the node a cached read of key goes to: its master.
func (s *session) cacheNode(key []byte) int {
	t := s.routes.table
	return t.Master(t.Group(key))
}

// cacheGet answers GET or HGET from the cache, or sends it to the key's master and notes
// what it takes to store the reply (cacheStore).
func (s *session) cacheGet(pl *place, cc *clientCache, spec *command.Spec, cmd *resp.Command) bool {
	if s.routes == nil || cc.routes != s.routes {
		return false
	}
	args := cmd.Args
	key := args[1]
	var field []byte
	if spec == specHGet {
		if field = args[2]; field == nil {
			field = noField
		}
	}
	node := s.cacheNode(key)
	if node < 0 {
		return false
	}
	n := cc.nodes[node]
	if t := s.gen.hot; t.Enabled() {
		s.sampleKeys(t, spec, args)
	}
	if !s.cw.wrote {
		if out, ok := cc.c.Lookup(n, key, field, pl.proto3, pl.local[:0]); ok {
			s.cacheHit(pl, out)
			return true
		}
	}
	var t cache.Ticket
	if !s.cw.wrote && (!cc.hotOnly || s.gen.hot.Named(key)) {
		t = cc.c.Begin(n, key)
	}
	if s.proto3 != s.routes.resp3 {
		pl.shape = command.ReplyShape(spec, args)
	}
	s.forward(pl, node, cmd)
	if t.Valid() && pl.kind == placeForward {
		m := &pl.cached
		pl.cacheOn, m.t, m.conn, m.hash = true, t, pl.main.conn, field != nil
		m.key = append(append(m.key[:0], key...), field...)
		m.keyLen = len(key)
	}
	return true
}

// cacheMGet answers MGET from the cache when every key hits; false (nothing done) otherwise.
func (s *session) cacheMGet(pl *place, cc *clientCache, spec *command.Spec, cmd *resp.Command) bool {
	if s.cw.wrote || s.routes == nil || cc.routes != s.routes {
		return false
	}
	keys := cmd.Args[1:]
	out := strconv.AppendInt(append(pl.local[:0], '*'), int64(len(keys)), 10)
	out = append(out, "\r\n"...)
	for _, k := range keys {
		node := s.cacheNode(k)
		if node < 0 {
			pl.local = out[:0]
			return false
		}
		var ok bool
		if out, ok = cc.c.Lookup(cc.nodes[node], k, nil, pl.proto3, out); !ok {
			pl.local = out[:0]
			return false
		}
	}
	if t := s.gen.hot; t.Enabled() {
		s.sampleKeys(t, spec, cmd.Args)
	}
	s.cacheHit(pl, out)
	return true
}

// cacheHit answers pl with reply bytes from the cache, counted against the batch's output
// budget as a backend reply would be.
func (s *session) cacheHit(pl *place, out []byte) {
	pl.kind, pl.local = placeLocal, out
	if pl.budget != nil && !pl.budget.Take(len(out)) {
		pl.local = out[:0]
	}
}

// cacheStore stores the reply of a GET or HGET that missed (cacheGet), unless the request
// failed or was redirected; the ticket decides whether nothing made it stale meanwhile.
func (s *session) cacheStore(pl *place) {
	m := &pl.cached
	pl.cacheOn = false
	cc := s.gen.cache
	if cc == nil || pl.main.req.Failure != backend.FailNone || pl.main.conn != m.conn {
		return
	}
	var field []byte
	if m.hash {
		field = m.key[m.keyLen:len(m.key):len(m.key)]
	}
	cc.c.Store(m.t, m.key[:m.keyLen], field, pl.main.req.Reply)
	m.t = cache.Ticket{}
}

// cacheWritten drops again the keys the batch wrote, now that the writes are answered: a
// read that was in flight meanwhile may have stored the old value. Then the batch's
// reads may use the cache again.
func (s *session) cacheWritten() {
	w := &s.cw
	if cc := s.gen.cache; cc != nil {
		cc.dropAll(w.keys, w.lens)
	}
	w.wrote = false
	if cap(w.keys) > maxKeptOut {
		w.keys, w.lens = nil, nil
	}
	w.keys, w.lens = w.keys[:0], w.lens[:0]
}

// Client cache series: read from each cluster's counters when scraped, so that a hit costs
// the hot path no more than the atomic add the cache does anyway.
var (
	cacheLookupsDesc = prometheus.NewDesc("aster_client_cache_lookups_total",
		"Reads looked up in the proxy's client cache (per key: an MGET counts each), by result.",
		[]string{"cluster", "result"}, nil)
	cacheInvalidationsDesc = prometheus.NewDesc("aster_client_cache_invalidations_total",
		"Keys the tracking links' invalidation messages named.", []string{"cluster"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("aster_client_cache_entries",
		"Entries (GET replies and hash fields) the client cache holds.", []string{"cluster"}, nil)
)

// CacheCollector is the client cache's series of every cluster s serves, for the process's
// registry. Clusters whose cache was never on have none.
func (s *Server) CacheCollector() prometheus.Collector { return cacheCollector{s} }

type cacheCollector struct{ s *Server }

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- cacheInvalidationsDesc
	ch <- cacheEntriesDesc
}

func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	cc.s.mu.Lock()
	clusters := make([]*Cluster, 0, len(cc.s.clusters))
	for _, c := range cc.s.clusters {
		clusters = append(clusters, c)
	}
	cc.s.mu.Unlock()
	for _, c := range clusters {
		c.mu.Lock()
		st, entries, seen := &c.cc.stats, 0, c.cc.seen
		if c.cc.cache != nil {
			entries = c.cc.cache.Len()
		}
		c.mu.Unlock()
		if !seen {
			continue
		}
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Hits.Load()), c.name, "hit")
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Misses.Load()), c.name, "miss")
		ch <- prometheus.MustNewConstMetric(cacheInvalidationsDesc, prometheus.CounterValue, float64(st.Invalidations.Load()), c.name)
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(entries), c.name)
	}
}
