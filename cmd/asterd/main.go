// Command asterd is the Aster Redis proxy: it loads a TOML configuration, opens one listener per
// cluster and routes every client request to the right Redis node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/proxy"
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
	)
	fs.StringVar(&configPath, "config", "", "configuration file (TOML)")
	fs.StringVar(&configPath, "c", "", "shorthand for --config")
	fs.BoolVar(&check, "check", false, "validate the configuration, print its problems, exit 1 on any")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
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
	if configPath == "" {
		fmt.Fprintln(stderr, "asterd: --config FILE is required")
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

	cfg, err := config.Load(configPath)
	if check {
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK (%d clusters)\n", configPath, len(cfg.Clusters))
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}

	log := hclog.New(&hclog.LoggerOptions{
		Name:       "asterd",
		Level:      level,
		Output:     stderr,
		JSONFormat: logFormat == "json",
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("asterd stopped", "error", err)
		return 1
	}
	return 0
}

// serve wires configuration → control plane → data plane and runs until ctx is done.
func serve(ctx context.Context, cfg *config.Config, log hclog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// thread: Go schedules goroutines over GOMAXPROCS OS threads for the whole process, so the
	// largest thread count of any cluster bounds the CPUs asterd uses.
	threads := 1
	for _, c := range cfg.Clusters {
		threads = max(threads, c.Thread)
	}
	runtime.GOMAXPROCS(threads)

	clusters := make([]*proxy.Cluster, 0, len(cfg.Clusters))
	sinks := make(map[string]controlplane.Sink, len(cfg.Clusters))
	defer func() {
		for _, c := range clusters {
			c.Close()
		}
	}()
	// The data plane exists before the control plane that it hints; hints before then are
	// dropped (the first fetch is coming anyway).
	var cpRef atomic.Pointer[controlplane.ControlPlane]
	for _, cc := range cfg.Clusters {
		name := cc.Name
		c := proxy.NewCluster(proxy.Options{
			Name:            cc.Name,
			ListenAddr:      cc.ListenAddr,
			ListenProto:     cc.ListenProto,
			ReadTimeout:     cc.ReadTimeout,
			WriteTimeout:    cc.WriteTimeout,
			DialTimeout:     cc.DialTimeout,
			NodeConnections: cc.NodeConnections,
			Logger:          log,
			Version:         buildVersion(),
			ReadFromSlave:   cc.ReadFromSlave && cc.CacheType == config.CacheRedisCluster,
			Hint: func() {
				if cp := cpRef.Load(); cp != nil {
					cp.Hint(name)
				}
			},
		})
		clusters = append(clusters, c)
		sinks[cc.Name] = c
	}
	cp, err := controlplane.New(cfg, sinks, log)
	if err != nil {
		return err
	}
	cpRef.Store(cp)
	for _, c := range clusters {
		if err := c.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, len(clusters))
	for _, c := range clusters {
		go func() { errc <- c.Serve() }()
	}
	cpDone := make(chan struct{})
	go func() {
		cp.Run(ctx)
		close(cpDone)
	}()
	log.Info("asterd started", "version", buildVersion(), "clusters", len(clusters), "gomaxprocs", threads)
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
	}
	cancel()
	for _, c := range clusters {
		c.Close()
	}
	<-cpDone
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
