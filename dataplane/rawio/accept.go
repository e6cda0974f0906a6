package rawio

import (
	"net"
	"os"
	"syscall"
)

// Keep-alive as net.Listener's Accept sets it on every TCP connection it returns (Go's
// defaults: probes after 15 s idle, every 15 s, 9 of them), so that a client accepted here
// is found dead as one accepted there would be.
const (
	keepIdle     = 15
	keepInterval = 15
	keepCount    = 9
)

// clientOpts are the options ln.Accept sets on a TCP connection: no Nagle delay, keep-alive.
var clientOpts = [...]struct{ level, opt, v int }{
	{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
	{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
	{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepIdle},
	{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepInterval},
	{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepCount},
}

// Acceptor takes the connections waiting on a TCP listener as Socks, set up as ln.Accept sets
// them up (clientOpts). Why: ln.Accept registers each socket in the runtime's epoll set, only
// for NewSock to take it out again (a duplicate descriptor, the original closed), and sets
// five options: nine system calls per client beyond accept itself, which a server taking
// thousands of connections at once pays in its tail latency (docs/benchmarks.md). The options
// are set once, on the listener, which Linux copies to each connection accepted from it (the
// keep-alive timer included); the first connection is checked for them, and should a kernel not
// copy them, each connection gets them set. A listener's RawConn cannot wait, so the caller
// waits with ln.Accept when none is waiting (that one client takes the usual way) and goes on
// with TryAccept. One goroutine at a time.
type Acceptor struct {
	ln    *net.TCPListener
	rc    syscall.RawConn
	laddr net.Addr // every connection's local address, when the listener is bound to one
	// copied: the listener's options reach its connections (1), do not (-1), not yet known (0).
	copied int8
}

// NewAcceptor returns an Acceptor for ln, with the options set on ln.
func NewAcceptor(ln *net.TCPListener) (*Acceptor, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	a := &Acceptor{ln: ln, rc: rc}
	if la, ok := ln.Addr().(*net.TCPAddr); ok && !la.IP.IsUnspecified() {
		a.laddr = la
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setOpts(int(fd)) }); err != nil {
		return nil, err
	}
	if serr != nil {
		a.copied = -1 // set on each connection instead
	}
	return a, nil
}

// TryAccept takes the next connection waiting on the listener, without waiting for one (nil,
// nil when none is). The error is ln.Accept's kind: net.ErrClosed once the listener is
// closed; EMFILE and the like for the caller to back off from.
func (a *Acceptor) TryAccept() (*Sock, error) {
	fd, sa := -1, syscall.Sockaddr(nil)
	var aerr error
	err := a.rc.Control(func(lfd uintptr) {
		for {
			fd, sa, aerr = syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if aerr != syscall.EINTR && aerr != syscall.ECONNABORTED { // aborted: a client gone before its turn
				return
			}
		}
	})
	switch {
	case err != nil:
		return nil, err
	case aerr == syscall.EAGAIN:
		return nil, nil
	case aerr != nil:
		return nil, os.NewSyscallError("accept4", aerr)
	}
	if a.copied == 0 {
		a.copied = -1
		if hasOpts(fd) {
			a.copied = 1
		}
	}
	if a.copied < 0 {
		if err := setOpts(fd); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	s := &Sock{raddr: tcpAddr(sa), laddr: a.laddr, fd: fd}
	if s.laddr == nil {
		if lsa, err := syscall.Getsockname(fd); err == nil {
			s.laddr = tcpAddr(lsa)
		} else {
			s.laddr = a.ln.Addr()
		}
	}
	return s, nil
}

// setOpts sets clientOpts on fd.
func setOpts(fd int) error {
	for _, o := range clientOpts {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// hasOpts reports whether fd has clientOpts.
func hasOpts(fd int) bool {
	for _, o := range clientOpts {
		if v, err := syscall.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.v {
			return false
		}
	}
	return true
}

// tcpAddr is sa as a net.Addr.
func tcpAddr(sa syscall.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}
	case *syscall.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, a.Addr[:])
		var zone string
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: ip, Port: a.Port, Zone: zone}
	}
	return &net.TCPAddr{}
}
