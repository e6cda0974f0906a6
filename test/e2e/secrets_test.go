package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestSecretsNeverSurface: any client may turn the slow log on for everyone (threshold 0);
// then another client's AUTH (wrong and right), HELLO 3 AUTH, MIGRATE AUTH/AUTH2, ACL SETUSER
// and CONFIG SET of passwords show "(redacted)" where redis-server 7.0 puts it, in SLOWLOG GET
// and through the admin API (asterctl, table and JSON), and no secret appears anywhere: not in
// those, not in asterd's log at trace level, not in the metrics, INFO, CONFIG GET, cluster
// show/list/config or the proxy's replies.
func TestSecretsNeverSurface(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--requirepass", "Back-pw-0")
	dir := t.TempDir()
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	metrics := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	config := `
[admin]
listen_addr = "` + admin + `"
token = "Admin-tok-0"

[metrics]
listen_addr = "` + metrics + `"

[[clusters]]
name = "sec"
listen_addr = "` + addr + `"
cache_type = "redis"
servers = ` + serverList([]*redistest.Server{srv}, []int{1}, true) + `
auth = { password = "Def-pw-0", users = [ { username = "alice", password = "Alice-pw-0" } ] }
backend_password = "Back-pw-0"
`
	path := filepath.Join(dir, "aster.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	a := runAsterd(t, addr, "--config", path, "--log-level", "trace")
	redistest.WaitListening(t, addr, 10*time.Second)
	redistest.WaitListening(t, admin, 10*time.Second)

	// Any authenticated client lowers the threshold for the whole cluster.
	c := redis.NewClient(&redis.Options{Addr: addr, Password: "Def-pw-0", MaxRetries: -1})
	defer c.Close()
	if err := c.Do(ctx, "CONFIG", "SET", "cluster.sec.slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}

	secrets := []string{"Def-pw-0", "Alice-pw-0", "Back-pw-0", "Admin-tok-0"}
	type cmd struct {
		args []string
		want string // as the slow log shows it (redis-server 7.0's positions)
	}
	cmds := []cmd{
		{[]string{"AUTH", "Wrong-pw-1"}, "AUTH (redacted)"},
		{[]string{"AUTH", "Def-pw-0"}, "AUTH (redacted)"},
		{[]string{"auth", "alice", "Wrong-pw-2"}, "auth (redacted) (redacted)"},
		{[]string{"AUTH", "alice", "Alice-pw-0"}, "AUTH (redacted) (redacted)"},
		{[]string{"HELLO", "3", "AUTH", "alice", "Alice-pw-0", "SETNAME", "n1"}, "HELLO 3 AUTH (redacted) (redacted) SETNAME n1"},
		{[]string{"HELLO", "3", "AUTH", "alice", "Wrong-pw-3"}, "HELLO 3 AUTH (redacted) (redacted)"},
		{[]string{"MIGRATE", "127.0.0.1", "1", "k", "0", "100", "AUTH", "Mig-pw-4"}, "MIGRATE 127.0.0.1 1 k 0 100 AUTH (redacted)"},
		{[]string{"MIGRATE", "127.0.0.1", "1", "", "0", "100", "COPY", "AUTH2", "miguser", "Mig-pw-5", "KEYS", "a", "b"},
			"MIGRATE 127.0.0.1 1  0 100 COPY AUTH2 (redacted) (redacted) KEYS a b"},
		{[]string{"CONFIG", "SET", "requirepass", "Cfg-pw-6"}, "CONFIG SET requirepass (redacted)"},
		{[]string{"config", "set", "cluster.sec.slowlog-max-len", "100", "masterauth", "Cfg-pw-7"}, "config set cluster.sec.slowlog-max-len 100 masterauth (redacted)"},
		{[]string{"CONFIG", "SET", "cluster.sec.password", "Cfg-pw-8"}, "CONFIG SET cluster.sec.password (redacted)"},
		{[]string{"ACL", "SETUSER", "bob", "on", ">Acl-pw-9", "+@all"}, "ACL SETUSER (redacted) (redacted) (redacted) (redacted)"},
	}
	for _, cm := range cmds {
		for _, a := range cm.args {
			if strings.Contains(a, "-pw-") {
				secrets = append(secrets, a)
			}
		}
	}
	f := redistest.DialFrames(t, addr)
	var replies []byte
	for _, cm := range cmds {
		replies = append(replies, f.Do(cm.args...)...)
	}
	// A password sent as a command (before AUTH, and after), inline and as RESP; a frame
	// broken in the middle of an AUTH: none of it may reach the slow log or the log.
	raw := redistest.DialRaw(t, addr)
	_, _ = raw.Do("Typed-pw-10")
	g := redistest.DialFrames(t, addr)
	g.Do("AUTH", "Def-pw-0")
	g.Do("Typed-pw-11", "x")
	g.Do("AUTH", "Inline-pw-12") // the same as the inline form below, through RESP
	secrets = append(secrets, "Typed-pw-10", "Typed-pw-11", "Inline-pw-12", "Broken-pw-13")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(nc, "AUTH Inline-pw-12\r\n*2\r\n$4\r\nAUTH\r\n$3\r\nBroken-pw-13\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [512]byte
	for {
		if _, err := nc.Read(buf[:]); err != nil {
			break // the protocol error closes the connection
		}
	}
	nc.Close()

	entries, err := c.Do(ctx, "SLOWLOG", "GET", "-1").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var slowlog strings.Builder
	shown := map[string]int{}
	for _, e := range entries {
		args := e.([]any)[3].([]any)
		s := make([]string, len(args))
		for i, a := range args {
			s[i] = fmt.Sprint(a)
		}
		shown[strings.Join(s, " ")]++
		fmt.Fprintln(&slowlog, s)
	}
	for _, cm := range cmds {
		if shown[cm.want] == 0 {
			t.Errorf("SLOWLOG GET has no %q:\n%s", cm.want, slowlog.String())
		}
	}
	if shown["AUTH (redacted)"] < 4 { // two above, Inline-pw-12 inline and through RESP
		t.Errorf("SLOWLOG GET has %d × AUTH (redacted), want ≥ 4:\n%s", shown["AUTH (redacted)"], slowlog.String())
	}

	env := []string{"ASTER_ADMIN_TOKEN=Admin-tok-0"}
	ctl := func(args ...string) string {
		r := asterctl(t, env, append([]string{"--addr", admin}, args...)...)
		if r.code != 0 {
			t.Fatalf("asterctl %q: %v", args, r)
		}
		return r.stdout + r.stderr
	}
	slowJSON := ctl("-o", "json", "cluster", "slowlog", "sec", "-n", "-1")
	var resp struct{ Entries []struct{ Args []string } }
	if err := json.Unmarshal([]byte(slowJSON), &resp); err != nil {
		t.Fatalf("json: %v\n%s", err, slowJSON)
	}
	fromAdmin := map[string]bool{}
	for _, e := range resp.Entries {
		fromAdmin[strings.Join(e.Args, " ")] = true
	}
	for _, cm := range cmds {
		if !fromAdmin[cm.want] {
			t.Errorf("the admin SlowLog has no %q:\n%s", cm.want, slowJSON)
		}
	}
	_, metricsText := httpGet(t, "http://"+metrics+"/metrics")
	info, _ := c.Info(ctx, "everything").Result()
	knobs, _ := c.Do(ctx, "CONFIG", "GET", "*").Slice()
	time.Sleep(200 * time.Millisecond) // the log lines of the closed connections are written
	places := map[string]string{
		"SLOWLOG GET":       slowlog.String(),
		"asterctl slowlog":  slowJSON + ctl("cluster", "slowlog", "sec", "-n", "-1"),
		"asterctl show":     ctl("-o", "json", "cluster", "show", "sec") + ctl("cluster", "show", "sec"),
		"asterctl list":     ctl("-o", "json", "cluster", "list"),
		"asterctl config":   ctl("-o", "json", "cluster", "config", "sec"),
		"metrics":           metricsText,
		"INFO":              info,
		"CONFIG GET":        fmt.Sprint(knobs),
		"the proxy replies": string(replies),
		"asterd's log":      a.log.String(),
	}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q:\n%s", where, s, text)
			}
		}
	}
	if !strings.Contains(a.log.String(), "[TRACE]") && !strings.Contains(a.log.String(), "[DEBUG]") {
		t.Errorf("asterd logged nothing below INFO; the check of its log is void:\n%s", a.log.String())
	}
}
