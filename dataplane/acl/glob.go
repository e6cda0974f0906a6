package acl

// maxNesting bounds the recursion of Match on '*', as Redis 7.0.9+ bounds stringmatchlen's.
const maxNesting = 1000

// Match reports whether key matches the glob pattern with Redis's rules (KEYS, ~pattern):
// '*' any run of bytes, '?' any one byte, "[abc]" / "[^abc]" / "[a-z]" a set of bytes, '\'
// quotes the next byte; case-sensitive. It does not allocate; a '*' is retried only while
// the rest could still match, so the cost stays polynomial.
func Match(pattern, key []byte) bool {
	skip := false
	return match(pattern, key, &skip, 0)
}

// match is Redis's stringmatchlen_impl: skipLonger is set once some '*' ran out of key,
// which tells every enclosing '*' that a longer skip cannot match either.
func match(p, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > maxNesting {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if match(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			matched := false
			for {
				if len(p) >= 2 && p[0] == '\\' {
					p = p[1:]
					if p[0] == s[0] {
						matched = true
					}
				} else if len(p) == 0 {
					// An unterminated set ends the pattern; Redis steps back one byte so
					// that the step past the set below lands on the end.
					break
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					// Redis compares as C chars, signed on the platforms it ships on.
					lo, hi, c := int(int8(p[0])), int(int8(p[2])), int(int8(s[0]))
					if lo > hi {
						lo, hi = hi, lo
					}
					p = p[2:]
					if c >= lo && c <= hi {
						matched = true
					}
				} else if p[0] == s[0] {
					matched = true
				}
				p = p[1:]
			}
			if not {
				matched = !matched
			}
			if !matched {
				return false
			}
			s = s[1:]
			if len(p) == 0 {
				// The unterminated set's end: nothing to step past.
				if len(s) == 0 {
					return true
				}
				return false
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
