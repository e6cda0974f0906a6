package proxy

// resetConn does to the client's connection what RESET does in Redis, for the state the proxy
// keeps per client: the transaction and its watches go (as DISCARD and UNWATCH), the protocol
// is RESP2 again, the client name is cleared, replies are on (CLIENT REPLY ON) and, with a password configured, the client must
// AUTH again. The rest RESET covers (SELECT, READONLY, ASKING, CLIENT TRACKING, MONITOR)
// the proxy keeps no state for: it refuses or ignores those commands. The session's owner only
// (see session): it runs in handle, on a loop or on the session's goroutine.
func (s *session) resetConn() {
	if d := s.tx.watch; d != nil {
		// Closing the connection that holds the watches makes its node forget them, without a
		// round trip in the middle of the batch; only it carries client state (blocking
		// commands and EXEC leave theirs idle), so the others are kept for reuse.
		s.dropDed(d)
	}
	s.tx.reset()
	s.proto3 = false
	s.proto3Pub.Store(false)
	s.name = ""
	s.reply = replyMode{}
	s.setAuthed(len(s.c.access().users) == 0)
	s.username, s.user, s.rightsOf = "", nil, nil
	s.publishIdentity()
}
