package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/latency"
)

// Metrics are the data plane's Prometheus vectors, made and registered by NewMetrics; nil
// turns metrics off. Children are resolved once per cluster (and per node pool), never per
// request. Every series is listed with its labels in docs/operations.md, section "Metrics".
type Metrics struct {
	Requests                  *prometheus.CounterVec // {cluster, command}
	RequestErrors             *prometheus.CounterVec // {cluster, kind}
	RequestDuration           *latency.Vec           // {cluster}
	BackendRequestDuration    *latency.Vec           // {cluster, node}
	ClientConnections         *prometheus.GaugeVec   // {cluster}
	ClientConnectionsAccepted *prometheus.CounterVec // {cluster}
	Redirects                 *prometheus.CounterVec // {cluster, kind}
	BackupRequests            *prometheus.CounterVec // {cluster, result}
	PubSubClients             *prometheus.GaugeVec   // {cluster}
	PubSubMessages            *prometheus.CounterVec // {cluster}
	BackendErrors             *prometheus.CounterVec // {cluster, node, kind}
}

// LatencyBuckets are the classic histogram buckets of both latency histograms: 16 exponential
// steps from 50 µs (a loopback round trip) to 5 s (far past any sane timeout).
var LatencyBuckets = prometheus.ExponentialBucketsRange(50e-6, 5, 16)

// NewMetrics makes the data plane's vectors and registers them with reg (none when reg is
// nil: a test may read the vectors without a registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	var all []prometheus.Collector
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aster", Name: name, Help: help}, labels)
		all = append(all, v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "aster", Name: name, Help: help}, labels)
		all = append(all, v)
		return v
	}
	// Observed once or twice per request: latency's histograms cost two atomic adds where
	// client_golang's cost several times more. Scrapers that ask for protobuf also get a
	// native histogram (schema 3, ~9% resolution, fixed buckets from 1 µs to 68 min).
	histogram := func(name, help string, labels ...string) *latency.Vec {
		v := latency.NewVec(latency.Opts{Namespace: "aster", Name: name, Help: help, Buckets: LatencyBuckets}, labels)
		all = append(all, v)
		return v
	}
	m := &Metrics{
		// Commands outside the command table are counted as "other" so that the label stays
		// bounded.
		Requests: counter("requests_total",
			"Client requests received, by cluster and command (commands outside the command table as \"other\").",
			"cluster", "command"),
		RequestErrors: counter("request_errors_total",
			"Client requests answered with an error, by cluster and kind of failure.",
			"cluster", "kind"),
		RequestDuration: histogram("request_duration_seconds",
			"Latency of client requests as the client sees it, from parsed to reply queued, in seconds.",
			"cluster"),
		BackendRequestDuration: histogram("backend_request_duration_seconds",
			"Latency of requests to one backend node, from sent to reply read, in seconds.",
			"cluster", "node"),
		ClientConnections: gauge("client_connections",
			"Client connections currently open, by cluster.", "cluster"),
		// Not the gauge's name plus _total: OpenMetrics drops a counter's _total from its
		// family name, and two families of one name make an invalid exposition.
		ClientConnectionsAccepted: counter("client_connections_accepted_total",
			"Client connections accepted, by cluster.", "cluster"),
		Redirects: counter("redirects_total",
			"MOVED and ASK redirections followed, by cluster and kind (moved, ask).", "cluster", "kind"),
		BackupRequests: counter("backup_requests_total",
			"Backup reads sent to a replica because the master had not answered in time, and those that answered first, by cluster and result (sent, won).",
			"cluster", "result"),
		PubSubClients: gauge("pubsub_clients",
			"Clients in subscribed mode (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE), by cluster.", "cluster"),
		PubSubMessages: counter("pubsub_messages_total",
			"Pub/sub messages (message, pmessage, smessage) delivered to subscribed clients, by cluster.", "cluster"),
		// By node, so that an alert can name it.
		BackendErrors: counter("backend_errors_total",
			"Requests that failed on a backend node, by cluster, node and kind (timeout: no reply within read_timeout; backend: the connection failed or the node is down).",
			"cluster", "node", "kind"),
	}
	if reg != nil {
		reg.MustRegister(all...)
	}
	return m
}

