package backend

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aster-proxy/aster/internal/race"
)

// Lending big replies (SendLending): a request whose reply is lendMin bytes or more points into
// the connection's read buffer rather than getting a copy, and its owner gives the buffer back
// (Lease.Return) once the reply is written to the client. The copy it saves was a quarter of
// the proxy's CPU time at 16 KiB values.
//
// Who owns what: a read buffer (rbuf) is held by its connection's reader while it reads into
// it, and by each lease on it. The reader overwrites what it has read only while it holds the
// buffer alone; otherwise it reads on past the lent replies, and into another buffer once this
// one is nearly full. The buffer goes back to its pool when the last holder lets go. A lease
// never given back (a session that panicked) only keeps its buffer out of the pool, until the
// garbage collector frees both (and the buffer's count in pinnedBytes with them).

// lendMin is the smallest reply that is lent rather than copied: below it the copy costs less
// than the lease.
const lendMin = 4 << 10

// maxPinned bounds the bytes of read buffers that connections have moved on from but that
// leases still hold, process-wide: past it replies are copied again. A lease holds a whole
// buffer (up to maxKeptBuf) for one reply of lendMin bytes or more, until the batch it belongs
// to is written: normally microseconds, but a batch that waits for a slow node holds it that
// long.
var maxPinned int64 = 64 << 20 // a variable for tests (SetMaxPinned)

var pinnedBytes atomic.Int64

// PinnedBytes is what leases hold, process-wide, of read buffers that their connections' readers
// have moved on from (bounded by maxPinned); 0 when no lent reply is held for long.
func PinnedBytes() int64 { return pinnedBytes.Load() }

// rbuf is a read buffer of a connection's replies (replies.buf).
type rbuf struct {
	b    []byte
	refs atomic.Int32 // the reader's hold (until it moves on), plus one per lease
	pin  *pinMark
}

// pinMark says whether the reader moved on from its buffer while leases held it: the
// buffer's size then counts in pinnedBytes until the last lease is back, or until the garbage
// collector frees the buffer with leases never given back (unpinLeaked, registered when the
// buffer was made: the mark is apart from the buffer so that the cleanup does not keep it).
type pinMark struct {
	pinned atomic.Bool
	n      int64
}

// rbufPools holds free read buffers by size: readBufLen, doubled up to maxKeptBuf. Bigger
// ones, grown for a huge reply, are left to the garbage collector.
var rbufPools [rbufClasses]sync.Pool

const rbufClasses = 5 // readBufLen << 0 .. 4 = maxKeptBuf

func rbufClass(size int) int {
	for i := range rbufClasses {
		if size == readBufLen<<i {
			return i
		}
	}
	return -1
}

// newRbuf is a buffer of size bytes, held by the caller (the reader).
func newRbuf(size int) *rbuf {
	var rb *rbuf
	if i := rbufClass(size); i >= 0 {
		rb, _ = rbufPools[i].Get().(*rbuf)
	}
	if rb == nil {
		rb = &rbuf{b: make([]byte, size), pin: &pinMark{n: int64(size)}}
		runtime.AddCleanup(rb, unpinLeaked, rb.pin)
	}
	rb.refs.Store(1)
	return rb
}

// lent reports whether a lease is out on rb (as the reader sees it: only it adds leases).
func (rb *rbuf) lent() bool { return rb.refs.Load() > 1 }

// canLend reports whether a reply may be lent: leases on buffers that readers have
// moved on from hold less than maxPinned.
func canLend() bool { return pinnedBytes.Load() < maxPinned }

// drop is the reader letting rb go, once it reads into another buffer.
func (rb *rbuf) drop() {
	if rb.lent() {
		rb.pin.pinned.Store(true)
		pinnedBytes.Add(rb.pin.n)
	}
	rb.unref()
}

// unpinLeaked runs once a buffer is collected: one still pinned had leases never given back
// (a bug, counted).
func unpinLeaked(m *pinMark) {
	if m.pinned.Load() {
		pinnedBytes.Add(-m.n)
		leakedBufs.Add(1)
	}
}

var leakedBufs atomic.Int64

// LeakedBuffers counts the read buffers collected with leases on them never given back: each is
// a lent reply that its holder dropped without Return (tests expect none).
func LeakedBuffers() int64 { return leakedBufs.Load() }

func (rb *rbuf) unref() {
	if rb.refs.Add(-1) != 0 {
		return
	}
	if rb.pin.pinned.Swap(false) {
		pinnedBytes.Add(-rb.pin.n)
	}
	if i := rbufClass(len(rb.b)); i >= 0 {
		if race.Enabled {
			poison(rb.b)
		}
		rbufPools[i].Put(rb)
	}
}

// Lease is a lent reply's hold on the read buffer it points into.
type Lease struct {
	rb    *rbuf
	reply []byte // what was lent: poisoned when given back, in race-detector builds
}

// Return gives the lease back, after the holder's last use of the reply; again, or on a zero
// Lease, it does nothing.
func (l *Lease) Return() {
	if l.rb == nil {
		return
	}
	if race.Enabled {
		poison(l.reply)
	}
	l.rb.unref()
	l.rb, l.reply = nil, nil
}

// Held reports whether the lease is still to be given back.
func (l *Lease) Held() bool { return l.rb != nil }

// poison overwrites bytes that nobody may read any more (in race-detector builds), so that a
// use after Return shows in tests, which run with it, as a garbled reply rather than someone
// else's.
func poison(b []byte) {
	for i := range b {
		b[i] = 'X'
	}
}

// loan is a request's lent Reply: the buffer it is in, and the request's own buffer, which
// Reply is again once the loan is over.
type loan struct {
	rb  *rbuf
	own []byte
}

// Lent reports whether Reply points into a connection's read buffer (SendLending).
func (r *Request) Lent() bool { return r.lent != nil && r.lent.rb != nil }

// TakeLease hands the lease of a lent Reply over to the caller, who must Return it after its
// last use of those bytes (it keeps its own copy of the Reply slice); the request's Reply is
// then empty. On a reply that is not lent it returns a zero Lease and leaves Reply alone.
func (r *Request) TakeLease() Lease {
	if !r.Lent() {
		return Lease{}
	}
	l := Lease{rb: r.lent.rb, reply: r.Reply}
	r.endLoan()
	return l
}

// Return gives back the lease of a lent Reply, which is then empty; on a reply that is not lent
// it does nothing. The request's owner calls it once done with the reply (or TakeLease).
func (r *Request) Return() {
	if !r.Lent() {
		return
	}
	l := Lease{rb: r.lent.rb, reply: r.Reply}
	r.endLoan()
	l.Return()
}

func (r *Request) endLoan() {
	r.Reply = r.lent.own[:0]
	r.lent.rb, r.lent.own = nil, nil
}

// lend makes Reply the frame itself, in rb, rather than a copy, giving back the lease it
// held, if any.
func (r *Request) lend(frame []byte, rb *rbuf) {
	r.Return()
	if r.lent == nil {
		r.lent = &loan{}
	}
	r.Unsent = false
	rb.refs.Add(1)
	r.lent.rb, r.lent.own = rb, r.Reply[:0]
	r.Reply, r.Failure = frame[:len(frame):len(frame)], FailNone
}
