package command

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/commands.md from the table")

func TestLookup(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // "" means nil
	}{
		{"lower", "get", "get"},
		{"upper", "GET", "get"},
		{"mixed", "gEt", "get"},
		{"underscore name", "GEORADIUSBYMEMBER_RO", "georadiusbymember_ro"},
		{"dash name", "Restore-Asking", "restore-asking"},
		{"7.2 name", "WAITAOF", "waitaof"},
		{"unknown", "gett", ""},
		{"prefix of a name", "ge", ""},
		{"empty", "", ""},
		{"too long", strings.Repeat("a", maxNameLen+1), ""},
		{"non-ascii fold is not applied", "GET\u0130", ""},
		{"subcommand is not a command", "object|encoding", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Lookup([]byte(tc.input))
			switch {
			case tc.want == "" && s != nil:
				t.Fatalf("Lookup(%q) = %q, want nil", tc.input, s.Name)
			case tc.want != "" && s == nil:
				t.Fatalf("Lookup(%q) = nil, want %q", tc.input, tc.want)
			case tc.want != "" && s.Name != tc.want:
				t.Fatalf("Lookup(%q) = %q, want %q", tc.input, s.Name, tc.want)
			}
		})
	}
}

func TestLookupAllocs(t *testing.T) {
	names := [][]byte{[]byte("GET"), []byte("set"), []byte("ZRangeByScore"), []byte("nosuchcommand"), []byte(strings.Repeat("x", 40))}
	for _, n := range names {
		allocs := testing.AllocsPerRun(100, func() { _ = Lookup(n) })
		if allocs != 0 {
			t.Errorf("Lookup(%q) allocates %v times per run, want 0", n, allocs)
		}
	}
}

