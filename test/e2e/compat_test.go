package e2e

import (
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// sameReplies sends each command through asterd and to a redis-server on one connection
// each, in order, and fails every command whose replies differ byte for byte.
func sameReplies(t *testing.T, proxyAddr, refAddr string, cmds [][]string) {
	t.Helper()
	p, r := redistest.DialFrames(t, proxyAddr), redistest.DialFrames(t, refAddr)
	for _, c := range cmds {
		if got, want := string(p.Do(c...)), string(r.Do(c...)); got != want {
			t.Errorf("%q:\n  asterd %q\n  redis  %q", c, got, want)
		}
	}
}

// TestCompatRedisCluster checks, in front of a real Redis Cluster, that asterd answers as a
// cluster node does: keyless scripts and HELP subcommands run on a master.
func TestCompatRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 0)
	a := startAsterd(t, clusterConfig(rc.Seeds(), ""))
	waitServing(t, a.client(t), 10*time.Second)
	ref := rc.MasterOf(0).Addr

	t.Run("keyless scripts", func(t *testing.T) {
		const lib = "#!lua name=kl\nredis.register_function('klping', function(keys, args) return redis.call('PING') end)"
		if r := string(redistest.DialFrames(t, a.Addr).Do("FUNCTION", "LOAD", lib)); r != "$2\r\nkl\r\n" {
			t.Fatalf("FUNCTION LOAD = %q", r)
		}
		sameReplies(t, a.Addr, ref, [][]string{
			{"EVAL", "return 'x'", "0"},
			{"EVAL_RO", "return redis.call('PING')", "0"},
			{"EVAL", "return ARGV[1]", "0", "a"},
			{"SCRIPT", "LOAD", "return 1"},
			{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
			{"EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
			{"FCALL", "klping", "0"},
			{"FCALL", "nosuch", "0"},
		})
	})
	t.Run("help subcommands", func(t *testing.T) {
		sameReplies(t, a.Addr, ref, [][]string{{"OBJECT", "HELP"}, {"XINFO", "HELP"}, {"XGROUP", "HELP"}, {"MEMORY", "HELP"}})
	})
}
