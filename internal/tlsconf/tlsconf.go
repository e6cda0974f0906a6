// Package tlsconf builds crypto/tls configurations from the file names the configuration
// gives, the same way for every side that needs one (client listeners, backend, health and
// topology connections).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Server returns the configuration of a listener that presents certFile/keyFile and, when
// caFile is set, requires client certificates signed by it. The files are read again when they
// change (looked at, at a handshake, at most once a second), so that certificates and the
// CA can be rotated without a restart; until new files load without error, the last good ones
// stay in use.
func Server(certFile, keyFile, caFile string) (*tls.Config, error) {
	f := &serverFiles{files: [3]string{certFile, keyFile, caFile}}
	if err := f.load(); err != nil {
		return nil, err
	}
	f.checked = time.Now()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.certificate}
	if caFile != "" {
		// The handshake's own verification uses a fixed ClientCAs pool; verifying here lets
		// the pool change. A client with no certificate is still refused by the handshake.
		cfg.ClientAuth, cfg.VerifyPeerCertificate = tls.RequireAnyClientCert, f.verifyClient
	}
	return cfg, nil
}

// recheckEvery is how often, at most, a Server configuration looks for changed files.
var recheckEvery = time.Second

// serverFiles are a listener's certificate, key and client CA files and what was loaded
// from them.
type serverFiles struct {
	files [3]string // certificate, key, CA ("" for none)

	mu      sync.Mutex // guards checked and stamps
	checked time.Time
	stamps  [3]string // size and modification time of each file at the last load

	cert atomic.Pointer[tls.Certificate]
	pool atomic.Pointer[x509.CertPool]
}

func (f *serverFiles) load() error {
	stamps := f.stampsNow()
	cert, err := tls.LoadX509KeyPair(f.files[0], f.files[1])
	if err != nil {
		return fmt.Errorf("load TLS certificate %s / key %s: %w", f.files[0], f.files[1], err)
	}
	if f.files[2] != "" {
		p, err := pool(f.files[2])
		if err != nil {
			return err
		}
		f.pool.Store(p)
	}
	f.cert.Store(&cert)
	f.stamps = stamps
	return nil
}

func (f *serverFiles) stampsNow() [3]string {
	var st [3]string
	for i, name := range f.files {
		if fi, err := os.Stat(name); name != "" && err == nil {
			st[i] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return st
}

// refresh reloads the files when they changed since the last load; a failed load keeps the
// old ones (and is tried again at the next check).
func (f *serverFiles) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < recheckEvery {
		return
	}
	f.checked = time.Now()
	if f.stampsNow() != f.stamps {
		_ = f.load()
	}
}

func (f *serverFiles) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.refresh()
	return f.cert.Load(), nil
}

// verifyClient checks a client's certificate chain against the current CA, as
// tls.RequireAndVerifyClientCert would against a fixed one.
func (f *serverFiles) verifyClient(raw [][]byte, _ [][]*x509.Certificate) error {
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("tls: client certificate: %w", err)
		}
		certs[i] = c
	}
	opts := x509.VerifyOptions{
		Roots: f.pool.Load(), Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: client certificate: %w", err)
	}
	return nil
}

// Client returns the configuration of a connection to a TLS server: verified against caFile
// (the system roots when empty), expecting serverName (the dialled host when empty).
func Client(caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := pool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// ClientWithCert is Client that also presents certFile/keyFile to servers that ask for a
// client certificate; no certificate when both are empty.
func ClientWithCert(caFile, serverName, certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a TLS client certificate needs both its certificate and its key file")
	}
	cfg, err := Client(caFile, serverName)
	if err != nil || certFile == "" {
		return cfg, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS client certificate %s / key %s: %w", certFile, keyFile, err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// ForHost returns cfg with ServerName set to host when cfg names none, so that one cluster
// configuration serves connections to many nodes.
func ForHost(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil || cfg.ServerName != "" {
		return cfg
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}

func pool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", caFile)
	}
	return p, nil
}
