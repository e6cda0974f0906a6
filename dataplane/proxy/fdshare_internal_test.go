package proxy

import (
	"sync"
	"testing"

	"github.com/aster-proxy/aster/dataplane/route"
)

// However many of a connection's closers release its hold, and concurrently, the cluster's
// count goes down once.
func TestFDHoldReleasesOnce(t *testing.T) {
	c := MustCluster(t, route.ClusterSpec{Name: "x"}, Env{})
	h, err := c.holdFD()
	if err != nil {
		t.Fatal(err)
	}
	if c.held.Load() != 1 || c.dedHeld.Load() != 1 {
		t.Fatalf("held %d, backend %d after one hold; want 1 and 1", c.held.Load(), c.dedHeld.Load())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.release()
		}()
	}
	wg.Wait()
	var none *fdHold
	none.release() // a connection without a hold
	if c.held.Load() != 0 || c.dedHeld.Load() != 0 {
		t.Fatalf("held %d, backend %d after releases; want 0 and 0", c.held.Load(), c.dedHeld.Load())
	}
	// A full share refuses, with nothing counted.
	c.fdShare.Store(1)
	c.held.Store(1)
	if _, err := c.holdFD(); err == nil || c.held.Load() != 1 || c.dedHeld.Load() != 0 {
		t.Fatalf("hold past the share: %v, held %d, backend %d", err, c.held.Load(), c.dedHeld.Load())
	}
}
