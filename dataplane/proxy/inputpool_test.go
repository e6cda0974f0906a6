package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestClientsShareNoInput: a client served from an event loop gives its read buffer back
// between batches and takes one, maybe another client's old one, with its next input
// (resp.Reader.Release). So every byte of a command must stay its own client's: many clients
// at once, each with commands cut at every point and some cut across a batch (a SET answered
// while the GET after it has half arrived), with values up to past the buffer's size, each get
// exactly their own replies. An idle client holds no input buffer: CLIENT LIST shows it with
// qbuf=0 qbuf-free=0, as Redis shows its idle clients.
func TestClientsShareNoInput(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	const clients, rounds = 12, 120
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(nc)
			for n := range rounds {
				key := fmt.Sprintf("share:%d:%d", c, n)
				val := fmt.Sprintf("client %d round %d %s", c, n, strings.Repeat("x", (n*53)%(resp.PooledSize+600)))
				frames := "*3\r\n$3\r\nSET\r\n$" + fmt.Sprint(len(key)) + "\r\n" + key + "\r\n$" + fmt.Sprint(len(val)) + "\r\n" + val + "\r\n" +
					"*2\r\n$3\r\nGET\r\n$" + fmt.Sprint(len(key)) + "\r\n" + key + "\r\n"
				cut := 1 + (n*7919+c*104729)%(len(frames)-1)
				if _, err := nc.Write([]byte(frames[:cut])); err != nil {
					t.Error(err)
					return
				}
				if n%4 == 0 {
					time.Sleep(time.Millisecond) // the first part is served alone
				}
				if _, err := nc.Write([]byte(frames[cut:])); err != nil {
					t.Error(err)
					return
				}
				want := "+OK\r\n$" + fmt.Sprint(len(val)) + "\r\n" + val + "\r\n"
				got := make([]byte, len(want))
				if _, err := io.ReadFull(br, got); err != nil {
					t.Errorf("client %d round %d: %v", c, n, err)
					return
				}
				if string(got) != want {
					t.Errorf("client %d round %d (cut at %d): got %.80q, want %.80q", c, n, cut, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()

	p := redistest.DialFrames(t, e.addr)
	c := redistest.DialFrames(t, e.addr)
	id := idOf(t, c)
	c.Do("SET", "k", strings.Repeat("v", 1000))
	c.Do("GET", "k")
	if _, v := clientLine(lineOf(bulkText(t, p.Do("CLIENT", "LIST")), id)); v["qbuf"] != "0" || v["qbuf-free"] != "0" {
		t.Errorf("idle client: qbuf=%s qbuf-free=%s, want 0 and 0 (no input buffer held)", v["qbuf"], v["qbuf-free"])
	}
}

// TestIdleClientsHoldNoInputBuffer: clients that sent commands and idle, still connected,
// hold no read buffer (resp.PooledSize each until the buffers were pooled): under 6 KiB
// of heap each, proxy and client side together.
func TestIdleClientsHoldNoInputBuffer(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1})
	const conns = 200
	before := heapAlloc()
	var ncs []net.Conn
	defer func() {
		for _, nc := range ncs {
			nc.Close()
		}
	}()
	set := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + strings.Repeat("v", 100) + "\r\n")
	for range conns {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		ncs = append(ncs, nc)
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := nc.Write(set); err != nil {
			t.Fatal(err)
		}
		var ok [5]byte
		if _, err := io.ReadFull(nc, ok[:]); err != nil || string(ok[:]) != "+OK\r\n" {
			t.Fatalf("%q, %v", ok, err)
		}
	}
	var grew int64
	waitFor(t, 10*time.Second, func() bool {
		grew = int64(heapAlloc()) - int64(before)
		return grew < conns*6<<10
	})
	t.Logf("%d bytes per idle client", grew/conns)
}
