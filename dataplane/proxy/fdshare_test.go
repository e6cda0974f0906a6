package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// waitHeld waits until the cluster counts held descriptors in all and backend of them
// held for single clients.
func waitHeld(t *testing.T, c *proxy.Cluster, held, backend int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h, b := proxy.HeldFDs(c)
		if h == held && b == backend {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster holds %d descriptors, %d of them backend connections; want %d and %d", h, b, held, backend)
		}
	}
}

// Every way a backend connection held for one client ends gives its descriptor back: a
// blocked client that leaves, a WATCH whose client leaves, a connection the node closed while
// pooled, UNSUBSCRIBE and a subscriber that leaves, SCRIPT KILL's, the pool's expiry. The
// count always matches the connections the node sees, and is 0 once everything is gone.
func TestHeldConnectionsReleasedAtEveryClose(t *testing.T) {
	t.Cleanup(proxy.SetDedIdle(300*time.Millisecond, 16))
	e := startEnv(t, envOpts{nodes: 1})
	e.client.Close() // only the raw clients below count
	node := e.servers[0]
	base := infoField(t, node, "connected_clients") // the shared connection and the monitor
	matches := func(clients int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			h, b := proxy.HeldFDs(e.cluster)
			onNode := int64(infoField(t, node, "connected_clients") - base)
			if h == clients+b && b == onNode {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("held %d, backend %d, %d on the node; want held = %d clients + backend, backend = on the node", h, b, onNode, clients)
			}
		}
	}
	a, b := e.raw(t), e.raw(t)
	a.send(cmdFrame("BLPOP", "q", "0"))
	waitField(t, node, "blocked_clients", 1)
	matches(2)
	a.nc.Close() // blocked, it leaves: its connection is closed with it
	waitField(t, node, "blocked_clients", 0)
	matches(1)

	b.send(cmdFrame("WATCH", "w"))
	if got := b.line(); got != "+OK" {
		t.Fatalf("WATCH: %q", got)
	}
	matches(1)
	b.nc.Close() // the watches go with its connection
	matches(0)

	sub := redistest.DialRaw(t, e.addr)
	sub.Send("SUBSCRIBE", "ch1", "ch2")
	for range 2 {
		if r, err := sub.Receive(5 * time.Second); err != nil {
			t.Fatalf("SUBSCRIBE: %v, %v", r, err)
		}
	}
	matches(1)
	sub.Send("UNSUBSCRIBE")
	for range 2 {
		if r, err := sub.Receive(5 * time.Second); err != nil {
			t.Fatalf("UNSUBSCRIBE: %v, %v", r, err)
		}
	}
	matches(1) // no subscription left: its connection is closed
	sub.Send("SUBSCRIBE", "ch3")
	if r, err := sub.Receive(5 * time.Second); err != nil {
		t.Fatalf("SUBSCRIBE: %v, %v", r, err)
	}
	matches(1)
	sub.Close()
	matches(0)

	c := e.raw(t)
	c.send(cmdFrame("SCRIPT", "KILL")) // dials a connection of its own, pooled after
	if got := c.line(); !strings.HasPrefix(got, "-NOTBUSY") {
		t.Fatalf("SCRIPT KILL: %q", got)
	}
	c.send(cmdFrame("BLPOP", "q", "0.01")) // answered: its connection goes back to the pool
	if got := c.line(); got != "*-1" {
		t.Fatalf("BLPOP: %q", got)
	}
	matches(1)
	// The node closes the pooled connections (and the shared one): the next BLPOP finds its
	// pooled one closed, drops it and dials another.
	if n, err := node.Client().ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Result(); err != nil || n < 1 {
		t.Fatalf("CLIENT KILL on the node: %d, %v", n, err)
	}
	c.send(cmdFrame("BLPOP", "q", "0.01"))
	// (The kill may not have reached the pooled connection's socket yet: then the BLPOP
	// fails on it, and it is dropped all the same.)
	if got := c.line(); got != "*-1" && !strings.HasPrefix(got, "-ERR backend ") {
		t.Fatalf("BLPOP after the kill: %q", got)
	}
	if _, b := proxy.HeldFDs(e.cluster); b < 1 {
		t.Fatalf("backend connections held after the redial: %d", b)
	}
	c.nc.Close()
	// Everything gone, and the pool expired: nothing held.
	waitHeld(t, e.cluster, 0, 0)
}

