package slowlog

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
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
	l := (*Log)(nil).Resized(2, time.Millisecond)
	for _, c := range cases {
		l.Add(frameOfArgs(c.args...), time.Unix(100, 0), 5*time.Millisecond, "127.0.0.1:1")
		got := l.Get(1)[0]
		if !reflect.DeepEqual(got.Args, c.want) {
			t.Errorf("args %q stored as %q, want %q", c.args, got.Args, c.want)
		}
		if got.Client != "127.0.0.1:1" || got.Duration != 5*time.Millisecond || !got.Time.Equal(time.Unix(100, 0)) {
			t.Errorf("entry %+v", got)
		}
	}
	// The ring keeps the newest two, ids counting on across a resize.
	if got := l.Get(-1); len(got) != 2 || got[0].ID != 4 || got[1].ID != 3 {
		t.Fatalf("ring holds %d entries, ids %v", len(got), got)
	}
	r := l.Resized(5, time.Millisecond)
	r.Add(frameOfArgs("PING"), time.Now(), time.Millisecond, "c")
	if got := r.Get(-1); len(got) != 3 || got[0].ID != 5 || !reflect.DeepEqual(got[1].Args, many[:32]) || !reflect.DeepEqual(got[2].Args, wantMany) {
		t.Fatalf("after resize: %+v", got)
	}
}

// TestSlowLogAddAllocatesNothing: once the ring is full, recording a slow command reuses an
// entry's buffer; under overload every command may be slow.
func TestSlowLogAddAllocatesNothing(t *testing.T) {
	l := (*Log)(nil).Resized(4, time.Millisecond)
	frame := frameOfArgs("SET", "key:000000012345", strings.Repeat("x", 200))
	now := time.Now()
	for range 8 {
		l.Add(frame, now, time.Millisecond, "127.0.0.1:5555")
	}
	if a := testing.AllocsPerRun(200, func() { l.Add(frame, now, time.Millisecond, "127.0.0.1:5555") }); a != 0 {
		t.Fatalf("add allocates %v times per slow command", a)
	}
	// Nor when it redacts, or skips an unknown command.
	for _, f := range [][]byte{
		frameOfArgs("HELLO", "3", "AUTH", "user", "password", "SETNAME", "n"),
		frameOfArgs("config", "set", "cluster.x.requirepass", "pw", "maxmemory", "0"),
		frameOfArgs("nosuchcommand", "pw"),
	} {
		if a := testing.AllocsPerRun(200, func() { l.Add(f, now, time.Millisecond, "127.0.0.1:5555") }); a != 0 {
			t.Fatalf("add of %q allocates %v times", f, a)
		}
	}
}

// TestSlowLogRedactsSecrets: the secret arguments of AUTH, HELLO, MIGRATE, ACL SETUSER and
// CONFIG SET are stored as "(redacted)" (positions as Redis 7.0's SLOWLOG; the command's own
// table is dataplane/command's TestSecretArgs), also past the 32 kept arguments and the 128
// kept bytes of one.
func TestSlowLogRedactsSecrets(t *testing.T) {
	long := "pw" + strings.Repeat("x", 300)
	rules := []string{"ACL", "SETUSER", "bob"}
	for i := range 40 {
		rules = append(rules, fmt.Sprintf(">rulepw%d", i))
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"AUTH", "wrongpw"}, "AUTH (redacted)"},
		{[]string{"auth", "alice", long}, "auth (redacted) (redacted)"},
		{[]string{"HELLO", "3", "AUTH", "alice", "hellopw", "SETNAME", "n"}, "HELLO 3 AUTH (redacted) (redacted) SETNAME n"},
		{[]string{"hello", "2"}, "hello 2"},
		{[]string{"MIGRATE", "h", "1", "", "0", "10", "AUTH2", "u", "migpw", "KEYS", "a", "b"}, "MIGRATE h 1  0 10 AUTH2 (redacted) (redacted) KEYS a b"},
		{[]string{"CONFIG", "SET", "requirepass", "cfgpw", "maxmemory", "0"}, "CONFIG SET requirepass (redacted) maxmemory 0"},
		{rules, "ACL SETUSER" + strings.Repeat(" (redacted)", 29) + " ... (12 more arguments)"},
	}
	l := (*Log)(nil).Resized(len(cases), 0)
	for _, c := range cases {
		l.Add(frameOfArgs(c.args...), time.Now(), time.Millisecond, "c")
		e := l.Get(1)[0]
		if got := strings.Join(e.Args, " "); got != c.want {
			t.Errorf("%q stored as\n  %q, want\n  %q", c.args, got, c.want)
		}
	}
	all := fmt.Sprint(l.Get(-1))
	for _, secret := range []string{"wrongpw", "pwxxx", "alice", "hellopw", "migpw", "cfgpw", "rulepw"} {
		if strings.Contains(all, secret) {
			t.Errorf("the slow log holds %q: %s", secret, all)
			break
		}
	}
}

// TestSlowLogSkipsUnknownCommands: as in Redis, a command the proxy does not know is not
// logged: a client that sends its password as a command (an inline line typed at the wrong
// prompt) must not show it to everyone who reads SLOWLOG.
func TestSlowLogSkipsUnknownCommands(t *testing.T) {
	l := (*Log)(nil).Resized(4, 0)
	l.Add(frameOfArgs("hunter2"), time.Now(), time.Millisecond, "c")
	l.Add(frameOfArgs("AUTHH", "hunter2"), time.Now(), time.Millisecond, "c")
	l.Add([]byte("not a frame"), time.Now(), time.Millisecond, "c")
	if n := l.Len(); n != 0 {
		t.Fatalf("%d entries for unknown commands: %v", n, l.Get(-1))
	}
	l.Add(frameOfArgs("get", "k"), time.Now(), time.Millisecond, "c")
	if got := l.Get(-1); len(got) != 1 || strings.Join(got[0].Args, " ") != "get k" {
		t.Fatalf("entries %v, want get k", got)
	}
}

// TestSlowLogEntryBounded: whatever the command's size, an entry keeps at most 32 arguments
// of 128 bytes (and a note of the rest), and the slow log keeps no reference to the command
// itself: after a 64 MiB command, the heap goes back down while the slow log lives.
func TestSlowLogEntryBounded(t *testing.T) {
	l := (*Log)(nil).Resized(2, 0)
	args := [][]byte{[]byte("MSET")}
	for range 1 << 16 {
		args = append(args, bytes.Repeat([]byte("v"), 1<<10))
	}
	frame := resp.AppendCommand(nil, args...)
	args = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l.Add(frame, time.Now(), time.Millisecond, "c")
	frame = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc) + 64<<20; grew > 16<<20 {
		t.Fatalf("the heap still holds %d MiB of a 64 MiB command after it was logged", grew>>20)
	}
	const bound = 32 * (1 + 3 + 2 + slowMaxArgLen + 32 + 2) // a trimmed argument, its note and framing
	for _, r := range l.entries {
		if cap(r.args) > 2*bound {
			t.Fatalf("an entry keeps a %d-byte buffer, want ≤ %d", cap(r.args), 2*bound)
		}
	}
	e := l.Get(1)[0]
	if len(e.Args) != 32 || e.Args[31] != "... (65506 more arguments)" || len(e.Args[1]) != 128+len("... (896 more bytes)") {
		t.Fatalf("entry %d args, last %q, first value %d bytes", len(e.Args), e.Args[31], len(e.Args[1]))
	}
	runtime.KeepAlive(l)
}
