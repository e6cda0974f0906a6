package command

import (
	"strings"
	"testing"
	"time"
)

func TestBlockTimeout(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		timeout time.Duration
		blocks  bool
	}{
		{"blpop seconds", "BLPOP a b 1.5", 1500 * time.Millisecond, true},
		{"blpop forever", "blpop a 0", 0, true},
		{"brpoplpush", "BRPOPLPUSH a b 2", 2 * time.Second, true},
		{"blmove", "BLMOVE a b LEFT RIGHT 3", 3 * time.Second, true},
		{"bzpopmin", "BZPOPMIN z 0.25", 250 * time.Millisecond, true},
		{"blmpop timeout first", "BLMPOP 4 2 a b LEFT", 4 * time.Second, true},
		{"bzmpop", "BZMPOP 0 1 z MIN COUNT 2", 0, true},
		{"bad timeout blocks forever", "BLPOP a x", 0, true},
		{"negative timeout", "BLPOP a -1", 0, true},
		{"xread without block", "XREAD COUNT 2 STREAMS s 0", 0, false},
		{"xread block", "XREAD COUNT 2 BLOCK 300 STREAMS s $", 300 * time.Millisecond, true},
		{"xread block 0", "xread block 0 streams s $", 0, true},
		{"xread stream named block", "XREAD STREAMS block 0", 0, false},
		{"xreadgroup block", "XREADGROUP GROUP g c BLOCK 50 NOACK STREAMS s >", 50 * time.Millisecond, true},
		{"xreadgroup group named block", "XREADGROUP GROUP block block STREAMS s >", 0, false},
		{"not blocking command", "GET a", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args [][]byte
			for _, a := range strings.Fields(tc.cmd) {
				args = append(args, []byte(a))
			}
			spec := Lookup(args[0])
			timeout, blocks := BlockTimeout(spec, args)
			if timeout != tc.timeout || blocks != tc.blocks {
				t.Errorf("BlockTimeout(%q) = %v, %v; want %v, %v", tc.cmd, timeout, blocks, tc.timeout, tc.blocks)
			}
		})
	}
}
