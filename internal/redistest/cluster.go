package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterBusOffset is how far above its client port a cluster node listens for the cluster bus.
const clusterBusOffset = 10000

// Cluster is a real Redis Cluster of redis-server processes (cluster-enabled) made with
// `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`, owned by a test.
type Cluster struct {
	// Nodes are the cluster's servers in the order given to redis-cli: masters first, so
	// Nodes[:masters] start as the masters and the rest as their replicas.
	Nodes []*Server

	t        testing.TB
	masters  int
	replicas int
}

// StartCluster starts masters*(1+replicasPerMaster) cluster-enabled redis-servers, joins them
// with redis-cli --cluster create, and waits until CLUSTER INFO says cluster_state:ok on every
// node and every replica is listed in every node's CLUSTER SLOTS. Everything is killed at the
// end of the test.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	Need(t, "redis-server", "redis-cli")
	if masters < 3 {
		t.Fatalf("start cluster: redis-cli --cluster create needs at least 3 masters, got %d", masters)
	}
	c := &Cluster{t: t, masters: masters, replicas: replicasPerMaster}
	n := masters * (1 + replicasPerMaster)
	args := []string{"--cluster", "create"}
	for range n {
		s := startClusterNode(t)
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(t, 15*time.Second)
	c.waitReplicasListed(t, 15*time.Second)
	return c
}

// startClusterNode starts one cluster-enabled node on a port whose bus port (+10000) is free
// too, with nodes.conf in the server's own directory and replication that syncs at once.
func startClusterNode(t testing.TB) *Server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		port, err := freeClusterPort()
		if err != nil {
			lastErr = err
			continue
		}
		dir := t.TempDir()
		s := &Server{t: t, Port: port, Dir: dir, args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000",
			"--repl-diskless-sync-delay", "0",
			// A replica is listed in CLUSTER SLOTS once its replication offset is not 0; on an
			// empty master only the replication PING moves it, every 10 s by default.
			"--repl-ping-replica-period", "1",
		}}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("start cluster node: %v", lastErr)
	return nil
}

// Seeds returns the addresses of every node, as a proxy's seed list.
func (c *Cluster) Seeds() []string {
	seeds := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		seeds[i] = s.Addr
	}
	return seeds
}

// Client returns a go-redis cluster client over the cluster, closed at test end.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds()})
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// Node returns the cluster's server at addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// MasterOf returns the node that serves slot according to the CLUSTER SLOTS of the first live
// node that answers, or nil when none serves it.
func (c *Cluster) MasterOf(slot int) *Server {
	c.t.Helper()
	slots, err := c.clusterSlots()
	if err != nil {
		c.t.Fatalf("master of slot %d: %v", slot, err)
	}
	for _, r := range slots {
		if int(r.Start) <= slot && slot <= int(r.End) && len(r.Nodes) > 0 {
			return c.Node(r.Nodes[0].Addr)
		}
	}
	return nil
}

// clusterSlots asks the live nodes in turn for CLUSTER SLOTS.
func (c *Cluster) clusterSlots() ([]redis.ClusterSlot, error) {
	var errs []string
	for _, s := range c.live() {
		slots, err := clusterSlotsOf(s)
		if err == nil {
			return slots, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("no node answered CLUSTER SLOTS: %s", strings.Join(errs, "; "))
}

func clusterSlotsOf(s *Server) ([]redis.ClusterSlot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer cl.Close()
	//lint:ignore SA1019 go-redis's ClusterClient routes by CLUSTER SLOTS; wait for the view it reads
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %w", s.Addr, err)
	}
	return slots, nil
}

// live returns the nodes that have not been killed.
func (c *Cluster) live() []*Server {
	var out []*Server
	for _, s := range c.Nodes {
		if s.cmd != nil {
			out = append(out, s)
		}
	}
	return out
}

// WaitOK waits up to d until every live node says cluster_state:ok and serves all 16384
// slots in its CLUSTER SLOTS, or fails the test with what was still wrong.
func (c *Cluster) WaitOK(t testing.TB, d time.Duration) {
	t.Helper()
	c.waitFor(t, d, func(s *Server) error {
		info, err := s.Do("CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("CLUSTER INFO: %w", err)
		}
		if text, _ := info.(string); !strings.Contains(text, "cluster_state:ok") {
			return fmt.Errorf("cluster state not ok")
		}
		slots, err := clusterSlotsOf(s)
		if err != nil {
			return err
		}
		covered := 0
		for _, r := range slots {
			covered += int(r.End-r.Start) + 1
		}
		if covered != 16384 {
			return fmt.Errorf("CLUSTER SLOTS covers %d slots", covered)
		}
		return nil
	})
}

// waitReplicasListed waits until every live node lists replicasPerMaster replicas with each
// range: Redis leaves out of CLUSTER SLOTS a replica that has not synced yet.
func (c *Cluster) waitReplicasListed(t testing.TB, d time.Duration) {
	t.Helper()
	c.waitFor(t, d, func(s *Server) error {
		slots, err := clusterSlotsOf(s)
		if err != nil {
			return err
		}
		for _, r := range slots {
			if got := len(r.Nodes) - 1; got != c.replicas {
				return fmt.Errorf("slots %d-%d list %d replicas, want %d", r.Start, r.End, got, c.replicas)
			}
		}
		return nil
	})
}

// waitFor polls check on every live node until it passes on all of them at once.
func (c *Cluster) waitFor(t testing.TB, d time.Duration, check func(*Server) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var failed []string
		for _, s := range c.live() {
			if err := check(s); err != nil {
				failed = append(failed, s.Addr+": "+err.Error())
			}
		}
		if len(failed) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready after %v: %s", d, strings.Join(failed, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
