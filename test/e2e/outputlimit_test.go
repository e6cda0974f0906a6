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
	t.Parallel()
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
	t.Parallel()
	servers := startServers(t, 2)
	loopAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
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
	keys := setBigValues(t, a.client(t), "big", 16, 64<<10)
	for _, mode := range []struct{ name, addr string }{{"loop", loopAddr}, {"goroutine", a.Addr}} {
		t.Run(mode.name, func(t *testing.T) {
			warmThenFlood(t, a, mode.addr, 1<<20, append([]string{"MGET"}, keys...), 64<<10, 16*(64<<10+16), 64)
		})
	}
}

// The same in front of a Redis Cluster, with backup reads on: MGETs split per slot, and GETs
// of one big value, each a race between a master and a replica (backup.go).
func TestClientOutputLimitWhateverTheWindowLearntRedisCluster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	// read_timeout 10 s, not the 1 s of clusterConfig: on a loaded machine a race build
	// reading 200 MiB of replies off one connection timed the first GET out, so every GET
	// queued behind it failed with a small error reply and the client was never over its
	// limit — the test's premise, not asterd's behaviour, failed.
	cfg := strings.Replace(clusterConfig(rc.Seeds()[:1], `client_output_limit = 1048576
backup_request = { enabled = true, trigger_slow_ms = 10000 }
`), "read_timeout = 1000", "read_timeout = 10000", 1)
	a := startAsterd(t, cfg)
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	keys := setBigValues(t, c, "big", 16, 64<<10)
	t.Run("mget", func(t *testing.T) {
		warmThenFlood(t, a, a.Addr, 1<<20, append([]string{"MGET"}, keys...), 64<<10, 16*(64<<10+16), 64)
	})
	one := setBigValues(t, c, "one", 1, 1<<20)
	t.Run("get", func(t *testing.T) {
		warmThenFlood(t, a, a.Addr, 1<<20, []string{"GET", one[0]}, 1<<20, 1<<20+16, 200)
	})
}

// setBigValues sets n keys named prefix0... to values of size bytes and returns their names.
func setBigValues(t *testing.T, c *redis.Client, prefix string, n, size int) []string {
	t.Helper()
	val := strings.Repeat("v", size)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
		if err := c.Set(ctx, keys[i], val, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// warmThenFlood has a client of addr pipeline 2,000 PINGs and read them, then pipeline n
// copies of cmd (each reply about reply bytes, of values of size bytes) and read nothing; it checks that asterd
// disconnected the client before any reply of them, logged it once with at most limit plus
// one reply held, and that another client of the same cluster got its replies right
// throughout and after.
func warmThenFlood(t *testing.T, a *asterd, addr string, limit int, cmd []string, size, reply, n int) {
	t.Helper()
	cuts := strings.Count(a.log.String(), "passed client_output_limit")
	victim := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
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
			// A timeout is no wrong answer: its request waits behind the flood's replies on
			// the shared connection while asterd reads them off (this asterd is a race
			// build, on a machine that may be loaded).
			k, v := "victim"+strconv.Itoa(i%50), "value"+strconv.Itoa(i)
			if err := victim.Set(ctx, k, v, 0).Err(); err != nil {
				if strings.Contains(err.Error(), "timeout") {
					continue
				}
				verr <- err
				return
			}
			got, err := victim.Get(ctx, k).Result()
			if err != nil && strings.Contains(err.Error(), "timeout") {
				continue
			}
			if err != nil || got != v {
				verr <- fmt.Errorf("GET %s = %q, %v: want %q", k, got, err, v)
				return
			}
		}
	}()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	if _, err := nc.Write([]byte(strings.Repeat("*1\r\n$4\r\nPING\r\n", 2000))); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if l, err := br.ReadString('\n'); err != nil || l != "+PONG\r\n" {
			t.Fatalf("PING %d = %q, %v", i, l, err)
		}
	}
	frame := "*" + strconv.Itoa(len(cmd)) + "\r\n"
	for _, arg := range cmd {
		frame += "$" + strconv.Itoa(len(arg)) + "\r\n" + arg + "\r\n"
	}
	if _, err := nc.Write([]byte(strings.Repeat(frame, n))); err != nil {
		t.Fatal(err)
	}
	// asterd closes the connection (a reset: it had more input unread) before any reply of
	// the flood: the batch that went over the limit is dropped whole.
	got, err := io.ReadAll(br)
	if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(got) > 0 {
		t.Fatalf("the client read %d bytes (%q...), %v: want its connection closed", len(got), got[:min(len(got), 120)], err)
	}
	close(stop)
	if err := <-verr; err != nil {
		t.Fatalf("the other client: %v", err)
	}
	// The shared connections are whole: the big reply still comes right to another client.
	res, err := victim.Do(ctx, anySlice(cmd)...).Result()
	if err != nil {
		t.Fatalf("%s after the cut: %v", cmd[0], err)
	}
	vals, ok := res.([]any)
	if !ok {
		vals = []any{res}
	}
	for i, v := range vals {
		if s, _ := v.(string); len(s) != size || strings.Trim(s, "v") != "" {
			t.Fatalf("%s after the cut: value %d is not the value set (%d bytes)", cmd[0], i, len(s))
		}
	}
	log := a.log.String()
	if strings.Contains(log, "DATA RACE") {
		t.Fatal("the race detector reported a data race in asterd")
	}
	if k := strings.Count(log, "passed client_output_limit"); k != cuts+1 {
		t.Fatalf("%d log lines for the disconnect, want 1", k-cuts)
	}
	m := regexp.MustCompile(`passed client_output_limit.* held_bytes=(\d+)`).FindAllStringSubmatch(log, -1)
	held, _ := strconv.Atoi(m[len(m)-1][1])
	t.Logf("asterd held %d KiB of replies for the client (limit %d KiB, one reply %d KiB)", held>>10, limit>>10, reply>>10)
	if held > limit+reply {
		t.Errorf("asterd held %d bytes of replies: want at most the limit plus one reply, %d", held, limit+reply)
	}
}
