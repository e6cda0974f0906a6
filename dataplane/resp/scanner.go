package resp

import "bytes"

// ReplyScanner finds the end of one reply frame that arrives in pieces. Where ScanReply on
// the frame read so far would walk it again from its first byte on every read (quadratic work
// for a big array arriving in many reads), Scan resumes at the element where the previous call
// stopped, does not look at all while a bulk string whose header it has read lacks bytes, and
// searches a long status or error line for its CR only in the bytes new since the last call.
//
// The zero value is ready to use. A ReplyScanner is not safe for concurrent use; a connection's
// reader owns one.
type ReplyScanner struct {
	// Where the scan stopped, relative to the frame's first byte: an element boundary and
	// the aggregates open there (their pending element counts on the stack).
	pos, depth int
	// need is the length the frame must reach before anything can change (a bulk string
	// whose header was read), else 0. lineTo, if not 0, is how far the status, error,
	// double or big number line at pos is known to hold no CR.
	need, lineTo int
	// scanned counts the bytes the scans examined, for tests that check the work is linear.
	scanned int
	// MaxLine bounds a status, error, double or big number line of a reply (0:
	// MaxReplyLineLen): a longer one, CR not yet seen, is a malformed reply, so that a node (or
	// anything answering in its place) that sends a line without end cannot make us buffer
	// without limit. The other lines (lengths, integers, booleans) cannot exceed 32 bytes.
	MaxLine int
	small   [smallDepth]uint32
	deep    []uint32 // the MaxReplyDepth stack, made once a reply nests deeper than small
}

// Scan is ScanReply for the bytes of a frame so far: b holds the frame from its first byte
// (possibly moved in memory since the last call) and at least the bytes given before. It
// returns the frame's length once complete, 0 while incomplete, or the error ScanReply gives
// for b. After a complete frame the scanner is ready for the next one; after an error, Scan
// on the same bytes returns the same error.
func (s *ReplyScanner) Scan(b []byte) (int, error) {
	if s.need|s.lineTo != 0 {
		if len(b) < s.need {
			return 0, nil
		}
		if s.lineTo > 0 && bytes.IndexByte(b[s.lineTo:], '\r') < 0 {
			s.scanned += len(b) - s.lineTo
			s.lineTo = len(b)
			if len(b)-s.pos > s.maxLine() {
				return 0, errReplyLineTooLong
			}
			return 0, nil
		}
		s.need, s.lineTo = 0, 0
	}
	from, pos, depth := s.pos, s.pos, s.depth
	pending := s.small[:]
	if s.deep != nil {
		pending = s.deep
	}
	if from == 0 {
		// Fresh frame: the frames that dominate traffic (bulk, status, integer) have no
		// children and are complete in b, so they need no scan state at all.
		n, elems, err := scanElem(b)
		if n > 0 && elems == 0 {
			s.scanned += n
			return n, nil
		}
		if n == 0 {
			s.scanned += len(b)
			if err != nil {
				return 0, err
			}
			return 0, s.wait(b, 0)
		}
		// An aggregate: its elements follow.
		pending[0] = uint32(elems)
		pos, depth = n, 1
	}
	n, pos, depth, err := scanFrom(b, pos, depth, pending)
	if err == errNeedDeeperStack {
		s.deep = make([]uint32, MaxReplyDepth)
		copy(s.deep, s.small[:])
		n, pos, depth, err = scanFrom(b, pos, depth, s.deep)
	}
	if n > 0 {
		s.scanned += n - from
		s.pos, s.depth, s.need = 0, 0, 0
		return n, nil
	}
	// Stopped at an element boundary: at the incomplete element, or at the malformed one
	// (so that scanning again meets the same error).
	s.scanned += len(b) - from
	s.pos, s.depth = pos, depth
	if err != nil {
		return 0, err
	}
	return 0, s.wait(b, pos)
}

// Reset discards a partly scanned frame, e.g. when its connection was replaced.
func (s *ReplyScanner) Reset() {
	s.pos, s.depth, s.need, s.lineTo = 0, 0, 0, 0
}

// maxLine is MaxLine or its default.
func (s *ReplyScanner) maxLine() int {
	if s.MaxLine > 0 {
		return s.MaxLine
	}
	return MaxReplyLineLen
}

// wait notes, for the incomplete element at b[pos:] (which scanElem found incomplete, not
// malformed), what must arrive before scanning it again can tell more: the rest of a string
// whose header was read ('$', '=', '!'), or a CR ending a line whose type puts no bound on
// its length ('+', '-', ',', '('; a Lua script can return a status of any size), which must
// come within MaxLine bytes.
func (s *ReplyScanner) wait(b []byte, pos int) error {
	e := b[pos:]
	if len(e) == 0 {
		return nil
	}
	switch e[0] {
	case '$', '=', '!':
		i := bytes.IndexByte(e, '\r')
		if i < 0 || i+1 >= len(e) || e[i+1] != '\n' {
			return nil // header not complete yet
		}
		if l, ok := ParseInt64Arg(e[1:i]); ok && l >= 0 && l <= MaxBulkLen {
			s.need = pos + i + 2 + int(l) + 2
		}
	case '+', '-', ',', '(':
		if bytes.IndexByte(e, '\r') < 0 {
			s.lineTo = len(b)
			if len(e) > s.maxLine() {
				return errReplyLineTooLong
			}
		}
	}
	return nil
}
