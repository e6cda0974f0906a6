package backend

// SetMaxAbandoned changes the bound on owed replies for a test; the returned func restores it.
func SetMaxAbandoned(n int) (restore func()) {
	old := maxAbandoned
	maxAbandoned = n
	return func() { maxAbandoned = old }
}

// Holds is how many flushes of c held its frames back for big replies (holdLocked).
func (c *Conn) Holds() uint64 { return c.holds.Load() }

// HoldInFlight is the requests in flight from which a connection with big replies holds new ones.
const HoldInFlight = holdInFlight

// WriteEarly is how many queued bytes a connection writes before its senders' flush.
const WriteEarly = writeEarly

// SetMaxPinned changes the bound on PinnedBytes past which replies are copied, not lent; the
// returned func restores it.
func SetMaxPinned(n int64) (restore func()) {
	old := maxPinned
	maxPinned = n
	return func() { maxPinned = old }
}

// LendMin is the smallest reply that SendLending's requests borrow.
const LendMin = lendMin

// MaxKeptBuf is the biggest read buffer a connection keeps (and the pool holds).
const MaxKeptBuf = maxKeptBuf
