package rawio

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Sock is a client socket kept out of Go's netpoller while nothing waits on it.
//
// Why: a socket from net.Listener.Accept is in the runtime's epoll set for as long as it is
// open. An event loop (package netpoll) that serves the socket from an epoll set of its own
// then has every packet raise an event in both sets, and the runtime's scheduler collects the
// useless half each time it polls: with 10,000 clients, over a tenth of asterd's CPU per
// request (docs/benchmarks.md). A Sock takes the accepted socket over on a descriptor
// registered nowhere. A caller that has to wait (a blocking Read or Write, a deadline) has the
// runtime take the descriptor (an os.File, which polls it) until Unpoll, which the owner calls
// when the socket goes back to an event loop: the socket moves to a fresh duplicate, and the
// file, closing, leaves the runtime's set. One descriptor per socket, two only within Unpoll.
//
// Concurrency: as for an owned Conn (Own), one goroutine at a time is the owner: it does the
// I/O, calls Unpoll (through Conn.Unpoll, which also follows the descriptor) and closes the
// Sock. Any goroutine may shut it down (CloseRead, CloseWrite), set a deadline or read its
// descriptor through SyscallConn's Control: the lock keeps the descriptor from being closed,
// and its number reused, under them. Unpoll must not run while another goroutine waits on the
// socket.
type Sock struct {
	laddr, raddr net.Addr

	mu     sync.Mutex
	fd     int      // the socket's descriptor; -1 once closed
	polled *os.File // owns fd while the runtime polls it; nil while outside
	prc    syscall.RawConn
}

// NewSock takes nc's socket over (a *net.TCPConn or *net.UnixConn; nil, nc untouched, for any
// other, or when the descriptor cannot be duplicated): nc is closed, which takes its
// descriptor out of the runtime's epoll set, and the Sock goes on with a duplicate.
func NewSock(nc net.Conn) *Sock {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	fd, derr := -1, error(nil)
	if rc.Control(func(d uintptr) { fd, derr = dupCloexec(int(d)) }) != nil || derr != nil {
		return nil // out of descriptors: nc goes on as it is
	}
	s := &Sock{laddr: nc.LocalAddr(), raddr: nc.RemoteAddr(), fd: fd}
	_ = nc.Close() // the duplicate keeps the connection open
	return s
}

// dupCloexec duplicates fd, close-on-exec; the copy shares its file status (non-blocking).
func dupCloexec(fd int) (int, error) {
	nfd, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("fcntl", e)
	}
	return int(nfd), nil
}

// poll has the runtime take the descriptor, if it has not yet, and returns its file.
func (s *Sock) poll() (*os.File, syscall.RawConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil, nil, net.ErrClosed
	}
	if s.polled == nil {
		f := os.NewFile(uintptr(s.fd), "client") // non-blocking: the runtime polls it
		rc, err := f.SyscallConn()
		if err != nil { // not for a file just made; the descriptor is f's now all the same
			s.fd = -1
			f.Close()
			return nil, nil, err
		}
		s.polled, s.prc = f, rc
	}
	return s.polled, s.prc, nil
}

// unpoll takes the socket out of the runtime's epoll set, if a wait put it there, and returns
// its descriptor, which is new then (Conn.Unpoll). Deadlines set meanwhile are gone with it.
// On an error (no descriptor left to duplicate onto) it stays in the set.
func (s *Sock) unpoll() (int, error) {
	s.mu.Lock()
	f, fd := s.polled, s.fd
	var err error
	if f != nil {
		if fd, err = dupCloexec(s.fd); err != nil {
			fd, f = s.fd, nil
		} else {
			s.fd, s.polled, s.prc = fd, nil, nil
		}
	}
	s.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
	return fd, err
}

// Read reads as net.Conn.Read does, waiting through the runtime.
func (s *Sock) Read(p []byte) (int, error) {
	f, _, err := s.poll()
	if err != nil {
		return 0, err
	}
	return f.Read(p)
}

// Write writes all of p as net.Conn.Write does, waiting through the runtime.
func (s *Sock) Write(p []byte) (int, error) {
	f, _, err := s.poll()
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

// Close closes the socket; the owner's, once.
func (s *Sock) Close() error {
	s.mu.Lock()
	f, fd := s.polled, s.fd
	s.polled, s.prc, s.fd = nil, nil, -1
	s.mu.Unlock()
	switch {
	case fd < 0:
		return net.ErrClosed
	case f != nil:
		return f.Close() // also ends a wait on it
	default:
		return closeFD(fd)
	}
}

// closeFD closes a socket's descriptor with a raw system call: closing a socket does not wait
// (no SO_LINGER here), and syscall.Close's bookkeeping for calls that may block wakes the
// runtime's monitor thread after an idle spell (see accept4).
func closeFD(fd int) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return os.NewSyscallError("close", e)
	}
	return nil
}

// CloseRead shuts the reading side down, from any goroutine: the owner's next read sees the end.
func (s *Sock) CloseRead() error { return s.shutdown(syscall.SHUT_RD) }

// CloseWrite shuts the writing side down, from any goroutine.
func (s *Sock) CloseWrite() error { return s.shutdown(syscall.SHUT_WR) }

func (s *Sock) shutdown(how int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	return os.NewSyscallError("shutdown", syscall.Shutdown(s.fd, how))
}

// LocalAddr is the socket's local address, as accepted.
func (s *Sock) LocalAddr() net.Addr { return s.laddr }

// RemoteAddr is the peer's address, as accepted.
func (s *Sock) RemoteAddr() net.Addr { return s.raddr }

// SetDeadline sets both deadlines (SetReadDeadline).
func (s *Sock) SetDeadline(t time.Time) error {
	return errors.Join(s.SetReadDeadline(t), s.SetWriteDeadline(t))
}

// SetReadDeadline bounds the waits of reads, as net.Conn's does. A zero time on a socket that
// nothing waits on is the default already: it stays out of the runtime's set.
func (s *Sock) SetReadDeadline(t time.Time) error {
	return s.deadline(t, (*os.File).SetReadDeadline)
}

// SetWriteDeadline bounds the waits of writes, as net.Conn's does.
func (s *Sock) SetWriteDeadline(t time.Time) error {
	return s.deadline(t, (*os.File).SetWriteDeadline)
}

func (s *Sock) deadline(t time.Time, set func(*os.File, time.Time) error) error {
	if t.IsZero() {
		s.mu.Lock()
		f, closed := s.polled, s.fd < 0
		s.mu.Unlock()
		if closed {
			return net.ErrClosed
		}
		if f == nil {
			return nil
		}
		return set(f, t)
	}
	f, _, err := s.poll()
	if err != nil {
		return err
	}
	return set(f, t)
}

// SyscallConn gives the socket to New (and FD): Control runs on its descriptor, held open
// meanwhile; Read and Write wait through the runtime.
func (s *Sock) SyscallConn() (syscall.RawConn, error) { return sockRaw{s}, nil }

type sockRaw struct{ s *Sock }

func (r sockRaw) Control(f func(fd uintptr)) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.fd < 0 {
		return net.ErrClosed
	}
	f(uintptr(r.s.fd))
	return nil
}

func (r sockRaw) Read(f func(fd uintptr) bool) error {
	_, rc, err := r.s.poll()
	if err != nil {
		return err
	}
	return rc.Read(f)
}

func (r sockRaw) Write(f func(fd uintptr) bool) error {
	_, rc, err := r.s.poll()
	if err != nil {
		return err
	}
	return rc.Write(f)
}
