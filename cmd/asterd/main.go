// Command asterd is the Aster Redis proxy: it loads a TOML configuration, opens one listener per
// cluster and routes every client request to the right Redis node.
//
// --role all (the default) runs the control plane and the data plane in one process; --role
// control runs only the control plane and its gRPC API, whose RouteService feeds data planes
// started with --role data --control-plane HOST:PORT. Snapshots carry every password, so the
// RouteService serves only with an [admin] token (token or token_file); a data plane sends it
// from --token, --token-file FILE or $ASTER_ADMIN_TOKEN, in that order.
//
// Prometheus metrics, /healthz, /readyz (and /debug/pprof/ with [metrics] pprof = true) are
// served on [metrics] listen_addr (default 127.0.0.1:7791). --metrics PORT, the original
// Aster's flag, serves them on 127.0.0.1:PORT instead (loopback: metrics and profiles are not
// for the world; use --metrics-addr 0.0.0.0:PORT to open them up); --metrics-addr HOST:PORT
// sets the whole address. --role data has no configuration file: its endpoint is off unless
// one of these flags is given.
//
// A control plane with [admin] tls_* keys serves its API over TLS; --role data then connects
// with --tls (or any --tls-* flag): --tls-ca verifies the control plane's certificate,
// --tls-cert/--tls-key present a client certificate when [admin] tls_ca_file requires one.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/admin"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/controlplane/remote"
	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/bearer"
	"github.com/aster-proxy/aster/internal/fdlimit"
	"github.com/aster-proxy/aster/internal/tlsconf"
	"github.com/aster-proxy/aster/metrics"
)

