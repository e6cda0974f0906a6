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
// through a reload, CONFIG SET cluster.<name>.<knob> or the admin API. Sessions read them with
// one atomic load each (Cluster.slow, hot, backup); writers hold c.mu.

// knobs are a cluster's current live settings. Guarded by Cluster.mu.
type knobs struct {
	hotkey  route.HotkeySpec // defaults applied
	slowMax int
	slowThr time.Duration // < 0: slow log off
	backup  route.BackupRequest
}

// Knob is one live setting as CONFIG GET shows it.
type Knob struct{ Name, Value string }

// knobNames are the knobs, sorted; CONFIG GET lists them in this order.
var knobNames = []string{
	"backup-request-enabled", "backup-request-multiplier", "backup-request-threshold-ms",
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

// initKnobs sets the live knobs of g, the first generation, from the options NewCluster got.
func (c *Cluster) initKnobs(g *generation) {
	o := c.opts
	k := knobs{slowMax: o.SlowLogMaxLen, slowThr: o.SlowLogSlowerThan, backup: o.BackupRequest}
	if o.SlowLogMaxLen <= 0 {
		k.slowMax, k.slowThr = defaultSlowMax, -1
	}
	h := hotkey.Config{SampleEvery: o.Hotkey.SampleEvery, Width: o.Hotkey.Width, Depth: o.Hotkey.Depth,
		Capacity: o.Hotkey.Capacity, Decay: o.Hotkey.Decay}.WithDefaults()
	k.hotkey = route.HotkeySpec{SampleEvery: h.SampleEvery, Width: h.Width, Depth: h.Depth, Capacity: h.Capacity, Decay: h.Decay}
	g.knobs = k
	g.hot = hotkey.New(h)
	applySlow(g)
	c.applyBackupLocked(g) // no session and no pool yet: nothing to lock
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
	if old != nil && old.max == k.slowMax && old.slowerThan == k.slowThr {
		return
	}
	g.slow = old.resized(k.slowMax, k.slowThr)
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
	if !c.readonlyLocked() {
		c.readonly = true
		c.rebuildPoolsLocked(g)
	}
}

// applyLiveLocked applies the live part of a new spec to g: only what changed from old, so
// that a knob set with CONFIG SET stays until the file changes that knob. c.mu must be held.
func (c *Cluster) applyLiveLocked(g *generation, old, spec route.ClusterSpec) {
	if old.Hotkey != spec.Hotkey {
		h := hotkey.Config{SampleEvery: spec.Hotkey.SampleEvery, Width: spec.Hotkey.Width, Depth: spec.Hotkey.Depth,
			Capacity: spec.Hotkey.Capacity, Decay: spec.Hotkey.Decay}.WithDefaults()
		g.knobs.hotkey = route.HotkeySpec{SampleEvery: h.SampleEvery, Width: h.Width, Depth: h.Depth, Capacity: h.Capacity, Decay: h.Decay}
		c.applyHotkey(g)
	}
	if old.SlowLogMaxLen != spec.SlowLogMaxLen || old.SlowLogSlowerThan != spec.SlowLogSlowerThan {
		g.knobs.slowMax, g.knobs.slowThr = spec.SlowLogMaxLen, spec.SlowLogSlowerThan
		if spec.SlowLogMaxLen <= 0 {
			g.knobs.slowMax, g.knobs.slowThr = defaultSlowMax, -1
		}
		applySlow(g)
	}
	if old.BackupRequest != spec.BackupRequest {
		g.knobs.backup = spec.BackupRequest
		c.applyBackupLocked(g)
	}
}

// applyHotkey gives g a new tracker when its sizes changed: counting restarts, the enabled
// state stays.
func (c *Cluster) applyHotkey(g *generation) {
	h := g.knobs.hotkey
	cfg := hotkey.Config{SampleEvery: h.SampleEvery, Width: h.Width, Depth: h.Depth, Capacity: h.Capacity, Decay: h.Decay}.WithDefaults()
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
		"backup-request-enabled":      yesNo(k.backup.Enabled),
		"backup-request-multiplier":   f(k.backup.Multiplier),
		"backup-request-threshold-ms": thr,
		"hotkey-capacity":             strconv.Itoa(k.hotkey.Capacity),
		"hotkey-decay":                f(k.hotkey.Decay),
		"hotkey-enabled":              yesNo(g.hot.Enabled()),
		"hotkey-sample-every":         strconv.Itoa(k.hotkey.SampleEvery),
		"hotkey-sketch-depth":         strconv.Itoa(k.hotkey.Depth),
		"hotkey-sketch-width":         strconv.Itoa(k.hotkey.Width),
		"slowlog-log-slower-than":     strconv.FormatInt(slowThr, 10),
		"slowlog-max-len":             strconv.Itoa(k.slowMax),
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
	if prefix := "cluster." + c.opts.Name + "."; len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
		name = name[len(prefix):]
	} else if strings.HasPrefix(strings.ToLower(name), "cluster.") {
		return ""
	}
	return normKnob(name)
}

