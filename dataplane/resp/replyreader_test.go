package resp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReplyReader reads frames split at every byte and larger than the first buffer, then
// reports the end of input and a malformed reply.
func TestReplyReader(t *testing.T) {
	big := strings.Repeat("x", 3000)
	in := "+OK\r\n*2\r\n$3\r\nfoo\r\n:1\r\n$3000\r\n" + big + "\r\n-ERR no\r\n"
	rr := NewReplyReader(iotest.OneByteReader(strings.NewReader(in)), 8)
	want := []string{"+OK\r\n", "*2\r\n$3\r\nfoo\r\n:1\r\n", "$3000\r\n" + big + "\r\n", "-ERR no\r\n"}
	for i, w := range want {
		f, err := rr.Next()
		if err != nil || string(f) != w {
			t.Fatalf("frame %d = %.40q, %v; want %.40q", i, f, err, w)
		}
		rr.Shrink(1024, 8)
	}
	if _, err := rr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	if _, err := NewReplyReader(strings.NewReader("?bad\r\n"), 8).Next(); err == nil {
		t.Fatal("a malformed reply was accepted")
	}
}
