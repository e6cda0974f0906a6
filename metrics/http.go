package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aster-proxy/aster/controlplane/config"
)

// HandlerOptions configures Handler.
type HandlerOptions struct {
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Ready reports why the process cannot serve yet, or nil when it can (/readyz). Nil means
	// always ready. Called on each request, from any goroutine.
	Ready func() error
	// Logger receives errors met while serving /metrics; default hclog.NewNullLogger().
	Logger hclog.Logger
}

// Handler serves /metrics (Prometheus text, or OpenMetrics and protobuf when the scraper asks
// for them), /healthz (200 while the process runs), /readyz (200 when Ready says so, else 503
// with the reason) and, with Pprof, /debug/pprof/. It uses a mux of its own, never
// http.DefaultServeMux, so that nothing else registers handlers on it behind our back.
func (m *Metrics) Handler(opts HandlerOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("metrics")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          hclogPrinter{log},
		EnableOpenMetrics: true,
		// A scrape is cheap; more than a few at once means something loops on us.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// ClustersReady returns nil when every cluster src holds can serve, else an error naming each
// one that cannot, and why: it has no routing table yet (a Redis Cluster before its first slot
// map), or no node that serves (controlplane.ClusterStatus.Serving: every node DOWN or
// EJECTED; in Redis Cluster mode, every slot-serving master DOWN). It backs /readyz, which
// answers 503 with that error.
func ClustersReady(src ClusterSource) error {
	var why []string
	for _, c := range src.Clusters() {
		switch {
		case c.TableVersion == 0:
			why = append(why, fmt.Sprintf("cluster %q has no routing table yet", c.Name))
		case !c.Serving():
			what := "every node is down or ejected"
			if c.CacheType != config.CacheRedis {
				what = "every master is down"
			}
			why = append(why, fmt.Sprintf("cluster %q has no serving node: %s", c.Name, what))
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}

// hclogPrinter adapts a Logger to promhttp.Logger.
type hclogPrinter struct{ log hclog.Logger }

func (p hclogPrinter) Println(v ...any) { p.log.Error("serving /metrics", "error", fmt.Sprint(v...)) }

// Server is a running metrics endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen starts serving h on addr (host:port; port 0 picks a free one) in a goroutine of its
// own, until Close.
func Listen(addr string, h http.Handler, logger hclog.Logger) (*Server, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: listen on %s: %w", addr, err)
	}
	s := &Server{
		ln:   ln,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler: h,
			// Bounded waits: a slow or stuck client must not hold a goroutine forever. The
			// write timeout leaves room for a 30 s CPU profile.
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          logger.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Named("metrics").Error("metrics endpoint stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the endpoint: in-flight requests get a few seconds to finish, then their
// connections are closed. It returns when the serving goroutine has ended.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("metrics endpoint %s: close: %w", s.Addr(), err)
	}
	return nil
}
