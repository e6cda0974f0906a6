package e2e

import (
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// frameSteps sends each command on c and checks its exact reply.
func frameSteps(t *testing.T, c *redistest.FrameConn, steps [][2][]string) {
	t.Helper()
	for _, st := range steps {
		if got := string(c.Do(st[0]...)); got != st[1][0] {
			t.Fatalf("%q: got %q, want %q", st[0], got, st[1][0])
		}
	}
}

func step(want string, args ...string) [2][]string { return [2][]string{args, {want}} }

// TestResetConnection: RESET through asterd, in front of plain servers and of a real Redis
// Cluster, discards a MULTI block (EXEC then has no MULTI and nothing ran), forgets WATCHed
// keys on the node (another client's change no longer fails the transaction) and returns a
// RESP3 client to RESP2.
func TestResetConnection(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, e *modeEnv) {
		other := e.a.client(t)
		c := redistest.DialFrames(t, e.a.Addr)
		if err := other.Del(ctx, "{rs}.k", "{rs}.w", "{rs}.h").Err(); err != nil {
			t.Fatal(err)
		}
		if err := other.HSet(ctx, "{rs}.h", "a", "1").Err(); err != nil {
			t.Fatal(err)
		}
		frameSteps(t, c, [][2][]string{
			step("+RESET\r\n", "RESET"),
			step("+OK\r\n", "MULTI"),
			step("+QUEUED\r\n", "SET", "{rs}.k", "v"),
			step("+RESET\r\n", "RESET"),
			step("-ERR EXEC without MULTI\r\n", "EXEC"),
			step("$-1\r\n", "GET", "{rs}.k"),
			step("+OK\r\n", "WATCH", "{rs}.w"),
			step("+RESET\r\n", "RESET"),
		})
		if err := other.Set(ctx, "{rs}.w", "theirs", 0).Err(); err != nil {
			t.Fatal(err)
		}
		frameSteps(t, c, [][2][]string{
			step("+OK\r\n", "MULTI"),
			step("+QUEUED\r\n", "SET", "{rs}.w", "mine"),
			step("*1\r\n+OK\r\n", "EXEC"), // *-1 if the node still watched {rs}.w
			step("$4\r\nmine\r\n", "GET", "{rs}.w"),
		})
		c.Do("HELLO", "3")
		frameSteps(t, c, [][2][]string{
			step("%1\r\n$1\r\na\r\n$1\r\n1\r\n", "HGETALL", "{rs}.h"),
			step("+RESET\r\n", "RESET"),
			step("*2\r\n$1\r\na\r\n$1\r\n1\r\n", "HGETALL", "{rs}.h"),
		})
		if v, _ := other.Get(ctx, "{rs}.k").Result(); v != "" {
			t.Fatalf("the discarded transaction's SET ran: {rs}.k = %q", v)
		}
	})
}

// TestResetAuthEndToEnd: with a password in the config, RESET is allowed before AUTH, and
// after it the client must AUTH again, as with redis-server's requirepass.
func TestResetAuthEndToEnd(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	a := startAsterd(t, `
[[clusters]]
name = "secure"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
auth = { password = "s3cret", users = [ { username = "ops", password = "opspw" } ] }
`)
	c := redistest.DialFrames(t, a.Addr)
	noAuth := "-NOAUTH Authentication required.\r\n"
	frameSteps(t, c, [][2][]string{
		step("+RESET\r\n", "RESET"),
		step(noAuth, "GET", "rs:k"),
		step("+OK\r\n", "AUTH", "ops", "opspw"),
		step("+OK\r\n", "SET", "rs:k", "v"),
		step("+RESET\r\n", "RESET"),
		step(noAuth, "GET", "rs:k"),
		step("+OK\r\n", "AUTH", "s3cret"),
		step("$1\r\nv\r\n", "GET", "rs:k"),
	})
}
