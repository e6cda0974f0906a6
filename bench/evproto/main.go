// Command evproto is a measurement prototype, not part of asterd: a proxy of ~300 lines built the
// way an event-loop data plane would be (one goroutine locked to its thread, raw epoll, edge
// triggered, sessions as buffers and queues instead of goroutines, a short read trusted, every
// backend and client written once per loop turn). It answers one question of issue #6: how much
// CPU per unpipelined request such a data plane saves against asterd's goroutine-per-client
// design, on the same machine and backends (docs/benchmarks.md has the figures).
//
// It routes every command by its first argument after the name on the same ketama ring as
// asterd and twemproxy (fnv1a_64, nodes named r1..rN in order), which is right for GET and SET
// and wrong for multi-key commands; it has no metrics, no errors beyond closing, and a full
// socket blocks the whole loop. Do not put it in front of anything.
//
//	evproto -listen 127.0.0.1:7720 -servers 127.0.0.1:7701,127.0.0.1:7702,...
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

type slot struct {
	ready bool
	reply []byte
}

type client struct {
	fd     int
	in     []byte
	out    []byte
	slots  []*slot // pending, in order
	free   []*slot
	dirty  bool
	closed bool
}

type waiter struct {
	c *client
	s *slot
}

type backend struct {
	fd    int
	in    []byte
	out   []byte
	q     []waiter
	head  int
	dirty bool
}

var (
	clients  = map[int]*client{}
	backends []*backend
	byFD     = map[int]*backend{}
	ring     *route.Ring
	dirtyC   []*client
	dirtyB   []*backend
)

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// writeAll writes p, waiting in poll(2) while the socket is full (which stalls the loop: a
// prototype's shortcut; at the benchmark's loads it does not happen).
func writeAll(fd int, p []byte) {
	for len(p) > 0 {
		n, e := rawWrite(fd, p)
		if e == syscall.EAGAIN {
			pfd := struct {
				fd             int32
				events, revent int16
			}{fd: int32(fd), events: 0x4} // POLLOUT
			syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, ^uintptr(0))
			continue
		}
		if e != 0 {
			return
		}
		p = p[n:]
	}
}

func bulk(f []byte) []byte {
	i := 1
	for f[i] != '\r' {
		i++
	}
	return f[i+2 : len(f)-2]
}

var elems [][]byte

func onClient(c *client) {
	for {
		if len(c.in) == cap(c.in) {
			nb := make([]byte, len(c.in), 2*cap(c.in))
			copy(nb, c.in)
			c.in = nb
		}
		n, e := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
		if e == syscall.EAGAIN {
			break
		}
		if e != 0 || n == 0 {
			closeClient(c)
			return
		}
		short := n < cap(c.in)-len(c.in)
		c.in = c.in[:len(c.in)+n]
		parse(c)
		if short {
			break // trust the short read: epoll tells when more comes
		}
	}
}

func parse(c *client) {
	p := 0
	for p < len(c.in) {
		m, err := resp.ScanReply(c.in[p:])
		if err != nil {
			closeClient(c)
			return
		}
		if m == 0 {
			break
		}
		frame := c.in[p : p+m]
		p += m
		var s *slot
		if k := len(c.free); k > 0 {
			s, c.free = c.free[k-1], c.free[:k-1]
		} else {
			s = &slot{}
		}
		s.ready, s.reply = false, s.reply[:0]
		c.slots = append(c.slots, s)
		elems, _ = resp.ArrayElems(frame, elems[:0])
		if len(elems) < 2 { // PING (and any other command without a key) is answered here
			s.reply = append(s.reply, "+PONG\r\n"...)
			s.ready = true
			markClient(c)
			continue
		}
		b := backends[ring.Pick(bulk(elems[1]))]
		b.out = append(b.out, frame...)
		b.q = append(b.q, waiter{c, s})
		if !b.dirty {
			b.dirty = true
			dirtyB = append(dirtyB, b)
		}
	}
	c.in = c.in[:copy(c.in, c.in[p:])]
}

func markClient(c *client) {
	if !c.dirty {
		c.dirty = true
		dirtyC = append(dirtyC, c)
	}
}

