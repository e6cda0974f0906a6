package proxy_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestConfigGetBareName: CONFIG GET takes a knob's bare name (and its '_' spelling), as CONFIG
// SET does, and answers with the canonical name in the form asked, as Redis answers with the
// matched parameter's name.
func TestConfigGetBareName(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, slowMax: 5, slowOver: time.Hour})
	for _, tc := range []struct {
		patterns []any
		want     []any
	}{
		{[]any{"slowlog-max-len"}, []any{"slowlog-max-len", "5"}},
		{[]any{"SLOWLOG_MAX_LEN"}, []any{"slowlog-max-len", "5"}},
		{[]any{"hotkey.capacity"}, []any{"hotkey-capacity", "512"}},
		{[]any{"cluster.test.hotkey_capacity"}, []any{"cluster.test.hotkey-capacity", "512"}},
		// the same knob twice answers once
		{[]any{"hotkey-capacity", "hotkey_capacity"}, []any{"hotkey-capacity", "512"}},
		// a glob on the bare names answers with them; one on the full names with those
		{[]any{"slowlog*"}, []any{"slowlog-log-slower-than", "3600000000", "slowlog-max-len", "5"}},
		{[]any{"cluster.test.slowlog-m*"}, []any{"cluster.test.slowlog-max-len", "5"}},
		{[]any{"cluster.other.slowlog-max-len"}, []any{}},
		{[]any{"cluster.other.*"}, []any{}},
		{[]any{"maxmemory"}, []any{}},
	} {
		got, err := e.client.Do(ctx, append([]any{"CONFIG", "GET"}, tc.patterns...)...).Slice()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CONFIG GET %v = %q, %v; want %q", tc.patterns, got, err, tc.want)
		}
	}
	// A bare SET is seen by a bare GET.
	if err := e.client.ConfigSet(ctx, "hotkey_sketch_depth", "7").Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.ConfigGet(ctx, "hotkey-sketch-depth").Result(); got["hotkey-sketch-depth"] != "7" {
		t.Errorf("CONFIG GET hotkey-sketch-depth after SET = %v", got)
	}
	// Redis refuses a parameter named twice in one SET; so do we, all or none.
	err := e.client.Do(ctx, "CONFIG", "SET", "hotkey-capacity", "10", "cluster.test.hotkey_capacity", "20").Err()
	if want := "ERR CONFIG SET failed (possibly related to argument 'cluster.test.hotkey_capacity') - duplicate parameter"; err == nil || err.Error() != want {
		t.Errorf("duplicate CONFIG SET: %v, want %q", err, want)
	}
	if got, _ := e.client.ConfigGet(ctx, "hotkey-capacity").Result(); got["hotkey-capacity"] != "512" {
		t.Errorf("a refused duplicate SET applied: %v", got)
	}
}

