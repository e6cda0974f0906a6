package proxy_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// resp3Setup is run through the proxy and on a reference redis-server alike.
var resp3Setup = [][]string{
	{"HSET", "h", "a", "1", "b", "2"},
	{"SADD", "s", "3", "1", "2"}, // an intset: the same order on every server
	{"ZADD", "z", "1.5", "m1", "2", "m2", "inf", "m3"},
	{"MSET", "k0", "v0", "k1", "v1", "k2", "v2", "k3", "v3", "k4", "v4", "k5", "v5", "k6", "v6", "k7", "v7"},
	{"RPUSH", "l", "a", "b"},
	{"SET", "{t}1", "ohmytext"},
	{"SET", "{t}2", "mynewtext"},
	{"GEOADD", "g", "13.361389", "38.115556", "Palermo"},
	{"XADD", "st", "1-1", "f", "v"},
}

// resp3Checks are answered byte for byte as the reference redis-server answers them, in
// either protocol.
var resp3Checks = [][]string{
	{"HGETALL", "h"}, {"HGETALL", "nokey"}, {"HMGET", "h", "a", "nope"},
	{"SMEMBERS", "s"}, {"SISMEMBER", "s", "1"},
	{"ZSCORE", "z", "m1"}, {"ZSCORE", "z", "m3"}, {"ZSCORE", "z", "nope"}, {"ZMSCORE", "z", "m1", "nope"},
	{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z", "0", "-1"}, {"ZRANDMEMBER", "z", "0", "WITHSCORES"},
	{"GET", "nokey"}, {"GET", "k1"}, {"LPOS", "l", "zz"}, {"LRANGE", "l", "0", "-1"},
	{"MGET", "k0", "k1", "nokey", "k2", "k3", "k4", "k5", "k6", "k7"},
	{"EXISTS", "k0", "k1", "k2", "k3", "nokey"},
	{"LCS", "{t}1", "{t}2", "IDX"},
	{"GEOPOS", "g", "Palermo", "nope"},
	{"XINFO", "STREAM", "st"}, {"XRANGE", "st", "-", "+"},
	{"LMPOP", "1", "nokey", "LEFT"},
	{"PING"}, {"ECHO", "hi"}, {"TYPE", "h"}, {"INCR", "counter"},
	{"HSET", "h", "c", "3"}, {"HGETALL", "h"},
}

// TestRESP3RepliesAsRedis: with backends in RESP2 and in RESP3, RESP2 and RESP3 clients of the
// proxy get exactly the bytes a redis-server gives them, including MGET merged over nodes.
func TestRESP3RepliesAsRedis(t *testing.T) {
	for _, backend3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("backend_resp3=%v", backend3), func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 3, resp3: backend3})
			ref := redistest.Start(t)
			for _, proto := range []string{"2", "3"} {
				pc, rc := redistest.DialFrames(t, e.addr), redistest.DialFrames(t, ref.Addr)
				for _, c := range []*redistest.FrameConn{pc, rc} {
					c.Do("HELLO", proto)
					c.Do("DEL", "h", "s", "z", "l", "{t}1", "{t}2", "g", "st", "counter")
					for _, cmd := range resp3Setup {
						if r := c.Do(cmd...); r[0] == '-' {
							t.Fatalf("setup %q: %q", cmd, r)
						}
					}
				}
				for _, cmd := range resp3Checks {
					got, want := pc.Do(cmd...), rc.Do(cmd...)
					if !bytes.Equal(got, want) {
						t.Errorf("RESP%s %q:\n got %q\nwant %q", proto, cmd, got, want)
					}
				}
			}
			used := 0
			for _, s := range e.servers {
				if n, _ := s.Do("DBSIZE"); n.(int64) > 0 {
					used++
				}
			}
			if used < 2 {
				t.Fatalf("keys on %d node(s): MGET was not split", used)
			}
		})
	}
}

// TestRESP3LocalReplies: what the proxy answers itself has Redis's RESP3 types.
func TestRESP3LocalReplies(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := redistest.DialFrames(t, e.addr)
	hello := string(c.Do("HELLO", "3", "SETNAME", "me"))
	if !strings.HasPrefix(hello, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n") || !strings.Contains(hello, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3: %q", hello)
	}
	checks := []struct {
		cmd    []string
		prefix string
	}{
		{[]string{"INFO", "server"}, "="},
		{[]string{"COMMAND", "INFO", "get", "nope"}, "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~0\r\n~0\r\n_\r\n"},
		{[]string{"COMMAND", "DOCS", "get"}, "%1\r\n$3\r\nget\r\n"}, // the servers' docs
		{[]string{"CLUSTER", "INFO"}, "="},
		{[]string{"CLUSTER", "SHARDS"}, "*1\r\n%2\r\n$5\r\nslots\r\n"},
		{[]string{"PING"}, "+PONG\r\n"},
		{[]string{"SLOWLOG", "GET"}, "*0\r\n"},
		{[]string{"HELLO", "4"}, "-NOPROTO"},
	}
	for _, ch := range checks {
		if got := string(c.Do(ch.cmd...)); !strings.HasPrefix(got, ch.prefix) {
			t.Errorf("%q: got %q, want prefix %q", ch.cmd, got, ch.prefix)
		}
	}
	if got := string(c.Do("INFO", "server")); !strings.HasPrefix(got[strings.Index(got, "\r\n")+2:], "txt:# Server\r\n") {
		t.Errorf("INFO: %q", got)
	}
	if got := string(c.Do("HELLO", "2")); !strings.HasPrefix(got, "*14\r\n") || !strings.Contains(got, "proto\r\n:2\r\n") {
		t.Fatalf("HELLO 2: %q", got)
	}
	if got := string(c.Do("INFO", "server")); got[0] != '$' {
		t.Fatalf("INFO after HELLO 2: %q", got)
	}
}

