package proxy_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// secretCommands are commands that carry secrets, each with the secret substrings that must
// never show, sent by a client the proxy authenticated (some are refused, all are logged).
var secretCommands = []struct {
	args    []string
	secrets []string
	want    string // as SLOWLOG GET shows it
}{
	{[]string{"AUTH", "wrongpw1"}, []string{"wrongpw1"}, "AUTH (redacted)"},
	{[]string{"AUTH", "defpw"}, []string{"defpw"}, "AUTH (redacted)"},
	{[]string{"auth", "alice", "alicepw"}, []string{"alicepw"}, "auth (redacted) (redacted)"},
	{[]string{"AUTH", "alice", "wrongpw2", "extra3"}, []string{"wrongpw2", "extra3"}, "AUTH (redacted) (redacted) (redacted)"},
	{[]string{"HELLO", "3", "AUTH", "alice", "wrongpw4", "SETNAME", "n1"}, []string{"wrongpw4"}, "HELLO 3 AUTH (redacted) (redacted) SETNAME n1"},
	{[]string{"hello", "4", "auth", "alice", "wrongpw5"}, []string{"wrongpw5"}, "hello 4 auth (redacted) (redacted)"},
	{[]string{"HELLO", "2", "AUTH", "alice", "alicepw"}, []string{"alicepw"}, "HELLO 2 AUTH (redacted) (redacted)"},
	{[]string{"MIGRATE", "127.0.0.1", "1", "", "0", "10", "COPY", "AUTH2", "muser", "migpw6", "KEYS", "a"}, []string{"migpw6", "muser"}, "MIGRATE 127.0.0.1 1  0 10 COPY AUTH2 (redacted) (redacted) KEYS a"},
	{[]string{"MIGRATE", "127.0.0.1", "1", "k", "0", "10", "AUTH", "migpw7"}, []string{"migpw7"}, "MIGRATE 127.0.0.1 1 k 0 10 AUTH (redacted)"},
	{[]string{"ACL", "SETUSER", "bob", "on", ">aclpw8"}, []string{"aclpw8"}, "ACL SETUSER (redacted) (redacted) (redacted)"},
	{[]string{"CONFIG", "SET", "requirepass", "cfgpw9", "cluster.test.slowlog-max-len", "100"}, []string{"cfgpw9"}, "CONFIG SET requirepass (redacted) cluster.test.slowlog-max-len 100"},
	{[]string{"CONFIG", "SET", "masterauth", "cfgpw10"}, []string{"cfgpw10"}, "CONFIG SET masterauth (redacted)"},
	{[]string{"cfgpw11-typed-as-a-command"}, []string{"cfgpw11"}, ""},
}

// TestSlowLogHidesSecrets: a client turns the slow log on for everyone (threshold 0, as any
// client may); another one's AUTH, HELLO AUTH, MIGRATE AUTH/AUTH2, ACL SETUSER and CONFIG SET
// of passwords, right and wrong, show "(redacted)" where Redis puts it in SLOWLOG GET (the
// admin API's view: test/e2e TestSecretsNeverSurface); the proxy's replies do not echo them.
func TestSlowLogHidesSecrets(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, users: map[string]string{"default": "defpw", "alice": "alicepw"}})
	if err := e.client.Do(ctx, "CONFIG", "SET", "cluster.test.slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	c := redistest.DialFrames(t, e.addr)
	c.Do("AUTH", "defpw")
	var replies []byte
	for _, sc := range secretCommands {
		replies = append(replies, c.Do(sc.args...)...)
	}
	entries, err := e.client.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	var all strings.Builder
	for _, en := range entries {
		shown[strings.Join(en.Args, " ")] = true
		fmt.Fprintln(&all, en.Args)
	}
	for _, sc := range secretCommands {
		if sc.want != "" && !shown[sc.want] {
			t.Errorf("%q not in SLOWLOG as %q:\n%s", sc.args, sc.want, all.String())
		}
	}
	for _, sc := range secretCommands {
		for _, s := range sc.secrets {
			if strings.Contains(all.String(), s) {
				t.Errorf("the slow log shows %q:\n%s", s, all.String())
			}
			// An unknown command (want "") is echoed to its own sender, as Redis does.
			if sc.want != "" && bytes.Contains(replies, []byte(s)) {
				t.Errorf("a reply echoes %q:\n%q", s, replies)
			}
		}
	}
}

// TestUnknownCommandEchoesAsRedis: the error for an unknown command names it and its first
// arguments exactly as redis-server does (128 bytes of arguments in all, each cut at a NUL),
// however many and however long they are.
func TestUnknownCommandEchoesAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	many := []string{"NOSUCH"}
	for i := range 100000 {
		many = append(many, fmt.Sprintf("a%d", i))
	}
	cases := [][]string{
		{"NOSUCH"},
		{"NOSUCH", "a", "b", "c"},
		{"NOSUCH", strings.Repeat("a", 69), strings.Repeat("b", 120), "cccc"},
		{"NOSUCH", strings.Repeat("x", 200), "y"},
		{"NOSUCH", strings.Repeat("x", 125), "y", "z"},
		{"NOSUCH", "ab\x00cd", "ef"},
		{strings.Repeat("F", 200), "a"},
		{"NO\x00SUCH", "a"},
		many,
	}
	p := redistest.DialFrames(t, e.addr)
	r := redistest.DialFrames(t, e.servers[0].Addr)
	for _, c := range cases {
		got, want := p.Do(c...), r.Do(c...)
		if !bytes.Equal(got, want) {
			t.Errorf("%.60q...: proxy says\n  %q, Redis\n  %q", c, got, want)
		}
	}
}
