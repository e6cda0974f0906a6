package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

const (
	// shrinkLen is the buffer size past which an empty Reader drops its buffer and goes back to
	// its initial size, so one big command does not pin memory for the life of a connection.
	shrinkLen = 256 << 10
	// minReaderSize is the smallest buffer NewReader accepts; smaller sizes are raised to it.
	minReaderSize = 16
	// keepArgsCap is the Command.Args capacity kept across commands; a bigger backing array
	// (left by a huge command) is dropped once a small command follows.
	keepArgsCap = 1024
	// maxEmptyReads is how many (0, nil) reads in a row Read tolerates before giving up,
	// as bufio does.
	maxEmptyReads = 100
)

// Command is one parsed client command. Args alias the Reader's buffer: valid only until the
// next TryRead/Read call on the same Reader. Raw is the whole frame exactly as received (RESP
// arrays) so it can be forwarded to a backend without re-encoding; for inline commands Raw is
// nil (the caller re-encodes with AppendCommand). Reused by the caller across calls: the Reader
// reuses cmd.Args's backing array, so steady state allocates nothing.
type Command struct {
	Args [][]byte
	Raw  []byte
}

// Reader reads client commands: RESP arrays of bulk strings, and inline commands such as
// "PING\r\n" or "set a b\n" with Redis's inline quoting rules ("..." with \x hex escapes, and
// '...'). It parses into one reused buffer that grows as data for one big command arrives (up
// to the limits) and shrinks back to its initial size once it grew past 256 KiB and is empty.
//
// A Reader is not safe for concurrent use; it belongs to one client session.
type Reader struct {
	rd   io.Reader
	buf  []byte
	r, w int // buf[r:w] is buffered and not yet returned
	size int // initial buffer size, restored on shrink

	// An array frame being scanned starts at buf[r]. The scan state is kept across calls so
	// a command arriving in many pieces is scanned once, not from its start on every read.
	nargs int // elements the array declared; 0 when no array frame is in progress
	got   int // elements fully scanned
	off   int // offset from r where scanning resumes

	perr error // sticky protocol error
	rerr error // sticky read error, reported once the buffered commands are consumed

	// pooled: the buffer comes from bufPool when a read needs one and goes back by Release
	// (NewPooledReader); hw is how much of it reads have written since it came.
	pooled bool
	hw     int

	// unauth applies the limits of a client that has not authenticated (MaxUnauthArgs,
	// MaxUnauthBulkLen) to the headers parsed from now on.
	unauth bool
}

// NewReader returns a Reader on rd whose buffer starts at size bytes (at least 16).
func NewReader(rd io.Reader, size int) *Reader {
	if size < minReaderSize {
		size = minReaderSize
	}
	return &Reader{rd: rd, buf: make([]byte, size), size: size}
}

// PooledSize is the buffer size of a pooled Reader (NewPooledReader).
const PooledSize = 4 << 10

// bufPool holds the buffers of pooled Readers that have nothing buffered: arrays, so that Put
// allocates nothing.
var bufPool = sync.Pool{New: func() any { return new([PooledSize]byte) }}

// NewPooledReader returns a Reader on rd that holds a buffer (PooledSize bytes, growing as
// NewReader's does) only while it has input: it takes one from a pool shared by all pooled
// Readers when a read needs it, and Release gives it back. Connections that are idle between
// commands, or that send one and leave, then hold no input memory, and the few buffers in use
// are recently used ones, warm in the cache.
func NewPooledReader(rd io.Reader) *Reader {
	return &Reader{rd: rd, size: PooledSize, pooled: true}
}

