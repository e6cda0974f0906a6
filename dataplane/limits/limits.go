// Package limits is the one table of the ranges of Aster's numeric settings: every number of the
// configuration file and every live knob (CONFIG SET cluster.<name>.<knob>, the admin API's
// SetClusterConfig) has its range here, and the config decoder (controlplane/config), CONFIG SET
// and the admin API (dataplane/proxy) all check a value with the same entry. Each maximum is
// chosen so that what the setting makes asterd allocate stays small per cluster; the comment of
// an entry says what its maximum bounds.
//
// Why a package of its own: the data plane must never import the control plane, so the table
// lives in the data plane; and the hot-key tracker (dataplane/hotkey) clamps to it as a last
// defence, which it could not do from dataplane/proxy (a cycle) or dataplane/route (the routing
// tables, which have no business with trackers). This package imports nothing of Aster.
//
// Concurrency: the table is fixed at compile time; every entry and function is safe for
// concurrent use.
package limits

import (
	"math"
	"strconv"
	"strings"
)

// Int is the range of an integer setting: Min ≤ v ≤ Max.
type Int struct {
	// Knob is the live knob's canonical name (CONFIG SET); "" when only the file sets it.
	Knob string
	// Key is the configuration file key, "table.key" for one in a sub-table such as
	// backup_request; "" when only CONFIG SET sets it.
	Key      string
	Min, Max int64
	// Unit is what one means in the file and for the knob ("ms", "µs", "s"); "" for a count.
	Unit string
}

// Float is the range of a real-valued setting: Min < v ≤ Max (Min excluded). NaN and the
// infinities are never in range.
type Float struct {
	Knob, Key string
	Min, Max  float64
}

// Maxima and minima other packages name directly.
const (
	// The hot-key sketch is HotkeySketchWidth × HotkeySketchDepth uint32 counters: at the
	// maxima 65,536 × 16 × 4 bytes = 4 MiB per cluster.
	MaxHotkeySketchWidth = 65_536
	MaxHotkeySketchDepth = 16
	// The top-k table holds at most this many keys (32-byte entries plus each key's bytes,
	// which the tracker caps at hotkey.MaxKeyBytes): about 5 MiB per cluster at the maximum.
	MaxHotkeyCapacity = 16_384
	// Sampling one command in more than a million samples nothing useful; nothing is
	// allocated by it, the bound keeps estimates (count × sample_every) far from overflow.
	MaxHotkeySampleEvery = 1_000_000
	// A slow log entry holds at most 32 arguments of at most 128 bytes (Redis's trimming),
	// about 5 KiB as stored: 4,096 entries are about 20 MiB per cluster at worst.
	MaxSlowlogMaxLen = 4_096
	// An hour, in µs: a slower threshold would log nothing; the value × 1000 never
	// overflows a time.Duration.
	MaxSlowlogSlowerThan = 3_600_000_000
	// An hour, in ms, for every timeout, interval and threshold in milliseconds.
	MaxMillis = 3_600_000
	// A backup read more than 100 × the master's average latency late is no backup; the
	// product with any latency stays far inside a time.Duration.
	MaxBackupMultiplier = 100

	MaxThread          = 1024    // client event loops of one cluster
	MaxNodeConnections = 64      // shared connections per backend node
	MaxMaxConnections  = 1 << 20 // clients of one cluster
	MaxPingFailLimit   = 255     // the original's u8
	MaxServerWeight    = 65_535  // ketama weight; the ring sums weights in 32 bits
	// Sentinel mode: the sentinels asked (each a kept connection and a subscription) and the
	// length of a Sentinel master name (it goes into every command sent to them).
	MaxSentinels       = 16
	MaxSentinelNameLen = 128
)

