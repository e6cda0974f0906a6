package config

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/aster-proxy/aster/dataplane/acl"
	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/internal/bearer"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// parser carries what every check needs to report a problem.
type parser struct {
	file  string
	dir   string         // relative file paths are taken from here; "" leaves them as written
	lines map[string]int // key path → line, see locateKeys
	errs  problems
}

// resolve resolves a path the config names against the config file's directory, so that
// asterd started from any working directory (systemd starts it in /) reads the same files
// for --check, startup and every reload.
func (p *parser) resolve(s string) string {
	if s == "" || p.dir == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(p.dir, s)
}

func parse(data []byte, filename, dir string) (*Config, error) {
	// Decoding into a map rather than a struct keeps going after a wrongly typed value, so
	// type errors are collected with all the others, and tells set from unset.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", filename, hideSecret(err))
	}
	p := &parser{file: filename, dir: dir, lines: locateKeys(data)}

	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k != "clusters" && k != "admin" && k != "metrics" {
			p.add(&Error{Index: -1, Key: k, Line: lineOf(p.lines, k), Msg: "unknown key"})
		}
	}
	tables := p.clusterTables(raw["clusters"])
	cfg := &Config{Clusters: make([]Cluster, 0, len(tables)), Admin: p.admin(raw), Metrics: p.metrics(raw)}
	for i, m := range tables {
		cfg.Clusters = append(cfg.Clusters, p.cluster(i, m))
	}
	p.crossCluster(cfg.Clusters)
	p.listenClashes(cfg)

	if err := p.errs.join(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// tls reads and checks the TLS keys: files must load now, so that --check and a reload catch
// a bad certificate before it is needed.
func (r *reader) tls(c *Cluster) {
	c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = r.serverTLS()
	c.BackendTLS, _ = r.boolean("backend_tls")
	c.BackendTLSCAFile, _ = r.str("backend_tls_ca_file")
	c.BackendTLSCAFile = r.p.resolve(c.BackendTLSCAFile)
	c.BackendTLSServerName, _ = r.str("backend_tls_server_name")
	if !c.BackendTLS && (c.BackendTLSCAFile != "" || c.BackendTLSServerName != "") {
		key := "backend_tls_ca_file"
		if c.BackendTLSCAFile == "" {
			key = "backend_tls_server_name"
		}
		r.errf(key, "needs backend_tls = true")
	} else if c.BackendTLS {
		if _, err := tlsconf.Client(c.BackendTLSCAFile, c.BackendTLSServerName); err != nil {
			r.errf("backend_tls_ca_file", "%v", err)
		}
	}
}

// serverTLS reads and checks the keys of a TLS server (a cluster's client listener, the
// admin API): tls_cert_file and tls_key_file, and tls_ca_file to require client certificates.
func (r *reader) serverTLS() (certFile, keyFile, caFile string) {
	certFile, _ = r.str("tls_cert_file")
	keyFile, _ = r.str("tls_key_file")
	caFile, _ = r.str("tls_ca_file")
	certFile, keyFile, caFile = r.p.resolve(certFile), r.p.resolve(keyFile), r.p.resolve(caFile)
	switch {
	case (certFile == "") != (keyFile == ""):
		r.errf("tls_cert_file", "tls_cert_file and tls_key_file go together")
	case caFile != "" && certFile == "":
		r.errf("tls_ca_file", "needs tls_cert_file and tls_key_file")
	case certFile != "":
		if _, err := tlsconf.Server(certFile, keyFile, caFile); err != nil {
			r.errf("tls_cert_file", "%v", err)
		}
	}
	return certFile, keyFile, caFile
}

// admin reads the top-level [admin] table.
func (p *parser) admin(raw map[string]any) Admin {
	a := Admin{ListenAddr: DefaultAdminListenAddr}
	none := ""
	top := &reader{p: p, index: -1, name: &none, m: raw, seen: map[string]bool{}}
	r, ok := top.table("admin")
	if !ok {
		return a
	}
	if s, ok := r.str("listen_addr"); ok {
		if s != "" {
			if msg := checkListenAddr("tcp", s); msg != "" {
				r.errf("listen_addr", "%s", msg)
			}
		}
		a.ListenAddr = s
	}
	if s, ok := r.str("token"); ok {
		if err := bearer.Valid(s); err != nil {
			r.errf("token", "%v", err)
		}
		a.Token = s
	}
	if path, ok := r.str("token_file"); ok && path != "" {
		if a.Token != "" {
			r.errf("token_file", "token and token_file are two ways to say the same thing: give one")
		} else if tok, err := bearer.ReadFile(p.resolve(path)); err != nil {
			r.errf("token_file", "%v", err)
		} else {
			a.Token = tok
		}
	}
	a.TLSCertFile, a.TLSKeyFile, a.TLSCAFile = r.serverTLS()
	r.unknown()
	return a
}

// metrics reads the top-level [metrics] table.
func (p *parser) metrics(raw map[string]any) Metrics {
	m := Metrics{ListenAddr: DefaultMetricsListenAddr}
	none := ""
	top := &reader{p: p, index: -1, name: &none, m: raw, seen: map[string]bool{}}
	r, ok := top.table("metrics")
	if !ok {
		return m
	}
	if s, ok := r.str("listen_addr"); ok {
		if s != "" {
			if msg := checkListenAddr("tcp", s); msg != "" {
				r.errf("listen_addr", "%s", msg)
			}
		}
		m.ListenAddr = s
	}
	if b, ok := r.boolean("pprof"); ok {
		m.Pprof = b
	}
	r.unknown()
	return m
}

func (p *parser) add(e *Error) {
	e.File = p.file
	p.errs = append(p.errs, e)
}

// clusterTables accepts [[clusters]] as well as an inline `clusters = [{...}]`.
func (p *parser) clusterTables(v any) []map[string]any {
	switch v := v.(type) {
	case nil:
		p.add(&Error{Index: -1, Msg: "no [[clusters]] defined"})
	case []map[string]any:
		if len(v) == 0 {
			p.add(&Error{Index: -1, Msg: "no [[clusters]] defined"})
		}
		return v
	case []any:
		var out []map[string]any
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				path := indexPath("clusters", i)
				p.add(&Error{Index: -1, Key: path, Line: lineOf(p.lines, path), Msg: "must be a table"})
				continue
			}
			out = append(out, m)
		}
		if len(v) == 0 {
			p.add(&Error{Index: -1, Msg: "no [[clusters]] defined"})
		}
		return out
	default:
		p.add(&Error{Index: -1, Key: "clusters", Line: lineOf(p.lines, "clusters"),
			Msg: "must be an array of tables ([[clusters]])"})
	}
	return nil
}

