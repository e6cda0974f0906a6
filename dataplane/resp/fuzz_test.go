package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// fuzzRead reads every command of in through a Reader fed by rd, copying the results out.
func fuzzRead(rd io.Reader, size int) (cmds [][][]byte, raws [][]byte, err error) {
	r := NewReader(rd, size)
	var cmd Command
	for {
		if err = r.Read(&cmd); err != nil {
			return cmds, raws, err
		}
		if len(cmd.Args) == 0 {
			return cmds, raws, errors.New("command with no args returned")
		}
		args := make([][]byte, len(cmd.Args))
		for i, a := range cmd.Args {
			args[i] = bytes.Clone(a)
		}
		cmds = append(cmds, args)
		raws = append(raws, bytes.Clone(cmd.Raw))
	}
}

func sameArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzReader checks that parsing never panics, does not depend on how the input is split into
// reads, and that what it returns re-encodes and re-parses to the same arguments.
func FuzzReader(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cmds, raws, err := fuzzRead(bytes.NewReader(in), 4096)
		cmds1, _, err1 := fuzzRead(&oneByteReader{b: in}, 16)
		if len(cmds) != len(cmds1) || (err == nil) != (err1 == nil) {
			t.Fatalf("whole read gave %d cmds, %v; byte-at-a-time gave %d, %v", len(cmds), err, len(cmds1), err1)
		}
		var pe, pe1 *ProtocolError
		if errors.As(err, &pe) != errors.As(err1, &pe1) || (pe != nil && pe.Msg != pe1.Msg) {
			t.Fatalf("whole read err %v, byte-at-a-time err %v", err, err1)
		}
		for i, args := range cmds {
			if !sameArgs(args, cmds1[i]) {
				t.Fatalf("cmd %d: whole read %q, byte-at-a-time %q", i, args, cmds1[i])
			}
			if raws[i] != nil {
				got, _, err := fuzzRead(bytes.NewReader(raws[i]), 16)
				if err != io.EOF || len(got) != 1 || !sameArgs(got[0], args) {
					t.Fatalf("Raw %q re-parsed to %q, %v; want %q", raws[i], got, err, args)
				}
			}
			enc := AppendCommand(nil, args...)
			got, _, err := fuzzRead(bytes.NewReader(enc), 16)
			if err != io.EOF || len(got) != 1 || !sameArgs(got[0], args) {
				t.Fatalf("AppendCommand %q re-parsed to %q, %v; want %q", enc, got, err, args)
			}
		}
	})
}

// FuzzScanReply checks ScanReply's invariants on arbitrary input, that a ReplyScanner fed the
// input in pieces agrees with it, and that every frame the Append* writers produce scans to
// exactly its length.
func FuzzScanReply(f *testing.F) {
	f.Add([]byte("+OK\r\n"))
	// Frames that make the scanner resume inside aggregates, switch to its deep stack, and
	// wait on bulk strings.
	f.Add([]byte("*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n%1\r\n+k\r\n$3\r\nabc\r\n=7\r\ntxt:abc\r\n"))
	f.Add([]byte("*2\r\n" + strings.Repeat("*1\r\n", 40) + ":1\r\n!5\r\nERR x\r\n"))
	f.Add([]byte("*2\r\n|1\r\n+ttl\r\n:3\r\n$20\r\n01234567890123456789\r\n:9\r\n"))
	f.Add([]byte("*3\r\n$3\r\nabc\r\n$5\r\nab\r\n"))
	f.Add([]byte("*3\r\n+" + strings.Repeat("s", 100) + "\r\n-ERR e\r\n(" + strings.Repeat("9", 50) + "\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := ScanReply(in)
		// In pieces of one byte, and of sizes taken from the input itself: every call agrees
		// with ScanReply on the same bytes, and the last with ScanReply on the whole: the
		// same length, and an error if it gives one. (A malformed frame may fail earlier, or
		// with another error, than on the whole: ScanReply itself refuses an overlong length
		// line before its CR arrives, e.g.)
		var sc ReplyScanner
		sizes := [][]int{{1}, {1 + len(in)/3, 1 + len(in)/5}}
		if len(in) > 2 {
			sizes = append(sizes, []int{1 + int(in[0]%16), 1 + int(in[len(in)-1]%64), 1 + int(in[1]%7)})
		}
		for _, sz := range sizes {
			if m, merr := scanChunked(t, &sc, in, sz); m != n || (err != nil && merr == nil) {
				t.Fatalf("in pieces %v: %d, %v; whole: %d, %v", sz, m, merr, n, err)
			}
			sc.Reset()
		}
		if n < 0 || n > len(in) {
			t.Fatalf("ScanReply length %d outside [0, %d]", n, len(in))
		}
		if err != nil && n != 0 {
			t.Fatalf("ScanReply = %d with error %v", n, err)
		}
		if err != nil && !errors.Is(err, ErrMalformedReply) {
			t.Fatalf("error %v does not match ErrMalformedReply", err)
		}
		if n > 0 {
			if m, err := ScanReply(in[:n]); m != n || err != nil {
				t.Fatalf("reply alone scans to %d, %v; want %d", m, err, n)
			}
			if m, err := ScanReply(in[:n-1]); m != 0 || err != nil {
				t.Fatalf("reply minus one byte scans to %d, %v; want incomplete", m, err)
			}
			if in[0] == '*' && in[1] != '-' {
				elems, err := ArrayElems(in[:n], nil)
				if err != nil {
					t.Fatalf("ArrayElems of a scanned array: %v", err)
				}
				total := bytes.IndexByte(in, '\n') + 1
				for _, e := range elems {
					total += len(e)
				}
				if total != n {
					t.Fatalf("ArrayElems elements cover %d bytes, want %d", total, n)
				}
			}
		}
		s := string(in)
		frames := [][]byte{
			AppendBulk(nil, in),
			AppendBulkString(nil, s),
			AppendSimple(nil, s),
			AppendError(nil, s),
			AppendNullBulk(nil),
			AppendCommand(nil, bytes.Fields(in)...),
		}
		if v, ok := ParseInt64Arg(in); ok {
			frames = append(frames, AppendInt(nil, v))
			if got, err := ParseInt(AppendInt(nil, v)); got != v || err != nil {
				t.Fatalf("ParseInt(AppendInt(%d)) = %d, %v", v, got, err)
			}
		}
		for _, fr := range frames {
			if m, err := ScanReply(fr); m != len(fr) || err != nil {
				t.Fatalf("ScanReply(%q) = %d, %v; want %d", fr, m, err, len(fr))
			}
		}
	})
}
