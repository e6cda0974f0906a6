package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// parse parses args as run does, without calling asterd, and returns the invocation.
func parse(args []string, stderr io.Writer, getenv func(string) string) (*invocation, error) {
	var got *invocation
	a := newApp(io.Discard, stderr, getenv)
	a.call = func(inv *invocation) error { got = inv; return nil }
	a.root.SetArgs(longFlagsCompat(a.root, args))
	if _, err := a.root.ExecuteC(); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, errors.New("no admin command on the line")
	}
	return got, nil
}

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		want   options
		cmd    string
		pos    []string
		reason string
	}{
		{"defaults", []string{"cluster", "list"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "list", nil, ""},
		{"env", []string{"cluster", "list"}, map[string]string{envAddr: "10.0.0.1:1", envToken: "env-tok"},
			options{addr: "10.0.0.1:1", token: "env-tok", tokenFrom: envToken, output: "table", timeout: defaultTimeout}, "list", nil, ""},
		{"flags win over env", []string{"--addr", "h:2", "--token", "flag-tok", "cluster", "list"},
			map[string]string{envAddr: "10.0.0.1:1", envToken: "env-tok"},
			options{addr: "h:2", token: "flag-tok", tokenFrom: "--token", output: "table", timeout: defaultTimeout}, "list", nil, ""},
		// Flags anywhere, as kubectl takes them.
		{"output after the command", []string{"cluster", "list", "-o", "json"}, nil,
			options{addr: defaultAddr, output: "json", timeout: defaultTimeout}, "list", nil, ""},
		{"flags after the arguments", []string{"cluster", "show", "main", "-o", "json", "--addr", "h:3"}, nil,
			options{addr: "h:3", output: "json", timeout: defaultTimeout}, "show", []string{"main"}, ""},
		{"flags between command words", []string{"cluster", "--timeout=2s", "show", "--output=json", "main"}, nil,
			options{addr: defaultAddr, output: "json", timeout: 2 * time.Second}, "show", []string{"main"}, ""},
		{"go-style single-dash long flags", []string{"-addr", "h:4", "cluster", "list", "-timeout=5s", "-tls"}, nil,
			options{addr: "h:4", output: "table", timeout: 5 * time.Second, tls: tlsOptions{on: true}}, "list", nil, ""},
		{"go-style double-dash one-letter flag", []string{"--o", "json", "cluster", "list"}, nil,
			options{addr: defaultAddr, output: "json", timeout: defaultTimeout}, "list", nil, ""},
		{"go-style double-dash count", []string{"cluster", "hotkeys", "main", "--n=3", "-o=json"}, nil,
			options{addr: defaultAddr, output: "json", timeout: defaultTimeout}, "hotkeys", []string{"main"}, ""},
		{"short output glued", []string{"cluster", "list", "-ojson"}, nil,
			options{addr: defaultAddr, output: "json", timeout: defaultTimeout}, "list", nil, ""},
		{"token after the command", []string{"cluster", "list", "--token", "t"}, nil,
			options{addr: defaultAddr, token: "t", tokenFrom: "--token", output: "table", timeout: defaultTimeout}, "list", nil, ""},
		{"version", []string{"version", "--addr", "h:5"}, nil,
			options{addr: "h:5", output: "table", timeout: defaultTimeout}, "version", nil, ""},
		{"empty token flag beats env", []string{"--token=", "cluster", "list"}, map[string]string{envToken: "env-tok"},
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "list", nil, ""},
		{"json and timeout", []string{"-o", "json", "--timeout", "3s", "cluster", "show", "main"}, nil,
			options{addr: defaultAddr, output: "json", timeout: 3 * time.Second}, "show", []string{"main"}, ""},
		{"eject reason after args", []string{"cluster", "eject", "main", "r1", "--reason", "disk full"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "eject", []string{"main", "r1"}, "disk full"},
		{"eject reason between args", []string{"cluster", "eject", "main", "--reason=maint", "127.0.0.1:6379"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "eject", []string{"main", "127.0.0.1:6379"}, "maint"},
		{"eject reason first", []string{"cluster", "eject", "-reason", "x", "main", "r2"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "eject", []string{"main", "r2"}, "x"},
		{"config get all", []string{"cluster", "config", "main"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "config", []string{"main"}, ""},
		{"config set", []string{"cluster", "config", "main", "hotkey-enabled", "yes"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "config", []string{"main", "hotkey-enabled", "yes"}, ""},
		{"hotkeys", []string{"cluster", "hotkeys", "main", "-n", "3"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "hotkeys", []string{"main"}, ""},
		{"double dash", []string{"cluster", "restore", "--", "main", "-odd"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "restore", []string{"main", "-odd"}, ""},
		{"tls flag", []string{"--tls", "cluster", "list"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout, tls: tlsOptions{on: true}}, "list", nil, ""},
		{"tls implied by a file", []string{"--tls-ca", "ca.pem", "cluster", "list"}, nil,
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout, tls: tlsOptions{on: true, ca: "ca.pem"}}, "list", nil, ""},
		{"tls env", []string{"cluster", "list"},
			map[string]string{envTLSCA: "ca.pem", envTLSCert: "c.pem", envTLSKey: "k.pem", envTLSName: "asterd.example"},
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout,
				tls: tlsOptions{on: true, ca: "ca.pem", cert: "c.pem", key: "k.pem", serverName: "asterd.example"}}, "list", nil, ""},
		{"tls env switch", []string{"cluster", "list"}, map[string]string{envTLS: "true"},
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout, tls: tlsOptions{on: true}}, "list", nil, ""},
		{"tls flags win over env", []string{"--tls-ca", "flag-ca.pem", "--tls-cert", "fc.pem", "--tls-key", "fk.pem", "cluster", "list"},
			map[string]string{envTLSCA: "ca.pem", envTLSCert: "c.pem", envTLSKey: "k.pem"},
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout,
				tls: tlsOptions{on: true, ca: "flag-ca.pem", cert: "fc.pem", key: "fk.pem"}}, "list", nil, ""},
		{"tls flag off beats env", []string{"--tls=false", "cluster", "list"}, map[string]string{envTLS: "1"},
			options{addr: defaultAddr, output: "table", timeout: defaultTimeout}, "list", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			inv, err := parse(c.args, &stderr, envOf(c.env))
			if err != nil {
				t.Fatalf("parse: %v (stderr %q)", err, stderr.String())
			}
			if inv.opts != c.want {
				t.Errorf("options %+v, want %+v", inv.opts, c.want)
			}
			if inv.name != c.cmd || strings.Join(inv.args, "|") != strings.Join(c.pos, "|") || inv.flags.reason != c.reason {
				t.Errorf("command %q args %q reason %q, want %q %q %q", inv.name, inv.args, inv.flags.reason, c.cmd, c.pos, c.reason)
			}
			if c.cmd == "hotkeys" && inv.flags.count != 3 {
				t.Errorf("-n %d, want 3", inv.flags.count)
			}
		})
	}
}

// TestUsage runs command lines that end before any call is made.
func TestUsage(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings; nil means stdout must be empty
		stderr []string // substrings; nil means stderr must be empty
	}{
		{"help", []string{"--help"}, 0, []string{"Usage:\n  asterctl [flags]\n  asterctl [command]", "ASTER_ADMIN_ADDR", "cluster eject NAME NODE [--reason R]", "--token-file", "completion bash|zsh|fish"}, nil},
		{"short help", []string{"-h"}, 0, []string{"Usage:\n  asterctl [flags]\n  asterctl [command]"}, nil},
		{"go-style help", []string{"-help"}, 0, []string{"Usage:\n  asterctl [flags]\n  asterctl [command]"}, nil},
		{"help command", []string{"help"}, 0, []string{"Usage:\n  asterctl [flags]\n  asterctl [command]"}, nil},
		{"help for a command", []string{"help", "cluster", "eject"}, 0, []string{"asterctl cluster eject NAME NODE [flags]", "--reason string"}, nil},
		{"cluster help", []string{"cluster", "--help"}, 0, []string{"asterctl cluster [command]", "restore", "Put an ejected node back"}, nil},
		{"cluster help word", []string{"cluster", "help"}, 0, []string{"asterctl cluster [command]"}, nil},
		{"eject help", []string{"cluster", "eject", "--help"}, 0, []string{"asterctl cluster eject NAME NODE [flags]", "--reason string", "--addr string"}, nil},
		{"eject help after args", []string{"cluster", "eject", "main", "-h"}, 0, []string{"cluster eject NAME NODE"}, nil},
		{"list help", []string{"cluster", "list", "--help"}, 0, []string{"asterctl cluster list [flags]"}, nil},
		{"config help", []string{"cluster", "config", "--help"}, 0, []string{"asterctl cluster config NAME [KNOB [VALUE]] [flags]"}, nil},
		{"no command", nil, 2, nil, []string{"missing command", "Usage:"}},
		{"unknown command", []string{"node"}, 2, nil, []string{`unknown command "node"`, "Usage:"}},
		{"no cluster command", []string{"cluster"}, 2, nil, []string{"missing cluster command", "asterctl cluster [command]"}},
		{"unknown cluster command", []string{"cluster", "drop"}, 2, nil, []string{`unknown cluster command "drop"`}},
		{"unknown flag", []string{"--nope", "cluster", "list"}, 2, nil, []string{"unknown flag: --nope", "Usage:"}},
		{"unknown flag after the command", []string{"cluster", "list", "--nope"}, 2, nil, []string{"unknown flag: --nope"}},
		{"bad output", []string{"-o", "yaml", "cluster", "list"}, 2, nil, []string{`-o "yaml"`}},
		{"bad output after the command", []string{"cluster", "list", "-o", "yaml"}, 2, nil, []string{`-o "yaml"`, "asterctl cluster list [flags]"}},
		{"bad timeout", []string{"--timeout", "soon", "cluster", "list"}, 2, nil, []string{"timeout", "Usage:"}},
		{"zero timeout", []string{"--timeout", "0s", "cluster", "list"}, 2, nil, []string{"must be positive"}},
		{"show without name", []string{"cluster", "show"}, 2, nil, []string{"takes 1 arguments (NAME), got 0", "asterctl cluster show NAME [flags]"}},
		{"eject one arg", []string{"cluster", "eject", "main"}, 2, nil, []string{"takes 2 arguments (NAME NODE), got 1"}},
		{"list with arg", []string{"cluster", "list", "extra"}, 2, nil, []string{"takes no arguments"}},
		{"config too many", []string{"cluster", "config", "main", "k", "v", "x"}, 2, nil, []string{"takes 1 to 3 arguments (NAME [KNOB [VALUE]]), got 4"}},
		{"config empty value", []string{"cluster", "config", "main", "k", ""}, 2, nil, []string{"VALUE must not be empty"}},
		{"reason on restore", []string{"cluster", "restore", "main", "r1", "--reason", "x"}, 2, nil, []string{"unknown flag: --reason", "asterctl cluster restore NAME NODE"}},
		{"empty name", []string{"cluster", "show", ""}, 2, nil, []string{"NAME must not be empty"}},
		{"count not a number", []string{"cluster", "slowlog", "main", "-n", "many"}, 2, nil, []string{`invalid argument "many"`}},
		{"version with argument", []string{"version", "x"}, 2, nil, []string{`unknown command "x"`}},
		{"completion without shell", []string{"completion"}, 2, nil, []string{"completion takes one shell"}},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, 2, nil, []string{`unknown shell "tcsh"`}},
		{"from-twemproxy without file", []string{"config", "from-twemproxy"}, 2, nil, []string{"takes 1 argument (FILE"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr, envOf(nil))
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			check := func(what, got string, want []string) {
				if want == nil && got != "" {
					t.Errorf("%s should be empty, got:\n%s", what, got)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s lacks %q:\n%s", what, w, got)
					}
				}
			}
			check("stdout", stdout.String(), c.stdout)
			check("stderr", stderr.String(), c.stderr)
		})
	}
}

