// Package hotkey finds a cluster's hottest keys from a sample of its commands: a count-min
// sketch estimates how often each sampled key was seen, and a HeavyKeeper-style table of
// capacity entries decides which keys are worth remembering, so that a flood of keys seen once
// cannot push a truly hot key out.
//
// Concurrency: a Tracker is safe for concurrent use. Observe takes a mutex, so callers sample
// (one command in Config.SampleEvery) and keep the unsampled path free of it.
package hotkey

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// Config sizes a Tracker. Zero fields take the defaults below.
type Config struct {
	SampleEvery int     // observe one command in this many
	Width       int     // counters per sketch row
	Depth       int     // sketch rows (independent hashes)
	Capacity    int     // keys remembered by the top-k table
	Decay       float64 // HeavyKeeper base b in (0, 1]: a resident count c yields with probability b^c
}

// Defaults, those of the original Aster.
const (
	DefaultSampleEvery = 32
	DefaultWidth       = 4096
	DefaultDepth       = 4
	DefaultCapacity    = 512
	DefaultDecay       = 0.925
)

// WithDefaults returns c with its zero fields set to the defaults and every field brought into
// its documented range (package limits): whatever a caller passes, a Tracker never allocates
// more than MaxBytes.
func (c Config) WithDefaults() Config {
	if c.SampleEvery <= 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.Width <= 0 {
		c.Width = DefaultWidth
	}
	if c.Depth <= 0 {
		c.Depth = DefaultDepth
	}
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if !(c.Decay > 0 && c.Decay <= 1) {
		c.Decay = DefaultDecay
	}
	c.SampleEvery = min(c.SampleEvery, limits.MaxHotkeySampleEvery)
	c.Width = min(c.Width, limits.MaxHotkeySketchWidth)
	c.Depth = min(c.Depth, limits.MaxHotkeySketchDepth)
	c.Capacity = min(c.Capacity, limits.MaxHotkeyCapacity)
	return c
}

// MaxKeyBytes is the longest key the tracker keeps as it is. A longer key is counted and shown
// as its first MaxKeyBytes bytes followed by "... (N more bytes)", as Redis's SLOWLOG trims an
// argument: two long keys that share that prefix and length count as one.
const MaxKeyBytes = 256

// maxShownKey is the longest key the top-k table holds: a trimmed key and its note.
const maxShownKey = MaxKeyBytes + len("... ( more bytes)") + 20

// MaxBytes bounds what a Tracker holds at the largest sizes limits allows: the sketch, the row
// seeds, the top-k entries and their keys.
const MaxBytes = limits.MaxHotkeySketchWidth*limits.MaxHotkeySketchDepth*4 + limits.MaxHotkeySketchDepth*8 +
	(limits.MaxHotkeyCapacity+ways-1)/ways*ways*(int(unsafe.Sizeof(entry{}))+maxShownKey)

// ways is how many entries share one bucket of the top-k table: a new key contests only the
// weakest entry of its bucket, which keeps an insert O(ways).
const ways = 4

// entry is one remembered key. count is its HeavyKeeper count, which only decides residence;
// the reported estimate comes from the sketch.
type entry struct {
	fp    uint64
	key   string
	count uint64
}

// Tracker counts sampled keys. Create it with New.
type Tracker struct {
	cfg     Config
	enabled atomic.Bool

	mu      sync.Mutex
	sketch  []uint32 // Depth rows of Width counters
	seeds   []uint64 // one hash seed per row
	buckets [][ways]entry
	rng     *rand.Rand
	total   uint64 // keys observed
	trimmed []byte // scratch: a long key as counted (see MaxKeyBytes)
}

// New returns a disabled Tracker sized by cfg (defaults for zero fields, sizes beyond the
// documented maxima clamped to them).
func New(cfg Config) *Tracker {
	cfg = cfg.WithDefaults()
	t := &Tracker{
		cfg:     cfg,
		sketch:  make([]uint32, cfg.Width*cfg.Depth),
		seeds:   make([]uint64, cfg.Depth),
		buckets: make([][ways]entry, (cfg.Capacity+ways-1)/ways),
		rng:     rand.New(rand.NewPCG(0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9)),
	}
	for i := range t.seeds {
		t.seeds[i] = 0x9e3779b97f4a7c15 * uint64(2*i+1)
	}
	return t
}

// Config is the tracker's configuration (defaults applied).
func (t *Tracker) Config() Config { return t.cfg }

// Enabled reports whether commands should be sampled into t.
func (t *Tracker) Enabled() bool { return t.enabled.Load() }

