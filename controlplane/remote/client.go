package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/aster-proxy/aster/dataplane/route"
	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// Sink receives the snapshots a Client gets: the data plane (a *proxy.Server). Apply is called
// from Run's goroutine, one call at a time, with increasing versions.
type Sink interface {
	Apply(s *route.Snapshot) error
}

// Client defaults.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	DefaultHintQueue  = 64
	hintTimeout       = 2 * time.Second
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Addr  string // the control plane's admin API, host:port
	Token string // sent as "authorization: Bearer <token>" when set
	// TLS, when set, makes the connection TLS (the control plane's [admin] tls_* keys);
	// nil is plaintext.
	TLS *tls.Config
	// ID names this data plane in the control plane's logs; default "<hostname>-<pid>".
	ID   string
	Sink Sink
	// MinBackoff and MaxBackoff bound the wait before reconnecting after the stream fails; it
	// doubles from MinBackoff after every failure. Defaults DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	HintQueue              int          // hints waiting to be sent; default DefaultHintQueue
	Logger                 hclog.Logger // default hclog.NewNullLogger()
	// Observer, when set, is told of the link's state, for metrics.
	Observer Observer
}

// Observer follows a Client's link to its control plane; its methods are called from Run's
// goroutine and must not block.
type Observer interface {
	// ControlPlaneConnected: true once a stream delivered a snapshot, false when it ends.
	ControlPlaneConnected(up bool)
	// SnapshotReceived: a snapshot arrived at t (applied or not).
	SnapshotReceived(t time.Time)
}

// Client keeps a data plane fed from a remote control plane: Run watches the RouteService and
// applies every snapshot to the Sink, reconnecting with backoff; while the control plane is
// away the Sink is simply not called, so the data plane serves its last tables. Hint may be
// called from any goroutine.
type Client struct {
	cfg   ClientConfig
	log   hclog.Logger
	conn  *grpc.ClientConn
	rs    asterv1.RouteServiceClient
	hints chan string

	// applied is the highest version handed to the Sink; Run's goroutine only.
	applied uint64
}

// NewClient returns a client for cfg; it connects when Run runs.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("remote client: control plane address is required")
	}
	if cfg.Sink == nil {
		return nil, errors.New("remote client: sink is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.HintQueue <= 0 {
		cfg.HintQueue = DefaultHintQueue
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = host + "-" + strconv.Itoa(os.Getpid())
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds(cfg.Token)))
	}
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("remote client: control plane %s: %w", cfg.Addr, err)
	}
	return &Client{
		cfg: cfg, log: cfg.Logger.Named("remote").With("control_plane", cfg.Addr),
		conn: conn, rs: asterv1.NewRouteServiceClient(conn), hints: make(chan string, cfg.HintQueue),
	}, nil
}

// bearerCreds sends the admin token with every RPC. Without [admin] TLS the admin API is plain
// gRPC on a trusted network (loopback by default), so the token is allowed without
// transport security.
type bearerCreds string

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return false }

// Hint queues a hint that cluster's topology looks stale (a MOVED was seen), to be sent by
// Run. It never blocks: when the queue is full the hint is dropped, as hints coalesce anyway.
func (c *Client) Hint(cluster string) {
	select {
	case c.hints <- cluster:
	default:
	}
}

// Run watches the control plane until ctx is done, then closes the connection and returns
// nil. A failed or ended stream is retried after a backoff that doubles from MinBackoff to
// MaxBackoff and starts again once a snapshot arrives. Run must be called once.
func (c *Client) Run(ctx context.Context) error {
	defer c.conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.sendHints(ctx)
	}()
	defer wg.Wait()

	backoff := c.cfg.MinBackoff
	for {
		got, err := c.watch(ctx)
		if o := c.cfg.Observer; o != nil && got {
			o.ControlPlaneConnected(false)
		}
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = c.cfg.MinBackoff
		}
		switch status.Code(err) {
		case codes.Unauthenticated:
			c.log.Error("control plane refused the token; serving the last tables", "error", err, "retry_in", backoff)
		case codes.FailedPrecondition:
			// A control plane without [admin] token serves no snapshot (they carry passwords).
			c.log.Error("control plane refuses to serve routes; serving the last tables", "error", err, "retry_in", backoff)
		default:
			c.log.Warn("route stream lost; serving the last tables", "error", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// watch runs one Watch stream until it fails, reporting whether any snapshot arrived.
//
// Versions are rebased per stream: every version of stream n is offset by the highest version
// applied before it opened (zero for the first stream, whose versions pass unchanged). A
// restarted control plane counts from 1 again, and without the offset the Sink would skip its
// snapshots and tables as old; reconnecting to the same control plane costs one re-apply of
// equal tables, which drops no client.
func (c *Client) watch(ctx context.Context) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rs.Watch(ctx, &asterv1.WatchRequest{DataPlaneId: c.cfg.ID})
	if err != nil {
		return false, fmt.Errorf("open route stream: %w", err)
	}
	offset := c.applied
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, fmt.Errorf("receive snapshot: %w", err)
		}
		if !got {
			c.log.Info("route stream open", "first_version", resp.GetSnapshot().GetVersion(), "version_offset", offset)
		}
		if o := c.cfg.Observer; o != nil {
			o.SnapshotReceived(time.Now())
			if !got {
				o.ControlPlaneConnected(true)
			}
		}
		got = true
		snap, err := FromProto(resp.GetSnapshot())
		if err != nil {
			// A later snapshot may be good; this one cannot be served.
			c.log.Error("snapshot refused", "version", resp.GetSnapshot().GetVersion(), "error", err)
			continue
		}
		rebase(snap, offset)
		if snap.Version <= c.applied {
			continue
		}
		c.applied = snap.Version
		if err := c.cfg.Sink.Apply(snap); err != nil {
			c.log.Error("snapshot applied with errors", "version", snap.Version, "error", err)
			continue
		}
		c.log.Debug("snapshot applied", "version", snap.Version, "clusters", len(snap.Clusters))
	}
}

// rebase adds offset to the snapshot's version and its tables'. The tables are fresh from
// FromProto, so changing them in place is safe.
func rebase(s *route.Snapshot, offset uint64) {
	if offset == 0 {
		return
	}
	s.Version += offset
	for i := range s.Clusters {
		if t := s.Clusters[i].Table; t != nil {
			t.Version += offset
		}
	}
}

// sendHints sends queued hints until ctx is done; failures are logged and dropped (the
// control plane's own periodic refresh still runs).
func (c *Client) sendHints(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case cluster := <-c.hints:
			hctx, cancel := context.WithTimeout(ctx, hintTimeout)
			_, err := c.rs.SendHint(hctx, &asterv1.SendHintRequest{Cluster: cluster, Kind: asterv1.HintKind_HINT_KIND_MOVED})
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Debug("hint not sent", "cluster", cluster, "error", err)
			}
		}
	}
}
