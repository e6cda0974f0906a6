package remote

import (
	"bytes"
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// outOfRange lists, for every number a snapshot carries, values past each end of its range
// in the one range table, and the key the refusal names.
func outOfRange() []struct {
	name string
	key  string
	set  func(*asterv1.ClusterRoutes)
} {
	ms := func(n int64) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Millisecond) }
	type c = struct {
		name string
		key  string
		set  func(*asterv1.ClusterRoutes)
	}
	return []c{
		{"node_connections above", "node_connections", func(p *asterv1.ClusterRoutes) { p.NodeConnections = limits.MaxNodeConnections + 1 }},
		{"node_connections negative", "node_connections", func(p *asterv1.ClusterRoutes) { p.NodeConnections = -1 }},
		{"max_connections above", "max_connections", func(p *asterv1.ClusterRoutes) { p.MaxConnections = limits.MaxMaxConnections + 1 }},
		{"max_connections negative", "max_connections", func(p *asterv1.ClusterRoutes) { p.MaxConnections = -1 }},
		{"client_output_limit below", "client_output_limit", func(p *asterv1.ClusterRoutes) { p.ClientOutputLimit = 1 }},
		{"client_output_limit above", "client_output_limit", func(p *asterv1.ClusterRoutes) { p.ClientOutputLimit = 1<<30 + 1 }},
		{"client_output_limit huge", "client_output_limit", func(p *asterv1.ClusterRoutes) { p.ClientOutputLimit = math.MaxInt64 }},
		{"client_output_limit negative", "client_output_limit", func(p *asterv1.ClusterRoutes) { p.ClientOutputLimit = -1 }},
		{"read_timeout above", "read_timeout", func(p *asterv1.ClusterRoutes) { p.ReadTimeout = ms(limits.MaxMillis + 1) }},
		{"read_timeout a nanosecond above", "read_timeout", func(p *asterv1.ClusterRoutes) {
			p.ReadTimeout = durationpb.New(limits.MaxMillis*time.Millisecond + 1)
		}},
		{"read_timeout negative", "read_timeout", func(p *asterv1.ClusterRoutes) { p.ReadTimeout = durationpb.New(-time.Nanosecond) }},
		{"write_timeout above", "write_timeout", func(p *asterv1.ClusterRoutes) { p.WriteTimeout = ms(limits.MaxMillis + 1) }},
		{"dial_timeout above", "dial_timeout", func(p *asterv1.ClusterRoutes) { p.DialTimeout = ms(limits.MaxMillis + 1) }},
		{"dial_timeout beyond a Duration", "dial_timeout", func(p *asterv1.ClusterRoutes) { p.DialTimeout = &durationpb.Duration{Seconds: math.MaxInt64} }},
		{"idle timeout negative", "client_idle_timeout", func(p *asterv1.ClusterRoutes) { p.IdleTimeout = durationpb.New(-time.Second) }},
		{"idle timeout above", "client_idle_timeout", func(p *asterv1.ClusterRoutes) {
			p.IdleTimeout = durationpb.New((math.MaxInt32 + 1) * time.Second)
		}},
		{"slowlog_max_len above", "slowlog_max_len", func(p *asterv1.ClusterRoutes) { p.SlowlogMaxLen = limits.MaxSlowlogMaxLen + 1 }},
		{"slowlog_max_len negative", "slowlog_max_len", func(p *asterv1.ClusterRoutes) { p.SlowlogMaxLen = -1 }},
		{"slowlog_log_slower_than above", "slowlog_log_slower_than", func(p *asterv1.ClusterRoutes) {
			p.SlowlogSlowerThan = durationpb.New((limits.MaxSlowlogSlowerThan + 1) * time.Microsecond)
		}},
		{"hotkey width above", "hotkey_sketch_width", func(p *asterv1.ClusterRoutes) { p.Hotkey.SketchWidth = limits.MaxHotkeySketchWidth + 1 }},
		{"hotkey width negative", "hotkey_sketch_width", func(p *asterv1.ClusterRoutes) { p.Hotkey.SketchWidth = -1 }},
		{"hotkey depth above", "hotkey_sketch_depth", func(p *asterv1.ClusterRoutes) { p.Hotkey.SketchDepth = limits.MaxHotkeySketchDepth + 1 }},
		{"hotkey capacity above", "hotkey_capacity", func(p *asterv1.ClusterRoutes) { p.Hotkey.Capacity = limits.MaxHotkeyCapacity + 1 }},
		{"hotkey sample_every above", "hotkey_sample_every", func(p *asterv1.ClusterRoutes) { p.Hotkey.SampleEvery = limits.MaxHotkeySampleEvery + 1 }},
		{"hotkey decay above", "hotkey_decay", func(p *asterv1.ClusterRoutes) { p.Hotkey.Decay = 1.5 }},
		{"hotkey decay NaN", "hotkey_decay", func(p *asterv1.ClusterRoutes) { p.Hotkey.Decay = math.NaN() }},
		{"hotkey decay negative", "hotkey_decay", func(p *asterv1.ClusterRoutes) { p.Hotkey.Decay = -0.5 }},
		{"backup threshold above", "backup_request.trigger_slow_ms", func(p *asterv1.ClusterRoutes) { p.BackupRequest.TriggerSlow = ms(limits.MaxMillis + 1) }},
		{"backup multiplier above", "backup_request.multiplier", func(p *asterv1.ClusterRoutes) { p.BackupRequest.Multiplier = limits.MaxBackupMultiplier + 1 }},
		{"backup multiplier infinite", "backup_request.multiplier", func(p *asterv1.ClusterRoutes) { p.BackupRequest.Multiplier = math.Inf(1) }},
		{"client cache entries above", "client_cache.max_entries", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{MaxEntries: 1_000_001} }},
		{"client cache value bytes above", "client_cache.max_value_bytes", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{MaxValueBytes: 1<<20 + 1} }},
		{"client cache shards negative", "client_cache.shard_count", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{ShardCount: -1} }},
		{"client cache memory above", "client_cache.max_memory", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{MaxMemory: 1<<40 + 1} }},
		{"client cache memory below", "client_cache.max_memory", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{MaxMemory: 1} }},
		{"client cache memory negative", "client_cache.max_memory", func(p *asterv1.ClusterRoutes) { p.ClientCache = &asterv1.ClientCache{MaxMemory: -1} }},
		{"ring weight above", "servers[].weight", func(p *asterv1.ClusterRoutes) { p.GetRing().Nodes[0].Weight = limits.MaxServerWeight + 1 }},
		{"ring weight negative", "servers[].weight", func(p *asterv1.ClusterRoutes) { p.GetRing().Nodes[0].Weight = -1 }},
	}
}

