package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// sameReplies sends each command through asterd and to a redis-server on one connection
// each, in order, and fails every command whose replies differ byte for byte.
func sameReplies(t *testing.T, proxyAddr, refAddr string, cmds [][]string) {
	t.Helper()
	p, r := redistest.DialFrames(t, proxyAddr), redistest.DialFrames(t, refAddr)
	for _, c := range cmds {
		if got, want := string(p.Do(c...)), string(r.Do(c...)); got != want {
			t.Errorf("%q:\n  asterd %q\n  redis  %q", c, got, want)
		}
	}
}

// TestCompatRedisCluster checks, in front of a real Redis Cluster, that asterd answers as a
// cluster node does: keyless scripts and HELP subcommands run on a master.
func TestCompatRedisCluster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	waitServing(t, a.client(t), 10*time.Second)
	// The reference is the node of the hash tag the bad inputs' keys use: it answers them
	// rather than MOVED.
	ref := rc.MasterOf(int(route.Slot([]byte("{t}")))).Addr

	t.Run("keyless scripts", func(t *testing.T) {
		const lib = "#!lua name=kl\nredis.register_function('klping', function(keys, args) return redis.call('PING') end)"
		if r := string(redistest.DialFrames(t, a.Addr).Do("FUNCTION", "LOAD", lib)); r != "$2\r\nkl\r\n" {
			t.Fatalf("FUNCTION LOAD = %q", r)
		}
		sameReplies(t, a.Addr, ref, [][]string{
			{"EVAL", "return 'x'", "0"},
			{"EVAL_RO", "return redis.call('PING')", "0"},
			{"EVAL", "return ARGV[1]", "0", "a"},
			{"SCRIPT", "LOAD", "return 1"},
			{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
			{"EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
			{"FCALL", "klping", "0"},
			{"FCALL", "nosuch", "0"},
		})
	})
	t.Run("bad input", func(t *testing.T) {
		var cmds [][]string
		for _, c := range badInputs {
			if !c.standaloneOnly {
				cmds = append(cmds, c.args)
			}
		}
		sameReplies(t, a.Addr, ref, cmds)
		sameReplies(t, a.Addr, ref, badInMulti)
	})
	t.Run("COMMAND", func(t *testing.T) { commandChecks(t, a.Addr, ref) })
	t.Run("keyspace notifications", func(t *testing.T) {
		// Each master publishes its own keys' events only: refused rather than delivered
		// from one master.
		for _, c := range [][]string{
			{"PSUBSCRIBE", "__keyspace@0__:*"}, {"PSUBSCRIBE", "news.*", "__key*@*"},
			{"SUBSCRIBE", "__keyevent@0__:set"}, {"subscribe", "a", "__keyspace@0__:k"},
		} {
			if r := string(redistest.DialFrames(t, a.Addr).Do(c...)); !strings.HasPrefix(r, "-ERR keyspace notifications") {
				t.Errorf("%q = %q, want the proxy's refusal", c, r)
			}
		}
		p := redistest.DialFrames(t, a.Addr)
		if r := string(p.Do("PSUBSCRIBE", "news.*")); r != "*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n" {
			t.Fatalf("PSUBSCRIBE news.* = %q", r)
		}
		if r := string(p.Do("PSUBSCRIBE", "__keyevent@*")); !strings.HasPrefix(r, "-ERR keyspace notifications") {
			t.Errorf("PSUBSCRIBE __keyevent@* in subscribed mode = %q", r)
		}
		if r := string(p.Do("PUNSUBSCRIBE", "news.*")); r != "*3\r\n$12\r\npunsubscribe\r\n$6\r\nnews.*\r\n:0\r\n" {
			t.Errorf("PUNSUBSCRIBE news.* = %q", r)
		}
	})
	t.Run("help subcommands", func(t *testing.T) {
		sameReplies(t, a.Addr, ref, [][]string{{"OBJECT", "HELP"}, {"XINFO", "HELP"}, {"XGROUP", "HELP"}, {"MEMORY", "HELP"}})
	})
}

// badInput is a command asterd checks the arguments of itself (the command table's arity,
// key finders, subcommands; what it answers locally), sent with bad arguments.
type badInput struct {
	args []string
	// standaloneOnly: a Redis Cluster node answers it otherwise than a plain server (the
	// proxy answers as one cluster node that owns every slot, holding db 0 only).
	standaloneOnly bool
}

// badInputs cover every place asterd checks arguments: each must be answered as redis-server
// 7.0 answers it. Keys carry one hash tag so that a Redis Cluster node answers the error
// rather than MOVED.
var badInputs = []badInput{
	// Key finders (numkeys, key/value pairs, STREAMS, subcommands): the servers' own errors.
	{args: []string{"MSETNX", "{t}a", "1", "{t}b"}},
	{args: []string{"MSET", "{t}a", "1", "{t}b"}},
	{args: []string{"LMPOP", "0", "{t}l", "LEFT"}},
	{args: []string{"LMPOP", "x", "{t}l", "LEFT"}},
	{args: []string{"LMPOP", "-1", "{t}l", "LEFT"}},
	{args: []string{"LMPOP", "3", "{t}l", "LEFT"}},
	{args: []string{"ZMPOP", "0", "{t}z", "MIN"}},
	{args: []string{"BZMPOP", "0", "0", "{t}z", "MIN"}},
	{args: []string{"BLMPOP", "0", "0", "{t}l", "LEFT"}},
	{args: []string{"BLMPOP", "0", "5", "{t}l", "LEFT"}},
	{args: []string{"SINTERCARD", "0", "{t}a"}},
	{args: []string{"SINTERCARD", "5", "{t}a"}},
	{args: []string{"SINTERCARD", "-1", "{t}a"}},
	{args: []string{"ZUNION", "0", "{t}z"}},
	{args: []string{"ZUNION", "5", "{t}z"}},
	{args: []string{"ZINTER", "0", "{t}z"}},
	{args: []string{"ZDIFF", "0", "{t}z"}},
	{args: []string{"ZINTERCARD", "0", "{t}z"}},
	{args: []string{"ZUNIONSTORE", "{t}d", "0", "{t}z"}},
	{args: []string{"ZUNIONSTORE", "{t}d", "-1", "{t}z"}},
	{args: []string{"ZDIFFSTORE", "{t}d", "0", "{t}z"}},
	{args: []string{"ZINTERSTORE", "{t}d", "9", "{t}z"}},
	{args: []string{"EVAL", "return 1", "-1"}},
	{args: []string{"EVAL", "return 1", "2", "{t}k"}},
	{args: []string{"EVAL", "return 1", "x"}},
	{args: []string{"EVAL", "return 1", "99999999999"}},
	{args: []string{"EVAL_RO", "return 1", "-1"}},
	{args: []string{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "-1"}},
	{args: []string{"EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "3", "{t}k"}},
	{args: []string{"FCALL", "f", "-1"}},
	{args: []string{"FCALL_RO", "f", "2", "{t}k"}},
	{args: []string{"XREAD", "STREAMS", "{t}a", "{t}b", "0"}},
	{args: []string{"XREAD", "COUNT", "1", "{t}a", "0"}},
	{args: []string{"XREAD", "BLOCK", "10", "STREAMS", "{t}a", "{t}b", "0"}},
	{args: []string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "{t}a", "{t}b", "0"}},
	{args: []string{"OBJECT", "FOO", "{t}k"}},
	{args: []string{"OBJECT", "ENCODING"}},
	{args: []string{"XINFO", "FOO"}},
	{args: []string{"XGROUP", "FOO", "{t}k"}},
	{args: []string{"MEMORY", "FOO"}},
	{args: []string{"MEMORY", "USAGE"}},
	{args: []string{"SORT", "{t}k", "STORE"}},
	{args: []string{"GEORADIUS", "{t}k", "0", "0", "1", "km", "STORE"}},
	{args: []string{"SCRIPT", "FOO"}},
	{args: []string{"SCRIPT", "EXISTS"}},
	{args: []string{"FUNCTION", "FOO"}},
	{args: []string{"PUBSUB", "FOO"}},
	{args: []string{"ACL", "FOO"}},
	{args: []string{"LATENCY", "FOO"}},
	// Arity, as Redis checks it, of what asterd answers itself.
	{args: []string{"PING", "x", "y"}},
	{args: []string{"PING", "x", "y", "z"}},
	{args: []string{"ECHO"}},
	{args: []string{"ECHO", "a", "b"}},
	{args: []string{"SELECT"}},
	{args: []string{"SELECT", "0", "1"}},
	{args: []string{"SELECT", "x"}, standaloneOnly: true},
	{args: []string{"SELECT", "-1"}, standaloneOnly: true},
	{args: []string{"SELECT", "16"}, standaloneOnly: true},
	{args: []string{"AUTH"}},
	{args: []string{"AUTH", "a", "b", "c"}},
	{args: []string{"AUTH", "x"}},
	{args: []string{"AUTH", "nouser", "x"}},
	{args: []string{"AUTH", "default", "x"}},
	{args: []string{"HELLO", "4"}},
	{args: []string{"HELLO", "x"}},
	{args: []string{"HELLO", "2", "x"}},
	{args: []string{"HELLO", "3", "AUTH", "a"}},
	{args: []string{"HELLO", "2", "AUTH", "default"}},
	{args: []string{"HELLO", "2", "AUTH", "nouser", "x"}},
	{args: []string{"HELLO", "2", "SETNAME"}},
	{args: []string{"COMMAND", "COUNT", "x"}},
	{args: []string{"COMMAND", "HELP", "x"}},
	{args: []string{"COMMAND", "FOO"}},
	{args: []string{"COMMAND", "GETKEYS"}},
	{args: []string{"COMMAND", "GETKEYS", "get"}},
	{args: []string{"COMMAND", "GETKEYS", "nosuch"}},
	{args: []string{"CLIENT"}},
	{args: []string{"CLIENT", "FOO"}},
	{args: []string{"CLIENT", "ID", "x"}},
	{args: []string{"CLIENT", "GETNAME", "x"}},
	{args: []string{"CLIENT", "SETNAME"}},
	{args: []string{"CLIENT", "SETNAME", "a", "b"}},
	{args: []string{"CLIENT", "SETNAME", "a b"}},
	{args: []string{"CLIENT", "INFO", "x"}},
	{args: []string{"CLUSTER"}},
	{args: []string{"CLUSTER", "FOO"}},
	{args: []string{"CLUSTER", "INFO", "x"}},
	{args: []string{"CLUSTER", "KEYSLOT"}},
	{args: []string{"CONFIG"}},
	{args: []string{"CONFIG", "FOO"}},
	{args: []string{"CONFIG", "GET"}},
	{args: []string{"CONFIG", "SET", "a"}},
	{args: []string{"CONFIG", "SET", "a", "b", "c"}},
	{args: []string{"SLOWLOG"}},
	{args: []string{"SLOWLOG", "FOO"}},
	{args: []string{"SLOWLOG", "GET", "1", "2"}},
	{args: []string{"SLOWLOG", "LEN", "x"}},
	{args: []string{"SLOWLOG", "RESET", "x"}},
	{args: []string{"READONLY", "x"}},
	{args: []string{"READWRITE", "x"}},
	{args: []string{"RESET", "x"}},
	{args: []string{"INFO", "nosuchsection"}, standaloneOnly: true},
	{args: []string{"GET"}},
	{args: []string{"NOSUCH", "a"}},
}

// badInMulti: commands Redis refuses inside a transaction, and what EXEC answers then.
var badInMulti = [][]string{
	{"MULTI"}, {"SAVE"}, {"SHUTDOWN"}, {"SET", "{t}k", "v"}, {"EXEC"},
	{"MULTI"}, {"LMPOP", "0", "{t}l", "LEFT"}, {"EVAL", "return 1", "-1"}, {"EXEC"},
	{"MULTI"}, {"PING", "a", "b"}, {"EXEC"},
}

// TestCompatStandalone checks, in front of three plain servers, that asterd answers bad input
// byte for byte as a redis-server does, and AUTH as a server without a password does.
func TestCompatStandalone(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a := startAsterd(t, `
[[clusters]]
name = "compat"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+"\n")
	ref := redistest.Start(t).Addr
	var cmds [][]string
	for _, c := range badInputs {
		cmds = append(cmds, c.args)
	}
	sameReplies(t, a.Addr, ref, cmds)
	sameReplies(t, a.Addr, ref, badInMulti)
	commandChecks(t, a.Addr, ref)
	// HELLO with AUTH of the default user, which has no password: accepted (the reply is
	// the server's details, which differ).
	for _, addr := range []string{a.Addr, ref} {
		if r := string(redistest.DialFrames(t, addr).Do("HELLO", "3", "AUTH", "default", "x")); !strings.HasPrefix(r, "%7\r\n") {
			t.Errorf("%s: HELLO 3 AUTH default x = %q", addr, r)
		}
	}
}

// commandChecks: COMMAND answers as the servers do, for what asterd serves.
func commandChecks(t *testing.T, proxyAddr, refAddr string) {
	t.Helper()
	sameReplies(t, proxyAddr, refAddr, [][]string{
		{"COMMAND", "GETKEYS", "EVAL", "return 1", "0"},
		{"COMMAND", "GETKEYS", "SORT", "{t}k", "BY", "x", "STORE", "{t}d"},
		{"COMMAND", "GETKEYSANDFLAGS", "SET", "{t}a", "b"},
		{"COMMAND", "GETKEYSANDFLAGS", "LMOVE", "{t}a", "{t}b", "LEFT", "RIGHT"},
		{"COMMAND", "GETKEYS", "GET", "a", "b"},
		{"COMMAND", "DOCS", "get"},
		{"COMMAND", "DOCS", "nosuch"},
		{"COMMAND", "HELP"},
		{"COMMAND", "LIST", "FILTERBY", "MODULE", "x"},
		{"COMMAND", "LIST", "FILTERBY", "PATTERN"},
		{"COMMAND", "LIST", "FILTERBY", "NOSUCH", "x"},
		{"COMMAND", "LIST", "x"},
	})
	p := redistest.DialFrames(t, proxyAddr)
	if r := string(p.Do("COMMAND", "GETKEYS", "MOVE", "k", "1")); r != "-ERR Invalid command specified\r\n" {
		t.Errorf("COMMAND GETKEYS of a refused command = %q", r)
	}
	list := string(p.Do("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG*"))
	for _, want := range []string{"$6\r\nconfig\r\n", "$10\r\nconfig|get\r\n", "$10\r\nconfig|set\r\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("COMMAND LIST FILTERBY PATTERN CONFIG* = %q: %q missing", list, want)
		}
	}
	if strings.Contains(list, "resetstat") {
		t.Errorf("COMMAND LIST FILTERBY PATTERN CONFIG* = %q: lists CONFIG RESETSTAT, which asterd refuses", list)
	}
	if l := string(p.Do("COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting")); !strings.Contains(l, "$4\r\neval\r\n") || !strings.Contains(l, "script|load") || strings.Contains(l, "script|debug") {
		t.Errorf("COMMAND LIST FILTERBY ACLCAT scripting = %q", l)
	}
	for _, c := range []string{"memory", "object", "xinfo"} {
		// A container has no flags of its own in Redis (movablekeys belongs to subcommands).
		if r := string(p.Do("COMMAND", "INFO", c)); !strings.Contains(r, ":-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n") {
			t.Errorf("COMMAND INFO %s = %q, want no flags nor keys, as Redis", c, r)
		}
	}
	if r := string(p.Do("COMMAND", "INFO", "config")); !strings.Contains(r, "config|get") || strings.Contains(r, "config|rewrite") {
		t.Errorf("COMMAND INFO config = %q, want its served subcommands", r)
	}
}
