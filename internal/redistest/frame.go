package redistest

import (
	"net"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// FrameConn is a raw RESP connection that returns every reply as the exact bytes the server
// sent, whatever its type (RESP2 or RESP3): for tests that check the wire format itself.
type FrameConn struct {
	t   testing.TB
	nc  net.Conn
	buf []byte
	sc  resp.ReplyScanner // the frame at buf[0:], scanned so far (big replies stay linear)
}

// DialFrames connects to addr; the connection is closed at test end.
func DialFrames(t testing.TB, addr string) *FrameConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &FrameConn{t: t, nc: nc}
}

// Do sends one command and returns its complete reply frame.
func (c *FrameConn) Do(args ...string) []byte {
	c.t.Helper()
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(resp.AppendCommand(nil, bargs...)); err != nil {
		c.t.Fatalf("write %q: %v", args, err)
	}
	return c.Read()
}

// Read returns the next complete reply frame (e.g. a push message).
func (c *FrameConn) Read() []byte {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.sc.Scan(c.buf)
		if err != nil {
			c.t.Fatalf("bad reply %q: %v", c.buf, err)
		}
		if n > 0 {
			f := append([]byte(nil), c.buf[:n]...)
			c.buf = c.buf[n:]
			return f
		}
		tmp := make([]byte, 64<<10)
		m, err := c.nc.Read(tmp)
		if err != nil {
			c.t.Fatalf("read reply: %v", err)
		}
		c.buf = append(c.buf, tmp[:m]...)
	}
}

// WriteRaw writes b as it is, without reading anything: a pipeline cut at any byte, say.
func (c *FrameConn) WriteRaw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Send writes commands without reading their replies (for pipelines; Read them after).
func (c *FrameConn) Send(cmds ...[]string) {
	c.t.Helper()
	var out []byte
	for _, args := range cmds {
		bargs := make([][]byte, len(args))
		for i, a := range args {
			bargs[i] = []byte(a)
		}
		out = resp.AppendCommand(out, bargs...)
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(out); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}
