package remote

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
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
	"github.com/aster-proxy/aster/internal/testlog"
)

const testConfig = `
[[clusters]]
name = "cache"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
hash_method = "murmur"
servers = ["127.0.0.1:7001:1 r1", "127.0.0.1:7002:1 r2", "127.0.0.1:7003:2 r3"]
`

// recordingSink keeps every snapshot a Client applies.
type recordingSink struct {
	mu    sync.Mutex
	snaps []*route.Snapshot
	more  chan struct{}
}

func newRecordingSink() *recordingSink { return &recordingSink{more: make(chan struct{}, 1)} }

func (s *recordingSink) Apply(snap *route.Snapshot) error {
	s.mu.Lock()
	s.snaps = append(s.snaps, snap)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
	return nil
}

func (s *recordingSink) all() []*route.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.snaps)
}

// waitFor returns the first applied snapshot that ok accepts, failing after 5s.
func (s *recordingSink) waitFor(t *testing.T, what string, ok func(*route.Snapshot) bool) *route.Snapshot {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		for _, snap := range s.all() {
			if ok(snap) {
				return snap
			}
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("no snapshot %s within 5s; got %d snapshots", what, len(s.all()))
		}
	}
}

// hintSource records the hints a Server passes on.
type hintSource struct {
	*controlplane.ControlPlane
	hints chan string
}

func (h hintSource) Hint(cluster string) { h.hints <- cluster }

func newControlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.New(cfg, newRecordingSink(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// serve runs the RouteService for src with token on addr ("" for a free port) and returns the
// address and a stop function.
func serve(t *testing.T, src Source, token, addr string) (string, func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(admin.ServerOptions(token)...)
	NewServer(ServerConfig{Source: src, Token: token, Logger: testLogger(t, "server")}).Register(gs)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), gs.Stop
}

// testToken guards the RouteService of the tests that are not about the token: without one
// it serves nothing.
const testToken = "t0k"

func testLogger(t *testing.T, name string) hclog.Logger { return testlog.New(t, name, hclog.Debug) }

// startClient runs a Client until the test ends.
func startClient(t *testing.T, addr, token string, sink Sink) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Addr: addr, Token: token, Sink: sink, ID: t.Name(), MaxBackoff: 200 * time.Millisecond, Logger: testLogger(t, "client")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func ringAddrs(s *route.Snapshot) []string {
	var out []string
	for _, n := range s.Clusters[0].Table.Ring.Nodes() {
		out = append(out, n.Addr)
	}
	return out
}

func TestWatchStreamsSnapshots(t *testing.T) {
	cp := newControlPlane(t)
	addr, _ := serve(t, cp, testToken, "")
	sink := newRecordingSink()
	startClient(t, addr, testToken, sink)

	want, _ := cp.ExportSnapshot()
	first := sink.waitFor(t, "at start", func(*route.Snapshot) bool { return true })
	if first.Version != want.Version || first.Clusters[0].Table.Version != want.Clusters[0].Table.Version {
		t.Fatalf("first snapshot version %d table %d, want the control plane's %d table %d",
			first.Version, first.Clusters[0].Table.Version, want.Version, want.Clusters[0].Table.Version)
	}
	if got := ringAddrs(first); !slices.Equal(got, []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}) {
		t.Fatalf("ring nodes %v", got)
	}
	if first.Clusters[0].Listen.Addr != "127.0.0.1:7000" {
		t.Fatalf("listen addr %q", first.Clusters[0].Listen.Addr)
	}
	// Murmur crossed the wire: the data plane places keys like the control plane's ring.
	for _, k := range []string{"a", "b", "user:1", "user:2", "x"} {
		if g, w := first.Clusters[0].Table.Ring.Pick([]byte(k)), want.Clusters[0].Table.Ring.Pick([]byte(k)); g != w {
			t.Fatalf("key %q on node %d remotely, %d locally", k, g, w)
		}
	}

	if _, err := cp.Eject("cache", "r2", "test"); err != nil {
		t.Fatal(err)
	}
	ejected := sink.waitFor(t, "without r2", func(s *route.Snapshot) bool { return len(ringAddrs(s)) == 2 })
	if got := ringAddrs(ejected); !slices.Equal(got, []string{"127.0.0.1:7001", "127.0.0.1:7003"}) {
		t.Fatalf("after eject, ring nodes %v", got)
	}
	now, _ := cp.ExportSnapshot()
	if ejected.Version != now.Version || ejected.Version <= first.Version {
		t.Fatalf("after eject, version %d, want the control plane's %d (> %d)", ejected.Version, now.Version, first.Version)
	}
	versions := []uint64{}
	for _, s := range sink.all() {
		versions = append(versions, s.Version)
	}
	if !slices.IsSorted(versions) || len(slices.Compact(slices.Clone(versions))) != len(versions) {
		t.Fatalf("applied versions %v, want strictly increasing", versions)
	}
}

