package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/internal/redistest"
)

// startAsterdWith runs asterd with extra flags on config (%LISTEN% is replaced by a free
// loopback address), without admin API or metrics endpoint.
func startAsterdWith(t *testing.T, config string, flags ...string) *asterd {
	t.Helper()
	return startAsterdArgs(t, config+"\n[admin]\nlisten_addr = \"\"\n\n[metrics]\nlisten_addr = \"\"\n", flags...)
}

// TestClusterCommandsAnnounceProxy checks, in both modes, that asterd answers CLUSTER as a
// one-node cluster naming itself (or the --ip address), and that a cluster-aware client
// pointed at it works.
func TestClusterCommandsAnnounceProxy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config func(t *testing.T) string
	}{
		{"standalone", func(t *testing.T) string {
			return `
[[clusters]]
name = "cc"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(startServers(t, 2), []int{1, 1}, true) + "\n"
		}},
		{"redis cluster", func(t *testing.T) string {
			return clusterConfig(redistest.StartCluster(t, 3, 0).Seeds(), "")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			config := tc.config(t)

			announced := startAsterdWith(t, config, "--ip", "10.1.2.3")
			_, port, _ := net.SplitHostPort(announced.Addr)
			nodes, err := announced.client(t).ClusterNodes(ctx).Result()
			if err != nil {
				t.Fatalf("CLUSTER NODES: %v", err)
			}
			f := strings.Fields(nodes)
			if len(f) != 9 || len(f[0]) != 40 || f[1] != "10.1.2.3:"+port+"@"+port || f[2] != "myself,master" ||
				f[7] != "connected" || f[8] != "0-16383" {
				t.Errorf("CLUSTER NODES with --ip 10.1.2.3 = %q", nodes)
			}

			plain := startAsterdWith(t, config)
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{plain.Addr}, ReadTimeout: 5 * time.Second})
			defer cc.Close()
			keys := make([]string, 200)
			for i := range keys {
				keys[i] = spreadKey("cce:", i)
				if err := cc.Set(ctx, keys[i], i, 0).Err(); err != nil {
					t.Fatalf("SET %s through a cluster client: %v", keys[i], err)
				}
			}
			vals, err := cc.MGet(ctx, keys...).Result()
			if err != nil {
				t.Fatalf("MGET: %v", err)
			}
			for i, v := range vals {
				if v != strconv.Itoa(i) {
					t.Fatalf("MGET[%d] = %v, want %d", i, v, i)
				}
			}
			//lint:ignore SA1019 asterd answers CLUSTER SLOTS for the clients that still ask it
			slots, err := cc.ClusterSlots(ctx).Result()
			if err != nil || len(slots) != 1 || len(slots[0].Nodes) != 1 || slots[0].Nodes[0].Addr != plain.Addr {
				t.Errorf("CLUSTER SLOTS = %+v, %v; want one range served by %s", slots, err, plain.Addr)
			}
		})
	}
}
