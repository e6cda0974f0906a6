package resp

import "strconv"

// ShapeKind says what a reply element is in RESP3 where RESP2 cannot tell: the same RESP2
// array is a map, a set, pairs or a plain array depending on the command.
type ShapeKind uint8

const (
	// ShapeAuto leaves the element's type as it is; its children (if any) are shaped by Elem.
	ShapeAuto ShapeKind = iota
	// ShapeArray is an array whose every element is shaped by Elem.
	ShapeArray
	// ShapeTuple is an array whose i-th element is shaped by Items[i], the rest by Elem.
	ShapeTuple
	// ShapeMap is a RESP3 map; in RESP2 a flat array of keys and values. Values are shaped by
	// Fields[key] when the key is there, else by Elem.
	ShapeMap
	// ShapeSet is a RESP3 set; in RESP2 an array. Elements are shaped by Elem.
	ShapeSet
	// ShapePairs is, in RESP3, an array of two-element arrays shaped by Items[0] and Items[1];
	// in RESP2 the same elements flat (ZRANGE ... WITHSCORES, HRANDFIELD ... WITHVALUES).
	ShapePairs
	// ShapeNestedMap is a RESP3 map whose RESP2 form is an array of [key, value] arrays
	// (XREAD). Values are shaped by Elem.
	ShapeNestedMap
	// ShapeDouble is a RESP3 double; in RESP2 a bulk string of the same text.
	ShapeDouble
	// ShapeVerbatim is a RESP3 verbatim string of format "txt"; in RESP2 a bulk string.
	ShapeVerbatim
)

// Shape describes a command's reply for conversion between RESP2 and RESP3. A nil *Shape is
// ShapeAuto with no children shaped. A shape that does not fit the reply it meets (a map shape
// on a bulk string, an odd-length array for pairs) is ignored there, so an error or an
// unexpected reply passes unchanged. Shapes are immutable once built.
type Shape struct {
	Kind   ShapeKind
	Elem   *Shape
	Items  []*Shape
	Fields map[string]*Shape
	// NullArray marks a place where RESP2 has a null array (*-1) rather than a null bulk
	// string ($-1); RESP3 has one null for both.
	NullArray bool
}

func (s *Shape) kind() ShapeKind {
	if s == nil {
		return ShapeAuto
	}
	return s.Kind
}

func (s *Shape) elem() *Shape {
	if s == nil {
		return nil
	}
	return s.Elem
}

// item is the shape of the i-th element of a tuple or pair.
func (s *Shape) item(i int) *Shape {
	if s == nil {
		return nil
	}
	if i < len(s.Items) {
		return s.Items[i]
	}
	return s.Elem
}

// field is the shape of the value of key k in a map.
func (s *Shape) field(k []byte) *Shape {
	if s == nil {
		return nil
	}
	if f, ok := s.Fields[string(k)]; ok {
		return f
	}
	return s.Elem
}

var (
	null3      = []byte("_\r\n")
	nullBulk2  = []byte("$-1\r\n")
	nullArray2 = []byte("*-1\r\n")
)

// ToRESP3 appends reply (one complete, well-formed reply, as the backend connection scanned
// it) to dst as Redis answers a RESP3 client: RESP2 nulls become RESP3 nulls everywhere, and
// sh says which arrays are maps, sets or pairs and which strings are doubles or verbatim.
// RESP3 frames in reply pass unchanged, so a reply already in RESP3 is returned as it is.
func ToRESP3(dst, reply []byte, sh *Shape) []byte {
	out, n := up(dst, reply, sh)
	if n != len(reply) { // cannot happen for a scanned reply; never lose bytes if it does
		return append(dst, reply...)
	}
	return out
}

// ToRESP2 appends reply to dst as Redis answers a RESP2 client: maps become flat arrays,
// sets and pushes arrays, doubles and big numbers bulk strings, verbatim strings bulk strings
// of their text, booleans :1 or :0, nulls $-1 (or *-1 where sh says NullArray), blob errors
// simple errors, attributes are dropped, and pairs (sh ShapePairs) are flattened. RESP2
// frames pass unchanged.
func ToRESP2(dst, reply []byte, sh *Shape) []byte {
	out, n := down(dst, reply, sh)
	if n != len(reply) {
		return append(dst, reply...)
	}
	return out
}

// header parses the length or count of the frame at the start of b: its value and the
// header's length. ok is false when b does not start with a well-formed header line.
func header(b []byte) (v int64, n int, ok bool) {
	for i := 1; i+1 < len(b); i++ {
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return 0, 0, false
			}
			v, ok = ParseInt64Arg(b[1:i])
			return v, i + 2, ok
		}
	}
	return 0, 0, false
}