// Roles of an asterd process.
const (
	roleAll     = "all"
	roleControl = "control"
	roleData    = "data"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module
// version (or "devel") is reported.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("asterd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath  string
		check       bool
		showVersion bool
		logLevel    string
		logFormat   string
		role        string
		controlAddr string
		token       string
		tokenFile   string
		metricsPort int
		metricsAddr string
		announceIP  string
		cpTLS       clientTLS
	)
	fs.StringVar(&configPath, "config", "", "configuration file (TOML)")
	fs.StringVar(&configPath, "c", "", "shorthand for --config")
	fs.BoolVar(&check, "check", false, "validate the configuration, print its problems, exit 1 on any")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&role, "role", roleAll, "all (control and data plane), control (control plane and admin API only) or data (data plane fed by --control-plane)")
	fs.StringVar(&controlAddr, "control-plane", "", "with --role data: the control plane's admin API address, HOST:PORT")
	fs.StringVar(&token, "token", "", "with --role data: the control plane's admin token (visible in ps: prefer --token-file or $ASTER_ADMIN_TOKEN)")
	fs.StringVar(&tokenFile, "token-file", "", "with --role data: file holding the control plane's admin token (trailing newline trimmed); --token wins over it, it over $ASTER_ADMIN_TOKEN")
	fs.BoolVar(&cpTLS.on, "tls", false, "with --role data: connect to the control plane over TLS (implied by the other --tls-* flags)")
	fs.StringVar(&cpTLS.ca, "tls-ca", "", "with --role data: CA file that verifies the control plane's certificate (default: the system roots)")
	fs.StringVar(&cpTLS.cert, "tls-cert", "", "with --role data: client certificate file, for a control plane with [admin] tls_ca_file")
	fs.StringVar(&cpTLS.key, "tls-key", "", "with --role data: the client certificate's key file")
	fs.StringVar(&cpTLS.serverName, "tls-server-name", "", "with --role data: the name the control plane's certificate must carry (default: the --control-plane host)")
	fs.IntVar(&metricsPort, "metrics", 0, "serve metrics on 127.0.0.1:PORT, overriding [metrics] listen_addr (the original Aster's flag)")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve metrics on HOST:PORT, overriding [metrics] listen_addr; the way to turn metrics on for --role data")
	fs.StringVar(&announceIP, "ip", "", "the IP that CLUSTER SLOTS/SHARDS/NODES announce as the proxy's (the original Aster's flag); default: the listener's, or 127.0.0.1 when it listens on every address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if announceIP != "" && net.ParseIP(announceIP) == nil {
		fmt.Fprintf(stderr, "asterd: --ip %q: not an IP address\n", announceIP)
		return 2
	}
	if showVersion {
		fmt.Fprintf(stdout, "asterd %s %s\n", buildVersion(), runtime.Version())
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "asterd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if msg := checkRole(role, configPath, controlAddr, token != "" || tokenFile != "" || cpTLS.set(), check); msg != "" {
		fmt.Fprintln(stderr, "asterd: "+msg)
		return 2
	}
	metricsFlag, msg := metricsOverride(metricsPort, metricsAddr)
	if msg != "" {
		fmt.Fprintln(stderr, "asterd: "+msg)
		return 2
	}
	level := hclog.LevelFromString(logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "asterd: unknown --log-level %q\n", logLevel)
		return 2
	}
	if logFormat != "text" && logFormat != "json" {
		fmt.Fprintf(stderr, "asterd: unknown --log-format %q (text or json)\n", logFormat)
		return 2
	}

	log := hclog.New(&hclog.LoggerOptions{
		Name:       "asterd",
		Level:      level,
		Output:     stderr,
		JSONFormat: logFormat == "json",
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if role == roleData {
		tc, err := cpTLS.config()
		if err != nil {
			fmt.Fprintf(stderr, "asterd: --tls-*: %v\n", err)
			return 2
		}
		var tokenFlag, fileFlag *string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "token":
				tokenFlag = &token
			case "token-file":
				fileFlag = &tokenFile
			}
		})
		token, err := bearer.Resolve(tokenFlag, fileFlag, os.Getenv)
		if err != nil {
			fmt.Fprintf(stderr, "asterd: %v\n", err)
			return 2
		}
		mc := config.Metrics{ListenAddr: metricsFlag}
		if err := serveData(ctx, controlAddr, token, tc, announceIP, mc, log); err != nil {
			log.Error("asterd stopped", "error", err)
			return 1
		}
		return 0
	}

	cfg, err := config.Load(configPath)
	if check {
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		// Not an error: a config without a token was valid before RouteService needed one, and
		// a --role all asterd without remote data planes serves fine. A warning says what
		// the token guards.
		if msg := noTokenWarning(cfg.Admin); msg != "" {
			fmt.Fprintln(stderr, "asterd: warning: "+msg)
		}
		fmt.Fprintf(stdout, "%s: OK (%d clusters)\n", configPath, len(cfg.Clusters))
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if role == roleControl && cfg.Admin.ListenAddr == "" {
		fmt.Fprintln(stderr, "asterd: --role control needs the admin API ([admin] listen_addr): data planes watch it")
		return 2
	}
	if metricsFlag != "" {
		cfg.Metrics.ListenAddr = metricsFlag
	}
	if err := serve(ctx, configPath, cfg, role == roleControl, announceIP, log); err != nil {
		log.Error("asterd stopped", "error", err)
		return 1
	}
	return 0
}

// noTokenWarning says what an admin API without a token leaves open, or "" when it has one
// or is off: --check prints it, asterd logs it at start.
func noTokenWarning(a config.Admin) string {
	if a.ListenAddr == "" || a.Token != "" {
		return ""
	}
	return fmt.Sprintf("[admin] has no token: any process that reaches %s may eject nodes, reload and change live settings, and RouteService serves no data plane (%s)",
		a.ListenAddr, remote.NoTokenMessage)
}

// clientTLS are the --tls* flags of --role data: how it connects to the control plane.
type clientTLS struct {
	on                        bool
	ca, cert, key, serverName string
}

