package proxy

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/hotkey"
	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/dataplane/route"
)

// boolKnobs are the live knobs that take yes/no; every other knob must have a range in package
// limits (TestEveryKnobHasARange).
var boolKnobs = []string{"hotkey-enabled", "backup-request-enabled", "client-cache-enabled", "client-cache-hot-only"}

// TestEveryKnobHasARange: a numeric knob added to CONFIG SET without an entry in the range
// table fails here, so the tests driven by the table (here, in test/e2e and the fuzz seeds)
// cover it.
func TestEveryKnobHasARange(t *testing.T) {
	var ranged []string
	for _, r := range limits.Ints {
		if r.Knob != "" {
			ranged = append(ranged, r.Knob)
		}
	}
	for _, r := range limits.Floats {
		if r.Knob != "" {
			ranged = append(ranged, r.Knob)
		}
	}
	for _, n := range knobNames {
		if !slices.Contains(ranged, n) && !slices.Contains(boolKnobs, n) {
			t.Errorf("knob %q has no range in package limits", n)
		}
	}
	for _, n := range ranged {
		if !slices.Contains(knobNames, n) {
			t.Errorf("package limits names knob %q, which CONFIG SET does not have", n)
		}
	}
}

// checkBounded asserts what every accepted change must leave: knobs in their ranges, and a
// tracker and slow log no larger than the documented maxima.
func checkBounded(t *testing.T, c *Cluster, what string) {
	t.Helper()
	g := c.gen.Load()
	k := g.knobs
	if b := g.hot.Bytes(); b > hotkey.MaxBytes {
		t.Fatalf("%s: hot-key tracker holds %d bytes, more than hotkey.MaxBytes %d", what, b, hotkey.MaxBytes)
	}
	cfg := g.hot.Config()
	for _, v := range []struct {
		r limits.Int
		v int
	}{
		{limits.HotkeySampleEvery, cfg.SampleEvery}, {limits.HotkeySketchWidth, cfg.Width},
		{limits.HotkeySketchDepth, cfg.Depth}, {limits.HotkeyCapacity, cfg.Capacity},
		{limits.HotkeySampleEvery, k.hotkey.SampleEvery}, {limits.HotkeySketchWidth, k.hotkey.Width},
		{limits.HotkeySketchDepth, k.hotkey.Depth}, {limits.HotkeyCapacity, k.hotkey.Capacity},
		{limits.SlowlogMaxLen, k.slowMax},
	} {
		if !v.r.Contains(int64(v.v)) {
			t.Fatalf("%s: %s = %d, outside %s", what, v.r.Knob, v.v, v.r.Range())
		}
	}
	if !limits.HotkeyDecay.Contains(cfg.Decay) {
		t.Fatalf("%s: hotkey decay %v outside %s", what, cfg.Decay, limits.HotkeyDecay.Range())
	}
	if l := g.slow; l != nil && l.Max() > limits.MaxSlowlogMaxLen {
		t.Fatalf("%s: slow log of %d entries, more than %d", what, l.Max(), limits.MaxSlowlogMaxLen)
	}
	if b := g.backup; b != nil && (math.IsNaN(b.Multiplier) || b.Multiplier > limits.MaxBackupMultiplier) {
		t.Fatalf("%s: backup multiplier %v", what, b.Multiplier)
	}
}

// FuzzSetKnobs drives CONFIG SET's path (SetKnobs, parseKnob) with arbitrary names and values,
// one or two pairs: it never panics, a refused SET changes nothing, and after any accepted one
// the tracker and slow log stay within the documented maxima.
func FuzzSetKnobs(f *testing.F) {
	for _, r := range limits.Ints {
		if r.Knob == "" {
			continue
		}
		for _, v := range []string{strconv.FormatInt(r.Max, 10), strconv.FormatInt(r.Max+1, 10), "2147483647", "-9223372036854775808", "9223372036854775808"} {
			f.Add(r.Knob, v, "", "")
			f.Add("cluster.fuzz."+strings.ReplaceAll(r.Knob, "-", "_"), v, "hotkey-capacity", "16384")
		}
	}
	for _, r := range limits.Floats {
		for _, v := range []string{"NaN", "Inf", "-Inf", "1e308", "0", strconv.FormatFloat(r.Max, 'g', -1, 64)} {
			f.Add(r.Knob, v, "", "")
		}
	}
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		c := MustCluster(t, route.ClusterSpec{Name: "fuzz"}, Env{})
		before := c.Knobs()
		pairs := []string{n1, v1}
		if n2 != "" {
			pairs = append(pairs, n2, v2)
		}
		if err := c.SetKnobs(pairs...); err != nil {
			if _, ok := err.(*KnobError); !ok {
				t.Fatalf("SetKnobs(%q): error %T %v, want a *KnobError", pairs, err, err)
			}
			if after := c.Knobs(); !slices.Equal(before, after) {
				t.Fatalf("refused SetKnobs(%q) changed knobs:\n%v\n%v", pairs, before, after)
			}
		}
		checkBounded(t, c, strings.Join(pairs, " "))
		// And the same through the tracker and slow log's use: a long key is observed.
		c.gen.Load().hot.Observe([]byte(strings.Repeat("k", 1000)))
		checkBounded(t, c, strings.Join(pairs, " ")+" after a key")
	})
}

// TestForeignSpecsAreClamped: a spec the decoder did not check (a remote control plane's, or a
// future caller's) cannot size the tracker or the slow log beyond the maxima either, at start
// or by a reload.
func TestForeignSpecsAreClamped(t *testing.T) {
	huge := math.MaxInt32
	c := MustCluster(t, route.ClusterSpec{Name: "remote",
		Live: route.LiveSettings{SlowLogMaxLen: huge, SlowLogSlowerThan: 1, Hotkey: route.HotkeySpec{SampleEvery: huge, Width: huge, Depth: huge, Capacity: huge, Decay: math.NaN()}}},
		Env{})
	checkBounded(t, c, "NewCluster")
	old := route.ClusterSpec{Name: "remote"}
	spec := route.ClusterSpec{Name: "remote",
		Live: route.LiveSettings{SlowLogMaxLen: huge, SlowLogSlowerThan: 1, Hotkey: route.HotkeySpec{Width: huge, Depth: huge}, BackupRequest: route.BackupRequest{Enabled: true, Multiplier: math.Inf(1)}}}
	c.readonly = true // no pools to rebuild: this cluster never served
	c.change(old, spec, prepared{})
	checkBounded(t, c, "change")
}
