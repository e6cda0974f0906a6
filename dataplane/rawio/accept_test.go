//go:build linux

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

// TestAcceptGivesASockOutOfEverySet: a Listener's AcceptSock gives a Sock in no epoll set
// (nothing waited on it), on one descriptor, set up as net.Listener's Accept sets a TCP
// connection (TCP_NODELAY, keep-alive with Go's defaults, its timer running), with the
// addresses the client sees reversed; it reads and writes. So whether the options come from
// the listener (copied) or are set on each connection, for a listener bound to one address or
// to all, and for a client that was waiting as for one that comes while AcceptSock waits.
// Close ends a wait with net.ErrClosed, and the port stops listening.
func TestAcceptGivesASockOutOfEverySet(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0", "[::1]:0", "[::]:0"} {
		for _, perConn := range []bool{false, true} {
			name := addr + map[bool]string{false: ", options copied", true: ", options per connection"}[perConn]
			t.Run(name, func(t *testing.T) { testAccept(t, addr, perConn) })
		}
	}
}

func testAccept(t *testing.T, addr string, perConn bool) {
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		if addr[0] == '[' {
			t.Skipf("no IPv6 here: %v", err)
		}
		t.Fatal(err)
	}
	l, err := NewListener(tl.(*net.TCPListener))
	if err != nil {
		tl.Close()
		t.Fatal(err)
	}
	defer l.Close()
	if perConn {
		l.copied = -1 // as on a kernel that does not copy them
	}
	port := l.Addr().(*net.TCPAddr).Port
	host := "127.0.0.1" // to [::], as an IPv4-mapped address
	if addr == "[::1]:0" {
		host = "::1"
	}
	dst := net.JoinHostPort(host, strconv.Itoa(port))
	for i := range 4 { // the first is checked for the options, the others follow from it
		dialed := make(chan net.Conn, 1)
		dial := func() {
			c, err := net.Dial("tcp", dst)
			if err != nil {
				t.Error(err)
				l.Close() // AcceptSock would wait for it forever
			}
			dialed <- c
		}
		waiting := i%2 == 0
		if waiting {
			dial()
		} else {
			time.AfterFunc(50*time.Millisecond, dial) // comes while AcceptSock waits
		}
		s, err := l.AcceptSock()
		if s == nil || err != nil {
			t.Fatalf("AcceptSock (client waiting: %v): %v, %v", waiting, s, err)
		}
		defer s.Close()
		client := <-dialed
		if client == nil {
			t.FailNow()
		}
		defer client.Close()
		if got := l.copied; got != map[bool]int8{false: 1, true: -1}[perConn] {
			t.Errorf("connection %d: copied = %d", i, got)
		}
		checkAccepted(t, client, s)
	}
	done := make(chan error, 1)
	go func() {
		s, err := l.AcceptSock()
		if s != nil {
			s.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("AcceptSock when the listener closes: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AcceptSock still waits after Close")
	}
	if c, err := net.DialTimeout("tcp", dst, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still takes connections after Close", dst)
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

// TestAcceptSockAllocs: taking a client allocates its Sock and its peer's address (a TCPAddr
// and its IP), nothing for the system call: a server taking thousands of clients a second
// pays the garbage collector for each allocation.
func TestAcceptSockAllocs(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(tl.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const runs = 20
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range runs + 1 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	allocs := testing.AllocsPerRun(runs, func() {
		s, err := l.AcceptSock()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
	if allocs > 3 {
		t.Errorf("AcceptSock allocates %v times per client, want 3 (Sock, TCPAddr, IP)", allocs)
	}
}
