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
)

// Server returns the configuration of a listener that presents certFile/keyFile and, when
// caFile is set, requires client certificates signed by it.
func Server(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := pool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
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
