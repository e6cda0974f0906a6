package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/internal/race"
)

// bigMixSizes are value sizes around the points where the reply path changes: small replies
// copied into the output, big ones (4 KiB and up) written from their requests' buffers with
// writev, and ones bigger than a backend connection's read buffer (16 KiB, and its 256 KiB
// cap), which arrive over many reads and grow the buffer.
var bigMixSizes = []int{0, 10, 4095, 4096, 16384, 16 << 10 * 5, 300 << 10}

func bigMixValue(key string, n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat(key+":", n/(len(key)+1)+1)[:n]
}

// TestBigRepliesInterleavedInPipelines pipelines GETs of small and big values, in mixed order,
// from several clients at once (so that the replies of several sessions interleave on the
// shared backend connections), over RESP2 and RESP3 clients, with the backends speaking RESP2
// and RESP3 (the reply converted, or not). Every reply must come back whole and in order.
func TestBigRepliesInterleavedInPipelines(t *testing.T) {
	for _, backend3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("backendRESP3=%v", backend3), func(t *testing.T) {
			e := startEnv(t, envOpts{nodes: 3, readTimeout: 10 * time.Second, resp3: backend3})
			waitUnpinned(t)
			leaked := backend.LeakedBuffers()
			const keys = 40
			want := map[string]string{}
			for i := 0; i < keys; i++ {
				k := "big" + strconv.Itoa(i)
				want[k] = bigMixValue(k, bigMixSizes[i%len(bigMixSizes)])
				if err := e.client.Set(ctx, k, want[k], 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for c := 0; c < 8; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := redis.NewClient(&redis.Options{Addr: e.addr, Protocol: 2 + c%2, MaxRetries: -1})
					defer cl.Close()
					for round := 0; round < 5; round++ {
						p := cl.Pipeline()
						var cmds []*redis.StringCmd
						var names []string
						for i := 0; i < 60; i++ {
							k := "big" + strconv.Itoa((i*7+c*3+round)%keys)
							names = append(names, k)
							cmds = append(cmds, p.Get(ctx, k))
						}
						if _, err := p.Exec(ctx); err != nil {
							errs <- fmt.Errorf("client %d: %w", c, err)
							return
						}
						for i, cmd := range cmds {
							if got := cmd.Val(); got != want[names[i]] {
								errs <- fmt.Errorf("client %d round %d: GET %s = %d bytes, want %d", c, round, names[i], len(got), len(want[names[i]]))
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Every big reply lent to a session (backend.Conn.SendLending) was given back.
			if p := settledPinned(); p != 0 {
				t.Errorf("%d bytes of read buffers pinned after every reply was written", p)
			}
			checkNoLeasesLeaked(t, leaked)
		})
	}
}

// TestBigRepliesToAClientThatReadsLate sends a pipeline whose replies (tens of MB of big
// values and small ones between them) far exceed what the sockets hold, and reads nothing
// until it has sent it all: the session's write stops part way through a batch of big replies
// (which it writes from the requests' buffers), goes on from there once the client reads, and
// every reply comes out whole and in order.
func TestBigRepliesToAClientThatReadsLate(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2, readTimeout: 10 * time.Second})
	const keys = 8
	vals := make([]string, keys)
	for i := range vals {
		k := "late" + strconv.Itoa(i)
		vals[i] = bigMixValue(k, []int{200 << 10, 7, 64 << 10, 5000}[i%4])
		if err := e.client.Set(ctx, k, vals[i], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 400 // ~26 MB of replies
	var req bytes.Buffer
	for i := 0; i < n; i++ {
		k := "late" + strconv.Itoa(i%keys)
		fmt.Fprintf(&req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
	}
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	for i := 0; i < n; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		size, err := strconv.Atoi(strings.TrimSuffix(line[1:], "\r\n"))
		if line[0] != '$' || err != nil {
			t.Fatalf("reply %d: header %q", i, line)
		}
		body := make([]byte, size+2)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if want := vals[i%keys]; string(body[:size]) != want || string(body[size:]) != "\r\n" {
			t.Fatalf("reply %d: %d bytes, not the %d of %s", i, size, len(want), "late"+strconv.Itoa(i%keys))
		}
	}
}

// TestBigValuePipelineAllocatesNothing: GETs of 16 KiB values pipelined 16 deep (the
// workload of issue #20) allocate nothing once warm. The replies of such a batch come to more
// than an output buffer is kept at (maxKeptOut); were they copied into it, it would be
// dropped and grown again for every batch, and the garbage collected.
func TestBigValuePipelineAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector has sync.Pool (the lent read buffers') drop items at random; make allocs runs this")
	}
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 3, metrics: m})
	val := strings.Repeat("v", 16<<10)
	if err := e.client.Set(ctx, "big:key", val, 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const depth = 16
	batch := []byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$7\r\nbig:key\r\n", depth))
	reply := "$16384\r\n" + val + "\r\n"
	buf := make([]byte, len(reply)*depth)
	roundTrip := func() {
		if _, err := nc.Write(batch); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm: the window grown to 16, buffers grown
		roundTrip()
	}
	if string(buf[len(buf)-len(reply):]) != reply {
		t.Fatalf("last reply of the batch is not the value")
	}
	// Below one allocation per round trip, as TestHotPathAllocatesNothing allows.
	if n := testing.AllocsPerRun(200, roundTrip); n >= 0.5 {
		t.Errorf("%.2f allocations per pipelined round trip of 16 GETs of 16 KiB, want 0", n)
	}
}

// TestStalledClientHoldsNoLease: a client that stops reading part way through a batch of big
// replies keeps none of them in the backend connections' read buffers (they are lent to the
// session, backend.Conn.SendLending): its session copies what it has not written before it
// waits, so that the connections, reading on for everyone else, can reuse their buffers. Then
// the stalled client reads it all, whole and in order.
func TestStalledClientHoldsNoLease(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, readTimeout: 10 * time.Second})
	val := bigMixValue("stall", 64<<10)
	if err := e.client.Set(ctx, "stall", val, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitUnpinned(t)
	leaked := backend.LeakedBuffers()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 300 // ~20 MB of replies: far more than the sockets hold
	if _, err := nc.Write(bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$5\r\nstall\r\n"), n)); err != nil {
		t.Fatal(err)
	}
	// Stalled once CLIENT LIST shows replies it has not taken (omem).
	deadline := time.Now().Add(10 * time.Second)
	for !clientHasOmem(e.client.ClientList(ctx).Val()) {
		if time.Now().After(deadline) {
			t.Fatalf("the client's session never waited for it to read:\n%s", e.client.ClientList(ctx).Val())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Others' big replies meanwhile move the node's connections on through many buffers.
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := redis.NewClient(&redis.Options{Addr: e.addr})
			defer cl.Close()
			for range 10 {
				p := cl.Pipeline()
				for range 20 {
					p.Get(ctx, "stall")
				}
				cmds, err := p.Exec(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				for _, cmd := range cmds {
					if got := cmd.(*redis.StringCmd).Val(); got != val {
						t.Errorf("another client's GET: %d bytes, want %d", len(got), len(val))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if p := settledPinned(); p != 0 {
		t.Errorf("%d bytes of read buffers pinned while a client is stalled", p)
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	want := "$65536\r\n" + val + "\r\n"
	got := make([]byte, len(want))
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("reply %d is not the value", i)
		}
	}
	checkNoLeasesLeaked(t, leaked)
}

// clientHasOmem reports whether a CLIENT LIST shows a client with replies it has not taken.
func clientHasOmem(list string) bool {
	for _, f := range strings.Fields(list) {
		if v, ok := strings.CutPrefix(f, "omem="); ok && v != "0" {
			return true
		}
	}
	return false
}

// waitUnpinned waits until no lent read buffer is pinned: a lease that an earlier test's
// session never gave back (it panicked) stops counting once collected.
func waitUnpinned(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for backend.PinnedBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of read buffers pinned before the test", backend.PinnedBytes())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// settledPinned is backend.PinnedBytes once it is 0, or after a second: a client may have
// its last replies a moment before their session gives back what it wrote them from.
func settledPinned() int64 {
	deadline := time.Now().Add(time.Second)
	for backend.PinnedBytes() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return backend.PinnedBytes()
}

// checkNoLeasesLeaked fails if a read buffer was collected with a lease never given back since
// LeakedBuffers was before (the collector runs, and its cleanups get a moment).
func checkNoLeasesLeaked(t *testing.T, before int64) {
	t.Helper()
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if n := backend.LeakedBuffers() - before; n != 0 {
		t.Errorf("%d read buffers collected with leases never given back", n)
	}
}
