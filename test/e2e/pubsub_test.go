package e2e

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// receiveMessages reads go-redis PubSub messages until n arrived, keyed "pattern|channel|payload".
func receiveMessages(t *testing.T, ps *redis.PubSub, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		msg, err := ps.ReceiveTimeout(ctx, 10*time.Second)
		if err != nil {
			t.Fatalf("receive message %d of %d: %v (got %v)", i+1, n, err, got)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			t.Fatalf("got %T %v, want a message", msg, msg)
		}
		got[m.Pattern+"|"+m.Channel+"|"+m.Payload]++
	}
	return got
}

// subscribeGoRedis subscribes through asterd with go-redis and waits for the confirmations.
func subscribeGoRedis(t *testing.T, c *redis.Client, channels, patterns []string) *redis.PubSub {
	t.Helper()
	ps := c.Subscribe(ctx, channels...)
	t.Cleanup(func() { ps.Close() })
	if len(patterns) > 0 {
		if err := ps.PSubscribe(ctx, patterns...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(channels)+len(patterns); i++ {
		if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
			t.Fatalf("confirmation %d: %v", i+1, err)
		}
	}
	return ps
}

// pushes reads raw frames for d and returns the pub/sub messages among them as
// "kind|[pattern|]channel|payload"; any other frame fails the test: across a failover the
// client must see nothing but messages.
func pushes(t *testing.T, r *redistest.Raw, d time.Duration) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return out
		}
		v, err := r.Receive(left)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return out
		}
		if err != nil {
			t.Fatalf("subscriber connection: %v", err)
		}
		arr, ok := v.([]any)
		if !ok || len(arr) < 3 {
			t.Fatalf("unexpected frame %#v", v)
		}
		var parts []string
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				t.Fatalf("unexpected frame %#v", v)
			}
			parts = append(parts, s)
		}
		switch parts[0] {
		case "message", "pmessage", "smessage":
			out = append(out, strings.Join(parts, "|"))
		default:
			t.Fatalf("unexpected frame %#v", v)
		}
	}
}

