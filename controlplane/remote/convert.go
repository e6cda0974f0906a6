// Package remote carries routing snapshots from a control plane to data planes that run in
// other processes, over the gRPC RouteService: Server streams the control plane's snapshots,
// Client receives them in a data-plane-only asterd and hands them to its Sink, and sends the
// data plane's hints back up.
package remote

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// ToProto converts a snapshot for the wire. hashes gives the hash method and tag of each
// standalone cluster (route.Ring does not expose them); a ring whose cluster is missing from
// hashes is an error, since a data plane would place keys differently. Versions are kept as
// they are.
func ToProto(s *route.Snapshot, hashes map[string]controlplane.RingHash) (*asterv1.Snapshot, error) {
	out := &asterv1.Snapshot{Version: s.Version, Clusters: make([]*asterv1.ClusterRoutes, 0, len(s.Clusters))}
	for _, c := range s.Clusters {
		if c.NodeConnections < 0 || c.NodeConnections > math.MaxInt32 {
			return nil, fmt.Errorf("convert cluster %q: node_connections %d out of range", c.Name, c.NodeConnections)
		}
		pc := &asterv1.ClusterRoutes{
			Name: c.Name, ListenAddr: c.ListenAddr, ListenProto: c.ListenProto,
			ReadTimeout: durationProto(c.ReadTimeout), WriteTimeout: durationProto(c.WriteTimeout),
			DialTimeout:     durationProto(c.DialTimeout),
			NodeConnections: int32(c.NodeConnections), ReadFromSlave: c.ReadFromSlave,
			BackendUsername: c.BackendUser, BackendPassword: c.BackendPassword,
			MaxConnections:    int32(min(c.MaxConnections, math.MaxInt32)),
			IdleTimeout:       durationProto(c.IdleTimeout),
			SlowlogMaxLen:     int32(min(c.SlowLogMaxLen, math.MaxInt32)),
			SlowlogSlowerThan: durationProto(c.SlowLogSlowerThan),
			TlsCertFile:       c.TLSCertFile, TlsKeyFile: c.TLSKeyFile, TlsCaFile: c.TLSCAFile,
			BackendTls: c.BackendTLS, BackendTlsCaFile: c.BackendTLSCAFile, BackendTlsServerName: c.BackendTLSServerName,
			BackendResp3: c.BackendRESP3,
		}
		pc.ClientOutputLimit = int64(c.ClientOutputLimit)
		h := c.Hotkey
		pc.Hotkey = &asterv1.Hotkey{
			SampleEvery: clamp32(h.SampleEvery), SketchWidth: clamp32(h.Width), SketchDepth: clamp32(h.Depth),
			Capacity: clamp32(h.Capacity), Decay: h.Decay,
		}
		b := c.BackupRequest
		pc.BackupRequest = &asterv1.BackupRequest{Enabled: b.Enabled, TriggerSlow: durationProto(b.TriggerSlow), Multiplier: b.Multiplier}
		for _, u := range slices.Sorted(maps.Keys(c.Users)) {
			pu := &asterv1.User{Username: u, Password: c.Users[u]}
			if r, ok := c.UserRights[u]; ok {
				pu.Commands, pu.Keys, pu.RestrictKeys = r.Commands, r.Keys, r.Keys != nil
			}
			pc.Users = append(pc.Users, pu)
		}
		if t := c.Table; t != nil {
			pc.TableVersion = t.Version
			switch {
			case t.Ring != nil:
				h, ok := hashes[c.Name]
				if !ok {
					return nil, fmt.Errorf("convert cluster %q: no hash method known for its ring", c.Name)
				}
				r := &asterv1.Ring{HashMethod: h.Method, HashTag: h.Tag}
				for _, n := range t.Ring.Nodes() {
					r.Nodes = append(r.Nodes, &asterv1.RingNode{Address: n.Addr, Alias: n.Name, Weight: int32(n.Weight)})
				}
				pc.Table = &asterv1.ClusterRoutes_Ring{Ring: r}
			case t.Slots != nil:
				m := &asterv1.SlotMap{}
				for _, r := range t.Slots.Ranges() {
					pr := &asterv1.SlotMapRange{Start: uint32(r.Start), End: uint32(r.End), Master: r.Master.Addr}
					for _, rep := range r.Replicas {
						pr.Replicas = append(pr.Replicas, rep.Addr)
					}
					m.Ranges = append(m.Ranges, pr)
				}
				pc.Table = &asterv1.ClusterRoutes_Slots{Slots: m}
			default:
				return nil, fmt.Errorf("convert cluster %q: table version %d has neither ring nor slot map", c.Name, t.Version)
			}
		}
		out.Clusters = append(out.Clusters, pc)
	}
	return out, nil
}

