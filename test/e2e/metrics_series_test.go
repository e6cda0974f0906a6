package e2e

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/aster-proxy/aster/internal/redistest"
)

// seriesWith counts the aster_ series of every family whose label name has value v.
func seriesWith(mfs map[string]*dto.MetricFamily, name, v string) (n int, where []string) {
	for fam, mf := range mfs {
		if !strings.HasPrefix(fam, "aster_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == v {
					n++
					where = append(where, fam)
				}
			}
		}
	}
	return n, where
}

// clusterSeries counts the series of one family's metrics whose cluster label is c.
func clusterSeries(ms []*dto.Metric, c string) int {
	n := 0
	for _, m := range ms {
		for _, l := range m.GetLabel() {
			if l.GetName() == "cluster" && l.GetValue() == c {
				n++
			}
		}
	}
	return n
}

// TestMetricsSeriesPerNodeAndReload scrapes a real asterd: request counters exist for the
// commands clients sent, not one per known command; a dead node's failed requests are
// counted on that node (aster_backend_errors_total); and a reload that removes a node and a
// cluster deletes every series that named them.
func TestMetricsSeriesPerNodeAndReload(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	live, dead, other := servers[0], servers[1], servers[2]
	maddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	baddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	admin := "\n[admin]\nlisten_addr = \"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "\"\n[metrics]\nlisten_addr = \"" + maddr + "\"\n"
	clusterA := func(s ...*redistest.Server) string {
		return `
[[clusters]]
name = "a"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(s, ones(len(s)), true) + `
read_timeout = 500
dial_timeout = 200
ping_interval = 100
`
	}
	clusterB := `
[[clusters]]
name = "b"
listen_addr = "` + baddr + `"
cache_type = "redis"
servers = ` + serverList([]*redistest.Server{other}, []int{1}, true) + `
ping_fail_limit = 1
ping_interval = 100
`
	a := startAsterd(t, clusterA(live, dead)+clusterB+admin)
	redistest.WaitListening(t, maddr, 10*time.Second)

	// Cluster b has had no client yet: no request counter at all (there were ~240 zeros).
	_, mfs := scrape(t, maddr)
	if n := clusterSeries(mfs["aster_requests_total"].GetMetric(), "b"); n != 0 {
		t.Fatalf("cluster b has %d aster_requests_total series before any request", n)
	}
	r := redistest.DialRaw(t, a.Addr)
	for i := 0; i < 20; i++ {
		if _, err := r.Do("SET", spreadKey("ms:", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	rb := redistest.DialRaw(t, baddr)
	if _, err := rb.Do("GET", "x"); err != nil {
		t.Fatal(err)
	}
	_, mfs = scrape(t, maddr)
	if n := clusterSeries(mfs["aster_requests_total"].GetMetric(), "a"); n != 1 {
		t.Errorf("cluster a has %d aster_requests_total series after SETs only, want 1", n)
	}
	if v, ok := sample(mfs, "aster_requests_total", map[string]string{"cluster": "a", "command": "set"}); !ok || v != 20 {
		t.Errorf("requests{a,set} = %v (present %v), want 20", v, ok)
	}

	// A dead node: its requests fail, counted on it; the live node's error series is zero.
	dead.Kill()
	other.Kill() // cluster b's only node: ejected after one failed ping
	failed := 0
	for i := 0; i < 40; i++ {
		if _, err := r.Do("GET", spreadKey("ms:", i)); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no GET landed on the dead node")
	}
	_, mfs = scrape(t, maddr)
	if v, ok := sample(mfs, "aster_backend_errors_total", map[string]string{"cluster": "a", "node": dead.Addr, "kind": "backend"}); !ok || v < float64(failed) {
		t.Errorf("backend_errors_total{a,%s,backend} = %v (present %v), want >= %d", dead.Addr, v, ok, failed)
	}
	if v, ok := sample(mfs, "aster_backend_errors_total", map[string]string{"cluster": "a", "node": live.Addr, "kind": "backend"}); !ok || v != 0 {
		t.Errorf("backend_errors_total{a,%s,backend} = %v (present %v), want 0", live.Addr, v, ok)
	}
	waitSample(t, maddr, "aster_node_ejections_total", map[string]string{"cluster": "b", "node": other.Addr, "reason": "health"}, 1, 10*time.Second)
	_, mfs = scrape(t, maddr)
	for _, v := range []struct{ label, value string }{{"cluster", "b"}, {"node", dead.Addr}} {
		if n, _ := seriesWith(mfs, v.label, v.value); n == 0 {
			t.Fatalf("no series with %s=%q before the reload: the check below would prove nothing", v.label, v.value)
		}
	}

	// A reload drops node dead from a, and cluster b: none of their series remains.
	path := a.cmd.Args[2]
	content := strings.ReplaceAll(clusterA(live)+admin, "%LISTEN%", a.Addr)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "configuration reloaded")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, mfs = scrape(t, maddr)
		nb, inB := seriesWith(mfs, "cluster", "b")
		nd, inDead := seriesWith(mfs, "node", dead.Addr)
		if nb == 0 && nd == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reload: %d series of removed cluster b (%v), %d of removed node %s (%v)",
				nb, inB, nd, dead.Addr, inDead)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := sample(mfs, "aster_requests_total", map[string]string{"cluster": "a", "command": "set"}); !ok {
		t.Error("cluster a's series went with the reload")
	}
}
