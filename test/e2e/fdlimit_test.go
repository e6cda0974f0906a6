package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// Under a low open-file limit (prlimit), a flood of one cluster's clients stops at that
// cluster's share: the extra clients get Redis's "-ERR max number of clients reached", and
// the other cluster still answers and still dials its backends. asterd logs the limit it got
// and the share it gave.
func TestFloodStaysInItsShare(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	const limit = 200
	servers := startServers(t, 2)
	addrA := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	addrB := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	// Both clusters keep the default max_connections (10000): far more than the limit holds.
	cfg := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(admin) + "\ntoken = \"t\"\n" +
		"[[clusters]]\nname = \"a\"\nlisten_addr = " + strconv.Quote(addrA) + "\ncache_type = \"redis\"\nservers = " + serverList(servers[:1], []int{1}, true) + "\n" +
		"[[clusters]]\nname = \"b\"\nlisten_addr = " + strconv.Quote(addrB) + "\ncache_type = \"redis\"\nservers = " + serverList(servers[1:], []int{1}, true) + "\n"
	path := filepath.Join(t.TempDir(), "aster.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	a := runAsterdWrapped(t, addrA, nil, []string{prlimit, "--nofile=" + strconv.Itoa(limit) + ":" + strconv.Itoa(limit), "--"}, "--config", path)
	redistest.WaitListening(t, addrA, 10*time.Second)
	redistest.WaitListening(t, addrB, 10*time.Second)
	waitLog(t, a, "asterd started")
	if !regexp.MustCompile(`open file limit.* limit=` + strconv.Itoa(limit) + `\b`).MatchString(a.log.String()) {
		t.Fatalf("asterd did not log the open-file limit it got (%d)", limit)
	}
	share := 0
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "max_connections lowered") && strings.Contains(line, "cluster=a ") {
			if m := regexp.MustCompile(`effective=(\d+)`).FindStringSubmatch(line); m != nil {
				share, _ = strconv.Atoi(m[1])
			}
		}
	}
	if share == 0 {
		t.Fatalf("asterd did not log cluster a's lowered client limit")
	}

	// Flood a with more clients than the whole limit, sending nothing yet: a refused client
	// is told at once, on accept, and closed.
	flood := make([]net.Conn, limit+50)
	t.Cleanup(func() {
		for _, c := range flood {
			if c != nil {
				c.Close()
			}
		}
	})
	for i := range flood {
		c, err := net.DialTimeout("tcp", addrA, 5*time.Second)
		if err != nil {
			t.Fatalf("client %d of the flood: dial: %v", i, err)
		}
		flood[i] = c
	}
	// Read every client at once: the refused have their line, the accepted time out (they
	// asked nothing yet). A refusal that arrives later is caught below.
	type first struct {
		line string
		err  error
	}
	got := make([]first, len(flood))
	var wg sync.WaitGroup
	for i, c := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			got[i].line, got[i].err = bufio.NewReader(c).ReadString('\n')
		}()
	}
	wg.Wait()
	const refusal = "-ERR max number of clients reached\r\n"
	pongs, refused := 0, 0
	var held []net.Conn
	for i, c := range flood {
		if got[i].err == nil {
			if got[i].line != refusal {
				t.Fatalf("client %d of the flood: %q", i, got[i].line)
			}
			refused++
			continue
		}
		if ne, ok := got[i].err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("client %d of the flood: %v", i, got[i].err)
		}
		// Every client gets an answer: PONG while a has room.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatalf("client %d of the flood: write: %v", i, err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case err == nil && line == "+PONG\r\n":
			pongs++
			held = append(held, c)
		case err == nil && line == refusal:
			refused++ // refused after the reads above gave up
		case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF):
			// Refused late too, its PING unread: the close may reset the connection before
			// the refusal is read. An answer all the same, not a hang.
			t.Logf("client %d of the flood: refused late (%v)", i, err)
			refused++
		default:
			t.Fatalf("client %d of the flood: no answer to PING (%q, %v; %d accepted, %d refused so far)", i, line, err, pongs, refused)
		}
	}
	if pongs != share || refused != len(flood)-share {
		t.Fatalf("%d of the flood accepted and %d refused, want cluster a's share %d accepted and the other %d refused",
			pongs, refused, share, len(flood)-share)
	}

	// Cluster b still answers new clients, and its backends still dial: BLPOP takes a
	// dedicated connection to its node, dialled now.
	b := redis.NewClient(&redis.Options{Addr: addrB, MaxRetries: -1, ReadTimeout: 5 * time.Second, PoolSize: 4})
	t.Cleanup(func() { b.Close() })
	if err := b.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on cluster b during a's flood: %v", err)
	}
	if err := b.Set(ctx, "fd:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on cluster b during a's flood: %v", err)
	}
	if v, err := b.Get(ctx, "fd:k").Result(); err != nil || v != "v" {
		t.Fatalf("GET on cluster b during a's flood: %q, %v", v, err)
	}
	if err := b.BLPop(ctx, 100*time.Millisecond, "fd:empty").Err(); err != redis.Nil {
		t.Fatalf("BLPOP on cluster b during a's flood: %v, want a nil reply", err)
	}
	// a's own clients are still served, and a client that leaves makes room for one more.
	if _, err := held[0].Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(held[0]).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("a held client of a: %q, %v", line, err)
	}
	held[1].Close()
	ca := redis.NewClient(&redis.Options{Addr: addrA, MaxRetries: 20, MinRetryBackoff: 10 * time.Millisecond, PoolSize: 1})
	t.Cleanup(func() { ca.Close() })
	if err := ca.Ping(ctx).Err(); err != nil {
		t.Fatalf("a new client of a after one left: %v", err)
	}
	if containsLog(a, "accept failing") {
		t.Errorf("asterd ran out of descriptors: its log has accept failures")
	}
}