// Release gives a pooled Reader's buffer back to the pool, cleared, when nothing is buffered
// (the next read takes one again), and reports whether the Reader holds none now. A buffer
// that grew for big commands stays (Shrink drops one past 256 KiB): a client that sends them
// would otherwise grow one from PooledSize again for each, allocating and copying several
// times its command. The Args and Raw of every command returned earlier then point into memory
// another connection may be reading into: the caller must be done with them, and with anything
// else that points into the buffer (as for Shrink), which no request still in flight may do.
func (r *Reader) Release() bool {
	if !r.Releasable() {
		return r.buf == nil
	}
	if len(r.buf) == PooledSize { // always, but for a nil buffer
		clear(r.buf[:r.hw]) // no bytes of this client can surface in another's
		bufPool.Put((*[PooledSize]byte)(r.buf))
	}
	r.buf, r.r, r.w, r.off, r.got, r.hw = nil, 0, 0, 0, 0, 0
	return true
}

// Releasable reports whether Release would leave the Reader holding no buffer: a pooled one
// with nothing buffered and a buffer of at most the pooled size.
func (r *Reader) Releasable() bool {
	return r.pooled && r.r == r.w && r.nargs == 0 && len(r.buf) <= PooledSize
}

// initial returns a buffer of the Reader's initial size: a pooled one's from the pool.
func (r *Reader) initial() []byte {
	r.hw = 0
	if r.pooled {
		return bufPool.Get().(*[PooledSize]byte)[:]
	}
	return make([]byte, r.size)
}

// Reset discards all buffered data and state and makes r read from rd, for reuse.
func (r *Reader) Reset(rd io.Reader) {
	if len(r.buf) > shrinkLen {
		r.buf = r.initial()
	}
	// The client is the same: it is no more authenticated than it was.
	*r = Reader{rd: rd, buf: r.buf, size: r.size, unauth: r.unauth, pooled: r.pooled, hw: r.hw}
}

// SetUnauthenticated says whether the client has yet to authenticate: while it has, the
// commands parsed next are held to Redis's limits for unauthenticated clients (at most
// MaxUnauthArgs elements and bulks of at most MaxUnauthBulkLen bytes; more is a protocol
// error at the header, before anything is buffered for it). The session calls it whenever its
// authentication state changes (AUTH, HELLO AUTH, RESET), between commands, so that a command
// is checked against the state the commands before it left, as Redis checks it.
func (r *Reader) SetUnauthenticated(on bool) { r.unauth = on }

// Shrink drops a buffer that grew past 256 KiB (for one big command; see Big) once nothing
// is buffered, so that an idle connection does not pin the memory of its biggest command. The
// Args and Raw of commands returned earlier become invalid; the caller must not hold them
// (nor anything else pointing into the buffer) if the memory is to come back. It reports
// whether the buffer was dropped.
func (r *Reader) Shrink() bool {
	if r.r != r.w || !r.Big() {
		return false
	}
	r.r, r.w = 0, 0
	if r.buf = nil; !r.pooled {
		r.buf = r.initial()
	}
	return true
}

// Big reports whether the buffer grew past 256 KiB (for a client that has not authenticated,
// past its initial size), i.e. Shrink has something to drop once the buffered bytes are
// consumed. Idle connections that have not authenticated then hold no more than their
// initial buffer each, however many of them there are.
func (r *Reader) Big() bool {
	return len(r.buf) > r.size && (len(r.buf) > shrinkLen || r.unauth)
}

// Buffered returns the number of unparsed bytes buffered.
func (r *Reader) Buffered() int { return r.w - r.r }

// Size returns the buffer's size: what the connection's input holds in memory (CLIENT LIST's
// qbuf plus qbuf-free); 0 while a pooled Reader holds none.
func (r *Reader) Size() int { return len(r.buf) }

// ErrBufferFull is what Fill returns, without reading, when the limit of unparsed bytes is
// buffered already.
var ErrBufferFull = errors.New("resp: buffer full")

// ErrWouldBlock is what a non-blocking underlying reader returns, with 0 bytes, when nothing
// has arrived yet. Fill passes it on; unlike other read errors it is not kept, so a later Fill
// reads again.
var ErrWouldBlock = errors.New("resp: no input yet")

