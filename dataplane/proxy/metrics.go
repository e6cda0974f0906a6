package proxy

import (
	"sync"
	"sync/atomic"

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
	BackendErrors             *prometheus.CounterVec   // {cluster, node, kind}; may be nil
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
func (cm *clusterMetrics) nodeLatency(addr string) interface{ Observe(float64) } {
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
	if !cm.on || cm.m.BackendErrors == nil {
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
	if cm.m.BackendErrors != nil {
		cm.m.BackendErrors.DeletePartialMatch(node)
	}
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
		if v != nil {
			v.DeletePartialMatch(of)
		}
	}
	for _, v := range []*prometheus.GaugeVec{m.ClientConnections, m.PubSubClients} {
		if v != nil {
			v.DeletePartialMatch(of)
		}
	}
	for _, v := range []*prometheus.HistogramVec{m.RequestDuration, m.BackendRequestDuration} {
		v.DeletePartialMatch(of)
	}
}

// request counts one client command; spec nil for an unknown one.
func (cm *clusterMetrics) request(spec *command.Spec) {
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
	c.Inc()
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
