package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

const nopermKey = "-NOPERM No permissions to access a key"

// nopermCmd is the refusal of cmd (or cmd|sub) to user, as Redis 7.2+ words it.
func nopermCmd(user, cmd string) string {
	return "-NOPERM User " + user + " has no permissions to run the '" + cmd + "' command"
}

// aclEnv serves one cluster "acl" through a proxy.Server, so that tests can reload its rules.
type aclEnv struct {
	srv  *proxy.Server
	spec route.ClusterSpec
	ver  uint64
	addr string
}

func startACLEnv(t *testing.T, users map[string]string, rights map[string]route.UserRights) *aclEnv {
	t.Helper()
	r := redistest.Start(t)
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: r.Addr, Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	e := &aclEnv{srv: proxy.NewServer(proxy.ServerOptions{Logger: testLogger(t)})}
	t.Cleanup(e.srv.Close)
	e.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	e.spec = route.ClusterSpec{Name: "acl",
		Table:   &route.Table{Version: 1, Ring: ring},
		Listen:  route.ListenSettings{Addr: e.addr, Proto: "tcp"},
		Access:  route.AccessSettings{Users: users, UserRights: rights},
		Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second}}
	e.apply(t)
	return e
}

func (e *aclEnv) apply(t *testing.T) {
	t.Helper()
	e.ver++
	e.spec.Table = &route.Table{Version: e.ver, Ring: e.spec.Table.Ring}
	if err := e.srv.Apply(&route.Snapshot{Version: e.ver, Clusters: []route.ClusterSpec{e.spec}}); err != nil {
		t.Fatal(err)
	}
}

