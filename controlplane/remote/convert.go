// Package remote carries routing snapshots from a control plane to data planes that run in
// other processes, over the gRPC RouteService: Server streams the control plane's snapshots,
// Client receives them in a data-plane-only asterd and hands them to its Sink, and sends the
// data plane's hints back up.
//
// Concurrency: Server's methods are safe for concurrent use, each Watch stream on its gRPC
// goroutine. A Client's Run applies snapshots on its own goroutine, one at a time; Hint may be
// called from any goroutine. The conversions keep no state.
package remote

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/limits"
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
		if n := c.Backend.NodeConnections; n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("convert cluster %q: node_connections %d out of range", c.Name, n)
		}
		// The wire keeps its flat field numbers (compatible with older peers); each group of
		// the spec maps onto its fields here and back in FromProto.
		l, a, be, lv := c.Listen, c.Access, c.Backend, c.Live
		pc := &asterv1.ClusterRoutes{
			Name:       c.Name,
			ListenAddr: l.Addr, ListenProto: l.Proto,

			MaxConnections:    int32(min(a.MaxConnections, math.MaxInt32)),
			IdleTimeout:       durationProto(a.IdleTimeout),
			ClientOutputLimit: int64(a.ClientOutputLimit),
			TlsCertFile:       a.TLSCertFile, TlsKeyFile: a.TLSKeyFile, TlsCaFile: a.TLSCAFile,

			ReadTimeout: durationProto(be.ReadTimeout), WriteTimeout: durationProto(be.WriteTimeout),
			DialTimeout:     durationProto(be.DialTimeout),
			NodeConnections: int32(be.NodeConnections), ReadFromSlave: be.ReadFromSlave,
			BackendUsername: be.BackendUser, BackendPassword: be.BackendPassword,
			BackendTls: be.BackendTLS, BackendTlsCaFile: be.BackendTLSCAFile, BackendTlsServerName: be.BackendTLSServerName,
			BackendResp3: be.BackendRESP3,

			SlowlogMaxLen:     int32(min(lv.SlowLogMaxLen, math.MaxInt32)),
			SlowlogSlowerThan: durationProto(lv.SlowLogSlowerThan),
			Hotkey: &asterv1.Hotkey{
				SampleEvery: clamp32(lv.Hotkey.SampleEvery), SketchWidth: clamp32(lv.Hotkey.Width),
				SketchDepth: clamp32(lv.Hotkey.Depth), Capacity: clamp32(lv.Hotkey.Capacity), Decay: lv.Hotkey.Decay,
			},
			BackupRequest: &asterv1.BackupRequest{Enabled: lv.BackupRequest.Enabled,
				TriggerSlow: durationProto(lv.BackupRequest.TriggerSlow), Multiplier: lv.BackupRequest.Multiplier},
			ClientCache: &asterv1.ClientCache{Enabled: lv.ClientCache.Enabled, MaxEntries: clamp32(lv.ClientCache.MaxEntries),
				MaxValueBytes: clamp32(lv.ClientCache.MaxValueBytes), ShardCount: clamp32(lv.ClientCache.ShardCount), MaxMemory: int64(lv.ClientCache.MaxMemory),
				HotOnly: lv.ClientCache.HotOnly},
		}
		for _, u := range slices.Sorted(maps.Keys(a.Users)) {
			pu := &asterv1.User{Username: u, Password: a.Users[u]}
			if r, ok := a.UserRights[u]; ok {
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
				for i, n := range t.Ring.Nodes() {
					pn := &asterv1.RingNode{Address: n.Addr, Alias: n.Name, Weight: int32(n.Weight)}
					if i < len(t.Replicas) {
						pn.Replicas = t.Replicas[i]
					}
					r.Nodes = append(r.Nodes, pn)
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
			Name:   pc.GetName(),
			Listen: route.ListenSettings{Proto: pc.GetListenProto(), Addr: pc.GetListenAddr()},
			Access: route.AccessSettings{
				MaxConnections: int(pc.GetMaxConnections()), IdleTimeout: pc.GetIdleTimeout().AsDuration(),
				ClientOutputLimit: int(min(max(pc.GetClientOutputLimit(), math.MinInt32), math.MaxInt32)), // checked below
				TLSCertFile:       pc.GetTlsCertFile(), TLSKeyFile: pc.GetTlsKeyFile(), TLSCAFile: pc.GetTlsCaFile(),
			},
			Backend: route.BackendSettings{
				ReadTimeout: pc.GetReadTimeout().AsDuration(), WriteTimeout: pc.GetWriteTimeout().AsDuration(),
				DialTimeout:     pc.GetDialTimeout().AsDuration(),
				NodeConnections: int(pc.GetNodeConnections()), ReadFromSlave: pc.GetReadFromSlave(),
				BackendUser: pc.GetBackendUsername(), BackendPassword: pc.GetBackendPassword(),
				BackendTLS: pc.GetBackendTls(), BackendTLSCAFile: pc.GetBackendTlsCaFile(), BackendTLSServerName: pc.GetBackendTlsServerName(),
				BackendRESP3: pc.GetBackendResp3(),
			},
			Live: route.LiveSettings{
				SlowLogMaxLen: int(pc.GetSlowlogMaxLen()), SlowLogSlowerThan: pc.GetSlowlogSlowerThan().AsDuration(),
			},
		}
		if h := pc.GetHotkey(); h != nil {
			c.Live.Hotkey = route.HotkeySpec{
				SampleEvery: int(h.GetSampleEvery()), Width: int(h.GetSketchWidth()), Depth: int(h.GetSketchDepth()),
				Capacity: int(h.GetCapacity()), Decay: h.GetDecay(),
			}
		}
		if cc := pc.GetClientCache(); cc != nil {
			c.Live.ClientCache = route.ClientCacheSpec{Enabled: cc.GetEnabled(), MaxEntries: int(cc.GetMaxEntries()),
				MaxValueBytes: int(cc.GetMaxValueBytes()), ShardCount: int(cc.GetShardCount()), HotOnly: cc.GetHotOnly(),
				MaxMemory: int(min(max(cc.GetMaxMemory(), -1), limits.ClientCacheMaxMemory.Max+1))} // checked below
		}
		if b := pc.GetBackupRequest(); b != nil {
			c.Live.BackupRequest = route.BackupRequest{Enabled: b.GetEnabled(), TriggerSlow: b.GetTriggerSlow().AsDuration(), Multiplier: b.GetMultiplier()}
		}
		if us := pc.GetUsers(); len(us) > 0 {
			a := &c.Access
			a.Users = make(map[string]string, len(us))
			for _, u := range us {
				a.Users[u.GetUsername()] = u.GetPassword()
				if u.GetCommands() == "" && !u.GetRestrictKeys() {
					continue
				}
				if a.UserRights == nil {
					a.UserRights = map[string]route.UserRights{}
				}
				r := route.UserRights{Commands: u.GetCommands()}
				if u.GetRestrictKeys() {
					r.Keys = append([]string{}, u.GetKeys()...)
				}
				a.UserRights[u.GetUsername()] = r
			}
		}
		if err := checkRanges(&c); err != nil {
			return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
		}
		switch t := pc.GetTable().(type) {
		case *asterv1.ClusterRoutes_Ring:
			hash, err := route.Hash(t.Ring.GetHashMethod())
			if err != nil {
				return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
			}
			nodes := make([]route.Node, 0, len(t.Ring.GetNodes()))
			var replicas [][]string // only when some node has replicas, as the control plane builds it
			for i, n := range t.Ring.GetNodes() {
				if len(n.GetReplicas()) > 0 && replicas == nil {
					replicas = make([][]string, len(t.Ring.GetNodes()))
				}
				if replicas != nil {
					replicas[i] = n.GetReplicas()
				}
				if w := int64(n.GetWeight()); !limits.ServerWeight.Contains(w) {
					return nil, fmt.Errorf("convert cluster %q: node %s: %s %d out of range %s", c.Name, n.GetAddress(),
						limits.ServerWeight.Key, w, limits.ServerWeight.Range())
				}
				nodes = append(nodes, route.Node{Addr: n.GetAddress(), Name: n.GetAlias(), Weight: int(n.GetWeight())})
			}
			ring, err := route.NewRing(nodes, hash, t.Ring.GetHashTag())
			if err != nil {
				return nil, fmt.Errorf("convert cluster %q: %w", c.Name, err)
			}
			c.Table = &route.Table{Version: pc.GetTableVersion(), Ring: ring, Replicas: replicas}
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

// checkRanges checks every number of a spec from the wire against the one range table
// (dataplane/limits), the one the control plane's config file and CONFIG SET are checked
// with: a data plane does not trust its control plane's numbers (an older or a faulty one, or
// whoever holds its token), since each of them sizes what the data plane allocates or how long
// it waits. A 0 where the wire leaves a field unset (node_connections, client_output_limit,
// the hot-key sizes and decay, the backup multiplier) means the data plane's default, as for an
// older control plane. The error names the configuration key, its value and its range.
func checkRanges(c *route.ClusterSpec) error {
	type intCheck struct {
		r     limits.Int
		v     int64
		unset bool // 0 is allowed: the field is unset
	}
	dur := func(d, unit time.Duration) int64 {
		// Whole units, rounded away from zero, so that a value just past a bound is past it.
		v := int64(d / unit)
		if d%unit > 0 {
			v++
		} else if d%unit < 0 {
			v--
		}
		return v
	}
	a, b, l := c.Access, c.Backend, c.Live
	h := l.Hotkey
	checks := []intCheck{
		{limits.ReadTimeout, dur(b.ReadTimeout, time.Millisecond), false},
		{limits.WriteTimeout, dur(b.WriteTimeout, time.Millisecond), false},
		{limits.DialTimeout, dur(b.DialTimeout, time.Millisecond), false},
		{limits.NodeConnections, int64(b.NodeConnections), true},
		{limits.MaxConnections, int64(a.MaxConnections), false},
		{limits.ClientIdleTimeout, dur(a.IdleTimeout, time.Second), false},
		{limits.ClientOutputLimit, int64(a.ClientOutputLimit), true},
		{limits.SlowlogMaxLen, int64(l.SlowLogMaxLen), false},
		{limits.SlowlogSlowerThan, dur(l.SlowLogSlowerThan, time.Microsecond), false},
		{limits.HotkeySampleEvery, int64(h.SampleEvery), true},
		{limits.HotkeySketchWidth, int64(h.Width), true},
		{limits.HotkeySketchDepth, int64(h.Depth), true},
		{limits.HotkeyCapacity, int64(h.Capacity), true},
		{limits.BackupThreshold, dur(l.BackupRequest.TriggerSlow, time.Millisecond), false},
		{limits.ClientCacheMaxEntries, int64(l.ClientCache.MaxEntries), true},
		{limits.ClientCacheMaxValueBytes, int64(l.ClientCache.MaxValueBytes), true},
		{limits.ClientCacheMaxMemory, int64(l.ClientCache.MaxMemory), true},
		{limits.ClientCacheShardCount, int64(l.ClientCache.ShardCount), true},
	}
	for _, k := range checks {
		if (k.unset && k.v == 0) || k.r.Contains(k.v) {
			continue
		}
		return fmt.Errorf("%s %d out of range %s", k.r.Key, k.v, k.r.Range())
	}
	for _, k := range []struct {
		r limits.Float
		v float64
	}{{limits.HotkeyDecay, h.Decay}, {limits.BackupMultiplier, l.BackupRequest.Multiplier}} {
		if k.v == 0 || k.r.Contains(k.v) {
			continue
		}
		return fmt.Errorf("%s %v out of range %s", k.r.Key, k.v, k.r.Range())
	}
	return nil
}