// Past its share, a command that needs a connection of its own is refused with Redis's
// maxclients error and the reason, and a new client at accept; idle pooled connections give
// way to both rather than see them refused.
func TestShareRefusesAndIdleGivesWay(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	e.client.Close()
	waitHeld(t, e.cluster, 0, 0)
	// Keys on each node.
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: e.servers[0].Addr, Name: "r1", Weight: 1}, {Addr: e.servers[1].Addr, Name: "r2", Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	var keys [2]string
	for i := 0; keys[0] == "" || keys[1] == ""; i++ {
		k := "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		keys[ring.Pick([]byte(k))] = k
	}
	proxy.SetFDShare(e.cluster, 4)
	a, b := e.raw(t), e.raw(t)
	a.send(cmdFrame("BLPOP", keys[0], "0"))
	waitField(t, e.servers[0], "blocked_clients", 1)
	b.send(cmdFrame("BLPOP", keys[1], "0"))
	waitField(t, e.servers[1], "blocked_clients", 1)
	waitHeld(t, e.cluster, 4, 2)

	// Full: a third client is refused at accept.
	x := redistest.DialRaw(t, e.addr)
	if r, err := x.Receive(5 * time.Second); err != nil || r != redistest.ErrReply("ERR max number of clients reached") {
		t.Fatalf("a client past the share: %v, %v", r, err)
	}
	// b's BLPOP answered: its connection is idle in the pool, still counted. b's next
	// command needing another node's connection closes that idle one to dial its own.
	if err := e.servers[1].Client().RPush(ctx, keys[1], "v").Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.line()
	}
	waitHeld(t, e.cluster, 4, 2)
	b.send(cmdFrame("BLPOP", keys[0], "0"))
	waitField(t, e.servers[0], "blocked_clients", 2)
	waitHeld(t, e.cluster, 4, 2)
	// a leaves; two clients take its room. Full again: a command of theirs that needs a
	// connection of its own is refused with the reason; one on the shared connections is not.
	a.nc.Close()
	waitHeld(t, e.cluster, 2, 1)
	c, d := e.raw(t), e.raw(t)
	waitHeld(t, e.cluster, 4, 1)
	const refusal = "-ERR max number of clients reached: cluster test has no file descriptors left in its share"
	d.send(cmdFrame("SUBSCRIBE", "ch"))
	if got := d.line(); !strings.HasPrefix(got, refusal) {
		t.Fatalf("SUBSCRIBE past the share: %q", got)
	}
	d.send(cmdFrame("MULTI") + cmdFrame("SET", keys[0], "1") + cmdFrame("EXEC"))
	if got := d.line() + d.line() + d.line(); !strings.HasPrefix(got, "+OK+QUEUED"+refusal) {
		t.Fatalf("a transaction past the share: %q", got)
	}
	d.send(cmdFrame("GET", keys[0])) // not in subscribed mode, and shared connections need no room
	if got := d.line(); got != "$-1" {
		t.Fatalf("GET past the share: %q", got)
	}
	// b leaves with its blocked connection: room for c's WATCH.
	b.nc.Close()
	waitHeld(t, e.cluster, 2, 0)
	c.send(cmdFrame("WATCH", keys[1]))
	if got := c.line(); got != "+OK" {
		t.Fatalf("WATCH with room: %q", got)
	}
	waitHeld(t, e.cluster, 3, 1)
}
