package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClientUnblockAsRedis: CLIENT UNBLOCK with a proxy client's id (CLIENT ID) unblocks that
// client's blocking command, which waits on a connection of its own to the node: nil by
// default and with TIMEOUT, Redis's UNBLOCKED error with ERROR; :0 for a client that is not
// blocked or does not exist, and Redis's errors for bad arguments (compared with
// redis-server).
func TestClientUnblockAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	ref := redistest.Start(t)
	r := redistest.DialFrames(t, e.addr)
	b := redistest.DialFrames(t, e.addr)
	id := strings.TrimSuffix(strings.TrimPrefix(string(b.Do("CLIENT", "ID")), ":"), "\r\n")
	node := redistest.DialFrames(t, e.servers[0].Addr)
	waitBlocked := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(string(node.Do("INFO", "clients")), "blocked_clients:1") {
			if time.Now().After(deadline) {
				t.Fatal("BLPOP never blocked on the node")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, tc := range []struct{ mode, want string }{
		{"", "*-1\r\n"},
		{"TIMEOUT", "*-1\r\n"},
		{"error", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
	} {
		b.Send([]string{"BLPOP", "unblock-l", "0"})
		waitBlocked()
		args := []string{"CLIENT", "UNBLOCK", id}
		if tc.mode != "" {
			args = append(args, tc.mode)
		}
		if got := string(r.Do(args...)); got != ":1\r\n" {
			t.Fatalf("%q = %q, want :1", args, got)
		}
		if got := string(b.Read()); got != tc.want {
			t.Fatalf("BLPOP after %q = %q, want %q", args, got, tc.want)
		}
	}
	rc := redistest.DialFrames(t, ref.Addr)
	myID := strings.TrimSuffix(strings.TrimPrefix(string(r.Do("CLIENT", "ID")), ":"), "\r\n")
	refID := strings.TrimSuffix(strings.TrimPrefix(string(rc.Do("CLIENT", "ID")), ":"), "\r\n")
	for _, args := range [][]string{
		{"CLIENT", "UNBLOCK", "asd"},
		{"CLIENT", "UNBLOCK", "99999"},
		{"CLIENT", "UNBLOCK", "1", "maybe"},
		{"CLIENT", "UNBLOCK", "1", "error", "x"},
		{"CLIENT", "UNBLOCK"},
	} {
		if got, want := string(r.Do(args...)), string(rc.Do(args...)); got != want {
			t.Errorf("%q = %q, redis %q", args, got, want)
		}
	}
	// Not blocked: the client itself, another idle one.
	if got, want := string(r.Do("CLIENT", "UNBLOCK", myID)), string(rc.Do("CLIENT", "UNBLOCK", refID)); got != want {
		t.Errorf("CLIENT UNBLOCK of itself = %q, redis %q", got, want)
	}
	if got := string(r.Do("CLIENT", "UNBLOCK", id)); got != ":0\r\n" {
		t.Errorf("CLIENT UNBLOCK of an idle client = %q, want :0", got)
	}
}
