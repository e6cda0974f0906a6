package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
)

type discard struct{}

func (discard) Apply(*route.Snapshot) error { return nil }

const twoNodes = `
[[clusters]]
name = "cache"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
servers = ["127.0.0.1:7001:1 a", "127.0.0.1:7002:1 b"]
`

// newControlPlane returns a control plane (not running: no health checks) over twoNodes that
// reports to a fresh Metrics watching it.
func newControlPlane(t *testing.T) (*controlplane.ControlPlane, *Metrics) {
	t.Helper()
	cfg, err := config.Parse([]byte(twoNodes), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := New("v1.2.3")
	cp, err := controlplane.New(cfg, discard{}, hclog.NewNullLogger(), controlplane.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	m.WatchControlPlane(cp)
	return cp, m
}

func TestEjectRestoreSeries(t *testing.T) {
	cp, m := newControlPlane(t)
	version := func() uint64 {
		st, err := cp.Cluster("cache")
		if err != nil {
			t.Fatal(err)
		}
		return st.TableVersion
	}
	const head = `
# HELP aster_backend_up 1 when a backend node is serving, 0 when it is ejected (health or operator) or down.
# TYPE aster_backend_up gauge
`
	const ejHead = `
# HELP aster_node_ejections_total Nodes taken out of a standalone cluster's ring, by cluster, node and reason (health, operator).
# TYPE aster_node_ejections_total counter
`
	steps := []struct {
		name   string
		do     func() error
		up     string // aster_backend_up samples
		ejects string // aster_node_ejections_total samples
	}{
		{"start", func() error { return nil },
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 1
`, ""},
		{"eject by alias", func() error { _, err := cp.Eject("cache", "b", "maintenance"); return err },
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 0
`, `aster_node_ejections_total{cluster="cache",node="127.0.0.1:7002",reason="operator"} 1
`},
		{"eject again counts once", func() error { _, err := cp.Eject("cache", "127.0.0.1:7002", ""); return err },
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 0
`, `aster_node_ejections_total{cluster="cache",node="127.0.0.1:7002",reason="operator"} 1
`},
		{"unknown node changes nothing", func() error {
			if _, err := cp.Eject("cache", "nope", ""); !errors.Is(err, controlplane.ErrNotFound) {
				return errors.New("eject of an unknown node did not fail with ErrNotFound")
			}
			return nil
		},
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 0
`, `aster_node_ejections_total{cluster="cache",node="127.0.0.1:7002",reason="operator"} 1
`},
		{"restore", func() error { _, err := cp.Restore("cache", "b"); return err },
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 1
`, `aster_node_ejections_total{cluster="cache",node="127.0.0.1:7002",reason="operator"} 1
`},
		{"eject the other", func() error { _, err := cp.Eject("cache", "a", ""); return err },
			`aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 0
aster_backend_up{cluster="cache",node="127.0.0.1:7002"} 1
`, `aster_node_ejections_total{cluster="cache",node="127.0.0.1:7001",reason="operator"} 1
aster_node_ejections_total{cluster="cache",node="127.0.0.1:7002",reason="operator"} 1
`},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := head + s.up
		names := []string{"aster_backend_up"}
		if s.ejects != "" {
			want += ejHead + s.ejects
			names = append(names, "aster_node_ejections_total")
		}
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		if n, err := testutil.GatherAndCount(m.Registry(), "aster_node_ejections_total"); err != nil || n != strings.Count(s.ejects, "\n") {
			t.Errorf("%s: %d ejection series (%v), want %d", s.name, n, err, strings.Count(s.ejects, "\n"))
		}
		// The table version reported is the control plane's, at every step.
		want = "# HELP aster_routing_table_version Version of the routing table a cluster currently routes by; 0 while it has none.\n" +
			"# TYPE aster_routing_table_version gauge\n" +
			`aster_routing_table_version{cluster="cache"} ` + itoa(version()) + "\n"
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "aster_routing_table_version"); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestReloadRemovesClusterSeries(t *testing.T) {
	cp, m := newControlPlane(t)
	cfg, err := config.Parse([]byte(strings.ReplaceAll(twoNodes, `"cache"`, `"other"`)), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP aster_backend_up 1 when a backend node is serving, 0 when it is ejected (health or operator) or down.
# TYPE aster_backend_up gauge
aster_backend_up{cluster="other",node="127.0.0.1:7001"} 1
aster_backend_up{cluster="other",node="127.0.0.1:7002"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "aster_backend_up"); err != nil {
		t.Error(err)
	}
}

func TestConfigReloaded(t *testing.T) {
	cases := []struct {
		name             string
		errs             []error
		success, failure int
		last             int
	}{
		{"none yet", nil, 0, 0, 1},
		{"one success", []error{nil}, 1, 0, 1},
		{"one failure", []error{errors.New("bad file")}, 0, 1, 0},
		{"failure then success", []error{errors.New("bad"), nil}, 1, 1, 1},
		{"success then failures", []error{nil, errors.New("a"), errors.New("b")}, 1, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New("test")
			for _, err := range c.errs {
				m.ConfigReloaded(err)
			}
			want := `
# HELP aster_config_reloads_total Configuration reloads (SIGHUP or admin API), by result (success, failure).
# TYPE aster_config_reloads_total counter
aster_config_reloads_total{result="failure"} ` + itoa(uint64(c.failure)) + `
aster_config_reloads_total{result="success"} ` + itoa(uint64(c.success)) + `
# HELP aster_config_last_reload_successful 1 when the last configuration load or reload succeeded, 0 when it was refused.
# TYPE aster_config_last_reload_successful gauge
aster_config_last_reload_successful ` + itoa(uint64(c.last)) + `
`
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
				"aster_config_reloads_total", "aster_config_last_reload_successful"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestTopologyRefreshedAndBuildInfo(t *testing.T) {
	m := New("v9.9.9")
	m.TopologyRefreshed("rc", controlplane.RefreshChanged)
	m.TopologyRefreshed("rc", controlplane.RefreshChanged)
	want := `
# HELP aster_build_info Always 1; the labels say which asterd and Go built it.
# TYPE aster_build_info gauge
aster_build_info{goversion="` + runtime.Version() + `",version="v9.9.9"} 1
# HELP aster_topology_refreshes_total Redis Cluster topology refreshes by result (changed: a new slot map was published; unchanged; failed: no node answered).
# TYPE aster_topology_refreshes_total counter
aster_topology_refreshes_total{cluster="rc",result="changed"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"aster_build_info", "aster_topology_refreshes_total"); err != nil {
		t.Error(err)
	}
}

// TestLentBufferSeries: the two series read the backend's counts of lent read buffers at each
// scrape.
func TestLentBufferSeries(t *testing.T) {
	pinned, leaked := int64(3<<20), int64(2)
	defer func(p, l func() int64) { lentPinned, lentLeaked = p, l }(lentPinned, lentLeaked)
	lentPinned = func() int64 { return pinned }
	lentLeaked = func() int64 { return leaked }
	m := New("v9.9.9")
	want := func(p, l int64) string {
		return fmt.Sprintf(`
# HELP aster_lent_buffer_pinned_bytes Bytes of node connections' read buffers held by lent big replies after their connection moved on (at most 64 MiB; past it replies are copied).
# TYPE aster_lent_buffer_pinned_bytes gauge
aster_lent_buffer_pinned_bytes %d
# HELP aster_lent_buffers_leaked_total Read buffers collected with a lent reply never given back: a bug, please report it.
# TYPE aster_lent_buffers_leaked_total counter
aster_lent_buffers_leaked_total %d
`, p, l)
	}
	names := []string{"aster_lent_buffer_pinned_bytes", "aster_lent_buffers_leaked_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want(pinned, leaked)), names...); err != nil {
		t.Error(err)
	}
	pinned, leaked = 0, 3
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want(pinned, leaked)), names...); err != nil {
		t.Error(err)
	}
}

// TestDataPlaneVectors checks the names, labels and buckets of the proxy's vectors on this
// registry, and that the whole registry passes the client library's linter (units in names,
// no bad help).
func TestDataPlaneVectors(t *testing.T) {
	_, m := newControlPlane(t)
	dp := proxy.NewMetrics(m.Registry())
	dp.Requests.WithLabelValues("cache", "get").Add(3)
	dp.RequestErrors.WithLabelValues("cache", "timeout").Inc()
	dp.RequestDuration.WithLabelValues("cache").Observe(0.0001)
	dp.BackendRequestDuration.WithLabelValues("cache", "127.0.0.1:7001").Observe(10) // past the last bucket
	dp.ClientConnections.WithLabelValues("cache").Set(2)
	dp.ClientConnectionsAccepted.WithLabelValues("cache").Add(5)
	dp.Redirects.WithLabelValues("cache", "moved").Inc()
	dp.BackupRequests.WithLabelValues("cache", "sent").Add(2)
	dp.PubSubClients.WithLabelValues("cache").Set(4)
	dp.PubSubMessages.WithLabelValues("cache").Add(7)

	cases := []struct {
		name string
		want float64
	}{
		{"aster_requests_total", 3},
		{"aster_request_errors_total", 1},
		{"aster_client_connections", 2},
		{"aster_client_connections_accepted_total", 5},
		{"aster_redirects_total", 1},
		{"aster_backup_requests_total", 2},
		{"aster_pubsub_clients", 4},
		{"aster_pubsub_messages_total", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mfs, err := m.Registry().Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != c.name {
					continue
				}
				var got float64
				for _, s := range mf.GetMetric() {
					got += s.GetCounter().GetValue() + s.GetGauge().GetValue()
				}
				if got != c.want {
					t.Fatalf("%s = %v, want %v", c.name, got, c.want)
				}
				return
			}
			t.Fatalf("%s not gathered", c.name)
		})
	}

	if n := len(proxy.LatencyBuckets); n != 16 || proxy.LatencyBuckets[0] != 50e-6 || proxy.LatencyBuckets[n-1] < 4.999 || proxy.LatencyBuckets[n-1] > 5.001 {
		t.Errorf("buckets = %v, want 16 from 50µs to 5s", proxy.LatencyBuckets)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "aster_backend_request_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 || len(h.GetBucket()) != 16 || h.GetBucket()[15].GetCumulativeCount() != 0 {
			t.Errorf("histogram: count %d, %d buckets, last holds %d; want 1, 16, 0 (10s is past 5s)",
				h.GetSampleCount(), len(h.GetBucket()), h.GetBucket()[15].GetCumulativeCount())
		}
		if h.GetSchema() == 0 && h.GetZeroThreshold() == 0 {
			t.Errorf("no native histogram offered: schema %d", h.GetSchema())
		}
	}

	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "aster_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestHandler(t *testing.T) {
	_, m := newControlPlane(t)
	notReady := errors.New("cluster \"cache\" has no listener")
	cases := []struct {
		name       string
		opts       HandlerOptions
		method     string
		path       string
		accept     string
		wantStatus int
		wantBody   string // substring
		wantType   string // Content-Type prefix
	}{
		{"metrics text", HandlerOptions{}, "GET", "/metrics", "", 200, `aster_backend_up{cluster="cache",node="127.0.0.1:7001"} 1`, "text/plain; version=0.0.4"},
		{"metrics openmetrics", HandlerOptions{}, "GET", "/metrics", "application/openmetrics-text; version=1.0.0", 200, "# EOF", "application/openmetrics-text"},
		{"metrics go runtime", HandlerOptions{}, "GET", "/metrics", "", 200, "go_goroutines", "text/plain"},
		{"metrics process", HandlerOptions{}, "GET", "/metrics", "", 200, "process_start_time_seconds", "text/plain"},
		{"metrics POST refused", HandlerOptions{}, "POST", "/metrics", "", 405, "", ""},
		{"healthz", HandlerOptions{Ready: func() error { return notReady }}, "GET", "/healthz", "", 200, "ok", "text/plain"},
		{"readyz default", HandlerOptions{}, "GET", "/readyz", "", 200, "ok", "text/plain"},
		{"readyz ready", HandlerOptions{Ready: func() error { return nil }}, "GET", "/readyz", "", 200, "ok", "text/plain"},
		{"readyz not ready", HandlerOptions{Ready: func() error { return notReady }}, "GET", "/readyz", "", 503, `not ready: cluster "cache" has no listener`, "text/plain"},
		{"pprof off", HandlerOptions{}, "GET", "/debug/pprof/", "", 404, "", ""},
		{"pprof on", HandlerOptions{Pprof: true}, "GET", "/debug/pprof/", "", 200, "goroutine", "text/html"},
		{"pprof cmdline", HandlerOptions{Pprof: true}, "GET", "/debug/pprof/cmdline", "", 200, "", "text/plain"},
		{"unknown path", HandlerOptions{}, "GET", "/", "", 404, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(m.Handler(c.opts))
			defer srv.Close()
			req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, c.wantStatus, body)
			}
			if !strings.Contains(string(body), c.wantBody) {
				t.Errorf("body lacks %q:\n%s", c.wantBody, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
				t.Errorf("Content-Type %q, want %q...", ct, c.wantType)
			}
		})
	}
}

