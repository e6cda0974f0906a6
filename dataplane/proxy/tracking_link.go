package proxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/cache"
)

// A client-tracking link (tracking.go): one connection of the proxy's own to a master, dialled
// as the cluster's backend connections but in RESP3, with CLIENT TRACKING ON BCAST, so that the
// node pushes an invalidation for every key written on it, by anyone. The link hands them to
// the cluster's trackHub; when it is lost the hub invalidates everything its clients track,
// since writes made meanwhile are not told. It pings every trackPing and gives up on a node
// that says nothing for three; it redials with backoff until stopped.

// trackPing is how often a link pings; a variable for tests.
var trackPing = time.Second

type trackLink struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
	up     chan struct{} // closed once tracking was confirmed the first time
	start  time.Time
}

// startTrackLink starts the link of node addr (dialled with opts) for h.
func startTrackLink(h *trackHub, addr string, opts backend.Options) *trackLink {
	opts.RESP3, opts.Poller, opts.Latency, opts.OnFailure = true, nil, nil, nil
	ctx, cancel := context.WithCancel(context.Background())
	l := &trackLink{addr: addr, cancel: cancel, done: make(chan struct{}), up: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(l.done)
		backoff, lastErr := time.Duration(0), ""
		for ctx.Err() == nil {
			wasUp, err := l.session(ctx, h, opts)
			if wasUp {
				backoff = 0
				h.linkLost(addr)
				if ctx.Err() == nil {
					h.log.Warn("client tracking: link lost; tracking clients told to flush", "node", addr, "error", err)
				}
			} else if err != nil && ctx.Err() == nil && err.Error() != lastErr {
				h.log.Warn("client tracking: link not established", "node", addr, "error", err)
			}
			if err != nil {
				lastErr = err.Error()
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
		}
	}()
	return l
}

func (l *trackLink) stop() {
	l.cancel()
	<-l.done
}

// session runs one connection of the link until it fails or ctx is done; wasUp: tracking was
// confirmed on it.
func (l *trackLink) session(ctx context.Context, h *trackHub, opts backend.Options) (wasUp bool, err error) {
	hold, err := h.c.holdFD() // counted in the cluster's share as any connection of its own
	if err != nil {
		return false, err
	}
	defer hold.release()
	nc, err := backend.DialContext(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("tracking link to %s of cluster %s: %w", l.addr, h.c.name, err)
	}
	defer nc.Close()
	return cache.RunTracking(ctx, nc, l.addr, trackPing, hubSink{h, l})
}

// hubSink is what a CLIENT TRACKING link reports to: the cluster's trackHub.
type hubSink struct {
	h *trackHub
	l *trackLink
}

func (s hubSink) Up(net.Conn) {
	s.h.linkUp(s.l)
	s.h.log.Info("client tracking: link up", "node", s.l.addr)
}

func (s hubSink) Flush()                   { s.h.flushAll() }
func (s hubSink) Invalidate(keys [][]byte) { s.h.invalidate(keys) }