var refresh = timestamppb.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))

func sampleCluster() *asterv1.Cluster {
	return &asterv1.Cluster{
		Name: "main", Mode: asterv1.Mode_MODE_STANDALONE, ListenAddr: "127.0.0.1:22121", ListenProto: "tcp",
		TableVersion: 7, LastRefresh: refresh,
		Nodes: []*asterv1.Node{
			{Address: "127.0.0.1:7001", Alias: "r1", Weight: 1, Role: asterv1.Role_ROLE_NODE, State: asterv1.NodeState_NODE_STATE_UP},
			{Address: "127.0.0.1:7002", Alias: "r2", Weight: 2, Role: asterv1.Role_ROLE_NODE, State: asterv1.NodeState_NODE_STATE_EJECTED,
				SetBy: "operator", Reason: "disk\tfull"},
			{Address: "127.0.0.1:7003", Weight: 1, Role: asterv1.Role_ROLE_NODE, State: asterv1.NodeState_NODE_STATE_DOWN,
				SetBy: "health", Reason: "3 pings failed", StateSince: refresh, LastError: "3 pings failed", LastErrorTime: refresh, FailedPings: 3},
		},
	}
}

func slotCluster() *asterv1.Cluster {
	return &asterv1.Cluster{
		Name: "rc", Mode: asterv1.Mode_MODE_REDIS_CLUSTER, ListenAddr: "/tmp/rc.sock", ListenProto: "unix",
		TableVersion: 12,
		Nodes: []*asterv1.Node{
			{Address: "10.0.0.1:7000", Role: asterv1.Role_ROLE_MASTER, State: asterv1.NodeState_NODE_STATE_UP,
				Slots: []*asterv1.SlotRange{{Start: 0, End: 5460}, {Start: 7000, End: 7000}}},
			{Address: "10.0.0.2:7000", Role: asterv1.Role_ROLE_REPLICA, State: asterv1.NodeState_NODE_STATE_UP},
		},
	}
}

