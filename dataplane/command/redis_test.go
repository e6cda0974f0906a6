package command

import (
	"context"
	"fmt"
	"go/format"
	"maps"
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
	categories              []string       // "@read", ...
	subs                    []redisCommand // the subcommands' own entries ("config|get", ...)
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
		if len(f) >= 7 {
			if cats, ok := f[6].([]any); ok {
				for _, cat := range cats {
					c.categories = append(c.categories, fmt.Sprint(cat))
				}
			}
		}
		if len(f) >= 10 {
			if subs, ok := f[9].([]any); ok {
				c.subcommands = len(subs)
				c.subs = parseCommandReply(t, subs)
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
		checkCategories(t, c.name, s.Categories, c.categories)
		for _, sub := range c.subs {
			sc := LookupSubcommand(sub.name)
			if sc == nil {
				t.Errorf("redis subcommand %q is missing from the table's categories", sub.name)
				continue
			}
			checkCategories(t, sub.name, sc.Categories, sub.categories)
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

// checkCategories compares the table's ACL categories of a command or subcommand with Redis's.
func checkCategories(t *testing.T, name string, have Category, redis []string) {
	t.Helper()
	var want Category
	for _, n := range redis {
		c, ok := LookupCategory(strings.TrimPrefix(n, "@"))
		if !ok {
			t.Errorf("%s: redis category %q unknown to the table", name, n)
			continue
		}
		want |= c
	}
	if have != want {
		t.Errorf("%s: categories %q, redis says %q (regenerate: go test ./dataplane/command -run TestCategoriesMatchRedis -update)", name, have, want)
	}
}

// TestCategoriesMatchRedis regenerates categories.go from the live server with -update; without
// it, it checks that every spec and subcommand has categories (TestTableMatchesRedis compares
// them with Redis's).
func TestCategoriesMatchRedis(t *testing.T) {
	if *update {
		rdb := startRedis(t)
		v, err := rdb.Do(context.Background(), "COMMAND").Result()
		if err != nil {
			t.Fatalf("COMMAND: %v", err)
		}
		cats := map[string]string{}
		var walk func([]redisCommand)
		walk = func(cmds []redisCommand) {
			for _, c := range cmds {
				var expr []string
				for _, n := range c.categories {
					cat, ok := LookupCategory(strings.TrimPrefix(n, "@"))
					if !ok {
						t.Fatalf("%s: unknown category %q", c.name, n)
					}
					expr = append(expr, catConst(cat))
				}
				if len(expr) == 0 {
					expr = []string{"0"}
				}
				cats[c.name] = strings.Join(expr, " | ")
				walk(c.subs)
			}
		}
		walk(parseCommandReply(t, v))
		var b strings.Builder
		b.WriteString("// Code generated by TestCategoriesMatchRedis -update from redis-server's COMMAND reply; DO NOT EDIT.\n\n")
		b.WriteString("package command\n\n")
		b.WriteString("// redisCategories are the ACL categories of every Redis command and subcommand (\"config|set\").\n")
		b.WriteString("var redisCategories = map[string]Category{\n")
		for _, n := range slices.Sorted(maps.Keys(cats)) {
			fmt.Fprintf(&b, "\t%q: %s,\n", n, cats[n])
		}
		b.WriteString("}\n")
		src, err := format.Source([]byte(b.String()))
		if err != nil {
			t.Fatalf("format categories.go: %v", err)
		}
		if err := os.WriteFile("categories.go", src, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("categories.go rewritten; rebuild and run again to check")
		return
	}
	for _, s := range All() {
		if s.Categories == 0 {
			t.Errorf("%s: no ACL categories", s.Name)
		}
		for _, sc := range s.Subcommands {
			if sc.Categories == 0 {
				t.Errorf("%s: no ACL categories", sc.Name)
			}
			if got := LookupSubcommand(strings.ToUpper(sc.Name)); got == nil || got.ID != sc.ID {
				t.Errorf("LookupSubcommand(%q) = %v", sc.Name, got)
			}
		}
	}
}

func catConst(c Category) string {
	names := map[Category]string{
		CatKeyspace: "CatKeyspace", CatRead: "CatRead", CatWrite: "CatWrite", CatSet: "CatSet",
		CatSortedSet: "CatSortedSet", CatList: "CatList", CatHash: "CatHash", CatString: "CatString",
		CatBitmap: "CatBitmap", CatHyperLogLog: "CatHyperLogLog", CatGeo: "CatGeo", CatStream: "CatStream",
		CatPubSub: "CatPubSub", CatAdmin: "CatAdmin", CatFast: "CatFast", CatSlow: "CatSlow",
		CatBlocking: "CatBlocking", CatDangerous: "CatDangerous", CatConnection: "CatConnection",
		CatTransaction: "CatTransaction", CatScripting: "CatScripting",
	}
	return names[c]
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
