package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// pythonWithRedis returns a python3 that can import redis-py: the one on PATH, else Debian's
// (python3-redis installs into /usr/bin/python3's packages, which a pyenv or venv python3
// first on PATH does not see). The test skips when there is none.
func pythonWithRedis(t *testing.T) string {
	t.Helper()
	var found []string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		found = append(found, path)
		if exec.Command(path, "-c", "import redis.cluster").Run() == nil {
			return path
		}
	}
	if len(found) == 0 {
		t.Skip("python3 not installed: the redis-py compatibility test needs it (apt-get install python3-redis)")
	}
	t.Skipf("redis-py not importable by %v: apt-get install python3-redis", found)
	return ""
}

// TestRedisPyClient drives asterd with the real redis-py client (testdata/pyclient.py), in
// standalone mode over three redis-servers and in cluster mode over a 6-node Redis Cluster:
// strings, hashes, lists, sets, sorted sets, pipelines, MULTI/EXEC and WATCH, pub/sub,
// BLPOP, SCAN (refused), scripts and redis-py's Lock, a connection pool shared by threads,
// client names and INFO, and redis-py's RedisCluster pointed at asterd. The script checks
// every reply and says which section failed and why.
func TestRedisPyClient(t *testing.T) {
	t.Parallel()
	python := pythonWithRedis(t)
	tests := []struct {
		name, mode string
		start      func(t *testing.T) *asterd
	}{
		{"standalone", "standalone", func(t *testing.T) *asterd {
			return startAsterd(t, `
[[clusters]]
name = "py"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(startServers(t, 3), []int{1, 1, 1}, true)+"\n")
		}},
		{"redis cluster", "cluster", func(t *testing.T) *asterd {
			a := startAsterd(t, clusterConfig(redistest.StartCluster(t, 3, 1).Seeds(), ""))
			waitServing(t, a.client(t), 10*time.Second)
			return a
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, "testdata/pyclient.py", a.Addr, tc.mode).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-py against asterd (%s mode): %v\n%s", tc.mode, err, out)
			}
			t.Logf("redis-py:\n%s", out)
		})
	}
}
