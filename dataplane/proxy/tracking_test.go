package proxy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/internal/redistest"
)

// push is the RESP3 invalidation of keys as the proxy sends it.
func push(keys ...string) string {
	s := ">2\r\n$10\r\ninvalidate\r\n*" + strconv.Itoa(len(keys)) + "\r\n"
	for _, k := range keys {
		s += "$" + strconv.Itoa(len(k)) + "\r\n" + k + "\r\n"
	}
	return s
}

const nullPush = ">2\r\n$10\r\ninvalidate\r\n_\r\n"

// tracker is a RESP3 client of e with CLIENT TRACKING ON and opts.
func tracker(t *testing.T, e *env, opts ...string) *redistest.FrameConn {
	t.Helper()
	c := redistest.DialFrames(t, e.addr)
	if r := c.Do("HELLO", "3"); r[0] != '%' {
		t.Fatalf("HELLO 3: %q", r)
	}
	if r := string(c.Do(append([]string{"CLIENT", "TRACKING", "ON"}, opts...)...)); r != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING ON %v: %q", opts, r)
	}
	return c
}

func expectFrame(t *testing.T, got []byte, want string) {
	t.Helper()
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func set(t *testing.T, e *env, k, v string) {
	t.Helper()
	if err := e.client.Set(ctx, k, v, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// Default mode: a key the client read is invalidated once when anyone writes it, through the
// proxy or straight on the server; a key it did not read is not.
func TestClientTrackingDefaultMode(t *testing.T) {
	e := startEnv(t, envOpts{})
	c := tracker(t, e)
	expectFrame(t, c.Do("GET", "a"), "_\r\n")
	set(t, e, "unread", "1")
	set(t, e, "a", "1")
	expectFrame(t, c.Read(), push("a"))
	set(t, e, "a", "2") // not read again since: not tracked any more
	expectFrame(t, c.Do("GET", "b"), "_\r\n")
	set(t, e, "b", "x")
	if _, err := ownerOf(t, e, "b").Do("SET", "b", "direct"); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, c.Read(), push("b"))
	expectFrame(t, c.Do("GET", "b"), "$6\r\ndirect\r\n")
	if _, err := ownerOf(t, e, "b").Do("SET", "b", "again"); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, c.Read(), push("b")) // a write made on the server, not through the proxy
	info := string(c.Do("CLIENT", "TRACKINGINFO"))
	if !strings.Contains(info, "on") || !strings.Contains(info, ":0\r\n") {
		t.Fatalf("TRACKINGINFO: %q", info)
	}
	expectFrame(t, c.Do("CLIENT", "GETREDIR"), ":0\r\n")
	expectFrame(t, c.Do("CLIENT", "TRACKING", "OFF"), "+OK\r\n")
	expectFrame(t, c.Do("CLIENT", "GETREDIR"), ":-1\r\n")
}

func TestClientTrackingBcastPrefix(t *testing.T) {
	e := startEnv(t, envOpts{})
	c := tracker(t, e, "BCAST", "PREFIX", "user:")
	set(t, e, "user:1", "1")
	expectFrame(t, c.Read(), push("user:1"))
	set(t, e, "other:1", "1")
	set(t, e, "user:2", "1")
	expectFrame(t, c.Read(), push("user:2"))
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "us"),
		"-ERR Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap.\r\n")
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "PREFIX", "x"), "-ERR PREFIX option requires BCAST mode to be enabled\r\n")
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"), "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n")
}

func TestClientTrackingOptin(t *testing.T) {
	e := startEnv(t, envOpts{})
	c := tracker(t, e, "OPTIN")
	expectFrame(t, c.Do("GET", "k1"), "_\r\n")
	expectFrame(t, c.Do("CLIENT", "CACHING", "yes"), "+OK\r\n")
	expectFrame(t, c.Do("GET", "k2"), "_\r\n")
	expectFrame(t, c.Do("GET", "k3"), "_\r\n") // CACHING yes applies to one command
	set(t, e, "k1", "1")
	set(t, e, "k3", "1")
	set(t, e, "k2", "1")
	expectFrame(t, c.Read(), push("k2"))
	expectFrame(t, c.Do("CLIENT", "CACHING", "no"), "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n")
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "OPTOUT"),
		"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n")
}

