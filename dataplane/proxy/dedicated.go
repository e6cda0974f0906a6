package proxy

import (
	"fmt"
	"net"

	"github.com/aster-proxy/aster/dataplane/backend"
)

// dialNode opens a connection to node of the session's routes that belongs to this session
// alone (blocking commands, transactions, subscriptions): same address, TLS, AUTH and
// READONLY as the node's shared connections, but RESP2. The caller owns it and, when it
// closes it, releases its hold (the descriptor counted in the cluster's share).
func (s *session) dialNode(node int) (net.Conn, *fdHold, error) {
	if node < 0 || node >= len(s.routes.pools) {
		return nil, nil, fmt.Errorf("cluster %s: no node %d in the routing table", s.c.name, node)
	}
	return s.dialDedicated(s.routes.pools[node].opts)
}

// dialDedicated is dialNode with the options of a node's pool, which the table may not name
// yet (a redirect's target). Every connection dialled for one client goes through here and
// is counted in the cluster's share first (holdFD): beyond it, the dial fails with errNoFDs.
func (s *session) dialDedicated(opts backend.Options) (net.Conn, *fdHold, error) {
	hold, err := s.c.holdFD()
	if err != nil {
		return nil, nil, err
	}
	opts.Latency, opts.OnFailure = nil, nil
	// Always RESP2, whatever backend_resp_version says: subscriptions then arrive as arrays in
	// every mode, and replies reach RESP3 clients through the same conversion as the shared
	// connections' RESP2 replies.
	opts.RESP3 = false
	nc, err := backend.Dial(opts)
	if err != nil {
		hold.release()
		return nil, nil, fmt.Errorf("cluster %s: dedicated connection: %w", s.c.name, err)
	}
	return nc, hold, nil
}
