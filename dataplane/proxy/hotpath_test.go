package proxy_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// TestHotPathAllocatesNothing: a GET or SET through the proxy to a real redis-server — parse,
// route, backend write, reply read, client write — allocates nothing once warm, with metrics on,
// unpipelined and pipelined, and for a value bigger than the first read buffer (issue #6's hot-path target; the Proxy benchmarks report the same).
// AllocsPerRun counts the whole process; the client side here allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 3, metrics: m})
	if err := e.client.Set(ctx, "hot:key", strings.Repeat("v", 64), 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	get := "*2\r\n$3\r\nGET\r\n$7\r\nhot:key\r\n"
	set := "*3\r\n$3\r\nSET\r\n$7\r\nhot:key\r\n$64\r\n" + strings.Repeat("v", 64) + "\r\n"
	// bigger than a session's first read buffer: it grows once and is kept (resp.Reader.Release)
	set16k := "*3\r\n$3\r\nSET\r\n$7\r\nbig:key\r\n$16384\r\n" + strings.Repeat("v", 16384) + "\r\n"
	for _, tc := range []struct {
		name, frame, reply string
		depth              int
	}{
		{"GET P1", get, "$64\r\n" + strings.Repeat("v", 64) + "\r\n", 1},
		{"GET P16", get, "$64\r\n" + strings.Repeat("v", 64) + "\r\n", 16},
		{"SET P1", set, "+OK\r\n", 1},
		{"SET P16", set, "+OK\r\n", 16},
		{"SET 16 KiB P1", set16k, "+OK\r\n", 1},
	} {
		batch := []byte(strings.Repeat(tc.frame, tc.depth))
		buf := make([]byte, len(tc.reply)*tc.depth)
		roundTrip := func() {
			if _, err := nc.Write(batch); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(br, buf); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 { // warm: buffers grown, metric children made
			roundTrip()
		}
		if string(buf[:len(tc.reply)]) != tc.reply {
			t.Fatalf("%s: reply %q, want %q", tc.name, buf[:len(tc.reply)], tc.reply)
		}
		// Below one allocation per round trip: an odd background allocation (a timer, the
		// health of the test's own client) may land in the window; one per request may not.
		if n := testing.AllocsPerRun(500, roundTrip); n >= 0.5 {
			t.Errorf("%s: %.2f allocations per round trip through the proxy, want 0", tc.name, n)
		}
	}
}
