package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// [admin] token_file: the token is read from the file at load, trailing line end trimmed; a
// missing or empty file, or both keys, are errors of the file that name the key, never the
// token.
func TestAdminTokenFile(t *testing.T) {
	base := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001\"]\n"
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := strconv.Quote
	cases := []struct {
		name, extra, token, err string
	}{
		{"from file", "[admin]\ntoken_file = " + q(good) + "\n", "s3cret", ""},
		{"empty path is no file", "[admin]\ntoken_file = \"\"\n", "", ""},
		{"missing file", "[admin]\ntoken_file = " + q(filepath.Join(dir, "nope")) + "\n", "", "t.toml:7: admin.token_file: token file: open "},
		{"empty file", "[admin]\ntoken_file = " + q(empty) + "\n", "", "t.toml:7: admin.token_file: token file " + empty + ": empty"},
		{"token not ASCII", "[admin]\ntoken = \"s3cret\u00e9\"\n", "", "t.toml:7: admin.token: the token must be one line of printable ASCII characters"},
		{"token with a newline", "[admin]\ntoken = \"s3cret\\n\"\n", "", "admin.token: the token must be one line"},
		{"both", "[admin]\ntoken = \"x\"\ntoken_file = " + q(good) + "\n", "", "admin.token_file: token and token_file are two ways to say the same thing: give one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+c.extra), "t.toml")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one with %q", err, c.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin.Token != c.token {
				t.Fatalf("token %q, want %q", cfg.Admin.Token, c.token)
			}
		})
	}
}

// max_connections is finite unless set: Redis's maxclients default.
func TestMaxConnectionsDefault(t *testing.T) {
	base := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001\"]\n"
	for _, c := range []struct {
		extra string
		want  int
	}{{"", 10000}, {"max_connections = 5\n", 5}, {"max_connections = 0\n", 0}} {
		cfg, err := Parse([]byte(base+c.extra), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Clusters[0].MaxConnections; got != c.want {
			t.Errorf("%q: max_connections %d, want %d", c.extra, got, c.want)
		}
	}
}
