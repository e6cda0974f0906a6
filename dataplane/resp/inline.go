package resp

// splitInline splits an inline command line into arguments appended to args, following Redis
// sdssplitargs exactly: blanks separate arguments; "..." quotes with \n \r \t \b \a \xHH and
// \<any> escapes; '...' quotes where only \' is an escape; a closing quote must be followed by
// a blank or the end; a NUL byte ends the line as it does for the C string Redis parses.
// Unquoting only ever shortens an argument, so it is done in place in line and the arguments
// alias it: no allocation.
func splitInline(line []byte, args [][]byte) ([][]byte, error) {
	p := 0
	for {
		for isSpace(at(line, p)) {
			p++
		}
		if at(line, p) == 0 {
			return args, nil
		}
		start, out := p, p
		inq, insq := false, false
		for done := false; !done; {
			c := at(line, p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(line, p+1) == 'x' && isHex(at(line, p+2)) && isHex(at(line, p+3)):
					line[out] = unhex(line[p+2])<<4 | unhex(line[p+3])
					out++
					p += 3
				case c == '\\' && at(line, p+1) != 0:
					p++
					line[out] = unescape(line[p])
					out++
				case c == '"':
					if n := at(line, p+1); n != 0 && !isSpace(n) {
						return args, errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return args, errUnbalancedQuotes
				default:
					line[out] = c
					out++
				}
			case insq:
				switch {
				case c == '\\' && at(line, p+1) == '\'':
					p++
					line[out] = '\''
					out++
				case c == '\'':
					if n := at(line, p+1); n != 0 && !isSpace(n) {
						return args, errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return args, errUnbalancedQuotes
				default:
					line[out] = c
					out++
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					line[out] = c
					out++
				}
			}
			if at(line, p) != 0 {
				p++
			}
		}
		args = append(args, line[start:out:out])
	}
}

// at returns line[i], or 0 past the end, mirroring the NUL terminator sdssplitargs relies on.
func at(line []byte, i int) byte {
	if i < len(line) {
		return line[i]
	}
	return 0
}

// isSpace is C isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
