package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// rejectedPings is how many PINGs s has refused (NOPERM once the test takes PING from the
// default user); asterd's data connections never send PING, so these are health pings.
func rejectedPings(t *testing.T, s *redistest.Server) int {
	_, rejected := s.CommandStats(t, "ping")
	return rejected
}

// TestPingSuccInterval checks that asterd pings an ejected node every ping_succ_interval,
// and that a reload which drops the knob keeps the node ejected, now paced at ping_interval. The
// node stays up and only refuses PING, so every ping is counted; bounds are loose.
func TestPingSuccInterval(t *testing.T) {
	// Not parallel: it counts the pings of 3 s windows against the ping intervals.
	servers := startServers(t, 2)
	bad := servers[1]
	base := `
[[clusters]]
name = "succ"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + `
ping_fail_limit = 2
ping_interval = 50
`
	a := startAsterd(t, base+"ping_succ_interval = 600\n")
	path := a.cmd.Args[2]

	if _, err := bad.Do("ACL", "SETUSER", "default", "-ping"); err != nil {
		t.Fatalf("take PING away: %v", err)
	}
	waitLog(t, a, "node ejected")
	const window = 3 * time.Second
	r0 := rejectedPings(t, bad)
	time.Sleep(window)
	// ideal 5 at 600ms; 60 at ping_interval.
	if n := rejectedPings(t, bad) - r0; n < 1 || n > 12 {
		t.Errorf("ejected node got %d pings in %v with ping_succ_interval 600ms, want 1..12", n, window)
	} else {
		t.Logf("ejected node: %d pings in %v at ping_succ_interval 600ms", n, window)
	}

	// Reload without the knob: it defaults to ping_interval again. The changed cluster gets a
	// new checker, which starts with the node still ejected (no restore, no second ejection).
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(base, "%LISTEN%", a.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "configuration reloaded")
	r0 = rejectedPings(t, bad)
	time.Sleep(window)
	// ideal 60 at 50ms; 5 at the old 600ms.
	if n := rejectedPings(t, bad) - r0; n < 20 {
		t.Errorf("after the reload the ejected node got %d pings in %v, want ≥ 20 (ping_interval 50ms)", n, window)
	} else {
		t.Logf("after reload: %d pings in %v at ping_interval 50ms", n, window)
	}
	if log := a.log.String(); strings.Count(log, "node ejected") != 1 || strings.Contains(log, "node restored") {
		t.Errorf("the ejected node went back into the ring at the reload (ejections %d, restored %v)",
			strings.Count(log, "node ejected"), strings.Contains(log, "node restored"))
	}
}