// scalarLen is the length of the non-aggregate frame at the start of b, 0 if malformed.
func scalarLen(b []byte) int {
	n, elems, err := scanElem(b)
	if err != nil || elems != 0 {
		return 0
	}
	return n
}

// up converts one frame of b (and its children) towards RESP3, returning dst and how many
// bytes of b it took; 0 when b is malformed.
func up(dst, b []byte, sh *Shape) ([]byte, int) {
	if len(b) == 0 {
		return dst, 0
	}
	switch b[0] {
	case '$':
		l, h, ok := header(b)
		if !ok {
			return dst, 0
		}
		if l < 0 {
			return append(dst, null3...), h
		}
		end := h + int(l) + 2
		if end > len(b) {
			return dst, 0
		}
		switch sh.kind() {
		case ShapeDouble:
			dst = append(dst, ',')
			dst = append(dst, b[h:end]...)
		case ShapeVerbatim:
			dst = append(dst, '=')
			dst = strconv.AppendInt(dst, l+4, 10)
			dst = append(dst, "\r\ntxt:"...)
			dst = append(dst, b[h:end]...)
		default:
			dst = append(dst, b[:end]...)
		}
		return dst, end
	case '*':
		c, h, ok := header(b)
		if !ok {
			return dst, 0
		}
		if c < 0 {
			return append(dst, null3...), h
		}
		if sh.kind() == ShapeNestedMap {
			if out, n, ok := unnestMap(dst, b, h, int(c), sh); ok {
				return out, n
			}
		}
		return upArray(dst, b, h, int(c), sh)
	case '%', '~', '>', '|':
		n, err := ScanReply(b) // already RESP3
		if err != nil || n == 0 {
			return dst, 0
		}
		return append(dst, b[:n]...), n
	default:
		n := scalarLen(b)
		return append(dst, b[:n]...), n
	}
}

// upArray converts the RESP2 array of c elements whose header is b[:h].
func upArray(dst, b []byte, h, c int, sh *Shape) ([]byte, int) {
	pos := h
	kind := sh.kind()
	if (kind == ShapeMap || kind == ShapePairs) && c%2 != 0 {
		kind = ShapeArray
	}
	switch kind {
	case ShapeMap:
		dst = appendHeader(dst, '%', c/2)
	case ShapeSet:
		dst = appendHeader(dst, '~', c)
	case ShapePairs:
		dst = appendHeader(dst, '*', c/2)
	default:
		dst = appendHeader(dst, '*', c)
	}
	prev := pos // where the previous element (a map's key) starts
	for i := 0; i < c; i++ {
		var esh *Shape
		switch kind {
		case ShapeMap:
			if i%2 == 1 {
				esh = sh.field(payload(b[prev:pos]))
			}
		case ShapePairs:
			if i%2 == 0 {
				dst = append(dst, "*2\r\n"...)
			}
			esh = sh.item(i % 2)
		case ShapeTuple:
			esh = sh.item(i)
		case ShapeArray, ShapeSet, ShapeAuto:
			esh = sh.elem()
		}
		var n int
		dst, n = up(dst, b[pos:], esh)
		if n == 0 {
			return dst, 0
		}
		prev = pos
		pos += n
	}
	return dst, pos
}

// unnestMap turns RESP2's array of [key, value] arrays into a RESP3 map; ok is false, with
// dst unchanged, when an element is not a two-element array.
func unnestMap(dst, b []byte, h, c int, sh *Shape) ([]byte, int, bool) {
	start := len(dst)
	dst = appendHeader(dst, '%', c)
	pos := h
	for i := 0; i < c; i++ {
		if len(b)-pos < 4 || string(b[pos:pos+4]) != "*2\r\n" {
			return dst[:start], 0, false
		}
		pos += 4
		for j := 0; j < 2; j++ {
			var esh *Shape
			if j == 1 {
				esh = sh.elem()
			}
			var m int
			dst, m = up(dst, b[pos:], esh)
			if m == 0 {
				return dst[:start], 0, false
			}
			pos += m
		}
	}
	return dst, pos, true
}

// payload is the text of a bulk or simple string frame; nil for other frames.
func payload(f []byte) []byte {
	if len(f) < 3 {
		return nil
	}
	switch f[0] {
	case '+':
		return f[1 : len(f)-2]
	case '$':
		if _, h, ok := header(f); ok && h <= len(f)-2 {
			return f[h : len(f)-2]
		}
	}
	return nil
}

func appendHeader(dst []byte, t byte, n int) []byte {
	dst = append(dst, t)
	dst = appendLen(dst, n)
	return append(dst, '\r', '\n')
}

