package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// oneByteReader returns its input one byte per Read, the worst split a network can produce.
type oneByteReader struct{ b []byte }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}

// readAll reads every command from r until an error, copying Args and Raw out of the buffer.
func readAll(r *Reader) (cmds [][]string, raws []string, err error) {
	var cmd Command
	for {
		if err = r.Read(&cmd); err != nil {
			return cmds, raws, err
		}
		args := make([]string, len(cmd.Args))
		for i, a := range cmd.Args {
			args[i] = string(a)
		}
		cmds = append(cmds, args)
		raws = append(raws, string(cmd.Raw))
	}
}

// readers gives the ways a test input is fed to a Reader: all at once into a big buffer, all
// at once into a tiny buffer that must grow, and one byte per read.
func readers(in string) map[string]*Reader {
	return map[string]*Reader{
		"whole":     NewReader(strings.NewReader(in), 4096),
		"tiny_buf":  NewReader(strings.NewReader(in), 16),
		"byte_each": NewReader(&oneByteReader{b: []byte(in)}, 16),
	}
}

func TestReaderValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]string
		raw  []string // expected Raw per command; "" means nil (inline)
	}{
		{name: "get", in: "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n",
			want: [][]string{{"GET", "foo"}}, raw: []string{"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"}},
		{name: "set_empty_value", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
			want: [][]string{{"SET", "k", ""}}, raw: []string{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"}},
		{name: "binary_value_with_crlf", in: "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n",
			want: [][]string{{"ECHO", "\r\n\r\n"}}, raw: []string{"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n"}},
		{name: "pipelined", in: "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n",
			want: [][]string{{"PING"}, {"GET", "a"}, {"PING"}},
			raw:  []string{"*1\r\n$4\r\nPING\r\n", "*2\r\n$3\r\nGET\r\n$1\r\na\r\n", "*1\r\n$4\r\nPING\r\n"}},
		{name: "empty_arrays_skipped", in: "*0\r\n*-1\r\n*-7\r\n*1\r\n$4\r\nPING\r\n",
			want: [][]string{{"PING"}}, raw: []string{"*1\r\n$4\r\nPING\r\n"}},
		{name: "inline_crlf", in: "PING\r\n", want: [][]string{{"PING"}}, raw: []string{""}},
		{name: "inline_lf", in: "set a b\n", want: [][]string{{"set", "a", "b"}}, raw: []string{""}},
		{name: "empty_lines_skipped", in: "\r\n\n   \r\nPING\r\n\n", want: [][]string{{"PING"}}, raw: []string{""}},
		{name: "inline_then_array", in: "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\nGET y\r\n",
			want: [][]string{{"PING"}, {"GET", "x"}, {"GET", "y"}},
			raw:  []string{"", "*2\r\n$3\r\nGET\r\n$1\r\nx\r\n", ""}},
		{name: "dollar_starts_inline", in: "$3 x\r\n", want: [][]string{{"$3", "x"}}, raw: []string{""}},
		{name: "max_bulk_len_header_accepted", in: "*1\r\n$0\r\n\r\n", want: [][]string{{""}}, raw: []string{"*1\r\n$0\r\n\r\n"}},
	}
	for _, tt := range tests {
		for how, r := range readers(tt.in) {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				cmds, raws, err := readAll(r)
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if !equalCmds(cmds, tt.want) {
					t.Fatalf("commands = %q, want %q", cmds, tt.want)
				}
				for i := range raws {
					if raws[i] != tt.raw[i] {
						t.Errorf("raw[%d] = %q, want %q", i, raws[i], tt.raw[i])
					}
				}
			})
		}
	}
}

