package admin_test

import (
	"context"
	"net"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aster-proxy/aster/controlplane/admin"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// GetVersion answers the version asterd was given and the Go release it runs on, "devel"
// when it was built without one.
func TestGetVersion(t *testing.T) {
	for _, c := range []struct{ set, want string }{{"v1.2.3", "v1.2.3"}, {"", "devel"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		admin.New(admin.Config{Version: c.set}).Register(gs)
		go gs.Serve(ln)
		t.Cleanup(gs.Stop)
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		v, err := asterv1.NewAdminServiceClient(conn).GetVersion(context.Background(), &asterv1.GetVersionRequest{})
		if err != nil {
			t.Fatalf("GetVersion: %v", err)
		}
		if v.GetVersion() != c.want || v.GetGoVersion() != runtime.Version() {
			t.Errorf("GetVersion with Version %q = %q %q, want %q %q", c.set, v.GetVersion(), v.GetGoVersion(), c.want, runtime.Version())
		}
	}
}
