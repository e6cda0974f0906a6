package route

import (
	"maps"
	"time"
)

// A cluster's settings, grouped by how a change of them is applied (docs/design.md). Each
// group is a comparable value: a change is a group that is not ==.
const (
	// GroupListen is where and how clients connect (protocol, address, TLS or not): a change
	// opens a new listener before the old one drains.
	GroupListen = "listen"
	// GroupAccess is who may connect and on what terms (users, rules, limits, TLS files):
	// changed live on the listener that exists; logged-in clients stay.
	GroupAccess = "access"
	// GroupBackend is how the nodes are reached: new backend connections replace the old
	// ones, which finish what they carry; clients stay.
	GroupBackend = "backend"
	// GroupLive is the knobs CONFIG SET also changes: applied in place.
	GroupLive = "live"
)

// ListenSettings is a cluster's GroupListen: the key its listener is carried over by.
type ListenSettings struct {
	Proto, Addr string
	TLS         bool
}

// AccessSettings is the comparable part of a cluster's GroupAccess; Users and UserRights
// (maps) complete it (see AccessEqual).
type AccessSettings struct {
	MaxConnections                     int
	IdleTimeout                        time.Duration
	ClientOutputLimit                  int
	TLSCertFile, TLSKeyFile, TLSCAFile string
}

// BackendSettings is a cluster's GroupBackend.
type BackendSettings struct {
	ReadTimeout, WriteTimeout, DialTimeout time.Duration
	NodeConnections                        int
	ReadFromSlave                          bool
	BackendUser, BackendPassword           string
	BackendRESP3                           bool
	BackendTLS                             bool
	BackendTLSCAFile, BackendTLSServerName string
}

// LiveSettings is a cluster's GroupLive.
type LiveSettings struct {
	SlowLogMaxLen     int
	SlowLogSlowerThan time.Duration
	Hotkey            HotkeySpec
	BackupRequest     BackupRequest
}

// Listen is s's GroupListen.
func (s ClusterSpec) Listen() ListenSettings {
	proto := s.ListenProto
	if proto == "" {
		proto = "tcp"
	}
	return ListenSettings{Proto: proto, Addr: s.ListenAddr, TLS: s.TLSCertFile != ""}
}

// Access is the comparable part of s's GroupAccess.
func (s ClusterSpec) Access() AccessSettings {
	return AccessSettings{MaxConnections: s.MaxConnections, IdleTimeout: s.IdleTimeout,
		ClientOutputLimit: s.ClientOutputLimit,
		TLSCertFile:       s.TLSCertFile, TLSKeyFile: s.TLSKeyFile, TLSCAFile: s.TLSCAFile}
}

// AccessEqual reports whether a and b have the same GroupAccess.
func AccessEqual(a, b ClusterSpec) bool {
	return a.Access() == b.Access() && maps.Equal(a.Users, b.Users) &&
		maps.EqualFunc(a.UserRights, b.UserRights, UserRights.Equal)
}

// Backend is s's GroupBackend.
func (s ClusterSpec) Backend() BackendSettings {
	return BackendSettings{ReadTimeout: s.ReadTimeout, WriteTimeout: s.WriteTimeout, DialTimeout: s.DialTimeout,
		NodeConnections: s.NodeConnections, ReadFromSlave: s.ReadFromSlave,
		BackendUser: s.BackendUser, BackendPassword: s.BackendPassword, BackendRESP3: s.BackendRESP3,
		BackendTLS: s.BackendTLS, BackendTLSCAFile: s.BackendTLSCAFile, BackendTLSServerName: s.BackendTLSServerName}
}

// Live is s's GroupLive.
func (s ClusterSpec) Live() LiveSettings {
	return LiveSettings{SlowLogMaxLen: s.SlowLogMaxLen, SlowLogSlowerThan: s.SlowLogSlowerThan,
		Hotkey: s.Hotkey, BackupRequest: s.BackupRequest}
}

// Changed names the groups whose settings differ between a and b, in the order listen,
// access, backend, live; nil when none does. The routing table is not a group.
func Changed(a, b ClusterSpec) []string {
	var out []string
	if a.Listen() != b.Listen() {
		out = append(out, GroupListen)
	}
	if !AccessEqual(a, b) {
		out = append(out, GroupAccess)
	}
	if a.Backend() != b.Backend() {
		out = append(out, GroupBackend)
	}
	if a.Live() != b.Live() {
		out = append(out, GroupLive)
	}
	return out
}
