package rawio

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/rawio/rawiotest"
)

// TestAcceptGivesASockOutOfEverySet: an Acceptor's connection is a Sock in no epoll set
// (nothing waited on it), on one descriptor, set up as net.Listener's Accept sets a TCP
// connection (TCP_NODELAY, keep-alive with Go's defaults, its timer running), with the
// addresses the client sees reversed; it reads and writes. So whether the options come from
// the listener (copied) or are set on each connection, for a listener bound to one address or
// to all. With none waiting TryAccept returns none; on a closed listener, net.ErrClosed.
func TestAcceptGivesASockOutOfEverySet(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		for _, perConn := range []bool{false, true} {
			name := addr + map[bool]string{false: ", options copied", true: ", options per connection"}[perConn]
			t.Run(name, func(t *testing.T) { testAccept(t, addr, perConn) })
		}
	}
}

func testAccept(t *testing.T, addr string, perConn bool) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := NewAcceptor(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	if perConn {
		a.copied = -1 // as on a kernel that does not copy them
	}
	port := ln.Addr().(*net.TCPAddr).Port
	for i := range 3 { // the first is checked for the options, the others follow from it
		client, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var s *Sock
		for range 500 { // the client's connection may take a moment to be waiting
			if s, err = a.TryAccept(); s != nil || err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if s == nil || err != nil {
			t.Fatalf("TryAccept with a client waiting: %v, %v", s, err)
		}
		defer s.Close()
		if got := a.copied; got != map[bool]int8{false: 1, true: -1}[perConn] {
			t.Errorf("connection %d: copied = %d", i, got)
		}
		checkAccepted(t, client, s)
	}
	if s, err := a.TryAccept(); s != nil || err != nil {
		t.Fatalf("TryAccept with no client waiting: %v, %v; want nil, nil", s, err)
	}
	ln.Close()
	if s, err := a.TryAccept(); s != nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("TryAccept on a closed listener: %v, %v; want net.ErrClosed", s, err)
	}
}

// checkAccepted checks s, client's connection as accepted (see TestAcceptGivesASockOutOfEverySet).
func checkAccepted(t *testing.T, client net.Conn, s *Sock) {
	t.Helper()
	if got, want := s.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want the client's local address %s", got, want)
	}
	if got, want := s.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want the client's remote address %s", got, want)
	}
	ino := inode(t, s)
	if n := rawiotest.EpollSets(t, ino); n != 0 {
		t.Errorf("an accepted Sock is in %d epoll sets, want 0", n)
	}
	if n := len(rawiotest.Descriptors(t, ino)); n != 1 {
		t.Errorf("an accepted Sock has %d descriptors, want 1", n)
	}
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
	} {
		var v int
		var gerr error
		if err := ctl(s, func(fd int) { v, gerr = syscall.GetsockoptInt(fd, o.level, o.opt) }); err != nil || gerr != nil {
			t.Fatal(o.name, err, gerr)
		}
		if v != o.want {
			t.Errorf("%s = %d, want %d (as net.Listener's Accept sets it)", o.name, v, o.want)
		}
	}
	// An idle connection with keep-alive on has its keep-alive timer running (2): set on the
	// listener, the option must have armed it on the copy too.
	if tr := rawiotest.TCPTimer(t, s.LocalAddr(), s.RemoteAddr()); tr != 2 {
		t.Errorf("timer %d on the idle accepted socket, want 2 (keep-alive)", tr)
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
}
