package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// One tenant's trouble stays its own (issue #15): a client that sends slowly is not idle, a
// slow command does not fail other clients' requests, and an endless script can be killed
// through the proxy.

// dialAsterd opens a raw connection to asterd, closed at the end of the test.
func dialAsterd(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// readLine reads one reply line within d.
func readLine(t *testing.T, br *bufio.Reader, nc net.Conn, d time.Duration) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v (read %q)", err, line)
	}
	return line
}

// closedByPeer reports whether the peer closes nc within d (EOF or reset), as opposed to nc
// staying open, which ends the wait with a timeout.
func closedByPeer(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	return err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestIdleTimeoutCountsFromLastByte: client_idle_timeout closes a client that has sent nothing
// for that long, counted from its last byte, not from the start of the command it is sending.
func TestIdleTimeoutCountsFromLastByte(t *testing.T) {
	servers := startServers(t, 1)
	a := startAsterd(t, `
[[clusters]]
name = "idle"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
client_idle_timeout = 1
`)
	if err := a.client(t).Set(ctx, "tk", "trickled", 0).Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("trickle", func(t *testing.T) {
		// One byte every 300 ms: 2.4 s for the command, far past the 1 s timeout, yet never
		// a second without input.
		nc := dialAsterd(t, a.Addr)
		for _, b := range []byte("GET tk\r\n") {
			if _, err := nc.Write([]byte{b}); err != nil {
				t.Fatalf("write: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		br := bufio.NewReader(nc)
		if got := readLine(t, br, nc, 5*time.Second); got != "$8\r\n" {
			t.Fatalf("reply header %q, want $8", got)
		}
		if got := readLine(t, br, nc, 5*time.Second); got != "trickled\r\n" {
			t.Fatalf("reply %q", got)
		}
	})

	t.Run("slow upload", func(t *testing.T) {
		// An 8 MiB SET sent at about 4 MiB/s: 2 s for one command, a write every 125 ms.
		const size, chunk = 8 << 20, 512 << 10
		nc := dialAsterd(t, a.Addr)
		hdr := "*3\r\n$3\r\nSET\r\n$2\r\nbk\r\n$8388608\r\n"
		if _, err := nc.Write([]byte(hdr)); err != nil {
			t.Fatal(err)
		}
		part := bytes.Repeat([]byte("u"), chunk)
		for sent := 0; sent < size; sent += chunk {
			time.Sleep(125 * time.Millisecond)
			_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(part); err != nil {
				t.Fatalf("write after %d bytes: %v", sent, err)
			}
		}
		if _, err := nc.Write([]byte("\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		if got := readLine(t, br, nc, 10*time.Second); got != "+OK\r\n" {
			t.Fatalf("SET reply %q", got)
		}
		if n, err := servers[0].Do("STRLEN", "bk"); err != nil || n != int64(size) {
			t.Fatalf("STRLEN bk = %v, %v; want %d", n, err, size)
		}
	})

	t.Run("idle is closed", func(t *testing.T) {
		// Between commands, and in the middle of one: a second without a byte closes it.
		nc := dialAsterd(t, a.Addr)
		br := bufio.NewReader(nc)
		if _, err := nc.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := readLine(t, br, nc, 5*time.Second); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		if !closedByPeer(nc, 10*time.Second) {
			t.Fatal("an idle client was not closed after client_idle_timeout")
		}
		half := dialAsterd(t, a.Addr)
		if _, err := half.Write([]byte("*2\r\n$3\r\nGET\r\n$2\r\ntk")); err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(half, 10*time.Second) {
			t.Fatal("a client that stopped in the middle of a command was not closed")
		}
	})
}