func equalCmds(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

func TestReaderInlineQuoting(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
		err  string
	}{
		{name: "double_quotes", line: `SET "a b" c`, want: []string{"SET", "a b", "c"}},
		{name: "hex_escape", line: `ECHO "\x41\x62\x7a"`, want: []string{"ECHO", "Abz"}},
		{name: "bad_hex_kept_literally", line: `ECHO "\xZZ"`, want: []string{"ECHO", "xZZ"}},
		{name: "c_escapes", line: `ECHO "\n\r\t\b\a\"\\\q"`, want: []string{"ECHO", "\n\r\t\b\a\"\\q"}},
		{name: "single_quotes", line: `ECHO 'it\'s "x"' 'a\nb'`, want: []string{"ECHO", `it's "x"`, `a\nb`}},
		{name: "empty_quoted", line: `SET k ""`, want: []string{"SET", "k", ""}},
		{name: "quote_inside_word_starts_quoting", line: `ECHO ab"c d"`, want: []string{"ECHO", "abc d"}},
		{name: "tabs_and_runs_of_blanks", line: "\t GET \t  k  ", want: []string{"GET", "k"}},
		{name: "vertical_tab_is_not_a_separator", line: "ECHO a\vb", want: []string{"ECHO", "a\vb"}},
		{name: "closing_quote_then_vtab", line: "ECHO \"a\"\vb", want: []string{"ECHO", "a", "b"}},
		{name: "nul_ends_line", line: "ECHO a\x00b c", want: []string{"ECHO", "a"}},
		{name: "unterminated_double", line: `ECHO "abc`, err: "Protocol error: unbalanced quotes in request"},
		{name: "unterminated_single", line: `ECHO 'abc`, err: "Protocol error: unbalanced quotes in request"},
		{name: "text_after_closing_double", line: `ECHO "a"b`, err: "Protocol error: unbalanced quotes in request"},
		{name: "text_after_closing_single", line: `ECHO 'a'b`, err: "Protocol error: unbalanced quotes in request"},
		{name: "escape_at_end", line: `ECHO "a\`, err: "Protocol error: unbalanced quotes in request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.line+"\r\n"), 64)
			var cmd Command
			err := r.Read(&cmd)
			if tt.err != "" {
				var pe *ProtocolError
				if !errors.As(err, &pe) || err.Error() != tt.err {
					t.Fatalf("err = %v, want ProtocolError %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if cmd.Raw != nil {
				t.Errorf("Raw = %q, want nil for inline", cmd.Raw)
			}
			got := make([]string, len(cmd.Args))
			for i, a := range cmd.Args {
				got[i] = string(a)
			}
			if !equalCmds([][]string{got}, [][]string{tt.want}) {
				t.Fatalf("args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReaderProtocolErrors(t *testing.T) {
	long := strings.Repeat("a", MaxInlineLen+1)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "multibulk_not_a_number", in: "*x\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_plus_sign", in: "*+1\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_leading_zero", in: "*01\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_too_many", in: "*1048577\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_overflow", in: "*99999999999999999999\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_cr_without_lf", in: "*1\rx$4\r\nPING\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "multibulk_empty", in: "*\r\n", want: "Protocol error: invalid multibulk length"},
		{name: "bulk_not_a_number", in: "*1\r\n$x\r\n", want: "Protocol error: invalid bulk length"},
		{name: "bulk_negative", in: "*1\r\n$-1\r\n", want: "Protocol error: invalid bulk length"},
		{name: "bulk_over_max", in: "*1\r\n$536870913\r\n", want: "Protocol error: invalid bulk length"},
		{name: "bulk_not_crlf_terminated", in: "*1\r\n$4\r\nPINGxx", want: "Protocol error: invalid bulk length"},
		{name: "bulk_header_cr_without_lf", in: "*1\r\n$4\rxPING\r\n", want: "Protocol error: invalid bulk length"},
		{name: "expected_dollar", in: "*1\r\n:4\r\nPING\r\n", want: "Protocol error: expected '$', got ':'"},
		{name: "expected_dollar_letter", in: "*2\r\n$3\r\nGET\r\nx\r\n", want: "Protocol error: expected '$', got 'x'"},
		{name: "too_big_inline", in: long, want: "Protocol error: too big inline request"},
		{name: "too_big_inline_even_with_newline", in: long + "\n", want: "Protocol error: too big inline request"},
		{name: "too_big_mbulk_count", in: "*" + long, want: "Protocol error: too big mbulk count string"},
		{name: "too_big_bulk_count", in: "*1\r\n$" + long, want: "Protocol error: too big bulk count string"},
		{name: "too_big_bulk_count_before_dollar_check", in: "*1\r\n" + strings.Repeat("X", 70000), want: "Protocol error: too big bulk count string"},
		{name: "unbalanced_quotes", in: "SET \"a b\r\n", want: "Protocol error: unbalanced quotes in request"},
		{name: "error_after_good_command", in: "PING\r\n*x\r\n", want: "Protocol error: invalid multibulk length"},
	}
	for _, tt := range tests {
		for how, r := range readers(tt.in) {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				_, _, err := readAll(r)
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (%T), want *ProtocolError", err, err)
				}
				if err.Error() != tt.want {
					t.Fatalf("err = %q, want %q", err.Error(), tt.want)
				}
				// The error is sticky: a session must not go on parsing after it.
				var cmd Command
				if err2 := r.Read(&cmd); err2 != err {
					t.Fatalf("second Read err = %v, want the same %v", err2, err)
				}
			})
		}
	}
}

func TestReaderLimitsAccepted(t *testing.T) {
	maxLine := strings.Repeat("a", MaxInlineLen-2) // with "\r\n", exactly MaxInlineLen bytes
	tests := []struct {
		name string
		in   string
		want int // number of args of the single command
	}{
		{name: "inline_at_limit", in: maxLine + "\r\n", want: 1},
		{name: "max_args_header", in: "*1048576\r\n" + strings.Repeat("$0\r\n\r\n", MaxArgs), want: MaxArgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), 4096)
			var cmd Command
			if err := r.Read(&cmd); err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(cmd.Args) != tt.want {
				t.Fatalf("len(Args) = %d, want %d", len(cmd.Args), tt.want)
			}
		})
	}
}

// TestReaderBigBulkClaimDoesNotAllocate checks that a declared length is not trusted: the
// buffer grows with the bytes that arrive, not with what the client claims.
func TestReaderBigBulkClaimDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		maxBuf  int
	}{
		{name: "max_bulk_claim_few_bytes", in: "*2\r\n$3\r\nSET\r\n$536870912\r\nabc", wantErr: io.ErrUnexpectedEOF, maxBuf: 64},
		{name: "max_bulk_claim_100k_bytes", in: "*2\r\n$3\r\nSET\r\n$536870912\r\n" + strings.Repeat("v", 100<<10), wantErr: io.ErrUnexpectedEOF, maxBuf: 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), 16)
			var cmd Command
			if err := r.Read(&cmd); err != tt.wantErr {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(r.buf) > tt.maxBuf {
				t.Fatalf("buffer grew to %d bytes for %d bytes of input, want <= %d", len(r.buf), len(tt.in), tt.maxBuf)
			}
		})
	}
}

func TestReaderShrinksAfterBigCommand(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	in := string(AppendCommand(nil, []byte("SET"), []byte("k"), []byte(big))) + "*1\r\n$4\r\nPING\r\n"
	// Two separate reads: the big command, then the small one after an empty buffer.
	r := NewReader(&chunkReader{chunks: []string{in[:len(in)-14], in[len(in)-14:]}}, 512)
	var cmd Command
	if err := r.Read(&cmd); err != nil {
		t.Fatalf("Read big: %v", err)
	}
	if len(cmd.Args) != 3 || len(cmd.Args[2]) != len(big) {
		t.Fatalf("big command parsed as %d args", len(cmd.Args))
	}
	if len(r.buf) <= shrinkLen {
		t.Fatalf("buffer is %d bytes after a 1 MiB command; test does not exercise growth", len(r.buf))
	}
	if err := r.Read(&cmd); err != nil {
		t.Fatalf("Read small: %v", err)
	}
	if string(cmd.Args[0]) != "PING" {
		t.Fatalf("got %q, want PING", cmd.Args[0])
	}
	if len(r.buf) != 512 {
		t.Fatalf("buffer is %d bytes after going empty, want back to 512", len(r.buf))
	}
}

// chunkReader returns one chunk per Read.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestTryReadKeepsEarlierArgs checks the buffer rule: TryRead never moves buffered bytes, so
// a command returned by TryRead stays valid while the next ones are parsed.
func TestTryReadKeepsEarlierArgs(t *testing.T) {
	in := "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\nPING\r\n*2\r\n$3\r\nGET"
	r := NewReader(strings.NewReader(in), 4096) // one read buffers everything
	var first, next Command
	if err := r.Read(&first); err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []string{"k2", "PING"}
	for i, w := range want {
		ok, err := r.TryRead(&next)
		if !ok || err != nil {
			t.Fatalf("TryRead %d = %v, %v; want a buffered command", i, ok, err)
		}
		if got := string(next.Args[len(next.Args)-1]); got != w {
			t.Fatalf("TryRead %d last arg = %q, want %q", i, got, w)
		}
	}
	ok, err := r.TryRead(&next)
	if ok || err != nil {
		t.Fatalf("TryRead on partial command = %v, %v; want false, nil", ok, err)
	}
	if string(first.Args[1]) != "k1" || string(first.Raw) != "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n" {
		t.Fatalf("first command changed under TryRead: %q raw %q", first.Args, first.Raw)
	}
	if got := r.Buffered(); got != len("*2\r\n$3\r\nGET") {
		t.Fatalf("Buffered = %d, want %d", got, len("*2\r\n$3\r\nGET"))
	}
}

func TestReaderReadErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		rd   io.Reader
		want error
	}{
		{name: "clean_eof", rd: strings.NewReader(""), want: io.EOF},
		{name: "eof_mid_command", rd: strings.NewReader("*2\r\n$3\r\nGET"), want: io.ErrUnexpectedEOF},
		{name: "eof_mid_inline", rd: strings.NewReader("PING"), want: io.ErrUnexpectedEOF},
		{name: "reader_error_wrapped", rd: errReader{boom}, want: boom},
		{name: "no_progress", rd: errReader{nil}, want: io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.rd, 64)
			var cmd Command
			err := r.Read(&cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReaderDataBeforeError(t *testing.T) {
	r := NewReader(&dataThenErr{data: "PING\r\n"}, 64)
	var cmd Command
	if err := r.Read(&cmd); err != nil || string(cmd.Args[0]) != "PING" {
		t.Fatalf("Read = %q, %v; want PING first", cmd.Args, err)
	}
	if err := r.Read(&cmd); err != io.EOF {
		t.Fatalf("second Read err = %v, want io.EOF", err)
	}
}

// dataThenErr returns its data together with io.EOF in one Read, as io.Reader allows.
type dataThenErr struct{ data string }

func (d *dataThenErr) Read(p []byte) (int, error) {
	n := copy(p, d.data)
	d.data = d.data[n:]
	return n, io.EOF
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("*x\r\n"), 64)
	var cmd Command
	if err := r.Read(&cmd); err == nil {
		t.Fatal("want a protocol error before Reset")
	}
	r.Reset(strings.NewReader("PING\r\n"))
	if err := r.Read(&cmd); err != nil || string(cmd.Args[0]) != "PING" {
		t.Fatalf("after Reset: %q, %v", cmd.Args, err)
	}
	if r.Buffered() != 0 {
		t.Fatalf("Buffered = %d, want 0", r.Buffered())
	}
}

// TestReaderArgsCapDropped checks that the huge Args array left by a huge command is not
// kept for the rest of the session.
func TestReaderArgsCapDropped(t *testing.T) {
	in := "*5000\r\n" + strings.Repeat("$1\r\nx\r\n", 5000) + "*1\r\n$4\r\nPING\r\n"
	r := NewReader(strings.NewReader(in), 4096)
	var cmd Command
	for _, want := range []int{5000, 1} {
		if err := r.Read(&cmd); err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(cmd.Args) != want {
			t.Fatalf("len(Args) = %d, want %d", len(cmd.Args), want)
		}
	}
	if cap(cmd.Args) > keepArgsCap {
		t.Fatalf("cap(Args) = %d after a small command, want <= %d", cap(cmd.Args), keepArgsCap)
	}
}

func TestTryReadAllocs(t *testing.T) {
	tests := []struct {
		name string
		cmd  [][]byte
	}{
		{name: "get", cmd: [][]byte{[]byte("GET"), []byte("key:000000001")}},
		{name: "set", cmd: [][]byte{[]byte("SET"), []byte("key:000000001"), bytes.Repeat([]byte("v"), 64)}},
		{name: "inline_get", cmd: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var one []byte
			if tt.cmd == nil {
				one = []byte("GET \"key:000000001\"\r\n")
			} else {
				one = AppendCommand(nil, tt.cmd...)
			}
			const runs = 1000
			in := bytes.Repeat(one, runs+10)
			r := NewReader(bytes.NewReader(in), len(in))
			var cmd Command
			if err := r.Read(&cmd); err != nil { // fills the buffer with every command
				t.Fatalf("Read: %v", err)
			}
			allocs := testing.AllocsPerRun(runs, func() {
				if ok, err := r.TryRead(&cmd); !ok || err != nil {
					t.Fatalf("TryRead = %v, %v", ok, err)
				}
			})
			if allocs != 0 {
				t.Fatalf("TryRead allocated %v times per command, want 0", allocs)
			}
		})
	}
}

func TestParseInt64Arg(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"123456", 123456, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"-9223372036854775808", -1 << 63, true},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"01", 0, false}, {"-0", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"1a", 0, false}, {"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false}, {"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false}, {"000000000000000000001", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseInt64Arg([]byte(tt.in))
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseInt64Arg(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestReaderFill: Fill buffers input without parsing it, a deadline stops it without ending
// the input, the limit stops it reading, and Read then serves what was kept, in order.
func TestReaderFill(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	r := NewReader(srv, 16)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// net.Pipe writes block until read: each piece is one Fill.
		for _, piece := range []string{"*1\r\n$4\r\nPING\r\n", "*2\r\n$4\r\nECHO\r\n$20\r\n", "0123456789"} {
			if _, err := cli.Write([]byte(piece)); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 3; i++ {
		if err := r.Fill(1 << 10); err != nil {
			t.Fatalf("Fill %d: %v", i, err)
		}
	}
	if err := r.Fill(r.Buffered()); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("Fill at the limit = %v, want ErrBufferFull", err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(-time.Second))
	if err := r.Fill(1 << 10); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Fill after the deadline = %v, want a deadline error", err)
	}
	_ = srv.SetReadDeadline(time.Time{})
	go func() {
		<-wrote // a Fill may have taken only part of the pieces: the rest must come first
		_, _ = cli.Write([]byte("0123456789\r\n"))
		cli.Close()
	}()
	cmds, _, err := readAll(r)
	if err != io.EOF {
		t.Fatalf("after the commands: %v, want io.EOF (a deadline must not stick)", err)
	}
	if len(cmds) != 2 || cmds[0][0] != "PING" || cmds[1][1] != "01234567890123456789" {
		t.Fatalf("commands = %q", cmds)
	}
}

// TestReaderFillKeepsEOF: the end of input seen by Fill is reported by Read after the
// buffered commands.
func TestReaderFillKeepsEOF(t *testing.T) {
	r := NewReader(strings.NewReader("PING\r\n"), 16)
	if err := r.Fill(1 << 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Fill(1 << 10); err != io.EOF {
		t.Fatalf("Fill at the end = %v, want io.EOF", err)
	}
	cmds, _, err := readAll(r)
	if err != io.EOF || len(cmds) != 1 || cmds[0][0] != "PING" {
		t.Fatalf("Read after Fill = %q, %v", cmds, err)
	}
}
