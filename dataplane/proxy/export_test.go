package proxy

// SetPubSubOutputLimit lowers the unread-output bound of subscribed clients for a test; the
// returned func restores it. Call it before the cluster serves and restore after it closed.
func SetPubSubOutputLimit(n int) (restore func()) {
	old := pubsubOutputLimit
	pubsubOutputLimit = n
	return func() { pubsubOutputLimit = old }
}
