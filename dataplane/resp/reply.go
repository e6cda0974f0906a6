package resp

import (
	"bytes"
	"errors"
)

// MaxReplyDepth is how deeply aggregate replies may nest before ScanReply refuses them; Redis
// itself never nests deeper than a handful of levels, and the bound keeps the scan's state on
// the stack.
const MaxReplyDepth = 1000

// MaxReplyLineLen is the default bound of a status, error, double or big number line in a
// reply (ReplyScanner.MaxLine). It is as large as the largest bulk string a reply may carry
// (MaxBulkLen), not as short as a client's header line: Redis sends status and error lines of
// any length that a Lua script returns (redis.status_reply(string.rep('z', 300000)) comes back
// as one 300,001-byte line from redis-server 7.0), and a shorter cap would let any client
// that may run EVAL break a shared node connection, and every request on it, on purpose.
// A line costs us no more than a bulk string a client may GET.
const MaxReplyLineLen = MaxBulkLen

// maxAggregateLen bounds the element count an aggregate reply header may declare.
const maxAggregateLen = 1 << 30

// ErrMalformedReply is matched (errors.Is) by every error about a malformed reply.
var ErrMalformedReply = errors.New("resp: malformed reply")

// replyError is a preallocated, specific malformed-reply error, so rejecting a bad reply does
// not allocate either.
type replyError struct{ msg string }

func (e *replyError) Error() string        { return "resp: malformed reply: " + e.msg }
func (e *replyError) Is(target error) bool { return target == ErrMalformedReply }

var (
	errReplyType = &replyError{"unknown type byte"}
	errReplyLine = &replyError{"line not terminated by CRLF"}
	// errReplyLineTooLong: a status or error line longer than ReplyScanner.MaxLine.
	errReplyLineTooLong = &replyError{"reply line too long"}
	errReplyInt         = &replyError{"invalid integer"}
	errReplyBulkLen     = &replyError{"invalid bulk length"}
	errReplyBulkEnd     = &replyError{"bulk payload not terminated by CRLF"}
	errReplyCount       = &replyError{"invalid aggregate length"}
	errReplyStreamed    = &replyError{"streamed (RESP3 '?') length not supported"}
	errReplyTooDeep     = &replyError{"aggregates nested too deeply"}
	errReplyNull        = &replyError{"invalid null"}
	errReplyBool        = &replyError{"invalid boolean"}
	errReplyBigNum      = &replyError{"invalid big number"}
	errReplyVerbatim    = &replyError{"invalid verbatim string"}
	errReplyNotArray    = &replyError{"not an array"}
	errReplyNullArray   = &replyError{"null array has no elements"}
	errReplyShort       = &replyError{"incomplete reply"}
	errReplyTrailing    = &replyError{"bytes after the reply"}
	errReplyNotInt      = &replyError{"not an integer reply"}
)

// ScanReply returns the byte length of the first complete reply in b (RESP2 and RESP3 types
// + - : $ * _ , # ( = % ~ > | !), 0 if b holds only part of a reply, or an error if b is
// malformed. Streamed RESP3 aggregates and strings are an error. It does not allocate, jumps
// over bulk payloads by their length, and scans nested aggregates iteratively (at most
// MaxReplyDepth levels). A RESP3 attribute ('|') is scanned together with the reply it
// annotates.
func ScanReply(b []byte) (int, error) {
	// Most replies nest a few levels: a small stack array keeps the common scan cheap (a
	// MaxReplyDepth array would be cleared on every call); deeper ones continue on a
	// full-size stack, the only case that allocates.
	var small [smallDepth]uint32
	n, pos, depth, err := scanFrom(b, 0, 0, small[:])
	if err == errNeedDeeperStack {
		deep := make([]uint32, MaxReplyDepth)
		copy(deep, small[:])
		n, _, _, err = scanFrom(b, pos, depth, deep)
	}
	return n, err
}

// smallDepth is the nesting the stack-allocated scan stacks hold.
const smallDepth = 32

// errNeedDeeperStack tells scanFrom's caller to continue with a MaxReplyDepth stack.
var errNeedDeeperStack = &replyError{"internal: stack too small"}

