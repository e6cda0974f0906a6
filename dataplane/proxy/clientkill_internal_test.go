package proxy

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/route"
)

// TestKilledClientGoneAtOnce: between CLIENT KILL choosing a client and its session ending
// (its owner has yet to read the end of its input), the client is gone for Redis already:
// CLIENT LIST does not show it and another CLIENT KILL does not count it again.
func TestKilledClientGoneAtOnce(t *testing.T) {
	c := MustCluster(t, route.ClusterSpec{Name: "kill"}, Env{})
	t.Cleanup(c.Close)
	client := func() *session {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		s := newSession(c, a)
		c.mu.Lock()
		c.sessions[s] = struct{}{}
		c.mu.Unlock()
		return s
	}
	args := func(a ...string) [][]byte {
		out := make([][]byte, len(a))
		for i, s := range a {
			out[i] = []byte(s)
		}
		return out
	}
	me, victim, other := client(), client(), client()
	victim.killed.Store(true) // chosen by a CLIENT KILL; its session has not ended yet
	vid := "id=" + strconv.FormatUint(victim.id, 10) + " "
	if list := string(me.clientList(nil, args("CLIENT", "LIST"))); strings.Contains(list, vid) || !strings.Contains(list, "id="+strconv.FormatUint(other.id, 10)+" ") {
		t.Fatalf("CLIENT LIST = %q: want the other client and not the killed one", list)
	}
	if got := string(me.clientKill(nil, args("CLIENT", "KILL", "ID", strconv.FormatUint(victim.id, 10)))); got != ":0\r\n" {
		t.Fatalf("CLIENT KILL ID of a client killed already = %q, want :0", got)
	}
	if got := string(me.clientKill(nil, args("CLIENT", "KILL", "SKIPME", "yes"))); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL SKIPME yes = %q, want :1 (the other client only)", got)
	}
}