// Error kinds of aster_request_errors_total.
const (
	ErrKindTimeout           = "timeout"            // the node did not answer within read_timeout
	ErrKindBackend           = "backend"            // the node's connection failed
	ErrKindProtocol          = "protocol"           // the client sent malformed RESP
	ErrKindRefused           = "refused"            // answered with an error by the proxy itself
	ErrKindRedirectExhausted = "redirect_exhausted" // still redirected after the hop limit
	// A client disconnected because its pipelined replies passed client_output_limit; one
	// per client, not per command.
	ErrKindOutputLimit = "output_limit"
)

// clusterMetrics are one cluster's metric children. The zero value (metrics off) is usable:
// every method checks on.
type clusterMetrics struct {
	on          bool
	m           *Metrics
	cluster     string
	lazy        *lazyCounters
	timeout     prometheus.Counter
	backendErr  prometheus.Counter
	protocol    prometheus.Counter
	refused     prometheus.Counter
	exhausted   prometheus.Counter
	outputLimit prometheus.Counter
	duration    *latency.Histogram
	clients     prometheus.Gauge
	clientsSeen prometheus.Counter
	moved, ask  prometheus.Counter
	backupSent  prometheus.Counter // nil with metrics off, as the three below
	backupWon   prometheus.Counter
	subscribers prometheus.Gauge
	messages    prometheus.Counter
}

func newClusterMetrics(m *Metrics, cluster string) clusterMetrics {
	if m == nil {
		return clusterMetrics{}
	}
	cm := clusterMetrics{on: true, m: m, cluster: cluster,
		lazy: &lazyCounters{requests: make([]atomic.Pointer[counter], len(command.All())+1)}}
	cm.timeout = m.RequestErrors.WithLabelValues(cluster, ErrKindTimeout)
	cm.backendErr = m.RequestErrors.WithLabelValues(cluster, ErrKindBackend)
	cm.protocol = m.RequestErrors.WithLabelValues(cluster, ErrKindProtocol)
	cm.refused = m.RequestErrors.WithLabelValues(cluster, ErrKindRefused)
	cm.exhausted = m.RequestErrors.WithLabelValues(cluster, ErrKindRedirectExhausted)
	cm.outputLimit = m.RequestErrors.WithLabelValues(cluster, ErrKindOutputLimit)
	cm.duration = m.RequestDuration.WithLabelValues(cluster)
	cm.clients = m.ClientConnections.WithLabelValues(cluster)
	cm.clientsSeen = m.ClientConnectionsAccepted.WithLabelValues(cluster)
	cm.moved = m.Redirects.WithLabelValues(cluster, "moved")
	cm.ask = m.Redirects.WithLabelValues(cluster, "ask")
	cm.backupSent = m.BackupRequests.WithLabelValues(cluster, "sent")
	cm.backupWon = m.BackupRequests.WithLabelValues(cluster, "won")
	cm.subscribers = m.PubSubClients.WithLabelValues(cluster)
	cm.messages = m.PubSubMessages.WithLabelValues(cluster)
	return cm
}

// lazyCounters are the children a cluster makes on first use, so that a cluster exports
// the commands its clients send rather than a zero series for each of ~240, and none is
// made again once the cluster's series are deleted (forget).
type lazyCounters struct {
	requests []atomic.Pointer[counter] // by command.Spec.ID; the last one is "other"
	mu       sync.Mutex
	gone     bool // forget ran: the cluster is no longer served
}

type counter struct{ prometheus.Counter }

// nodeLatency is the backend latency child of one node, or nil with metrics off.
func (cm *clusterMetrics) nodeLatency(addr string) interface {
	ObserveDurationN(d time.Duration, n int)
} {
	if !cm.on {
		return nil
	}
	cm.lazy.mu.Lock()
	defer cm.lazy.mu.Unlock()
	if cm.lazy.gone {
		return nil
	}
	return cm.m.BackendRequestDuration.WithLabelValues(cm.cluster, addr)
}

