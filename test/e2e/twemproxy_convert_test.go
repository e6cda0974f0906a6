package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// nutcracker is a twemproxy process run on a configuration of the test's own.
type nutcracker struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startNutcrackerFile(t *testing.T, path string, listens ...string) *nutcracker {
	t.Helper()
	redistest.Need(t, "nutcracker")
	dir := filepath.Dir(path)
	n := &nutcracker{done: make(chan struct{})}
	n.cmd = exec.Command("nutcracker", "-c", path, "-s", strconv.Itoa(redistest.FreePort(t)), "-a", "127.0.0.1",
		"-o", filepath.Join(dir, "nutcracker.log"))
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("run nutcracker: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.stop)
	for _, l := range listens {
		redistest.WaitListening(t, l, 10*time.Second)
	}
	return n
}

func (n *nutcracker) stop() {
	select {
	case <-n.done:
	default:
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// TestFromTwemproxyInPlace switches two twemproxy pools to asterd as an operator would: keys
// are written through nutcracker, its nutcracker.yml is converted with `asterctl config
// from-twemproxy`, the result passes `asterd --check`, and asterd, started on it in
// nutcracker's place (same listen addresses), reads every key back: each pool's keys sit
// where asterd looks for them. One pool uses every key twemproxy has (hash tag, names and
// weights, redis_auth, ejection, ...), the other twemproxy's defaults with braces in its keys
// (twemproxy without hash_tag hashes whole keys, Aster's default would not).
func TestFromTwemproxyInPlace(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "nutcracker")
	const password = "nut-pw"
	var authed, plain []*redistest.Server
	for i := 0; i < 3; i++ {
		authed = append(authed, redistest.Start(t, "--requirepass", password))
		plain = append(plain, redistest.Start(t))
	}
	full := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	defaults := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	yml := fmt.Sprintf(`full:
  listen: %s
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  timeout: 2000
  backlog: 1024
  preconnect: true
  tcpkeepalive: true
  redis: true
  redis_auth: %s
  redis_db: 0
  server_connections: 2
  client_connections: 500
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 3
  servers:
   - %s:1 alpha
   - %s:2 beta
   - %s:3 gamma

defaults:
  listen: %s
  hash: murmur
  redis: true
  servers:
   - %s:1
   - %s:3
   - %s:2
`, full, password, authed[0].Addr, authed[1].Addr, authed[2].Addr, defaults, plain[0].Addr, plain[1].Addr, plain[2].Addr)
	dir := t.TempDir()
	nutYML := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(nutYML, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nutcracker", "--test-conf", "-c", nutYML).CombinedOutput(); err != nil {
		t.Fatalf("nutcracker refuses the test's own configuration: %v\n%s", err, out)
	}
	nut := startNutcrackerFile(t, nutYML, full, defaults)

	type key struct{ pool, addr, name, value string }
	var keys []key
	for i := 0; i < 300; i++ {
		v := strconv.Itoa(i)
		keys = append(keys,
			key{"full", full, spreadKey("k:", i), v},
			key{"full", full, fmt.Sprintf("{user:%d}:profile", i%40) + v, v}, // hash tag: 40 groups
			key{"defaults", defaults, spreadKey("{grp}:", i), v},             // no hash tag in twemproxy
		)
	}
	write := map[string]*redistest.Raw{"full": redistest.DialRaw(t, full), "defaults": redistest.DialRaw(t, defaults)}
	if r, err := write["full"].Do("AUTH", password); err != nil || r != "OK" {
		t.Fatalf("AUTH through nutcracker: %q, %v", r, err)
	}
	for _, k := range keys {
		if r, err := write[k.pool].Do("SET", k.name, k.value); err != nil || r != "OK" {
			t.Fatalf("SET %s through nutcracker pool %s: %q, %v", k.name, k.pool, r, err)
		}
	}
	for _, c := range write {
		c.Close()
	}
	// Weights and names matter only if every server holds keys.
	for i, s := range append(append([]*redistest.Server{}, authed...), plain...) {
		c := redistest.DialRaw(t, s.Addr)
		if i < len(authed) {
			if _, err := c.Do("AUTH", password); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := c.Do("DBSIZE"); err != nil || n == "0" {
			t.Fatalf("server %s holds %s keys (%v): the test would not show placement", s.Addr, n, err)
		}
		c.Close()
	}

	r := asterctl(t, nil, "config", "from-twemproxy", nutYML)
	if r.code != 0 {
		t.Fatalf("asterctl config from-twemproxy: %v", r)
	}
	for _, w := range []string{`pool "full": backlog: 1024 not converted`} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("no note %q on stderr: %v", w, r)
		}
	}
	if strings.Contains(r.stderr, password) {
		t.Errorf("stderr shows the password: %s", r.stderr)
	}
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	asterTOML := filepath.Join(dir, "aster.toml")
	conf := r.stdout + "\n[admin]\nlisten_addr = " + strconv.Quote(admin) + "\n[metrics]\nlisten_addr = \"\"\n"
	if err := os.WriteFile(asterTOML, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(asterdBin, "--check", "--config", asterTOML).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK (2 clusters)") {
		t.Fatalf("asterd --check on the converted file: %v\n%s\n%s", err, out, conf)
	}

	// In place: nutcracker stops, asterd takes its addresses.
	nut.stop()
	a := runAsterd(t, full, "--config", asterTOML)
	redistest.WaitListening(t, full, 10*time.Second)
	redistest.WaitListening(t, defaults, 10*time.Second)
	redistest.WaitListening(t, admin, 10*time.Second)

	read := map[string]*redistest.Raw{"full": redistest.DialRaw(t, full), "defaults": redistest.DialRaw(t, defaults)}
	if _, err := read["full"].Do("GET", "x"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("asterd on pool full without AUTH: %v, want NOAUTH as twemproxy answers", err)
	}
	if r, err := read["full"].Do("AUTH", password); err != nil || r != "OK" {
		t.Fatalf("AUTH through asterd: %q, %v", r, err)
	}
	missing := 0
	for _, k := range keys {
		v, err := read[k.pool].Do("GET", k.name)
		if err != nil || v != k.value {
			missing++
			if missing <= 5 {
				t.Errorf("GET %s through asterd pool %s: %q, %v; nutcracker stored %q", k.name, k.pool, v, err, k.value)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d keys not found where asterd looks for them\nconverted file:\n%s", missing, len(keys), conf)
	}

	// What asterd runs is what the pool said: names, weights, ejection.
	show := asterctl(t, nil, "--addr", admin, "cluster", "show", "full", "-o", "json")
	if show.code != 0 {
		t.Fatalf("cluster show: %v", show)
	}
	for _, w := range []string{`"alias": "alpha"`, `"alias": "beta"`, `"alias": "gamma"`, `"weight": 3`, `"state": "UP"`, authed[2].Addr} {
		if !strings.Contains(show.stdout, w) {
			t.Errorf("cluster show lacks %s:\n%s", w, show.stdout)
		}
	}
	if !strings.Contains(a.log.String(), "ping_fail_limit=3") {
		t.Errorf("asterd's configuration summary lacks ping_fail_limit=3 (server_failure_limit)")
	}
}
