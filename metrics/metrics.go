// Package metrics owns Aster's Prometheus registry (a registry of its own, never the global
// one) with the Go runtime and process collectors, the control plane's counters (fed through
// controlplane.Metrics) and state read at scrape time from the control plane itself, and the
// HTTP endpoint that serves them. The data plane's vectors are the proxy's own:
// proxy.NewMetrics registers them on Registry().
//
// Every series is listed with its labels in docs/operations.md, section "Metrics".
package metrics

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/dataplane/backend"
)

// Namespace prefixes every Aster series.
const Namespace = "aster"

// Label values of the bounded sets this package fills in itself.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// Metrics holds the registry and the control plane's series, fed through the methods that
// make *Metrics a controlplane.Metrics, and through WatchControlPlane.
type Metrics struct {
	reg *prometheus.Registry

	ejections     *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	switches      *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadSuccess prometheus.Gauge
	src           ClusterSource // set by WatchControlPlane
	link          cpLink        // a --role data asterd's link to its control plane
}

// cpLink is what a --role data asterd knows of its control plane.
type cpLink struct {
	connected    atomic.Bool
	lastSnapshot atomic.Int64 // unix nanoseconds; 0 before the first
}

// ControlPlaneConnected records whether the route stream is open (remote.Observer).
func (m *Metrics) ControlPlaneConnected(up bool) { m.link.connected.Store(up) }

// SnapshotReceived records when the last snapshot arrived (remote.Observer).
func (m *Metrics) SnapshotReceived(t time.Time) { m.link.lastSnapshot.Store(t.UnixNano()) }

// DataPlaneSource is what WatchDataPlane reads at each scrape; *proxy.Server is one.
type DataPlaneSource interface {
	TableVersions() map[string]uint64
}

// WatchDataPlane registers the series of a --role data asterd, which has no control plane of
// its own: aster_routing_table_version of the tables it serves, read from src at each scrape,
// aster_control_plane_connected and, once a snapshot came, the age of the last one. Call it
// at most once, instead of WatchControlPlane.
func (m *Metrics) WatchDataPlane(src DataPlaneSource) {
	m.reg.MustRegister(dataPlaneCollector{src: src, link: &m.link})
}

var (
	cpConnectedDesc = prometheus.NewDesc(Namespace+"_control_plane_connected",
		"1 while a --role data asterd has a route stream open to its control plane, 0 while it serves its last tables without one.",
		nil, nil)
	snapshotAgeDesc = prometheus.NewDesc(Namespace+"_control_plane_last_snapshot_age_seconds",
		"Seconds since a --role data asterd received its last snapshot (the control plane sends one when something changes); absent before the first.",
		nil, nil)
)

// dataPlaneCollector reports a --role data asterd's tables and link.
type dataPlaneCollector struct {
	src  DataPlaneSource
	link *cpLink
}

// Describe implements prometheus.Collector.
func (dataPlaneCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tableVersionDesc
	ch <- cpConnectedDesc
	ch <- snapshotAgeDesc
}

// Collect implements prometheus.Collector.
func (c dataPlaneCollector) Collect(ch chan<- prometheus.Metric) {
	for name, v := range c.src.TableVersions() {
		ch <- prometheus.MustNewConstMetric(tableVersionDesc, prometheus.GaugeValue, float64(v), name)
	}
	up := 0.0
	if c.link.connected.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(cpConnectedDesc, prometheus.GaugeValue, up)
	if last := c.link.lastSnapshot.Load(); last != 0 {
		ch <- prometheus.MustNewConstMetric(snapshotAgeDesc, prometheus.GaugeValue, time.Since(time.Unix(0, last)).Seconds())
	}
}

// New returns the series of one asterd process on a fresh registry; version is reported by
// aster_build_info. The last configuration load counts as successful: asterd does not start
// on a bad one.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	m := &Metrics{
		reg: reg,
		ejections: counter("node_ejections_total",
			"Nodes taken out of a standalone cluster's ring, by cluster, node and reason (health, operator).",
			"cluster", "node", "reason"),
		refreshes: counter("topology_refreshes_total",
			"Redis Cluster topology refreshes by result (changed: a new slot map was published; unchanged; failed: no node answered).",
			"cluster", "result"),
		switches: counter("sentinel_switches_total",
			"Masters of Sentinel-managed groups replaced (a quorum of sentinels named a new one), by cluster and group (its Sentinel master name).",
			"cluster", "group"),
		reloads: counter("config_reloads_total",
			"Configuration reloads (SIGHUP or admin API), by result (success, failure).", "result"),
	}
	m.reloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "config_last_reload_successful",
		Help: "1 when the last configuration load or reload succeeded, 0 when it was refused.",
	})
	reg.MustRegister(m.reloadSuccess)
	m.reloadSuccess.Set(1)
	// Both results exist from the start, so that rate() and increase() see the first one.
	m.reloads.WithLabelValues(ReloadSuccess)
	m.reloads.WithLabelValues(ReloadFailure)
	gauge("build_info", "Always 1; the labels say which asterd and Go built it.", "version", "goversion").
		WithLabelValues(version, runtime.Version()).Set(1)
	// Big replies lent from node connections' read buffers (backend.Conn.SendLending): what
	// batches waiting on slow nodes hold, and leases never given back (a bug).
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "lent_buffer_pinned_bytes",
			Help: "Bytes of node connections' read buffers held by lent big replies after their connection moved on (at most 64 MiB; past it replies are copied).",
		}, func() float64 { return float64(lentPinned()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "lent_buffers_leaked_total",
			Help: "Read buffers collected with a lent reply never given back: a bug, please report it.",
		}, func() float64 { return float64(lentLeaked()) }),
	)
	return m
}

