package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// rangedFields reads, for each file key of the range table, what the decoder made of it; a key
// added to the table without an entry here fails TestFileRanges, so it is tested.
var rangedFields = map[string]func(c Cluster) float64{
	"hotkey_sample_every":            func(c Cluster) float64 { return float64(c.HotkeySampleEvery) },
	"hotkey_sketch_width":            func(c Cluster) float64 { return float64(c.HotkeySketchWidth) },
	"hotkey_sketch_depth":            func(c Cluster) float64 { return float64(c.HotkeySketchDepth) },
	"hotkey_capacity":                func(c Cluster) float64 { return float64(c.HotkeyCapacity) },
	"hotkey_decay":                   func(c Cluster) float64 { return c.HotkeyDecay },
	"slowlog_log_slower_than":        func(c Cluster) float64 { return float64(c.SlowlogLogSlowerThan / time.Microsecond) },
	"slowlog_max_len":                func(c Cluster) float64 { return float64(c.SlowlogMaxLen) },
	"backup_request.trigger_slow_ms": func(c Cluster) float64 { return float64(c.BackupRequest.TriggerSlow / time.Millisecond) },
	"backup_request.multiplier":      func(c Cluster) float64 { return c.BackupRequest.Multiplier },
	"thread":                         func(c Cluster) float64 { return float64(c.Thread) },
	"read_timeout":                   func(c Cluster) float64 { return float64(c.ReadTimeout / time.Millisecond) },
	"write_timeout":                  func(c Cluster) float64 { return float64(c.WriteTimeout / time.Millisecond) },
	"dial_timeout":                   func(c Cluster) float64 { return float64(c.DialTimeout / time.Millisecond) },
	"node_connections":               func(c Cluster) float64 { return float64(c.NodeConnections) },
	"max_connections":                func(c Cluster) float64 { return float64(c.MaxConnections) },
	"client_output_limit":            func(c Cluster) float64 { return float64(c.ClientOutputLimit) },
	"client_idle_timeout":            func(c Cluster) float64 { return float64(c.ClientIdleTimeout / time.Second) },
	"ping_fail_limit":                func(c Cluster) float64 { return float64(c.PingFailLimit) },
	"ping_interval":                  func(c Cluster) float64 { return float64(c.PingInterval / time.Millisecond) },
	"ping_succ_interval":             func(c Cluster) float64 { return float64(c.PingSuccInterval / time.Millisecond) },
	"fetch":                          func(c Cluster) float64 { return float64(c.Fetch / time.Second) },
	"fetch_interval":                 func(c Cluster) float64 { return float64(c.Fetch / time.Millisecond) },
	"sentinel_poll_interval":         func(c Cluster) float64 { return float64(c.SentinelPollInterval / time.Millisecond) },
	"servers[].weight":               func(c Cluster) float64 { return float64(c.Servers[0].Weight) },
	"client_cache.max_entries":       func(c Cluster) float64 { return float64(c.ClientCache.MaxEntries) },
	"client_cache.max_value_bytes":   func(c Cluster) float64 { return float64(c.ClientCache.MaxValueBytes) },
	"client_cache.shard_count":       func(c Cluster) float64 { return float64(c.ClientCache.ShardCount) },
	"client_cache.max_memory":        func(c Cluster) float64 { return float64(c.ClientCache.MaxMemory) },
	"client_cache.drain_batch":       func(c Cluster) float64 { return float64(c.ClientCache.DrainBatch) },
	"client_cache.drain_interval_ms": func(c Cluster) float64 { return float64(c.ClientCache.DrainInterval / time.Millisecond) },
}

