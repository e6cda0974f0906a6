package redisdial_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/redisdial"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// do sends one command on nc and returns its reply frame.
func do(t *testing.T, nc net.Conn, args ...string) string {
	t.Helper()
	var b [][]byte
	for _, a := range args {
		b = append(b, []byte(a))
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(resp.AppendCommand(nil, b...)); err != nil {
		t.Fatalf("%s: write: %v", args[0], err)
	}
	f, err := resp.NewReplyReader(nc, 512).Next()
	if err != nil {
		t.Fatalf("%s: %v", args[0], err)
	}
	return string(f)
}

// clientInfo is the connection's own CLIENT INFO line, which says its protocol, database and
// flags.
func clientInfo(t *testing.T, nc net.Conn) string {
	t.Helper()
	return do(t, nc, "CLIENT", "INFO")
}

func dial(t *testing.T, opts redisdial.Options) net.Conn {
	t.Helper()
	nc, err := redisdial.Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// TestAuth: an ACL user logs in with username and password, and the connection is that user's;
// the default user's password alone works too; a wrong password fails the dial with the
// node's own error line, naming the node, and never showing the password.
func TestAuth(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "defaultpw", "--user", "alice", "on", ">alicepw", "~*", "&*", "+@all")

	nc := dial(t, redisdial.Options{Addr: srv.Addr, Username: "alice", Password: "alicepw"})
	if got := do(t, nc, "ACL", "WHOAMI"); got != "$5\r\nalice\r\n" {
		t.Errorf("ACL WHOAMI = %q, want alice", got)
	}
	nc = dial(t, redisdial.Options{Addr: srv.Addr, Password: "defaultpw"})
	if got := do(t, nc, "ACL", "WHOAMI"); got != "$7\r\ndefault\r\n" {
		t.Errorf("ACL WHOAMI = %q, want default", got)
	}

	for _, o := range []redisdial.Options{
		{Addr: srv.Addr, Username: "alice", Password: "not-alicepw"},
		{Addr: srv.Addr, Password: "not-defaultpw", ReadOnly: true}, // READONLY's NOAUTH is not the error
	} {
		_, err := redisdial.Dial(context.Background(), o)
		want := "handshake with " + srv.Addr + ": node refused AUTH: WRONGPASS invalid username-password pair or user is disabled."
		if err == nil || err.Error() != want {
			t.Errorf("user %q, wrong password: %v; want %q", o.Username, err, want)
		}
		var refused *redisdial.RefusedError
		if !errors.As(err, &refused) || refused.Command != "AUTH" || !strings.HasPrefix(refused.Reply, "WRONGPASS") {
			t.Errorf("user %q, wrong password: %#v, want a RefusedError of AUTH", o.Username, err)
		}
	}

	// No password against a node that wants one: the dial itself succeeds (no handshake to
	// refuse), and the node says NOAUTH to what comes next.
	nc = dial(t, redisdial.Options{Addr: srv.Addr})
	if got := do(t, nc, "PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without AUTH = %q, want NOAUTH", got)
	}
}

// TestTLS: a TLS configuration with no server name verifies each node's certificate for the
// node's own host (one configuration for every node of a cluster), then AUTH runs over TLS; a
// node whose certificate another CA signed, or that does not speak TLS, fails the dial with the
// handshake's error naming it.
func TestTLS(t *testing.T) {
	certs, other := redistest.GenCerts(t), redistest.GenCerts(t)
	good := redistest.StartTLS(t, certs, "--requirepass", "pw")
	untrusted := redistest.StartTLS(t, other)
	plain := redistest.Start(t)
	cfg := certs.ClientTLS(t, false)
	cfg.ServerName = "" // verified against 127.0.0.1, the host of Addr

	nc := dial(t, redisdial.Options{Addr: good.Addr, TLS: cfg, Password: "pw", DialTimeout: 10 * time.Second})
	if _, ok := nc.(*tls.Conn); !ok {
		t.Fatalf("connection is a %T, want *tls.Conn", nc)
	}
	if got := do(t, nc, "PING"); got != "+PONG\r\n" {
		t.Errorf("PING over TLS after AUTH = %q", got)
	}
	if cfg.ServerName != "" {
		t.Errorf("Dial set ServerName %q on the caller's configuration", cfg.ServerName)
	}

	for _, addr := range []string{untrusted.Addr, plain.Addr} {
		_, err := redisdial.Dial(context.Background(), redisdial.Options{Addr: addr, TLS: cfg, DialTimeout: 10 * time.Second})
		if err == nil || !strings.HasPrefix(err.Error(), "TLS handshake with "+addr+": ") {
			t.Errorf("%s: %v, want the TLS handshake's error", addr, err)
		}
	}
}

