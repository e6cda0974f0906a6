package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Raw is a minimal RESP client for servers that go-redis cannot talk to (go-redis always
// opens with HELLO, which twemproxy refuses by closing the connection), and for tests that
// read replies as they come (Receive, which reads RESP3 types too).
type Raw struct {
	t     testing.TB
	nc    net.Conn
	br    *bufio.Reader
	resp3 bool // a reply of a RESP3 type was read (SawResp3)
}

// DialRaw connects to addr; the connection is closed at test end.
func DialRaw(t testing.TB, addr string) *Raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return NewRaw(t, nc)
}

// NewRaw is DialRaw over a connection the caller made (one that reads slowly, say); it is
// closed at test end.
func NewRaw(t testing.TB, nc net.Conn) *Raw {
	t.Cleanup(func() { nc.Close() })
	return &Raw{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// Do sends one command and returns its reply: the text of a simple string, integer or bulk
// string ("(nil)" for a null bulk), or an error for an error reply.
func (r *Raw) Do(args ...string) (string, error) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = r.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.nc.Write([]byte(b.String())); err != nil {
		r.t.Fatalf("write: %v", err)
	}
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read reply: %v", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("%s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			r.t.Fatalf("bad bulk header %q", line)
		}
		if n < 0 {
			return "(nil)", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			r.t.Fatalf("read bulk: %v", err)
		}
		return string(buf[:n]), nil
	}
	r.t.Fatalf("unsupported reply %q", line)
	return "", nil
}

// Close closes the connection before the test ends (closing twice is harmless).
func (r *Raw) Close() { _ = r.nc.Close() }
