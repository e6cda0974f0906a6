package proxy

import (
	"bufio"
	"crypto/tls"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
	"github.com/aster-proxy/aster/internal/testlog"
)

// line sends cmd (inline) on nc and returns the first line of its reply, "" on a read error.
func line(t *testing.T, nc net.Conn, cmd string) string {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(cmd + "\r\n")); err != nil {
		return ""
	}
	l, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSpace(l)
}

func dialT(t *testing.T, addr string, tc *tls.Config) net.Conn {
	t.Helper()
	var nc net.Conn
	var err error
	if tc != nil {
		nc, err = tls.Dial("tcp", addr, tc)
	} else {
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// A cluster's life through Apply: access changes keep the cluster and its listener and
// logged-in clients; an address change opens the new listener, closes the old one and keeps
// its clients; a listener is handed over to a cluster that takes its address (a rename) and
// kept when TLS is turned on; an Apply that fails (a port taken) changes nothing, and the
// same snapshot applies once the port is free.
func TestApplyListenerLifecycle(t *testing.T) {
	r := redistest.Start(t)
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: r.Addr, Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerOptions{Logger: testlog.New(t, t.Name(), hclog.Warn)})
	t.Cleanup(s.Close)
	addrA := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	addrB := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	var ver uint64
	spec := func(name, addr, pass string) route.ClusterSpec {
		return route.ClusterSpec{Name: name,
			Table:   &route.Table{Version: ver + 1, Ring: ring},
			Listen:  route.ListenSettings{Addr: addr, Proto: "tcp"},
			Access:  route.AccessSettings{Users: map[string]string{"default": pass}},
			Backend: route.BackendSettings{ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, DialTimeout: time.Second}}
	}
	apply := func(specs ...route.ClusterSpec) error {
		ver++
		for i := range specs {
			specs[i].Table = &route.Table{Version: ver, Ring: ring}
		}
		return s.Apply(&route.Snapshot{Version: ver, Clusters: specs})
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(apply(spec("a", addrA, "p")))
	a1 := s.cluster("a")
	c1 := dialT(t, addrA, nil)
	if got := line(t, c1, "AUTH p"); got != "+OK" {
		t.Fatalf("AUTH p: %q", got)
	}
	line(t, c1, "SET k v")

	// Access: the same cluster and listener; the logged-in client stays; new ones go by the
	// new password and limit.
	sp := spec("a", addrA, "q")
	sp.Access.MaxConnections = 50
	must(apply(sp))
	if s.cluster("a") != a1 || ClientLimit(s, "a") != 50 {
		t.Fatalf("an access change replaced the cluster (%v) or missed max_connections (%d)", s.cluster("a") != a1, ClientLimit(s, "a"))
	}
	if got := line(t, c1, "GET k"); got != "$1" {
		t.Fatalf("a client logged in before the password change: GET = %q", got)
	}
	if got := line(t, dialT(t, addrA, nil), "AUTH p"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Fatalf("the old password on a new connection: %q", got)
	}
	if got := line(t, dialT(t, addrA, nil), "AUTH q"); got != "+OK" {
		t.Fatalf("the new password on a new connection: %q", got)
	}

	// Address: the new listener serves, the old one is closed; its clients stay, as Redis
	// keeps them when CONFIG SET port moves its listener.
	must(apply(spec("a", addrB, "q")))
	if s.cluster("a") != a1 {
		t.Fatal("an address change replaced the cluster")
	}
	if got := line(t, dialT(t, addrB, nil), "AUTH q"); got != "+OK" {
		t.Fatalf("the new address: %q", got)
	}
	if nc, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
		nc.Close()
		t.Fatal("the old address still accepts")
	}
	if got := line(t, c1, "GET k"); got != "$1" {
		t.Fatalf("a client connected to the old address: GET = %q", got)
	}

	// A rename on the same address: the listener is handed over, no bind error.
	must(apply(spec("b", addrB, "q")))
	if got := line(t, dialT(t, addrB, nil), "AUTH q"); got != "+OK" || s.cluster("a") != nil {
		t.Fatalf("after a rename: %q (a still served: %v)", got, s.cluster("a") != nil)
	}

	// TLS turned on, same address: handed over too; clients speak TLS from now.
	certs := redistest.GenCerts(t)
	tlsSpec := spec("b", addrB, "q")
	tlsSpec.Access.TLSCertFile, tlsSpec.Access.TLSKeyFile = certs.CertFile, certs.KeyFile
	must(apply(tlsSpec))
	b := s.cluster("b")
	if got := line(t, dialT(t, addrB, certs.ClientTLS(t, false)), "AUTH q"); got != "+OK" {
		t.Fatalf("TLS on the same address: %q", got)
	}

	// A failing Apply: nothing changes, not even what else it carried.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	changed := tlsSpec
	changed.Access.Users = map[string]string{"default": "z"}
	err = apply(changed, spec("c", taken.Addr().String(), "c"))
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), `cluster "c"`) {
		t.Fatalf("Apply onto a taken port: %v", err)
	}
	if s.cluster("b") != b || s.cluster("c") != nil || len(s.listeners) != 1 {
		t.Fatalf("a failed Apply changed the clusters or listeners: %v", s.listeners)
	}
	if got := line(t, dialT(t, addrB, certs.ClientTLS(t, false)), "AUTH q"); got != "+OK" {
		t.Fatalf("a failed Apply changed the password: AUTH q = %q", got)
	}
	taken.Close()
	ver-- // the same snapshot again
	must(apply(changed, spec("c", taken.Addr().String(), "c")))
	if got := line(t, dialT(t, taken.Addr().String(), nil), "AUTH c"); got != "+OK" {
		t.Fatalf("the new cluster once its port is free: %q", got)
	}
}

