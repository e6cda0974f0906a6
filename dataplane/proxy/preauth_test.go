package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// preauthModes are the two ways a client session runs: on an event loop (plain TCP), and on a
// goroutine of its own (here because of the idle timeout; TLS clients run so too).
var preauthModes = []struct {
	name string
	idle time.Duration
}{{"loop", 0}, {"goroutine", time.Minute}}

// TestPreAuthLimits: before AUTH, on a cluster that requires a password, a command of more
// than 10 elements or a bulk of more than 16384 bytes is refused at its header as Redis 7
// refuses it (checked against redis-server 7.0 with requirepass), and the connection is
// closed; at the limits the command is read and answered -NOAUTH. The limits follow the
// authentication state command by command: AUTH (or HELLO AUTH) lifts them for the next command
// of the same pipeline, RESET brings them back.
func TestPreAuthLimits(t *testing.T) {
	big := strings.Repeat("v", 100<<10)
	bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
	set := "*3\r\n$3\r\nSET\r\n$5\r\npa:k1\r\n" + bulk(big)
	args := func(n int) string { return fmt.Sprintf("*%d\r\n", n) + strings.Repeat("$1\r\na\r\n", n) }
	const (
		mbulk  = "-ERR Protocol error: unauthenticated multibulk length"
		blen   = "-ERR Protocol error: unauthenticated bulk length"
		noauth = "-NOAUTH Authentication required."
	)
	cases := []struct {
		name   string
		send   string
		want   []string
		closed bool
	}{
		{"11 elements header", "*11\r\n", []string{mbulk}, true},
		{"11 elements whole", args(11), []string{mbulk}, true},
		{"a million elements", "*1000000\r\n", []string{mbulk}, true},
		{"bulk 16385 header", "*1\r\n$16385\r\n", []string{blen}, true},
		{"100 MiB bulk header", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n", []string{blen}, true},
		{"after a refused command", "*1\r\n$4\r\nPING\r\n*11\r\n", []string{noauth, mbulk}, true},
		{"10 elements", args(10), []string{noauth}, false},
		{"bulk 16384", "*1\r\n" + bulk(strings.Repeat("a", 16384)), []string{noauth}, false},
		{"inline is not limited further", "SET a " + strings.Repeat("x", 20000) + " " + strings.Repeat("b ", 50) + "\r\n", []string{noauth}, false},
		{"auth lifts the limits in a pipeline", "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n" + set + "*2\r\n$6\r\nSTRLEN\r\n$5\r\npa:k1\r\n",
			[]string{"+OK", "+OK", fmt.Sprintf(":%d", len(big))}, false},
		{"hello auth lifts them", "*5\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$6\r\ns3cret\r\n" + set,
			[]string{"*14", "...", "+OK"}, false},
		{"reset brings them back", "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n" + args(11) + "*1\r\n$5\r\nRESET\r\n" + set,
			[]string{"+OK", "-ERR unknown command 'a', with args beginning with: 'a' 'a' 'a' 'a' 'a' 'a' 'a' 'a' 'a' 'a' ", "+RESET", blen}, true},
	}
	for _, m := range preauthModes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret"}, idle: m.idle})
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					rc := e.raw(t)
					rc.send(c.send)
					skip := false
					for _, w := range c.want {
						if w == "..." { // any lines up to the next one wanted
							skip = true
							continue
						}
						got := rc.line()
						for skip && got != w {
							got = rc.line()
						}
						skip = false
						if got != w {
							t.Fatalf("got %q, want %q", got, w)
						}
					}
					if !c.closed {
						rc.send("PING\r\n")
						if got := rc.line(); got != "+PONG" && got != noauth {
							t.Fatalf("connection not usable after: %q", got)
						}
						return
					}
					_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
					// A reset when the client had sent more than the proxy read before closing.
					if b, err := rc.br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("connection not closed after the protocol error: %q %v", b, err)
					}
				})
			}
		})
	}
}