// TestConfigSetRanges: every numeric knob of the range table is accepted at its maximum and
// minimum and refused beyond, with Redis's words; the refused value does not apply and the
// proxy keeps answering.
func TestConfigSetRanges(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, slowMax: 5, slowOver: time.Hour})
	get := func(name string) string {
		t.Helper()
		got, err := e.client.ConfigGet(ctx, name).Result()
		if err != nil {
			t.Fatal(err)
		}
		return got[name]
	}
	for _, r := range limits.Ints {
		if r.Knob == "" {
			continue
		}
		for _, v := range []int64{r.Max, r.Min} {
			if err := e.client.ConfigSet(ctx, r.Knob, strconv.FormatInt(v, 10)).Err(); err != nil {
				t.Errorf("CONFIG SET %s %d: %v", r.Knob, v, err)
			} else if got := get(r.Knob); got != strconv.FormatInt(v, 10) && !(r == limits.BackupThreshold && v == 0 && got == "default") {
				t.Errorf("CONFIG GET %s after SET %d = %q", r.Knob, v, got)
			}
		}
		before := get(r.Knob)
		rangeErr := "ERR CONFIG SET failed (possibly related to argument '" + r.Knob + "') - argument must be between " +
			strconv.FormatInt(r.Min, 10) + " and " + strconv.FormatInt(r.Max, 10) + " inclusive"
		parseErr := "ERR CONFIG SET failed (possibly related to argument '" + r.Knob + "') - argument couldn't be parsed into an integer"
		bad := []struct{ v, want string }{
			{strconv.FormatInt(r.Max+1, 10), rangeErr},
			{strconv.FormatInt(r.Min-1, 10), rangeErr},
			{"-9223372036854775808", rangeErr},
			{"9223372036854775807", rangeErr},
			{"9223372036854775808", parseErr},
			{"1.5", parseErr},
		}
		if r.Max < 1<<31-1 {
			bad = append(bad, struct{ v, want string }{"2147483647", rangeErr})
		}
		// Redis's integers (string2ll): no space around, no '+', no leading zero, no "-0".
		max := strconv.FormatInt(r.Max, 10)
		for _, v := range []string{" " + max, max + " ", "\t" + max, "+" + max, "0" + max, "-0", "0x1", ""} {
			bad = append(bad, struct{ v, want string }{v, parseErr})
		}
		for _, tc := range bad {
			if err := e.client.ConfigSet(ctx, r.Knob, tc.v).Err(); err == nil || err.Error() != tc.want {
				t.Errorf("CONFIG SET %s %s: %v, want %q", r.Knob, tc.v, err, tc.want)
			}
			if got := get(r.Knob); got != before {
				t.Errorf("refused CONFIG SET %s %s applied: %s → %s", r.Knob, tc.v, before, got)
			}
		}
	}
	for _, r := range limits.Floats {
		want := "ERR CONFIG SET failed (possibly related to argument '" + r.Knob + "') - argument must be a number in " + r.Range()
		if err := e.client.ConfigSet(ctx, r.Knob, strconv.FormatFloat(r.Max, 'g', -1, 64)).Err(); err != nil {
			t.Errorf("CONFIG SET %s at its maximum: %v", r.Knob, err)
		}
		before := get(r.Knob)
		for _, v := range []string{"NaN", "Inf", "-Inf", "1e309", " 0.5", "0.5 ", strconv.FormatFloat(r.Min, 'g', -1, 64), strconv.FormatFloat(r.Max*1.0001, 'g', -1, 64), "x"} {
			if err := e.client.ConfigSet(ctx, r.Knob, v).Err(); err == nil || err.Error() != want {
				t.Errorf("CONFIG SET %s %s: %v, want %q", r.Knob, v, err, want)
			}
			if got := get(r.Knob); got != before {
				t.Errorf("refused CONFIG SET %s %s applied: %s → %s", r.Knob, v, before, got)
			}
		}
	}
	if err := e.client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := e.client.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after the knobs: %q, %v", v, err)
	}
}

// TestConfigSetEchoesClippedName: an error quotes at most 128 bytes of the parameter name a
// client sent, whatever its size, and on one line: CR and LF become spaces, as Redis's error
// replies do. The value is never quoted.
func TestConfigSetEchoesClippedName(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := redistest.DialFrames(t, e.addr)
	name := "x\r\n-ERR injected\r\n" + strings.Repeat("n", 1<<20)
	quoted := strings.NewReplacer("\r", " ", "\n", " ").Replace(name[:128])
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CONFIG", "SET", name, "1"}, "-ERR Unknown option or number of arguments for CONFIG SET - '" + quoted + "'\r\n"},
		{[]string{"CONFIG", "SET", "cluster.test.slowlog-max-len\r\n" + name, "1"},
			"-ERR Unknown option or number of arguments for CONFIG SET - 'cluster.test.slowlog-max-len  " + quoted[:128-30] + "'\r\n"},
		{[]string{"CONFIG", "SET", "slowlog-max-len", "1\r\n" + name}, "-ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument couldn't be parsed into an integer\r\n"},
	} {
		if got := string(c.Do(tc.args...)); got != tc.want {
			t.Errorf("CONFIG SET %.40q...: %.300q, want %q", tc.args[2], got, tc.want)
		}
	}
	if got := string(c.Do("PING")); got != "+PONG\r\n" {
		t.Fatalf("PING after: %q", got)
	}
}
