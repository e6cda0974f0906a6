package config

import (
	"errors"
	"strings"

	"github.com/BurntSushi/toml"
)

// hideSecret keeps a TOML syntax error in a secret's value (auth, password, backend_password,
// backend_auth, token) from quoting the value: the TOML decoder's message may hold part of it
// (`expected value but found "hunter2" instead` for an unquoted password), and the error goes
// to the log, to `asterd --check` and to the admin API's Reload answer. The line and the key
// stay, which is what the operator needs to find it.
func hideSecret(err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) || !secretKey(pe.LastKey) {
		return err
	}
	// A new ParseError without the input, so that ErrorWithPosition cannot quote the line.
	return toml.ParseError{
		Message:  "the value is not valid TOML (not shown: the key holds a secret)",
		Position: pe.Position,
		LastKey:  pe.LastKey,
	}
}

// secretKey reports whether the dotted key path names a secret: its last part is token, ends
// in auth, or contains pass or secret.
func secretKey(path string) bool {
	k := strings.ToLower(path[strings.LastIndexByte(path, '.')+1:])
	return k == "token" || strings.HasSuffix(k, "auth") || strings.Contains(k, "pass") || strings.Contains(k, "secret")
}
