package proxy_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

func TestHotkeyCommand(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	do := func(args ...any) any {
		t.Helper()
		v, err := e.client.Do(ctx, args...).Result()
		if err != nil && err != redis.Nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v
	}
	// Off by default: traffic is not counted.
	for i := 0; i < 100; i++ {
		do("GET", "before")
	}
	if got := do("HOTKEY", "GET").([]any); len(got) != 0 {
		t.Fatalf("HOTKEY GET while disabled = %v", got)
	}
	if do("HOTKEY", "ENABLE") != "OK" {
		t.Fatal("HOTKEY ENABLE")
	}
	if err := e.client.Do(ctx, "CONFIG", "SET", "cluster.test.hotkey-sample-every", "1").Err(); err != nil {
		t.Fatal(err)
	}
	// A skewed load: "hot" 500 times, "warm" 100 times, 300 keys twice each, some via MGET.
	for i := 0; i < 500; i++ {
		do("GET", "hot")
		if i%5 == 0 {
			do("MGET", "warm", fmt.Sprintf("cold:%d", i))
		}
	}
	for i := 0; i < 300; i++ {
		do("SET", fmt.Sprintf("cold:%d", i), "v")
	}
	got := do("HOTKEY", "GET", "2").([]any)
	if len(got) != 2 {
		t.Fatalf("HOTKEY GET 2 = %v", got)
	}
	first, second := got[0].([]any), got[1].([]any)
	if first[0] != "hot" || first[1].(int64) < 500 || second[0] != "warm" || second[1].(int64) < 100 {
		t.Fatalf("HOTKEY GET 2 = %v, want hot (≥500) then warm (≥100)", got)
	}
	if do("HOTKEY", "DISABLE") != "OK" {
		t.Fatal("HOTKEY DISABLE")
	}
	do("GET", "other")
	if n := len(do("HOTKEY", "GET", "-1").([]any)); n == 0 {
		t.Fatal("DISABLE dropped what was counted")
	}
	if do("HOTKEY", "RESET") != "OK" {
		t.Fatal("HOTKEY RESET")
	}
	if n := len(do("HOTKEY", "GET").([]any)); n != 0 {
		t.Fatalf("after RESET %d keys", n)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"HOTKEY", "NOPE"}, "ERR unknown subcommand 'NOPE'. Try HOTKEY HELP."},
		{[]any{"HOTKEY", "GET", "x"}, "ERR count should be greater than or equal to -1"},
		{[]any{"HOTKEY", "ENABLE", "now"}, "ERR wrong number of arguments for 'hotkey|enable' command"},
		{[]any{"HOTKEY"}, "ERR wrong number of arguments for 'hotkey' command"},
	} {
		if err := e.client.Do(ctx, tc.args...).Err(); err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestConfigGetSet(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, slowMax: 5, slowOver: time.Hour})
	all, err := e.client.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cluster.test.hotkey-sample-every":          "32",
		"cluster.test.hotkey-sketch-width":          "4096",
		"cluster.test.hotkey-sketch-depth":          "4",
		"cluster.test.hotkey-capacity":              "512",
		"cluster.test.hotkey-decay":                 "0.925",
		"cluster.test.hotkey-enabled":               "no",
		"cluster.test.slowlog-log-slower-than":      "3600000000",
		"cluster.test.slowlog-max-len":              "5",
		"cluster.test.backup-request-enabled":       "no",
		"cluster.test.backup-request-threshold-ms":  "default",
		"cluster.test.backup-request-multiplier":    "0",
		"cluster.test.client-cache-enabled":         "no",
		"cluster.test.client-cache-hot-only":        "no",
		"cluster.test.client-cache-max-entries":     "100000",
		"cluster.test.client-cache-max-value-bytes": "524288",
		"cluster.test.client-cache-shard-count":     "32",
		"cluster.test.client-cache-max-memory":      "268435456",
	}
	for k, v := range want {
		if all[k] != v {
			t.Errorf("CONFIG GET * [%s] = %q, want %q", k, all[k], v)
		}
	}
	if len(all) != len(want) {
		t.Errorf("CONFIG GET * = %v", all)
	}
	// Exact name, any case; a pattern; a parameter the proxy does not have.
	if got, _ := e.client.ConfigGet(ctx, "CLUSTER.test.HOTKEY-CAPACITY").Result(); len(got) != 1 || got["cluster.test.hotkey-capacity"] != "512" {
		t.Errorf("exact CONFIG GET = %v", got)
	}
	if got, _ := e.client.ConfigGet(ctx, "cluster.test.slowlog-*").Result(); len(got) != 2 {
		t.Errorf("CONFIG GET slowlog-* = %v", got)
	}
	if got, err := e.client.ConfigGet(ctx, "maxmemory").Result(); err != nil || len(got) != 0 {
		t.Errorf("CONFIG GET maxmemory = %v, %v; want empty", got, err)
	}

	// SET: several at once, all applied; the slow log turns on live for this very client.
	if err := e.client.ConfigSet(ctx, "cluster.test.slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	e.client.Get(ctx, "k")
	if n, _ := e.client.Do(ctx, "SLOWLOG", "LEN").Int(); n == 0 {
		t.Error("slowlog-log-slower-than 0 did not log commands")
	}
	if err := e.client.Do(ctx, "CONFIG", "SET", "cluster.test.hotkey-enabled", "yes", "cluster.test.hotkey_capacity", "64").Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := e.client.ConfigGet(ctx, "cluster.test.hotkey-*").Result()
	if got["cluster.test.hotkey-enabled"] != "yes" || got["cluster.test.hotkey-capacity"] != "64" {
		t.Errorf("after SET: %v", got)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"CONFIG", "SET", "maxmemory", "1"}, "ERR Unknown option or number of arguments for CONFIG SET - 'maxmemory'"},
		{[]any{"CONFIG", "SET", "cluster.other.hotkey-capacity", "1"}, "ERR Unknown option or number of arguments for CONFIG SET - 'cluster.other.hotkey-capacity'"},
		{[]any{"CONFIG", "SET", "cluster.test.hotkey-capacity", "x"}, "ERR CONFIG SET failed (possibly related to argument 'cluster.test.hotkey-capacity') - argument couldn't be parsed into an integer"},
		{[]any{"CONFIG", "SET", "cluster.test.hotkey-decay", "2"}, "ERR CONFIG SET failed (possibly related to argument 'cluster.test.hotkey-decay') - argument must be a number in (0, 1]"},
		// a standalone cluster has no replicas to send backup reads to
		{[]any{"CONFIG", "SET", "cluster.test.backup-request-enabled", "yes"}, "ERR CONFIG SET failed (possibly related to argument 'cluster.test.backup-request-enabled') - backup reads need a Redis Cluster (cache_type redis_cluster)"},
		{[]any{"CONFIG", "SET", "cluster.test.hotkey-capacity"}, "ERR wrong number of arguments for 'config|set' command"},
		{[]any{"CONFIG", "GET"}, "ERR wrong number of arguments for 'config|get' command"},
		{[]any{"CONFIG", "REWRITE"}, "ERR CONFIG REWRITE is not supported by the proxy"},
	} {
		if err := e.client.Do(ctx, tc.args...).Err(); err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// A refused pair refuses the whole SET.
	err = e.client.Do(ctx, "CONFIG", "SET", "cluster.test.hotkey-capacity", "100", "cluster.test.slowlog-max-len", "-5").Err()
	if err == nil || !strings.Contains(err.Error(), "slowlog-max-len") {
		t.Fatalf("bad pair: %v", err)
	}
	if got, _ := e.client.ConfigGet(ctx, "cluster.test.hotkey-capacity").Result(); got["cluster.test.hotkey-capacity"] != "64" {
		t.Errorf("a refused CONFIG SET applied part of its pairs: %v", got)
	}
}

