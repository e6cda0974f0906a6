package command

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// redactCase is a command and how a display of it must show it; redis says how redis-server
// 7.0 shows it in its SLOWLOG: the same (""), not at all ("-": refused before it ran), or
// in clear where we redact ("clear": Redis stops at a syntax error before it redacts).
type redactCase struct {
	args  []string
	want  string // the args joined by spaces, secrets as (redacted)
	redis string
}

var redactCases = []redactCase{
	// AUTH: every argument, in any case, right or wrong.
	{args: w("AUTH wrongpw"), want: "AUTH (redacted)"},
	{args: w("auth default wrongpw"), want: "auth (redacted) (redacted)"},
	{args: w("AuTh alice alicepw"), want: "AuTh (redacted) (redacted)"},
	{args: w("AUTH a b c"), want: "AUTH (redacted) (redacted) (redacted)", redis: "clear"},
	{args: w("AUTH"), want: "AUTH", redis: "-"},
	// HELLO: the two arguments after AUTH; SETNAME's name and HELLO without AUTH in clear.
	{args: w("HELLO"), want: "HELLO"},
	{args: w("HELLO 3"), want: "HELLO 3"},
	{args: w("hello 2 setname n1"), want: "hello 2 setname n1"},
	{args: w("hello 3 auth alice alicepw"), want: "hello 3 auth (redacted) (redacted)"},
	{args: w("HELLO 3 AUTH alice wrongpw SETNAME n1"), want: "HELLO 3 AUTH (redacted) (redacted) SETNAME n1"},
	{args: w("HeLLo 3 SETNAME n1 aUtH alice wrongpw"), want: "HeLLo 3 SETNAME n1 aUtH (redacted) (redacted)"},
	{args: w("HELLO 3 SETNAME auth AUTH alice pw5"), want: "HELLO 3 SETNAME auth AUTH (redacted) (redacted)"},
	{args: w("HELLO 2 AUTH onlyone"), want: "HELLO 2 AUTH (redacted)", redis: "clear"},
	{args: w("HELLO 4 AUTH alice pw6"), want: "HELLO 4 AUTH (redacted) (redacted)", redis: "clear"},
	{args: w("HELLO x AUTH alice pw7"), want: "HELLO x AUTH (redacted) (redacted)", redis: "clear"},
	{args: w("HELLO AUTH alice pw7b"), want: "HELLO AUTH (redacted) (redacted)", redis: "clear"},
	{args: w("HELLO 3 foo AUTH alice pw8"), want: "HELLO 3 foo AUTH (redacted) (redacted)", redis: "clear"},
	{args: w("HELLO 3 AUTH alice pw9 AUTH bob pw10"), want: "HELLO 3 AUTH (redacted) (redacted) AUTH (redacted) (redacted)", redis: "clear"},
	// MIGRATE: AUTH's password, AUTH2's username and password; KEYS ends the options.
	{args: w("MIGRATE 127.0.0.1 1 k 0 10 AUTH mpw1"), want: "MIGRATE 127.0.0.1 1 k 0 10 AUTH (redacted)"},
	{args: []string{"MIGRATE", "127.0.0.1", "1", "", "0", "10", "COPY", "REPLACE", "AUTH2", "muser", "mpw2", "KEYS", "a", "auth", "c"},
		want: "MIGRATE 127.0.0.1 1  0 10 COPY REPLACE AUTH2 (redacted) (redacted) KEYS a auth c"},
	{args: []string{"migrate", "127.0.0.1", "1", "", "0", "10", "keys", "auth", "auth2", "x"},
		want: "migrate 127.0.0.1 1  0 10 keys auth auth2 x"},
	{args: w("migrate 127.0.0.1 1 k 0 10 auth"), want: "migrate 127.0.0.1 1 k 0 10 auth"},
	{args: w("migrate 127.0.0.1 1 k 0 10 auth2 u"), want: "migrate 127.0.0.1 1 k 0 10 auth2 (redacted)", redis: "clear"},
	{args: w("MIGRATE 127.0.0.1 1 k 0 10 FOO AUTH mpw3"), want: "MIGRATE 127.0.0.1 1 k 0 10 FOO AUTH (redacted)", redis: "clear"},
	{args: w("MIGRATE 127.0.0.1 1 k 0 10 AUTH mpw4 AUTH2 u5 mpw5"), want: "MIGRATE 127.0.0.1 1 k 0 10 AUTH (redacted) AUTH2 (redacted) (redacted)"},
	{args: w("MIGRATE 127.0.0.1 1 auth 0 10"), want: "MIGRATE 127.0.0.1 1 auth 0 10"},
	// ACL SETUSER: the username and every rule; other ACL subcommands in clear.
	{args: w("ACL SETUSER bob on >bobpw1 +@all"), want: "ACL SETUSER (redacted) (redacted) (redacted) (redacted)"},
	{args: w("acl setuser bob2"), want: "acl setuser (redacted)"},
	{args: w("acl SetUser"), want: "acl SetUser", redis: "-"},
	{args: w("ACL GETUSER default"), want: "ACL GETUSER default"},
	{args: w("ACL SETUSR bob >aclpw"), want: "ACL SETUSR (redacted) (redacted)", redis: "-"},
	{args: w("acl whoami"), want: "acl whoami"},
	{args: w("ACL LOG 10"), want: "ACL LOG 10"},
	{args: w("ACL DRYRUN default get x"), want: "ACL DRYRUN default get x"},
	{args: w("ACL DRYRUN default AUTH dry1"), want: "ACL DRYRUN default AUTH (redacted)", redis: "clear"},
	{args: w("acl dryrun default config set requirepass dry2"), want: "acl dryrun default config set requirepass (redacted)", redis: "clear"},
	{args: w("COMMAND GETKEYS MIGRATE 127.0.0.1 1 k 0 10 AUTH gk1"), want: "COMMAND GETKEYS MIGRATE 127.0.0.1 1 k 0 10 AUTH (redacted)", redis: "clear"},
	{args: w("command getkeysandflags set k v"), want: "command getkeysandflags set k v"},
	// CONFIG SET: the values of sensitive settings only, any case, several pairs.
	{args: w("config set MasterAuth ma1 maxmemory 0 requirepass rp1 masteruser mu1"),
		want: "config set MasterAuth (redacted) maxmemory 0 requirepass (redacted) masteruser (redacted)"},
	{args: w("CONFIG SET maxmemory 0 maxmemory-policy noeviction"), want: "CONFIG SET maxmemory 0 maxmemory-policy noeviction"},
	{args: []string{"CONFIG", "SET", "requirepass", ""}, want: "CONFIG SET requirepass (redacted)"},
	{args: w("CONFIG SET requirepass rp2 maxmemory"), want: "CONFIG SET requirepass (redacted) maxmemory", redis: "clear"},
	{args: w("CONFIG SET maxmemory 0 requirepass"), want: "CONFIG SET maxmemory 0 requirepass"},
	{args: w("CONFIG SET tls-key-file-pass tk1 tls-client-key-file-pass tk2"), want: "CONFIG SET tls-key-file-pass (redacted) tls-client-key-file-pass (redacted)", redis: "clear"},
	{args: w("CONFIG GET requirepass"), want: "CONFIG GET requirepass"},
	{args: w("config get maxmemory requirepass"), want: "config get maxmemory requirepass"},
	{args: w("CONFIG SETT requirepass rp3"), want: "CONFIG SETT (redacted) (redacted)", redis: "-"},
	{args: w("CONFIG RESETSTAT"), want: "CONFIG RESETSTAT"},
	// The proxy's own secrets, refused by its CONFIG SET (and unknown to Redis), are hidden
	// all the same.
	{args: w("CONFIG SET cluster.c1.password pp1 cluster.c1.backend_auth pp2 cluster.c1.slowlog-max-len 5"),
		want: "CONFIG SET cluster.c1.password (redacted) cluster.c1.backend_auth (redacted) cluster.c1.slowlog-max-len 5", redis: "clear"},
	{args: w("CONFIG SET token t1 users u1 backend-user bu1 admin-secret s1"), want: "CONFIG SET token (redacted) users (redacted) backend-user (redacted) admin-secret (redacted)", redis: "clear"},
	// Commands with nothing secret.
	{args: w("SET auth requirepass"), want: "SET auth requirepass"},
	{args: w("GET k"), want: "GET k"},
}

