//go:build !linux

package rawio

import (
	"errors"
	"net"
)

// Listener is a TCP listener whose clients can be taken as Socks; on Linux only (accept4,
// and listener options the connections inherit). Elsewhere NewListener fails, and the caller
// accepts through net.TCPListener as before.
type Listener struct{ *net.TCPListener }

// NewListener fails off Linux: errors.ErrUnsupported.
func NewListener(*net.TCPListener) (*Listener, error) { return nil, errors.ErrUnsupported }

// AcceptSock is never reached off Linux.
func (l *Listener) AcceptSock() (*Sock, error) { return nil, errors.ErrUnsupported }
