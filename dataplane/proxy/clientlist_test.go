package proxy_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// bulkText is the text of a bulk string reply frame.
func bulkText(t *testing.T, f []byte) string {
	t.Helper()
	s := string(f)
	if !strings.HasPrefix(s, "$") {
		t.Fatalf("not a bulk string: %q", s)
	}
	_, body, _ := strings.Cut(s, "\r\n")
	return strings.TrimSuffix(body, "\r\n")
}

// clientLine parses one CLIENT LIST line into its keys, in order, and values.
func clientLine(line string) (keys []string, vals map[string]string) {
	vals = map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

// lineOf is the line of client id in a CLIENT LIST text, "" when it is not listed.
func lineOf(text, id string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "id="+id+" ") {
			return l
		}
	}
	return ""
}

func idOf(t *testing.T, c *redistest.FrameConn) string {
	t.Helper()
	return strings.TrimSuffix(strings.TrimPrefix(string(c.Do("CLIENT", "ID")), ":"), "\r\n")
}

// waitList waits until CLIENT LIST (args after LIST) from c satisfies ok.
func waitList(t *testing.T, c *redistest.FrameConn, ok func(text string) bool, what string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text := bulkText(t, c.Do(append([]string{"CLIENT", "LIST"}, args...)...))
		if ok(text) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: CLIENT LIST %q never did; last:\n%s", what, args, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClientListFieldsAsRedis: CLIENT LIST and CLIENT INFO list the proxy's own clients with
// Redis 7.0's fields in Redis's order (compared with redis-server's own lines), filled with the
// client's state (its id, address, name, the command running, qbuf); their bad arguments are
// answered with redis-server's errors, as are CLIENT KILL's.
func TestClientListFieldsAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	ref := redistest.Start(t)
	p := redistest.DialFrames(t, e.addr)
	r := redistest.DialFrames(t, ref.Addr)
	other := redistest.DialFrames(t, e.addr)
	otherID := idOf(t, other)
	other.Do("CLIENT", "SETNAME", "other")
	myID := idOf(t, p)

	for _, sub := range []string{"INFO", "LIST"} {
		refKeys, refVals := clientLine(strings.Split(bulkText(t, r.Do("CLIENT", sub)), "\n")[0])
		text := bulkText(t, p.Do("CLIENT", sub))
		if !strings.HasSuffix(text, "\n") {
			t.Fatalf("CLIENT %s: %q does not end with a newline, as Redis's", sub, text)
		}
		mine := lineOf(text, myID)
		keys, vals := clientLine(mine)
		if strings.Join(keys, " ") != strings.Join(refKeys, " ") {
			t.Fatalf("CLIENT %s fields:\n%q\nredis-server's:\n%q", sub, keys, refKeys)
		}
		want := map[string]string{"flags": "N", "db": "0", "sub": "0", "psub": "0", "ssub": "0",
			"multi": "-1", "qbuf": refVals["qbuf"], "cmd": "client|" + strings.ToLower(sub),
			"user": "default", "redir": "-1", "resp": "2", "events": "r", "name": "", "obl": "0", "oll": "0", "omem": "0"}
		for k, v := range want {
			if vals[k] != v {
				t.Errorf("CLIENT %s: %s=%q, want %q (line %q)", sub, k, vals[k], v, mine)
			}
		}
		if la := vals["laddr"]; la != e.addr {
			t.Errorf("CLIENT %s: laddr=%q, want the proxy's %q", sub, la, e.addr)
		}
		if sub == "INFO" && strings.Count(text, "\n") != 1 {
			t.Errorf("CLIENT INFO lists more than this client: %q", text)
		}
		if sub == "LIST" {
			ol := lineOf(text, otherID)
			if _, ov := clientLine(ol); ov["name"] != "other" || ov["cmd"] != "client|setname" {
				t.Errorf("the other client's line %q: want name=other cmd=client|setname", ol)
			}
		}
	}
	// In RESP3 both are verbatim strings, as Redis's.
	p3, r3 := redistest.DialFrames(t, e.addr), redistest.DialFrames(t, ref.Addr)
	p3.Do("HELLO", "3")
	r3.Do("HELLO", "3")
	for _, sub := range []string{"INFO", "LIST"} {
		got, want := string(p3.Do("CLIENT", sub)), string(r3.Do("CLIENT", sub))
		if got[:1] != want[:1] || !strings.Contains(got, "\r\ntxt:id=") || !strings.Contains(got, " resp=3\n") {
			t.Errorf("CLIENT %s in RESP3 = %q, redis-server's %q", sub, got, want)
		}
	}
	if got := bulkText(t, p.Do("CLIENT", "LIST", "ID", otherID, "99999", myID)); !strings.HasPrefix(got, "id="+otherID+" ") ||
		lineOf(got, myID) == "" || strings.Count(got, "\n") != 2 {
		t.Errorf("CLIENT LIST ID %s 99999 %s = %q", otherID, myID, got)
	}
	for _, args := range [][]string{
		{"CLIENT", "LIST", "TYPE", "foo"},
		{"CLIENT", "LIST", "ID", "x"},
		{"CLIENT", "LIST", "ID"},
		{"CLIENT", "LIST", "x"},
		{"CLIENT", "LIST", "ID", "0"},
		{"CLIENT", "LIST", "TYPE", "master"},
		{"CLIENT", "INFO", "x"},
		{"CLIENT", "KILL"},
		{"CLIENT", "KILL", "ID", "10", "wrong_arg"},
		{"CLIENT", "KILL", "ID", "str"},
		{"CLIENT", "KILL", "ID", "-1"},
		{"CLIENT", "KILL", "ID", "0"},
		{"CLIENT", "KILL", "TYPE", "wrong_type"},
		{"CLIENT", "KILL", "USER", "wrong_user"},
		{"CLIENT", "KILL", "SKIPME", "yes_or_no"},
		{"CLIENT", "KILL", "1.2.3.4:5"},
		{"CLIENT", "KILL", "ID", "99999"},
		{"CLIENT", "KILL", "ADDR", "1.2.3.4:5", "TYPE", "replica"},
	} {
		if got, want := string(p.Do(args...)), string(r.Do(args...)); got != want {
			t.Errorf("%q = %q, redis-server answers %q", args, got, want)
		}
	}
}

