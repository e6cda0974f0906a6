// Package rawio reads and writes a non-blocking socket with raw system calls, still waiting for
// readiness through Go's netpoller (so deadlines and Close work as for net.Conn).
//
// Why: net.Conn marks every read and write as a system call the scheduler must watch. A loopback
// write runs the receiver's TCP input in the caller's context and often takes longer than the
// scheduler monitor's 20 µs tick, so the monitor hands the P to another thread and the writer
// must win one back after: futex wake-ups, thread switches and a monitor that keeps polling at
// its fastest rate. asterd's sockets are non-blocking, so these calls never block and need none of
// that. Profiles of asterd at 50 unpipelined clients put ~15% of its CPU there.
//
// Concurrency: a Conn takes one reader and one writer at a time (a goroutine per direction, or
// the event loop that owns the socket), never concurrent Reads or concurrent Writes. An owned
// Conn (Own) is stricter: one goroutine at a time does all its I/O and closes it; any other
// goroutine only shuts it down (Shutdown).
package rawio

import (
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// Conn does raw reads and writes on a TCP or Unix socket. It is not safe for concurrent Reads
// or concurrent Writes (one reader and one writer at a time is fine), as with one goroutine per
// direction, which is how the data plane uses its connections.
type Conn struct {
	rc   syscall.RawConn
	sock *Sock // nc, when it is a Sock (Unpoll)
	// fd is the socket's descriptor once Own was called (-1 before): the non-waiting calls
	// use it directly.
	fd int

	rbuf  []byte
	rn    int
	rerr  error
	read  func(fd uintptr) bool
	tryRd func(fd uintptr) bool

	wbuf []byte
	wn   int
	werr error
	writ func(fd uintptr) bool
	try  func(fd uintptr) bool

	// Writev's: the buffers left to write, and the iovecs of one system call (kept, so that
	// a steady state allocates nothing).
	wv    [][]byte
	iov   []syscall.Iovec
	wvec  func(fd uintptr) bool
	tryWv func(fd uintptr) bool
}

// New returns a Conn for nc, or nil when nc is not a plain socket (TCP, Unix, or a Sock; not
// TLS, pipes, wrappers): those keep using nc itself.
func New(nc net.Conn) *Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn, *Sock:
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &Conn{rc: rc, fd: -1}
	c.sock, _ = nc.(*Sock)
	return c
}

// Own has TryRead, TryWrite and TryWritev make their system call on the socket's descriptor
// directly, without the runtime's descriptor lock and poll bookkeeping around it (~400
// instructions a request at P1, and two cache lines more per client with many clients). The
// caller promises what that lock is for: the socket is closed only by the goroutine that does
// the Conn's I/O, after its last call, so the descriptor cannot be closed and reused under a
// call; another goroutine that wants the connection gone shuts it down (Shutdown), which
// keeps the descriptor. The calls that wait (Read, Write, Writev) still go through the
// runtime, which they need for the waiting.
func (c *Conn) Own() {
	_ = c.rc.Control(func(fd uintptr) { c.fd = int(fd) })
}

// Unpoll takes a Sock's socket out of the runtime's epoll set, where a wait put it, onto a
// new descriptor, which an owned Conn's calls use from then on; nothing for any other socket.
// The owner's, before it hands the socket to an event loop (see Sock); an error leaves the
// socket as it was, in the set.
func (c *Conn) Unpoll() error {
	if c.sock == nil {
		return nil
	}
	fd, err := c.sock.unpoll()
	if c.fd >= 0 {
		c.fd = fd
	}
	return err
}

// Shutdown shuts both directions of the socket down, from any goroutine: the owner's next read
// sees the end of the input, its next write fails, and it closes the socket itself.
func Shutdown(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if sh, ok := nc.(interface {
		CloseRead() error
		CloseWrite() error
	}); ok {
		_ = sh.CloseRead()
		_ = sh.CloseWrite()
		return
	}
	_ = nc.Close() // no descriptor to keep (a pipe): closing is the only way
}

