package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestReaderUnauthenticatedLimits holds the rule of Redis 7's processMultibulkBuffer for a
// client that has not authenticated: an array of more than 10 elements, or a bulk of more than
// 16384 bytes, is a protocol error at its header (nothing after the header needs to arrive),
// checked after the checks that make the header invalid outright; inline commands are not
// limited further. The wording and order were checked against redis-server 7.0 with
// requirepass; every input is also fed one byte per read, so the outcome does not depend on
// how the network splits it.
func TestReaderUnauthenticatedLimits(t *testing.T) {
	big := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name    string
		in      string
		wantErr string // "" when the commands parse (or wait for more)
		cmds    int    // commands returned before the error or the end of input
	}{
		{name: "11_elements", in: "*11\r\n", wantErr: "unauthenticated multibulk length"},
		{name: "fast_path_huge_count", in: "*1000000\r\n", wantErr: "unauthenticated multibulk length"},
		{name: "past_MaxArgs_is_unauthenticated", in: "*2000000\r\n", wantErr: "unauthenticated multibulk length"},
		{name: "past_INT_MAX_is_invalid", in: "*2147483648\r\n", wantErr: "invalid multibulk length"},
		{name: "10_elements_wait", in: "*10\r\n"},
		{name: "10_elements", in: "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), cmds: 1},
		{name: "bulk_16385_header_alone", in: "*1\r\n$16385\r\n", wantErr: "unauthenticated bulk length"},
		{name: "bulk_100MiB_header_alone", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n", wantErr: "unauthenticated bulk length"},
		{name: "bulk_16384_waits", in: "*1\r\n$16384\r\n"},
		{name: "bulk_16384", in: "*1\r\n$16384\r\n" + big(16384) + "\r\n", cmds: 1},
		{name: "bulk_past_max_is_invalid", in: "*1\r\n$600000000\r\n", wantErr: "invalid bulk length"},
		{name: "negative_bulk_is_invalid", in: "*1\r\n$-1\r\n", wantErr: "invalid bulk length"},
		{name: "after_valid_commands", in: "*1\r\n$4\r\nPING\r\n*1\r\n$16385\r\n", wantErr: "unauthenticated bulk length", cmds: 1},
		{name: "empty_arrays_still_ignored", in: "*0\r\n*-1\r\n*11\r\n", wantErr: "unauthenticated multibulk length"},
		{name: "inline_not_limited", in: "set a " + big(20000) + " " + strings.Repeat("b ", 100) + "\r\n", cmds: 1},
	}
	for _, tc := range tests {
		for how, r := range readers(tc.in) {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				r.SetUnauthenticated(true)
				cmds, _, err := readAll(r)
				if len(cmds) != tc.cmds {
					t.Errorf("got %d commands, want %d", len(cmds), tc.cmds)
				}
				var pe *ProtocolError
				if tc.wantErr == "" {
					if errors.As(err, &pe) {
						t.Fatalf("got %v, want no protocol error", err)
					}
					return
				}
				if !errors.As(err, &pe) || pe.Msg != tc.wantErr {
					t.Fatalf("got %v, want protocol error %q", err, tc.wantErr)
				}
			})
		}
	}
}

// TestReaderUnauthenticatedFollowsState checks that the limits follow the state the commands
// before left: an AUTH lifts them for the very next command of a pipeline, and a RESET puts
// them back, as in Redis (which runs each command before parsing the next).
func TestReaderUnauthenticatedFollowsState(t *testing.T) {
	bigCmd := "*2\r\n$4\r\nECHO\r\n$20000\r\n" + strings.Repeat("x", 20000) + "\r\n"
	in := "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n" + bigCmd + "*1\r\n$5\r\nRESET\r\n" + bigCmd
	for how, r := range readers(in) {
		t.Run(how, func(t *testing.T) {
			r.SetUnauthenticated(true)
			var cmd Command
			for i, want := range []string{"AUTH", "ECHO", "RESET"} {
				if err := r.Read(&cmd); err != nil {
					t.Fatalf("command %d: %v", i, err)
				}
				if got := string(cmd.Args[0]); got != want {
					t.Fatalf("command %d is %q, want %q", i, got, want)
				}
				switch want {
				case "AUTH":
					r.SetUnauthenticated(false)
				case "RESET":
					r.SetUnauthenticated(true)
				}
			}
			err := r.Read(&cmd)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Msg != "unauthenticated bulk length" {
				t.Fatalf("after RESET: got %v, want unauthenticated bulk length", err)
			}
		})
	}
}

// TestReaderShrinkDropsBigBuffer: once a big command is consumed, Shrink gives the memory
// back (an idle session must not pin its biggest command), and keeps a buffer in use.
func TestReaderShrinkDropsBigBuffer(t *testing.T) {
	bigCmd := "*2\r\n$4\r\nECHO\r\n$1000000\r\n" + strings.Repeat("x", 1000000) + "\r\n"
	r := NewReader(strings.NewReader(bigCmd+"*1\r\n$4\r\nPI"), 4096)
	var cmd Command
	if err := r.Read(&cmd); err != nil {
		t.Fatal(err)
	}
	if !r.Big() {
		t.Fatalf("buffer %d bytes after a 1 MB command, want grown", len(r.buf))
	}
	if r.Shrink() {
		t.Fatal("Shrink dropped a buffer that holds an incomplete command")
	}
	if ok, err := r.TryRead(&cmd); ok || err != nil {
		t.Fatal(ok, err)
	}
	r = NewReader(strings.NewReader(bigCmd), 4096)
	if err := r.Read(&cmd); err != nil {
		t.Fatal(err)
	}
	if !r.Shrink() || len(r.buf) != 4096 || r.Big() {
		t.Fatalf("buffer %d bytes after Shrink, want 4096", len(r.buf))
	}
}

