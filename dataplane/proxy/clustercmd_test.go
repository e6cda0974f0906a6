package proxy_test

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// wholeReply reads one complete RESP2 reply, nested arrays included, as the raw bytes sent.
func wholeReply(r *rawConn) string {
	r.t.Helper()
	l := r.line()
	if l == "" {
		r.t.Fatal("empty reply line")
	}
	switch l[0] {
	case '$':
		n, err := strconv.Atoi(l[1:])
		if err != nil {
			r.t.Fatalf("bad bulk header %q", l)
		}
		if n < 0 {
			return l + "\r\n"
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, b); err != nil {
			r.t.Fatalf("read bulk: %v", err)
		}
		return l + "\r\n" + string(b)
	case '*', '>', '%': // an array, a RESP3 push or map
		n, err := strconv.Atoi(l[1:])
		if err != nil {
			r.t.Fatalf("bad array header %q", l)
		}
		if l[0] == '%' {
			n *= 2
		}
		s := l + "\r\n"
		for i := 0; i < n; i++ {
			s += wholeReply(r)
		}
		return s
	default:
		return l + "\r\n"
	}
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

func cmdFrame(args ...string) string {
	s := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		s += bulk(a)
	}
	return s
}

// startAnnouncing serves a cluster named "ann" on listen with announceIP, in front of one
// real redis-server, and returns its address.
func startAnnouncing(t *testing.T, listen, announceIP string) string {
	t.Helper()
	srv := redistest.Start(t)
	c := proxy.MustCluster(t, route.ClusterSpec{Name: "ann",
		Listen:  route.ListenSettings{Addr: listen},
		Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second}},
		proxy.Env{AnnounceIP: announceIP, Logger: testLogger(t)})
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: srv.Addr, Name: "r1", Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(&route.Table{Version: 1, Ring: ring}); err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	go c.Serve()
	t.Cleanup(c.Close)
	return c.Addr().String()
}

