package remote

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

func mustRing(t *testing.T, method, tag string, nodes ...route.Node) *route.Ring {
	t.Helper()
	h, err := route.Hash(method)
	if err != nil {
		t.Fatal(err)
	}
	r, err := route.NewRing(nodes, h, tag)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSlots(t *testing.T, ranges ...route.SlotRange) *route.SlotMap {
	t.Helper()
	m, err := route.NewSlotMap(ranges)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wire sends p through protobuf encoding, as the stream does.
func wire(t *testing.T, p *asterv1.Snapshot) *asterv1.Snapshot {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	out := &asterv1.Snapshot{}
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	ring := mustRing(t, "murmur", "{}",
		route.Node{Addr: "127.0.0.1:7001", Name: "r1", Weight: 1},
		route.Node{Addr: "127.0.0.1:7002", Name: "r2", Weight: 3},
		route.Node{Addr: "127.0.0.1:7003", Weight: 2})
	plainRing := mustRing(t, "", "", route.Node{Addr: "127.0.0.1:7101", Weight: 1}, route.Node{Addr: "127.0.0.1:7102", Weight: 1})
	slots := mustSlots(t,
		route.SlotRange{Start: 0, End: 5460, Master: route.SlotNode{Addr: "127.0.0.1:8001"}, Replicas: []route.SlotNode{{Addr: "127.0.0.1:8004"}}},
		route.SlotRange{Start: 5461, End: 10922, Master: route.SlotNode{Addr: "127.0.0.1:8002"}},
		route.SlotRange{Start: 10923, End: 16383, Master: route.SlotNode{Addr: "127.0.0.1:8003"}, Replicas: []route.SlotNode{{Addr: "127.0.0.1:8005"}, {Addr: "127.0.0.1:8006"}}})
	partial := mustSlots(t, route.SlotRange{Start: 100, End: 200, Master: route.SlotNode{Addr: "127.0.0.1:8101"}})

	cases := []struct {
		name   string
		spec   route.ClusterSpec
		hashes map[string]controlplane.RingHash
	}{
		{"ring with aliases weights and tag", route.ClusterSpec{Name: "ring",
			Table:   &route.Table{Version: 41, Ring: ring},
			Listen:  route.ListenSettings{Addr: "127.0.0.1:7000", Proto: "tcp"},
			Backend: route.BackendSettings{ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second, DialTimeout: 200 * time.Millisecond, NodeConnections: 2}}, map[string]controlplane.RingHash{"ring": {Method: "murmur", Tag: "{}"}}},
		{"sentinel ring with read replicas", route.ClusterSpec{Name: "sen",
			Table:   &route.Table{Version: 8, Ring: ring, Replicas: [][]string{{"127.0.0.1:7011", "127.0.0.1:7012"}, nil, {"127.0.0.1:7013"}}},
			Listen:  route.ListenSettings{Addr: "127.0.0.1:7300", Proto: "tcp"},
			Backend: route.BackendSettings{NodeConnections: 1}}, map[string]controlplane.RingHash{"sen": {Method: "murmur", Tag: "{}"}}},
		{"ring default hash no tag zero timeouts", route.ClusterSpec{Name: "plain",
			Table:   &route.Table{Version: 3, Ring: plainRing},
			Listen:  route.ListenSettings{Addr: "/tmp/aster.sock", Proto: "unix"},
			Backend: route.BackendSettings{NodeConnections: 1}}, map[string]controlplane.RingHash{"plain": {}}},
		{"empty ring", route.ClusterSpec{Name: "empty",
			Table:  &route.Table{Version: 9, Ring: mustRing(t, "", "")},
			Listen: route.ListenSettings{Addr: "127.0.0.1:7200", Proto: "tcp"}}, map[string]controlplane.RingHash{"empty": {Method: "fnv1a_64", Tag: "{}"}}},
		{"slot map with replicas", route.ClusterSpec{Name: "cluster",
			Table:   &route.Table{Version: 77, Slots: slots},
			Listen:  route.ListenSettings{Addr: "127.0.0.1:8000", Proto: "tcp"},
			Backend: route.BackendSettings{ReadFromSlave: true, NodeConnections: 4},
			Live: route.LiveSettings{Hotkey: route.HotkeySpec{SampleEvery: 16, Width: 2048, Depth: 5, Capacity: 1024, Decay: 0.9}, BackupRequest: route.BackupRequest{Enabled: true, TriggerSlow: 50 * time.Millisecond, Multiplier: 2.5},
				ClientCache: route.ClientCacheSpec{Enabled: true, MaxEntries: 5000, MaxValueBytes: 2048, ShardCount: 8, HotOnly: true}}}, nil},
		{"partial slot map", route.ClusterSpec{Name: "partial",
			Table:  &route.Table{Version: 5, Slots: partial},
			Listen: route.ListenSettings{Addr: "127.0.0.1:8100", Proto: "tcp"}}, nil},
		{"no table yet", route.ClusterSpec{Name: "fetching",
			Listen: route.ListenSettings{Addr: "127.0.0.1:8200", Proto: "tcp"}}, nil},
		{"access settings", route.ClusterSpec{Name: "secured",
			Listen:  route.ListenSettings{Addr: "127.0.0.1:8300", Proto: "tcp"},
			Access:  route.AccessSettings{Users: map[string]string{"default": "pw", "ops": "opspw"}, MaxConnections: 5000, IdleTimeout: 30 * time.Second, TLSCertFile: "/etc/aster/cert.pem", TLSKeyFile: "/etc/aster/key.pem", TLSCAFile: "/etc/aster/ca.pem"},
			Backend: route.BackendSettings{BackendUser: "proxy", BackendPassword: "backpw", BackendTLS: true, BackendTLSCAFile: "/etc/aster/backend-ca.pem", BackendTLSServerName: "redis.internal", BackendRESP3: true},
			Live:    route.LiveSettings{SlowLogMaxLen: 128, SlowLogSlowerThan: 10 * time.Millisecond}}, nil},
		{"user rights", route.ClusterSpec{Name: "rights",
			Listen: route.ListenSettings{Addr: "127.0.0.1:8400", Proto: "tcp"},
			Access: route.AccessSettings{Users: map[string]string{"default": "pw", "app": "a", "ops": "o", "nokeys": "n", "free": "f"}, UserRights: map[string]route.UserRights{
				"app":    {Commands: "+@all -@dangerous", Keys: []string{"app:*", "b[a-z]?"}},
				"ops":    {Commands: "-@all +@admin"},
				"nokeys": {Keys: []string{}},
			}}}, nil},
		{"client output limit", route.ClusterSpec{Name: "limited",
			Listen: route.ListenSettings{Addr: "127.0.0.1:8400", Proto: "tcp"},
			Access: route.AccessSettings{ClientOutputLimit: 8 << 20}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &route.Snapshot{Version: 100, Clusters: []route.ClusterSpec{tc.spec}}
			p, err := ToProto(in, tc.hashes)
			if err != nil {
				t.Fatal(err)
			}
			out, err := FromProto(wire(t, p))
			if err != nil {
				t.Fatal(err)
			}
			if out.Version != 100 || len(out.Clusters) != 1 {
				t.Fatalf("snapshot version %d with %d clusters, want 100 with 1", out.Version, len(out.Clusters))
			}
			got, want := out.Clusters[0], tc.spec
			gotTable, wantTable := got.Table, want.Table
			got.Table, want.Table = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("spec %+v, want %+v", got, want)
			}
			switch {
			case wantTable == nil:
				if gotTable != nil {
					t.Fatalf("table %+v, want none", gotTable)
				}
			case wantTable.Ring != nil:
				if gotTable == nil || gotTable.Ring == nil || gotTable.Slots != nil {
					t.Fatalf("table %+v, want a ring", gotTable)
				}
				if gotTable.Version != wantTable.Version {
					t.Errorf("table version %d, want %d", gotTable.Version, wantTable.Version)
				}
				if !reflect.DeepEqual(gotTable.Replicas, wantTable.Replicas) {
					t.Errorf("read replicas %q, want %q", gotTable.Replicas, wantTable.Replicas)
				}
				if !slices.Equal(gotTable.Ring.Nodes(), wantTable.Ring.Nodes()) {
					t.Errorf("ring nodes %v, want %v", gotTable.Ring.Nodes(), wantTable.Ring.Nodes())
				}
				// Same placement for every key, including hash-tagged ones.
				for i := range 2000 {
					k := []byte(fmt.Sprintf("key:%d", i))
					if i%3 == 0 {
						k = []byte(fmt.Sprintf("{user%d}:x%d", i%17, i))
					}
					if g, w := gotTable.Ring.Pick(k), wantTable.Ring.Pick(k); g != w {
						t.Fatalf("key %q picks node %d, want %d", k, g, w)
					}
				}
			default:
				if gotTable == nil || gotTable.Slots == nil || gotTable.Ring != nil {
					t.Fatalf("table %+v, want a slot map", gotTable)
				}
				if gotTable.Version != wantTable.Version {
					t.Errorf("table version %d, want %d", gotTable.Version, wantTable.Version)
				}
				if !gotTable.Slots.Equal(wantTable.Slots) {
					t.Errorf("slot map ranges %+v, want %+v", gotTable.Slots.Ranges(), wantTable.Slots.Ranges())
				}
			}
		})
	}
}

// A tag-less ring and a tagged one differ for tagged keys: the tag really crosses the wire.
func TestRoundTripHashTagMatters(t *testing.T) {
	nodes := []route.Node{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 1}, {Addr: "c:1", Weight: 1}}
	snap := &route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{{Name: "c", Table: &route.Table{Version: 1, Ring: mustRing(t, "", "{}", nodes...)}}}}
	p, err := ToProto(snap, map[string]controlplane.RingHash{"c": {Tag: "{}"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := FromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Clusters[0].Table.Ring
	first := r.Pick([]byte("{same}:0"))
	for i := range 200 {
		if got := r.Pick([]byte(fmt.Sprintf("{same}:%d", i))); got != first {
			t.Fatalf("tagged key %d on node %d, key 0 on %d: the tag was lost", i, got, first)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	ring := mustRing(t, "", "", route.Node{Addr: "a:1", Weight: 1})
	toProto := []struct {
		name   string
		snap   *route.Snapshot
		hashes map[string]controlplane.RingHash
		want   string
	}{
		{"ring without hash settings", &route.Snapshot{Clusters: []route.ClusterSpec{{Name: "x", Table: &route.Table{Ring: ring}}}}, nil, "no hash method"},
		{"table with neither", &route.Snapshot{Clusters: []route.ClusterSpec{{Name: "x", Table: &route.Table{Version: 4}}}}, nil, "neither ring nor slot map"},
		{"negative node connections", &route.Snapshot{Clusters: []route.ClusterSpec{{Name: "x", Backend: route.BackendSettings{NodeConnections: -1}}}}, nil, "node_connections"},
	}
	for _, tc := range toProto {
		t.Run("to proto: "+tc.name, func(t *testing.T) {
			_, err := ToProto(tc.snap, tc.hashes)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"x"`) {
				t.Fatalf("error %v, want one naming cluster \"x\" and %q", err, tc.want)
			}
		})
	}
	ringOf := func(method, tag string, nodes ...*asterv1.RingNode) *asterv1.Snapshot {
		return &asterv1.Snapshot{Clusters: []*asterv1.ClusterRoutes{{Name: "x", Table: &asterv1.ClusterRoutes_Ring{
			Ring: &asterv1.Ring{HashMethod: method, HashTag: tag, Nodes: nodes}}}}}
	}
	slotsOf := func(ranges ...*asterv1.SlotMapRange) *asterv1.Snapshot {
		return &asterv1.Snapshot{Clusters: []*asterv1.ClusterRoutes{{Name: "x", Table: &asterv1.ClusterRoutes_Slots{
			Slots: &asterv1.SlotMap{Ranges: ranges}}}}}
	}
	fromProto := []struct {
		name string
		snap *asterv1.Snapshot
		want string
	}{
		{"unknown hash", ringOf("sha999", "", &asterv1.RingNode{Address: "a:1", Weight: 1}), "unknown hash"},
		{"bad tag", ringOf("", "{", &asterv1.RingNode{Address: "a:1", Weight: 1}), "hash tag"},
		{"zero weight", ringOf("", "", &asterv1.RingNode{Address: "a:1"}), "weight"},
		{"slot beyond range", slotsOf(&asterv1.SlotMapRange{Start: 0, End: 16384, Master: "a:1"}), "beyond"},
		{"overlapping ranges", slotsOf(&asterv1.SlotMapRange{Start: 0, End: 10, Master: "a:1"}, &asterv1.SlotMapRange{Start: 5, End: 20, Master: "b:1"}), "claimed by both"},
		{"master without address", slotsOf(&asterv1.SlotMapRange{Start: 0, End: 10}), "no address"},
	}
	for _, tc := range fromProto {
		t.Run("from proto: "+tc.name, func(t *testing.T) {
			_, err := FromProto(tc.snap)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"x"`) {
				t.Fatalf("error %v, want one naming cluster \"x\" and %q", err, tc.want)
			}
		})
	}
}
