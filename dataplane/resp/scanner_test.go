package resp

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scanChunked feeds the frame at the start of in to s in pieces whose sizes cycle through
// sizes, each call on a fresh copy of the bytes so far (the frame moves in memory as in a
// compacting reader), and checks every call against ScanReply on the same bytes. It returns
// the last result: the frame's length, an error, or 0 if in ends before the frame does.
func scanChunked(t testing.TB, s *ReplyScanner, in []byte, sizes []int) (int, error) {
	t.Helper()
	k := 0
	for i := 0; ; i++ {
		k = min(k+sizes[i%len(sizes)], len(in))
		buf := bytes.Clone(in[:k])
		n, err := s.Scan(buf)
		wn, werr := ScanReply(buf)
		if n != wn || err != werr {
			t.Fatalf("Scan of %d of the %d bytes of %q = %d, %v; ScanReply = %d, %v", k, len(in), trunc(in), n, err, wn, werr)
		}
		if err != nil {
			if n2, err2 := s.Scan(buf); n2 != 0 || err2 != err {
				t.Fatalf("Scan again after error %v = %d, %v; want the same error", err, n2, err2)
			}
			return n, err
		}
		if n > 0 || k == len(in) {
			return n, err
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// scannerInputs are replies to feed in pieces: the ScanReply cases, the FuzzScanReply corpus,
// and frames built to cross the scanner's edges (the small-to-deep stack switch, bulk strings
// and errors deep inside aggregates, RESP3 types nested).
func scannerInputs(t testing.TB) [][]byte {
	var ins [][]byte
	for _, tt := range scanReplyCases {
		ins = append(ins, []byte(tt.in))
	}
	files, err := filepath.Glob("testdata/fuzz/FuzzScanReply/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("FuzzScanReply corpus: %v, %d files", err, len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, arg, _ := strings.Cut(string(data), "\n")
		arg = strings.TrimSpace(arg)
		q, ok := strings.CutPrefix(arg, "[]byte(")
		if !ok {
			t.Fatalf("%s: unexpected corpus entry %q", f, arg)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ins = append(ins, []byte(v))
	}
	deep := func(levels int, inner string) string {
		return strings.Repeat("*1\r\n", levels) + inner
	}
	for _, s := range []string{
		"*2\r\n" + deep(40, ":1\r\n") + "$3\r\nabc\r\n",
		"*3\r\n" + deep(31, "*2\r\n$1\r\na\r\n") + ":7\r\n" + "+x\r\n" + "-ERR y\r\n",
		"*2\r\n" + deep(60, "*0\r\n") + deep(50, ":x\r\n"),
		"*2\r\n" + deep(MaxReplyDepth-1, "*1\r\n:1\r\n") + ":2\r\n",
		"*4\r\n$10\r\n0123456789\r\n*2\r\n$0\r\n\r\n$-1\r\n%1\r\n+k\r\n=7\r\ntxt:abc\r\n!5\r\nERR x\r\n",
		">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$200\r\n" + strings.Repeat("p", 200) + "\r\n",
		"*2\r\n|1\r\n+ttl\r\n:3\r\n$3\r\nabc\r\n~2\r\n#t\r\n(12345678901234567890\r\n",
		"*3\r\n$3\r\nabc\r\n$5\r\nab\r\n",       // short bulk inside an array
		"*2\r\n$3\r\nabcXY",                     // bulk not terminated
		"*3\r\n:1\r\n*2\r\n,1.5\r\n_\r\n_x\r\n", // bad null after a nested array
		"*2\r\n*1\r\n:1\r\n" + "$" + strings.Repeat("9", 40),
		"$1000\r\n" + strings.Repeat("z", 1000) + "\r\n+next\r\n",
		"=1000\r\n" + strings.Repeat("z", 1000) + "\r\n",
		"+" + strings.Repeat("s", 1000) + "\r\n",
		"*3\r\n-ERR " + strings.Repeat("e", 500) + "\r\n," + strings.Repeat("1", 300) + "\r\n(" + strings.Repeat("9", 300) + "\r\n",
		"*2\r\n+" + strings.Repeat("s", 300) + "\rX",        // line not ended by CRLF
		"*2\r\n:1\r\n:" + strings.Repeat("1", 100) + "\r\n", // overlong integer line
	} {
		ins = append(ins, []byte(s))
	}
	return ins
}

// TestReplyScannerMatchesScanReply feeds every input byte at a time, split at every point in
// two, and in random pieces: each call must give exactly what ScanReply gives on the same
// bytes, and a frame split anywhere must end as ScanReply on the whole does: the same length,
// and an error if it gives one (a malformed frame may fail earlier, or with another error:
// ScanReply too refuses some on a prefix). One scanner serves all inputs, so it must be ready for the next
// frame after a complete one (and after Reset).
func TestReplyScannerMatchesScanReply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s ReplyScanner
	feed := func(in []byte, sizes []int) {
		t.Helper()
		n, err := scanChunked(t, &s, in, sizes)
		wn, werr := ScanReply(in)
		if n != wn || (werr != nil && err == nil) {
			t.Fatalf("%q in pieces %v: %d, %v; whole: %d, %v", trunc(in), sizes, n, err, wn, werr)
		}
		if n == 0 {
			s.Reset() // incomplete or malformed: drop it
		}
	}
	for _, in := range scannerInputs(t) {
		feed(in, []int{1})
		for k := 0; k <= len(in) && k < 2000; k++ {
			feed(in, []int{k, len(in)})
		}
		for range 20 {
			feed(in, []int{1 + rng.IntN(7), 1 + rng.IntN(64), 1 + rng.IntN(300)})
		}
	}
}

// bigArray is an LRANGE-like reply of n short bulk strings.
func bigArray(n int) []byte {
	b := AppendArrayHeader(nil, n)
	for i := range n {
		b = AppendBulkString(b, "value:"+strconv.Itoa(i))
	}
	return b
}

// TestReplyScannerWorkIsLinear feeds big replies in small pieces and checks the bytes the
// scans examined stay within a small multiple of the frame's length (ScanReply on every
// prefix would examine about len²/(2·piece) bytes: thousands of times the frame).
func TestReplyScannerWorkIsLinear(t *testing.T) {
	nested := AppendArrayHeader(nil, 50000) // XRANGE-like: [id, [field, value]] entries
	for i := range 50000 {
		nested = AppendArrayHeader(nested, 2)
		nested = AppendBulkString(nested, strconv.Itoa(i)+"-0")
		nested = AppendArrayHeader(nested, 2)
		nested = AppendBulkString(nested, "field")
		nested = AppendBulkString(nested, "value")
	}
	tests := []struct {
		name  string
		frame []byte
		piece int
	}{
		{"array_200k", bigArray(200000), 512},
		{"array_200k_odd_pieces", bigArray(200000), 37},
		{"nested_50k", nested, 1000},
		{"bulk_8MiB", AppendBulk(nil, make([]byte, 8<<20)), 4096},
		{"bulks_in_array", append(append(AppendArrayHeader(nil, 2), AppendBulk(nil, make([]byte, 4<<20))...), AppendBulk(nil, make([]byte, 4<<20))...), 4096},
		{"status_8MiB", AppendSimple(nil, strings.Repeat("s", 8<<20)), 4096}, // a Lua status_reply
		{"errors_in_array", append(append(AppendArrayHeader(nil, 2), AppendError(nil, strings.Repeat("e", 4<<20))...), AppendSimple(nil, strings.Repeat("s", 4<<20))...), 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ReplyScanner
			calls := 0
			for k := tt.piece; ; k += tt.piece {
				k = min(k, len(tt.frame))
				calls++
				n, err := s.Scan(tt.frame[:k])
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					if n != len(tt.frame) || k != len(tt.frame) {
						t.Fatalf("complete at %d of %d bytes, length %d", k, len(tt.frame), n)
					}
					break
				}
				if k == len(tt.frame) {
					t.Fatalf("incomplete with the whole frame given")
				}
			}
			if s.scanned > 3*len(tt.frame) {
				t.Fatalf("%d calls examined %d bytes for a %d-byte frame; want at most 3 times the frame", calls, s.scanned, len(tt.frame))
			}
			t.Logf("%d calls examined %d bytes for a %d-byte frame", calls, s.scanned, len(tt.frame))
		})
	}
}

func TestReplyScannerAllocs(t *testing.T) {
	frames := [][]byte{
		[]byte("$64\r\n" + strings.Repeat("v", 64) + "\r\n"),
		[]byte("+OK\r\n"),
		[]byte("*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n%1\r\n+a\r\n#t\r\n"),
	}
	var s ReplyScanner
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			if n, err := s.Scan(f[:len(f)-3]); n != 0 || err != nil {
				t.Fatalf("Scan of a partial frame = %d, %v", n, err)
			}
			if n, err := s.Scan(f); n != len(f) || err != nil {
				t.Fatalf("Scan = %d, %v; want %d", n, err, len(f))
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Scan allocated %v times, want 0", allocs)
	}
}
