// Package config loads Aster's TOML configuration: one [[clusters]] table per front-end
// listener, in the format of the original (Rust) Aster, so that its files load unchanged.
//
// Every problem in a file is reported at once (errors.Join of *Error), each naming the file,
// line, cluster and key, e.g.
//
//	aster.toml:12: cluster "cache-a": servers[2]: weight "x" is not a number
//
// A key that no field defines is an error, never silently ignored: a typo such as
// `ping_fail_limt` would otherwise quietly turn ejection off.
//
// Units follow the original: read_timeout, write_timeout, dial_timeout, ping_interval,
// ping_succ_interval and fetch_interval are milliseconds, fetch is seconds,
// slowlog_log_slower_than is microseconds. All of them are converted to time.Duration here.
//
// Concurrency: Load and Parse keep no state and may run on any goroutine; the Config they
// return is the caller's (a reload parses a new one).
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// Defaults applied to keys a cluster leaves unset.
const (
	DefaultListenProto      = "tcp"
	DefaultHashTag          = "{}"
	DefaultHashMethod       = "fnv1a_64"
	DefaultHashDistribution = "ketama"
	DefaultThread           = 1
	// DefaultTimeout is used for read_timeout, write_timeout and dial_timeout when unset:
	// the Rust Aster falls back to 1000 ms for backend requests. An explicit 0 means "no
	// timeout" (the only way to turn a deadline off).
	DefaultTimeout         = time.Second
	DefaultNodeConnections = 1
	// DefaultFetch is the CLUSTER SLOTS refresh period (`fetch = 600` in the reference file).
	DefaultFetch                = 600 * time.Second
	DefaultSlowlogLogSlowerThan = 10 * time.Millisecond // 10000 µs
	DefaultSlowlogMaxLen        = 128
	DefaultHotkeySampleEvery    = 32
	DefaultHotkeySketchWidth    = 4096
	DefaultHotkeySketchDepth    = 4
	DefaultHotkeyCapacity       = 512
	DefaultHotkeyDecay          = 0.925
	DefaultBackendRespVersion   = "resp2"
	DefaultBackupMultiplier     = 2.0

	// The ranges of every number in the file are in package dataplane/limits, which CONFIG
	// SET and the admin API check live knobs with; these name a few of them.
	MaxThread          = limits.MaxThread
	MaxNodeConnections = limits.MaxNodeConnections
	MaxMaxConnections  = limits.MaxMaxConnections
	MaxPingFailLimit   = limits.MaxPingFailLimit

	// DefaultClientOutputLimit is `client_output_limit` when unset: Redis's pubsub
	// client-output-buffer-limit (32mb), the bound a subscriber has here too; big enough that
	// pipelines of ordinary replies never wait on it, small enough that a thousand clients
	// that stop reading cost tens of GiB at most, not without bound.
	DefaultClientOutputLimit = 32 << 20
)

// Config is a whole configuration file.
type Config struct {
	// Clusters in file order.
	Clusters []Cluster
	// Admin is the top-level [admin] table: the gRPC admin API.
	Admin Admin
	// Metrics is the top-level [metrics] table: the Prometheus HTTP endpoint.
	Metrics Metrics
}

// DefaultAdminListenAddr is where the admin API listens unless told otherwise: loopback only.
const DefaultAdminListenAddr = "127.0.0.1:7790"

// Admin configures the gRPC admin API (AdminService and RouteService).
type Admin struct {
	// ListenAddr is host:port; "" disables the admin API.
	ListenAddr string
	// Token, when set, must come with every RPC as "authorization: Bearer <token>". Without
	// it the RouteService serves no data plane. `token_file` names a file that holds it (read
	// at load, trailing line end trimmed), so it need not sit in the TOML.
	Token string
	// TLSCertFile and TLSKeyFile make the admin API (AdminService and RouteService) speak
	// TLS; with TLSCAFile it also requires client certificates signed by that CA.
	TLSCertFile, TLSKeyFile, TLSCAFile string
}

// DefaultMetricsListenAddr is where the metrics endpoint listens unless told otherwise:
// loopback only, next to the admin API's port.
const DefaultMetricsListenAddr = "127.0.0.1:7791"

// DefaultMaxConnections is `max_connections` when unset: Redis's `maxclients` default. A
// finite default keeps one cluster's flood from taking every file descriptor of the process;
// asterd lowers it further when the open-file limit cannot hold every cluster's share.
const DefaultMaxConnections = 10000

