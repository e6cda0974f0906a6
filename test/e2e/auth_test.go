package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestAuthEndToEnd configures client users, backend credentials and health checks against
// password-protected redis-servers, through the config file as an operator would.
func TestAuthEndToEnd(t *testing.T) {
	t.Parallel()
	servers := []*redistest.Server{
		redistest.Start(t, "--requirepass", "backpw"),
		redistest.Start(t, "--requirepass", "backpw"),
	}
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	metrics := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterdArgs(t, `
[admin]
listen_addr = "`+admin+`"
token = "admintok"

[metrics]
listen_addr = "`+metrics+`"

[[clusters]]
name = "secure"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
auth = { password = "s3cret", users = [ { username = "ops", password = "opspw" } ] }
backend_password = "backpw"
ping_fail_limit = 2
ping_interval = 100
max_connections = 50
client_idle_timeout = 60
`, "--log-level", "trace") // the log is checked for secrets below, at its most verbose
	c := redis.NewClient(&redis.Options{Addr: a.Addr, Password: "s3cret", MaxRetries: -1})
	defer c.Close()
	for i := 0; i < 50; i++ {
		if err := c.Set(ctx, spreadKey("auth:", i), i, 0).Err(); err != nil {
			t.Fatalf("SET with the default password: %v", err)
		}
	}
	ops := redis.NewClient(&redis.Options{Addr: a.Addr, Username: "ops", Password: "opspw", MaxRetries: -1})
	defer ops.Close()
	if err := ops.Get(ctx, spreadKey("auth:", 1)).Err(); err != nil {
		t.Fatalf("GET as ops: %v", err)
	}
	bad := redis.NewClient(&redis.Options{Addr: a.Addr, Password: "nope", MaxRetries: -1})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
	raw := redistest.DialRaw(t, a.Addr)
	if _, err := raw.Do("GET", "x"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("no AUTH: %v", err)
	}
	// The health checker authenticates too: the protected nodes stay in the ring.
	time.Sleep(600 * time.Millisecond)
	if strings.Contains(a.log.String(), "node ejected") {
		t.Fatalf("a password-protected node was ejected: health checks did not authenticate\n%s", a.log.String())
	}
	if !strings.Contains(a.log.String(), "cluster configured: cluster=secure") || !strings.Contains(a.log.String(), "client_auth=true") {
		t.Fatalf("no effective configuration summary in the log")
	}
	// Secrets never reach the log, the metrics, the proxy's own replies or the admin API.
	redistest.WaitListening(t, admin, 10*time.Second)
	_, metricsText := httpGet(t, "http://"+metrics+"/metrics")
	info, _ := c.Info(ctx, "everything").Result()
	knobs, _ := c.Do(ctx, "CONFIG", "GET", "cluster.secure.*").Slice()
	env := []string{"ASTER_ADMIN_TOKEN=admintok"}
	show := asterctl(t, env, "--addr", admin, "-o", "json", "cluster", "show", "secure")
	list := asterctl(t, env, "--addr", admin, "-o", "json", "cluster", "list")
	if show.code != 0 || list.code != 0 || !strings.Contains(show.stdout, "secure") {
		t.Fatalf("asterctl: %v %v", show, list)
	}
	places := map[string]string{
		"log": a.log.String(), "metrics": metricsText, "INFO": info, "CONFIG GET": fmt.Sprint(knobs),
		"asterctl show": show.stdout + show.stderr, "asterctl list": list.stdout + list.stderr,
	}
	for where, text := range places {
		for _, secret := range []string{"s3cret", "opspw", "backpw", "admintok"} {
			if strings.Contains(text, secret) {
				t.Fatalf("the %s contains the secret %q:\n%s", where, secret, text)
			}
		}
	}
}