func (c clientTLS) set() bool {
	return c.on || c.ca != "" || c.cert != "" || c.key != "" || c.serverName != ""
}

// config returns the TLS configuration the flags ask for, nil for plaintext.
func (c clientTLS) config() (*tls.Config, error) {
	if !c.set() {
		return nil, nil
	}
	return tlsconf.ClientWithCert(c.ca, c.serverName, c.cert, c.key)
}

// checkRole returns what is wrong with the combination of --role and the flags that depend on
// it, or "". dataFlags: --token, --token-file or a --tls* flag was given.
func checkRole(role, configPath, controlAddr string, dataFlags, check bool) string {
	switch role {
	case roleAll, roleControl:
		if controlAddr != "" || dataFlags {
			return "--control-plane, --token, --token-file and --tls* are for --role data"
		}
		if configPath == "" {
			return "--config FILE is required"
		}
	case roleData:
		if configPath != "" || check {
			return "--role data takes no --config or --check: it gets its clusters from --control-plane"
		}
		if controlAddr == "" {
			return "--role data needs --control-plane HOST:PORT"
		}
	default:
		return fmt.Sprintf("unknown --role %q (all, control or data)", role)
	}
	return ""
}

// metricsOverride returns the metrics address the flags ask for ("" when neither is set), or
// what is wrong with them.
func metricsOverride(port int, addr string) (string, string) {
	switch {
	case port != 0 && addr != "":
		return "", "--metrics and --metrics-addr are two ways to say the same thing: give one"
	case port != 0:
		if port < 1 || port > 65535 {
			return "", fmt.Sprintf("--metrics %d: not a port (1-65535)", port)
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ""
	case addr != "":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Sprintf("--metrics-addr %q: %v", addr, err)
		}
	}
	return addr, ""
}

// startMetrics serves m on mc.ListenAddr, or returns nil when it is "". ready backs /readyz.
func startMetrics(m *metrics.Metrics, mc config.Metrics, ready func() error, log hclog.Logger) (*metrics.Server, error) {
	if mc.ListenAddr == "" {
		return nil, nil
	}
	srv, err := metrics.Listen(mc.ListenAddr, m.Handler(metrics.HandlerOptions{Pprof: mc.Pprof, Ready: ready, Logger: log}), log)
	if err != nil {
		return nil, err
	}
	log.Info("metrics endpoint listening", "addr", srv.Addr(), "pprof", mc.Pprof)
	return srv, nil
}

// newDataPlane starts the data plane with its metrics on m's registry; hint asks the control
// plane, local or remote, to look at a cluster again.
func newDataPlane(m *metrics.Metrics, fdLimit uint64, announceIP string, hint func(cluster string), log hclog.Logger) *proxy.Server {
	dp := proxy.NewServer(proxy.ServerOptions{
		FDLimit:    fdLimit,
		Logger:     log,
		Version:    buildVersion(),
		AnnounceIP: announceIP,
		Hint:       hint,
		Metrics:    proxy.NewMetrics(m.Registry()),
	})
	m.Registry().MustRegister(dp.CacheCollector())
	return dp
}

// openFileLimit raises the open-file limit towards what cfg's clusters need (nil: unknown
// yet), as Redis does for maxclients, logs what it got in one line (a warning when it is
// less than needed: each cluster then gets a share, see proxy.ServerOptions.FDLimit) and
// returns it; 0 when it is unknown.
func openFileLimit(cfg *config.Config, log hclog.Logger) uint64 {
	var ds []fdlimit.Demand
	if cfg != nil {
		threads := runtime.GOMAXPROCS(0)
		for _, c := range cfg.Clusters {
			ds = append(ds, fdlimit.Demand{MaxClients: c.MaxConnections, Nodes: len(c.Servers),
				NodeConnections: c.NodeConnections, Loops: threads})
		}
	}
	want := fdlimit.Need(ds)
	cur, hard, err := fdlimit.Raise(want)
	switch {
	case err != nil:
		log.Warn("open file limit: could not raise it", "limit", cur, "hard_limit", hard, "needed", want, "error", err)
	case cfg != nil && cur < want:
		log.Warn("open file limit lower than max_connections need: each cluster gets a share of it (raise ulimit -n or LimitNOFILE)",
			"limit", cur, "hard_limit", hard, "needed", want)
	default:
		log.Info("open file limit", "limit", cur, "hard_limit", hard, "needed", want)
	}
	return cur
}

