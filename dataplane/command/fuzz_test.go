package command

import (
	"bytes"
	"testing"
)

// FuzzKeys splits arbitrary argument lists (NUL-separated) for every command: Keys must never
// panic and must return only indexes of real arguments, in order, for well-formed ones.
func FuzzKeys(f *testing.F) {
	for _, seed := range []string{
		"mget\x00a\x00b", "mset\x00a\x001\x00b\x002", "eval\x00return 1\x002\x00k1\x00k2\x00arg",
		"xread\x00count\x002\x00streams\x00s1\x00s2\x000\x000", "zunionstore\x00d\x002\x00a\x00b\x00weights\x001\x002",
		"sort\x00k\x00by\x00w_*\x00store\x00dst", "migrate\x00h\x00p\x00\x000\x005000\x00keys\x00a\x00b",
		"object\x00encoding\x00k", "georadius\x00g\x000\x000\x001\x00km\x00store\x00dst", "lmpop\x002\x00a\x00b\x00left",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		args := bytes.Split(data, []byte{0})
		spec := Lookup(args[0])
		if spec == nil {
			return
		}
		keys, ok := spec.Keys(args, nil)
		if !ok {
			return
		}
		prev := 0
		for _, k := range keys {
			if k < 1 || k >= len(args) {
				t.Fatalf("%s: key index %d outside 1..%d", spec.Name, k, len(args)-1)
			}
			if k < prev && spec.Name != "sort" && spec.Name != "sort_ro" {
				t.Fatalf("%s: key indexes out of order: %v", spec.Name, keys)
			}
			prev = k
		}
	})
}
