package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/controlplane/config"
)

// convertOne converts a one-pool file and loads the result as asterd would.
func convertOne(t *testing.T, yml string) (config.Cluster, string, []string) {
	t.Helper()
	out, notes, err := fromTwemproxy([]byte(yml), "nutcracker.yml")
	if err != nil {
		t.Fatalf("convert: %v\n%s", err, yml)
	}
	cfg, err := config.Parse(out, "aster.toml")
	if err != nil {
		t.Fatalf("the converted file does not load: %v\n%s", err, out)
	}
	if len(cfg.Clusters) != 1 {
		t.Fatalf("%d clusters, want 1:\n%s", len(cfg.Clusters), out)
	}
	return cfg.Clusters[0], string(out), notes
}

const minimalPool = `p:
  listen: 127.0.0.1:22121
  redis: true
  servers:
   - 127.0.0.1:6379:1
`

// TestFromTwemproxyKeys converts each twemproxy key alone (on top of a minimal pool) and checks
// the setting asterd loads from the result.
func TestFromTwemproxyKeys(t *testing.T) {
	cases := []struct {
		name  string
		extra string // lines added to minimalPool's settings
		check func(c config.Cluster) bool
		text  string // a substring of the converted file ("" for none)
		note  string // a substring of a note ("" for no note)
	}{
		{"defaults: twemproxy's, stated where Aster's differ", "", func(c config.Cluster) bool {
			return c.Name == "p" && c.ListenAddr == "127.0.0.1:22121" && c.ListenProto == "tcp" && c.CacheType == config.CacheRedis &&
				c.HashMethod == "fnv1a_64" && c.HashDistribution == "ketama" && c.HashTag == "" &&
				c.ReadTimeout == 0 && c.WriteTimeout == 0 && c.DialTimeout == 0 && c.NodeConnections == 1 && c.MaxConnections == 0 &&
				c.PingFailLimit == 0 && c.Password == "" && c.BackendPassword == ""
		}, `hash_tag = ""`, ""},
		{"listen host name", "  listen: localhost:22121\n", func(c config.Cluster) bool { return c.ListenAddr == "localhost:22121" }, "", ""},
		{"listen IPv6 as twemproxy writes it", "  listen: ::1:22121\n", func(c config.Cluster) bool { return c.ListenAddr == "[::1]:22121" }, "", ""},
		{"listen unix socket", "  listen: /tmp/nut.sock\n", func(c config.Cluster) bool {
			return c.ListenProto == "unix" && c.ListenAddr == "/tmp/nut.sock"
		}, "", ""},
		{"listen unix socket with a mode", "  listen: /tmp/nut.sock 0666\n", func(c config.Cluster) bool {
			return c.ListenProto == "unix" && c.ListenAddr == "/tmp/nut.sock"
		}, "socket mode 0666 not converted", "socket mode 0666 not converted"},
		{"hash", "  hash: murmur\n", func(c config.Cluster) bool { return c.HashMethod == "murmur" }, "", ""},
		{"every twemproxy hash", "", nil, "", ""}, // expanded below
		{"hash_tag", "  hash_tag: \"{}\"\n", func(c config.Cluster) bool { return c.HashTag == "{}" }, "", ""},
		{"hash_tag of other characters", "  hash_tag: \"$$\"\n", func(c config.Cluster) bool { return c.HashTag == "$$" }, "", ""},
		{"distribution ketama", "  distribution: ketama\n", func(c config.Cluster) bool { return c.HashDistribution == "ketama" }, "", ""},
		{"timeout", "  timeout: 400\n", func(c config.Cluster) bool {
			return c.ReadTimeout == 400*time.Millisecond && c.WriteTimeout == 400*time.Millisecond && c.DialTimeout == 400*time.Millisecond
		}, "read_timeout = 400  # timeout: 400", ""},
		{"backlog", "  backlog: 1024\n", func(c config.Cluster) bool { return true }, "# backlog: 1024 not converted", "backlog: 1024 not converted"},
		{"preconnect", "  preconnect: true\n", func(c config.Cluster) bool { return true }, "# preconnect: true not needed", ""},
		{"tcpkeepalive", "  tcpkeepalive: true\n", func(c config.Cluster) bool { return true }, "# tcpkeepalive: asterd always keeps TCP keepalive", ""},
		{"redis_auth", "  redis_auth: \"s3\\\"cret\"\n", func(c config.Cluster) bool {
			return c.Password == `s3"cret` && c.BackendPassword == `s3"cret`
		}, "", ""},
		{"redis_db 0", "  redis_db: 0\n", func(c config.Cluster) bool { return true }, "", ""},
		{"server_connections", "  server_connections: 4\n", func(c config.Cluster) bool { return c.NodeConnections == 4 }, "", ""},
		{"client_connections", "  client_connections: 100\n", func(c config.Cluster) bool { return c.MaxConnections == 100 }, "", ""},
		{"auto_eject_hosts with twemproxy's defaults", "  auto_eject_hosts: true\n", func(c config.Cluster) bool {
			return c.PingFailLimit == 2 && c.PingInterval == time.Second && c.PingSuccInterval == 30*time.Second
		}, "", ""},
		{"auto_eject_hosts with limit and retry", "  auto_eject_hosts: true\n  server_failure_limit: 3\n  server_retry_timeout: 2000\n", func(c config.Cluster) bool {
			return c.PingFailLimit == 3 && c.PingInterval == time.Second && c.PingSuccInterval == 2*time.Second
		}, "", ""},
		{"server_failure_limit 0 ejects at the first failure", "  auto_eject_hosts: true\n  server_failure_limit: 0\n", func(c config.Cluster) bool {
			return c.PingFailLimit == 1
		}, "", "0 converted to ping_fail_limit = 1"},
		{"auto_eject_hosts false keeps failed servers", "  auto_eject_hosts: false\n  server_failure_limit: 3\n  server_retry_timeout: 0\n", func(c config.Cluster) bool {
			return c.PingFailLimit == 0
		}, "# server_failure_limit has no effect without auto_eject_hosts", ""},
	}
	for _, c := range cases {
		if c.check == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			yml := strings.Replace(minimalPool, "  servers:\n", c.extra+"  servers:\n", 1)
			if strings.HasPrefix(c.extra, "  listen:") {
				yml = strings.Replace(minimalPool, "  listen: 127.0.0.1:22121\n", c.extra, 1)
			}
			cl, text, notes := convertOne(t, yml)
			if !c.check(cl) {
				t.Errorf("converted to %+v\n%s", cl, text)
			}
			if c.text != "" && !strings.Contains(text, c.text) {
				t.Errorf("converted file lacks %q:\n%s", c.text, text)
			}
			joined := strings.Join(notes, "\n")
			if (c.note == "") != (len(notes) == 0) || !strings.Contains(joined, c.note) {
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
		})
	}
	t.Run("every twemproxy hash", func(t *testing.T) {
		for _, h := range []string{"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"} {
			cl, _, _ := convertOne(t, strings.Replace(minimalPool, "  servers:\n", "  hash: "+h+"\n  servers:\n", 1))
			if cl.HashMethod != h {
				t.Errorf("hash %s converted to %s", h, cl.HashMethod)
			}
		}
	})
}

