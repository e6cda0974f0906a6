package proxy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestTransactionWithHashTag: a go-redis MULTI/EXEC pipeline whose keys share a hash tag runs
// as one transaction on their node.
func TestTransactionWithHashTag(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	var incr *redis.IntCmd
	cmds, err := e.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{acct}.a", "10", 0)
		incr = p.IncrBy(ctx, "{acct}.a", 5)
		p.RPush(ctx, "{acct}.log", "x", "y")
		p.Ping(ctx)
		return nil
	})
	if err != nil {
		t.Fatalf("TxPipelined: %v (%v)", err, cmds)
	}
	if incr.Val() != 15 {
		t.Fatalf("INCRBY in the transaction = %d, want 15", incr.Val())
	}
	holders := 0
	for _, s := range e.servers {
		if n, _ := s.Client().Exists(ctx, "{acct}.a", "{acct}.log").Result(); n == 2 {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("the transaction's keys are on %d nodes, want 1", holders)
	}
}

// TestTransactionRefusedAcrossNodes: a key on another node than the transaction's is refused
// when queued and dooms the transaction, as Redis does with a command it refuses; nothing runs.
func TestTransactionRefusedAcrossNodes(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	ring := e.install(t, 2, nodesOf(e))
	a, b := keyOn(t, ring, 0, "a"), keyOn(t, ring, 1, "b")
	rc := e.raw(t)
	rc.send(cmdFrame("MULTI") + cmdFrame("SET", a, "1") + cmdFrame("SET", b, "1") + cmdFrame("EXEC") + cmdFrame("EXISTS", a, b))
	for _, want := range []string{
		"+OK\r\n", "+QUEUED\r\n",
		"-ERR keys of a transaction must all be on one node (use hash tags)\r\n",
		"-EXECABORT Transaction discarded because of previous errors.\r\n",
		":0\r\n",
	} {
		if got := wholeReply(rc); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// Through go-redis: the same refusal, nothing written.
	_, err := e.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, a, "1", 0)
		p.Set(ctx, b, "1", 0)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") && !strings.Contains(err.Error(), "one node") {
		t.Fatalf("TxPipelined across nodes: %v, want a refusal", err)
	}
	if n, _ := e.client.Exists(ctx, a, b).Result(); n != 0 {
		t.Fatalf("%d keys written by a refused transaction", n)
	}
}

