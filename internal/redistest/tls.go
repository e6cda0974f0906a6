package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Certs are PEM files of a throwaway CA and the certificates it signed, for TLS tests.
type Certs struct {
	CAFile                string
	CertFile, KeyFile     string // server: 127.0.0.1 and localhost
	ClientCert, ClientKey string
}

// GenCerts makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate.
func GenCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aster test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	c := &Certs{CAFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(key)
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cf, "CERTIFICATE", der)
		writePEM(t, kf, "EC PRIVATE KEY", kd)
		return cf, kf
	}
	c.CertFile, c.KeyFile = issue("server", 2, x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return c
}

// InstallFile copies src over dst, as a certificate rotation would, and gives it mtime as its
// modification time unless zero (so that a change shows whatever the clock's resolution).
func InstallFile(t testing.TB, src, dst string, mtime time.Time) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(dst, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// ClientTLS is a client configuration that trusts c's CA, for 127.0.0.1, presenting c's
// client certificate when withCert.
func (c *Certs) ClientTLS(t testing.TB, withCert bool) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("read CA %s: %v", c.CAFile, err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if withCert {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// StartTLS runs redis-server with only a TLS port (no plain port), with certs, not asking
// clients for certificates.
func StartTLS(t testing.TB, c *Certs, extra ...string) *Server {
	t.Helper()
	Need(t, "redis-server")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{t: t, Port: FreePort(t), Dir: t.TempDir()}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		s.args = append([]string{"--tls-port", strconv.Itoa(s.Port), "--tls-cert-file", c.CertFile,
			"--tls-key-file", c.KeyFile, "--tls-ca-cert-file", c.CAFile, "--tls-auth-clients", "no"}, extra...)
		s.tls = c
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("start redis-server with TLS: %v", lastErr)
	return nil
}

// dialCheck connects to the server the way it listens (TLS or not).
func (s *Server) dialCheck() (net.Conn, error) {
	if s.tls == nil {
		return net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(s.tls.CAFile)
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 200 * time.Millisecond}
	return tls.DialWithDialer(d, "tcp", s.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
}
