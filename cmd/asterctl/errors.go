package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeTimeout bounds the dials explain makes to find out why a call failed.
const probeTimeout = 2 * time.Second

// explain turns a failed call into a message a person can act on. gRPC reports a refused
// connection, or a plaintext client talking to a TLS port, as "Unavailable" with transport
// details ("error reading server preface: EOF"); explain dials the address once more to tell
// which it was. Other statuses keep gRPC's "Code: message" form that scripts may match.
func (o options) explain(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.Unavailable:
		if msg := o.probe(); msg != "" {
			return errors.New(msg)
		}
	case codes.Unauthenticated:
		if o.token == "" {
			return fmt.Errorf("asterd at %s wants a bearer token ([admin] token): give --token-file FILE, or set %s (--token T works too, but shows in ps)", o.addr, envToken)
		}
		return fmt.Errorf("asterd at %s refused the bearer token from %s: %s", o.addr, o.tokenFrom, s.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("asterd at %s did not answer within --timeout %v: %s", o.addr, o.timeout, s.Message())
	}
	return fmt.Errorf("%s: %s", s.Code(), s.Message())
}

// probe dials o.addr to explain an Unavailable call: "" when the dial tells nothing new.
func (o options) probe() string {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.Dial("tcp", o.addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Sprintf("cannot reach asterd at %s: connection refused (is asterd running, with [admin] listen_addr = %q?)", o.addr, o.addr)
		}
		return fmt.Sprintf("cannot reach asterd at %s: %v", o.addr, err)
	}
	c.SetDeadline(time.Now().Add(probeTimeout))
	speaksTLS, wantsCert := tlsHandshakes(c)
	switch {
	case speaksTLS && !o.tls.on:
		return fmt.Sprintf("asterd at %s speaks TLS: add --tls (and --tls-ca FILE unless its certificate is signed by a system root; --tls-cert/--tls-key if it asks for a client certificate)", o.addr)
	case !speaksTLS && o.tls.on:
		return fmt.Sprintf("asterd at %s does not speak TLS: drop --tls and the --tls-* flags (and ASTER_ADMIN_TLS*), or give its [admin] section tls_cert_file and tls_key_file", o.addr)
	case wantsCert && o.tls.cert == "":
		return fmt.Sprintf("asterd at %s asks for a client certificate ([admin] tls_ca_file): add --tls-cert FILE --tls-key FILE", o.addr)
	}
	return ""
}

// tlsHandshakes reports whether the peer on c answers a TLS ClientHello as a TLS server
// would (a finished handshake or a TLS alert), and whether it then refuses a client without
// a certificate (TLS 1.3 says so right after the handshake). It sends nothing else and trusts
// nothing; the certificate is not checked because only the protocol is being asked. c is
// closed.
func tlsHandshakes(c net.Conn) (speaksTLS, wantsCert bool) {
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // a protocol probe that sends no data
	defer tc.Close()
	err := tc.Handshake()
	if err == nil {
		// A server that wants a certificate we did not send alerts at once; one that does
		// not waits for the HTTP/2 preface, so a short wait is enough to tell.
		_ = tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = tc.Read(make([]byte, 1))
		return true, err != nil && strings.Contains(err.Error(), "certificate required")
	}
	// A TLS alert from the peer ("remote error: tls: handshake failure"): it speaks TLS.
	return strings.Contains(err.Error(), "remote error: tls:"), strings.Contains(err.Error(), "certificate required")
}
