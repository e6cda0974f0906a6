package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// runAsterdEnv is runAsterd with env (KEY=VALUE) added to an environment cleared of
// ASTER_ADMIN_*, so that the test's own environment cannot leak a token in.
func runAsterdEnv(t *testing.T, listen string, env []string, args ...string) *asterd {
	t.Helper()
	return runAsterdWrapped(t, listen, env, nil, args...)
}

// runAsterdWrapped is runAsterdEnv with asterd run by a wrapper command (e.g. prlimit ...),
// which must exec it so that signals reach asterd.
func runAsterdWrapped(t *testing.T, listen string, env, wrapper []string, args ...string) *asterd {
	t.Helper()
	ownPorts(t, args)
	a := &asterd{Addr: listen, log: &syncBuffer{}, done: make(chan struct{})}
	argv := append(append(append([]string{}, wrapper...), asterdBin), append(args, "--log-level", "debug")...)
	a.cmd = exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASTER_ADMIN_") {
			a.cmd.Env = append(a.cmd.Env, kv)
		}
	}
	a.cmd.Env = append(a.cmd.Env, env...)
	a.cmd.Stderr = a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop ends a with SIGINT (a no-op once it has ended) and shows its log if the test failed.
func (a *asterd) stop(t *testing.T) {
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Errorf("asterd did not stop on SIGINT within 10s")
	}
	if t.Failed() {
		t.Logf("asterd %v log:\n%s", a.cmd.Args, a.log.String())
	}
}

// noSecretInLog fails when any of secrets appears in a's log.
func noSecretInLog(t *testing.T, a *asterd, secrets ...string) {
	t.Helper()
	log := a.log.String()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("asterd %v logged a secret: %s", a.cmd.Args[1:3], line)
				}
			}
		}
	}
}