// heapAlloc is the live heap after a collection, of the whole test process (the proxy runs in
// it).
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPreAuthBulkDoesNotGrowHeap: three clients that have not authenticated each announce a
// 100 MiB bulk and try to send 32 MiB of it: the proxy refuses each at the header, so its
// heap does not grow by what they send (before the limit it grew by all of it, and kept it
// while they stayed connected).
func TestPreAuthBulkDoesNotGrowHeap(t *testing.T) {
	for _, m := range preauthModes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret"}, idle: m.idle})
			before := heapAlloc()
			chunk := make([]byte, 1<<20)
			var conns []net.Conn
			var wg sync.WaitGroup
			replies := make([]chan string, 3)
			for i := range 3 {
				nc, err := net.Dial("tcp", e.addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, nc)
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The writes fail once the proxy has closed the connection; that is fine.
					if _, err := nc.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n")); err != nil {
						return
					}
					for range 32 {
						if _, err := nc.Write(chunk); err != nil {
							return
						}
					}
				}()
				replies[i] = make(chan string, 1)
				go func() {
					l, _ := bufio.NewReader(nc).ReadString('\n')
					replies[i] <- l
				}()
			}
			wg.Wait()
			grew := int64(heapAlloc()) - int64(before)
			for i := range conns {
				// The read deadline (30 s) ends a reader that gets nothing.
				if got := <-replies[i]; got != "-ERR Protocol error: unauthenticated bulk length\r\n" {
					t.Errorf("client %d got %q", i, got)
				}
			}
			// Generous: a few read buffers and the goroutines' stacks, far below 3 x 32 MiB.
			if grew > 16<<20 {
				t.Fatalf("heap grew by %d MiB while 3 unauthenticated clients sent 32 MiB each", grew>>20)
			}
		})
	}
}

// TestBigCommandMemoryComesBack: a client that sent one 64 MiB command (after AUTH) and then
// idles, still connected, does not pin its memory: the read buffer that grew for it, and what
// pointed into it, are dropped once the batch is answered, on a loop and on a goroutine alike.
func TestBigCommandMemoryComesBack(t *testing.T) {
	for _, m := range preauthModes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret"}, idle: m.idle})
			rc := e.raw(t)
			rc.send("AUTH s3cret\r\n")
			if got := rc.line(); got != "+OK" {
				t.Fatal(got)
			}
			before := heapAlloc()
			const n = 64 << 20
			rc.send(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$6\r\nbig:k1\r\n$%d\r\n", n))
			rc.send(strings.Repeat("x", n) + "\r\n")
			if got := rc.line(); got != "+OK" {
				t.Fatal(got)
			}
			// The reply is written once the batch is over; the session is idle from then on.
			var grew int64
			waitFor(t, 10*time.Second, func() bool {
				grew = int64(heapAlloc()) - int64(before)
				return grew < 16<<20
			})
			rc.send("*2\r\n$6\r\nSTRLEN\r\n$6\r\nbig:k1\r\n")
			if got := rc.line(); got != fmt.Sprintf(":%d", n) {
				t.Fatal(got)
			}
		})
	}
}

// TestIdleUnauthenticatedHoldLittle: clients that have not authenticated and sent the
// biggest command allowed before AUTH (10 bulks of 16 KiB), then idle, still connected, hold
// their initial read buffer each, not the 256 KiB it grew to.
func TestIdleUnauthenticatedHoldLittle(t *testing.T) {
	for _, m := range preauthModes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "s3cret"}, idle: m.idle})
			big := "*10\r\n" + strings.Repeat("$16384\r\n"+strings.Repeat("a", 16384)+"\r\n", 10)
			const conns = 100
			before := heapAlloc()
			for range conns {
				rc := e.raw(t)
				rc.send(big)
				if got := rc.line(); got != "-NOAUTH Authentication required." {
					t.Fatal(got)
				}
			}
			var grew int64
			waitFor(t, 10*time.Second, func() bool {
				grew = int64(heapAlloc()) - int64(before)
				return grew < conns*64<<10
			})
		})
	}
}
