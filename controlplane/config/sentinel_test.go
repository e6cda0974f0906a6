package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// sentinelFile is a one-cluster redis_sentinel file with body's keys added (line 5 on).
func sentinelFile(body string) string {
	return "[[clusters]]\nname = \"s\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis_sentinel\"\n" + body
}

func TestSentinelConfig(t *testing.T) {
	cfg, err := Parse([]byte(sentinelFile(`servers = ["shard-a:2 a", "shard-b", "ns:shard:c:3"]
sentinels = ["127.0.0.1:26379", "[::1]:26380"]
sentinel_auth = { username = "watcher", password = "s3cret" }
sentinel_poll_interval = 250
read_from_slave = true
`)), "s.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Clusters[0]
	want := []Server{{Master: "shard-a", Weight: 2, Alias: "a"}, {Master: "shard-b", Weight: 1}, {Master: "ns:shard:c", Weight: 3}}
	if !reflect.DeepEqual(c.Servers, want) {
		t.Errorf("servers = %+v, want %+v", c.Servers, want)
	}
	if got := []string{c.Servers[0].Key(), c.Servers[1].Key()}; !reflect.DeepEqual(got, []string{"a", "shard-b"}) {
		t.Errorf("ring names = %q", got)
	}
	if !reflect.DeepEqual(c.Sentinels, []string{"127.0.0.1:26379", "[::1]:26380"}) {
		t.Errorf("sentinels = %q", c.Sentinels)
	}
	if c.SentinelAuth == nil || *c.SentinelAuth != (BackendAuth{Username: "watcher", Password: "s3cret"}) {
		t.Errorf("sentinel_auth = %+v", c.SentinelAuth)
	}
	if c.SentinelPollInterval != 250*time.Millisecond || !c.ReadFromSlave {
		t.Errorf("poll = %v, read_from_slave = %v", c.SentinelPollInterval, c.ReadFromSlave)
	}

	cfg, err = Parse([]byte(sentinelFile(`servers = ["m"]
sentinels = ["127.0.0.1:26379"]
sentinel_auth = "pw"
`)), "s.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Clusters[0]; c.SentinelPollInterval != DefaultSentinelPollInterval || *c.SentinelAuth != (BackendAuth{Password: "pw"}) {
		t.Errorf("defaults: poll %v, auth %+v", c.SentinelPollInterval, c.SentinelAuth)
	}
}

// TestSentinelConfigInvalid: every mistake is refused with the line and the key, and no
// message quotes the sentinel password.
func TestSentinelConfigInvalid(t *testing.T) {
	const sentinels = "sentinels = [\"127.0.0.1:26379\"]\n"
	many := make([]string, 17)
	for i := range many {
		many[i] = `"127.0.0.1:` + string(rune('0'+i/10)) + string(rune('0'+i%10)) + `01"`
	}
	long := strings.Repeat("m", 129)
	tests := []struct {
		name, file, want string
	}{
		{"no sentinels", sentinelFile("servers = [\"m\"]\n"), `s.toml:1: cluster "s": sentinels: required for redis_sentinel`},
		{"empty sentinels", sentinelFile("servers = [\"m\"]\nsentinels = []\n"), `sentinels: lists 0 sentinels, want 1..16`},
		{"too many sentinels", sentinelFile("servers = [\"m\"]\nsentinels = [" + strings.Join(many, ", ") + "]\n"), `sentinels: lists 17 sentinels, want 1..16`},
		{"sentinels not strings", sentinelFile("servers = [\"m\"]\nsentinels = [26379]\n"), `s.toml:6: cluster "s": sentinels[0]: must be a string, not an integer`},
		{"sentinel without port", sentinelFile("servers = [\"m\"]\nsentinels = [\"127.0.0.1\"]\n"), `sentinels[0]: "127.0.0.1" is not host:port`},
		{"sentinel with weight", sentinelFile("servers = [\"m\"]\nsentinels = [\"127.0.0.1:26379:2\"]\n"), `sentinels[0]: "127.0.0.1:26379:2": a sentinel is "host:port"`},
		{"duplicate sentinel", sentinelFile("servers = [\"m\"]\nsentinels = [\"127.0.0.1:26379\", \"127.0.0.1:26379\"]\n"), `sentinels[1]: duplicate sentinel "127.0.0.1:26379" (also sentinels[0])`},
		{"duplicate group", sentinelFile("servers = [\"m:1 a\", \"m:1 b\"]\n" + sentinels), `servers[1]: duplicate master name "m" (also servers[0])`},
		{"alias clashes with a name", sentinelFile("servers = [\"m:1 x\", \"x\"]\n" + sentinels), `servers[1]: duplicate alias "x" (also servers[0])`},
		{"bad weight", sentinelFile("servers = [\"m:0\"]\n" + sentinels), `servers[0]: weight 0 out of range 1..65535`},
		{"weight not a number", sentinelFile("servers = [\"m:x\"]\n" + sentinels), `servers[0]: weight "x" is not a number`},
		{"empty name", sentinelFile("servers = [\":1 a\"]\n" + sentinels), `servers[0]: master name is empty`},
		{"long name", sentinelFile("servers = [\"" + long + "\"]\n" + sentinels), `servers[0]: master name of 129 bytes is longer than 128`},
		{"control character", sentinelFile("servers = [\"m\\u0001\"]\n" + sentinels), `must not contain spaces or control characters`},
		{"poll too fast", sentinelFile("servers = [\"m\"]\n" + sentinels + "sentinel_poll_interval = 99\n"), `sentinel_poll_interval: 99 out of range 100..3600000 ms`},
		{"auth without password", sentinelFile("servers = [\"m\"]\n" + sentinels + "sentinel_auth = { username = \"u\" }\n"), `sentinel_auth.password: required`},
		{"auth unknown key", sentinelFile("servers = [\"m\"]\n" + sentinels + "sentinel_auth = { password = \"s3cret\", pasword = \"s3cret\" }\n"), `sentinel_auth.pasword: unknown key`},
		{"auth wrong type", sentinelFile("servers = [\"m\"]\n" + sentinels + "sentinel_auth = 12\n"), `sentinel_auth: must be a string or a table, not an integer`},
		{"sentinels on redis", "[[clusters]]\nname = \"s\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:6379\"]\n" + sentinels,
			`sentinels: only for cache_type = "redis_sentinel"`},
		{"auth on redis_cluster", "[[clusters]]\nname = \"s\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis_cluster\"\nservers = [\"127.0.0.1:6379\"]\nsentinel_auth = \"s3cret\"\n",
			`sentinel_auth: only for cache_type = "redis_sentinel"`},
		{"unknown cache type", "[[clusters]]\nname = \"s\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"sentinel\"\nservers = [\"127.0.0.1:6379\"]\n",
			`"sentinel" is not redis, redis_cluster or redis_sentinel`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "s.toml")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.file)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error quotes the sentinel password: %v", err)
			}
		})
	}
	// A syntax error in the secret's value does not quote it either.
	_, err := Parse([]byte(sentinelFile("servers = [\"m\"]\n"+sentinels+"sentinel_auth = s3cret\n")), "s.toml")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("syntax error in sentinel_auth: %v", err)
	}
}
