package latency

import (
	"bytes"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// classic are the proxy's classic buckets (proxy.LatencyBuckets, which imports this package).
var classic = prometheus.ExponentialBucketsRange(50e-6, 5, 16)

// reference is a client_golang histogram with the options the proxy used before this package,
// except that its zero threshold is ours and its bucket count unlimited, so that its counts
// are the ones ours must equal.
func reference() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ref", Help: "h", Buckets: classic,
		NativeHistogramBucketFactor:  1.1,
		NativeHistogramZeroThreshold: ZeroThreshold,
	})
}

func newHist(t testing.TB) *Histogram {
	t.Helper()
	return NewVec(Opts{Name: "t", Help: "h", Buckets: classic}, nil).WithLabelValues()
}

func write(t testing.TB, h prometheus.Metric) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}

// decode turns spans and deltas back into counts by native index.
func decode(t testing.TB, spans []*dto.BucketSpan, deltas []int64) map[int32]uint64 {
	t.Helper()
	got := map[int32]uint64{}
	var i int32
	var count int64
	d := 0
	for n, s := range spans {
		if n > 0 || s.GetOffset() != 0 {
			i += s.GetOffset()
		}
		for j := uint32(0); j < s.GetLength(); j++ {
			if d >= len(deltas) {
				t.Fatalf("spans %v longer than deltas %v", spans, deltas)
			}
			count += deltas[d]
			d++
			if count < 0 {
				t.Fatalf("negative bucket count at %d: spans %v deltas %v", i, spans, deltas)
			}
			if count > 0 {
				got[i] = uint64(count)
			}
			i++
		}
	}
	if d != len(deltas) {
		t.Fatalf("%d deltas, spans cover %d", len(deltas), d)
	}
	return got
}

// nativeIndex and classicIndex are the rules written plainly: the first bucket whose bound
// the duration does not pass.
func nativeIndex(ns int64) int32 {
	if ns <= nativeBounds[0] {
		return zeroIndex // the zero bucket
	}
	i := sort.Search(len(nativeBounds), func(j int) bool { return nativeBounds[j] >= ns })
	if i == len(nativeBounds) {
		i-- // the overflow goes to the last bucket
	}
	return int32(zeroIndex + i)
}

func classicIndex(ns int64) int {
	return sort.SearchFloat64s(classic, time.Duration(ns).Seconds())
}

// TestNativeBounds checks the bound table against 2^(i/8), exactly where 2^(i/8)*1e9 is
// whole.
func TestNativeBounds(t *testing.T) {
	if got := float64(nativeBounds[0]) / 1e9; got > ZeroThreshold || float64(nativeBounds[0]+1)/1e9 <= ZeroThreshold {
		t.Errorf("zero bucket bound %d ns, threshold %v s", nativeBounds[0], ZeroThreshold)
	}
	for i := zeroIndex; i <= maxIndex; i++ {
		b := nativeBounds[i-zeroIndex]
		exact := math.Pow(2, float64(i)/8) * 1e9
		if float64(b) > exact*(1+1e-15) || float64(b+1) <= exact*(1-1e-15) {
			t.Errorf("bound %d = %d ns, 2^(%d/8) s = %v ns", i, b, i, exact)
		}
		if i%8 == 0 && i >= -72 && float64(b) != exact {
			t.Errorf("bound %d = %d ns, want exactly %v", i, b, exact)
		}
	}
}

// TestBucketAtBounds observes every bound, one nanosecond below and one above, of both the
// native and the classic buckets: a duration equal to a bound belongs to that bucket.
func TestBucketAtBounds(t *testing.T) {
	var at []int64
	for _, b := range nativeBounds {
		at = append(at, b-1, b, b+1)
	}
	for _, b := range classic {
		n := classicBound(b)
		if time.Duration(n).Seconds() > b || time.Duration(n+1).Seconds() <= b {
			t.Fatalf("classic bound %v: %d ns", b, n)
		}
		at = append(at, n-1, n, n+1)
	}
	at = append(at, -1, 0, 1, math.MaxInt64, int64(5*time.Hour))
	for _, ns := range at {
		checkOne(t, ns)
	}
	// The rule at the bounds themselves, spelled out.
	if got := nativeIndex(1e9); got != 0 {
		t.Errorf("1s in native bucket %d, want 0 (le 2^0)", got)
	}
	if got := nativeIndex(1e9 + 1); got != 1 {
		t.Errorf("1s+1ns in native bucket %d, want 1", got)
	}
	if got := classicIndex(50e3); got != 0 {
		t.Errorf("50µs in classic bucket %d, want 0 (le 50e-6)", got)
	}
}

