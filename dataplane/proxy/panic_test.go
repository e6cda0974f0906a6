package proxy_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
)

// lockedBuffer collects log output written by session goroutines while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSessionPanicClosesOnlyThatSession: a panic while a session handles a command closes that
// client's connection and is logged at Error with its stack; the process goes on, another
// client keeps its connection and answers, and the dead session no longer counts against
// max_connections, so a new client gets in.
func TestSessionPanicClosesOnlyThatSession(t *testing.T) {
	proxy.SetPanicHook(func(args [][]byte) {
		if string(args[0]) == "boom" {
			panic("injected test panic")
		}
	})
	// Registered before startEnv, so it runs after the cluster has closed and no session
	// reads the hook any more.
	t.Cleanup(func() { proxy.SetPanicHook(nil) })
	logs := &lockedBuffer{}
	e := startEnv(t, envOpts{nodes: 1, maxConns: 2, logs: logs})

	other := e.raw(t)
	other.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
	if got := other.line(); got != "+OK" {
		t.Fatalf("SET before the panic: %q", got)
	}

	victim := e.raw(t)
	victim.send("PING\r\n")
	if got := victim.line(); got != "+PONG" {
		t.Fatalf("PING before the panic: %q", got)
	}
	// A command before the bad one in the same batch: the batch dies with the session.
	victim.send("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nboom\r\n")
	rest, err := io.ReadAll(victim.br)
	if len(rest) != 0 || (err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("panicking session: read %q, %v; want the connection closed without a reply", rest, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "session panicked") {
		if time.Now().After(deadline) {
			t.Fatalf("no panic logged; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	log := logs.String()
	for _, want := range []string{"[ERROR]", "session panicked; connection closed", "panic=\"injected test panic\"",
		"stack=", "(*session).handle"} {
		if !strings.Contains(log, want) {
			t.Errorf("panic log lacks %q:\n%s", want, log)
		}
	}

	// The other client's connection still works.
	other.send("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	if got := other.line() + other.line(); got != "$1v" {
		t.Fatalf("GET on the other connection after the panic: %q", got)
	}
	// A new client gets in (the dead session left the count) and is served.
	for {
		c := e.raw(t)
		c.send("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
		first := c.line()
		if first == "-ERR max number of clients reached" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if got := first + c.line(); got != "$1v" {
			t.Fatalf("GET on a new connection after the panic: %q", got)
		}
		break
	}
}
