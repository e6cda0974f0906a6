package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// One tenant's trouble stays its own (issue #15): a client that sends slowly is not idle, a
// slow command does not fail other clients' requests, and an endless script can be killed
// through the proxy.

// dialAsterd opens a raw connection to asterd, closed at the end of the test.
func dialAsterd(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// readLine reads one reply line within d.
func readLine(t *testing.T, br *bufio.Reader, nc net.Conn, d time.Duration) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v (read %q)", err, line)
	}
	return line
}

// closedByPeer reports whether the peer closes nc within d (EOF or reset), as opposed to nc
// staying open, which ends the wait with a timeout.
func closedByPeer(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	return err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestIdleTimeoutCountsFromLastByte: client_idle_timeout closes a client that has sent nothing
// for that long, counted from its last byte, not from the start of the command it is sending.
func TestIdleTimeoutCountsFromLastByte(t *testing.T) {
	// Not parallel: it times a client's idle period against client_idle_timeout.
	servers := startServers(t, 1)
	a := startAsterd(t, `
[[clusters]]
name = "idle"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
client_idle_timeout = 1
`)
	if err := a.client(t).Set(ctx, "tk", "trickled", 0).Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("trickle", func(t *testing.T) {
		// One byte every 300 ms: 2.4 s for the command, far past the 1 s timeout, yet never
		// a second without input.
		nc := dialAsterd(t, a.Addr)
		for _, b := range []byte("GET tk\r\n") {
			if _, err := nc.Write([]byte{b}); err != nil {
				t.Fatalf("write: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		br := bufio.NewReader(nc)
		if got := readLine(t, br, nc, 5*time.Second); got != "$8\r\n" {
			t.Fatalf("reply header %q, want $8", got)
		}
		if got := readLine(t, br, nc, 5*time.Second); got != "trickled\r\n" {
			t.Fatalf("reply %q", got)
		}
	})

	t.Run("slow upload", func(t *testing.T) {
		// An 8 MiB SET sent at about 4 MiB/s: 2 s for one command, a write every 125 ms.
		const size, chunk = 8 << 20, 512 << 10
		nc := dialAsterd(t, a.Addr)
		hdr := "*3\r\n$3\r\nSET\r\n$2\r\nbk\r\n$8388608\r\n"
		if _, err := nc.Write([]byte(hdr)); err != nil {
			t.Fatal(err)
		}
		part := bytes.Repeat([]byte("u"), chunk)
		for sent := 0; sent < size; sent += chunk {
			time.Sleep(125 * time.Millisecond)
			_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(part); err != nil {
				t.Fatalf("write after %d bytes: %v", sent, err)
			}
		}
		if _, err := nc.Write([]byte("\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		if got := readLine(t, br, nc, 10*time.Second); got != "+OK\r\n" {
			t.Fatalf("SET reply %q", got)
		}
		if n, err := servers[0].Do("STRLEN", "bk"); err != nil || n != int64(size) {
			t.Fatalf("STRLEN bk = %v, %v; want %d", n, err, size)
		}
	})

	t.Run("idle is closed", func(t *testing.T) {
		// Between commands, and in the middle of one: a second without a byte closes it.
		nc := dialAsterd(t, a.Addr)
		br := bufio.NewReader(nc)
		if _, err := nc.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := readLine(t, br, nc, 5*time.Second); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		if !closedByPeer(nc, 10*time.Second) {
			t.Fatal("an idle client was not closed after client_idle_timeout")
		}
		half := dialAsterd(t, a.Addr)
		if _, err := half.Write([]byte("*2\r\n$3\r\nGET\r\n$2\r\ntk")); err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(half, 10*time.Second) {
			t.Fatal("a client that stopped in the middle of a command was not closed")
		}
	})
}

// busyScript keeps the node busy for ARGV[1] ms (it blocks every client of the server, as a
// slow KEYS would) and returns 1.
const busyScript = `local function ms() local t = redis.call('TIME') return t[1]*1000 + math.floor(t[2]/1000) end
local s = ms()
while ms() - s < tonumber(ARGV[1]) do end
return 1`

// otherClientIDs lists the ids of the server's connections other than direct's own and
// asterd's health pings (cmd=ping), which run on connections of their own and redial by
// design when a busy node lets a ping time out.
func otherClientIDs(t *testing.T, direct *redis.Client) []string {
	t.Helper()
	list, err := direct.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	self, err := direct.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] != "id="+strconv.FormatInt(self, 10) && !slices.Contains(f, "cmd=ping") {
			ids = append(ids, f[0])
		}
	}
	sort.Strings(ids)
	return ids
}

// TestSlowCommandFailsOnlyItself: one client's command that keeps a node busy past
// read_timeout fails alone with a read timeout. Requests of other clients — of the same
// cluster on the same shared connection, and of another cluster on the same server — that the
// node answers within their own deadline get their values, and asterd's node connections are
// the same ones afterwards (no reset, no redial).
func TestSlowCommandFailsOnlyItself(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	list := serverList(servers, []int{1}, true)
	addrTwo := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	a := startAsterd(t, `
[[clusters]]
name = "one"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+list+`
read_timeout = 2000

[[clusters]]
name = "two"
listen_addr = "`+addrTwo+`"
cache_type = "redis"
servers = `+list+`
read_timeout = 2000
`)
	redistest.WaitListening(t, addrTwo, 10*time.Second)
	two := &asterd{Addr: addrTwo}
	direct := servers[0].Client()
	if err := direct.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	slowClient, oneClient, twoClient := a.client(t), a.client(t), two.client(t)
	for _, c := range []*redis.Client{slowClient, oneClient, twoClient} {
		if err := c.Get(ctx, "k").Err(); err != nil { // the node connections are open
			t.Fatal(err)
		}
	}
	before := otherClientIDs(t, direct)

	// The node is busy for 3 s; read_timeout is 2 s. A request sent 1.5 s in is answered
	// at 3 s, within its deadline (3.5 s); one sent at once is not (2.1 s).
	type result struct {
		val string
		err error
	}
	get := func(c *redis.Client, after time.Duration) <-chan result {
		ch := make(chan result, 1)
		go func() {
			time.Sleep(after)
			v, err := c.Get(ctx, "k").Result()
			ch <- result{v, err}
		}()
		return ch
	}
	slow := make(chan error, 1)
	go func() { slow <- slowClient.Eval(ctx, busyScript, []string{"busy"}, 3000).Err() }()
	earlyTwo := get(twoClient, 100*time.Millisecond)
	lateOne, lateTwo := get(oneClient, 1500*time.Millisecond), get(twoClient, 1500*time.Millisecond)

	if err := <-slow; err == nil || !strings.Contains(err.Error(), "read timeout") {
		t.Errorf("the slow command: %v, want its read timeout", err)
	}
	if r := <-earlyTwo; r.err == nil || !strings.Contains(r.err.Error(), "read timeout") {
		t.Errorf("other cluster's GET that waited past its deadline: %q, %v; want a read timeout", r.val, r.err)
	}
	for name, ch := range map[string]<-chan result{"same cluster": lateOne, "other cluster": lateTwo} {
		if r := <-ch; r.err != nil || r.val != "v" {
			t.Errorf("%s: GET within its deadline: %q, %v; want v", name, r.val, r.err)
		}
	}
	for _, c := range []*redis.Client{slowClient, oneClient, twoClient} {
		if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("GET after the slow command: %q, %v", v, err)
		}
	}
	if after := otherClientIDs(t, direct); !slices.Equal(before, after) {
		t.Errorf("the server's connections were %v before the slow command and %v after: asterd redialled", before, after)
	}
}

// waitBusy waits until one of nodes runs a script past its busy-reply-threshold (PING answers
// -BUSY) and returns it.
func waitBusy(t *testing.T, nodes []*redis.Client) *redis.Client {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		for _, n := range nodes {
			if err := n.Ping(ctx).Err(); err != nil && strings.HasPrefix(err.Error(), "BUSY") {
				return n
			}
		}
	}
	t.Fatal("no node got busy with the script")
	return nil
}

// killRunning runs script (a command that never ends by itself) from one client and kills it
// with kill from another, through asterd: +OK, the script's client gets Redis's error, and the
// node that ran it serves again. It returns that node.
func killRunning(t *testing.T, c *redis.Client, nodes []*redis.Client, script []any, kill ...any) *redis.Client {
	t.Helper()
	runner := make(chan error, 1)
	go func() { runner <- c.Do(ctx, script...).Err() }()
	busy := waitBusy(t, nodes)
	if got, err := c.Do(ctx, kill...).Result(); err != nil || got != "OK" {
		t.Fatalf("%v while %v runs: %v, %v; want OK", kill, script[0], got, err)
	}
	select {
	case err := <-runner:
		if err == nil || !strings.Contains(err.Error(), "Script killed by user") {
			t.Errorf("the script's client got %v, want Redis's error for a killed script", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the script's client got no reply after the kill")
	}
	if err := busy.Ping(ctx).Err(); err != nil {
		t.Errorf("node after the kill: %v", err)
	}
	return busy
}

// TestScriptKillThroughAsterd: an endless script run through asterd is killed by SCRIPT KILL
// (FUNCTION KILL for a function) from another client, on nodes that need AUTH (the KILL's own
// connection is dialled while the node is busy); with nothing running the reply is Redis's
// NOTBUSY. In cluster mode with read_from_slave the replicas are reached too (EVAL_RO may run
// there), although READONLY, which a replica connection sends first, is refused while busy.
func TestScriptKillThroughAsterd(t *testing.T) {
	t.Parallel()
	const lib = "#!lua name=spinlib\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}"
	t.Run("standalone", func(t *testing.T) {
		var servers []*redistest.Server
		var direct []*redis.Client
		for range 2 {
			s := redistest.Start(t, "--requirepass", "s3cret", "--lua-time-limit", "100")
			servers = append(servers, s)
			d := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "s3cret", MaxRetries: -1})
			t.Cleanup(func() { d.Close() })
			direct = append(direct, d)
		}
		a := startAsterd(t, `
[[clusters]]
name = "kill"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
backend_password = "s3cret"
`)
		c := a.client(t)
		killRunning(t, c, direct, []any{"EVAL", "while true do end", 1, "k"}, "SCRIPT", "KILL")
		if err := c.Do(ctx, "FUNCTION", "LOAD", lib).Err(); err != nil {
			t.Fatal(err)
		}
		killRunning(t, c, direct, []any{"FCALL", "spin", 1, "k"}, "FUNCTION", "KILL")
		for _, kill := range [][]any{{"SCRIPT", "KILL"}, {"FUNCTION", "KILL"}} {
			if err := c.Do(ctx, kill...).Err(); err == nil || err.Error() != "NOTBUSY No scripts in execution right now." {
				t.Errorf("%v with nothing running: %v, want Redis's NOTBUSY", kill, err)
			}
		}
		// A script that wrote cannot be killed: the node's UNKILLABLE is passed on, and only
		// SHUTDOWN NOSAVE (allowed while busy) ends it.
		go func() { _ = c.Do(ctx, "EVAL", "redis.call('SET', KEYS[1], 'w') while true do end", 1, "k").Err() }()
		busy := waitBusy(t, direct)
		if err := c.Do(ctx, "SCRIPT", "KILL").Err(); err == nil || !strings.HasPrefix(err.Error(), "UNKILLABLE ") {
			t.Errorf("SCRIPT KILL of a script that wrote: %v, want the node's UNKILLABLE", err)
		}
		_ = busy.Do(ctx, "SHUTDOWN", "NOSAVE").Err()
	})

	t.Run("cluster", func(t *testing.T) {
		rc := redistest.StartCluster(t, 3, 1)
		var direct []*redis.Client
		for _, n := range rc.Nodes {
			if _, err := n.Do("CONFIG", "SET", "lua-time-limit", "100"); err != nil {
				t.Fatal(err)
			}
			direct = append(direct, n.Client())
		}
		a := startAsterd(t, clusterConfig(rc.Seeds(), "read_from_slave = true\n"))
		c := a.client(t)
		waitServing(t, c, 10*time.Second)
		killRunning(t, c, direct, []any{"EVAL", "while true do end", 1, "k"}, "SCRIPT", "KILL")
		if err := c.Do(ctx, "FUNCTION", "LOAD", lib).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // let the function reach the replicas
		// Read-only scripts alternate between the slot's master and its replica.
		onReplica := 0
		for i := range 4 {
			for _, busy := range []*redis.Client{
				killRunning(t, c, direct, []any{"EVAL_RO", "while true do end", 1, "k"}, "SCRIPT", "KILL"),
				killRunning(t, c, direct, []any{"FCALL_RO", "spin", 1, "k" + strconv.Itoa(i)}, "FUNCTION", "KILL"),
			} {
				if role, err := busy.Do(ctx, "ROLE").Slice(); err == nil && role[0] == "slave" {
					onReplica++
				}
			}
		}
		if onReplica == 0 {
			t.Error("no read-only script ran on a replica: the test shows nothing about them")
		}
	})
}
