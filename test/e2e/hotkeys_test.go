package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestHotKeysSkewedLoad hammers one key among thousands from several clients and expects
// HOTKEY GET (client side) and asterctl cluster hotkeys (admin API) to name it first. Then it
// changes live knobs with asterctl, CONFIG SET and a reload, on a client connection that must
// stay open throughout.
func TestHotKeysSkewedLoad(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 2)
	clusters := `
[[clusters]]
name = "hk"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1}, true) + `
hotkey_sample_every = 4
hotkey_capacity = 64
`
	a, admin := startAsterdAdmin(t, "", clusters)
	c := a.client(t)
	if err := c.Do(ctx, "HOTKEY", "ENABLE").Err(); err != nil {
		t.Fatal(err)
	}
	// A connection that must survive every live change below.
	keep, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	keepR := bufio.NewReader(keep)
	ping := func(when string) {
		t.Helper()
		_ = keep.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := keep.Write([]byte("PING\r\n")); err != nil {
			t.Fatalf("%s: write on the kept connection: %v", when, err)
		}
		if l, err := keepR.ReadString('\n'); err != nil || l != "+PONG\r\n" {
			t.Fatalf("%s: kept connection answered %q, %v", when, l, err)
		}
	}
	ping("before load")

	// 8 clients × 2500 commands: 40% GET hot:user, 10% GET warm:cart, the rest over 5000 keys.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := a.client(t)
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for batch := 0; batch < 25; batch++ {
				p := cl.Pipeline()
				for i := 0; i < 100; i++ {
					switch x := r.IntN(100); {
					case x < 40:
						p.Get(ctx, "hot:user")
					case x < 50:
						p.Get(ctx, "warm:cart")
					default:
						p.Set(ctx, fmt.Sprintf("cold:%d", r.IntN(5000)), "v", 0)
					}
				}
				if _, err := p.Exec(ctx); err != nil && !strings.Contains(err.Error(), "nil") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	v, err := c.Do(ctx, "HOTKEY", "GET", "3").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(v) < 2 {
		t.Fatalf("HOTKEY GET 3 = %v", v)
	}
	top, second := v[0].([]any), v[1].([]any)
	// 20000 commands, 40% on hot:user: about 8000 (sampled 1 in 4, so ±~10%).
	if top[0] != "hot:user" || top[1].(int64) < 6000 || top[1].(int64) > 10000 {
		t.Fatalf("hottest = %v, want hot:user ≈ 8000 (all: %v)", top, v)
	}
	if second[0] != "warm:cart" {
		t.Errorf("second = %v, want warm:cart", second)
	}

	r := asterctl(t, nil, "--addr", admin, "-o", "json", "cluster", "hotkeys", "hk", "-n", "1")
	if r.code != 0 {
		t.Fatalf("asterctl cluster hotkeys: %v", r)
	}
	var resp struct {
		Enabled bool
		Keys    []struct {
			Key   string
			Count uint64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(resp.Keys) != 1 {
		t.Fatalf("asterctl cluster hotkeys -n 1: %s", r.stdout)
	}
	// The key as a string and the count as a number (protojson wrote base64 and a string).
	if !resp.Enabled || resp.Keys[0].Key != "hot:user" || resp.Keys[0].Count < 1000 {
		t.Fatalf("asterctl cluster hotkeys -n 1: %s", r.stdout)
	}
	r = asterctl(t, nil, "--addr", admin, "cluster", "hotkeys", "hk")
	if r.code != 0 || !strings.Contains(r.stdout, `"hot:user"`) {
		t.Fatalf("table output: %v", r)
	}

	// Live knobs: asterctl sets, CONFIG GET sees it; CONFIG SET sets, asterctl sees it.
	r = asterctl(t, nil, "--addr", admin, "cluster", "config", "hk", "hotkey-sample-every", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "hotkey-sample-every  2") {
		t.Fatalf("asterctl cluster config set: %v", r)
	}
	if got, _ := c.ConfigGet(ctx, "cluster.hk.hotkey-sample-every").Result(); got["cluster.hk.hotkey-sample-every"] != "2" {
		t.Fatalf("CONFIG GET after asterctl set: %v", got)
	}
	if err := c.ConfigSet(ctx, "cluster.hk.slowlog-max-len", "9").Err(); err != nil {
		t.Fatal(err)
	}
	r = asterctl(t, nil, "--addr", admin, "cluster", "config", "hk", "slowlog-*")
	if r.code != 0 || !strings.Contains(r.stdout, "slowlog-max-len          9") {
		t.Fatalf("asterctl cluster config get: %v", r)
	}
	r = asterctl(t, nil, "--addr", admin, "cluster", "config", "hk", "hotkey-decay", "7")
	if r.code == 0 || !strings.Contains(r.stderr, "InvalidArgument") {
		t.Fatalf("bad value through asterctl: %v", r)
	}
	ping("after live changes")

	// A reload that changes hot-key and slow-log settings applies them live.
	path := a.cmd.Args[2]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(orig), "hotkey_capacity = 64", "hotkey_capacity = 128\nslowlog_max_len = 3", 1)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := asterctl(t, nil, "--addr", admin, "cluster", "reload"); r.code != 0 || !reloadLineHas(r.stdout, "changed:", "hk") {
		t.Fatalf("reload: %v", r)
	}
	got, _ := c.ConfigGet(ctx, "cluster.hk.*").Result()
	if got["cluster.hk.hotkey-capacity"] != "128" || got["cluster.hk.slowlog-max-len"] != "3" || got["cluster.hk.hotkey-enabled"] != "yes" {
		t.Fatalf("after reload: %v", got)
	}
	ping("after reload")
}

// TestBackupReadsWhenMasterStalls runs GETs for one master's keys through asterd while that
// master is stopped (SIGSTOP) for a moment: with backup_request on, they are answered by its
// replica well within the stall; a write to the same master waits for it as before. Then with
// backup reads turned off live (CONFIG SET), a read waits for the stalled master too.
func TestBackupReadsWhenMasterStalls(t *testing.T) {
	// Not parallel: it checks that reads during a stall answer well within it (400 ms), which
	// a CPU shared with other tests' servers does not guarantee.
	rc := redistest.StartCluster(t, 3, 1)
	metricsAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(redistest.FreePort(t)))
	cfg := clusterConfig(rc.Seeds(), `read_timeout = 5000