// reader reads the keys of one table of a cluster, reporting type errors, and remembers
// which keys it read so that the rest can be reported as unknown.
type reader struct {
	p      *parser
	index  int     // cluster index
	name   *string // cluster name, filled in once read; shared with sub-tables
	path   string  // locator path of this table, e.g. "clusters[0].backup_request"
	keyPfx string  // prefix of keys in messages, e.g. "backup_request."
	m      map[string]any
	seen   map[string]bool
}

// errf reports a problem with key ("" for the table itself).
func (r *reader) errf(key, format string, args ...any) {
	path, shown := r.path, strings.TrimSuffix(r.keyPfx, ".")
	if key != "" {
		path, shown = joinPath(r.path, key), r.keyPfx+key
	}
	r.p.add(&Error{
		Line:    lineOf(r.p.lines, path),
		Cluster: *r.name,
		Index:   r.index,
		Key:     shown,
		Msg:     fmt.Sprintf(format, args...),
	})
}

func (r *reader) get(key string) (any, bool) {
	r.seen[key] = true
	v, ok := r.m[key]
	return v, ok
}

// unknown reports the keys nobody read.
func (r *reader) unknown() {
	for _, k := range slices.Sorted(maps.Keys(r.m)) {
		if !r.seen[k] {
			r.errf(k, "unknown key")
		}
	}
}

// str returns a string value; ok is false when unset or not a string (reported).
func (r *reader) str(key string) (s string, ok bool) {
	v, set := r.get(key)
	if !set {
		return "", false
	}
	if s, ok = v.(string); !ok {
		r.errf(key, "must be a string, not %s", tomlType(v))
	}
	return s, ok
}

func (r *reader) integer(key string) (int64, bool) {
	v, set := r.get(key)
	if !set {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		r.errf(key, "must be an integer, not %s", tomlType(v))
	}
	return n, ok
}

