package resp

import (
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRedis runs a real redis-server on a free loopback port for the test and returns its
// address; the test is skipped when redis-server is not installed.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}

// redisReply sends in on a fresh connection and returns the first complete reply.
func redisReply(t *testing.T, addr string, in []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial redis: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(in); err != nil {
		t.Fatalf("write to redis: %v", err)
	}
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if m, serr := ScanReply(buf); m > 0 {
			return buf[:m]
		} else if serr != nil {
			t.Fatalf("redis reply %q: %v", buf, serr)
		}
		if err != nil {
			t.Fatalf("read redis reply (got %q): %v", buf, err)
		}
	}
}

// TestProtocolErrorsMatchRedis sends malformed input to a real redis-server and to our
// Reader, and checks that the session's reply ("-ERR " + Error()) is byte for byte Redis's.
func TestProtocolErrorsMatchRedis(t *testing.T) {
	addr := startRedis(t)
	noCR := strings.Repeat("1", 70000)
	tests := []struct {
		name string
		in   string
	}{
		{name: "invalid_multibulk_length", in: "*x\r\n"},
		{name: "invalid_multibulk_length_plus", in: "*+3\r\n"},
		{name: "invalid_bulk_length", in: "*1\r\n$x\r\n"},
		{name: "negative_bulk_length", in: "*1\r\n$-1\r\n"},
		{name: "bulk_length_over_max", in: "*1\r\n$536870913\r\n"},
		{name: "expected_dollar", in: "*1\r\n:4\r\nPING\r\n"},
		{name: "expected_dollar_letter", in: "*2\r\n$4\r\nECHO\r\nx\r\n"},
		{name: "unbalanced_double", in: "ECHO \"abc\r\n"},
		{name: "unbalanced_single", in: "ECHO 'abc\r\n"},
		{name: "text_after_quote", in: "ECHO \"a\"b\r\n"},
		{name: "too_big_inline", in: "ECHO " + noCR},
		{name: "too_big_mbulk_count", in: "*" + noCR},
		{name: "too_big_bulk_count", in: "*1\r\n$" + noCR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := redisReply(t, addr, []byte(tt.in))
			r := NewReader(strings.NewReader(tt.in), 4096)
			var cmd Command
			err := r.Read(&cmd)
			pe, ok := err.(*ProtocolError)
			if !ok {
				t.Fatalf("Read err = %v, want *ProtocolError (redis said %q)", err, want)
			}
			if got := AppendError(nil, "ERR "+pe.Error()); !bytes.Equal(got, want) {
				t.Fatalf("our reply %q, redis %q", got, want)
			}
		})
	}
}

// TestInlineMatchesRedis sends inline ECHO commands to a real redis-server and checks that the
// argument Redis echoes is the one our Reader parsed.
func TestInlineMatchesRedis(t *testing.T) {
	addr := startRedis(t)
	tests := []struct {
		name string
		arg  string // the inline text after "ECHO "
	}{
		{name: "plain", arg: "hello"},
		{name: "double_quoted_space", arg: `"a b"`},
		{name: "hex_escapes", arg: `"\x41\x7a\x00\xff"`},
		{name: "bad_hex_escape", arg: `"\xZZ"`},
		{name: "c_escapes", arg: `"\n\r\t\b\a\"\\\q"`},
		{name: "single_quoted", arg: `'it\'s "x" \n'`},
		{name: "empty_quoted", arg: `""`},
		{name: "quote_mid_word", arg: `ab"c d"`},
		{name: "vertical_tab", arg: "a\vb"},
		{name: "leading_blanks", arg: "\t  x  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "ECHO " + tt.arg + "\r\n"
			reply := redisReply(t, addr, []byte(line))
			r := NewReader(strings.NewReader(line), 64)
			var cmd Command
			if err := r.Read(&cmd); err != nil {
				t.Fatalf("Read: %v (redis said %q)", err, reply)
			}
			if len(cmd.Args) != 2 {
				t.Fatalf("parsed %d args %q, want 2 (redis said %q)", len(cmd.Args), cmd.Args, reply)
			}
			if want := AppendBulk(nil, cmd.Args[1]); !bytes.Equal(reply, want) {
				t.Fatalf("redis echoed %q, we parsed %q", reply, want)
			}
		})
	}
}
