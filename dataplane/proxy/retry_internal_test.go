package proxy

import (
	"testing"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// TestEachRetryable: of a batch's failed requests, only those that never went out, name a key,
// and have nothing of the batch sent behind them on the same connection are retried, in the
// batch's order.
func TestEachRetryable(t *testing.T) {
	a := backend.New(backend.Options{Addr: "127.0.0.1:1"}) // never dialled
	b := backend.New(backend.Options{Addr: "127.0.0.1:2"})
	defer a.Close()
	defer b.Close()
	type req struct {
		args   []string
		conn   *backend.Conn
		unsent bool
	}
	batch := []req{
		{[]string{"SET", "k1", "v"}, a, true},       // a later request on a went out: may run before it
		{[]string{"SET", "k2", "v"}, a, false},      // may have been written: never retried
		{[]string{"SET", "k3", "v"}, b, true},       // retried
		{[]string{"DBSIZE"}, b, true},               // no key: it went to its node for the node's sake
		{[]string{"GET", "k4"}, b, true},            // retried, as a read
		{[]string{"MGET", "{x}a", "{x}b"}, a, true}, // retried: after k2 in the batch
	}
	s := &session{}
	for _, r := range batch {
		pl := &place{kind: placeForward}
		var args [][]byte
		for _, a := range r.args {
			args = append(args, []byte(a))
		}
		pl.main.frame = resp.AppendCommand(nil, args...)
		pl.main.conn = r.conn
		pl.main.req.Reply = []byte("-ERR backend x: failed\r\n")
		pl.main.req.Failure = backend.FailBackend
		pl.main.req.Unsent = r.unsent
		s.places = append(s.places, pl)
	}
	s.n = len(s.places)
	type got struct {
		frame string
		slot  uint16
		read  bool
	}
	var gots []got
	s.eachRetryable(func(c *call, slot uint16, read bool) {
		gots = append(gots, got{string(c.frame), slot, read})
	})
	want := []got{
		{string(resp.AppendCommand(nil, []byte("SET"), []byte("k3"), []byte("v"))), route.Slot([]byte("k3")), false},
		{string(resp.AppendCommand(nil, []byte("GET"), []byte("k4"))), route.Slot([]byte("k4")), true},
		{string(resp.AppendCommand(nil, []byte("MGET"), []byte("{x}a"), []byte("{x}b"))), route.Slot([]byte("x")), true},
	}
	if len(gots) != len(want) {
		t.Fatalf("retryable: %+v, want %+v", gots, want)
	}
	for i := range want {
		if gots[i] != want[i] {
			t.Errorf("retryable[%d] = %+v, want %+v", i, gots[i], want[i])
		}
	}
}
