package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// remoteSetup is a control plane config on free ports: one standalone cluster over servers.
type remoteSetup struct {
	admin, listen, config string
}

func newRemoteSetup(t *testing.T, servers []*redistest.Server, token string) remoteSetup {
	t.Helper()
	s := remoteSetup{
		admin:  "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)),
		listen: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)),
		config: filepath.Join(t.TempDir(), "control.toml"),
	}
	cfg := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(s.admin) + "\n"
	if token != "" {
		cfg += "token = " + strconv.Quote(token) + "\n"
	}
	cfg += `
[[clusters]]
name = "remote"
listen_addr = "` + s.listen + `"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1, 1}, true) + `
read_timeout = 1000
dial_timeout = 200
ping_fail_limit = 3
ping_interval = 100
`
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s remoteSetup) startControl(t *testing.T) *asterd {
	t.Helper()
	a := runAsterd(t, s.admin, "--role", "control", "--config", s.config)
	redistest.WaitListening(t, s.admin, 10*time.Second)
	return a
}

func (s remoteSetup) startData(t *testing.T, extra ...string) *asterd {
	t.Helper()
	return runAsterd(t, s.listen, append([]string{"--role", "data", "--control-plane", s.admin}, extra...)...)
}

// keysOn writes n new keys named by prefix through c and returns how many of them landed on srv.
func keysOn(t *testing.T, c *redis.Client, srv *redistest.Server, prefix string, n int) int {
	t.Helper()
	var keys []string
	for i := 0; i < n; i++ {
		k := spreadKey(prefix, i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s through the data plane: %v", k, err)
		}
		keys = append(keys, k)
	}
	got, err := srv.Client().Exists(ctx, keys...).Result()
	if err != nil {
		t.Fatalf("EXISTS on %s: %v", srv.Addr, err)
	}
	return int(got)
}

// waitKeysOn writes batches of new keys until the number landing on srv satisfies ok, failing
// after 10s: a control-plane change reaches the data plane asynchronously.
func waitKeysOn(t *testing.T, c *redis.Client, srv *redistest.Server, what string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; ; round++ {
		n := keysOn(t, c, srv, what+":"+strconv.Itoa(round)+":", 100)
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of 100 new keys still on %s after 10s", what, n, srv.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func none(n int) bool { return n == 0 }
func some(n int) bool { return n > 0 }

func TestRemoteDataPlane(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	// A RouteService serves only with a token (TestRemoteNeedsToken).
	setup := newRemoteSetup(t, servers, "rt0k")
	control := setup.startControl(t)
	// The control role opens no client listener.
	time.Sleep(200 * time.Millisecond)
	if redistest.Listening(setup.listen) {
		t.Fatalf("--role control listens on the cluster's address %s", setup.listen)
	}

	data := setup.startData(t, "--token", "rt0k")
	redistest.WaitListening(t, setup.listen, 10*time.Second)
	c := data.client(t)
	if err := c.Set(ctx, "remote:hello", "world", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "remote:hello").Result(); err != nil || v != "world" {
		t.Fatalf("GET through the data plane: %q, %v", v, err)
	}
	// Every node takes keys to begin with, so "none" below is the eject's doing.
	for i, s := range servers {
		if n := keysOn(t, c, s, "pre"+strconv.Itoa(i)+":", 100); n == 0 {
			t.Fatalf("node %s got none of 100 keys before any eject", s.Addr)
		}
	}

	ctl := func(args ...string) {
		t.Helper()
		if r := asterctl(t, nil, append([]string{"--addr", setup.admin, "--token", "rt0k"}, args...)...); r.code != 0 {
			t.Fatalf("asterctl %v: %v", args, r)
		}
	}
	ctl("cluster", "eject", "remote", "r2")
	waitKeysOn(t, c, servers[1], "ejected-r2", none)
	ctl("cluster", "restore", "remote", "r2")
	waitKeysOn(t, c, servers[1], "restored-r2", some)

	// Kill the control plane outright: the data plane keeps serving its last tables, without
	// one failed request, and picks up the restarted control plane.
	load := startVerifiedLoad(c, "remote-load", 4, 400)
	load.waitOps(t, 50)
	if err := control.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-control.done
	// Served while the control plane is down: counted, not timed.
	load.waitOps(t, load.ops.Load()+50)
	if !containsLog(data, "route stream lost") {
		t.Errorf("data plane did not notice the control plane's death")
	}
	opened := strings.Count(data.log.String(), "route stream open")
	setup.startControl(t)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(data.log.String(), "route stream open") <= opened {
		if time.Now().After(deadline) {
			t.Fatalf("data plane did not reconnect to the restarted control plane within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.waitOps(t, load.ops.Load()+50) // and after it is back
	load.Stop()
	// The restarted control plane has the same ring, so not even a read misses.
	load.check(t, "while the control plane was killed and restarted", 0, 200)

	// An eject on the restarted control plane reaches the data plane, although that control
	// plane counts versions from the start again.
	ctl("cluster", "eject", "remote", "r3")
	waitKeysOn(t, c, servers[2], "ejected-r3", none)
	if n := keysOn(t, c, servers[0], "after-restart:", 100); n == 0 {
		t.Fatalf("node r1 got none of 100 keys after the restart")
	}
}

func TestRemoteDataPlaneToken(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	setup := newRemoteSetup(t, servers, "s3cret")
	setup.startControl(t)

	cases := []struct {
		name   string
		args   []string
		served bool
	}{
		{"no token", nil, false},
		{"wrong token", []string{"--token", "guess"}, false},
		{"right token", []string{"--token", "s3cret"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := setup.startData(t, tc.args...)
			if tc.served {
				redistest.WaitListening(t, setup.listen, 10*time.Second)
				if err := data.client(t).Set(ctx, "token:k", "v", 0).Err(); err != nil {
					t.Fatalf("SET through the data plane with the token: %v", err)
				}
				return
			}
			// It keeps retrying; its listener never opens.
			waitLog(t, data, "refused the token")
			time.Sleep(time.Second)
			if redistest.Listening(setup.listen) {
				t.Fatalf("data plane without the right token listens on %s", setup.listen)
			}
			if n := strings.Count(data.log.String(), "refused the token"); n < 2 {
				t.Errorf("data plane tried %d times in over a second, want it to keep retrying", n)
			}
			select {
			case <-data.done:
				t.Fatalf("data plane exited instead of retrying")
			default:
			}
		})
	}
}

func TestRoleFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001:1 a\"]\n"), 0o644)
	noAdmin := filepath.Join(dir, "noadmin.toml")
	os.WriteFile(noAdmin, []byte("[admin]\nlisten_addr = \"\"\n[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001:1 a\"]\n"), 0o644)
	cases := []struct {
		name     string
		args     []string
		contains string
	}{
		{"unknown role", []string{"--role", "both", "-c", good}, `unknown --role "both"`},
		{"data without control plane", []string{"--role", "data"}, "needs --control-plane"},
		{"data with config", []string{"--role", "data", "--control-plane", "127.0.0.1:1", "-c", good}, "no --config"},
		{"data with check", []string{"--role", "data", "--control-plane", "127.0.0.1:1", "--check"}, "no --config or --check"},
		{"control plane flag without data role", []string{"-c", good, "--control-plane", "127.0.0.1:1"}, "for --role data"},
		{"token without data role", []string{"--role", "control", "-c", good, "--token", "x"}, "for --role data"},
		{"control without config", []string{"--role", "control"}, "--config"},
		{"control with admin disabled", []string{"--role", "control", "-c", noAdmin}, "[admin] listen_addr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(asterdBin, c.args...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2\n%s", err, out)
			}
			if !strings.Contains(string(out), c.contains) {
				t.Errorf("output lacks %q:\n%s", c.contains, out)
			}
		})
	}
}
