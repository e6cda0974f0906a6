package resp

import (
	"strconv"
	"strings"
	"testing"
)

func TestWriters(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "command", got: AppendCommand([]byte("x"), []byte("SET"), []byte("k"), []byte("")), want: "x*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"},
		{name: "command_no_args", got: AppendCommand(nil), want: "*0\r\n"},
		{name: "array_header", got: AppendArrayHeader(nil, 12), want: "*12\r\n"},
		{name: "null_array_header", got: AppendArrayHeader(nil, -1), want: "*-1\r\n"},
		{name: "bulk", got: AppendBulk(nil, []byte("a\r\nb")), want: "$4\r\na\r\nb\r\n"},
		{name: "bulk_string", got: AppendBulkString(nil, "héllo"), want: "$6\r\nhéllo\r\n"},
		{name: "null_bulk", got: AppendNullBulk(nil), want: "$-1\r\n"},
		{name: "simple", got: AppendSimple(nil, "OK"), want: "+OK\r\n"},
		{name: "simple_sanitized", got: AppendSimple(nil, "a\r\nb"), want: "+a  b\r\n"},
		{name: "error", got: AppendError(nil, "ERR bad"), want: "-ERR bad\r\n"},
		{name: "error_sanitized", got: AppendError(nil, "ERR \r\n+OK"), want: "-ERR   +OK\r\n"},
		{name: "int", got: AppendInt(nil, -9223372036854775808), want: ":-9223372036854775808\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
			if strings.HasPrefix(tt.want, "x") || tt.name == "array_header" {
				return // not a whole reply on its own
			}
			if n, err := ScanReply(tt.got); n != len(tt.got) || err != nil {
				t.Fatalf("ScanReply(%q) = %d, %v; want %d", tt.got, n, err, len(tt.got))
			}
		})
	}
}

// TestAppendLen: lengths and counts around appendLen's fast paths read back as strconv writes them.
func TestAppendLen(t *testing.T) {
	for _, n := range []int{-100, -10, -1, 0, 1, 9, 10, 11, 42, 99, 100, 101, 999, 1 << 20, 1<<63 - 1} {
		want := "*" + strconv.Itoa(n) + "\r\n"
		if got := string(AppendArrayHeader([]byte{}, n)); got != want {
			t.Errorf("AppendArrayHeader(%d) = %q, want %q", n, got, want)
		}
		if n < 0 || n > 1000 {
			continue
		}
		b := strings.Repeat("x", n)
		if got, want := string(AppendBulk(nil, []byte(b))), "$"+strconv.Itoa(n)+"\r\n"+b+"\r\n"; got != want {
			t.Errorf("AppendBulk(%d bytes) = %q, want %q", n, got, want)
		}
	}
}

func TestWritersAllocs(t *testing.T) {
	dst := make([]byte, 0, 1024)
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendCommand(dst[:0], args...)
		b = AppendError(b, "ERR x\ny")
		b = AppendSimple(b, "OK")
		b = AppendInt(b, 42)
		b = AppendBulkString(b, "s")
		_ = AppendNullBulk(b)
	})
	if allocs != 0 {
		t.Fatalf("writers allocated %v times with room in dst, want 0", allocs)
	}
}
