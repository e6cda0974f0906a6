package proxy

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

// LoopSessions is the number of client sessions c's event loops serve now (loop.go).
func LoopSessions(c *Cluster) int {
	c.mu.Lock()
	loops := c.loops
	c.mu.Unlock()
	n := 0
	for _, l := range loops {
		l.mu.Lock()
		n += len(l.byID)
		l.mu.Unlock()
	}
	return n
}
