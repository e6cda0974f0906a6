package proxy

import (
	"io"
	"net"
	"time"
)

// client_idle_timeout closes a client that has sent nothing for that long, as Redis's timeout
// does (it counts from the client's last interaction). A client that is sending is not idle,
// however slowly its command arrives (a byte a second, a big value over a slow link): the read
// deadline moves on with every read that brings bytes, not once per command. Sessions of a
// cluster with an idle timeout run on goroutines (Cluster.loopable), so this is their path only.

// idleReader is the client's reader for a session with an idle timeout. It moves the read
// deadline only while on, that is while the session waits for a command (readCommand): a
// blocked or subscribed client has no deadline (blocking.go, pubsub.go), and a read of their
// input must not give it one back.
type idleReader struct {
	r       io.Reader
	nc      net.Conn
	timeout time.Duration
	on      bool
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 && ir.on {
		_ = ir.nc.SetReadDeadline(time.Now().Add(ir.timeout))
	}
	return n, err
}

// watchIdle puts an idleReader under the session's reader when the cluster has an idle
// timeout. It runs once, before anything is read.
func (s *session) watchIdle() {
	if d := s.c.access().idle; d > 0 {
		var under io.Reader = s.nc
		if s.raw != nil {
			under = &s.src
		}
		s.idleRd = &idleReader{r: under, nc: s.nc, timeout: d}
		s.rd.Reset(s.idleRd)
	}
}

// readCommand waits for the client's next command; with an idle timeout, for at most that
// long since the client last sent anything.
func (s *session) readCommand() error {
	if s.idleRd == nil {
		return s.rd.Read(&s.cmd)
	}
	_ = s.nc.SetReadDeadline(time.Now().Add(s.idleRd.timeout))
	s.idleRd.on = true
	err := s.rd.Read(&s.cmd)
	s.idleRd.on = false
	return err
}
