package config

import (
	"strconv"
	"testing"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// client_output_limit: bytes, bounded both ways, the default when unset.
func TestClientOutputLimit(t *testing.T) {
	base := "[[clusters]]\nname = \"a\"\nlisten_addr = \"127.0.0.1:7000\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7001\"]\n"
	cases := []struct {
		name, extra string
		want        int
		err         string
	}{
		{"default", "", DefaultClientOutputLimit, ""},
		{"minimum", "client_output_limit = 65536\n", int(limits.ClientOutputLimit.Min), ""},
		{"maximum", "client_output_limit = 1073741824\n", int(limits.ClientOutputLimit.Max), ""},
		{"below", "client_output_limit = 65535\n", 0, `t.toml:6: cluster "a": client_output_limit: 65535 out of range 65536..1073741824`},
		{"zero", "client_output_limit = 0\n", 0, `t.toml:6: cluster "a": client_output_limit: 0 out of range 65536..1073741824`},
		{"above", "client_output_limit = 1073741825\n", 0, `t.toml:6: cluster "a": client_output_limit: 1073741825 out of range 65536..1073741824`},
		{"huge", "client_output_limit = " + strconv.FormatInt(1<<62, 10) + "\n", 0,
			`t.toml:6: cluster "a": client_output_limit: 4611686018427387904 out of range 65536..1073741824`},
		{"not a number", "client_output_limit = \"32mb\"\n", 0, `t.toml:6: cluster "a": client_output_limit: must be an integer, not a string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+c.extra), "t.toml")
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Clusters[0].ClientOutputLimit; got != c.want {
				t.Fatalf("ClientOutputLimit = %d, want %d", got, c.want)
			}
		})
	}
}
