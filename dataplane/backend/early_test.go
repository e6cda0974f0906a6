package backend_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestBigFramesWrittenEarly: once WriteEarly bytes are queued, a connection writes them without
// waiting for its senders' flush, so that its write buffers stay small enough to be kept.
// Before, a batch of big SETs went out in one write at the flush: a buffer past what a
// connection keeps, dropped after the write and grown again from nothing for the next batch
// (about a batch's size allocated per batch). Here, against a real redis-server: the first
// frames of a batch are answered before any Flush, and batches after the first allocate
// next to nothing.
func TestBigFramesWrittenEarly(t *testing.T) {
	srv := redistest.Start(t)
	c := backend.New(backend.Options{Addr: srv.Addr, DialTimeout: time.Second})
	defer c.Close()
	if got := do(t, c, "PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	val := make([]byte, 16<<10)
	n := 2*backend.WriteEarly/len(val) + 1 // a batch: over twice what goes out early
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = resp.AppendCommand(nil, []byte("SET"), fmt.Appendf(nil, "k%d", i), val)
	}
	reqs := make([]backend.Request, n)
	var first, rest sync.WaitGroup
	reqs[0].Bind(&first)
	for i := 1; i < n; i++ {
		reqs[i].Bind(&rest)
	}
	batch := func() {
		first.Add(1)
		rest.Add(n - 1)
		for i := range reqs {
			c.Send(&reqs[i], frames[i])
		}
	}

	batch()
	select {
	case <-released(&first):
	case <-time.After(10 * time.Second):
		t.Fatalf("the first of %d frames of %d bytes was not written before a Flush", n, len(frames[0]))
	}
	c.Flush()
	rest.Wait()
	for i := range reqs {
		if string(reqs[i].Reply) != "+OK\r\n" {
			t.Fatalf("SET %d: %q", i, reqs[i].Reply)
		}
	}

	// A buffer grown for one batch is ~n frames; what a batch may allocate is far below one.
	// TotalAlloc is the process's: what the earlier tests' goroutines still allocate while
	// they wind down counts too, so the best of three tries decides (dropped buffers would
	// allocate in every one).
	const batches = 10
	var per uint64
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range batches {
			batch()
			c.Flush()
			first.Wait()
			rest.Wait()
		}
		runtime.ReadMemStats(&after)
		if per = (after.TotalAlloc - before.TotalAlloc) / batches; per <= uint64(len(frames[0])) {
			return
		}
	}
	t.Fatalf("a batch of %d SETs of %d bytes allocated %d bytes: the write buffers were not kept", n, len(val), per)
}
