package config

import (
	"strconv"
	"strings"
)

// locateKeys maps every key of a TOML document to the line it is written on, so that
// validation errors can point at a line. BurntSushi/toml v1.6 records key positions but does
// not export them, hence this small structural scan.
//
// Paths look like "clusters[0].servers[2]" and "clusters[1].backup_request.enabled": arrays
// of tables and array elements are indexed, table headers map to their own line. The input
// must already have been decoded successfully; on malformed input the result is incomplete
// but the scan still terminates.
func locateKeys(src []byte) map[string]int {
	l := &locator{src: src, line: 1, lines: make(map[string]int), aot: make(map[string]int)}
	table := ""
	for {
		l.skipBlank()
		if l.i >= len(l.src) {
			return l.lines
		}
		start := l.i
		if l.src[l.i] == '[' {
			table = l.header()
		} else {
			l.keyValue(table)
		}
		if l.i == start { // not valid TOML; make progress anyway
			l.i++
		}
	}
}

type locator struct {
	src   []byte
	i     int
	line  int
	lines map[string]int
	aot   map[string]int // array-of-tables path → elements seen so far
}

func (l *locator) peek() byte {
	if l.i < len(l.src) {
		return l.src[l.i]
	}
	return 0
}

// skipSpace skips spaces and tabs only.
func (l *locator) skipSpace() {
	for c := l.peek(); c == ' ' || c == '\t'; c = l.peek() {
		l.i++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (l *locator) skipBlank() {
	for l.i < len(l.src) {
		switch l.src[l.i] {
		case ' ', '\t', '\r':
			l.i++
		case '\n':
			l.line++
			l.i++
		case '#':
			for l.i < len(l.src) && l.src[l.i] != '\n' {
				l.i++
			}
		default:
			return
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the resolved path of the table it opens.
func (l *locator) header() string {
	line := l.line
	l.i++
	double := l.peek() == '['
	if double {
		l.i++
	}
	l.skipSpace()
	segs := l.keyPath()
	l.skipSpace()
	for l.peek() == ']' {
		l.i++
	}
	path := joinPath(l.resolve(segs[:max(len(segs)-1, 0)]), last(segs))
	if double {
		n := l.aot[path]
		l.aot[path] = n + 1
		path = indexPath(path, n)
	}
	l.lines[path] = line
	return path
}

// resolve turns header segments into a path, choosing the latest element of any array of
// tables on the way ([clusters.backup_request] belongs to the last [[clusters]]).
func (l *locator) resolve(segs []string) string {
	p := ""
	for _, s := range segs {
		p = joinPath(p, s)
		if n, ok := l.aot[p]; ok {
			p = indexPath(p, n-1)
		}
	}
	return p
}

// keyValue reads `key = value` inside table.
func (l *locator) keyValue(table string) {
	line := l.line
	segs := l.keyPath()
	if len(segs) == 0 {
		return
	}
	path := joinPath(table, strings.Join(segs, "."))
	l.lines[path] = line
	l.skipSpace()
	if l.peek() != '=' {
		return
	}
	l.i++
	l.skipSpace()
	l.value(path)
}

// keyPath reads a possibly dotted, possibly quoted key.
func (l *locator) keyPath() []string {
	var segs []string
	for {
		l.skipSpace()
		var seg string
		switch c := l.peek(); {
		case c == '"' || c == '\'':
			seg = l.quoted()
		case isBareKeyChar(c):
			start := l.i
			for isBareKeyChar(l.peek()) {
				l.i++
			}
			seg = string(l.src[start:l.i])
		default:
			return segs
		}
		segs = append(segs, seg)
		l.skipSpace()
		if l.peek() != '.' {
			return segs
		}
		l.i++
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value skips one value, recording the lines of array elements and inline-table keys.
func (l *locator) value(path string) {
	switch l.peek() {
	case '"', '\'':
		l.quoted()
	case '[':
		l.i++
		for n := 0; ; n++ {
			l.skipBlank()
			if c := l.peek(); c == ']' || c == 0 {
				l.i++
				return
			}
			start := l.i
			elem := indexPath(path, n)
			l.lines[elem] = l.line
			l.value(elem)
			l.skipBlank()
			if l.peek() == ',' {
				l.i++
			}
			if l.i == start {
				l.i++
			}
		}
	case '{':
		l.i++
		for {
			l.skipBlank()
			if c := l.peek(); c == '}' || c == 0 {
				l.i++
				return
			}
			start := l.i
			l.keyValue(path)
			l.skipBlank()
			if l.peek() == ',' {
				l.i++
			}
			if l.i == start {
				l.i++
			}
		}
	default: // number, boolean, date-time
		for c := l.peek(); c != 0 && c != ',' && c != ']' && c != '}' && c != '\n' && c != '#'; c = l.peek() {
			l.i++
		}
	}
}

// quoted skips a basic, literal or multi-line string and returns its raw content (escapes
// are left as written: keys with escapes are not worth decoding here).
func (l *locator) quoted() string {
	q := l.src[l.i]
	if l.i+2 < len(l.src) && l.src[l.i+1] == q && l.src[l.i+2] == q {
		l.i += 3
		start := l.i
		for l.i < len(l.src) {
			c := l.src[l.i]
			switch {
			case c == '\n':
				l.line++
			case c == '\\' && q == '"':
				l.i++
				if l.peek() == '\n' {
					l.line++
				}
			case c == q && l.i+2 < len(l.src) && l.src[l.i+1] == q && l.src[l.i+2] == q:
				s := string(l.src[start:l.i])
				l.i += 3
				for l.peek() == q { // up to two quotes may close the content
					l.i++
				}
				return s
			}
			l.i++
		}
		return string(l.src[start:])
	}
	l.i++
	start := l.i
	for l.i < len(l.src) {
		c := l.src[l.i]
		if c == '\\' && q == '"' {
			l.i += 2
			continue
		}
		if c == q || c == '\n' {
			s := string(l.src[start:l.i])
			if c == q {
				l.i++
			}
			return s
		}
		l.i++
	}
	return string(l.src[start:])
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func indexPath(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// lineOf returns the line of path, or of its nearest recorded ancestor ("clusters[0].name"
// falls back to the [[clusters]] header when name is missing).
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if n, ok := lines[path]; ok {
			return n
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			return 0
		}
		path = path[:cut]
	}
	return 0
}
