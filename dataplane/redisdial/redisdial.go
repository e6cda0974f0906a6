// Package redisdial opens a connection to one Redis node: TCP, then TLS (verified for the
// node's own host unless the configuration names a server), then the handshake — AUTH, HELLO,
// SELECT, READONLY, whichever the options ask — written at once and each reply checked. The
// data plane's backend connections, the health checker's pings and the topology fetcher all
// dial through it, so a node is reached the same way whoever asks, and a refusal reads the same
// in every log.
//
// Dial keeps no state and may be called from any goroutine; the connection it returns is the
// caller's, with no deadline set and nothing buffered past the handshake's replies.
package redisdial

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

// DefaultTimeout bounds the TLS handshake and the handshake's replies when the options give no
// timeout for them: a node that accepts TCP and then says nothing must not hold a dial forever.
const DefaultTimeout = 5 * time.Second

// maxReplyLen bounds the handshake's replies together. HELLO's, the longest, is about 150 bytes
// (more with modules loaded); anything near this is not a Redis node answering a handshake.
const maxReplyLen = 64 << 10

// Options say how to reach one node and what to tell it before it serves requests.
type Options struct {
	Addr string // host:port
	// DialTimeout bounds the TCP connect and, on its own, the TLS handshake. 0: the OS's limit
	// for the connect, DefaultTimeout for the TLS handshake.
	DialTimeout time.Duration
	// ReplyTimeout bounds the handshake's exchange, from writing its commands to reading the
	// last reply. 0: DefaultTimeout.
	ReplyTimeout time.Duration
	// TLS, when set, wraps the connection. With no ServerName it verifies the certificate for
	// Addr's host, so that one configuration serves every node of a cluster.
	TLS *tls.Config
	// Username and Password, when Password is set, are sent as AUTH [username] password.
	Username, Password string
	// Protocol, when 2 or 3, is sent as HELLO Protocol: 3 switches the connection to RESP3.
	// 0 sends no HELLO (the connection speaks RESP2, and Redis before 6 takes it).
	Protocol int
	// DB, when not 0, is selected (SELECT DB). Redis Cluster has database 0 only.
	DB int
	// ReadOnly sends READONLY, so that a Redis Cluster replica serves reads of its slots
	// instead of redirecting them to the master.
	ReadOnly bool
}

// RefusedError is a node's error reply to a handshake command.
type RefusedError struct {
	Command string // AUTH, HELLO, SELECT or READONLY
	Reply   string // the node's error line, without the leading '-' and the CRLF
}

func (e *RefusedError) Error() string { return "node refused " + e.Command + ": " + e.Reply }

// Dial connects to opts.Addr and runs the handshake. Everything, the connect, the TLS
// handshake and the handshake's exchange, is given up as soon as ctx is done. Its errors name
// the node and the step that failed, and wrap the cause (a *RefusedError when the node said
// no).
func Dial(ctx context.Context, opts Options) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", opts.Addr, err)
	}
	if opts.TLS != nil {
		host, _, _ := net.SplitHostPort(opts.Addr)
		tc := tls.Client(nc, tlsconf.ForHost(opts.TLS, host))
		_ = tc.SetDeadline(time.Now().Add(orDefault(opts.DialTimeout)))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", opts.Addr, err)
		}
		_ = tc.SetDeadline(time.Time{})
		nc = tc
	}
	if err := handshake(ctx, nc, opts); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake with %s: %w", opts.Addr, err)
	}
	return nc, nil
}

// step is one handshake command and the reply that says it worked.
type step struct {
	name string
	ok   func(reply []byte) bool
}

var (
	isOK      = func(r []byte) bool { return string(r) == "+OK\r\n" }
	isHello   = func(r []byte) bool { return len(r) > 0 && (r[0] == '%' || r[0] == '*') } // a map, or RESP2's flat array
	errExcess = errors.New("the node sent more than the handshake's replies")
)

// handshake writes the commands opts ask for in one write and checks their replies in order,
// under ReplyTimeout and ctx. The first refusal is the error: later replies (NOAUTH after a
// wrong password) would only repeat it.
func handshake(ctx context.Context, nc net.Conn, opts Options) error {
	var out []byte
	var steps []step
	if opts.Password != "" {
		if opts.Username != "" {
			out = resp.AppendCommand(out, []byte("AUTH"), []byte(opts.Username), []byte(opts.Password))
		} else {
			out = resp.AppendCommand(out, []byte("AUTH"), []byte(opts.Password))
		}
		steps = append(steps, step{"AUTH", isOK})
	}
	if opts.Protocol != 0 {
		out = resp.AppendCommand(out, []byte("HELLO"), strconv.AppendInt(nil, int64(opts.Protocol), 10))
		steps = append(steps, step{"HELLO " + strconv.Itoa(opts.Protocol), isHello})
	}
	if opts.DB != 0 {
		out = resp.AppendCommand(out, []byte("SELECT"), strconv.AppendInt(nil, int64(opts.DB), 10))
		steps = append(steps, step{"SELECT", isOK})
	}
	if opts.ReadOnly {
		out = resp.AppendCommand(out, []byte("READONLY"))
		steps = append(steps, step{"READONLY", isOK})
	}
	if len(steps) == 0 {
		return nil
	}
	// The exchange waits on a deadline; a cancel moves it to the past, which ends it at once.
	// The deadline is set first: set after, it could undo a cancel that came meanwhile.
	_ = nc.SetDeadline(time.Now().Add(orDefault(opts.ReplyTimeout)))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err := exchange(nc, out, steps)
	stop()
	_ = nc.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		return ctx.Err() // what the read saw was only the cancel's deadline
	}
	return err
}

// exchange writes out and reads one reply per step.
func exchange(nc net.Conn, out []byte, steps []step) error {
	if _, err := nc.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, 0, 512)
	for _, s := range steps {
		var sc resp.ReplyScanner
		for {
			n, err := sc.Scan(buf)
			if err != nil {
				return fmt.Errorf("reply to %s: %w", s.name, err)
			}
			if n > 0 {
				reply := buf[:n]
				if resp.IsError(reply) {
					return &RefusedError{Command: s.name, Reply: strings.TrimSpace(string(reply[1:]))}
				}
				if !s.ok(reply) {
					return fmt.Errorf("reply %q to %s is not what Redis answers", truncate(reply), s.name)
				}
				buf = append(buf[:0], buf[n:]...)
				break
			}
			if len(buf) == cap(buf) {
				if cap(buf) >= maxReplyLen {
					return fmt.Errorf("reply to %s: longer than %d bytes", s.name, maxReplyLen)
				}
				buf = append(make([]byte, 0, 2*cap(buf)), buf...)
			}
			m, err := nc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err != nil && m == 0 {
				return fmt.Errorf("reply to %s: %w", s.name, err)
			}
		}
	}
	if len(buf) > 0 {
		// The caller's reader would never see these bytes: the stream would be out of step.
		return errExcess
	}
	return nil
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// truncate shortens a reply for an error message.
func truncate(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
