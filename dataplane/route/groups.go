package route

import (
	"maps"
	"time"
)

// A cluster's settings, grouped by how a change of them is applied (docs/design.md). Each
// setting is declared once, as a field of its group; a change is a group that is not equal.
const (
	// GroupListen is where clients connect (protocol, address): a change opens a new
	// listener before the old one drains.
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
	Proto string // "tcp" or "unix"; "" is "tcp"
	Addr  string
}

// Network is l's protocol with the default filled in.
func (l ListenSettings) Network() string {
	if l.Proto == "" {
		return "tcp"
	}
	return l.Proto
}

func (l ListenSettings) normal() ListenSettings {
	return ListenSettings{Proto: l.Network(), Addr: l.Addr}
}

// AccessSettings is a cluster's GroupAccess. It holds maps: compare with Equal.
type AccessSettings struct {
	// Users are the client credentials, username → password ("default" for the plain AUTH
	// password); empty means clients need not authenticate.
	Users map[string]string
	// UserRights are the access rules of the Users that have some; the others may run every
	// command on every key, as Redis's default user.
	UserRights     map[string]UserRights
	MaxConnections int           // 0: no bound
	IdleTimeout    time.Duration // 0: never
	// ClientOutputLimit bounds the reply bytes a client may have pending; 0: the data
	// plane's default.
	ClientOutputLimit int
	// TLS file names (read by the data plane): with a certificate the client listener speaks
	// TLS, with a CA it requires client certificates.
	TLSCertFile, TLSKeyFile, TLSCAFile string
}

// Equal reports whether a and b are the same access settings.
func (a AccessSettings) Equal(b AccessSettings) bool {
	return a.MaxConnections == b.MaxConnections && a.IdleTimeout == b.IdleTimeout &&
		a.ClientOutputLimit == b.ClientOutputLimit && a.TLSCertFile == b.TLSCertFile &&
		a.TLSKeyFile == b.TLSKeyFile && a.TLSCAFile == b.TLSCAFile &&
		maps.Equal(a.Users, b.Users) && maps.EqualFunc(a.UserRights, b.UserRights, UserRights.Equal)
}

// BackendSettings is a cluster's GroupBackend.
type BackendSettings struct {
	ReadTimeout, WriteTimeout, DialTimeout time.Duration // 0: none (dial: the default)
	NodeConnections                        int           // shared connections per node; ≤ 0 is 1
	// ReadFromSlave spreads read-only commands of a Redis Cluster over each slot's master and
	// replicas; every connection then opens with READONLY.
	ReadFromSlave bool
	// BackendUser and BackendPassword are sent as AUTH on every backend connection.
	BackendUser, BackendPassword string
	// BackendRESP3: backend connections speak RESP3 (backend_resp_version = "resp3").
	BackendRESP3 bool
	// BackendTLS makes backend connections TLS, verified with BackendTLSCAFile (system roots
	// when empty) for BackendTLSServerName (each node's host when empty).
	BackendTLS                             bool
	BackendTLSCAFile, BackendTLSServerName string
}

// LiveSettings is a cluster's GroupLive: the file's values of the knobs CONFIG SET changes.
type LiveSettings struct {
	// SlowLogMaxLen commands slower than SlowLogSlowerThan are kept; 0 turns the slow log off.
	SlowLogMaxLen     int
	SlowLogSlowerThan time.Duration
	// Hotkey sizes the cluster's hot-key tracker (HOTKEY); zero fields take its defaults.
	Hotkey HotkeySpec
	// BackupRequest is the backup-read policy of a Redis Cluster.
	BackupRequest BackupRequest
	// ClientCache is the proxy's cache of read replies (docs/client-cache.md).
	ClientCache ClientCacheSpec
}

// ClientCacheSpec is the client_cache table: the proxy's own cache of GET and HGET replies,
// kept coherent by Redis key tracking. Sizes ≤ 0 take the config's defaults.
type ClientCacheSpec struct {
	Enabled       bool
	MaxEntries    int // entries (a GET reply or one hash field) in all
	MaxValueBytes int // an entry's key, field and reply bytes together
	ShardCount    int
	MaxMemory     int // bytes of the whole cache, overhead included
	// HotOnly caches only the keys the hot-key tracker names.
	HotOnly bool
}

// Changed names the groups whose settings differ between a and b, in the order listen,
// access, backend, live; nil when none does. The routing table is not a group.
func Changed(a, b ClusterSpec) []string {
	var out []string
	if a.Listen.normal() != b.Listen.normal() {
		out = append(out, GroupListen)
	}
	if !a.Access.Equal(b.Access) {
		out = append(out, GroupAccess)
	}
	if a.Backend != b.Backend {
		out = append(out, GroupBackend)
	}
	if a.Live != b.Live {
		out = append(out, GroupLive)
	}
	return out
}
