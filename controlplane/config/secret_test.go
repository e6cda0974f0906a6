package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestSyntaxErrorHidesSecrets: a TOML syntax error in the value of a secret (an unquoted or
// unterminated password, token, backend_password, a user's password) names the line and the
// key but not the value; errors elsewhere keep the decoder's message.
func TestSyntaxErrorHidesSecrets(t *testing.T) {
	head := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:2:1\"]\n"
	for _, line := range []string{
		`auth = Hunter2pw`,
		`auth = "Hunter2pw`,
		`auth = """Hunter2pw`,
		`auth = { password = Hunter2pw }`,
		`auth = { password = "x", users = [ { username = "u", password = Hunter2pw } ] }`,
		`backend_password = Hunter2pw`,
		`backend_auth = { username = "u", password = Hunter2pw }`,
		`password = "Hunter2pw\q"`,
		"[admin]\ntoken = Hunter2pw",
	} {
		_, err := Parse([]byte(head+line+"\n"), "c.toml")
		var pe toml.ParseError
		if err == nil || !errors.As(err, &pe) {
			t.Fatalf("%s: err = %v, want a toml.ParseError", line, err)
		}
		for _, s := range []string{err.Error(), pe.ErrorWithPosition(), pe.ErrorWithUsage()} {
			if strings.Contains(s, "Hunter2") {
				t.Errorf("%s: the error quotes the secret: %s", line, s)
			}
		}
		if pe.Position.Line != 6 && pe.Position.Line != 7 || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: %v: want the line", line, err)
		}
	}
	_, err := Parse([]byte(head+"hash_tag = Abc\n"), "c.toml")
	if err == nil || !strings.Contains(err.Error(), `found "Abc"`) {
		t.Errorf("a syntax error in a plain value: %v, want the decoder's message", err)
	}
}
