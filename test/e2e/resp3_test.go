package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

const resp3Auth = `auth = { password = "s3cret", users = [ { username = "ops", password = "opspw" } ] }`

// TestRESP3 runs a RESP3 client (go-redis, Protocol 3, HELLO 3 AUTH) and raw RESP3/RESP2
// connections through asterd over plain servers and over a real Redis Cluster, with the
// backends spoken to in RESP2 and in RESP3.
func TestRESP3(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	rc := redistest.StartCluster(t, 3, 0)
	for _, version := range []string{"resp2", "resp3"} {
		t.Run("standalone/"+version, func(t *testing.T) {
			a := startAsterd(t, `
[[clusters]]
name = "r3"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
backend_resp_version = "`+version+`"
`+resp3Auth+"\n")
			checkRESP3(t, a, "sa-"+version+":")
			checkBackendProtocol(t, servers[0].Addr, version)
		})
		t.Run("cluster/"+version, func(t *testing.T) {
			a := startAsterd(t, clusterConfig(rc.Seeds(), `backend_resp_version = "`+version+`"
`+resp3Auth+"\n"))
			checkRESP3(t, a, "rc-"+version+":")
			checkBackendProtocol(t, rc.Seeds()[0], version)
		})
	}
}

func checkRESP3(t *testing.T, a *asterd, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: a.Addr, Protocol: 3, Username: "ops", Password: "opspw",
		MaxRetries: -1, ReadTimeout: 5 * time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Set(ctx, prefix+"probe", "1", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RESP3 client not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h, s, z := prefix+"h", prefix+"s", prefix+"z"
	c.Del(ctx, h, s, z)
	c.HSet(ctx, h, "a", "1", "b", "2")
	c.SAdd(ctx, s, "3", "1", "2")
	c.ZAdd(ctx, z, redis.Z{Score: 1.5, Member: "m"})
	if v, err := c.Do(ctx, "HGETALL", h).Result(); err != nil || fmt.Sprint(v) != "map[a:1 b:2]" {
		t.Errorf("HGETALL: %#v %v (want a RESP3 map)", v, err)
	}
	if v, err := c.Do(ctx, "ZSCORE", z, "m").Result(); err != nil || v != 1.5 {
		t.Errorf("ZSCORE: %#v %v (want the RESP3 double 1.5)", v, err)
	}
	if v, err := c.ZScore(ctx, z, "m").Result(); err != nil || v != 1.5 {
		t.Errorf("ZScore: %v %v", v, err)
	}
	if v, err := c.HGetAll(ctx, h).Result(); err != nil || fmt.Sprint(v) != "map[a:1 b:2]" {
		t.Errorf("HGetAll: %v %v", v, err)
	}
	if v, err := c.SMembers(ctx, s).Result(); err != nil || fmt.Sprint(v) != "[1 2 3]" {
		t.Errorf("SMembers: %v %v", v, err)
	}
	if err := c.Get(ctx, prefix+"nokey").Err(); err != redis.Nil {
		t.Errorf("GET of a missing key: %v (want redis.Nil)", err)
	}
	// MGET over several nodes (or slots), with missing keys, merged in order.
	var keys []string
	var want []any
	for i := 0; i < 12; i++ {
		k := spreadKey(prefix+"m:", i)
		keys = append(keys, k)
		if i%3 == 0 {
			want = append(want, nil)
			continue
		}
		c.Set(ctx, k, i, 0)
		want = append(want, fmt.Sprint(i))
	}
	if v, err := c.MGet(ctx, keys...).Result(); err != nil || fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("MGET: %v %v, want %v", v, err, want)
	}

	// Byte level: the set and the null as Redis writes them, HELLO 3 AUTH, and HELLO 2 back.
	raw := redistest.DialFrames(t, a.Addr)
	if got := string(raw.Do("HELLO", "3", "AUTH", "ops", "wrong")); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("HELLO 3 AUTH with a wrong password: %q", got)
	}
	if got := string(raw.Do("GET", h)); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("GET before authenticating: %q", got)
	}
	if got := string(raw.Do("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "e2e")); !strings.HasPrefix(got, "%7\r\n") ||
		!strings.Contains(got, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3 AUTH: %q", got)
	}
	for _, ch := range [][2]string{
		{"SMEMBERS " + s, "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"},
		{"HGETALL " + h, "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"ZSCORE " + z + " m", ",1.5\r\n"},
		{"GET " + prefix + "nokey", "_\r\n"},
		{"MGET " + keys[0] + " " + keys[1], "*2\r\n_\r\n$1\r\n1\r\n"},
		{"HELLO 2", "*14\r\n"},
		{"HGETALL " + h, "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"ZSCORE " + z + " m", "$3\r\n1.5\r\n"},
		{"MGET " + keys[0] + " " + keys[1], "*2\r\n$-1\r\n$1\r\n1\r\n"},
	} {
		got := string(raw.Do(strings.Fields(ch[0])...))
		if ch[0] == "HELLO 2" {
			got = got[:min(len(got), len(ch[1]))]
		}
		if got != ch[1] {
			t.Errorf("%s: got %q, want %q", ch[0], got, ch[1])
		}
	}
}

// checkBackendProtocol: asterd's data connections to the server at addr speak the configured
// protocol (CLIENT LIST shows resp=2 or resp=3 per connection; health pings and slot map
// fetches, on connections of their own, are left out).
func checkBackendProtocol(t *testing.T, addr, version string) {
	t.Helper()
	list := string(redistest.DialFrames(t, addr).Do("CLIENT", "LIST"))
	want := strings.TrimPrefix(version, "resp")
	n := 0
	for _, l := range strings.Split(list, "\n") {
		m := clientLine.FindStringSubmatch(l)
		if m == nil || !dataCmds[m[1]] {
			continue
		}
		n++
		if m[2] != want {
			t.Errorf("backend data connection speaks resp=%s, want %s: %s", m[2], want, l)
		}
	}
	if n == 0 {
		t.Errorf("no asterd data connection on %s:\n%s", addr, list)
	}
}

var (
	clientLine = regexp.MustCompile(` cmd=(\S+) .* resp=(\d)`)
	dataCmds   = map[string]bool{"set": true, "get": true, "del": true, "hset": true, "hgetall": true,
		"sadd": true, "smembers": true, "zadd": true, "zscore": true, "mget": true}
)

// TestRESP3BackendVersionReload: changing backend_resp_version by SIGHUP swaps the backend
// connections live; connected RESP3 and RESP2 clients keep their connections and their
// protocols.
func TestRESP3BackendVersionReload(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	conf := `
[[clusters]]
name = "r3"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + `
backend_resp_version = "%V%"
`
	a := startAsterd(t, strings.ReplaceAll(conf, "%V%", "resp2"))
	c3, c2 := redistest.DialFrames(t, a.Addr), redistest.DialFrames(t, a.Addr)
	c3.Do("HELLO", "3")
	c2.Do("HSET", "h", "a", "1")
	check := func(when string) {
		t.Helper()
		if got := string(c3.Do("HGETALL", "h")); got != "%1\r\n$1\r\na\r\n$1\r\n1\r\n" {
			t.Errorf("%s: RESP3 client HGETALL: %q", when, got)
		}
		if got := string(c2.Do("HGETALL", "h")); got != "*2\r\n$1\r\na\r\n$1\r\n1\r\n" {
			t.Errorf("%s: RESP2 client HGETALL: %q", when, got)
		}
		if got := string(c3.Do("GET", "nokey")); got != "_\r\n" {
			t.Errorf("%s: RESP3 client GET: %q", when, got)
		}
		if got := string(c2.Do("GET", "nokey")); got != "$-1\r\n" {
			t.Errorf("%s: RESP2 client GET: %q", when, got)
		}
	}
	check("backends in RESP2")
	path := a.cmd.Args[2]
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(strings.ReplaceAll(conf, "%V%", "resp3"), "%LISTEN%", a.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "backend settings changed")
	check("backends in RESP3")
	resp3 := 0
	for _, s := range servers {
		for _, l := range strings.Split(string(redistest.DialFrames(t, s.Addr).Do("CLIENT", "LIST")), "\n") {
			if m := clientLine.FindStringSubmatch(l); m != nil && dataCmds[m[1]] && m[2] == "3" {
				resp3++
			}
		}
	}
	if resp3 == 0 {
		t.Fatal("no RESP3 backend connection after the reload")
	}
}

// TestRESP3Redirects: over RESP3 backends, replies that come after ASK (mid-migration) and
// MOVED (after it) are converted for RESP2 clients and passed to RESP3 clients like any other.
func TestRESP3Redirects(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), `backend_resp_version = "resp3"`+"\n"))
	c3, c2 := redistest.DialFrames(t, a.Addr), redistest.DialFrames(t, a.Addr)
	c3.Do("HELLO", "3")
	deadline := time.Now().Add(10 * time.Second)
	for string(c2.Do("HSET", "{r3}h", "a", "1")) != ":1\r\n" {
		if time.Now().After(deadline) {
			t.Fatal("asterd not serving the cluster")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c2.Do("SET", "{r3}s", "x")
	// A multi-key command with a missing key is not checked mid-migration: Redis answers it
	// TRYAGAIN there.
	check := func(when string, multi bool) {
		t.Helper()
		for _, ch := range []struct {
			c    *redistest.FrameConn
			cmd  []string
			want string
		}{
			{c3, []string{"HGETALL", "{r3}h"}, "%1\r\n$1\r\na\r\n$1\r\n1\r\n"},
			{c2, []string{"HGETALL", "{r3}h"}, "*2\r\n$1\r\na\r\n$1\r\n1\r\n"},
			{c3, []string{"MGET", "{r3}s", "{r3}none"}, "*2\r\n$1\r\nx\r\n_\r\n"},
			{c2, []string{"MGET", "{r3}s", "{r3}none"}, "*2\r\n$1\r\nx\r\n$-1\r\n"},
		} {
			if ch.cmd[0] == "MGET" && !multi {
				continue
			}
			if got := string(ch.c.Do(ch.cmd...)); got != ch.want {
				t.Errorf("%s: %q: got %q, want %q", when, ch.cmd, got, ch.want)
			}
		}
	}
	check("before the move", true)

	m := startMigration(t, rc, "{r3}")
	m.move("{r3}h", "{r3}s")
	askBefore := askingCalls(t, m.dst)
	check("mid-migration (ASK)", false)
	if askingCalls(t, m.dst) <= askBefore {
		t.Fatal("no ASKING seen by the importing node: ASK was not followed")
	}
	m.finish(rc)
	check("after the move (MOVED)", true)
}