func TestWatchCoalescesToLatest(t *testing.T) {
	cp := newControlPlane(t)
	// Ten changes before anyone watches: the first message is already the latest state.
	for i := range 5 {
		if _, err := cp.Eject("cache", "r1", "test"); err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if _, err := cp.Restore("cache", "r1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	addr, _ := serve(t, cp, testToken, "")
	sink := newRecordingSink()
	startClient(t, addr, testToken, sink)
	want, _ := cp.ExportSnapshot()
	first := sink.waitFor(t, "at start", func(*route.Snapshot) bool { return true })
	if first.Version != want.Version || len(ringAddrs(first)) != 2 {
		t.Fatalf("first snapshot version %d with %v, want latest %d without r1", first.Version, ringAddrs(first), want.Version)
	}
}

func TestToken(t *testing.T) {
	cases := []struct {
		name        string
		clientToken string
		served      bool
	}{
		{"right token", "s3cret", true},
		{"no token", "", false},
		{"wrong token", "guess", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := newControlPlane(t)
			addr, _ := serve(t, cp, "s3cret", "")
			sink := newRecordingSink()
			startClient(t, addr, tc.clientToken, sink)
			if tc.served {
				sink.waitFor(t, "with the token", func(*route.Snapshot) bool { return true })
				return
			}
			// Several retries pass in this time (backoff at most 200ms here); none gets through.
			time.Sleep(time.Second)
			if n := len(sink.all()); n != 0 {
				t.Fatalf("%d snapshots applied without the right token", n)
			}
		})
	}
}

// Without [admin] token the RouteService serves nothing, to nobody, whatever they send: its
// snapshots carry every password. The refusal says what is missing.
func TestNoTokenServesNothing(t *testing.T) {
	cp := newControlPlane(t)
	src := hintSource{ControlPlane: cp, hints: make(chan string, 10)}
	addr, _ := serve(t, src, "", "")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs := asterv1.NewRouteServiceClient(conn)
	for _, sent := range []string{"", "anything"} {
		ctx := context.Background()
		if sent != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+sent)
		}
		stream, err := rs.Watch(ctx, &asterv1.WatchRequest{DataPlaneId: "dp"})
		if err == nil {
			var resp *asterv1.WatchResponse
			resp, err = stream.Recv()
			if resp != nil {
				t.Fatalf("token %q: Watch sent a snapshot (version %d) without [admin] token", sent, resp.GetSnapshot().GetVersion())
			}
		}
		if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "needs [admin] token to serve remote data planes") {
			t.Fatalf("token %q: Watch answered %v, want FailedPrecondition saying [admin] token is needed", sent, err)
		}
		_, err = rs.SendHint(ctx, &asterv1.SendHintRequest{Cluster: "cache", Kind: asterv1.HintKind_HINT_KIND_MOVED})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("token %q: SendHint answered %v, want FailedPrecondition", sent, err)
		}
	}
	if len(src.hints) != 0 {
		t.Fatal("a hint passed without [admin] token")
	}

	// Registered without admin.ServerOptions' interceptors, the service still checks the
	// token itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	NewServer(ServerConfig{Source: cp, Token: "s3cret"}).Register(gs)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn2, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	for _, tc := range []struct {
		token string
		code  codes.Code
	}{{"", codes.Unauthenticated}, {"guess", codes.Unauthenticated}, {"s3cret", codes.OK}} {
		ctx := context.Background()
		if tc.token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
		}
		stream, err := asterv1.NewRouteServiceClient(conn2).Watch(ctx, &asterv1.WatchRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != tc.code {
			t.Fatalf("token %q without interceptors: Watch %v, want %v", tc.token, err, tc.code)
		}
	}
}