// A control plane without [admin] token says at start, once, that the admin API is open and
// that its RouteService serves no data plane; a data plane then gets nothing, with or without
// a token of its own, and says why.
func TestRemoteNeedsToken(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	setup := newRemoteSetup(t, servers, "")
	control := setup.startControl(t)
	waitLog(t, control, "asterd started")
	for _, line := range []string{"admin API has no token", "RouteService serves no data plane"} {
		if n := strings.Count(control.log.String(), line); n != 1 {
			t.Errorf("control plane logged %q %d times at start, want once", line, n)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
	}{{"no token", nil}, {"with a token", []string{"--token", "mine"}}} {
		t.Run(tc.name, func(t *testing.T) {
			data := setup.startData(t, tc.args...)
			waitLog(t, data, "control plane refuses to serve routes")
			if !containsLog(data, "needs [admin] token to serve remote data planes") {
				t.Errorf("the data plane's log does not say what the control plane lacks")
			}
			if containsLog(data, "route stream open") || redistest.Listening(setup.listen) {
				t.Fatalf("a data plane got routes from a control plane without a token")
			}
			data.stop(t)
			noSecretInLog(t, data, "mine")
		})
	}
}

// With [admin] token_file, the control plane serves data planes that send the token from
// --token-file or $ASTER_ADMIN_TOKEN; asterctl reads it the same ways. The token never
// appears in a log line of either plane, at debug level.
func TestRemoteTokenFileAndEnv(t *testing.T) {
	t.Parallel()
	const token = "f1le-t0ken-Zq9"
	servers := startServers(t, 1)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := newRemoteSetup(t, servers, "")
	cfg, err := os.ReadFile(setup.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "[admin]\n", "[admin]\ntoken_file = "+strconv.Quote(tokenFile)+"\n", 1))
	if err := os.WriteFile(setup.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	control := setup.startControl(t)
	waitLog(t, control, "asterd started")
	if containsLog(control, "has no token") || containsLog(control, "serves no data plane") {
		t.Errorf("control plane with token_file warned about a missing token")
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"token file", nil, []string{"--token-file", tokenFile}},
		{"env", []string{"ASTER_ADMIN_TOKEN=" + token}, nil},
		{"file wins over a wrong env", []string{"ASTER_ADMIN_TOKEN=wrong"}, []string{"--token-file", tokenFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := runAsterdEnv(t, setup.listen, tc.env, append([]string{"--role", "data", "--control-plane", setup.admin}, tc.args...)...)
			redistest.WaitListening(t, setup.listen, 10*time.Second)
			c := data.client(t)
			if err := c.Set(ctx, "tokfile:"+tc.name, "v", 0).Err(); err != nil {
				t.Fatalf("SET through the data plane: %v", err)
			}
			c.Close()
			data.stop(t)
			noSecretInLog(t, data, token)
			// The next data plane takes the same address.
			deadline := time.Now().Add(10 * time.Second)
			for redistest.Listening(setup.listen) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	// A wrong env token is refused; a flag naming an unreadable file is an error at start.
	wrong := runAsterdEnv(t, setup.listen, []string{"ASTER_ADMIN_TOKEN=wrong"}, "--role", "data", "--control-plane", setup.admin)
	waitLog(t, wrong, "refused the token")
	wrong.stop(t)
	out, err := exec.Command(asterdBin, "--role", "data", "--control-plane", setup.admin, "--token-file", filepath.Join(dir, "missing")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "token file: open ") {
		t.Errorf("unreadable --token-file: %v\n%s", err, out)
	}
	out, err = exec.Command(asterdBin, "--role", "data", "--control-plane", setup.admin, "--token", "x", "--token-file", tokenFile).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--token and --token-file: give one") {
		t.Errorf("both token flags: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"asterctl token file", nil, []string{"--token-file", tokenFile}, 0},
		{"asterctl env", []string{"ASTER_ADMIN_TOKEN=" + token}, nil, 0},
		{"asterctl without token", nil, nil, 1},
	} {
		r := asterctl(t, tc.env, append(append([]string{"--addr", setup.admin}, tc.args...), "cluster", "eject", "remote", "r1")...)
		if r.code != tc.code {
			t.Errorf("%s: %v", tc.name, r)
		}
		if tc.code == 0 {
			if r := asterctl(t, tc.env, append(append([]string{"--addr", setup.admin}, tc.args...), "cluster", "restore", "remote", "r1")...); r.code != 0 {
				t.Errorf("%s restore: %v", tc.name, r)
			}
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Errorf("%s: asterctl printed the token: %v", tc.name, r)
		}
	}
	control.stop(t)
	noSecretInLog(t, control, token)
}

// --check warns about an admin API without a token, and still passes the file: a config
// that was valid stays valid.
func TestCheckWarnsWithoutToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("t0k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001:1 a\"]\n"
	for _, tc := range []struct {
		name, admin string
		warn        bool
	}{
		{"default admin", "", true},
		{"token", "[admin]\ntoken = \"t0k\"\n", false},
		{"token file", "[admin]\ntoken_file = " + strconv.Quote(tokenFile) + "\n", false},
		{"admin off", "[admin]\nlisten_addr = \"\"\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tc.admin+cluster), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(asterdBin, "--check", "-c", path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil || !strings.Contains(string(stdout), "OK") {
				t.Fatalf("--check: %v\nstdout: %s\nstderr: %s", err, stdout, stderr.String())
			}
			warned := strings.Contains(stderr.String(), "warning: [admin] has no token") &&
				strings.Contains(stderr.String(), "needs [admin] token to serve remote data planes")
			if warned != tc.warn || strings.Count(stderr.String(), "\n") > 1 {
				t.Fatalf("--check warned %v, want %v (one line):\n%s", warned, tc.warn, stderr.String())
			}
			if strings.Contains(stderr.String(), "t0k") {
				t.Fatalf("--check printed the token: %s", stderr.String())
			}
		})
	}
}

// A --role all asterd warns at start, once each, that its admin API has no token and that its
// RouteService serves no data plane; with a token it says neither.
func TestAdminWarnsWithoutToken(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	clusters := `
[[clusters]]
name = "w"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1}, true) + `
`
	for _, tc := range []struct {
		token string
		warns int
	}{{"", 1}, {"s3cret-w4rn", 0}} {
		a, _ := startAsterdAdmin(t, tc.token, clusters)
		waitLog(t, a, "asterd started")
		for _, line := range []string{"[WARN]  asterd: admin API has no token", "[WARN]  asterd: RouteService serves no data plane"} {
			if n := strings.Count(a.log.String(), line); n != tc.warns {
				t.Errorf("token %q: %q logged %d times, want %d", tc.token, line, n, tc.warns)
			}
		}
		a.stop(t)
		if tc.token != "" {
			noSecretInLog(t, a, tc.token)
		}
	}
}
