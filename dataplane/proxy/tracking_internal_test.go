package proxy

import "testing"

// A script's declared keys are tracked when it may call a read command, as Redis does.
func TestScriptReads(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{"redis.call('set', 'k', 'v')", false},
		{"return redis.call('get', KEYS[1])", true},
		{`redis.pcall("GET", "x")`, true},
		{"redis.call('ping')", false},
		{"local c = 'get'; return redis.call(c, 'k')", true}, // a name it cannot read
		{"return 1", false},
	} {
		if got := scriptReads([]byte(c.body)); got != c.want {
			t.Errorf("scriptReads(%q) = %v, want %v", c.body, got, c.want)
		}
	}
}