// Fill reads once more from the underlying reader into the buffer, without parsing: for a
// caller that waits on something else meanwhile (a blocking command) and must notice the peer
// going away, while keeping whatever the peer sends for later Reads. It returns ErrBufferFull
// when limit unparsed bytes are buffered. A read error is kept and reported by Read once the
// buffered commands are consumed, except a timeout: a read deadline can stop a Fill without
// ending the input. Fill may move buffered bytes: Args of commands returned earlier become
// invalid.
func (r *Reader) Fill(limit int) error {
	if r.rerr == nil && r.w-r.r >= limit {
		return ErrBufferFull
	}
	err := r.fill()
	if r.rerr == io.EOF {
		return io.EOF // whether a command is cut short is for Read to say
	}
	if r.rerr != nil && errors.Is(r.rerr, os.ErrDeadlineExceeded) {
		r.rerr = nil
	}
	return err
}

// Read returns the next complete command, reading from the underlying reader as needed
// (blocks). At a clean end of input it returns io.EOF; if the input ends inside a command,
// io.ErrUnexpectedEOF. Malformed input yields a *ProtocolError, and every later call does too.
func (r *Reader) Read(cmd *Command) error {
	for {
		ok, err := r.TryRead(cmd)
		if ok || err != nil {
			return err
		}
		if err := r.fill(); err != nil {
			return err
		}
	}
}

// TryRead parses the next complete command already buffered, without any I/O.
// ok=false, err=nil means no complete command is buffered. It never moves buffered bytes, so
// the Args of a command returned earlier stay intact until the next Read.
func (r *Reader) TryRead(cmd *Command) (ok bool, err error) {
	if r.perr != nil {
		return false, r.perr
	}
	for r.r < r.w {
		if r.nargs == 0 {
			if r.buf[r.r] != '*' {
				ok, err = r.readInline(cmd)
				if !ok || err != nil {
					return false, r.fail(err)
				}
				if len(cmd.Args) == 0 {
					continue // an empty line, skipped as Redis does
				}
				return true, nil
			}
			ok, err = r.readArrayHeader()
			if !ok || err != nil {
				return false, r.fail(err)
			}
			if r.nargs == 0 { // *0 and *-1 are ignored, as Redis does
				r.r += r.off
				r.off = 0
				continue
			}
		}
		ok, err = r.scanArray(cmd)
		if !ok || err != nil {
			return false, r.fail(err)
		}
		return true, nil
	}
	return false, nil
}

func (r *Reader) fail(err error) error {
	if err != nil {
		r.perr = err
	}
	return err
}

// lineEnd returns the index of the '\r' that ends the header line at the start of b, once the
// byte after it is buffered too; -1 if the line is not complete yet. A line longer than
// MaxInlineLen is tooBig whether or not its end arrived, so the outcome does not depend on how
// the input was split into reads.
func lineEnd(b []byte, tooBig error) (int, error) {
	lim := b
	if len(lim) > MaxInlineLen+1 {
		lim = lim[:MaxInlineLen+1]
	}
	i := bytes.IndexByte(lim, '\r')
	if i < 0 {
		if len(b) > MaxInlineLen {
			return -1, tooBig
		}
		return -1, nil
	}
	if i+1 >= len(b) {
		return -1, nil
	}
	return i, nil
}

// readArrayHeader parses "*<n>\r\n" at buf[r]; it sets nargs (0 for an ignored empty array)
// and off to the first element.
func (r *Reader) readArrayHeader() (bool, error) {
	b := r.buf[r.r:r.w]
	v, hdr, ok := fastLen(b)
	n := int64(v)
	if !ok {
		i, err := lineEnd(b, errTooBigMbulkCount)
		if i < 0 {
			return false, err
		}
		n, ok = ParseInt64Arg(b[1:i])
		if !ok || b[i+1] != '\n' || n > 1<<31-1 {
			return false, errInvalidMultibulkLen
		}
		hdr = i + 2
	}
	// Redis's order: a count past INT_MAX is invalid, then one past 10 is refused before
	// authentication, and past that our own MaxArgs.
	if n > MaxUnauthArgs && r.unauth && n <= 1<<31-1 {
		return false, errUnauthMultibulkLen
	}
	if n > MaxArgs {
		return false, errInvalidMultibulkLen
	}
	r.off = hdr
	r.got = 0
	r.nargs = 0
	if n > 0 {
		r.nargs = int(n)
	}
	return true, nil
}

