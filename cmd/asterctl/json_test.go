package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// The fake's answers to the calls main_test.go's fake leaves out.

func (f *fakeAdmin) Reload(ctx context.Context, _ *asterv1.ReloadRequest) (*asterv1.ReloadResponse, error) {
	f.record(ctx)
	return &asterv1.ReloadResponse{Changed: []string{"main"}, ConfigVersion: 1 << 40}, nil
}

func (f *fakeAdmin) RestoreNode(ctx context.Context, req *asterv1.RestoreNodeRequest) (*asterv1.RestoreNodeResponse, error) {
	f.record(ctx)
	n := proto.Clone(sampleCluster().Nodes[1]).(*asterv1.Node)
	n.State, n.SetBy, n.Reason = asterv1.NodeState_NODE_STATE_UP, "", ""
	return &asterv1.RestoreNodeResponse{Node: n}, nil
}

func (f *fakeAdmin) SlowLog(ctx context.Context, req *asterv1.SlowLogRequest) (*asterv1.SlowLogResponse, error) {
	f.record(ctx)
	if req.GetCluster() == "empty" {
		return &asterv1.SlowLogResponse{}, nil
	}
	return &asterv1.SlowLogResponse{Entries: []*asterv1.SlowLogEntry{{
		Id: 1 << 53, Time: refresh, Duration: durationpb.New(1500 * time.Microsecond), Args: []string{"GET", "k<&>"}, Client: "127.0.0.1:5000",
	}}}, nil
}

func (f *fakeAdmin) HotKeys(ctx context.Context, req *asterv1.HotKeysRequest) (*asterv1.HotKeysResponse, error) {
	f.record(ctx)
	if req.GetCluster() == "empty" {
		return &asterv1.HotKeysResponse{}, nil
	}
	return &asterv1.HotKeysResponse{Enabled: true, Keys: []*asterv1.HotKey{
		{Key: []byte("user:1"), Count: 1<<53 + 1}, {Key: []byte("bin\xff\x00"), Count: 2},
	}}, nil
}

func (f *fakeAdmin) GetClusterConfig(ctx context.Context, req *asterv1.GetClusterConfigRequest) (*asterv1.GetClusterConfigResponse, error) {
	f.record(ctx)
	if req.GetPattern() == "none-*" {
		return &asterv1.GetClusterConfigResponse{}, nil
	}
	return &asterv1.GetClusterConfigResponse{Knobs: []*asterv1.ConfigKnob{{Name: "hotkey-enabled", Value: "no"}}}, nil
}

func (f *fakeAdmin) SetClusterConfig(ctx context.Context, req *asterv1.SetClusterConfigRequest) (*asterv1.SetClusterConfigResponse, error) {
	f.record(ctx)
	return &asterv1.SetClusterConfigResponse{Knob: &asterv1.ConfigKnob{Name: req.GetName(), Value: req.GetValue()}}, nil
}

func (f *fakeAdmin) GetVersion(ctx context.Context, _ *asterv1.GetVersionRequest) (*asterv1.GetVersionResponse, error) {
	f.record(ctx)
	return &asterv1.GetVersionResponse{Version: "v9.8.7", GoVersion: "go1.99"}, nil
}

