package config

import (
	"os"
	"path/filepath"
	"testing"
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
		}
	})
}
