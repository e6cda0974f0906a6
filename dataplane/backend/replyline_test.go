package backend_test

import (
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/internal/redistest"
)

// endlessLineServer accepts connections and answers each with a status line that never ends
// (a real Redis cannot be made to do that; anything else listening on a node's address can).
// It returns its address and how many bytes it managed to send.
func endlessLineServer(t *testing.T) (string, func() int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				chunk := []byte("+" + strings.Repeat("a", 64<<10-1))
				for i := 0; i < 1<<10; i++ { // 64 MiB, 16 times the cap, then it hangs up
					_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
					n, err := nc.Write(chunk)
					mu.Lock()
					sent += int64(n)
					mu.Unlock()
					if err != nil {
						return
					}
					chunk[0] = 'a'
				}
			}()
		}
	}()
	return ln.Addr().String(), func() int64 { mu.Lock(); defer mu.Unlock(); return sent }
}

// TestEndlessReplyLineFailsTheNode: a node that answers with a line that never ends is a bad
// node: once the line passes MaxReplyLine its connection is dropped and the requests on it fail
// with an error that names the node; memory stays bounded (by the cap), and a connection to
// another node keeps working meanwhile.
func TestEndlessReplyLineFailsTheNode(t *testing.T) {
	addr, sent := endlessLineServer(t)
	const limit = 4 << 20
	bad := backend.New(backend.Options{Addr: addr, DialTimeout: time.Second, MaxReplyLine: limit})
	defer bad.Close()
	srv := redistest.Start(t)
	good := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	defer good.Close()

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	var r backend.Request
	r.Bind(&wg)
	wg.Add(1)
	bad.Send(&r, []byte("*1\r\n$4\r\nPING\r\n"))
	bad.Flush()
	select {
	case <-released(&wg):
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer after the node sent %d bytes of one line", sent())
	}
	got := string(r.Reply)
	if !strings.HasPrefix(got, "-ERR backend "+addr+": ") || !strings.Contains(got, "reply line too long") {
		t.Fatalf("request on the bad node: %q", got)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The buffer doubles up to the cap: TotalAlloc is what we ever allocated, garbage included.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*limit {
		t.Fatalf("allocated %d MiB reading one bad line capped at %d MiB", grew>>20, limit>>20)
	}
	if got := do(t, good, "PING"); got != "+PONG\r\n" {
		t.Fatalf("the other node: %q", got)
	}
}

// TestLongLuaStatusLinePasses: redis-server sends a status line as long as a Lua script makes
// it; under the default cap that is a reply like any other, not a bad node. (A cap as short
// as a client's header line would let any client break a shared connection with one EVAL.)
func TestLongLuaStatusLinePasses(t *testing.T) {
	srv := redistest.Start(t)
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	defer c.Close()
	got := do(t, c, "EVAL", "return redis.status_reply(string.rep('z', 300000))", "0")
	if got != "+"+strings.Repeat("z", 300000)+"\r\n" {
		t.Fatalf("long status line: %d bytes, %.40q", len(got), got)
	}
	got = do(t, c, "EVAL", "return {err=string.rep('e', 300000)}", "0")
	if got != "-"+strings.Repeat("e", 300000)+"\r\n" {
		t.Fatalf("long error line: %d bytes, %.40q", len(got), got)
	}
	if got := do(t, c, "PING"); got != "+PONG\r\n" {
		t.Fatalf("after: %q", got)
	}
}

// TestHugeDeclaredLengthsAllocateNothing: a node that declares the largest bulk Redis allows,
// inside an aggregate of a billion elements, and then sends almost nothing does not make us
// allocate what it declared: the read buffer grows only with the bytes that arrive.
func TestHugeDeclaredLengthsAllocateNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan struct{})
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		buf := make([]byte, 64)
		_, _ = nc.Read(buf)
		_, _ = nc.Write([]byte("*1000000000\r\n$536870912\r\n" + strings.Repeat("x", 1000)))
		close(got)
		_, _ = nc.Read(buf) // until the client hangs up
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := backend.New(backend.Options{Addr: ln.Addr().String(), DialTimeout: time.Second})
	var wg sync.WaitGroup
	var r backend.Request
	r.Bind(&wg)
	wg.Add(1)
	c.Send(&r, []byte("*1\r\n$4\r\nPING\r\n"))
	c.Flush()
	<-got
	time.Sleep(200 * time.Millisecond) // let the reader take the bytes (not asserted on)
	// Whatever the reader does with those bytes, it has done once the request is failed by
	// Close (which waits for the reader).
	c.Close()
	wg.Wait()
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("allocated %d MiB for a reply that declared 512 MiB and sent 1 KB", grew>>20)
	}
	if !strings.Contains(string(r.Reply), "connection closed") {
		t.Fatalf("request: %q", r.Reply)
	}
}
