package acl

import (
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/command"
)

func check(t *testing.T, u *User, args ...string) string {
	t.Helper()
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	spec := command.Lookup(b[0])
	if spec == nil {
		t.Fatalf("unknown command %q", args[0])
	}
	msg, _ := u.Check(spec, b, nil)
	return msg
}

func TestCompileRejectsBadRules(t *testing.T) {
	for _, tc := range []struct{ commands, want string }{
		{"+@foo", `rule "+@foo": unknown command category`},
		{"+nosuch", `rule "+nosuch": unknown command`},
		{"-nosuch", `rule "-nosuch": unknown command`},
		{"+config|nosuch", `rule "+config|nosuch": unknown subcommand`},
		{"+config|", `rule "+config|": empty subcommand`},
		{"+select|0", `rule "+select|0": 'select' has no subcommands`},
		{"get", `rule "get": not a command rule`},
		{"~app:*", `rule "~app:*": not a command rule`},
		{"on", `rule "on": not a command rule`},
		{"+", `rule "+": not a command rule`},
		{"+@all >secret", `rule ">secret": not a command rule`},
	} {
		_, err := Compile("u", tc.commands, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Compile(%q) = %v, want %q...", tc.commands, err, tc.want)
		}
	}
	if _, err := Compile("u", "", make([]string, MaxPatterns+1)); err == nil {
		t.Errorf("%d patterns accepted", MaxPatterns+1)
	}
	if _, err := Compile("u", "", []string{strings.Repeat("a", MaxPatternLen+1)}); err == nil {
		t.Errorf("pattern of %d bytes accepted", MaxPatternLen+1)
	}
}

// TestProxyCommands: the proxy's own administration (HOTKEY ENABLE/DISABLE/RESET/GET) is @admin
// and @dangerous, so that "-@admin" or "-@dangerous" refuses it as it refuses CONFIG SET and
// SLOWLOG RESET (Redis's own categories for those).
func TestProxyCommands(t *testing.T) {
	for _, rules := range []string{"+@all -@admin", "+@all -@dangerous"} {
		u, err := Compile("app", rules, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]string{
			{"hotkey", "enable"}, {"hotkey", "disable"}, {"hotkey", "reset"}, {"hotkey", "get"},
			{"config", "set", "cluster.c.slowlog-max-len", "1"}, {"config", "resetstat"},
			{"slowlog", "reset"}, {"slowlog", "get"}, {"config", "get", "*"},
		} {
			want := "NOPERM User app has no permissions to run the '" + c[0] + "|" + c[1] + "' command"
			if got := check(t, u, c...); got != want {
				t.Errorf("%s: %q: %q, want %q", rules, c, got, want)
			}
		}
		for _, c := range [][]string{{"hotkey", "help"}, {"get", "k"}, {"ping"}} {
			if got := check(t, u, c...); got != "" {
				t.Errorf("%s: %q refused: %q", rules, c, got)
			}
		}
	}
	u, _ := Compile("app", "-@all +hotkey|get", nil)
	if check(t, u, "hotkey", "get") != "" || check(t, u, "hotkey", "reset") == "" {
		t.Error("+hotkey|get: wrong subcommands allowed")
	}
}

