package hotkey

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// zipfStream returns n keys drawn from a Zipf distribution over universe keys, and the true
// count of each key.
func zipfStream(n, universe int, seed uint64) ([]string, map[string]int) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	z := rand.NewZipf(r, 1.2, 1, uint64(universe-1))
	keys := make([]string, n)
	counts := map[string]int{}
	for i := range keys {
		k := "key:" + strconv.FormatUint(z.Uint64(), 10)
		keys[i] = k
		counts[k]++
	}
	return keys, counts
}

func trueTop(counts map[string]int, n int) []string {
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if counts[ks[i]] != counts[ks[j]] {
			return counts[ks[i]] > counts[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks[:n]
}

func TestTopFindsZipfHeavyHitters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		universe int
	}{
		{"defaults", Config{}, 100_000},
		{"small table", Config{Capacity: 64, Width: 1024, Depth: 3}, 50_000},
		{"no decay", Config{Capacity: 128, Decay: 1}, 20_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, counts := zipfStream(100_000, tc.universe, 7)
			tr := New(tc.cfg)
			for _, k := range keys {
				tr.Observe([]byte(k))
			}
			want := trueTop(counts, 10)
			got := tr.Top(10)
			if len(got) != 10 {
				t.Fatalf("Top(10) returned %d keys", len(got))
			}
			gotSet := map[string]bool{}
			for _, h := range got {
				gotSet[h.Key] = true
			}
			for _, k := range want[:5] {
				if !gotSet[k] {
					t.Errorf("true top-5 key %s (%d) missing from %v", k, counts[k], got)
				}
			}
			if got[0].Key != want[0] {
				t.Errorf("hottest = %s, want %s", got[0].Key, want[0])
			}
			for i, h := range got {
				if i > 0 && h.Count > got[i-1].Count {
					t.Errorf("not sorted: %v", got)
				}
				// Count-min never underestimates (SampleEvery is applied to the count).
				if real := counts[h.Key] * tr.Config().SampleEvery; int(h.Count) < real {
					t.Errorf("%s: estimate %d below true %d", h.Key, h.Count, real)
				}
			}
			// The estimate of the hottest key is close: within 2% of the stream.
			if over := int(got[0].Count)/tr.Config().SampleEvery - counts[want[0]]; over > len(keys)/50 {
				t.Errorf("hottest key overestimated by %d", over)
			}
		})
	}
}

func TestMiceDoNotEvictElephants(t *testing.T) {
	tr := New(Config{Capacity: 8, Width: 256, Depth: 4})
	for i := 0; i < 1000; i++ {
		tr.Observe([]byte("elephant"))
	}
	// 100k distinct keys seen once each: with decay 0.925^1000 an elephant is never displaced.
	for i := 0; i < 100_000; i++ {
		tr.Observe([]byte("mouse:" + strconv.Itoa(i)))
	}
	top := tr.Top(1)
	if len(top) != 1 || top[0].Key != "elephant" {
		t.Fatalf("Top(1) = %v, want elephant", top)
	}
}

func TestNewcomerReplacesColdKey(t *testing.T) {
	// One bucket of ways entries, all taken by keys seen once: a key seen often must get in,
	// because each contest decays a count of 1 with probability Decay.
	tr := New(Config{Capacity: ways, Decay: 0.9})
	for i := 0; i < ways; i++ {
		tr.Observe([]byte("cold" + strconv.Itoa(i)))
	}
	for i := 0; i < 200; i++ {
		tr.Observe([]byte("hot"))
	}
	if top := tr.Top(1); len(top) != 1 || top[0].Key != "hot" {
		t.Fatalf("Top(1) = %v, want hot", top)
	}
}

