package e2e

import (
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

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestConfigRelativePaths: a config that names its TLS files relative to itself works from
// any working directory (asterd runs in this package's directory, --check in /), for
// --check, startup and a reload alike.
func TestConfigRelativePaths(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	servers := []*redistest.Server{redistest.StartTLS(t, certs)}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dst, src := range map[string]string{"ca.pem": certs.CAFile, "server.pem": certs.CertFile, "server-key.pem": certs.KeyFile} {
		redistest.InstallFile(t, src, filepath.Join(dir, "tls", dst), time.Time{})
	}
	cluster := func(name, listen string) string {
		return `
[[clusters]]
name = "` + name + `"
listen_addr = "` + listen + `"
cache_type = "redis"
servers = ` + serverList(servers, []int{1}, true) + `
tls_cert_file = "tls/server.pem"
tls_key_file = "tls/server-key.pem"
backend_tls = true
backend_tls_ca_file = "tls/ca.pem"
`
	}
	admin := "\n[admin]\nlisten_addr = \"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "\"\n[metrics]\nlisten_addr = \"\"\n"
	first := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	path := filepath.Join(dir, "aster.toml")
	if err := os.WriteFile(path, []byte(cluster("a", first)+admin), 0o644); err != nil {
		t.Fatal(err)
	}

	check := exec.Command(asterdBin, "--check", "--config", path)
	check.Dir = "/"
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("asterd --check from /: %v\n%s", err, out)
	}

	a := runAsterd(t, first, "--config", path)
	redistest.WaitListening(t, first, 10*time.Second)
	roundTrip := func(addr string) {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, TLSConfig: certs.ClientTLS(t, false)})
		defer c.Close()
		if err := c.Set(ctx, "rel:"+addr, "v", 0).Err(); err != nil {
			t.Fatalf("SET through %s over TLS: %v", addr, err)
		}
		if v, err := c.Get(ctx, "rel:"+addr).Result(); err != nil || v != "v" {
			t.Fatalf("GET through %s = %q, %v", addr, v, err)
		}
	}
	roundTrip(first)

	// A reload reads the same relative paths from the same place.
	second := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	if err := os.WriteFile(path, []byte(cluster("a", first)+cluster("b", second)+admin), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "configuration reloaded")
	if strings.Contains(a.log.String(), "reload refused") {
		t.Fatalf("reload refused:\n%s", a.log.String())
	}
	redistest.WaitListening(t, second, 10*time.Second)
	roundTrip(second)
}