func TestListenClose(t *testing.T) {
	m := New("test")
	s, err := Listen("127.0.0.1:0", m.Handler(HandlerOptions{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Fatal("endpoint still answers after Close")
	}
	if _, err := Listen(s.Addr()+"x", m.Handler(HandlerOptions{}), nil); err == nil || !strings.Contains(err.Error(), "metrics endpoint: listen on") {
		t.Fatalf("bad address: err = %v", err)
	}
}

// TestOpenMetricsFamiliesUnique scrapes every Aster series as OpenMetrics (what Prometheus asks
// for first) and fails when two of them land in one family. OpenMetrics names a counter's
// family without its _total, so a gauge "x" beside a counter "x_total" is two "# TYPE x" lines:
// an invalid exposition, however valid each series is alone in the classic text format.
func TestOpenMetricsFamiliesUnique(t *testing.T) {
	// The client library's Go collector has one such clash of its own, the gauge
	// go_memstats_alloc_bytes beside the counter go_memstats_alloc_bytes_total (client_golang
	// issue 829). Prometheus takes it; every other clash fails here.
	libraryClash := map[string]bool{"go_memstats_alloc_bytes": true}
	_, m := newControlPlane(t)
	// A vector without a child is not exposed: give each one a child.
	dp := proxy.NewMetrics(m.Registry())
	dp.Requests.WithLabelValues("cache", "get").Inc()
	dp.RequestErrors.WithLabelValues("cache", "timeout").Inc()
	dp.RequestDuration.WithLabelValues("cache").Observe(0.001)
	dp.BackendRequestDuration.WithLabelValues("cache", "127.0.0.1:7001").Observe(0.001)
	dp.ClientConnections.WithLabelValues("cache").Set(1)
	dp.ClientConnectionsAccepted.WithLabelValues("cache").Inc()
	dp.Redirects.WithLabelValues("cache", "moved").Inc()
	dp.BackupRequests.WithLabelValues("cache", "sent").Inc()
	dp.PubSubClients.WithLabelValues("cache").Inc()
	dp.PubSubMessages.WithLabelValues("cache").Inc()
	dp.BackendErrors.WithLabelValues("cache", "127.0.0.1:7001", "timeout").Inc()
	m.NodeEjected("cache", "127.0.0.1:7001", "health")
	m.TopologyRefreshed("cache", controlplane.RefreshChanged)
	m.SentinelSwitched("cache", "grp-a")

	srv := httptest.NewServer(m.Handler(HandlerOptions{}))
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q: OpenMetrics was not negotiated", ct)
	}

	families := map[string]string{} // family → its type
	sampleOf := map[string]string{} // sample name → the family it was exposed under
	family := ""
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 {
				t.Fatalf("malformed TYPE line %q", line)
			}
			if typ, dup := families[f[0]]; dup && !libraryClash[f[0]] {
				t.Errorf("family %s has two TYPE lines: %s and %s", f[0], typ, f[1])
			}
			families[f[0]], family = f[1], f[0]
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// A sample's name must belong to one family only (gauge "x_count" beside summary "x"
		// would clash without a second TYPE line).
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if prev, ok := sampleOf[name]; ok && prev != family && !libraryClash[family] {
			t.Errorf("sample %s exposed under families %s and %s", name, prev, family)
		}
		sampleOf[name] = family
	}

	// Every registered Aster series must be in the scrape, or this test would not see its
	// clash: a new vector needs a child above.
	descs := make(chan *prometheus.Desc)
	go func() { m.Registry().Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		sm := fqName.FindStringSubmatch(d.String())
		if sm == nil {
			t.Fatalf("no fqName in %s", d)
		}
		name := sm[1]
		if !strings.HasPrefix(name, Namespace+"_") {
			continue
		}
		if _, ok := families[name]; !ok && families[strings.TrimSuffix(name, "_total")] != "counter" {
			t.Errorf("%s is registered but not in the OpenMetrics scrape: give it a child in this test", name)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

// clusters is a ClusterSource of fixed statuses.
type clusters []controlplane.ClusterStatus

func (c clusters) Clusters() []controlplane.ClusterStatus { return c }

// TestClustersReady: not ready exactly while some cluster has no table or no serving node,
// naming each such cluster; a cluster with one serving node is ready.
func TestClustersReady(t *testing.T) {
	node := func(addr, role, state string, slots ...[2]uint16) controlplane.NodeStatus {
		return controlplane.NodeStatus{Addr: addr, Role: role, State: state, Slots: slots}
	}
	const up, down, out = controlplane.StateUp, controlplane.StateDown, controlplane.StateEjected
	const rn, rm, rr = controlplane.RoleNode, controlplane.RoleMaster, controlplane.RoleReplica
	plain := func(name string, nodes ...controlplane.NodeStatus) controlplane.ClusterStatus {
		return controlplane.ClusterStatus{Name: name, CacheType: config.CacheRedis, TableVersion: 3, Nodes: nodes}
	}
	slotted := func(name string, nodes ...controlplane.NodeStatus) controlplane.ClusterStatus {
		return controlplane.ClusterStatus{Name: name, CacheType: config.CacheRedisCluster, TableVersion: 3, Nodes: nodes}
	}
	all := [2]uint16{0, 16383}
	for _, tt := range []struct {
		name string
		src  clusters
		want []string // substrings of the error; none: ready
	}{
		{"all up", clusters{plain("a", node("n1", rn, up, all), node("n2", rn, up))}, nil},
		{"one of two down", clusters{plain("a", node("n1", rn, down), node("n2", rn, up))}, nil},
		{"one down, one ejected", clusters{plain("a", node("n1", rn, down), node("n2", rn, out))},
			[]string{`cluster "a" has no serving node: every node is down or ejected`}},
		{"only the broken cluster named", clusters{plain("ok", node("n1", rn, up)), plain("bad", node("n2", rn, down))},
			[]string{`cluster "bad"`}},
		{"two broken clusters both named", clusters{plain("b1", node("n1", rn, down)), plain("b2", node("n2", rn, out))},
			[]string{`cluster "b1"`, `cluster "b2"`}},
		{"no table yet", clusters{{Name: "rc", CacheType: config.CacheRedisCluster}}, []string{`cluster "rc" has no routing table yet`}},
		{"cluster: one master down", clusters{slotted("rc",
			node("m1", rm, down, [2]uint16{0, 8000}), node("m2", rm, up, [2]uint16{8001, 16383}), node("r1", rr, up))}, nil},
		{"cluster: every master down, replicas up", clusters{slotted("rc",
			node("m1", rm, down, [2]uint16{0, 8000}), node("m2", rm, down, [2]uint16{8001, 16383}), node("r1", rr, up))},
			[]string{`cluster "rc" has no serving node: every master is down`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ClustersReady(tt.src)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("not ready: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ready")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if tt.name == "only the broken cluster named" && strings.Contains(err.Error(), `"ok"`) {
				t.Errorf("%q names a serving cluster", err)
			}
		})
	}
}