// bindRead and bindWrite bind the calls the RawConn runs, each direction's by its own
// goroutine, once: later calls pass an existing func value and allocate nothing. Not in New,
// because an owned Conn served from an event loop never needs them (TryRead and TryWrite go
// to its descriptor directly): six allocations fewer for each client connection.
func (c *Conn) bindRead() {
	if c.read == nil {
		c.read, c.tryRd = c.readFD, c.tryReadFD
	}
}

func (c *Conn) bindWrite() {
	if c.writ == nil {
		c.writ, c.try, c.wvec, c.tryWv = c.writeFD, c.tryWriteFD, c.writevFD, c.tryWritevFD
	}
}

// Read reads into p as net.Conn.Read does: at least one byte, or an error (io.EOF at the end).
func (c *Conn) Read(p []byte) (int, error) {
	c.bindRead()
	return c.readWith(p, c.read)
}

// TryRead reads what the socket has now, without waiting: 0 bytes with a nil error means
// nothing is there yet. For a caller that learns of readability some other way (an epoll set
// of its own).
func (c *Conn) TryRead(p []byte) (int, error) {
	if c.fd >= 0 && len(p) > 0 { // owned: on the descriptor, with nothing kept in c
		n, _, err := readOnce(uintptr(c.fd), p)
		return n, err
	}
	c.bindRead()
	return c.readWith(p, c.tryRd)
}

// readWith runs f (readFD or tryReadFD) on p through the RawConn.
func (c *Conn) readWith(p []byte, f func(fd uintptr) bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(f)
	c.rbuf = nil
	if err != nil {
		return 0, err
	}
	return c.rn, c.rerr
}

func (c *Conn) tryReadFD(fd uintptr) bool {
	if !c.readFD(fd) {
		c.rn = 0 // EAGAIN: nothing there; never wait
	}
	return true
}

func (c *Conn) readFD(fd uintptr) bool {
	var again bool
	c.rn, again, c.rerr = readOnce(fd, c.rbuf)
	return !again
}

// readOnce is one read(2) of fd into p (len(p) > 0): again when nothing is there yet (EAGAIN).
// It keeps nothing in a Conn, so that an owned Conn's TryRead touches only its descriptor.
func readOnce(fd uintptr, p []byte) (n int, again bool, err error) {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			if r == 0 {
				return 0, false, io.EOF
			}
			return int(r), false, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, true, nil // wait for readability, then try again
		default:
			return 0, false, &net.OpError{Op: "read", Net: "tcp", Err: e}
		}
	}
}

// Control runs f with the socket's file descriptor, which stays open (and so not reused)
// until f returns; an error when the socket is closed already.
func (c *Conn) Control(f func(fd uintptr)) error { return c.rc.Control(f) }

// Write writes all of p, waiting for the socket to drain when it is full, as net.Conn.Write does.
func (c *Conn) Write(p []byte) (int, error) {
	c.bindWrite()
	return c.write(p, c.writ)
}

// write runs f (writeFD or tryWriteFD) on p through the RawConn.
func (c *Conn) write(p []byte, f func(fd uintptr) bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(f)
	n := c.wn
	c.wbuf = nil
	if err != nil {
		return n, err
	}
	return n, c.werr
}

func (c *Conn) writeFD(fd uintptr) bool {
	n, full, err := writeSome(fd, c.wbuf[c.wn:])
	c.wn += n
	c.werr = err
	return !full
}

// writeSome writes p to fd until all of it went (n == len(p)), the socket is full (EAGAIN) or
// the write fails. Like readOnce, it keeps nothing in a Conn.
func writeSome(fd uintptr, p []byte) (n int, full bool, err error) {
	for n < len(p) {
		w, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch e {
		case 0:
			n += int(w)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, true, nil // wait for writability, then go on
		default:
			return n, false, &net.OpError{Op: "write", Net: "tcp", Err: e}
		}
	}
	return n, false, nil
}

