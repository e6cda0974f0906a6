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

// Group is a master and its replicas (real redis-server processes with replicaof), to be
// watched by Sentinels under Name.
type Group struct {
	Name    string
	Servers []*Server // the master first, as started; Sentinel may promote another since
	t       testing.TB
}

// StartGroup runs a master and replicas replicas of it, and returns once every replica's
// link to the master is up.
func StartGroup(t testing.TB, name string, replicas int) *Group {
	t.Helper()
	g := &Group{Name: name, t: t}
	m := Start(t)
	g.Servers = append(g.Servers, m)
	for range replicas {
		g.Servers = append(g.Servers, Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(m.Port)))
	}
	for _, r := range g.Servers[1:] {
		waitFor(t, 10*time.Second, r.Addr+" replicating "+m.Addr, func() bool {
			return infoField(r, "replication", "master_link_status") == "up"
		})
	}
	return g
}

// Server returns the group's server at addr, nil when none.
func (g *Group) Server(addr string) *Server {
	for _, s := range g.Servers {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// WaitReplicated returns once every live replica of master (one of the group's servers) has
// the master's replication offset as it is now: every write the master acknowledged before
// the call is on them.
func (g *Group) WaitReplicated(t testing.TB, master *Server) {
	t.Helper()
	off, err := strconv.ParseInt(infoField(master, "replication", "master_repl_offset"), 10, 64)
	if err != nil {
		t.Fatalf("master_repl_offset of %s: %v", master.Addr, err)
	}
	for _, s := range g.Servers {
		if s == master || s.cmd == nil {
			continue
		}
		waitFor(t, 10*time.Second, s.Addr+" replicated to offset "+strconv.FormatInt(off, 10), func() bool {
			got, err := strconv.ParseInt(infoField(s, "replication", "slave_repl_offset"), 10, 64)
			return err == nil && got >= off
		})
	}
}

// Sentinel is one redis-server --sentinel process owned by a test.
type Sentinel struct {
	Addr string
	Port int
	Dir  string
	// Password is the sentinel's requirepass (and what it sends to the other sentinels); ""
	// for none.
	Password string
	conf     string
	t        testing.TB
	cmd      *exec.Cmd
	done     chan struct{}
}

// Sentinels are sentinels that watch the same groups, with a quorum of a majority of them.
type Sentinels struct {
	List   []*Sentinel
	Groups []*Group
	t      testing.TB
}

// Sentinel timings: a master is down after a second without answers, and a failover that
// stalls is retried soon, so that tests see a failover within a few seconds.
const (
	SentinelDownAfter       = 1000 * time.Millisecond
	SentinelFailoverTimeout = 3000 * time.Millisecond
)

// StartSentinels runs n sentinels watching groups (quorum n/2+1), and returns once every
// sentinel knows every group's replicas and the other sentinels: a failover can then happen.
func StartSentinels(t testing.TB, n int, groups ...*Group) *Sentinels {
	t.Helper()
	return StartSentinelsAuth(t, n, "", groups...)
}

// StartSentinelsAuth is StartSentinels with every sentinel requiring password (requirepass,
// and sentinel-pass for talking to each other); "" for none.
func StartSentinelsAuth(t testing.TB, n int, password string, groups ...*Group) *Sentinels {
	t.Helper()
	Need(t, "redis-server")
	ss := &Sentinels{Groups: groups, t: t}
	for range n {
		s := &Sentinel{t: t, Dir: t.TempDir(), Password: password}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			s.Port = FreePort(t)
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
			s.conf = filepath.Join(s.Dir, "sentinel.conf")
			conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile %s\n",
				s.Port, s.Dir, filepath.Join(s.Dir, "sentinel.log"))
			if password != "" {
				conf += fmt.Sprintf("requirepass %q\nsentinel sentinel-pass %q\n", password, password)
			}
			for _, g := range groups {
				conf += monitorLines(g, n)
			}
			if err = os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
				t.Fatalf("write sentinel config: %v", err)
			}
			if err = s.start(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("start sentinel: %v", err)
		}
		t.Cleanup(s.Kill)
		t.Cleanup(s.logIfFailed) // before the kill: registered later, run earlier
		ss.List = append(ss.List, s)
	}
	for _, g := range groups {
		ss.waitKnown(g)
	}
	return ss
}

func monitorLines(g *Group, n int) string {
	m := g.Servers[0]
	return fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\nsentinel down-after-milliseconds %s %d\n"+
		"sentinel failover-timeout %s %d\nsentinel parallel-syncs %s 1\n",
		g.Name, m.Port, n/2+1, g.Name, SentinelDownAfter.Milliseconds(), g.Name, SentinelFailoverTimeout.Milliseconds(), g.Name)
}

// Addrs are the sentinels' addresses.
func (ss *Sentinels) Addrs() []string {
	var out []string
	for _, s := range ss.List {
		out = append(out, s.Addr)
	}
	return out
}

