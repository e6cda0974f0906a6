package resp

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/race"
)

// stepReader gives its input in the chunks a test sets between reads (ErrWouldBlock when it
// has none), as a non-blocking socket does.
type stepReader struct{ next []byte }

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.next) == 0 {
		return 0, ErrWouldBlock
	}
	n := copy(p, s.next)
	s.next = s.next[n:]
	return n, nil
}

// nextCommand parses the next command into cmd, reading as a loop session does (TryRead, then
// Fill when none is complete); false once the input has nothing more for now.
func nextCommand(t *testing.T, r *Reader, cmd *Command) bool {
	t.Helper()
	for {
		ok, err := r.TryRead(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return true
		}
		if err := r.Fill(1 << 20); err == ErrWouldBlock {
			return false
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPooledReaderReleasesOnlyWhenEmpty: a pooled Reader parses what a plain one parses,
// whatever the split of its input; Release gives its buffer back only with nothing buffered
// (never a command's first part), cleared of everything reads wrote in it; a Reader with none
// holds none (Size 0) until input comes; a buffer grown for a big command is dropped, never
// pooled.
func TestPooledReaderReleasesOnlyWhenEmpty(t *testing.T) {
	cmds := [][]string{{"SET", "k1", "v1"}, {"GET", "k1"}, {"PING"}, {"SET", "k2", strings.Repeat("x", 300)}}
	var in []byte
	for _, c := range cmds {
		args := make([][]byte, len(c))
		for i, a := range c {
			args[i] = []byte(a)
		}
		in = AppendCommand(in, args...)
	}
	in = append(in, "ECHO inline\r\n"...)
	want := append(cmds, []string{"ECHO", "inline"})
	for cut := 1; cut < len(in); cut++ {
		src := &stepReader{}
		r := NewPooledReader(src)
		if r.Size() != 0 {
			t.Fatalf("a new pooled Reader holds %d bytes", r.Size())
		}
		var got [][]string
		var cmd Command
		for _, chunk := range [][]byte{in[:cut], in[cut:]} {
			src.next = chunk
			for nextCommand(t, r, &cmd) {
				var c []string
				for _, a := range cmd.Args {
					c = append(c, string(a))
				}
				got = append(got, c)
			}
			buf, hw, partial := r.buf, r.hw, r.Buffered() > 0
			if released := r.Release(); released == partial {
				t.Fatalf("cut %d: Release = %v with %d bytes buffered", cut, released, r.Buffered())
			}
			if partial {
				continue
			}
			if r.Size() != 0 {
				t.Fatalf("cut %d: %d bytes held after Release", cut, r.Size())
			}
			if hw == 0 || !bytes.Equal(buf[:hw], make([]byte, hw)) {
				t.Fatalf("cut %d: released buffer not cleared (%d bytes written)", cut, hw)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("cut %d: %d commands, want %d", cut, len(got), len(want))
		}
		for i := range want {
			if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
				t.Fatalf("cut %d: command %d = %q, want %q", cut, i, got[i], want[i])
			}
		}
	}

	// A big command grows the buffer past the pooled size; once consumed, Shrink drops it and
	// the Reader holds none, and Release pools nothing bigger.
	big := AppendCommand(nil, []byte("SET"), []byte("k"), bytes.Repeat([]byte("v"), shrinkLen))
	r := NewPooledReader(&chunkReader{chunks: []string{string(big)}})
	var cmd Command
	if err := r.Read(&cmd); err != nil || len(cmd.Args) != 3 {
		t.Fatalf("big command: %v", err)
	}
	if r.Size() <= PooledSize || !r.Big() || !r.Shrink() || r.Size() != 0 {
		t.Fatalf("after a big command: Size %d, want it dropped by Shrink to none", r.Size())
	}
	if err := r.Read(&cmd); err != io.EOF {
		t.Fatalf("Read at the end: %v, want EOF", err)
	}
}

// TestPooledReaderSteadyStateAllocs: reading a command into a pooled Reader and releasing its
// buffer allocates nothing once the pool has one.
func TestPooledReaderSteadyStateAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector has sync.Pool drop items at random")
	}
	one := AppendCommand(nil, []byte("GET"), []byte("key:000000001"))
	src := &stepReader{}
	r := NewPooledReader(src)
	var cmd Command
	step := func() {
		src.next = one
		if err := r.Fill(1 << 20); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.TryRead(&cmd); !ok || err != nil {
			t.Fatalf("TryRead = %v, %v", ok, err)
		}
		if !r.Release() {
			t.Fatal("not released")
		}
	}
	step()
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("%v allocations per command, want 0", allocs)
	}
}

// TestPooledReaderKeepsGrownBuffer: a buffer that grew for commands bigger than PooledSize
// (a client of 16 KiB SETs) stays across Release, so the next big command neither allocates
// nor copies its way up from PooledSize again (the first version pooled and regrew it: ~56
// KiB allocated and copied per 16 KiB SET, 3.8x predixy's CPU).
func TestPooledReaderKeepsGrownBuffer(t *testing.T) {
	one := AppendCommand(nil, []byte("SET"), []byte("k"), bytes.Repeat([]byte("v"), 16<<10))
	src := &stepReader{}
	r := NewPooledReader(src)
	var cmd Command
	step := func() {
		src.next = one
		if !nextCommand(t, r, &cmd) {
			t.Fatal("no command")
		}
		if r.Release() {
			t.Fatal("a grown buffer was released")
		}
	}
	step()
	grown := r.Size()
	if grown <= PooledSize {
		t.Fatalf("buffer %d bytes after a 16 KiB command", grown)
	}
	if allocs := testing.AllocsPerRun(100, step); allocs != 0 {
		t.Fatalf("%v allocations per 16 KiB command after the first, want 0", allocs)
	}
	if r.Size() != grown {
		t.Fatalf("buffer %d bytes, was %d", r.Size(), grown)
	}
}