// Metrics configures the HTTP endpoint that serves /metrics, /healthz, /readyz and, when
// enabled, /debug/pprof/.
type Metrics struct {
	// ListenAddr is host:port; "" disables the endpoint.
	ListenAddr string
	// Pprof serves net/http/pprof under /debug/pprof/: off by default, as profiles expose
	// internals and cost CPU while taken.
	Pprof bool
}

// CacheType says what the servers of a cluster are.
type CacheType string

// Cache types.
const (
	// CacheRedis is a set of independent Redis servers sharded by a ketama ring.
	CacheRedis CacheType = "redis"
	// CacheRedisCluster is a Redis Cluster; Servers are only its seed nodes.
	CacheRedisCluster CacheType = "redis_cluster"
	// CacheRedisSentinel is a ketama ring, as CacheRedis, over master/replica groups that
	// Sentinels watch: each of Servers names a group by its Sentinel master name, and its
	// address is whatever master a quorum of Sentinels reports.
	CacheRedisSentinel CacheType = "redis_sentinel"
)

// DefaultSentinelPollInterval is how often the sentinels are asked for every group's master
// when `sentinel_poll_interval` is unset; their +switch-master events come at once anyway.
const DefaultSentinelPollInterval = time.Second

// Server is one entry of `servers`: "host:port:weight alias" or "host:port" (weight 1); for
// redis_sentinel "master-name:weight alias" or "master-name".
type Server struct {
	Addr   string // host:port, as net.JoinHostPort writes it; "" for redis_sentinel
	Weight int    // ≥ 1; always 1 for redis_cluster seeds
	Alias  string // "" when none; always "" for redis_cluster seeds
	// Master is the Sentinel master name of a redis_sentinel group ("" otherwise). The ring
	// places keys by Alias, else by Master, never by the address, so a failover moves none.
	Master string
}

// Key is what names s on the ring and in the admin API: its alias, else its master name
// (redis_sentinel), else its address.
func (s Server) Key() string {
	switch {
	case s.Alias != "":
		return s.Alias
	case s.Master != "":
		return s.Master
	}
	return s.Addr
}

// Cluster is one [[clusters]] table: a front-end listener and its backends.
type Cluster struct {
	Name        string
	ListenAddr  string // host:port for tcp, a socket path for unix
	ListenProto string // "tcp" (default) or "unix"
	CacheType   CacheType
	Servers     []Server

	// HashTag is the two-character tag delimiter pair, "{}" by default; an explicit
	// `hash_tag = ""` turns hash tags off and is kept as "".
	HashTag          string
	HashMethod       string // fnv1a_64 (default), see HashMethods
	HashDistribution string // ketama, the only one

	Thread int // worker count, 1..MaxThread

	// ReadTimeout, WriteTimeout and DialTimeout bound backend I/O; DefaultTimeout when unset,
	// 0 when explicitly set to 0 (no deadline).
	ReadTimeout, WriteTimeout, DialTimeout time.Duration

	NodeConnections int // connections per backend node, 1..MaxNodeConnections

	// MaxConnections bounds the cluster's clients (DefaultMaxConnections when unset; 0: no
	// bound of its own, only the process's file limit); more are refused with
	// "-ERR max number of clients reached".
	MaxConnections int
	// ClientIdleTimeout closes a client that sends nothing for that long (seconds in the
	// file, as Redis's `timeout`); 0 means never.
	ClientIdleTimeout time.Duration
	// ClientOutputLimit bounds the reply bytes a client may have pending (bytes,
	// limits.ClientOutputLimit): asterd sends no more of its commands while
	// the replies it holds for it reach this. One reply larger than the limit still goes.
	ClientOutputLimit int

	// TLSCertFile and TLSKeyFile make the client listener speak TLS; with TLSCAFile it also
	// requires client certificates signed by that CA.
	TLSCertFile, TLSKeyFile, TLSCAFile string
	// BackendTLS makes every connection to the servers TLS, verified against BackendTLSCAFile
	// (system roots when empty) for BackendTLSServerName (each node's host when empty).
	BackendTLS                             bool
	BackendTLSCAFile, BackendTLSServerName string

	// PingFailLimit consecutive failed pings eject a node (redis mode); 0 turns ejection off.
	PingFailLimit int
	// PingInterval is the time between pings; required (> 0) when PingFailLimit > 0.
	PingInterval time.Duration
	// PingSuccInterval is the time between pings of an ejected node; PingInterval when unset.
	PingSuccInterval time.Duration

	// Fetch is the CLUSTER SLOTS refresh period (redis_cluster): `fetch` in seconds or
	// `fetch_interval` in milliseconds (the newer spelling); setting both is an error.
	Fetch time.Duration
	// ReadFromSlave sends read-only commands to replicas: a slot's replicas and master in
	// turn (redis_cluster), a group's replicas (redis_sentinel).
	ReadFromSlave bool

	// Sentinels (redis_sentinel only, required there) are the host:port of the sentinels that
	// watch the groups; SentinelAuth is sent to them as AUTH (not to the groups: that is
	// backend_auth). SentinelPollInterval is how often they are asked besides their events.
	Sentinels            []string
	SentinelAuth         *BackendAuth
	SentinelPollInterval time.Duration

	// Front-end authentication: Password (legacy, the "default" user) or Auth, not both.
	Password string
	Auth     *Auth
	// Back-end authentication: BackendPassword (legacy) or BackendAuth, not both.
	BackendPassword string
	BackendAuth     *BackendAuth

	// SlowlogLogSlowerThan is the slow-log threshold (microseconds in the file); negative
	// (-1 in the file) turns the slow log off.
	SlowlogLogSlowerThan time.Duration
	SlowlogMaxLen        int

	HotkeySampleEvery int
	HotkeySketchWidth int
	HotkeySketchDepth int
	HotkeyCapacity    int
	HotkeyDecay       float64 // in (0, 1]

	// BackendRespVersion is the protocol spoken to backends: "resp2" (default) or "resp3".
	BackendRespVersion string

	BackupRequest BackupRequest
	ClientCache   ClientCache
}

