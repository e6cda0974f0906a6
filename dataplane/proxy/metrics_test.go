package proxy_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/internal/redistest"
)

// newTestMetrics makes the data-plane vectors on a fresh registry, as asterd does.
func newTestMetrics() (*proxy.Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return proxy.NewMetrics(reg), reg
}

// histCount returns the sample count of a histogram series.
func histCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			total += m.GetHistogram().GetSampleCount()
		}
	}
	return total
}

// TestMetricsCountTraffic sends known traffic and reads the same numbers back.
func TestMetricsCountTraffic(t *testing.T) {
	m, reg := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 2, metrics: m})
	const n = 100
	for i := 0; i < n; i++ {
		if err := e.client.Set(ctx, fmt.Sprintf("m:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.client.Get(ctx, fmt.Sprintf("m:%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Count the refusals of these two commands as a difference from what came before, so that
	// a refusal in go-redis's connection setup would not count.
	refusedBefore := testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindRefused))
	e.client.Do(ctx, "NOSUCHCMD")
	e.client.Do(ctx, "MONITOR")

	if got := testutil.ToFloat64(m.Requests.WithLabelValues("test", "set")); got != n {
		t.Errorf("requests{set} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("test", "get")); got != n {
		t.Errorf("requests{get} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("test", "other")); got != 1 {
		t.Errorf("requests{other} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindRefused)) - refusedBefore; got != 2 {
		t.Errorf("errors{refused} = %v, want 2 (unknown + unsupported)", got)
	}
	if got := testutil.ToFloat64(m.ClientConnectionsAccepted.WithLabelValues("test")); got < 1 {
		t.Errorf("client_connections_accepted_total = %v", got)
	}
	if got := testutil.ToFloat64(m.ClientConnections.WithLabelValues("test")); got < 1 {
		t.Errorf("client_connections = %v while connected", got)
	}
	// go-redis's HELLO and other connection setup commands are counted too, so compare with
	// the sum of every command's counter rather than 2n+2.
	var cmds float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "aster_requests_total" {
			for _, mm := range mf.GetMetric() {
				cmds += mm.GetCounter().GetValue()
			}
		}
	}
	if got := histCount(t, reg, "aster_request_duration_seconds", nil); float64(got) != cmds {
		t.Errorf("request_duration count = %d, requests = %v: every command is timed once", got, cmds)
	}
	if got := histCount(t, reg, "aster_backend_request_duration_seconds", nil); got != 2*n {
		t.Errorf("backend_request_duration count = %d, want %d (one per forwarded request)", got, 2*n)
	}

	// A protocol error and a dead node's requests are counted by kind.
	rc := e.raw(t)
	rc.send("*1\r\n$x\r\n")
	rc.line()
	waitFor(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindProtocol)) == 1
	})
	ring := e.install(t, 2, nodesOf(e))
	dead := keyOn(t, ring, 0, "dead:")
	e.servers[0].Kill()
	if err := e.client.Get(ctx, dead).Err(); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("GET on dead node: %v", err)
	}
	if got := testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindBackend)); got != 1 {
		t.Errorf("errors{backend} = %v, want 1", got)
	}
}

func TestMetricsTimeoutKind(t *testing.T) {
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 1, readTimeout: 200 * time.Millisecond, metrics: m})
	e.client.Set(ctx, "k", "v", 0)
	e.servers[0].Pause()
	defer e.servers[0].Resume()
	if err := e.client.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET on a paused node succeeded")
	}
	if got := testutil.ToFloat64(m.RequestErrors.WithLabelValues("test", proxy.ErrKindTimeout)); got != 1 {
		t.Errorf("errors{timeout} = %v, want 1", got)
	}
}

// TestMetricsPubSub: subscribed clients are a gauge, delivered messages a counter.
func TestMetricsPubSub(t *testing.T) {
	m, _ := newTestMetrics()
	e := startEnv(t, envOpts{nodes: 2, metrics: m})
	sub := e.client.Subscribe(ctx, "news", "sport")
	if _, err := sub.Receive(ctx); err != nil { // the first confirmation: subscribed mode
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return testutil.ToFloat64(m.PubSubClients.WithLabelValues("test")) == 1 })
	for i := 0; i < 3; i++ {
		if err := e.client.Publish(ctx, "news", i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(m.PubSubMessages.WithLabelValues("test")); got != 3 {
		t.Errorf("pubsub_messages_total = %v, want 3", got)
	}
	sub.Close()
	waitFor(t, 5*time.Second, func() bool { return testutil.ToFloat64(m.PubSubClients.WithLabelValues("test")) == 0 })
}

// TestCommandCountsExact: the commands of pipelines, however they mix names and fall into
// batches, are each counted once, by name (aster_requests_total) and in all (INFO's
// total_commands_processed, which, as Redis's, counts the commands before the INFO, not the
// INFO itself), with metrics on and off. Sessions tally counts per batch (tally.go), so this
// checks what a tally could lose or count twice: three names and more in one batch, a local
// command (PING) between forwarded ones, unknown commands, batches cut anywhere.
func TestCommandCountsExact(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("metrics=%v", on), func(t *testing.T) {
			var m *proxy.Metrics
			if on {
				m, _ = newTestMetrics()
			}
			e := startEnv(t, envOpts{nodes: 2, metrics: m})
			r := redistest.DialFrames(t, e.addr)
			rng := rand.New(rand.NewPCG(7, 11))
			names := []string{"get", "set", "del", "exists", "incr", "ping", "nosuch"}
			want := map[string]int{}
			var pipe strings.Builder
			const total = 600
			for i := range total {
				name := names[rng.IntN(len(names))]
				if i%50 < 20 { // runs of two names, as most clients send
					name = names[i%2]
				}
				k := fmt.Sprintf("cnt:%d", rng.IntN(20))
				switch name {
				case "set":
					pipe.WriteString(cmdFrame(name, k, "v"))
				case "incr":
					pipe.WriteString(cmdFrame(name, "cnt:n"))
				case "ping":
					pipe.WriteString(cmdFrame(name))
				default:
					pipe.WriteString(cmdFrame(name, k))
				}
				if name == "nosuch" {
					name = "other"
				}
				want[name]++
			}
			b := []byte(pipe.String())
			for len(b) > 0 { // cut anywhere, so batches end mid-command too
				n := min(len(b), 1+rng.IntN(300))
				r.WriteRaw(b[:n])
				b = b[n:]
			}
			for range total {
				r.Read()
			}
			// Counted once the replies are out, before anything else reads the counts.
			for name, n := range want {
				if got := requestsOf(m, name); on && got != float64(n) {
					t.Errorf("after the replies: requests{%s} = %v, want %d", name, got, n)
				}
			}
			for i, wantN := range []int{total, total + 1} {
				info := string(r.Do("INFO", "stats"))
				if n := statValue(t, info, "total_commands_processed"); n != wantN {
					t.Errorf("INFO #%d: total_commands_processed = %d, want %d", i+1, n, wantN)
				}
			}
			if !on {
				return
			}
			want["info"] = 2
			for name, n := range want {
				if got := requestsOf(m, name); got != float64(n) {
					t.Errorf("requests{%s} = %v, want %d", name, got, n)
				}
			}
		})
	}
}

// requestsOf is aster_requests_total{cluster="test",command=name}; 0 without metrics.
func requestsOf(m *proxy.Metrics, name string) float64 {
	if m == nil {
		return 0
	}
	return testutil.ToFloat64(m.Requests.WithLabelValues("test", name))
}
