package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/limits"
)

// Converting a twemproxy (nutcracker) configuration: every pool becomes one [[clusters]] table
// of cache_type "redis" that puts every key on the server twemproxy put it on (same hash, hash
// tag, ketama ring, server names and weights), so a pool can switch to asterd in place.
// Where Aster's default differs from twemproxy's (hash_tag, timeout, client_connections) the
// file states twemproxy's value. A setting with no Aster equivalent that would change what
// clients see (a memcached pool, modula or random distribution, a database other than 0, a
// unix-socket server) is refused, naming the pool and key; one that changes nothing a client
// sees (backlog, preconnect, tcpkeepalive, a listening socket's mode) is carried over as a
// comment and a note on stderr.

// Twemproxy's defaults (nc_conf.h).
const (
	twemDefaultHash         = "fnv1a_64"
	twemDefaultDist         = "ketama"
	twemDefaultFailureLimit = 2
	twemDefaultRetryTimeout = 30000 // ms
	twemDefaultServerConns  = 1
	// pingIntervalMillis is how often asterd pings each server of a pool that ejects hosts:
	// twemproxy counts failed requests, asterd failed pings, so ejection takes
	// server_failure_limit × this long, whatever the traffic.
	pingIntervalMillis = 1000
)

// twemKeys are the pool keys twemproxy 0.5 reads, in the order the converted file mentions them.
var twemKeys = []string{
	"listen", "redis", "hash", "hash_tag", "distribution", "servers", "timeout", "server_connections",
	"client_connections", "redis_auth", "redis_db", "auto_eject_hosts", "server_failure_limit",
	"server_retry_timeout", "backlog", "preconnect", "tcpkeepalive",
}

// twemDistributions are twemproxy's distribution names; only ketama has an Aster equivalent.
var twemDistributions = map[string]string{
	"modula": "modula picks hash % number of servers, so keys would move to other servers",
	"random": "random sends each key to any server, which Aster never does",
}

