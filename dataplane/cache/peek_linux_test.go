//go:build linux

package cache

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestHitPeeksTheLink: while the link's socket holds something unread (an invalidation not
// handled yet) or its end (a killed link whose reader has not noticed yet), hits go to the
// server; once it is read, they are served again.
func TestHitPeeksTheLink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	link, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	c := New(Config{MaxEntries: 10, MaxValueBytes: 64, Shards: 1}, nil)
	n := c.Node("a")
	n.fd.Store(int64(linkFD(link)))
	n.SetUp()
	store(t, c, n, "k", "", bulkOf("v"))
	hit := func() bool { _, ok := lookup(c, n, "k", "", false); return ok }
	if !hit() {
		t.Fatal("no hit with nothing pending on the link")
	}
	if _, err := server.Write([]byte(">2\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the byte to be pending", func() bool { return !n.quiet() })
	if hit() {
		t.Fatal("hit served while the link had an unread message")
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(link, buf); err != nil {
		t.Fatal(err)
	}
	if !hit() {
		t.Fatal("no hit once the link's message was read")
	}
	server.Close()
	deadline := time.Now().Add(5 * time.Second)
	for n.quiet() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if hit() {
		t.Fatal("hit served after the link's peer closed it, before its reader noticed")
	}
}