// parseKnob checks value for knob name (bare, or cluster.<this cluster>.<knob> as CONFIG SET
// names it) and returns the change, to be applied to the next generation with c.mu held. Numbers are checked against
// their range in package limits, the same entries the config file is checked with.
func (c *Cluster) parseKnob(name, value string) (func(*generation), error) {
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
	hot := func(r limits.Int, set func(h *route.HotkeySpec, v int)) (func(*generation), error) {
		v, err := integer(r)
		if err != nil {
			return nil, err
		}
		return func(g *generation) { set(&g.knobs.hotkey, int(v)); c.applyHotkey(g) }, nil
	}
	switch n {
	case "hotkey-enabled":
		on, err := boolean()
		if err != nil {
			return nil, err
		}
		return func(g *generation) { g.hot.SetEnabled(on) }, nil
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
			return nil, err
		}
		return func(g *generation) { g.knobs.hotkey.Decay = v; c.applyHotkey(g) }, nil
	case limits.SlowlogSlowerThan.Knob:
		v, err := integer(limits.SlowlogSlowerThan)
		if err != nil {
			return nil, err
		}
		return func(g *generation) {
			g.knobs.slowThr = -1
			if v >= 0 {
				g.knobs.slowThr = time.Duration(v) * time.Microsecond
			}
			applySlow(g)
		}, nil
	case limits.SlowlogMaxLen.Knob:
		v, err := integer(limits.SlowlogMaxLen)
		if err != nil {
			return nil, err
		}
		return func(g *generation) { g.knobs.slowMax = int(v); applySlow(g) }, nil
	case "backup-request-enabled":
		on, err := boolean()
		if err != nil {
			return nil, err
		}
		if s := c.gen.Load().snap; on && (s == nil || s.slots == nil) {
			return nil, bad("backup reads need a Redis Cluster (cache_type redis_cluster)")
		}
		return func(g *generation) { g.knobs.backup.Enabled = on; c.applyBackupLocked(g) }, nil
	case limits.BackupThreshold.Knob:
		var d time.Duration
		if !strings.EqualFold(value, "default") {
			v, err := integer(limits.BackupThreshold)
			if err != nil {
				return nil, err
			}
			d = time.Duration(v) * time.Millisecond
		}
		return func(g *generation) { g.knobs.backup.TriggerSlow = d; c.applyBackupLocked(g) }, nil
	case limits.BackupMultiplier.Knob:
		v, err := float(limits.BackupMultiplier)
		if err != nil {
			return nil, err
		}
		return func(g *generation) { g.knobs.backup.Multiplier = v; c.applyBackupLocked(g) }, nil
	}
	return nil, &KnobError{Unknown: true, Msg: "Unknown option or number of arguments for CONFIG SET - '" + clipArg(name) + "'"}
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
	var changes []func(*generation)
	seen := make(map[string]bool, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		f, err := c.parseKnob(pairs[i], pairs[i+1])
		if err != nil {
			return err
		}
		n := c.knobName(pairs[i])
		if seen[n] {
			return &KnobError{Msg: "CONFIG SET failed (possibly related to argument '" + clipArg(pairs[i]) + "') - duplicate parameter"}
		}
		seen[n] = true
		changes = append(changes, f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.nextLocked()
	for _, f := range changes {
		f(g)
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
