package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// Relative file paths in a config file are taken from the file's directory, whatever the
// working directory (systemd starts asterd in /): the TLS files of a cluster and of [admin],
// backend_tls_ca_file, token_file and a unix socket path. Absolute paths stay as written.
func TestLoadResolvesRelativePathsAgainstConfigDir(t *testing.T) {
	certs := redistest.GenCerts(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dst, src := range map[string]string{"tls/ca.pem": certs.CAFile, "tls/server.pem": certs.CertFile, "tls/server-key.pem": certs.KeyFile} {
		redistest.InstallFile(t, src, filepath.Join(dir, dst), time.Time{})
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := `
[[clusters]]
name = "tls"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
servers = ["127.0.0.1:7001"]
tls_cert_file = "tls/server.pem"
tls_key_file = "./tls/server-key.pem"
tls_ca_file = "tls/ca.pem"
backend_tls = true
backend_tls_ca_file = "tls/ca.pem"

[[clusters]]
name = "sock"
listen_proto = "unix"
listen_addr = "run/aster.sock"
cache_type = "redis"
servers = ["127.0.0.1:7002"]
tls_cert_file = "` + certs.CertFile + `"
tls_key_file = "` + certs.KeyFile + `"

[admin]
token_file = "token"
tls_cert_file = "tls/server.pem"
tls_key_file = "tls/server-key.pem"
`
	path := filepath.Join(dir, "aster.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // elsewhere: none of the relative paths exists from here

	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load from another working directory: %v", err)
	}
	at := func(rel string) string { return filepath.Join(dir, rel) }
	tls, sock := cfg.Clusters[0], cfg.Clusters[1]
	for _, c := range []struct{ name, got, want string }{
		{"tls_cert_file", tls.TLSCertFile, at("tls/server.pem")},
		{"tls_key_file", tls.TLSKeyFile, at("tls/server-key.pem")},
		{"tls_ca_file", tls.TLSCAFile, at("tls/ca.pem")},
		{"backend_tls_ca_file", tls.BackendTLSCAFile, at("tls/ca.pem")},
		{"unix listen_addr", sock.ListenAddr, at("run/aster.sock")},
		{"absolute tls_cert_file", sock.TLSCertFile, certs.CertFile},
		{"admin tls_cert_file", cfg.Admin.TLSCertFile, at("tls/server.pem")},
		{"admin tls_key_file", cfg.Admin.TLSKeyFile, at("tls/server-key.pem")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Admin.Token != "s3cret" {
		t.Errorf("token from token_file = %q, want the file's", cfg.Admin.Token)
	}

	// Parse names no directory: its relative paths are the working directory's, and here
	// they name nothing.
	if _, err := Parse([]byte(body), "aster.toml"); err == nil || !strings.Contains(err.Error(), "tls_cert_file") {
		t.Fatalf("Parse from another working directory = %v, want the missing TLS files reported", err)
	}
}