// down converts one frame of b (and its children) towards RESP2, returning dst and how many
// bytes of b it took; 0 when b is malformed.
func down(dst, b []byte, sh *Shape) ([]byte, int) {
	if len(b) == 0 {
		return dst, 0
	}
	switch b[0] {
	case '_':
		if len(b) < 3 {
			return dst, 0
		}
		if sh != nil && sh.NullArray {
			return append(dst, nullArray2...), 3
		}
		return append(dst, nullBulk2...), 3
	case ',', '(':
		n := scalarLen(b)
		if n == 0 {
			return dst, 0
		}
		return appendBulkBytes(dst, b[1:n-2]), n
	case '#':
		n := scalarLen(b)
		if n == 0 {
			return dst, 0
		}
		if b[1] == 't' {
			return append(dst, ":1\r\n"...), n
		}
		return append(dst, ":0\r\n"...), n
	case '=':
		n := scalarLen(b)
		_, h, ok := header(b)
		if n == 0 || !ok {
			return dst, 0
		}
		return appendBulkBytes(dst, b[h+4:n-2]), n // the text after "txt:"
	case '!':
		n := scalarLen(b)
		_, h, ok := header(b)
		if n == 0 || !ok {
			return dst, 0
		}
		msg := b[h : n-2]
		dst = append(dst, '-')
		for _, c := range msg { // a simple error is one line
			if c == '\r' || c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
		return append(dst, '\r', '\n'), n
	case '|':
		c, h, ok := header(b)
		if !ok || c < 0 {
			return dst, 0
		}
		pos := h
		for i := int64(0); i < 2*c; i++ { // the attribute's pairs: dropped
			n, err := ScanReply(b[pos:])
			if err != nil || n == 0 {
				return dst, 0
			}
			pos += n
		}
		var n int
		dst, n = down(dst, b[pos:], sh)
		if n == 0 {
			return dst, 0
		}
		return dst, pos + n
	case '%', '~', '>', '*':
		c, h, ok := header(b)
		if !ok {
			return dst, 0
		}
		if c < 0 {
			return append(dst, b[:h]...), h // RESP2 null array
		}
		return downAggregate(dst, b, h, int(c), sh)
	default:
		n := scalarLen(b)
		return append(dst, b[:n]...), n
	}
}

// downAggregate converts the aggregate of c elements (pairs for a map) whose header is b[:h].
func downAggregate(dst, b []byte, h, c int, sh *Shape) ([]byte, int) {
	if b[0] == '*' && sh.kind() == ShapePairs {
		if out, n, ok := flattenPairs(dst, b, h, c, sh); ok {
			return out, n
		}
	}
	n := c
	if b[0] == '%' {
		if sh.kind() == ShapeNestedMap {
			return nestMap(dst, b, h, c, sh)
		}
		n = 2 * c
	}
	dst = appendHeader(dst, '*', n)
	pos := h
	prev := pos
	for i := 0; i < n; i++ {
		var esh *Shape
		switch {
		case b[0] == '%':
			if i%2 == 1 {
				esh = sh.field(payload(b[prev:pos]))
			}
		case sh.kind() == ShapeTuple:
			esh = sh.item(i)
		default:
			esh = sh.elem()
		}
		var m int
		dst, m = down(dst, b[pos:], esh)
		if m == 0 {
			return dst, 0
		}
		prev = pos
		pos += m
	}
	return dst, pos
}

// nestMap turns a RESP3 map into RESP2's array of [key, value] arrays.
func nestMap(dst, b []byte, h, c int, sh *Shape) ([]byte, int) {
	dst = appendHeader(dst, '*', c)
	pos := h
	for i := 0; i < c; i++ {
		dst = append(dst, "*2\r\n"...)
		for j := 0; j < 2; j++ {
			var esh *Shape
			if j == 1 {
				esh = sh.elem()
			}
			var m int
			dst, m = down(dst, b[pos:], esh)
			if m == 0 {
				return dst, 0
			}
			pos += m
		}
	}
	return dst, pos
}

// flattenPairs turns RESP3 pairs (an array of two-element arrays) into RESP2's flat array; ok
// is false, with dst unchanged, when an element is not a two-element array.
func flattenPairs(dst, b []byte, h, c int, sh *Shape) ([]byte, int, bool) {
	start := len(dst)
	dst = appendHeader(dst, '*', 2*c)
	pos := h
	for i := 0; i < c; i++ {
		if len(b)-pos < 4 || string(b[pos:pos+4]) != "*2\r\n" {
			return dst[:start], 0, false
		}
		pos += 4
		for j := 0; j < 2; j++ {
			var m int
			dst, m = down(dst, b[pos:], sh.item(j))
			if m == 0 {
				return dst[:start], 0, false
			}
			pos += m
		}
	}
	return dst, pos, true
}

func appendBulkBytes(dst, b []byte) []byte {
	dst = appendHeader(dst, '$', len(b))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}
