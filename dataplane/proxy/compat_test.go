package proxy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestKeylessScriptsOnOneNode: a script that declares no key (EVAL, EVALSHA, FCALL and their
// _RO forms with numkeys 0) runs on one serving node, the same every time, and answers what a
// redis-server answers; a script that declares keys is still routed by them.
func TestKeylessScriptsOnOneNode(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	ring := e.install(t, 2, nodesOf(e))
	ref := redistest.Start(t)
	const lib = "#!lua name=kl\nredis.register_function('klping', function(keys, args) return redis.call('PING') end)\n" +
		"redis.register_function{function_name='klro', callback=function(keys, args) return 'ro' end, flags={'no-writes'}}"
	for _, addr := range []string{e.addr, ref.Addr} {
		if r := string(redistest.DialFrames(t, addr).Do("FUNCTION", "LOAD", lib)); r != "$2\r\nkl\r\n" {
			t.Fatalf("FUNCTION LOAD on %s = %q", addr, r)
		}
	}
	sha := "e0e1f9fabfc9d4800c877a703b823ac0578ff8db" // SHA1 of "return 1"
	steps := []resetStep{
		{cmds: cmds([]string{"EVAL", "return 'x'", "0"}), want: "$1\r\nx\r\n"},
		{cmds: cmds([]string{"EVAL_RO", "return redis.call('PING')", "0"}), want: "+PONG\r\n"},
		{cmds: cmds([]string{"EVAL", "return ARGV[1]", "0", "a"}), want: "$1\r\na\r\n"},
		{cmds: cmds([]string{"EVALSHA", sha, "0"}), want: "-NOSCRIPT No matching script. Please use EVAL.\r\n"},
		{cmds: cmds([]string{"SCRIPT", "LOAD", "return 1"}), want: "$40\r\n" + sha + "\r\n"},
		{cmds: cmds([]string{"EVALSHA", sha, "0"}), want: ":1\r\n"},
		{cmds: cmds([]string{"EVALSHA_RO", sha, "0"}), want: ":1\r\n"},
		{cmds: cmds([]string{"FCALL", "klping", "0"}), want: "+PONG\r\n"},
		{cmds: cmds([]string{"FCALL_RO", "klro", "0"}), want: "$2\r\nro\r\n"},
		{cmds: cmds([]string{"FCALL", "nosuch", "0"})},
		{cmds: cmds([]string{"EVAL", "return redis.call('nosuch')", "0"})},
	}
	checkResetScript(t, e.addr, ref.Addr, steps)

	// Every keyless call went to the same node: the counter its script bumps lives there only.
	rc := redistest.DialFrames(t, e.addr)
	const n = 20
	for range n {
		if r := string(rc.Do("EVAL", "return redis.call('INCR', 'kl:count')", "0")); r[0] != ':' {
			t.Fatalf("keyless EVAL = %q", r)
		}
	}
	on := 0
	for _, s := range e.servers {
		if v, err := s.Do("GET", "kl:count"); err == nil {
			on++
			if v != strconv.Itoa(n) {
				t.Errorf("node %s: kl:count = %v, want %d", s.Addr, v, n)
			}
		}
	}
	if on != 1 {
		t.Errorf("keyless scripts ran on %d nodes, want 1", on)
	}

	// Declared keys still route: each key's script runs on that key's node.
	for i, s := range e.servers {
		k := keyOn(t, ring, i, "kls:")
		if r := string(rc.Do("EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", k)); r != "+OK\r\n" {
			t.Fatalf("EVAL on %s = %q", k, r)
		}
		if v, err := s.Do("GET", k); err != nil || v != "v" {
			t.Errorf("node %d: %s = %v, %v; want the script run on the key's node", i, k, v, err)
		}
	}
	a, b := keyOn(t, ring, 0, "klx:"), keyOn(t, ring, 1, "klx:")
	if r := string(rc.Do("EVAL", "return 1", "2", a, b)); !strings.HasPrefix(r, "-CROSSSLOT") {
		t.Errorf("EVAL over two nodes' keys = %q, want CROSSSLOT", r)
	}
}

// TestHelpSubcommandsFromAnyNode: HELP subcommands of the keyed containers name no key but
// are every server's alike: answered as redis-server answers them.
func TestHelpSubcommandsFromAnyNode(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	e.install(t, 2, nodesOf(e))
	ref := redistest.Start(t)
	var steps []resetStep
	for _, c := range []string{"OBJECT", "XINFO", "XGROUP", "MEMORY", "object"} {
		steps = append(steps, resetStep{cmds: cmds([]string{c, "HELP"})})
	}
	checkResetScript(t, e.addr, ref.Addr, steps)
	// A keyless subcommand that describes one server is still refused: the proxy cannot pick
	// it for the client.
	if r := string(redistest.DialFrames(t, e.addr).Do("MEMORY", "STATS")); !strings.HasPrefix(r, "-ERR 'memory' without keys") {
		t.Errorf("MEMORY STATS = %q", r)
	}
}

// TestSortPatternsOnOneNode: on a ring of several nodes, a SORT whose BY or GET pattern may
// name keys on another node is refused with Redis Cluster's error, rather than answered from
// the sorted key's node alone; one whose patterns carry a hash tag of the key's node runs,
// as does any SORT on a one-node ring.
func TestSortPatternsOnOneNode(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 3})
	e.install(t, 2, nodesOf(e))
	rc := redistest.DialFrames(t, e.addr)
	for _, c := range [][]string{
		{"RPUSH", "{s}l", "1", "2", "3"}, {"MSET", "{s}w_1", "3", "{s}w_2", "2", "{s}w_3", "1"},
		{"MSET", "{s}o_1", "a", "{s}o_2", "b", "{s}o_3", "c"},
	} {
		if r := string(rc.Do(c...)); r[0] == '-' {
			t.Fatalf("%q: %q", c, r)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"SORT", "{s}l", "BY", "w_*"}, "-ERR BY option of SORT denied in Cluster mode.\r\n"},
		{[]string{"SORT_RO", "{s}l", "GET", "o_*"}, "-ERR GET option of SORT denied in Cluster mode.\r\n"},
		{[]string{"SORT", "{s}l", "BY", "{s}w_*", "GET", "{*}o_*"}, "-ERR GET option of SORT denied in Cluster mode.\r\n"},
		{[]string{"SORT", "{s}l", "BY", "{s}w_*"}, "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n"},
		{[]string{"SORT", "{s}l", "BY", "{s}w_*", "GET", "#", "GET", "{s}o_*", "LIMIT", "0", "1"}, "*2\r\n$1\r\n3\r\n$1\r\nc\r\n"},
		{[]string{"SORT", "{s}l", "BY", "nosort", "GET", "#"}, "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"},
	} {
		if r := string(rc.Do(tc.args...)); r != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, r, tc.want)
		}
	}

	one := startEnv(t, envOpts{nodes: 1})
	one.install(t, 2, nodesOf(one))
	r1 := redistest.DialFrames(t, one.addr)
	r1.Do("RPUSH", "l", "1", "2")
	r1.Do("MSET", "w_1", "2", "w_2", "1")
	if r := string(r1.Do("SORT", "l", "BY", "w_*")); r != "*2\r\n$1\r\n2\r\n$1\r\n1\r\n" {
		t.Errorf("SORT BY on a one-node ring = %q", r)
	}
}