// scanArray validates the elements of the array frame at buf[r] from where the last call
// stopped, and reports whether the whole frame is buffered. A frame scanned in one call (the
// common case) fills cmd.Args as it goes; one that needed several calls is filled by
// buildArray once complete.
func (r *Reader) scanArray(cmd *Command) (bool, error) {
	args := cmd.Args[:0]
	if cap(args) > keepArgsCap && r.nargs <= keepArgsCap {
		args = nil
	}
	// A frame scanned in one call fills Args as it goes, unless it has more elements than
	// Args holds and than keepArgsCap: then buildArray makes Args of the exact size once the
	// whole frame is here (growing by appends would allocate a multiple of it, and a count a
	// client merely declares must not be allocated before its elements arrive).
	fresh := r.got == 0 && (r.nargs <= cap(args) || r.nargs <= keepArgsCap)
	for r.got < r.nargs {
		b := r.buf[r.r+r.off : r.w]
		n, hdr, ok := fastLen(b)
		if !ok || n > MaxBulkLen || b[0] != '$' {
			var err error
			if n, hdr, err = slowLen(b); hdr == 0 {
				cmd.Args = args[:0]
				return false, err
			}
		}
		if n > MaxUnauthBulkLen && r.unauth {
			// Refused at the header, as Redis does: nothing of the bulk is waited for.
			return false, errUnauthBulkLen
		}
		end := hdr + n + 2
		if r.off+end > MaxCommandLen {
			return false, errCommandTooLarge
		}
		if len(b) < end {
			cmd.Args = args[:0]
			return false, nil
		}
		// Redis skips these two bytes unchecked; we insist on CRLF so that we and any backend
		// cannot disagree about where the frame we forward ends.
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return false, errInvalidBulkLen
		}
		if fresh {
			args = append(args, b[hdr:hdr+n:hdr+n])
		}
		r.off += end
		r.got++
	}
	if fresh {
		cmd.Args = args
	} else {
		r.buildArray(cmd, args)
	}
	cmd.Raw = r.buf[r.r : r.r+r.off : r.r+r.off]
	r.r += r.off
	r.nargs, r.got, r.off = 0, 0, 0
	return true, nil
}

// slowLen parses a "$<n>\r\n" element header the careful way, with Redis's checks in Redis's
// order; hdr is 0 when the header is incomplete or wrong (then err says which).
func slowLen(b []byte) (n, hdr int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	i, err := lineEnd(b, errTooBigBulkCount)
	if i < 0 {
		return 0, 0, err
	}
	if b[0] != '$' {
		return 0, 0, errExpectedDollar[b[0]]
	}
	v, ok := ParseInt64Arg(b[1:i])
	if !ok || v < 0 || v > MaxBulkLen || b[i+1] != '\n' {
		return 0, 0, errInvalidBulkLen
	}
	return int(v), i + 2, nil
}

