package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/aster-proxy/aster/internal/redistest"
)

// defaultsFor returns a cluster with every optional field at its default, for building
// expected values.
func defaultsFor(c Cluster) Cluster {
	c.ListenProto = "tcp"
	c.HashTag = "{}"
	c.HashMethod = "fnv1a_64"
	c.HashDistribution = "ketama"
	c.Thread = 1
	c.ReadTimeout, c.WriteTimeout, c.DialTimeout = time.Second, time.Second, time.Second
	c.NodeConnections = 1
	c.MaxConnections = DefaultMaxConnections
	c.Fetch = 600 * time.Second
	c.SlowlogLogSlowerThan = 10 * time.Millisecond
	c.SlowlogMaxLen = 128
	c.HotkeySampleEvery, c.HotkeySketchWidth, c.HotkeySketchDepth, c.HotkeyCapacity = 32, 4096, 4, 512
	c.HotkeyDecay = 0.925
	c.BackendRespVersion = "resp2"
	c.BackupRequest = BackupRequest{Multiplier: 2}
	c.ClientCache = ClientCache{MaxEntries: 100000, MaxValueBytes: 524288, ShardCount: 32, MaxMemory: 256 << 20,
		DrainBatch: 1024, DrainInterval: 50 * time.Millisecond}
	c.ClientOutputLimit = DefaultClientOutputLimit
	return c
}

