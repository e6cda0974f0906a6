package acl

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/internal/redistest"
)

// diffUsers are users whose rules the differential tests give both to Compile and, as ACL
// SETUSER, to a real redis-server. keys nil: every key; an empty list: none.
var diffUsers = []struct {
	commands string
	keys     []string
}{
	{"+@all -@dangerous", []string{"app:*"}},
	{"-@all +@read -@keyspace", nil},
	{"-@all +get +set +config|get", []string{"app:*", "b?[xy]"}},
	{"+@all -@admin +config", []string{"*"}},
	{"nocommands +@string -@write +mset -get", []string{`\*lit`, "[^a]*"}},
	{"allcommands -@slow +slowlog|get", []string{}},
	{"+@admin -@dangerous", nil},
	{"+@all -client +client|id +client|setname -@blocking", nil},
	{"+@scripting +@transaction -evalsha +@list", []string{"x*", "app:*"}},
	{"+@keyspace +@pubsub +@connection", []string{"k[a-c]", `k\?`, "app:?"}},
	{"", []string{"a*"}},
	{"+@all -@all +@write -set +@fast -@hash", []string{"app:*"}},
	{"+@slow -config|get -slowlog +@geo -@read", nil},
	{"+@all -config -@scripting +eval", []string{"app:*"}},
	{"-@all +@admin -config|set +@stream -xadd", []string{"app:*"}},
	{"+cluster +command|count +object -object|help +memory|usage", []string{"app:*"}},
	{"+@ALL -@Dangerous +FLUSHDB", []string{"app:*"}},
}

// diffCommands are the commands the differential tests ask about: well-formed, so that Redis's
// ACL DRYRUN accepts them, and spanning categories, subcommands and key positions.
var diffCommands = [][]string{
	{"get", "app:1"}, {"get", "x"}, {"set", "app:1", "v"}, {"set", "x", "v"},
	{"getex", "app:1", "persist"}, {"incr", "bax"}, {"incr", "bqz"},
	{"mget", "app:1", "app:2"}, {"mget", "app:1", "x"}, {"mget", "x*", "xy"},
	{"mset", "app:1", "v", "app:2", "v"}, {"mset", "app:1", "v", "x", "v"},
	{"del", "app:1"}, {"del", "app:1", "x"}, {"unlink", "x"}, {"exists", "app:1", "app:2"},
	{"touch", "app:1", "zz"}, {"expire", "app:1", "10"}, {"ttl", "x"}, {"type", "ka"},
	{"type", "kd"}, {"type", "k?"}, {"type", "kx"}, {"type", "app:x"}, {"type", "app:xx"},
	{"get", "*lit"}, {"get", "xlit"}, {"get", "alit"}, {"get", "blit"},
	{"eval", "return 1", "1", "app:1"}, {"eval", "return 1", "2", "app:1", "x"},
	{"eval", "return 1", "0"}, {"evalsha", "0000000000000000000000000000000000000000", "1", "xa"},
	{"eval_ro", "return 1", "1", "xb"}, {"fcall", "f", "1", "x"}, {"fcall_ro", "f", "0"},
	{"blpop", "app:l", "0"}, {"blpop", "app:l", "x", "0"}, {"brpoplpush", "app:a", "x", "0"},
	{"blmove", "app:a", "app:b", "left", "right", "0"}, {"lpush", "app:l", "v"}, {"lpush", "xl", "v"},
	{"blmpop", "0", "2", "app:a", "x", "left"}, {"bzpopmin", "app:z", "0"},
	{"watch", "app:1"}, {"watch", "app:1", "x"}, {"multi"}, {"exec"}, {"discard"}, {"unwatch"},
	{"sort", "app:l"}, {"sort", "app:l", "store", "x"}, {"sort", "app:l", "store", "app:d"},
	{"sort_ro", "app:l"}, {"keys", "*"}, {"scan", "0"}, {"randomkey"}, {"dbsize"},
	{"flushall"}, {"flushdb"}, {"swapdb", "0", "1"}, {"move", "app:1", "1"},
	{"config", "get", "maxmemory"}, {"config", "set", "maxmemory", "0"}, {"config", "resetstat"},
	{"config", "rewrite"}, {"config", "help"},
	{"slowlog", "get"}, {"slowlog", "reset"}, {"slowlog", "len"},
	{"client", "id"}, {"client", "setname", "x"}, {"client", "getname"}, {"client", "list"},
	{"client", "kill", "1.2.3.4:5"}, {"info"}, {"ping"}, {"echo", "x"}, {"auth", "a", "b"},
	{"hello", "3"}, {"select", "0"}, {"command", "count"}, {"command", "docs"}, {"command"},
	{"cluster", "info"}, {"cluster", "keyslot", "x"}, {"readonly"},
	{"publish", "ch", "m"}, {"subscribe", "ch"}, {"psubscribe", "c*"}, {"spublish", "app:ch", "m"},
	{"ssubscribe", "x"}, {"pubsub", "numsub", "a"}, {"pubsub", "channels"},
	{"object", "encoding", "x"}, {"object", "encoding", "app:1"}, {"object", "help"},
	{"memory", "usage", "x"}, {"memory", "usage", "app:1"}, {"memory", "stats"},
	{"xread", "streams", "app:s", "x", "0", "0"}, {"xread", "count", "1", "streams", "app:s", "0"},
	{"xadd", "app:s", "*", "f", "v"}, {"xgroup", "create", "app:s", "g", "$"},
	{"xinfo", "stream", "x"}, {"xrange", "app:s", "-", "+"},
	{"zunionstore", "app:d", "2", "app:a", "x"}, {"zunionstore", "app:d", "2", "app:a", "app:b"},
	{"zadd", "app:z", "1", "m"}, {"georadius", "app:g", "0", "0", "1", "km", "store", "x"},
	{"georadius", "app:g", "0", "0", "1", "km"}, {"geoadd", "app:g", "0", "0", "m"},
	{"bitop", "and", "app:d", "app:a", "x"}, {"lcs", "app:a", "x"}, {"copy", "app:a", "x"},
	{"rename", "app:a", "app:b"}, {"smove", "app:a", "x", "m"}, {"pfcount", "app:h", "x"},
	{"hset", "app:h", "f", "v"}, {"hset", "xh", "f", "v"}, {"sadd", "app:s", "m"},
	{"script", "load", "return 1"}, {"script", "flush"}, {"script", "exists", "a"},
	{"function", "list"}, {"function", "flush"}, {"latency", "latest"},
	{"acl", "whoami"}, {"acl", "list"}, {"debug", "sleep", "0"}, {"shutdown"}, {"save"},
	{"wait", "0", "0"}, {"lastsave"}, {"time"}, {"role"}, {"monitor"}, {"failover"},
	{"bgsave"}, {"replicaof", "no", "one"}, {"module", "list"},
}