// TestClientListShowsState: another client's line shows its subscriptions (and CLIENT LIST
// TYPE pubsub lists it, TYPE normal does not), its MULTI with the commands queued, and its
// last command by name only: never a key or a password.
func TestClientListShowsState(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	p := redistest.DialFrames(t, e.addr)
	sub := redistest.DialFrames(t, e.addr)
	subID := idOf(t, sub)
	sub.Do("SUBSCRIBE", "a", "b")
	sub.Read()
	sub.Do("PSUBSCRIBE", "p*")
	text := waitList(t, p, func(text string) bool { return lineOf(text, subID) != "" }, "pubsub client listed", "TYPE", "pubsub")
	if _, v := clientLine(lineOf(text, subID)); v["sub"] != "2" || v["psub"] != "1" || v["flags"] != "P" || v["cmd"] != "psubscribe" {
		t.Errorf("subscribed client: %q, want sub=2 psub=1 flags=P cmd=psubscribe", lineOf(text, subID))
	}
	if l := lineOf(bulkText(t, p.Do("CLIENT", "LIST", "TYPE", "normal")), subID); l != "" {
		t.Errorf("CLIENT LIST TYPE normal lists the subscribed client: %q", l)
	}
	if l := lineOf(bulkText(t, p.Do("CLIENT", "LIST", "TYPE", "pubsub")), idOf(t, p)); l != "" {
		t.Errorf("CLIENT LIST TYPE pubsub lists a normal client: %q", l)
	}

	tx := redistest.DialFrames(t, e.addr)
	txID := idOf(t, tx)
	tx.Do("SET", "secretkey", "secretvalue")
	tx.Do("MULTI")
	tx.Do("INCR", "n")
	tx.Do("INCR", "n")
	_, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), txID))
	if v["multi"] != "2" || v["flags"] != "x" || v["cmd"] != "incr" {
		t.Errorf("client in MULTI: %v, want multi=2 flags=x cmd=incr", v)
	}
	tx.Do("EXEC")
	if _, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), txID)); v["multi"] != "-1" || v["flags"] != "N" || v["cmd"] != "exec" {
		t.Errorf("client after EXEC: %v, want multi=-1 flags=N cmd=exec", v)
	}
	tx.Do("AUTH", "default", "hunter2")
	text = bulkText(t, p.Do("CLIENT", "LIST"))
	for _, secret := range []string{"secretkey", "secretvalue", "hunter2"} {
		if strings.Contains(text, secret) {
			t.Errorf("CLIENT LIST shows %q:\n%s", secret, text)
		}
	}
	if _, v := clientLine(lineOf(text, txID)); v["cmd"] != "auth" || v["multi"] != "-1" {
		t.Errorf("client after EXEC and AUTH: %v, want cmd=auth multi=-1", v)
	}
}

