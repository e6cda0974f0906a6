package proxy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
)

func frameOfArgs(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return resp.AppendCommand(nil, b...)
}

// TestSlowLogTrimsAsRedis: the arguments come back as Redis's SLOWLOG shows them: at most 32,
// the last then saying how many more there were, each at most 128 bytes plus how many more.
func TestSlowLogTrimsAsRedis(t *testing.T) {
	long := strings.Repeat("v", 300)
	many := []string{"DEL"}
	for i := range 40 {
		many = append(many, fmt.Sprintf("k%d", i))
	}
	wantMany := append(append([]string{}, many[:31]...), "... (10 more arguments)")
	cases := []struct {
		args, want []string
	}{
		{[]string{"GET", "k"}, []string{"GET", "k"}},
		{[]string{"SET", "k", long}, []string{"SET", "k", strings.Repeat("v", 128) + "... (172 more bytes)"}},
		{[]string{"SET", "k", ""}, []string{"SET", "k", ""}},
		{many, wantMany},
		{many[:32], many[:32]},
	}
	l := (*slowLog)(nil).resized(2, time.Millisecond)
	for _, c := range cases {
		l.add(frameOfArgs(c.args...), time.Unix(100, 0), 5*time.Millisecond, "127.0.0.1:1")
		got := l.get(1)[0]
		if !reflect.DeepEqual(got.Args, c.want) {
			t.Errorf("args %q stored as %q, want %q", c.args, got.Args, c.want)
		}
		if got.Client != "127.0.0.1:1" || got.Duration != 5*time.Millisecond || !got.Time.Equal(time.Unix(100, 0)) {
			t.Errorf("entry %+v", got)
		}
	}
	// The ring keeps the newest two, ids counting on across a resize.
	if got := l.get(-1); len(got) != 2 || got[0].ID != 4 || got[1].ID != 3 {
		t.Fatalf("ring holds %d entries, ids %v", len(got), got)
	}
	r := l.resized(5, time.Millisecond)
	r.add(frameOfArgs("PING"), time.Now(), time.Millisecond, "c")
	if got := r.get(-1); len(got) != 3 || got[0].ID != 5 || !reflect.DeepEqual(got[1].Args, many[:32]) || !reflect.DeepEqual(got[2].Args, wantMany) {
		t.Fatalf("after resize: %+v", got)
	}
}

// TestSlowLogAddAllocatesNothing: once the ring is full, recording a slow command reuses an
// entry's buffer; under overload every command may be slow.
func TestSlowLogAddAllocatesNothing(t *testing.T) {
	l := (*slowLog)(nil).resized(4, time.Millisecond)
	frame := frameOfArgs("SET", "key:000000012345", strings.Repeat("x", 200))
	now := time.Now()
	for range 8 {
		l.add(frame, now, time.Millisecond, "127.0.0.1:5555")
	}
	if a := testing.AllocsPerRun(200, func() { l.add(frame, now, time.Millisecond, "127.0.0.1:5555") }); a != 0 {
		t.Fatalf("add allocates %v times per slow command", a)
	}
}
