package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/rawio/rawiotest"
)

// sockPair is pair with the accepted side taken over by a Sock.
func sockPair(t *testing.T) (client net.Conn, s *Sock) {
	t.Helper()
	client, server := pair(t)
	ino := inode(t, server)
	s = NewSock(server)
	if s == nil {
		t.Fatal("NewSock(*net.TCPConn) = nil")
	}
	t.Cleanup(func() { s.Close() })
	if got := len(rawiotest.Descriptors(t, ino)); got != 1 {
		t.Fatalf("after NewSock the socket has %d descriptors, want 1 (the accepted one closed)", got)
	}
	return client, s
}

// inode is the socket's inode: what every descriptor of it shows in /proc/self/fd.
func inode(t *testing.T, nc net.Conn) uint64 {
	t.Helper()
	var st syscall.Stat_t
	var err error
	if cerr := ctl(nc, func(fd int) { err = syscall.Fstat(fd, &st) }); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	return st.Ino
}

func ctl(nc net.Conn, f func(fd int)) error {
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) })
}

// The rule: a Sock is in no epoll set until something waits on it, in the runtime's while
// waits may come, and in none again after Unpoll; it has one descriptor throughout, and
// reads and writes work in each state.
func TestSockInTheRuntimesSetOnlyWhileWaiting(t *testing.T) {
	client, s := sockPair(t)
	ino := inode(t, s)
	if n := rawiotest.EpollSets(t, ino); n != 0 {
		t.Fatalf("a new Sock is in %d epoll sets, want 0", n)
	}
	c := New(s)
	c.Own()
	buf := make([]byte, 16)
	if n, err := c.TryRead(buf); n != 0 || err != nil {
		t.Fatalf("TryRead with nothing sent = %d, %v; want 0, nil", n, err)
	}
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := rawiotest.EpollSets(t, ino); n != 0 {
		t.Fatalf("after clearing a deadline it never had, in %d epoll sets, want 0", n)
	}

	for round := range 3 {
		go func() {
			time.Sleep(20 * time.Millisecond)
			client.Write([]byte("ping"))
		}()
		n, err := c.Read(buf) // waits: the runtime takes the socket
		if err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("round %d: blocking Read = %q, %v", round, buf[:n], err)
		}
		if n := rawiotest.EpollSets(t, ino); n != 1 {
			t.Fatalf("round %d: while polled in %d epoll sets, want 1 (the runtime's)", round, n)
		}
		if fds := rawiotest.Descriptors(t, ino); len(fds) != 1 {
			t.Fatalf("round %d: while polled %d descriptors, want 1", round, len(fds))
		}
		if err := c.Unpoll(); err != nil {
			t.Fatal(err)
		}
		if n := rawiotest.EpollSets(t, ino); n != 0 {
			t.Fatalf("round %d: after Unpoll in %d epoll sets, want 0", round, n)
		}
		fds := rawiotest.Descriptors(t, ino)
		if len(fds) != 1 || fds[0] != c.fd {
			t.Fatalf("round %d: after Unpoll descriptors %v, the owned Conn uses %d", round, fds, c.fd)
		}
		// The owned Conn's direct calls follow the new descriptor.
		if n, err := c.TryWrite([]byte("pong")); n != 4 || err != nil {
			t.Fatalf("round %d: TryWrite after Unpoll = %d, %v", round, n, err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(client, got); err != nil || string(got) != "pong" {
			t.Fatalf("round %d: client read %q, %v", round, got, err)
		}
	}
}

// A deadline has the runtime wait with it, as net.Conn's does; the error says timeout.
func TestSockReadDeadline(t *testing.T) {
	_, s := sockPair(t)
	if err := s.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	// A deadline in the past wakes a reader already waiting, from another goroutine.
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := New(s).Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken read = %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline in the past did not wake the waiting read")
	}
}

// Another goroutine's CloseRead ends the owner's waiting read with the end of input; its
// CloseWrite gives the peer the end; neither closes the descriptor.
func TestSockShutdownFromAnotherGoroutine(t *testing.T) {
	client, s := sockPair(t)
	ino := inode(t, s)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.CloseRead(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != io.EOF {
			t.Fatalf("read after CloseRead = %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseRead did not end the waiting read")
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after CloseWrite = %v, want EOF", err)
	}
	if len(rawiotest.Descriptors(t, ino)) != 1 {
		t.Fatal("shutting down closed the descriptor: only the owner closes it")
	}
}

// Close lets the descriptor go, in either state; everything after it says closed.
func TestSockClose(t *testing.T) {
	for _, polled := range []bool{false, true} {
		client, s := sockPair(t)
		ino := inode(t, s)
		if polled {
			s.SetWriteDeadline(time.Now().Add(time.Minute))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("polled %v: Close = %v", polled, err)
		}
		if fds := rawiotest.Descriptors(t, ino); len(fds) != 0 {
			t.Fatalf("polled %v: after Close descriptors %v remain", polled, fds)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("polled %v: peer read after Close = %v, want EOF", polled, err)
		}
		for name, err := range map[string]error{
			"Close":         s.Close(),
			"CloseRead":     s.CloseRead(),
			"Control":       ctl(s, func(int) { t.Error("Control ran on a closed Sock") }),
			"deadline":      s.SetReadDeadline(time.Now().Add(time.Second)),
			"zero deadline": s.SetReadDeadline(time.Time{}),
		} {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("polled %v: %s after Close = %v, want net.ErrClosed", polled, name, err)
			}
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("polled %v: Write after Close = %v, want net.ErrClosed", polled, err)
		}
		if FD(s) != -1 {
			t.Errorf("polled %v: FD after Close = %d, want -1", polled, FD(s))
		}
	}
}

// Only plain sockets are taken over; anything else is left as it is.
func TestNewSockOnlyForSockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewSock(a) != nil {
		t.Error("NewSock(net.Pipe) is not nil")
	}
	client, s := sockPair(t)
	if s.RemoteAddr().String() != client.LocalAddr().String() || s.LocalAddr().String() != client.RemoteAddr().String() {
		t.Errorf("addresses %v/%v, the client's %v/%v", s.LocalAddr(), s.RemoteAddr(), client.LocalAddr(), client.RemoteAddr())
	}
}