// redisUser sets up user name on the server with the rules of a diffUsers entry.
func redisUser(t *testing.T, s *redistest.Server, name, commands string, keys []string) {
	t.Helper()
	args := []any{"ACL", "SETUSER", name, "reset", "on", "nopass", "&*"}
	if strings.TrimSpace(commands) == "" {
		args = append(args, "+@all")
	}
	for _, r := range strings.Fields(commands) {
		args = append(args, r)
	}
	if keys == nil {
		args = append(args, "allkeys")
	}
	for _, k := range keys {
		args = append(args, "~"+k)
	}
	if _, err := s.Do(args...); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
}

// wholeKeyspaceCmd: the proxy refuses these to a user with restricted keys where Redis runs them.
func wholeKeyspaceCmd(name string) bool {
	return slices.Contains([]string{"keys", "scan", "randomkey", "dbsize", "flushall", "flushdb", "swapdb"}, name)
}

// TestCheckMatchesRedis is the differential test: for every user of diffUsers and every command
// of diffCommands, Check allows exactly what Redis 7.0's ACL DRYRUN allows, and where both refuse
// the command, the proxy's error is the one a real server answers the same user. The one
// deliberate differences: commands that reach the whole keyspace without naming keys, and
// scripts that declare no key, are refused to users with restricted keys.
func TestCheckMatchesRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for i, du := range diffUsers {
		name := fmt.Sprintf("u%d", i)
		redisUser(t, srv, name, du.commands, du.keys)
		u, err := Compile(name, du.commands, du.keys)
		if err != nil {
			t.Fatalf("user %d %q: %v", i, du.commands, err)
		}
		as := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: name, Password: "x",
			Protocol: 2, DisableIdentity: true, MaxRetries: -1})
		for _, args := range diffCommands {
			q := []any{"ACL", "DRYRUN", name}
			bargs := make([][]byte, len(args))
			for j, a := range args {
				q = append(q, a)
				bargs[j] = []byte(a)
			}
			v, err := srv.Do(q...)
			if err != nil {
				t.Fatalf("%q: %v", q, err)
			}
			redisOK := v == "OK"
			spec := command.Lookup(bargs[0])
			if spec == nil || !spec.CheckArity(len(bargs)) {
				t.Fatalf("%q: not a well-formed command of the table", args)
			}
			msg, _ := u.Check(spec, bargs, nil)
			what := fmt.Sprintf("user %q ~%q, %q", du.commands, du.keys, args)
			if redisOK && msg != "" && wholeKeyspaceCmd(spec.Name) && !u.AllKeys() {
				if msg != ErrKey {
					t.Errorf("%s: proxy says %q, want %q", what, msg, ErrKey)
				}
				continue
			}
			if redisOK && msg != "" && isScript(spec.Name) && !u.AllKeys() && args[2] == "0" {
				// Redis checks the keys a script reaches as it runs; the proxy cannot.
				if msg != ErrKeylessScript {
					t.Errorf("%s: proxy says %q, want %q", what, msg, ErrKeylessScript)
				}
				continue
			}
			if redisOK != (msg == "") {
				t.Errorf("%s: redis DRYRUN says %q, proxy says %q", what, v, msg)
				continue
			}
			if redisOK || spec.Name == "debug" { // DEBUG: refused as disabled first
				continue
			}
			// Refused by both: the real server answers the user with its error, and does not
			// run the command.
			err = as.Do(ctx, q[3:]...).Err()
			if err == nil || as72(err.Error(), name) != msg {
				t.Errorf("%s: redis answers %v, proxy %q", what, err, msg)
			}
		}
		_ = as.Close()
	}
}