func w(s string) []string { return strings.Fields(s) }

func show(args []string) []string {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	s := SecretArgs(b)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if s.Has(i) {
			out[i] = Redacted
		}
	}
	return out
}

// TestSecretArgs: every form of every command with a secret hides exactly its secret
// arguments, in any case; a prefix of a command gets the same answer for what it holds.
func TestSecretArgs(t *testing.T) {
	for _, c := range redactCases {
		full := show(c.args)
		if got := strings.Join(full, " "); got != c.want {
			t.Errorf("%q shown as\n  %q, want\n  %q", c.args, got, c.want)
		}
		for n := 1; n < len(c.args); n++ {
			if got := show(c.args[:n]); !slices.Equal(got, full[:n]) {
				t.Errorf("prefix %q shown as %q, want %q", c.args[:n], got, full[:n])
			}
		}
	}
}

// TestSecretArgsLong: a command longer than the positions kept one by one hides everything
// past them that it might hide, and nothing of a command without secrets.
func TestSecretArgsLong(t *testing.T) {
	acl := [][]byte{[]byte("ACL"), []byte("SETUSER")}
	cfg := [][]byte{[]byte("CONFIG"), []byte("SET")}
	for i := 0; i < 100; i++ {
		acl = append(acl, []byte("+get"))
		cfg = append(cfg, []byte("maxmemory"), []byte("0"))
	}
	cfg = append(cfg, []byte("requirepass"), []byte("late"))
	s := SecretArgs(acl)
	for i := range acl {
		if s.Has(i) != (i >= 2) {
			t.Fatalf("ACL SETUSER with 100 rules: position %d secret = %v", i, s.Has(i))
		}
	}
	if s := SecretArgs(cfg); !s.Has(len(cfg)-1) || s.Has(3) || s.Has(61) {
		t.Fatalf("CONFIG SET with requirepass at %d: secrets %b", len(cfg)-1, s)
	}
	if s := SecretArgs(append([][]byte{[]byte("MSET")}, cfg...)); s != 0 {
		t.Fatalf("MSET: secrets %b", s)
	}
}

