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

// TryAccept takes the next connection waiting on ln, without waiting for one (nil, nil when
// none is), as a Sock set up as ln.Accept would set it up (TCP_NODELAY, keep-alive). Why:
// ln.Accept registers each socket in the runtime's epoll set, only for NewSock to take it out
// again (a duplicate descriptor, the original closed): four system calls per client, which a
// server taking thousands of connections at once pays in its tail latency
// (docs/benchmarks.md). A listener's RawConn cannot wait, so the caller waits with ln.Accept
// when none is waiting (that one client takes the usual way) and goes on with TryAccept. The
// error is ln.Accept's kind: net.ErrClosed once ln is closed; EMFILE and the like for the
// caller to back off from.
func TryAccept(ln *net.TCPListener) (*Sock, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, sa := -1, syscall.Sockaddr(nil)
	var aerr error
	err = rc.Control(func(lfd uintptr) {
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
	if err := setClientOpts(fd); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	s := &Sock{raddr: tcpAddr(sa), fd: fd}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		s.laddr = a // bound to one address: every connection's local address
	} else if lsa, err := syscall.Getsockname(fd); err == nil {
		s.laddr = tcpAddr(lsa)
	} else {
		s.laddr = ln.Addr()
	}
	return s, nil
}

// setClientOpts sets what ln.Accept sets on a TCP connection: no Nagle delay, keep-alive.
func setClientOpts(fd int) error {
	for _, o := range [...]struct{ level, opt, v int }{
		{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepIdle},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepInterval},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepCount},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
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
