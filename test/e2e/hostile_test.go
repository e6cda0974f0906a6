package e2e

import (
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileFrames are crafted protocol violations and abuses; random bytes come on top.
var hostileFrames = []string{
	"*1\r\n$-5\r\n",                                  // negative bulk length
	"*1\r\n$536870913\r\n",                           // bulk larger than Redis allows
	"*1\r\n$536870912\r\nabc",                        // huge claimed bulk, few bytes
	"*99999999999\r\n",                               // multibulk count overflow
	"*2\r\n$3\r\nGET\r\n:1\r\n",                      // wrong type inside a command
	"*1\r\n$3\r\nGETX\r\n",                           // bulk without its CRLF
	strings.Repeat("x", 70<<10),                      // inline longer than 64 KB without newline
	"set a \"unbalanced\r\n",                         // unbalanced quotes
	strings.Repeat("*1\r\n", 10000),                  // deep nesting claims
	"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nshort\r\n", // bulk shorter than claimed
	"\x00\x01\x02\xff\xfe",
	"*-1\r\n*0\r\n\r\n\r\nPING\r\n", // skipped frames then a real command
}

// TestHostileInput has hundreds of connections send crafted and random garbage: asterd must
// keep running, answer a well-behaved client, and keep its memory bounded.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	a := startAsterd(t, `
[[clusters]]
name = "hostile"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
`)
	before := rssKiB(t, a.cmd.Process.Pid)
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 200; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			buf := make([]byte, 4096)
			for time.Now().Before(deadline) {
				c, err := net.DialTimeout("tcp", a.Addr, time.Second)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
				var payload []byte
				if rng.IntN(2) == 0 {
					payload = []byte(hostileFrames[rng.IntN(len(hostileFrames))])
				} else {
					payload = make([]byte, rng.IntN(2048))
					for i := range payload {
						payload[i] = byte(rng.UintN(256))
					}
				}
				_, _ = c.Write(payload)
				_, _ = c.Read(buf) // an error reply, or nothing: either is fine
				c.Close()
			}
		}(w)
	}
	wg.Wait()

	// Still serving, and a protocol error is a clean Redis error, not a crash.
	c := a.client(t)
	if err := c.Set(ctx, "after-hostile", "ok", 0).Err(); err != nil {
		t.Fatalf("asterd after the hostile input: %v", err)
	}
	raw, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte("*1\r\n$-5\r\n"))
	reply := make([]byte, 128)
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := raw.Read(reply)
	if !strings.HasPrefix(string(reply[:n]), "-ERR Protocol error") {
		t.Fatalf("reply to a negative bulk length: %q", reply[:n])
	}
	after := rssKiB(t, a.cmd.Process.Pid)
	t.Logf("asterd RSS %d KiB before, %d KiB after 4s of hostile input from 200 connections", before, after)
	// Claimed lengths must not be allocated ahead of the bytes: 200 connections claiming
	// 512 MB each would need 100 GB. The bound leaves room for the race detector's overhead.
	if after-before > 256<<10 {
		t.Fatalf("asterd RSS grew by %d KiB under hostile input", after-before)
	}
}
