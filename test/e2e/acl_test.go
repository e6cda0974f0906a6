package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// Redis's refusals, as 7.2 and later word them.
const (
	aclKeyErr = "NOPERM No permissions to access a key"
	aclCmdErr = "NOPERM User %s has no permissions to run the '%s' command"
)

// aclUsers is the auth setting of the clusters of these tests: "app" may run everything but
// @dangerous on app:* keys only (hash-tagged ones too), "tenant" everything but @admin, "ops"
// has no rules, and the default user has the plain password.
const aclUsers = `auth = { password = "d", users = [
    { username = "app", password = "a", commands = "+@all -@dangerous", keys = ["app:*", "{app}*"] },
    { username = "tenant", password = "t", commands = "+@all -@admin" },
    { username = "ops", password = "o" },
] }
`

func aclClient(t *testing.T, addr, user, pass string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: pass, MaxRetries: -1,
		PoolSize: 1, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// wantErr runs args and checks its error text.
func wantErr(t *testing.T, c *redis.Client, want string, args ...any) {
	t.Helper()
	err := c.Do(ctx, args...).Err()
	if err == nil || err.Error() != want {
		t.Errorf("%v: %v, want %q", args, err, want)
	}
}

func wantOK(t *testing.T, c *redis.Client, args ...any) {
	t.Helper()
	if err := c.Do(ctx, args...).Err(); err != nil && err != redis.Nil {
		t.Errorf("%v: %v", args, err)
	}
}

// checkACL exercises the users of aclUsers through a proxy at addr; knob is a CONFIG SET-able
// live knob of its cluster.
func checkACL(t *testing.T, addr, knob string) {
	app := aclClient(t, addr, "app", "a")
	wantOK(t, app, "SET", "app:1", "v")
	wantOK(t, app, "GET", "app:1")
	wantOK(t, app, "MSET", "{app}1", "v", "{app}2", "v")
	wantOK(t, app, "MGET", "{app}1", "{app}2")
	wantOK(t, app, "DEL", "{app}1", "{app}2")
	wantOK(t, app, "EVAL", "return redis.call('GET', KEYS[1])", "1", "app:1")
	wantErr(t, app, aclKeyErr, "GET", "other")
	wantErr(t, app, aclKeyErr, "SET", "other", "v")
	wantErr(t, app, aclKeyErr, "MGET", "{app}1", "x{app}")
	wantErr(t, app, aclKeyErr, "MGET", "app:1", "other")
	wantErr(t, app, aclKeyErr, "MSET", "{app}1", "v", "x{app}", "v")
	wantErr(t, app, aclKeyErr, "DEL", "app:1", "other")
	wantErr(t, app, aclKeyErr, "EVAL", "return 1", "2", "{app}1", "x{app}")
	// A script that declares no key runs with the server's rights on one node: it could read
	// any key there, so a user with key patterns may not run one.
	wantErr(t, app, "NOPERM No permissions to run a script that declares no keys: this user's keys are restricted",
		"EVAL", "return redis.call('GET', 'other')", "0")
	wantErr(t, app, aclKeyErr, "BLPOP", "other", "1")
	wantErr(t, app, aclKeyErr, "WATCH", "other")
	wantErr(t, app, aclKeyErr, "SCAN", "0")
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "flushall"), "FLUSHALL")
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "keys"), "KEYS", "*")
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "config|set"), "CONFIG", "SET", knob, "7")
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "hotkey|get"), "HOTKEY", "GET")
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "slowlog|get"), "SLOWLOG", "GET")
	// A refused command inside MULTI is refused when queued, and EXEC aborts: nothing runs.
	_, err := app.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{app}tx", "1", 0)
		p.Get(ctx, "{app}tx")
		p.Set(ctx, "x{app}", "1", 0)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Errorf("MULTI with a refused key: %v, want EXECABORT", err)
	}
	if n, _ := app.Exists(ctx, "{app}tx").Result(); n != 0 {
		t.Errorf("a transaction with a refused command ran")
	}

	tenant := aclClient(t, addr, "tenant", "t")
	wantOK(t, tenant, "GET", "other")
	wantErr(t, tenant, fmt.Sprintf(aclCmdErr, "tenant", "config|set"), "CONFIG", "SET", knob, "7")
	wantErr(t, tenant, fmt.Sprintf(aclCmdErr, "tenant", "config|resetstat"), "CONFIG", "RESETSTAT")
	wantErr(t, tenant, fmt.Sprintf(aclCmdErr, "tenant", "hotkey|get"), "HOTKEY", "GET")
	wantErr(t, tenant, fmt.Sprintf(aclCmdErr, "tenant", "hotkey|enable"), "HOTKEY", "ENABLE")
	wantErr(t, tenant, fmt.Sprintf(aclCmdErr, "tenant", "slowlog|reset"), "SLOWLOG", "RESET")

	for _, c := range []*redis.Client{aclClient(t, addr, "ops", "o"), aclClient(t, addr, "", "d")} {
		wantOK(t, c, "MGET", "app:1", "other")
		wantOK(t, c, "EVAL", "return 1", "0")
		wantOK(t, c, "CONFIG", "SET", knob, "7")
		wantOK(t, c, "HOTKEY", "GET")
		wantOK(t, c, "SLOWLOG", "RESET")
	}
}

// TestACLEndToEnd: users with rules in the config file, standalone (consistent hashing over
// two servers): refusals with Redis's texts on commands, keys and the proxy's own admin
// commands; users without rules and the default user run everything. A reload that changes
// a user's rules applies to its connection already open.
func TestACLEndToEnd(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	base := `
[[clusters]]
name = "acl"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n"
	a := startAsterd(t, base+aclUsers)
	checkACL(t, a.Addr, "cluster.acl.slowlog-max-len")

	// Reload with app limited to GET: its open connection follows from its next command.
	app := aclClient(t, a.Addr, "app", "a")
	wantOK(t, app, "SET", "app:r", "v")
	cfg, err := os.ReadFile(a.cmd.Args[2])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), `commands = "+@all -@dangerous"`, `commands = "-@all +get"`, 1)
	if changed == string(cfg) {
		t.Fatal("config not changed")
	}
	if err := os.WriteFile(a.cmd.Args[2], []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "configuration reloaded")
	deadline := time.Now().Add(10 * time.Second)
	for app.Set(ctx, "app:r", "v", 0).Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("SET still allowed on the open connection after the reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantErr(t, app, fmt.Sprintf(aclCmdErr, "app", "set"), "SET", "app:r", "v")
	wantOK(t, app, "GET", "app:r")
}

// TestACLClusterMode: the same rules in front of a real Redis Cluster.
func TestACLClusterMode(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), aclUsers))
	waitServing(t, aclClient(t, a.Addr, "ops", "o"), 20*time.Second)
	checkACL(t, a.Addr, "cluster.rc.slowlog-max-len")
}

// TestACLRemoteDataPlane: a --role data asterd gets the users' rules in its snapshots.
func TestACLRemoteDataPlane(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	listen := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	path := filepath.Join(t.TempDir(), "control.toml")
	cfg := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = " + strconv.Quote(admin) + "\ntoken = \"tok\"\n" + `
[[clusters]]
name = "remote"
listen_addr = "` + listen + `"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + "\n" + aclUsers
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runAsterd(t, admin, "--role", "control", "--config", path)
	redistest.WaitListening(t, admin, 10*time.Second)
	runAsterd(t, listen, "--role", "data", "--control-plane", admin, "--token", "tok")
	redistest.WaitListening(t, listen, 10*time.Second)
	checkACL(t, listen, "cluster.remote.slowlog-max-len")
}