// nodeFailures counts the requests that fail on one node, by kind, in
// aster_backend_errors_total; nil with metrics off. Both children exist from the node's
// first pool, so that a rate over them starts at zero.
func (cm *clusterMetrics) nodeFailures(addr string) func(backend.Failure, int) {
	if !cm.on {
		return nil
	}
	cm.lazy.mu.Lock()
	defer cm.lazy.mu.Unlock()
	if cm.lazy.gone {
		return nil
	}
	timeout := cm.m.BackendErrors.WithLabelValues(cm.cluster, addr, ErrKindTimeout)
	failed := cm.m.BackendErrors.WithLabelValues(cm.cluster, addr, ErrKindBackend)
	return func(why backend.Failure, n int) {
		switch why {
		case backend.FailTimeout:
			timeout.Add(float64(n))
		case backend.FailBackend:
			failed.Add(float64(n))
		}
	}
}

// forgetNode deletes the series of a node the cluster no longer routes to.
func (cm *clusterMetrics) forgetNode(addr string) {
	if !cm.on {
		return
	}
	node := prometheus.Labels{"cluster": cm.cluster, "node": addr}
	cm.m.BackendRequestDuration.DeletePartialMatch(node)
	cm.m.BackendErrors.DeletePartialMatch(node)
}

// forget deletes every series of the cluster, which a reload or snapshot removed; its
// draining sessions count on into children no scrape shows, and make no new ones.
func (cm *clusterMetrics) forget() {
	if !cm.on {
		return
	}
	cm.lazy.mu.Lock()
	defer cm.lazy.mu.Unlock()
	cm.lazy.gone = true
	of := prometheus.Labels{"cluster": cm.cluster}
	m := cm.m
	for _, v := range []*prometheus.CounterVec{m.Requests, m.RequestErrors, m.ClientConnectionsAccepted,
		m.Redirects, m.BackupRequests, m.PubSubMessages, m.BackendErrors} {
		v.DeletePartialMatch(of)
	}
	for _, v := range []*prometheus.GaugeVec{m.ClientConnections, m.PubSubClients} {
		v.DeletePartialMatch(of)
	}
	for _, v := range []*latency.Vec{m.RequestDuration, m.BackendRequestDuration} {
		v.DeletePartialMatch(of)
	}
}

// request counts one client command (spec nil for an unknown one): in the cluster's own
// count, which INFO reports with metrics on or off, and by command with metrics on.
func (c *Cluster) request(spec *command.Spec) {
	c.commands.Add(1)
	c.metrics.request(spec)
}

// request counts one client command in aster_requests_total.
func (cm *clusterMetrics) request(spec *command.Spec) { cm.requests(spec, 1) }

// requests counts n client commands of one name in aster_requests_total.
func (cm *clusterMetrics) requests(spec *command.Spec, n uint32) {
	if !cm.on {
		return
	}
	id := len(cm.lazy.requests) - 1
	if spec != nil {
		id = spec.ID
	}
	c := cm.lazy.requests[id].Load()
	if c == nil {
		if c = cm.requestCounter(id, spec); c == nil {
			return
		}
	}
	c.Add(float64(n))
}

// requestCounter makes the request counter of command id on its first use.
func (cm *clusterMetrics) requestCounter(id int, spec *command.Spec) *counter {
	l := cm.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.requests[id].Load(); c != nil || l.gone {
		return c
	}
	name := "other"
	if spec != nil {
		name = spec.Name
	}
	c := &counter{cm.m.Requests.WithLabelValues(cm.cluster, name)}
	l.requests[id].Store(c)
	return c
}

// failure counts a request that its node never answered.
func (cm *clusterMetrics) failure(f backend.Failure) {
	if !cm.on {
		return
	}
	switch f {
	case backend.FailTimeout:
		cm.timeout.Inc()
	case backend.FailBackend:
		cm.backendErr.Inc()
	}
}

func (cm *clusterMetrics) clientOpened() {
	if cm.on {
		cm.clients.Inc()
		cm.clientsSeen.Inc()
	}
}

func (cm *clusterMetrics) clientClosed() {
	if cm.on {
		cm.clients.Dec()
	}
}

// batchDone observes the client-seen latency of the n commands of a batch.
func (cm *clusterMetrics) batchDone(n int, elapsed time.Duration) {
	if !cm.on {
		return
	}
	cm.duration.ObserveDurationN(elapsed, n)
}

// subscribed counts a client entering (+1) or leaving (-1) subscribed mode.
func (cm *clusterMetrics) subscribed(delta float64) {
	if cm.subscribers != nil {
		cm.subscribers.Add(delta)
	}
}

func (cm *clusterMetrics) inc(c prometheus.Counter) {
	if cm.on {
		c.Inc()
	}
}