func onBackend(b *backend) {
	for {
		if len(b.in) == cap(b.in) {
			nb := make([]byte, len(b.in), 2*cap(b.in))
			copy(nb, b.in)
			b.in = nb
		}
		n, e := rawRead(b.fd, b.in[len(b.in):cap(b.in)])
		if e == syscall.EAGAIN {
			break
		}
		if e != 0 || n == 0 {
			fmt.Fprintln(os.Stderr, "backend closed")
			os.Exit(1)
		}
		short := n < cap(b.in)-len(b.in)
		b.in = b.in[:len(b.in)+n]
		p := 0
		for p < len(b.in) {
			m, err := resp.ScanReply(b.in[p:])
			if err != nil || m == 0 {
				break
			}
			w := b.q[b.head]
			b.q[b.head] = waiter{}
			b.head++
			if b.head == len(b.q) {
				b.q, b.head = b.q[:0], 0
			}
			if !w.c.closed {
				w.s.reply = append(w.s.reply, b.in[p:p+m]...)
				w.s.ready = true
				markClient(w.c)
			}
			p += m
		}
		b.in = b.in[:copy(b.in, b.in[p:])]
		if short {
			break
		}
	}
}

func flushClient(c *client) {
	c.dirty = false
	if c.closed {
		return
	}
	i := 0
	for ; i < len(c.slots) && c.slots[i].ready; i++ {
		c.out = append(c.out, c.slots[i].reply...)
		c.free = append(c.free, c.slots[i])
	}
	c.slots = c.slots[:copy(c.slots, c.slots[i:])]
	if len(c.out) > 0 {
		writeAll(c.fd, c.out)
		c.out = c.out[:0]
	}
}

func closeClient(c *client) {
	if c.closed {
		return
	}
	c.closed = true
	delete(clients, c.fd)
	syscall.Close(c.fd)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7720", "")
	servers := flag.String("servers", "127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703,127.0.0.1:7704", "")
	flag.Parse()
	runtime.LockOSThread()
	hash, _ := route.Hash("fnv1a_64")
	var nodes []route.Node
	for i, a := range strings.Split(*servers, ",") {
		nodes = append(nodes, route.Node{Addr: a, Name: fmt.Sprintf("r%d", i+1), Weight: 1})
	}
	var err error
	if ring, err = route.NewRing(nodes, hash, ""); err != nil {
		panic(err)
	}
	ep, err := syscall.EpollCreate1(0)
	if err != nil {
		panic(err)
	}
	for _, n := range nodes {
		nc, err := net.Dial("tcp", n.Addr)
		if err != nil {
			panic(err)
		}
		f, _ := nc.(*net.TCPConn).File() // dup'd, blocking: make it non-blocking
		fd := int(f.Fd())
		syscall.SetNonblock(fd, true)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		b := &backend{fd: fd, in: make([]byte, 0, 16<<10)}
		backends = append(backends, b)
		byFD[fd] = b
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | (1 << 31), Fd: int32(fd)})
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		panic(err)
	}
	lf, _ := ln.(*net.TCPListener).File()
	lfd := int(lf.Fd())
	syscall.SetNonblock(lfd, true)
	syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)})
	events := make([]syscall.EpollEvent, 256)
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e == 0 && n == 0 {
			// nothing ready: block in the kernel (a real syscall, so the runtime can run others)
			var e2 error
			var m int
			m, e2 = syscall.EpollWait(ep, events, -1)
			if e2 != nil {
				continue
			}
			n = uintptr(m)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					nfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
					clients[nfd] = &client{fd: nfd, in: make([]byte, 0, 4096)}
					syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, nfd, &syscall.EpollEvent{Events: syscall.EPOLLIN | (1 << 31), Fd: int32(nfd)})
				}
				continue
			}
			if b := byFD[fd]; b != nil {
				onBackend(b)
				continue
			}
			if c := clients[fd]; c != nil {
				onClient(c)
			}
		}
		for _, b := range dirtyB {
			b.dirty = false
			writeAll(b.fd, b.out)
			b.out = b.out[:0]
		}
		dirtyB = dirtyB[:0]
		for _, c := range dirtyC {
			flushClient(c)
		}
		dirtyC = dirtyC[:0]
	}
}
