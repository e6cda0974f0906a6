// Package redistest starts real redis-server (and nutcracker) processes on free loopback ports
// for tests, and stops them when the test ends. Nothing here imitates Redis: tests talk to the
// real server.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Need skips the test when a binary is missing, except under CI (CI=true), where .ci/run
// installs everything and a missing binary is a failure.
func Need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (CI must install it): %v", b, err)
			}
			t.Skipf("%s not installed: %v", b, err)
		}
	}
}

// Server is one redis-server process owned by a test.
type Server struct {
	Addr string
	Port int
	Dir  string

	t    testing.TB
	args []string
	tls  *Certs // set for StartTLS: the only port is a TLS one
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on a free loopback port with persistence off; extra arguments are
// appended to the command line (e.g. "--cluster-enabled", "yes"). The server is killed at the
// end of the test.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	Need(t, "redis-server")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{t: t, Port: FreePort(t), Dir: t.TempDir(), args: extra}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func (s *Server) start() error {
	port := strconv.Itoa(s.Port)
	if s.tls != nil {
		port = "0" // the TLS port comes in s.args
	}
	args := append([]string{
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--logfile", filepath.Join(s.Dir, "redis.log"), "--daemonize", "no",
	}, s.args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run redis-server on port %d: %w", s.Port, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %s", s.Port, log)
		default:
		}
		if c, err := s.dialCheck(); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			// A server with requirepass answers NOAUTH: up all the same.
			if r := string(buf[:n]); r == "+PONG\r\n" || strings.HasPrefix(r, "-NOAUTH") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on port %d did not answer PING within 5s", s.Port)
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must be able to die
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() { s.kill() }

// Restart starts the server again on the same port (after Kill).
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server: %v", err)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is answered.
func (s *Server) Pause() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// Client returns a go-redis client talking to this server directly, closed at test end.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Do sends one command to the server directly and returns its reply.
func (s *Server) Do(args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// CommandStats returns the server's counters of one command (lower case) from INFO
// commandstats: the calls it ran and the calls it rejected (e.g. NOPERM); zeros before the
// first call.
func (s *Server) CommandStats(t testing.TB, cmd string) (calls, rejected int) {
	t.Helper()
	v, err := s.Do("INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats on %s: %v", s.Addr, err)
	}
	for _, line := range strings.Split(v.(string), "\r\n") {
		fields, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		for _, f := range strings.Split(fields, ",") {
			k, val, _ := strings.Cut(f, "=")
			if k != "calls" && k != "rejected_calls" {
				continue
			}
			n, err := strconv.Atoi(val)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			if k == "calls" {
				calls = n
			} else {
				rejected = n
			}
		}
	}
	return calls, rejected
}

// Nutcracker is a twemproxy process owned by a test.
type Nutcracker struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNutcracker runs twemproxy with one redis pool named "p" on a free port over servers
// given as "host:port:weight name" lines, with the given hash and ketama distribution.
func StartNutcracker(t testing.TB, hash string, servers []string) *Nutcracker {
	t.Helper()
	Need(t, "nutcracker")
	dir := t.TempDir()
	port := FreePort(t)
	n := &Nutcracker{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	conf := fmt.Sprintf("p:\n  listen: %s\n  hash: %s\n  distribution: ketama\n  redis: true\n  preconnect: true\n  server_connections: 1\n  servers:\n", n.Addr, hash)
	for _, s := range servers {
		conf += "   - " + s + "\n"
	}
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("write nutcracker config: %v", err)
	}
	n.cmd = exec.Command("nutcracker", "-c", path, "-s", strconv.Itoa(FreePort(t)), "-a", "127.0.0.1",
		"-o", filepath.Join(dir, "nutcracker.log"))
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("run nutcracker: %v", err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { _ = n.cmd.Process.Kill(); <-n.done })
	WaitListening(t, n.Addr, 5*time.Second)
	return n
}

// Listening reports whether addr accepts TCP connections now.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// WaitListening waits until addr accepts TCP connections, or fails the test.
func WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