// TestReaderGrowsToTheFrame: a big command of many small arguments ends in a buffer of about
// its size (the elements so far predict the rest), not up to twice it as by doubling; and a
// count the client merely declares never makes the buffer outgrow twice the bytes that came.
func TestReaderGrowsToTheFrame(t *testing.T) {
	var b strings.Builder
	const n = 80_000
	fmt.Fprintf(&b, "*%d\r\n$3\r\nDEL\r\n", n+1)
	for i := range n {
		fmt.Fprintf(&b, "$10\r\nkey:%06d\r\n", i)
	}
	frame := b.String() // 1.36 MB: doubling from 4 KiB would end at 2 MiB
	r := NewReader(strings.NewReader(frame), 4096)
	var cmd Command
	if err := r.Read(&cmd); err != nil || len(cmd.Args) != n+1 {
		t.Fatalf("%d args, %v", len(cmd.Args), err)
	}
	if got, max := len(r.buf), len(frame)+len(frame)/4; got > max {
		t.Fatalf("buffer %d bytes for a %d-byte command, want at most %d", got, len(frame), max)
	}
	if cap(cmd.Args) != n+1 {
		t.Fatalf("Args capacity %d for %d arguments", cap(cmd.Args), n+1)
	}

	// A million elements declared, one small one sent, then a big one arriving.
	head := "*1000000\r\n$3\r\nabc\r\n$2000000\r\n"
	r = NewReader(&chunkReader{chunks: []string{head, strings.Repeat("x", 1<<20)}}, 4096)
	for range 20 {
		if ok, err := r.TryRead(&cmd); ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := r.fill(); err != nil {
			break
		}
		if len(r.buf) > 2*max(r.w, 4096) {
			t.Fatalf("buffer %d bytes for %d bytes received", len(r.buf), r.w)
		}
	}
}

// TestReaderUnauthenticatedShrinks: the buffer of a client that has not authenticated goes
// back to its initial size once a command that made it grow is consumed, so that many idle
// unauthenticated connections hold a small buffer each, not up to 256 KiB.
func TestReaderUnauthenticatedShrinks(t *testing.T) {
	cmd10 := "*10\r\n" + strings.Repeat("$16384\r\n"+strings.Repeat("a", 16384)+"\r\n", 10)
	r := NewReader(strings.NewReader(cmd10), 4096)
	r.SetUnauthenticated(true)
	var cmd Command
	if err := r.Read(&cmd); err != nil {
		t.Fatal(err)
	}
	if !r.Big() || !r.Shrink() || len(r.buf) != 4096 {
		t.Fatalf("buffer %d bytes after Shrink, want 4096", len(r.buf))
	}
	// Authenticated, the same buffer (under 256 KiB) is kept for the next command.
	r = NewReader(strings.NewReader(cmd10), 4096)
	if err := r.Read(&cmd); err != nil {
		t.Fatal(err)
	}
	if r.Big() || r.Shrink() {
		t.Fatalf("buffer of %d bytes dropped for an authenticated client", len(r.buf))
	}
}

// FuzzReaderUnauthenticated: whatever a client that has not authenticated sends, no RESP
// command of more than MaxUnauthArgs elements or with a bulk of more than MaxUnauthBulkLen
// bytes comes out, and the outcome does not depend on how the input is split into reads.
func FuzzReaderUnauthenticated(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*11\r\n"))
	f.Add([]byte("*2\r\n$4\r\nECHO\r\n$16385\r\n"))
	f.Add([]byte("*0\r\n*-1\r\nPING\r\n*10\r\n$1\r\na\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func(rd io.Reader, size int) (cmds []Command, err error) {
			r := NewReader(rd, size)
			r.SetUnauthenticated(true)
			for {
				var cmd Command
				if err = r.Read(&cmd); err != nil {
					return cmds, err
				}
				cmd.Raw = bytes.Clone(cmd.Raw)
				for i, a := range cmd.Args {
					cmd.Args[i] = bytes.Clone(a)
				}
				cmds = append(cmds, cmd)
			}
		}
		cmds, err := read(bytes.NewReader(in), 4096)
		cmds1, err1 := read(&oneByteReader{b: in}, 16)
		var pe, pe1 *ProtocolError
		if len(cmds) != len(cmds1) || errors.As(err, &pe) != errors.As(err1, &pe1) || (pe != nil && pe.Msg != pe1.Msg) {
			t.Fatalf("whole read: %d cmds, %v; byte-at-a-time: %d, %v", len(cmds), err, len(cmds1), err1)
		}
		for _, c := range cmds {
			if c.Raw == nil {
				continue // inline: bounded by MaxInlineLen, not limited further (as in Redis)
			}
			if len(c.Args) > MaxUnauthArgs {
				t.Fatalf("%d elements returned before authentication", len(c.Args))
			}
			for _, a := range c.Args {
				if len(a) > MaxUnauthBulkLen {
					t.Fatalf("a %d-byte bulk returned before authentication", len(a))
				}
			}
		}
	})
}