// fastLen parses the common header line "<p><digits>\r\n" (at most 10 digits, no sign, no
// leading zero) at the start of b without a search; ok=false sends the caller to the careful
// path, which also reports errors.
func fastLen(b []byte) (n, hdr int, ok bool) {
	if len(b) < 4 {
		return 0, 0, false
	}
	c := b[1]
	if c == '0' {
		return 0, 4, b[2] == '\r' && b[3] == '\n'
	}
	if c < '1' || c > '9' {
		return 0, 0, false
	}
	n = int(c - '0')
	i := 2
	for ; i < len(b) && i < 11; i++ {
		c = b[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
		return n, i + 2, true
	}
	return 0, 0, false
}

// buildArray fills args (cmd's reused Args) from the fully scanned, hence valid, array
// frame at buf[r].
func (r *Reader) buildArray(cmd *Command, args [][]byte) {
	frame := r.buf[r.r : r.r+r.off : r.r+r.off]
	if cap(args) < r.nargs {
		args = make([][]byte, 0, r.nargs) // the elements are here: at least 4 bytes each
	}
	_, p, _ := fastLen(frame)
	for range r.nargs {
		n, hdr, _ := fastLen(frame[p:])
		p += hdr
		args = append(args, frame[p:p+n:p+n])
		p += n + 2
	}
	cmd.Args = args
}

// readInline parses one inline command line at buf[r]. An empty line yields no Args.
func (r *Reader) readInline(cmd *Command) (bool, error) {
	b := r.buf[r.r:r.w]
	lim := b
	if len(lim) > MaxInlineLen+1 {
		lim = lim[:MaxInlineLen+1]
	}
	i := bytes.IndexByte(lim, '\n')
	if i < 0 {
		if len(b) > MaxInlineLen {
			return false, errTooBigInline
		}
		return false, nil
	}
	line := b[:i:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	args := cmd.Args[:0]
	if cap(args) > keepArgsCap {
		args = nil
	}
	args, err := splitInline(line, args)
	if err != nil {
		return false, err
	}
	cmd.Args = args
	cmd.Raw = nil
	r.r += i + 1
	return true, nil
}

// fill reads more input into the buffer, making room first: it compacts (the only place that
// moves buffered bytes), grows by doubling when a command does not fit, and shrinks an empty
// buffer that grew past shrinkLen.
func (r *Reader) fill() error {
	if r.rerr != nil {
		return r.readErr()
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
		if r.Big() {
			r.buf = nil
		}
	}
	if r.buf == nil {
		r.buf = r.initial()
	}
	if r.w == len(r.buf) {
		if r.r > 0 {
			r.w = copy(r.buf, r.buf[r.r:r.w])
			r.r = 0
		} else {
			// Everything buffered belongs to one incomplete command whose declared lengths
			// were already checked, so growing is bounded by the limits; doubling only when
			// full means memory follows the bytes that actually arrived.
			if len(r.buf) >= MaxCommandLen {
				return r.fail(errCommandTooLarge)
			}
			n := min(r.growTo(), MaxCommandLen)
			nb := make([]byte, n)
			r.w = copy(nb, r.buf[:r.w])
			r.buf = nb
		}
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.rerr = fmt.Errorf("resp: read command: invalid count %d from reader", n)
			return r.rerr
		}
		r.w += n
		r.hw = max(r.hw, r.w)
		if err == ErrWouldBlock && n == 0 {
			return err
		}
		if err != nil {
			r.rerr = err
			if n > 0 {
				return nil // parse what arrived first
			}
			return r.readErr()
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("resp: read command: %w", io.ErrNoProgress)
}

// growTo is the size a full buffer grows to: double, or, inside a big array frame, the
// frame's size as its elements so far predict it, with an eighth to spare (at least 1.25 times
// the buffer, so that growing stays linear), so that a big command of many small arguments
// ends in a buffer of about its size instead of up to twice it. Never more than doubling: memory still follows
// the bytes that arrived, whatever count the client declared.
func (r *Reader) growTo() int {
	n := 2 * len(r.buf)
	if r.nargs > 0 && r.got > 0 && r.r == 0 {
		left := r.nargs - r.got
		est := r.off + r.off/r.got*left
		est += est/8 + 64       // later arguments may be longer (key:9 ... key:99999)
		if est > 0 && est < n { // est > 0: no overflow
			n = max(est, len(r.buf)+len(r.buf)/4)
		}
	}
	return n
}

func (r *Reader) readErr() error {
	if r.rerr == io.EOF {
		if r.w > r.r {
			return io.ErrUnexpectedEOF
		}
		return io.EOF
	}
	return fmt.Errorf("resp: read command: %w", r.rerr)
}
