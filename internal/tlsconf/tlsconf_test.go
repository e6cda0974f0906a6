package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// handshake connects a client configured by ccfg to a listener configured by scfg and returns
// the server certificate the client saw, or the handshake's error (either side's).
func handshake(t *testing.T, scfg, ccfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer nc.Close()
		srvErr <- nc.(*tls.Conn).Handshake()
	}()
	nc, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	if err != nil {
		<-srvErr
		return nil, err
	}
	defer nc.Close()
	// TLS 1.3: the client's Dial returns before the server has checked its certificate.
	if err := <-srvErr; err != nil {
		return nil, err
	}
	return nc.ConnectionState().PeerCertificates[0], nil
}

// TestServerRotatesFiles: a listener picks up a replaced certificate, key and client CA at
// its next handshake after the recheck interval, without being rebuilt; files that fail to
// load leave the last good ones in use.
func TestServerRotatesFiles(t *testing.T) {
	old, next := redistest.GenCerts(t), redistest.GenCerts(t)
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	t0 := time.Now().Add(-time.Hour)
	redistest.InstallFile(t, old.CertFile, cert, t0)
	redistest.InstallFile(t, old.KeyFile, key, t0)
	redistest.InstallFile(t, old.CAFile, ca, t0)
	saved := recheckEvery
	recheckEvery = 0 // look at the files at every handshake
	defer func() { recheckEvery = saved }()

	scfg, err := Server(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	first, err := handshake(t, scfg, old.ClientTLS(t, true))
	if err != nil {
		t.Fatalf("handshake with the first files: %v", err)
	}
	if _, err := handshake(t, scfg, next.ClientTLS(t, true)); err == nil {
		t.Fatal("a client certificate of the next CA was accepted before the rotation")
	}
	if _, err := handshake(t, scfg, old.ClientTLS(t, false)); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}

	t1 := t0.Add(time.Minute)
	redistest.InstallFile(t, next.CertFile, cert, t1)
	redistest.InstallFile(t, next.KeyFile, key, t1)
	redistest.InstallFile(t, next.CAFile, ca, t1)
	got, err := handshake(t, scfg, next.ClientTLS(t, true))
	if err != nil {
		t.Fatalf("handshake after the rotation (next CA's client, next server certificate): %v", err)
	}
	if got.Equal(first) {
		t.Fatal("the listener still presents the first certificate")
	}
	if _, err := handshake(t, scfg, old.ClientTLS(t, true)); err == nil {
		t.Fatal("a client certificate of the replaced CA is still accepted")
	}

	// A broken key file: the last good files stay in use.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(key, t1.Add(time.Minute), t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, scfg, next.ClientTLS(t, true)); err != nil {
		t.Fatalf("handshake with a broken key file on disk: %v (the last good files should serve)", err)
	}
}

// TestServerRecheckInterval: within the recheck interval the files are not looked at.
func TestServerRecheckInterval(t *testing.T) {
	old, next := redistest.GenCerts(t), redistest.GenCerts(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	t0 := time.Now().Add(-time.Hour)
	redistest.InstallFile(t, old.CertFile, cert, t0)
	redistest.InstallFile(t, old.KeyFile, key, t0)
	scfg, err := Server(cert, key, "") // recheckEvery is a second
	if err != nil {
		t.Fatal(err)
	}
	redistest.InstallFile(t, next.CertFile, cert, t0.Add(time.Minute))
	redistest.InstallFile(t, next.KeyFile, key, t0.Add(time.Minute))
	if _, err := handshake(t, scfg, old.ClientTLS(t, false)); err != nil {
		t.Fatalf("handshake right after the change: %v (the old certificate should still serve)", err)
	}
}