// goodRoutes is a cluster whose every number is in range, at a maximum where it has one.
func goodRoutes(name string) *asterv1.ClusterRoutes {
	return &asterv1.ClusterRoutes{
		Name: name, ListenAddr: "127.0.0.1:7000", ListenProto: "tcp", TableVersion: 1,
		ReadTimeout: durationpb.New(limits.MaxMillis * time.Millisecond), NodeConnections: limits.MaxNodeConnections,
		MaxConnections: limits.MaxMaxConnections, ClientOutputLimit: 1 << 30, SlowlogMaxLen: limits.MaxSlowlogMaxLen,
		Hotkey:        &asterv1.Hotkey{SketchWidth: limits.MaxHotkeySketchWidth, Decay: 1},
		BackupRequest: &asterv1.BackupRequest{Multiplier: limits.MaxBackupMultiplier},
		Table: &asterv1.ClusterRoutes_Ring{Ring: &asterv1.Ring{Nodes: []*asterv1.RingNode{
			{Address: "127.0.0.1:7001", Weight: limits.MaxServerWeight}}}},
	}
}

// A data plane checks every number of a snapshot against the range table, as the config file
// is checked: out of range, the snapshot is refused with an error naming the cluster and the
// key. In range, at the maxima and with unset (0) fields, it is taken.
func TestFromProtoChecksRanges(t *testing.T) {
	if _, err := FromProto(wire(t, &asterv1.Snapshot{Version: 1, Clusters: []*asterv1.ClusterRoutes{goodRoutes("x")}})); err != nil {
		t.Fatalf("a snapshot at the maxima: %v", err)
	}
	unset := goodRoutes("x")
	unset.NodeConnections, unset.ClientOutputLimit, unset.Hotkey, unset.BackupRequest = 0, 0, &asterv1.Hotkey{}, &asterv1.BackupRequest{}
	if _, err := FromProto(wire(t, &asterv1.Snapshot{Version: 1, Clusters: []*asterv1.ClusterRoutes{unset}})); err != nil {
		t.Fatalf("a snapshot with unset fields: %v", err)
	}
	covered := map[string]bool{}
	for _, tc := range outOfRange() {
		t.Run(tc.name, func(t *testing.T) {
			p := goodRoutes("x")
			tc.set(p)
			_, err := FromProto(&asterv1.Snapshot{Version: 1, Clusters: []*asterv1.ClusterRoutes{goodRoutes("ok"), p}})
			if err == nil || !strings.Contains(err.Error(), `cluster "x"`) || !strings.Contains(err.Error(), tc.key+" ") {
				t.Fatalf("FromProto: %v; want a refusal naming cluster \"x\" and %s", err, tc.key)
			}
		})
		covered[tc.key] = true
	}
	// Every range a snapshot's numbers fall under is tested (thread and the health, fetch and
	// client_cache and sentinel settings stay in the control plane and are not sent).
	notSent := map[string]bool{"thread": true, "ping_fail_limit": true, "ping_interval": true, "ping_succ_interval": true,
		"fetch": true, "fetch_interval": true, "sentinel_poll_interval": true}
	for _, r := range limits.Ints {
		if r.Key != "" && !notSent[r.Key] && !strings.HasPrefix(r.Key, "client_cache.") && !covered[r.Key] {
			t.Errorf("no out-of-range case for %s", r.Key)
		}
	}
	for _, r := range limits.Floats {
		if !covered[r.Key] {
			t.Errorf("no out-of-range case for %s", r.Key)
		}
	}
}

