package proxy

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/cache"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// A client-tracking link (tracking.go): one connection of the proxy's own to a master, dialled
// as the cluster's backend connections but in RESP3, with CLIENT TRACKING ON BCAST, so that the
// node pushes an invalidation for every key written on it, by anyone. The link hands them to
// the cluster's trackHub; when it is lost the hub invalidates everything its clients track,
// since writes made meanwhile are not told. It pings every trackPing and gives up on a node
// that says nothing for three; it redials with backoff until stopped.

var (
	trackOnFrame   = resp.AppendCommand(nil, []byte("CLIENT"), []byte("TRACKING"), []byte("ON"), []byte("BCAST"))
	trackPingFrame = resp.AppendCommand(nil, []byte("PING"))
)

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
	wake := func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) }
	stopWake := context.AfterFunc(ctx, wake)
	defer stopWake()
	_ = nc.SetDeadline(time.Now().Add(3 * trackPing))
	if _, err := nc.Write(trackOnFrame); err != nil {
		return false, fmt.Errorf("tracking link to %s: %w", l.addr, err)
	}
	rr := resp.NewReplyReader(nc, 4<<10)
	for {
		f, err := rr.Next()
		if err != nil {
			return false, fmt.Errorf("tracking link to %s: %w", l.addr, err)
		}
		if f[0] == '>' {
			continue
		}
		if resp.IsError(f) {
			return false, fmt.Errorf("tracking link to %s: node refused CLIENT TRACKING: %s", l.addr, bytes.TrimSpace(f[1:]))
		}
		break
	}
	h.linkUp(l)
	h.log.Info("client tracking: link up", "node", l.addr)
	pingDone := make(chan struct{})
	defer close(pingDone)
	go func() {
		tk := time.NewTicker(trackPing)
		defer tk.Stop()
		for {
			select {
			case <-pingDone:
				return
			case <-tk.C:
				_ = nc.SetWriteDeadline(time.Now().Add(trackPing))
				if _, err := nc.Write(trackPingFrame); err != nil {
					wake()
					return
				}
			}
		}
	}()
	var pushes cache.PushReader
	for {
		_ = nc.SetReadDeadline(time.Now().Add(3 * trackPing))
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		f, err := rr.Next()
		if err != nil {
			return true, fmt.Errorf("tracking link to %s: %w", l.addr, err)
		}
		keys, flush, ok, err := pushes.Invalidation(f)
		switch {
		case err != nil:
			return true, fmt.Errorf("tracking link to %s: %w", l.addr, err)
		case !ok:
			continue // PONG, or a push of another kind
		case flush:
			h.flushAll() // FLUSHALL / FLUSHDB on the node
			continue
		}
		h.invalidate(keys)
	}
}