// startBare serves an AdminService that implements nothing.
func startBare(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	asterv1.RegisterAdminServiceServer(s, asterv1.UnimplementedAdminServiceServer{})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// TestJSONShapes runs every verb with -o json (the flag after the command, as people type it)
// and compares the whole document: names as the table shows them, numbers as numbers (even
// beyond 2^53, where protojson wrote strings), keys as strings, times in RFC 3339 or null,
// every field present and empty lists as [].
func TestJSONShapes(t *testing.T) {
	addr, fake := startFake(t)
	since := "2026-03-04T05:06:07Z"
	node := func(addr, alias string, weight int, state, setBy, reason string) map[string]any {
		return map[string]any{"address": addr, "alias": alias, "weight": float64(weight), "role": "node", "state": state,
			"stateSince": nil, "setBy": setBy, "reason": reason, "slots": []any{}, "lastError": "", "lastErrorTime": nil, "failedPings": float64(0)}
	}
	n1 := node("127.0.0.1:7001", "r1", 1, "UP", "", "")
	n2 := node("127.0.0.1:7002", "r2", 2, "EJECTED", "operator", "disk\tfull")
	n3 := node("127.0.0.1:7003", "", 1, "DOWN", "health", "3 pings failed")
	n3["stateSince"], n3["lastError"], n3["lastErrorTime"], n3["failedPings"] = since, "3 pings failed", since, float64(3)
	main := map[string]any{"name": "main", "mode": "standalone", "listenAddr": "127.0.0.1:22121", "listenProto": "tcp",
		"tableVersion": float64(7), "lastRefresh": since, "nodes": []any{n1, n2, n3}}
	ejected := node("127.0.0.1:7001", "r1", 1, "EJECTED", "operator", "maint")
	restored := node("127.0.0.1:7002", "r2", 2, "UP", "", "")

	cases := []struct {
		name string
		args []string
		want any
		raw  []string // substrings of the raw text: numbers JSON floats would round
	}{
		{"list", []string{"cluster", "list"}, map[string]any{"clusters": []any{main}}, nil},
		{"show", []string{"cluster", "show", "main"}, map[string]any{"cluster": main}, nil},
		{"reload", []string{"cluster", "reload"}, map[string]any{"added": []any{}, "removed": []any{}, "changed": []any{"main"},
			"unchanged": []any{}, "configVersion": float64(1 << 40)}, []string{`"configVersion": 1099511627776`}},
		{"eject", []string{"cluster", "eject", "main", "r1", "--reason", "maint"}, map[string]any{"node": ejected}, nil},
		{"restore", []string{"cluster", "restore", "main", "r2"}, map[string]any{"node": restored}, nil},
		{"slowlog", []string{"cluster", "slowlog", "main"}, map[string]any{"entries": []any{map[string]any{
			"id": float64(1 << 53), "time": since, "durationMicros": float64(1500), "args": []any{"GET", "k<&>"}, "client": "127.0.0.1:5000"}}},
			[]string{`"id": 9007199254740992`, `"k<&>"`}},
		{"slowlog empty", []string{"cluster", "slowlog", "empty"}, map[string]any{"entries": []any{}}, nil},
		{"hotkeys", []string{"cluster", "hotkeys", "main"}, map[string]any{"enabled": true, "keys": []any{
			map[string]any{"key": "user:1", "count": float64(1<<53 + 1)},
			map[string]any{"key": `bin\xff\x00`, "keyBase64": "Ymlu/wA=", "count": float64(2)}}},
			[]string{`"count": 9007199254740993`}},
		{"hotkeys empty", []string{"cluster", "hotkeys", "empty"}, map[string]any{"enabled": false, "keys": []any{}}, nil},
		{"config", []string{"cluster", "config", "main"}, map[string]any{"knobs": []any{map[string]any{"name": "hotkey-enabled", "value": "no"}}}, nil},
		{"config none", []string{"cluster", "config", "main", "none-*"}, map[string]any{"knobs": []any{}}, nil},
		{"config set", []string{"cluster", "config", "main", "hotkey-enabled", "yes"}, map[string]any{"knob": map[string]any{"name": "hotkey-enabled", "value": "yes"}}, nil},
		{"version", []string{"version"}, map[string]any{"client": map[string]any{"version": "devel", "goVersion": runtime.Version()},
			"server": map[string]any{"version": "v9.8.7", "goVersion": "go1.99"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append(c.args, "-o", "json", "--addr", addr), &stdout, &stderr, envOf(nil)); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			<-fake.auth
			var got any
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout.String())
			}
			if !reflect.DeepEqual(got, c.want) {
				gotText, _ := json.MarshalIndent(got, "", "  ")
				wantText, _ := json.MarshalIndent(c.want, "", "  ")
				t.Errorf("got:\n%s\nwant:\n%s", gotText, wantText)
			}
			for _, w := range c.raw {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %s:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	addr, fake := startFake(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version", "--addr", addr}, &stdout, &stderr, envOf(nil)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	<-fake.auth
	want := "Client: asterctl devel (" + runtime.Version() + ")\nServer: asterd v9.8.7 (go1.99) at " + addr + "\n"
	if stdout.String() != want {
		t.Errorf("version printed %q, want %q", stdout.String(), want)
	}

	// --client asks nobody; without asterd the client's line is still printed, and exit 1.
	stdout.Reset()
	if code := run([]string{"version", "--client", "--addr", "127.0.0.1:1"}, &stdout, &stderr, envOf(nil)); code != 0 || stdout.String() != "Client: asterctl devel ("+runtime.Version()+")\n" {
		t.Errorf("version --client: exit %d, %q", code, stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"version", "--addr", "127.0.0.1:1"}, &stdout, &stderr, envOf(nil))
	if code != 1 || !strings.HasPrefix(stdout.String(), "Client: asterctl") || !strings.Contains(stderr.String(), "cannot reach asterd at 127.0.0.1:1") {
		t.Errorf("version without asterd: exit %d\nstdout %q\nstderr %q", code, stdout.String(), stderr.String())
	}
}

// TestCompletion: each shell gets a script that names asterctl, and cobra's completion
// entry point completes verbs, flags and, from the fake asterd, cluster names and nodes.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__start_asterctl", "zsh": "#compdef asterctl", "fish": "complete -c asterctl", "powershell": "Register-ArgumentCompleter"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"completion", shell}, &stdout, &stderr, envOf(nil)); code != 0 || !strings.Contains(stdout.String(), marker) {
			t.Errorf("completion %s: exit %d, stderr %q, output lacks %q", shell, code, stderr.String(), marker)
		}
	}
	addr, _ := startFake(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"cluster", ""}, []string{"eject", "hotkeys", "list", "show"}},
		{[]string{"cluster", "list", "--out"}, []string{"--output"}},
		{[]string{"cluster", "list", "-o", ""}, []string{"json", "table"}},
		{[]string{"--addr", addr, "cluster", "show", ""}, []string{"main"}},
		{[]string{"cluster", "eject", "--addr", addr, "main", ""}, []string{"r1", "r2", "127.0.0.1:7003"}},
		{[]string{"cluster", "config", "--addr", addr, "main", ""}, []string{"hotkey-enabled"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"__complete"}, c.args...), &stdout, &stderr, envOf(nil)); code != 0 {
			t.Errorf("__complete %q: exit %d: %s", c.args, code, stderr.String())
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stdout.String(), w+"\t") && !strings.Contains(stdout.String(), w+"\n") {
				t.Errorf("__complete %q lacks %q:\n%s", c.args, w, stdout.String())
			}
		}
	}
}
