package resp

import (
	"errors"
	"strings"
	"testing"
)

// scanReplyCases are the ScanReply cases, also fed in pieces to ReplyScanner (scanner_test.go).
var scanReplyCases = []struct {
	name    string
	in      string
	want    int // length of the first reply; 0 = incomplete
	wantErr bool
}{
	{name: "simple", in: "+OK\r\n", want: 5},
	{name: "simple_then_more", in: "+OK\r\n+OK\r\n", want: 5},
	{name: "error", in: "-ERR unknown command\r\n", want: 22},
	{name: "moved", in: "-MOVED 3999 127.0.0.1:6381\r\n", want: 28},
	{name: "int", in: ":-42\r\n", want: 6},
	{name: "bulk", in: "$3\r\nfoo\r\n", want: 9},
	{name: "bulk_with_crlf_payload", in: "$2\r\n\r\n\r\n", want: 8},
	{name: "empty_bulk", in: "$0\r\n\r\n", want: 6},
	{name: "null_bulk", in: "$-1\r\n", want: 5},
	{name: "null_bulk_then_more", in: "$-1\r\n+OK\r\n", want: 5},
	{name: "null_bulk_incomplete", in: "$-1\r", want: 0},
	{name: "null_bulk_bad_end", in: "$-1\rx", wantErr: true},
	{name: "negative_bulk_not_null", in: "$-12\r\n", wantErr: true},
	{name: "null_array", in: "*-1\r\n", want: 5},
	{name: "empty_array", in: "*0\r\n", want: 4},
	{name: "array", in: "*2\r\n$1\r\na\r\n$-1\r\n", want: 16},
	{name: "nested", in: "*2\r\n*1\r\n:1\r\n*0\r\n+x\r\n", want: 16},
	{name: "resp3_null", in: "_\r\n", want: 3},
	{name: "resp3_double", in: ",-inf\r\n", want: 7},
	{name: "resp3_bool", in: "#f\r\n", want: 4},
	{name: "resp3_bignum", in: "(3492890328409238509324850943850943825024385\r\n", want: 46},
	{name: "resp3_verbatim", in: "=15\r\ntxt:Some string\r\n", want: 22},
	{name: "resp3_blob_error", in: "!21\r\nSYNTAX invalid syntax\r\n", want: 28},
	{name: "resp3_map", in: "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", want: 20},
	{name: "resp3_set", in: "~1\r\n+a\r\n", want: 8},
	{name: "resp3_push", in: ">2\r\n+message\r\n+hi\r\n", want: 19},
	{name: "resp3_attribute_with_reply", in: "|1\r\n+k\r\n+v\r\n:7\r\n", want: 16},
	{name: "depth_at_limit", in: strings.Repeat("*1\r\n", MaxReplyDepth) + ":1\r\n", want: 4*MaxReplyDepth + 4},
	{name: "incomplete_empty", in: "", want: 0},
	{name: "incomplete_line", in: "+OK", want: 0},
	{name: "incomplete_cr", in: "+OK\r", want: 0},
	{name: "incomplete_bulk", in: "$10\r\nabc", want: 0},
	{name: "incomplete_bulk_no_crlf_yet", in: "$3\r\nabc", want: 0},
	{name: "incomplete_array", in: "*3\r\n:1\r\n:2\r\n", want: 0},
	{name: "incomplete_huge_array", in: "*1000000000\r\n:1\r\n", want: 0},
	{name: "incomplete_attribute_without_reply", in: "|1\r\n+k\r\n+v\r\n", want: 0},
	{name: "bad_type", in: "?x\r\n", wantErr: true},
	{name: "cr_as_type", in: "\r\n", wantErr: true},
	{name: "bad_crlf", in: "+OK\rX", wantErr: true},
	{name: "bad_int", in: ":12a\r\n", wantErr: true},
	{name: "bad_bulk_len", in: "$x\r\n", wantErr: true},
	{name: "negative_bulk_len", in: "$-2\r\n", wantErr: true},
	{name: "null_blob_error", in: "!-1\r\n", wantErr: true},
	{name: "bulk_too_long", in: "$536870913\r\n", wantErr: true},
	{name: "bulk_not_terminated", in: "$3\r\nfooXX", wantErr: true},
	{name: "bad_count", in: "*x\r\n", wantErr: true},
	{name: "null_map", in: "%-1\r\n", wantErr: true},
	{name: "streamed_bulk", in: "$?\r\n;3\r\nabc\r\n;0\r\n", wantErr: true},
	{name: "streamed_array", in: "*?\r\n:1\r\n.\r\n", wantErr: true},
	{name: "bad_null", in: "_x\r\n", wantErr: true},
	{name: "bad_bool", in: "#x\r\n", wantErr: true},
	{name: "bad_bignum", in: "(12x\r\n", wantErr: true},
	{name: "bad_verbatim", in: "=3\r\ntxt\r\n", wantErr: true},
	{name: "too_deep", in: strings.Repeat("*1\r\n", MaxReplyDepth+1) + ":1\r\n", wantErr: true},
	{name: "long_length_line", in: "$" + strings.Repeat("1", 40), wantErr: true},
	{name: "error_inside_array", in: "*2\r\n:1\r\n:x\r\n", wantErr: true},
}