// limited reads an integer setting and checks it against its range in package limits: the
// entry CONFIG SET and the admin API check the same setting with, when it is live too.
func (r *reader) limited(l limits.Int) (int64, bool) {
	key := strings.TrimPrefix(l.Key, r.keyPfx)
	n, ok := r.integer(key)
	if !ok {
		return 0, false
	}
	if !l.Contains(n) {
		r.errf(key, "%d out of range %s", n, l.Range())
		return 0, false
	}
	return n, true
}

// limitedInt is limited for an int field (every range fits an int).
func (r *reader) limitedInt(l limits.Int) (int, bool) {
	n, ok := r.limited(l)
	return int(n), ok
}

func (r *reader) boolean(key string) (bool, bool) {
	v, set := r.get(key)
	if !set {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		r.errf(key, "must be true or false, not %s", tomlType(v))
	}
	return b, ok
}

// float accepts integers too: `hotkey_decay = 1` means 1.0.
func (r *reader) float(key string) (float64, bool) {
	v, set := r.get(key)
	if !set {
		return 0, false
	}
	switch f := v.(type) {
	case float64:
		return f, true
	case int64:
		return float64(f), true
	}
	r.errf(key, "must be a number, not %s", tomlType(v))
	return 0, false
}

// duration reads a count of unit in the range of l; every range in package limits keeps
// count × unit inside a time.Duration.
func (r *reader) duration(l limits.Int, unit time.Duration) (time.Duration, bool) {
	n, ok := r.limited(l)
	return time.Duration(n) * unit, ok
}

// limitedFloat reads a real-valued setting and checks it against its range (never NaN or an
// infinity).
func (r *reader) limitedFloat(l limits.Float) (float64, bool) {
	key := strings.TrimPrefix(l.Key, r.keyPfx)
	f, ok := r.float(key)
	if !ok {
		return 0, false
	}
	if !l.Contains(f) {
		r.errf(key, "%v must be in %s", f, l.Range())
		return 0, false
	}
	return f, true
}

// table returns a reader for a sub-table; ok is false when unset or not a table (reported).
func (r *reader) table(key string) (*reader, bool) {
	v, set := r.get(key)
	if !set {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.errf(key, "must be a table, not %s", tomlType(v))
		return nil, false
	}
	return r.sub(joinPath(r.path, key), r.keyPfx+key+".", m), true
}

func (r *reader) sub(path, keyPfx string, m map[string]any) *reader {
	return &reader{p: r.p, index: r.index, name: r.name, path: path, keyPfx: keyPfx, m: m, seen: map[string]bool{}}
}

// tomlType names a decoded value's TOML type for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

