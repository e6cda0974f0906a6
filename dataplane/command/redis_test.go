package command

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisServerPath = "/usr/bin/redis-server"

// deliberatelyMissing lists Redis commands we choose not to have in the table, with why. A
// command in the live server's COMMAND reply that is neither in the table nor here fails
// TestTableMatchesRedis.
var deliberatelyMissing = map[string]string{}

// startRedis runs a throwaway redis-server on a free loopback port and returns a client to it.
// Both are stopped when the test ends.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	if _, err := os.Stat(redisServerPath); err != nil {
		t.Skipf("redis-server not installed at %s: %v", redisServerPath, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("free port %d: %v", port, err)
	}
	cmd := exec.Command(redisServerPath, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server on port %d: %v", port, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{
		Addr:            net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Protocol:        2, // RESP2 keeps COMMAND's reply shapes simple
		DisableIdentity: true,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return rdb
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d not answering PING: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisCommand is the part of one COMMAND reply entry we check.
type redisCommand struct {
	name                    string
	arity                   int
	flags                   []string
	firstKey, lastKey, step int
	subcommands             int
}

func parseCommandReply(t *testing.T, v any) []redisCommand {
	t.Helper()
	entries, ok := v.([]any)
	if !ok {
		t.Fatalf("COMMAND reply is %T, want an array", v)
	}
	out := make([]redisCommand, 0, len(entries))
	for _, e := range entries {
		f, ok := e.([]any)
		if !ok || len(f) < 6 {
			t.Fatalf("COMMAND entry %v: want an array of at least 6 fields", e)
		}
		c := redisCommand{
			name:     strings.ToLower(fmt.Sprint(f[0])),
			arity:    int(f[1].(int64)),
			firstKey: int(f[3].(int64)),
			lastKey:  int(f[4].(int64)),
			step:     int(f[5].(int64)),
		}
		for _, fl := range f[2].([]any) {
			c.flags = append(c.flags, fmt.Sprint(fl))
		}
		if len(f) >= 10 {
			if subs, ok := f[9].([]any); ok {
				c.subcommands = len(subs)
			}
		}
		out = append(out, c)
	}
	return out
}

// TestTableMatchesRedis checks our arity, legacy key spec and Redis-derived flags against the
// live server's COMMAND reply, and that no Redis command is missing from the table.
func TestTableMatchesRedis(t *testing.T) {
	rdb := startRedis(t)
	v, err := rdb.Do(context.Background(), "COMMAND").Result()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	cmds := parseCommandReply(t, v)
	if len(cmds) < 200 {
		t.Fatalf("COMMAND returned %d commands, expected the full set", len(cmds))
	}
	seen := make(map[string]bool)
	for _, c := range cmds {
		seen[c.name] = true
		s := Lookup([]byte(c.name))
		if s == nil {
			if why, ok := deliberatelyMissing[c.name]; ok {
				t.Logf("%s: deliberately not in the table: %s", c.name, why)
				continue
			}
			t.Errorf("redis command %q is missing from the table", c.name)
			continue
		}
		if s.Arity != c.arity {
			t.Errorf("%s: arity %d, redis says %d", c.name, s.Arity, c.arity)
		}
		if s.FirstKey != c.firstKey || s.LastKey != c.lastKey || s.Step != c.step {
			t.Errorf("%s: key spec %d %d %d, redis says %d %d %d", c.name, s.FirstKey, s.LastKey, s.Step, c.firstKey, c.lastKey, c.step)
		}
		if (c.subcommands > 0) != (s.Flags&Container != 0) {
			t.Errorf("%s: Container flag %v, redis lists %d subcommands", c.name, s.Flags&Container != 0, c.subcommands)
		}
		if c.subcommands > 0 {
			continue // our Read/Write/MovableKeys on containers describe their keyed subcommands
		}
		for _, m := range []struct {
			redis string
			flag  Flag
		}{{"readonly", Read}, {"write", Write}, {"pubsub", PubSub}, {"admin", Admin}, {"movablekeys", MovableKeys}} {
			if has := slices.Contains(c.flags, m.redis); has != (s.Flags&m.flag != 0) {
				t.Errorf("%s: flag %q is %v in redis, %v in the table", c.name, m.redis, has, !has)
			}
		}
	}
	for _, s := range All() {
		if !seen[s.Name] {
			t.Logf("%s: in the table but not in this redis-server (newer command)", s.Name)
		}
	}
}

// TestKeysMatchRedis asks the live server's COMMAND GETKEYS about every positive Keys case.
func TestKeysMatchRedis(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	for _, tc := range keysCases {
		if !tc.ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if Lookup([]byte(tc.args[0])) == nil || strings.EqualFold(tc.args[0], "waitaof") {
				t.Skip("not a command of this server")
			}
			if len(tc.args) < 2 {
				t.Skip("COMMAND GETKEYS needs at least one argument after the name")
			}
			q := []any{"COMMAND", "GETKEYS"}
			for _, a := range tc.args {
				q = append(q, a)
			}
			v, err := rdb.Do(ctx, q...).Result()
			var want []string
			for _, i := range tc.want {
				want = append(want, tc.args[i])
			}
			if err != nil {
				// Redis answers an error, not an empty array, for a command without keys.
				if len(want) == 0 && strings.Contains(err.Error(), "no key arguments") {
					return
				}
				t.Fatalf("COMMAND GETKEYS %q: %v", tc.args, err)
			}
			var got []string
			for _, k := range v.([]any) {
				got = append(got, fmt.Sprint(k))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("redis says keys of %q are %q, our case says %q", tc.args, got, want)
			}
		})
	}
}
