package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --token-file: the token comes from the file (trailing newline trimmed), wins over
// ASTER_ADMIN_TOKEN and loses to --token; both flags, or an unreadable file, are errors that
// name the file and never show a token.
func TestTokenFile(t *testing.T) {
	addr, fake := startFake(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		auth   string // authorization the server must see; "-": no call
		stderr string // substring
	}{
		{"file", []string{"--addr", addr, "--token-file", file, "cluster", "list"}, nil, 0, "Bearer from-file", ""},
		{"file wins over env", []string{"--addr", addr, "--token-file", file, "cluster", "list"}, map[string]string{envToken: "e"}, 0, "Bearer from-file", ""},
		{"env alone", []string{"--addr", addr, "cluster", "list"}, map[string]string{envToken: "e"}, 0, "Bearer e", ""},
		{"both flags", []string{"--addr", addr, "--token", "f", "--token-file", file, "cluster", "list"}, nil, 2, "-", "--token and --token-file: give one"},
		{"missing file", []string{"--addr", addr, "--token-file", missing, "cluster", "list"}, map[string]string{envToken: "e"}, 2, "-", "token file: open " + missing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr, envOf(c.env))
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if strings.Contains(c.stderr, "token file") && strings.Contains(stderr.String(), "Usage:") {
				t.Errorf("a token problem is no matter of usage:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), "from-file") {
				t.Errorf("stderr shows the token:\n%s", stderr.String())
			}
			if c.auth != "-" {
				if got := <-fake.auth; got != c.auth {
					t.Errorf("server saw authorization %q, want %q", got, c.auth)
				}
			} else if len(fake.auth) != 0 {
				t.Errorf("a call was made: %q", <-fake.auth)
			}
		})
	}
}
