package proxy

// ClientLimit is how many clients the cluster named takes now (its share of the open-file
// limit, or max_connections); -1 for an unknown cluster.
func ClientLimit(s *Server, cluster string) int {
	c := s.cluster(cluster)
	if c == nil {
		return -1
	}
	return c.clientLimit()
}

// FDShare is the cluster's share of the open-file limit (0: none); -1 for an unknown cluster.
func FDShare(s *Server, cluster string) int {
	c := s.cluster(cluster)
	if c == nil {
		return -1
	}
	return int(c.fdShare.Load())
}

// FDHeld is the descriptors the cluster's clients hold (connections and their own backend
// connections) and the backend connections alone; -1s for an unknown cluster.
func FDHeld(s *Server, cluster string) (held, backend int) {
	c := s.cluster(cluster)
	if c == nil {
		return -1, -1
	}
	return int(c.held.Load()), int(c.dedHeld.Load())
}

// HeldFDs is what c counts in its descriptor share: client connections plus the backend
// connections held for single clients, and those backend connections alone.
func HeldFDs(c *Cluster) (held, backend int64) { return c.held.Load(), c.dedHeld.Load() }

// SetFDShare sets c's share of the open-file limit, as the Server's budget would.
func SetFDShare(c *Cluster, n int) { c.fdShare.Store(int64(n)) }
