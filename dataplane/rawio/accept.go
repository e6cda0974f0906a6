//go:build linux

package rawio

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
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

// Listener is a TCP listener whose clients can be taken as Socks (AcceptSock), set up as
// net.TCPListener's Accept sets them up (clientOpts); Accept, Addr and the rest are the
// TCPListener's. Why: Accept registers each socket in the runtime's epoll set, only for
// NewSock to take it out again (a duplicate descriptor, the original closed), and sets five
// options: nine system calls per client beyond accept itself, which a server taking thousands
// of connections at once pays in its tail latency, and a client that connects for one
// command in its CPU (docs/benchmarks.md). The options are set once, on the listener, which
// Linux copies to each connection accepted from it (the keep-alive timer included); the first
// connection is checked for them, and should a kernel not copy them, each connection gets them
// set. A TCPListener's own RawConn cannot wait, so AcceptSock waits through the runtime on a
// duplicate of its descriptor (an os.File), which Close closes too: the socket stops
// listening when both are closed. AcceptSock is for one goroutine at a time.
type Listener struct {
	*net.TCPListener
	f     *os.File        // the duplicate
	rc    syscall.RawConn // f's, which waits
	laddr net.Addr        // every connection's local address, when the listener is bound to one
	// copied: the listener's options reach its connections (1), do not (-1), not yet known (0).
	copied int8
	closed atomic.Bool

	// What AcceptSock's accept4 leaves, kept here with the function bound once, so that taking
	// a client allocates only its Sock and addresses.
	fd      int
	aerr    syscall.Errno
	sa      syscall.RawSockaddrAny
	accept1 func(lfd uintptr) bool
}

// NewListener returns ln as a Listener, with the options set on ln. On an error ln is as it
// was, and still the caller's.
func NewListener(ln *net.TCPListener) (*Listener, error) {
	f, err := ln.File() // non-blocking, as ln's descriptor is: the runtime polls it
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &Listener{TCPListener: ln, f: f, rc: rc}
	l.accept1 = l.acceptOne
	if la, ok := ln.Addr().(*net.TCPAddr); ok && !la.IP.IsUnspecified() {
		l.laddr = la
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setOpts(int(fd)) }); err != nil {
		f.Close()
		return nil, err
	}
	if serr != nil {
		l.copied = -1 // set on each connection instead
	}
	return l, nil
}

// Close closes the listener, ending an AcceptSock that waits (net.ErrClosed).
func (l *Listener) Close() error {
	l.closed.Store(true)
	ferr := l.f.Close()
	if err := l.TCPListener.Close(); err != nil {
		return err
	}
	return ferr
}

// AcceptSock waits for the next client and returns it as a Sock. The error is Accept's kind:
// net.ErrClosed once the listener is closed; EMFILE and the like for the caller to back off
// from.
func (l *Listener) AcceptSock() (*Sock, error) {
	err := l.rc.Read(l.accept1)
	fd, aerr := l.fd, l.aerr
	switch {
	case err != nil && l.closed.Load():
		return nil, net.ErrClosed
	case err != nil:
		return nil, err
	case aerr != 0:
		return nil, os.NewSyscallError("accept4", aerr)
	}
	if l.copied == 0 {
		l.copied = -1
		if hasOpts(fd) {
			l.copied = 1
		}
	}
	if l.copied < 0 {
		if err := setOpts(fd); err != nil {
			closeFD(fd)
			return nil, err
		}
	}
	s := &Sock{raddr: tcpAddr(&l.sa), laddr: l.laddr, fd: fd}
	if s.laddr == nil { // bound to every address: the one this client reached
		s.laddr = l.Addr()
		if getsockname(fd, &l.sa) == 0 {
			s.laddr = tcpAddr(&l.sa)
		}
	}
	return s, nil
}

// acceptOne takes one client off the listener into l.fd, l.sa (l.aerr on a failure); false,
// to wait, when none is waiting.
func (l *Listener) acceptOne(lfd uintptr) bool {
	for {
		l.fd, l.aerr = accept4(int(lfd), &l.sa)
		switch l.aerr {
		case syscall.EINTR, syscall.ECONNABORTED: // aborted: a client gone before its turn
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// accept4 is syscall.Accept4 on a non-blocking listener, which never waits: a raw system call,
// so that the runtime does not treat it as one that may block. (Syscall's bookkeeping wakes the
// runtime's monitor thread after an idle spell, which then polls every 20 µs for a millisecond:
// ~5% of the CPU of clients that each connect for one command.) The peer's address lands in sa,
// where syscall.Accept4 allocates one.
func accept4(lfd int, sa *syscall.RawSockaddrAny) (int, syscall.Errno) {
	n := uint32(syscall.SizeofSockaddrAny)
	fd, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(sa)),
		uintptr(unsafe.Pointer(&n)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	return int(fd), e
}

// getsockname puts fd's local address in sa, as a raw system call (it never waits).
func getsockname(fd int, sa *syscall.RawSockaddrAny) syscall.Errno {
	n := uint32(syscall.SizeofSockaddrAny)
	_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&n)))
	return e
}

// tcpAddr is an address the kernel filled in (accept4, getsockname) as a net.Addr; an IPv6
// one's zone named as net names it.
func tcpAddr(sa *syscall.RawSockaddrAny) net.Addr {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		a := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: port(a.Port)}
	case syscall.AF_INET6:
		a := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip := make(net.IP, net.IPv6len)
		copy(ip, a.Addr[:])
		var zone string
		if a.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.Scope_id)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: ip, Port: port(a.Port), Zone: zone}
	}
	return &net.TCPAddr{}
}

// port is a sockaddr's port, which is in network byte order.
func port(p uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return int(b[0])<<8 | int(b[1])
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
