package proxy

import ()

// Pub/sub: the subscribed client's output. The session and the link readers queue replies
// and messages under the pubsub's mu; one writer goroutine writes them, so that no one blocks
// on a slow client, and the output limit cuts a client that does not read.

// reply queues a reply to the client.
func (p *pubsub) reply(b []byte) {
	p.mu.Lock()
	p.appendLocked(b)
	p.mu.Unlock()
}

// appendLocked queues output and wakes the writer. p.mu must be held.
func (p *pubsub) appendLocked(b []byte) {
	if p.overLimitLocked(len(b)) {
		return
	}
	p.out = append(p.out, b...)
	if !p.hold {
		p.cond.Signal()
	}
}

// overLimitLocked makes room in out for n more bytes, or reports that they cannot be queued:
// the client is gone, or its output would pass the limit, and then it is disconnected. The
// limit is on the memory the output holds, not only on the bytes queued: out's capacity plus
// the buffer the writer is writing, which a client that reads slowly keeps busy. out grows
// here, never past what the limit leaves, so that append cannot overshoot it. p.mu must be held.
func (p *pubsub) overLimitLocked(n int) bool {
	if p.broken {
		return true
	}
	need := len(p.out) + n
	if need <= cap(p.out) {
		return false
	}
	if room := pubsubOutputLimit - p.writing; need <= room {
		// Doubling while small, then a quarter more, as append does: less slack to count.
		want := max(2*cap(p.out), 4<<10)
		if cap(p.out) >= maxKeptOut {
			want = cap(p.out) + cap(p.out)/4
		}
		grown := make([]byte, len(p.out), min(max(want, need), room))
		copy(grown, p.out)
		p.out = grown
		return false
	}
	held := cap(p.out) + p.writing
	if testPubSubCutHook != nil {
		testPubSubCutHook(held)
	}
	p.broken = true
	p.out = nil
	p.log.Error("subscriber disconnected: output buffer limit reached (it reads slower than messages arrive)",
		"limit_bytes", pubsubOutputLimit, "held_bytes", held, "queued_bytes", need)
	p.s.shutdownClient() // its reader sees the end and the session ends
	return true
}

// testPubSubCutHook is set only by tests (pubsub_internal_test.go): called with the bytes a
// subscriber's output held when it was cut, before its buffers are let go.
var testPubSubCutHook func(held int)

// writeLoop writes queued output to the client, so that neither the session nor a link reader
// ever blocks on a slow client; it ends once stop is set and everything is written.
func (p *pubsub) writeLoop() {
	defer p.wg.Done()
	var buf []byte
	for {
		p.mu.Lock()
		p.writing = cap(buf) // kept for the next write
		for !p.stop && (p.hold || len(p.out) == 0 || p.broken) {
			p.cond.Wait()
		}
		if len(p.out) == 0 || p.broken {
			p.mu.Unlock()
			return
		}
		buf, p.out = p.out, buf[:0]
		p.writing = cap(buf)
		p.mu.Unlock()
		if _, err := p.s.nc.Write(buf); err != nil {
			p.mu.Lock()
			p.broken, p.out = true, nil
			p.mu.Unlock()
			p.s.shutdownClient()
			return
		}
		if cap(buf) > maxKeptOut {
			buf = nil
		}
	}
}
