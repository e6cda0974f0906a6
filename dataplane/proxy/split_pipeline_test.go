package proxy_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPipelinedSplitCommands sends many split MGETs, MSETs, DELs and EXISTS in one pipeline
// over a ring of several nodes, so that a batch holds several split commands whose sub
// requests share nodes: every reply must be the one of its own command, in order.
func TestPipelinedSplitCommands(t *testing.T) {
	e := startEnv(t, envOpts{nodes: 2})
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() string { return fmt.Sprintf("key:%012d", rng.IntN(1000)) }
	for round := 0; round < 20; round++ {
		want := map[string]string{}
		p := e.client.Pipeline()
		var msetArgs []any
		for i := 0; i < 10; i++ {
			k := key()
			v := fmt.Sprintf("v%d-%d", round, i)
			want[k] = v
			msetArgs = append(msetArgs, k, v)
		}
		p.MSet(ctx, msetArgs...)
		type mget struct {
			keys []string
			cmd  interface{ Val() []any }
		}
		var mgets []mget
		for i := 0; i < 16; i++ {
			var keys []string
			for j := 0; j < 10; j++ {
				keys = append(keys, key())
			}
			if i%3 == 0 {
				p.Exists(ctx, keys...)
			}
			mgets = append(mgets, mget{keys, p.MGet(ctx, keys...)})
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, m := range mgets {
			vals := m.cmd.Val()
			if len(vals) != len(m.keys) {
				t.Fatalf("round %d: MGET of %d keys answered %d values", round, len(m.keys), len(vals))
			}
			for i, k := range m.keys {
				if w, ok := want[k]; ok && vals[i] != w {
					t.Fatalf("round %d: MGET %s = %v, want %q", round, k, vals[i], w)
				}
			}
		}
		if err := e.client.Del(ctx, slices.Collect(maps.Keys(want))...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