// TryWrite writes what the socket takes now, without waiting: n < len(p) with a nil error
// means its buffer is full (the peer reads slower than we write, or not at all).
func (c *Conn) TryWrite(p []byte) (int, error) {
	if c.fd >= 0 { // owned: on the descriptor, with nothing kept in c
		n, _, err := writeSome(uintptr(c.fd), p)
		return n, err
	}
	c.bindWrite()
	return c.write(p, c.try)
}

func (c *Conn) tryWriteFD(fd uintptr) bool {
	c.writeFD(fd)
	return true // written what fits (or failed): never wait
}

// maxIovecs is how many buffers one writev takes (Linux's IOV_MAX).
const maxIovecs = 1024

// Writev writes all of bufs with writev, in order and without joining them, waiting for the
// socket to drain when it is full. It consumes bufs: the entries written are cleared (so that
// they keep nothing alive) and a partly written one is resliced.
func (c *Conn) Writev(bufs [][]byte) error {
	c.bindWrite()
	_, err := c.writev(bufs, c.wvec, true)
	return err
}

// TryWritev is Writev without waiting: rest is what the socket did not take now (bufs'
// tail; empty when all went).
func (c *Conn) TryWritev(bufs [][]byte) (rest [][]byte, err error) {
	c.bindWrite()
	return c.writev(bufs, c.tryWv, false)
}

// writev runs f (writevFD or tryWritevFD) on bufs through the RawConn; without waiting on an
// owned Conn, on its descriptor directly.
func (c *Conn) writev(bufs [][]byte, f func(fd uintptr) bool, wait bool) ([][]byte, error) {
	c.wv, c.werr = bufs, nil
	c.skipEmpty()
	if len(c.wv) == 0 {
		return c.wv, nil
	}
	var err error
	if c.fd >= 0 && !wait {
		f(uintptr(c.fd))
	} else {
		err = c.rc.Write(f)
	}
	rest := c.wv
	c.wv = nil
	clear(c.iov) // the iovecs point into the buffers
	if err != nil {
		return rest, err
	}
	return rest, c.werr
}

// skipEmpty drops the written (or empty) buffers at the head of c.wv.
func (c *Conn) skipEmpty() {
	for len(c.wv) > 0 && len(c.wv[0]) == 0 {
		c.wv[0] = nil
		c.wv = c.wv[1:]
	}
}

func (c *Conn) writevFD(fd uintptr) bool {
	for len(c.wv) > 0 {
		iov := c.iov[:0]
		for _, b := range c.wv[:min(len(c.wv), maxIovecs)] {
			if len(b) > 0 {
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
		}
		c.iov = iov
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch e {
		case 0:
			c.advance(int(n))
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for writability, then go on
		default:
			c.werr = &net.OpError{Op: "writev", Net: "tcp", Err: e}
			return true
		}
	}
	return true
}

// advance consumes n written bytes from the head of c.wv.
func (c *Conn) advance(n int) {
	for n > 0 {
		if k := len(c.wv[0]); n >= k {
			n -= k
			c.wv[0] = nil
			c.wv = c.wv[1:]
			continue
		}
		c.wv[0] = c.wv[0][n:]
		n = 0
	}
	c.skipEmpty()
}

func (c *Conn) tryWritevFD(fd uintptr) bool {
	c.writevFD(fd)
	return true // written what fits (or failed): never wait
}

// ReadWriter is New(nc) when nc is a plain socket, else nc itself.
func ReadWriter(nc net.Conn) io.ReadWriter {
	if c := New(nc); c != nil {
		return c
	}
	return nc
}

// FD is the descriptor of nc's socket (under TLS, of the connection TLS runs on), -1 when it
// has none (a pipe, a closed connection). For peeking a socket and for CLIENT LIST's fd; reads
// and writes go through Conn.
func FD(nc net.Conn) int {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return -1
	}
	return fd
}