// TestClientListFollowsEveryBatch: the command and idle time that another client's CLIENT
// LIST shows follow each batch, also when one command follows another within a second (the
// publish is skipped only when nothing changed) and after an idle time (idle counts whole
// seconds from the last batch, as Redis's does, and starts over with the next one).
func TestClientListFollowsEveryBatch(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	p := redistest.DialFrames(t, e.addr)
	c := redistest.DialFrames(t, e.addr)
	id := idOf(t, c)
	shows := func(step, cmd string, idle func(int) bool) {
		t.Helper()
		_, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), id))
		n, err := strconv.Atoi(v["idle"])
		if v["cmd"] != cmd || err != nil || !idle(n) {
			t.Fatalf("after %s: %v, want cmd=%s and another idle", step, v, cmd)
		}
	}
	fresh := func(n int) bool { return n <= 1 }
	for _, cmd := range []string{"get", "set", "get", "get", "exists", "get"} {
		args := []string{cmd, "k"}
		if cmd == "set" {
			args = append(args, "v")
		}
		c.Do(args...)
		shows(cmd, cmd, fresh)
	}
	time.Sleep(2100 * time.Millisecond)
	shows("two idle seconds", "get", func(n int) bool { return n >= 2 })
	c.Do("GET", "k")
	shows("the next GET", "get", fresh)
}

// TestClientListAgreesWithSubscribeReplies: once a client has read the confirmations of a
// (P)SUBSCRIBE or (P)UNSUBSCRIBE, another client's CLIENT LIST shows its new counts, flags
// and command at once, as with Redis (the state is published before the confirmations leave).
func TestClientListAgreesWithSubscribeReplies(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	p := redistest.DialFrames(t, e.addr)
	sub := redistest.DialFrames(t, e.addr)
	subID := idOf(t, sub)
	check := func(round int, step, sub, psub, flags string) {
		t.Helper()
		_, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), subID))
		cmd := strings.ToLower(strings.Fields(step)[0])
		if v["sub"] != sub || v["psub"] != psub || v["flags"] != flags || v["cmd"] != cmd {
			t.Fatalf("round %d, after %s: %v, want sub=%s psub=%s flags=%s cmd=%s", round, step, v, sub, psub, flags, cmd)
		}
	}
	for round := range 30 {
		sub.Do("SUBSCRIBE", "a")
		check(round, "SUBSCRIBE a", "1", "0", "P")
		sub.Do("PSUBSCRIBE", "p*")
		check(round, "PSUBSCRIBE p*", "1", "1", "P")
		sub.Do("UNSUBSCRIBE", "a")
		check(round, "UNSUBSCRIBE a", "0", "1", "P")
		sub.Do("PUNSUBSCRIBE", "p*")
		check(round, "PUNSUBSCRIBE p*", "0", "0", "N")
	}
}