// lentPinned and lentLeaked are what the lent-buffer series read; variables for tests.
var lentPinned, lentLeaked = backend.PinnedBytes, backend.LeakedBuffers

// Registry returns the registry every series is registered with, for the HTTP handler and for
// tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// NodeEjected counts an ejection; it implements controlplane.Metrics.
func (m *Metrics) NodeEjected(cluster, node, reason string) {
	m.ejections.WithLabelValues(cluster, node, reason).Inc()
}

// TopologyRefreshed counts a topology refresh; it implements controlplane.Metrics.
func (m *Metrics) TopologyRefreshed(cluster, result string) {
	m.refreshes.WithLabelValues(cluster, result).Inc()
}

// SentinelSwitched counts a group's new master; it implements controlplane.SentinelMetrics.
func (m *Metrics) SentinelSwitched(cluster, group string) {
	m.switches.WithLabelValues(cluster, group).Inc()
}

// ConfigReloaded counts a reload attempt: err is nil when the new configuration was applied.
func (m *Metrics) ConfigReloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues(ReloadFailure).Inc()
		m.reloadSuccess.Set(0)
		return
	}
	m.reloads.WithLabelValues(ReloadSuccess).Inc()
	m.reloadSuccess.Set(1)
	m.prune()
}

// prune deletes the control plane's series (ejections, topology refreshes) of clusters and
// nodes that a reload removed, so that they neither linger nor fire alerts.
func (m *Metrics) prune() {
	if m.src == nil {
		return
	}
	nodes := map[string]map[string]bool{}
	for _, cs := range m.src.Clusters() {
		nodes[cs.Name] = map[string]bool{}
		for _, n := range cs.Nodes {
			nodes[cs.Name][n.Addr] = true
		}
	}
	for _, v := range []*prometheus.CounterVec{m.ejections, m.refreshes} {
		for _, labels := range seriesLabels(v) {
			have, ok := nodes[labels["cluster"]]
			if node, perNode := labels["node"]; !ok || (perNode && !have[node]) {
				v.Delete(labels)
			}
		}
	}
}

// seriesLabels lists the label sets of v's series.
func seriesLabels(v prometheus.Collector) []prometheus.Labels {
	ch := make(chan prometheus.Metric)
	go func() { v.Collect(ch); close(ch) }()
	var out []prometheus.Labels
	for s := range ch {
		var d dto.Metric
		if err := s.Write(&d); err != nil {
			continue
		}
		l := prometheus.Labels{}
		for _, p := range d.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out = append(out, l)
	}
	return out
}

var _ controlplane.Metrics = (*Metrics)(nil)

// ClusterSource is what WatchControlPlane reads at each scrape; *controlplane.ControlPlane is
// one. Clusters may be called from any goroutine.
type ClusterSource interface {
	Clusters() []controlplane.ClusterStatus
}

// WatchControlPlane registers aster_backend_up and aster_routing_table_version, computed from
// src at each scrape, so that they are always what the control plane holds (a removed cluster
// or node simply disappears); a successful reload then deletes the counters of clusters and
// nodes src no longer has. Call it at most once, before any reload.
func (m *Metrics) WatchControlPlane(src ClusterSource) {
	m.src = src
	m.reg.MustRegister(stateCollector{src: src})
}

var (
	backendUpDesc = prometheus.NewDesc(Namespace+"_backend_up",
		"1 when a backend node is serving, 0 when it is ejected (health or operator) or down.",
		[]string{"cluster", "node"}, nil)
	tableVersionDesc = prometheus.NewDesc(Namespace+"_routing_table_version",
		"Version of the routing table a cluster currently routes by; 0 while it has none.",
		[]string{"cluster"}, nil)
)

// stateCollector reports the control plane's current state.
type stateCollector struct {
	src ClusterSource
}

// Describe implements prometheus.Collector.
func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backendUpDesc
	ch <- tableVersionDesc
}

// Collect implements prometheus.Collector.
func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cs := range c.src.Clusters() {
		ch <- prometheus.MustNewConstMetric(tableVersionDesc, prometheus.GaugeValue, float64(cs.TableVersion), cs.Name)
		seen := make(map[string]bool, len(cs.Nodes))
		for _, n := range cs.Nodes {
			if seen[n.Addr] || n.Addr == "" {
				// A node listed twice would make the scrape fail whole; a Sentinel group
				// with no master yet has no node to report.
				continue
			}
			seen[n.Addr] = true
			up := 0.0
			if n.State == controlplane.StateUp {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(backendUpDesc, prometheus.GaugeValue, up, cs.Name, n.Addr)
		}
	}
}
