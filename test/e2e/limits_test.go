package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestFiveThousandConnections(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	a := startAsterd(t, `
[[clusters]]
name = "many"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
`)
	const n = 5000
	before := rssKiB(t, a.cmd.Process.Pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", a.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Every connection is served: a PING on each, in parallel batches.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := w; i < n; i += 50 {
				c := conns[i]
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte("PING\r\n")); err != nil {
					errs <- err
					return
				}
				m, err := c.Read(buf)
				if err != nil || string(buf[:m]) != "+PONG\r\n" {
					errs <- fmt.Errorf("conn %d: %q %v", i, buf[:m], err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := rssKiB(t, a.cmd.Process.Pid)
	// Reported, not asserted: the race detector this suite builds with inflates memory; the
	// per-connection cost without it is in docs/benchmarks.md.
	t.Logf("RSS %d KiB before, %d KiB with %d open connections (%.1f KiB each, race build)",
		before, after, n, float64(after-before)/n)
}

// TestPipelineFloodKeepsMemoryBounded has one client pipeline a flood of commands without
// reading any reply: asterd stops reading from it once its replies back up, so its memory
// stays bounded, and another client is served meanwhile.
func TestPipelineFloodKeepsMemoryBounded(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	a := startAsterd(t, `
[[clusters]]
name = "flood"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
`)
	c := a.client(t)
	if err := c.Set(ctx, "flood", strings.Repeat("x", 1000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := rssKiB(t, a.cmd.Process.Pid)
	flood, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	// 1 KB replies to 30-byte requests: 200,000 GETs would be 200 MB of replies if buffered.
	stop := make(chan struct{})
	written := make(chan int, 1)
	go func() {
		w := bufio.NewWriterSize(flood, 64<<10)
		total := 0
		for i := 0; i < 200000; i++ {
			select {
			case <-stop:
				written <- total
				return
			default:
			}
			_ = flood.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := w.WriteString("*2\r\n$3\r\nGET\r\n$5\r\nflood\r\n")
			total += n
			if err != nil {
				break // the socket is full: asterd is not reading any more
			}
		}
		written <- total
	}()
	time.Sleep(2 * time.Second)
	// Meanwhile another client is served normally.
	for i := 0; i < 50; i++ {
		if err := c.Get(ctx, "flood").Err(); err != nil {
			t.Fatalf("other client during the flood: %v", err)
		}
	}
	close(stop)
	sent := <-written
	after := rssKiB(t, a.cmd.Process.Pid)
	t.Logf("flood client wrote %d bytes without reading; asterd RSS %d -> %d KiB", sent, before, after)
	// Bound: one batch (1024 commands) of 1 KB replies plus socket buffers and the race
	// detector's overhead is far below 64 MiB; buffering the flood would need ~200 MB.
	if after-before > 64<<10 {
		t.Fatalf("asterd RSS grew by %d KiB during the flood: not bounded", after-before)
	}
}
