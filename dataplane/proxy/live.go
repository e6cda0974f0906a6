package proxy

import (
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aster-proxy/aster/dataplane/hotkey"
	"github.com/aster-proxy/aster/dataplane/limits"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Live knobs: the settings that change without reopening a listener or a backend connection,
// through a reload, CONFIG SET cluster.<name>.<knob> or the admin API. They are part of the
// cluster's generation: the file's values (Cluster.live) with the knobs CONFIG SET changed on
// top (Cluster.overlay), made into the generation's slow log, tracker and backup policy by
// buildLiveLocked, for both a reload and CONFIG SET.

// knobs are a generation's live settings, as CONFIG GET shows them.
type knobs struct {
	hotkey  route.HotkeySpec // defaults applied
	slowMax int
	slowThr time.Duration // < 0: slow log off
	backup  route.BackupRequest
	cache   route.ClientCacheSpec // defaults applied
}

// Knob is one live setting as CONFIG GET shows it.
type Knob struct{ Name, Value string }

// knobNames are the knobs, sorted; CONFIG GET lists them in this order.
var knobNames = []string{
	"backup-request-enabled", "backup-request-multiplier", "backup-request-threshold-ms",
	"client-cache-enabled", "client-cache-hot-only", "client-cache-max-entries",
	"client-cache-max-value-bytes", "client-cache-shard-count", "client-cache-max-memory",
	"hotkey-capacity", "hotkey-decay", "hotkey-enabled", "hotkey-sample-every",
	"hotkey-sketch-depth", "hotkey-sketch-width",
	"slowlog-log-slower-than", "slowlog-max-len",
}

// normKnob maps the spellings we accept to the canonical knob name: any case, '_' or '.' for
// '-', and the TOML spelling of the backup threshold.
func normKnob(name string) string {
	n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
	if n == "backup-request-trigger-slow-ms" {
		n = "backup-request-threshold-ms"
	}
	return n
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// knobsOf are the knobs the live settings l of a file (or of NewCluster's options) give.
func knobsOf(l route.LiveSettings) knobs {
	k := knobs{slowMax: l.SlowLogMaxLen, slowThr: l.SlowLogSlowerThan, backup: l.BackupRequest, hotkey: l.Hotkey,
		cache: l.ClientCache}
	if l.SlowLogMaxLen <= 0 {
		k.slowMax, k.slowThr = defaultSlowMax, -1
	}
	return k
}

// hotkeyConfig is the tracker configuration h asks for, defaults applied.
func hotkeyConfig(h route.HotkeySpec) hotkey.Config {
	return hotkey.Config{SampleEvery: h.SampleEvery, Width: h.Width, Depth: h.Depth, Capacity: h.Capacity, Decay: h.Decay}.WithDefaults()
}

// buildLiveLocked makes g's live knobs those of the file (c.live) with CONFIG SET's overlay
// on top, and g's slow log, hot-key tracker and backup policy match them. The slow log and
// the tracker are carried over from g's predecessor while their sizes stay. c.mu must be held.
func (c *Cluster) buildLiveLocked(g *generation) {
	k := knobsOf(c.live)
	for _, set := range c.overlay {
		set(&k) // each sets its own field: the order does not matter
	}
	g.knobs = k
	c.applyHotkey(g)
	applySlow(g)
	c.applyBackupLocked(g)
	applyCacheDefaults(&g.knobs.cache)
}

// setLiveLocked makes l the file's live settings. A part of them l changes (the hot-key
// sizes, the slow log, the backup policy) drops what CONFIG SET set of that part: a knob set
// with CONFIG SET stays until the file changes that knob. c.mu must be held.
func (c *Cluster) setLiveLocked(l route.LiveSettings) {
	drop := func(prefix string) {
		for n := range c.overlay {
			if strings.HasPrefix(n, prefix) {
				delete(c.overlay, n)
			}
		}
	}
	if l.Hotkey != c.live.Hotkey {
		drop("hotkey-")
	}
	if l.SlowLogMaxLen != c.live.SlowLogMaxLen || l.SlowLogSlowerThan != c.live.SlowLogSlowerThan {
		drop("slowlog-")
	}
	if l.BackupRequest != c.live.BackupRequest {
		drop("backup-request-")
	}
	if l.ClientCache != c.live.ClientCache {
		drop("client-cache-")
	}
	c.live = l
}

// defaultSlowMax is the slow log length used when the slow log is turned on live while the
// configuration had it off.
const defaultSlowMax = 128

// applySlow makes g's slow log match its knobs, keeping the newest entries that fit. The
// length is brought into its documented range whatever set it (a remote control plane's spec
// is not checked by our decoder), so the slow log never outgrows limits.MaxSlowlogMaxLen.
func applySlow(g *generation) {
	g.knobs.slowMax = min(g.knobs.slowMax, limits.MaxSlowlogMaxLen)
	k := g.knobs
	old := g.slow
	if k.slowThr < 0 || k.slowMax <= 0 {
		g.slow = nil
		return
	}
	if old != nil && old.Max() == k.slowMax && old.SlowerThan() == k.slowThr {
		return
	}
	g.slow = old.Resized(k.slowMax, k.slowThr)
}

// applyBackupLocked sets g's backup policy from its knobs; enabling it on a cluster whose
// connections lack READONLY gives g new ones (the old close gracefully) so that replicas
// answer the backup reads. c.mu must be held.
func (c *Cluster) applyBackupLocked(g *generation) {
	b := g.knobs.backup
	if !b.Enabled {
		g.backup = nil
		return
	}
	// In range whatever set it: NaN or ≤ 0 is no relative threshold, more than the maximum
	// is the maximum (a product with an infinity would overflow the delay).
	b.Multiplier = limits.BackupMultiplier.Clamp(b.Multiplier, 0)
	if b.Multiplier <= 0 && b.TriggerSlow <= 0 {
		b.Multiplier = 2
	}
	g.backup = &b
	if !c.readonlyLocked(g) {
		c.readonly = true
		c.rebuildPoolsLocked(g)
	}
}

// applyHotkey gives g a new tracker when its sizes changed: counting restarts, the enabled
// state stays.
func (c *Cluster) applyHotkey(g *generation) {
	cfg := hotkeyConfig(g.knobs.hotkey)
	g.knobs.hotkey = route.HotkeySpec{SampleEvery: cfg.SampleEvery, Width: cfg.Width, Depth: cfg.Depth, Capacity: cfg.Capacity, Decay: cfg.Decay}
	old := g.hot
	if old.Config() == cfg {
		return
	}
	t := hotkey.New(cfg)
	t.SetEnabled(old.Enabled())
	g.hot = t
	c.log.Info("hot-key tracker resized; counting restarts", "sample_every", cfg.SampleEvery,
		"width", cfg.Width, "depth", cfg.Depth, "capacity", cfg.Capacity, "decay", cfg.Decay)
}

// Knobs returns the cluster's live knobs, sorted by name.
func (c *Cluster) Knobs() []Knob {
	g := c.gen.Load()
	k := g.knobs
	thr := "default"
	if k.backup.TriggerSlow > 0 {
		thr = strconv.FormatInt(k.backup.TriggerSlow.Milliseconds(), 10)
	}
	slowThr := int64(-1)
	if k.slowThr >= 0 {
		slowThr = k.slowThr.Microseconds()
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	vals := map[string]string{
		"backup-request-enabled":       yesNo(k.backup.Enabled),
		"backup-request-multiplier":    f(k.backup.Multiplier),
		"backup-request-threshold-ms":  thr,
		"client-cache-enabled":         yesNo(k.cache.Enabled),
		"client-cache-hot-only":        yesNo(k.cache.HotOnly),
		"client-cache-max-entries":     strconv.Itoa(k.cache.MaxEntries),
		"client-cache-max-value-bytes": strconv.Itoa(k.cache.MaxValueBytes),
		"client-cache-max-memory":      strconv.Itoa(k.cache.MaxMemory),
		"client-cache-shard-count":     strconv.Itoa(k.cache.ShardCount),
		"hotkey-capacity":              strconv.Itoa(k.hotkey.Capacity),
		"hotkey-decay":                 f(k.hotkey.Decay),
		"hotkey-enabled":               yesNo(g.hot.Enabled()),
		"hotkey-sample-every":          strconv.Itoa(k.hotkey.SampleEvery),
		"hotkey-sketch-depth":          strconv.Itoa(k.hotkey.Depth),
		"hotkey-sketch-width":          strconv.Itoa(k.hotkey.Width),
		"slowlog-log-slower-than":      strconv.FormatInt(slowThr, 10),
		"slowlog-max-len":              strconv.Itoa(k.slowMax),
	}
	out := make([]Knob, 0, len(knobNames))
	for _, n := range knobNames {
		out = append(out, Knob{n, vals[n]})
	}
	return out
}

// KnobError is a refused knob change; its message is what Redis's CONFIG SET would say.
type KnobError struct {
	Unknown bool // no such knob
	Msg     string
}

func (e *KnobError) Error() string { return e.Msg }

// knobName is the canonical name of a knob named bare or as cluster.<this cluster>.<knob>;
// "" for another cluster's.
func (c *Cluster) knobName(name string) string {
	if prefix := "cluster." + c.name + "."; len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
		name = name[len(prefix):]
	} else if strings.HasPrefix(strings.ToLower(name), "cluster.") {
		return ""
	}
	return normKnob(name)
}

// parseKnob checks value for knob name (bare, or cluster.<this cluster>.<knob> as CONFIG SET
// names it) and returns the change: set, for the overlay, or for hotkey-enabled (the
// tracker's state, not a setting) hotOn. Numbers are checked against
// their range in package limits, the same entries the config file is checked with.
func (c *Cluster) parseKnob(name, value string) (set func(*knobs), hotOn *bool, err error) {
	n := c.knobName(name)
	bad := func(why string) error {
		return &KnobError{Msg: "CONFIG SET failed (possibly related to argument '" + clipArg(name) + "') - " + why}
	}
	integer := func(r limits.Int) (int64, error) {
		v, err := r.ParseKnob(value)
		if err != nil {
			return 0, bad(err.Error())
		}
		return v, nil
	}
	boolean := func() (bool, error) {
		switch strings.ToLower(value) { // no space around, as Redis's yes/no
		case "yes", "true", "on", "1":
			return true, nil
		case "no", "false", "off", "0":
			return false, nil
		}
		return false, bad("argument must be 'yes' or 'no'")
	}
	float := func(r limits.Float) (float64, error) {
		v, err := r.ParseKnob(value)
		if err != nil {
			return 0, bad(err.Error())
		}
		return v, nil
	}
	hot := func(r limits.Int, set func(h *route.HotkeySpec, v int)) (func(*knobs), *bool, error) {
		v, err := integer(r)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) { set(&k.hotkey, int(v)) }, nil, nil
	}
	switch n {
	case "hotkey-enabled":
		on, err := boolean()
		if err != nil {
			return nil, nil, err
		}
		return nil, &on, nil
	case limits.HotkeySampleEvery.Knob:
		return hot(limits.HotkeySampleEvery, func(h *route.HotkeySpec, v int) { h.SampleEvery = v })
	case limits.HotkeySketchWidth.Knob:
		return hot(limits.HotkeySketchWidth, func(h *route.HotkeySpec, v int) { h.Width = v })
	case limits.HotkeySketchDepth.Knob:
		return hot(limits.HotkeySketchDepth, func(h *route.HotkeySpec, v int) { h.Depth = v })
	case limits.HotkeyCapacity.Knob:
		return hot(limits.HotkeyCapacity, func(h *route.HotkeySpec, v int) { h.Capacity = v })
	case limits.HotkeyDecay.Knob:
		v, err := float(limits.HotkeyDecay)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) { k.hotkey.Decay = v }, nil, nil
	case limits.SlowlogSlowerThan.Knob:
		v, err := integer(limits.SlowlogSlowerThan)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) {
			k.slowThr = -1
			if v >= 0 {
				k.slowThr = time.Duration(v) * time.Microsecond
			}
		}, nil, nil
	case limits.SlowlogMaxLen.Knob:
		v, err := integer(limits.SlowlogMaxLen)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) { k.slowMax = int(v) }, nil, nil
	case "backup-request-enabled":
		on, err := boolean()
		if err != nil {
			return nil, nil, err
		}
		// Backup reads race a slot's master and replica: a Redis Cluster feature as documented.
		if s := c.gen.Load().routes; on && (s == nil || !s.table.Cluster()) {
			return nil, nil, bad("backup reads need a Redis Cluster (cache_type redis_cluster)")
		}
		return func(k *knobs) { k.backup.Enabled = on }, nil, nil
	case limits.BackupThreshold.Knob:
		var d time.Duration
		if !strings.EqualFold(value, "default") {
			v, err := integer(limits.BackupThreshold)
			if err != nil {
				return nil, nil, err
			}
			d = time.Duration(v) * time.Millisecond
		}
		return func(k *knobs) { k.backup.TriggerSlow = d }, nil, nil
	case "client-cache-enabled", "client-cache-hot-only":
		on, err := boolean()
		if err != nil {
			return nil, nil, err
		}
		if n == "client-cache-enabled" {
			return func(k *knobs) { k.cache.Enabled = on }, nil, nil
		}
		return func(k *knobs) { k.cache.HotOnly = on }, nil, nil
	case limits.ClientCacheMaxEntries.Knob, limits.ClientCacheMaxValueBytes.Knob, limits.ClientCacheShardCount.Knob,
		limits.ClientCacheMaxMemory.Knob:
		r := map[string]limits.Int{limits.ClientCacheMaxEntries.Knob: limits.ClientCacheMaxEntries,
			limits.ClientCacheMaxValueBytes.Knob: limits.ClientCacheMaxValueBytes,
			limits.ClientCacheShardCount.Knob:    limits.ClientCacheShardCount,
			limits.ClientCacheMaxMemory.Knob:     limits.ClientCacheMaxMemory}[n]
		v, err := integer(r)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) {
			switch r {
			case limits.ClientCacheMaxEntries:
				k.cache.MaxEntries = int(v)
			case limits.ClientCacheMaxValueBytes:
				k.cache.MaxValueBytes = int(v)
			case limits.ClientCacheMaxMemory:
				k.cache.MaxMemory = int(v)
			default:
				k.cache.ShardCount = int(v)
			}
		}, nil, nil
	case limits.BackupMultiplier.Knob:
		v, err := float(limits.BackupMultiplier)
		if err != nil {
			return nil, nil, err
		}
		return func(k *knobs) { k.backup.Multiplier = v }, nil, nil
	}
	return nil, nil, &KnobError{Unknown: true, Msg: "Unknown option or number of arguments for CONFIG SET - '" + clipArg(name) + "'"}
}