// Every setting of a ClusterSpec is in a group of route.Changed: a change of any field but
// the name and the table is seen, so that no setting is silently left unapplied. (Turning TLS
// on is two: the listener's key and its files.)
func TestEverySettingHasAGroup(t *testing.T) {
	base := route.ClusterSpec{Name: "x", Listen: route.ListenSettings{Proto: "tcp"}}
	typ := reflect.TypeOf(base)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Name == "Name" || f.Name == "Table" {
			continue
		}
		changed := base
		if !bump(reflect.ValueOf(&changed).Elem().Field(i)) {
			t.Fatalf("field %s: teach this test to change a %s", f.Name, f.Type)
		}
		if g := route.Changed(base, changed); len(g) == 0 {
			t.Errorf("a change of %s is in no group: a reload would not apply it", f.Name)
		}
	}
}

// bump sets v to a value other than its zero; false for a kind it does not know.
func bump(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString("changed")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("u"), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	case reflect.Struct:
		return v.NumField() > 0 && bump(v.Field(0))
	default:
		return false
	}
	return true
}

// A refused snapshot still moves the routing tables of the clusters whose settings it does
// not change (a remote data plane keeps following failovers while a new cluster of its
// snapshots cannot listen there); the served settings and clusters stay.
func TestRefusedSnapshotStillRoutes(t *testing.T) {
	h, _ := route.Hash("fnv1a_64")
	ring := func(addr string) *route.Ring {
		r, err := route.NewRing([]route.Node{{Addr: addr, Weight: 1}}, h, "{}")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s := NewServer(ServerOptions{Logger: testlog.New(t, t.Name(), hclog.Warn)})
	t.Cleanup(s.Close)
	a := route.ClusterSpec{Name: "a",
		Table:  &route.Table{Version: 1, Ring: ring("127.0.0.1:1")},
		Listen: route.ListenSettings{Addr: "127.0.0.1:0", Proto: "tcp"},
		Access: route.AccessSettings{MaxConnections: 5}}
	if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{a}}); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	moved := a
	moved.Table = &route.Table{Version: 2, Ring: ring("127.0.0.1:2")}
	snap := &route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{moved,
		{Name: "c", Listen: route.ListenSettings{Addr: taken.Addr().String()}, Table: moved.Table}}}
	if err := s.Apply(snap); err == nil {
		t.Fatal("a snapshot with a cluster on a taken port was applied")
	}
	if v := s.cluster("a").gen.Load().routes.table.Version; v != 2 {
		t.Fatalf("cluster a routes by table %d after the refused snapshot, want its table 2", v)
	}
	if s.cluster("c") != nil || ClientLimit(s, "a") != 5 {
		t.Fatal("the refused snapshot changed the clusters or a's settings")
	}
}