// errNotServing is /readyz's answer while the data plane lacks a table or a listener.
var errNotServing = errors.New("data plane: not every cluster has a routing table and a listener")

// discard is the control plane's sink in --role control: there is no local data plane; the
// snapshots reach data planes through the RouteService's Watch streams.
type discard struct{}

func (discard) Apply(*route.Snapshot) error { return nil }

// serveData runs a data plane fed by the control plane at addr until ctx is done. It serves
// nothing until the first snapshot arrives, and its last tables while the control plane is away.
func serveData(ctx context.Context, addr, token string, tc *tls.Config, announceIP string, mc config.Metrics, log hclog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// There is no file to reload; SIGHUP must not end the process (its default action).
	signal.Ignore(syscall.SIGHUP)
	// The data plane exists before the client that carries its hints up.
	var clientRef atomic.Pointer[remote.Client]
	m := metrics.New(buildVersion())
	// What the clusters need is known only with the first snapshot: take the limit as it is
	// (the Go runtime starts at the hard limit); the data plane shares it among the clusters.
	fdLimit := openFileLimit(nil, log)
	dp := newDataPlane(m, fdLimit, announceIP, func(cluster string) {
		if c := clientRef.Load(); c != nil {
			c.Hint(cluster)
		}
	}, log)
	defer dp.Close()
	ms, err := startMetrics(m, mc, func() error {
		if !dp.Ready() {
			return errNotServing
		}
		return nil
	}, log)
	if err != nil {
		return err
	}
	if ms != nil {
		defer ms.Close()
	}
	m.WatchDataPlane(dp)
	client, err := remote.NewClient(remote.ClientConfig{Addr: addr, Token: token, TLS: tc, Sink: dp, Logger: log, Observer: m})
	if err != nil {
		return err
	}
	clientRef.Store(client)
	log.Info("asterd started", "version", buildVersion(), "role", roleData, "control_plane", addr,
		"tls", tc != nil, "client_cert", tc != nil && len(tc.Certificates) > 0)
	err = client.Run(ctx)
	log.Info("shutting down: draining client connections")
	dp.Shutdown()
	return err
}

