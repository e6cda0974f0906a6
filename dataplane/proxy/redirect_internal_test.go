package proxy

import "testing"

func TestRedirectAddr(t *testing.T) {
	cases := []struct {
		name, in, addr string
		ok             bool
	}{
		{"moved", "3999 127.0.0.1:6381\r\n", "127.0.0.1:6381", true},
		{"ask ipv6", "12182 [::1]:7002\r\n", "[::1]:7002", true},
		{"hostname", "0 redis-3.internal:6379\r\n", "redis-3.internal:6379", true},
		{"no crlf", "3999 127.0.0.1:6381", "", false},
		{"no address", "3999 \r\n", "", false},
		{"no slot", " 127.0.0.1:6381\r\n", "", false},
		{"slot not a number", "x 127.0.0.1:6381\r\n", "", false},
		{"no port", "3999 localhost\r\n", "", false},
		{"extra field", "3999 127.0.0.1:6381 x\r\n", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, ok := redirectAddr([]byte(c.in))
			if addr != c.addr || ok != c.ok {
				t.Fatalf("redirectAddr(%q) = %q, %v; want %q, %v", c.in, addr, ok, c.addr, c.ok)
			}
		})
	}
}
