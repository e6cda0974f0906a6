package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/aster-proxy/aster/dataplane/limits"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// knobValue is one value a test sets a live knob to, and the CONFIG SET error it must get
// ("" when accepted).
type knobValue struct{ v, err string }

// liveKnobCases lists, for every live knob of the range table (so that a knob added later is
// covered), its maximum and minimum (accepted) and what lies beyond: maximum + 1, 2^31-1, large
// negatives, 2^63, and NaN and the infinities for reals (refused with Redis's words). The
// knob is named as CONFIG SET names it for cluster name.
func liveKnobCases(name string) map[string][]knobValue {
	out := map[string][]knobValue{}
	for _, r := range limits.Ints {
		if r.Knob == "" {
			continue
		}
		pfx := "CONFIG SET failed (possibly related to argument 'cluster." + name + "." + r.Knob + "') - "
		rangeErr := pfx + "argument must be between " + strconv.FormatInt(r.Min, 10) + " and " + strconv.FormatInt(r.Max, 10) + " inclusive"
		parseErr := pfx + "argument couldn't be parsed into an integer"
		vs := []knobValue{
			{strconv.FormatInt(r.Max, 10), ""},
			{strconv.FormatInt(r.Max+1, 10), rangeErr},
			{strconv.FormatInt(r.Min-1, 10), rangeErr},
			{"-2147483648", rangeErr},
			{"-9223372036854775808", rangeErr},
			{"9223372036854775807", rangeErr},
			{"9223372036854775808", parseErr},
			{"NaN", parseErr},
			{strconv.FormatInt(r.Min, 10), ""},
		}
		if r.Max < 1<<31-1 {
			vs = append(vs[:2], append([]knobValue{{"2147483647", rangeErr}}, vs[2:]...)...)
		}
		out[r.Knob] = vs
	}
	for _, r := range limits.Floats {
		if r.Knob == "" {
			continue
		}
		e := "CONFIG SET failed (possibly related to argument 'cluster." + name + "." + r.Knob + "') - argument must be a number in " + r.Range()
		max := strconv.FormatFloat(r.Max, 'g', -1, 64)
		out[r.Knob] = []knobValue{
			{max, ""}, {strconv.FormatFloat(r.Max*1.001, 'g', -1, 64), e}, {"2147483647", e},
			{"NaN", e}, {"Inf", e}, {"-Inf", e}, {"1e400", e}, {strconv.FormatFloat(r.Min, 'g', -1, 64), e},
			{"-9223372036854775808", e}, {max, ""},
		}
	}
	return out
}

// atMaxima is the file's setting of every live knob's key at its maximum.
func atMaxima() string {
	var lines, backup []string
	for _, r := range limits.Ints {
		if r.Knob == "" || r.Key == "" {
			continue
		}
		if table, key, ok := strings.Cut(r.Key, "."); ok && table == "backup_request" {
			backup = append(backup, key+" = "+strconv.FormatInt(r.Max, 10))
		} else {
			lines = append(lines, r.Key+" = "+strconv.FormatInt(r.Max, 10))
		}
	}
	for _, r := range limits.Floats {
		v := strconv.FormatFloat(r.Max, 'f', 1, 64)
		if table, key, ok := strings.Cut(r.Key, "."); ok && table == "backup_request" {
			backup = append(backup, key+" = "+v)
		} else {
			lines = append(lines, r.Key+" = "+v)
		}
	}
	return strings.Join(lines, "\n") + "\nbackup_request = { " + strings.Join(backup, ", ") + " }\n"
}

