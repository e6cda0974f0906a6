package redistest

import (
	"strings"
	"testing"
)

// TrackingClients returns the ids of the server's clients that have key tracking on (the t
// flag of CLIENT LIST): a client cache's tracking links.
func (s *Server) TrackingClients(t testing.TB) []string {
	t.Helper()
	v, err := s.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST on %s: %v", s.Addr, err)
	}
	var ids []string
	for _, line := range strings.Split(v.(string), "\n") {
		var id string
		tracking := false
		for _, f := range strings.Fields(line) {
			k, val, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = val
			case "flags":
				tracking = strings.Contains(val, "t")
			}
		}
		if tracking && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}