// checkOne observes ns alone and checks where it went, against nativeIndex and classicIndex.
func checkOne(t *testing.T, ns int64) {
	t.Helper()
	h := newHist(t)
	h.ObserveDuration(time.Duration(ns))
	m := write(t, h)
	wantNative := nativeIndex(max(ns, 0))
	native := decode(t, m.GetPositiveSpan(), m.GetPositiveDelta())
	if wantNative == zeroIndex {
		if m.GetZeroCount() != 1 || len(native) != 0 {
			t.Errorf("%d ns: zero count %d, native %v; want the zero bucket", ns, m.GetZeroCount(), native)
		}
	} else if m.GetZeroCount() != 0 || len(native) != 1 || native[wantNative] != 1 {
		t.Errorf("%d ns: native %v (zero %d), want bucket %d", ns, native, m.GetZeroCount(), wantNative)
	}
	k := classicIndex(max(ns, 0))
	for j, b := range m.GetBucket() {
		want := uint64(0)
		if j >= k {
			want = 1
		}
		if b.GetCumulativeCount() != want || b.GetUpperBound() != classic[j] {
			t.Errorf("%d ns: classic bucket le=%v holds %d, want %d (bucket %d)", ns, b.GetUpperBound(), b.GetCumulativeCount(), want, k)
		}
	}
	if m.GetSampleCount() != 1 {
		t.Errorf("%d ns: count %d", ns, m.GetSampleCount())
	}
}

// TestZeroAndOverflow: at most the zero threshold, in the zero bucket; past the last native
// bound, in the last bucket; past the last classic bound, only in the count.
func TestZeroAndOverflow(t *testing.T) {
	h := newHist(t)
	for _, d := range []time.Duration{-time.Second, 0, 1, 953} {
		h.ObserveDuration(d)
	}
	h.Observe(math.NaN())
	h.ObserveDuration(954)
	h.ObserveDuration(4096 * time.Second)
	h.ObserveDuration(4096*time.Second + 1)
	h.ObserveDuration(100 * time.Hour)
	h.Observe(1e300)
	m := write(t, h)
	if m.GetZeroCount() != 5 || m.GetZeroThreshold() != ZeroThreshold || m.GetSchema() != 3 {
		t.Errorf("zero count %d threshold %v schema %d, want 5, 2^-20, 3", m.GetZeroCount(), m.GetZeroThreshold(), m.GetSchema())
	}
	native := decode(t, m.GetPositiveSpan(), m.GetPositiveDelta())
	if len(native) != 2 || native[-159] != 1 || native[96] != 4 {
		t.Errorf("native %v, want -159:1 96:4", native)
	}
	if m.GetSampleCount() != 10 || m.GetBucket()[15].GetCumulativeCount() != 6 {
		t.Errorf("count %d, le=5 holds %d; want 10, 6", m.GetSampleCount(), m.GetBucket()[15].GetCumulativeCount())
	}
}

