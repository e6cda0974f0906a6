package config

import "testing"

func TestLocateKeys(t *testing.T) {
	src := `# comment with [[brackets]] and key = "value"
top = 1

[[clusters]]
name = "a#b" # a hash in a string is not a comment
note = """
multi-line with [not.a.header]
and "quotes" = 3
"""
servers = [
  "one", # first
  'two',

  "three",
]
"quoted.key" = true
backup_request.enabled = true
auth = { password = "p", users = [
    { username = "u1", password = "x" },
    { username = "u2", password = "y" },
] }

[clusters.client_cache]
max_entries = 5

[[clusters]]
  name = 'b'
  servers = ["x"]
  lit = '''
'''
  after = 1
`
	want := map[string]int{
		"top":                                  2,
		"clusters[0]":                          4,
		"clusters[0].name":                     5,
		"clusters[0].note":                     6,
		"clusters[0].servers":                  10,
		"clusters[0].servers[0]":               11,
		"clusters[0].servers[1]":               12,
		"clusters[0].servers[2]":               14,
		"clusters[0].quoted.key":               16,
		"clusters[0].backup_request.enabled":   17,
		"clusters[0].auth":                     18,
		"clusters[0].auth.password":            18,
		"clusters[0].auth.users[0]":            19,
		"clusters[0].auth.users[1].username":   20,
		"clusters[0].client_cache":             23,
		"clusters[0].client_cache.max_entries": 24,
		"clusters[1]":                          26,
		"clusters[1].name":                     27,
		"clusters[1].servers[0]":               28,
		"clusters[1].lit":                      29,
		"clusters[1].after":                    31,
	}
	got := locateKeys([]byte(src))
	for path, line := range want {
		if got[path] != line {
			t.Errorf("%s: line %d, want %d", path, got[path], line)
		}
	}
	for _, bogus := range []string{"clusters[0].not.a.header", "clusters[0].and", "clusters[2]"} {
		if _, ok := got[bogus]; ok {
			t.Errorf("%s recorded, but it is inside a string or absent", bogus)
		}
	}
}

func TestLineOf(t *testing.T) {
	lines := map[string]int{"clusters[0]": 4, "clusters[0].servers": 7, "clusters[0].servers[1]": 9}
	tests := []struct {
		name, path string
		want       int
	}{
		{"exact", "clusters[0].servers[1]", 9},
		{"missing element falls back to array", "clusters[0].servers[5]", 7},
		{"missing key falls back to table", "clusters[0].name", 4},
		{"nothing known", "other", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lineOf(lines, tt.path); got != tt.want {
				t.Errorf("lineOf(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

// FuzzLocateKeys checks that the scan terminates and never panics on any input.
func FuzzLocateKeys(f *testing.F) {
	f.Add([]byte("[[clusters]]\nname = \"a\"\nservers = [\"h:1\", { a = [1, 2] }]\n"))
	f.Add([]byte("a = '''x'''\n[b.c]\nd.\"e\" = {f = \"\"\"g\"\"\"}"))
	f.Fuzz(func(t *testing.T, src []byte) { _ = locateKeys(src) })
}
