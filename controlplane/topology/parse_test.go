package topology

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// TestParseRecorded parses CLUSTER SLOTS replies recorded from real Redis 7.0 servers
// (TestRecordClusterSlots -record) into the slot maps they describe.
func TestParseRecorded(t *testing.T) {
	node := func(port, id string) route.SlotNode { return route.SlotNode{Addr: "127.0.0.1:" + port, ID: id} }
	cases := []struct {
		name  string
		file  string
		asked string
		want  []route.SlotRange
	}{
		{
			name: "three masters with one replica each", file: "cluster_slots.resp", asked: "127.0.0.1",
			want: []route.SlotRange{
				{Start: 0, End: 5460, Master: node("43041", "3212d9548c4312b4bdd47fc7398f82ec7cfc9808"),
					Replicas: []route.SlotNode{node("38645", "1b06e9a41bb1a3c9dad3c441e6de64cb567cb128")}},
				{Start: 5461, End: 10922, Master: node("43967", "00976cc02fa205624f354afd149fb2615d09b3fd"),
					Replicas: []route.SlotNode{node("43263", "67c7207dd1f59cacfb7bce934b5b0788d75fc1c8")}},
				{Start: 10923, End: 16383, Master: node("33529", "f83d295a176b79a4b19e4398f593197db4d2c39c"),
					Replicas: []route.SlotNode{node("46805", "bbe3b8b014ed9bdf43153e235c49c307db59835f")}},
			},
		},
		{
			// A lone node does not know its IP and answers "": the address asked is used.
			name: "lone node with empty endpoint", file: "cluster_slots_lone.resp", asked: "10.1.2.3",
			want: []route.SlotRange{
				{Start: 0, End: 16383, Master: route.SlotNode{Addr: "10.1.2.3:33723", ID: "21998aacd52de716e092de4f451f82b827d33911"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := parseClusterSlots(raw, tc.asked)
			if err != nil {
				t.Fatalf("parse %s: %v", tc.file, err)
			}
			if got := m.Ranges(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Ranges() =\n%+v\nwant\n%+v", got, tc.want)
			}
			if m.Covered() != route.Slots {
				t.Errorf("Covered() = %d, want %d", m.Covered(), route.Slots)
			}
			want, err := route.NewSlotMap(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Equal(want) {
				t.Error("parsed map is not Equal to the map of the expected ranges")
			}
		})
	}
}

// frame builds a RESP reply from nested values: int → integer, string → bulk, nil → null bulk,
// []any → array.
func frame(v any) []byte {
	switch v := v.(type) {
	case int:
		return resp.AppendInt(nil, int64(v))
	case string:
		return resp.AppendBulkString(nil, v)
	case nil:
		return resp.AppendNullBulk(nil)
	case []any:
		b := resp.AppendArrayHeader(nil, len(v))
		for _, e := range v {
			b = append(b, frame(e)...)
		}
		return b
	}
	panic("frame: unsupported type")
}

func TestParseClusterSlots(t *testing.T) {
	n := func(host string, port int, id string) []any { return []any{host, port, id, []any{}} }
	cases := []struct {
		name    string
		reply   []byte
		want    []route.SlotRange
		wantErr string
	}{
		{
			name:  "null endpoint means the host asked",
			reply: frame([]any{[]any{0, 16383, []any{nil, 7000, "m"}, []any{nil, 7001, "r"}}}),
			want: []route.SlotRange{{Start: 0, End: 16383, Master: route.SlotNode{Addr: "seed.example:7000", ID: "m"},
				Replicas: []route.SlotNode{{Addr: "seed.example:7001", ID: "r"}}}},
		},
		{
			name:  "unknown hostname '?' means the host asked",
			reply: frame([]any{[]any{0, 16383, n("?", 7000, "m")}}),
			want:  []route.SlotRange{{Start: 0, End: 16383, Master: route.SlotNode{Addr: "seed.example:7000", ID: "m"}}},
		},
		{
			name:  "hostnames and IPv6 kept as given",
			reply: frame([]any{[]any{0, 99, n("redis-0.redis", 6379, "a")}, []any{100, 16383, n("::1", 6380, "b")}}),
			want: []route.SlotRange{
				{Start: 0, End: 99, Master: route.SlotNode{Addr: "redis-0.redis:6379", ID: "a"}},
				{Start: 100, End: 16383, Master: route.SlotNode{Addr: "[::1]:6380", ID: "b"}},
			},
		},
		{
			name:  "old servers: no id",
			reply: frame([]any{[]any{0, 16383, []any{"10.0.0.1", 7000}}}),
			want:  []route.SlotRange{{Start: 0, End: 16383, Master: route.SlotNode{Addr: "10.0.0.1:7000"}}},
		},
		{name: "empty array is an empty map", reply: []byte("*0\r\n")},
		{name: "error reply", reply: []byte("-ERR This instance has cluster support disabled\r\n"), wantErr: "cluster support disabled"},
		{name: "not an array", reply: []byte("+OK\r\n"), wantErr: "not an array"},
		{name: "entry too short", reply: frame([]any{[]any{0, 16383}}), wantErr: "2 fields"},
		{name: "slot not an integer", reply: frame([]any{[]any{"0", 16383, n("h", 1, "a")}}), wantErr: "slot range"},
		{name: "slot beyond 16383", reply: frame([]any{[]any{0, 16384, n("h", 1, "a")}}), wantErr: "invalid slot range 0-16384"},
		{name: "negative slot", reply: frame([]any{[]any{-1, 5, n("h", 1, "a")}}), wantErr: "invalid slot range -1-5"},
		{name: "port zero", reply: frame([]any{[]any{0, 5, n("h", 0, "a")}}), wantErr: "invalid port"},
		{name: "port as string", reply: frame([]any{[]any{0, 5, []any{"h", "7000"}}}), wantErr: "invalid port"},
		{name: "node not an array", reply: frame([]any{[]any{0, 5, "h:7000"}}), wantErr: "master"},
		{name: "bad replica", reply: frame([]any{[]any{0, 5, n("h", 1, "a"), []any{"h"}}}), wantErr: "replica 0"},
		{
			name:    "overlapping ranges",
			reply:   frame([]any{[]any{0, 10, n("h", 1, "a")}, []any{10, 20, n("h", 2, "b")}}),
			wantErr: "slot 10 claimed by both",
		},
		{name: "trailing bytes", reply: []byte("*0\r\n+OK\r\n"), wantErr: "bytes after the reply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseClusterSlots(tc.reply, "seed.example")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := m.Ranges(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Ranges() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseMalformedWraps(t *testing.T) {
	_, err := parseClusterSlots([]byte("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n#x\r\n:1\r\n"), "h")
	if !errors.Is(err, resp.ErrMalformedReply) {
		t.Errorf("error %v does not wrap resp.ErrMalformedReply", err)
	}
}
