package proxy_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBigRepliesThroughProxy reads replies far larger than any read buffer through the proxy
// from a real redis-server: a 300k-element LRANGE on a shared backend connection and inside
// MULTI (a dedicated connection's ReplyReader), a 16 MiB bulk string and a 4 MB status line
// (a Lua script's status_reply). Each arrives over many reads that the backend readers scan
// incrementally; every element must come back exactly.
func TestBigRepliesThroughProxy(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 1, readTimeout: 10 * time.Second})
	const n = 300000
	want := make([]string, n)
	for i := range want {
		// Lengths vary, so a frame boundary misplaced by a resumed scan shows.
		want[i] = "e" + strconv.Itoa(i) + strings.Repeat("x", i%17)
	}
	vals := make([]any, 0, 10000)
	for i := 0; i < n; i += cap(vals) {
		vals = vals[:0]
		for _, v := range want[i:min(i+cap(vals), n)] {
			vals = append(vals, v)
		}
		if err := e.client.RPush(ctx, "biglist", vals...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, got []string) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%s: %d elements, want %d", name, len(got), n)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: element %d = %q, want %q", name, i, got[i], want[i])
			}
		}
	}

	got, err := e.client.LRange(ctx, "biglist", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	check("LRANGE", got)

	var lr *redis.StringSliceCmd
	if _, err := e.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		lr = p.LRange(ctx, "biglist", 0, -1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("LRANGE in MULTI", lr.Val())

	// A GET pipelined behind the big reply is answered in order, on the same connection.
	cmds, err := e.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.LRange(ctx, "biglist", 0, -1)
		p.LLen(ctx, "biglist")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("pipelined LRANGE", cmds[0].(*redis.StringSliceCmd).Val())
	if l := cmds[1].(*redis.IntCmd).Val(); l != n {
		t.Fatalf("LLEN after LRANGE = %d, want %d", l, n)
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	if err := e.client.Set(ctx, "bigval", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := e.client.Get(ctx, "bigval").Bytes(); err != nil || !bytes.Equal(v, big) {
		t.Fatalf("GET of a 16 MiB value: %d bytes, %v; want it unchanged", len(v), err)
	}

	status := strings.Repeat("s", 4000000)
	v, err := e.client.Eval(ctx, "return redis.status_reply(string.rep('s', 4000000))", []string{"k"}).Result()
	if s, _ := v.(string); err != nil || s != status {
		t.Fatalf("EVAL returning a 4 MB status: %d bytes, %v; want it unchanged", len(s), err)
	}
}