func TestNoRulesAllowsEverything(t *testing.T) {
	u, err := Compile("app", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range command.All() {
		if !u.has(s.ID) {
			t.Errorf("%s refused", s.Name)
		}
		for _, sc := range s.Subcommands {
			if !u.has(sc.ID) {
				t.Errorf("%s refused", sc.Name)
			}
		}
	}
	if !u.AllKeys() || check(t, u, "flushall") != "" || check(t, u, "get", "x") != "" {
		t.Error("no rules: not every key")
	}
	// "*" among the patterns is every key, as Redis's ~*.
	if u, _ := Compile("app", "", []string{"a*", "*"}); !u.AllKeys() {
		t.Error(`"*" is not every key`)
	}
}

// TestKeysOnEveryCommand: every key of a command is checked, whatever its position; a command
// the proxy cannot find the keys of is refused; SORT's options read keys and are refused too.
func TestKeysOnEveryCommand(t *testing.T) {
	u, err := Compile("app", "+@all", []string{"app:*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"mset", "app:1", "v", "x", "v"}, {"del", "app:1", "app:2", "x"},
		{"eval", "s", "3", "app:1", "app:2", "x"}, {"blpop", "app:1", "x", "0"},
		{"xreadgroup", "group", "g", "c", "streams", "app:s", "x", "0", "0"},
		{"zinterstore", "x", "1", "app:1"}, {"georadius", "app:g", "0", "0", "1", "km", "storedist", "x"},
		{"watch", "app:1", "x"}, {"object", "encoding", "x"}, {"keys", "app:*"}, {"scan", "0"},
		{"eval", "s", "5", "app:1"}, // malformed numkeys: keys unknown
	} {
		if got := check(t, u, c...); got != ErrKey {
			t.Errorf("%q: %q, want %q", c, got, ErrKey)
		}
	}
	for _, c := range [][]string{
		{"mset", "app:1", "v", "app:x", "v"}, {"eval", "s", "1", "app:1"}, {"publish", "x", "m"},
		{"spublish", "x", "m"}, {"ping"}, {"object", "help"},
	} {
		if got := check(t, u, c...); got != "" {
			t.Errorf("%q refused: %q", c, got)
		}
	}
	// A script that declares no key could reach any key of the node it runs on.
	for _, c := range [][]string{
		{"eval", "s", "0"}, {"eval_ro", "s", "0"}, {"evalsha", "sha", "0"}, {"evalsha_ro", "sha", "0"},
		{"fcall", "f", "0"}, {"fcall_ro", "f", "0", "arg"},
	} {
		if got := check(t, u, c...); got != ErrKeylessScript {
			t.Errorf("%q: %q, want %q", c, got, ErrKeylessScript)
		}
	}
	if all, _ := Compile("ops", "+@all", nil); check(t, all, "eval", "s", "0") != "" {
		t.Error("a user with every key was refused a keyless script")
	}
}

// TestCheckAllocatesNothing: a restricted user's check of an allowed command allocates nothing.
func TestCheckAllocatesNothing(t *testing.T) {
	u, err := Compile("app", "+@all -@dangerous -config|set", []string{"other:*", "app:*"})
	if err != nil {
		t.Fatal(err)
	}
	mget := [][]byte{[]byte("MGET"), []byte("app:1"), []byte("app:2"), []byte("app:3")}
	cfg := [][]byte{[]byte("CONFIG"), []byte("GET"), []byte("x")}
	smget, scfg := command.Lookup(mget[0]), command.Lookup(cfg[0])
	keys := make([]int, 0, 8)
	n := testing.AllocsPerRun(1000, func() {
		var msg string
		if msg, keys = u.Check(smget, mget, keys); msg != "" {
			t.Fatal(msg)
		}
		if msg, keys = u.Check(scfg, cfg, keys); msg == "" {
			t.Fatal("CONFIG GET allowed")
		}
	})
	// The refusal builds its message; the allowed MGET must not add to it.
	if n > 1 {
		t.Errorf("%.1f allocations per check, want at most the refusal's message", n)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, k string
		want bool
	}{
		{"app:*", "app:1", true}, {"app:*", "ap", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[a-c]x", "bx", true}, {"[^a-c]x", "bx", false}, {`\*`, "*", true}, {`\*`, "a", false},
		{"*", "", false /* as stringmatchlen; ~* is allkeys anyway */}, {"a*", "", false}, {"", "", true},
	} {
		if got := Match([]byte(tc.p), []byte(tc.k)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.p, tc.k, got)
		}
	}
	// Many stars against a long non-matching key: bounded work, not exponential.
	p := []byte(strings.Repeat("a*", 40) + "b")
	k := []byte(strings.Repeat("a", 4000))
	if Match(p, k) {
		t.Error("matched")
	}
}