// cluster reads and validates one [[clusters]] table, then fills in defaults.
func (p *parser) cluster(i int, m map[string]any) Cluster {
	name := ""
	r := &reader{p: p, index: i, name: &name, path: indexPath("clusters", i), m: m, seen: map[string]bool{}}
	var c Cluster

	if s, ok := r.str("name"); ok {
		if strings.TrimSpace(s) == "" {
			r.errf("name", "must not be empty")
		} else {
			name, c.Name = s, s
		}
	} else if _, set := m["name"]; !set {
		r.errf("name", "required")
	}

	c.ListenProto = DefaultListenProto
	if s, ok := r.str("listen_proto"); ok {
		if s != "tcp" && s != "unix" {
			r.errf("listen_proto", "%q is not tcp or unix", s)
		} else {
			c.ListenProto = s
		}
	}
	if s, ok := r.str("listen_addr"); ok {
		if c.ListenProto == "unix" {
			s = p.resolve(s) // a socket path, like the TLS files
		}
		c.ListenAddr = s
		if msg := checkListenAddr(c.ListenProto, s); msg != "" {
			r.errf("listen_addr", "%s", msg)
		}
	} else if _, set := m["listen_addr"]; !set {
		r.errf("listen_addr", "required")
	}

	if s, ok := r.str("cache_type"); ok {
		switch t := CacheType(s); t {
		case CacheRedis, CacheRedisCluster, CacheRedisSentinel:
			c.CacheType = t
		default:
			r.errf("cache_type", "%q is not redis, redis_cluster or redis_sentinel", s)
		}
	} else if _, set := m["cache_type"]; !set {
		r.errf("cache_type", "required (redis, redis_cluster or redis_sentinel)")
	}

	c.Servers = r.servers(c.CacheType)

	c.HashTag = DefaultHashTag
	if s, ok := r.str("hash_tag"); ok {
		if s != "" && len(s) != 2 {
			r.errf("hash_tag", "%q must be two characters like \"{}\", or \"\" to turn hash tags off", s)
		} else {
			c.HashTag = s
		}
	}
	c.HashMethod = DefaultHashMethod
	if s, ok := r.str("hash_method"); ok {
		if !slices.Contains(HashMethods, s) {
			r.errf("hash_method", "%q is not one of %s", s, strings.Join(HashMethods, " "))
		} else {
			c.HashMethod = s
		}
	}
	c.HashDistribution = DefaultHashDistribution
	if s, ok := r.str("hash_distribution"); ok && s != "ketama" {
		r.errf("hash_distribution", "%q is not supported (only ketama)", s)
	}

	c.Thread = DefaultThread
	if n, ok := r.limitedInt(limits.Thread); ok {
		c.Thread = n
	}
	c.ReadTimeout = r.durationOr(limits.ReadTimeout, time.Millisecond, DefaultTimeout)
	c.WriteTimeout = r.durationOr(limits.WriteTimeout, time.Millisecond, DefaultTimeout)
	c.DialTimeout = r.durationOr(limits.DialTimeout, time.Millisecond, DefaultTimeout)
	c.NodeConnections = DefaultNodeConnections
	if n, ok := r.limitedInt(limits.NodeConnections); ok {
		c.NodeConnections = n
	}
	c.MaxConnections = DefaultMaxConnections
	if n, ok := r.limitedInt(limits.MaxConnections); ok {
		c.MaxConnections = n
	}
	if d, ok := r.duration(limits.ClientIdleTimeout, time.Second); ok {
		c.ClientIdleTimeout = d
	}
	r.tls(&c)

	c.ClientOutputLimit = DefaultClientOutputLimit
	if n, ok := r.limitedInt(limits.ClientOutputLimit); ok {
		c.ClientOutputLimit = n
	}

	if n, ok := r.limitedInt(limits.PingFailLimit); ok {
		c.PingFailLimit = n
	}
	if d, ok := r.duration(limits.PingInterval, time.Millisecond); ok {
		c.PingInterval = d
	}
	if c.PingFailLimit > 0 && c.PingInterval == 0 {
		if _, set := m["ping_interval"]; set {
			r.errf("ping_interval", "must be > 0 when ping_fail_limit is %d", c.PingFailLimit)
		} else {
			r.errf("ping_fail_limit", "%d needs ping_interval (> 0), which is not set", c.PingFailLimit)
		}
	}
	c.PingSuccInterval = c.PingInterval
	if d, ok := r.duration(limits.PingSuccInterval, time.Millisecond); ok {
		c.PingSuccInterval = d
	}

	c.Fetch = DefaultFetch
	_, fetchSet := m["fetch"]
	_, fetchIntervalSet := m["fetch_interval"]
	if fetchSet && fetchIntervalSet {
		r.errf("fetch_interval", "set either fetch (seconds) or fetch_interval (milliseconds), not both")
	}
	for _, k := range []struct {
		l    limits.Int
		unit time.Duration
	}{{limits.Fetch, time.Second}, {limits.FetchInterval, time.Millisecond}} {
		if d, ok := r.duration(k.l, k.unit); ok {
			c.Fetch = d
		}
	}
	if b, ok := r.boolean("read_from_slave"); ok {
		c.ReadFromSlave = b
	}
	r.sentinel(&c)

	r.auth(&c)
	r.extras(&c)
	r.unknown()
	return c
}

func (r *reader) durationOr(l limits.Int, unit, def time.Duration) time.Duration {
	if d, ok := r.duration(l, unit); ok {
		return d
	}
	return def
}

