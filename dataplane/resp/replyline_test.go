package resp

import (
	"errors"
	"strings"
	"testing"
)

// TestReplyScannerLineCap: a status, error, double or big number line that runs past MaxLine
// without its CR is a malformed reply, whether it arrives whole or in pieces and whether it
// is a reply of its own or an element of an aggregate; a line within the cap is accepted.
// Integer and length lines are capped at 32 bytes already.
func TestReplyScannerLineCap(t *testing.T) {
	const limit = 1000
	long := strings.Repeat("a", limit+1)
	for _, tc := range []struct {
		name, in string
		bad      bool
	}{
		{"status at the cap", "+" + strings.Repeat("a", limit-1) + "\r\n", false},
		{"status past the cap", "+" + long, true},
		{"error past the cap", "-" + long, true},
		{"double past the cap", "," + long, true},
		{"big number past the cap", "(" + long, true},
		{"in an array", "*2\r\n:1\r\n+" + long, true},
		{"in a nested map", "*1\r\n%1\r\n+k\r\n-" + long, true},
		{"integer without end", ":" + strings.Repeat("1", 40), true},
	} {
		for _, step := range []int{len(tc.in), 7, 1} {
			var s ReplyScanner
			s.MaxLine = limit
			var err error
			n := 0
			for end := min(step, len(tc.in)); ; end = min(end+step, len(tc.in)) {
				if n, err = s.Scan([]byte(tc.in[:end])); err != nil || n > 0 || end == len(tc.in) {
					break
				}
			}
			if tc.bad && !errors.Is(err, ErrMalformedReply) {
				t.Errorf("%s, %d bytes per read: got n=%d err=%v, want a malformed reply", tc.name, step, n, err)
			}
			if !tc.bad && (err != nil || n != len(tc.in)) {
				t.Errorf("%s, %d bytes per read: got n=%d err=%v, want the whole frame", tc.name, step, n, err)
			}
		}
	}
	// The default cap is MaxReplyLineLen: a 1 MiB status line (a Lua script may return one)
	// is only incomplete.
	var s ReplyScanner
	if n, err := s.Scan([]byte("+" + strings.Repeat("z", 1<<20))); n != 0 || err != nil {
		t.Fatalf("1 MiB status line under the default cap: n=%d err=%v", n, err)
	}
}