// TestKnobLimits sets every live knob to its maximum, beyond it and to 2^31-1 through each
// path: the config file (at the maxima it loads), CONFIG SET over a client connection and the
// admin RPC SetClusterConfig. Refused values get Redis's CONFIG SET error (InvalidArgument with
// the same text over the admin API) and do not apply; asterd stays up and keeps serving.
func TestKnobLimits(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	a, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "kl"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, false)+"\n"+atMaxima())
	c := a.client(t)
	serving := func(when string) {
		t.Helper()
		select {
		case <-a.done:
			t.Fatalf("%s: asterd exited", when)
		default:
		}
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s: PING: %v", when, err)
		}
		if err := c.Set(ctx, "kl:key", when, 0).Err(); err != nil {
			t.Fatalf("%s: SET: %v", when, err)
		}
		if v, err := c.Get(ctx, "kl:key").Result(); err != nil || v != when {
			t.Fatalf("%s: GET = %q, %v", when, v, err)
		}
	}
	get := func(knob string) string {
		t.Helper()
		full := "cluster.kl." + knob
		got, err := c.ConfigGet(ctx, full).Result()
		if err != nil {
			t.Fatal(err)
		}
		return got[full]
	}
	serving("at start with every knob at its maximum")
	// (backup_request applies to redis_cluster only; its keys load, unused, here)
	for _, r := range limits.Ints {
		if r.Knob != "" && r != limits.BackupThreshold && get(r.Knob) != strconv.FormatInt(r.Max, 10) {
			t.Errorf("%s from the file = %s, want its maximum %d", r.Knob, get(r.Knob), r.Max)
		}
	}

	conn, err := grpc.NewClient(admin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rpc := asterv1.NewAdminServiceClient(conn)

	for knob, values := range liveKnobCases("kl") {
		for _, path := range []string{"CONFIG SET", "SetClusterConfig"} {
			for _, kv := range values {
				before := get(knob)
				var err error
				if path == "CONFIG SET" {
					err = c.ConfigSet(ctx, "cluster.kl."+knob, kv.v).Err()
				} else {
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, err = rpc.SetClusterConfig(cctx, &asterv1.SetClusterConfigRequest{Cluster: "kl", Name: "cluster.kl." + knob, Value: kv.v})
					cancel()
				}
				switch {
				case kv.err == "" && err != nil:
					t.Errorf("%s %s %s: %v", path, knob, kv.v, err)
				case kv.err == "":
				case err == nil:
					t.Errorf("%s %s %s accepted, want %q", path, knob, kv.v, kv.err)
				case path == "CONFIG SET" && err.Error() != "ERR "+kv.err:
					t.Errorf("%s %s %s: %v, want %q", path, knob, kv.v, err, "ERR "+kv.err)
				case path == "SetClusterConfig" && (status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), kv.err)):
					t.Errorf("%s %s %s: %v, want InvalidArgument with %q", path, knob, kv.v, err, kv.err)
				}
				if after := get(knob); kv.err != "" && after != before {
					t.Errorf("refused %s %s %s applied: %s → %s", path, knob, kv.v, before, after)
				}
			}
			serving(path + " " + knob)
		}
	}
	// All knobs at their maxima at once, the largest tracker and slow log there are, and
	// filled: the process still answers.
	for _, r := range limits.Ints {
		if r.Knob != "" && r != limits.SlowlogSlowerThan {
			if err := c.ConfigSet(ctx, r.Knob, strconv.FormatInt(r.Max, 10)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, args := range [][]any{{"CONFIG", "SET", "slowlog-log-slower-than", "0", "hotkey-sample-every", "1"}, {"HOTKEY", "ENABLE"}} {
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// go-redis reads a pipeline's replies under one read deadline: 8192 replies, each logged
	// and sampled, from a race build on a CPU shared with parallel tests need more than 5 s.
	patient := redis.NewClient(&redis.Options{Addr: a.Addr, MaxRetries: -1, ReadTimeout: time.Minute})
	t.Cleanup(func() { patient.Close() })
	p := patient.Pipeline()
	for i := 0; i < 2*limits.MaxSlowlogMaxLen; i++ {
		p.Get(ctx, fmt.Sprintf("kl:%d:%s", i, strings.Repeat("x", 300)))
	}
	if _, err := p.Exec(ctx); err != nil && !strings.Contains(err.Error(), "nil") {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, "SLOWLOG", "LEN").Int(); err != nil || n != limits.MaxSlowlogMaxLen {
		t.Errorf("SLOWLOG LEN = %d, %v; want the maximum %d", n, err, limits.MaxSlowlogMaxLen)
	}
	serving("with every knob at its maximum, filled")
}

// TestKnobLimitsInFile: a value beyond its range is refused by asterd --check (exit 1, the
// line, key and range) and by a reload, which keeps asterd running with the old value; at
// the maxima --check says OK.
func TestKnobLimitsInFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := "[[clusters]]\nname = \"c\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:2\"]\n"
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(head+"hotkey_sketch_width = 2147483647\nslowlog_max_len = 2147483647\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := asterdCheck(t, bad)
	for _, want := range []string{
		`bad.toml:6: cluster "c": hotkey_sketch_width: 2147483647 out of range 1..65536`,
		`bad.toml:7: cluster "c": slowlog_max_len: 2147483647 out of range 0..4096`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--check output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(head+atMaxima()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(asterdBin, "--check", "--config", good).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("--check at the maxima: %v\n%s", err, out)
	}

	// A reload with an out-of-range value is refused; asterd keeps serving with the old one.
	servers := startServers(t, 1)
	a, admin := startAsterdAdmin(t, "", `
[[clusters]]
name = "kf"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1}, false)+`
hotkey_capacity = 64
`)
	path := a.cmd.Args[2]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(orig), "hotkey_capacity = 64", "hotkey_capacity = 2147483647\nhotkey_sketch_depth = 2147483647", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := asterctl(t, nil, "--addr", admin, "cluster", "reload")
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "hotkey_capacity: 2147483647 out of range 1..16384") {
		t.Fatalf("reload of an out-of-range value: %v", r)
	}
	c := a.client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("after the refused reload: %v", err)
	}
	if got, _ := c.ConfigGet(ctx, "hotkey-capacity").Result(); got["hotkey-capacity"] != "64" {
		t.Errorf("after the refused reload hotkey-capacity = %v, want 64", got)
	}
}