func nodeIDOf(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

func TestClusterSubcommandReplies(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	_, portStr, _ := net.SplitHostPort(e.addr)
	id := nodeIDOf("test")
	if len(id) != 40 {
		t.Fatalf("node id %q: not 40 hex digits", id)
	}
	node := "*3\r\n" + bulk("127.0.0.1") + ":" + portStr + "\r\n" + bulk(id)
	// Expected slots are the examples of Redis's CLUSTER KEYSLOT documentation.
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"info", []string{"CLUSTER", "INFO"}, bulk("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n" +
			"cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n" +
			"cluster_current_epoch:1\r\ncluster_my_epoch:1\r\ncluster_stats_messages_sent:0\r\n" +
			"cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n")},
		{"lower case", []string{"cluster", "myid"}, bulk(id)},
		{"myid", []string{"CLUSTER", "MYID"}, bulk(id)},
		{"keyslot", []string{"CLUSTER", "KEYSLOT", "somekey"}, ":11058\r\n"},
		{"keyslot hash tag", []string{"CLUSTER", "KEYSLOT", "{user1000}.following"}, ":3443\r\n"},
		{"keyslot tag at end", []string{"CLUSTER", "KEYSLOT", "foo{hash_tag}"}, ":2515\r\n"},
		{"keyslot same tag", []string{"CLUSTER", "KEYSLOT", "bar{hash_tag}"}, ":2515\r\n"},
		{"keyslot empty key", []string{"CLUSTER", "KEYSLOT", ""}, ":0\r\n"},
		{"slots", []string{"CLUSTER", "SLOTS"}, "*1\r\n*3\r\n:0\r\n:16383\r\n" + node},
		{"shards", []string{"CLUSTER", "SHARDS"}, "*1\r\n*4\r\n" + bulk("slots") + "*2\r\n:0\r\n:16383\r\n" +
			bulk("nodes") + "*1\r\n*14\r\n" + bulk("id") + bulk(id) + bulk("port") + ":" + portStr + "\r\n" +
			bulk("ip") + bulk("127.0.0.1") + bulk("endpoint") + bulk("127.0.0.1") + bulk("role") + bulk("master") +
			bulk("replication-offset") + ":0\r\n" + bulk("health") + bulk("online")},
		{"nodes", []string{"CLUSTER", "NODES"}, bulk(id + " 127.0.0.1:" + portStr + "@" + portStr +
			" myself,master - 0 0 1 connected 0-16383\n")},
		{"unknown subcommand", []string{"CLUSTER", "FROB"}, "-ERR unknown subcommand 'FROB'. Try CLUSTER HELP.\r\n"},
		{"countkeysinslot refused", []string{"CLUSTER", "COUNTKEYSINSLOT", "1"}, "-ERR CLUSTER COUNTKEYSINSLOT is not supported by the proxy\r\n"},
		{"getkeysinslot refused", []string{"CLUSTER", "GETKEYSINSLOT", "1", "10"}, "-ERR CLUSTER GETKEYSINSLOT is not supported by the proxy\r\n"},
		{"meet refused", []string{"CLUSTER", "MEET", "10.0.0.1", "6379"}, "-ERR CLUSTER MEET is not supported by the proxy\r\n"},
		{"keyslot without key", []string{"CLUSTER", "KEYSLOT"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
		{"slots with extra argument", []string{"CLUSTER", "SLOTS", "x"}, "-ERR wrong number of arguments for 'cluster|slots' command\r\n"},
		{"no subcommand", []string{"CLUSTER"}, "-ERR wrong number of arguments for 'cluster' command\r\n"},
	}
	rc := e.raw(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc.send(cmdFrame(tc.args...))
			if got := wholeReply(rc); got != tc.want {
				t.Errorf("%v:\n got %q\nwant %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestClusterAnnouncedAddress(t *testing.T) {
	tests := []struct {
		name, listen, announce, wantIP string
	}{
		{"listener ip", "127.0.0.1:0", "", "127.0.0.1"},
		{"announce ip overrides", "127.0.0.1:0", "10.1.2.3", "10.1.2.3"},
		{"wildcard listener falls back to loopback", "0.0.0.0:0", "", "127.0.0.1"},
		{"wildcard listener with announce ip", "0.0.0.0:0", "192.0.2.7", "192.0.2.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := startAnnouncing(t, tc.listen, tc.announce)
			_, port, _ := net.SplitHostPort(addr)
			c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", port), MaxRetries: -1})
			defer c.Close()
			nodes, err := c.ClusterNodes(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			want := nodeIDOf("ann") + " " + tc.wantIP + ":" + port + "@" + port + " myself,master - 0 0 1 connected 0-16383\n"
			if nodes != want {
				t.Errorf("CLUSTER NODES = %q, want %q", nodes, want)
			}
			//lint:ignore SA1019 asterd answers CLUSTER SLOTS for the clients that still ask it
			slots, err := c.ClusterSlots(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 || len(slots[0].Nodes) != 1 ||
				slots[0].Nodes[0].Addr != net.JoinHostPort(tc.wantIP, port) || slots[0].Nodes[0].ID != nodeIDOf("ann") {
				t.Errorf("CLUSTER SLOTS = %+v", slots)
			}
			shards, err := c.ClusterShards(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != 1 || len(shards[0].Nodes) != 1 || shards[0].Nodes[0].IP != tc.wantIP ||
				shards[0].Nodes[0].Endpoint != tc.wantIP || strconv.Itoa(int(shards[0].Nodes[0].Port)) != port ||
				shards[0].Nodes[0].Role != "master" || shards[0].Nodes[0].Health != "online" ||
				len(shards[0].Slots) != 1 || shards[0].Slots[0].Start != 0 || shards[0].Slots[0].End != 16383 {
				t.Errorf("CLUSTER SHARDS = %+v", shards)
			}
		})
	}
}

// TestClusterClientThroughProxy points a cluster-aware client at the proxy (standalone mode,
// two real servers behind it): it must accept the proxy as the whole cluster and reach every
// key through it.
func TestClusterClientThroughProxy(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{e.addr}, MaxRedirects: 0})
	defer cc.Close()
	const n = 500
	keys := make([]string, n)
	slotsSeen := map[int64]bool{}
	for i := range keys {
		keys[i] = fmt.Sprintf("cc:%d", i)
		if err := cc.Set(ctx, keys[i], "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", keys[i], err)
		}
		slot, err := e.client.ClusterKeySlot(ctx, keys[i]).Result()
		if err != nil {
			t.Fatal(err)
		}
		slotsSeen[slot/1024] = true
	}
	if len(slotsSeen) != 16 {
		t.Fatalf("keys cover %d of 16 slot ranges: not spread over the slots", len(slotsSeen))
	}
	for i := 0; i < n; i += 7 {
		if v, err := cc.Get(ctx, keys[i]).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("GET %s = %q, %v", keys[i], v, err)
		}
	}
	vals, err := cc.MGet(ctx, keys[:50]...).Result()
	if err != nil {
		t.Fatalf("MGET: %v", err)
	}
	for i, v := range vals {
		if v != "v"+strconv.Itoa(i) {
			t.Errorf("MGET[%d] = %v", i, v)
		}
	}
	if err := cc.Get(ctx, "cc:missing").Err(); err != redis.Nil {
		t.Errorf("GET missing = %v, want redis.Nil", err)
	}
	// The keys really are on the servers behind the proxy, spread over both.
	var total int64
	for _, s := range e.servers {
		size, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			t.Errorf("server %s holds no key", s.Addr)
		}
		total += size
	}
	if total != n {
		t.Errorf("servers hold %d keys, want %d", total, n)
	}
}

func TestInfoSections(t *testing.T) {
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 2, metrics: m})
	_, port, _ := net.SplitHostPort(e.addr)
	for i := 0; i < 5; i++ {
		if err := e.client.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := e.client.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Server\r\n", "redis_version:7.0.0\r\n", "aster_version:", "process_id:", "tcp_port:" + port + "\r\n",
		"uptime_in_seconds:", "# Clients\r\n", "connected_clients:1\r\n", "# Stats\r\n",
		"total_connections_received:1\r\n", "# Proxy\r\n", "cluster:test\r\n", "nodes:2\r\n",
		"# Cluster\r\n", "cluster_enabled:1\r\n", "# Keyspace\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	// 5 PINGs + this INFO; go-redis's connection setup may add a HELLO or CLIENT SETINFO.
	n := statValue(t, info, "total_commands_processed")
	if n < 6 || n > 10 {
		t.Errorf("total_commands_processed = %d, want 6..10", n)
	}

	tests := []struct {
		name     string
		args     []any
		has, not []string
	}{
		{"one section", []any{"INFO", "stats"}, []string{"# Stats\r\n"}, []string{"# Server", "# Cluster"}},
		{"section name any case", []any{"INFO", "CLUSTER"}, []string{"cluster_enabled:1"}, []string{"# Stats"}},
		{"two sections", []any{"INFO", "server", "clients"}, []string{"# Server\r\n", "# Clients\r\n"}, []string{"# Proxy"}},
		{"all", []any{"INFO", "all"}, []string{"# Server\r\n", "# Keyspace\r\n"}, nil},
		{"unknown section is empty", []any{"INFO", "nosuch"}, nil, []string{"#"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.client.Do(ctx, tc.args...).Text()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.has {
				if !strings.Contains(got, h) {
					t.Errorf("lacks %q: %q", h, got)
				}
			}
			for _, h := range tc.not {
				if strings.Contains(got, h) {
					t.Errorf("has %q: %q", h, got)
				}
			}
		})
	}
}

// TestInfoStatsWithoutMetrics: INFO's counters are the proxy's own, not read back from
// Prometheus, so they count with metrics off too.
func TestInfoStatsWithoutMetrics(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	r := e.raw(t)
	for range 2 {
		r.send("PING\r\n")
		if l := r.line(); l != "+PONG" {
			t.Fatalf("PING: %q", l)
		}
	}
	info, err := e.client.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The raw client and go-redis's: two connections accepted.
	if n := statValue(t, info, "total_connections_received"); n != 2 {
		t.Errorf("total_connections_received = %d, want 2:\n%s", n, info)
	}
	// 2 PINGs + this INFO; go-redis's connection setup may add a HELLO or CLIENT SETINFO.
	if n := statValue(t, info, "total_commands_processed"); n < 3 || n > 7 {
		t.Errorf("total_commands_processed = %d with metrics off, want 3..7:\n%s", n, info)
	}
}

func statValue(t *testing.T, info, key string) int {
	t.Helper()
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %q", key, l)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", key, info)
	return 0
}
