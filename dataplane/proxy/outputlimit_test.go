package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// heapInUse is the live heap after a collection: what the process holds, not garbage.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// commandCalls is how many times a redis-server has run the command (INFO commandstats).
func commandCalls(t *testing.T, s *redistest.Server, name string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		return n
	}
	return 0
}

// keyOnEach finds one key per server of e (the proxy's placement), so that a command over them
// is split across every node.
func keyOnEach(t *testing.T, e *env, prefix string) []string {
	t.Helper()
	keys := make([]string, len(e.servers))
	found := 0
	for i := 0; found < len(keys) && i < 1000; i++ {
		k := prefix + strconv.Itoa(i)
		if err := e.client.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for j, s := range e.servers {
			c := redis.NewClient(&redis.Options{Addr: s.Addr})
			n, err := c.Exists(ctx, k).Result()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 && keys[j] == "" {
				keys[j] = k
				found++
			}
		}
	}
	if found < len(keys) {
		t.Fatalf("no key found on every server: %q", keys)
	}
	return keys
}

// A client pipelines MGETs whose merged replies are each far bigger than its output limit and
// does not read: the session sends the next command only once the replies it holds are
// written, so asterd holds about the limit plus one reply (not the whole pipeline's), the
// servers have run only the first MGETs, and once the client reads it gets every reply whole
// and in order (one reply bigger than the limit is delivered). Afterwards the session's buffers
// shrink back. Event-loop and goroutine (client_idle_timeout) sessions alike.
func TestOutputLimitBoundsRepliesOfAClientThatDoesNotRead(t *testing.T) {
	for _, mode := range []struct {
		name string
		idle time.Duration
	}{{"loop", 0}, {"goroutine", time.Hour}} {
		t.Run(mode.name, func(t *testing.T) {
			const (
				limit = 1 << 20
				vlen  = 8 << 20 // each MGET's reply: two of these, one from each node
				n     = 8
			)
			e := startEnv(t, envOpts{nodes: 2, idle: mode.idle, outLimit: limit, readTimeout: 20 * time.Second})
			keys := keyOnEach(t, e, "big")
			val := strings.Repeat("v", vlen)
			for _, k := range keys {
				if err := e.client.Set(ctx, k, val, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			reply := 2 * (vlen + 16)
			mgets := func() int {
				return commandCalls(t, e.servers[0], "mget") + commandCalls(t, e.servers[1], "mget")
			}
			c := e.raw(t)
			c.send("PING\r\n")
			if got := c.line(); got != "+PONG" {
				t.Fatalf("PING = %q", got)
			}
			before := heapInUse()
			var req strings.Builder
			for i := range n {
				req.WriteString(cmdFrame("MGET", keys[0], keys[1]))
				req.WriteString(cmdFrame("ECHO", strconv.Itoa(i)))
			}
			c.send(req.String())
			deadline := time.Now().Add(20 * time.Second)
			for mgets() < 2 { // the first MGET ran on both nodes
				if time.Now().After(deadline) {
					t.Fatal("the first MGET never reached the servers")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Time for a proxy that did not hold back to send the rest (not needed to pass).
			time.Sleep(300 * time.Millisecond)
			held := heapInUse()
			ran := mgets()
			t.Logf("heap in use %d MiB before, %d MiB with the client not reading; servers ran %d MGET parts of %d",
				before>>20, held>>20, ran, 2*n)
			// Socket buffers may take replies off asterd's hands: the next MGET then goes.
			if most := 2 * (1 + socketReplies(reply)); ran > most || ran == 2*n {
				t.Errorf("servers ran %d MGET parts of %d while the client read nothing: want at most %d", ran, 2*n, most)
			}
			// While a reply comes in it is in the backend's read buffer (up to twice its size),
			// the request's copy and the client's output at once: five replies' worth, no more.
			if bound := uint64(limit + 5*reply + 16<<20); held > before+bound {
				t.Errorf("heap grew by %d MiB while the client did not read: want under %d MiB (limit + replies + slack)",
					(held-before)>>20, bound>>20)
			}

			_ = c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			for i := range n {
				if got := c.line(); got != "*2" {
					t.Fatalf("MGET %d header = %q", i, got)
				}
				for j := range 2 {
					if got := c.line(); got != "$"+strconv.Itoa(vlen) {
						t.Fatalf("MGET %d value %d header = %q", i, j, got)
					}
					if got := c.line(); got != val {
						t.Fatalf("MGET %d value %d: %d bytes, not the value", i, j, len(got))
					}
				}
				if got := c.line() + c.line(); got != "$"+strconv.Itoa(len(strconv.Itoa(i)))+strconv.Itoa(i) {
					t.Fatalf("ECHO %d = %q: replies out of order", i, got)
				}
			}
			c.send("PING\r\n")
			if got := c.line(); got != "+PONG" {
				t.Fatalf("PING after the pipeline = %q", got)
			}
			if got := mgets(); got != 2*n {
				t.Errorf("servers ran %d MGET parts, want %d", got, 2*n)
			}
			// The buffers that grew for the big replies are let go: an idle client is small.
			if after := heapInUse(); after > before+8<<20 {
				t.Errorf("heap in use %d MiB after the client read everything, %d MiB before: big buffers kept",
					after>>20, before>>20)
			}
		})
	}
}

// socketReplies is how many replies of size bytes the kernel may take off asterd's hands for a
// client that reads nothing: its receive buffer and asterd's send buffer, at their largest.
func socketReplies(size int) int {
	total := 0
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		if err != nil || len(fields) != 3 {
			total += 8 << 20
			continue
		}
		n, _ := strconv.Atoi(fields[2])
		total += n
	}
	return (total + size - 1) / size
}

// The rule, not the case: whatever a connection's history taught its window, the replies
// asterd holds for one client stay within client_output_limit plus one reply. The attack: a
// client pipelines thousands of PINGs and reads them (its window grows to hundreds of
// commands, every reply being tiny), then pipelines MGETs whose replies are each about the
// limit, and reads nothing. A batch of them is in flight at once; its replies past the limit
// are read off the shared connections in their turn and dropped, and the client is
// disconnected, as Redis disconnects a client past its hard output limit. Meanwhile another
// client on the same backend connections gets every one of its replies right. Event-loop and
// goroutine (client_idle_timeout) sessions alike.
func TestOutputLimitHoldsWhateverTheWindowLearnt(t *testing.T) {
	for _, mode := range []struct {
		name string
		idle time.Duration
	}{{"loop", 0}, {"goroutine", time.Hour}} {
		t.Run(mode.name, func(t *testing.T) {
			const (
				limit = 1 << 20
				vlen  = 64 << 10
				nkeys = 16 // each MGET's reply: about the limit
				warm  = 2000
				n     = 64
			)
			heldCh := make(chan int, 4)
			restore := proxy.SetOverLimitHook(func(held int) { heldCh <- held })
			var logs lockedBuffer
			e := startEnv(t, envOpts{nodes: 2, idle: mode.idle, outLimit: limit, logs: &logs, readTimeout: 10 * time.Second})
			t.Cleanup(restore) // after the cluster closed (cleanups run last first)
			val := strings.Repeat("v", vlen)
			keys := make([]string, nkeys)
			for i := range keys {
				keys[i] = "big" + strconv.Itoa(i)
				if err := e.client.Set(ctx, keys[i], val, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			reply := nkeys * (vlen + 16)
			mgets := func() int {
				return commandCalls(t, e.servers[0], "mget") + commandCalls(t, e.servers[1], "mget")
			}
			ranBefore := mgets()

			// Another client, on the same shared backend connections (one per node), keeps
			// checking that each reply is its own.
			stop := make(chan struct{})
			victim := make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						victim <- nil
						return
					default:
					}
					k, v := "victim"+strconv.Itoa(i%50), "value-"+strconv.Itoa(i)
					if err := e.client.Set(ctx, k, v, 0).Err(); err != nil {
						victim <- err
						return
					}
					got, err := e.client.Get(ctx, k).Result()
					if err != nil || got != v {
						victim <- fmt.Errorf("GET %s = %q, %v: want %q", k, got, err, v)
						return
					}
				}
			}()

			c := e.raw(t)
			c.send(strings.Repeat(cmdFrame("PING"), warm))
			for i := range warm {
				if got := c.line(); got != "+PONG" {
					t.Fatalf("PING %d = %q", i, got)
				}
			}
			before := heapInUse()
			var req strings.Builder
			for range n {
				req.WriteString(cmdFrame(append([]string{"MGET"}, keys...)...))
			}
			c.send(req.String())

			var held int
			select {
			case held = <-heldCh:
			case <-time.After(20 * time.Second):
				t.Fatalf("the client was never disconnected; servers ran %d MGET parts of %d", mgets()-ranBefore, 2*n)
			}
			t.Logf("held %d KiB of replies when the client was cut (limit %d KiB, one reply %d KiB)", held>>10, limit>>10, reply>>10)
			if held > limit+reply {
				t.Errorf("held %d bytes of replies: want at most the limit plus one reply, %d", held, limit+reply)
			}
			// The client finds its connection closed (reset: it had sent more than asterd
			// read), having had no MGET reply at all: the batch that went over was dropped whole.
			_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			if b, err := io.ReadAll(c.br); (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(b) > 0 {
				t.Errorf("after the cut the client read %d bytes, %v: want the connection closed", len(b), err)
			}
			// What stays once the dropped replies are read off: nothing of the client's.
			if after := heapInUse(); after > before+uint64(limit+2*reply)+8<<20 {
				t.Errorf("heap in use %d MiB, %d MiB before the pipeline: replies held for a closed client",
					after>>20, before>>20)
			}
			close(stop)
			if err := <-victim; err != nil {
				t.Fatalf("the other client: %v", err)
			}
			// The shared connections are whole: big and small replies still come right.
			got, err := e.client.MGet(ctx, keys...).Result()
			if err != nil || len(got) != nkeys || got[0] != val || got[nkeys-1] != val {
				t.Fatalf("MGET after the cut: %d values, %v", len(got), err)
			}
			if !strings.Contains(logs.String(), "client_output_limit") {
				t.Errorf("no log line for the disconnect: %q", logs.String())
			}
			if k := strings.Count(logs.String(), "client disconnected"); k != 1 {
				t.Errorf("%d log lines for one disconnect, want 1", k)
			}
		})
	}
}

// Replies the proxy makes itself count against the limit as the nodes' do: COMMAND's is tens
// of KiB from nine bytes of input, and a window learnt from PINGs takes hundreds of them.
func TestOutputLimitCountsRepliesTheProxyMakes(t *testing.T) {
	const limit = 256 << 10
	heldCh := make(chan int, 4)
	restore := proxy.SetOverLimitHook(func(held int) { heldCh <- held })
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 1, outLimit: limit, metrics: m})
	t.Cleanup(restore)
	c := e.raw(t)
	c.send(strings.Repeat("PING\r\n", 2000))
	for i := range 2000 {
		if got := c.line(); got != "+PONG" {
			t.Fatalf("PING %d = %q", i, got)
		}
	}
	other := e.raw(t) // the reply's size, measured apart: c's window must know nothing of it
	other.send("COMMAND\r\n")
	f, err := resp.NewReplyReader(other.br, 4<<10).Next()
	if err != nil {
		t.Fatal(err)
	}
	reply := len(f)
	if reply*400 < 4*limit {
		t.Fatalf("COMMAND's reply is %d bytes: too small for the test", reply)
	}
	c.send(strings.Repeat("COMMAND\r\n", 400))
	select {
	case held := <-heldCh:
		if held > limit+reply {
			t.Errorf("held %d bytes of replies: want at most the limit plus one reply, %d", held, limit+reply)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the client was never disconnected")
	}
	// One disconnect, counted once (not once per dropped reply).
	if got := testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindOutputLimit)); got != 1 {
		t.Errorf("aster_request_errors_total{kind=output_limit} = %v, want 1", got)
	}
}
