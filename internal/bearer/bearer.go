// Package bearer is the admin token's one home: how a server checks it on an RPC, and how
// asterd and asterctl read it from a file, so that the token need not appear in a config file
// or on a command line (where ps shows it).
package bearer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Env is the environment variable that asterctl and asterd --role data read the token from
// when no flag names one.
const Env = "ASTER_ADMIN_TOKEN"

// MaxFileSize bounds a token file: a token is a line, not a document, and a path named by
// mistake (a log, a device) must not be read whole into memory.
const MaxFileSize = 4096

// Check returns nil when ctx carries "authorization: Bearer <token>" (compared in constant
// time), an Unauthenticated status otherwise. token must not be empty.
func Check(ctx context.Context, token string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		got, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
}

// ReadFile returns the token stored in path: its content without trailing line ends ("\n",
// "\r\n"), as editors and `echo` leave them. An unreadable file, a file larger than
// MaxFileSize, an empty token or one with a line end or other control character inside is an
// error that names the file, never its content.
func ReadFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	n := len(buf)
	if n > MaxFileSize {
		return "", fmt.Errorf("token file %s: larger than %d bytes: not a token", path, MaxFileSize)
	}
	tok := strings.TrimRight(string(buf[:n]), "\r\n")
	if tok == "" {
		return "", fmt.Errorf("token file %s: empty", path)
	}
	if err := Valid(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

// Valid reports whether tok can be sent as a gRPC header value: printable ASCII (0x20-0x7e)
// and at most MaxFileSize bytes. The error never shows the token.
func Valid(tok string) error {
	if len(tok) > MaxFileSize {
		return fmt.Errorf("the token is longer than %d bytes", MaxFileSize)
	}
	if strings.ContainsFunc(tok, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return errors.New("the token must be one line of printable ASCII characters")
	}
	return nil
}

// Resolve returns the token a client is to send, from (in this order) the --token flag, the
// --token-file flag, or the environment variable Env; nil flags were not given. A given flag
// wins even when empty ("--token=" sends no token whatever the environment says). Both flags
// at once are an error: which one was meant is not ours to guess.
func Resolve(flagToken, flagFile *string, getenv func(string) string) (string, error) {
	switch {
	case flagToken != nil && flagFile != nil:
		return "", errors.New("--token and --token-file: give one")
	case flagToken != nil:
		if err := Valid(*flagToken); err != nil {
			return "", fmt.Errorf("--token: %w", err)
		}
		return *flagToken, nil
	case flagFile != nil:
		return ReadFile(*flagFile)
	}
	tok := getenv(Env)
	if err := Valid(tok); err != nil {
		return "", fmt.Errorf("%s: %w", Env, err)
	}
	return tok, nil
}
