package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
)

// Metrics are the data plane's Prometheus vectors; package metrics makes and registers them.
// Children are resolved once per cluster (and per node pool), never per request.
type Metrics struct {
	Requests                  *prometheus.CounterVec   // {cluster, command}
	RequestErrors             *prometheus.CounterVec   // {cluster, kind}
	RequestDuration           *prometheus.HistogramVec // {cluster}
	BackendRequestDuration    *prometheus.HistogramVec // {cluster, node}
	ClientConnections         *prometheus.GaugeVec     // {cluster}
	ClientConnectionsAccepted *prometheus.CounterVec   // {cluster}
	Redirects                 *prometheus.CounterVec   // {cluster, kind}
	BackupRequests            *prometheus.CounterVec   // {cluster, result}; may be nil
	PubSubClients             *prometheus.GaugeVec     // {cluster}; may be nil
	PubSubMessages            *prometheus.CounterVec   // {cluster}; may be nil
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
	requests    []prometheus.Counter // by command.Spec.ID; the last one is "other"
	timeout     prometheus.Counter
	backendErr  prometheus.Counter
	protocol    prometheus.Counter
	refused     prometheus.Counter
	exhausted   prometheus.Counter
	outputLimit prometheus.Counter
	duration    prometheus.Observer
	clients     prometheus.Gauge
	clientsSeen prometheus.Counter
	moved, ask  prometheus.Counter
	backupSent  prometheus.Counter // nil without BackupRequests
	backupWon   prometheus.Counter
	subscribers prometheus.Gauge   // nil without PubSubClients
	messages    prometheus.Counter // nil without PubSubMessages
}

func newClusterMetrics(m *Metrics, cluster string) clusterMetrics {
	if m == nil {
		return clusterMetrics{}
	}
	cm := clusterMetrics{on: true, m: m, cluster: cluster}
	for _, sp := range command.All() {
		cm.requests = append(cm.requests, m.Requests.WithLabelValues(cluster, sp.Name))
	}
	cm.requests = append(cm.requests, m.Requests.WithLabelValues(cluster, "other"))
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
	if m.BackupRequests != nil {
		cm.backupSent = m.BackupRequests.WithLabelValues(cluster, "sent")
		cm.backupWon = m.BackupRequests.WithLabelValues(cluster, "won")
	}
	if m.PubSubClients != nil {
		cm.subscribers = m.PubSubClients.WithLabelValues(cluster)
	}
	if m.PubSubMessages != nil {
		cm.messages = m.PubSubMessages.WithLabelValues(cluster)
	}
	return cm
}

// nodeLatency is the backend latency child of one node, or nil with metrics off.
func (cm *clusterMetrics) nodeLatency(addr string) interface{ Observe(float64) } {
	if !cm.on {
		return nil
	}
	return cm.m.BackendRequestDuration.WithLabelValues(cm.cluster, addr)
}

// request counts one client command; spec nil for an unknown one.
func (cm *clusterMetrics) request(spec *command.Spec) {
	if !cm.on {
		return
	}
	if spec == nil {
		cm.requests[len(cm.requests)-1].Inc()
		return
	}
	cm.requests[spec.ID].Inc()
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
func (cm *clusterMetrics) batchDone(n int, seconds float64) {
	if !cm.on {
		return
	}
	for i := 0; i < n; i++ {
		cm.duration.Observe(seconds)
	}
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
