package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// maxBlockedInput bounds what the proxy buffers of a blocked client's further input (Redis
// keeps it too and serves it after the reply). Past it the client is not read until the
// reply, so a disconnect is noticed only then.
const maxBlockedInput = 1 << 20

// block handles a Block command. One that blocks ends the batch: it runs after the replies
// before it are written, on the session's dedicated connection to the node of its keys, so
// that the shared connections never wait behind it. One that does not (XREAD without BLOCK)
// is forwarded as usual.
func (s *session) block(pl *place, spec *command.Spec, cmd *resp.Command) {
	if _, blocks := command.BlockTimeout(spec, cmd.Args); !blocks {
		s.forwardByKeys(pl, spec, cmd)
		return
	}
	if _, ok := spec.Keys(cmd.Args, s.keys[:0]); !ok {
		// Malformed key arguments: the keyless node answers Redis's own error (keyless.go),
		// on a connection of the client's own should it block all the same.
		if node := s.keylessNode(); node >= 0 {
			s.deferTo(spec, node)
		} else {
			s.noNode(pl)
		}
		return
	}
	g, msg := s.keyGroup(spec, cmd.Args)
	if msg == "" && g < 0 {
		msg = "ERR '" + spec.Name + "' without keys cannot be routed by the proxy"
	}
	if msg != "" {
		pl.setError(msg)
		return
	}
	node := s.groupNode(g, command.IsReadOnly(spec))
	if node < 0 {
		s.noNode(pl)
		return
	}
	s.deferTo(spec, node)
}

// deferTo makes the command just read the batch's last: runDeferred runs it once the batch's
// replies are written. Its place is given back; its reply is written by runDeferred.
func (s *session) deferTo(spec *command.Spec, node int) {
	s.n--
	s.deferred, s.deferNode, s.deferMute = spec, node, s.places[s.n].silent
}

// keyGroup finds the group (route.Table.Group) all the keys of a command are in; -1 without
// keys. msg is the client's error when the keys are not together or no node serves them.
func (s *session) keyGroup(spec *command.Spec, args [][]byte) (group int, msg string) {
	keys, ok := spec.Keys(args, s.keys[:0])
	s.keys = keys
	if !ok {
		return -1, "ERR invalid number of keys for '" + spec.Name + "' command"
	}
	if len(keys) == 0 {
		return -1, ""
	}
	g, err := s.routes.table.Together(args, keys)
	if err != nil {
		return -1, err.Error()
	}
	if g < 0 { // an empty ring
		return -1, s.noNodeMsg()
	}
	return g, ""
}

// runDeferred runs the command that ended the batch and writes its reply. false: the client
// is gone.
func (s *session) runDeferred() bool {
	spec := s.deferred
	s.deferred = nil
	s.pruneDed()
	out := s.out[:0]
	// Dedicated connections speak RESP2: a RESP3 client's reply is converted by its shape,
	// taken now, while the command (and a transaction's queue) is still at hand.
	var shape *resp.Shape
	if s.proto3 {
		shape = s.deferredShape(spec)
	}
	if spec.Policy == command.Block {
		var ok bool
		if out, ok = s.runBlocking(out, spec); !ok {
			return false
		}
	} else {
		out = s.runTransaction(out, spec)
	}
	if s.proto3 {
		s.conv = resp.ToRESP3(s.conv[:0], out, shape)
		out, s.conv = s.conv, out
		s.keepConv()
	}
	// For CLIENT LIST (clientlist.go), before the client has the reply and may ask: no longer
	// in MULTI, idle from now.
	s.publishStat(time.Time{})
	var err error
	if !s.deferMute {
		_, err = s.rw.Write(out)
	}
	if cap(out) > maxKeptOut {
		out = nil
	}
	s.out = out
	return err == nil
}

// runBlocking runs a blocking command on the session's dedicated connection to its node and
// appends the reply. The command's own timeout governs, not read_timeout (which only bounds
// the wait past it); the client is watched meanwhile and its leaving (false) ends the session.
func (s *session) runBlocking(out []byte, spec *command.Spec) ([]byte, bool) {
	if s.cmd.Raw != nil {
		s.blk = append(s.blk[:0], s.cmd.Raw...)
	} else {
		s.blk = resp.AppendCommand(s.blk[:0], s.cmd.Args...)
	}
	var wait time.Duration
	if timeout, _ := command.BlockTimeout(spec, s.cmd.Args); timeout > 0 && s.gen.backend.readTimeout > 0 {
		wait = timeout + s.gen.backend.readTimeout
	}
	d, err := s.dedicated(s.deferNode)
	if err != nil {
		return resp.AppendError(out, "ERR "+err.Error()), true
	}
	reply, _, gone, err := s.dedDo(d, s.blk, wait, true, true)
	if cap(s.blk) > maxKeptOut {
		s.blk = nil
	}
	if gone {
		return out, false
	}
	if err != nil {
		s.c.metrics.inc(s.c.metrics.backendErr)
		return resp.AppendError(out, "ERR "+err.Error()), true
	}
	return append(out, reply...), true
}