// TestSortOptionsMatchRedis: SORT's BY pattern and GET read keys SORT does not name; Redis
// refuses them to a user without every key, and so does Check, with the same texts.
func TestSortOptionsMatchRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	if _, err := srv.Do("RPUSH", "app:l", "3", "1", "2"); err != nil {
		t.Fatal(err)
	}
	redisUser(t, srv, "s", "+@all", []string{"app:*"})
	u, err := Compile("s", "+@all", []string{"app:*"})
	if err != nil {
		t.Fatal(err)
	}
	as := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "s", Password: "x",
		Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer as.Close()
	for _, args := range [][]string{
		{"sort", "app:l"}, {"sort", "app:l", "by", "nosort"}, {"sort", "app:l", "by", "w*"},
		{"sort", "app:l", "get", "#"}, {"sort", "app:l", "limit", "0", "1", "get", "x"},
		{"sort", "app:l", "store", "app:d", "get", "x"}, {"sort", "app:l", "by", "w*", "get", "x"},
		{"sort", "app:l", "desc", "alpha", "by", "x"}, {"sort", "app:l", "get"},
		{"sort_ro", "app:l", "get", "#"}, {"sort_ro", "app:l", "by", "x*"}, {"sort", "app:l", "BY", "K*"},
		{"sort", "app:l", "LIMIT", "0", "1", "GET", "x"},
	} {
		var q []any
		bargs := make([][]byte, len(args))
		for j, a := range args {
			q = append(q, a)
			bargs[j] = []byte(a)
		}
		msg, _ := u.Check(command.Lookup(bargs[0]), bargs, nil)
		err := as.Do(ctx, q...).Err()
		redisMsg := ""
		if err != nil && strings.Contains(err.Error(), "ACL") {
			redisMsg = err.Error()
		}
		if msg != redisMsg {
			t.Errorf("%q: redis answers %v, proxy %q", args, err, msg)
		}
	}
}

// TestMatchMatchesRedis compares Match with Redis's own glob (KEYS pattern runs the same
// stringmatchlen as ~pattern): hand-picked cases, then random patterns over a small alphabet
// full of special characters.
func TestMatchMatchesRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	ctx := context.Background()
	rng := rand.New(rand.NewSource(15))
	keys := map[string]bool{}
	for _, k := range []string{"a", "b", "ab", "ba", "abc", "a*", "*", "?", "[", "]", "-", `\`, "^",
		"app:1", "app:", "app:xy", "b[x", "\xff", "\x80a", "\x7f", "aaaaaaaaab", "a-b", "a]"} {
		keys[k] = true
	}
	alpha := []byte(`ab*?[]^-\`)
	for len(keys) < 300 {
		b := make([]byte, rng.Intn(6))
		for i := range b {
			b[i] = alpha[rng.Intn(len(alpha))]
		}
		keys[string(b)] = true
	}
	delete(keys, "")
	pipe := rdb.Pipeline()
	for k := range keys {
		pipe.Set(ctx, k, "1", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	patterns := []string{"*", "a*", "*b", "a?c", "[ab]", "[^ab]", "[a-b]*", "[b-a]", `\*`, `a\`, `[\]]`,
		"[", "[a", "[^", "a[", "[]", "[]]", "[a-]", "[-a]", `[\`, "**", "*a*b*", "app:*", "?",
		"[\x80-\xff]*", "[\x00-\x7f]", "a*a*a*a*a*a*a*b", `\a\b`, "[!a]", "*[", "*[a"}
	for len(patterns) < 400 {
		b := make([]byte, 1+rng.Intn(7))
		for i := range b {
			b[i] = alpha[rng.Intn(len(alpha))]
		}
		patterns = append(patterns, string(b))
	}
	for _, p := range patterns {
		got, err := rdb.Keys(ctx, p).Result()
		if err != nil {
			t.Fatalf("KEYS %q: %v", p, err)
		}
		redisMatch := map[string]bool{}
		for _, k := range got {
			redisMatch[k] = true
		}
		for k := range keys {
			if Match([]byte(p), []byte(k)) != redisMatch[k] {
				t.Errorf("pattern %q key %q: redis matches %v, Match %v", p, k, redisMatch[k], !redisMatch[k])
			}
		}
	}
}

// as72 words a refusal of the redis-server 7.0 the tests run as Redis 7.2 and later do, as the
// proxy answers.
func as72(msg, user string) string {
	msg = strings.Replace(msg, "NOPERM this user has no permissions to run the '",
		"NOPERM User "+user+" has no permissions to run the '", 1)
	return strings.Replace(msg, "NOPERM this user has no permissions to access one of the keys used as arguments",
		ErrKey, 1)
}