// NOLOOP: the client's own writes through the proxy do not invalidate it; others' do.
func TestClientTrackingNoloop(t *testing.T) {
	e := startEnv(t, envOpts{})
	c := tracker(t, e, "NOLOOP")
	expectFrame(t, c.Do("GET", "mine"), "_\r\n")
	expectFrame(t, c.Do("SET", "mine", "1"), "+OK\r\n")
	expectFrame(t, c.Do("GET", "theirs"), "_\r\n")
	set(t, e, "theirs", "1")
	expectFrame(t, c.Read(), push("theirs")) // and no push for mine before it
}

// A RESP2 client redirects its invalidations to another client subscribed to
// __redis__:invalidate, named by the proxy's CLIENT ID.
func TestClientTrackingRedirectRESP2(t *testing.T) {
	e := startEnv(t, envOpts{})
	sub := redistest.DialFrames(t, e.addr)
	id := strings.TrimSpace(string(sub.Do("CLIENT", "ID")[1:]))
	sub.Do("SUBSCRIBE", "__redis__:invalidate")
	c := redistest.DialFrames(t, e.addr)
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "REDIRECT", "999999"), "-ERR The client ID you want redirect to does not exist\r\n")
	expectFrame(t, c.Do("CLIENT", "TRACKING", "ON", "REDIRECT", id), "+OK\r\n")
	expectFrame(t, c.Do("CLIENT", "GETREDIR"), ":"+id+"\r\n")
	expectFrame(t, c.Do("GET", "r"), "$-1\r\n")
	set(t, e, "r", "1")
	expectFrame(t, sub.Read(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nr\r\n")
}

// A tracking link killed on its server loses writes until it is back: every tracking client
// is told to flush when it is lost and again when it is back, and tracking goes on.
func TestClientTrackingLinkKilledFlushes(t *testing.T) {
	e := startEnv(t, envOpts{})
	c := tracker(t, e)
	expectFrame(t, c.Do("GET", "k"), "_\r\n")
	srv := ownerOf0(e)
	list, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	for _, line := range strings.Split(list.(string), "\n") {
		if strings.Contains(line, "flags=t") || strings.Contains(line, "flags=Bt") || strings.Contains(line, "flags=tB") {
			f := strings.Fields(line)
			if _, err := srv.Do("CLIENT", "KILL", "ID", strings.TrimPrefix(f[0], "id=")); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no tracking connection on %s: %s", srv.Addr, list)
	}
	expectFrame(t, c.Read(), nullPush)
	// Back up: whatever was read while it was down may have missed a write, so again.
	expectFrame(t, c.Read(), nullPush)
	expectFrame(t, c.Do("GET", "k"), "_\r\n")
	set(t, e, "k", "after")
	expectFrame(t, c.Read(), push("k"))
}

func ownerOf0(e *env) *redistest.Server { return e.servers[0] }

// Past the keys one session may track, one it tracked is evicted by invalidating it.
func TestClientTrackingSessionKeyBound(t *testing.T) {
	old := proxy.SetTrackMaxSessionKeys(2)
	t.Cleanup(func() { proxy.SetTrackMaxSessionKeys(old) })
	e := startEnv(t, envOpts{})
	c := tracker(t, e)
	c.Do("GET", "b1")
	c.Do("GET", "b2")
	expectFrame(t, c.Do("GET", "b3"), "_\r\n")
	if got := string(c.Read()); got != push("b1") && got != push("b2") {
		t.Fatalf("got %q, want an invalidation of b1 or b2 after GET b3's reply", got)
	}
}

// A RESP3 target of REDIRECT gets the pushes though it does not track itself; once it is
// gone, the tracking client is told its redirect broke.
func TestClientTrackingRedirectRESP3(t *testing.T) {
	e := startEnv(t, envOpts{})
	target := redistest.DialFrames(t, e.addr)
	target.Do("HELLO", "3")
	id := strings.TrimSpace(string(target.Do("CLIENT", "ID")[1:]))
	c := tracker(t, e, "REDIRECT", id)
	expectFrame(t, c.Do("GET", "r3"), "_\r\n")
	set(t, e, "r3", "1")
	expectFrame(t, target.Read(), push("r3"))
	expectFrame(t, target.Do("QUIT"), "+OK\r\n")
	expectFrame(t, c.Do("GET", "r4"), "_\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		set(t, e, "r4", "1") // until the proxy has seen the target go
		got := string(c.Read())
		if got == ">2\r\n$21\r\ntracking-redir-broken\r\n:"+id+"\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tracking-redir-broken; last %q", got)
		}
		c.Send([]string{"GET", "r4"})
	}
}