// TestSameAsClientGolang observes random durations (about 1 µs to 1 h, on a log scale) into
// a Histogram and into client_golang's, and compares the two scrapes: classic buckets,
// count, native buckets and sum.
func TestSameAsClientGolang(t *testing.T) {
	h, ref := newHist(t), reference()
	rng := rand.New(rand.NewPCG(1, 2))
	var sum time.Duration
	for range 200000 {
		d := time.Duration(math.Exp(rng.Float64() * math.Log(3.6e12)))
		if rng.IntN(4) == 0 {
			d = time.Duration(rng.Int64N(int64(6 * time.Second)))
		}
		h.ObserveDuration(d)
		ref.Observe(d.Seconds())
		sum += d
	}
	for _, d := range []time.Duration{0, 1, 953, 954, 50 * time.Microsecond, time.Second, 2 * time.Second} {
		h.ObserveDuration(d)
		ref.Observe(d.Seconds())
		sum += d
	}
	got, want := write(t, h), write(t, ref)
	if got.GetSampleCount() != want.GetSampleCount() || got.GetZeroCount() != want.GetZeroCount() {
		t.Errorf("count %d zero %d, client_golang %d %d", got.GetSampleCount(), got.GetZeroCount(), want.GetSampleCount(), want.GetZeroCount())
	}
	for k := range classic {
		if g, w := got.GetBucket()[k], want.GetBucket()[k]; g.GetCumulativeCount() != w.GetCumulativeCount() || g.GetUpperBound() != w.GetUpperBound() {
			t.Errorf("classic bucket %d: le=%v %d, client_golang le=%v %d", k, g.GetUpperBound(), g.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
		}
	}
	gn, wn := decode(t, got.GetPositiveSpan(), got.GetPositiveDelta()), decode(t, want.GetPositiveSpan(), want.GetPositiveDelta())
	if len(gn) != len(wn) {
		t.Errorf("%d native buckets, client_golang %d", len(gn), len(wn))
	}
	for i, w := range wn {
		if gn[i] != w {
			t.Errorf("native bucket %d: %d, client_golang %d", i, gn[i], w)
		}
	}
	if got.GetSampleSum() != sum.Seconds() || math.Abs(got.GetSampleSum()-want.GetSampleSum()) > 1e-9*want.GetSampleSum() {
		t.Errorf("sum %v, want %v (client_golang %v)", got.GetSampleSum(), sum.Seconds(), want.GetSampleSum())
	}
}

// TestObserveSeconds: Observe takes seconds, rounded down to the nanosecond; a classic bound
// given as seconds lands in its own bucket.
func TestObserveSeconds(t *testing.T) {
	for k, b := range classic {
		h := newHist(t)
		h.Observe(b)
		if c := write(t, h).GetBucket()[k].GetCumulativeCount(); c != 1 {
			t.Errorf("Observe(%v) not in its bucket le=%v", b, b)
		}
		if k > 0 {
			if c := write(t, h).GetBucket()[k-1].GetCumulativeCount(); c != 0 {
				t.Errorf("Observe(%v) in the bucket below", b)
			}
		}
	}
	h := newHist(t)
	h.Observe(0.25)
	h.Observe(1)
	if m := write(t, h); m.GetSampleSum() != 1.25 || decode(t, m.GetPositiveSpan(), m.GetPositiveDelta())[0] != 1 {
		t.Errorf("sum %v, native %v", m.GetSampleSum(), decode(t, m.GetPositiveSpan(), m.GetPositiveDelta()))
	}
}

// TestSpans checks the span encoding: gaps of up to two empty buckets are zero deltas, longer
// ones a new span.
func TestSpans(t *testing.T) {
	h := newHist(t)
	at := func(i int) time.Duration { return time.Duration(nativeBounds[i-zeroIndex]) }
	for _, i := range []int{0, 0, 0, 2, 3, 7, 8, 8} {
		h.ObserveDuration(at(i))
	}
	m := write(t, h)
	var spans [][2]int64
	for _, s := range m.GetPositiveSpan() {
		spans = append(spans, [2]int64{int64(s.GetOffset()), int64(s.GetLength())})
	}
	wantSpans := [][2]int64{{0, 4}, {3, 2}}
	wantDeltas := []int64{3, -3, 1, 0, 0, 1}
	if !equal(spans, wantSpans) || !equal(m.GetPositiveDelta(), wantDeltas) {
		t.Errorf("spans %v deltas %v, want %v %v", spans, m.GetPositiveDelta(), wantSpans, wantDeltas)
	}
	if m := write(t, newHist(t)); len(m.GetPositiveSpan()) != 0 || m.GetZeroThreshold() == 0 {
		t.Errorf("empty histogram: spans %v, zero threshold %v (a native histogram needs one)", m.GetPositiveSpan(), m.GetZeroThreshold())
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRegistry gathers a Vec through a real registry: the text exposition is the classic
// histogram client_golang writes for the same observations, and the protobuf one carries the
// native histogram.
func TestRegistry(t *testing.T) {
	reg, refReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	v := NewVec(Opts{Namespace: "aster", Name: "request_duration_seconds", Help: "Latency.", Buckets: classic}, []string{"cluster"})
	ref := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "aster", Name: "request_duration_seconds", Help: "Latency.",
		Buckets: classic, NativeHistogramBucketFactor: 1.1, NativeHistogramZeroThreshold: ZeroThreshold}, []string{"cluster"})
	reg.MustRegister(v)
	refReg.MustRegister(ref)
	var obs []time.Duration
	for i := 1; i < 3000; i += 7 {
		obs = append(obs, time.Duration(i)*time.Second/512)
	}
	obs = append(obs, 0, 1<<20, 1<<16, 1<<17, 1<<18, 1<<19)
	for _, d := range obs {
		for _, c := range []string{"a", "b"} {
			v.WithLabelValues(c).ObserveDuration(d)
			ref.WithLabelValues(c).Observe(d.Seconds())
		}
	}
	// client_golang sums in float64, we in whole nanoseconds: the sum lines are ours.
	var sum time.Duration
	for _, d := range obs {
		sum += d
	}
	want := regexp.MustCompile(`(_sum\{cluster="."\}) .*`).ReplaceAllString(exposition(t, refReg),
		"$1 "+strconv.FormatFloat(sum.Seconds(), 'g', -1, 64))
	if !strings.Contains(want, `aster_request_duration_seconds_bucket{cluster="a",le="+Inf"} `) {
		t.Fatalf("reference exposition:\n%s", want)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "aster_request_duration_seconds"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 2 || mfs[0].GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("gathered %v", mfs)
	}
	for _, m := range mfs[0].GetMetric() {
		h := m.GetHistogram()
		wantNative := map[int32]uint64{}
		var zero uint64
		for _, d := range obs {
			if i := nativeIndex(int64(d)); i == zeroIndex {
				zero++
			} else {
				wantNative[i]++
			}
		}
		got := decode(t, h.GetPositiveSpan(), h.GetPositiveDelta())
		if !mapsEqual(got, wantNative) || h.GetZeroCount() != zero || h.GetSchema() != 3 || h.GetCreatedTimestamp() == nil {
			t.Errorf("%v: native %v zero %d schema %d, want %v %d 3", m.GetLabel(), got, h.GetZeroCount(), h.GetSchema(), wantNative, zero)
		}
		var total uint64
		for _, c := range got {
			total += c
		}
		if total+h.GetZeroCount() != h.GetSampleCount() {
			t.Errorf("native buckets hold %d, count %d", total+h.GetZeroCount(), h.GetSampleCount())
		}
	}
}

func exposition(t *testing.T, g prometheus.Gatherer) string {
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func mapsEqual(a, b map[int32]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDeletePartialMatch deletes a cluster's series and then a node's.
func TestDeletePartialMatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	v := NewVec(Opts{Name: "t_seconds", Help: "h", Buckets: classic}, []string{"cluster", "node"})
	reg.MustRegister(v)
	for _, lv := range [][2]string{{"a", "x"}, {"a", "y"}, {"b", "x"}, {"b", "y"}} {
		v.WithLabelValues(lv[0], lv[1]).ObserveDuration(time.Millisecond)
	}
	if n := v.DeletePartialMatch(prometheus.Labels{"cluster": "a"}); n != 2 {
		t.Errorf("deleted %d of cluster a, want 2", n)
	}
	if n := v.DeletePartialMatch(prometheus.Labels{"cluster": "b", "node": "y"}); n != 1 {
		t.Errorf("deleted %d of b/y, want 1", n)
	}
	if n := testutil.CollectAndCount(v); n != 1 {
		t.Errorf("%d series left, want 1 (b/x)", n)
	}
	// A series made again after its deletion starts from zero.
	if c := write(t, v.WithLabelValues("a", "x")).GetSampleCount(); c != 0 {
		t.Errorf("a/x made again holds %d", c)
	}
}

// TestConcurrent observes from several goroutines while scraping: every scrape's counts
// agree (count = native total = +Inf), and nothing is lost.
func TestConcurrent(t *testing.T) {
	h := newHist(t)
	const workers, each = 4, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.ObserveDuration(time.Duration((w*each + i) * 997))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	check := func() *dto.Histogram {
		m := write(t, h)
		var native uint64
		for _, c := range decode(t, m.GetPositiveSpan(), m.GetPositiveDelta()) {
			native += c
		}
		if native+m.GetZeroCount() != m.GetSampleCount() {
			t.Fatalf("native buckets %d + zero %d, count %d", native, m.GetZeroCount(), m.GetSampleCount())
		}
		if last := m.GetBucket()[len(classic)-1].GetCumulativeCount(); last > m.GetSampleCount() {
			t.Fatalf("le=5 holds %d, count %d", last, m.GetSampleCount())
		}
		return m
	}
	for scraping := true; scraping; {
		select {
		case <-done:
			scraping = false
		default:
			check()
		}
	}
	m := check()
	var sum time.Duration
	for i := range workers * each {
		sum += time.Duration(i * 997)
	}
	if m.GetSampleCount() != workers*each || m.GetSampleSum() != sum.Seconds() {
		t.Errorf("count %d sum %v, want %d %v", m.GetSampleCount(), m.GetSampleSum(), workers*each, sum.Seconds())
	}
}

// TestSumWraps: a sum past 2^64 ns still scrapes right, once seen going backwards.
func TestSumWraps(t *testing.T) {
	h := newHist(t)
	h.ObserveDurationN(math.MaxInt64, 2) // 2^64 - 2 ns
	write(t, h)
	h.ObserveDuration(3)
	if got, want := write(t, h).GetSampleSum(), (math.MaxInt64*2.0+3)/1e9; math.Abs(got-want) > 1e-6*want {
		t.Errorf("sum %v, want %v", got, want)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	h := newHist(t)
	if n := testing.AllocsPerRun(1000, func() {
		h.ObserveDuration(123456)
		h.ObserveDurationN(time.Millisecond, 3)
		h.Observe(0.5)
	}); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
}

// durations are the benchmark's observations: a spread like a loopback proxy's latencies.
func durations() []time.Duration {
	rng := rand.New(rand.NewPCG(3, 4))
	d := make([]time.Duration, 1024)
	for i := range d {
		d[i] = time.Duration(20e3 + rng.ExpFloat64()*60e3)
	}
	return d
}

// oldHist is client_golang's histogram as the proxy made it before this package.
func oldHist() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ref", Help: "h", Buckets: classic,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	})
}

// BenchmarkObserve compares an observation with client_golang's histogram as the proxy made
// it before (classic buckets, native factor 1.1, 160 buckets, hourly reset).
func BenchmarkObserve(b *testing.B) {
	ds := durations()
	b.Run("latency", func(b *testing.B) {
		h := newHist(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.ObserveDuration(ds[i&1023])
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		h := oldHist()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.Observe(ds[i&1023].Seconds())
		}
	})
}

// TestClassicBound: the nanosecond bound of a classic bound b is the largest d with
// d.Seconds() <= b, also where b*1e9 rounds the wrong way in float64 (1e-6*1e9 < 1000).
func TestClassicBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	bs := []float64{1e-6, 3e-6, 7e-6, 0.1, 0.3, 1, 2.5, 4095.9}
	for range 10000 {
		bs = append(bs, math.Exp(rng.Float64()*math.Log(4e12))/1e9)
		// A bound of whole nanoseconds, and the float just below it.
		n := rng.Int64N(4e12)
		bs = append(bs, time.Duration(n).Seconds(), math.Nextafter(time.Duration(n).Seconds(), 0))
	}
	for _, b := range bs {
		n := classicBound(b)
		if time.Duration(n).Seconds() > b || time.Duration(n+1).Seconds() <= b {
			t.Fatalf("classicBound(%v) = %d ns", b, n)
		}
	}
}

// BenchmarkObserveParallel observes into one series from every P, as the sessions of a
// cluster do.
func BenchmarkObserveParallel(b *testing.B) {
	ds := durations()
	b.Run("latency", func(b *testing.B) {
		h := newHist(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				h.ObserveDuration(ds[i&1023])
			}
		})
	})
	b.Run("client_golang", func(b *testing.B) {
		h := oldHist()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				h.Observe(ds[i&1023].Seconds())
			}
		})
	})
}
