package command

import (
	"strconv"
	"time"
)

// BlockTimeout reports whether this call of a Block command may block its connection and for
// how long at most: 0 means forever. XREAD and XREADGROUP block only with BLOCK. A timeout
// that does not parse counts as forever: the server refuses the command at once anyway.
func BlockTimeout(s *Spec, args [][]byte) (timeout time.Duration, blocks bool) {
	if s.Policy != Block {
		return 0, false
	}
	switch s.find {
	case findStreams:
		for i := s.from; i+1 < len(args); i++ {
			switch {
			case equalFold(args[i], "streams"):
				return 0, false
			case equalFold(args[i], "block"):
				ms, err := strconv.ParseInt(string(args[i+1]), 10, 64)
				if err != nil || ms <= 0 {
					return 0, true
				}
				return time.Duration(ms) * time.Millisecond, true
			case equalFold(args[i], "count"):
				i++
			}
		}
		return 0, false
	case findNumkeys2: // BLMPOP, BZMPOP: timeout numkeys key ...
		return seconds(args[1]), true
	}
	return seconds(args[len(args)-1]), true // BLPOP key ... timeout, BLMOVE src dst from to timeout
}

// seconds parses a blocking timeout in seconds, as Redis does (a decimal number); 0 when it
// is zero or does not parse.
func seconds(b []byte) time.Duration {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f <= 0 || f > float64(365*24*3600) {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}
