package proxy

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// Pub/sub: what the nodes send on the links: messages fanned out to the client (channels,
// patterns, shard channels), confirmations counted, anything else failing the link.

var (
	wordMessage      = []byte("message")
	wordPMessage     = []byte("pmessage")
	wordSMessage     = []byte("smessage")
	errUnexpectedSub = errors.New("unexpected frame on a subscription connection")
)

// readLink reads one link's frames until it fails or is closed: messages go to the client,
// confirmations are counted, anything else fails the link (its subscriptions are placed again).
func (p *pubsub) readLink(l *psLink) {
	defer p.wg.Done()
	err := p.readFrames(l)
	l.close()
	close(l.done) // before the reconcile it asks for, which must see the link dead
	if l.closing.Load() {
		return
	}
	p.log.Warn("subscription connection lost; resubscribing", "node", l.addr, "error", err)
	p.s.c.hint()
	p.markDirty()
}

func (p *pubsub) readFrames(l *psLink) error {
	rr := resp.NewReplyReader(l.nc, readBufSize)
	var elems [][]byte
	for {
		rr.Shrink(maxKeptOut, readBufSize)
		f, err := rr.Next()
		if err != nil {
			return err
		}
		if elems, err = p.onFrame(l, f, elems[:0]); err != nil {
			return err
		}
	}
}

// onFrame handles one frame from a node.
func (p *pubsub) onFrame(l *psLink, f []byte, elems [][]byte) ([][]byte, error) {
	if resp.IsError(f) {
		return elems, fmt.Errorf("node refused: %s", bytes.TrimSpace(f[1:]))
	}
	if bytes.Equal(f, pongReply) { // a barrier PING on a link the node no longer counts as subscribed
		l.acks.Add(1)
		return elems, nil
	}
	elems, err := resp.ArrayElems(f, elems)
	if err != nil || len(elems) == 0 {
		return elems, errUnexpectedSub
	}
	word := resp.BulkPayload(elems[0])
	switch {
	case bytes.Equal(word, wordMessage) && len(elems) == 3:
		p.deliver(kindChannel, resp.BulkPayload(elems[1]), elems)
	case bytes.Equal(word, wordPMessage) && len(elems) == 4:
		p.deliver(kindPattern, resp.BulkPayload(elems[1]), elems)
	case bytes.Equal(word, wordSMessage) && len(elems) == 3:
		p.deliver(kindShard, resp.BulkPayload(elems[1]), elems)
	default:
		switch string(word) {
		case "subscribe", "psubscribe", "ssubscribe", "pong":
			l.acks.Add(1)
			select {
			case l.ack <- struct{}{}:
			default:
			}
		case "unsubscribe", "punsubscribe":
		case "sunsubscribe":
			// Unasked, it means the node lost the channel's slot (failover, resharding).
			if l.sunsubPending.Add(-1) < 0 {
				l.sunsubPending.Add(1)
				return elems, fmt.Errorf("node dropped shard channel %q: its slot moved", resp.BulkPayload(elems[1]))
			}
		default:
			return elems, errUnexpectedSub
		}
	}
	return elems, nil
}

// deliver forwards a message to the client if it is still subscribed to what the message
// came for (an UNSUBSCRIBE is confirmed before the node has processed it).
func (p *pubsub) deliver(kind subKind, name []byte, elems [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.subs[kind][string(name)] {
		return
	}
	n := 16 // the header
	for _, e := range elems {
		n += len(e)
	}
	if p.overLimitLocked(n) {
		return
	}
	p.out = appendPushHeader(p.out, len(elems), p.resp3)
	for _, e := range elems {
		p.out = append(p.out, e...)
	}
	if c := p.s.c.metrics.messages; c != nil {
		c.Inc()
	}
	if !p.hold {
		p.cond.Signal()
	}
}
