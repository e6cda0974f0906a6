package proxy_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// TestBigSplitThroughProxy sends big MSET, EXISTS, MGET and DEL commands (100,000 keys)
// through the proxy to a ring of three redis-servers and checks, beside their replies, what
// the whole process allocated for each, per argument: reading, splitting, queueing for the
// nodes, reading their replies and merging.
func TestBigSplitThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("big commands")
	}
	e := startEnv(t, envOpts{nodes: 3})
	const n = 100_000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("bs:" + strconv.Itoa(i))
	}
	build := func(name string, withValues bool) []byte {
		args := [][]byte{[]byte(name)}
		for _, k := range keys {
			args = append(args, k)
			if withValues {
				args = append(args, []byte("v"))
			}
		}
		return resp.AppendCommand(nil, args...)
	}
	rc := e.raw(t)
	for _, c := range []struct {
		name   string
		frame  []byte
		nargs  int
		want   string
		values bool // an MGET reply: n values follow
	}{
		{"MSET", build("MSET", true), 2 * n, "+OK", false},
		{"EXISTS", build("EXISTS", false), n, ":" + strconv.Itoa(n), false},
		{"MGET", build("MGET", false), n, "*" + strconv.Itoa(n), true},
		{"DEL", build("DEL", false), n, ":" + strconv.Itoa(n), false},
	} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		if _, err := rc.nc.Write(c.frame); err != nil { // no copy of our own in the count
			t.Fatal(err)
		}
		if got := rc.line(); got != c.want {
			t.Fatalf("%s: got %q, want %q", c.name, got, c.want)
		}
		runtime.ReadMemStats(&m1)
		if c.values {
			for i := range n {
				if l := rc.line(); l != "$1" {
					t.Fatalf("MGET value %d: %q", i, l)
				}
				rc.line()
			}
		}
		perArg := float64(m1.TotalAlloc-m0.TotalAlloc) / float64(c.nargs)
		argBytes := float64(len(c.frame)) / float64(c.nargs)
		bound := 8*argBytes + 64
		t.Logf("%s: %.1f bytes allocated per argument of %.1f bytes (bound %.0f)", c.name, perArg, argBytes, bound)
		if perArg > bound {
			t.Errorf("%s: %.1f bytes allocated per argument of %.1f bytes, bound %.0f", c.name, perArg, argBytes, bound)
		}
	}
}
