package proxy_test

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestClientAuthentication(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret", "ops": "opspass"}})
	// go-redis with the password works (HELLO 3 AUTH default s3cret).
	if err := e.client.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("authenticated client: %v", err)
	}
	cases := []struct {
		name  string
		steps [][2]string // send, want
	}{
		{"noauth", [][2]string{
			{"GET a\r\n", "-NOAUTH Authentication required."},
			{"FOOBAR\r\n", "-NOAUTH Authentication required."},
			{"PING\r\n", "-NOAUTH Authentication required."},
		}},
		{"wrong password", [][2]string{
			{"AUTH nope\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"GET a\r\n", "-NOAUTH Authentication required."},
		}},
		{"default user", [][2]string{
			{"AUTH s3cret\r\n", "+OK"},
			{"GET a\r\n", "$1"},
		}},
		{"named user", [][2]string{
			{"AUTH ops wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"AUTH nobody opspass\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"AUTH ops opspass\r\n", "+OK"},
			{"GET a\r\n", "$1"},
		}},
		{"hello 2 auth", [][2]string{
			{"HELLO 4 AUTH ops opspass\r\n", "-NOPROTO unsupported protocol version"},
			{"HELLO 2 AUTH ops wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"HELLO 2 AUTH ops opspass SETNAME me\r\n", "*14"},
		}},
		{"hello 3 auth", [][2]string{
			{"HELLO 3 AUTH ops wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled."},
			{"GET a\r\n", "-NOAUTH Authentication required."},
			{"HELLO 3 AUTH ops opspass SETNAME me\r\n", "%7"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := e.raw(t)
			for _, st := range c.steps {
				rc.send(st[0])
				if got := rc.line(); got != st[1] {
					t.Fatalf("%q: got %q, want %q", st[0], got, st[1])
				}
			}
		})
	}
	// QUIT is allowed unauthenticated.
	rc := e.raw(t)
	rc.send("QUIT\r\n")
	if got := rc.line(); got != "+OK" {
		t.Fatalf("QUIT: %q", got)
	}
}

func TestAuthWithoutPasswordConfigured(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send("AUTH x\r\n")
	if got := rc.line(); !strings.HasPrefix(got, "-ERR AUTH <password> called without any password configured") {
		t.Fatalf("AUTH: %q", got)
	}
}

func TestMaxConnections(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, maxConns: 2})
	a, b := e.raw(t), e.raw(t)
	for _, rc := range []*rawConn{a, b} {
		rc.send("PING\r\n")
		if got := rc.line(); got != "+PONG" {
			t.Fatalf("PING: %q", got)
		}
	}
	c := e.raw(t)
	if got := c.line(); got != "-ERR max number of clients reached" {
		t.Fatalf("third client: %q", got)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("third client not closed: %v", err)
	}
	a.nc.Close()
	waitFor(t, 5*time.Second, func() bool {
		d := e.raw(t)
		d.send("PING\r\n")
		return d.line() == "+PONG"
	})
}

func TestClientIdleTimeout(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, idle: 200 * time.Millisecond})
	rc := e.raw(t)
	rc.send("PING\r\n")
	if got := rc.line(); got != "+PONG" {
		t.Fatalf("PING: %q", got)
	}
	start := time.Now()
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle client not closed: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestBackendAuthentication(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2, serverArgs: []string{"--requirepass", "backpw"}, backendPass: "backpw"})
	for i := 0; i < 20; i++ {
		if err := e.client.Set(ctx, spread(i), "v", 0).Err(); err != nil {
			t.Fatalf("SET through authenticated backends: %v", err)
		}
	}
}

func TestBackendRejectsAuth(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, serverArgs: []string{"--requirepass", "backpw"}, backendPass: "wrong"})
	err := e.client.Set(ctx, "k", "v", 0).Err()
	if err == nil || !strings.Contains(err.Error(), "node refused") || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("SET with a rejected backend password: %v", err)
	}
}

func spread(i int) string { return "auth:" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) }
