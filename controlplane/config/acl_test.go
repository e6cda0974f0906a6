package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestUserRights: a user's commands and keys are read, and a rule the data plane would refuse
// (unknown category, command or subcommand, a key rule in commands, a bad keys value) is an
// error on its own line, at load.
func TestUserRights(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "invalid", "acl.toml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "acl.toml")
	if err == nil {
		t.Fatal("acl.toml accepted")
	}
	want := []string{
		`acl.toml:7: cluster "cache-a": auth.users[0].commands: rule "-@nosuch": unknown command category`,
		`acl.toml:8: cluster "cache-a": auth.users[1].commands: rule "+nosuchcmd": unknown command`,
		`acl.toml:9: cluster "cache-a": auth.users[2].commands: rule "+config|nosuch": unknown subcommand`,
		`acl.toml:10: cluster "cache-a": auth.users[3].keys: must be an array of glob patterns, not a string`,
		`acl.toml:11: cluster "cache-a": auth.users[4].keys: must list at least one pattern (omit it for every key)`,
		`acl.toml:12: cluster "cache-a": auth.users[5].keys[1]: must be a string, not an integer`,
		`acl.toml:13: cluster "cache-a": auth.users[6].commands: empty: omit it for every command, or say "nocommands"`,
		`acl.toml:14: cluster "cache-a": auth.users[7].commands: rule "~app:*": not a command rule`,
		`acl.toml:16: cluster "cache-a": auth.users[9].username: must not contain spaces or control characters`,
		`acl.toml:17: cluster "cache-a": auth.users[10].username: must not contain spaces or control characters`,
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("missing error %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), err)
	}

	ok := "[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:7001\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:6379\"]\n" +
		"auth = { password = \"p\", users = [ { username = \"app\", password = \"x\", commands = \"+@all -@dangerous\", keys = [\"app:*\"] }, { username = \"all\", password = \"y\" } ] }\n"
	cfg, err := Parse([]byte(ok), "ok.toml")
	if err != nil {
		t.Fatal(err)
	}
	users := cfg.Clusters[0].Auth.Users
	if users[0].Commands != "+@all -@dangerous" || !slices.Equal(users[0].Keys, []string{"app:*"}) {
		t.Errorf("app: %+v", users[0])
	}
	if users[1].Commands != "" || users[1].Keys != nil {
		t.Errorf("a user without rules got some: %+v", users[1])
	}
}