// Monitor makes every running sentinel watch g too (SENTINEL MONITOR and SET at runtime), and
// returns once they know its replicas and each other.
func (ss *Sentinels) Monitor(g *Group) {
	ss.t.Helper()
	n := len(ss.List)
	for _, s := range ss.List {
		if s.cmd == nil {
			continue
		}
		for _, args := range [][]any{
			{"SENTINEL", "MONITOR", g.Name, "127.0.0.1", g.Servers[0].Port, n/2 + 1},
			{"SENTINEL", "SET", g.Name, "down-after-milliseconds", SentinelDownAfter.Milliseconds(),
				"failover-timeout", SentinelFailoverTimeout.Milliseconds(), "parallel-syncs", 1},
		} {
			if _, err := s.Do(args...); err != nil {
				ss.t.Fatalf("sentinel %s: %v: %v", s.Addr, args, err)
			}
		}
	}
	ss.Groups = append(ss.Groups, g)
	ss.waitKnown(g)
}

// waitKnown waits until every running sentinel knows g's replicas (up, their link to the
// master ok) and the other running sentinels.
func (ss *Sentinels) waitKnown(g *Group) {
	ss.t.Helper()
	running := 0
	for _, s := range ss.List {
		if s.cmd != nil {
			running++
		}
	}
	for _, s := range ss.List {
		if s.cmd == nil {
			continue
		}
		waitFor(ss.t, 60*time.Second, "sentinel "+s.Addr+" knowing group "+g.Name, func() bool {
			v, err := s.Do("SENTINEL", "MASTER", g.Name)
			if err != nil {
				return false
			}
			f := fields(v)
			if f["num-slaves"] != strconv.Itoa(len(g.Servers)-1) || f["num-other-sentinels"] != strconv.Itoa(running-1) {
				return false
			}
			// Each replica seen up and linked: what a proxy needs to send it reads.
			reps, err := s.Do("SENTINEL", "REPLICAS", g.Name)
			l, ok := reps.([]any)
			if err != nil || !ok {
				return false
			}
			for _, r := range l {
				if f := fields(r); f["flags"] != "slave" || f["master-link-status"] != "ok" {
					return false
				}
			}
			return true
		})
	}
}

// Master returns the address a majority of all the sentinels reports as g's master, "" when
// none has a majority.
func (ss *Sentinels) Master(name string) string {
	votes := map[string]int{}
	for _, s := range ss.List {
		if s.cmd == nil {
			continue
		}
		v, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
		if err != nil {
			continue
		}
		if l, ok := v.([]any); ok && len(l) == 2 {
			a := net.JoinHostPort(fmt.Sprint(l[0]), fmt.Sprint(l[1]))
			votes[a]++
			if votes[a] > len(ss.List)/2 {
				return a
			}
		}
	}
	return ""
}

// WaitSwitch waits until a majority of the sentinels reports a master of the group other
// than old, and returns it.
func (ss *Sentinels) WaitSwitch(name, old string, timeout time.Duration) string {
	ss.t.Helper()
	var m string
	waitFor(ss.t, timeout, "a majority of sentinels naming a new master of "+name, func() bool {
		m = ss.Master(name)
		return m != "" && m != old
	})
	return m
}

func (s *Sentinel) start() error {
	cmd := exec.Command("redis-server", s.conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run redis-server --sentinel on port %d: %w", s.Port, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "sentinel.log"))
			s.cmd = nil
			return fmt.Errorf("sentinel on port %d exited: %s", s.Port, log)
		default:
		}
		if _, err := s.Do("PING"); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("sentinel on port %d did not answer PING within 5s", s.Port)
}

// logIfFailed shows the end of the sentinel's log when the test failed: whether it was in
// TILT mode or lost an election is what explains a failover that did not come.
func (s *Sentinel) logIfFailed() {
	if !s.t.Failed() {
		return
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sentinel.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	s.t.Logf("sentinel %s log (last %d lines):\n%s", s.Addr, min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
}

// Kill stops the sentinel at once (SIGKILL).
func (s *Sentinel) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Restart starts a killed sentinel again on its port, with the configuration it rewrote.
func (s *Sentinel) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart sentinel: %v", err)
}

// Do sends one command to the sentinel and returns its reply.
func (s *Sentinel) Do(args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// fields turns a flat [field, value, ...] reply (RESP2) or a map (RESP3) into a map.
func fields(v any) map[string]string {
	out := map[string]string{}
	switch v := v.(type) {
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			out[fmt.Sprint(v[i])] = fmt.Sprint(v[i+1])
		}
	case map[any]any:
		for k, x := range v {
			out[fmt.Sprint(k)] = fmt.Sprint(x)
		}
	}
	return out
}

// infoField returns one field of a server's INFO section, "" when missing or unreachable.
func infoField(s *Server, section, field string) string {
	v, err := s.Do("INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(fmt.Sprint(v), "\r\n") {
		if val, ok := strings.CutPrefix(line, field+":"); ok {
			return val
		}
	}
	return ""
}

// waitFor polls cond until it holds, or fails the test after timeout naming what.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