// TestLookupRecentIsLookup checks the rule: whatever the two recent specs are (nil, the
// name's own, another of the same length, another of any length), LookupRecent finds what
// Lookup finds, in any case of the name.
func TestLookupRecentIsLookup(t *testing.T) {
	get, set, del, hgetall := Lookup([]byte("get")), Lookup([]byte("set")), Lookup([]byte("del")), Lookup([]byte("hgetall"))
	recents := []*Spec{nil, get, set, del, hgetall}
	names := []string{"get", "GET", "gEt", "set", "SeT", "del", "hgetall", "HGETALL", "ge", "gett",
		"gex", "xet", "nosuchcommand", "", "\x00et", "GET\x00", strings.Repeat("g", 40)}
	for _, a := range recents {
		for _, b := range recents {
			for _, n := range names {
				want := Lookup([]byte(n))
				if got := LookupRecent([]byte(n), a, b); got != want {
					t.Errorf("LookupRecent(%q, %v, %v) = %v, want %v", n, a, b, got, want)
				}
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = LookupRecent([]byte("SET"), get, set) }); n != 0 {
		t.Errorf("LookupRecent allocates %v times per run, want 0", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	name := []byte("HGETALL")
	b.ReportAllocs()
	for b.Loop() {
		if Lookup(name) == nil {
			b.Fatal("hgetall not found")
		}
	}
}

func TestCheckArity(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		argc int
		want bool
	}{
		{"exact ok", "get", 2, true},
		{"exact too few", "get", 1, false},
		{"exact too many", "get", 3, false},
		{"at least, minimum", "mget", 2, true},
		{"at least, more", "mget", 10, true},
		{"at least, too few", "mget", 1, false},
		{"ping alone", "ping", 1, true},
		{"ping zero argc", "ping", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lookup([]byte(tc.cmd)).CheckArity(tc.argc); got != tc.want {
				t.Fatalf("%s.CheckArity(%d) = %v, want %v", tc.cmd, tc.argc, got, tc.want)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	tests := []struct {
		cmd    string
		policy Policy
		flags  Flag // must all be set
	}{
		{"get", Forward, Read | Fast},
		{"set", Forward, Write},
		{"object", Forward, Read | MovableKeys | Container},
		{"xgroup", Forward, Write | MovableKeys | Container},
		{"mget", SplitMGet, Read},
		{"mset", SplitMSet, Write},
		{"del", SplitSum, Write},
		{"unlink", SplitSum, Write},
		{"exists", SplitSum, Read},
		{"touch", SplitSum, Read},
		{"rename", SameNode, Write},
		{"smove", SameNode, Write},
		{"sinterstore", SameNode, Write},
		{"zunionstore", SameNode, Write | MovableKeys},
		{"eval", SameNode, MovableKeys},
		{"fcall_ro", SameNode, Read | MovableKeys},
		{"msetnx", SameNode, Write},
		{"lmove", SameNode, Write},
		{"rpoplpush", SameNode, Write},
		{"copy", SameNode, Write},
		{"sort", SameNode, Write | MovableKeys},
		{"ping", Local, NoKey},
		{"echo", Local, NoKey},
		{"quit", Local, NoKey},
		{"select", Local, NoKey},
		{"command", Local, NoKey | Container},
		{"info", Local, NoKey},
		{"cluster", Local, NoKey | Container},
		{"auth", Local, NoKey},
		{"blpop", Block, Blocking | Write},
		{"bzmpop", Block, Blocking | MovableKeys},
		{"xread", Block, Blocking | Read | MovableKeys},
		{"xreadgroup", Block, Blocking | Write},
		{"blmove", Block, Blocking},
		{"keys", Keyspace, Read | NoKey},
		{"flushall", Keyspace, Write | NoKey},
		{"multi", Transaction, NoKey},
		{"exec", Transaction, NoKey},
		{"discard", Transaction, NoKey},
		{"unwatch", Transaction, NoKey},
		{"wait", Unsupported, NoKey},
		{"watch", Transaction, 0},
		{"subscribe", Subscribe, PubSub | NoKey},
		{"psubscribe", Subscribe, PubSub | NoKey},
		{"ssubscribe", Subscribe, PubSub},
		{"unsubscribe", Subscribe, PubSub | NoKey},
		{"sunsubscribe", Subscribe, PubSub},
		{"publish", Channel, PubSub | NoKey},
		{"pubsub", Channel, Container | NoKey},
		{"spublish", Forward, PubSub},
		{"hello", Local, NoKey},
		{"time", Keyspace, NoKey},
		{"scan", Keyspace, Read | NoKey},
		{"function", Keyspace, Container | NoKey},
		{"move", Unsupported, Write},
		{"config", Local, Container | NoKey},
		{"hotkey", Local, NoKey},
		{"waitaof", Unsupported, NoKey},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			s := Lookup([]byte(tc.cmd))
			if s == nil {
				t.Fatalf("Lookup(%q) = nil", tc.cmd)
			}
			if s.Policy != tc.policy {
				t.Errorf("%s policy = %v, want %v", tc.cmd, s.Policy, tc.policy)
			}
			if s.Flags&tc.flags != tc.flags {
				t.Errorf("%s flags = %q, want at least %q", tc.cmd, s.Flags, tc.flags)
			}
		})
	}
}

// TestTableInvariants checks rules every spec must follow, so that a new entry cannot slip in
// half-described.
func TestTableInvariants(t *testing.T) {
	all := All()
	if !slices.IsSortedFunc(all, func(a, b *Spec) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("All() is not sorted by name")
	}
	if len(all) < 240 {
		t.Fatalf("All() has %d commands, want at least the 240 of Redis 7.0", len(all))
	}
	for _, s := range all {
		if s.Name != strings.ToLower(s.Name) {
			t.Errorf("%s: name not lower case", s.Name)
		}
		if s.Arity == 0 {
			t.Errorf("%s: arity 0", s.Name)
		}
		if s.Policy == Unsupported && s.Reason == "" {
			t.Errorf("%s: unsupported without a reason", s.Name)
		}
		if (s.Flags&Blocking != 0) != (s.Policy == Block) {
			t.Errorf("%s: blocking commands, and only they, need a dedicated connection (policy block), policy is %v", s.Name, s.Policy)
		}
		hasKeys := s.FirstKey > 0 || s.find != findRange
		if hasKeys == (s.Flags&NoKey != 0) {
			t.Errorf("%s: NoKey flag %v disagrees with key spec (first %d, finder %d)", s.Name, s.Flags&NoKey != 0, s.FirstKey, s.find)
		}
		if (s.Policy == Forward || s.Policy == SameNode || s.Policy >= SplitMGet && s.Policy <= SplitSum) && !hasKeys {
			t.Errorf("%s: policy %v but no keys", s.Name, s.Policy)
		}
		if s.Policy == Forward && s.find == findRange && s.LastKey != s.FirstKey {
			t.Errorf("%s: Forward with several keys (%d..%d)", s.Name, s.FirstKey, s.LastKey)
		}
		if got := Lookup([]byte(strings.ToUpper(s.Name))); got != s {
			t.Errorf("Lookup(%q) does not find its own spec", strings.ToUpper(s.Name))
		}
	}
	// All returns a fresh slice each time.
	all[0] = nil
	if All()[0] == nil {
		t.Error("All() returned the package's own slice")
	}
}

func TestIsReadOnly(t *testing.T) {
	tests := []struct {
		cmd  string
		want bool
	}{
		{"get", true},
		{"georadius_ro", true},
		{"eval_ro", true},
		{"xinfo", true},
		{"set", false},
		{"georadius", false},
		{"eval", false},
		{"xreadgroup", false},
		{"ping", false},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			if got := IsReadOnly(Lookup([]byte(tc.cmd))); got != tc.want {
				t.Fatalf("IsReadOnly(%s) = %v, want %v", tc.cmd, got, tc.want)
			}
		})
	}
}

func TestPolicyString(t *testing.T) {
	if got := SameNode.String(); got != "same-node" {
		t.Errorf("SameNode.String() = %q", got)
	}
	if got := Policy(200).String(); got != "policy(200)" {
		t.Errorf("Policy(200).String() = %q", got)
	}
	if got := (Read | Blocking).String(); got != "read blocking" {
		t.Errorf("(Read|Blocking).String() = %q", got)
	}
}

// TestCommandsDocUpToDate fails when docs/commands.md is not what the table generates.
func TestCommandsDocUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "commands.md")
	want := renderDoc()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run `go generate ./dataplane/command` or `go test ./dataplane/command -update`)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run `go generate ./dataplane/command` or `go test ./dataplane/command -update`", path)
	}
}
