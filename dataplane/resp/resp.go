// Package resp reads and writes the Redis serialization protocol (RESP) on Aster's hot path.
//
// The Reader parses client commands (RESP arrays of bulk strings and inline commands) into
// slices of one reused buffer, so the common GET/SET path allocates nothing. Every length a
// client sends is checked against a limit before any memory is committed to it, so a client
// cannot make the proxy allocate more than the bytes it has actually sent (and never more than
// MaxCommandLen for one command).
//
// The reply side (ScanReply, ArrayElems, ParseInt, IsError) works on raw reply frames as read
// from a backend: it only measures and splits them, so replies are forwarded without re-encoding.
// The Append* writers build frames into a caller-owned buffer.
//
// Concurrency: a Reader belongs to one client session, its owner goroutine's; the reply
// functions and writers keep no state, and are safe for concurrent use on distinct buffers.
package resp

const (
	// MaxBulkLen is the largest bulk string a client may send, as Redis proto-max-bulk-len.
	MaxBulkLen = 512 << 20
	// MaxArgs is the largest number of elements in a client command array. Redis up to 6.x
	// refused more than 1024*1024 too; keeping that cap bounds the Command.Args slice a single
	// command can make us grow to 24 MiB of slice headers, far above any real command
	// (a pipelined MSET should be split, not sent as one million-argument command).
	MaxArgs = 1 << 20
	// MaxInlineLen is the longest inline command line, and the longest "*<n>" or "$<n>" header
	// line, as Redis PROTO_INLINE_MAX_SIZE.
	MaxInlineLen = 64 << 10
	// MaxCommandLen bounds the bytes of one command frame, as Redis client-query-buffer-limit
	// (default 1 GiB): without it, MaxArgs arguments of MaxBulkLen each would be unbounded.
	MaxCommandLen = 1 << 30
	// MaxUnauthArgs and MaxUnauthBulkLen are what a client that has not authenticated yet
	// may send, as in Redis 7 (processMultibulkBuffer): more is a protocol error at the header,
	// before any memory is committed to it. Inline commands are bounded by MaxInlineLen
	// anyway, and Redis does not limit them further before authentication.
	MaxUnauthArgs    = 10
	MaxUnauthBulkLen = 16 << 10
)

// ProtocolError is returned for malformed client input. Its Error text is the exact Redis
// wording where Redis has one, so a session answers "-ERR " + Error() and closes, as Redis does.
type ProtocolError struct{ Msg string }

// Error returns "Protocol error: " followed by what was wrong.
func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// The protocol errors are preallocated values: a hostile client must not cost us allocations.
var (
	errInvalidMultibulkLen = &ProtocolError{Msg: "invalid multibulk length"}
	errInvalidBulkLen      = &ProtocolError{Msg: "invalid bulk length"}
	errTooBigInline        = &ProtocolError{Msg: "too big inline request"}
	errUnbalancedQuotes    = &ProtocolError{Msg: "unbalanced quotes in request"}
	errTooBigMbulkCount    = &ProtocolError{Msg: "too big mbulk count string"}
	errTooBigBulkCount     = &ProtocolError{Msg: "too big bulk count string"}
	errUnauthMultibulkLen  = &ProtocolError{Msg: "unauthenticated multibulk length"}
	errUnauthBulkLen       = &ProtocolError{Msg: "unauthenticated bulk length"}
	// errCommandTooLarge has no Redis reply text (Redis just disconnects a client over
	// client-query-buffer-limit); the wording follows Redis's log line.
	errCommandTooLarge = &ProtocolError{Msg: "query buffer limit exceeded"}
	// errExpectedDollar holds one preallocated error per byte value, since the message
	// names the offending byte as Redis does ("expected '$', got 'x'").
	errExpectedDollar = func() (t [256]*ProtocolError) {
		for i := range t {
			t[i] = &ProtocolError{Msg: "expected '$', got '" + string([]byte{byte(i)}) + "'"}
		}
		return t
	}()
)

// ParseInt64Arg parses b as a strict decimal int64 the way Redis string2ll does: an optional
// '-', no '+', no spaces, no leading zeros (only "0" itself), at most 20 bytes, no overflow.
func ParseInt64Arg(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i++
		if i == len(b) {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v *= 10
		d := uint64(c - '0')
		if v > 1<<64-1-d {
			return 0, false
		}
		v += d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true // -(1<<63) wraps to itself, which is MinInt64
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