// scanFrom scans the reply frame in b from offset pos, an element boundary, with depth
// aggregates open whose pending element counts are pending[:depth]. It returns the frame's
// length once complete (n > 0); otherwise n is 0 and pos, depth (and pending) say where the
// scan stopped: at the start of the incomplete element (err nil), of the malformed one, or
// of the aggregate that did not fit in pending (errNeedDeeperStack, pending full).
func scanFrom(b []byte, pos, depth int, pending []uint32) (n, stopPos, stopDepth int, err error) {
	for {
		n, elems, err := scanElem(b[pos:])
		if n <= 0 {
			return 0, pos, depth, err
		}
		if elems > 0 {
			if depth == len(pending) {
				if depth < MaxReplyDepth {
					return 0, pos, depth, errNeedDeeperStack
				}
				return 0, pos, depth, errReplyTooDeep
			}
			pending[depth] = uint32(elems)
			depth++
			pos += n
			continue
		}
		pos += n
		// One element completed: close every aggregate it completes.
		for depth > 0 {
			pending[depth-1]--
			if pending[depth-1] > 0 {
				break
			}
			depth--
		}
		if depth == 0 {
			return pos, pos, 0, nil
		}
	}
}

// scanElem measures the single frame at the start of b, not its children: it returns the
// frame's length (0 if incomplete) and, for an aggregate, how many child frames follow.
func scanElem(b []byte) (n, elems int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	// Fast paths for the frames that dominate real traffic; anything unusual (including
	// every error) takes the careful path below.
	switch b[0] {
	case '$':
		if l, hdr, ok := fastLen(b); ok && l <= MaxBulkLen {
			end := hdr + l + 2
			if len(b) < end {
				return 0, 0, nil
			}
			if b[end-2] != '\r' || b[end-1] != '\n' {
				return 0, 0, errReplyBulkEnd
			}
			return end, 0, nil
		}
		if len(b) >= 5 && b[1] == '-' && b[2] == '1' && b[3] == '\r' && b[4] == '\n' {
			return 5, 0, nil // a nil bulk (a GET or MGET of a missing key)
		}
	case '*':
		if c, hdr, ok := fastLen(b); ok && c <= maxAggregateLen {
			return hdr, c, nil
		}
	}
	i := bytes.IndexByte(b, '\r')
	if i < 0 || i+1 >= len(b) {
		if i < 0 && b[0] != '+' && b[0] != '-' && b[0] != ',' && b[0] != '(' && len(b) > 32 {
			// A length, integer or boolean line cannot be this long.
			return 0, 0, errReplyLine
		}
		return 0, 0, nil
	}
	if i == 0 {
		return 0, 0, errReplyType // "\r" where a type byte belongs
	}
	if b[i+1] != '\n' {
		return 0, 0, errReplyLine
	}
	line := b[1:i]
	switch b[0] {
	case '+', '-', ',':
		return i + 2, 0, nil
	case ':':
		if _, ok := ParseInt64Arg(line); !ok {
			return 0, 0, errReplyInt
		}
		return i + 2, 0, nil
	case '_':
		if len(line) != 0 {
			return 0, 0, errReplyNull
		}
		return i + 2, 0, nil
	case '#':
		if len(line) != 1 || (line[0] != 't' && line[0] != 'f') {
			return 0, 0, errReplyBool
		}
		return i + 2, 0, nil
	case '(':
		d := line
		if len(d) > 0 && d[0] == '-' {
			d = d[1:]
		}
		if len(d) == 0 {
			return 0, 0, errReplyBigNum
		}
		for _, c := range d {
			if c < '0' || c > '9' {
				return 0, 0, errReplyBigNum
			}
		}
		return i + 2, 0, nil
	case '$', '=', '!':
		if len(line) == 1 && line[0] == '?' {
			return 0, 0, errReplyStreamed
		}
		l, ok := ParseInt64Arg(line)
		if ok && l == -1 && b[0] == '$' {
			return i + 2, 0, nil // RESP2 null bulk string
		}
		if !ok || l < 0 || l > MaxBulkLen {
			return 0, 0, errReplyBulkLen
		}
		end := i + 2 + int(l) + 2
		if len(b) < end {
			return 0, 0, nil
		}
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return 0, 0, errReplyBulkEnd
		}
		if b[0] == '=' && (l < 4 || b[i+2+3] != ':') {
			return 0, 0, errReplyVerbatim
		}
		return end, 0, nil
	case '*', '~', '>', '%', '|':
		if len(line) == 1 && line[0] == '?' {
			return 0, 0, errReplyStreamed
		}
		c, ok := ParseInt64Arg(line)
		if ok && c == -1 && b[0] == '*' {
			return i + 2, 0, nil // RESP2 null array
		}
		if !ok || c < 0 || c > maxAggregateLen {
			return 0, 0, errReplyCount
		}
		switch b[0] {
		case '%':
			c *= 2 // key and value frames
		case '|':
			c = 2*c + 1 // the attribute's pairs, then the reply it annotates
		}
		return i + 2, int(c), nil
	}
	return 0, 0, errReplyType
}