// TestFromTwemproxyServers: weights and names are kept as they are (they place the keys);
// hosts are written as Aster writes them.
func TestFromTwemproxyServers(t *testing.T) {
	cl, _, _ := convertOne(t, `p:
  listen: 127.0.0.1:22121
  redis: true
  servers:
   - 127.0.0.1:6379:1 r1
   - 127.0.0.1:6380:3 r2
   - cache.example:6381:2
   - ::1:6382:65535
`)
	want := []config.Server{
		{Addr: "127.0.0.1:6379", Weight: 1, Alias: "r1"},
		{Addr: "127.0.0.1:6380", Weight: 3, Alias: "r2"},
		{Addr: "cache.example:6381", Weight: 2},
		{Addr: "[::1]:6382", Weight: 65535},
	}
	if !reflect.DeepEqual(cl.Servers, want) {
		t.Errorf("servers %+v, want %+v", cl.Servers, want)
	}
}

// TestFromTwemproxyAnchors: YAML anchors and aliases are followed, for pools and values.
func TestFromTwemproxyAnchors(t *testing.T) {
	out, _, err := fromTwemproxy([]byte(`a:
  listen: 127.0.0.1:22121
  redis: true
  timeout: &t 250
  servers: &s
   - 127.0.0.1:6379:1 r1
b:
  listen: 127.0.0.1:22122
  redis: true
  timeout: *t
  servers: *s
`), "n.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out, "aster.toml")
	if err != nil || len(cfg.Clusters) != 2 || cfg.Clusters[1].ReadTimeout != 250*time.Millisecond || cfg.Clusters[1].Servers[0].Alias != "r1" {
		t.Fatalf("%v %+v\n%s", err, cfg, out)
	}
}

// TestFromTwemproxyPools: every pool becomes a cluster, in file order.
func TestFromTwemproxyPools(t *testing.T) {
	out, _, err := fromTwemproxy([]byte(minimalPool+strings.ReplaceAll(strings.ReplaceAll(minimalPool, "p:", "second:"), "22121", "22122")), "n.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out, "aster.toml")
	if err != nil || len(cfg.Clusters) != 2 || cfg.Clusters[0].Name != "p" || cfg.Clusters[1].Name != "second" || cfg.Clusters[1].ListenAddr != "127.0.0.1:22122" {
		t.Fatalf("%v %+v\n%s", err, cfg, out)
	}
}

// TestFromTwemproxyRefusals: what has no Aster equivalent is refused, naming file, line, pool
// and key, and nothing is converted.
func TestFromTwemproxyRefusals(t *testing.T) {
	cases := []struct {
		name  string
		extra string // replaces "  redis: true\n" of minimalPool (keep it in if needed)
		want  string
	}{
		{"memcached pool", "", `nutcracker.yml:1: pool "p": redis: the pool speaks memcached (redis: true is not set): Aster proxies Redis only`},
		{"redis false", "  redis: false\n", `nutcracker.yml:3: pool "p": redis: the pool speaks memcached`},
		{"redis not a boolean", "  redis: yes\n", `nutcracker.yml:3: pool "p": redis: "yes" is not true or false`},
		{"modula", "  redis: true\n  distribution: modula\n", `nutcracker.yml:4: pool "p": distribution: modula has no Aster equivalent: Aster places keys with ketama only`},
		{"random", "  redis: true\n  distribution: random\n", `pool "p": distribution: random has no Aster equivalent`},
		{"unknown distribution", "  redis: true\n  distribution: rendezvous\n", `pool "p": distribution: "rendezvous" is not ketama, modula or random`},
		{"unknown hash", "  redis: true\n  hash: sha1\n", `nutcracker.yml:4: pool "p": hash: "sha1" is not a twemproxy hash Aster knows`},
		{"redis_db", "  redis: true\n  redis_db: 2\n", `pool "p": redis_db: 2 has no Aster equivalent: asterd uses each server's database 0`},
		{"hash_tag of one character", "  redis: true\n  hash_tag: \"{\"\n", `pool "p": hash_tag: "{" must be two characters`},
		{"unknown key", "  redis: true\n  sentinels: []\n", `nutcracker.yml:4: pool "p": sentinels: unknown twemproxy key`},
		{"server_connections out of range", "  redis: true\n  server_connections: 100\n", `pool "p": server_connections: 100 is out of the range of Aster's node_connections (1..64)`},
		{"negative timeout", "  redis: true\n  timeout: -1\n", `pool "p": timeout: "-1" is not a non-negative integer`},
		{"timeout not a number", "  redis: true\n  timeout: soon\n", `pool "p": timeout: "soon" is not a non-negative integer`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yml := strings.Replace(minimalPool, "  redis: true\n", c.extra, 1)
			out, _, err := fromTwemproxy([]byte(yml), "nutcracker.yml")
			if err == nil || !strings.Contains(err.Error(), c.want) || out != nil {
				t.Errorf("got %v (output %d bytes), want an error with %q", err, len(out), c.want)
			}
		})
	}

	for _, c := range []struct{ name, yml, want string }{
		{"not YAML", "p: [", "nutcracker.yml: not YAML"},
		{"empty", "", "nutcracker.yml: no pools"},
		{"a list", "- a\n- b\n", "nutcracker.yml: no pools"},
		{"pool not a mapping", "p: 3\n", `nutcracker.yml:1: pool "p": must be a mapping of settings`},
		{"no listen", "p:\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", `pool "p": listen: required`},
		{"bad listen", "p:\n  listen: nowhere\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", `nutcracker.yml:2: pool "p": listen: "nowhere" is not host:port`},
		{"no servers", "p:\n  listen: 127.0.0.1:1\n  redis: true\n", `pool "p": servers: required`},
		{"empty servers", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers: []\n", `pool "p": servers: must list at least one server`},
		{"server without weight", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:6379\n", `nutcracker.yml:5: pool "p": servers[0]: "127.0.0.1:6379" is not host:port:weight`},
		{"weight out of range", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:6379:100000\n", `servers[0]: weight "100000" is out of Aster's range 1..65535`},
		{"unix socket server", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - /tmp/redis.sock:1\n", `servers[0]: "/tmp/redis.sock:1" is a unix socket: Aster's servers are host:port`},
		{"retry timeout out of range", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  auto_eject_hosts: true\n  server_retry_timeout: 0\n  servers:\n   - h:1:1\n",
			`nutcracker.yml:5: pool "p": server_retry_timeout: 0 is out of the range of Aster's ping_succ_interval`},
		{"same pool twice", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - h:1:1\nP:\n  listen: 127.0.0.1:2\n  redis: true\n  servers:\n   - h:1:1\n",
			`nutcracker.yml:6: pool "P": a second pool of that name (also line 1`},
		{"server with spaces in the name", "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1 a b\n", `servers[0]: "127.0.0.1:6379:1 a b" is not "host:port:weight [name]"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := fromTwemproxy([]byte(c.yml), "nutcracker.yml"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestFromTwemproxyCommand: the command writes only TOML on stdout, notes on stderr, every
// refusal of a file at once with exit 1, and reads stdin for "-".
func TestFromTwemproxyCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	if err := os.WriteFile(good, []byte(strings.Replace(minimalPool, "  servers:\n", "  backlog: 512\n  servers:\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "from-twemproxy", good}, &stdout, &stderr, envOf(nil)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := config.Parse(stdout.Bytes(), "aster.toml"); err != nil {
		t.Errorf("stdout is not a configuration asterd loads: %v\n%s", err, stdout.String())
	}
	if stderr.String() != "asterctl: note: pool \"p\": backlog: 512 not converted: asterd listens with the system's backlog (net.core.somaxconn)\n" {
		t.Errorf("stderr %q", stderr.String())
	}

	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("a:\n  listen: 127.0.0.1:1\n  servers:\n   - h:1:1\nb:\n  listen: 127.0.0.1:2\n  redis: true\n  distribution: modula\n  servers:\n   - h:1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"config", "from-twemproxy", bad}, &stdout, &stderr, envOf(nil)); code != 1 || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q", code, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "asterctl: "+bad+":1: pool \"a\": redis:") || !strings.HasPrefix(lines[1], "asterctl: "+bad+":8: pool \"b\": distribution: modula") {
		t.Errorf("stderr:\n%s", stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"config", "from-twemproxy", filepath.Join(dir, "missing.yml")}, &stdout, &stderr, envOf(nil)); code != 1 || !strings.Contains(stderr.String(), "missing.yml: no such file") {
		t.Errorf("missing file: exit %d, %q", code, stderr.String())
	}

	a := newApp(&stdout, &stderr, envOf(nil))
	a.root.SetIn(strings.NewReader(minimalPool))
	stdout.Reset()
	if code := a.execute([]string{"config", "from-twemproxy", "-"}); code != 0 || !strings.Contains(stdout.String(), "# Converted from stdin") {
		t.Errorf("stdin: exit %d\n%s", code, stdout.String())
	}
}
