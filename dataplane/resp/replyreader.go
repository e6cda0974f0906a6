package resp

import (
	"fmt"
	"io"
)

// ReplyReader reads whole reply frames from a node connection, one at a time. It is for
// connections a session owns (blocking commands, transactions, subscriptions) and for
// handshakes; the shared pipelined connections batch their own reads.
type ReplyReader struct {
	rd   io.Reader
	buf  []byte // buf[r:w]: read and not yet returned
	r, w int
	sc   ReplyScanner // the frame at buf[r:], scanned so far
}

// NewReplyReader returns a ReplyReader on rd whose buffer starts at size bytes.
func NewReplyReader(rd io.Reader, size int) *ReplyReader {
	return &ReplyReader{rd: rd, buf: make([]byte, size)}
}

// Next returns the next reply frame, reading as needed. The frame is valid until the next
// call. A malformed reply or a read error is returned as is (wrapped); bytes already read stay
// buffered, so a read that timed out can be retried.
func (rr *ReplyReader) Next() ([]byte, error) {
	for {
		if rr.r < rr.w {
			n, err := rr.sc.Scan(rr.buf[rr.r:rr.w])
			if err != nil {
				return nil, fmt.Errorf("bad reply: %w", err)
			}
			if n > 0 {
				f := rr.buf[rr.r : rr.r+n : rr.r+n]
				rr.r += n
				return f, nil
			}
		}
		if rr.r == rr.w {
			rr.r, rr.w = 0, 0
		}
		if rr.w == len(rr.buf) {
			if rr.r > 0 {
				rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
				rr.r = 0
			} else {
				nb := make([]byte, max(2*len(rr.buf), 512))
				rr.w = copy(nb, rr.buf[:rr.w])
				rr.buf = nb
			}
		}
		n, err := rr.rd.Read(rr.buf[rr.w:])
		rr.w += n
		if err != nil && n == 0 {
			return nil, fmt.Errorf("read: %w", err)
		}
	}
}

// Buffered is how many bytes were read past the last frame returned.
func (rr *ReplyReader) Buffered() int { return rr.w - rr.r }

// Shrink drops a buffer that grew past limit while nothing is buffered, so that one huge
// reply does not pin its memory for the connection's life.
func (rr *ReplyReader) Shrink(limit, size int) {
	if rr.r == rr.w && len(rr.buf) > limit {
		rr.buf, rr.r, rr.w = make([]byte, size), 0, 0
	}
}