// The live knobs that take numbers, and the file keys that set them at start and reload.
var (
	HotkeySampleEvery = Int{Knob: "hotkey-sample-every", Key: "hotkey_sample_every", Min: 1, Max: MaxHotkeySampleEvery}
	HotkeySketchWidth = Int{Knob: "hotkey-sketch-width", Key: "hotkey_sketch_width", Min: 1, Max: MaxHotkeySketchWidth}
	HotkeySketchDepth = Int{Knob: "hotkey-sketch-depth", Key: "hotkey_sketch_depth", Min: 1, Max: MaxHotkeySketchDepth}
	HotkeyCapacity    = Int{Knob: "hotkey-capacity", Key: "hotkey_capacity", Min: 1, Max: MaxHotkeyCapacity}
	HotkeyDecay       = Float{Knob: "hotkey-decay", Key: "hotkey_decay", Min: 0, Max: 1}
	// -1 turns the slow log off.
	SlowlogSlowerThan = Int{Knob: "slowlog-log-slower-than", Key: "slowlog_log_slower_than", Min: -1, Max: MaxSlowlogSlowerThan, Unit: "µs"}
	// 0 turns the slow log off.
	SlowlogMaxLen = Int{Knob: "slowlog-max-len", Key: "slowlog_max_len", Min: 0, Max: MaxSlowlogMaxLen}
	// 0 (or "default") means only the relative threshold applies.
	BackupThreshold  = Int{Knob: "backup-request-threshold-ms", Key: "backup_request.trigger_slow_ms", Min: 0, Max: MaxMillis, Unit: "ms"}
	BackupMultiplier = Float{Knob: "backup-request-multiplier", Key: "backup_request.multiplier", Min: 0, Max: MaxBackupMultiplier}
)

// The file's other numbers.
var (
	Thread          = Int{Key: "thread", Min: 1, Max: MaxThread}
	ReadTimeout     = Int{Key: "read_timeout", Min: 0, Max: MaxMillis, Unit: "ms"} // 0: none
	WriteTimeout    = Int{Key: "write_timeout", Min: 0, Max: MaxMillis, Unit: "ms"}
	DialTimeout     = Int{Key: "dial_timeout", Min: 0, Max: MaxMillis, Unit: "ms"}
	NodeConnections = Int{Key: "node_connections", Min: 1, Max: MaxNodeConnections}
	MaxConnections  = Int{Key: "max_connections", Min: 0, Max: MaxMaxConnections}
	// The reply bytes held for one client that does not read: below 64 KiB pipelines would
	// crawl; above 1 GiB it no longer bounds anything a host can afford.
	ClientOutputLimit = Int{Key: "client_output_limit", Min: 64 << 10, Max: 1 << 30}
	// Redis's `timeout` range; 0: never.
	ClientIdleTimeout = Int{Key: "client_idle_timeout", Min: 0, Max: math.MaxInt32, Unit: "s"}
	PingFailLimit     = Int{Key: "ping_fail_limit", Min: 0, Max: MaxPingFailLimit}
	PingInterval      = Int{Key: "ping_interval", Min: 0, Max: MaxMillis, Unit: "ms"}
	PingSuccInterval  = Int{Key: "ping_succ_interval", Min: 1, Max: MaxMillis, Unit: "ms"}
	// A day between slot map refreshes at most (a MOVED refreshes it anyway).
	Fetch         = Int{Key: "fetch", Min: 1, Max: 86_400, Unit: "s"}
	FetchInterval = Int{Key: "fetch_interval", Min: 1, Max: 86_400_000, Unit: "ms"}
	// How often the sentinels are asked for every group's master besides their events; at
	// least 100 ms, so that a few sentinels are not asked in a loop.
	SentinelPollInterval = Int{Key: "sentinel_poll_interval", Min: 100, Max: MaxMillis, Unit: "ms"}
	// The weight in "host:port:weight": at most 65,537 servers at the maximum stay within the
	// ring's 32-bit sum.
	ServerWeight = Int{Key: "servers[].weight", Min: 1, Max: MaxServerWeight}
	// client_cache sizes the proxy's cache of read replies (dataplane/cache); drain_batch and
	// drain_interval_ms are the original's, accepted and unused: invalidations apply as they
	// arrive.
	ClientCacheMaxEntries    = Int{Knob: "client-cache-max-entries", Key: "client_cache.max_entries", Min: 1, Max: 1_000_000}
	ClientCacheMaxValueBytes = Int{Knob: "client-cache-max-value-bytes", Key: "client_cache.max_value_bytes", Min: 1, Max: 1 << 20}
	ClientCacheShardCount    = Int{Knob: "client-cache-shard-count", Key: "client_cache.shard_count", Min: 1, Max: 1024}
	// ClientCacheMaxMemory bounds the whole cache's bytes, whatever max_entries × max_value_bytes allows.
	ClientCacheMaxMemory     = Int{Knob: "client-cache-max-memory", Key: "client_cache.max_memory", Min: 1 << 20, Max: 1 << 40, Unit: "bytes"}
	ClientCacheDrainBatch    = Int{Key: "client_cache.drain_batch", Min: 1, Max: 65_536}
	ClientCacheDrainInterval = Int{Key: "client_cache.drain_interval_ms", Min: 1, Max: 60_000, Unit: "ms"}
)

