package proxy

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A subscriber that reads slowly is cut when the memory its output holds reaches the limit:
// the buffer being written to it counts with the queue behind it, and the queue never grows
// past what the limit leaves. (Counting only the queued bytes, a subscriber that once took a
// big write and then stalled held that write plus a whole limit's worth of queue, over twice
// the limit.) The client end is a net.Pipe: a write blocks until the client reads, with no
// socket buffer in between, so every step is exact.
func TestPubSubLimitCountsHeldMemory(t *testing.T) {
	const limit = 8 << 20
	old := pubsubOutputLimit
	pubsubOutputLimit = limit
	t.Cleanup(func() { pubsubOutputLimit = old; testPubSubCutHook = nil })

	c := MustCluster(t, route.ClusterSpec{Name: "t"}, Env{})
	t.Cleanup(c.Close)
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	p := newPubSub(&session{c: c, nc: server})
	p.subs[kindChannel]["ch"] = true
	p.wg.Add(1)
	go p.writeLoop()
	t.Cleanup(func() {
		p.mu.Lock()
		p.stop = true
		p.cond.Broadcast()
		p.mu.Unlock()
		p.wg.Wait()
	})

	payload := strings.Repeat("x", 64<<10)
	elems := [][]byte{[]byte("$7\r\nmessage\r\n"), []byte("$2\r\nch\r\n"),
		[]byte("$" + strconv.Itoa(len(payload)) + "\r\n" + payload + "\r\n")}
	msg := len("*3\r\n")
	for _, e := range elems {
		msg += len(e)
	}
	broken := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.broken
	}
	waitWriting := func(atLeast int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.mu.Lock()
			w := p.writing
			p.mu.Unlock()
			if w >= atLeast {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the writer holds %d bytes, want it writing at least %d", w, atLeast)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var heldAtCut int
	var heapAtCut uint64
	testPubSubCutHook = func(held int) { heldAtCut, heapAtCut = held, liveHeap() }

	before := liveHeap()
	// The writer takes the first message and waits for the client, which reads nothing.
	p.deliver(kindChannel, []byte("ch"), elems)
	waitWriting(msg)
	// Three quarters of the limit queue up behind it: within the limit either way.
	queued := 0
	for (queued+2)*msg < limit*3/4 {
		p.deliver(kindChannel, []byte("ch"), elems)
		queued++
	}
	if broken() {
		t.Fatalf("cut with %d bytes queued, under the limit of %d", queued*msg, limit)
	}
	// The client reads the first message: the writer now writes the whole queue, and stalls.
	if _, err := io.ReadFull(client, make([]byte, msg)); err != nil {
		t.Fatal(err)
	}
	waitWriting(queued * msg)
	// More messages: the subscriber is cut once what it holds would pass the limit.
	more := 0
	for !broken() {
		if more > 4*limit/msg {
			t.Fatalf("not cut after %d more messages (%d MiB unread)", more, (queued+more)*msg>>20)
		}
		p.deliver(kindChannel, []byte("ch"), elems)
		more++
	}
	unread := (queued + more - 1) * msg // the last one was refused
	t.Logf("cut with %d KiB unread, %d KiB held by its buffers, heap %d KiB over the start; limit %d KiB",
		unread>>10, heldAtCut>>10, int64(heapAtCut-before)>>10, limit>>10)
	if heldAtCut > limit {
		t.Errorf("buffers held %d bytes at the cut: over the limit of %d", heldAtCut, limit)
	}
	// What the buffers hold beyond the bytes queued is growth slack: a quarter at most.
	if unread > limit || unread < limit*3/4 {
		t.Errorf("cut with %d bytes unread: want the limit's %d, less growth slack", unread, limit)
	}
	if grown := int64(heapAtCut - before); grown > limit+limit/4 {
		t.Errorf("heap grew by %d KiB by the cut: over the limit of %d KiB (and slack)", grown>>10, limit>>10)
	}
}
