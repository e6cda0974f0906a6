package proxy

import (
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
)

// MustCluster is NewCluster for a test: a spec it cannot serve fails the test.
func MustCluster(t testing.TB, spec route.ClusterSpec, env Env) *Cluster {
	t.Helper()
	c, err := NewCluster(spec, env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SetPanicHook makes sessions call f with every unknown command they handle (nil: none), so
// that a test can make one panic. Set it before the cluster serves, reset it after it closed.
func SetPanicHook(f func(args [][]byte)) { testPanicHook = f }

// SetPubSubOutputLimit lowers the unread-output bound of subscribed clients for a test; the
// returned func restores it. Call it before the cluster serves and restore after it closed.
func SetPubSubOutputLimit(n int) (restore func()) {
	old := pubsubOutputLimit
	pubsubOutputLimit = n
	return func() { pubsubOutputLimit = old }
}

// SetCacheLinkPing changes how often the client cache's tracking links ping their node, for
// a test; the returned func restores it. Call it before the cluster serves.
func SetCacheLinkPing(d time.Duration) (restore func()) {
	old := cacheLinkTimings
	cacheLinkTimings.Ping = d
	return func() { cacheLinkTimings = old }
}

// SetDedIdle changes how long idle dedicated connections stay pooled and how many per node,
// for a test; the returned func restores both. Call it before the cluster serves and restore
// after it closed.
func SetDedIdle(idleFor time.Duration, max int) (restore func()) {
	oldFor, oldMax := dedIdleFor, dedIdleMax
	dedIdleFor, dedIdleMax = idleFor, max
	return func() { dedIdleFor, dedIdleMax = oldFor, oldMax }
}

// HandOvers is how many times c's event loops handed a session to a goroutine (loop.go).
func HandOvers(c *Cluster) uint64 { return c.handOver.Load() }

// LoopCounts is how many client sessions and backend connections c's event loops serve now
// (loop.go).
func LoopCounts(c *Cluster) (sessions, backends int) {
	c.mu.Lock()
	loops := c.loops
	c.mu.Unlock()
	for _, l := range loops {
		ls, lb := l.Counts()
		sessions += ls
		backends += lb
	}
	return sessions, backends
}

// SetOverLimitHook has f told the reply bytes a session held when it disconnected its client
// at the output limit (overLimit); the returned func restores none. Set it before the cluster
// serves and restore after it closed.
func SetOverLimitHook(f func(held int)) (restore func()) {
	testOverLimit = f
	return func() { testOverLimit = nil }
}

// SetEmptyReadHook has f told of each read of a loop session's client that found nothing;
// the returned func restores none. Set it before the cluster serves and restore after it
// closed.
func SetEmptyReadHook(f func()) (restore func()) {
	testEmptyRead = f
	return func() { testEmptyRead = nil }
}

// ChangeBackend installs new backend settings as a reload of spec (the spec served, its
// live settings included) to backend would.
func (c *Cluster) ChangeBackend(t testing.TB, spec route.ClusterSpec, backend route.BackendSettings) {
	t.Helper()
	next := spec
	next.Backend = backend
	p, err := prepare(next, false, true)
	if err != nil {
		t.Fatal(err)
	}
	c.change(spec, next, p)
}
