package remote

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/bearer"
)

// Source is what Server needs of the control plane; *controlplane.ControlPlane is one.
// Its methods must be safe for concurrent use and must not block on the network.
type Source interface {
	// Snapshot subscribes to changes: changed receives (coalesced) whenever a newer snapshot
	// exists; stop ends the subscription.
	Snapshot() (snap *route.Snapshot, changed <-chan struct{}, stop func())
	// ExportSnapshot returns the latest snapshot and the hash settings of its rings.
	ExportSnapshot() (*route.Snapshot, map[string]controlplane.RingHash)
	// Hint asks for an early topology refresh of a cluster; it never blocks.
	Hint(cluster string)
}

var _ Source = (*controlplane.ControlPlane)(nil)

// ServerConfig configures a Server.
type ServerConfig struct {
	Source Source
	// Token is the admin token ([admin] token). Snapshots carry every client and backend
	// password, so without a token the service refuses every call (NoTokenMessage); with one,
	// every call must carry it, checked here too so that the service is guarded whatever
	// server it is registered on.
	Token  string
	Logger hclog.Logger // default hclog.NewNullLogger()
}

// NoTokenMessage is the answer (FailedPrecondition) of a RouteService that has no token, and
// what asterd says about it at start and in --check.
const NoTokenMessage = "the control plane needs [admin] token to serve remote data planes: routing snapshots carry client and backend passwords"

// Server implements asterv1.RouteServiceServer over a control plane. Its methods are safe for
// concurrent use; each Watch stream runs on its own goroutine. It serves only with a token
// (ServerConfig.Token), which it checks itself; registered on the same grpc.Server as the
// AdminService, the bearer-token interceptors of admin.ServerOptions check it first.
type Server struct {
	asterv1.UnimplementedRouteServiceServer
	src   Source
	token string
	log   hclog.Logger
}

// NewServer returns the RouteService for cfg.Source.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Server{src: cfg.Source, token: cfg.Token, log: cfg.Logger.Named("remote")}
}

// authorize refuses a call unless the service has a token and ctx carries it.
func (s *Server) authorize(ctx context.Context) error {
	if s.token == "" {
		return status.Error(codes.FailedPrecondition, NoTokenMessage)
	}
	return bearer.Check(ctx, s.token)
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { asterv1.RegisterRouteServiceServer(r, s) }

// Watch sends the current snapshot at once, then the latest one whenever it changes, until the
// client goes away. Changes that happen while a send is in progress coalesce: a slow data plane
// skips intermediate snapshots and gets the newest, which is complete by itself.
func (s *Server) Watch(req *asterv1.WatchRequest, stream grpc.ServerStreamingServer[asterv1.WatchResponse]) error {
	ctx := stream.Context()
	if err := s.authorize(ctx); err != nil {
		return err
	}
	_, changed, stop := s.src.Snapshot()
	defer stop()
	log := s.log.With("data_plane", req.GetDataPlaneId())
	if p, ok := peer.FromContext(ctx); ok {
		log = log.With("peer", p.Addr.String())
	}
	log.Info("data plane watching")
	var sent uint64
	first := true
	for {
		snap, hashes := s.src.ExportSnapshot()
		if snap != nil && (first || snap.Version > sent) {
			p, err := ToProto(snap, hashes)
			if err != nil {
				log.Error("snapshot not sendable", "version", snap.Version, "error", err)
				return status.Errorf(codes.Internal, "snapshot version %d: %v", snap.Version, err)
			}
			if err := stream.Send(&asterv1.WatchResponse{Snapshot: p}); err != nil {
				log.Info("data plane gone", "error", err)
				return err
			}
			log.Debug("snapshot sent", "version", snap.Version)
			sent, first = snap.Version, false
		}
		select {
		case <-ctx.Done():
			log.Info("data plane gone", "error", ctx.Err())
			return status.FromContextError(ctx.Err()).Err()
		case <-changed:
		}
	}
}

// SendHint passes a data plane's hint to the control plane: both kinds ask for an early
// topology refresh of a Redis Cluster. Standalone clusters ignore hints, NODE_FAILING
// included: their health checker pings every node and ejects a failing one by itself. Hints for
// unknown clusters are ignored too (the data plane may be a snapshot behind a reload). Like
// Watch, it needs the token: only a data plane that may watch has anything to hint.
func (s *Server) SendHint(ctx context.Context, req *asterv1.SendHintRequest) (*asterv1.SendHintResponse, error) {
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	if req.GetCluster() == "" {
		return nil, status.Error(codes.InvalidArgument, "hint: cluster is required")
	}
	switch req.GetKind() {
	case asterv1.HintKind_HINT_KIND_MOVED, asterv1.HintKind_HINT_KIND_NODE_FAILING:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "hint for cluster %q: kind %v is not a hint", req.GetCluster(), req.GetKind())
	}
	s.log.Debug("hint received", "cluster", req.GetCluster(), "kind", req.GetKind().String(), "node", req.GetNode())
	s.src.Hint(req.GetCluster())
	return &asterv1.SendHintResponse{}, nil
}
