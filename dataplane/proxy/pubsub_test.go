package proxy_test

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/internal/redistest"
)

// dialRaw opens a raw connection to addr, closed at test end.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	e := &env{addr: addr}
	return e.raw(t)
}

// pingMarker ends the replies of one scripted command (sendUntilMarker).
const pingMarker = "--end--"

// sendUntilMarker sends cmd followed by PING <marker> and appends every reply up to the
// PING's: that reply (a bulk string in normal mode, an array in subscribed mode) ends the
// command's replies, however many there are.
func sendUntilMarker(r *rawConn, cmd string, got []string) []string {
	r.send(cmd + cmdFrame("PING", pingMarker))
	for {
		reply := wholeReply(r)
		got = append(got, reply)
		if strings.Contains(reply, pingMarker) {
			return got
		}
	}
}

// numsub asks a server directly how many clients subscribe to ch.
func numsub(t *testing.T, s *redistest.Server, ch string) int64 {
	t.Helper()
	m, err := s.Client().PubSubNumSub(ctx, ch).Result()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB on %s: %v", s.Addr, err)
	}
	return m[ch]
}

// TestPubSubRepliesMatchRedis runs one pub/sub script against a real redis-server and through
// the proxy: every reply must be byte for byte the same, counts and errors included.
func TestPubSubRepliesMatchRedis(t *testing.T) {
	e := startEnv(t, envOpts{})
	script := []string{
		cmdFrame("UNSUBSCRIBE"),
		cmdFrame("UNSUBSCRIBE", "x", "y"),
		cmdFrame("PUNSUBSCRIBE", "p*"),
		cmdFrame("SUBSCRIBE", "a", "b", "a"),
		cmdFrame("PSUBSCRIBE", "p*"),
		cmdFrame("SSUBSCRIBE", "s1"),
		cmdFrame("GET", "x"),
		cmdFrame("ECHO", "x"),
		cmdFrame("NOSUCH", "x"),
		cmdFrame("SUBSCRIBE"),
		cmdFrame("PING"),
		cmdFrame("PING", "hi"),
		cmdFrame("PING", "a", "b"),
		cmdFrame("UNSUBSCRIBE", "b", "c"),
		cmdFrame("UNSUBSCRIBE"),
		cmdFrame("UNSUBSCRIBE"),
		cmdFrame("PUNSUBSCRIBE"),
		cmdFrame("SSUBSCRIBE", "s2"),
		cmdFrame("SUNSUBSCRIBE", "s1"),
		cmdFrame("SUNSUBSCRIBE"),
		// No subscription left: back to normal mode.
		cmdFrame("SET", "k", "v"),
		cmdFrame("GET", "k"),
		cmdFrame("SUBSCRIBE", "c"),
		cmdFrame("RESET"),
		cmdFrame("GET", "k"),
	}
	run := func(addr string) []string {
		r := dialRaw(t, addr)
		var got []string
		for _, c := range script {
			got = sendUntilMarker(r, c, got)
		}
		return got
	}
	direct := redistest.Start(t)
	want := run(direct.Addr)
	got := run(e.addr)
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("through the proxy:\n%q\nredis-server:\n%q", got, want)
	}
}