// The backend connections a client holds for itself count in its cluster's share too: a
// BLPOP's dedicated connection and a SUBSCRIBE's node connection take one descriptor each,
// idle pooled ones too. Past the share, a's commands that need one are refused with an error
// (never b's), a's idle pooled connections give way to a dial first, and once a's clients
// leave, the count is back to 0.
func TestHeldBackendConnectionsStayInTheShare(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	const limit = 200
	servers := startServers(t, 2)
	addrA := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	addrB := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	cfg := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = \"\"\n" +
		"[[clusters]]\nname = \"a\"\nlisten_addr = " + strconv.Quote(addrA) + "\ncache_type = \"redis\"\nservers = " + serverList(servers[:1], []int{1}, true) + "\n" +
		"[[clusters]]\nname = \"b\"\nlisten_addr = " + strconv.Quote(addrB) + "\ncache_type = \"redis\"\nservers = " + serverList(servers[1:], []int{1}, true) + "\n"
	path := filepath.Join(t.TempDir(), "aster.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	a := runAsterdWrapped(t, addrA, nil, []string{prlimit, "--nofile=" + strconv.Itoa(limit) + ":" + strconv.Itoa(limit), "--"}, "--config", path)
	redistest.WaitListening(t, addrA, 10*time.Second)
	redistest.WaitListening(t, addrB, 10*time.Second)
	waitLog(t, a, "asterd started")
	share := 0
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "max_connections lowered") && strings.Contains(line, "cluster=a ") {
			if m := regexp.MustCompile(`effective=(\d+)`).FindStringSubmatch(line); m != nil {
				share, _ = strconv.Atoi(m[1])
			}
		}
	}
	const room = 10 // descriptors left for backend connections
	if share < 3*room {
		t.Fatalf("cluster a's share is %d (log: %s), too small for this test", share, a.log.String())
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	infoField := func(c *redistest.Raw, section, field string) string {
		t.Helper()
		v, err := c.Do("INFO", section)
		if err != nil {
			t.Fatalf("INFO %s: %v", section, err)
		}
		if m := regexp.MustCompile(`(?m)^` + field + `:(\S+)\r$`).FindStringSubmatch(v); m != nil {
			return m[1]
		}
		t.Fatalf("INFO %s has no %s: %q", section, field, v)
		return ""
	}

	// Fill a with idle clients up to its share less room. The first waits until the probes
	// that saw the listener are gone, so that every one of these is accepted.
	clients := make([]*redistest.Raw, share-room)
	clients[0] = redistest.DialRaw(t, addrA)
	eventually("a counts only one client", func() bool { return infoField(clients[0], "clients", "connected_clients") == "1" })
	for i := 1; i < len(clients); i++ {
		clients[i] = redistest.DialRaw(t, addrA)
		if v, err := clients[i].Do("PING"); err != nil || v != "PONG" {
			t.Fatalf("idle client %d of a: %q, %v", i, v, err)
		}
	}
	last := clients[len(clients)-1] // stays idle: reads a's INFO
	backendA := redistest.DialRaw(t, servers[0].Addr)
	blocked := func() string { return infoField(backendA, "clients", "blocked_clients") }

	// The room goes to 5 BLPOPs (each a dedicated connection) and 5 SUBSCRIBEs (each a
	// connection to the node).
	for i := 0; i < room/2; i++ {
		clients[i].Send("BLPOP", "fd:q", "0")
	}
	eventually("5 BLPOPs blocked on a's node", func() bool { return blocked() == "5" })
	for i := room / 2; i < room; i++ {
		clients[i].Send("SUBSCRIBE", "fd:ch")
		if r, err := clients[i].Receive(5 * time.Second); err != nil || fmt.Sprint(r) != "[subscribe fd:ch 1]" {
			t.Fatalf("SUBSCRIBE %d on a: %v, %v", i, r, err)
		}
	}
	if got := infoField(last, "clients", "dedicated_connections"); got != strconv.Itoa(room) {
		t.Fatalf("a's INFO: dedicated_connections:%s, want %d", got, room)
	}

	// The share is used up: a's next BLPOPs and SUBSCRIBEs are refused, and the refused
	// subscriber is not in subscribed mode; a new client is refused at accept.
	const noFDs = "ERR max number of clients reached: cluster a has no file descriptors left"
	for i := room; i < room+room/2; i++ {
		clients[i].Send("BLPOP", "fd:q", "0")
		if r, err := clients[i].Receive(5 * time.Second); err != nil || !strings.HasPrefix(fmt.Sprint(r), noFDs) {
			t.Fatalf("BLPOP %d on a past its share: %v, %v; want %q...", i, r, err, noFDs)
		}
	}
	for i := room + room/2; i < 2*room; i++ {
		clients[i].Send("SUBSCRIBE", "fd:ch2", "fd:ch3")
		if r, err := clients[i].Receive(5 * time.Second); err != nil || !strings.HasPrefix(fmt.Sprint(r), noFDs) {
			t.Fatalf("SUBSCRIBE %d on a past its share: %v, %v; want %q...", i, r, err, noFDs)
		}
		if v, err := clients[i].Do("GET", "fd:k"); err != nil || v != "(nil)" {
			t.Fatalf("GET after a refused SUBSCRIBE: %q, %v; want a nil reply in normal mode", v, err)
		}
	}
	extra, err := net.DialTimeout("tcp", addrA, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(extra).ReadString('\n'); line != "-ERR max number of clients reached\r\n" {
		t.Fatalf("a new client of a with its share used up: %q, %v", line, err)
	}
	extra.Close()
	if got := blocked(); got != "5" {
		t.Fatalf("a's node has %s blocked clients, want the 5 that had room", got)
	}

	// Cluster b is untouched: it answers, and its own BLPOP gets a connection.
	b := redis.NewClient(&redis.Options{Addr: addrB, MaxRetries: -1, ReadTimeout: 5 * time.Second, PoolSize: 2})
	t.Cleanup(func() { b.Close() })
	if err := b.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on cluster b: %v", err)
	}
	if err := b.Set(ctx, "fd:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on cluster b: %v", err)
	}
	if v, err := b.Get(ctx, "fd:k").Result(); err != nil || v != "v" {
		t.Fatalf("GET on cluster b: %q, %v", v, err)
	}
	if err := b.BLPop(ctx, 100*time.Millisecond, "fd:empty").Err(); err != redis.Nil {
		t.Fatalf("BLPOP on cluster b: %v, want a nil reply", err)
	}

	// Served BLPOPs leave their connections idle in a's pool, still counted: a is full. A new
	// client closes one of them to make room rather than being refused, and a new BLPOP takes
	// one of the others.
	if _, err := backendA.Do("RPUSH", "fd:q", "1", "2", "3", "4", "5"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < room/2; i++ {
		if r, err := clients[i].Receive(5 * time.Second); err != nil || len(fmt.Sprint(r)) == 0 {
			t.Fatalf("BLPOP %d on a: %v, %v", i, r, err)
		}
	}
	eventually("no BLPOP blocked on a's node", func() bool { return blocked() == "0" })
	if got := infoField(last, "clients", "dedicated_connections"); got != strconv.Itoa(room) {
		t.Fatalf("a's INFO with 5 idle pooled: dedicated_connections:%s, want %d", got, room)
	}
	late := redistest.DialRaw(t, addrA)
	if v, err := late.Do("PING"); err != nil || v != "PONG" {
		t.Fatalf("a new client of a with idle pooled connections: %q, %v", v, err)
	}
	if got := infoField(last, "clients", "dedicated_connections"); got != strconv.Itoa(room-1) {
		t.Fatalf("a's INFO after a new client: dedicated_connections:%s, want %d", got, room-1)
	}
	clients[room].Send("BLPOP", "fd:q", "0")
	eventually("a BLPOP blocked on a pooled connection", func() bool { return blocked() == "1" })
	if got := infoField(last, "clients", "dedicated_connections"); got != strconv.Itoa(room-1) {
		t.Fatalf("a's INFO: dedicated_connections:%s, want %d", got, room-1)
	}

	// a's clients leave (a blocked one's connection is closed with it, a subscriber's too):
	// nothing stays held but the 3 idle pooled connections, until they expire.
	for _, c := range clients[:len(clients)-1] {
		c.Close()
	}
	late.Close()
	eventually("a's clients gone", func() bool { return infoField(last, "clients", "connected_clients") == "1" })
	eventually("a's subscription connections closed", func() bool { return blocked() == "0" && countSubscribers(t, backendA) == 0 })
	eventually("a holds only its 3 idle pooled connections", func() bool { return infoField(last, "clients", "dedicated_connections") == "3" })
	if containsLog(a, "accept failing") {
		t.Errorf("asterd ran out of descriptors: its log has accept failures")
	}
}

// countSubscribers is how many connections of the server behind c are subscribed.
func countSubscribers(t *testing.T, c *redistest.Raw) int {
	t.Helper()
	v, err := c.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(` sub=[1-9]`).FindAllString(v, -1))
}
