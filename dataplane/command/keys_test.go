package command

import (
	"slices"
	"testing"
)

// keysCase is one Keys example. Positive cases (ok true) are also checked against a real
// redis-server's COMMAND GETKEYS in TestKeysMatchRedis.
type keysCase struct {
	name string
	args []string
	want []int
	ok   bool
}

func argv(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

var keysCases = []keysCase{
	// Fixed ranges.
	{"get", []string{"GET", "k"}, []int{1}, true},
	{"set with options", []string{"set", "k", "v", "EX", "10"}, []int{1}, true},
	{"get wrong arity", []string{"get", "k", "x"}, nil, false},
	{"mget", []string{"mget", "a", "b", "c"}, []int{1, 2, 3}, true},
	{"mget no key", []string{"mget"}, nil, false},
	{"del", []string{"del", "a", "b"}, []int{1, 2}, true},
	{"mset pairs", []string{"mset", "a", "1", "b", "2"}, []int{1, 3}, true},
	{"mset missing value", []string{"mset", "a", "1", "b"}, nil, false},
	{"msetnx pairs", []string{"msetnx", "a", "1", "b", "2"}, []int{1, 3}, true},
	{"blpop keys before timeout", []string{"blpop", "a", "b", "0"}, []int{1, 2}, true},
	{"rename", []string{"rename", "a", "b"}, []int{1, 2}, true},
	{"bitop dest and sources", []string{"bitop", "AND", "d", "a", "b"}, []int{2, 3, 4}, true},
	{"bitop not", []string{"bitop", "not", "d", "a"}, []int{2, 3}, true},
	{"lcs", []string{"lcs", "a", "b", "LEN"}, []int{1, 2}, true},
	{"geosearchstore", []string{"geosearchstore", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"}, []int{1, 2}, true},
	{"ping no keys", []string{"ping"}, nil, true},
	{"keys command is keyless", []string{"keys", "*"}, nil, true},
	// numkeys at args[2]: scripts.
	{"eval two keys", []string{"eval", "return 1", "2", "a", "b", "arg"}, []int{3, 4}, true},
	{"eval no keys", []string{"EVAL", "return 1", "0"}, nil, true},
	{"evalsha_ro one key", []string{"evalsha_ro", "abc", "1", "a"}, []int{3}, true},
	{"fcall", []string{"fcall", "f", "1", "a", "x"}, []int{3}, true},
	{"fcall_ro", []string{"fcall_ro", "f", "2", "a", "b"}, []int{3, 4}, true},
	{"eval numkeys too big", []string{"eval", "s", "3", "a", "b"}, nil, false},
	{"eval numkeys negative", []string{"eval", "s", "-1", "a"}, nil, false},
	{"eval numkeys not a number", []string{"eval", "s", "x", "a"}, nil, false},
	{"eval numkeys leading zero", []string{"eval", "s", "01", "a"}, nil, false},
	{"eval numkeys empty", []string{"eval", "s", "", "a"}, nil, false},
	// dest + numkeys.
	{"zunionstore", []string{"zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"}, []int{1, 3, 4}, true},
	{"zinterstore", []string{"zinterstore", "d", "1", "a"}, []int{1, 3}, true},
	{"zdiffstore", []string{"zdiffstore", "d", "2", "a", "b"}, []int{1, 3, 4}, true},
	{"zunionstore numkeys zero", []string{"zunionstore", "d", "0", "a"}, nil, false},
	{"zunionstore numkeys too big", []string{"zunionstore", "d", "3", "a", "b"}, nil, false},
	// numkeys at args[1].
	{"zunion", []string{"zunion", "2", "a", "b", "WITHSCORES"}, []int{2, 3}, true},
	{"zinter", []string{"zinter", "1", "a"}, []int{2}, true},
	{"zdiff", []string{"zdiff", "2", "a", "b"}, []int{2, 3}, true},
	{"zintercard", []string{"zintercard", "2", "a", "b", "LIMIT", "1"}, []int{2, 3}, true},
	{"sintercard", []string{"sintercard", "1", "a"}, []int{2}, true},
	{"lmpop", []string{"lmpop", "2", "a", "b", "LEFT"}, []int{2, 3}, true},
	{"zmpop", []string{"zmpop", "1", "a", "MIN", "COUNT", "2"}, []int{2}, true},
	{"zunion numkeys zero", []string{"zunion", "0", "a"}, nil, false},
	{"sintercard numkeys garbage", []string{"sintercard", "two", "a", "b"}, nil, false},
	{"lmpop numkeys too big", []string{"lmpop", "5", "a", "left"}, nil, false},
	// numkeys at args[2] after a timeout.
	{"blmpop", []string{"blmpop", "0", "2", "a", "b", "LEFT"}, []int{3, 4}, true},
	{"bzmpop", []string{"bzmpop", "1.5", "1", "a", "MAX"}, []int{3}, true},
	{"blmpop numkeys too big", []string{"blmpop", "0", "4", "a", "left"}, nil, false},
	// STREAMS.
	{"xread", []string{"xread", "COUNT", "2", "STREAMS", "a", "b", "0", "0"}, []int{4, 5}, true},
	{"xread block", []string{"xread", "block", "0", "streams", "a", "$"}, []int{4}, true},
	{"xreadgroup", []string{"xreadgroup", "GROUP", "g", "c", "NOACK", "STREAMS", "a", ">"}, []int{6}, true},
	{"xreadgroup group named streams", []string{"xreadgroup", "GROUP", "streams", "c", "STREAMS", "a", ">"}, []int{5}, true},
	{"xread odd ids", []string{"xread", "STREAMS", "a", "b", "0"}, nil, false},
	{"xread no streams keyword", []string{"xread", "COUNT", "1", "a", "0"}, nil, false},
	// SORT.
	{"sort plain", []string{"sort", "k"}, []int{1}, true},
	{"sort store", []string{"sort", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "#", "STORE", "d"}, []int{1, 10}, true},
	{"sort last store wins", []string{"sort", "k", "store", "d1", "store", "d2"}, []int{1, 5}, true},
	{"sort get pattern named store", []string{"sort", "k", "get", "store"}, []int{1}, true},
	{"sort_ro", []string{"sort_ro", "k", "ALPHA"}, []int{1}, true},
	// MIGRATE.
	{"migrate one key", []string{"migrate", "h", "6379", "k", "0", "1000", "COPY"}, []int{3}, true},
	{"migrate keys after an auth2 password spelled keys", []string{"migrate", "h", "6379", "", "0", "1000", "AUTH2", "u", "keys", "KEYS", "a", "b"}, []int{10, 11}, true},
	{"migrate keys with key", []string{"migrate", "h", "6379", "k", "0", "1000", "KEYS", "a"}, nil, false},
	{"migrate keys empty", []string{"migrate", "h", "6379", "", "0", "1000", "KEYS"}, nil, false},
	// GEORADIUS STORE/STOREDIST.
	{"georadius plain", []string{"georadius", "k", "1", "2", "3", "km", "WITHDIST"}, []int{1}, true},
	{"georadius store", []string{"georadius", "k", "1", "2", "3", "km", "STORE", "d"}, []int{1, 7}, true},
	{"georadius storedist", []string{"georadius", "k", "1", "2", "3", "km", "COUNT", "5", "STOREDIST", "d"}, []int{1, 9}, true},
	{"georadiusbymember store", []string{"georadiusbymember", "k", "m", "3", "km", "store", "d"}, []int{1, 6}, true},
	{"georadiusbymember member named store", []string{"georadiusbymember", "k", "store", "3", "km"}, []int{1}, true},
	{"georadius wrong arity", []string{"georadius", "k", "1", "2", "3"}, nil, false},
	// Subcommands with a key at args[2].
	{"object encoding", []string{"object", "ENCODING", "k"}, []int{2}, true},
	{"object freq", []string{"OBJECT", "freq", "k"}, []int{2}, true},
	{"object help", []string{"object", "help"}, nil, true},
	{"object unknown", []string{"object", "nope", "k"}, nil, false},
	{"object encoding no key", []string{"object", "encoding"}, nil, false},
	{"memory usage", []string{"memory", "usage", "k", "SAMPLES", "5"}, []int{2}, true},
	{"memory stats", []string{"memory", "stats"}, nil, true},
	{"xinfo stream", []string{"xinfo", "stream", "k", "FULL"}, []int{2}, true},
	{"xinfo consumers", []string{"xinfo", "consumers", "k", "g"}, []int{2}, true},
	{"xgroup create", []string{"xgroup", "create", "k", "g", "$", "MKSTREAM"}, []int{2}, true},
	{"xgroup delconsumer", []string{"xgroup", "DELCONSUMER", "k", "g", "c"}, []int{2}, true},
	{"xgroup help", []string{"xgroup", "help"}, nil, true},
	{"xgroup unknown", []string{"xgroup", "frob", "k"}, nil, false},
}

func TestKeys(t *testing.T) {
	for _, tc := range keysCases {
		t.Run(tc.name, func(t *testing.T) {
			s := Lookup([]byte(tc.args[0]))
			if s == nil {
				t.Fatalf("Lookup(%q) = nil", tc.args[0])
			}
			prefix := []int{-7} // Keys must append, never overwrite what is there
			got, ok := s.Keys(argv(tc.args...), prefix)
			if ok != tc.ok {
				t.Fatalf("Keys(%q) ok = %v, want %v (keys %v)", tc.args, ok, tc.ok, got)
			}
			want := append([]int{-7}, tc.want...)
			if !slices.Equal(got, want) {
				t.Fatalf("Keys(%q) = %v, want %v", tc.args, got, want)
			}
		})
	}
}

// TestKeysNeverPanics feeds every command short, empty and odd argument lists.
func TestKeysNeverPanics(t *testing.T) {
	shapes := [][]string{
		{},
		{""},
		{"streams"},
		{"2", "a"},
		{"store", "keys", "", "1"},
		{"x", "x", "x", "x", "x", "x", "x", "keys"},
	}
	for _, s := range All() {
		for _, sh := range shapes {
			args := argv(append([]string{s.Name}, sh...)...)
			keys, ok := s.Keys(args, nil)
			for _, k := range keys {
				if k <= 0 || k >= len(args) {
					t.Errorf("%s %q: key index %d out of range (ok %v)", s.Name, sh, k, ok)
				}
			}
		}
	}
}

func TestKeysAllocs(t *testing.T) {
	cases := [][][]byte{
		argv("GET", "k"),
		argv("mget", "a", "b", "c"),
		argv("eval", "s", "2", "a", "b"),
		argv("zunionstore", "d", "2", "a", "b"),
		argv("xread", "streams", "a", "b", "0", "0"),
		argv("sort", "k", "store", "d"),
		argv("object", "encoding", "k"),
		argv("georadius", "k", "1", "2", "3", "km", "store", "d"),
		argv("migrate", "h", "1", "", "0", "1", "keys", "a", "b"),
	}
	dst := make([]int, 0, 16)
	for _, args := range cases {
		s := Lookup(args[0])
		allocs := testing.AllocsPerRun(100, func() {
			dst, _ = s.Keys(args, dst[:0])
		})
		if allocs != 0 {
			t.Errorf("Keys(%q) allocates %v times per run, want 0", args, allocs)
		}
	}
}

func BenchmarkKeys(b *testing.B) {
	args := argv("mget", "a", "b", "c", "d")
	s := Lookup(args[0])
	dst := make([]int, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = s.Keys(args, dst[:0])
	}
}