// TestPubSubRESP3MatchesRedis: a RESP3 client gets Redis's push frames for confirmations and
// messages, a '_' null channel and a plain PONG, byte for byte as from redis-server; and, as
// RESP3 has no subscribed context, any other command runs while subscribed (forwarded, split
// over nodes, answered by the proxy, refused as unknown).
func TestPubSubRESP3MatchesRedis(t *testing.T) {
	e := startEnv(t, envOpts{})
	script := []string{
		cmdFrame("UNSUBSCRIBE"),
		cmdFrame("SUBSCRIBE", "a", "b"),
		cmdFrame("PSUBSCRIBE", "a*"),
		cmdFrame("SET", "k", "v"),
		cmdFrame("GET", "k"),
		cmdFrame("MGET", "k", "k2", "k3", "k4", "k"),
		cmdFrame("HSET", "h", "f", "1"),
		cmdFrame("HGETALL", "h"), // a map for RESP3
		cmdFrame("ECHO", "x"),
		cmdFrame("NOSUCH", "x"),
		cmdFrame("GET"),
		cmdFrame("XREAD", "STREAMS", "s", "0"), // no BLOCK: not a blocking command
		cmdFrame("DEL", "k", "h"),
		cmdFrame("PUBLISH", "a", "hello"), // through a second client, see below
		cmdFrame("PING"),
		cmdFrame("PING", "hi"),
		cmdFrame("UNSUBSCRIBE", "b"),
		cmdFrame("UNSUBSCRIBE"),
		cmdFrame("PUNSUBSCRIBE"),
		cmdFrame("GET", "k"),
	}
	run := func(addr string) []string {
		r, pub := dialRaw(t, addr), dialRaw(t, addr)
		r.send(cmdFrame("HELLO", "3"))
		_ = wholeReply(r) // the server's own map: proxy and redis-server differ, by design
		var got []string
		for _, c := range script {
			if strings.HasPrefix(c, "*3\r\n$7\r\nPUBLISH") {
				pub.send(c)
				got = append(got, wholeReply(pub), wholeReply(r), wholeReply(r)) // message + pmessage
				continue
			}
			got = sendUntilMarker(r, c, got)
		}
		return got
	}
	direct := redistest.Start(t)
	want := run(direct.Addr)
	got := run(e.addr)
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("through the proxy:\n%q\nredis-server:\n%q", got, want)
	}
	if !strings.Contains(strings.Join(got, ""), ">3\r\n$7\r\nmessage\r\n") {
		t.Fatalf("no RESP3 push message in %q", got)
	}
}

// TestPubSubRESP3RefusesConnectionHolders: in RESP3 subscribed mode the commands that would
// hold the connection (blocking ones, transactions) and HELLO are refused with an error, and the
// subscription goes on.
func TestPubSubRESP3RefusesConnectionHolders(t *testing.T) {
	e := startEnv(t, envOpts{})
	r, pub := dialRaw(t, e.addr), dialRaw(t, e.addr)
	r.send(cmdFrame("HELLO", "3"))
	_ = wholeReply(r)
	r.send(cmdFrame("SUBSCRIBE", "a"))
	if got := wholeReply(r); !strings.HasPrefix(got, ">3\r\n$9\r\nsubscribe\r\n") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	for _, c := range [][]string{{"BLPOP", "l", "0"}, {"MULTI"}, {"WATCH", "k"}, {"HELLO", "2"}, {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}} {
		r.send(cmdFrame(c...))
		want := "-ERR '" + strings.ToLower(c[0]) + "' is not supported by the proxy in subscribed mode\r\n"
		if got := wholeReply(r); got != want {
			t.Fatalf("%v in subscribed mode: %q, want %q", c, got, want)
		}
	}
	pub.send(cmdFrame("PUBLISH", "a", "still"))
	_ = wholeReply(pub)
	if got := wholeReply(r); got != ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nstill\r\n" {
		t.Fatalf("message after the refusals: %q", got)
	}
}

// TestPubSubSubscribePublish subscribes (go-redis PubSub) to channels that live on every node
// and patterns, publishes through the proxy, and checks each message arrives once, from the
// node PUBLISH was routed to.
func TestPubSubSubscribePublish(t *testing.T) {
	e := startEnv(t, envOpts{})
	ring := e.install(t, 2, nodesOf(e))
	var chans []string
	for i := range e.servers {
		chans = append(chans, keyOn(t, ring, i, "news."))
	}
	ps := e.client.Subscribe(ctx, chans...)
	defer ps.Close()
	for range chans {
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("subscribe confirmation: %v", err)
		}
	}
	// Each channel is subscribed on its own ring node, and only there.
	for i, ch := range chans {
		for j, s := range e.servers {
			want := int64(0)
			if i == j {
				want = 1
			}
			if got := numsub(t, s, ch); got != want {
				t.Errorf("node %d has %d subscribers of %s (ring node %d), want %d", j, got, ch, i, want)
			}
		}
	}
	if err := ps.PSubscribe(ctx, "news.*"); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatalf("psubscribe confirmation: %v", err)
	}
	pub := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1})
	defer pub.Close()
	for _, ch := range chans {
		n, err := pub.Publish(ctx, ch, "hello "+ch).Result()
		if err != nil || n != 2 { // the channel subscription and the pattern, on one node
			t.Fatalf("PUBLISH %s = %d, %v; want 2 receivers", ch, n, err)
		}
	}
	got := map[string]int{}
	for range 2 * len(chans) {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("receive: %v (got %v)", err, got)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			t.Fatalf("unexpected %T %v", msg, msg)
		}
		if m.Payload != "hello "+m.Channel {
			t.Fatalf("message %+v", m)
		}
		got[m.Pattern+"|"+m.Channel]++
	}
	for _, ch := range chans {
		if got["|"+ch] != 1 || got["news.*|"+ch] != 1 {
			t.Fatalf("messages of %s: %v", ch, got)
		}
	}
	// PUBSUB NUMSUB is routed like PUBLISH; CHANNELS would need every node.
	if m, err := pub.PubSubNumSub(ctx, chans[1]).Result(); err != nil || m[chans[1]] != 1 {
		t.Fatalf("PUBSUB NUMSUB = %v, %v", m, err)
	}
	if err := pub.PubSubChannels(ctx, "*").Err(); err == nil || !strings.Contains(err.Error(), "not supported by the proxy") {
		t.Fatalf("PUBSUB CHANNELS: %v", err)
	}
	// Unsubscribing everything brings the connection back to request/reply.
	if err := ps.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ps.PUnsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return numsub(t, e.servers[0], chans[0]) == 0 })
}