func TestResetAndEnable(t *testing.T) {
	tr := New(Config{SampleEvery: 4})
	if tr.Enabled() {
		t.Fatal("a new tracker is enabled")
	}
	tr.SetEnabled(true)
	tr.Observe([]byte("a"))
	tr.Observe([]byte("a"))
	tr.Observe([]byte("b"))
	got := tr.Top(-1)
	if len(got) != 2 || got[0] != (Hot{"a", 8}) || got[1] != (Hot{"b", 4}) {
		t.Fatalf("Top = %v", got)
	}
	tr.Reset()
	if got := tr.Top(-1); len(got) != 0 {
		t.Fatalf("after Reset: %v", got)
	}
	if !tr.Enabled() {
		t.Fatal("Reset disabled the tracker")
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{Decay: 1.5}.WithDefaults()
	want := Config{DefaultSampleEvery, DefaultWidth, DefaultDepth, DefaultCapacity, DefaultDecay}
	if got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
}

func TestConcurrentObserve(t *testing.T) {
	tr := New(Config{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				tr.Observe([]byte("k" + strconv.Itoa(i%10)))
				if i%1000 == 0 {
					tr.Top(3)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(tr.Top(-1)); n != 10 {
		t.Fatalf("%d keys remembered, want 10", n)
	}
}

func TestObserveResidentKeyAllocatesNothing(t *testing.T) {
	tr := New(Config{})
	key := []byte("resident")
	tr.Observe(key)
	if n := testing.AllocsPerRun(1000, func() { tr.Observe(key) }); n != 0 {
		t.Fatalf("Observe of a resident key: %v allocs", n)
	}
}

// TestNewStaysWithinLimits: whatever sizes a caller passes (a remote control plane, a future
// caller that forgets the range check), a tracker holds at most MaxBytes, sized at the
// documented maxima.
func TestNewStaysWithinLimits(t *testing.T) {
	huge := 1<<31 - 1
	for _, cfg := range []Config{
		{Width: huge, Depth: huge, Capacity: huge, SampleEvery: huge},
		{Width: huge},
		{Depth: huge},
		{Capacity: huge},
		{Width: -huge, Depth: -5, Capacity: -1, SampleEvery: -7, Decay: math.NaN()},
		{Decay: math.Inf(1)},
	} {
		tr := New(cfg)
		got := tr.Config()
		if got.Width > limits.MaxHotkeySketchWidth || got.Depth > limits.MaxHotkeySketchDepth ||
			got.Capacity > limits.MaxHotkeyCapacity || got.SampleEvery > limits.MaxHotkeySampleEvery ||
			got.Width < 1 || got.Depth < 1 || got.Capacity < 1 || got.SampleEvery < 1 || !(got.Decay > 0 && got.Decay <= 1) {
			t.Errorf("New(%+v).Config() = %+v: outside the documented ranges", cfg, got)
		}
		if b := tr.Bytes(); b > MaxBytes {
			t.Errorf("New(%+v) holds %d bytes, more than MaxBytes %d", cfg, b, MaxBytes)
		}
	}
	// The largest tracker, full of the longest keys, is within MaxBytes and near it.
	tr := New(Config{Width: huge, Depth: huge, Capacity: huge})
	long := []byte(strings.Repeat("x", 2*MaxKeyBytes))
	for i := 0; i < 4*limits.MaxHotkeyCapacity; i++ {
		binary.LittleEndian.PutUint64(long, uint64(i))
		tr.Observe(long)
	}
	if b := tr.Bytes(); b > MaxBytes || b < MaxBytes/2 {
		t.Errorf("tracker at the maxima holds %d bytes; MaxBytes %d is not its bound", b, MaxBytes)
	}
	if MaxBytes > 16<<20 {
		t.Errorf("MaxBytes = %d: a cluster's tracker should stay within a few MiB", MaxBytes)
	}
}

// TestLongKeysAreTrimmed: the top-k table never holds more than MaxKeyBytes of a key (plus a
// note of how many bytes were cut), so capacity × key size stays bounded however long the keys
// clients send; a long hot key is still found, under its trimmed name.
func TestLongKeysAreTrimmed(t *testing.T) {
	tr := New(Config{Capacity: 64})
	long := strings.Repeat("k", 1<<20)
	for i := 0; i < 2000; i++ {
		tr.Observe([]byte(strconv.Itoa(i) + long)) // distinct keys of 1 MiB
		tr.Observe([]byte(long))                   // one hot one
	}
	if b := tr.Bytes(); b > 64*(int(unsafe.Sizeof(entry{}))+maxShownKey)+len(tr.sketch)*4+len(tr.seeds)*8 {
		t.Fatalf("tracker holds %d bytes after long keys", b)
	}
	top := tr.Top(1)
	want := strings.Repeat("k", MaxKeyBytes) + "... (" + strconv.Itoa(1<<20-MaxKeyBytes) + " more bytes)"
	if len(top) != 1 || top[0].Key != want {
		t.Fatalf("Top(1) = %.300v, want the trimmed hot key", top)
	}
	if top[0].Count < 2000 {
		t.Errorf("trimmed hot key counted %d, want ≥ 2000", top[0].Count)
	}
}

// TestNamed: a key is Named once the tracker remembers it (Top lists it), not before, and
// not after Reset; a key too long to be kept whole never is.
func TestNamed(t *testing.T) {
	tr := New(Config{Capacity: 8})
	if tr.Named([]byte("k")) {
		t.Fatal("a key never observed is named")
	}
	tr.Observe([]byte("k"))
	if !tr.Named([]byte("k")) {
		t.Fatalf("an observed key in an empty table is not named; Top = %v", tr.Top(-1))
	}
	if tr.Named([]byte("other")) {
		t.Fatal("a key never observed is named")
	}
	long := make([]byte, MaxKeyBytes+1)
	tr.Observe(long)
	if tr.Named(long) {
		t.Fatal("a key longer than MaxKeyBytes is named")
	}
	tr.Reset()
	if tr.Named([]byte("k")) {
		t.Fatal("a key is named after Reset")
	}
}
