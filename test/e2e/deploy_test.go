package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/internal/redistest"
)

// deployDir is deploy/ from this package's directory.
const deployDir = "../../deploy"

// TestDeployPrometheus runs promtool over deploy/prometheus: the scrape config, the alerting
// rules and their unit tests.
func TestDeployPrometheus(t *testing.T) {
	t.Parallel()
	redistest.Need(t, "promtool")
	cases := []struct {
		name string
		args []string
	}{
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"check rules", []string{"check", "rules", "rules.yml"}},
		{"test rules", []string{"test", "rules", "rules_test.yml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("promtool", c.args...)
			cmd.Dir = filepath.Join(deployDir, "prometheus")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(c.args, " "), err, out)
			}
		})
	}
	// The negative case: promtool must fail on a rule that does not hold, or the checks above
	// prove nothing.
	t.Run("a wrong rule fails its unit test", func(t *testing.T) {
		dir := t.TempDir()
		readme, err := os.ReadFile("../../docs/operations.md")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range seriesNames {
			if !strings.Contains(string(readme), "`"+n) {
				t.Errorf("docs/operations.md does not list %s", n)
			}
		}
		rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "rules.yml"))
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(rules), "expr: aster_backend_up == 0", "expr: aster_backend_up == 2", 1)
		if broken == string(rules) {
			t.Fatal("rules.yml has no AsterNodeEjected expression to break")
		}
		tests, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "rules_test.yml"))
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"rules.yml": []byte(broken), "rules_test.yml": tests} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("promtool", "test", "rules", "rules_test.yml")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("promtool test rules passed a broken rule:\n%s", out)
		}
	})
}

// TestDeploySystemd verifies the unit with systemd-analyze, when it is installed, with
// asterd's path pointed at the binary under test (verify checks that ExecStart exists).
func TestDeploySystemd(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join(deployDir, "systemd", "asterd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
		"PrivateTmp=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("asterd.service lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "asterd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/asterd", asterdBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDeployConfigs runs `asterd --check` on every configuration deploy/ ships: the examples
// and the one inside the Kubernetes ConfigMap.
func TestDeployConfigs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(deployDir, "examples", "*.toml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	cm, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	k8s := filepath.Join(t.TempDir(), "configmap-aster.toml")
	if err := os.WriteFile(k8s, []byte(blockScalar(t, string(cm), "aster.toml")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, k8s) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(asterdBin, "--check", "--config", f).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OK") {
				t.Fatalf("asterd --check %s: %v\n%s", f, err, out)
			}
		})
	}
}

// blockScalar returns the literal block `key: |` of a YAML document, unindented.
func blockScalar(t *testing.T, doc, key string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != key+": |" {
			continue
		}
		indent := -1
		var b strings.Builder
		for _, l := range lines[i+1:] {
			if strings.TrimSpace(l) == "" {
				b.WriteString("\n")
				continue
			}
			n := len(l) - len(strings.TrimLeft(l, " "))
			if indent < 0 {
				indent = n
			}
			if n < indent {
				break
			}
			b.WriteString(l[indent:] + "\n")
		}
		return b.String()
	}
	t.Fatalf("no %q block in the ConfigMap", key)
	return ""
}

// seriesNames are the names of the series asterd exposes (histograms by family name).
var seriesNames = []string{
	"aster_requests_total", "aster_request_errors_total", "aster_request_duration_seconds",
	"aster_backend_request_duration_seconds", "aster_client_connections", "aster_client_connections_accepted_total",
	"aster_redirects_total", "aster_backup_requests_total", "aster_backend_up", "aster_node_ejections_total", "aster_topology_refreshes_total",
	"aster_routing_table_version", "aster_config_reloads_total", "aster_config_last_reload_successful",
	"aster_build_info", "aster_pubsub_clients", "aster_pubsub_messages_total", "aster_backend_errors_total",
	"aster_control_plane_connected", "aster_control_plane_last_snapshot_age_seconds", "aster_sentinel_switches_total",
	"aster_client_cache_lookups_total", "aster_client_cache_invalidations_total", "aster_client_cache_entries",
	"aster_lent_buffer_pinned_bytes", "aster_lent_buffers_leaked_total",
}

var asterName = regexp.MustCompile(`\baster_[a-z_]+`)

// knownSeries reports whether a name used in a query is one asterd exposes.
func knownSeries(name string) bool {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(seriesNames, base) {
			return true
		}
	}
	return slices.Contains(seriesNames, name)
}

// dashboardExprs returns every PromQL expression of deploy/grafana/aster.json, and of its
// template variables' queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "aster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("aster.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// TestDeployDashboardAndRulesNames checks that the dashboard and the alerts use only series
// asterd exposes, and that the dashboard shows every one of them.
func TestDeployDashboardAndRulesNames(t *testing.T) {
	t.Parallel()
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("dashboard has only %d queries", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, n := range asterName.FindAllString(e, -1) {
			if !knownSeries(n) {
				t.Errorf("dashboard query uses %s, which asterd does not expose: %s", n, e)
			}
			used[strings.TrimSuffix(n, "_bucket")] = true
		}
	}
	for _, n := range seriesNames {
		if !used[n] {
			t.Errorf("dashboard does not show %s", n)
		}
	}
	readme, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range seriesNames {
		if !strings.Contains(string(readme), "`"+n) {
			t.Errorf("docs/operations.md does not list %s", n)
		}
	}
	rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range asterName.FindAllString(string(rules), -1) {
		if !knownSeries(n) {
			t.Errorf("rules.yml uses %s, which asterd does not expose", n)
		}
	}
}
