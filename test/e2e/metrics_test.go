package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aster-proxy/aster/internal/redistest"
)

// metricsConfig is a standalone cluster over servers with fast health checks, and a metrics
// endpoint on a free port, whose address it returns.
func metricsConfig(t *testing.T, servers []*redistest.Server, extra string) (cfg, metricsAddr string) {
	metricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	return `
[metrics]
listen_addr = "` + metricsAddr + `"
` + extra + `
[[clusters]]
name = "m"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, ones(len(servers)), true) + `
read_timeout = 500
dial_timeout = 200
ping_fail_limit = 3
ping_interval = 100
`, metricsAddr
}

func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// httpGet returns the status and body of GET url, failing the test on a transport error.
func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads asterd's /metrics as Prometheus text.
func scrape(t *testing.T, addr string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return body, mfs
}

// sample returns the value of the series of family name whose labels include want, and
// whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// waitSample polls /metrics until the series has value want, or fails after d.
func waitSample(t *testing.T, addr, name string, labels map[string]string, want float64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, mfs := scrape(t, addr)
		got, ok := sample(mfs, name, labels)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v), want %v after %v", name, labels, got, ok, want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsEndpoint runs asterd and checks, over HTTP, that /metrics passes promtool, that
// the counters equal the traffic sent, that node ejections and reloads show, and /healthz and
// /readyz.
func TestMetricsEndpoint(t *testing.T) {
	// Not parallel: /readyz must be ok at once and its counters match the traffic: a
	// loaded CPU delays the first pings.
	servers := startServers(t, 3)
	cfg, maddr := metricsConfig(t, servers, "")
	a := startAsterd(t, cfg)
	base := "http://" + maddr
	redistest.WaitListening(t, maddr, 10*time.Second)

	t.Run("healthz and readyz", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(t, base+p); code != 200 || strings.TrimSpace(body) != "ok" {
				t.Errorf("%s: %d %q, want 200 ok", p, code, body)
			}
		}
		if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("/debug/pprof/ with pprof off: %d, want 404", code)
		}
	})

	t.Run("counters equal traffic", func(t *testing.T) {
		const sets, gets, unknown = 137, 59, 3
		r := redistest.DialRaw(t, a.Addr)
		for i := 0; i < sets; i++ {
			if _, err := r.Do("SET", spreadKey("mt:", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < gets; i++ {
			if v, err := r.Do("GET", spreadKey("mt:", i)); err != nil || v != "v" {
				t.Fatalf("GET: %q, %v", v, err)
			}
		}
		for i := 0; i < unknown; i++ {
			if _, err := r.Do("NOSUCHCOMMAND", "x"); err == nil {
				t.Fatal("an unknown command was not refused")
			}
		}
		// startAsterd's readiness probe was a client connection too, accepted (in order)
		// before r, which has been served: count accepted connections from here.
		_, before := scrape(t, maddr)
		conns0, _ := sample(before, "aster_client_connections_accepted_total", map[string]string{"cluster": "m"})
		r2 := redistest.DialRaw(t, a.Addr)
		if v, err := r2.Do("GET", spreadKey("mt:", 0)); err != nil || v != "v" {
			t.Fatalf("GET on a second connection: %q, %v", v, err)
		}
		_, mfs := scrape(t, maddr)
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"aster_requests_total", map[string]string{"cluster": "m", "command": "set"}, sets},
			{"aster_requests_total", map[string]string{"cluster": "m", "command": "get"}, gets + 1},
			{"aster_requests_total", map[string]string{"cluster": "m", "command": "other"}, unknown},
			{"aster_request_duration_seconds", map[string]string{"cluster": "m"}, sets + gets + 1 + unknown},
			{"aster_client_connections", map[string]string{"cluster": "m"}, 2},
			{"aster_client_connections_accepted_total", map[string]string{"cluster": "m"}, conns0 + 1},
		} {
			if got, ok := sample(mfs, c.name, c.labels); !ok || got != c.want {
				t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
		var backend float64
		for _, s := range servers {
			n, _ := sample(mfs, "aster_backend_request_duration_seconds", map[string]string{"cluster": "m", "node": s.Addr})
			backend += n
		}
		if backend != sets+gets+1 {
			t.Errorf("backend requests observed: %v, want %d (the unknown ones never leave the proxy)", backend, sets+gets+1)
		}
	})

	t.Run("every series is documented", func(t *testing.T) {
		_, mfs := scrape(t, maddr)
		for name := range mfs {
			if strings.HasPrefix(name, "aster_") && !slices.Contains(seriesNames, name) {
				t.Errorf("%s is exposed but not in seriesNames (and so maybe not in docs/operations.md)", name)
			}
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		redistest.Need(t, "promtool")
		body, _ := scrape(t, maddr)
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("ejection and return", func(t *testing.T) {
		node := map[string]string{"cluster": "m", "node": servers[1].Addr}
		waitSample(t, maddr, "aster_backend_up", node, 1, 5*time.Second)
		servers[1].Kill()
		waitSample(t, maddr, "aster_backend_up", node, 0, 10*time.Second)
		waitSample(t, maddr, "aster_node_ejections_total",
			map[string]string{"cluster": "m", "node": servers[1].Addr, "reason": "health"}, 1, 5*time.Second)
		servers[1].Restart()
		waitSample(t, maddr, "aster_backend_up", node, 1, 10*time.Second)
	})

	t.Run("reloads", func(t *testing.T) {
		path := a.cmd.Args[2]
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		hup := func(content []byte) {
			t.Helper()
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		hup(append(append([]byte{}, good...), "bogus_key = 1\n"...))
		waitSample(t, maddr, "aster_config_reloads_total", map[string]string{"result": "failure"}, 1, 5*time.Second)
		waitSample(t, maddr, "aster_config_last_reload_successful", nil, 0, time.Second)
		hup(good)
		waitSample(t, maddr, "aster_config_reloads_total", map[string]string{"result": "success"}, 1, 5*time.Second)
		waitSample(t, maddr, "aster_config_last_reload_successful", nil, 1, time.Second)
	})
}

func TestMetricsPprofAndFlags(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	cfg, maddr := metricsConfig(t, servers, "pprof = true")
	startAsterd(t, cfg)
	redistest.WaitListening(t, maddr, 10*time.Second)
	if code, body := httpGet(t, "http://"+maddr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with pprof = true: %d\n%s", code, body)
	}

	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"both flags", []string{"--metrics", "9121", "--metrics-addr", "127.0.0.1:9121"}, "give one"},
		{"bad port", []string{"--metrics", "70000"}, "not a port"},
		{"bad addr", []string{"--metrics-addr", "nope"}, `--metrics-addr "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(asterdBin, append([]string{"--config", "/nonexistent.toml"}, c.args...)...)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.msg) {
				t.Fatalf("exit %v, output %q; want exit 2 mentioning %q", err, out, c.msg)
			}
		})
	}
}

