package redistest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// AddReplica starts a new cluster node, joins it to the cluster (CLUSTER MEET) and makes it a
// replica of master (CLUSTER REPLICATE), as `redis-cli --cluster add-node --cluster-slave`
// does, and returns it once master lists it in CLUSTER SLOTS (that is, once it has synced).
func (c *Cluster) AddReplica(t testing.TB, master *Server, d time.Duration) *Server {
	t.Helper()
	id, err := master.Do("CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("CLUSTER MYID on %s: %v", master.Addr, err)
	}
	s := startClusterNode(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	if _, err := s.Do("CLUSTER", "MEET", host, port); err != nil {
		t.Fatalf("CLUSTER MEET from %s: %v", s.Addr, err)
	}
	c.Nodes = append(c.Nodes, s)
	deadline := time.Now().Add(d)
	poll := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("add replica %s of %s: %s: %v", s.Addr, master.Addr, what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// CLUSTER REPLICATE needs the new node to know the master first.
	poll("replicate", func() error {
		_, err := s.Do("CLUSTER", "REPLICATE", id)
		return err
	})
	poll("listed", func() error {
		slots, err := clusterSlotsOf(master)
		if err != nil {
			return err
		}
		for _, r := range slots {
			for _, n := range r.Nodes[1:] {
				if n.Addr == s.Addr {
					return nil
				}
			}
		}
		return fmt.Errorf("not in the CLUSTER SLOTS of %s", master.Addr)
	})
	return s
}
