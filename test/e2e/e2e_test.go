// Package e2e runs the asterd binary against real redis-server (and twemproxy) processes, as a
// user would: a config file, a listener, real clients.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

var asterdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aster-e2e")
	if err != nil {
		panic(err)
	}
	asterdBin = filepath.Join(dir, "asterd")
	build := exec.Command("go", "build", "-race", "-o", asterdBin, "../../cmd/asterd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build asterd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var ctx = context.Background()

// asterd is a running asterd process owned by a test.
type asterd struct {
	Addr string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// syncBuffer collects asterd's log while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startAsterd writes config (with %LISTEN% replaced by a free address) and runs asterd on it.
func startAsterd(t *testing.T, config string) *asterd {
	t.Helper()
	// Tests run asterds side by side (and CI may run beside other work): none takes the
	// default admin or metrics port unless the test's config names one.
	if !strings.Contains(config, "[admin]") {
		config += "\n[admin]\nlisten_addr = \"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "\"\n"
	}
	if !strings.Contains(config, "[metrics]") {
		config += "\n[metrics]\nlisten_addr = \"\"\n"
	}
	return startAsterdArgs(t, config)
}

// startAsterdArgs writes config as it is (%LISTEN% replaced by a free address) and runs
// asterd on it with extra command-line arguments, once it listens.
func startAsterdArgs(t *testing.T, config string, args ...string) *asterd {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	path := filepath.Join(t.TempDir(), "aster.toml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "%LISTEN%", addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	a := runAsterd(t, addr, append([]string{"--config", path}, args...)...)
	redistest.WaitListening(t, addr, 10*time.Second)
	return a
}

// runAsterd runs asterd with args (debug logging unless args set --log-level); a.Addr is set
// to listen, the address its clients are expected on. The process is stopped with SIGINT at
// cleanup unless the test killed it already; its log is shown when the test failed.
func runAsterd(t *testing.T, listen string, args ...string) *asterd {
	t.Helper()
	ownPorts(t, args)
	a := &asterd{Addr: listen, log: &syncBuffer{}, done: make(chan struct{})}
	if !slices.Contains(args, "--log-level") {
		args = append(args, "--log-level", "debug")
	}
	a.cmd = exec.Command(asterdBin, args...)
	a.cmd.Stderr = a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(os.Interrupt)
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
			t.Errorf("asterd %v did not stop on SIGINT within 10s", args)
		}
		if t.Failed() {
			t.Logf("asterd %v log:\n%s", args, a.log.String())
		}
	})
	return a
}

// ownPorts fails a test whose asterd would take the default admin (7790) or metrics (7791)
// port: its config file (--config or -c) must name both sections (an empty listen_addr turns
// one off), or the command line the metrics address. asterds run side by side, and beside
// other work in CI.
func ownPorts(t *testing.T, args []string) {
	t.Helper()
	i := slices.IndexFunc(args, func(a string) bool { return a == "--config" || a == "-c" })
	if i < 0 || i+1 >= len(args) || slices.Contains(args, "--control-plane") {
		return // a data plane has neither: its control plane's are named by its own config
	}
	b, err := os.ReadFile(args[i+1])
	if err != nil {
		return // asterd reports it
	}
	has := func(section string) bool {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == section {
				return true
			}
		}
		return false
	}
	if !has("[admin]") {
		t.Fatalf("test config %s has no [admin]: asterd would take the default admin port", args[i+1])
	}
	if !has("[metrics]") && !slices.Contains(args, "--metrics") && !slices.Contains(args, "--metrics-addr") {
		t.Fatalf("test config %s has no [metrics]: asterd would take the default metrics port", args[i+1])
	}
}

