// Package latency is the data plane's latency histogram: one Observe per request at the cost
// of two atomic adds, exported to Prometheus as both a classic histogram (fixed le buckets,
// for text scrapes) and a native histogram (schema 3, for protobuf scrapes). It replaces
// client_golang's Histogram on the request path, whose native buckets live in a sync.Map and
// cost several times more per observation. Its one job is counting durations; which requests
// are timed, and the metric names, are the proxy's.
//
// Buckets. Native bucket i holds the durations in (2^((i-1)/8), 2^(i/8)] seconds, as Prometheus
// reads a native histogram of schema 3; the buckets are fixed, i from -159 to 96 (about 1 µs to
// 68 min), so there is nothing to grow and nothing to reset. Durations of at most 2^-20 s
// (953 ns) are counted in the zero bucket, whose threshold that is; durations above 2^12 s
// (4096 s) in the last bucket, i = 96. The classic buckets are given to NewVec; a duration
// equal to a bound belongs to that bound's bucket (Prometheus's le), decided to the
// nanosecond: d is in the bucket of bound b when d.Seconds() <= b, as client_golang decides
// for Observe(d.Seconds()). Internally each observation lands in one slot of the union of
// both sets of bounds, so that the classic and native counts of a scrape are sums of the same
// slot counts, and the sample count is their total: they always agree.
//
// Concurrency: Observe, ObserveDuration and ObserveDurationN are lock-free and allocate
// nothing; any number of goroutines may call them on one Histogram, concurrently with scrapes.
// A scrape reads the slots one by one, so an observation running meanwhile may be in its
// slot but not yet in the sum, or the other way round (the sum is off by at most the
// durations being observed at that instant); counts are never torn between classic and
// native. The sum is kept in nanoseconds, modulo 2^64: a scrape that sees it go backwards adds
// one wrap (2^64 ns, 584 years of latency), so it stays right as long as the histogram is
// scraped at least once per 584 years of summed latency.
package latency

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Native buckets: schema 3, indices minIndex..maxIndex, zero threshold 2^(zeroIndex/8) s.
const (
	Schema    = 3
	zeroIndex = -160
	minIndex  = zeroIndex + 1
	maxIndex  = 96
	// ZeroThreshold is the upper bound of the zero bucket, in seconds (2^-20, 953.67 ns).
	ZeroThreshold = 1.0 / (1 << 20)
)

// nativeBounds[i-zeroIndex] is the largest duration, in nanoseconds, of native bucket i:
// floor(2^(i/8) * 1e9), exactly (durations are whole nanoseconds, so ns <= that floor is
// ns/1e9 <= 2^(i/8)).
var nativeBounds = func() []int64 {
	b := make([]int64, maxIndex-zeroIndex+1)
	for i := zeroIndex; i <= maxIndex; i++ {
		b[i-zeroIndex] = nativeBound(i)
	}
	return b
}()

// nativeBound returns floor(2^(i/8) * 1e9): a float guess corrected by the exact test
// n^8 <= 2^i * 10^72 < (n+1)^8 in integers.
func nativeBound(i int) int64 {
	n := int64(math.Pow(2, float64(i)/8) * 1e9)
	pow8 := func(n int64) *big.Int {
		x := big.NewInt(n)
		x.Mul(x, x)
		x.Mul(x, x)
		return x.Mul(x, x)
	}
	target := new(big.Int).Exp(big.NewInt(10), big.NewInt(72), nil)
	left := func(n int64) *big.Int { // n^8 * 2^-i for i < 0, n^8 otherwise
		x := pow8(n)
		if i < 0 {
			x.Lsh(x, uint(-i))
		}
		return x
	}
	right := target
	if i > 0 {
		right = new(big.Int).Lsh(target, uint(i))
	}
	for left(n).Cmp(right) > 0 {
		n--
	}
	for left(n+1).Cmp(right) <= 0 {
		n++
	}
	return n
}

// The slot of a duration is found by its bit length and the next cellBits bits below its top
// bit: a table of cells gives the first slot the cell reaches, and a short scan (rarely a step)
// the exact one. Durations past zeroNs have at least minLen bits; up to maxNs at most maxLen.
const cellBits = 5

var (
	zeroNs = nativeBounds[0]
	maxNs  = nativeBounds[len(nativeBounds)-1]
	minLen = bits.Len64(uint64(zeroNs + 1))
	maxLen = bits.Len64(uint64(maxNs))
)