// servers reads and checks `servers`.
func (r *reader) servers(ct CacheType) []Server {
	v, set := r.get("servers")
	if !set {
		r.errf("servers", "required (at least one server)")
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		r.errf("servers", "must be an array of strings, not %s", tomlType(v))
		return nil
	}
	if len(list) == 0 {
		r.errf("servers", "must list at least one server")
		return nil
	}
	out := make([]Server, 0, len(list))
	addrs := map[string]int{}
	aliases := map[string]int{}
	for i, e := range list {
		key := indexPath("servers", i)
		s, ok := e.(string)
		if !ok {
			r.errf(key, "must be a string, not %s", tomlType(e))
			continue
		}
		var srv Server
		var weightSet bool
		var msg string
		if ct == CacheRedisSentinel {
			srv, msg = parseGroup(s)
		} else {
			srv, weightSet, msg = parseServer(s)
		}
		if msg != "" {
			r.errf(key, "%s", msg)
			continue
		}
		if ct == CacheRedisCluster {
			// Seeds are only addresses: a weight of 1 is harmless, anything else a mistake.
			if srv.Alias != "" {
				r.errf(key, "alias %q not allowed for redis_cluster (seed nodes are \"host:port\")", srv.Alias)
				continue
			}
			if weightSet && srv.Weight != 1 {
				r.errf(key, "weight %d not allowed for redis_cluster (seed nodes are \"host:port\")", srv.Weight)
				continue
			}
		}
		if srv.Master != "" {
			// Two entries of one group would be one shard twice on the ring.
			if j, dup := addrs[srv.Master]; dup {
				r.errf(key, "duplicate master name %q (also servers[%d])", srv.Master, j)
				continue
			}
			addrs[srv.Master] = i
		} else {
			if j, dup := addrs[srv.Addr]; dup {
				r.errf(key, "duplicate address %q (also servers[%d])", srv.Addr, j)
				continue
			}
			addrs[srv.Addr] = i
		}
		// The ring names a group by its alias, else its master name: no two may share one.
		if name := srv.Alias; name != "" || srv.Master != "" {
			if name == "" {
				name = srv.Master
			}
			if j, dup := aliases[name]; dup {
				r.errf(key, "duplicate alias %q (also servers[%d])", name, j)
				continue
			}
			aliases[name] = i
		}
		out = append(out, srv)
	}
	return out
}

// parseServer parses "host:port", "host:port:weight" or either followed by " alias";
// IPv6 hosts are bracketed. msg is "" on success.
func parseServer(s string) (srv Server, weightSet bool, msg string) {
	fields := strings.Fields(s)
	switch len(fields) {
	case 0:
		return srv, false, "empty server"
	case 1, 2:
	default:
		return srv, false, fmt.Sprintf("%q: expected \"host:port:weight alias\"; an alias must not contain spaces", s)
	}
	if len(fields) == 2 {
		srv.Alias = fields[1]
	}
	addr := fields[0]
	var host string
	var rest []string
	if strings.HasPrefix(addr, "[") {
		end := strings.Index(addr, "]")
		if end < 0 || !strings.HasPrefix(addr[end+1:], ":") {
			return srv, false, fmt.Sprintf("%q is not host:port or host:port:weight", addr)
		}
		host, rest = addr[1:end], strings.Split(addr[end+2:], ":")
	} else {
		parts := strings.Split(addr, ":")
		host, rest = parts[0], parts[1:]
	}
	if len(rest) < 1 || len(rest) > 2 {
		return srv, false, fmt.Sprintf("%q is not host:port or host:port:weight", addr)
	}
	if host == "" {
		return srv, false, fmt.Sprintf("%q: host is empty", addr)
	}
	port, err := strconv.Atoi(rest[0])
	if err != nil {
		return srv, false, fmt.Sprintf("port %q is not a number", rest[0])
	}
	if port < 1 || port > 65535 {
		return srv, false, fmt.Sprintf("port %d out of range 1..65535", port)
	}
	srv.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	srv.Weight = 1
	if len(rest) == 2 {
		weightSet = true
		w, err := strconv.Atoi(rest[1])
		if err != nil {
			return srv, true, fmt.Sprintf("weight %q is not a number", rest[1])
		}
		if !limits.ServerWeight.Contains(int64(w)) {
			return srv, true, fmt.Sprintf("weight %d out of range %s", w, limits.ServerWeight.Range())
		}
		srv.Weight = w
	}
	return srv, weightSet, ""
}

// parseGroup parses a redis_sentinel entry: "master-name", "master-name:weight", either
// followed by " alias". The weight is the digits after the last colon, so a master name may
// hold colons of its own when a weight follows. msg is "" on success.
func parseGroup(s string) (srv Server, msg string) {
	fields := strings.Fields(s)
	switch len(fields) {
	case 0:
		return srv, "empty server"
	case 1, 2:
	default:
		return srv, fmt.Sprintf("%q: expected \"master-name:weight alias\"; an alias must not contain spaces", s)
	}
	if len(fields) == 2 {
		srv.Alias = fields[1]
	}
	name := fields[0]
	srv.Weight = 1
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		w, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return srv, fmt.Sprintf("weight %q is not a number", name[i+1:])
		}
		if !limits.ServerWeight.Contains(int64(w)) {
			return srv, fmt.Sprintf("weight %d out of range %s", w, limits.ServerWeight.Range())
		}
		name, srv.Weight = name[:i], w
	}
	if msg := checkSentinelName(name); msg != "" {
		return srv, msg
	}
	srv.Master = name
	return srv, ""
}