func TestLoadReferenceDefault(t *testing.T) {
	// testdata/default.toml is /work/shared/reference/default.toml, unchanged.
	cfg, err := Load(filepath.Join("testdata", "default.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := defaultsFor(Cluster{
		Name:       "test-redis-cluster",
		ListenAddr: "0.0.0.0:9001",
		CacheType:  CacheRedisCluster,
		Servers: []Server{
			{Addr: "127.0.0.1:7000", Weight: 1},
			{Addr: "127.0.0.1:7001", Weight: 1},
		},
		ReadFromSlave: true,
		PingFailLimit: 3,
	})
	want.ReadTimeout, want.WriteTimeout = 2*time.Second, 2*time.Second
	want.Fetch = 600 * time.Second
	want.PingInterval, want.PingSuccInterval = 10*time.Second, 10*time.Second
	if len(cfg.Clusters) != 1 {
		t.Fatalf("got %d clusters, want 1", len(cfg.Clusters))
	}
	if got := cfg.Clusters[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("cluster mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func TestLoadStandaloneExample(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "standalone.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	full := Cluster{
		Name:        "cache-a",
		ListenAddr:  "127.0.0.1:7787",
		ListenProto: "tcp",
		CacheType:   CacheRedis,
		Servers: []Server{
			{Addr: "127.0.0.1:6379", Weight: 10, Alias: "redis-1"},
			{Addr: "127.0.0.1:6380", Weight: 20, Alias: "redis-2"},
			{Addr: "[::1]:6381", Weight: 1, Alias: "redis-3"},
		},
		HashTag:           "",
		HashMethod:        "murmur",
		HashDistribution:  "ketama",
		Thread:            4,
		ReadTimeout:       1500 * time.Millisecond,
		WriteTimeout:      0,
		DialTimeout:       500 * time.Millisecond,
		NodeConnections:   2,
		MaxConnections:    DefaultMaxConnections,
		ClientOutputLimit: 8 << 20,
		PingFailLimit:     3,
		PingInterval:      200 * time.Millisecond,
		PingSuccInterval:  time.Second,
		Fetch:             time.Hour,
		Auth: &Auth{Password: "front-default", Users: []User{
			{Username: "ops", Password: "ops-secret"},
			{Username: "audit", Password: "audit-secret"},
		}},
		BackendAuth:          &BackendAuth{Username: "proxy", Password: "backend-secret"},
		SlowlogLogSlowerThan: -time.Microsecond,
		SlowlogMaxLen:        256,
		HotkeySampleEvery:    16,
		HotkeySketchWidth:    2048,
		HotkeySketchDepth:    5,
		HotkeyCapacity:       1024,
		HotkeyDecay:          1,
		BackendRespVersion:   "resp3",
		BackupRequest:        BackupRequest{Enabled: true, TriggerSlow: 5 * time.Millisecond, Multiplier: 1.5},
		ClientCache: ClientCache{Enabled: true, MaxEntries: 1000, MaxValueBytes: 4096, ShardCount: 8, MaxMemory: 256 << 20,
			DrainBatch: 64, DrainInterval: 10 * time.Millisecond, HotOnly: true},
	}
	minimal := defaultsFor(Cluster{
		Name:            "sessions",
		ListenAddr:      "/run/aster/sessions.sock",
		CacheType:       CacheRedis,
		Servers:         []Server{{Addr: "10.0.0.1:6379", Weight: 1}},
		Password:        "legacy-front",
		BackendPassword: "legacy-back",
	})
	minimal.ListenProto = "unix"
	want := &Config{Clusters: []Cluster{full, minimal}}
	for i := range want.Clusters {
		if i >= len(cfg.Clusters) {
			t.Fatalf("got %d clusters, want %d", len(cfg.Clusters), len(want.Clusters))
		}
		if !reflect.DeepEqual(cfg.Clusters[i], want.Clusters[i]) {
			t.Errorf("clusters[%d] mismatch\n got: %+v\nwant: %+v", i, cfg.Clusters[i], want.Clusters[i])
		}
	}
	if len(cfg.Clusters) != len(want.Clusters) {
		t.Errorf("got %d clusters, want %d", len(cfg.Clusters), len(want.Clusters))
	}
}

// TestParseInvalid checks the exact text of every problem in each fixture, in file order.
func TestParseInvalid(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown_key.toml", []string{
			`unknown_key.toml:2: admin.listen: unknown key`,
			`unknown_key.toml:9: cluster "cache-a": ping_fail_limt: unknown key`,
			`unknown_key.toml:10: cluster "cache-a": backup_request.enabeld: unknown key`,
		}},
		{"bad_servers.toml", []string{
			`bad_servers.toml:8: cluster "cache-a": servers[2]: weight "x" is not a number`,
			`bad_servers.toml:9: cluster "cache-a": servers[3]: port 0 out of range 1..65535`,
			`bad_servers.toml:10: cluster "cache-a": servers[4]: duplicate address "127.0.0.1:6379" (also servers[0])`,
			`bad_servers.toml:11: cluster "cache-a": servers[5]: duplicate alias "redis-1" (also servers[0])`,
			`bad_servers.toml:12: cluster "cache-a": servers[6]: "127.0.0.1:6383:1 two words": expected "host:port:weight alias"; an alias must not contain spaces`,
			`bad_servers.toml:13: cluster "cache-a": servers[7]: weight 0 out of range 1..65535`,
			`bad_servers.toml:14: cluster "cache-a": servers[8]: "::1:6385" is not host:port or host:port:weight`,
			`bad_servers.toml:15: cluster "cache-a": servers[9]: ":6386": host is empty`,
			`bad_servers.toml:16: cluster "cache-a": servers[10]: must be a string, not an integer`,
			`bad_servers.toml:23: cluster "cache-b": servers: must list at least one server`,
		}},
		{"required.toml", []string{
			`required.toml:2: clusters[0]: name: required`,
			`required.toml:2: clusters[0]: listen_addr: required`,
			`required.toml:2: clusters[0]: cache_type: required (redis, redis_cluster or redis_sentinel)`,
			`required.toml:2: clusters[0]: servers: required (at least one server)`,
			`required.toml:6: clusters[1]: name: must not be empty`,
		}},
		{"duplicates.toml", []string{
			`duplicates.toml:8: cluster "Cache-A": name: duplicate cluster name (also clusters[0] "cache-a")`,
			`duplicates.toml:9: cluster "Cache-A": listen_addr: "127.0.0.1:7001" already used by clusters[0] "cache-a"`,
		}},
		{"ranges.toml", []string{
			`ranges.toml:3: cluster "cache-a": listen_addr: "localhost" is not host:port`,
			`ranges.toml:4: cluster "cache-a": cache_type: "memcache" is not redis, redis_cluster or redis_sentinel`,
			`ranges.toml:6: cluster "cache-a": hash_tag: "{" must be two characters like "{}", or "" to turn hash tags off`,
			`ranges.toml:7: cluster "cache-a": hash_method: "sha1" is not one of fnv1a_64 fnv1_64 crc32a murmur md5 crc16 crc32 fnv1_32 fnv1a_32 hsieh jenkins one_at_a_time`,
			`ranges.toml:8: cluster "cache-a": hash_distribution: "modula" is not supported (only ketama)`,
			`ranges.toml:9: cluster "cache-a": thread: 0 out of range 1..1024`,
			`ranges.toml:10: cluster "cache-a": read_timeout: -5 out of range 0..3600000 ms`,
			`ranges.toml:11: cluster "cache-a": node_connections: 65 out of range 1..64`,
			`ranges.toml:12: cluster "cache-a": ping_fail_limit: 3 needs ping_interval (> 0), which is not set`,
			`ranges.toml:13: cluster "cache-a": listen_proto: "udp" is not tcp or unix`,
			`ranges.toml:14: cluster "cache-a": hotkey_decay: 1.5 must be in (0, 1]`,
			`ranges.toml:15: cluster "cache-a": slowlog_log_slower_than: -2 out of range -1..3600000000 µs`,
			`ranges.toml:16: cluster "cache-a": backend_resp_version: "resp4" is not resp2 or resp3`,
		}},
		{"cluster_mode.toml", []string{
			`cluster_mode.toml:7: cluster "rc": servers[1]: alias "node-b" not allowed for redis_cluster (seed nodes are "host:port")`,
			`cluster_mode.toml:8: cluster "rc": servers[2]: weight 10 not allowed for redis_cluster (seed nodes are "host:port")`,
			`cluster_mode.toml:11: cluster "rc": ping_interval: must be > 0 when ping_fail_limit is 2`,
		}},
		{"fetch_both.toml", []string{
			`fetch_both.toml:7: cluster "rc": fetch_interval: set either fetch (seconds) or fetch_interval (milliseconds), not both`,
		}},
		{"types.toml", []string{
			`types.toml:5: cluster "cache-a": servers: must be an array of strings, not a string`,
			`types.toml:6: cluster "cache-a": thread: must be an integer, not a string`,
			`types.toml:7: cluster "cache-a": read_from_slave: must be true or false, not a string`,
			`types.toml:8: cluster "cache-a": read_timeout: must be an integer, not a float`,
			`types.toml:9: cluster "cache-a": backup_request: must be a table, not a boolean`,
		}},
		{"auth.toml", []string{
			`auth.toml:7: cluster "cache-a": auth: set either password or auth, not both`,
			`auth.toml:8: cluster "cache-a": auth.users[0]: duplicate user "default" (also auth.password)`,
			`auth.toml:9: cluster "cache-a": auth.users[1].password: required`,
			`auth.toml:12: cluster "cache-a": backend_auth.password: required`,
			`auth.toml:12: cluster "cache-a": backend_auth: set either backend_password or backend_auth, not both`,
		}},
		{"empty.toml", []string{`empty.toml: no [[clusters]] defined`}},
		{"not_tables.toml", []string{`not_tables.toml:1: clusters: must be an array of tables ([[clusters]])`}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(data, tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config alongside an error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors mismatch\n got:\n%s\nwant:\n%s", got, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != tt.file {
				t.Errorf("errors.As(*Error) = %v, %+v; want an *Error for %s", errors.As(err, &ce), ce, tt.file)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse([]byte("[[clusters]]\nname = \"a\"\nthread = = 2\n"), "broken.toml")
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a wrapped toml.ParseError", err)
	}
	if pe.Position.Line != 3 {
		t.Errorf("ParseError.Position.Line = %d, want 3", pe.Position.Line)
	}
	if !strings.HasPrefix(err.Error(), "parse config broken.toml: ") {
		t.Errorf("err = %q, want it to name the file", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

// TestClusterValues covers set-versus-unset and unit handling with small inline files.
func TestClusterValues(t *testing.T) {
	const head = "[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:7001\"\n"
	redis := head + "cache_type = \"redis\"\nservers = [\"127.0.0.1:6379\"]\n"
	rc := head + "cache_type = \"redis_cluster\"\nservers = [\"127.0.0.1:7000:1\"]\n"
	tests := []struct {
		name  string
		toml  string
		check func(c Cluster) (got, want any)
	}{
		{"hash tag unset is {}", redis, func(c Cluster) (any, any) { return c.HashTag, "{}" }},
		{"hash tag empty turns tags off", redis + "hash_tag = \"\"\n", func(c Cluster) (any, any) { return c.HashTag, "" }},
		{"hash tag custom", redis + "hash_tag = \"[]\"\n", func(c Cluster) (any, any) { return c.HashTag, "[]" }},
		{"read timeout unset is default", redis, func(c Cluster) (any, any) { return c.ReadTimeout, time.Second }},
		{"read timeout 0 is no timeout", redis + "read_timeout = 0\n", func(c Cluster) (any, any) { return c.ReadTimeout, time.Duration(0) }},
		{"dial timeout in ms", redis + "dial_timeout = 250\n", func(c Cluster) (any, any) { return c.DialTimeout, 250 * time.Millisecond }},
		{"fetch in seconds", rc + "fetch = 30\n", func(c Cluster) (any, any) { return c.Fetch, 30 * time.Second }},
		{"fetch_interval in ms", rc + "fetch_interval = 1500\n", func(c Cluster) (any, any) { return c.Fetch, 1500 * time.Millisecond }},
		{"cluster seed weight 1 is accepted", rc, func(c Cluster) (any, any) {
			return c.Servers, []Server{{Addr: "127.0.0.1:7000", Weight: 1}}
		}},
		{"ping_succ_interval defaults to ping_interval", redis + "ping_fail_limit = 2\nping_interval = 75\n",
			func(c Cluster) (any, any) { return c.PingSuccInterval, 75 * time.Millisecond }},
		{"ping off needs no interval", redis + "ping_fail_limit = 0\n", func(c Cluster) (any, any) { return c.PingFailLimit, 0 }},
		{"auth as a string", redis + "auth = \"pw\"\n", func(c Cluster) (any, any) { return *c.Auth, Auth{Password: "pw"} }},
		{"backend_auth as a string", redis + "backend_auth = \"pw\"\n", func(c Cluster) (any, any) {
			return *c.BackendAuth, BackendAuth{Password: "pw"}
		}},
		{"inline clusters array", "clusters = [{ name = \"c\", listen_addr = \"127.0.0.1:1\", cache_type = \"redis\", servers = [\"h:1\"] }]\n",
			func(c Cluster) (any, any) { return c.Servers, []Server{{Addr: "h:1", Weight: 1}} }},
		{"ipv6 listen address", "[[clusters]]\nname = \"c\"\nlisten_addr = \"[::]:7001\"\ncache_type = \"redis\"\nservers = [\"h:1\"]\n",
			func(c Cluster) (any, any) { return c.ListenAddr, "[::]:7001" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.toml), "inline.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := tt.check(cfg.Clusters[0]); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		name, in string
		want     Server
		msg      string
	}{
		{"host port", "127.0.0.1:6379", Server{Addr: "127.0.0.1:6379", Weight: 1}, ""},
		{"weight and alias", "10.0.0.1:7000:5 shard-a", Server{Addr: "10.0.0.1:7000", Weight: 5, Alias: "shard-a"}, ""},
		{"alias without weight", "h:1 a", Server{Addr: "h:1", Weight: 1, Alias: "a"}, ""},
		{"ipv6", "[fe80::1]:6379:2", Server{Addr: "[fe80::1]:6379", Weight: 2}, ""},
		{"hostname", "redis.local:6379", Server{Addr: "redis.local:6379", Weight: 1}, ""},
		{"no port", "127.0.0.1", Server{}, `"127.0.0.1" is not host:port or host:port:weight`},
		{"port not a number", "h:p", Server{}, `port "p" is not a number`},
		{"port too big", "h:65536", Server{}, `port 65536 out of range 1..65535`},
		{"negative weight", "h:1:-1", Server{}, `weight -1 out of range 1..65535`},
		{"too many colons", "h:1:2:3", Server{}, `"h:1:2:3" is not host:port or host:port:weight`},
		{"unclosed bracket", "[::1:6379", Server{}, `"[::1:6379" is not host:port or host:port:weight`},
		{"blank", "  ", Server{}, `empty server`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, msg := parseServer(tt.in)
			if msg != tt.msg {
				t.Fatalf("msg = %q, want %q", msg, tt.msg)
			}
			if msg == "" && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAdminTable(t *testing.T) {
	base := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001\"]\n"
	certs := redistest.GenCerts(t)
	q := strconv.Quote
	tlsKeys := "tls_cert_file = " + q(certs.CertFile) + "\ntls_key_file = " + q(certs.KeyFile) + "\n"
	cases := []struct {
		name, extra string
		want        Admin
		err         string
	}{
		{"default", "", Admin{ListenAddr: DefaultAdminListenAddr}, ""},
		{"set", "[admin]\nlisten_addr = \"127.0.0.1:9999\"\ntoken = \"s3cret\"\n", Admin{ListenAddr: "127.0.0.1:9999", Token: "s3cret"}, ""},
		{"disabled", "[admin]\nlisten_addr = \"\"\n", Admin{}, ""},
		{"bad addr", "[admin]\nlisten_addr = \"nope\"\n", Admin{}, `t.toml:7: admin.listen_addr: "nope" is not host:port`},
		{"tls", "[admin]\n" + tlsKeys, Admin{ListenAddr: DefaultAdminListenAddr, TLSCertFile: certs.CertFile, TLSKeyFile: certs.KeyFile}, ""},
		{"tls with client certs", "[admin]\n" + tlsKeys + "tls_ca_file = " + q(certs.CAFile) + "\n",
			Admin{ListenAddr: DefaultAdminListenAddr, TLSCertFile: certs.CertFile, TLSKeyFile: certs.KeyFile, TLSCAFile: certs.CAFile}, ""},
		{"cert without key", "[admin]\ntls_cert_file = " + q(certs.CertFile) + "\n", Admin{},
			`t.toml:7: admin.tls_cert_file: tls_cert_file and tls_key_file go together`},
		{"ca without cert", "[admin]\ntls_ca_file = " + q(certs.CAFile) + "\n", Admin{},
			`t.toml:7: admin.tls_ca_file: needs tls_cert_file and tls_key_file`},
		{"key is not a key", "[admin]\ntls_cert_file = " + q(certs.CertFile) + "\ntls_key_file = " + q(certs.CAFile) + "\n", Admin{},
			`t.toml:7: admin.tls_cert_file: load TLS certificate ` + certs.CertFile + ` / key ` + certs.CAFile + `: tls: found a certificate rather than a key in the PEM for the private key`},
		{"ca not PEM", "[admin]\n" + tlsKeys + "tls_ca_file = " + q(certs.KeyFile) + "\n", Admin{},
			`t.toml:7: admin.tls_cert_file: TLS CA file ` + certs.KeyFile + ` holds no PEM certificate`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+c.extra), "t.toml")
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin != c.want {
				t.Fatalf("Admin = %+v, want %+v", cfg.Admin, c.want)
			}
		})
	}
}

func TestMetricsTable(t *testing.T) {
	base := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001\"]\n"
	cases := []struct {
		name, extra string
		want        Metrics
		err         string
	}{
		{"default", "", Metrics{ListenAddr: DefaultMetricsListenAddr}, ""},
		{"set", "[metrics]\nlisten_addr = \"0.0.0.0:9121\"\npprof = true\n", Metrics{ListenAddr: "0.0.0.0:9121", Pprof: true}, ""},
		{"disabled", "[metrics]\nlisten_addr = \"\"\n", Metrics{}, ""},
		{"pprof only", "[metrics]\npprof = true\n", Metrics{ListenAddr: DefaultMetricsListenAddr, Pprof: true}, ""},
		{"bad addr", "[metrics]\nlisten_addr = \"nope\"\n", Metrics{}, `t.toml:7: metrics.listen_addr: "nope" is not host:port`},
		{"pprof not bool", "[metrics]\npprof = \"yes\"\n", Metrics{}, `t.toml:7: metrics.pprof: must be true or false, not a string`},
		{"unknown key", "[metrics]\nport = 9121\n", Metrics{}, `t.toml:7: metrics.port: unknown key`},
		{"same as admin", "[admin]\nlisten_addr = \"127.0.0.1:9000\"\n[metrics]\nlisten_addr = \"127.0.0.1:9000\"\n", Metrics{},
			`t.toml:9: metrics.listen_addr: "127.0.0.1:9000" is also admin.listen_addr`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+c.extra), "t.toml")
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Metrics != c.want {
				t.Fatalf("Metrics = %+v, want %+v", cfg.Metrics, c.want)
			}
		})
	}
}