// TestMetricsFlagOverridesConfig: --metrics PORT serves on 127.0.0.1:PORT whatever the file
// says, and the file's address stays closed.
func TestMetricsFlagOverridesConfig(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 1)
	cfg, fileAddr := metricsConfig(t, servers, "")
	port := redistest.FreePort(t)
	a := startAsterdArgs(t, cfg+"\n[admin]\nlisten_addr = \"\"\n", "--metrics", strconv.Itoa(port))
	flagAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	redistest.WaitListening(t, flagAddr, 10*time.Second)
	if code, _ := httpGet(t, "http://"+flagAddr+"/healthz"); code != 200 {
		t.Fatalf("healthz on the --metrics port: %d", code)
	}
	if c, err := net.DialTimeout("tcp", fileAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("[metrics] listen_addr %s still served despite --metrics", fileAddr)
	}
	_ = a
}

// acceptedSeries counts accepted client connections. It must not be the gauge's name plus
// _total: OpenMetrics would put both in one family.
const acceptedSeries = "aster_client_connections_accepted_total"

// TestPrometheusScrapesAsterd runs a real Prometheus server scraping asterd every second (it
// negotiates OpenMetrics) and checks through Prometheus's HTTP API that the target is healthy,
// that both client connection series arrive with their own type, and aster_build_info and
// aster_backend_up.
func TestPrometheusScrapesAsterd(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "prometheus")
	servers := startServers(t, 2)
	cfg, maddr := metricsConfig(t, servers, "")
	a := startAsterd(t, cfg)
	redistest.WaitListening(t, maddr, 10*time.Second)
	// One client stays connected for the whole test: the gauge is 1 and the counter final.
	client := redistest.DialRaw(t, a.Addr)
	if v, err := client.Do("PING"); err != nil || v != "PONG" {
		t.Fatalf("PING: %q, %v", v, err)
	}
	_, mfs := scrape(t, maddr)
	accepted, ok := sample(mfs, acceptedSeries, map[string]string{"cluster": "m"})
	if !ok || accepted < 2 { // startAsterd's readiness probe, then client
		t.Fatalf("asterd's own %s = %v (present %v), want >= 2", acceptedSeries, accepted, ok)
	}

	dir := t.TempDir()
	promAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: asterd
    static_configs:
      - targets: ["`+maddr+`"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var plog bytes.Buffer
	prom := exec.Command("prometheus",
		"--config.file="+promCfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn",
	)
	prom.Stdout, prom.Stderr = &plog, &plog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = prom.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = prom.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = prom.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})

	// promGet decodes the JSON answer to GET path into v, and returns the body too.
	promGet := func(path string, v any) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + promAddr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return string(b), fmt.Errorf("GET %s: status %d: %s", path, resp.StatusCode, b)
		}
		return string(b), json.Unmarshal(b, v)
	}

	// query returns the instant vector of expr as label sets with their values.
	type series struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	query := func(expr string) ([]series, error) {
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []series `json:"result"`
			} `json:"data"`
		}
		if _, err := promGet("/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
			return nil, err
		}
		if r.Status != "success" {
			return nil, fmt.Errorf("query %q: %s", expr, r.Error)
		}
		return r.Data.Result, nil
	}
	waitQuery := func(expr string, n int) []series {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			res, err := query(expr)
			if err == nil && len(res) == n {
				return res
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d series (%v), want %d within 45s", expr, len(res), err, n)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// The target is scraped without error: an exposition Prometheus cannot parse shows here.
	type target struct {
		Health    string `json:"health"`
		LastError string `json:"lastError"`
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		var r struct {
			Data struct {
				ActiveTargets []target `json:"activeTargets"`
			} `json:"data"`
		}
		body, err := promGet("/api/v1/targets?state=active", &r)
		if err == nil && len(r.Data.ActiveTargets) == 1 {
			tg := r.Data.ActiveTargets[0]
			if tg.LastError != "" {
				t.Fatalf("scrape of asterd failed: %q", tg.LastError)
			}
			if tg.Health == "up" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("target not up within 45s: %v %s", err, body)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Both client connection series arrive, with asterd's own values, and Prometheus records
	// each under its own type (two families of one name would leave one of them mistyped).
	waitQuery(`aster_client_connections{job="asterd",cluster="m"} == 1`, 1)
	waitQuery(acceptedSeries+`{job="asterd",cluster="m"} == `+strconv.FormatFloat(accepted, 'f', -1, 64), 1)
	for _, c := range []struct{ family, typ string }{
		{"aster_client_connections", "gauge"},
		{strings.TrimSuffix(acceptedSeries, "_total"), "counter"},
	} {
		var r struct {
			Data []struct {
				Type string `json:"type"`
			} `json:"data"`
		}
		body, err := promGet("/api/v1/targets/metadata?metric="+c.family, &r)
		if err != nil {
			t.Fatalf("metadata of %s: %v", c.family, err)
		}
		if len(r.Data) != 1 || r.Data[0].Type != c.typ {
			t.Errorf("Prometheus's metadata of family %s: %s, want one entry of type %s", c.family, body, c.typ)
		}
	}

	res := waitQuery(`aster_build_info{job="asterd"}`, 1)
	if v := res[0].Metric["goversion"]; !strings.HasPrefix(v, "go") {
		t.Errorf("aster_build_info goversion = %q", v)
	}
	if res[0].Metric["version"] == "" {
		t.Errorf("aster_build_info has no version: %v", res[0].Metric)
	}
	if res[0].Value[1] != "1" {
		t.Errorf("aster_build_info = %v, want 1", res[0].Value[1])
	}
	res = waitQuery(`aster_backend_up{job="asterd",cluster="m"} == 1`, 2)
	got := map[string]bool{}
	for _, s := range res {
		got[s.Metric["node"]] = true
	}
	for _, s := range servers {
		if !got[s.Addr] {
			t.Errorf("aster_backend_up: node %s missing from %v", s.Addr, got)
		}
	}
	// A killed node shows as 0 through Prometheus too.
	servers[0].Kill()
	res = waitQuery(`aster_backend_up{job="asterd",cluster="m"} == 0`, 1)
	if res[0].Metric["node"] != servers[0].Addr {
		t.Errorf("down node %v, want %s", res[0].Metric, servers[0].Addr)
	}
	// And the scrape itself is healthy (no OpenMetrics parse trouble).
	waitQuery(`up{job="asterd"} == 1`, 1)

	// Every query of the Grafana dashboard is valid PromQL for this Prometheus, once Grafana's
	// variables are filled in.
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "5m", "$instance", ".*", "$cluster", ".*")
	for _, e := range dashboardExprs(t) {
		if _, err := query(vars.Replace(e)); err != nil {
			t.Errorf("dashboard query: %v", err)
		}
	}
}
