package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// -o json prints these shapes rather than protojson's, for people and scripts alike: states,
// modes and roles by the names the table shows ("UP", "standalone"), every number a JSON
// number (protojson writes 64-bit integers as strings), hot keys as strings (protojson writes
// bytes as base64), times as RFC 3339 in UTC or null, and every field present, lists as []
// when empty. Field names are protojson's (lowerCamelCase), so scripts written against
// earlier versions find the same keys.

type clusterView struct {
	Name         string     `json:"name"`
	Mode         string     `json:"mode"`
	ListenAddr   string     `json:"listenAddr"`
	ListenProto  string     `json:"listenProto"`
	TableVersion uint64     `json:"tableVersion"`
	LastRefresh  *string    `json:"lastRefresh"`
	Nodes        []nodeView `json:"nodes"`
}

type nodeView struct {
	Address       string      `json:"address"`
	Group         string      `json:"group,omitempty"` // redis_sentinel: the Sentinel master name
	Alias         string      `json:"alias"`
	Weight        int32       `json:"weight"`
	Role          string      `json:"role"`
	State         string      `json:"state"`
	StateSince    *string     `json:"stateSince"`
	SetBy         string      `json:"setBy"`
	Reason        string      `json:"reason"`
	Slots         []slotRange `json:"slots"`
	LastError     string      `json:"lastError"`
	LastErrorTime *string     `json:"lastErrorTime"`
	FailedPings   uint32      `json:"failedPings"`
}

type slotRange struct {
	Start uint32 `json:"start"`
	End   uint32 `json:"end"`
}

type reloadView struct {
	Added         []string `json:"added"`
	Removed       []string `json:"removed"`
	Changed       []string `json:"changed"`
	Unchanged     []string `json:"unchanged"`
	ConfigVersion uint64   `json:"configVersion"`
}

type slowEntryView struct {
	ID   uint64  `json:"id"`
	Time *string `json:"time"`
	// DurationMicros is the client's wait in microseconds, the unit of Redis's SLOWLOG.
	DurationMicros int64    `json:"durationMicros"`
	Args           []string `json:"args"`
	Client         string   `json:"client"`
}

type hotKeyView struct {
	// Key is the key as a string; a key that is not UTF-8 is shown with Go escapes (\xff)
	// and given exactly in KeyBase64.
	Key       string `json:"key"`
	KeyBase64 string `json:"keyBase64,omitempty"`
	Count     uint64 `json:"count"`
}

type knobView struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type versionView struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
}

func listJSON(r *asterv1.ListClustersResponse) any {
	out := make([]clusterView, 0, len(r.GetClusters()))
	for _, c := range r.GetClusters() {
		out = append(out, clusterJSON(c))
	}
	return map[string]any{"clusters": out}
}

func clusterJSON(c *asterv1.Cluster) clusterView {
	v := clusterView{
		Name: c.GetName(), Mode: jsonName(modeName(c.GetMode())), ListenAddr: c.GetListenAddr(),
		ListenProto: c.GetListenProto(), TableVersion: c.GetTableVersion(), LastRefresh: timeJSON(c.GetLastRefresh()),
		Nodes: make([]nodeView, 0, len(c.GetNodes())),
	}
	for _, n := range c.GetNodes() {
		v.Nodes = append(v.Nodes, nodeJSON(n))
	}
	return v
}

func nodeJSON(n *asterv1.Node) nodeView {
	v := nodeView{
		Address: n.GetAddress(), Alias: n.GetAlias(), Weight: n.GetWeight(), Role: jsonName(roleName(n.GetRole())),
		State: jsonName(stateName(n.GetState())), StateSince: timeJSON(n.GetStateSince()), SetBy: n.GetSetBy(),
		Reason: n.GetReason(), Slots: make([]slotRange, 0, len(n.GetSlots())), LastError: n.GetLastError(),
		LastErrorTime: timeJSON(n.GetLastErrorTime()), FailedPings: n.GetFailedPings(), Group: n.GetGroup(),
	}
	for _, r := range n.GetSlots() {
		v.Slots = append(v.Slots, slotRange{Start: r.GetStart(), End: r.GetEnd()})
	}
	return v
}

func reloadJSON(r *asterv1.ReloadResponse) reloadView {
	return reloadView{
		Added: list(r.GetAdded()), Removed: list(r.GetRemoved()), Changed: list(r.GetChanged()),
		Unchanged: list(r.GetUnchanged()), ConfigVersion: r.GetConfigVersion(),
	}
}

func slowLogJSON(r *asterv1.SlowLogResponse) any {
	out := make([]slowEntryView, 0, len(r.GetEntries()))
	for _, e := range r.GetEntries() {
		out = append(out, slowEntryView{
			ID: e.GetId(), Time: timeJSON(e.GetTime()), DurationMicros: e.GetDuration().AsDuration().Microseconds(),
			Args: list(e.GetArgs()), Client: e.GetClient(),
		})
	}
	return map[string]any{"entries": out}
}

func hotKeysJSON(r *asterv1.HotKeysResponse) any {
	out := make([]hotKeyView, 0, len(r.GetKeys()))
	for _, k := range r.GetKeys() {
		v := hotKeyView{Key: string(k.GetKey()), Count: k.GetCount()}
		if !utf8.Valid(k.GetKey()) {
			q := fmt.Sprintf("%q", k.GetKey())
			v.Key, v.KeyBase64 = q[1:len(q)-1], base64.StdEncoding.EncodeToString(k.GetKey())
		}
		out = append(out, v)
	}
	return map[string]any{"enabled": r.GetEnabled(), "keys": out}
}

func knobJSON(k *asterv1.ConfigKnob) knobView {
	return knobView{Name: k.GetName(), Value: k.GetValue()}
}

func knobsJSON(r *asterv1.GetClusterConfigResponse) any {
	out := make([]knobView, 0, len(r.GetKnobs()))
	for _, k := range r.GetKnobs() {
		out = append(out, knobJSON(k))
	}
	return map[string]any{"knobs": out}
}

// list is l, or an empty list rather than null.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// jsonName is a table cell's name for JSON: "" rather than the table's "-" for unset.
func jsonName(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func timeJSON(ts *timestamppb.Timestamp) *string {
	if ts == nil {
		return nil
	}
	s := ts.AsTime().UTC().Format(time.RFC3339Nano)
	return &s
}

// writeJSON prints v indented, without HTML escaping (keys and commands may hold < and &).
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}
