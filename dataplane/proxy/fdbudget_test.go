package proxy_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/fdlimit"
)

// The Server shares its open-file limit among the clusters of every snapshot: a cluster
// that wants less keeps it, the others split the rest; a snapshot that drops a cluster gives
// its share back. Without a limit, max_connections stands.
func TestServerSharesOpenFileLimit(t *testing.T) {
	h, _ := route.Hash("fnv1a_64")
	ring, err := route.NewRing([]route.Node{{Addr: "127.0.0.1:1", Weight: 1}}, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	spec := func(name string, maxConns int) route.ClusterSpec {
		return route.ClusterSpec{Name: name,
			Table:   &route.Table{Version: 1, Ring: ring},
			Listen:  route.ListenSettings{Addr: "127.0.0.1:0", Proto: "tcp"},
			Access:  route.AccessSettings{MaxConnections: maxConns},
			Backend: route.BackendSettings{NodeConnections: 1}}
	}
	demand := func(maxConns int) fdlimit.Demand {
		return fdlimit.Demand{MaxClients: maxConns, Nodes: 1, NodeConnections: 1, Loops: runtime.GOMAXPROCS(0)}
	}
	const limit = 300
	s := proxy.NewServer(proxy.ServerOptions{Logger: testLogger(t), FDLimit: limit})
	defer s.Close()
	if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec("a", 10000), spec("b", 5), spec("c", 0)}}); err != nil {
		t.Fatal(err)
	}
	want := fdlimit.Plan(limit, []fdlimit.Demand{demand(10000), demand(5), demand(0)})
	if want[1] != 2*5 || want[0] >= 10000 || want[0] < want[2]-1 || want[0] > want[2] {
		t.Fatalf("test premise: plan %v", want)
	}
	for i, name := range []string{"a", "b", "c"} {
		if got := proxy.FDShare(s, name); got != want[i] {
			t.Errorf("cluster %s has a share of %d descriptors, want %d (plan %v)", name, got, want[i], want)
		}
	}
	// Clients: the share, or max_connections when smaller.
	if a, b := proxy.ClientLimit(s, "a"), proxy.ClientLimit(s, "b"); a != want[0] || b != 5 {
		t.Errorf("clusters a and b take %d and %d clients, want %d and 5", a, b, want[0])
	}
	// b and c gone: a gets what they left.
	if err := s.Apply(&route.Snapshot{Version: 2, Clusters: []route.ClusterSpec{spec("a", 10000)}}); err != nil {
		t.Fatal(err)
	}
	if got, w := proxy.FDShare(s, "a"), fdlimit.Plan(limit, []fdlimit.Demand{demand(10000)})[0]; got != w || got <= want[0] {
		t.Errorf("alone, cluster a takes %d clients, want %d (more than %d)", got, w, want[0])
	}

	free := proxy.NewServer(proxy.ServerOptions{Logger: testLogger(t)})
	defer free.Close()
	if err := free.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{spec("a", 10000), spec("c", 0)}}); err != nil {
		t.Fatal(err)
	}
	if a, c := proxy.ClientLimit(free, "a"), proxy.ClientLimit(free, "c"); a != 10000 || c != 0 {
		t.Errorf("without a limit: a takes %d, c %d; want max_connections 10000 and 0", a, c)
	}
}

// A cluster whose client cache is on holds a tracking link to each node besides its shared
// connections: its share of the open-file limit counts them.
func TestFDShareCountsTrackingLinks(t *testing.T) {
	h, _ := route.Hash("fnv1a_64")
	var nodes []route.Node
	for i := range 20 {
		nodes = append(nodes, route.Node{Addr: "127.0.0.1:" + strconv.Itoa(1000+i), Weight: 1})
	}
	ring, err := route.NewRing(nodes, h, "{}")
	if err != nil {
		t.Fatal(err)
	}
	spec := route.ClusterSpec{Name: "a", Table: &route.Table{Version: 1, Ring: ring},
		Listen:  route.ListenSettings{Addr: "127.0.0.1:0", Proto: "tcp"},
		Access:  route.AccessSettings{MaxConnections: 10000},
		Backend: route.BackendSettings{NodeConnections: 1, DialTimeout: 1}}
	const limit = 600
	share := func(cacheOn bool) int {
		sp := spec
		sp.Live.ClientCache.Enabled = cacheOn
		s := proxy.NewServer(proxy.ServerOptions{Logger: testLogger(t), FDLimit: limit})
		defer s.Close()
		if err := s.Apply(&route.Snapshot{Version: 1, Clusters: []route.ClusterSpec{sp}}); err != nil {
			t.Fatal(err)
		}
		return proxy.FDShare(s, "a")
	}
	d := fdlimit.Demand{MaxClients: 10000, Nodes: 20, NodeConnections: 2, Loops: runtime.GOMAXPROCS(0)}
	if off, on, want := share(false), share(true), fdlimit.Plan(limit, []fdlimit.Demand{d})[0]; on != want || on >= off {
		t.Errorf("share with the cache on %d (off %d), want %d: a tracking link per node", on, off, want)
	}
}