// demotedUnblock starts the error a blocked command gets when its node turns replica
// (Redis's disconnectAllBlockedClients), unlike CLIENT UNBLOCK's "-UNBLOCKED client unblocked
// via CLIENT UNBLOCK", which is the client's to see.
var demotedUnblock = []byte("-UNBLOCKED force unblock from blocking operation, instance state changed")

// dedDo runs one command on the dedicated connection d and returns its reply (valid until the
// connection's next use) and the connection that answered: in cluster mode, with follow set,
// one MOVED or ASK is followed to the node it names, and a command a demoted node unblocked is
// sent again once. With watch set the client is watched
// meanwhile; gone means it left. A connection that failed is dropped.
func (s *session) dedDo(d *dedConn, frame []byte, timeout time.Duration, follow, watch bool) (reply []byte, used *dedConn, gone bool, err error) {
	var prefix []byte
	redirected, again := false, false
	for {
		reply, gone, err = s.exchange(d, prefix, frame, timeout, watch)
		if gone {
			s.c.log.Debug("client left while blocked; its node connection closed", "remote", s.nc.RemoteAddr().String(), "node", d.addr)
			return nil, d, true, nil
		}
		if err != nil {
			s.c.log.Debug("dedicated connection failed", "node", d.addr, "error", err)
			s.dropDed(d)
			return nil, d, false, fmt.Errorf("backend %s: %w", d.addr, err)
		}
		if !follow || redirected || !s.routes.table.Cluster() { // only Redis Cluster nodes redirect
			return reply, d, false, nil
		}
		if !again && bytes.HasPrefix(reply, demotedUnblock) {
			// The node turned replica (a failover) while the command waited: it was not
			// served, so it is sent again, once, on a new connection (the node closes this
			// one after that reply), and the node answers MOVED, followed below. It then
			// waits its whole timeout again.
			again, prefix = true, nil
			addr := d.addr
			s.dropDed(d)
			s.c.hint()
			if d, err = s.dedicatedAt(addr); err != nil {
				return nil, nil, false, err
			}
			continue
		}
		redirected = true
		addr, ask, ok := isRedirect(reply)
		if !ok {
			return reply, d, false, nil
		}
		if ask {
			s.c.metrics.inc(s.c.metrics.ask)
			prefix = askingFrame
		} else {
			s.c.hint() // the slot map is stale
			s.c.metrics.inc(s.c.metrics.moved)
		}
		if d, err = s.dedicatedAt(addr); err != nil {
			return nil, nil, false, err
		}
	}
}

// exchange writes [prefix and] frame in one write on d and reads the reply (a prefix's reply
// is read and dropped), watching the client meanwhile when watch is set.
func (s *session) exchange(d *dedConn, prefix, frame []byte, timeout time.Duration, watch bool) (reply []byte, gone bool, err error) {
	if prefix != nil {
		frame = append(append([]byte(nil), prefix...), frame...)
	}
	if err = d.write(frame, s.gen.backend.writeTimeout); err != nil {
		return nil, false, err
	}
	var stop func() bool
	if watch {
		defer s.blockedOn(d)() // CLIENT UNBLOCK from another client finds it (clientunblock.go)
		stop = s.watchClient(d)
	}
	if prefix != nil {
		_, err = d.readReply(timeout)
	}
	if err == nil {
		reply, err = d.readReply(timeout)
	}
	if watch {
		gone = stop()
	}
	return reply, gone, err
}

// watchClient reads the client while the session waits for a blocking reply on d: what the
// client sends is kept in the session's reader for after the reply (the session does not use
// the reader meanwhile); if the client leaves, d is closed, which releases the node's blocked
// connection at once and ends the wait. stop ends the watch (a read deadline in the past
// wakes the reader) and reports whether the client left.
func (s *session) watchClient(d *dedConn) (stop func() bool) {
	_ = s.nc.SetReadDeadline(time.Time{}) // a blocked client is not idle (Redis's timeout spares it too)
	done, quit := make(chan struct{}), make(chan struct{})
	var gone atomic.Bool
	go func() {
		defer close(done)
		for {
			err := s.rd.Fill(maxBlockedInput)
			switch {
			case err == nil:
			case errors.Is(err, resp.ErrBufferFull):
				<-quit
				return
			case errors.Is(err, os.ErrDeadlineExceeded):
				return // stopped
			default:
				gone.Store(true)
				d.Close()
				return
			}
		}
	}()
	return func() bool {
		close(quit)
		_ = s.nc.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = s.nc.SetReadDeadline(time.Time{})
		return gone.Load()
	}
}