// rangeFile is a one-cluster file setting key (from the range table) to the TOML value v, on
// line 6. It returns the file and the key as messages name it.
func rangeFile(key, v string) (file, shown string) {
	servers := `servers = ["127.0.0.1:6379"]`
	set := key + " = " + v
	shown = key
	switch {
	case key == "servers[].weight":
		servers = `servers = ["127.0.0.1:6379:` + v + `"]`
		set, shown = "", "servers[0]"
	case strings.Contains(key, "."):
		table, sub, _ := strings.Cut(key, ".")
		set = table + " = { " + sub + " = " + v + " }"
	case key == "ping_fail_limit":
		set += "\nping_interval = 1000"
	case strings.HasPrefix(key, "sentinel_"):
		servers = `servers = ["m"]`
		set += "\nsentinels = [\"127.0.0.1:26379\"]"
		return "[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis_sentinel\"\n" + servers + "\n" + set + "\n", shown
	}
	return "[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\n" + servers + "\n" + set + "\n", shown
}

// TestFileRanges: every number of the file loads at its maximum and minimum, as given, and is
// refused beyond them (maximum + 1, 2^31-1, large negatives, 2^63; NaN and infinities for
// reals) with the line, the key and the range: the table in package limits that CONFIG SET
// checks the live knobs with.
func TestFileRanges(t *testing.T) {
	seen := map[string]bool{}
	accept := func(key, v string, want float64) {
		t.Helper()
		file, _ := rangeFile(key, v)
		cfg, err := Parse([]byte(file), "r.toml")
		if err != nil {
			t.Errorf("%s = %s refused: %v", key, v, err)
			return
		}
		if got := rangedFields[key](cfg.Clusters[0]); got != want {
			t.Errorf("%s = %s loaded as %v", key, v, got)
		}
	}
	refuse := func(key, v, want string) {
		t.Helper()
		file, _ := rangeFile(key, v)
		cfg, err := Parse([]byte(file), "r.toml")
		if err == nil {
			t.Errorf("%s = %s accepted: %+v", key, v, cfg.Clusters[0])
			return
		}
		if want != "" && err.Error() != want {
			t.Errorf("%s = %s:\n got %s\nwant %s", key, v, err, want)
		}
	}
	for _, r := range limits.Ints {
		if r.Key == "" {
			continue
		}
		seen[r.Key] = true
		if rangedFields[r.Key] == nil {
			t.Errorf("range table key %q has no test accessor in rangedFields", r.Key)
			continue
		}
		accept(r.Key, strconv.FormatInt(r.Max, 10), float64(r.Max))
		accept(r.Key, strconv.FormatInt(r.Min, 10), float64(r.Min))
		_, shown := rangeFile(r.Key, "")
		msg := func(v int64) string {
			if r.Key == "servers[].weight" {
				return fmt.Sprintf("r.toml:5: cluster \"c\": %s: weight %d out of range %s", shown, v, r.Range())
			}
			return fmt.Sprintf("r.toml:6: cluster \"c\": %s: %d out of range %s", shown, v, r.Range())
		}
		bad := []int64{r.Max + 1, r.Min - 1, math.MinInt64, math.MaxInt64}
		if r.Max < math.MaxInt32 {
			bad = append(bad, math.MaxInt32)
		}
		for _, v := range bad {
			refuse(r.Key, strconv.FormatInt(v, 10), msg(v))
		}
		refuse(r.Key, "9223372036854775808", "") // not a TOML integer: a syntax error
		refuse(r.Key, "1.5", "")
	}
	for _, r := range limits.Floats {
		if r.Key == "" {
			continue
		}
		seen[r.Key] = true
		accept(r.Key, strconv.FormatFloat(r.Max, 'g', -1, 64)+".0", r.Max)
		_, shown := rangeFile(r.Key, "")
		for _, v := range []string{"nan", "inf", "-inf", "+inf", strconv.FormatFloat(r.Max*1.0001, 'g', -1, 64), "0.0", "-1.0", "1e308"} {
			f, _ := strconv.ParseFloat(v, 64)
			refuse(r.Key, v, fmt.Sprintf("r.toml:6: cluster \"c\": %s: %v must be in %s", shown, f, r.Range()))
		}
	}
	for k := range rangedFields {
		if !seen[k] {
			t.Errorf("rangedFields names %q, which the range table does not", k)
		}
	}
}
