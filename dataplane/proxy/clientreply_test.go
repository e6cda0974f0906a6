package proxy_test

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClientReplyAsRedis: CLIENT REPLY OFF, SKIP and ON silence the client's replies as Redis
// does — of commands answered by the proxy, forwarded, refused, blocking and EXEC alike, with
// SKIP dropping one reply and ON answering OK even right after a SKIP — and a PSUBSCRIBE is
// confirmed whatever the mode (Redis 7.0). The byte stream is compared with redis-server's,
// sent in one write and in one write per command.
func TestClientReplyAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	ref := redistest.Start(t)
	script := [][]string{
		{"DEL", "cr"},
		{"CLIENT", "REPLY", "OFF"},
		{"SET", "cr", "1"}, {"GET", "cr"}, {"PING", "silenced"}, {"NOSUCH"}, {"GET"},
		{"BLPOP", "cr-none", "0.01"},
		{"MULTI"}, {"INCR", "cr"}, {"EXEC"},
		{"CLIENT", "REPLY", "SKIP"}, // off: no effect
		{"CLIENT", "REPLY", "ON"},
		{"GET", "cr"},
		{"CLIENT", "REPLY", "SKIP"}, {"GET", "cr"}, {"PING", "after-skip"},
		{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"}, {"PING"},
		{"CLIENT", "REPLY", "SKIP"}, {"BLPOP", "cr-none", "0.01"}, {"PING", "after-blpop"},
		{"CLIENT", "REPLY", "MAYBE"},
		{"CLIENT", "REPLY"},
		{"CLIENT", "REPLY", "OFF"}, {"RESET"}, {"PING", "after-reset"},
		{"CLIENT", "REPLY", "OFF"}, {"PSUBSCRIBE", "cr-*"}, {"PUNSUBSCRIBE", "cr-*"},
		{"CLIENT", "REPLY", "ON"}, {"PING", "end"},
	}
	for _, pipelined := range []bool{true, false} {
		got := replyStream(t, e.addr, script, pipelined)
		want := replyStream(t, ref.Addr, script, pipelined)
		if !bytes.Equal(got, want) {
			t.Errorf("pipelined=%v:\n got %q\nredis %q", pipelined, got, want)
		}
	}
}

// replyStream sends script to addr and returns every byte the server answers, up to and with
// the reply to the final PING end.
func replyStream(t *testing.T, addr string, script [][]string, pipelined bool) []byte {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	var all []byte
	for _, c := range script {
		frame := resp.AppendCommand(nil, toBytes(c)...)
		if !pipelined {
			if _, err := nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			continue
		}
		all = append(all, frame...)
	}
	if pipelined {
		if _, err := nc.Write(all); err != nil {
			t.Fatal(err)
		}
	}
	end := []byte("$3\r\nend\r\n")
	var out []byte
	r := bufio.NewReader(nc)
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(out, end) {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("%s: read after %q: %v", addr, out, err)
		}
		out = append(out, buf[:n]...)
	}
	return out
}

func toBytes(ss []string) [][]byte {
	b := make([][]byte, len(ss))
	for i, s := range ss {
		b[i] = []byte(s)
	}
	return b
}
