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
