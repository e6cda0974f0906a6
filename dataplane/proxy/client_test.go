package proxy_test

import (
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClientNameAsRedis: CLIENT SETNAME/GETNAME (what client libraries send on connect) and
// HELLO SETNAME keep a name per client connection, cleared by RESET and by an empty name,
// with Redis's errors — byte for byte as redis-server. CLIENT ID answers the connection's id.
func TestClientNameAsRedis(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	ref := redistest.Start(t)
	steps := []resetStep{
		{cmds: cmds([]string{"CLIENT", "GETNAME"}), want: "$-1\r\n"},
		{cmds: cmds([]string{"CLIENT", "SETNAME", "worker-1"}, []string{"CLIENT", "GETNAME"}), want: "+OK\r\n$8\r\nworker-1\r\n"},
		{cmds: cmds([]string{"client", "setname", "has space"}, []string{"CLIENT", "GETNAME"}),
			want: "-ERR Client names cannot contain spaces, newlines or special characters.\r\n$8\r\nworker-1\r\n"},
		{cmds: cmds([]string{"CLIENT", "SETNAME", "a\nb"}), want: "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{cmds: cmds([]string{"CLIENT", "SETNAME"}), want: "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		{cmds: cmds([]string{"CLIENT", "GETNAME", "x"}), want: "-ERR wrong number of arguments for 'client|getname' command\r\n"},
		{cmds: cmds([]string{"CLIENT", "NOSUCH"}), want: "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n"},
		{cmds: cmds([]string{"CLIENT"}), want: "-ERR wrong number of arguments for 'client' command\r\n"},
		{cmds: cmds([]string{"CLIENT", "SETNAME", ""}, []string{"CLIENT", "GETNAME"}), want: "+OK\r\n$-1\r\n"},
		{cmds: cmds([]string{"HELLO", "2", "SETNAME", "by-hello"}), hello: true},
		{cmds: cmds([]string{"CLIENT", "GETNAME"}), want: "$8\r\nby-hello\r\n"},
		{cmds: cmds([]string{"HELLO", "2", "SETNAME", "bad name"}, []string{"CLIENT", "GETNAME"}),
			want: "-ERR Client names cannot contain spaces, newlines or special characters.\r\n$8\r\nby-hello\r\n"},
		{cmds: cmds([]string{"RESET"}, []string{"CLIENT", "GETNAME"}), want: "+RESET\r\n$-1\r\n"},
	}
	checkResetScript(t, e.addr, ref.Addr, steps)

	// The name is the connection's: another one has none. ID matches HELLO's id.
	c, o := redistest.DialFrames(t, e.addr), redistest.DialFrames(t, e.addr)
	if r := string(c.Do("CLIENT", "SETNAME", "mine")); r != "+OK\r\n" {
		t.Fatalf("CLIENT SETNAME = %q", r)
	}
	if r := string(o.Do("CLIENT", "GETNAME")); r != "$-1\r\n" {
		t.Errorf("another connection's CLIENT GETNAME = %q, want nil", r)
	}
	id := string(c.Do("CLIENT", "ID"))
	if hello := string(c.Do("HELLO")); !strings.HasPrefix(id, ":") || !strings.Contains(hello, "$2\r\nid\r\n"+id) {
		t.Errorf("CLIENT ID = %q, not HELLO's id in %q", id, hello)
	}
	// CLIENT LIST shows the name on its connection's line only (clientlist_test.go).
	list := string(c.Do("CLIENT", "LIST"))
	if strings.Count(list, " name=mine ") != 1 || !strings.Contains(list, "id="+strings.TrimSuffix(id[1:], "\r\n")+" ") {
		t.Errorf("CLIENT LIST = %q, want the connection named mine", list)
	}
}

// TestClientSetInfo: CLIENT SETINFO, which go-redis 9 and redis-py 5 send on every connection,
// is accepted with Redis 7.2's checks and errors (the reference server here, 7.0, predates it).
func TestClientSetInfo(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := redistest.DialFrames(t, e.addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis(,go1.26)"}, "+OK\r\n"},
		{[]string{"client", "setinfo", "lib-ver", "9.7.0"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "has space"}, "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "1\n2"}, "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "color", "blue"}, "-ERR Unrecognized option 'color'\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name"}, "-ERR wrong number of arguments for 'client|setinfo' command\r\n"},
	} {
		if got := string(c.Do(tc.args...)); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestReadOnlyReadWrite: READONLY and READWRITE, which cluster clients send on every
// connection when reading from replicas, are accepted as by a cluster node (+OK), and the
// connection serves as before.
func TestReadOnlyReadWrite(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	c := redistest.DialFrames(t, e.addr)
	c.Send([]string{"READONLY"}, []string{"SET", "ro", "1"}, []string{"READWRITE"}, []string{"GET", "ro"}, []string{"READONLY", "x"})
	var b strings.Builder
	for range 5 {
		b.Write(c.Read())
	}
	if want := "+OK\r\n+OK\r\n+OK\r\n$1\r\n1\r\n-ERR wrong number of arguments for 'readonly' command\r\n"; b.String() != want {
		t.Errorf("READONLY/READWRITE: got %q, want %q", b.String(), want)
	}
}
