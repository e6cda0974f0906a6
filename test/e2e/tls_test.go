package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestTLSBothSides runs redis-servers that speak only TLS behind an asterd whose listener
// speaks TLS and requires client certificates; health pings go over TLS too.
func TestTLSBothSides(t *testing.T) {
	// Not parallel: with ping_interval 100 ms and ping_fail_limit 2, a loaded CPU ejects a node
	// and moves keys between a SET and its GET.
	certs := redistest.GenCerts(t)
	servers := []*redistest.Server{redistest.StartTLS(t, certs), redistest.StartTLS(t, certs)}
	a := startAsterd(t, `
[[clusters]]
name = "tls"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
tls_cert_file = `+strconv.Quote(certs.CertFile)+`
tls_key_file = `+strconv.Quote(certs.KeyFile)+`
tls_ca_file = `+strconv.Quote(certs.CAFile)+`
backend_tls = true
backend_tls_ca_file = `+strconv.Quote(certs.CAFile)+`
ping_fail_limit = 2
ping_interval = 100
`)
	good := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, TLSConfig: certs.ClientTLS(t, true)})
	defer good.Close()
	for i := 0; i < 50; i++ {
		k := spreadKey("tls:", i)
		if err := good.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET over TLS to TLS backends: %v", err)
		}
		if v, err := good.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
	// Without a client certificate, and in plain text, nothing is served.
	noCert := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, DialTimeout: 2 * time.Second,
		TLSConfig: certs.ClientTLS(t, false)})
	defer noCert.Close()
	if err := noCert.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	plain := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain-text client was served by a TLS listener")
	}
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(a.log.String(), "node ejected") {
		t.Fatalf("a TLS backend was ejected: health pings did not use TLS\n%s", a.log.String())
	}
}

// TestTLSCertificateRotation: certificate, key and client CA files replaced on disk (a renewal)
// are served to new connections without a restart or reload; connections made before keep
// going.
func TestTLSCertificateRotation(t *testing.T) {
	t.Parallel()
	old, next := redistest.GenCerts(t), redistest.GenCerts(t)
	dir := t.TempDir()
	files := map[string]string{"cert.pem": old.CertFile, "key.pem": old.KeyFile, "ca.pem": old.CAFile}
	for name, src := range files {
		redistest.InstallFile(t, src, filepath.Join(dir, name), time.Time{})
	}
	srv := redistest.Start(t)
	a := startAsterd(t, `
[[clusters]]
name = "tls"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList([]*redistest.Server{srv}, []int{1}, true)+`
tls_cert_file = `+strconv.Quote(filepath.Join(dir, "cert.pem"))+`
tls_key_file = `+strconv.Quote(filepath.Join(dir, "key.pem"))+`
tls_ca_file = `+strconv.Quote(filepath.Join(dir, "ca.pem"))+`
`)
	client := func(c *redistest.Certs) *redis.Client {
		rc := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, DialTimeout: 2 * time.Second, PoolSize: 1,
			TLSConfig: c.ClientTLS(t, true)})
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	before := client(old)
	if err := before.Set(ctx, "rot", "1", 0).Err(); err != nil {
		t.Fatalf("SET with the first certificates: %v", err)
	}
	if err := client(next).Ping(ctx).Err(); err == nil {
		t.Fatal("a client of the next CA was served before the rotation")
	}

	later := time.Now().Add(time.Minute) // a new modification time, whatever the clock's resolution
	for name, src := range map[string]string{"cert.pem": next.CertFile, "key.pem": next.KeyFile, "ca.pem": next.CAFile} {
		redistest.InstallFile(t, src, filepath.Join(dir, name), later)
	}
	after := client(next)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := after.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificates were not picked up: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, err := before.Get(ctx, "rot").Result(); err != nil || v != "1" {
		t.Fatalf("a connection made before the rotation: GET = %q, %v", v, err)
	}
	if err := client(old).Ping(ctx).Err(); err == nil {
		t.Fatal("a new client of the replaced CA is still served")
	}
}

// TestTLSConfigErrors: bad TLS settings are caught by --check with the key and line.
func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/bad.toml"
	os.WriteFile(path, []byte("[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:2\"]\ntls_cert_file = \"/nonexistent.pem\"\ntls_key_file = \"/nonexistent-key.pem\"\nbackend_tls_ca_file = \"x\"\n"), 0o644)
	r := asterdCheck(t, path)
	for _, want := range []string{"bad.toml:6", "tls_cert_file", "bad.toml:8", "backend_tls_ca_file: needs backend_tls = true"} {
		if !strings.Contains(r, want) {
			t.Errorf("--check output lacks %q:\n%s", want, r)
		}
	}
}

// asterdCheck runs asterd --check on a file and returns its output; it must exit 1.
func asterdCheck(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(asterdBin, "--check", "--config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("asterd --check on a bad file: %v\n%s", err, out)
	}
	return string(out)
}