// expectConfirm reads one (p|s)subscribe confirmation.
func expectConfirm(t *testing.T, r *redistest.Raw, kind, name string, count int64) {
	t.Helper()
	v, err := r.Receive(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 3 || arr[0] != kind || arr[1] != name || arr[2] != count {
		t.Fatalf("confirmation %#v, want [%s %s %d]", v, kind, name, count)
	}
}

// publishUntilDelivered publishes round after round through asterd until the raw subscriber
// has every message kind of one round, and returns how long that took.
func publishUntilDelivered(t *testing.T, c *redis.Client, r *redistest.Raw, d time.Duration, publish func(payload string), want func(payload string) []string) time.Duration {
	t.Helper()
	start := time.Now()
	seen := map[string]bool{}
	for round := 0; ; round++ {
		payload := "p" + strconv.Itoa(round)
		publish(payload)
		for _, m := range pushes(t, r, 300*time.Millisecond) {
			seen[m] = true
		}
		for back := 0; back <= round; back++ {
			all := true
			for _, w := range want("p" + strconv.Itoa(back)) {
				all = all && seen[w]
			}
			if all {
				return time.Since(start)
			}
		}
		if time.Since(start) > d {
			t.Fatalf("messages not delivered %v after the failover; seen %v", d, seen)
		}
	}
}

// TestPubSubStandalone: SUBSCRIBE/PSUBSCRIBE + PUBLISH through asterd over three servers, with
// go-redis and raw RESP, and a subscription kept across the death (and ejection) of its node.
func TestPubSubStandalone(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	a := startAsterd(t, `
[[clusters]]
name = "ps"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1, 1}, true)+`
read_timeout = 500
dial_timeout = 200
ping_fail_limit = 3
ping_interval = 100
`)
	c := a.client(t)
	var chans []string
	for i := 0; i < 12; i++ {
		chans = append(chans, spreadKey("ch.", i))
	}
	ps := subscribeGoRedis(t, a.client(t), chans, []string{"ch.*"})
	// Every server holds some of the channels: PUBLISH and SUBSCRIBE agree on each one's node.
	for _, s := range servers {
		n, err := s.Client().PubSubChannels(ctx, "ch.*").Result()
		if err != nil || len(n) == 0 {
			t.Fatalf("server %s holds no channel (%v, %v): spread them", s.Addr, n, err)
		}
	}
	for _, ch := range chans {
		if n, err := c.Publish(ctx, ch, "v:"+ch).Result(); err != nil || n != 2 {
			t.Fatalf("PUBLISH %s = %d, %v; want 2 (channel and pattern)", ch, n, err)
		}
	}
	got := receiveMessages(t, ps, 2*len(chans))
	for _, ch := range chans {
		if got["|"+ch+"|v:"+ch] != 1 || got["ch.*|"+ch+"|v:"+ch] != 1 {
			t.Fatalf("messages for %s: %v", ch, got)
		}
	}

	// A raw subscriber, then its channel's server dies and is ejected.
	r := redistest.DialRaw(t, a.Addr)
	ch := "fo.channel"
	r.Send("SUBSCRIBE", ch)
	expectConfirm(t, r, "subscribe", ch, 1)
	r.Send("PSUBSCRIBE", "fo.*")
	expectConfirm(t, r, "psubscribe", "fo.*", 2)
	var victim *redistest.Server
	for _, s := range servers {
		if m, _ := s.Client().PubSubNumSub(ctx, ch).Result(); m[ch] == 1 {
			victim = s
		}
	}
	if victim == nil {
		t.Fatal("no server has the raw subscription")
	}
	publish := func(p string) { c.Publish(ctx, ch, p) }
	want := func(p string) []string { return []string{"message|" + ch + "|" + p, "pmessage|fo.*|" + ch + "|" + p} }
	publishUntilDelivered(t, c, r, 5*time.Second, publish, want)
	victim.Kill()
	took := publishUntilDelivered(t, c, r, 20*time.Second, publish, want)
	t.Logf("messages delivered again %v after the channel's server died", took)
	// Exactly once each from now on: the subscription moved, it was not doubled.
	c.Publish(ctx, ch, "final")
	if got := pushes(t, r, time.Second); len(got) != 2 || got[0] == got[1] {
		t.Fatalf("after the move: %v, want each of %v once", got, want("final"))
	}
	// The same connection is an ordinary client again after unsubscribing.
	r.Send("UNSUBSCRIBE")
	expectConfirm(t, r, "unsubscribe", ch, 1)
	r.Send("PUNSUBSCRIBE")
	expectConfirm(t, r, "punsubscribe", "fo.*", 0)
	if v, err := r.Do("SET", "after", "1"); err != nil || v != "OK" {
		t.Fatalf("SET after unsubscribing: %q, %v", v, err)
	}
}

// TestPubSubCluster: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and (S)PUBLISH through asterd to a real
// Redis Cluster, and the subscriptions kept across a manual failover (CLUSTER FAILOVER) and a
// master killed outright.
func TestPubSubCluster(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	c := a.client(t)
	waitServing(t, c, 10*time.Second)
	direct := rc.Client()

	// go-redis through asterd; publishers through asterd and straight to the cluster (any
	// node: PUBLISH is broadcast over the cluster bus).
	chans := []string{"{a}.news", "{b}.news", "{c}.news"}
	ps := subscribeGoRedis(t, a.client(t), chans, []string{"*.news"})
	for _, ch := range chans {
		if err := c.Publish(ctx, ch, "via-asterd").Err(); err != nil {
			t.Fatal(err)
		}
		if err := direct.Publish(ctx, ch, "direct").Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := receiveMessages(t, ps, 4*len(chans))
	for _, ch := range chans {
		for _, p := range []string{"via-asterd", "direct"} {
			if got["|"+ch+"|"+p] != 1 || got["*.news|"+ch+"|"+p] != 1 {
				t.Fatalf("messages for %s/%s: %v", ch, p, got)
			}
		}
	}
	// Sharded pub/sub: channels of one slot on its master; different slots are refused.
	sps := a.client(t).SSubscribe(ctx, "{s}.one", "{s}.two")
	defer sps.Close()
	for i := 0; i < 2; i++ {
		if _, err := sps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
			t.Fatalf("ssubscribe confirmation: %v", err)
		}
	}
	if n, err := c.SPublish(ctx, "{s}.two", "sharded").Result(); err != nil || n != 1 {
		t.Fatalf("SPUBLISH = %d, %v; want 1", n, err)
	}
	if m, err := sps.ReceiveTimeout(ctx, 10*time.Second); err != nil || m.(*redis.Message).Channel != "{s}.two" || m.(*redis.Message).Payload != "sharded" {
		t.Fatalf("smessage: %v, %v", m, err)
	}
	cross := redistest.DialRaw(t, a.Addr)
	cross.Send("SSUBSCRIBE", "{s}.one", "{t}.one")
	if v, _ := cross.Receive(5 * time.Second); v != redistest.ErrReply("CROSSSLOT Keys in request don't hash to the same slot") {
		t.Fatalf("SSUBSCRIBE across slots: %#v", v)
	}

	// A raw subscriber of all three kinds on one slot, through two failovers.
	ch, shard := "{fo}.ch", "{fo}.sh"
	slot := int(route.Slot([]byte(ch)))
	r := redistest.DialRaw(t, a.Addr)
	r.Send("SUBSCRIBE", ch)
	expectConfirm(t, r, "subscribe", ch, 1)
	r.Send("PSUBSCRIBE", "{fo}.*")
	expectConfirm(t, r, "psubscribe", "{fo}.*", 2)
	r.Send("SSUBSCRIBE", shard)
	expectConfirm(t, r, "ssubscribe", shard, 1)
	publish := func(p string) {
		c.Publish(ctx, ch, p)
		c.SPublish(ctx, shard, p)
	}
	want := func(p string) []string {
		return []string{"message|" + ch + "|" + p, "pmessage|{fo}.*|" + ch + "|" + p, "smessage|" + shard + "|" + p}
	}
	publishUntilDelivered(t, c, r, 5*time.Second, publish, want)

	// Manual failover: the replica takes over, the old master stays up as its replica.
	oldMaster := rc.MasterOf(slot)
	replica := replicaOf(t, rc, oldMaster)
	if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", replica.Addr, err)
	}
	waitMaster(t, rc, slot, replica, 20*time.Second)
	took := publishUntilDelivered(t, c, r, 20*time.Second, publish, want)
	t.Logf("messages delivered %v after CLUSTER FAILOVER", took)
	// The subscriptions followed the slot to its new master.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n1, _ := replica.Client().PubSubNumSub(ctx, ch).Result()
		n2, _ := replica.Client().PubSubShardNumSub(ctx, shard).Result()
		if n1[ch] == 1 && n2[shard] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new master %s has subscribers %v %v, want the moved subscriptions", replica.Addr, n1, n2)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The new master dies: the old one is promoted again.
	replica.Kill()
	killed := time.Now()
	waitMaster(t, rc, slot, oldMaster, 30*time.Second)
	took = publishUntilDelivered(t, c, r, 30*time.Second, publish, want)
	t.Logf("messages delivered %v after the master was killed", time.Since(killed))
	_ = took
	publish("final")
	got2 := pushes(t, r, time.Second)
	sort.Strings(got2)
	w := want("final")
	sort.Strings(w)
	if fmt.Sprint(got2) != fmt.Sprint(w) {
		t.Fatalf("after the failovers: %v, want each of %v once", got2, w)
	}
}

// replicaOf returns a live replica of master.
func replicaOf(t *testing.T, rc *redistest.Cluster, master *redistest.Server) *redistest.Server {
	t.Helper()
	for _, n := range rc.Nodes {
		if n == master {
			continue
		}
		role, err := n.Do("ROLE")
		if err != nil {
			continue
		}
		r, _ := role.([]any)
		if len(r) >= 3 && r[0] == "slave" && fmt.Sprintf("%v:%v", r[1], r[2]) == master.Addr {
			return n
		}
	}
	t.Fatalf("no replica of %s", master.Addr)
	return nil
}

// waitMaster waits until the cluster says node serves slot and is OK everywhere.
func waitMaster(t *testing.T, rc *redistest.Cluster, slot int, node *redistest.Server, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for rc.MasterOf(slot) != node {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become master of slot %d within %v", node.Addr, slot, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rc.WaitOK(t, d)
}
