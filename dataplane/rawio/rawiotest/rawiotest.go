// Package rawiotest finds out, from /proc, which of this process's descriptors and epoll sets
// hold a socket: for tests that check which epoll sets watch a client (rawio.Sock, the event
// loops). Linux only; elsewhere its functions skip the test.
package rawiotest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Descriptors lists this process's descriptors of the socket with inode ino.
func Descriptors(t testing.TB, ino uint64) []int {
	t.Helper()
	want := "socket:[" + strconv.FormatUint(ino, 10) + "]"
	var fds []int
	for fd, link := range links(t) {
		if link == want {
			fds = append(fds, fd)
		}
	}
	return fds
}

// EpollSets counts the epoll sets of this process (the Go runtime's and any other) that watch
// a descriptor of the socket with inode ino.
func EpollSets(t testing.TB, ino uint64) int {
	t.Helper()
	mine := map[string]bool{}
	for _, fd := range Descriptors(t, ino) {
		mine[strconv.Itoa(fd)] = true
	}
	n := 0
	for fd, link := range links(t) {
		if link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(info), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" && mine[f[1]] {
				n++
			}
		}
	}
	return n
}

// TCPInode is the inode of this process's IPv4 TCP socket from local to remote, as
// /proc/self/net/tcp lists it (0: none).
func TCPInode(t testing.TB, local, remote net.Addr) uint64 {
	t.Helper()
	f := tcpEntry(t, local, remote)
	if f == nil {
		return 0
	}
	ino, _ := strconv.ParseUint(f[9], 10, 64)
	return ino
}

// TCPTimer is the timer /proc/self/net/tcp (or tcp6) shows running on this process's TCP
// socket from local to remote: 0 none, 1 retransmit, 2 keep-alive, 3 TIME_WAIT, 4 zero window probe;
// -1 when there is no such socket.
func TCPTimer(t testing.TB, local, remote net.Addr) int {
	t.Helper()
	f := tcpEntry(t, local, remote)
	if f == nil {
		return -1
	}
	tr, _, _ := strings.Cut(f[5], ":")
	n, err := strconv.ParseInt(tr, 16, 64)
	if err != nil {
		t.Fatalf("timer field %q of /proc/self/net/tcp", f[5])
	}
	return int(n)
}

// tcpEntry is the fields of /proc/self/net/tcp's line for the socket from local to remote,
// or of /proc/self/net/tcp6's for an IPv6 connection, or an IPv4 connection accepted by a
// dual-stack listener (Go's for "0.0.0.0:port"), whose addresses are IPv4-mapped there.
func tcpEntry(t testing.TB, local, remote net.Addr) []string {
	t.Helper()
	l, r := tcpAddr(t, local), tcpAddr(t, remote)
	if l.IP.To4() != nil {
		if f := procTCP(t, "/proc/self/net/tcp", hexAddr(l.IP.To4(), l.Port), hexAddr(r.IP.To4(), r.Port)); f != nil {
			return f
		}
	}
	// To16 writes an IPv4 address IPv4-mapped, as tcp6 lists it.
	return procTCP(t, "/proc/self/net/tcp6", hexAddr(l.IP.To16(), l.Port), hexAddr(r.IP.To16(), r.Port))
}

func procTCP(t testing.TB, path, local, remote string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skip("no "+path+":", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if f := strings.Fields(sc.Text()); len(f) >= 10 && f[1] == local && f[2] == remote {
			return f
		}
	}
	return nil
}

func tcpAddr(t testing.TB, a net.Addr) *net.TCPAddr {
	t.Helper()
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.To16() == nil {
		t.Fatalf("%v is not a TCP address", a)
	}
	return ta
}

// hexAddr is an address (4 or 16 bytes) and port as /proc/net/tcp and tcp6 write them: the
// address in 32-bit words, each little-endian (host order).
func hexAddr(ip net.IP, port int) string {
	var b strings.Builder
	for w := 0; w < len(ip); w += 4 {
		fmt.Fprintf(&b, "%02X%02X%02X%02X", ip[w+3], ip[w+2], ip[w+1], ip[w])
	}
	fmt.Fprintf(&b, ":%04X", port)
	return b.String()
}

func links(t testing.TB) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	m := make(map[int]string, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			m[fd] = l
		}
	}
	return m
}
