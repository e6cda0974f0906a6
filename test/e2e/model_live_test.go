package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// liveChanges changes a's settings while the model's clients run, until stop: every other
// step it rewrites the file (the protocol of the node connections, the client cache on, off
// or resized, a timeout, the slow log and hot-key sizes) and reloads it with SIGHUP; in
// between a client of its own sets live knobs (CONFIG SET) and reads the slow log and hot
// keys. It returns once stopped, with how many reloads asterd applied (at least two are
// asked for); a refused reload fails the test (each file is valid, so one means a reload
// went wrong).
func liveChanges(t *testing.T, a *asterd, stop <-chan struct{}) (reloads int) {
	path := a.cmd.Args[2]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return 0
	}
	cacheType := regexp.MustCompile(`(?m)^cache_type = "[a-z_]+"\n`)
	variant := func(i int) string {
		extra := fmt.Sprintf("backend_resp_version = %q\nwrite_timeout = %d\nslowlog_log_slower_than = %d\nslowlog_max_len = %d\nhotkey_capacity = %d\nping_interval = %d\n",
			[]string{"resp2", "resp3"}[i%2], 2000+i%3*1000, []int{0, -1, 5000}[i%3], 8+i%5, 16+i%7, 200+i%4*100)
		switch i % 3 {
		case 1:
			extra += "client_cache = { enabled = true, max_entries = 256 }\n"
		case 2:
			extra += fmt.Sprintf("client_cache = { enabled = true, max_entries = %d, shard_count = %d }\n", 64+i, 1+i%8)
		}
		loc := cacheType.FindIndex(orig)
		return string(orig[:loc[1]]) + extra + string(orig[loc[1]:])
	}
	knobs := [][]string{
		{"hotkey-enabled", "yes"}, {"hotkey-enabled", "no"}, {"hotkey-sample-every", "1"},
		{"slowlog-log-slower-than", "0"}, {"slowlog-max-len", "3"}, {"client-cache-enabled", "yes"},
		{"client-cache-enabled", "no"}, {"client-cache-max-entries", "100"}, {"hotkey-capacity", "8"},
	}
	ctl := redistest.DialRaw(t, a.Addr)
	for i := 1; ; i++ {
		select {
		case <-stop:
			for _, line := range strings.Split(a.log.String(), "\n") {
				if strings.Contains(line, "reload refused") {
					t.Errorf("a reload was refused: %s", line)
					break
				}
			}
			return strings.Count(a.log.String(), "configuration reloaded")
		case <-time.After(50 * time.Millisecond):
		}
		if i%2 == 0 {
			if err := os.WriteFile(path, []byte(variant(i/2)), 0o644); err != nil {
				t.Errorf("write %s: %v", path, err)
				return 0
			}
			_ = a.cmd.Process.Signal(syscall.SIGHUP)
			continue
		}
		k := knobs[i/2%len(knobs)]
		if v, err := ctl.Do("CONFIG", "SET", k[0], k[1]); err != nil || v != "OK" {
			t.Errorf("CONFIG SET %s %s: %q, %v", k[0], k[1], v, err)
		}
		ctl.Send("SLOWLOG", "GET", "2")
		ctl.Send("HOTKEY", "GET")
		for range 2 {
			if _, err := ctl.Receive(10 * time.Second); err != nil {
				t.Errorf("SLOWLOG/HOTKEY GET: %v", err)
			}
		}
	}
}

// reshards moves 2,000 slots from the master of slot 0 to another master and back, over and
// over, until stop (redis-cli --cluster reshard: MIGRATE key by key, so clients meet ASK,
// MOVED and TRYAGAIN). It returns how many moves finished.
func reshards(t *testing.T, rc *redistest.Cluster, stop <-chan struct{}) (moves int) {
	ids := map[*redistest.Server]string{}
	for _, n := range rc.Nodes {
		id, err := n.Do("CLUSTER", "MYID")
		if err != nil {
			t.Errorf("CLUSTER MYID: %v", err)
			return 0
		}
		ids[n] = id.(string)
	}
	a, b := rc.MasterOf(0), rc.MasterOf(16383)
	for {
		select {
		case <-stop:
			return moves
		default:
		}
		out, err := exec.Command("redis-cli", "--cluster", "reshard", a.Addr,
			"--cluster-from", ids[a], "--cluster-to", ids[b],
			"--cluster-slots", "2000", "--cluster-yes", "--cluster-pipeline", "10").CombinedOutput()
		if err != nil {
			t.Errorf("reshard %d: %v\n%s", moves, err, out)
			return moves
		}
		moves++
		a, b = b, a
	}
}

// failovers has a replica take over from its master (CLUSTER FAILOVER: the master stops
// taking writes until the replica has them all, so no write is lost) in each shard in turn,
// 700 ms apart, and then waits for stop. Once each: soon after a failover the masters may
// refuse the next one of that shard their votes, and a manual failover that times out so
// lets the master take writes again while its replica may still be elected, losing them (a
// race of Redis's, not the proxy's). It returns how many failovers finished.
func failovers(t *testing.T, rc *redistest.Cluster, stop <-chan struct{}) (n int) {
	for _, slot := range []int{0, 16383, 8000} {
		select {
		case <-stop:
			return n
		case <-time.After(700 * time.Millisecond):
		}
		replica := replicaOf(t, rc, rc.MasterOf(slot))
		if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
			t.Errorf("CLUSTER FAILOVER on %s: %v", replica.Addr, err)
			return n
		}
		for deadline := time.Now().Add(10 * time.Second); rc.MasterOf(slot) != replica; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) { // not Fatal: the clients still run
				t.Errorf("%s did not take slot %d over within 10s", replica.Addr, slot)
				<-stop
				return n
			}
		}
		n++
	}
	<-stop
	return n
}
