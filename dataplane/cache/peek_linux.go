//go:build linux

package cache

import (
	"net"
	"syscall"
	"unsafe"

	"github.com/aster-proxy/aster/dataplane/rawio"
)

// linkFD is the descriptor of a link's socket, for pending (any byte on the wire is news,
// encrypted or not); -1 when it has none.
func linkFD(nc net.Conn) int { return rawio.FD(nc) }

// pending reports whether socket fd has something to read (or was closed by its peer, or
// fails): a peek that neither blocks nor consumes. buf is scratch for the one byte peeked.
func pending(fd int, buf *[1]byte) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}
