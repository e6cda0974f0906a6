package cache

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func bulkOf(s string) []byte { return []byte("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n") }

func upNode(c *Cache, addr string) *Node {
	n := c.Node(addr)
	n.SetUp()
	return n
}

// store is a miss made whole: Begin, then Store.
func store(t testing.TB, c *Cache, n *Node, key, field string, reply []byte) {
	t.Helper()
	var f []byte
	if field != "" {
		f = []byte(field)
	}
	if !c.Store(c.Begin(n, []byte(key)), []byte(key), f, reply) {
		t.Fatalf("store %s %s: not kept", key, field)
	}
}

func lookup(c *Cache, n *Node, key, field string, resp3 bool) (string, bool) {
	var f []byte
	if field != "" {
		f = []byte(field)
	}
	b, ok := c.Lookup(n, []byte(key), f, resp3, nil)
	return string(b), ok
}

func TestStoreLookupInvalidate(t *testing.T) {
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 4}, nil)
	n := upNode(c, "a")
	store(t, c, n, "k", "", bulkOf("v"))
	store(t, c, n, "h", "f1", bulkOf("x"))
	store(t, c, n, "h", "f2", []byte("$-1\r\n"))
	store(t, c, n, "nil", "", []byte("_\r\n"))

	cases := []struct {
		key, field string
		resp3      bool
		want       string
		hit        bool
	}{
		{"k", "", false, "$1\r\nv\r\n", true},
		{"h", "f1", false, "$1\r\nx\r\n", true},
		{"h", "f2", false, "$-1\r\n", true},
		{"h", "f2", true, "_\r\n", true},
		{"nil", "", false, "$-1\r\n", true},
		{"nil", "", true, "_\r\n", true},
		{"h", "", false, "", false},   // GET h was never stored
		{"k", "f1", false, "", false}, // nor HGET k f1
		{"other", "", false, "", false},
	}
	for _, tc := range cases {
		got, ok := lookup(c, n, tc.key, tc.field, tc.resp3)
		if ok != tc.hit || got != tc.want {
			t.Errorf("lookup %q %q resp3=%v = %q %v, want %q %v", tc.key, tc.field, tc.resp3, got, ok, tc.want, tc.hit)
		}
	}
	c.Invalidate([]byte("h"))
	for _, f := range []string{"f1", "f2"} {
		if _, ok := lookup(c, n, "h", f, false); ok {
			t.Errorf("HGET h %s served after h was invalidated", f)
		}
	}
	if _, ok := lookup(c, n, "k", "", false); !ok {
		t.Error("k dropped by the invalidation of h")
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d after dropping h's two fields, want 2", c.Len())
	}
}

func TestStoreRefuses(t *testing.T) {
	c := New(Config{MaxEntries: 10, MaxValueBytes: 16, Shards: 1}, nil)
	n := upNode(c, "a")
	for _, tc := range []struct {
		name  string
		reply []byte
	}{
		{"error", []byte("-ERR no\r\n")},
		{"integer", []byte(":1\r\n")},
		{"too big", bulkOf("0123456789abcdef")},
		{"empty", nil},
	} {
		if c.Store(c.Begin(n, []byte("k")), []byte("k"), nil, tc.reply) {
			t.Errorf("%s reply stored", tc.name)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d", c.Len())
	}
}

// TestInvalidationDuringMiss is the coherence rule: a reply whose request was sent before an
// invalidation of its key came in may be stale, and must not be stored.
func TestInvalidationDuringMiss(t *testing.T) {
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 2}, nil)
	n := upNode(c, "a")
	tk := c.Begin(n, []byte("k"))
	c.Invalidate([]byte("k")) // a write on the node while GET k was in flight
	if c.Store(tk, []byte("k"), nil, bulkOf("old")) {
		t.Fatal("a reply read before an invalidation of its key was stored")
	}
	if _, ok := lookup(c, n, "k", "", false); ok {
		t.Fatal("stale reply served")
	}
	// The link dropping and coming back meanwhile voids the ticket too.
	tk = c.Begin(n, []byte("k"))
	n.SetDraining()
	n.SetUp()
	if c.Store(tk, []byte("k"), nil, bulkOf("old")) {
		t.Fatal("a reply read across a lost link was stored")
	}
	// A node flush (FLUSHALL) as well.
	tk = c.Begin(n, []byte("k"))
	n.Flush()
	if c.Store(tk, []byte("k"), nil, bulkOf("old")) {
		t.Fatal("a reply read across a flush was stored")
	}
	tk = c.Begin(n, []byte("k"))
	c.Flush()
	if c.Store(tk, []byte("k"), nil, bulkOf("old")) {
		t.Fatal("a reply read across a cache flush was stored")
	}
}

func TestNodeStates(t *testing.T) {
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 2}, nil)
	a, b := c.Node("a"), upNode(c, "b")
	if c.Begin(a, []byte("k")).Valid() {
		t.Fatal("ticket for a node whose link has not confirmed tracking")
	}
	a.SetUp()
	store(t, c, a, "ka", "", bulkOf("1"))
	store(t, c, b, "kb", "", bulkOf("2"))
	if _, ok := lookup(c, b, "ka", "", false); ok {
		t.Fatal("an entry of node a served for node b (the key moved)")
	}
	a.SetDraining()
	if _, ok := lookup(c, a, "ka", "", false); ok {
		t.Fatal("entry served while its node's link is down")
	}
	if c.Begin(a, []byte("ka")).Valid() {
		t.Fatal("ticket while the link is down")
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d after node a drained, want 1 (b's)", c.Len())
	}
	a.SetUp()
	if _, ok := lookup(c, a, "ka", "", false); ok {
		t.Fatal("entry from before the link was lost served after it came back")
	}
	c.Remove(b)
	if _, ok := lookup(c, b, "kb", "", false); ok || c.Len() != 0 {
		t.Fatalf("removed node's entry kept: Len %d", c.Len())
	}
	b.SetUp()
	if b.State() != Gone {
		t.Fatal("a removed node came back up")
	}
}

