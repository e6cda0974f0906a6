package redistest

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// Relay is a fault-injecting TCP relay in front of a server, for tests: it forwards bytes both
// ways in small chunks with random delays, and closes connections at random.
type Relay struct {
	Addr string

	ln       net.Listener
	target   string
	maxDelay time.Duration
	closeP   float64 // chance per forwarded chunk to cut the connection
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// StartRelay relays to target, delaying each chunk by up to maxDelay and cutting a connection
// with probability closeP per chunk. It stops at test end.
func StartRelay(t testing.TB, target string, maxDelay time.Duration, closeP float64) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("relay listen: %v", err)
	}
	r := &Relay{Addr: ln.Addr().String(), ln: ln, target: target, maxDelay: maxDelay, closeP: closeP, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns[c], r.conns[s] = struct{}{}, struct{}{}
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(c, s)
		go r.pipe(s, c)
	}
}

func (r *Relay) pipe(from, to net.Conn) {
	defer r.wg.Done()
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 512)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if r.maxDelay > 0 {
				time.Sleep(time.Duration(rand.Int64N(int64(r.maxDelay))))
			}
			if rand.Float64() < r.closeP {
				// Cut mid-stream: maybe after forwarding part of the chunk.
				_, _ = to.Write(buf[:rand.IntN(n+1)])
				return
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// Close stops the relay and cuts every connection.
func (r *Relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
