package proxy

import (
	"fmt"
	"net"

	"github.com/aster-proxy/aster/dataplane/backend"
)

// dialNode opens a connection to node of the session's snapshot that belongs to this session
// alone (blocking commands, transactions, subscriptions): same address, TLS, AUTH and
// READONLY as the node's shared connections, but RESP2. The caller owns and closes it.
func (s *session) dialNode(node int) (net.Conn, error) {
	if node < 0 || node >= len(s.snap.pools) {
		return nil, fmt.Errorf("cluster %s: no node %d in the routing table", s.c.opts.Name, node)
	}
	return s.dialDedicated(s.snap.pools[node].opts)
}

// dialDedicated is dialNode with the options of a node's pool, which the table may not name
// yet (a redirect's target).
func (s *session) dialDedicated(opts backend.Options) (net.Conn, error) {
	opts.Latency, opts.OnFailure = nil, nil
	// Always RESP2, whatever backend_resp_version says: subscriptions then arrive as arrays in
	// every mode, and replies reach RESP3 clients through the same conversion as the shared
	// connections' RESP2 replies.
	opts.RESP3 = false
	nc, err := backend.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: dedicated connection: %w", s.c.opts.Name, err)
	}
	return nc, nil
}
