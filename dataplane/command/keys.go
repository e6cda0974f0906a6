package command

// keyFinder selects how Keys finds the keys of a command whose key positions depend on its
// arguments. The zero value uses the legacy FirstKey/LastKey/Step range.
type keyFinder uint8

const (
	findRange       keyFinder = iota // FirstKey..LastKey by Step
	findNumkeys1                     // numkeys at args[1], keys follow (ZUNION, SINTERCARD, LMPOP, ...)
	findNumkeys2                     // timeout at args[1], numkeys at args[2], keys follow (BLMPOP, BZMPOP)
	findScript                       // script at args[1], numkeys at args[2] (may be 0), keys follow (EVAL, FCALL, ...)
	findDestNumkeys                  // dest at args[1], numkeys at args[2], keys follow (ZUNIONSTORE, ...)
	findStreams                      // after the STREAMS keyword (searched from args[from]): the first half of the rest
	findSort                         // key at args[1], plus the STORE destination
	findMigrate                      // key at args[3], or the keys after KEYS when args[3] is empty
	findGeoStore                     // key at args[1], plus the STORE/STOREDIST destination (options from args[from])
	findSubcommand                   // key at args[2] for the keyed subcommands in subs
)

// Keys appends to dst the indexes into args (args[0] is the command name) of the key arguments,
// in argument order, and returns dst and true. It does not allocate when dst has room.
//
// When the arguments are malformed — wrong arity, a numkeys that is not a non-negative decimal
// integer or points past the end (or is 0 where Redis needs a key), no STREAMS keyword or an odd
// number of arguments after it, an MSET-style list with a missing value, an unknown subcommand —
// Keys returns dst unchanged and false: the proxy must not forward the command and answers an
// error instead. A well-formed command without keys (PING, EVAL with numkeys 0, OBJECT HELP)
// returns dst unchanged and true.
func (s *Spec) Keys(args [][]byte, dst []int) ([]int, bool) {
	argc := len(args)
	if !s.CheckArity(argc) {
		return dst, false
	}
	switch s.find {
	case findNumkeys1:
		return numkeys(args, dst, 1, 1)
	case findNumkeys2:
		return numkeys(args, dst, 2, 1)
	case findScript:
		return numkeys(args, dst, 2, 0)
	case findDestNumkeys:
		n, ok := parseCount(args[2])
		if !ok || n < 1 || n > argc-3 {
			return dst, false
		}
		dst = append(dst, 1)
		return appendRange(dst, 3, 3+n), true
	case findStreams:
		return streamsKeys(args, dst, s.from)
	case findSort:
		return sortKeys(args, dst)
	case findMigrate:
		return migrateKeys(args, dst)
	case findGeoStore:
		dest := 0
		for i := s.from; i < argc; i++ {
			if (equalFold(args[i], "store") || equalFold(args[i], "storedist")) && i+1 < argc {
				dest = i + 1 // the last one wins, as in Redis
				i++
			}
		}
		dst = append(dst, 1)
		if dest != 0 {
			dst = append(dst, dest)
		}
		return dst, true
	case findSubcommand:
		for _, sc := range s.subs {
			if equalFold(args[1], sc.name) {
				if !sc.keyed {
					return dst, true
				}
				if argc < 3 {
					return dst, false
				}
				return append(dst, 2), true
			}
		}
		return dst, false
	}
	return s.rangeKeys(args, dst)
}

// rangeKeys applies the legacy FirstKey/LastKey/Step specification.
func (s *Spec) rangeKeys(args [][]byte, dst []int) ([]int, bool) {
	if s.FirstKey <= 0 {
		return dst, true
	}
	argc := len(args)
	last := s.LastKey
	if last < 0 {
		last += argc
	}
	if s.FirstKey >= argc || last >= argc || last < s.FirstKey {
		return dst, false
	}
	// MSET k1 v1 k2: a key without its value.
	if s.Step > 1 && (last-s.FirstKey+1)%s.Step != 0 {
		return dst, false
	}
	for i := s.FirstKey; i <= last; i += s.Step {
		dst = append(dst, i)
	}
	return dst, true
}

// numkeys handles "numkeys at args[at], then that many keys"; min is the smallest valid numkeys.
func numkeys(args [][]byte, dst []int, at, min int) ([]int, bool) {
	n, ok := parseCount(args[at])
	if !ok || n < min || n > len(args)-at-1 {
		return dst, false
	}
	return appendRange(dst, at+1, at+1+n), true
}

// streamsKeys handles XREAD/XREADGROUP: after STREAMS come n keys then n IDs.
func streamsKeys(args [][]byte, dst []int, from int) ([]int, bool) {
	for i := from; i < len(args); i++ {
		if !equalFold(args[i], "streams") {
			continue
		}
		rest := len(args) - i - 1
		if rest == 0 || rest%2 != 0 {
			return dst, false
		}
		return appendRange(dst, i+1, i+1+rest/2), true
	}
	return dst, false
}

// sortKeys handles SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE dest]:
// option values are skipped so that a value spelled "store" is not taken for the keyword.
func sortKeys(args [][]byte, dst []int) ([]int, bool) {
	dest := 0
	for i := 2; i < len(args); i++ {
		switch a := args[i]; {
		case equalFold(a, "limit"):
			i += 2
		case equalFold(a, "by"), equalFold(a, "get"):
			i++
		case equalFold(a, "store"):
			if i+1 < len(args) {
				dest = i + 1 // the last STORE wins, as in Redis
			}
			i++
		}
	}
	dst = append(dst, 1)
	if dest != 0 {
		dst = append(dst, dest)
	}
	return dst, true
}

// migrateKeys handles MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
// [AUTH2 user pw] [KEYS key ...].
func migrateKeys(args [][]byte, dst []int) ([]int, bool) {
	for i := 6; i < len(args); i++ {
		a := args[i]
		switch {
		case equalFold(a, "keys"):
			// KEYS needs the single-key argument to be empty, and at least one key.
			if len(args[3]) != 0 || i+1 >= len(args) {
				return dst, false
			}
			return appendRange(dst, i+1, len(args)), true
		case equalFold(a, "auth"):
			i++
		case equalFold(a, "auth2"):
			i += 2
		}
	}
	return append(dst, 3), true
}

// appendRange appends the indexes [from, to).
func appendRange(dst []int, from, to int) []int {
	for i := from; i < to; i++ {
		dst = append(dst, i)
	}
	return dst
}

// parseCount parses a non-negative decimal integer the way Redis does (no sign, no leading
// zeros, no spaces). Values too large to be an argument count are rejected.
func parseCount(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// equalFold reports whether b equals lower, ASCII case-insensitively; lower must be lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// AnyNode reports whether a command that Keys found well formed and without keys may be
// answered by any node that serves keys: a script that declares none (EVAL s 0, FCALL f 0;
// Redis Cluster clients send those to a node of their choice) and a HELP subcommand (OBJECT
// HELP, XINFO HELP, ...), whose reply is every server's. Other keyless commands (MEMORY
// STATS, ...) describe one server, which the proxy cannot pick for the client: refused.
func (s *Spec) AnyNode(args [][]byte) bool {
	switch s.find {
	case findScript:
		return true
	case findSubcommand:
		return len(args) == 2 && equalFold(args[1], "help")
	}
	return false
}
