package proxy_test

import (
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// resetStep is one write of a RESET script: its commands in one write (a pipeline), or one
// command of another client (other). want, when set, is what the replies must be, joined.
type resetStep struct {
	cmds  [][]string
	other []string
	hello bool // the replies are HELLO's (server details): not compared with Redis
	want  string
}

func cmds(c ...[]string) [][]string { return c }

// runResetScript runs steps against addr (the other steps on a second connection) and
// returns each step's replies, joined.
func runResetScript(t *testing.T, addr string, steps []resetStep) []string {
	t.Helper()
	c, o := redistest.DialFrames(t, addr), redistest.DialFrames(t, addr)
	got := make([]string, len(steps))
	for i, st := range steps {
		if st.other != nil {
			if r := o.Do(st.other...); r[0] == '-' {
				t.Fatalf("other client %q: %q", st.other, r)
			}
			continue
		}
		c.Send(st.cmds...)
		var b strings.Builder
		for range st.cmds {
			b.Write(c.Read())
		}
		got[i] = b.String()
	}
	return got
}

// checkResetScript runs steps through the proxy and on a reference redis-server: every reply
// must be Redis's byte for byte (HELLO's excepted), and the one a step names.
func checkResetScript(t *testing.T, proxyAddr, refAddr string, steps []resetStep) {
	t.Helper()
	got := runResetScript(t, proxyAddr, steps)
	want := runResetScript(t, refAddr, steps)
	for i, st := range steps {
		if st.other != nil || st.hello {
			continue
		}
		if got[i] != want[i] {
			t.Errorf("step %d %q:\n got %q\nredis %q", i, st.cmds, got[i], want[i])
		}
		if st.want != "" && got[i] != st.want {
			t.Errorf("step %d %q: got %q, want %q", i, st.cmds, got[i], st.want)
		}
	}
}

// TestResetAsRedis: RESET answers +RESET in RESP2 and RESP3, discards a MULTI block (also
// pipelined in one batch with the commands that see it gone), returns to RESP2 in and out of
// subscribed mode, and forgets WATCHed keys on the node — byte for byte as redis-server.
func TestResetAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	ref := redistest.Start(t)
	hgetall2 := "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
	steps := []resetStep{
		{cmds: cmds([]string{"DEL", "h", "k", "w"}), want: ":0\r\n"},
		{cmds: cmds([]string{"HSET", "h", "a", "1", "b", "2"}), want: ":2\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"RESET", "x"}), want: "-ERR wrong number of arguments for 'reset' command\r\n"},
		// RESP3: +RESET in either protocol, and RESP2 replies after it.
		{cmds: cmds([]string{"HELLO", "3"}), hello: true},
		{cmds: cmds([]string{"HGETALL", "h"}), want: "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"HGETALL", "h"}), want: hgetall2},
		// The same, pipelined: the commands after RESET in the batch are answered in RESP2.
		{cmds: cmds([]string{"HELLO", "3"}), hello: true},
		{cmds: cmds([]string{"HGETALL", "h"}, []string{"RESET"}, []string{"HGETALL", "h"}, []string{"GET", "nokey"}),
			want: "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n+RESET\r\n" + hgetall2 + "$-1\r\n"},
		// MULTI discarded: EXEC then has no MULTI, and the queued SET never ran.
		{cmds: cmds([]string{"MULTI"}, []string{"SET", "k", "v"}), want: "+OK\r\n+QUEUED\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"EXEC"}), want: "-ERR EXEC without MULTI\r\n"},
		{cmds: cmds([]string{"GET", "k"}), want: "$-1\r\n"},
		{cmds: cmds([]string{"MULTI"}, []string{"SET", "k", "v"}, []string{"RESET"}, []string{"EXEC"}, []string{"DISCARD"}, []string{"GET", "k"}),
			want: "+OK\r\n+QUEUED\r\n+RESET\r\n-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n$-1\r\n"},
		// A doomed transaction too: RESET clears the error, the next MULTI runs.
		{cmds: cmds([]string{"MULTI"}, []string{"NOSUCH"}, []string{"RESET"}, []string{"MULTI"}, []string{"SET", "k", "1"}, []string{"EXEC"}),
			want: "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n+RESET\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n"},
		// WATCH forgotten: another client's change no longer fails the transaction.
		{cmds: cmds([]string{"WATCH", "w"}), want: "+OK\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{other: []string{"SET", "w", "theirs"}},
		{cmds: cmds([]string{"MULTI"}, []string{"SET", "w", "mine"}, []string{"EXEC"}), want: "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n"},
		{cmds: cmds([]string{"GET", "w"}), want: "$4\r\nmine\r\n"},
		// WATCH, then MULTI, then RESET: both go.
		{cmds: cmds([]string{"WATCH", "w"}), want: "+OK\r\n"},
		{cmds: cmds([]string{"MULTI"}, []string{"SET", "w", "queued"}, []string{"RESET"}), want: "+OK\r\n+QUEUED\r\n+RESET\r\n"},
		{other: []string{"SET", "w", "theirs"}},
		{cmds: cmds([]string{"MULTI"}, []string{"SET", "w", "mine2"}, []string{"EXEC"}, []string{"GET", "w"}),
			want: "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$5\r\nmine2\r\n"},
		// Subscribed mode in RESP3: RESET leaves it and returns to RESP2.
		{cmds: cmds([]string{"HELLO", "3"}), hello: true},
		{cmds: cmds([]string{"SUBSCRIBE", "ch"}), want: ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"HGETALL", "h"}), want: hgetall2},
	}
	checkResetScript(t, e.addr, ref.Addr, steps)
}

// TestResetAuth: with a password configured, RESET de-authenticates (the next command gets
// NOAUTH, AUTH works again), is itself allowed before AUTH, and HELLO 3 AUTH is undone too —
// byte for byte as a redis-server with requirepass.
func TestResetAuth(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret"}})
	ref := redistest.Start(t, "--requirepass", "s3cret")
	noAuth := "-NOAUTH Authentication required.\r\n"
	steps := []resetStep{
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"GET", "k"}), want: noAuth},
		{cmds: cmds([]string{"AUTH", "s3cret"}), want: "+OK\r\n"},
		{cmds: cmds([]string{"SET", "k", "v"}), want: "+OK\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"GET", "k"}), want: noAuth},
		{cmds: cmds([]string{"AUTH", "s3cret"}, []string{"GET", "k"}, []string{"RESET"}, []string{"GET", "k"}),
			want: "+OK\r\n$1\r\nv\r\n+RESET\r\n" + noAuth},
		{cmds: cmds([]string{"HELLO", "3", "AUTH", "default", "s3cret"}), hello: true},
		{cmds: cmds([]string{"GET", "k"}), want: "$1\r\nv\r\n"},
		{cmds: cmds([]string{"RESET"}), want: "+RESET\r\n"},
		{cmds: cmds([]string{"GET", "k"}), want: noAuth},
		{cmds: cmds([]string{"HELLO", "3"})}, // NOAUTH HELLO must be called with ..., as Redis says
		{cmds: cmds([]string{"AUTH", "s3cret"}, []string{"GET", "k"}), want: "+OK\r\n$1\r\nv\r\n"},
	}
	checkResetScript(t, e.addr, ref.Addr, steps)
}
