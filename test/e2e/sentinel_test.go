package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

const sentinelPass = "sentinel-s3cret-pw"

// sentinelConfig is a redis_sentinel cluster "sen" over groups (servers entries) and the
// sentinels, with extra keys, and the admin and metrics endpoints on the given addresses.
func sentinelConfig(sentinels []string, servers []string, admin, metrics, extra string) string {
	q := func(l []string) string {
		var out []string
		for _, s := range l {
			out = append(out, strconv.Quote(s))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return `[admin]
listen_addr = "` + admin + `"
[metrics]
listen_addr = "` + metrics + `"

[[clusters]]
name = "sen"
listen_addr = "%LISTEN%"
cache_type = "redis_sentinel"
sentinels = ` + q(sentinels) + `
servers = ` + q(servers) + `
read_timeout = 1000
dial_timeout = 300
` + extra
}

// groupOf places key on the ring asterd builds over the groups named names (equal weights,
// the default hash and tag): what the test expects of asterd, computed independently of
// where the groups' masters are.
func groupOf(t *testing.T, names []string, key string) int {
	t.Helper()
	id := strings.Join(names, "\x00")
	r, ok := rings.Load(id)
	if !ok {
		var nodes []route.Node
		for _, n := range names {
			nodes = append(nodes, route.Node{Addr: "unused:1", Name: n, Weight: 1})
		}
		ring, err := route.NewRing(nodes, nil, "{}")
		if err != nil {
			t.Fatal(err)
		}
		r, _ = rings.LoadOrStore(id, ring)
	}
	return r.(*route.Ring).Pick([]byte(key))
}

// rings are groupOf's rings by their names: a test places tens of thousands of keys.
var rings sync.Map

// write is one SET the load made: the key, its value, and when it was sent and answered.
type write struct {
	key, val    string
	start, done time.Time
}

// sentinelLoad is clients each writing new keys and reading each back at once, recording
// every acknowledged write, every error by when its operation started, and every wrong
// answer (never allowed).
type sentinelLoad struct {
	stop   atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	writes []write
	errs   []loadErr
	wrong  []string
}

func startSentinelLoad(t *testing.T, a *asterd, workers int) *sentinelLoad {
	l := &sentinelLoad{}
	for w := range workers {
		c := a.client(t)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stop.Load(); i++ {
				k, v := spreadKey(fmt.Sprintf("sl%d:%d:", w, i), i), strconv.Itoa(i)
				start := time.Now()
				err := c.Set(ctx, k, v, 0).Err()
				if err == nil {
					l.mu.Lock()
					l.writes = append(l.writes, write{k, v, start, time.Now()})
					l.mu.Unlock()
					var got string
					if got, err = c.Get(ctx, k).Result(); err == nil && got != v || errors.Is(err, redis.Nil) {
						l.mu.Lock()
						l.wrong = append(l.wrong, fmt.Sprintf("GET %s = %q, %v after SET %q", k, got, err, v))
						l.mu.Unlock()
						err = nil
					}
				}
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, loadErr{start, err})
					l.mu.Unlock()
					time.Sleep(5 * time.Millisecond) // not a hot loop against a dead master
				}
			}
		}()
	}
	return l
}

// finish stops the load and fails the test on a wrong answer or an error of an operation
// that started after clean.
func (l *sentinelLoad) finish(t *testing.T, clean time.Time) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	late := 0
	var first error
	for _, e := range l.errs {
		if e.start.After(clean) {
			late++
			if first == nil {
				first = e.err
			}
		}
	}
	t.Logf("load: %d writes acknowledged, %d errors, %d of them after the switch", len(l.writes), len(l.errs), late)
	if len(l.wrong) > 0 {
		t.Errorf("%d wrong answers; first: %s", len(l.wrong), l.wrong[0])
	}
	if late > 0 {
		t.Errorf("%d operations started after asterd switched failed; first: %v", late, first)
	}
}

