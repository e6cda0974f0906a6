package proxy

import (
	"fmt"
	"net"

	"github.com/aster-proxy/aster/dataplane/backend"
)

// dialNode opens a connection to node of the session's snapshot that belongs to this session
// alone (blocking commands, transactions, subscriptions): same address, TLS, AUTH and
// READONLY as the node's shared connections. The caller owns and closes it.
func (s *session) dialNode(node int) (net.Conn, error) {
	if node < 0 || node >= len(s.snap.pools) {
		return nil, fmt.Errorf("cluster %s: no node %d in the routing table", s.c.opts.Name, node)
	}
	opts := s.snap.pools[node].opts
	opts.Latency, opts.OnFailure = nil, nil
	nc, err := backend.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: dedicated connection: %w", s.c.opts.Name, err)
	}
	return nc, nil
}
