package cache

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// Dialer opens a connection to the node that speaks RESP3 (HELLO 3 done, and AUTH, TLS as the
// cluster's backend connections), e.g. backend.DialContext with Options.RESP3.
type Dialer func(ctx context.Context) (net.Conn, error)

// LinkTimings are how a tracking link checks that it is alive and how it redials.
type LinkTimings struct {
	// Ping is how often the link sends PING; a link that reads nothing (a reply or an
	// invalidation) for 3 Pings is dropped: a node cut off without a FIN must not keep the
	// cache serving what it can no longer invalidate.
	Ping time.Duration
	// MinBackoff and MaxBackoff bound the wait before a redial, doubled after each failure.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultLinkTimings are what Track uses for zero fields.
var DefaultLinkTimings = LinkTimings{Ping: time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second}

var (
	trackingFrame = resp.AppendCommand(nil, []byte("CLIENT"), []byte("TRACKING"), []byte("ON"), []byte("BCAST"))
	pingFrame     = resp.AppendCommand(nil, []byte("PING"))
)

// Link is a running tracking link of one node (Track).
type Link struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop ends the link and waits for it; the node is left Draining (flushed) unless it is Gone.
func (l *Link) Stop() {
	l.cancel()
	<-l.done
}

// Track starts n's tracking link: a connection of its own (dial) on which it sends CLIENT
// TRACKING ON BCAST, so that the node tells it of every key written on it, and drops those
// keys from the cache as the invalidations arrive. n is Up while the link is; when the link
// is lost n is flushed and bypassed (Draining) and the link redials with backoff. Each state
// change is logged once.
func Track(n *Node, dial Dialer, t LinkTimings, log hclog.Logger) *Link {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if t.Ping <= 0 {
		t.Ping = DefaultLinkTimings.Ping
	}
	if t.MinBackoff <= 0 {
		t.MinBackoff = DefaultLinkTimings.MinBackoff
	}
	if t.MaxBackoff < t.MinBackoff {
		t.MaxBackoff = max(DefaultLinkTimings.MaxBackoff, t.MinBackoff)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Link{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		run(ctx, n, dial, t, log.With("node", n.addr))
	}()
	return l
}

func run(ctx context.Context, n *Node, dial Dialer, t LinkTimings, log hclog.Logger) {
	backoff := time.Duration(0)
	var lastErr string
	for ctx.Err() == nil {
		wasUp, err := session(ctx, n, dial, t, log)
		if wasUp {
			backoff = 0 // it was up: redial at once, then back off
			if ctx.Err() != nil {
				log.Info("client cache: tracking link stopped; node's entries flushed")
				break
			}
			log.Warn("client cache: tracking link lost; node's entries flushed, cache bypassed until it is back", "error", err)
		} else if ctx.Err() == nil && err != nil && err.Error() != lastErr {
			log.Warn("client cache: tracking link not established; node bypassed", "error", err)
		}
		if err != nil {
			lastErr = err.Error()
		}
		if backoff = min(max(2*backoff, t.MinBackoff), t.MaxBackoff); ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
		}
	}
	if n.State() != Gone {
		n.SetDraining()
	}
}

// session runs one connection of the link until it fails or ctx is done; wasUp: it had
// confirmed tracking, and has left the node Draining (flushed).
func session(ctx context.Context, n *Node, dial Dialer, t LinkTimings, log hclog.Logger) (wasUp bool, err error) {
	nc, err := dial(ctx)
	if err != nil {
		return false, err
	}
	// The socket is closed only once the node has left Up (see Node.fd): SetDraining runs
	// before the deferred Close.
	defer nc.Close()
	wasUp, err = RunTracking(ctx, nc, n.addr, t.Ping, nodeSink{n, log})
	if wasUp {
		n.SetDraining()
	}
	return wasUp, err
}

// nodeSink is what a proxy-cache link reports to: its Node.
type nodeSink struct {
	n   *Node
	log hclog.Logger
}

func (s nodeSink) Up(nc net.Conn) {
	s.n.fd.Store(int64(linkFD(nc)))
	s.n.SetUp()
	s.log.Info("client cache: tracking link up; node's replies are cached")
}

func (s nodeSink) Flush() { s.n.Flush() }

func (s nodeSink) Invalidate(keys [][]byte) {
	for _, k := range keys {
		s.n.c.Invalidate(k)
	}
}

// A TrackSink is told what a tracking link (RunTracking) learns: tracking is on, the node was
// flushed, keys were written. Its methods run on the link's reader goroutine, one at a time;
// the keys are valid only during the call.
type TrackSink interface {
	Up(nc net.Conn)
	Flush()
	Invalidate(keys [][]byte)
}

// RunTracking runs a tracking link on nc, a RESP3 connection to addr with its handshake done:
// CLIENT TRACKING ON BCAST, then every invalidation the node pushes, to sink, pinging every
// ping and giving up when the node says nothing for three, until nc fails or ctx is done.
// wasUp: tracking was confirmed (sink.Up ran). The caller closes nc, after its own bookkeeping
// of a link that was up. Both link kinds use it: the proxy cache's (this package) and CLIENT
// TRACKING's (proxy).
func RunTracking(ctx context.Context, nc net.Conn, addr string, ping time.Duration, sink TrackSink) (wasUp bool, err error) {
	// Whatever ends the link wakes the reader, which returns.
	wake := func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) }
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	_ = nc.SetDeadline(time.Now().Add(3 * ping))
	if ctx.Err() != nil { // wake may have come before the deadline above replaced its own
		return false, ctx.Err()
	}
	if _, err := nc.Write(trackingFrame); err != nil {
		return false, fmt.Errorf("tracking link to %s: %w", addr, err)
	}
	rr := resp.NewReplyReader(nc, 4<<10)
	for {
		f, err := rr.Next()
		if err != nil {
			return false, fmt.Errorf("tracking link to %s: %w", addr, err)
		}
		if f[0] == '>' {
			continue // pushes come only once tracking is on
		}
		if resp.IsError(f) {
			return false, fmt.Errorf("tracking link to %s: node refused CLIENT TRACKING: %s", addr, bytes.TrimSpace(f[1:]))
		}
		break
	}
	sink.Up(nc)
	pingDone := make(chan struct{})
	defer close(pingDone)
	go func() {
		tk := time.NewTicker(ping)
		defer tk.Stop()
		for {
			select {
			case <-pingDone:
				return
			case <-tk.C:
				_ = nc.SetWriteDeadline(time.Now().Add(ping))
				if _, err := nc.Write(pingFrame); err != nil {
					wake()
					return
				}
			}
		}
	}()
	var pushes PushReader
	for {
		_ = nc.SetReadDeadline(time.Now().Add(3 * ping))
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		f, err := rr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			return true, fmt.Errorf("tracking link to %s: %w", addr, err)
		}
		keys, flush, ok, err := pushes.Invalidation(f)
		switch {
		case err != nil:
			return true, fmt.Errorf("tracking link to %s: %w", addr, err)
		case !ok:
			continue // PONG, or a push of another kind
		case flush:
			sink.Flush() // FLUSHALL / FLUSHDB on the node
			continue
		}
		sink.Invalidate(keys)
	}
}

