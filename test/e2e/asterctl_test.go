package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

var (
	asterctlOnce sync.Once
	asterctlBin  string
	asterctlErr  error
)

// buildAsterctl builds asterctl once, next to asterd so TestMain's cleanup removes it.
func buildAsterctl(t *testing.T) string {
	t.Helper()
	asterctlOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(asterdBin), "asterctl")
		out, err := exec.Command("go", "build", "-race", "-o", bin, "../../cmd/asterctl").CombinedOutput()
		if err != nil {
			asterctlErr = fmt.Errorf("build asterctl: %w\n%s", err, out)
			return
		}
		asterctlBin = bin
	})
	if asterctlErr != nil {
		t.Fatal(asterctlErr)
	}
	return asterctlBin
}

// ctlResult is one asterctl run.
type ctlResult struct {
	code           int
	stdout, stderr string
}

func (r ctlResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// asterctl runs the asterctl binary with env (KEY=VALUE) added to an environment cleared of
// ASTER_ADMIN_* so the caller's shell cannot leak in.
func asterctl(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(buildAsterctl(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASTER_ADMIN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ctlResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run asterctl %q: %v", args, err)
	}
	return r
}

// startAsterdAdmin runs asterd on clusters (a [[clusters]] TOML fragment with %LISTEN%) with the
// admin API on a free loopback port, and returns the admin address once it listens.
func startAsterdAdmin(t *testing.T, token, clusters string) (*asterd, string) {
	t.Helper()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	head := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(admin) + "\n"
	if token != "" {
		head += "token = " + strconv.Quote(token) + "\n"
	}
	a := startAsterd(t, head+clusters)
	redistest.WaitListening(t, admin, 10*time.Second)
	return a, admin
}

// nodeRow returns the fields of the table row that starts with addr, or nil.
func nodeRow(out, addr string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == addr {
			return f
		}
	}
	return nil
}

func TestAsterctlListShow(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "ctl"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 2}, true)+`
`)

	r := asterctl(t, nil, "--addr", admin, "cluster", "list")
	if r.code != 0 {
		t.Fatalf("cluster list: %v", r)
	}
	row := nodeRow(r.stdout, "ctl")
	if !strings.HasPrefix(r.stdout, "NAME ") || len(row) != 7 {
		t.Fatalf("cluster list has no header or no 7-column row for ctl:\n%s", r.stdout)
	}
	if want := []string{"ctl", "standalone", a.Addr, "3", "3"}; strings.Join(row[:5], " ") != strings.Join(want, " ") {
		t.Errorf("cluster list row %q, want it to start with %q", row, want)
	}

	r = asterctl(t, []string{"ASTER_ADMIN_ADDR=" + admin}, "-o", "json", "cluster", "list")
	if r.code != 0 {
		t.Fatalf("cluster list -o json: %v", r)
	}
	var list struct {
		Clusters []struct {
			Name       string
			ListenAddr string
			Nodes      []struct{ Address, Alias, State string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("cluster list -o json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(list.Clusters) != 1 || list.Clusters[0].Name != "ctl" || list.Clusters[0].ListenAddr != a.Addr || len(list.Clusters[0].Nodes) != 3 {
		t.Errorf("cluster list -o json decoded to %+v", list)
	}

	r = asterctl(t, nil, "--addr", admin, "cluster", "show", "ctl")
	if r.code != 0 {
		t.Fatalf("cluster show: %v", r)
	}
	for _, w := range []string{"Name:", "ctl", "Mode:", "standalone", "Listen:", a.Addr, "Table version:", "Last refresh:", "ADDRESS"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("cluster show lacks %q:\n%s", w, r.stdout)
		}
	}
	for i, s := range servers {
		row := nodeRow(r.stdout, s.Addr)
		want := fmt.Sprintf("%s r%d %d node UP", s.Addr, i+1, []int{1, 1, 2}[i])
		if len(row) < 5 || strings.Join(row[:5], " ") != want {
			t.Errorf("node row %q, want it to start with %q\n%s", row, want, r.stdout)
		}
	}

	r = asterctl(t, nil, "--addr", admin, "cluster", "show", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "NotFound") || r.stdout != "" {
		t.Errorf("show of an unknown cluster: want exit 1 and NotFound, got %v", r)
	}
}

func TestAsterctlEjectRestore(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "ctl"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
`)
	c := a.client(t)
	writeKeys := func(prefix string) {
		t.Helper()
		for i := 0; i < 200; i++ {
			if err := c.Set(ctx, spreadKey(prefix, i), i, 0).Err(); err != nil {
				t.Fatalf("SET through asterd: %v", err)
			}
		}
	}
	dbsize := func(s *redistest.Server) int64 {
		t.Helper()
		n, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("DBSIZE %s: %v", s.Addr, err)
		}
		return n
	}
	flushAll := func() {
		t.Helper()
		for _, s := range servers {
			if err := s.Client().FlushAll(ctx).Err(); err != nil {
				t.Fatalf("FLUSHALL %s: %v", s.Addr, err)
			}
		}
	}
	ctl := func(args ...string) ctlResult {
		t.Helper()
		return asterctl(t, nil, append([]string{"--addr", admin}, args...)...)
	}
	// Every node takes keys to begin with, so "got none" below means the eject did it.
	writeKeys("pre:")
	for _, s := range servers {
		if dbsize(s) == 0 {
			t.Fatalf("node %s got none of 200 keys before any eject", s.Addr)
		}
	}

	cases := []struct {
		name string
		node string // as given to asterctl
		idx  int
	}{
		{"by alias", "r2", 1},
		{"by address", servers[0].Addr, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := servers[tc.idx]
			reason := "maintenance " + tc.name
			r := ctl("cluster", "eject", "ctl", tc.node, "--reason", reason)
			if r.code != 0 {
				t.Fatalf("eject: %v", r)
			}
			if row := nodeRow(r.stdout, target.Addr); len(row) < 7 || row[4] != "EJECTED" || row[6] != "operator" {
				t.Errorf("eject printed node row %q, want EJECTED by operator\n%s", row, r.stdout)
			}

			flushAll()
			writeKeys("ejected-" + tc.node + ":")
			if n := dbsize(target); n != 0 {
				t.Errorf("ejected node %s got %d of 200 new keys", target.Addr, n)
			}
			r = ctl("cluster", "show", "ctl")
			if r.code != 0 {
				t.Fatalf("show: %v", r)
			}
			row := nodeRow(r.stdout, target.Addr)
			if len(row) < 7 || row[4] != "EJECTED" || row[6] != "operator" || !strings.Contains(strings.Join(row, " "), reason) {
				t.Errorf("show: node row %q, want EJECTED by operator with reason %q\n%s", row, reason, r.stdout)
			}
			r = ctl("cluster", "list")
			if row := nodeRow(r.stdout, "ctl"); r.code != 0 || len(row) < 5 || row[3] != "3" || row[4] != "2" {
				t.Errorf("list after eject: want 3 nodes 2 up, got row %q\n%v", row, r)
			}

			r = ctl("cluster", "restore", "ctl", tc.node)
			if r.code != 0 {
				t.Fatalf("restore: %v", r)
			}
			if row := nodeRow(r.stdout, target.Addr); len(row) < 5 || row[4] != "UP" {
				t.Errorf("restore printed node row %q, want UP\n%s", row, r.stdout)
			}
			flushAll()
			writeKeys("restored-" + tc.node + ":")
			if n := dbsize(target); n == 0 {
				t.Errorf("restored node %s got none of 200 new keys", target.Addr)
			}
			r = ctl("cluster", "show", "ctl")
			if row := nodeRow(r.stdout, target.Addr); r.code != 0 || len(row) < 5 || row[4] != "UP" {
				t.Errorf("show after restore: node row %q, want UP\n%v", row, r)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown node", []string{"cluster", "eject", "ctl", "nosuch"}},
		{"unknown address", []string{"cluster", "restore", "ctl", "127.0.0.1:1"}},
		{"unknown cluster", []string{"cluster", "eject", "nosuch", "r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctl(tc.args...)
			if r.code != 1 || !strings.Contains(r.stderr, "NotFound") || !strings.HasPrefix(r.stderr, "asterctl: ") {
				t.Errorf("want exit 1 with NotFound on stderr, got %v", r)
			}
		})
	}
}

func TestAsterctlToken(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	_, admin := startAsterdAdmin(t, "s3cret", `
[[clusters]]
name = "tok"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
`)
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string // in stdout on success, in stderr on failure
	}{
		{"no token", nil, []string{"--addr", admin}, 1, "wants a bearer token ([admin] token): give --token-file FILE, or set ASTER_ADMIN_TOKEN"},
		{"wrong token", nil, []string{"--addr", admin, "--token", "guess"}, 1, "refused the bearer token from --token"},
		{"wrong env token", []string{"ASTER_ADMIN_TOKEN=guess"}, []string{"--addr", admin}, 1, "refused the bearer token from ASTER_ADMIN_TOKEN"},
		{"token flag", nil, []string{"--addr", admin, "--token", "s3cret"}, 0, "tok"},
		{"token env", []string{"ASTER_ADMIN_TOKEN=s3cret"}, []string{"--addr", admin}, 0, "tok"},
		{"env addr and token", []string{"ASTER_ADMIN_TOKEN=s3cret", "ASTER_ADMIN_ADDR=" + admin}, nil, 0, "tok"},
		{"flag beats env token", []string{"ASTER_ADMIN_TOKEN=guess"}, []string{"--addr", admin, "--token", "s3cret"}, 0, "tok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := asterctl(t, c.env, append(c.args, "cluster", "list")...)
			out := r.stdout
			if c.code != 0 {
				out = r.stderr
			}
			if r.code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("want exit %d with %q, got %v", c.code, c.want, r)
			}
		})
	}
}

func TestAsterctlReload(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	base := `
[[clusters]]
name = "main"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = %SERVERS%
`
	a, admin := startAsterdAdmin(t, "", strings.ReplaceAll(base, "%SERVERS%", serverList(servers[:2], []int{1, 1}, true)))
	path := a.cmd.Args[2]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	adminHead := string(orig[:strings.Index(string(orig), "[[clusters]]")])
	c := a.client(t)
	write := func(clusters string) {
		t.Helper()
		content := adminHead + strings.ReplaceAll(clusters, "%LISTEN%", a.Addr)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctl := func(args ...string) ctlResult {
		t.Helper()
		return asterctl(t, nil, append([]string{"--addr", admin}, args...)...)
	}

	// Nothing changed on disk: the one cluster is reported unchanged.
	r := ctl("cluster", "reload")
	if r.code != 0 || !strings.Contains(r.stdout, "unchanged:") || !reloadLineHas(r.stdout, "unchanged:", "main") {
		t.Fatalf("reload of the same file: want main unchanged, got %v", r)
	}

	// Add a node to main and a whole new cluster.
	extraAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	grown := strings.ReplaceAll(base, "%SERVERS%", serverList(servers, []int{1, 1, 1}, true)) + `
[[clusters]]
name = "extra"
listen_addr = "` + extraAddr + `"
cache_type = "redis"
servers = ` + serverList(servers[2:], []int{1}, true) + "\n"
	write(grown)
	r = ctl("cluster", "reload")
	if r.code != 0 {
		t.Fatalf("reload: %v", r)
	}
	if !reloadLineHas(r.stdout, "added:", "extra") || !reloadLineHas(r.stdout, "changed:", "main") {
		t.Errorf("reload output should name extra as added and main as changed:\n%s", r.stdout)
	}
	redistest.WaitListening(t, extraAddr, 10*time.Second)
	extra := redistest.DialRaw(t, extraAddr)
	if v, err := extra.Do("SET", "x", "1"); err != nil || v != "OK" {
		t.Fatalf("new cluster's listener: %q, %v", v, err)
	}
	if err := servers[2].Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := c.Set(ctx, spreadKey("reload:", i), i, 0).Err(); err != nil {
			t.Fatalf("SET through main after reload: %v", err)
		}
	}
	if n, _ := servers[2].Client().DBSize(ctx).Result(); n == 0 {
		t.Errorf("the node added by reload got none of 200 keys")
	}
	r = ctl("cluster", "show", "main")
	if nodeRow(r.stdout, servers[2].Addr) == nil {
		t.Errorf("show main after reload lacks the added node %s:\n%v", servers[2].Addr, r)
	}

	// A broken file is refused whole with the config error; both clusters go on serving.
	write(grown + "bogus_key = 1\n")
	r = ctl("cluster", "reload")
	if r.code != 1 || !strings.Contains(r.stderr, "InvalidArgument") || !strings.Contains(r.stderr, "bogus_key") {
		t.Errorf("reload of a broken file: want exit 1 with InvalidArgument and the bad key, got %v", r)
	}
	if err := c.Set(ctx, "after-broken", "1", 0).Err(); err != nil {
		t.Errorf("main after a refused reload: %v", err)
	}
	if v, err := extra.Do("SET", "y", "2"); err != nil || v != "OK" {
		t.Errorf("extra after a refused reload: %q, %v", v, err)
	}
	r = ctl("-o", "json", "cluster", "list")
	var list struct{ Clusters []struct{ Name string } }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Clusters) != 2 {
		t.Errorf("list after a refused reload: want main and extra, got %+v (%v)\n%v", list, err, r)
	}
}

// reloadLineHas reports whether the reload output line starting with label names cluster.
func reloadLineHas(out, label, cluster string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, label); ok {
			for _, n := range strings.Split(rest, ",") {
				if strings.TrimSpace(n) == cluster {
					return true
				}
			}
		}
	}
	return false
}

// TestAsterctlFlagsAnywhereAndVersion: against a real asterd, flags after the verb and its
// arguments work as before it (kubectl style), and version reports both sides.
func TestAsterctlFlagsAnywhereAndVersion(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	_, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "anywhere"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 2}, true)+`
`)
	r := asterctl(t, nil, "cluster", "list", "-o", "json", "--addr", admin)
	var list struct {
		Clusters []struct {
			Name  string
			Mode  string
			Nodes []struct {
				State  string
				Weight int
			}
		}
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.Clusters) != 1 {
		t.Fatalf("cluster list -o json --addr after the verb: %v", r)
	}
	if c := list.Clusters[0]; c.Name != "anywhere" || c.Mode != "standalone" || len(c.Nodes) != 2 || c.Nodes[0].State != "UP" || c.Nodes[1].Weight != 2 {
		t.Errorf("cluster list -o json: %+v", list)
	}
	r = asterctl(t, nil, "cluster", "show", "anywhere", "-o", "json", "--addr", admin)
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "anywhere"`) || !strings.Contains(r.stdout, `"state": "UP"`) {
		t.Errorf("cluster show NAME -o json --addr: %v", r)
	}
	r = asterctl(t, nil, "version", "--addr", admin)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "Client: asterctl ") || !strings.HasPrefix(lines[1], "Server: asterd ") ||
		!strings.HasSuffix(lines[1], " at "+admin) {
		t.Errorf("version: %v", r)
	}
	r = asterctl(t, nil, "version", "-o", "json", "--addr", admin)
	var v struct {
		Client, Server struct{ Version, GoVersion string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Server.Version == "" || !strings.HasPrefix(v.Server.GoVersion, "go") {
		t.Errorf("version -o json: %v", r)
	}
}
