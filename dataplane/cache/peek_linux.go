//go:build linux

package cache

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// linkFD is the descriptor of a link's socket, for pending; -1 when it has none.
func linkFD(nc net.Conn) int {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn() // any byte on the wire is news, encrypted or not
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
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}

// pending reports whether socket fd has something to read (or was closed by its peer, or
// fails): a peek that neither blocks nor consumes. buf is scratch for the one byte peeked.
func pending(fd int, buf *[1]byte) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}