// PushReader reads what the pushes of a tracking link (RESP3 CLIENT TRACKING) invalidate,
// reusing its slices from one push to the next. For one link's reader.
type PushReader struct{ elems, keys [][]byte }

// Invalidation returns what frame f (a whole reply read from the link) invalidates: every key
// (flush: FLUSHALL or FLUSHDB on the node), or keys, the key names (valid until the next
// call). ok is false for anything but an invalidation push (a PONG, a push of another kind);
// err for an invalidation whose key list is malformed. f's first byte is changed.
func (p *PushReader) Invalidation(f []byte) (keys [][]byte, flush, ok bool, err error) {
	if len(f) == 0 || f[0] != '>' {
		return nil, false, false, nil
	}
	f[0] = '*' // a push is read as the array it has the shape of
	p.elems, err = resp.ArrayElems(f, p.elems[:0])
	if err != nil || len(p.elems) != 2 || !bytes.EqualFold(resp.BulkPayload(p.elems[0]), []byte("invalidate")) {
		return nil, false, false, nil
	}
	if resp.IsNull(p.elems[1]) {
		return nil, true, true, nil
	}
	p.keys, err = resp.ArrayElems(p.elems[1], p.keys[:0])
	if err != nil {
		return nil, false, false, fmt.Errorf("bad invalidation: %w", err)
	}
	for i, k := range p.keys {
		p.keys[i] = resp.BulkPayload(k)
	}
	return p.keys, false, true, nil
}