// checkSentinelName returns "" when name can be a Sentinel master name: 1 to
// limits.MaxSentinelNameLen bytes, printable, no spaces (Sentinel's own config file splits
// on them).
func checkSentinelName(name string) string {
	switch {
	case name == "":
		return "master name is empty"
	case len(name) > limits.MaxSentinelNameLen:
		return fmt.Sprintf("master name of %d bytes is longer than %d", len(name), limits.MaxSentinelNameLen)
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Sprintf("master name %q must not contain spaces or control characters", name)
	}
	return ""
}

// sentinel reads sentinels, sentinel_auth and sentinel_poll_interval: required or refused by
// cache type, so that a file meant for Sentinel mode never quietly runs as another.
func (r *reader) sentinel(c *Cluster) {
	sentinelOnly := func(key string) {
		if _, set := r.m[key]; set && c.CacheType != CacheRedisSentinel {
			r.seen[key] = true
			r.errf(key, "only for cache_type = \"redis_sentinel\"")
		}
	}
	for _, k := range []string{"sentinels", "sentinel_auth", limits.SentinelPollInterval.Key} {
		sentinelOnly(k)
	}
	if c.CacheType != CacheRedisSentinel {
		return
	}
	c.SentinelPollInterval = r.durationOr(limits.SentinelPollInterval, time.Millisecond, DefaultSentinelPollInterval)
	v, set := r.get("sentinels")
	switch list, ok := v.([]any); {
	case !set:
		r.errf("sentinels", "required for redis_sentinel (the host:port of each sentinel)")
	case !ok:
		r.errf("sentinels", "must be an array of \"host:port\" strings, not %s", tomlType(v))
	case len(list) == 0 || len(list) > limits.MaxSentinels:
		r.errf("sentinels", "lists %d sentinels, want 1..%d", len(list), limits.MaxSentinels)
	default:
		seen := map[string]int{}
		for i, e := range list {
			key := indexPath("sentinels", i)
			s, ok := e.(string)
			if !ok {
				r.errf(key, "must be a string, not %s", tomlType(e))
				continue
			}
			srv, weightSet, msg := parseServer(s)
			if msg == "" && (weightSet || srv.Alias != "") {
				msg = fmt.Sprintf("%q: a sentinel is \"host:port\"", s)
			}
			if msg != "" {
				r.errf(key, "%s", msg)
				continue
			}
			if j, dup := seen[srv.Addr]; dup {
				r.errf(key, "duplicate sentinel %q (also sentinels[%d])", srv.Addr, j)
				continue
			}
			seen[srv.Addr] = i
			c.Sentinels = append(c.Sentinels, srv.Addr)
		}
	}
	if a, set := r.userPassword("sentinel_auth"); set {
		c.SentinelAuth = a
	}
}

// checkListenAddr returns "" when addr suits proto.
func checkListenAddr(proto, addr string) string {
	if proto == "unix" {
		if strings.TrimSpace(addr) == "" {
			return "must be a socket path for listen_proto unix"
		}
		return ""
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Sprintf("%q: port %q is not a number", addr, port)
	}
	if n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port %d out of range 1..65535", addr, n)
	}
	return ""
}

// userPassword reads key as a password string or a { username, password } table (backend_auth,
// sentinel_auth); set reports whether key is there at all.
func (r *reader) userPassword(key string) (a *BackendAuth, set bool) {
	v, set := r.get(key)
	if !set {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return &BackendAuth{Password: v}, true
	case map[string]any:
		t := r.sub(joinPath(r.path, key), key+".", v)
		a := &BackendAuth{}
		a.Username, _ = t.str("username")
		var ok bool
		if a.Password, ok = t.str("password"); !ok {
			if _, set := v["password"]; !set {
				t.errf("password", "required")
			}
		}
		t.unknown()
		return a, true
	default:
		r.errf(key, "must be a string or a table, not %s", tomlType(v))
		return nil, true
	}
}

