package resp

import (
	"bytes"
	"testing"
)

var (
	tDouble  = &Shape{Kind: ShapeDouble}
	tPairs   = &Shape{Kind: ShapePairs, Items: []*Shape{nil, tDouble}}
	tMap     = &Shape{Kind: ShapeMap, Fields: map[string]*Shape{"score": tDouble}}
	tSet     = &Shape{Kind: ShapeSet}
	tNullArr = &Shape{NullArray: true}
	tVerb    = &Shape{Kind: ShapeVerbatim}
)

func TestToRESP2(t *testing.T) {
	cases := []struct {
		name, in, want string
		sh             *Shape
	}{
		{"null", "_\r\n", "$-1\r\n", nil},
		{"null array", "_\r\n", "*-1\r\n", tNullArr},
		{"double", ",1.5\r\n", "$3\r\n1.5\r\n", nil},
		{"inf", ",-inf\r\n", "$4\r\n-inf\r\n", nil},
		{"true", "#t\r\n", ":1\r\n", nil},
		{"false", "#f\r\n", ":0\r\n", nil},
		{"big number", "(-12345678901234567890\r\n", "$21\r\n-12345678901234567890\r\n", nil},
		{"verbatim", "=9\r\ntxt:hello\r\n", "$5\r\nhello\r\n", nil},
		{"blob error", "!10\r\nERR a\r\nbad\r\n", "-ERR a  bad\r\n", nil},
		{"map", "%2\r\n+a\r\n,1\r\n$1\r\nb\r\n_\r\n", "*4\r\n+a\r\n$1\r\n1\r\n$1\r\nb\r\n$-1\r\n", nil},
		{"set", "~2\r\n:1\r\n#t\r\n", "*2\r\n:1\r\n:1\r\n", nil},
		{"push", ">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", "*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", nil},
		{"attribute dropped", "|1\r\n+ttl\r\n:3\r\n,2.5\r\n", "$3\r\n2.5\r\n", nil},
		{"nested attribute", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", "*2\r\n:1\r\n:2\r\n", nil},
		{"pairs flattened", "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", tPairs},
		{"not pairs", "*2\r\n$1\r\na\r\n,1\r\n", "*2\r\n$1\r\na\r\n$1\r\n1\r\n", tPairs},
		{"resp2 unchanged", "*3\r\n$-1\r\n*-1\r\n-ERR x\r\n", "*3\r\n$-1\r\n*-1\r\n-ERR x\r\n", nil},
		{"empty map", "%0\r\n", "*0\r\n", nil},
	}
	for _, c := range cases {
		if got := string(ToRESP2(nil, []byte(c.in), c.sh)); got != c.want {
			t.Errorf("%s: ToRESP2(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestToRESP3(t *testing.T) {
	cases := []struct {
		name, in, want string
		sh             *Shape
	}{
		{"null bulk", "$-1\r\n", "_\r\n", nil},
		{"null array", "*-1\r\n", "_\r\n", nil},
		{"nested nulls", "*2\r\n$-1\r\n*1\r\n*-1\r\n", "*2\r\n_\r\n*1\r\n_\r\n", nil},
		{"double", "$3\r\n1.5\r\n", ",1.5\r\n", tDouble},
		{"double null", "$-1\r\n", "_\r\n", tDouble},
		{"verbatim", "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n", tVerb},
		{"map with field shape", "*4\r\n$5\r\nscore\r\n$1\r\n2\r\n$1\r\nx\r\n$1\r\n2\r\n", "%2\r\n$5\r\nscore\r\n,2\r\n$1\r\nx\r\n$1\r\n2\r\n", tMap},
		{"odd map stays array", "*1\r\n$1\r\na\r\n", "*1\r\n$1\r\na\r\n", tMap},
		{"set", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "~2\r\n$1\r\na\r\n$1\r\nb\r\n", tSet},
		{"pairs", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\ninf\r\n", "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,inf\r\n", tPairs},
		{"error keeps", "-ERR x\r\n", "-ERR x\r\n", tMap},
		{"shape on wrong type", ":1\r\n", ":1\r\n", tMap},
		{"resp3 unchanged", "%1\r\n+a\r\n_\r\n", "%1\r\n+a\r\n_\r\n", tSet},
	}
	for _, c := range cases {
		if got := string(ToRESP3(nil, []byte(c.in), c.sh)); got != c.want {
			t.Errorf("%s: ToRESP3(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// TestConvertNoAllocs: with room in dst, converting allocates nothing (the RESP3 client's
// GET/MGET path).
func TestConvertNoAllocs(t *testing.T) {
	in2 := []byte("*3\r\n$3\r\nabc\r\n$-1\r\n$3\r\n1.5\r\n")
	in3 := []byte("*3\r\n$3\r\nabc\r\n_\r\n,1.5\r\n")
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		dst = ToRESP3(dst[:0], in2, tMap)
		dst = ToRESP2(dst[:0], in3, tPairs)
	}); n != 0 {
		t.Fatalf("%v allocs per conversion", n)
	}
}

// FuzzConvert: whatever a well-formed reply is, both conversions give exactly one well-formed
// reply; the RESP2 one has no RESP3 types, and converting to a protocol twice changes nothing.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		"%2\r\n+a\r\n,1\r\n$1\r\nb\r\n_\r\n", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$-1\r\n",
		"|1\r\n+a\r\n+b\r\n~1\r\n#t\r\n", "=9\r\ntxt:hello\r\n", "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*-1\r\n",
		">2\r\n(1\r\n!3\r\nERR\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	shapes := []*Shape{nil, tDouble, tPairs, tMap, tSet, tNullArr, tVerb, {Kind: ShapeNestedMap}, {Kind: ShapeTuple, Items: []*Shape{tDouble}}}
	f.Fuzz(func(t *testing.T, in []byte, si uint8) {
		n, err := ScanReply(in)
		if err != nil || n == 0 {
			return
		}
		in = in[:n]
		sh := shapes[int(si)%len(shapes)]
		r2 := ToRESP2(nil, in, sh)
		if m, err := ScanReply(r2); err != nil || m != len(r2) {
			t.Fatalf("ToRESP2(%q) = %q: not one reply (%d, %v)", in, r2, m, err)
		}
		for _, b := range []byte("_,#(=!%~>|") {
			if isFrameType(r2, b) {
				t.Fatalf("ToRESP2(%q) = %q has a %q frame", in, r2, b)
			}
		}
		if again := ToRESP2(nil, r2, sh); !bytes.Equal(again, r2) {
			t.Fatalf("ToRESP2 not idempotent on %q: %q then %q", in, r2, again)
		}
		r3 := ToRESP3(nil, in, sh)
		if m, err := ScanReply(r3); err != nil || m != len(r3) {
			t.Fatalf("ToRESP3(%q) = %q: not one reply (%d, %v)", in, r3, m, err)
		}
	})
}

// isFrameType reports whether reply r contains a frame of type b (walking frames, not bytes
// inside payloads).
func isFrameType(r []byte, b byte) bool {
	for pos := 0; pos < len(r); {
		n, _, err := scanElem(r[pos:])
		if err != nil || n == 0 {
			return false
		}
		if r[pos] == b {
			return true
		}
		pos += n
	}
	return false
}