// rangeSource is a Source whose snapshot a test sets.
type rangeSource struct {
	mu      sync.Mutex
	snap    *route.Snapshot
	changed chan struct{}
}

func (s *rangeSource) Snapshot() (*route.Snapshot, <-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.changed, func() {}
}

func (s *rangeSource) ExportSnapshot() (*route.Snapshot, map[string]controlplane.RingHash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hashes := map[string]controlplane.RingHash{}
	for _, c := range s.snap.Clusters {
		hashes[c.Name] = controlplane.RingHash{}
	}
	return s.snap, hashes
}

func (s *rangeSource) Hint(string) {}

func (s *rangeSource) set(snap *route.Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A data plane refuses a streamed snapshot with a number out of range: it logs which cluster
// and key, applies nothing of it, and keeps its last good snapshot until a good one comes.
func TestClientRefusesOutOfRangeSnapshot(t *testing.T) {
	ring := mustRing(t, "", "", route.Node{Addr: "127.0.0.1:7001", Weight: 1})
	spec := func(version uint64) route.ClusterSpec {
		return route.ClusterSpec{Name: "x",
			Table:   &route.Table{Version: version, Ring: ring},
			Listen:  route.ListenSettings{Addr: "127.0.0.1:7000", Proto: "tcp"},
			Access:  route.AccessSettings{MaxConnections: 100},
			Backend: route.BackendSettings{NodeConnections: 2}}
	}
	cases := []struct {
		key string
		set func(*route.ClusterSpec)
	}{
		{"node_connections", func(c *route.ClusterSpec) { c.Backend.NodeConnections = 100 }},
		{"max_connections", func(c *route.ClusterSpec) { c.Access.MaxConnections = 2 << 20 }},
		{"client_output_limit", func(c *route.ClusterSpec) { c.Access.ClientOutputLimit = 1 }},
		{"read_timeout", func(c *route.ClusterSpec) { c.Backend.ReadTimeout = 2 * time.Hour }},
		{"hotkey_sketch_width", func(c *route.ClusterSpec) { c.Live.Hotkey.Width = 1 << 20 }},
		{"backup_request.multiplier", func(c *route.ClusterSpec) { c.Live.BackupRequest.Multiplier = math.NaN() }},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			src := &rangeSource{snap: &route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec(1)}}, changed: make(chan struct{}, 1)}
			addr, _ := serve(t, src, testToken, "")
			sink := newRecordingSink()
			var logs lockedBuffer
			log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
			c, err := NewClient(ClientConfig{Addr: addr, Token: testToken, Sink: sink, ID: t.Name(), MaxBackoff: 200 * time.Millisecond, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- c.Run(ctx) }()
			defer func() {
				cancel()
				<-done
			}()
			sink.waitFor(t, "at start", func(s *route.Snapshot) bool { return s.Version == 1 })

			bad := spec(2)
			tc.set(&bad)
			src.set(&route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{bad}})
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "snapshot refused"); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the data plane never refused the snapshot; log: %s", logs.String())
				}
			}
			if l := logs.String(); !strings.Contains(l, `cluster \"x\"`) || !strings.Contains(l, tc.key+" ") {
				t.Fatalf("the refusal does not name cluster x and %s: %s", tc.key, l)
			}
			// The next good snapshot is applied; the bad one never was.
			src.set(&route.Snapshot{Version: 3, Clusters: []route.ClusterSpec{spec(3)}})
			sink.waitFor(t, "after the refused one", func(s *route.Snapshot) bool { return s.Version == 3 })
			for _, s := range sink.all() {
				if s.Version == 2 {
					t.Fatalf("the out-of-range snapshot was applied: %+v", s.Clusters[0])
				}
			}
		})
	}
}