// maxEchoedArg is how many bytes of a client's argument an error reply quotes: Redis's
// "unknown command '%.128s'". (Redis 7.0's CONFIG SET quotes a parameter name whole; a name
// may be as long as a bulk string, 512 MB, so here it is clipped like a command name.)
const maxEchoedArg = 128

// clipArg is name as an error reply quotes it: at most maxEchoedArg bytes. CR and LF are
// replaced when the reply is written (resp.AppendError).
func clipArg(name string) string {
	if len(name) > maxEchoedArg {
		return name[:maxEchoedArg]
	}
	return name
}

// SetKnobs applies name/value pairs all or none: every value is checked before any applies.
// A knob named twice is refused, as Redis refuses a duplicate parameter.
func (c *Cluster) SetKnobs(pairs ...string) error {
	if len(pairs)%2 != 0 {
		return errors.New("set knobs: odd number of arguments")
	}
	type change struct {
		knob  string
		set   func(*knobs)
		hotOn *bool
	}
	var changes []change
	seen := make(map[string]bool, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		set, hotOn, err := c.parseKnob(pairs[i], pairs[i+1])
		if err != nil {
			return err
		}
		n := c.knobName(pairs[i])
		if seen[n] {
			return &KnobError{Msg: "CONFIG SET failed (possibly related to argument '" + clipArg(pairs[i]) + "') - duplicate parameter"}
		}
		seen[n] = true
		changes = append(changes, change{n, set, hotOn})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overlay == nil {
		c.overlay = make(map[string]func(*knobs))
	}
	for _, ch := range changes {
		if ch.set != nil {
			c.overlay[ch.knob] = ch.set
		}
	}
	g := c.buildLocked(c.gen.Load(), settings{})
	for _, ch := range changes {
		if ch.hotOn != nil {
			g.hot.SetEnabled(*ch.hotOn) // on the tracker g serves with, new or carried over
		}
	}
	c.publishLocked(g)
	for i := 0; i < len(pairs); i += 2 {
		c.log.Info("live setting changed", "knob", pairs[i], "value", pairs[i+1])
	}
	return nil
}

// matchKnobs returns the knobs pattern names, as Redis's CONFIG GET does (any case). A pattern
// with glob characters is matched against each knob's full name (prefix + name) and then its
// bare name, and answers with the name that matched. A plain name is looked up as CONFIG SET
// takes it (bare or prefix + name, '_' or '.' for '-') and answers with the canonical name in
// the form asked: "hotkey_capacity" gives "hotkey-capacity", "cluster.x.HOTKEY_CAPACITY"
// gives "cluster.x.hotkey-capacity".
func matchKnobs(knobs []Knob, prefix, pattern string) []Knob {
	lower := strings.ToLower(pattern)
	if !strings.ContainsAny(pattern, "*?[") { // Redis's test for a pattern
		name, full := lower, false
		if p := strings.ToLower(prefix); p != "" && strings.HasPrefix(lower, p) {
			name, full = lower[len(p):], true
		} else if strings.HasPrefix(lower, "cluster.") {
			return nil // another cluster's
		}
		n := normKnob(name)
		for _, k := range knobs {
			if k.Name == n {
				if full {
					n = prefix + n
				}
				return []Knob{{n, k.Value}}
			}
		}
		return nil
	}
	var out []Knob
	for _, k := range knobs {
		full := prefix + k.Name
		if ok, _ := path.Match(lower, strings.ToLower(full)); ok {
			out = append(out, Knob{full, k.Value})
		} else if ok, _ := path.Match(lower, k.Name); ok && prefix != "" {
			out = append(out, k)
		}
	}
	return out
}

// ClusterKnobs returns a cluster's live knobs matching the glob pattern ("" for all), names
// without the cluster.<name>. prefix; false when the cluster is unknown.
func (s *Server) ClusterKnobs(cluster, pattern string) ([]Knob, bool) {
	c := s.cluster(cluster)
	if c == nil {
		return nil, false
	}
	if pattern == "" {
		pattern = "*"
	}
	return matchKnobs(c.Knobs(), "", pattern), true
}

// SetClusterKnob sets one live knob of a cluster and returns it as now set. Errors: unknown
// cluster, or a *KnobError.
func (s *Server) SetClusterKnob(cluster, name, value string) (Knob, error) {
	c := s.cluster(cluster)
	if c == nil {
		return Knob{}, ErrUnknownCluster
	}
	if err := c.SetKnobs(name, value); err != nil {
		return Knob{}, err
	}
	n := c.knobName(name)
	knobs := c.Knobs()
	i := slices.IndexFunc(knobs, func(k Knob) bool { return k.Name == n })
	if i < 0 {
		return Knob{}, &KnobError{Unknown: true, Msg: "unknown knob " + name}
	}
	return knobs[i], nil
}

// HotKeys returns up to n of a cluster's hottest keys (n < 0: all) and whether sampling is
// on; false when the cluster is unknown.
func (s *Server) HotKeys(cluster string, n int) (keys []hotkey.Hot, enabled, ok bool) {
	c := s.cluster(cluster)
	if c == nil {
		return nil, false, false
	}
	t := c.gen.Load().hot
	return t.Top(n), t.Enabled(), true
}

// ErrUnknownCluster is returned for a cluster this data plane does not serve.
var ErrUnknownCluster = errors.New("unknown cluster")

func (s *Server) cluster(name string) *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusters[name]
}
