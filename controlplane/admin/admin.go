// Package admin is the gRPC AdminService: operators list clusters and their nodes, eject and
// restore nodes, and reload the configuration of a running asterd (asterctl is its client).
//
// Concurrency: gRPC calls each handler on a goroutine of its own; the Server keeps no state
// but its configuration, and what it reads and changes (the control plane, the data plane)
// is safe for concurrent use.
package admin

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/hotkey"
	"github.com/aster-proxy/aster/dataplane/proxy"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/bearer"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// Config configures the AdminService.
type Config struct {
	ControlPlane *controlplane.ControlPlane
	// Reload re-reads the configuration file and applies it (the same path SIGHUP takes).
	Reload func() (controlplane.ReloadResult, error)
	// DataPlane is the data plane in this process, which keeps the slow logs, hot keys and
	// live settings; nil when none runs here (--role control): those RPCs then answer
	// FailedPrecondition, saying where to ask instead.
	DataPlane DataPlane
	// Version is asterd's version, as --version prints it; GetVersion answers "devel" when
	// it is empty.
	Version string
	Logger  hclog.Logger
}

// DataPlane is what the AdminService reads and changes in the data plane of its process;
// *proxy.Server is one. Its types are the data plane's, converted to protobuf here only.
type DataPlane interface {
	// SlowLog returns up to n of a cluster's slow commands, newest first (n < 0: all); ok
	// false for an unknown cluster.
	SlowLog(cluster string, n int) (entries []proxy.SlowEntry, ok bool)
	// HotKeys returns up to n of a cluster's hottest keys (n < 0: all) and whether sampling
	// is on; ok false for an unknown cluster.
	HotKeys(cluster string, n int) (keys []hotkey.Hot, enabled, ok bool)
	// ClusterKnobs returns a cluster's live knobs matching a glob pattern ("" all); ok false
	// for an unknown cluster.
	ClusterKnobs(cluster, pattern string) (knobs []proxy.Knob, ok bool)
	// SetClusterKnob sets one live knob and returns it as now set; the error is
	// proxy.ErrUnknownCluster or says what is wrong with the knob or its value.
	SetClusterKnob(cluster, name, value string) (proxy.Knob, error)
}

var _ DataPlane = (*proxy.Server)(nil)

// Server implements asterv1.AdminServiceServer. Its methods are safe for concurrent use.
type Server struct {
	asterv1.UnimplementedAdminServiceServer
	cfg Config
	log hclog.Logger
}

// New returns the AdminService for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Server{cfg: cfg, log: cfg.Logger.Named("admin")}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { asterv1.RegisterAdminServiceServer(r, s) }

// ListClusters returns every cluster with its nodes.
func (s *Server) ListClusters(context.Context, *asterv1.ListClustersRequest) (*asterv1.ListClustersResponse, error) {
	resp := &asterv1.ListClustersResponse{}
	for _, c := range s.cfg.ControlPlane.Clusters() {
		resp.Clusters = append(resp.Clusters, clusterProto(c))
	}
	return resp, nil
}