// TestHelloAndSelect: Protocol 3 switches the connection to RESP3, 2 keeps RESP2 (by HELLO),
// and DB selects the database.
func TestHelloAndSelect(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "pw")
	for _, c := range []struct {
		proto, db int
		want      []string
	}{
		{3, 0, []string{"resp=3", "db=0"}},
		{2, 5, []string{"resp=2", "db=5"}},
		{0, 3, []string{"resp=2", "db=3"}},
	} {
		nc := dial(t, redisdial.Options{Addr: srv.Addr, Password: "pw", Protocol: c.proto, DB: c.db})
		info := clientInfo(t, nc)
		if c.proto == 3 && !strings.HasPrefix(info, "=") { // RESP3 answers CLIENT INFO as verbatim text
			t.Errorf("HELLO 3: CLIENT INFO came as %q, not RESP3's verbatim string", info[:1])
		}
		fields := strings.Fields(info)
		for _, w := range c.want {
			if !slices.Contains(fields, w) {
				t.Errorf("protocol %d, db %d: CLIENT INFO %q lacks %q", c.proto, c.db, info, w)
			}
		}
	}

	_, err := redisdial.Dial(context.Background(), redisdial.Options{Addr: srv.Addr, Password: "pw", Protocol: 4})
	var refused *redisdial.RefusedError
	if !errors.As(err, &refused) || refused.Command != "HELLO 4" || !strings.HasPrefix(refused.Reply, "NOPROTO") {
		t.Errorf("HELLO 4: %v, want the node's NOPROTO", err)
	}
	_, err = redisdial.Dial(context.Background(), redisdial.Options{Addr: srv.Addr, Password: "pw", DB: 99})
	if !errors.As(err, &refused) || refused.Command != "SELECT" {
		t.Errorf("SELECT 99: %v, want the node's refusal", err)
	}
}

// TestReadOnly: READONLY lets a Redis Cluster replica serve a read of its master's slots,
// which it redirects without; a node not in cluster mode refuses READONLY, and the dial fails.
func TestReadOnly(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	anyNode := cl.Nodes[0]
	slot, err := anyNode.Do("CLUSTER", "KEYSLOT", "k")
	if err != nil {
		t.Fatal(err)
	}
	master := cl.MasterOf(int(slot.(int64)))
	var replica *redistest.Server
	for _, n := range cl.Nodes {
		role, err := n.Do("ROLE")
		if err != nil {
			t.Fatal(err)
		}
		if r := role.([]any); r[0] == "slave" && r[2] == int64(master.Port) {
			replica = n
		}
	}
	if replica == nil {
		t.Fatalf("no replica of %s, the master of k, in the cluster", master.Addr)
	}
	plainConn := dial(t, redisdial.Options{Addr: replica.Addr})
	if got := do(t, plainConn, "GET", "k"); !strings.HasPrefix(got, "-MOVED") {
		t.Fatalf("GET on a replica without READONLY = %q, want MOVED (else the test proves nothing)", got)
	}
	ro := dial(t, redisdial.Options{Addr: replica.Addr, ReadOnly: true})
	if got := do(t, ro, "GET", "k"); got != "$-1\r\n" {
		t.Errorf("GET on a replica after READONLY = %q, want the replica's own (null) answer", got)
	}

	single := redistest.Start(t)
	_, err = redisdial.Dial(context.Background(), redisdial.Options{Addr: single.Addr, ReadOnly: true})
	var refused *redisdial.RefusedError
	if !errors.As(err, &refused) || refused.Command != "READONLY" || !strings.Contains(err.Error(), single.Addr) {
		t.Errorf("READONLY on a standalone node: %v, want its refusal naming the node", err)
	}
}

// TestSilentNode: a node that accepts TCP and then says nothing fails the handshake after
// ReplyTimeout, and a cancelled context ends a dial waiting on it at once, whatever the
// timeout.
func TestSilentNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 8)
	defer func() {
		ln.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			held <- nc // never answered
		}
	}()
	addr := ln.Addr().String()

	_, err = redisdial.Dial(context.Background(), redisdial.Options{Addr: addr, Password: "pw", ReplyTimeout: 100 * time.Millisecond})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "handshake with "+addr+": reply to AUTH") {
		t.Errorf("silent node: %v, want a timeout of AUTH's reply naming the node", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := redisdial.Dial(ctx, redisdial.Options{Addr: addr, Password: "pw", ReplyTimeout: time.Hour})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // mostly lets the dial reach the handshake; either way it must end
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled dial: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled dial kept waiting for the node")
	}
}

// TestNotRedis: something that answers, but not as Redis does, fails the dial: a wrong reply
// type, a line without end (bounded, never buffered without limit), or bytes past the
// handshake's replies (they would put the caller's reads out of step).
func TestNotRedis(t *testing.T) {
	for _, c := range []struct{ name, answer, want string }{
		{"PONG to AUTH", "+PONG\r\n", `reply "+PONG\r\n" to AUTH is not what Redis answers`},
		{"endless line", "+" + strings.Repeat("x", 200<<10), "reply to AUTH"},
		{"more than asked", "+OK\r\n+OK\r\n", "more than the handshake's replies"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				if _, err := bufio.NewReader(nc).ReadString('\n'); err == nil {
					_, _ = nc.Write([]byte(c.answer))
				}
				_, _ = nc.Read(make([]byte, 1)) // until the dialler hangs up
			}()
			_, err = redisdial.Dial(context.Background(), redisdial.Options{Addr: ln.Addr().String(), Password: "pw"})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ln.Addr().String()) {
				t.Errorf("%v, want an error naming the node and containing %q", err, c.want)
			}
		})
	}
}