// TestRESP3SwitchInPipeline: each reply is in the protocol that was current when its command
// was read, even when HELLO switches in the middle of one pipelined batch.
func TestRESP3SwitchInPipeline(t *testing.T) {
	for _, backend3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("backend_resp3=%v", backend3), func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 3, resp3: backend3})
			c := redistest.DialFrames(t, e.addr)
			c.Do("HSET", "h", "a", "1")
			c.Do("MSET", "k1", "1", "k2", "2", "k3", "3", "k4", "4")
			c.Send([]string{"HGETALL", "h"}, []string{"MGET", "k1", "k2", "k3", "k4", "x"}, []string{"HELLO", "3"},
				[]string{"HGETALL", "h"}, []string{"MGET", "k1", "k2", "k3", "k4", "x"}, []string{"HELLO", "2"},
				[]string{"HGETALL", "h"}, []string{"GET", "x"})
			want := []string{
				"*2\r\n$1\r\na\r\n$1\r\n1\r\n", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$-1\r\n", "%7\r\n",
				"%1\r\n$1\r\na\r\n$1\r\n1\r\n", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n_\r\n", "*14\r\n",
				"*2\r\n$1\r\na\r\n$1\r\n1\r\n", "$-1\r\n",
			}
			for i, w := range want {
				got := string(c.Read())
				if strings.HasPrefix(w, "%7") || strings.HasPrefix(w, "*14") { // HELLO: the header says it
					got = got[:len(w)]
				}
				if got != w {
					t.Errorf("reply %d: got %q, want %q", i, got, w)
				}
			}
		})
	}
}

// TestRESP3GoRedis: go-redis speaking RESP3 (its default) gets typed replies through the proxy.
func TestRESP3GoRedis(t *testing.T) {
	for _, backend3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("backend_resp3=%v", backend3), func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 3, resp3: backend3})
			c := redis.NewClient(&redis.Options{Addr: e.addr, Protocol: 3, MaxRetries: -1})
			defer c.Close()
			c.HSet(ctx, "h", "a", "1", "b", "2")
			c.SAdd(ctx, "s", "x")
			c.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "m"})
			if v, err := c.Do(ctx, "HGETALL", "h").Result(); err != nil || fmt.Sprint(v) != "map[a:1 b:2]" {
				t.Errorf("HGETALL: %v %v (a map in RESP3)", v, err)
			}
			if v, err := c.SMembers(ctx, "s").Result(); err != nil || fmt.Sprint(v) != "[x]" {
				t.Errorf("SMEMBERS: %v %v", v, err) // go-redis reads a set as a slice
			}
			if v, err := c.Do(ctx, "ZSCORE", "z", "m").Result(); err != nil || v != 1.5 {
				t.Errorf("ZSCORE: %T %v %v (a double in RESP3)", v, v, err)
			}
			if err := c.Get(ctx, "nokey").Err(); err != redis.Nil {
				t.Errorf("GET nokey: %v", err)
			}
		})
	}
}

// TestHelloErrorsAsRedis: HELLO's refusals are byte for byte redis-server's (with a password
// required), and HELLO 3 AUTH then switches as it does.
func TestHelloErrorsAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "pw"}})
	ref := redistest.Start(t, "--requirepass", "pw")
	pc, rc := redistest.DialFrames(t, e.addr), redistest.DialFrames(t, ref.Addr)
	for _, cmd := range []string{
		"HELLO 3", "HELLO 3 AUTH default nope", "HELLO 1", "HELLO abc", "HELLO 3 SETNAME",
		"HELLO 3 foo", "HELLO 3 AUTH default nope FOO", "HELLO 3 AUTH default", "GET x",
	} {
		args := strings.Fields(cmd)
		if got, want := pc.Do(args...), rc.Do(args...); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
		}
	}
	for _, c := range []*redistest.FrameConn{pc, rc} {
		if got := string(c.Do("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "x")); !strings.HasPrefix(got, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n") {
			t.Fatalf("HELLO 3 AUTH: %q", got)
		}
	}
	if got, want := pc.Do("GET", "x"), rc.Do("GET", "x"); !bytes.Equal(got, want) {
		t.Errorf("GET after HELLO 3 AUTH: got %q, want %q", got, want)
	}
}
