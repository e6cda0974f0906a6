package admin_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/admin"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// recordingSink keeps the last snapshot the control plane published.
type recordingSink struct{ last *route.Snapshot }

func (s *recordingSink) Apply(snap *route.Snapshot) error { s.last = snap; return nil }

const testConfig = `
[[clusters]]
name = "cache"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
servers = ["127.0.0.1:7001:1 r1", "127.0.0.1:7002:1 r2"]
`

func startAdmin(t *testing.T, token string) (asterv1.AdminServiceClient, *recordingSink) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	cp, err := controlplane.New(cfg, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(admin.ServerOptions(token)...)
	admin.New(admin.Config{ControlPlane: cp, Reload: func() (controlplane.ReloadResult, error) {
		return cp.Reload(cfg)
	}}).Register(gs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return asterv1.NewAdminServiceClient(conn), sink
}

func ringAddrs(s *recordingSink) []string {
	var out []string
	for _, n := range s.last.Clusters[0].Table.Ring.Nodes() {
		out = append(out, n.Addr)
	}
	return out
}

func TestEjectRestoreThroughGRPC(t *testing.T) {
	cl, sink := startAdmin(t, "")
	ctx := context.Background()

	list, err := cl.ListClusters(ctx, &asterv1.ListClustersRequest{})
	if err != nil || len(list.Clusters) != 1 || len(list.Clusters[0].Nodes) != 2 {
		t.Fatalf("ListClusters = %v, %v", list, err)
	}
	if m := list.Clusters[0].Mode; m != asterv1.Mode_MODE_STANDALONE {
		t.Errorf("mode %v", m)
	}

	ej, err := cl.EjectNode(ctx, &asterv1.EjectNodeRequest{Cluster: "cache", Node: "r2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	if n := ej.Node; n.Address != "127.0.0.1:7002" || n.State != asterv1.NodeState_NODE_STATE_EJECTED || n.SetBy != "operator" || n.Reason != "maintenance" {
		t.Fatalf("ejected node = %v", n)
	}
	if ej.Node.StateSince == nil {
		t.Errorf("ejected node without state_since: %v", ej.Node)
	}
	if got := ringAddrs(sink); len(got) != 1 || got[0] != "127.0.0.1:7001" {
		t.Fatalf("ring after eject = %v", got)
	}
	got, err := cl.GetCluster(ctx, &asterv1.GetClusterRequest{Name: "cache"})
	if err != nil || got.Cluster.Nodes[1].State != asterv1.NodeState_NODE_STATE_EJECTED {
		t.Fatalf("GetCluster after eject = %v, %v", got, err)
	}

	// A reload of an unchanged file keeps the operator's decision.
	if _, err := cl.Reload(ctx, &asterv1.ReloadRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := ringAddrs(sink); len(got) != 1 {
		t.Fatalf("ring after reload = %v: the eject did not hold", got)
	}

	rs, err := cl.RestoreNode(ctx, &asterv1.RestoreNodeRequest{Cluster: "cache", Node: "127.0.0.1:7002"})
	if err != nil || rs.Node.State != asterv1.NodeState_NODE_STATE_UP {
		t.Fatalf("RestoreNode = %v, %v", rs, err)
	}
	if got := ringAddrs(sink); len(got) != 2 {
		t.Fatalf("ring after restore = %v", got)
	}
}

func TestErrorCodes(t *testing.T) {
	cl, _ := startAdmin(t, "")
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"unknown cluster", func() error {
			_, err := cl.GetCluster(ctx, &asterv1.GetClusterRequest{Name: "nope"})
			return err
		}, codes.NotFound},
		{"unknown node", func() error {
			_, err := cl.EjectNode(ctx, &asterv1.EjectNodeRequest{Cluster: "cache", Node: "r9"})
			return err
		}, codes.NotFound},
		{"slow log without a data plane here", func() error {
			_, err := cl.SlowLog(ctx, &asterv1.SlowLogRequest{Cluster: "cache"})
			return err
		}, codes.FailedPrecondition},
		{"hot keys without a data plane here", func() error {
			_, err := cl.HotKeys(ctx, &asterv1.HotKeysRequest{Cluster: "cache"})
			return err
		}, codes.FailedPrecondition},
		{"config get without a data plane here", func() error {
			_, err := cl.GetClusterConfig(ctx, &asterv1.GetClusterConfigRequest{Cluster: "cache"})
			return err
		}, codes.FailedPrecondition},
		{"config set without a data plane here", func() error {
			_, err := cl.SetClusterConfig(ctx, &asterv1.SetClusterConfigRequest{Cluster: "cache", Name: "hotkey-enabled", Value: "yes"})
			return err
		}, codes.FailedPrecondition},
		{"missing node", func() error {
			_, err := cl.EjectNode(ctx, &asterv1.EjectNodeRequest{Cluster: "cache"})
			return err
		}, codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := status.Code(c.call()); got != c.code {
				t.Fatalf("code %v, want %v", got, c.code)
			}
		})
	}
}

// TestNoDataPlaneSaysWhereToAsk: without a data plane in the process (--role control), the
// RPCs about state each data plane keeps say so, and where and how to ask a data plane.
func TestNoDataPlaneSaysWhereToAsk(t *testing.T) {
	cl, _ := startAdmin(t, "")
	ctx := context.Background()
	cases := []struct {
		name, command string
		call          func(cluster string) error
	}{
		{"slowlog", "SLOWLOG GET", func(c string) error {
			_, err := cl.SlowLog(ctx, &asterv1.SlowLogRequest{Cluster: c})
			return err
		}},
		{"hotkeys", "HOTKEY GET", func(c string) error {
			_, err := cl.HotKeys(ctx, &asterv1.HotKeysRequest{Cluster: c})
			return err
		}},
		{"config get", "CONFIG GET cluster.cache.*", func(c string) error {
			_, err := cl.GetClusterConfig(ctx, &asterv1.GetClusterConfigRequest{Cluster: c})
			return err
		}},
		{"config set", "CONFIG SET cluster.cache.<knob> <value>", func(c string) error {
			_, err := cl.SetClusterConfig(ctx, &asterv1.SetClusterConfigRequest{Cluster: c, Name: "hotkey-enabled", Value: "yes"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := status.Convert(c.call("cache"))
			if st.Code() != codes.FailedPrecondition {
				t.Fatalf("code %v (%v), want FailedPrecondition", st.Code(), st.Message())
			}
			for _, want := range []string{"control plane (--role control)", "--role data", `cluster "cache"`, "127.0.0.1:7000", c.command} {
				if !strings.Contains(st.Message(), want) {
					t.Errorf("message lacks %q: %s", want, st.Message())
				}
			}
			if code := status.Code(c.call("nope")); code != codes.NotFound {
				t.Errorf("unknown cluster: code %v, want NotFound", code)
			}
		})
	}
}

func TestToken(t *testing.T) {
	cl, _ := startAdmin(t, "s3cret")
	cases := []struct {
		name, header string
		code         codes.Code
	}{
		{"none", "", codes.Unauthenticated},
		{"wrong", "Bearer nope", codes.Unauthenticated},
		{"not bearer", "s3cret", codes.Unauthenticated},
		{"right", "Bearer s3cret", codes.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.header)
			}
			_, err := cl.ListClusters(ctx, &asterv1.ListClustersRequest{})
			if got := status.Code(err); got != c.code {
				t.Fatalf("code %v (%v), want %v", got, err, c.code)
			}
		})
	}
}