// TestTransactionRedisErrors: the proxy answers what Redis answers to misused transactions.
func TestTransactionRedisErrors(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	rc := e.raw(t)
	steps := []struct{ send, want string }{
		{cmdFrame("EXEC"), "-ERR EXEC without MULTI\r\n"},
		{cmdFrame("DISCARD"), "-ERR DISCARD without MULTI\r\n"},
		{cmdFrame("UNWATCH"), "+OK\r\n"},
		{cmdFrame("MULTI"), "+OK\r\n"},
		{cmdFrame("MULTI"), "-ERR MULTI calls can not be nested\r\n"},
		{cmdFrame("WATCH", "x"), "-ERR WATCH inside MULTI is not allowed\r\n"},
		{cmdFrame("INCR", "{t}n"), "+QUEUED\r\n"},
		{cmdFrame("PING"), "+QUEUED\r\n"},
		{cmdFrame("EXEC"), "*2\r\n:1\r\n+PONG\r\n"},
		{cmdFrame("MULTI"), "+OK\r\n"},
		{cmdFrame("EXEC"), "*0\r\n"},
		{cmdFrame("MULTI") + cmdFrame("INCR", "{t}n") + cmdFrame("DISCARD") + cmdFrame("GET", "{t}n"), "+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n1\r\n"},
		{cmdFrame("MULTI"), "+OK\r\n"},
		{cmdFrame("INCR", "{t}n"), "+QUEUED\r\n"},
		{cmdFrame("GET"), "-ERR wrong number of arguments for 'get' command\r\n"},
		{cmdFrame("NOSUCH"), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"},
		{cmdFrame("KEYS", "*"), "-ERR keys inside a transaction is not supported by the proxy\r\n"},
		{cmdFrame("MONITOR"), "-ERR monitor is not supported by the proxy\r\n"},
		{cmdFrame("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{cmdFrame("GET", "{t}n"), "$1\r\n1\r\n"},
		// Pipelined: the transaction sees the SET before it, and the GET after it sees the
		// transaction; errors inside EXEC are the node's own.
		{cmdFrame("SET", "{t}n", "41") + cmdFrame("MULTI") + cmdFrame("INCR", "{t}n") + cmdFrame("LPUSH", "{t}n", "x") + cmdFrame("EXEC") + cmdFrame("GET", "{t}n"),
			"+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:42\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$2\r\n42\r\n"},
		// Blocking commands do not block inside a transaction, as in Redis.
		{cmdFrame("MULTI") + cmdFrame("BLPOP", "{t}l", "0") + cmdFrame("EXEC"), "+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n"},
	}
	for _, st := range steps {
		rc.send(st.send)
		got := ""
		for len(got) < len(st.want) {
			got += wholeReply(rc)
		}
		if got != st.want {
			t.Fatalf("%q: got %q, want %q", st.send, got, st.want)
		}
	}
}

// TestWatchOptimisticLock: WATCH goes to the node at once, so a change by another client
// between WATCH and EXEC makes EXEC fail (nil), and an untouched key lets it run.
func TestWatchOptimisticLock(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	e.client.Set(ctx, "{w}.balance", "100", 0)
	other := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1})
	defer other.Close()
	run := func(interfere bool) error {
		return e.client.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, "{w}.balance").Int()
			if err != nil {
				return err
			}
			if interfere {
				other.IncrBy(ctx, "{w}.balance", 1000)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "{w}.balance", v-10, 0)
				p.Incr(ctx, "{w}.count")
				return nil
			})
			return err
		}, "{w}.balance")
	}
	if err := run(false); err != nil {
		t.Fatalf("untouched watch: %v", err)
	}
	if err := run(true); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("watched key changed: %v, want redis.TxFailedErr", err)
	}
	if v, _ := e.client.Get(ctx, "{w}.balance").Result(); v != "1090" {
		t.Fatalf("balance = %s, want 1090 (the failed transaction must not apply)", v)
	}
	// Raw: WATCH keys on two nodes, and a transaction on another node than its WATCH.
	ring := e.install(t, 2, nodesOf(e))
	a, b := keyOn(t, ring, 0, "a"), keyOn(t, ring, 1, "b")
	rc := e.raw(t)
	for _, st := range []struct{ send, want string }{
		{cmdFrame("WATCH", a, b), "-CROSSSLOT Keys in request don't hash to the same node (use hash tags)\r\n"},
		{cmdFrame("WATCH", a), "+OK\r\n"},
		{cmdFrame("WATCH", b), "-ERR keys of a transaction must all be on one node (use hash tags)\r\n"},
		{cmdFrame("MULTI") + cmdFrame("SET", b, "1") + cmdFrame("EXEC"), "+OK\r\n-ERR keys of a transaction must all be on one node (use hash tags)\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"},
		// EXEC forgot the watch: b is free again.
		{cmdFrame("WATCH", b) + cmdFrame("UNWATCH") + cmdFrame("MULTI") + cmdFrame("SET", a, "1") + cmdFrame("EXEC"), "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n"},
		// DISCARD forgets the watch too: a change afterwards does not fail the next EXEC.
		{cmdFrame("WATCH", a) + cmdFrame("MULTI") + cmdFrame("DISCARD") + cmdFrame("SET", a, "2") + cmdFrame("MULTI") + cmdFrame("GET", a) + cmdFrame("EXEC"), "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\n2\r\n"},
	} {
		rc.send(st.send)
		got := ""
		for len(got) < len(st.want) {
			got += wholeReply(rc)
		}
		if got != st.want {
			t.Fatalf("%q: got %q, want %q", st.send, got, st.want)
		}
	}
}

// TestDeferredRepliesRESP3 runs blocking commands and a transaction for a RESP3 client: the
// dedicated connections speak RESP2, and the replies must still be Redis's RESP3 bytes (a '_'
// for a timed-out BLPOP, a map and a double inside EXEC's reply).
func TestDeferredRepliesRESP3(t *testing.T) {
	e := startEnv(t, envOpts{})
	script := []string{
		cmdFrame("DEL", "{t}l", "{t}h", "{t}z"),
		cmdFrame("RPUSH", "{t}l", "a"),
		cmdFrame("BLPOP", "{t}l", "1"),
		cmdFrame("BLPOP", "{t}l", "0.05"),
		cmdFrame("HSET", "{t}h", "f", "v"),
		cmdFrame("MULTI"),
		cmdFrame("HGETALL", "{t}h"),
		cmdFrame("ZADD", "{t}z", "1.5", "m"),
		cmdFrame("ZSCORE", "{t}z", "m"),
		cmdFrame("SMEMBERS", "{t}nosuch"),
		cmdFrame("EXEC"),
	}
	run := func(addr string) []string {
		r := dialRaw(t, addr)
		r.send(cmdFrame("HELLO", "3"))
		_ = wholeReply(r) // the server's own map: proxy and redis-server differ, by design
		var got []string
		for _, c := range script {
			r.send(c)
			got = append(got, wholeReply(r))
		}
		return got
	}
	want := run(redistest.Start(t).Addr)
	got := run(e.addr)
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("through the proxy:\n%q\nredis-server:\n%q", got, want)
	}
	if !strings.Contains(strings.Join(got, ""), "%1\r\n") {
		t.Fatalf("no RESP3 map in EXEC's reply: %q", got)
	}
}