backup_request = { enabled = true, trigger_slow_ms = 50, multiplier = 2.0 }
`)
	cfg = strings.Replace(cfg, "read_timeout = 1000\n", "", 1)
	cfg += "\n[metrics]\nlisten_addr = \"" + metricsAddr + "\"\n"
	a := startAsterd(t, cfg)
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	// Keys of one slot's master, written and replicated before the stall.
	key := spreadKey("br:", 1)
	slot := int(rc.Client().ClusterKeySlot(ctx, key).Val())
	master := rc.MasterOf(slot)
	var keys []string
	for i := 0; len(keys) < 20; i++ {
		k := fmt.Sprintf("{%s}:%d", key, i)
		keys = append(keys, k)
		if err := c.Set(ctx, k, "v"+fmt.Sprint(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := master.Client().Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
		t.Fatalf("WAIT for the replica: %v", err)
	}
	// Warm up: reads go to the master, and the moving average learns its latency.
	for _, k := range keys {
		if err := c.Get(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}

	const stall = 1500 * time.Millisecond
	master.Pause()
	stalledAt := time.Now()
	resumed := make(chan struct{})
	go func() {
		time.Sleep(stall)
		master.Resume()
		close(resumed)
	}()
	t.Cleanup(func() { <-resumed })

	// Reads: answered by the replica, each well within the stall.
	for i, k := range keys[:10] {
		start := time.Now()
		v, err := c.Get(ctx, k).Result()
		if took := time.Since(start); err != nil || v != "v"+fmt.Sprint(i) || took > 400*time.Millisecond {
			t.Fatalf("GET %s during the stall: %q, %v after %v; want v%d from the replica in well under %v", k, v, err, took, i, stall)
		}
	}
	if elapsed := time.Since(stalledAt); elapsed > stall-200*time.Millisecond {
		t.Fatalf("10 reads took %v: the stall was over before they were checked", elapsed)
	}
	// A write goes to the master only: it waits for the stall to end.
	start := time.Now()
	if err := c.Set(ctx, keys[0], "after", 0).Err(); err != nil {
		t.Fatalf("SET during the stall: %v", err)
	}
	if took := time.Since(start); time.Since(stalledAt) < stall-100*time.Millisecond || took < 100*time.Millisecond {
		t.Fatalf("SET returned after %v, before the master resumed", took)
	}
	<-resumed
	if v, _ := c.Get(ctx, keys[0]).Result(); v != "after" {
		t.Fatalf("GET after the stall = %q, want after", v)
	}

	_, mfs := scrape(t, metricsAddr)
	sent, _ := sample(mfs, "aster_backup_requests_total", map[string]string{"cluster": "rc", "result": "sent"})
	won, _ := sample(mfs, "aster_backup_requests_total", map[string]string{"cluster": "rc", "result": "won"})
	if sent < 10 || won < 10 {
		t.Errorf("aster_backup_requests_total sent %v won %v, want ≥ 10 each", sent, won)
	}

	// Backup reads off, live: a read now waits for the stalled master.
	if err := c.ConfigSet(ctx, "cluster.rc.backup-request-enabled", "no").Err(); err != nil {
		t.Fatal(err)
	}
	master.Pause()
	time.AfterFunc(500*time.Millisecond, master.Resume)
	start = time.Now()
	if v, err := c.Get(ctx, keys[1]).Result(); err != nil || v != "v1" {
		t.Fatalf("GET with backup reads off: %q, %v", v, err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("GET with backup reads off took %v: it did not wait for the stalled master", took)
	}
}

// TestBackupReadsIgnoreARefusingReplica: a backup read whose replica refuses it (MASTERDOWN:
// its link to the master is down with replica-serve-stale-data no) does not win the race: the
// client gets the stalled master's answer once it resumes, not the replica's refusal.
func TestBackupReadsIgnoreARefusingReplica(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), "backup_request = { enabled = true, trigger_slow_ms = 20 }\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	master := rc.MasterOf(0)
	replica := replicaOf(t, rc, master)
	key := keyOn(t, rc, master)
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cutOff(t, replica, "replica-serve-stale-data", "no")
	_, rejectedBefore := replica.CommandStats(t, "get")
	for range 3 {
		master.Pause()
		time.AfterFunc(300*time.Millisecond, master.Resume)
		if v, err := c.Get(ctx, key).Result(); err != nil || v != "v" {
			master.Resume()
			t.Fatalf("GET while the master stalls and its replica refuses: %q, %v; want the master's v", v, err)
		}
	}
	if _, rejected := replica.CommandStats(t, "get"); rejected == rejectedBefore {
		t.Fatal("no backup read reached the refusing replica: the test did not test it")
	}
}

// TestBackupReadsKeepRepliesInStep races nearly every read (a 1 ms threshold under pipelined
// load) and checks that every client gets exactly its own replies: the losing answers, dropped
// on their connections, never reach anyone.
func TestBackupReadsKeepRepliesInStep(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	metricsAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(redistest.FreePort(t)))
	cfg := clusterConfig(rc.Seeds(), "backup_request = { enabled = true, trigger_slow_ms = 1, multiplier = 0.5 }\n")
	cfg += "\n[metrics]\nlisten_addr = \"" + metricsAddr + "\"\n"
	a := startAsterd(t, cfg)
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	const nkeys = 300
	for i := 0; i < nkeys; i++ {
		if err := c.Set(ctx, spreadKey("step:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range rc.Nodes[:3] {
		_ = m.Client().Do(ctx, "WAIT", 1, 2000).Err()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := a.client(t)
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for batch := 0; batch < 20; batch++ {
				p := cl.Pipeline()
				want := make([]int, 100)
				cmds := make([]interface{ Val() string }, 100)
				for i := range want {
					want[i] = r.IntN(nkeys)
					cmds[i] = p.Get(ctx, spreadKey("step:", want[i]))
				}
				if _, err := p.Exec(ctx); err != nil {
					errs <- err
					return
				}
				for i, cmd := range cmds {
					if got := cmd.Val(); got != fmt.Sprint(want[i]) {
						errs <- fmt.Errorf("GET step:%d = %q, want %d", want[i], got, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, mfs := scrape(t, metricsAddr)
	sent, _ := sample(mfs, "aster_backup_requests_total", map[string]string{"cluster": "rc", "result": "sent"})
	won, _ := sample(mfs, "aster_backup_requests_total", map[string]string{"cluster": "rc", "result": "won"})
	t.Logf("backup reads: %v sent, %v won", sent, won)
	if sent == 0 {
		t.Fatal("no backup read was sent: the test raced nothing")
	}
}