// TestClientListShowsIdentityAtOnce: what CLIENT SETNAME, HELLO, AUTH and RESET change shows
// in another client's CLIENT LIST as soon as the client has its reply (they are published as
// they change, not with the batch).
func TestClientListShowsIdentityAtOnce(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret", "ops": "opspass"}})
	p := redistest.DialFrames(t, e.addr)
	p.Do("AUTH", "s3cret")
	c := redistest.DialFrames(t, e.addr)
	c.Do("AUTH", "s3cret")
	cID := idOf(t, c)
	check := func(step string, want map[string]string) {
		t.Helper()
		_, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), cID))
		for k, w := range want {
			if v[k] != w {
				t.Fatalf("after %s: %s=%q, want %q (%v)", step, k, v[k], w, v)
			}
		}
	}
	for round := range 3 {
		c.Do("CLIENT", "SETNAME", "n"+strconv.Itoa(round))
		check("CLIENT SETNAME", map[string]string{"name": "n" + strconv.Itoa(round), "user": "default", "resp": "2"})
		c.Do("AUTH", "ops", "opspass")
		check("AUTH ops", map[string]string{"user": "ops"})
		c.Do("HELLO", "3", "SETNAME", "h"+strconv.Itoa(round))
		check("HELLO 3 SETNAME", map[string]string{"name": "h" + strconv.Itoa(round), "resp": "3"})
		c.Do("RESET")
		check("RESET", map[string]string{"name": "", "user": "default", "resp": "2"})
		c.Do("AUTH", "s3cret")
	}
}

// gone waits until nc reads the end of its input: the proxy closed it.
func gone(t *testing.T, nc net.Conn, what string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := nc.Read(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset")) {
			return
		}
		if err != nil {
			t.Fatalf("%s: connection not closed: %v", what, err)
		}
	}
}

// rawClient dials the proxy and returns the connection with its client id.
func rawClient(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc, clientID(t, nc)
}

