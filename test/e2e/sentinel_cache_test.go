package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestSentinelClientCacheFollowsFailover: a Sentinel cluster with the client cache on. Values
// cached from a group's master are never served once asterd has switched to its replica:
// a value written directly on the new master after the switch is what asterd answers, and
// within a second of the write (the new master's tracking link), however often the key was
// read from the cache before.
func TestSentinelClientCacheFollowsFailover(t *testing.T) {
	t.Parallel()
	g := redistest.StartGroup(t, "grp-a", 1)
	ss := redistest.StartSentinels(t, 3, g)
	admin := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	maddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	a := startAsterdArgs(t, sentinelConfig(ss.Addrs(), []string{"grp-a:1 a"}, admin, maddr,
		"client_cache = { enabled = true, max_entries = 1000, max_value_bytes = 4096 }\n"))
	redistest.WaitListening(t, admin, 10*time.Second)
	c := a.client(t)
	waitServing(t, c, 10*time.Second)

	const keys = 20
	for i := range keys {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), "before", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	old := g.Servers[0]
	g.WaitReplicated(t, old)
	for i := range keys {
		cachedGET(t, c, old, "k"+strconv.Itoa(i))
	}

	old.Kill()
	promoted := ss.WaitSwitch("grp-a", old.Addr, 120*time.Second)
	waitGroupMaster(t, admin, "grp-a", promoted)
	nm := g.Servers[1]
	if promoted != nm.Addr {
		t.Fatalf("sentinels promoted %s, not the replica %s", promoted, nm.Addr)
	}
	// asterd routes to the new master now, and nothing cached from the old one answers: each
	// key's first successful read after the switch reaches the new master (a miss).
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < keys; {
		before, _ := nm.CommandStats(t, "get")
		v, err := c.Get(ctx, "k"+strconv.Itoa(i)).Result()
		after, _ := nm.CommandStats(t, "get")
		switch {
		case err == nil && v != "before":
			t.Fatalf("GET k%d after the switch = %q", i, v)
		case err == nil && after == before:
			t.Fatalf("GET k%d after the switch was answered from what was cached before it", i)
		case err == nil:
			i++
		case time.Now().After(deadline): // the data plane may install the new table a moment later
			t.Fatalf("GET k%d after the switch: %v", i, err)
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range keys {
		if err := nm.Client().Set(ctx, "k"+strconv.Itoa(i), "after", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	for i := range keys {
		k := "k" + strconv.Itoa(i)
		for {
			v, err := c.Get(ctx, k).Result()
			if err == nil && v == "after" {
				break
			}
			if err == nil && v != "before" {
				t.Fatalf("GET %s = %q", k, v)
			}
			if time.Since(written) > 5*time.Second {
				t.Fatalf("GET %s = %q, %v five seconds after the new master was written", k, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// And from now on the new value stays: repeated reads are hits of the new master's value.
	for range 3 {
		for i := range keys {
			if v, err := c.Get(ctx, "k"+strconv.Itoa(i)).Result(); err != nil || v != "after" {
				t.Fatalf("GET k%d after the switch = %q, %v", i, v, err)
			}
		}
	}
}