// TestHotkeySamplingAllocatesNothing: with sampling on, GETs of a resident key cost no
// allocation in the whole process, sampled (sample_every 1) or not (sample_every 1000).
func TestHotkeySamplingAllocatesNothing(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	if err := e.client.Do(ctx, "HOTKEY", "ENABLE").Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	get := []byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", 16))
	buf := make([]byte, 16*len("$-1\r\n"))
	rt := func() {
		if _, err := nc.Write(get); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatal(err)
		}
	}
	for _, every := range []string{"1", "1000"} {
		if err := e.client.ConfigSet(ctx, "cluster.test.hotkey-sample-every", every).Err(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			rt()
		}
		if n := testing.AllocsPerRun(300, rt); n >= 1 {
			t.Errorf("sample_every %s: %v allocs per 16 GETs", every, n)
		}
	}
}

func TestServerKnobsAndHotKeys(t *testing.T) {
	s := proxy.NewServer(proxy.ServerOptions{Logger: testLogger(t)})
	defer s.Close()
	r := redistest.Start(t)
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: r.Addr, Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	spec := route.ClusterSpec{Name: "a",
		Table:  &route.Table{Version: 1, Ring: ring},
		Listen: route.ListenSettings{Addr: "127.0.0.1:0", Proto: "tcp"},
		Live:   route.LiveSettings{Hotkey: route.HotkeySpec{SampleEvery: 8}}}
	if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hotkey-enabled", "cluster.a.hotkey_enabled", "HOTKEY.ENABLED"} {
		k, err := s.SetClusterKnob("a", name, "yes")
		if err != nil || k != (proxy.Knob{Name: "hotkey-enabled", Value: "yes"}) {
			t.Fatalf("SetClusterKnob(%q) = %v, %v", name, k, err)
		}
	}
	if _, err := s.SetClusterKnob("nope", "hotkey-enabled", "yes"); err != proxy.ErrUnknownCluster {
		t.Fatalf("unknown cluster: %v", err)
	}
	if _, err := s.SetClusterKnob("a", "cluster.b.hotkey-enabled", "yes"); err == nil {
		t.Fatal("another cluster's knob was accepted")
	}
	if ks, ok := s.ClusterKnobs("a", "hotkey-s*"); !ok || len(ks) != 3 || ks[0].Name != "hotkey-sample-every" || ks[0].Value != "8" {
		t.Fatalf("ClusterKnobs = %v, %v", ks, ok)
	}
	if _, enabled, ok := s.HotKeys("a", 10); !ok || !enabled {
		t.Fatalf("HotKeys: enabled %v ok %v", enabled, ok)
	}
	// A reload that changes the sizes resizes the tracker and keeps it enabled; one that
	// changes nothing live keeps what CONFIG SET set.
	if _, err := s.SetClusterKnob("a", "hotkey-capacity", "99"); err != nil {
		t.Fatal(err)
	}
	spec.Table = &route.Table{Version: 2, Ring: ring}
	if err := s.Apply(&route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.ClusterKnobs("a", "hotkey-capacity"); ks[0].Value != "99" {
		t.Fatalf("an unrelated reload undid CONFIG SET: %v", ks)
	}
	spec.Live.Hotkey.SampleEvery = 2
	if err := s.Apply(&route.Snapshot{Version: 3, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	ks, _ := s.ClusterKnobs("a", "hotkey-*")
	want := map[string]string{"hotkey-sample-every": "2", "hotkey-enabled": "yes", "hotkey-capacity": "512"}
	for _, k := range ks {
		if w, ok := want[k.Name]; ok && k.Value != w {
			t.Errorf("after reload %s = %s, want %s", k.Name, k.Value, w)
		}
	}

	// A reload that changes other settings (max_connections here) keeps CONFIG SET's knobs as
	// well; a knob the same reload changes takes the file's value.
	for name, v := range map[string]string{"hotkey-capacity": "77", "slowlog-log-slower-than": "5000", "slowlog-max-len": "9"} {
		if _, err := s.SetClusterKnob("a", name, v); err != nil {
			t.Fatal(err)
		}
	}
	spec.Access.MaxConnections = 100
	spec.Live.SlowLogMaxLen, spec.Live.SlowLogSlowerThan = 3, time.Millisecond
	spec.Table = &route.Table{Version: 4, Ring: ring}
	if err := s.Apply(&route.Snapshot{Version: 4, Clusters: []route.ClusterSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	ks, _ = s.ClusterKnobs("a", "*")
	want = map[string]string{"hotkey-enabled": "yes", "hotkey-capacity": "77", "hotkey-sample-every": "2",
		"slowlog-max-len": "3", "slowlog-log-slower-than": "1000"}
	for _, k := range ks {
		if w, ok := want[k.Name]; ok && k.Value != w {
			t.Errorf("after a reload with a new listener %s = %s, want %s", k.Name, k.Value, w)
		}
	}
}