func TestScanReply(t *testing.T) {
	for _, tt := range scanReplyCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ScanReply([]byte(tt.in))
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrMalformedReply) {
					t.Fatalf("ScanReply(%q) = %d, %v; want ErrMalformedReply", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ScanReply(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestScanReplyAllocs(t *testing.T) {
	in := []byte("*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n%1\r\n+a\r\n#t\r\n")
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := ScanReply(in); n != len(in) || err != nil {
			t.Fatalf("ScanReply = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ScanReply allocated %v times, want 0", allocs)
	}
}

func TestScanReplyLongBulkIsLinear(t *testing.T) {
	// A 64 MiB bulk scanned 1000 times must take microseconds, not a pass over the payload.
	b := make([]byte, 0, 64<<20+32)
	b = AppendBulk(b, make([]byte, 64<<20))
	for range 1000 {
		if n, err := ScanReply(b); n != len(b) || err != nil {
			t.Fatalf("ScanReply = %d, %v; want %d", n, err, len(b))
		}
	}
}

func TestArrayElems(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "mget", in: "*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n", want: []string{"$1\r\na\r\n", "$-1\r\n", "$0\r\n\r\n"}},
		{name: "nested", in: "*2\r\n*1\r\n:1\r\n+x\r\n", want: []string{"*1\r\n:1\r\n", "+x\r\n"}},
		{name: "empty", in: "*0\r\n", want: []string{}},
		{name: "not_array", in: "$1\r\na\r\n", wantErr: true},
		{name: "null_array", in: "*-1\r\n", wantErr: true},
		{name: "incomplete", in: "*2\r\n:1\r\n", wantErr: true},
		{name: "trailing", in: "*1\r\n:1\r\n:2\r\n", wantErr: true},
		{name: "malformed_elem", in: "*1\r\n:x\r\n", wantErr: true},
		{name: "empty_input", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := [][]byte{[]byte("keep")}
			got, err := ArrayElems([]byte(tt.in), dst)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformedReply) {
					t.Fatalf("err = %v, want ErrMalformedReply", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ArrayElems: %v", err)
			}
			if len(got) != len(tt.want)+1 || string(got[0]) != "keep" {
				t.Fatalf("got %q, want dst kept plus %q", got, tt.want)
			}
			for i, w := range tt.want {
				if string(got[i+1]) != w {
					t.Errorf("elem %d = %q, want %q", i, got[i+1], w)
				}
			}
		})
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "zero", in: ":0\r\n", want: 0},
		{name: "negative", in: ":-15\r\n", want: -15},
		{name: "max", in: ":9223372036854775807\r\n", want: 1<<63 - 1},
		{name: "not_int_type", in: "+1\r\n", wantErr: true},
		{name: "no_crlf", in: ":1", wantErr: true},
		{name: "empty_number", in: ":\r\n", wantErr: true},
		{name: "garbage", in: ":1x\r\n", wantErr: true},
		{name: "trailing", in: ":1\r\n:2\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInt([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseInt(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIsError(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"-ERR x\r\n", true}, {"!3\r\nERR\r\n", true}, {"+OK\r\n", false}, {"$-1\r\n", false}, {"", false},
	}
	for _, tt := range tests {
		if got := IsError([]byte(tt.in)); got != tt.want {
			t.Errorf("IsError(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBulkPayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"$3\r\nfoo\r\n", "foo", true},
		{"$0\r\n\r\n", "", true},
		{"$5\r\na\r\nbc\r\n", "a\r\nbc", true},
		{"$-1\r\n", "", false},
		{"$3\r\nfo\r\n", "", false},
		{"$3\r\nfooo\r\n", "", false},
		{"$3\r\nfoo\r\n+OK\r\n", "", false},
		{"$3\rxfoo\r\n", "", false},
		{"$3\r\nfooxx", "", false},
		{"+foo\r\n", "", false},
		{"$x\r\nfoo\r\n", "", false},
		{"$99999999999999999999\r\n\r\n", "", false},
		{"$", "", false},
		{"", "", false},
	} {
		got := BulkPayload([]byte(tc.in))
		if (got != nil) != tc.ok || string(got) != tc.want {
			t.Errorf("BulkPayload(%q) = %q (nil %v), want %q (ok %v)", tc.in, got, got == nil, tc.want, tc.ok)
		}
	}
}
