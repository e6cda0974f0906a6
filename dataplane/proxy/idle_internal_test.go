package proxy

import (
	"net"
	"runtime"
	"testing"

	"github.com/aster-proxy/aster/dataplane/netpoll"
	"github.com/aster-proxy/aster/dataplane/route"
)

// TestIdleReadsNothingAfterGivingUp: once idle clears busy, the loop's next turn owns the
// session and may hand it over to a goroutine (handOver sets s.loop to nil) before idle has
// returned; idle must have read what it needs (the loop to kick) before. Under -race the old
// order (s.loop read after the unlock) is a data race, as CI found with SCRIPT KILL's round
// completing a batch while the client's next command, a BLPOP, was already in.
func TestIdleReadsNothingAfterGivingUp(t *testing.T) {
	c := MustCluster(t, route.ClusterSpec{Name: "idle"}, Env{})
	t.Cleanup(c.Close)
	nl, err := netpoll.New(func() {})
	if err != nil {
		t.Skip("no event loops here:", err)
	}
	// Started only at the end: its turns would run the sessions' batches. By then every
	// session is busy (the stand-in turns below keep them), so the kicks' turns pass.
	t.Cleanup(func() { nl.Start(); nl.Stop() })
	for range 20 {
		a, b := net.Pipe()
		s := newSession(c, a)
		s.loop = &loop{Loop: nl, c: c}
		s.busy, s.again = true, true // the loop saw the client's next command meanwhile
		taken := make(chan struct{})
		go func() { // the loop's next turn (as Turn takes it), then a handOver
			for {
				s.lmu.Lock()
				free := !s.busy
				s.busy = true
				s.lmu.Unlock()
				if free {
					break
				}
				runtime.Gosched()
			}
			s.loop = nil
			close(taken)
		}()
		s.idle()
		<-taken
		a.Close()
		b.Close()
	}
}