// Auth is the `auth` table: a password for the "default" user and/or ACL users.
// `auth = "secret"` is accepted as the same as `auth = { password = "secret" }`.
type Auth struct {
	Password string // "" when the default user has no password here
	Users    []User
}

// User is one ACL user of the front end.
type User struct {
	Username, Password string
	// Commands are Redis ACL command rules ("+@all -@dangerous"), applied left to right from
	// no command; "" (unset) means every command.
	Commands string
	// Keys are glob patterns every key of a command must match; nil (unset) means every key.
	Keys []string
}

// BackendAuth is the `backend_auth` table (AUTH username password); `backend_auth = "pw"` is
// accepted as a password-only AUTH.
type BackendAuth struct {
	Username string // "" for a password-only AUTH
	Password string
}

// BackupRequest is the `backup_request` table: when a master read is slow, send the same
// read to a replica and use whichever answers first (redis_cluster).
type BackupRequest struct {
	Enabled bool
	// TriggerSlow is the fixed latency threshold (trigger_slow_ms); 0 when unset or written
	// as "default", meaning only the relative threshold applies.
	TriggerSlow time.Duration
	// Multiplier × the master's average latency is the relative threshold; > 0, default 2.
	Multiplier float64
}

// ClientCache is the `client_cache` table (client-side caching); all sizes are > 0.
type ClientCache struct {
	Enabled       bool
	MaxEntries    int           // default 100000
	MaxValueBytes int           // default 512 KiB
	ShardCount    int           // default 32
	MaxMemory     int           // max_memory: bytes of the whole cache, default 256 MiB
	DrainBatch    int           // default 1024
	DrainInterval time.Duration // drain_interval_ms, default 50 ms
	// HotOnly caches only the keys the hot-key tracker names (hot_only).
	HotOnly bool
}

// HashMethods lists the accepted hash_method values (twemproxy's names).
var HashMethods = []string{
	"fnv1a_64", "fnv1_64", "crc32a", "murmur", "md5", "crc16", "crc32",
	"fnv1_32", "fnv1a_32", "hsieh", "jenkins", "one_at_a_time",
}

// Load reads and parses the configuration file at path. Relative file paths in it (TLS
// files, token_file, a unix socket's listen_addr) are taken from path's directory, not from
// the working directory; the Config holds them resolved.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(data, path, filepath.Dir(path))
}

// Parse parses and validates a configuration; filename is used in error messages only, and
// relative file paths stay relative to the working directory (Load resolves them).
// On any problem it returns nil and all problems joined (each an *Error), except for TOML
// syntax errors, which stop parsing at the first one.
func Parse(data []byte, filename string) (*Config, error) {
	return parse(data, filename, "")
}