// TestPubSubPipelinedAroundSubscribe sends commands before, inside and after a subscription in
// one write: the batch before is answered first, and what follows the last UNSUBSCRIBE is
// served in normal mode.
func TestPubSubPipelinedAroundSubscribe(t *testing.T) {
	e := startEnv(t, envOpts{})
	r := e.raw(t)
	r.send(cmdFrame("SET", "pk", "1") + cmdFrame("SUBSCRIBE", "pc") + cmdFrame("GET", "pk") +
		cmdFrame("UNSUBSCRIBE", "pc") + cmdFrame("GET", "pk") + cmdFrame("INCR", "pk"))
	want := []string{
		"+OK\r\n",
		"*3\r\n$9\r\nsubscribe\r\n$2\r\npc\r\n:1\r\n",
		"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
		"*3\r\n$11\r\nunsubscribe\r\n$2\r\npc\r\n:0\r\n",
		"$1\r\n1\r\n",
		":2\r\n",
	}
	for i, w := range want {
		if got := wholeReply(r); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
}

// TestPubSubNodeDeathResubscribes kills the node a channel lives on: its subscription is
// retried with backoff and comes back when the node does, and when the node leaves the ring
// (ejection) it moves to the channel's new node. The client sees only messages.
func TestPubSubNodeDeathResubscribes(t *testing.T) {
	e := startEnv(t, envOpts{})
	nodes := nodesOf(e)
	ring := e.install(t, 2, nodes)
	ch := keyOn(t, ring, 0, "fo.")
	r := e.raw(t)
	r.send(cmdFrame("SUBSCRIBE", ch))
	if got, want := wholeReply(r), "*3\r\n$9\r\nsubscribe\r\n"+bulk(ch)+":1\r\n"; got != want {
		t.Fatalf("confirmation %q, want %q", got, want)
	}
	pub := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1})
	defer pub.Close()
	expect := func(payload string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			n, _ := pub.Publish(ctx, ch, payload).Result()
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PUBLISH %s reaches no subscriber after 15s", payload)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got, want := wholeReply(r), "*3\r\n$7\r\nmessage\r\n"+bulk(ch)+bulk(payload); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	expect("before")

	// The node dies and comes back on the same address: resubscribed there.
	e.servers[0].Kill()
	time.Sleep(300 * time.Millisecond)
	e.servers[0].Restart()
	expect("after restart")

	// The node dies and leaves the ring: the channel moves to its new ring node.
	e.servers[0].Kill()
	ring = e.install(t, 3, nodes[1:])
	if n := ring.Pick([]byte(ch)); n < 0 {
		t.Fatal("no node for the channel")
	}
	expect("after ejection")
}