// ArrayElems appends to dst the raw frames of the elements of array reply b (a complete
// reply, '*' type), returning them; error if b is not an array, is a null array, or is not
// exactly one complete reply. The frames alias b. (Used to merge MGET replies.)
func ArrayElems(b []byte, dst [][]byte) ([][]byte, error) {
	if len(b) == 0 || b[0] != '*' {
		return dst, errReplyNotArray
	}
	n, elems, err := scanElem(b)
	if err != nil {
		return dst, err
	}
	if n == 0 {
		return dst, errReplyShort
	}
	if elems == 0 && n == 5 && b[1] == '-' {
		return dst, errReplyNullArray
	}
	pos := n
	for range elems {
		m, err := ScanReply(b[pos:])
		if err != nil {
			return dst, err
		}
		if m == 0 {
			return dst, errReplyShort
		}
		dst = append(dst, b[pos:pos+m:pos+m])
		pos += m
	}
	if pos != len(b) {
		return dst, errReplyTrailing
	}
	return dst, nil
}

// ArrayHeader measures the header of array reply b: its element count and the header's
// length; an error if b does not start with a complete, valid array header or is the null
// array. The elements, which follow, are not looked at. (Used to merge MGET replies element by
// element, without a slice per key.)
func ArrayHeader(b []byte) (elems, hdr int, err error) {
	if len(b) == 0 || b[0] != '*' {
		return 0, 0, errReplyNotArray
	}
	n, elems, err := scanElem(b)
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, errReplyShort
	}
	if elems == 0 && n == 5 && b[1] == '-' {
		return 0, 0, errReplyNullArray
	}
	return elems, n, nil
}

// ParseInt parses a ":<n>\r\n" reply; b must be exactly that frame.
func ParseInt(b []byte) (int64, error) {
	if len(b) < 4 || b[0] != ':' || b[len(b)-2] != '\r' || b[len(b)-1] != '\n' {
		return 0, errReplyNotInt
	}
	v, ok := ParseInt64Arg(b[1 : len(b)-2])
	if !ok {
		return 0, errReplyInt
	}
	return v, nil
}

// IsError reports whether reply b is an error reply ('-', or RESP3 blob error '!').
func IsError(b []byte) bool {
	return len(b) > 0 && (b[0] == '-' || b[0] == '!')
}

// IsNull reports whether reply b is a null: RESP2's null bulk string or array ("$-1", "*-1") or
// RESP3's '_'.
func IsNull(b []byte) bool {
	return len(b) > 0 && (b[0] == '_' || len(b) > 2 && (b[0] == '$' || b[0] == '*') && b[1] == '-' && b[2] == '1')
}

// BulkPayload returns the contents of b when b is exactly one bulk string frame
// ("$3\r\nfoo\r\n" gives "foo"); nil for anything else (another type, a null, a frame whose
// length does not match). It does not copy or allocate.
func BulkPayload(b []byte) []byte {
	if len(b) < 4 || b[0] != '$' {
		return nil
	}
	i := bytes.IndexByte(b, '\r')
	if i < 2 || i > 11 { // 1 to 10 digits: no overflow
		return nil
	}
	n := 0
	for _, c := range b[1:i] {
		if c < '0' || c > '9' {
			return nil
		}
		n = n*10 + int(c-'0')
	}
	if n != len(b)-i-4 || b[len(b)-2] != '\r' || b[len(b)-1] != '\n' || i+1 >= len(b) || b[i+1] != '\n' {
		return nil
	}
	return b[i+2 : i+2+n]
}