// waitGroupMaster waits until `asterctl cluster show sen` lists master as the master of
// group, and returns the output.
func waitGroupMaster(t *testing.T, admin, group, master string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := asterctl(t, nil, "--addr", admin, "cluster", "show", "sen")
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) >= 6 && f[0] == group && f[3] == "master" && f[4] == master && f[5] == "UP" {
				return r.stdout
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("asterctl never showed %s as master of %s:\n%s", master, group, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSentinelFailover: two Sentinel-managed groups behind one asterd, sentinels that require
// a password, one of the three sentinels down all along. A master is killed under load: once
// asterd follows Sentinel's switch no operation fails, no answer is ever wrong, every key
// written (and replicated) before the kill and every key written after the switch reads back;
// the old master, back as a replica, is never written to; `asterctl cluster show` lists the
// groups and the metric counts the switch; the sentinel password is shown nowhere.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	ga, gb := redistest.StartGroup(t, "grp-a", 1), redistest.StartGroup(t, "grp-b", 1)
	ss := redistest.StartSentinelsAuth(t, 3, sentinelPass, ga, gb)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	maddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	names := []string{"a", "b"}
	// A killed master refuses at once: a read timeout longer than the others' only keeps a
	// new master slowed by a loaded CPU from counting as a failure after the switch.
	a := startAsterdArgs(t, strings.Replace(sentinelConfig(ss.Addrs(), []string{"grp-a:1 a", "grp-b:1 b"}, admin, maddr,
		`sentinel_auth = { password = "`+sentinelPass+`" }`+"\n"), "read_timeout = 1000", "read_timeout = 5000", 1))
	redistest.WaitListening(t, admin, 10*time.Second)
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	// Keys spread over both groups, each on the master the ring says.
	for i := range 200 {
		k := spreadKey("pre:", i)
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		g := []*redistest.Group{ga, gb}[groupOf(t, names, k)]
		if n, err := g.Servers[0].Client().Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Fatalf("%s is not on %s's master: %d, %v", k, g.Name, n, err)
		}
	}
	show := waitGroupMaster(t, admin, "grp-a", ga.Servers[0].Addr)
	for _, want := range []string{ga.Servers[1].Addr, gb.Servers[0].Addr, gb.Servers[1].Addr, "redis_sentinel"} {
		if !strings.Contains(show, want) {
			t.Errorf("cluster show lacks %s:\n%s", want, show)
		}
	}

	ss.List[2].Kill() // any sentinel may be down: two of three are a quorum
	load := startSentinelLoad(t, a, 4)
	time.Sleep(500 * time.Millisecond)
	old := ga.Servers[0]
	replicatedBefore := time.Now()
	ga.WaitReplicated(t, old)
	old.Kill()
	killed := time.Now()
	promoted := ss.WaitSwitch("grp-a", old.Addr, 120*time.Second)
	announced := time.Now()
	if promoted != ga.Servers[1].Addr {
		t.Fatalf("sentinels promoted %s, not the replica %s", promoted, ga.Servers[1].Addr)
	}
	waitGroupMaster(t, admin, "grp-a", promoted)
	clean := time.Now()
	t.Logf("master killed; a quorum of sentinels named %s %v later; asterd switched %v after that",
		promoted, announced.Sub(killed), clean.Sub(announced))

	// The old master comes back (empty, as a master), Sentinel demotes it and it resyncs; the
	// load goes on all along.
	old.Restart()
	// Generous: a sentinel on a loaded machine may enter TILT mode, and does nothing for 30 s.
	deadline := time.Now().Add(120 * time.Second)
	for {
		role, _ := old.Do("ROLE")
		if l, ok := role.([]any); ok && len(l) > 3 && l[0] == "slave" && l[3] == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old master never became a connected replica: ROLE = %v", role)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	load.finish(t, clean)

	// Every key written and replicated before the kill, every key of the other group, and
	// every key written after the switch reads back: none was lost to the old master.
	// Read back in pipelines: tens of thousands of writes, one round trip each under -race
	// took most of the test's time.
	var check []write
	skipped := 0
	for _, w := range load.writes {
		if groupOf(t, names, w.key) == 0 && w.done.After(replicatedBefore) && !w.start.After(clean) {
			skipped++ // acknowledged by the master about to die, maybe not replicated: may be lost
			continue
		}
		check = append(check, w)
	}
	checked := len(check)
	for len(check) > 0 {
		batch := check[:min(len(check), 500)]
		check = check[len(batch):]
		p := c.Pipeline()
		gets := make([]*redis.StringCmd, len(batch))
		for i, w := range batch {
			gets[i] = p.Get(ctx, w.key)
		}
		_, _ = p.Exec(ctx) // each command's error is checked below
		for i, w := range batch {
			if got, err := gets[i].Result(); err != nil || got != w.val {
				t.Errorf("GET %s = %q, %v; want %q (written %v after the kill)", w.key, got, err, w.val, w.done.Sub(killed))
			}
		}
	}
	t.Logf("%d acknowledged writes read back, %d not checked (on the dying master, before the switch)", checked, skipped)
	for i := range 200 {
		if got, err := c.Get(ctx, spreadKey("pre:", i)).Result(); err != nil || got != "v" {
			t.Errorf("key %d written before the load: %q, %v", i, got, err)
		}
	}

	show = waitGroupMaster(t, admin, "grp-a", promoted)
	waitSample(t, maddr, "aster_sentinel_switches_total", map[string]string{"cluster": "sen", "group": "grp-a"}, 1, 10*time.Second)
	if _, mfs := scrape(t, maddr); true {
		if n, ok := sample(mfs, "aster_sentinel_switches_total", map[string]string{"cluster": "sen", "group": "grp-b"}); ok && n != 0 {
			t.Errorf("grp-b counted %v switches", n)
		}
	}
	list := asterctl(t, nil, "--addr", admin, "cluster", "list")
	js := asterctl(t, nil, "--addr", admin, "-o", "json", "cluster", "show", "sen")
	for what, out := range map[string]string{"asterd log": a.log.String(), "cluster show": show, "cluster list": list.stdout, "json": js.stdout} {
		if strings.Contains(out, sentinelPass) {
			t.Errorf("%s shows the sentinel password", what)
		}
	}
	if !strings.Contains(js.stdout, `"group": "grp-a"`) || !strings.Contains(js.stdout, `"mode": "redis_sentinel"`) {
		t.Errorf("cluster show -o json:\n%s", js.stdout)
	}
}

// TestSentinelReloadAndReplicaReads: with read_from_slave, reads go to the groups' replicas
// (their INFO commandstats count the GETs, the masters' none); a reload that adds a group
// takes it into the ring once its master is known, without an error for the clients, and
// its keys land on its master.
func TestSentinelReloadAndReplicaReads(t *testing.T) {
	t.Parallel()
	ga, gb := redistest.StartGroup(t, "grp-a", 1), redistest.StartGroup(t, "grp-b", 1)
	ss := redistest.StartSentinels(t, 3, ga)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	maddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	const extra = "read_from_slave = true\n"
	a := startAsterdArgs(t, sentinelConfig(ss.Addrs(), []string{"grp-a:1 a"}, admin, maddr, extra))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	for i := range 100 {
		if err := c.Set(ctx, spreadKey("r:", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ga.WaitReplicated(t, ga.Servers[0])
	for i := range 100 {
		if got, err := c.Get(ctx, spreadKey("r:", i)).Result(); err != nil || got != "v" {
			t.Fatalf("GET %d through a replica: %q, %v", i, got, err)
		}
	}
	if calls, _ := ga.Servers[1].CommandStats(t, "get"); calls != 100 {
		t.Errorf("the replica served %d GETs, want 100", calls)
	}
	if calls, _ := ga.Servers[0].CommandStats(t, "get"); calls != 0 {
		t.Errorf("the master served %d GETs, want 0", calls)
	}

	// Add grp-b: the sentinels watch it, then the file names it.
	ss.Monitor(gb)
	load := startSentinelLoad(t, a, 2)
	time.Sleep(300 * time.Millisecond)
	path := a.cmd.Args[2]
	cfg := strings.ReplaceAll(sentinelConfig(ss.Addrs(), []string{"grp-a:1 a", "grp-b:1 b"}, admin, maddr, extra), "%LISTEN%", a.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "configuration reloaded")
	waitGroupMaster(t, admin, "grp-b", gb.Servers[0].Addr)
	time.Sleep(500 * time.Millisecond)
	// Keys move to the new group (a consistent-hash ring grows): a key written just before
	// the swap may read as nil just after it, with the replicas' lag on top; no error, ever.
	load.stop.Store(true)
	load.wg.Wait()
	if len(load.errs) > 0 {
		t.Errorf("%d errors across the reload; first: %v", len(load.errs), load.errs[0].err)
	}

	names := []string{"a", "b"}
	onB := 0
	for i := range 200 {
		k := spreadKey("after:", i)
		if err := c.Set(ctx, k, "w", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if groupOf(t, names, k) == 1 {
			onB++
			if n, _ := gb.Servers[0].Client().Exists(ctx, k).Result(); n != 1 {
				t.Errorf("%s is not on grp-b's master", k)
			}
		}
	}
	if onB == 0 {
		t.Fatal("no key placed on grp-b")
	}
	gb.WaitReplicated(t, gb.Servers[0])
	before, _ := gb.Servers[1].CommandStats(t, "get")
	for i := range 200 {
		k := spreadKey("after:", i)
		if got, err := c.Get(ctx, k).Result(); err != nil || got != "w" {
			t.Errorf("GET %s = %q, %v", k, got, err)
		}
	}
	if after, _ := gb.Servers[1].CommandStats(t, "get"); after-before != onB {
		t.Errorf("grp-b's replica served %d GETs, want %d", after-before, onB)
	}
	if calls, _ := gb.Servers[0].CommandStats(t, "get"); calls != 0 {
		t.Errorf("grp-b's master served %d GETs, want 0", calls)
	}

	// grp-a's only replica dies: once Sentinel flags it down, its reads go to the master.
	ga.Servers[1].Kill()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := asterctl(t, nil, "--addr", admin, "cluster", "show", "sen")
		if !strings.Contains(r.stdout, ga.Servers[1].Addr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead replica is still listed:\n%s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 100 {
		k := spreadKey("r:", i)
		if groupOf(t, names, k) != 0 {
			continue // moved to grp-b when it joined the ring
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s with the replica gone: %q, %v", k, got, err)
		}
	}
	if calls, _ := ga.Servers[0].CommandStats(t, "get"); calls == 0 {
		t.Error("grp-a's master served no GETs with its replica gone")
	}
}

// TestSentinelReplicaRefusingReadsGoToMaster: with read_from_slave, a group's replica that died
// fails reads until Sentinel's down-after-milliseconds, and one cut off from its master with
// replica-serve-stale-data no refuses them (MASTERDOWN) until Sentinel (INFO every 10 s) stops
// listing it; meanwhile those reads go to the group's master and no client sees the failure or
// the refusal.
func TestSentinelReplicaRefusingReadsGoToMaster(t *testing.T) {
	t.Parallel()
	ga := redistest.StartGroup(t, "grp-a", 2)
	ss := redistest.StartSentinels(t, 1, ga)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	maddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterdArgs(t, sentinelConfig(ss.Addrs(), []string{"grp-a:1 a"}, admin, maddr, "read_from_slave = true\n"))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	for i := range 100 {
		if err := c.Set(ctx, spreadKey("mdown:", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ga.WaitReplicated(t, ga.Servers[0])
	master, cut, dead := ga.Servers[0], ga.Servers[1], ga.Servers[2]
	listed := func(s *redistest.Server) bool {
		return strings.Contains(asterctl(t, nil, "--addr", admin, "cluster", "show", "sen").stdout, s.Addr)
	}
	for deadline := time.Now().Add(20 * time.Second); !listed(cut) || !listed(dead); {
		if time.Now().After(deadline) { // waitServing saw the master; the replicas follow
			t.Fatal("the group's replicas are not listed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	reads := func(when string) {
		t.Helper()
		for i := range 100 {
			if got, err := c.Get(ctx, spreadKey("mdown:", i)).Result(); err != nil || got != "v" {
				t.Fatalf("GET %d %s: %q, %v", i, when, got, err)
			}
		}
	}
	untested := ""
	dead.Kill()
	killed := time.Now()
	reads("with a replica dead")
	// Sentinel flags a replica down no sooner than down-after-milliseconds after its last reply:
	// until then the table lists it (asterctl itself takes about that long to run).
	if took := time.Since(killed); took >= redistest.SentinelDownAfter {
		untested = fmt.Sprintf("the reads took %v, the dead replica may have left the table", took)
	}
	before, _ := master.CommandStats(t, "get")
	cutOff(t, cut, "replica-serve-stale-data", "no")
	reads("while a replica refuses reads")
	if _, rejected := cut.CommandStats(t, "get"); rejected == 0 {
		untested = "Sentinel stopped listing the cut-off replica before any GET reached it"
	}
	if after, _ := master.CommandStats(t, "get"); after == before {
		t.Fatal("the master served no GET")
	}
	if untested != "" {
		t.Skip(untested + ": not all tested")
	}
}

// TestSentinelCheck: `asterd --check` refuses a bad Sentinel configuration with every
// problem's line and key, without quoting the sentinel password, and accepts a good one
// without asking any sentinel.
func TestSentinelCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := "[[clusters]]\nname = \"sen\"\nlisten_addr = \"127.0.0.1:1\"\ncache_type = \"redis_sentinel\"\n"
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(head+"servers = [\"grp-a:1 a\", \"grp-a:1 b\"]\nsentinels = [\"127.0.0.1\"]\nsentinel_auth = { password = \""+sentinelPass+"\", user = \"x\" }\nsentinel_poll_interval = 10\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(head+"servers = [\"grp-a:1 a\", \"grp-b\"]\nsentinels = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\"]\nsentinel_auth = \""+sentinelPass+"\"\n"), 0o644)
	out, err := exec.Command(asterdBin, "--check", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("--check on a bad file: %v\n%s", err, out)
	}
	for _, want := range []string{`bad.toml:5: cluster "sen": servers[1]: duplicate master name "grp-a"`, `bad.toml:6: cluster "sen": sentinels[0]`,
		`bad.toml:7: cluster "sen": sentinel_auth.user: unknown key`, `bad.toml:8: cluster "sen": sentinel_poll_interval: 10 out of range 100..3600000 ms`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(asterdBin, "--check", "-c", good).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("--check on a good file: %v\n%s", err, out)
	}
	if strings.Contains(string(out), sentinelPass) {
		t.Errorf("--check quotes the sentinel password:\n%s", out)
	}
}

// TestSentinelPubSubFollowsFailover: a client subscribed through asterd keeps receiving after
// its channel's group fails over: its subscription moves to the new master.
func TestSentinelPubSubFollowsFailover(t *testing.T) {
	t.Parallel()
	ga := redistest.StartGroup(t, "grp-a", 1)
	ss := redistest.StartSentinels(t, 3, ga)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterdArgs(t, sentinelConfig(ss.Addrs(), []string{"grp-a:1 a"}, admin, "", ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	sub := c.Subscribe(ctx, "news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscribe confirmation
		t.Fatal(err)
	}
	msgs := sub.Channel()
	if err := c.Publish(ctx, "news", "before").Err(); err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; m.Payload != "before" {
		t.Fatalf("got %q", m.Payload)
	}

	old := ga.Servers[0]
	old.Kill()
	promoted := ss.WaitSwitch("grp-a", old.Addr, 120*time.Second)
	waitGroupMaster(t, admin, "grp-a", promoted)
	// Publish until the subscriber hears one: it must, once its link moved to the new master.
	deadline := time.After(30 * time.Second)
	for i := 0; ; i++ {
		want := "after-" + strconv.Itoa(i)
		if err := c.Publish(ctx, "news", want).Err(); err != nil {
			t.Fatalf("PUBLISH after the switch: %v", err)
		}
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m.Payload, "after-") {
				t.Fatalf("got %q", m.Payload)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("the subscriber heard nothing published after the failover within 30s")
		}
	}
}

// TestSentinelRemoteDataPlane: a data-plane-only asterd gets the ring of a Sentinel cluster
// from the control plane (it never talks to the sentinels), sends reads to the replicas it
// names, and follows a failover.
func TestSentinelRemoteDataPlane(t *testing.T) {
	t.Parallel()
	ga := redistest.StartGroup(t, "grp-a", 1)
	ss := redistest.StartSentinels(t, 3, ga)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	listen := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	path := filepath.Join(t.TempDir(), "control.toml")
	cfg := strings.Replace(sentinelConfig(ss.Addrs(), []string{"grp-a:1 a"}, admin, "", "read_from_slave = true\n"),
		"[admin]\n", "[admin]\ntoken = \"rt0k\"\n", 1)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "%LISTEN%", listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	runAsterd(t, admin, "--role", "control", "--config", path)
	redistest.WaitListening(t, admin, 10*time.Second)
	data := runAsterd(t, listen, "--role", "data", "--control-plane", admin, "--token", "rt0k")
	redistest.WaitListening(t, listen, 10*time.Second)
	c := data.client(t)
	waitServing(t, c, 10*time.Second)

	if err := c.Set(ctx, "remote:k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ga.WaitReplicated(t, ga.Servers[0])
	if v, err := c.Get(ctx, "remote:k").Result(); err != nil || v != "v1" {
		t.Fatalf("GET: %q, %v", v, err)
	}
	if calls, _ := ga.Servers[1].CommandStats(t, "get"); calls != 1 {
		t.Errorf("the replica served %d GETs through the data plane, want 1", calls)
	}

	old := ga.Servers[0]
	old.Kill()
	promoted := ss.WaitSwitch("grp-a", old.Addr, 120*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Set(ctx, "remote:k", "v2", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the data plane still cannot write 30s after %s was promoted: %v", promoted, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := ga.Server(promoted).Client().Get(ctx, "remote:k").Result(); err != nil || v != "v2" {
		t.Fatalf("the write did not reach the new master %s: %q, %v", promoted, v, err)
	}
}
