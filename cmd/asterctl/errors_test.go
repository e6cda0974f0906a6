package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/aster-proxy/aster/controlplane/admin"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/redistest"
)

// startFakeToken serves the fake AdminService behind the admin API's own token check.
func startFakeToken(t *testing.T, token string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(admin.ServerOptions(token)...)
	asterv1.RegisterAdminServiceServer(s, &fakeAdmin{auth: make(chan string, 16)})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// TestErrorsExplained: the failures a person meets first say what to do, not what gRPC saw.
func TestErrorsExplained(t *testing.T) {
	certs := redistest.GenCerts(t)
	tlsAddr, _ := startFakeTLS(t, certs)
	plainAddr, _ := startFake(t)
	tokenAddr := startFakeToken(t, "right")
	closed := "127.0.0.1:" + func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		return port
	}()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole of stderr
	}{
		{"plaintext to a TLS port", []string{"--addr", tlsAddr, "cluster", "list"}, nil,
			"asterctl: asterd at " + tlsAddr + " speaks TLS: add --tls (and --tls-ca FILE unless its certificate is signed by a system root; --tls-cert/--tls-key if it asks for a client certificate)\n"},
		{"TLS to a plaintext port", []string{"--addr", plainAddr, "--tls-ca", certs.CAFile, "cluster", "list"}, nil,
			"asterctl: asterd at " + plainAddr + " does not speak TLS: drop --tls and the --tls-* flags (and ASTER_ADMIN_TLS*), or give its [admin] section tls_cert_file and tls_key_file\n"},
		{"connection refused", []string{"cluster", "list"}, map[string]string{envAddr: closed},
			"asterctl: cannot reach asterd at " + closed + ": connection refused (is asterd running, with [admin] listen_addr = \"" + closed + "\"?)\n"},
		{"missing token", []string{"--addr", tokenAddr, "cluster", "list"}, nil,
			"asterctl: asterd at " + tokenAddr + " wants a bearer token ([admin] token): give --token-file FILE, or set ASTER_ADMIN_TOKEN (--token T works too, but shows in ps)\n"},
		{"wrong token from env", []string{"--addr", tokenAddr, "cluster", "list"}, map[string]string{envToken: "wrong"},
			"asterctl: asterd at " + tokenAddr + " refused the bearer token from ASTER_ADMIN_TOKEN: missing or wrong bearer token\n"},
		{"wrong token flag", []string{"cluster", "list", "--addr", tokenAddr, "--token", "wrong"}, nil,
			"asterctl: asterd at " + tokenAddr + " refused the bearer token from --token: missing or wrong bearer token\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(c.args, &stdout, &stderr, envOf(c.env)); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stderr.String() != c.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), c.want)
			}
			if strings.Contains(stderr.String(), "right") {
				t.Errorf("stderr shows a token: %s", stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--addr", tokenAddr, "--token", "right", "cluster", "list"}, &stdout, &stderr, envOf(nil)); code != 0 {
		t.Errorf("right token: exit %d: %s", code, stderr.String())
	}
}
