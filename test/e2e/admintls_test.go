package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// adminTLSKeys are the [admin] lines that make the admin API speak TLS and require client
// certificates of certs' CA.
func adminTLSKeys(certs *redistest.Certs) string {
	return "tls_cert_file = " + strconv.Quote(certs.CertFile) + "\ntls_key_file = " + strconv.Quote(certs.KeyFile) +
		"\ntls_ca_file = " + strconv.Quote(certs.CAFile) + "\n"
}

// keyBody is a line from the middle of a PEM key file: what a log that leaked the key
// would contain.
func keyBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[1]
}

func TestAsterctlOverAdminTLS(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	other := redistest.GenCerts(t)
	servers := startServers(t, 1)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterd(t, "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = "+strconv.Quote(admin)+
		"\ntoken = \"s3cret-tok\"\n"+adminTLSKeys(certs)+`
[[clusters]]
name = "sec"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, true)+`
`)
	redistest.WaitListening(t, admin, 10*time.Second)

	tlsFlags := []string{"--tls-ca", certs.CAFile, "--tls-cert", certs.ClientCert, "--tls-key", certs.ClientKey}
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string // in stdout on success, in stderr on failure
	}{
		{"tls, client cert and token", nil, append(tlsFlags, "--token", "s3cret-tok"), 0, "sec"},
		{"all from env", []string{"ASTER_ADMIN_ADDR=" + admin, "ASTER_ADMIN_TOKEN=s3cret-tok", "ASTER_ADMIN_TLS_CA=" + certs.CAFile,
			"ASTER_ADMIN_TLS_CERT=" + certs.ClientCert, "ASTER_ADMIN_TLS_KEY=" + certs.ClientKey}, nil, 0, "sec"},
		{"token still required", nil, tlsFlags, 1, "wants a bearer token"},
		{"plaintext refused", nil, []string{"--token", "s3cret-tok"}, 1, "speaks TLS: add --tls"},
		{"no client cert refused", nil, []string{"--tls-ca", certs.CAFile, "--token", "s3cret-tok"}, 1, "asks for a client certificate"},
		{"client cert of another CA refused", nil, []string{"--tls-ca", certs.CAFile, "--tls-cert", other.ClientCert,
			"--tls-key", other.ClientKey, "--token", "s3cret-tok"}, 1, "Unavailable"},
		{"server not trusted", nil, []string{"--tls-ca", other.CAFile, "--tls-cert", certs.ClientCert,
			"--tls-key", certs.ClientKey, "--token", "s3cret-tok"}, 1, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.env == nil {
				args = append([]string{"--addr", admin}, args...)
			}
			r := asterctl(t, c.env, append(args, "cluster", "list")...)
			out := r.stdout
			if c.code != 0 {
				out = r.stderr
			}
			if r.code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("want exit %d with %q, got %v", c.code, c.want, r)
			}
		})
	}
	// The rest of the API works over TLS too (eject changes state, show reports it).
	ctl := append([]string{"--addr", admin, "--token", "s3cret-tok"}, tlsFlags...)
	if r := asterctl(t, nil, append(ctl, "cluster", "eject", "sec", "r1", "--reason", "tls")...); r.code != 0 || !strings.Contains(r.stdout, "EJECTED") {
		t.Fatalf("eject over TLS: %v", r)
	}
	if r := asterctl(t, nil, append(ctl, "cluster", "show", "sec")...); r.code != 0 || !strings.Contains(r.stdout, "EJECTED") {
		t.Fatalf("show over TLS: %v", r)
	}

	log := a.log.String()
	if !strings.Contains(log, "tls=true") || !strings.Contains(log, "client_cert_required=true") {
		t.Errorf("the admin API's start line does not say it requires TLS and client certificates:\n%s", log)
	}
	for _, secret := range []string{"s3cret-tok", keyBody(t, certs.KeyFile), keyBody(t, certs.ClientKey)} {
		if strings.Contains(log, secret) {
			t.Errorf("asterd's log holds a secret (%q)", secret)
		}
	}
}

// TestRemoteDataPlaneOverAdminTLS: a --role data asterd gets its tables from a control plane
// whose admin API speaks TLS and requires client certificates, and serves clients; one
// without a client certificate gets nothing and serves nothing.
func TestRemoteDataPlaneOverAdminTLS(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	servers := startServers(t, 3)
	setup := newRemoteSetup(t, servers, "tok")
	cfg, err := os.ReadFile(setup.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("[admin]\n"), []byte("[admin]\n"+adminTLSKeys(certs)), 1)
	if err := os.WriteFile(setup.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	setup.startControl(t)

	// Without a client certificate: no tables, so no listener.
	noCert := setup.startData(t, "--token", "tok", "--tls-ca", certs.CAFile)
	deadline := time.Now().Add(10 * time.Second)
	for !containsLog(noCert, "route stream lost") {
		if time.Now().After(deadline) {
			t.Fatalf("data plane without a client certificate logged no failure")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if redistest.Listening(setup.listen) || containsLog(noCert, "route stream open") {
		t.Fatalf("data plane without a client certificate got tables")
	}
	_ = noCert.cmd.Process.Signal(os.Interrupt)
	<-noCert.done

	data := setup.startData(t, "--token", "tok", "--tls-ca", certs.CAFile, "--tls-cert", certs.ClientCert, "--tls-key", certs.ClientKey)
	redistest.WaitListening(t, setup.listen, 10*time.Second)
	c := data.client(t)
	if err := c.Set(ctx, "tls:remote", "ok", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "tls:remote").Result(); err != nil || v != "ok" {
		t.Fatalf("GET through a data plane fed over TLS: %q, %v", v, err)
	}
	if !containsLog(data, "client_cert=true") {
		t.Errorf("data plane's start line does not report its client certificate")
	}
	if strings.Contains(data.log.String(), keyBody(t, certs.ClientKey)) {
		t.Errorf("data plane's log holds its client key")
	}
}

// TestAdminTLSFlagsNeedRoleData: the control-plane TLS flags are the data role's; elsewhere
// they are a usage error, not silently ignored.
func TestAdminTLSFlagsNeedRoleData(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--config", "x.toml", "--tls-ca", "ca.pem"},
		{"--role", "control", "--config", "x.toml", "--tls"},
		{"--role", "data", "--control-plane", "127.0.0.1:1", "--tls-cert", "c.pem"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(asterdBin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "--tls") {
			t.Errorf("asterd %q: %v, stderr %q; want exit 2 naming the --tls flags", args, err, stderr.String())
		}
	}
}