func (a *asterd) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func serverList(servers []*redistest.Server, weights []int, aliases bool) string {
	var items []string
	for i, s := range servers {
		item := fmt.Sprintf("%s:%d", s.Addr, weights[i])
		if aliases {
			item += fmt.Sprintf(" r%d", i+1)
		}
		items = append(items, strconv.Quote(item))
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// spreadKey makes key i of a series. twemproxy's fnv1a_64 (computed in 32 bits) spreads
// short keys that differ only in a trailing counter poorly — "k0".."k299" can miss a node of
// three entirely — so tests that need every node hit use keys with more varied bytes.
func spreadKey(prefix string, i int) string {
	sum := sha1.Sum([]byte(strconv.Itoa(i)))
	return prefix + hex.EncodeToString(sum[:6])
}

func startServers(t *testing.T, n int) []*redistest.Server {
	var s []*redistest.Server
	for i := 0; i < n; i++ {
		s = append(s, redistest.Start(t))
	}
	return s
}

func TestEjectionAndReturn(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a := startAsterd(t, `
[[clusters]]
name = "eject"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
read_timeout = 500
dial_timeout = 200
ping_fail_limit = 3
ping_interval = 100
`)
	c := a.client(t)
	writeAll := func(prefix string) error {
		for i := 0; i < 300; i++ {
			if err := c.Set(ctx, spreadKey(prefix, i), i, 0).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := writeAll("before:"); err != nil {
		t.Fatal(err)
	}
	servers[1].Kill()
	killed := time.Now()
	// ping_interval × ping_fail_limit = 300ms; allow generous slack on a busy machine.
	deadline := killed.Add(10 * time.Second)
	for {
		err := writeAll("during:")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still failing %v after a node died: %v", time.Since(killed), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all writes succeed %v after the kill", time.Since(killed))
	if !strings.Contains(a.log.String(), "ejected") {
		t.Errorf("no ejection logged")
	}

	servers[1].Restart()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if err := writeAll("after:"); err != nil {
			t.Fatal(err)
		}
		n, err := servers[1].Client().DBSize(ctx).Result()
		if err == nil && n > 0 {
			break
		}
		t.Logf("restarted node: dbsize %d, %v", n, err)

		if time.Now().After(deadline) {
			t.Fatalf("restarted node got no keys within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTwemproxyPlacementThroughAsterd(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "nutcracker")
	servers := startServers(t, 4)
	weights := []int{1, 2, 1, 3}
	for _, aliases := range []bool{true, false} {
		t.Run(fmt.Sprintf("aliases=%v", aliases), func(t *testing.T) {
			var items []string
			for i, s := range servers {
				item := fmt.Sprintf("%s:%d", s.Addr, weights[i])
				if aliases {
					item += fmt.Sprintf(" r%d", i+1)
				}
				items = append(items, item)
			}
			nut := redistest.StartNutcracker(t, "fnv1a_64", items)
			a := startAsterd(t, `
[[clusters]]
name = "compat"
listen_addr = "%LISTEN%"
cache_type = "redis"
hash_method = "fnv1a_64"
servers = `+serverList(servers, weights, aliases)+`
`)
			viaNut := redistest.DialRaw(t, nut.Addr)
			viaAster := redistest.DialRaw(t, a.Addr)
			prefix := fmt.Sprintf("compat-%v:", aliases)
			for i := 0; i < 1000; i++ {
				k := prefix + strconv.Itoa(i)
				w, r := viaNut, viaAster
				if i%2 == 1 {
					w, r = viaAster, viaNut
				}
				if _, err := w.Do("SET", k, strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
				v, err := r.Do("GET", k)
				if err != nil || v != strconv.Itoa(i) {
					t.Fatalf("key %s written through one proxy, read through the other: %q, %v", k, v, err)
				}
			}
		})
	}
}

func TestRealClientsTools(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "redis-cli", "redis-benchmark")
	servers := startServers(t, 2)
	a := startAsterd(t, `
[[clusters]]
name = "tools"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
`)
	_, port, _ := net.SplitHostPort(a.Addr)
	out, err := exec.Command("redis-cli", "-p", port, "set", "tool:a", "hello").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("redis-cli set: %q, %v", out, err)
	}
	out, err = exec.Command("redis-cli", "-p", port, "get", "tool:a").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("redis-cli get: %q, %v", out, err)
	}
	out, err = exec.Command("redis-benchmark", "-p", port, "-t", "set,get,mset", "-n", "3000", "-c", "20", "-P", "4", "-r", "1000", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	for _, w := range []string{"SET:", "GET:", "MSET (10 keys):"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("redis-benchmark output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(strings.ToLower(string(out)), "error") {
		t.Errorf("redis-benchmark reported errors:\n%s", out)
	}
}

func TestUnixSocketListener(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	sock := filepath.Join(t.TempDir(), "aster.sock")
	path := filepath.Join(t.TempDir(), "unix.toml")
	cfg := `
[[clusters]]
name = "unix"
listen_proto = "unix"
listen_addr = "` + sock + `"
cache_type = "redis"
servers = ` + serverList(servers, []int{1}, false) + `

[admin]
listen_addr = ""

[metrics]
listen_addr = ""
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(asterdBin, "-c", path)
	var log bytes.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %s\n%s", sock, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Set(ctx, "u", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := servers[0].Client().Get(ctx, "u").Result(); v != "1" {
		t.Fatalf("backend has %q", v)
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[clusters]]\nname = \"cache-a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001:1 a\", \"127.0.0.1:7002:x b\"]\nbogus = 1\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[[clusters]]\nname = \"cache-a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001:1 a\"]\n"), 0o644)
	cases := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"check bad", []string{"--check", "--config", bad}, 1, []string{`cluster "cache-a"`, `servers[1]`, `"x"`, "bogus", "bad.toml:5", "bad.toml:6"}},
		{"check good", []string{"--check", "-c", good}, 0, []string{"OK"}},
		{"version", []string{"--version"}, 0, []string{"asterd "}},
		{"no config", nil, 2, []string{"--config"}},
		{"bad log format", []string{"-c", good, "--log-format", "xml"}, 2, []string{"log-format"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(asterdBin, c.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("exit code %d, want %d\n%s", code, c.code, out)
			}
			for _, s := range c.contains {
				if !strings.Contains(string(out), s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}