func TestReconnectToRestartedControlPlane(t *testing.T) {
	cp := newControlPlane(t)
	for range 3 { // push the first control plane's versions past the second's
		if _, err := cp.Eject("cache", "r3", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := cp.Restore("cache", "r3"); err != nil {
			t.Fatal(err)
		}
	}
	addr, stop := serve(t, cp, testToken, "")
	sink := newRecordingSink()
	startClient(t, addr, testToken, sink)
	first := sink.waitFor(t, "from the first control plane", func(*route.Snapshot) bool { return true })
	stop()

	// While the control plane is away, nothing is applied: the data plane keeps its tables.
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.all()); n != 1 {
		t.Fatalf("%d snapshots applied, want only the first while the control plane is down", n)
	}

	// A restarted control plane counts versions from the start again.
	cp2 := newControlPlane(t)
	if v, _ := cp2.ExportSnapshot(); v.Version >= first.Version {
		t.Fatalf("test premise: restarted control plane's version %d not below %d", v.Version, first.Version)
	}
	serve(t, cp2, testToken, addr)
	if _, err := cp2.Eject("cache", "r1", "after restart"); err != nil {
		t.Fatal(err)
	}
	got := sink.waitFor(t, "from the restarted control plane without r1", func(s *route.Snapshot) bool {
		return len(ringAddrs(s)) == 2
	})
	if got.Version <= first.Version || got.Clusters[0].Table.Version <= first.Clusters[0].Table.Version {
		t.Fatalf("after restart, version %d table %d, want above %d table %d so the data plane takes it",
			got.Version, got.Clusters[0].Table.Version, first.Version, first.Clusters[0].Table.Version)
	}
}

func TestHints(t *testing.T) {
	cp := newControlPlane(t)
	src := hintSource{ControlPlane: cp, hints: make(chan string, 10)}
	addr, _ := serve(t, src, testToken, "")
	c := startClient(t, addr, testToken, newRecordingSink())
	c.Hint("cache")
	select {
	case got := <-src.hints:
		if got != "cache" {
			t.Fatalf("hint for %q, want cache", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hint never reached the control plane")
	}

	srv := NewServer(ServerConfig{Source: src, Token: testToken})
	withToken := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+testToken))
	cases := []struct {
		name string
		req  *asterv1.SendHintRequest
		code codes.Code
	}{
		{"moved", &asterv1.SendHintRequest{Cluster: "cache", Kind: asterv1.HintKind_HINT_KIND_MOVED}, codes.OK},
		{"node failing", &asterv1.SendHintRequest{Cluster: "cache", Kind: asterv1.HintKind_HINT_KIND_NODE_FAILING, Node: "127.0.0.1:7001"}, codes.OK},
		{"no cluster", &asterv1.SendHintRequest{Kind: asterv1.HintKind_HINT_KIND_MOVED}, codes.InvalidArgument},
		{"unspecified kind", &asterv1.SendHintRequest{Cluster: "cache"}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.SendHint(withToken, tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("SendHint: %v, want code %v", err, tc.code)
			}
			if tc.code == codes.OK {
				if got := <-src.hints; got != "cache" {
					t.Fatalf("hint for %q", got)
				}
			} else if len(src.hints) != 0 {
				t.Fatalf("a refused hint was passed on")
			}
		})
	}
}

// Hint never blocks, even with nothing draining the queue.
func TestHintDropsWhenFull(t *testing.T) {
	c, err := NewClient(ClientConfig{Addr: "127.0.0.1:1", Sink: newRecordingSink(), HintQueue: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 100 {
			c.Hint("cache")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Hint blocked")
	}
	if len(c.hints) != 2 {
		t.Fatalf("%d hints queued, want the queue's 2", len(c.hints))
	}
}

func TestNewClientErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  ClientConfig
	}{
		{"no address", ClientConfig{Sink: newRecordingSink()}},
		{"no sink", ClientConfig{Addr: "127.0.0.1:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewClient(tc.cfg); err == nil {
				t.Fatal("NewClient accepted an incomplete config")
			}
		})
	}
}
