package admin_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/admin"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/controlplane/remote"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// startTLSAdmin serves the AdminService and the RouteService over TLS, as asterd does, with
// client certificates required when caFile is set.
func startTLSAdmin(t *testing.T, token string, certs *redistest.Certs, caFile string) string {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.New(cfg, &recordingSink{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := admin.TLSOption(certs.CertFile, certs.KeyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append(admin.ServerOptions(token), opt)...)
	admin.New(admin.Config{ControlPlane: cp}).Register(gs)
	remote.NewServer(remote.ServerConfig{Source: cp, Token: token}).Register(gs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// callList makes one ListClusters call with creds and token and returns its error.
func callList(t *testing.T, addr string, creds credentials.TransportCredentials, token string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	resp, err := asterv1.NewAdminServiceClient(conn).ListClusters(ctx, &asterv1.ListClustersRequest{})
	if err == nil && len(resp.GetClusters()) != 1 {
		t.Fatalf("ListClusters over TLS = %v", resp)
	}
	return err
}

func tlsCreds(t *testing.T, caFile, certFile, keyFile string) credentials.TransportCredentials {
	t.Helper()
	cfg, err := tlsconf.ClientWithCert(caFile, "", certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

func TestAdminTLS(t *testing.T) {
	certs := redistest.GenCerts(t)
	other := redistest.GenCerts(t) // a CA that signed neither side
	serverOnly := startTLSAdmin(t, "s3cret", certs, "")
	mutual := startTLSAdmin(t, "s3cret", certs, certs.CAFile)

	withCert := tlsCreds(t, certs.CAFile, certs.ClientCert, certs.ClientKey)
	noCert := tlsCreds(t, certs.CAFile, "", "")
	cases := []struct {
		name  string
		addr  string
		creds credentials.TransportCredentials
		token string
		code  codes.Code
		msg   string // in the error message
	}{
		{"server TLS", serverOnly, noCert, "s3cret", codes.OK, ""},
		{"server TLS, client cert unasked", serverOnly, withCert, "s3cret", codes.OK, ""},
		{"server TLS, token still required", serverOnly, noCert, "", codes.Unauthenticated, "bearer token"},
		{"server TLS, wrong token", serverOnly, noCert, "guess", codes.Unauthenticated, "bearer token"},
		{"plaintext client refused", serverOnly, insecure.NewCredentials(), "s3cret", codes.Unavailable, ""},
		{"untrusted server", serverOnly, tlsCreds(t, other.CAFile, "", ""), "s3cret", codes.Unavailable, "certificate"},
		{"client cert", mutual, withCert, "s3cret", codes.OK, ""},
		{"client cert, token still required", mutual, withCert, "", codes.Unauthenticated, "bearer token"},
		{"no client cert refused", mutual, noCert, "s3cret", codes.Unavailable, ""}, // TLS 1.3: the refusal may show as a broken pipe
		{"client cert of another CA refused", mutual, tlsCreds(t, certs.CAFile, other.ClientCert, other.ClientKey), "s3cret", codes.Unavailable, ""},
		{"plaintext client refused by mTLS", mutual, insecure.NewCredentials(), "s3cret", codes.Unavailable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := callList(t, c.addr, c.creds, c.token)
			if got := status.Code(err); got != c.code {
				t.Fatalf("code %v (%v), want %v", got, err, c.code)
			}
			if c.msg != "" && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q lacks %q", err, c.msg)
			}
		})
	}
}

// chanSink passes the snapshots a remote.Client applies to the test.
type chanSink chan *route.Snapshot

func (c chanSink) Apply(s *route.Snapshot) error {
	select {
	case c <- s:
	default:
	}
	return nil
}

// TestRouteServiceOverTLS: a data plane's remote.Client with a client certificate gets
// snapshots from a control plane whose admin API requires one; without the certificate it
// gets none.
func TestRouteServiceOverTLS(t *testing.T) {
	certs := redistest.GenCerts(t)
	addr := startTLSAdmin(t, "tok", certs, certs.CAFile)
	watch := func(certFile, keyFile string) *route.Snapshot {
		cfg, err := tlsconf.ClientWithCert(certs.CAFile, "", certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		sink := make(chanSink, 1)
		c, err := remote.NewClient(remote.ClientConfig{Addr: addr, Token: "tok", TLS: cfg, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		select {
		case s := <-sink:
			return s
		case <-time.After(time.Second):
			return nil
		}
	}
	if s := watch(certs.ClientCert, certs.ClientKey); s == nil || len(s.Clusters) != 1 {
		t.Fatalf("no snapshot over TLS with a client certificate: %v", s)
	}
	if s := watch("", ""); s != nil {
		t.Fatalf("got a snapshot without a client certificate: %v", s)
	}
}

func TestTLSOptionErrors(t *testing.T) {
	certs := redistest.GenCerts(t)
	if _, err := admin.TLSOption(certs.CertFile, certs.CAFile, ""); err == nil || !strings.HasPrefix(err.Error(), "admin API: load TLS certificate") {
		t.Errorf("a CA as key: %v", err)
	}
	if _, err := admin.TLSOption(certs.CertFile, certs.KeyFile, certs.KeyFile); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a key as CA: %v", err)
	}
}
