package cache

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/internal/redistest"
)

func testLog(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: testWriter{t}, Level: hclog.Debug})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func dialer(addr string) Dialer {
	opts := backend.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, RESP3: true}
	return func(ctx context.Context) (net.Conn, error) { return backend.DialContext(ctx, opts) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get is a GET through the cache as the proxy does it: a hit, or the node's reply stored.
func get(t *testing.T, c *Cache, n *Node, srv *redistest.Server, key string) string {
	t.Helper()
	if b, ok := c.Lookup(n, []byte(key), nil, false, nil); ok {
		return string(b)
	}
	tk := c.Begin(n, []byte(key))
	v, err := srv.Do("GET", key)
	reply := []byte("$-1\r\n")
	if err == nil {
		reply = bulkOf(v.(string))
	} else if err.Error() != "redis: nil" {
		t.Fatalf("GET %s: %v", key, err)
	}
	c.Store(tk, []byte(key), nil, reply)
	return string(reply)
}

// trackingID is the id of the link's connection on srv.
func trackingID(t *testing.T, srv *redistest.Server) string {
	t.Helper()
	ids := srv.TrackingClients(t)
	if len(ids) != 1 {
		t.Fatalf("%d tracking clients, want 1", len(ids))
	}
	return ids[0]
}

func TestLinkInvalidates(t *testing.T) {
	srv := redistest.Start(t)
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 4}, nil)
	n := c.Node(srv.Addr)
	l := Track(n, dialer(srv.Addr), LinkTimings{Ping: 100 * time.Millisecond}, testLog(t))
	defer l.Stop()
	waitFor(t, "the link to confirm tracking", func() bool { return n.State() == Up })

	if _, err := srv.Do("SET", "k", "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 cached", func() bool {
		get(t, c, n, srv, "k")
		_, ok := c.Lookup(n, []byte("k"), nil, false, nil)
		return ok
	})
	if _, err := srv.Do("SET", "k", "v2"); err != nil { // written on the server directly
		t.Fatal(err)
	}
	waitFor(t, "the direct write to be seen", func() bool { return get(t, c, n, srv, "k") == string(bulkOf("v2")) })

	// FLUSHALL is a null invalidation: the node's entries go.
	get(t, c, n, srv, "k")
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FLUSHALL to be seen", func() bool {
		_, ok := c.Lookup(n, []byte("k"), nil, false, nil)
		return !ok
	})

	// The link's connection killed, then a direct write: the node's entries were flushed
	// with the link, and it is bypassed until the link is back: never the old value.
	for round := range 5 {
		if _, err := srv.Do("SET", "k", "old"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "link up and old cached", func() bool {
			get(t, c, n, srv, "k")
			_, ok := c.Lookup(n, []byte("k"), nil, false, nil)
			return ok
		})
		if _, err := srv.Do("CLIENT", "KILL", "ID", trackingID(t, srv)); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Do("SET", "k", "new"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the link to notice", func() bool { return n.State() != Up || get(t, c, n, srv, "k") != string(bulkOf("old")) })
		for range 20 {
			if got := get(t, c, n, srv, "k"); got != string(bulkOf("new")) {
				t.Fatalf("round %d: stale read %q after the tracking link was killed", round, got)
			}
		}
	}
}

// TestLinkNodeDown: a node that goes leaves its entries flushed and the node bypassed
// until its link is back.
func TestLinkNodeDown(t *testing.T) {
	srv := redistest.Start(t)
	c := New(Config{MaxEntries: 100, MaxValueBytes: 1024, Shards: 4}, nil)
	n := c.Node(srv.Addr)
	l := Track(n, dialer(srv.Addr), LinkTimings{Ping: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, testLog(t))
	defer l.Stop()
	waitFor(t, "up", func() bool { return n.State() == Up })
	get(t, c, n, srv, "k")
	srv.Kill()
	waitFor(t, "draining", func() bool { return n.State() == Draining })
	if c.Len() != 0 {
		t.Fatalf("%d entries kept after the node went", c.Len())
	}
	srv.Restart()
	waitFor(t, "up again", func() bool { return n.State() == Up })
}

// The pushes a RESP3 tracking link receives, as Redis 7.0 sends them.
func TestPushReaderInvalidation(t *testing.T) {
	var p PushReader
	for _, tc := range []struct {
		frame     string
		keys      []string
		flush, ok bool
		wantErr   bool
	}{
		{">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$2\r\nbc\r\n", []string{"a", "bc"}, false, true, false},
		{">2\r\n$10\r\ninvalidate\r\n_\r\n", nil, true, true, false},
		{">2\r\n$10\r\ninvalidate\r\n*-1\r\n", nil, true, true, false},
		{"+PONG\r\n", nil, false, false, false},
		{">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", nil, false, false, false},
		{">2\r\n$10\r\ninvalidate\r\n:1\r\n", nil, false, false, true},
	} {
		keys, flush, ok, err := p.Invalidation([]byte(tc.frame))
		if (err != nil) != tc.wantErr || flush != tc.flush || ok != tc.ok || len(keys) != len(tc.keys) {
			t.Fatalf("%q: keys %q flush %v ok %v err %v, want %q %v %v err %v", tc.frame, keys, flush, ok, err, tc.keys, tc.flush, tc.ok, tc.wantErr)
		}
		for i, k := range keys {
			if string(k) != tc.keys[i] {
				t.Fatalf("%q: key %d = %q, want %q", tc.frame, i, k, tc.keys[i])
			}
		}
	}
}
