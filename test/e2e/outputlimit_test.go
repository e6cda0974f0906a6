package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// mgetParts is how many MGETs the servers have run between them (INFO commandstats).
func mgetParts(t *testing.T, servers []*redistest.Server) int {
	t.Helper()
	total := 0
	for _, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		info, err := c.Info(ctx, "commandstats").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_mget:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				total += n
			}
		}
	}
	return total
}

// TestClientOutputLimit: a client pipelines MGETs whose replies (16 MiB each, merged from two
// servers) are far bigger than the cluster's client_output_limit (1 MiB) and does not read.
// asterd sends the next of its commands only once the replies it holds are written: the
// servers run one MGET (more only as the socket buffers take replies whole), asterd's
// memory grows by about one reply, not by the pipeline's, and the client is neither refused
// nor closed. Once it reads, every reply arrives whole and in order: each is bigger than the
// limit. On an event-loop session (plain TCP) and a goroutine one (client_idle_timeout).
func TestClientOutputLimit(t *testing.T) {
	servers := startServers(t, 2)
	loopAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterd(t, `
[[clusters]]
name = "goroutine"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
read_timeout = 20000
client_output_limit = 1048576
client_idle_timeout = 3600

[[clusters]]
name = "loop"
listen_addr = "`+loopAddr+`"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
read_timeout = 20000
client_output_limit = 1048576
`)
	redistest.WaitListening(t, loopAddr, 10*time.Second)
	c := a.client(t)
	keys := apartKeys(t, c, servers)
	const vlen = 8 << 20
	val := strings.Repeat("v", vlen)
	for _, k := range keys {
		if err := c.Set(ctx, k, val, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []struct{ name, addr string }{{"loop", loopAddr}, {"goroutine", a.Addr}} {
		t.Run(mode.name, func(t *testing.T) {
			const n = 8
			nc, err := net.Dial("tcp", mode.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 64<<10)
			line := func() string {
				t.Helper()
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				return strings.TrimSuffix(l, "\r\n")
			}
			startParts := mgetParts(t, servers)
			before := rssKiB(t, a.cmd.Process.Pid)
			var req strings.Builder
			for i := range n {
				req.WriteString("*3\r\n$4\r\nMGET\r\n$" + strconv.Itoa(len(keys[0])) + "\r\n" + keys[0] + "\r\n$" +
					strconv.Itoa(len(keys[1])) + "\r\n" + keys[1] + "\r\n")
				req.WriteString("*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(strconv.Itoa(i))) + "\r\n" + strconv.Itoa(i) + "\r\n")
			}
			if _, err := nc.Write([]byte(req.String())); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for mgetParts(t, servers)-startParts < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the first MGET never reached the servers")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Time for an asterd that did not hold back to send the rest (not needed to pass).
			time.Sleep(500 * time.Millisecond)
			ran := mgetParts(t, servers) - startParts
			held := rssKiB(t, a.cmd.Process.Pid)
			t.Logf("servers ran %d MGET parts of %d; asterd RSS %d -> %d KiB", ran, 2*n, before, held)
			// Socket buffers may take replies off asterd's hands: the next MGET then goes.
			if most := 2 * (1 + socketReplies(2*vlen)); ran > most || ran == 2*n {
				t.Errorf("servers ran %d MGET parts of %d while the client read nothing: want at most %d", ran, 2*n, most)
			}
			// One 16 MiB reply passes through a backend read buffer, a copy and the output (the
			// race build doubles that); the whole pipeline's would be 128 MiB, held twice.
			if grown := held - before; grown > 160<<10 {
				t.Errorf("asterd RSS grew by %d MiB while the client did not read", grown>>10)
			}
			_ = nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			for i := range n {
				if got := line(); got != "*2" {
					t.Fatalf("MGET %d header = %q", i, got)
				}
				for j := range 2 {
					if got := line(); got != "$"+strconv.Itoa(vlen) {
						t.Fatalf("MGET %d value %d header = %q", i, j, got)
					}
					if got := line(); got != val {
						t.Fatalf("MGET %d value %d: %d bytes, not the value", i, j, len(got))
					}
				}
				if got := line() + line(); got != "$"+strconv.Itoa(len(strconv.Itoa(i)))+strconv.Itoa(i) {
					t.Fatalf("ECHO %d = %q: replies out of order", i, got)
				}
			}
			if got := mgetParts(t, servers) - startParts; got != 2*n {
				t.Errorf("servers ran %d MGET parts, want %d", got, 2*n)
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

// TestClientOutputLimitWhateverTheWindowLearnt: the limit holds whatever a connection's history
// taught asterd. A client pipelines 2,000 PINGs and reads them (asterd's window for it grows
// to hundreds of commands), then pipelines 64 MGETs whose replies are each about the limit (16
// × 64 KiB, from two servers) and reads nothing. asterd holds at most the limit plus one reply
// of them (its log line says what it held), drops the rest as they come off the shared
// connections, and disconnects the client, as Redis does past a hard output limit; another
// client of the same cluster, on the same backend connections, gets every reply right
// meanwhile. Event-loop and goroutine (client_idle_timeout) sessions.
func TestClientOutputLimitWhateverTheWindowLearnt(t *testing.T) {
	servers := startServers(t, 2)
	loopAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	const limit = 1 << 20
	a := startAsterd(t, `
[[clusters]]
name = "goroutine"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
client_output_limit = 1048576
client_idle_timeout = 3600

[[clusters]]
name = "loop"
listen_addr = "`+loopAddr+`"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
client_output_limit = 1048576
`)
	redistest.WaitListening(t, loopAddr, 10*time.Second)
	const (
		vlen  = 64 << 10
		nkeys = 16
		n     = 64
	)
	val := strings.Repeat("v", vlen)
	keys := make([]string, nkeys)
	seed := a.client(t)
	for i := range keys {
		keys[i] = "big" + strconv.Itoa(i)
		if err := seed.Set(ctx, keys[i], val, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	reply := nkeys * (vlen + 16)
	mget := "*" + strconv.Itoa(nkeys+1) + "\r\n$4\r\nMGET\r\n"
	for _, k := range keys {
		mget += "$" + strconv.Itoa(len(k)) + "\r\n" + k + "\r\n"
	}
	for _, mode := range []struct{ name, addr string }{{"loop", loopAddr}, {"goroutine", a.Addr}} {
		t.Run(mode.name, func(t *testing.T) {
			cuts := strings.Count(a.log.String(), "passed client_output_limit")
			victim := redis.NewClient(&redis.Options{Addr: mode.addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
			defer victim.Close()
			stop, verr := make(chan struct{}), make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						verr <- nil
						return
					default:
					}
					k, v := "victim"+strconv.Itoa(i%50), mode.name+strconv.Itoa(i)
					if err := victim.Set(ctx, k, v, 0).Err(); err != nil {
						verr <- err
						return
					}
					if got, err := victim.Get(ctx, k).Result(); err != nil || got != v {
						verr <- fmt.Errorf("GET %s = %q, %v: want %q", k, got, err, v)
						return
					}
				}
			}()

			nc, err := net.Dial("tcp", mode.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(nc)
			if _, err := nc.Write([]byte(strings.Repeat("*1\r\n$4\r\nPING\r\n", 2000))); err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				if l, err := br.ReadString('\n'); err != nil || l != "+PONG\r\n" {
					t.Fatalf("PING %d = %q, %v", i, l, err)
				}
			}
			if _, err := nc.Write([]byte(strings.Repeat(mget, n))); err != nil {
				t.Fatal(err)
			}
			// asterd closes the connection (a reset: it had more input unread) before any
			// MGET reply: the batch that went over the limit is dropped whole.
			got, err := io.ReadAll(br)
			if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(got) > 0 {
				t.Fatalf("the client read %d bytes, %v: want its connection closed", len(got), err)
			}
			close(stop)
			if err := <-verr; err != nil {
				t.Fatalf("the other client: %v", err)
			}
			vals, err := victim.MGet(ctx, keys...).Result()
			if err != nil || len(vals) != nkeys || vals[0] != val || vals[nkeys-1] != val {
				t.Fatalf("MGET after the cut: %d values, %v", len(vals), err)
			}
			log := a.log.String()
			if k := strings.Count(log, "passed client_output_limit"); k != cuts+1 {
				t.Fatalf("%d log lines for the disconnect, want 1", k-cuts)
			}
			m := regexp.MustCompile(`passed client_output_limit.* held_bytes=(\d+)`).FindAllStringSubmatch(log, -1)
			held, _ := strconv.Atoi(m[len(m)-1][1])
			t.Logf("asterd held %d KiB of replies for the client (limit %d KiB, one reply %d KiB)", held>>10, limit>>10, reply>>10)
			if held > limit+reply {
				t.Errorf("asterd held %d bytes of replies: want at most the limit plus one reply, %d", held, limit+reply)
			}
		})
	}
}