// FromProto rebuilds a snapshot from the wire: rings with route.NewRing and their hash
// method and tag, slot maps with route.NewSlotMap (node IDs are not carried). Versions are kept
// as they are. A cluster without a table gets a nil Table, as a Redis Cluster before its first
// fetch.
func FromProto(p *asterv1.Snapshot) (*route.Snapshot, error) {
	out := &route.Snapshot{Version: p.GetVersion(), Clusters: make([]route.ClusterSpec, 0, len(p.GetClusters()))}
	for _, pc := range p.GetClusters() {
		c := route.ClusterSpec{
			Name: pc.GetName(), ListenAddr: pc.GetListenAddr(), ListenProto: pc.GetListenProto(),
			ReadTimeout: pc.GetReadTimeout().AsDuration(), WriteTimeout: pc.GetWriteTimeout().AsDuration(),
			DialTimeout:     pc.GetDialTimeout().AsDuration(),
			NodeConnections: int(pc.GetNodeConnections()), ReadFromSlave: pc.GetReadFromSlave(),
			BackendUser: pc.GetBackendUsername(), BackendPassword: pc.GetBackendPassword(),
			MaxConnections: int(pc.GetMaxConnections()), IdleTimeout: pc.GetIdleTimeout().AsDuration(),
			SlowLogMaxLen: int(pc.GetSlowlogMaxLen()), SlowLogSlowerThan: pc.GetSlowlogSlowerThan().AsDuration(),
			TLSCertFile: pc.GetTlsCertFile(), TLSKeyFile: pc.GetTlsKeyFile(), TLSCAFile: pc.GetTlsCaFile(),
			BackendTLS: pc.GetBackendTls(), BackendTLSCAFile: pc.GetBackendTlsCaFile(), BackendTLSServerName: pc.GetBackendTlsServerName(),
			BackendRESP3: pc.GetBackendResp3(),
		}
		// Bounded as the config file bounds it; 0 (an older control plane) takes the default.
		c.ClientOutputLimit = int(min(max(pc.GetClientOutputLimit(), 0), 1<<30))
		if h := pc.GetHotkey(); h != nil {
			c.Hotkey = route.HotkeySpec{
				SampleEvery: int(h.GetSampleEvery()), Width: int(h.GetSketchWidth()), Depth: int(h.GetSketchDepth()),
				Capacity: int(h.GetCapacity()), Decay: h.GetDecay(),
			}
		}
		if b := pc.GetBackupRequest(); b != nil {
			c.BackupRequest = route.BackupRequest{Enabled: b.GetEnabled(), TriggerSlow: b.GetTriggerSlow().AsDuration(), Multiplier: b.GetMultiplier()}
		}
		if us := pc.GetUsers(); len(us) > 0 {
			c.Users = make(map[string]string, len(us))
			for _, u := range us {
				c.Users[u.GetUsername()] = u.GetPassword()
				if u.GetCommands() == "" && !u.GetRestrictKeys() {
					continue
				}
				if c.UserRights == nil {
					c.UserRights = map[string]route.UserRights{}
				}
				r := route.UserRights{Commands: u.GetCommands()}
				if u.GetRestrictKeys() {
					r.Keys = append([]string{}, u.GetKeys()...)
				}
				c.UserRights[u.GetUsername()] = r
			}
		}
		switch t := pc.GetTable().(type) {
		case *asterv1.ClusterRoutes_Ring:
			hash, err := route.Hash(t.Ring.GetHashMethod())
			if err != nil {
				return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
			}
			nodes := make([]route.Node, 0, len(t.Ring.GetNodes()))
			for _, n := range t.Ring.GetNodes() {
				nodes = append(nodes, route.Node{Addr: n.GetAddress(), Name: n.GetAlias(), Weight: int(n.GetWeight())})
			}
			ring, err := route.NewRing(nodes, hash, t.Ring.GetHashTag())
			if err != nil {
				return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
			}
			c.Table = &route.Table{Version: pc.GetTableVersion(), Ring: ring}
		case *asterv1.ClusterRoutes_Slots:
			ranges := make([]route.SlotRange, 0, len(t.Slots.GetRanges()))
			for _, r := range t.Slots.GetRanges() {
				if r.GetStart() >= route.Slots || r.GetEnd() >= route.Slots {
					return nil, fmt.Errorf("convert cluster %q: slot range %d-%d beyond %d", c.Name, r.GetStart(), r.GetEnd(), route.Slots-1)
				}
				sr := route.SlotRange{Start: uint16(r.GetStart()), End: uint16(r.GetEnd()), Master: route.SlotNode{Addr: r.GetMaster()}}
				for _, rep := range r.GetReplicas() {
					sr.Replicas = append(sr.Replicas, route.SlotNode{Addr: rep})
				}
				ranges = append(ranges, sr)
			}
			m, err := route.NewSlotMap(ranges)
			if err != nil {
				return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
			}
			c.Table = &route.Table{Version: pc.GetTableVersion(), Slots: m}
		}
		out.Clusters = append(out.Clusters, c)
	}
	return out, nil
}

// durationProto leaves a zero duration unset ("none" on the wire).
func durationProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// clamp32 bounds a count for an int32 field.
func clamp32(n int) int32 { return int32(max(min(n, math.MaxInt32), 0)) }
