package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/aster-proxy/aster/dataplane/limits"
)

// docs/configuration.md names every key the parser reads (found in its source, so that a key
// added later must be documented), every ranged key with its range table's name, and every key
// of the original Aster's default.toml.
func TestConfigurationDocNamesEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("decode.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(?:r|t|top)\.[a-zA-Z]+\("([a-z_]+)"`).FindAllSubmatch(src, -1) {
		keys[string(m[1])] = true
	}
	for _, l := range limits.Ints {
		if !strings.Contains(l.Key, "[]") {
			keys[l.Key[strings.LastIndex(l.Key, ".")+1:]] = true
		}
	}
	for _, l := range limits.Floats {
		keys[l.Key[strings.LastIndex(l.Key, ".")+1:]] = true
	}
	var ref struct{ Clusters []map[string]any }
	if _, err := toml.DecodeFile("testdata/default.toml", &ref); err != nil {
		t.Fatal(err)
	}
	for k := range ref.Clusters[0] {
		keys[k] = true
	}
	if len(keys) < 40 {
		t.Fatalf("found only %d keys: the pattern no longer matches the parser", len(keys))
	}
	for k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "."+k+"`") &&
			!strings.Contains(string(doc), "`"+k+" ") && !strings.Contains(string(doc), "`["+k+"]`") {
			t.Errorf("docs/configuration.md does not name `%s`", k)
		}
	}
	for _, l := range limits.Ints {
		if l.Knob != "" && !strings.Contains(string(doc), "`"+l.Knob+"`") {
			t.Errorf("docs/configuration.md does not name the knob %s", l.Knob)
		}
	}
}
