package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// probeLogins dials addr over and over until stop, logging in as user/pass and pinging on each
// new connection (over TLS when tc is set), and counts the attempts and failures: a listener
// that is closed or reopened, even briefly, shows as a refused dial or a reset.
type probe struct {
	stop               atomic.Bool
	attempts, failures atomic.Int64
	firstErr           atomic.Value
	wg                 sync.WaitGroup
}

func startProbe(addr, user, pass string, dial func(string) (net.Conn, error)) *probe {
	p := &probe{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for !p.stop.Load() {
			p.attempts.Add(1)
			if err := probeOnce(addr, user, pass, dial); err != nil {
				p.failures.Add(1)
				p.firstErr.CompareAndSwap(nil, err.Error())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func probeOnce(addr, user, pass string, dial func(string) (net.Conn, error)) error {
	nc, err := dial(addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(nc, "AUTH %s %s\r\nPING\r\n", user, pass); err != nil {
		return err
	}
	br := bufio.NewReader(nc)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("want %s: %w", want, err)
		}
		if strings.TrimSpace(line) != want {
			return fmt.Errorf("got %q, want %s", line, want)
		}
	}
	return nil
}

func (p *probe) Stop(t *testing.T, what string) {
	t.Helper()
	p.stop.Store(true)
	p.wg.Wait()
	t.Logf("%s: %d new connections, %d failed", what, p.attempts.Load(), p.failures.Load())
	if p.failures.Load() > 0 {
		t.Errorf("%s: %d of %d new connections failed; first: %v", what, p.failures.Load(), p.attempts.Load(), p.firstErr.Load())
	}
	if p.attempts.Load() < 20 {
		t.Errorf("%s: only %d connections tried", what, p.attempts.Load())
	}
}

// reloadCtl runs asterctl cluster reload against admin.
func reloadCtl(t *testing.T, admin string) ctlResult {
	t.Helper()
	return asterctl(t, nil, "--addr", admin, "cluster", "reload")
}

// TestReloadAccessSettingsUnderLoad: 20 reloads that change only access settings
// (max_connections, client_idle_timeout, a user added, its password changed and removed,
// client_output_limit, the TLS certificate files of a TLS cluster) on fixed addresses, under
// verified load from clients that stay connected and from a stream of new connections: no
// client sees an error, no connection is refused, every reload is applied and says so, new
// connections get the new settings, a session of a user whose password changed keeps going
// and one whose user was removed is refused from its next command.
func TestReloadAccessSettingsUnderLoad(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	certs := redistest.GenCerts(t)
	// The same certificate under two sets of names: a change of file names is an access
	// change that clients (trusting the CA) must not notice.
	certDirs := [2]string{t.TempDir(), t.TempDir()}
	for _, dir := range certDirs {
		for name, src := range map[string]string{"cert.pem": certs.CertFile, "key.pem": certs.KeyFile} {
			redistest.InstallFile(t, src, filepath.Join(dir, name), time.Time{})
		}
	}
	tlsAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	config := func(i int) string {
		users := `{ username = "loader", password = "l" }`
		switch i % 3 {
		case 1, 2:
			users += fmt.Sprintf(`, { username = "alice", password = "a%d" }`, i)
		}
		access := fmt.Sprintf("max_connections = %d\nclient_idle_timeout = %d\nclient_output_limit = %d\nauth = { users = [%s] }\n",
			500+i, (i%3)*100, (1+i%4)<<20, users)
		dir := certDirs[i%2]
		return "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(admin) + `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n" + access + `
[[clusters]]
name = "sec"
listen_addr = ` + strconv.Quote(tlsAddr) + `
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n" + access +
			"tls_cert_file = " + strconv.Quote(filepath.Join(dir, "cert.pem")) + "\ntls_key_file = " + strconv.Quote(filepath.Join(dir, "key.pem")) + "\n"
	}
	a := startAsterd(t, config(0))
	path := a.cmd.Args[2]
	redistest.WaitListening(t, admin, 10*time.Second)
	redistest.WaitListening(t, tlsAddr, 10*time.Second)
	write := func(i int) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(config(i), "%LISTEN%", a.Addr)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	plain := redis.NewClient(&redis.Options{Addr: a.Addr, Username: "loader", Password: "l", MaxRetries: -1,
		PoolSize: 4, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { plain.Close() })
	tlsConf := certs.ClientTLS(t, false)
	secure := redis.NewClient(&redis.Options{Addr: tlsAddr, Username: "loader", Password: "l", MaxRetries: -1,
		PoolSize: 2, ReadTimeout: 5 * time.Second, TLSConfig: tlsConf})
	t.Cleanup(func() { secure.Close() })
	loads := []*verifiedLoad{startVerifiedLoad(plain, "acc", 3, 200), startVerifiedLoad(secure, "acs", 2, 200)}
	probes := []*probe{
		startProbe(a.Addr, "loader", "l", func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }),
		startProbe(tlsAddr, "loader", "l", func(addr string) (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf)
		}),
	}

	var alice *redistest.Raw // a session of alice, logged in while she exists
	for i := 1; i <= 20; i++ {
		write(i)
		r := reloadCtl(t, admin)
		if r.code != 0 || !reloadLineHas(r.stdout, "changed:", "main") || !reloadLineHas(r.stdout, "changed:", "sec") {
			t.Fatalf("reload %d: want both clusters changed, got %v", i, r)
		}
		// New connections go by the new settings: alice's password of this round, or none.
		fresh := redistest.DialRaw(t, a.Addr)
		v, err := fresh.Do("AUTH", "alice", fmt.Sprintf("a%d", i))
		switch i % 3 {
		case 0:
			if err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
				t.Errorf("reload %d removed alice: AUTH = %q, %v; want WRONGPASS", i, v, err)
			}
			if alice != nil {
				// Logged in before her removal: refused from her next command.
				if v, err := alice.Do("GET", "k"); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
					t.Errorf("reload %d removed alice: her open session's GET = %q, %v; want NOPERM", i, v, err)
				}
				alice = nil
			}
		default:
			if err != nil || v != "OK" {
				t.Errorf("reload %d: AUTH alice with this round's password = %q, %v", i, v, err)
			}
			if alice == nil {
				alice = fresh
			} else if v, err := alice.Do("SET", "alice:k", strconv.Itoa(i)); err != nil || v != "OK" {
				// Her password changed: a session logged in before keeps going, as in Redis.
				t.Errorf("reload %d changed alice's password: her open session's SET = %q, %v", i, v, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range probes {
		p.Stop(t, "new connections across 20 access reloads")
	}
	for i, l := range loads {
		l.Stop()
		l.check(t, fmt.Sprintf("across 20 access reloads (client %d)", i), 0, 100)
	}
	if n := strings.Count(a.log.String(), "asterd.controlplane: cluster changed: cluster=main groups=[\"access\"]"); n != 20 {
		t.Errorf("%d log lines say main's access changed, want one per reload (20)", n)
	}
	if containsLog(a, "drained") || containsLog(a, "address already in use") {
		t.Errorf("an access reload drained a cluster or reopened a listener:\n%s", a.log.String())
	}
}

// clusterLabels are the values of the cluster label in a /metrics page.
func clusterLabels(body string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`cluster="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		seen[m[1]] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestReloadFailureKeepsEverything: a reload that adds a cluster on a port another process
// holds, and changes a live setting of the running one, fails with the cause (the admin
// Reload error and the log), and leaves cluster list, the clusters of /metrics, /readyz and
// the running cluster's settings exactly as before; the running cluster serves throughout.
// Once the port is free, the same file applies.
func TestReloadFailureKeepsEverything(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	metricsAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	head := "[admin]\nlisten_addr = " + strconv.Quote(admin) + "\n[metrics]\nlisten_addr = " + strconv.Quote(metricsAddr) + "\n"
	main := `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n"
	a := startAsterd(t, head+main+"slowlog_max_len = 10\n")
	path := a.cmd.Args[2]
	redistest.WaitListening(t, admin, 10*time.Second)
	redistest.WaitListening(t, metricsAddr, 10*time.Second)
	c := a.client(t)
	load := startVerifiedLoad(c, "rf", 2, 100)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	extra := `
[[clusters]]
name = "extra"
listen_addr = ` + strconv.Quote(taken.Addr().String()) + `
cache_type = "redis"
servers = ` + serverList(servers[1:], []int{1}, true) + "\n"

	state := func() (list, labels string, ready int) {
		t.Helper()
		r := asterctl(t, nil, "--addr", admin, "-o", "json", "cluster", "list")
		if r.code != 0 {
			t.Fatalf("cluster list: %v", r)
		}
		var l struct {
			Clusters []struct{ Name, ListenAddr string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
			t.Fatalf("cluster list: %v\n%s", err, r.stdout)
		}
		body, _ := scrape(t, metricsAddr)
		ready, _ = httpGet(t, "http://"+metricsAddr+"/readyz")
		return fmt.Sprint(l.Clusters), strings.Join(clusterLabels(body), ","), ready
	}
	knob := func() string {
		v, err := c.ConfigGet(ctx, "slowlog-max-len").Result()
		if err != nil {
			t.Fatalf("CONFIG GET: %v", err)
		}
		return v["slowlog-max-len"]
	}
	time.Sleep(200 * time.Millisecond)
	list0, labels0, ready0 := state()
	if ready0 != 200 || !strings.Contains(labels0, "main") || knob() != "10" {
		t.Fatalf("before: ready %d, metrics clusters %s, slowlog-max-len %s", ready0, labels0, knob())
	}

	if err := os.WriteFile(path, []byte(strings.ReplaceAll(head+main+"slowlog_max_len = 20\n"+extra, "%LISTEN%", a.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reloadCtl(t, admin)
	if r.code != 1 || !strings.Contains(r.stderr, "FailedPrecondition") || !strings.Contains(r.stderr, `cluster "extra"`) ||
		!strings.Contains(r.stderr, taken.Addr().String()) || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("reload onto a taken port: want exit 1, FailedPrecondition naming extra, its address and the cause; got %v", r)
	}
	waitLog(t, a, "reload refused")
	list1, labels1, ready1 := state()
	if list1 != list0 || labels1 != labels0 || ready1 != ready0 {
		t.Errorf("a failed reload changed the state:\ncluster list %s\n        was %s\nmetrics clusters %s, was %s\nreadyz %d, was %d",
			list1, list0, labels1, labels0, ready1, ready0)
	}
	if v := knob(); v != "10" {
		t.Errorf("a failed reload applied main's slowlog_max_len: %s, want 10", v)
	}
	load.waitOps(t, 50)
	load.Stop()
	load.check(t, "across a failed reload", 0, 50)

	// The port free again, the same file applies whole.
	taken.Close()
	r = reloadCtl(t, admin)
	if r.code != 0 || !reloadLineHas(r.stdout, "added:", "extra") || !reloadLineHas(r.stdout, "changed:", "main") {
		t.Fatalf("the same reload with the port free: %v", r)
	}
	x := redistest.DialRaw(t, taken.Addr().String())
	if v, err := x.Do("SET", "x", "1"); err != nil || v != "OK" {
		t.Fatalf("extra after the reload: %q, %v", v, err)
	}
	if v := knob(); v != "20" {
		t.Errorf("slowlog-max-len after the reload: %s, want 20", v)
	}
	if _, labels, _ := state(); !strings.Contains(labels, "extra") {
		t.Errorf("metrics clusters after the reload: %s", labels)
	}
}

// TestReloadSaysWhatChanged: a reload that changes nothing answers and logs so; one that
// changes a cluster logs one line for it naming the groups of settings that changed.
func TestReloadSaysWhatChanged(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	base := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(admin) + `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n"
	a := startAsterd(t, base)
	path := a.cmd.Args[2]
	redistest.WaitListening(t, admin, 10*time.Second)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(s, "%LISTEN%", a.Addr)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := reloadCtl(t, admin)
	if r.code != 0 || !reloadLineHas(r.stdout, "unchanged:", "main") || !strings.Contains(r.stdout, "changed:") {
		t.Fatalf("unchanged reload: %v", r)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == "added:" || f[0] == "removed:" || f[0] == "changed:") && f[1] != "-" {
			t.Errorf("unchanged reload reports %q", line)
		}
	}
	waitLog(t, a, "configuration unchanged")

	write(base + "max_connections = 77\nslowlog_max_len = 9\nread_timeout = 1234\n")
	r = reloadCtl(t, admin)
	if r.code != 0 || !reloadLineHas(r.stdout, "changed:", "main") {
		t.Fatalf("changing reload: %v", r)
	}
	waitLog(t, a, `asterd.controlplane: cluster changed: cluster=main groups=["access", "backend", "live"]`)

	// SIGHUP takes the same path.
	write(base + "max_connections = 78\nslowlog_max_len = 9\nread_timeout = 1234\n")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, `asterd.controlplane: cluster changed: cluster=main groups=["access"]`)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(a.log.String(), "configuration unchanged") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP with an unchanged file did not log \"configuration unchanged\"")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckRefusesListenClashes: asterd --check refuses every pair of addresses that cannot
// both listen, naming the line of the later one.
func TestCheckRefusesListenClashes(t *testing.T) {
	t.Parallel()
	cluster := func(name, proto, addr string) string {
		s := "[[clusters]]\nname = \"" + name + "\"\nlisten_addr = \"" + addr + "\"\n"
		if proto != "" {
			s += "listen_proto = \"" + proto + "\"\n"
		}
		return s + "cache_type = \"redis\"\nservers = [\"127.0.0.1:6379\"]\n"
	}
	sock := filepath.Join(t.TempDir(), "aster.sock")
	off := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = \"\"\n"
	for _, c := range []struct{ name, file, want string }{
		{"two clusters, one address", off + cluster("a", "", "127.0.0.1:7001") + cluster("b", "", "127.0.0.1:7001"),
			`:12: cluster "b": listen_addr: "127.0.0.1:7001" already used by clusters[0] "a"`},
		{"cluster on admin", "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = \"127.0.0.1:7790\"\n" + cluster("a", "", "127.0.0.1:7790"),
			`:7: cluster "a": listen_addr: "127.0.0.1:7790" is also admin.listen_addr`},
		{"cluster on metrics", "[admin]\nlisten_addr = \"\"\n[metrics]\nlisten_addr = \"127.0.0.1:9121\"\n" + cluster("a", "", "127.0.0.1:9121"),
			`:7: cluster "a": listen_addr: "127.0.0.1:9121" is also metrics.listen_addr`},
		{"0.0.0.0 next to 127.0.0.1", off + cluster("a", "", "127.0.0.1:7001") + cluster("b", "", "0.0.0.0:7001"),
			`:12: cluster "b": listen_addr: "0.0.0.0:7001" overlaps clusters[0] "a" "127.0.0.1:7001": a wildcard address takes its port on every address`},
		{"one unix path", off + cluster("a", "unix", sock) + cluster("b", "unix", sock),
			`:13: cluster "b": listen_addr: "` + sock + `" already used by clusters[0] "a"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "clash.toml")
			if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(asterdBin, "--check", "--config", path).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 || strings.TrimSpace(string(out)) != path+c.want {
				t.Fatalf("asterd --check: %v\n%s\nwant exit 1 and %s%s", err, out, path, c.want)
			}
		})
	}
}
