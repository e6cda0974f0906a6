package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

const (
	epollET  = 1 << 31 // syscall.EPOLLET is negative, for a uint32 field
	wakeID   = 0       // the eventfd's id; client ids start at 1
	maxPolls = 256     // events taken per epoll_wait; more are taken on the next turn
)

// poller is a loop's epoll set: client sockets, edge-triggered and tagged with their session's
// id, plus an eventfd to wake the loop. The set's own descriptor is waited on through Go's
// netpoller, so a loop with nothing to do parks like any goroutine and holds no thread.
type poller struct {
	ep   *os.File
	rc   syscall.RawConn
	epfd int
	efd  int
	// mu keeps add and del off epfd once close has released it (its number may be reused):
	// backend connections are unwatched when their pools close, after the loops stopped.
	mu     sync.RWMutex
	closed bool

	raw    []syscall.EpollEvent
	evs    []event
	n      int
	err    error
	waitFn func(fd uintptr) bool
}

type event struct {
	id  uint64
	hup bool // the peer hung up (or the socket failed): read on to the end
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Close(epfd)
		return nil, fmt.Errorf("eventfd2: %w", e)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(efd), &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(int(efd))
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil { // so that os.NewFile polls it
		syscall.Close(epfd)
		syscall.Close(int(efd))
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		syscall.Close(int(efd))
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	p := &poller{ep: f, rc: rc, epfd: epfd, efd: int(efd), raw: make([]syscall.EpollEvent, maxPolls)}
	p.waitFn = p.waitFD
	return p, nil
}

// add puts a client socket into the set.
func (p *poller) add(c *rawio.Conn, id uint64) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errors.New("event loop stopped")
	}
	var cerr error
	err := c.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET,
			Fd:     int32(uint32(id)), Pad: int32(uint32(id >> 32)),
		}
		cerr = epollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && cerr != nil {
		err = fmt.Errorf("epoll_ctl add: %w", cerr)
	}
	return err
}

// del takes a client socket out of the set. A closed socket is out already: the kernel drops
// it when its last descriptor closes, and Control keeps the number from being reused meanwhile.
func (p *poller) del(c *rawio.Conn) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	_ = c.Control(func(fd uintptr) {
		_ = epollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// epollCtl is syscall.EpollCtl as a raw system call: it never waits, and Syscall's bookkeeping
// for calls that may block wakes the runtime's monitor thread after an idle spell, which then
// polls every 20 µs for a millisecond (a client that connects for one command paid ~5% of its
// CPU for that; rawio's accept4 says more).
func epollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// wait returns the next events, parking until there are some; an error once closed.
func (p *poller) wait() ([]event, error) {
	p.n, p.err = 0, nil
	if err := p.rc.Read(p.waitFn); err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	p.evs = p.evs[:0]
	for _, ev := range p.raw[:p.n] {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if id == wakeID {
			var b [8]byte
			_, _, _ = syscall.RawSyscall(syscall.SYS_READ, uintptr(p.efd), uintptr(unsafe.Pointer(&b[0])), 8)
			continue
		}
		hup := ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
		p.evs = append(p.evs, event{id: id, hup: hup})
	}
	return p.evs, nil
}

// full reports whether the last wait took as many events as it had room for: more may be
// ready, queued behind them in the kernel's list for the next turns.
func (p *poller) full() bool { return p.n == len(p.raw) }

// waitFD takes what is ready without waiting; false has the netpoller wait for the set.
func (p *poller) waitFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&p.raw[0])), uintptr(len(p.raw)), 0, 0, 0)
		switch e {
		case 0:
			p.n = int(n)
			return n > 0
		case syscall.EINTR:
			continue
		default:
			p.err = fmt.Errorf("epoll_pwait: %w", e)
			return true
		}
	}
}

// wake makes the set ready, so that a parked loop takes its next turn.
func (p *poller) wake() {
	one := uint64(1)
	_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.efd), uintptr(unsafe.Pointer(&one)), 8)
}

// close ends wait, which returns an error from then on.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ep.Close()
}

// free releases the eventfd, once nothing waits or wakes any more.
func (p *poller) free() { _ = syscall.Close(p.efd) }
