package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestNewOnlyForSockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Error("New(net.Pipe) is not nil: pipes have no file descriptor")
	}
	if rw := ReadWriter(a); rw != io.ReadWriter(a) {
		t.Error("ReadWriter(pipe) should be the pipe itself")
	}
	c, _ := pair(t)
	if New(c) == nil {
		t.Error("New(*net.TCPConn) is nil")
	}
}

// A write far larger than the socket buffers must wait for the reader and deliver every byte in
// order (the EAGAIN path), and the peer's close must read as io.EOF.
func TestLargeWriteAndEOF(t *testing.T) {
	c, s := pair(t)
	w, r := New(c), New(s)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	errc := make(chan error, 1)
	go func() {
		n, err := w.Write(msg)
		if err == nil && n != len(msg) {
			err = errors.New("short write")
		}
		c.Close()
		errc <- err
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if werr := <-errc; werr != nil {
		t.Fatalf("Write: %v", werr)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, want the %d written, in order", len(got), len(msg))
	}
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

// Deadlines and Close still work, because waiting goes through the netpoller.
func TestDeadlineAndClose(t *testing.T) {
	c, _ := pair(t)
	r := New(c)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read on closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on closed conn: %v, want net.ErrClosed", err)
	}
}

// A write to a peer that has gone returns an error (EPIPE or ECONNRESET) and does not kill the
// process with SIGPIPE.
func TestWriteToClosedPeer(t *testing.T) {
	c, s := pair(t)
	w := New(c)
	s.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write(make([]byte, 64<<10))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}

func TestNoAllocs(t *testing.T) {
	c, s := pair(t)
	w, r := New(c), New(s)
	buf := make([]byte, 64)
	msg := []byte("+OK\r\n")
	if n := testing.AllocsPerRun(100, func() {
		_, _ = w.Write(msg)
		_, _ = r.Read(buf)
	}); n != 0 {
		t.Errorf("%v allocs per write+read, want 0", n)
	}
}

// Writev writes many buffers in order without joining them: more than one system call takes
// (IOV_MAX), empty ones among them, and more than the socket holds, so that TryWritev stops
// part way through a buffer and Writev finishes from there.
func TestWritevInOrderAcrossFullSocket(t *testing.T) {
	c, s := pair(t)
	w, r := New(c), New(s)
	var bufs [][]byte
	var want []byte
	for i := 0; i < 2500; i++ {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, (i*977)%6000) // 0 to ~6 KB; some empty
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	rest, err := w.TryWritev(bufs)
	if err != nil {
		t.Fatalf("TryWritev: %v", err)
	}
	if len(rest) == 0 {
		t.Fatalf("TryWritev took all %d bytes with nobody reading; want a socket that fills", len(want))
	}
	for _, b := range bufs[:len(bufs)-len(rest)] {
		if b != nil {
			t.Fatal("TryWritev left a written buffer in place; want it cleared")
		}
	}
	errc := make(chan error, 1)
	go func() {
		err := w.Writev(rest)
		c.Close()
		errc <- err
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if werr := <-errc; werr != nil {
		t.Fatalf("Writev: %v", werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written, in order", len(got), len(want))
	}
}

func TestWritevNoAllocs(t *testing.T) {
	c, s := pair(t)
	w, r := New(c), New(s)
	buf := make([]byte, 64)
	a, b := []byte("$3\r\n"), []byte("abc\r\n")
	vec := make([][]byte, 2)
	if n := testing.AllocsPerRun(100, func() {
		vec[0], vec[1] = a, b
		_ = w.Writev(vec)
		_, _ = io.ReadFull(r, buf[:len(a)+len(b)])
	}); n != 0 {
		t.Errorf("%v allocs per writev+read, want 0", n)
	}
}

// An owned Conn's non-waiting calls (on the descriptor directly) read and write as the
// runtime's do: nothing there reads as 0 bytes, a full socket takes part of a write and a
// writev, bytes arrive in order, and Shutdown from another goroutine makes the owner's next
// TryRead see the end of the input and its writes fail, the descriptor still open until the
// owner closes it.
func TestOwnedTryCallsAndShutdown(t *testing.T) {
	c, s := pair(t)
	o, peer := New(c), New(s)
	o.Own()
	if o.fd < 0 {
		t.Fatal("Own left no descriptor")
	}
	buf := make([]byte, 64)
	if n, err := o.TryRead(buf); n != 0 || err != nil {
		t.Fatalf("TryRead with nothing there = %d, %v; want 0, nil", n, err)
	}
	if n, err := o.TryWrite([]byte("ping\r\n")); n != 6 || err != nil {
		t.Fatalf("TryWrite = %d, %v", n, err)
	}
	if got := readN(t, peer, 6); got != "ping\r\n" {
		t.Fatalf("peer read %q", got)
	}
	if _, err := peer.Write([]byte("pong\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var got []byte
	for len(got) < 6 && time.Now().Before(deadline) {
		n, err := o.TryRead(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "pong\r\n" {
		t.Fatalf("owned TryRead got %q", got)
	}

	// A peer that does not read: the socket fills, TryWrite and TryWritev take what fits.
	big := bytes.Repeat([]byte("x"), 1<<20)
	total := 0
	for range 64 {
		n, err := o.TryWrite(big)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < len(big) {
			break
		}
	}
	if total == 0 || total%len(big) == 0 {
		t.Fatalf("TryWrite to a full socket wrote %d bytes: want a short write", total)
	}
	rest, err := o.TryWritev([][]byte{big[:1000], big[:1000]})
	if err != nil || len(rest) == 0 {
		t.Fatalf("TryWritev to a full socket = %d buffers left, %v; want some left", len(rest), err)
	}

	Shutdown(c)
	if n, err := o.TryRead(buf); n != 0 || err != io.EOF {
		t.Fatalf("TryRead after Shutdown = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := o.TryWrite([]byte("x")); err == nil {
		t.Fatal("TryWrite after Shutdown succeeded")
	}
	if fd := FD(c); fd != o.fd {
		t.Fatalf("descriptor after Shutdown %d, want %d still open", fd, o.fd)
	}
}

func readN(t *testing.T, c *Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	got := 0
	for got < n {
		m, err := c.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += m
	}
	return string(buf)
}