func (e *aclEnv) dial(t *testing.T) *rawConn {
	t.Helper()
	var nc net.Conn
	var err error
	for range 100 {
		if nc, err = net.Dial("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// expect sends each command (inline) and checks the first line of its reply.
func expect(t *testing.T, c *rawConn, steps ...[2]string) {
	t.Helper()
	for _, s := range steps {
		c.send(s[0] + "\r\n")
		got := c.line()
		if !strings.HasPrefix(got, s[1]) {
			t.Fatalf("%s: %q, want %q...", s[0], got, s[1])
		}
		drainReply(t, c, got)
	}
}

// drainReply reads the rest of a reply whose first line was first.
func drainReply(t *testing.T, c *rawConn, first string) {
	t.Helper()
	if len(first) < 2 {
		return
	}
	n, err := strconv.Atoi(first[1:])
	if err != nil || n < 0 {
		return
	}
	switch first[0] {
	case '$':
		if _, err := io.ReadFull(c.br, make([]byte, n+2)); err != nil {
			t.Fatal(err)
		}
	case '*', '~', '>':
		for range n {
			drainReply(t, c, c.line())
		}
	case '%':
		for range 2 * n {
			drainReply(t, c, c.line())
		}
	}
}

// TestUserRightsEnforced: a user with rules is refused commands and keys outside them, with
// Redis's texts, everywhere a command can run: alone, split over keys, in MULTI (refused at
// queue time, EXEC aborts); users without rules, and the default user, run everything.
func TestUserRightsEnforced(t *testing.T) {
	e := startACLEnv(t, map[string]string{"default": "d", "app": "a", "ops": "o", "tx": "t"},
		map[string]route.UserRights{
			"app": {Commands: "+@all -@dangerous", Keys: []string{"app:*"}},
			"tx":  {Commands: "+@all -exec"},
		})
	app := e.dial(t)
	expect(t, app,
		[2]string{"GET app:1", "-NOAUTH"},
		[2]string{"AUTH app a", "+OK"},
		[2]string{"SET app:1 v", "+OK"},
		[2]string{"GET app:1", "$1"},
		[2]string{"GET x", nopermKey},
		[2]string{"MGET app:1 x", nopermKey},
		[2]string{"MSET app:1 v x v", nopermKey},
		[2]string{"DEL x app:1", nopermKey},
		[2]string{"EVAL return 1 x", nopermKey},
		[2]string{"BLPOP x 1", nopermKey},
		[2]string{"SCAN 0", nopermKey},
		[2]string{"KEYS *", nopermCmd("app", "keys")},
		[2]string{"FLUSHALL", nopermCmd("app", "flushall")},
		[2]string{"CONFIG SET cluster.acl.slowlog-max-len 5", nopermCmd("app", "config|set")},
		[2]string{"SLOWLOG RESET", nopermCmd("app", "slowlog|reset")},
		[2]string{"HOTKEY GET", nopermCmd("app", "hotkey|get")},
		[2]string{"HOTKEY ENABLE", nopermCmd("app", "hotkey|enable")},
		[2]string{"MULTI", "+OK"},
		[2]string{"SET app:2 v", "+QUEUED"},
		[2]string{"SET x v", nopermKey},
		[2]string{"EXEC", "-EXECABORT Transaction discarded because of previous errors."},
		[2]string{"EXISTS app:2", ":0"},
	)
	// A refused EXEC aborts, and discards the transaction, as in Redis.
	tx := e.dial(t)
	expect(t, tx,
		[2]string{"AUTH tx t", "+OK"},
		[2]string{"MULTI", "+OK"},
		[2]string{"SET app:3 v", "+QUEUED"},
		[2]string{"EXEC", "-EXECABORT Transaction discarded because of: NOPERM User tx has no permissions to run the 'exec' command"},
		[2]string{"DISCARD", "-ERR DISCARD without MULTI"},
		[2]string{"EXISTS app:3", ":0"},
	)
	ops := e.dial(t)
	expect(t, ops,
		[2]string{"AUTH ops o", "+OK"},
		[2]string{"GET x", "$-1"},
		[2]string{"CONFIG SET cluster.acl.slowlog-max-len 5", "+OK"},
		[2]string{"HOTKEY GET", "*"},
	)
	def := e.dial(t)
	expect(t, def,
		[2]string{"AUTH d", "+OK"},
		[2]string{"MGET app:1 x", "*2"},
		[2]string{"HOTKEY RESET", "+OK"},
	)
	// Subscribed mode checks its commands too.
	sub := e.dial(t)
	e.spec.Access.UserRights = map[string]route.UserRights{"app": {Commands: "+@all -psubscribe"}}
	e.apply(t)
	expect(t, sub, [2]string{"AUTH app a", "+OK"}, [2]string{"SUBSCRIBE ch", "*3"})
	expect(t, sub, [2]string{"PSUBSCRIBE c*", nopermCmd("app", "psubscribe")})
}

// TestUserRightsReload: a reload that changes a user's rules applies to its sessions already
// logged in, from their next command; a user the reload removes may run nothing but log in
// again; a reload that gives rules to a user without any restricts it too.
func TestUserRightsReload(t *testing.T) {
	e := startACLEnv(t, map[string]string{"app": "a", "ops": "o"},
		map[string]route.UserRights{"app": {Commands: "+@all"}})
	app, ops := e.dial(t), e.dial(t)
	expect(t, app, [2]string{"AUTH app a", "+OK"}, [2]string{"SET app:1 v", "+OK"})
	expect(t, ops, [2]string{"AUTH ops o", "+OK"}, [2]string{"SET x v", "+OK"})

	e.spec.Access.UserRights = map[string]route.UserRights{
		"app": {Commands: "-@all +get"},
		"ops": {Keys: []string{"ops:*"}},
	}
	e.apply(t)
	expect(t, app, [2]string{"GET app:1", "$1"}, [2]string{"SET app:1 v", nopermCmd("app", "set")})
	expect(t, ops, [2]string{"SET x v", nopermKey}, [2]string{"SET ops:1 v", "+OK"})

	// Passwords change on the listener that exists: the session of the removed user is
	// refused from its next command, the removed user cannot log in, the others go by the
	// new rules.
	e.spec.Access.Users = map[string]string{"ops": "o2"}
	e.spec.Access.UserRights = map[string]route.UserRights{"ops": {Commands: "+@all -get"}}
	e.apply(t)
	app.send("PING\r\n")
	if l, _ := app.br.ReadString('\n'); !strings.HasPrefix(l, nopermCmd("app", "ping")) {
		t.Fatalf("session of a removed user answered %q", l)
	}
	app = e.dial(t)
	expect(t, app,
		[2]string{"AUTH app a", "-WRONGPASS"},
		[2]string{"AUTH ops o2", "+OK"},
		[2]string{"PING", "+PONG"},
		[2]string{"GET app:1", nopermCmd("ops", "get")},
	)
	// A subscribed client follows a reload too.
	sub := e.dial(t)
	expect(t, sub, [2]string{"AUTH ops o2", "+OK"}, [2]string{"SUBSCRIBE ch", "*3"})
	e.spec.Access.UserRights = map[string]route.UserRights{"ops": {Commands: "+@all -get -psubscribe"}}
	e.apply(t)
	expect(t, sub, [2]string{"PSUBSCRIBE c*", nopermCmd("ops", "psubscribe")}, [2]string{"SUBSCRIBE c2", "*3"})

	// Rules removed: everything again.
	e.spec.Access.UserRights = nil
	e.apply(t)
	expect(t, app, [2]string{"GET app:1", "$1"}, [2]string{"RESET", "+RESET"}, [2]string{"GET app:1", "-NOAUTH"})
}

// TestUserRightsAllocateNothing: a user with rules pays its check without allocating (GET and
// MGET of allowed keys, pipelined), as the hot path of a user without rules.
func TestUserRightsAllocateNothing(t *testing.T) {
	e := startACLEnv(t, map[string]string{"app": "a"},
		map[string]route.UserRights{"app": {Commands: "+@all -@dangerous -config|set", Keys: []string{"other:*", "app:*"}}})
	c := e.dial(t)
	expect(t, c, [2]string{"AUTH app a", "+OK"}, [2]string{"SET app:k vvvv", "+OK"})
	batch := []byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$5\r\napp:k\r\n*3\r\n$4\r\nMGET\r\n$5\r\napp:k\r\n$5\r\napp:k\r\n", 8))
	want := strings.Repeat("$4\r\nvvvv\r\n*2\r\n$4\r\nvvvv\r\n$4\r\nvvvv\r\n", 8)
	buf := make([]byte, len(want))
	roundTrip := func() {
		if _, err := c.nc.Write(batch); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.br, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip()
	}
	if string(buf) != want {
		t.Fatalf("replies %q", buf)
	}
	if n := testing.AllocsPerRun(300, roundTrip); n >= 0.5 {
		t.Errorf("%.2f allocations per round trip of a user with rules, want 0", n)
	}
}

// TestCommandInfoCategories: COMMAND INFO through the proxy lists a command's ACL categories,
// as the server does, so that clients can see what a rule like -@dangerous covers.
func TestCommandInfoCategories(t *testing.T) {
	e := startACLEnv(t, nil, nil)
	direct := redistest.Start(t)
	c := e.dial(t)
	for _, name := range []string{"get", "flushall", "config", "blpop"} {
		want, err := direct.Do("COMMAND", "INFO", name)
		if err != nil {
			t.Fatal(err)
		}
		wantCats := fmt.Sprint(want.([]any)[0].([]any)[6])
		c.send("COMMAND INFO " + name + "\r\n")
		if l := c.line(); l != "*1" {
			t.Fatalf("COMMAND INFO %s: %q", name, l)
		}
		if l := c.line(); l != "*10" {
			t.Fatalf("COMMAND INFO %s: entry %q", name, l)
		}
		for range 6 { // name, arity, flags, first, last, step
			drainReply(t, c, c.line())
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(c.line(), "*"))
		var got []any
		for range n {
			got = append(got, strings.TrimPrefix(c.line(), "+"))
		}
		for range 3 {
			drainReply(t, c, c.line())
		}
		if fmt.Sprint(got) != wantCats {
			t.Errorf("COMMAND INFO %s: categories %v, redis says %s", name, got, wantCats)
		}
	}
}