// clientID asks nc's session its CLIENT ID, and closes nc when the test ends.
func clientID(t *testing.T, nc net.Conn) string {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("CLIENT ID\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(string(buf[:n]), ":"), "\r\n")
}

// TestClientKillClosesClients: CLIENT KILL closes the proxy's client connections, chosen by
// ID, by address (the old form, +OK), by user, and all but (SKIPME yes) or including (SKIPME
// no) the caller, which gets its reply first; a killed client leaves CLIENT LIST.
func TestClientKillClosesClients(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	p := redistest.DialFrames(t, e.addr)
	myID := idOf(t, p)
	notListed := func(id string) {
		t.Helper()
		waitList(t, p, func(text string) bool { return lineOf(text, id) == "" }, "killed client "+id+" gone")
	}

	victim, id := rawClient(t, e.addr)
	if got := string(p.Do("CLIENT", "KILL", "ID", id)); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL ID %s = %q, want :1", id, got)
	}
	gone(t, victim, "killed by ID")
	notListed(id)

	victim, id = rawClient(t, e.addr)
	_, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST", "ID", id)), id))
	if got := string(p.Do("CLIENT", "KILL", v["addr"])); got != "+OK\r\n" {
		t.Fatalf("CLIENT KILL %s = %q, want +OK", v["addr"], got)
	}
	gone(t, victim, "killed by address")
	notListed(id)
	if got := string(p.Do("CLIENT", "KILL", "ADDR", v["addr"])); got != ":0\r\n" {
		t.Fatalf("CLIENT KILL ADDR of a gone client = %q, want :0", got)
	}

	// A client blocked in BLPOP and a subscribed one end too.
	blocked, bid := rawClient(t, e.addr)
	if _, err := blocked.Write([]byte("BLPOP kill-l 0\r\n")); err != nil {
		t.Fatal(err)
	}
	subd, sid := rawClient(t, e.addr)
	if _, err := subd.Write([]byte("SUBSCRIBE ch\r\n")); err != nil {
		t.Fatal(err)
	}
	waitList(t, p, func(text string) bool {
		_, b := clientLine(lineOf(text, bid))
		_, s := clientLine(lineOf(text, sid))
		return b["flags"] == "b" && s["flags"] == "P"
	}, "blocked and subscribed")
	others, _ := rawClient(t, e.addr)
	if got := string(p.Do("CLIENT", "KILL", "SKIPME", "yes")); got == ":0\r\n" || !strings.HasPrefix(got, ":") {
		t.Fatalf("CLIENT KILL SKIPME yes = %q, want the count of the others", got)
	}
	gone(t, blocked, "blocked client killed")
	gone(t, subd, "subscribed client killed")
	gone(t, others, "idle client killed")
	text := waitList(t, p, func(text string) bool { return strings.Count(text, "\n") == 1 }, "only the caller left")
	if lineOf(text, myID) == "" {
		t.Fatalf("the caller was killed with SKIPME yes: %q", text)
	}

	killer, _ := rawClient(t, e.addr)
	if _, err := killer.Write([]byte("CLIENT KILL SKIPME no\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := killer.Read(buf)
	if err != nil || string(buf[:n]) != ":2\r\n" {
		t.Fatalf("CLIENT KILL SKIPME no = %q, %v; want :2 (the caller and p)", buf[:n], err)
	}
	gone(t, killer, "the caller, SKIPME no")
}

// TestClientKillUserAndRights: CLIENT KILL USER kills that user's clients only; CLIENT LIST and
// KILL are @admin @dangerous, refused with Redis's NOPERM to a user without them, to whom
// CLIENT INFO is allowed.
func TestClientKillUserAndRights(t *testing.T) {
	e := startACLEnv(t, map[string]string{"admin": "pa", "app": "pb"},
		map[string]route.UserRights{"app": {Commands: "+@all -@dangerous"}})
	admin, app1, app2 := e.dial(t), e.dial(t), e.dial(t)
	expect(t, admin, [2]string{"AUTH admin pa", "+OK"})
	expect(t, app1, [2]string{"AUTH app pb", "+OK"})
	expect(t, app2, [2]string{"AUTH app pb", "+OK"})
	expect(t, app1,
		[2]string{"CLIENT LIST", nopermCmd("app", "client|list")},
		[2]string{"CLIENT KILL USER admin", nopermCmd("app", "client|kill")},
		[2]string{"CLIENT INFO", "$"},
	)
	expect(t, admin,
		[2]string{"CLIENT KILL USER nobody", "-ERR No such user 'nobody'"},
		[2]string{"CLIENT KILL USER app", ":2"},
		[2]string{"CLIENT KILL USER app", ":0"},
		[2]string{"PING", "+PONG"},
	)
	// Killed clients are gone at once for CLIENT LIST too, as in Redis, whether or not their
	// sessions have ended yet.
	admin.send("CLIENT LIST\r\n")
	if body := wholeReply(admin); strings.Contains(body, "user=app") {
		t.Fatalf("CLIENT LIST right after CLIENT KILL USER app still lists app's clients:\n%s", body)
	}
	gone(t, app1.nc, "app client 1")
	gone(t, app2.nc, "app client 2")
}

// TestClientKillTLS: a TLS client (served by a goroutine, not an event loop) is killed and
// leaves CLIENT LIST too, whether idle or blocked in BLPOP.
func TestClientKillTLS(t *testing.T) {
	certs := redistest.GenCerts(t)
	e := startACLEnv(t, nil, nil)
	e.spec.Access.TLSCertFile, e.spec.Access.TLSKeyFile = certs.CertFile, certs.KeyFile
	e.apply(t)
	dial := func() (net.Conn, string) {
		t.Helper()
		var nc net.Conn
		var err error
		for range 100 {
			if nc, err = tls.Dial("tcp", e.addr, certs.ClientTLS(t, false)); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		return nc, clientID(t, nc)
	}
	admin, _ := dial()
	ask := func(cmd string) string {
		t.Helper()
		if _, err := admin.Write([]byte(cmd + "\r\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		n, err := admin.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	idle, idleID := dial()
	blocked, blockedID := dial()
	if _, err := blocked.Write([]byte("BLPOP tls-kill-l 0\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ask("CLIENT LIST ID "+blockedID), " flags=b ") {
		if time.Now().After(deadline) {
			t.Fatal("BLPOP never showed blocked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ask("CLIENT KILL ID " + idleID); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL ID (idle TLS client) = %q", got)
	}
	if got := ask("CLIENT KILL ID " + blockedID); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL ID (blocked TLS client) = %q", got)
	}
	gone(t, idle, "idle TLS client")
	gone(t, blocked, "blocked TLS client")
	for {
		l := ask("CLIENT LIST")
		if !strings.Contains(l, "id="+idleID+" ") && !strings.Contains(l, "id="+blockedID+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("killed TLS clients still listed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