// SetEnabled turns sampling on or off; what was counted is kept.
func (t *Tracker) SetEnabled(on bool) { t.enabled.Store(on) }

// hash is FNV-1a 64 of key mixed with seed; it works on []byte and string alike.
func hash[T []byte | string](key T, seed uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	// finaliser (splitmix64) so that rows with different seeds are independent enough
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// Observe counts one sighting of key. It copies key only when the key enters the top-k table.
func (t *Tracker) Observe(key []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	if len(key) > MaxKeyBytes {
		t.trimmed = append(append(t.trimmed[:0], key[:MaxKeyBytes]...), "... ("...)
		t.trimmed = strconv.AppendInt(t.trimmed, int64(len(key)-MaxKeyBytes), 10)
		key = append(t.trimmed, " more bytes)"...)
		t.trimmed = key
	}
	// Count-min with conservative update: raise only the rows at the minimum, which keeps the
	// overestimate of rarely seen keys small.
	w := uint64(t.cfg.Width)
	est := uint32(math.MaxUint32)
	for r, seed := range t.seeds {
		if v := t.sketch[r*t.cfg.Width+int(hash(key, seed)%w)]; v < est {
			est = v
		}
	}
	if est < math.MaxUint32 {
		est++
	}
	for r, seed := range t.seeds {
		if i := r*t.cfg.Width + int(hash(key, seed)%w); t.sketch[i] < est {
			t.sketch[i] = est
		}
	}
	t.keepLocked(key)
}

// Named reports whether key is one of the keys the tracker remembers (those Top lists): the
// client cache's hot_only asks it on a miss. A key longer than MaxKeyBytes never is.
func (t *Tracker) Named(key []byte) bool {
	if len(key) > MaxKeyBytes {
		return false
	}
	fp := hash(key, 0)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.buckets[fp%uint64(len(t.buckets))] {
		if e.count > 0 && e.fp == fp && e.key == string(key) {
			return true
		}
	}
	return false
}

// keepLocked is HeavyKeeper on one bucket: a resident key gains one; a newcomer takes an empty
// entry, or else decays the weakest resident with probability Decay^count and replaces it
// once that count reaches zero. Hot keys get large counts and become practically permanent.
func (t *Tracker) keepLocked(key []byte) {
	fp := hash(key, 0)
	b := &t.buckets[fp%uint64(len(t.buckets))]
	weakest := -1
	for i := range b {
		e := &b[i]
		if e.count > 0 && e.fp == fp && e.key == string(key) {
			e.count++
			return
		}
		if weakest < 0 || e.count < b[weakest].count {
			weakest = i
		}
	}
	e := &b[weakest]
	if e.count > 0 {
		if t.rng.Float64() >= math.Pow(t.cfg.Decay, float64(e.count)) {
			return
		}
		if e.count--; e.count > 0 {
			return
		}
	}
	*e = entry{fp: fp, key: string(key), count: 1}
}

// Hot is one hot key and its estimated number of commands (sampled count × SampleEvery).
type Hot struct {
	Key   string
	Count uint64
}

// Top returns up to n of the hottest keys, hottest first (n < 0: all remembered); ties by key.
func (t *Tracker) Top(n int) []Hot {
	t.mu.Lock()
	var out []Hot
	for _, b := range t.buckets {
		for _, e := range b {
			if e.count == 0 {
				continue
			}
			out = append(out, Hot{Key: e.key, Count: uint64(t.estimateLocked(e.key)) * uint64(t.cfg.SampleEvery)})
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Hot) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	if n >= 0 && n < len(out) {
		out = out[:n]
	}
	return out
}

func (t *Tracker) estimateLocked(key string) uint32 {
	w := uint64(t.cfg.Width)
	est := uint32(math.MaxUint32)
	for r, seed := range t.seeds {
		if v := t.sketch[r*t.cfg.Width+int(hash(key, seed)%w)]; v < est {
			est = v
		}
	}
	return est
}

// Bytes is what t holds: its sketch, seeds, top-k entries and the bytes of their keys. It is at
// most MaxBytes.
func (t *Tracker) Bytes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.sketch)*4 + len(t.seeds)*8 + len(t.buckets)*ways*int(unsafe.Sizeof(entry{}))
	for _, b := range t.buckets {
		for _, e := range b {
			n += len(e.key)
		}
	}
	return n
}

// Reset forgets everything counted; the enabled state stays.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.sketch)
	clear(t.buckets)
	t.total = 0
}