// TestPubSubSlowSubscriberDisconnected floods a subscriber that never reads: the proxy must
// disconnect it once its unread output passes the limit, instead of buffering without bound.
func TestPubSubSlowSubscriberDisconnected(t *testing.T) {
	restore := proxy.SetPubSubOutputLimit(256 << 10)
	t.Cleanup(restore) // registered before startEnv: runs after the cluster closed
	e := startEnv(t, envOpts{nodes: 1})
	r := e.raw(t)
	r.send(cmdFrame("SUBSCRIBE", "flood"))
	if got := wholeReply(r); !strings.Contains(got, "subscribe") {
		t.Fatalf("confirmation %q", got)
	}
	direct := e.servers[0].Client()
	payload := strings.Repeat("x", 64<<10)
	published := 0
	for i := 0; i < 2000; i++ { // up to 128 MiB, far more than socket buffers hold
		n, err := direct.Publish(ctx, "flood", payload).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break // the proxy dropped its subscription: the subscriber was disconnected
		}
		published++
	}
	if published == 2000 {
		t.Fatalf("the proxy still subscribes after %d MiB unread", published*64>>10)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	read, err := io.Copy(io.Discard, r.br)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("the subscriber was not disconnected: %v after %d bytes", err, read)
	}
	t.Logf("disconnected after %d messages published, %d bytes delivered", published, read)
}

// TestPubSubNeedsAuthAndDrains: SUBSCRIBE needs authentication like any command, and a
// subscribed client is let go when the cluster drains (no goroutine left behind).
func TestPubSubNeedsAuthAndDrains(t *testing.T) {
	e := startEnv(t, envOpts{users: map[string]string{"default": "pw"}})
	r := e.raw(t)
	r.send(cmdFrame("SUBSCRIBE", "x"))
	if got := wholeReply(r); got != "-NOAUTH Authentication required.\r\n" {
		t.Fatalf("SUBSCRIBE before AUTH: %q", got)
	}
	r.send(cmdFrame("AUTH", "pw") + cmdFrame("SUBSCRIBE", "x"))
	if got := wholeReply(r) + wholeReply(r); got != "+OK\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n" {
		t.Fatalf("AUTH then SUBSCRIBE: %q", got)
	}
	done := make(chan struct{})
	go func() { e.cluster.Drain(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not end a subscribed session")
	}
	if _, err := r.br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("subscriber after drain: %v, want EOF", err)
	}
}

// TestPubSubIgnoresIdleTimeout: as in Redis, client_idle_timeout does not close a subscriber
// that only listens, and applies again once it has left subscribed mode.
func TestPubSubIgnoresIdleTimeout(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, idle: 300 * time.Millisecond})
	r := e.raw(t)
	r.send(cmdFrame("SUBSCRIBE", "quiet"))
	wholeReply(r)
	time.Sleep(900 * time.Millisecond)
	if n, err := e.servers[0].Client().Publish(ctx, "quiet", "still here").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH = %d, %v: the idle subscriber was dropped", n, err)
	}
	if got, want := wholeReply(r), "*3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$10\r\nstill here\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	r.send(cmdFrame("UNSUBSCRIBE"))
	wholeReply(r)
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("idle client after unsubscribing: %v, want EOF", err)
	}
}

// TestPubSubPingAfterMessages: a message published (and acknowledged to its publisher) before
// a subscriber's PING reaches the subscriber before the pong, as from one Redis server —
// redis-py's health checks and tests that PING to flush rely on it — with subscriptions on
// every node (a pattern) and in RESP3 too.
func TestPubSubPingAfterMessages(t *testing.T) {
	e := startEnv(t, envOpts{})
	for _, proto := range []string{"2", "3"} {
		sub := dialRaw(t, e.addr)
		if proto == "3" {
			sub.send(cmdFrame("HELLO", "3"))
			wholeReply(sub)
		}
		sub.send(cmdFrame("SUBSCRIBE", "tick") + cmdFrame("PSUBSCRIBE", "nomatch.*"))
		wholeReply(sub)
		wholeReply(sub)
		for i := range 100 {
			payload := "m" + strconv.Itoa(i)
			if err := e.client.Publish(ctx, "tick", payload).Err(); err != nil {
				t.Fatal(err)
			}
			sub.send(cmdFrame("PING"))
			if first := wholeReply(sub); !strings.Contains(first, bulk(payload)) {
				t.Fatalf("RESP%s, round %d: got %q before the message %s", proto, i, first, payload)
			}
			if pong := wholeReply(sub); !strings.Contains(strings.ToLower(pong), "pong") {
				t.Fatalf("RESP%s, round %d: got %q after the message, want the pong", proto, i, pong)
			}
		}
	}
}
