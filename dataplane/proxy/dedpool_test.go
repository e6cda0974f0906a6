package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
)

// Clients that run a transaction one after another share one dedicated node connection
// instead of keeping one each for life.
func TestDedicatedConnectionsShared(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	if err := e.client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := infoField(t, e.servers[0], "connected_clients")
	const n = 30
	for i := range n {
		c := e.raw(t) // stays open: a session that kept its connection would hold it
		c.send(cmdFrame("MULTI") + cmdFrame("INCR", "shared") + cmdFrame("EXEC"))
		if got := c.line() + c.line() + c.line() + c.line(); got != "+OK+QUEUED*1:"+strconv.Itoa(i+1) {
			t.Fatalf("client %d: MULTI, INCR, EXEC = %q", i, got)
		}
	}
	// A reply can reach the test before its session gives the connection back, so the next
	// client may dial a second one now and then; one each would be n.
	if got := infoField(t, e.servers[0], "connected_clients") - before; got > 4 {
		t.Fatalf("%d dedicated connections on the node for %d clients' transactions in turn, want a few", got, n)
	}
}

// Many clients blocked at once each need a connection. Once they are answered the pool keeps
// them for the next burst, up to its bound per node (16 here, 1,024 normally), and closes them
// when they have been idle for a while (2 s here, 30 s normally: long enough for the test to
// see the 16 kept on a loaded machine).
func TestDedicatedPoolBoundedAndExpiring(t *testing.T) {
	t.Cleanup(proxy.SetDedIdle(2*time.Second, 16)) // restored after the cluster closed
	e := startEnv(t, envOpts{nodes: 1})
	if err := e.client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := infoField(t, e.servers[0], "connected_clients")
	const n = 40
	var wg sync.WaitGroup
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = e.raw(t)
		conns[i].send(cmdFrame("BLPOP", "nothing", "0"))
	}
	// Blocked until unblocked here, all at once: a short BLPOP timeout would let the first
	// ones time out before the last ones block when dialling 40 clients is slow.
	waitField(t, e.servers[0], "blocked_clients", n)
	list, err := e.servers[0].Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(list.(string), "\n") {
		if strings.Contains(l, " cmd=blpop ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(l, "id="), " ")
			if _, err := e.servers[0].Do("CLIENT", "UNBLOCK", id); err != nil { // answered as a timeout
				t.Fatal(err)
			}
		}
	}
	errs := make(chan string, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.br.ReadString('\n')
			if err != nil || strings.TrimSpace(l) != "*-1" {
				errs <- l
			}
		}()
	}
	wg.Wait()
	close(errs)
	for l := range errs {
		t.Fatalf("BLPOP timing out = %q", l)
	}
	waitField(t, e.servers[0], "connected_clients", before+16)
	waitField(t, e.servers[0], "connected_clients", before) // expired
	// Blocking commands still work, on new connections.
	for _, c := range conns[:3] {
		c.send(cmdFrame("RPUSH", "q", "x") + cmdFrame("BLPOP", "q", "1"))
		if got := wholeReply(c) + wholeReply(c); got != ":1\r\n*2\r\n"+bulk("q")+bulk("x") {
			t.Fatalf("RPUSH, BLPOP after the pool expired = %q", got)
		}
	}
}

// An idle pooled connection the node closed meanwhile (here CLIENT KILL; also its timeout or a
// restart) is not used: the next blocking command gets a good one and its answer.
func TestDeadPooledConnectionSkipped(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	a := e.raw(t)
	a.send(cmdFrame("BLPOP", "q", "0.05"))
	if got := a.line(); got != "*-1" {
		t.Fatalf("BLPOP timing out = %q", got)
	}
	list, err := e.servers[0].Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, l := range strings.Split(list.(string), "\n") {
		if strings.Contains(l, " cmd=blpop ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(l, "id="), " ")
			if _, err := e.servers[0].Do("CLIENT", "KILL", "ID", id); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d idle dedicated connections, want 1:\n%s", killed, list)
	}
	b := e.raw(t)
	b.send(cmdFrame("RPUSH", "q", "v") + cmdFrame("BLPOP", "q", "1"))
	if got := wholeReply(b) + wholeReply(b); got != ":1\r\n*2\r\n"+bulk("q")+bulk("v") {
		t.Fatalf("RPUSH, BLPOP after the pooled connection died = %q", got)
	}
}

// A dedicated connection in use while the backend settings changed (a reload with another
// read timeout: every pool is rebuilt) was dialled with the old settings: when its client is
// done with it, it is closed, not pooled for the next client.
func TestDedicatedConnectionOfOldSettingsNotPooled(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	rc := e.raw(t)
	rc.send(cmdFrame("BLPOP", "stale-settings", "1"))
	waitField(t, e.servers[0], "blocked_clients", 1)
	served := route.ClusterSpec{Name: "test", Listen: route.ListenSettings{Addr: "127.0.0.1:0"},
		Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second}}
	next := served.Backend
	next.ReadTimeout = 3 * time.Second
	e.cluster.ChangeBackend(t, served, next)
	if got := wholeReply(rc); got != "*-1\r\n" {
		t.Fatalf("BLPOP = %q", got)
	}
	// The BLPOP's connection is the only one whose last command was BLPOP: pooled, it would
	// stay open (idle for up to 30 s); closed, it is gone from the node's client list.
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := e.servers[0].Do("CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fmt.Sprint(list), "cmd=blpop") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the BLPOP's connection, dialled before the settings changed, is still open:\n%v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