func sentinelCluster() *asterv1.Cluster {
	return &asterv1.Cluster{
		Name: "sen", Mode: asterv1.Mode_MODE_SENTINEL, ListenAddr: "127.0.0.1:6380", ListenProto: "tcp",
		TableVersion: 4, LastRefresh: refresh,
		Nodes: []*asterv1.Node{
			{Address: "10.0.1.2:6379", Alias: "a", Group: "shard-a", Weight: 1, Role: asterv1.Role_ROLE_MASTER,
				State: asterv1.NodeState_NODE_STATE_UP, SetBy: "sentinel", StateSince: refresh},
			{Address: "10.0.1.1:6379", Alias: "a", Group: "shard-a", Weight: 1, Role: asterv1.Role_ROLE_REPLICA,
				State: asterv1.NodeState_NODE_STATE_UP, SetBy: "sentinel"},
			{Group: "shard-b", Weight: 2, Role: asterv1.Role_ROLE_MASTER, State: asterv1.NodeState_NODE_STATE_DOWN,
				SetBy: "sentinel", Reason: "no quorum of sentinels has named a master yet"},
		},
	}
}

func TestTableOutput(t *testing.T) {
	cases := []struct {
		name  string
		print func(w *bytes.Buffer)
		want  string
	}{
		{"list", func(w *bytes.Buffer) {
			printList(w, &asterv1.ListClustersResponse{Clusters: []*asterv1.Cluster{sampleCluster(), slotCluster()}})
		}, `NAME  MODE           LISTEN             NODES  UP  VERSION  LAST-REFRESH
main  standalone     127.0.0.1:22121    3      1   7        2026-03-04T05:06:07Z
rc    redis_cluster  unix:/tmp/rc.sock  2      2   12       -
`},
		{"list empty", func(w *bytes.Buffer) { printList(w, &asterv1.ListClustersResponse{}) },
			"NAME  MODE  LISTEN  NODES  UP  VERSION  LAST-REFRESH\n"},
		{"show standalone", func(w *bytes.Buffer) { printCluster(w, sampleCluster()) }, `Name:           main
Mode:           standalone
Listen:         127.0.0.1:22121
Table version:  7
Last refresh:   2026-03-04T05:06:07Z

ADDRESS         ALIAS  WEIGHT  ROLE  STATE    SINCE                 SET-BY    REASON          SLOTS
127.0.0.1:7001  r1     1       node  UP       -                     -         -               -
127.0.0.1:7002  r2     2       node  EJECTED  -                     operator  disk full       -
127.0.0.1:7003  -      1       node  DOWN     2026-03-04T05:06:07Z  health    3 pings failed  -
`},
		{"show redis cluster", func(w *bytes.Buffer) { printCluster(w, slotCluster()) }, `Name:           rc
Mode:           redis_cluster
Listen:         unix:/tmp/rc.sock
Table version:  12
Last refresh:   -

ADDRESS        ALIAS  WEIGHT  ROLE     STATE  SINCE  SET-BY  REASON  SLOTS
10.0.0.1:7000  -      0       master   UP     -      -       -       0-5460,7000
10.0.0.2:7000  -      0       replica  UP     -      -       -       -
`},
		{"show sentinel", func(w *bytes.Buffer) { printCluster(w, sentinelCluster()) }, `Name:           sen
Mode:           redis_sentinel
Listen:         127.0.0.1:6380
Table version:  4
Last refresh:   2026-03-04T05:06:07Z

GROUP    ALIAS  WEIGHT  ROLE     ADDRESS        STATE  SINCE                 REASON
shard-a  a      1       master   10.0.1.2:6379  UP     2026-03-04T05:06:07Z  -
shard-a  a      1       replica  10.0.1.1:6379  UP     -                     -
shard-b  -      2       master   -              DOWN   -                     no quorum of sentinels has named a master yet
`},
		{"node line", func(w *bytes.Buffer) { printNodes(w, sampleCluster().Nodes[1]) }, `ADDRESS         ALIAS  WEIGHT  ROLE  STATE    SINCE  SET-BY    REASON     SLOTS
127.0.0.1:7002  r2     2       node  EJECTED  -      operator  disk full  -
`},
		{"hotkeys", func(w *bytes.Buffer) {
			printHotKeys(w, &asterv1.HotKeysResponse{Enabled: true, Keys: []*asterv1.HotKey{{Key: []byte("user:1"), Count: 4096}, {Key: []byte("a\tb"), Count: 32}}})
		}, `KEY       COUNT
"user:1"  4096
"a\tb"    32
`},
		{"hotkeys off", func(w *bytes.Buffer) { printHotKeys(w, &asterv1.HotKeysResponse{}) },
			"sampling is off (HOTKEY ENABLE, or asterctl cluster config NAME hotkey-enabled yes)\nKEY  COUNT\n"},
		{"config", func(w *bytes.Buffer) {
			printKnobs(w, &asterv1.ConfigKnob{Name: "hotkey-enabled", Value: "yes"}, &asterv1.ConfigKnob{Name: "backup-request-threshold-ms", Value: "default"})
		}, `KNOB                         VALUE
hotkey-enabled               yes
backup-request-threshold-ms  default
`},
		{"reload", func(w *bytes.Buffer) {
			printReload(w, &asterv1.ReloadResponse{Added: []string{"extra", "more"}, Changed: []string{"main"}, Unchanged: []string{"other"}, ConfigVersion: 3})
		}, `added:           extra, more
removed:         -
changed:         main
unchanged:       other
config version:  3
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			c.print(&b)
			if b.String() != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), c.want)
			}
		})
	}
}

// fakeAdmin is an in-process AdminService on loopback that answers from fixed messages and
// records the authorization metadata it saw; it stands in for asterd so the client side
// (dial, metadata, output, exit codes) is tested without one.
type fakeAdmin struct {
	asterv1.UnimplementedAdminServiceServer
	auth chan string
}

func (f *fakeAdmin) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth <- strings.Join(md.Get("authorization"), ",")
}

func (f *fakeAdmin) ListClusters(ctx context.Context, _ *asterv1.ListClustersRequest) (*asterv1.ListClustersResponse, error) {
	f.record(ctx)
	return &asterv1.ListClustersResponse{Clusters: []*asterv1.Cluster{sampleCluster()}}, nil
}

func (f *fakeAdmin) GetCluster(ctx context.Context, req *asterv1.GetClusterRequest) (*asterv1.GetClusterResponse, error) {
	f.record(ctx)
	if req.GetName() != "main" {
		return nil, status.Errorf(codes.NotFound, "no cluster %q", req.GetName())
	}
	return &asterv1.GetClusterResponse{Cluster: sampleCluster()}, nil
}

func (f *fakeAdmin) EjectNode(ctx context.Context, req *asterv1.EjectNodeRequest) (*asterv1.EjectNodeResponse, error) {
	f.record(ctx)
	n := proto.Clone(sampleCluster().Nodes[0]).(*asterv1.Node)
	n.State, n.SetBy, n.Reason = asterv1.NodeState_NODE_STATE_EJECTED, "operator", req.GetReason()
	return &asterv1.EjectNodeResponse{Node: n}, nil
}

func startFake(t *testing.T) (string, *fakeAdmin) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{auth: make(chan string, 16)}
	s := grpc.NewServer()
	asterv1.RegisterAdminServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), f
}

func TestCalls(t *testing.T) {
	addr, fake := startFake(t)
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		auth   string // authorization metadata the server must see
		stdout string // substring
		stderr string // exact
	}{
		{"list via env addr", []string{"cluster", "list"}, map[string]string{envAddr: addr}, 0, "",
			"main  standalone", ""},
		{"token from env", []string{"--addr", addr, "cluster", "list"}, map[string]string{envToken: "e"}, 0, "Bearer e",
			"NAME", ""},
		{"token flag wins", []string{"--addr", addr, "--token", "f", "cluster", "list"}, map[string]string{envToken: "e"}, 0, "Bearer f",
			"NAME", ""},
		{"flag addr wins over env", []string{"--addr", addr, "cluster", "show", "main"}, map[string]string{envAddr: "127.0.0.1:1"}, 0, "",
			"Table version:  7", ""},
		{"not found", []string{"--addr", addr, "cluster", "show", "nope"}, nil, 1, "",
			"", "asterctl: NotFound: no cluster \"nope\"\n"},
		{"unimplemented", []string{"--addr", startBare(t), "cluster", "reload"}, nil, 1, "-",
			"", "asterctl: Unimplemented: method Reload not implemented\n"},
		{"eject", []string{"--addr", addr, "cluster", "eject", "main", "r1", "--reason", "maint"}, nil, 0, "",
			"127.0.0.1:7001  r1     1       node  EJECTED  -      operator  maint   -", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr, envOf(c.env))
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout.String())
			}
			if stderr.String() != c.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), c.stderr)
			}
			if c.auth != "-" {
				if got := <-fake.auth; got != c.auth {
					t.Errorf("server saw authorization %q, want %q", got, c.auth)
				}
			}
		})
	}
}

func TestTLSUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"cert without key", []string{"--tls-cert", "c.pem", "cluster", "list"}, nil, "--tls-cert and --tls-key go together"},
		{"key without cert from env", []string{"cluster", "list"}, map[string]string{envTLSKey: "k.pem"}, "--tls-cert and --tls-key go together"},
		{"bad env switch", []string{"cluster", "list"}, map[string]string{envTLS: "maybe"}, `ASTER_ADMIN_TLS="maybe": want true or false`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(c.args, &stdout, &stderr, envOf(c.env)); code != 2 || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), c.want)
			}
		})
	}
}

// startFakeTLS serves the fake AdminService over TLS, requiring client certificates.
func startFakeTLS(t *testing.T, certs *redistest.Certs) (string, *fakeAdmin) {
	t.Helper()
	cfg, err := tlsconf.Server(certs.CertFile, certs.KeyFile, certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{auth: make(chan string, 16)}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	asterv1.RegisterAdminServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), f
}

func TestCallsTLS(t *testing.T) {
	certs := redistest.GenCerts(t)
	other := redistest.GenCerts(t)
	addr, fake := startFakeTLS(t, certs)
	full := []string{"--addr", addr, "--tls-ca", certs.CAFile, "--tls-cert", certs.ClientCert, "--tls-key", certs.ClientKey}
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string // substring; "" for a success
	}{
		{"flags", append(full, "--token", "t"), nil, 0, ""},
		{"env", []string{"--addr", addr}, map[string]string{envTLSCA: certs.CAFile, envTLSCert: certs.ClientCert, envTLSKey: certs.ClientKey, envToken: "t"}, 0, ""},
		{"server name", append(full, "--tls-server-name", "localhost", "--token", "t"), nil, 0, ""},
		{"wrong server name", append(full, "--tls-server-name", "elsewhere", "--token", "t"), nil, 1, "Unavailable"},
		{"plaintext refused", []string{"--addr", addr, "--token", "t"}, nil, 1, "asterd at " + addr + " speaks TLS: add --tls"},
		{"no client cert refused", []string{"--addr", addr, "--tls-ca", certs.CAFile, "--token", "t"}, nil, 1,
			"asterd at " + addr + " asks for a client certificate ([admin] tls_ca_file): add --tls-cert FILE --tls-key FILE"},
		{"untrusted server", []string{"--addr", addr, "--tls-ca", other.CAFile, "--tls-cert", certs.ClientCert, "--tls-key", certs.ClientKey}, nil, 1, "certificate"},
		{"unreadable client cert", []string{"--addr", addr, "--tls-cert", "/nonexistent.pem", "--tls-key", certs.ClientKey}, nil, 1, "load TLS client certificate /nonexistent.pem"},
		{"unreadable CA", []string{"--addr", addr, "--tls-ca", "/nonexistent.pem"}, nil, 1, "read TLS CA file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append(c.args, "cluster", "list"), &stdout, &stderr, envOf(c.env))
			if code != c.code || !strings.Contains(stderr.String(), c.stderr) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, c.code, c.stderr, stdout.String(), stderr.String())
			}
			if c.code == 0 {
				if got := <-fake.auth; got != "Bearer t" {
					t.Errorf("server saw authorization %q over TLS", got)
				}
				if !strings.Contains(stdout.String(), "main  standalone") {
					t.Errorf("stdout:\n%s", stdout.String())
				}
			}
		})
	}
	if len(fake.auth) != 0 {
		t.Errorf("%d refused connections reached the service", len(fake.auth))
	}
}
