package command

import (
	"context"
	"testing"
)

// TestSubcommandArityMatchesRedis checks every subcommand's arity against the live server's
// COMMAND reply, and that SubcommandError answers as Redis does.
func TestSubcommandArityMatchesRedis(t *testing.T) {
	rdb := startRedis(t)
	v, err := rdb.Do(context.Background(), "COMMAND").Result()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	n := 0
	for _, c := range parseCommandReply(t, v) {
		for _, sc := range c.subs {
			n++
			if got, ok := subcommandArity[sc.name]; !ok || got != sc.arity {
				t.Errorf("%s: arity %d (known %v), Redis says %d", sc.name, got, ok, sc.arity)
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d subcommands in Redis's COMMAND reply", n)
	}
	args := func(a ...string) [][]byte {
		b := make([][]byte, len(a))
		for i, s := range a {
			b[i] = []byte(s)
		}
		return b
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"COMMAND", "COUNT", "x"}, "ERR wrong number of arguments for 'command|count' command"},
		{[]string{"client", "FOO\r\nbar"}, "ERR unknown subcommand 'FOO  bar'. Try CLIENT HELP."},
		{[]string{"config", "get"}, "ERR wrong number of arguments for 'config|get' command"},
		{[]string{"config", "get", "x"}, ""},
		{[]string{"get", "x"}, ""},
	} {
		if got := Lookup([]byte(tc.args[0])).SubcommandError(args(tc.args...)); got != tc.want {
			t.Errorf("SubcommandError(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestAnyNode: keyless scripts and HELP subcommands may go to any node; other keyless
// commands describe one server and may not.
func TestAnyNode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"EVAL", "return 1", "0"}, true},
		{[]string{"fcall_ro", "f", "0"}, true},
		{[]string{"OBJECT", "help"}, true},
		{[]string{"XINFO", "HELP"}, true},
		{[]string{"MEMORY", "HELP"}, true},
		{[]string{"MEMORY", "STATS"}, false},
		{[]string{"OBJECT", "HELP", "x"}, false},
		{[]string{"GET", "k"}, false},
	} {
		b := make([][]byte, len(tc.args))
		for i, a := range tc.args {
			b[i] = []byte(a)
		}
		if got := Lookup(b[0]).AnyNode(b); got != tc.want {
			t.Errorf("AnyNode(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
