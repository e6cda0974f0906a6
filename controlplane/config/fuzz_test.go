package config

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// FuzzParse feeds arbitrary files to the loader: it must return a config or an error, never
// panic, and a config it accepts must be valid by its own rules (parsing it again is stable).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	invalid, _ := filepath.Glob("testdata/invalid/*.toml")
	for _, p := range append(files, invalid...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[[clusters]]\nname=\"a\"\nlisten_addr=\"127.0.0.1:1\"\ncache_type=\"redis\"\nservers=[\"127.0.0.1:2:1 x\"]\n"))
	// Every ranged key at its maximum, beyond it and at 2^31-1 (more in testdata/fuzz/FuzzParse).
	for _, r := range limits.Ints {
		for _, v := range []int64{r.Max, r.Max + 1, math.MaxInt32, math.MinInt64} {
			file, _ := rangeFile(r.Key, strconv.FormatInt(v, 10))
			f.Add([]byte(file))
		}
	}
	for _, r := range limits.Floats {
		for _, v := range []string{"nan", "inf", "1e308", strconv.FormatFloat(r.Max, 'g', -1, 64) + ".0"} {
			file, _ := rangeFile(r.Key, v)
			f.Add([]byte(file))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml")
		if err != nil {
			return
		}
		if len(cfg.Clusters) == 0 {
			t.Fatal("accepted a config without clusters")
		}
		for _, c := range cfg.Clusters {
			if c.Name == "" || c.ListenAddr == "" || len(c.Servers) == 0 {
				t.Fatalf("accepted an incomplete cluster: %+v", c)
			}
			// Every number it accepted is within its documented range (an unset
			// ping_succ_interval follows ping_interval, which may be 0; sentinel_poll_interval
			// is 0 outside Sentinel mode).
			for _, r := range limits.Ints {
				v := rangedFields[r.Key](c)
				unset := v == 0 && (r == limits.PingSuccInterval || r == limits.SentinelPollInterval && c.CacheType != CacheRedisSentinel)
				if !(v >= float64(r.Min) && v <= float64(r.Max)) && !unset {
					t.Fatalf("accepted %s = %v, outside %s", r.Key, v, r.Range())
				}
			}
			for _, s := range c.Servers {
				if !limits.ServerWeight.Contains(int64(s.Weight)) {
					t.Fatalf("accepted weight %d", s.Weight)
				}
			}
			for _, r := range limits.Floats {
				if v := rangedFields[r.Key](c); !r.Contains(v) {
					t.Fatalf("accepted %s = %v, outside %s", r.Key, v, r.Range())
				}
			}
		}
	})
}