// serve wires configuration → control plane → data plane and runs until ctx is done; with
// controlOnly there is no data plane and snapshots go only to remote data planes. SIGHUP
// reloads the configuration file.
func serve(ctx context.Context, configPath string, cfg *config.Config, controlOnly bool, announceIP string, log hclog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// thread: Go schedules goroutines over GOMAXPROCS OS threads for the whole process, so the
	// largest thread count of any cluster bounds the CPUs asterd uses.
	threads := 1
	for _, c := range cfg.Clusters {
		threads = max(threads, c.Thread)
	}
	runtime.GOMAXPROCS(threads)

	// The data plane exists before the control plane that it hints; hints before then are
	// dropped (the first fetch is coming anyway).
	var cpRef atomic.Pointer[controlplane.ControlPlane]
	var sink controlplane.Sink = discard{}
	m := metrics.New(buildVersion())
	var dp *proxy.Server
	if !controlOnly {
		fdLimit := openFileLimit(cfg, log)
		dp = newDataPlane(m, fdLimit, announceIP, func(cluster string) {
			if cp := cpRef.Load(); cp != nil {
				cp.Hint(cluster)
			}
		}, log)
		defer dp.Close()
		sink = dp
	}
	cp, err := controlplane.New(cfg, sink, log, controlplane.WithMetrics(m))
	if err != nil {
		return err
	}
	cpRef.Store(cp)
	m.WatchControlPlane(cp)
	// Ready: every configured cluster has a table (a Redis Cluster gets its first from a
	// fetch) and a serving node, and, in-process, the data plane has a listener and a table
	// for each.
	ready := func() error {
		if err := metrics.ClustersReady(cp); err != nil {
			return err
		}
		if dp != nil && !dp.Ready() {
			return errNotServing
		}
		return nil
	}
	ms, err := startMetrics(m, cfg.Metrics, ready, log)
	if err != nil {
		return err
	}
	if ms != nil {
		defer ms.Close()
	}
	cpDone := make(chan struct{})
	go func() {
		cp.Run(ctx)
		close(cpDone)
	}()
	defer func() { cancel(); <-cpDone }()

	if addr := cfg.Admin.ListenAddr; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("admin API: listen on %s: %w", addr, err)
		}
		opts := admin.ServerOptions(cfg.Admin.Token)
		if a := cfg.Admin; a.TLSCertFile != "" {
			opt, err := admin.TLSOption(a.TLSCertFile, a.TLSKeyFile, a.TLSCAFile)
			if err != nil {
				ln.Close()
				return err
			}
			opts = append(opts, opt)
		}
		gs := grpc.NewServer(opts...)
		acfg := admin.Config{
			ControlPlane: cp,
			Reload:       func() (controlplane.ReloadResult, error) { return reload(cp, configPath, m) },
			Version:      buildVersion(),
			Logger:       log,
		}
		if dp != nil {
			acfg.DataPlane = dp // a nil *proxy.Server would be a non-nil interface
		}
		admin.New(acfg).Register(gs)
		remote.NewServer(remote.ServerConfig{Source: cp, Token: cfg.Admin.Token, Logger: log}).Register(gs)
		go func() {
			if err := gs.Serve(ln); err != nil {
				log.Error("admin API stopped", "error", err)
			}
		}()
		defer gs.Stop()
		// Whether a token or certificates are required, never what they are.
		log.Info("admin API listening", "addr", ln.Addr().String(), "token_required", cfg.Admin.Token != "",
			"tls", cfg.Admin.TLSCertFile != "", "client_cert_required", cfg.Admin.TLSCAFile != "")
		if cfg.Admin.Token == "" {
			log.Warn("admin API has no token: any process that reaches it may eject nodes, reload and change live settings", "addr", ln.Addr().String())
			log.Warn("RouteService serves no data plane: " + remote.NoTokenMessage)
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	role := roleAll
	if controlOnly {
		role = roleControl
	}
	log.Info("asterd started", "version", buildVersion(), "role", role, "clusters", len(cfg.Clusters), "gomaxprocs", threads)
	for {
		select {
		case <-ctx.Done():
			// Stop accepting, let every session finish what it has read (bounded), then close.
			log.Info("shutting down: draining client connections")
			if dp != nil {
				dp.Shutdown()
			}
			return nil
		case <-hup:
			if _, err := reload(cp, configPath, m); err != nil {
				log.Error("reload refused, configuration unchanged", "error", err)
			}
		}
	}
}

// reload re-reads the configuration file and applies it; a file with any problem is refused
// whole and nothing changes. Either way it is counted in m. The [metrics] and [admin] tables
// are read at start only: a reload changes clusters.
func reload(cp *controlplane.ControlPlane, path string, m *metrics.Metrics) (controlplane.ReloadResult, error) {
	cfg, err := config.Load(path)
	if err != nil {
		err = fmt.Errorf("%w: %w", controlplane.ErrInvalid, err)
		m.ConfigReloaded(err)
		return controlplane.ReloadResult{}, err
	}
	res, err := cp.Reload(cfg)
	m.ConfigReloaded(err)
	return res, err
}