// layout is the slot table of one set of classic bounds, shared by the histograms of a Vec.
type layout struct {
	// bounds[s] is the largest duration (ns) of slot s; slot 0 is the zero bucket, the last
	// slot's bound is MaxInt64 (the overflow goes to the last native bucket).
	bounds []int64
	native []int32 // native bucket index of each slot (slot 0: unused)
	// classicEnd[k] is the last slot of classic bucket k, whose upper bound is classic[k].
	classicEnd []int
	classic    []float64 // the classic upper bounds as given, in seconds
	cells      []uint16
}

func newLayout(classic []float64) (*layout, error) {
	l := &layout{classic: append([]float64(nil), classic...)}
	var classicNs []int64
	for k, b := range classic {
		if k > 0 && b <= classic[k-1] {
			return nil, fmt.Errorf("latency: classic bounds not increasing: %v", classic)
		}
		n := classicBound(b)
		if n <= zeroNs || n > maxNs {
			return nil, fmt.Errorf("latency: classic bound %v outside (%v, %v] seconds", b, ZeroThreshold, float64(maxNs)/1e9)
		}
		classicNs = append(classicNs, n)
	}
	all := append(append([]int64(nil), nativeBounds...), classicNs...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, b := range all {
		if n := len(l.bounds); n == 0 || l.bounds[n-1] != b {
			l.bounds = append(l.bounds, b)
		}
	}
	l.bounds[len(l.bounds)-1] = math.MaxInt64
	l.native = make([]int32, len(l.bounds))
	for s, b := range l.bounds {
		// The native bucket of a slot is the first whose bound is at least the slot's.
		l.native[s] = int32(zeroIndex + sort.Search(len(nativeBounds), func(j int) bool { return nativeBounds[j] >= b }))
		if b == math.MaxInt64 {
			l.native[s] = maxIndex
		}
	}
	for _, c := range classicNs {
		l.classicEnd = append(l.classicEnd, sort.Search(len(l.bounds), func(s int) bool { return l.bounds[s] >= c }))
	}
	l.cells = make([]uint16, (maxLen-minLen+1)<<cellBits)
	for c := range l.cells {
		e := minLen + c>>cellBits
		low := int64(1)<<(e-1) | int64(c&(1<<cellBits-1))<<(e-1-cellBits)
		l.cells[c] = uint16(sort.Search(len(l.bounds), func(s int) bool { return l.bounds[s] >= low }))
	}
	return l, nil
}

// classicBound returns the largest duration d with d.Seconds() <= b.
func classicBound(b float64) int64 {
	n := int64(b * 1e9)
	for time.Duration(n).Seconds() > b {
		n--
	}
	for time.Duration(n+1).Seconds() <= b {
		n++
	}
	return n
}

// slot returns the slot of a duration of ns nanoseconds.
func (l *layout) slot(ns int64) int {
	if ns <= zeroNs {
		return 0
	}
	if ns > maxNs {
		return len(l.bounds) - 1
	}
	e := bits.Len64(uint64(ns))
	s := int(l.cells[(e-minLen)<<cellBits|int(uint64(ns)>>(e-1-cellBits))&(1<<cellBits-1)])
	for ns > l.bounds[s] {
		s++
	}
	return s
}

// Histogram is one series. Its zero value is not usable: get one from Vec.WithLabelValues.
type Histogram struct {
	l      *layout
	counts []atomic.Uint64 // by slot

	desc       *prometheus.Desc
	labelPairs []*dto.LabelPair
	created    *timestamppb.Timestamp

	mu      sync.Mutex // orders scrapes' reads of sum, for the wrap count
	lastSum uint64
	wraps   uint64

	// sum is written by every observation from every core: on a cache line of its own, so
	// that the fields above, read by every observation, are not invalidated with it.
	_   [64]byte
	sum atomic.Uint64 // nanoseconds, modulo 2^64
	_   [56]byte
}

// ObserveDuration counts one duration; a negative one counts as 0.
func (h *Histogram) ObserveDuration(d time.Duration) {
	ns := int64(d)
	if ns < 0 {
		ns = 0
	}
	h.counts[h.l.slot(ns)].Add(1)
	h.sum.Add(uint64(ns))
}

// ObserveDurationN counts n durations of d each (a batch of commands answered together).
func (h *Histogram) ObserveDurationN(d time.Duration, n int) {
	ns := int64(d)
	if ns < 0 {
		ns = 0
	}
	if n <= 0 {
		return
	}
	h.counts[h.l.slot(ns)].Add(uint64(n))
	h.sum.Add(uint64(ns) * uint64(n))
}

// Observe counts a duration given in seconds, as prometheus.Observer does; it is rounded down
// to the nanosecond (so a value within a nanosecond above a bound may count below it). NaN and
// negative values count as 0, values past 292 years as 292 years.
func (h *Histogram) Observe(seconds float64) {
	var ns int64
	switch {
	case !(seconds > 0):
	case seconds >= math.MaxInt64/1e9:
		ns = math.MaxInt64
	default:
		ns = int64(seconds * 1e9)
	}
	h.ObserveDuration(time.Duration(ns))
}

// Desc implements prometheus.Metric.
func (h *Histogram) Desc() *prometheus.Desc { return h.desc }

// Write implements prometheus.Metric: the classic buckets, count and sum, and the native
// histogram of the same counts.
func (h *Histogram) Write(out *dto.Metric) error {
	l := h.l
	counts := make([]uint64, len(h.counts))
	var count uint64
	for s := range h.counts {
		counts[s] = h.counts[s].Load()
		count += counts[s]
	}
	h.mu.Lock()
	sum := h.sum.Load()
	if sum < h.lastSum {
		h.wraps++
	}
	h.lastSum = sum
	sumSeconds := float64(h.wraps)*(1<<64)/1e9 + float64(sum)/1e9
	h.mu.Unlock()

	his := &dto.Histogram{
		SampleCount:      &count,
		SampleSum:        &sumSeconds,
		CreatedTimestamp: h.created,
		Bucket:           make([]*dto.Bucket, len(l.classic)),
		Schema:           new(int32(Schema)),
		ZeroThreshold:    new(float64(ZeroThreshold)),
		ZeroCount:        new(counts[0]),
	}
	var cum uint64
	s := 0
	for k, end := range l.classicEnd {
		for ; s <= end; s++ {
			cum += counts[s]
		}
		his.Bucket[k] = &dto.Bucket{CumulativeCount: new(cum), UpperBound: new(l.classic[k])}
	}
	his.PositiveSpan, his.PositiveDelta = nativeBuckets(l, counts)
	out.Histogram = his
	out.Label = h.labelPairs
	return nil
}

// nativeBuckets encodes the non-empty native buckets as Prometheus spans and deltas. A gap of
// one or two empty buckets is cheaper written as zero deltas than as a new span, as
// client_golang does.
func nativeBuckets(l *layout, counts []uint64) ([]*dto.BucketSpan, []int64) {
	var (
		spans  []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   int32 // the index after the last bucket written
	)
	for s := 1; s < len(counts); {
		i := l.native[s]
		var c uint64
		for ; s < len(counts) && l.native[s] == i; s++ {
			c += counts[s]
		}
		if c == 0 {
			continue
		}
		if gap := i - next; len(spans) == 0 || gap > 2 {
			spans = append(spans, &dto.BucketSpan{Offset: new(gap), Length: new(uint32(0))})
		} else {
			for ; gap > 0; gap-- {
				*spans[len(spans)-1].Length++
				deltas = append(deltas, -prev)
				prev = 0
			}
		}
		*spans[len(spans)-1].Length++
		deltas = append(deltas, int64(c)-prev)
		prev = int64(c)
		next = i + 1
	}
	return spans, deltas
}

// Vec is a prometheus.Collector of Histograms that differ by label values.
type Vec struct {
	*prometheus.MetricVec
}

// Opts name a Vec's series; Buckets are its classic upper bounds in seconds, increasing, each
// in (ZeroThreshold, 4096].
type Opts struct {
	Namespace, Subsystem, Name, Help string
	Buckets                          []float64
}

// NewVec makes a Vec; it panics on bad buckets, as prometheus.NewHistogramVec does.
func NewVec(opts Opts, labelNames []string) *Vec {
	l, err := newLayout(opts.Buckets)
	if err != nil {
		panic(err)
	}
	desc := prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name),
		opts.Help, labelNames, nil)
	return &Vec{prometheus.NewMetricVec(desc, func(lvs ...string) prometheus.Metric {
		return &Histogram{
			l:          l,
			counts:     make([]atomic.Uint64, len(l.bounds)),
			desc:       desc,
			labelPairs: prometheus.MakeLabelPairs(desc, lvs),
			created:    timestamppb.Now(),
		}
	})}
}

// WithLabelValues returns the Histogram of these label values, making it on first use. It
// panics on a wrong number of values, as client_golang's vectors do. Resolve it once per
// series, not per observation: it hashes the values and takes a lock.
func (v *Vec) WithLabelValues(lvs ...string) *Histogram {
	m, err := v.GetMetricWithLabelValues(lvs...)
	if err != nil {
		panic(err)
	}
	return m.(*Histogram)
}