// GetCluster returns one cluster; NotFound when there is no such cluster.
func (s *Server) GetCluster(_ context.Context, req *asterv1.GetClusterRequest) (*asterv1.GetClusterResponse, error) {
	c, err := s.cfg.ControlPlane.Cluster(req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &asterv1.GetClusterResponse{Cluster: clusterProto(c)}, nil
}

// Reload re-reads the configuration file; a bad file is refused with InvalidArgument and
// nothing changes.
func (s *Server) Reload(context.Context, *asterv1.ReloadRequest) (*asterv1.ReloadResponse, error) {
	res, err := s.cfg.Reload()
	if err != nil {
		s.log.Warn("reload refused", "error", err)
		return nil, toStatus(err)
	}
	return &asterv1.ReloadResponse{
		Added: res.Added, Removed: res.Removed, Changed: res.Changed, Unchanged: res.Unchanged,
		ConfigVersion: res.Version,
	}, nil
}

// EjectNode takes a node out of its cluster's ring until RestoreNode.
func (s *Server) EjectNode(_ context.Context, req *asterv1.EjectNodeRequest) (*asterv1.EjectNodeResponse, error) {
	if req.GetCluster() == "" || req.GetNode() == "" {
		return nil, status.Error(codes.InvalidArgument, "cluster and node are required")
	}
	n, err := s.cfg.ControlPlane.Eject(req.GetCluster(), req.GetNode(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &asterv1.EjectNodeResponse{Node: nodeProto(n)}, nil
}

// RestoreNode undoes EjectNode.
func (s *Server) RestoreNode(_ context.Context, req *asterv1.RestoreNodeRequest) (*asterv1.RestoreNodeResponse, error) {
	if req.GetCluster() == "" || req.GetNode() == "" {
		return nil, status.Error(codes.InvalidArgument, "cluster and node are required")
	}
	n, err := s.cfg.ControlPlane.Restore(req.GetCluster(), req.GetNode())
	if err != nil {
		return nil, toStatus(err)
	}
	return &asterv1.RestoreNodeResponse{Node: nodeProto(n)}, nil
}

// SlowLog returns a cluster's slow commands.
func (s *Server) SlowLog(_ context.Context, req *asterv1.SlowLogRequest) (*asterv1.SlowLogResponse, error) {
	if s.cfg.DataPlane == nil {
		return nil, s.noDataPlane(req.GetCluster(), "the slow log", "SLOWLOG GET [count]")
	}
	n := int(req.GetCount())
	if n == 0 {
		n = 10
	}
	entries, ok := s.cfg.DataPlane.SlowLog(req.GetCluster(), n)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "cluster %q: not found", req.GetCluster())
	}
	resp := &asterv1.SlowLogResponse{}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, &asterv1.SlowLogEntry{
			Id: e.ID, Time: timestamppb.New(e.Time), Duration: durationpb.New(e.Duration),
			Args: e.Args, Client: e.Client,
		})
	}
	return resp, nil
}

// HotKeys returns a cluster's hottest keys.
func (s *Server) HotKeys(_ context.Context, req *asterv1.HotKeysRequest) (*asterv1.HotKeysResponse, error) {
	if s.cfg.DataPlane == nil {
		return nil, s.noDataPlane(req.GetCluster(), "the hot keys", "HOTKEY GET [count]")
	}
	n := int(req.GetCount())
	if n == 0 {
		n = 10
	}
	keys, enabled, ok := s.cfg.DataPlane.HotKeys(req.GetCluster(), n)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "cluster %q: not found", req.GetCluster())
	}
	resp := &asterv1.HotKeysResponse{Enabled: enabled}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &asterv1.HotKey{Key: []byte(k.Key), Count: k.Count})
	}
	return resp, nil
}

// GetClusterConfig returns a cluster's live knobs.
func (s *Server) GetClusterConfig(_ context.Context, req *asterv1.GetClusterConfigRequest) (*asterv1.GetClusterConfigResponse, error) {
	if s.cfg.DataPlane == nil {
		return nil, s.noDataPlane(req.GetCluster(), "the live settings", "CONFIG GET cluster."+req.GetCluster()+".*")
	}
	knobs, ok := s.cfg.DataPlane.ClusterKnobs(req.GetCluster(), req.GetPattern())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "cluster %q: not found", req.GetCluster())
	}
	resp := &asterv1.GetClusterConfigResponse{}
	for _, k := range knobs {
		resp.Knobs = append(resp.Knobs, &asterv1.ConfigKnob{Name: k.Name, Value: k.Value})
	}
	return resp, nil
}

// SetClusterConfig sets one live knob of a cluster.
func (s *Server) SetClusterConfig(_ context.Context, req *asterv1.SetClusterConfigRequest) (*asterv1.SetClusterConfigResponse, error) {
	if s.cfg.DataPlane == nil {
		return nil, s.noDataPlane(req.GetCluster(), "the live settings",
			"CONFIG SET cluster."+req.GetCluster()+".<knob> <value> on each data plane (or set it in the configuration file and reload: that reaches them all)")
	}
	k, err := s.cfg.DataPlane.SetClusterKnob(req.GetCluster(), req.GetName(), req.GetValue())
	switch {
	case errors.Is(err, proxy.ErrUnknownCluster):
		return nil, status.Errorf(codes.NotFound, "cluster %q: not found", req.GetCluster())
	case err != nil:
		return nil, status.Errorf(codes.InvalidArgument, "cluster %q: %v", req.GetCluster(), err)
	}
	s.log.Info("live setting changed", "cluster", req.GetCluster(), "knob", k.Name, "value", k.Value)
	return &asterv1.SetClusterConfigResponse{Knob: &asterv1.ConfigKnob{Name: k.Name, Value: k.Value}}, nil
}