// auth reads password/auth and backend_password/backend_auth.
func (r *reader) auth(c *Cluster) {
	if s, ok := r.str("password"); ok {
		c.Password = s
	}
	if v, set := r.get("auth"); set {
		switch v := v.(type) {
		case string:
			c.Auth = &Auth{Password: v}
		case map[string]any:
			c.Auth = r.sub(joinPath(r.path, "auth"), "auth.", v).frontAuth()
		default:
			r.errf("auth", "must be a string or a table, not %s", tomlType(v))
		}
	}
	if _, set := r.m["password"]; set && c.Auth != nil {
		r.errf("auth", "set either password or auth, not both")
	}

	if s, ok := r.str("backend_password"); ok {
		c.BackendPassword = s
	}
	if a, set := r.userPassword("backend_auth"); set {
		c.BackendAuth = a
	}
	if _, set := r.m["backend_password"]; set && c.BackendAuth != nil {
		r.errf("backend_auth", "set either backend_password or backend_auth, not both")
	}
}

// frontAuth reads the `auth` table.
func (r *reader) frontAuth() *Auth {
	before := len(r.p.errs)
	a := &Auth{}
	a.Password, _ = r.str("password")
	names := map[string]int{}
	if a.Password != "" {
		names["default"] = -1
	}
	if v, set := r.get("users"); set {
		list, ok := v.([]map[string]any)
		if !ok {
			if l, isArr := v.([]any); isArr && len(l) == 0 {
				ok = true
			} else if isArr {
				list, ok = mapsOf(l)
			}
		}
		if !ok {
			r.errf("users", "must be an array of tables {username, password}, not %s", tomlType(v))
		}
		for i, m := range list {
			key := indexPath("users", i)
			u := r.sub(joinPath(r.path, key), r.keyPfx+key+".", m)
			var user User
			user.Username, _ = u.str("username")
			user.Password, _ = u.str("password")
			user.Commands, user.Keys = u.userRights()
			switch {
			case user.Username == "":
				u.errf("username", "required")
			case strings.ContainsFunc(user.Username, func(r rune) bool { return r <= ' ' || r == 0x7f }):
				// As Redis refuses them; the name goes into NOPERM replies, one line each.
				u.errf("username", "must not contain spaces or control characters")
			case user.Password == "":
				u.errf("password", "required")
			default:
				if j, dup := names[user.Username]; dup {
					other := "auth.password"
					if j >= 0 {
						other = indexPath("auth.users", j)
					}
					r.errf(key, "duplicate user %q (also %s)", user.Username, other)
				} else {
					names[user.Username] = i
					a.Users = append(a.Users, user)
				}
			}
			u.unknown()
		}
	}
	if a.Password == "" && len(a.Users) == 0 && len(r.p.errs) == before {
		r.errf("", "must set password or users")
	}
	r.unknown()
	return a
}

// userRights reads a user's access rules: commands (Redis ACL command rules) and keys (glob
// patterns), each checked as the data plane will compile it.
func (r *reader) userRights() (commands string, keys []string) {
	if s, ok := r.str("commands"); ok {
		if strings.TrimSpace(s) == "" {
			r.errf("commands", "empty: omit it for every command, or say \"nocommands\"")
		} else if err := acl.ValidateCommands(s); err != nil {
			r.errf("commands", "%v", err)
		} else {
			commands = s
		}
	}
	v, set := r.get("keys")
	if !set {
		return commands, nil
	}
	list, ok := v.([]any)
	if !ok {
		r.errf("keys", "must be an array of glob patterns, not %s", tomlType(v))
		return commands, nil
	}
	if len(list) == 0 {
		r.errf("keys", "must list at least one pattern (omit it for every key)")
		return commands, nil
	}
	keys = make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			r.errf(indexPath("keys", i), "must be a string, not %s", tomlType(e))
			continue
		}
		if s == "" {
			r.errf(indexPath("keys", i), "empty pattern")
			continue
		}
		keys = append(keys, s)
	}
	if err := acl.ValidateKeys(keys); err != nil {
		r.errf("keys", "%v", err)
	}
	return commands, keys
}

func mapsOf(l []any) ([]map[string]any, bool) {
	out := make([]map[string]any, len(l))
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		out[i] = m
	}
	return out, true
}

