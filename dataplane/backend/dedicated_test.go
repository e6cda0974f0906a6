package backend

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDed is a Dedicated over a real loopback connection, counting its closes.
type fakeDed struct {
	addr     string
	nc       net.Conn
	peer     net.Conn
	buffered int
	closes   atomic.Int32
}

func (d *fakeDed) Node() string   { return d.addr }
func (d *fakeDed) Buffered() int  { return d.buffered }
func (d *fakeDed) Conn() net.Conn { return d.nc }
func (d *fakeDed) Close()         { d.closes.Add(1); _ = d.nc.Close() }

func newFakeDed(t *testing.T, addr string) *fakeDed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return &fakeDed{addr: addr, nc: nc, peer: peer}
}

// Take hands back the most recently put connection of the node asked for, and skips (and
// closes) one that received anything while idle; Put closes one holding unread bytes.
func TestDedicatedPoolTakeAndPut(t *testing.T) {
	var p DedicatedPool[*fakeDed]
	defer p.Close()
	a1, a2, b := newFakeDed(t, "a"), newFakeDed(t, "a"), newFakeDed(t, "b")
	p.Put(a1)
	p.Put(a2)
	p.Put(b)
	if d, ok := p.Take("a"); !ok || d != a2 {
		t.Fatalf("Take(a) = %p %v, want the last put (%p)", d, ok, a2)
	}
	a1.peer.Close() // the node hung up while a1 was idle
	deadline := time.Now().Add(10 * time.Second)
	for quiet(a1.nc) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d, ok := p.Take("a"); ok {
		t.Fatalf("Take(a) = %p, want none: the only idle one was hung up", d)
	}
	if a1.closes.Load() == 0 {
		t.Fatal("a hung-up idle connection was not closed")
	}
	dirty := newFakeDed(t, "b")
	dirty.buffered = 3
	p.Put(dirty)
	if dirty.closes.Load() != 1 {
		t.Fatal("a connection holding unread bytes was kept")
	}
	if d, ok := p.Take("b"); !ok || d != b {
		t.Fatalf("Take(b) = %p %v, want %p", d, ok, b)
	}
}

// MaxIdle bounds each node's idle list; Retain, EvictOne and Close close what they drop.
func TestDedicatedPoolBounds(t *testing.T) {
	p := DedicatedPool[*fakeDed]{MaxIdle: 2}
	var ds []*fakeDed
	for range 3 {
		d := newFakeDed(t, "a")
		ds = append(ds, d)
		p.Put(d)
	}
	if ds[2].closes.Load() != 1 {
		t.Fatal("a connection beyond MaxIdle was kept")
	}
	b := newFakeDed(t, "b")
	p.Put(b)
	p.Retain(func(d *fakeDed) bool { return d.addr == "a" })
	if b.closes.Load() != 1 {
		t.Fatal("Retain kept a connection to a node it was told to drop")
	}
	if !p.EvictOne() || ds[0].closes.Load() != 1 {
		t.Fatal("EvictOne did not close the connection idle the longest")
	}
	p.Close()
	if ds[1].closes.Load() != 1 {
		t.Fatal("Close left an idle connection open")
	}
	late := newFakeDed(t, "a")
	p.Put(late)
	if late.closes.Load() != 1 {
		t.Fatal("a closed pool kept a connection put back")
	}
	if p.EvictOne() {
		t.Fatal("EvictOne found an idle connection in a closed pool")
	}
}

// Connections idle for IdleFor are closed by the pool's sweep.
func TestDedicatedPoolExpires(t *testing.T) {
	p := DedicatedPool[*fakeDed]{IdleFor: 50 * time.Millisecond}
	defer p.Close()
	d := newFakeDed(t, "a")
	p.Put(d)
	deadline := time.Now().Add(10 * time.Second)
	for d.closes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle connection outlived IdleFor")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := p.Take("a"); ok {
		t.Fatal("Take returned an expired connection")
	}
}

// A connection in use while Retain dropped its node (a new table without it) is closed when
// it comes back, not kept idle for a node nothing routes to; a node still named is kept.
// After Retain(nil) (new backend settings) no connection that was out comes back; after the
// next Retain, those it keeps do.
func TestDedicatedPoolPutAfterRetainDropsNode(t *testing.T) {
	var p DedicatedPool[*fakeDed]
	defer p.Close()
	out, kept := newFakeDed(t, "gone"), newFakeDed(t, "stays")
	p.Retain(func(d *fakeDed) bool { return d.addr == "stays" })
	p.Put(out)
	if out.closes.Load() != 1 {
		t.Fatal("a connection to a node Retain dropped was kept when put back")
	}
	if d, ok := p.Take("gone"); ok {
		t.Fatalf("Take(gone) = %p: the dropped node's connection is idle in the pool", d)
	}
	p.Put(kept)
	if d, ok := p.Take("stays"); !ok || d != kept {
		t.Fatalf("Take(stays) = %p %v, want %p", d, ok, kept)
	}
	stale := newFakeDed(t, "stays")
	p.Retain(nil) // new backend settings: every idle one goes, and none out comes back
	p.Put(stale)
	if stale.closes.Load() != 1 {
		t.Fatal("a connection dialled before Retain(nil) was kept when put back")
	}
	fresh := newFakeDed(t, "gone")
	fresh.buffered = 0
	p.Retain(func(d *fakeDed) bool { return d == fresh }) // the new table, with its own pools
	p.Put(fresh)
	if d, ok := p.Take("gone"); !ok || d != fresh {
		t.Fatalf("after the next Retain, Take(gone) = %p %v, want %p", d, ok, fresh)
	}
}

// Retain keeps, per node, the idle connections keep reports true for and closes the others
// (a node's list can hold connections dialled with old and new settings).
func TestDedicatedPoolRetainPerConnection(t *testing.T) {
	var p DedicatedPool[*fakeDed]
	defer p.Close()
	old, cur := newFakeDed(t, "a"), newFakeDed(t, "a")
	p.Put(old)
	p.Put(cur)
	p.Retain(func(d *fakeDed) bool { return d == cur })
	if old.closes.Load() != 1 || cur.closes.Load() != 0 {
		t.Fatalf("closes: old %d, current %d; want 1, 0", old.closes.Load(), cur.closes.Load())
	}
	if d, ok := p.Take("a"); !ok || d != cur {
		t.Fatalf("Take(a) = %p %v, want %p", d, ok, cur)
	}
	if d, ok := p.Take("a"); ok {
		t.Fatalf("Take(a) again = %p, want none", d)
	}
}
