package limits

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseKnob(t *testing.T) {
	for _, tc := range []struct {
		r    Int
		in   string
		want int64
		err  string
	}{
		{HotkeySketchWidth, "65536", 65536, ""},
		// Redis's string2ll: "0" or an optional '-' and digits without a leading zero.
		{HotkeySketchWidth, " 1", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "1 ", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "\t1", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "+5", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "05", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "-0", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "-", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "0x5", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "1_0", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "--5", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "\u0661", 0, "argument couldn't be parsed into an integer"}, // Arabic-Indic one
		{HotkeySketchWidth, "5", 5, ""},
		{HotkeySketchWidth, "10", 10, ""},
		{SlowlogSlowerThan, "0", 0, ""},
		{HotkeySketchWidth, "65537", 0, "argument must be between 1 and 65536 inclusive"},
		{HotkeySketchWidth, "0", 0, "argument must be between 1 and 65536 inclusive"},
		{HotkeySketchWidth, "-9223372036854775808", 0, "argument must be between 1 and 65536 inclusive"},
		{HotkeySketchWidth, "9223372036854775808", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "1e3", 0, "argument couldn't be parsed into an integer"},
		{HotkeySketchWidth, "", 0, "argument couldn't be parsed into an integer"},
		{SlowlogSlowerThan, "-1", -1, ""},
		{SlowlogSlowerThan, "-2", 0, "argument must be between -1 and 3600000000 inclusive"},
	} {
		v, err := tc.r.ParseKnob(tc.in)
		if tc.err == "" && (err != nil || v != tc.want) {
			t.Errorf("%s %q = %d, %v; want %d", tc.r.Knob, tc.in, v, err, tc.want)
		}
		if tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("%s %q: %v, want %q", tc.r.Knob, tc.in, err, tc.err)
		}
	}
	for _, in := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "0", "-0", "1.0000001", "1e400", "x", " 0.5", "0.5 ", "0.5\n"} {
		if v, err := HotkeyDecay.ParseKnob(in); err == nil || err.Error() != "argument must be a number in (0, 1]" {
			t.Errorf("hotkey-decay %q = %v, %v; want refused", in, v, err)
		}
	}
	if v, err := HotkeyDecay.ParseKnob("1"); err != nil || v != 1 {
		t.Errorf("hotkey-decay 1 = %v, %v", v, err)
	}
}

// TestTable: entries are consistent, and every maximum keeps what it sizes or waits for
// within what its comment promises.
func TestTable(t *testing.T) {
	keys, knobs := map[string]bool{}, map[string]bool{}
	for _, r := range Ints {
		if r.Min > r.Max || (r.Key == "" && r.Knob == "") {
			t.Errorf("bad entry %+v", r)
		}
		if keys[r.Key] || (r.Knob != "" && knobs[r.Knob]) {
			t.Errorf("entry %+v twice", r)
		}
		keys[r.Key], knobs[r.Knob] = true, r.Knob != ""
		if r.Knob != "" && (strings.Contains(r.Knob, "_") || r.Knob != strings.ToLower(r.Knob)) {
			t.Errorf("knob %q is not canonical (lower case, '-')", r.Knob)
		}
		// count × unit fits a time.Duration for every duration
		unit := map[string]time.Duration{"": 0, "ms": time.Millisecond, "µs": time.Microsecond, "s": time.Second}[r.Unit]
		if unit > 0 && r.Max > math.MaxInt64/int64(unit) {
			t.Errorf("%s: %d %s overflows a time.Duration", r.Key, r.Max, r.Unit)
		}
	}
	for _, r := range Floats {
		if !(r.Min < r.Max) || math.IsInf(r.Max, 0) {
			t.Errorf("bad entry %+v", r)
		}
	}
	if b := MaxHotkeySketchWidth * MaxHotkeySketchDepth * 4; b > 4<<20 {
		t.Errorf("sketch at the maxima is %d bytes, more than 4 MiB", b)
	}
	if MaxSlowlogMaxLen*(32*(128+40)+128) > 24<<20 {
		t.Errorf("slow log at its maximum may exceed ~20 MiB")
	}
	if uint64(MaxServerWeight)*65_537 > math.MaxUint32 {
		t.Errorf("weights at the maximum overflow the ring's 32-bit sum too soon")
	}
	if !HotkeyCapacity.Contains(MaxHotkeyCapacity) || HotkeyCapacity.Contains(MaxHotkeyCapacity+1) || HotkeyCapacity.Clamp(math.MaxInt64) != MaxHotkeyCapacity {
		t.Error("Contains/Clamp disagree with Max")
	}
	if BackupMultiplier.Clamp(math.NaN(), 2) != 2 || BackupMultiplier.Clamp(math.Inf(1), 2) != MaxBackupMultiplier || BackupMultiplier.Clamp(-1, 0) != 0 {
		t.Error("Float.Clamp lets NaN, an infinity or a negative through")
	}
}