// TestSecretArgsAllocatesNothing: the slow log calls it for every slow command.
func TestSecretArgsAllocatesNothing(t *testing.T) {
	args := [][]byte{[]byte("config"), []byte("set"), []byte("cluster.a.requirepass"), []byte("x"), []byte("maxmemory"), []byte("1")}
	if a := testing.AllocsPerRun(100, func() { _ = SecretArgs(args) }); a != 0 {
		t.Fatalf("SecretArgs allocates %v times", a)
	}
}

// TestSecretArgsMatchRedis runs every case on redis-server 7.0 with slowlog-log-slower-than 0
// and reads its SLOWLOG: where Redis logs a case, it redacts the same positions as we do, or
// (cases marked "clear") fewer, never one we leave in clear.
func TestSecretArgsMatchRedis(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "ACL", "SETUSER", "alice", "on", ">alicepw", "+@all", "~*", "&*").Err(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", rdb.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := resp.NewReplyReader(conn, 4096)
	for _, c := range redactCases {
		if err := rdb.SlowLogReset(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// One command on a connection of its own (HELLO switches its protocol), its whole
		// reply read before the slow log is.
		b := make([][]byte, len(c.args))
		for i, a := range c.args {
			b[i] = []byte(a)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(resp.AppendCommand(nil, b...)); err != nil {
			t.Fatal(err)
		}
		if _, err := rd.Next(); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		logs, err := rdb.SlowLogGet(ctx, 1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) == 0 || !strings.EqualFold(logs[0].Args[0], c.args[0]) {
			if c.redis != "-" {
				t.Errorf("%q: not in Redis's slow log: %v", c.args, logs)
			}
			continue
		}
		got := strings.Join(logs[0].Args, " ")
		switch c.redis {
		case "":
			if got != c.want {
				t.Errorf("%q: Redis shows\n  %q, we\n  %q", c.args, got, c.want)
			}
		case "clear":
			if got == c.want {
				t.Errorf("%q: Redis redacts as we do now (%q): drop the mark", c.args, got)
			}
			ours := strings.Split(c.want, " ")
			for i, a := range logs[0].Args {
				if a == Redacted && ours[i] != Redacted {
					t.Errorf("%q: Redis redacts position %d, we do not", c.args, i)
				}
			}
		case "-":
			t.Errorf("%q: Redis logs it as %q", c.args, got)
		}
	}
}

// TestSensitiveSettingsOfRedis goes through every setting of redis-server 7.0 (CONFIG GET *):
// CONFIG SET of it (with an unknown setting after it, so that nothing changes) is redacted by
// Redis exactly where we redact it, except the TLS key passphrases, which Redis 7.0 shows and
// we hide.
func TestSensitiveSettingsOfRedis(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	all, err := rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	beyondRedis := map[string]bool{"tls-key-file-pass": true, "tls-client-key-file-pass": true}
	var hidden []string
	for name := range all {
		if err := rdb.SlowLogReset(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		args := []string{"CONFIG", "SET", name, "v9", "no-such-setting-zz", "x"}
		if err := rdb.Do(ctx, "CONFIG", "SET", name, "v9", "no-such-setting-zz", "x").Err(); err == nil {
			t.Fatalf("%q was accepted", args)
		}
		logs, err := rdb.SlowLogGet(ctx, 1).Result()
		if err != nil || len(logs) != 1 || len(logs[0].Args) != len(args) {
			t.Fatalf("%q: slow log %v, %v", args, logs, err)
		}
		theirs := logs[0].Args[3] == Redacted
		ours := show(args)[3] == Redacted
		if ours {
			hidden = append(hidden, name)
		}
		if theirs != ours && !(ours && beyondRedis[name]) {
			t.Errorf("CONFIG SET %s: Redis redacts its value: %v, we: %v", name, theirs, ours)
		}
	}
	if len(hidden) != 5 {
		t.Errorf("we hide the values of %q, want requirepass, masterauth, masteruser and the two TLS passphrases", hidden)
	}
}