func (a *app) configCommand() *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files: from-twemproxy",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("missing config command")
			}
			return usagef("unknown config command %q", args[0])
		},
	}
	from := &cobra.Command{
		Use:   "from-twemproxy FILE",
		Short: "Convert a twemproxy (nutcracker) YAML configuration to Aster's TOML",
		Long: `Convert every pool of a twemproxy (nutcracker) YAML configuration into a [[clusters]] table of
Aster's TOML and write it to stdout; FILE "-" reads stdin. Keys land on the same servers as
with twemproxy (hash, hash_tag, ketama, server names and weights are kept), so a pool can move
to asterd without moving data. Settings with no Aster equivalent (memcached pools,
distribution modula or random, redis_db other than 0, unix-socket servers) are refused with
the pool and key named; settings that change nothing clients see (backlog, preconnect,
tcpkeepalive) become comments and a note on stderr.

  asterctl config from-twemproxy /etc/nutcracker/nutcracker.yml > aster.toml
  asterd --check --config aster.toml

See docs/migrating-from-twemproxy.md.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("config from-twemproxy takes 1 argument (FILE, or - for stdin), got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			name := args[0]
			if name == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxTwemFile+1))
				name = "stdin"
			} else {
				data, err = readLimited(name)
			}
			if err != nil {
				return &callError{err: err}
			}
			if len(data) > maxTwemFile {
				return &callError{err: fmt.Errorf("%s: larger than %d bytes: not a twemproxy configuration", name, maxTwemFile)}
			}
			out, notes, err := fromTwemproxy(data, name)
			if err != nil {
				return &callError{err: err}
			}
			for _, n := range notes {
				fmt.Fprintf(a.stderr, "asterctl: note: %s\n", n)
			}
			if _, err := a.stdout.Write(out); err != nil {
				return &callError{err: err}
			}
			return nil
		},
	}
	cfg.AddCommand(from)
	return cfg
}

// maxTwemFile bounds the file read: a nutcracker.yml is a few KiB.
const maxTwemFile = 16 << 20

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxTwemFile+1))
}

// twemProblems collects every refusal of a file, so that one run lists them all.
type twemProblems struct {
	file string
	errs []string
}

func (p *twemProblems) add(line int, pool, key, format string, args ...any) {
	at := p.file
	if line > 0 {
		at += ":" + strconv.Itoa(line)
	}
	where := ""
	if pool != "" {
		where = fmt.Sprintf(" pool %q:", pool)
	}
	if key != "" {
		where += " " + key + ":"
	}
	p.errs = append(p.errs, fmt.Sprintf("%s:%s %s", at, where, fmt.Sprintf(format, args...)))
}

// twemPool is one pool's settings as read, with the line of each key.
type twemPool struct {
	name  string
	line  int
	vals  map[string]*yaml.Node
	lines map[string]int
}

// fromTwemproxy converts a nutcracker YAML file to Aster TOML; notes are for stderr. On any
// refusal it returns every problem of the file, each naming file, line, pool and key.
func fromTwemproxy(data []byte, file string) (out []byte, notes []string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: not YAML: %w", file, err)
	}
	p := &twemProblems{file: file}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode || len(doc.Content[0].Content) == 0 {
		return nil, nil, fmt.Errorf("%s: no pools: a twemproxy configuration maps pool names to their settings", file)
	}
	top := doc.Content[0]
	var pools []twemPool
	seen := map[string]int{} // pool names, as Aster compares cluster names: case-insensitively
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode || strings.TrimSpace(k.Value) == "" {
			p.add(k.Line, "", "", "a pool name must be a non-empty string")
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.add(v.Line, k.Value, "", "must be a mapping of settings (listen, hash, servers, ...)")
			continue
		}
		if line, dup := seen[strings.ToLower(k.Value)]; dup {
			p.add(k.Line, k.Value, "", "a second pool of that name (also line %d; Aster compares cluster names case-insensitively)", line)
			continue
		}
		seen[strings.ToLower(k.Value)] = k.Line
		pool := twemPool{name: k.Value, line: k.Line, vals: map[string]*yaml.Node{}, lines: map[string]int{}}
		for j := 0; j+1 < len(v.Content); j += 2 {
			key, val := v.Content[j], v.Content[j+1]
			if val.Kind == yaml.AliasNode {
				val = val.Alias
			}
			if !slices.Contains(twemKeys, key.Value) {
				p.add(key.Line, pool.name, key.Value, "unknown twemproxy key (twemproxy 0.5 knows %s)", strings.Join(twemKeys, ", "))
				continue
			}
			pool.vals[key.Value], pool.lines[key.Value] = val, key.Line
		}
		pools = append(pools, pool)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Converted from %s by asterctl config from-twemproxy (asterctl %s).\n", file, buildVersion())
	b.WriteString("# Every key goes to the server twemproxy sent it to: hash, hash_tag, ketama, server names\n")
	b.WriteString("# and weights are kept. See docs/migrating-from-twemproxy.md for what changes for clients.\n")
	b.WriteString("# asterd's admin API (127.0.0.1:7790) and metrics (127.0.0.1:7791) keep their defaults:\n")
	b.WriteString("# add [admin] and [metrics] tables to change them.\n")
	for _, pool := range pools {
		notes = append(notes, convertPool(&b, p, pool)...)
	}
	if len(p.errs) > 0 {
		return nil, nil, errors.New(strings.Join(p.errs, "\n"))
	}
	// The file must load as asterd will load it; a failure here is a converter bug, but saying
	// so beats writing a file asterd refuses.
	if _, err := config.Parse(b.Bytes(), "converted "+file); err != nil {
		return nil, nil, fmt.Errorf("the converted configuration does not load: %w", err)
	}
	return b.Bytes(), notes, nil
}

// poolReader reads typed values of one pool, reporting problems with file line and key.
type poolReader struct {
	p    *twemProblems
	pool twemPool
}

func (r poolReader) errf(key, format string, args ...any) {
	line := r.pool.lines[key]
	if line == 0 {
		line = r.pool.line
	}
	r.p.add(line, r.pool.name, key, format, args...)
}

func (r poolReader) has(key string) bool { return r.pool.vals[key] != nil }

func (r poolReader) str(key string) (string, bool) {
	n := r.pool.vals[key]
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		r.errf(key, "must be a string")
		return "", false
	}
	return n.Value, true
}

func (r poolReader) boolean(key string) (val, set bool) {
	n := r.pool.vals[key]
	if n == nil {
		return false, false
	}
	switch n.Value {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	r.errf(key, "%q is not true or false", n.Value)
	return false, false
}

// num reads a non-negative integer, as twemproxy's conf_set_num does.
func (r poolReader) num(key string) (int64, bool) {
	n := r.pool.vals[key]
	if n == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
		r.errf(key, "%q is not a non-negative integer", n.Value)
		return 0, false
	}
	return v, true
}

// limited reads a number and checks it against the range of the Aster key it becomes.
func (r poolReader) limited(key string, l limits.Int) (int64, bool) {
	v, ok := r.num(key)
	if !ok {
		return 0, false
	}
	if !l.Contains(v) {
		r.errf(key, "%d is out of the range of Aster's %s (%s)", v, l.Key, l.Range())
		return 0, false
	}
	return v, true
}

// convertPool writes one pool as a [[clusters]] table and returns its notes.
func convertPool(b *bytes.Buffer, p *twemProblems, pool twemPool) (notes []string) {
	r := poolReader{p: p, pool: pool}
	note := func(key, format string, args ...any) {
		notes = append(notes, fmt.Sprintf("pool %q: %s: ", pool.name, key)+fmt.Sprintf(format, args...))
	}
	var t bytes.Buffer
	kv := func(key, value, comment string) {
		fmt.Fprintf(&t, "%s = %s", key, value)
		if comment != "" {
			t.WriteString("  # " + comment)
		}
		t.WriteByte('\n')
	}
	comment := func(format string, args ...any) { fmt.Fprintf(&t, "# "+format+"\n", args...) }

	fmt.Fprintf(&t, "\n[[clusters]]\n# twemproxy pool %q\n", pool.name)
	kv("name", tomlString(pool.name), "")

	// A pool without redis: true speaks memcached, twemproxy's default.
	if isRedis, set := r.boolean("redis"); !isRedis {
		if set || !r.has("redis") {
			r.errf("redis", "the pool speaks memcached (redis: true is not set): Aster proxies Redis only; keep this pool on twemproxy")
		}
	}

	listen, ok := r.str("listen")
	switch {
	case !r.has("listen"):
		r.errf("listen", "required")
	case ok:
		convertListen(r, listen, kv, comment, note)
	}
	kv("cache_type", `"redis"`, "")

	hash := twemDefaultHash
	if s, ok := r.str("hash"); ok {
		hash = s
	}
	if !slices.Contains(config.HashMethods, hash) {
		r.errf("hash", "%q is not a twemproxy hash Aster knows (%s)", hash, strings.Join(config.HashMethods, ", "))
	}
	kv("hash_method", tomlString(hash), "")

	dist := twemDefaultDist
	if s, ok := r.str("distribution"); ok {
		dist = s
	}
	if why, known := twemDistributions[dist]; known {
		r.errf("distribution", "%s has no Aster equivalent: Aster places keys with ketama only (%s); keep this pool on twemproxy, or move its data", dist, why)
	} else if dist != "ketama" {
		r.errf("distribution", "%q is not ketama, modula or random", dist)
	}
	kv("hash_distribution", `"ketama"`, "")

	// twemproxy hashes the whole key unless hash_tag is set; Aster's default is "{}".
	if s, ok := r.str("hash_tag"); ok {
		if len(s) != 2 {
			r.errf("hash_tag", "%q must be two characters, like \"{}\"", s)
		}
		kv("hash_tag", tomlString(s), "")
	} else if !r.has("hash_tag") {
		kv("hash_tag", `""`, "twemproxy without hash_tag hashes whole keys")
	}

	convertServers(r, &t)

	if ms, ok := r.limited("timeout", limits.ReadTimeout); ok {
		c := fmt.Sprintf("timeout: %d", ms)
		if ms == 0 {
			c = "timeout: 0 (no deadline)"
		}
		kv("read_timeout", strconv.FormatInt(ms, 10), c)
		kv("write_timeout", strconv.FormatInt(ms, 10), c)
		kv("dial_timeout", strconv.FormatInt(ms, 10), c)
	} else if !r.has("timeout") {
		comment("twemproxy without timeout waits for servers indefinitely; so does this file (0). Aster's")
		comment("default is 1000 ms: set a deadline your slowest commands meet.")
		kv("read_timeout", "0", "")
		kv("write_timeout", "0", "")
		kv("dial_timeout", "0", "")
	}

	conns := int64(twemDefaultServerConns)
	if n, ok := r.limited("server_connections", limits.NodeConnections); ok {
		conns = n
	}
	kv("node_connections", strconv.FormatInt(conns, 10), "server_connections")

	if n, ok := r.limited("client_connections", limits.MaxConnections); ok {
		kv("max_connections", strconv.FormatInt(n, 10), "client_connections")
	} else if !r.has("client_connections") {
		kv("max_connections", "0", "twemproxy without client_connections: no limit of its own")
	}

	if pw, ok := r.str("redis_auth"); ok && pw != "" {
		// twemproxy sends AUTH to its servers and requires the same password of clients.
		kv("password", tomlString(pw), "redis_auth: clients AUTH with it, as with twemproxy")
		kv("backend_password", tomlString(pw), "redis_auth: asterd AUTHs to the servers with it")
	}
	if db, ok := r.num("redis_db"); ok && db != 0 {
		r.errf("redis_db", "%d has no Aster equivalent: asterd uses each server's database 0; move the data to db 0 or keep this pool on twemproxy", db)
	}

	convertEjection(r, kv, comment, note)

	if n, ok := r.num("backlog"); ok {
		comment("backlog: %d not converted: asterd listens with the system's backlog (net.core.somaxconn)", n)
		note("backlog", "%d not converted: asterd listens with the system's backlog (net.core.somaxconn)", n)
	}
	if on, ok := r.boolean("preconnect"); ok && on {
		comment("preconnect: true not needed: asterd pings every server from the start, and dials data connections on first use")
	}
	if _, ok := r.boolean("tcpkeepalive"); ok {
		comment("tcpkeepalive: asterd always keeps TCP keepalive on its server connections (15 s probes)")
	}

	b.Write(t.Bytes())
	return notes
}

// convertListen writes listen_addr (and listen_proto for a unix socket).
func convertListen(r poolReader, listen string, kv func(k, v, c string), comment func(string, ...any), note func(k, f string, a ...any)) {
	fields := strings.Fields(listen)
	if len(fields) == 0 || len(fields) > 2 {
		r.errf("listen", "%q is not host:port or a socket path (with an optional mode)", listen)
		return
	}
	if strings.HasPrefix(fields[0], "/") {
		kv("listen_proto", `"unix"`, "")
		kv("listen_addr", tomlString(fields[0]), "")
		if len(fields) == 2 {
			comment("socket mode %s not converted: asterd creates the socket with its umask (systemd UMask=)", fields[1])
			note("listen", "socket mode %s not converted: asterd creates the socket with its umask (set UMask= in the systemd unit, or chmod it)", fields[1])
		}
		return
	}
	if len(fields) == 2 {
		r.errf("listen", "%q: a mode is only for a socket path", listen)
		return
	}
	host, port, ok := splitLast(fields[0])
	if !ok {
		r.errf("listen", "%q is not host:port", listen)
		return
	}
	kv("listen_addr", tomlString(net.JoinHostPort(host, port)), "")
}

// splitLast splits "host:port" at its last colon, as twemproxy does ("::1:22121" too).
func splitLast(s string) (host, port string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	host, port = strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]"), s[i+1:]
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", false
	}
	return host, port, true
}

// convertServers writes `servers`: twemproxy's "host:port:weight [name]" is Aster's format;
// only the host is written as net.JoinHostPort does (IPv6 in brackets).
func convertServers(r poolReader, t *bytes.Buffer) {
	n := r.pool.vals["servers"]
	if n == nil {
		r.errf("servers", "required (at least one server)")
		return
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		r.errf("servers", "must list at least one server")
		return
	}
	t.WriteString("servers = [\n")
	for i, e := range n.Content {
		key := fmt.Sprintf("servers[%d]", i)
		line := func(format string, args ...any) { r.p.add(e.Line, r.pool.name, key, format, args...) }
		if e.Kind != yaml.ScalarNode {
			line("must be a string \"host:port:weight [name]\"")
			continue
		}
		fields := strings.Fields(e.Value)
		if len(fields) == 0 || len(fields) > 2 {
			line("%q is not \"host:port:weight [name]\"", e.Value)
			continue
		}
		addr := fields[0]
		if strings.HasPrefix(addr, "/") {
			line("%q is a unix socket: Aster's servers are host:port", addr)
			continue
		}
		i := strings.LastIndexByte(addr, ':')
		if i <= 0 {
			line("%q is not host:port:weight", addr)
			continue
		}
		hp, weight := addr[:i], addr[i+1:]
		host, port, ok := splitLast(hp)
		if !ok {
			line("%q is not host:port:weight", addr)
			continue
		}
		w, err := strconv.ParseInt(weight, 10, 64)
		if err != nil || !limits.ServerWeight.Contains(w) {
			line("weight %q is out of Aster's range %s", weight, limits.ServerWeight.Range())
			continue
		}
		item := net.JoinHostPort(host, port) + ":" + strconv.FormatInt(w, 10)
		if len(fields) == 2 {
			item += " " + fields[1]
		}
		fmt.Fprintf(t, "  %s,\n", tomlString(item))
	}
	t.WriteString("]\n")
}

// convertEjection maps twemproxy's ejection of failing hosts to asterd's health pings:
// server_failure_limit consecutive failures eject (ping_fail_limit), and an ejected server is
// tried again every server_retry_timeout (ping_succ_interval); asterd puts it back at its
// first answered ping.
func convertEjection(r poolReader, kv func(k, v, c string), comment func(string, ...any), note func(k, f string, a ...any)) {
	eject, _ := r.boolean("auto_eject_hosts")
	if !eject {
		kv("ping_fail_limit", "0", "auto_eject_hosts: false (a failed server keeps its keys)")
		for _, k := range []string{"server_failure_limit", "server_retry_timeout"} {
			if _, ok := r.num(k); ok {
				comment("%s has no effect without auto_eject_hosts, in twemproxy as here", k)
			}
		}
		return
	}
	limit := int64(twemDefaultFailureLimit)
	if n, ok := r.limited("server_failure_limit", limits.PingFailLimit); ok {
		limit = n
	}
	retry := int64(twemDefaultRetryTimeout)
	if n, ok := r.limited("server_retry_timeout", limits.PingSuccInterval); ok {
		retry = n
	}
	if limit == 0 {
		// twemproxy ejects at once when the limit is 0; asterd's 0 never ejects.
		limit = 1
		note("server_failure_limit", "0 converted to ping_fail_limit = 1 (Aster's 0 turns ejection off)")
	}
	comment("auto_eject_hosts: true. twemproxy counts failed requests; asterd pings each server every")
	comment("ping_interval and ejects it after ping_fail_limit failed pings in a row.")
	kv("ping_fail_limit", strconv.FormatInt(limit, 10), "server_failure_limit")
	kv("ping_interval", strconv.Itoa(pingIntervalMillis), "")
	kv("ping_succ_interval", strconv.FormatInt(retry, 10), "server_retry_timeout: how often an ejected server is tried")
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