// extras reads the keys later issues use: slow log, hot keys, RESP version, backup
// requests and the client cache.
func (r *reader) extras(c *Cluster) {
	c.SlowlogLogSlowerThan = DefaultSlowlogLogSlowerThan
	if n, ok := r.limited(limits.SlowlogSlowerThan); ok { // -1: off
		c.SlowlogLogSlowerThan = time.Duration(n) * time.Microsecond
	}
	c.SlowlogMaxLen = DefaultSlowlogMaxLen
	if n, ok := r.limitedInt(limits.SlowlogMaxLen); ok {
		c.SlowlogMaxLen = n
	}
	for _, f := range []struct {
		l   limits.Int
		dst *int
		def int
	}{
		{limits.HotkeySampleEvery, &c.HotkeySampleEvery, DefaultHotkeySampleEvery},
		{limits.HotkeySketchWidth, &c.HotkeySketchWidth, DefaultHotkeySketchWidth},
		{limits.HotkeySketchDepth, &c.HotkeySketchDepth, DefaultHotkeySketchDepth},
		{limits.HotkeyCapacity, &c.HotkeyCapacity, DefaultHotkeyCapacity},
	} {
		*f.dst = f.def
		if n, ok := r.limitedInt(f.l); ok {
			*f.dst = n
		}
	}
	c.HotkeyDecay = DefaultHotkeyDecay
	if f, ok := r.limitedFloat(limits.HotkeyDecay); ok {
		c.HotkeyDecay = f
	}
	c.BackendRespVersion = DefaultBackendRespVersion
	if s, ok := r.str("backend_resp_version"); ok {
		if s != "resp2" && s != "resp3" {
			r.errf("backend_resp_version", "%q is not resp2 or resp3", s)
		} else {
			c.BackendRespVersion = s
		}
	}

	c.BackupRequest = BackupRequest{Multiplier: DefaultBackupMultiplier}
	if t, ok := r.table("backup_request"); ok {
		if b, ok := t.boolean("enabled"); ok {
			c.BackupRequest.Enabled = b
		}
		if v, set := t.m["trigger_slow_ms"]; set {
			if s, isStr := v.(string); isStr {
				t.seen["trigger_slow_ms"] = true
				if s != "default" {
					t.errf("trigger_slow_ms", "%q must be milliseconds or \"default\"", s)
				}
			} else if d, ok := t.duration(limits.BackupThreshold, time.Millisecond); ok {
				c.BackupRequest.TriggerSlow = d
			}
		}
		if f, ok := t.limitedFloat(limits.BackupMultiplier); ok {
			c.BackupRequest.Multiplier = f
		}
		t.unknown()
	}

	c.ClientCache = ClientCache{
		MaxEntries: 100_000, MaxValueBytes: 512 << 10, ShardCount: 32, MaxMemory: 256 << 20, DrainBatch: 1024,
		DrainInterval: 50 * time.Millisecond,
	}
	if t, ok := r.table("client_cache"); ok {
		if b, ok := t.boolean("enabled"); ok {
			c.ClientCache.Enabled = b
		}
		if b, ok := t.boolean("hot_only"); ok {
			c.ClientCache.HotOnly = b
		}
		for _, f := range []struct {
			l   limits.Int
			dst *int
		}{
			{limits.ClientCacheMaxEntries, &c.ClientCache.MaxEntries},
			{limits.ClientCacheMaxValueBytes, &c.ClientCache.MaxValueBytes},
			{limits.ClientCacheShardCount, &c.ClientCache.ShardCount},
			{limits.ClientCacheMaxMemory, &c.ClientCache.MaxMemory},
			{limits.ClientCacheDrainBatch, &c.ClientCache.DrainBatch},
		} {
			if n, ok := t.limitedInt(f.l); ok {
				*f.dst = n
			}
		}
		if d, ok := t.duration(limits.ClientCacheDrainInterval, time.Millisecond); ok {
			c.ClientCache.DrainInterval = d
		}
		t.unknown()
	}
}

// crossCluster checks what must be unique across clusters: names (case-insensitively, as
// they name metrics and admin targets). Listen addresses: listenClashes.
func (p *parser) crossCluster(cs []Cluster) {
	names := map[string]int{}
	for i, c := range cs {
		at := indexPath("clusters", i)
		if c.Name != "" {
			k := strings.ToLower(c.Name)
			if j, dup := names[k]; dup {
				p.add(&Error{Line: lineOf(p.lines, at+".name"), Cluster: c.Name, Index: i, Key: "name",
					Msg: fmt.Sprintf("duplicate cluster name (also clusters[%d] %q)", j, cs[j].Name)})
			} else {
				names[k] = i
			}
		}
	}
}
