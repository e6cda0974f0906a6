package e2e

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/redistest"
)

// downWithin is the promise: a dead node is DOWN within 3 s with ejection off and the
// default ping interval. It is checked on asterd's own clock (the node's state_since, the
// time of the failed ping that took it down), not on how soon the test happened to look.
const downWithin = 3 * time.Second

// healthPatience bounds how long a test waits to see a state at all; generous, since the
// machine may be busy.
const healthPatience = 20 * time.Second

// nodeJSON is a node of `asterctl -o json cluster show`.
type nodeJSON struct {
	Address, State, Reason, SetBy, StateSince, LastError, LastErrorTime string
	FailedPings                                                         int
}

// healthAsterd runs asterd with the admin API and the metrics endpoint on free ports.
func healthAsterd(t *testing.T, clusters string) (a *asterd, admin, metricsAddr string) {
	t.Helper()
	admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	metricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	a = startAsterd(t, "[metrics]\nlisten_addr = "+strconv.Quote(metricsAddr)+
		"\n[admin]\nlisten_addr = "+strconv.Quote(admin)+"\n"+clusters)
	redistest.WaitListening(t, admin, 10*time.Second)
	redistest.WaitListening(t, metricsAddr, 10*time.Second)
	return a, admin, metricsAddr
}

// showNodes runs `asterctl -o json cluster show name` and returns its nodes by address.
func showNodes(t *testing.T, admin, name string) map[string]nodeJSON {
	t.Helper()
	r := asterctl(t, nil, "--addr", admin, "-o", "json", "cluster", "show", name)
	if r.code != 0 {
		t.Fatalf("cluster show -o json: %v", r)
	}
	var resp struct {
		Cluster struct{ Nodes []nodeJSON }
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("cluster show -o json: %v\n%s", err, r.stdout)
	}
	nodes := map[string]nodeJSON{}
	for _, n := range resp.Cluster.Nodes {
		nodes[n.Address] = n
	}
	return nodes
}

