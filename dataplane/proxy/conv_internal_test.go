package proxy

import (
	"net"
	"testing"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// The RESP2→RESP3 conversion buffer is kept for the next reply, unless a reply grew it past
// maxKeptOut: then it is dropped at once (keepConv), since no batch end looks at it.
func TestConvBufferKeptOnlyWhenSmall(t *testing.T) {
	c := MustCluster(t, route.ClusterSpec{Name: "conv"}, Env{})
	t.Cleanup(c.Close)
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	s := newSession(c, a)
	for _, size := range []int{100, maxKeptOut + 1, 100, 3 * maxKeptOut} {
		reply := resp.AppendBulk(nil, make([]byte, size))
		out := s.localToRESP3(reply, nil)
		if string(out) != string(reply) { // a bulk string is the same in both
			t.Fatalf("%d bytes: converted reply differs", size)
		}
		if cap(s.conv) > maxKeptOut {
			t.Fatalf("after a %d-byte reply the session keeps a %d-byte conversion buffer", size, cap(s.conv))
		}
		if size < maxKeptOut && cap(s.conv) == 0 {
			t.Fatalf("after a %d-byte reply the conversion buffer was dropped", size)
		}
	}
}