// noDataPlane is the answer, without a data plane in this process (--role control), to an
// RPC about state each data plane keeps for itself: what, and where to ask instead. An
// unknown cluster is NotFound, as with a data plane.
func (s *Server) noDataPlane(cluster, what, command string) error {
	where := "its listen_addr"
	if s.cfg.ControlPlane != nil {
		c, err := s.cfg.ControlPlane.Cluster(cluster)
		if err != nil {
			return toStatus(err)
		}
		where = c.ListenAddr
	}
	return status.Errorf(codes.FailedPrecondition,
		"this asterd is the control plane (--role control) and runs no data plane; each --role data asterd it feeds keeps %s of cluster %q for itself: ask one on the cluster's listener (%s on its host) with %s",
		what, cluster, where, command)
}

// GetVersion tells which asterd answers: its version and the Go release it was built with.
func (s *Server) GetVersion(context.Context, *asterv1.GetVersionRequest) (*asterv1.GetVersionResponse, error) {
	v := s.cfg.Version
	if v == "" {
		v = "devel"
	}
	return &asterv1.GetVersionResponse{Version: v, GoVersion: runtime.Version()}, nil
}

// toStatus maps control-plane errors to gRPC codes with their message.
func toStatus(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, controlplane.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, controlplane.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, controlplane.ErrUnsupported):
		code = codes.FailedPrecondition
	case errors.Is(err, controlplane.ErrReloadFailed):
		code = codes.FailedPrecondition
	}
	return status.Error(code, err.Error())
}

func clusterProto(c controlplane.ClusterStatus) *asterv1.Cluster {
	pc := &asterv1.Cluster{
		Name: c.Name, ListenAddr: c.ListenAddr, ListenProto: c.ListenProto,
		TableVersion: c.TableVersion, Mode: asterv1.Mode_MODE_STANDALONE,
	}
	switch c.CacheType {
	case config.CacheRedisCluster:
		pc.Mode = asterv1.Mode_MODE_REDIS_CLUSTER
	case config.CacheRedisSentinel:
		pc.Mode = asterv1.Mode_MODE_SENTINEL
	}
	if !c.LastRefresh.IsZero() {
		pc.LastRefresh = timestamppb.New(c.LastRefresh)
	}
	for _, n := range c.Nodes {
		pc.Nodes = append(pc.Nodes, nodeProto(n))
	}
	return pc
}

func nodeProto(n controlplane.NodeStatus) *asterv1.Node {
	pn := &asterv1.Node{
		Address: n.Addr, Alias: n.Alias, Weight: int32(n.Weight), Reason: n.Reason, SetBy: n.SetBy,
		Group: n.Group,
	}
	switch n.Role {
	case controlplane.RoleNode:
		pn.Role = asterv1.Role_ROLE_NODE
	case controlplane.RoleMaster:
		pn.Role = asterv1.Role_ROLE_MASTER
	case controlplane.RoleReplica:
		pn.Role = asterv1.Role_ROLE_REPLICA
	}
	switch n.State {
	case controlplane.StateUp:
		pn.State = asterv1.NodeState_NODE_STATE_UP
	case controlplane.StateEjected:
		pn.State = asterv1.NodeState_NODE_STATE_EJECTED
	case controlplane.StateDown:
		pn.State = asterv1.NodeState_NODE_STATE_DOWN
	}
	for _, r := range n.Slots {
		pn.Slots = append(pn.Slots, &asterv1.SlotRange{Start: uint32(r[0]), End: uint32(r[1])})
	}
	if !n.Since.IsZero() {
		pn.StateSince = timestamppb.New(n.Since)
	}
	if n.LastError != "" {
		pn.LastError, pn.LastErrorTime = n.LastError, timestamppb.New(n.LastErrorAt)
	}
	pn.FailedPings = uint32(max(n.FailedPings, 0))
	return pn
}

// ServerOptions returns the gRPC server options that require "authorization: Bearer <token>"
// on every RPC when token is set (compared in constant time); none when it is empty.
func ServerOptions(token string) []grpc.ServerOption {
	if token == "" {
		return nil
	}
	check := func(ctx context.Context) error { return bearer.Check(ctx, token) }
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// TLSOption returns the gRPC server option that makes the admin API speak TLS with
// certFile/keyFile and, when caFile is set, require client certificates signed by it: a
// client without one (or a plaintext client) fails its handshake before any RPC, the bearer
// token is still checked on top.
func TLSOption(certFile, keyFile, caFile string) (grpc.ServerOption, error) {
	cfg, err := tlsconf.Server(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	return grpc.Creds(credentials.NewTLS(cfg)), nil
}