// waitNodeState polls `asterctl -o json cluster show` until node addr is in state (e.g.
// "DOWN", as the table shows it) and returns it.
func waitNodeState(t *testing.T, admin, cluster, addr, state string) nodeJSON {
	t.Helper()
	deadline := time.Now().Add(healthPatience)
	for {
		n, ok := showNodes(t, admin, cluster)[addr]
		if ok && n.State == state {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s of %q: %+v (listed %v), not %s after %v", addr, cluster, n, ok, state, healthPatience)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// since parses a node's state_since and checks it lies between from and at most downWithin
// after it.
func checkSince(t *testing.T, what string, n nodeJSON, from time.Time) {
	t.Helper()
	since, err := time.Parse(time.RFC3339Nano, n.StateSince)
	if err != nil {
		t.Fatalf("%s: state_since %q: %v", what, n.StateSince, err)
	}
	// A little slack below: the test's clock reading and asterd's are not one instant.
	if since.Before(from.Add(-100*time.Millisecond)) || since.After(from.Add(downWithin)) {
		t.Errorf("%s since %v, want within %v of %v", what, since, downWithin, from)
	}
}

// logLines counts the lines of asterd's log that hold every one of parts.
func logLines(log string, parts ...string) int {
	n := 0
next:
	for _, l := range strings.Split(log, "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestHealthDownWithoutEjection: with ping_fail_limit = 0 and ping_interval unset, a killed
// node is DOWN (with its error and since-when) in asterctl, the admin API and
// aster_backend_up within 3 s, logged once at WARN; back UP once it restarts, logged once;
// and the ring never changed: its keys stay placed as before.
func TestHealthDownWithoutEjection(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a, admin, metricsAddr := healthAsterd(t, `
[[clusters]]
name = "h"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, ones(3), true)+`
read_timeout = 500
dial_timeout = 200
`)
	c := a.client(t)
	const keys = 300
	place := func(prefix string) {
		t.Helper()
		for i := range keys {
			k := spreadKey(prefix, i)
			if err := c.Set(ctx, k, i, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
		}
	}
	ownerOf := func(prefix string) map[string]int {
		t.Helper()
		m := map[string]int{}
		direct := make([]*redis.Client, len(servers))
		for si, s := range servers {
			direct[si] = s.Client()
		}
		for i := range keys {
			k := spreadKey(prefix, i)
			for si := range servers {
				if n, err := direct[si].Exists(ctx, k).Result(); err == nil && n == 1 {
					m[k] = si
				}
			}
		}
		return m
	}
	place("k:")
	owner := ownerOf("k:") // key → index of the server that holds it
	if len(owner) != keys {
		t.Fatalf("%d of %d keys found on the servers", len(owner), keys)
	}
	for si := range servers {
		if n := countOwned(owner, si); n == 0 {
			t.Fatalf("server %d holds none of the keys: the placement check would prove nothing", si)
		}
	}
	for _, s := range servers {
		waitNodeState(t, admin, "h", s.Addr, "UP")
	}

	dead := servers[1]
	dead.Kill()
	killed := time.Now()
	n := waitNodeState(t, admin, "h", dead.Addr, "DOWN")
	checkSince(t, "DOWN", n, killed)
	if !strings.Contains(n.LastError, "connection refused") || n.LastError != n.Reason || n.SetBy != "health" || n.FailedPings < 1 {
		t.Errorf("DOWN node %+v: want reason = last error = the refused dial, set by health", n)
	}
	if _, err := time.Parse(time.RFC3339Nano, n.LastErrorTime); err != nil {
		t.Errorf("last_error_time %q: %v", n.LastErrorTime, err)
	}
	r := asterctl(t, nil, "--addr", admin, "cluster", "show", "h")
	if row := nodeRow(r.stdout, dead.Addr); len(row) < 8 || row[4] != "DOWN" || row[6] != "health" || !strings.Contains(strings.Join(row, " "), "connection refused") {
		t.Errorf("cluster show row %q, want DOWN since ..., health, the error\n%s", row, r)
	} else if _, err := time.Parse(time.RFC3339, row[5]); err != nil {
		t.Errorf("cluster show SINCE %q: %v", row[5], err)
	}
	// The admin API itself, as any client sees it.
	conn, err := grpc.NewClient(admin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := asterv1.NewAdminServiceClient(conn).GetCluster(ctx, &asterv1.GetClusterRequest{Name: "h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pn := range got.GetCluster().GetNodes() {
		want := asterv1.NodeState_NODE_STATE_UP
		if pn.GetAddress() == dead.Addr {
			want = asterv1.NodeState_NODE_STATE_DOWN
			if pn.GetStateSince() == nil || pn.GetLastError() == "" {
				t.Errorf("admin API: DOWN node without since or error: %v", pn)
			}
		}
		if pn.GetState() != want {
			t.Errorf("admin API: node %s %v, want %v", pn.GetAddress(), pn.GetState(), want)
		}
	}
	for _, s := range servers {
		want := 1.0
		if s == dead {
			want = 0
		}
		waitSample(t, metricsAddr, "aster_backend_up", map[string]string{"cluster": "h", "node": s.Addr}, want, healthPatience)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %q with two nodes of three serving", code, body)
	}

	// The ring is unchanged: keys of live nodes are where they were, keys of the dead one
	// fail rather than being answered (empty) by another node.
	time.Sleep(3 * time.Second) // several more failed pings: still one log line
	for k, si := range owner {
		v, err := c.Get(ctx, k).Result()
		switch {
		case si == 1 && (err == nil || errors.Is(err, redis.Nil)):
			t.Fatalf("key %s of the dead node answered %q, %v: it moved to another node", k, v, err)
		case si != 1 && err != nil:
			t.Fatalf("key %s of live node %d: %v", k, si, err)
		}
	}
	log := a.log.String()
	if n := logLines(log, "[WARN]", "node down", "node="+dead.Addr); n != 1 {
		t.Errorf("%d WARN 'node down' lines for %s, want 1", n, dead.Addr)
	}
	if n := logLines(log, "node ejected"); n != 0 {
		t.Errorf("ping_fail_limit 0 ejected: %d lines", n)
	}

	dead.Restart()
	back := time.Now()
	n = waitNodeState(t, admin, "h", dead.Addr, "UP")
	checkSince(t, "UP again", n, back)
	if !strings.Contains(n.LastError, "connection refused") || n.FailedPings != 0 || n.Reason != "" {
		t.Errorf("node back UP: %+v; want the last error kept, no reason, 0 failed pings", n)
	}
	waitSample(t, metricsAddr, "aster_backend_up", map[string]string{"cluster": "h", "node": dead.Addr}, 1, healthPatience)
	time.Sleep(2 * time.Second)
	log = a.log.String()
	if n := logLines(log, "node up", "node="+dead.Addr); n != 1 {
		t.Errorf("%d 'node up' lines for %s, want 1", n, dead.Addr)
	}
	if n := logLines(log, "node down", "node="+dead.Addr); n != 1 {
		t.Errorf("%d 'node down' lines for %s after the restart, want still 1", n, dead.Addr)
	}
	// Placement never changed: new keys land where the same keys did before.
	place("k:")
	if now := ownerOf("k:"); len(now) != keys {
		t.Errorf("%d of %d keys found after the restart", len(now), keys)
	} else {
		for k, si := range owner {
			if now[k] != si {
				t.Fatalf("key %s now on server %d, was on %d: the ring changed", k, now[k], si)
			}
		}
	}
}

func countOwned(owner map[string]int, si int) int {
	n := 0
	for _, o := range owner {
		if o == si {
			n++
		}
	}
	return n
}

// TestHealthAuthRefused: a node that refuses the cluster's backend_password is DOWN with the
// server's own error; no output (asterctl, JSON, metrics, readiness, log) shows a password.
func TestHealthAuthRefused(t *testing.T) {
	t.Parallel()
	const pass, other = "right-Pa55-word", "other-Pa55-word"
	good := redistest.Start(t, "--requirepass", pass)
	bad := redistest.Start(t, "--requirepass", other)
	a, admin, metricsAddr := healthAsterd(t, `
[[clusters]]
name = "auth"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList([]*redistest.Server{good, bad}, ones(2), false)+`
backend_password = "`+pass+`"
`)
	n := waitNodeState(t, admin, "auth", bad.Addr, "DOWN")
	if !strings.Contains(n.Reason, "WRONGPASS") || !strings.Contains(n.LastError, "AUTH") {
		t.Errorf("AUTH-refusing node: %+v; want the server's WRONGPASS error", n)
	}
	if g := showNodes(t, admin, "auth")[good.Addr]; g.State != "UP" {
		t.Errorf("node with the right password: %+v", g)
	}
	waitSample(t, metricsAddr, "aster_backend_up", map[string]string{"cluster": "auth", "node": bad.Addr}, 0, healthPatience)
	time.Sleep(2 * time.Second) // a few more refused pings

	outputs := map[string]string{"log": a.log.String()}
	for _, args := range [][]string{{"cluster", "show", "auth"}, {"-o", "json", "cluster", "show", "auth"}, {"cluster", "list"}, {"-o", "json", "cluster", "list"}} {
		r := asterctl(t, nil, append([]string{"--addr", admin}, args...)...)
		outputs[strings.Join(args, " ")] = r.stdout + r.stderr
	}
	_, outputs["metrics"] = httpGet(t, "http://"+metricsAddr+"/metrics")
	_, outputs["readyz"] = httpGet(t, "http://"+metricsAddr+"/readyz")
	for what, out := range outputs {
		for _, secret := range []string{pass, other} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows a password:\n%s", what, out)
			}
		}
	}
	if n := logLines(outputs["log"], "[WARN]", "node down", "node="+bad.Addr, "WRONGPASS"); n != 1 {
		t.Errorf("%d WARN 'node down' lines with WRONGPASS for %s, want 1", n, bad.Addr)
	}
}

// TestHealthReadyz: /readyz is 503, naming the cluster, while every node of a cluster is down,
// and 200 again once one is back; another cluster that serves does not hide it.
func TestHealthReadyz(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	_, _, metricsAddr := healthAsterd(t, `
[[clusters]]
name = "dies"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers[:2], ones(2), false)+`

[[clusters]]
name = "lives"
listen_addr = "127.0.0.1:`+strconv.Itoa(redistest.FreePort(t))+`"
cache_type = "redis"
servers = `+serverList(servers[2:], ones(1), false)+`
ping_fail_limit = 2
ping_interval = 1000
`)
	readyz := func() (int, string) { return httpGet(t, "http://"+metricsAddr+"/readyz") }
	waitReady := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(healthPatience)
		for {
			code, body := readyz()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz %d %q, want %d after %v", code, body, want, healthPatience)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReady(http.StatusOK)

	servers[0].Kill()
	time.Sleep(2 * time.Second) // one node of two down: still ready
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz %d %q with one node of two serving", code, body)
	}
	servers[1].Kill()
	body := waitReady(http.StatusServiceUnavailable)
	if !strings.Contains(body, `cluster "dies" has no serving node`) || strings.Contains(body, `"lives"`) {
		t.Errorf("/readyz body %q: want the dead cluster named, and only it", body)
	}

	servers[1].Restart()
	waitReady(http.StatusOK)

	// An ejecting cluster whose only node is ejected has no serving node either.
	servers[2].Kill()
	body = waitReady(http.StatusServiceUnavailable)
	if !strings.Contains(body, `cluster "lives" has no serving node`) {
		t.Errorf("/readyz body %q: want cluster \"lives\" named", body)
	}
}

// TestHealthRedisCluster: in redis_cluster mode every node of the slot map, masters and
// replicas, is pinged: a killed node is DOWN within 3 s, and aster_backend_up says 0.
func TestHealthRedisCluster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	// fetch = 1: the slot map is refreshed each second, so a killed node leaves the status once
	// the cluster marks it failed; it must be seen DOWN by its pings before that.
	_, admin, metricsAddr := healthAsterd(t, clusterConfig(rc.Seeds(), ""))
	conn, err := grpc.NewClient(admin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rpc := asterv1.NewAdminServiceClient(conn)
	nodes := func() map[string]*asterv1.Node {
		resp, err := rpc.GetCluster(ctx, &asterv1.GetClusterRequest{Name: "rc"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*asterv1.Node{}
		for _, n := range resp.GetCluster().GetNodes() {
			m[n.GetAddress()] = n
		}
		return m
	}
	// Every node is listed UP, with a since-when: pinged.
	deadline := time.Now().Add(healthPatience)
	for {
		m := nodes()
		ok := len(m) == len(rc.Nodes)
		for _, s := range rc.Nodes {
			n := m[s.Addr]
			ok = ok && n.GetState() == asterv1.NodeState_NODE_STATE_UP && n.GetStateSince() != nil
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes not all UP and pinged after %v: %v", healthPatience, m)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, victim := range []*redistest.Server{rc.Nodes[len(rc.Nodes)-1], rc.MasterOf(0)} { // a replica, then a master
		role := nodes()[victim.Addr].GetRole()
		victim.Kill()
		killed := time.Now()
		// Polled through the admin API directly: the node may leave the slot map once the
		// cluster marks it failed (cluster-node-timeout 2 s) and a fetch sees it.
		var down *asterv1.Node
		deadline := time.Now().Add(healthPatience)
		for down == nil {
			n, ok := nodes()[victim.Addr]
			switch {
			case !ok:
				t.Fatalf("%v %s left the slot map before it was seen DOWN", role, victim.Addr)
			case n.GetState() == asterv1.NodeState_NODE_STATE_DOWN:
				down = n
			case time.Now().After(deadline):
				t.Fatalf("%v %s: %v, not DOWN after %v", role, victim.Addr, n, healthPatience)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if since := down.GetStateSince().AsTime(); since.After(killed.Add(downWithin)) {
			t.Errorf("%v DOWN since %v, %v after the kill; want within %v", role, since, since.Sub(killed), downWithin)
		}
		if !strings.Contains(down.GetLastError(), victim.Addr) || down.GetSetBy() != "health" {
			t.Errorf("%v DOWN: %v; want the error naming the node, set by health", role, down)
		}
		_, mfs := scrape(t, metricsAddr)
		if v, ok := sample(mfs, "aster_backend_up", map[string]string{"cluster": "rc", "node": victim.Addr}); ok && v != 0 {
			t.Errorf("aster_backend_up for DOWN %v %s = %v", role, victim.Addr, v)
		}
	}
}