// Ints and Floats list every entry above, for documentation and for tests that must cover a
// setting added later.
var (
	Ints = []Int{
		HotkeySampleEvery, HotkeySketchWidth, HotkeySketchDepth, HotkeyCapacity,
		SlowlogSlowerThan, SlowlogMaxLen, BackupThreshold,
		Thread, ReadTimeout, WriteTimeout, DialTimeout, NodeConnections, MaxConnections, ClientOutputLimit,
		ClientIdleTimeout, PingFailLimit, PingInterval, PingSuccInterval, Fetch, FetchInterval, SentinelPollInterval,
		ServerWeight, ClientCacheMaxEntries, ClientCacheMaxValueBytes, ClientCacheShardCount, ClientCacheMaxMemory,
		ClientCacheDrainBatch, ClientCacheDrainInterval,
	}
	Floats = []Float{HotkeyDecay, BackupMultiplier}
)

// Contains reports whether v is in range.
func (r Int) Contains(v int64) bool { return v >= r.Min && v <= r.Max }

// Clamp returns v moved into range.
func (r Int) Clamp(v int64) int64 { return min(max(v, r.Min), r.Max) }

// Range is the range as the file's messages show it: "1..65536", "0..3600000 ms".
func (r Int) Range() string {
	s := strconv.FormatInt(r.Min, 10) + ".." + strconv.FormatInt(r.Max, 10)
	if r.Unit != "" {
		s += " " + r.Unit
	}
	return s
}

// Messages of ParseKnob's errors, as Redis 7's CONFIG SET words them for an integer setting.
const (
	msgNotInteger = "argument couldn't be parsed into an integer"
)

// ParseKnob parses a live value (decimal, as Redis's CONFIG SET takes it) and checks its
// range. The error's text is Redis's: "argument couldn't be parsed into an integer" or
// "argument must be between MIN and MAX inclusive".
func (r Int) ParseKnob(s string) (int64, error) {
	v, ok := parseInteger(s)
	if !ok {
		return 0, Error(msgNotInteger)
	}
	if !r.Contains(v) {
		return 0, Error("argument must be between " + strconv.FormatInt(r.Min, 10) + " and " +
			strconv.FormatInt(r.Max, 10) + " inclusive")
	}
	return v, nil
}

// parseInteger parses s as Redis's string2ll does, which CONFIG SET uses for an integer:
// "0", or an optional '-' and digits without a leading zero, nothing else: no space around,
// no '+', no "-0", no "05", and within int64.
func parseInteger(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64) // only overflow is left to refuse
	return v, err == nil
}

// Contains reports whether v is in range; never for NaN or an infinity.
func (r Float) Contains(v float64) bool {
	return v > r.Min && v <= r.Max && !math.IsInf(v, 0)
}

// Clamp returns v moved into range; NaN and values at or below Min become def.
func (r Float) Clamp(v, def float64) float64 {
	if !(v > r.Min) {
		return def
	}
	return min(v, r.Max)
}

// Range is the range as messages show it: "(0, 1]".
func (r Float) Range() string {
	return "(" + strconv.FormatFloat(r.Min, 'g', -1, 64) + ", " + strconv.FormatFloat(r.Max, 'g', -1, 64) + "]"
}

// ParseKnob parses a live value and checks its range; the error says "argument must be a
// number in (MIN, MAX]".
func (r Float) ParseKnob(s string) (float64, error) {
	// No space around it either: Redis's string2d refuses it.
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || s != strings.TrimSpace(s) || !r.Contains(v) {
		return 0, Error("argument must be a number in " + r.Range())
	}
	return v, nil
}

// Error is a value out of range or not a number, worded for CONFIG SET.
type Error string

func (e Error) Error() string { return string(e) }