// TestMemoryBound fills the cache far past its size with entries of the biggest size it
// takes: entries stay within MaxEntries, their bytes within MaxEntries × (MaxValueBytes +
// EntryOverhead), and so does the heap the cache holds.
func TestMemoryBound(t *testing.T) {
	const maxEntries, maxValue = 2000, 4096
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c := New(Config{MaxEntries: maxEntries, MaxValueBytes: maxValue, Shards: 8}, nil)
	n := upNode(c, "a")
	val := make([]byte, maxValue-64)
	for i := range val {
		val[i] = 'x'
	}
	reply := bulkOf(string(val))
	for i := range 10 * maxEntries {
		key := fmt.Sprintf("key:%08d", i)
		field := ""
		if i%3 == 0 {
			field = "f"
		}
		store(t, c, n, key, field, reply)
	}
	if c.Len() > maxEntries {
		t.Fatalf("Len = %d > max_entries %d", c.Len(), maxEntries)
	}
	bound := int64(maxEntries) * (maxValue + EntryOverhead)
	if c.Bytes() > bound {
		t.Fatalf("Bytes = %d > bound %d", c.Bytes(), bound)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if held > bound {
		t.Fatalf("heap grew by %d bytes holding the cache, bound %d", held, bound)
	}
	runtime.KeepAlive(c)
	t.Logf("entries %d, accounted %d bytes, heap %d bytes, bound %d", c.Len(), c.Bytes(), held, bound)
}

// TestMaxBytesBoundsTheWhole: max_memory holds however many entries max_entries allows and
// however big each may be, the most recently stored kept.
func TestMaxBytesBoundsTheWhole(t *testing.T) {
	const maxBytes = 1 << 20
	c := New(Config{MaxEntries: 1_000_000, MaxValueBytes: 64 << 10, Shards: 4, MaxBytes: maxBytes}, nil)
	n := upNode(c, "a")
	reply := bulkOf(strings.Repeat("x", 16<<10))
	for i := range 1000 {
		store(t, c, n, fmt.Sprintf("key:%08d", i), "", reply)
		if c.Bytes() > maxBytes {
			t.Fatalf("after %d stores: Bytes = %d > max %d", i+1, c.Bytes(), maxBytes)
		}
	}
	if c.Len() == 0 || c.Len() > maxBytes/(16<<10) {
		t.Fatalf("Len = %d", c.Len())
	}
	if _, ok := c.Lookup(n, []byte("key:00000999"), nil, false, nil); !ok {
		t.Fatal("the last stored key was evicted")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New(Config{MaxEntries: 3, MaxValueBytes: 64, Shards: 1}, nil)
	n := upNode(c, "a")
	store(t, c, n, "a", "", bulkOf("1"))
	store(t, c, n, "b", "", bulkOf("2"))
	store(t, c, n, "c", "", bulkOf("3"))
	lookup(c, n, "a", "", false) // a is now the most recent; b the least
	store(t, c, n, "d", "", bulkOf("4"))
	if _, ok := lookup(c, n, "b", "", false); ok {
		t.Fatal("b, the least recently used, was kept")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := lookup(c, n, k, "", false); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
}

// TestConcurrent runs lookups, stores, invalidations and link changes at once, for -race, and
// checks the one rule that matters under them: once an invalidation returned, no reply taken
// before it is served.
func TestConcurrent(t *testing.T) {
	c := New(Config{MaxEntries: 256, MaxValueBytes: 64, Shards: 4}, nil)
	n := upNode(c, "a")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := []byte("k" + strconv.Itoa((i+w)%64))
				var ok bool
				if buf, ok = c.Lookup(n, key, nil, false, buf[:0]); !ok {
					c.Store(c.Begin(n, key), key, nil, bulkOf("v"))
				}
			}
		}()
	}
	for i := range 2000 {
		key := []byte("k" + strconv.Itoa(i%64))
		tk := c.Begin(n, key)
		c.Invalidate(key)
		if c.Store(tk, key, nil, bulkOf("stale")) {
			t.Fatal("stored across an invalidation")
		}
		if i%100 == 0 {
			n.SetDraining()
			n.SetUp()
		}
	}
	close(stop)
	wg.Wait()
	if c.Len() > 256 {
		t.Fatalf("Len %d", c.Len())
	}
}

func TestLookupAllocs(t *testing.T) {
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 4}, nil)
	n := upNode(c, "a")
	store(t, c, n, "k", "", bulkOf("value"))
	store(t, c, n, "h", "f", bulkOf("value"))
	key, h, f := []byte("k"), []byte("h"), []byte("f")
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(1000, func() {
		buf, _ = c.Lookup(n, key, nil, false, buf[:0])
		buf, _ = c.Lookup(n, h, f, false, buf[:0])
	}); a != 0 {
		t.Fatalf("a hit allocates %v times", a)
	}
}

func BenchmarkLookupHit(b *testing.B) {
	c := New(Config{MaxEntries: 100000, MaxValueBytes: 1024, Shards: 32}, nil)
	n := upNode(c, "a")
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i))
		store(b, c, n, string(keys[i]), "", bulkOf("some value of a few bytes"))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 64)
		i := 0
		for pb.Next() {
			var ok bool
			if buf, ok = c.Lookup(n, keys[i%len(keys)], nil, false, buf[:0]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
