package route_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// startNutcracker runs nutcracker with one ketama redis pool over servers ("host:port:weight
// [name]" lines). Unlike redistest.StartNutcracker it also sets hash_tag when tag is not "".
func startNutcracker(t *testing.T, hash, tag string, servers []string) string {
	t.Helper()
	redistest.Need(t, "nutcracker")
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	conf := fmt.Sprintf("p:\n  listen: %s\n  hash: %s\n  distribution: ketama\n  redis: true\n", addr, hash)
	if tag != "" {
		conf += fmt.Sprintf("  hash_tag: %q\n", tag)
	}
	conf += "  preconnect: true\n  server_connections: 1\n  servers:\n"
	for _, s := range servers {
		conf += "   - " + s + "\n"
	}
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("write nutcracker config: %v", err)
	}
	cmd := exec.Command("nutcracker", "-c", path, "-s", strconv.Itoa(redistest.FreePort(t)),
		"-a", "127.0.0.1", "-o", filepath.Join(dir, "nutcracker.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("run nutcracker: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	redistest.WaitListening(t, addr, 5*time.Second)
	return addr
}

// setThrough SETs every key (value: its index) through the proxy at addr, pipelined, and checks
// each reply. It speaks RESP itself because go-redis opens with HELLO, on which nutcracker
// closes the connection.
func setThrough(t *testing.T, addr string, keys []string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial nutcracker %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var req []byte
	for i, k := range keys {
		v := strconv.Itoa(i)
		req = fmt.Appendf(req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	go func() { _, _ = c.Write(req) }() // write while reading, so neither side's buffers fill up
	r := bufio.NewReader(c)
	for i, k := range keys {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("SET %q through nutcracker: reply %d: %v", k, i, err)
		}
		if line != "+OK\r\n" {
			t.Fatalf("SET %q through nutcracker: reply %q", k, line)
		}
	}
}

// compatKeys returns n distinct keys of varied lengths and bytes, including bytes >= 0x80
// (twemproxy hashes signed chars) and, when tagged, keys with and without usable hash tags.
func compatKeys(n int, tagged bool) []string {
	keys := []string{""} // twemproxy hashes an empty key like any other
	seen := map[string]bool{"": true}
	for i := 0; len(keys) < n; i++ {
		var k string
		switch i % 5 {
		case 0:
			k = "key:" + strconv.Itoa(i)
		case 1:
			k = "user:" + strconv.Itoa(i*7919) + ":profile:" + strconv.Itoa(i%13)
		case 2:
			b := []byte(strconv.Itoa(i))
			for j := 0; j < i%9; j++ {
				b = append(b, byte(0x80+(i*31+j*17)%128))
			}
			k = string(b)
		case 3:
			k = fmt.Sprintf("%x", i*2654435761)[:1+i%8] // short keys of every tail length
		case 4:
			k = "é" + strconv.Itoa(i) + "ü"
		}
		if tagged {
			switch i % 4 {
			case 0:
				k = "{user" + strconv.Itoa(i%50) + "}." + k
			case 1:
				k = "pre{" + k + "}post"
			case 2:
				k = k + "{}" + strconv.Itoa(i) // empty tag: whole key
			case 3:
				k = "{" + k // no end: whole key
			}
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// TestTwemproxyCompat checks, against a real nutcracker, that Ring.Pick sends every key to the
// server nutcracker stored it on.
func TestTwemproxyCompat(t *testing.T) {
	redistest.Need(t, "redis-server", "nutcracker")
	servers := make([]*redistest.Server, 4)
	clients := make([]*redis.Client, len(servers))
	for i := range servers {
		servers[i] = redistest.Start(t)
		clients[i] = servers[i].Client()
	}

	cases := []struct {
		name    string
		hash    string
		aliases bool
		tag     string
		weights []int // nil: 1, 2, 1, 3
		skewed  bool  // the hash's range is too narrow to reach every server
		keys    int   // 0: 2,000
	}{
		{name: "fnv1a_64 equal weights", hash: "fnv1a_64", aliases: true, weights: []int{1, 1, 1, 1}},
		{name: "fnv1a_64 uneven weights", hash: "fnv1a_64", aliases: true, weights: []int{3, 50, 7, 11}},
		// Weight 1 of 143 is 4 ketama points: with 2,000 keys it held none in 1 of 400 port
		// draws (the points hash the addresses); with 20,000 in none of 3,000.
		{name: "md5 uneven weights no aliases", hash: "md5", weights: []int{100, 1, 33, 9}, keys: 20000},
		{name: "fnv1a_64", hash: "fnv1a_64", aliases: true},
		{name: "murmur", hash: "murmur", aliases: true},
		{name: "crc32a", hash: "crc32a", aliases: true},
		{name: "fnv1a_64 no aliases", hash: "fnv1a_64"},
		{name: "fnv1a_64 hash tag", hash: "fnv1a_64", aliases: true, tag: "{}"},
		{name: "murmur hash tag no aliases", hash: "murmur", tag: "{}"},
		{name: "one_at_a_time", hash: "one_at_a_time", aliases: true},
		{name: "md5", hash: "md5", aliases: true},
		{name: "crc16", hash: "crc16", aliases: true},
		{name: "crc32", hash: "crc32", aliases: true, skewed: true}, // 15-bit values
		{name: "fnv1_64", hash: "fnv1_64", aliases: true},
		{name: "fnv1_32", hash: "fnv1_32", aliases: true},
		{name: "fnv1a_32", hash: "fnv1a_32", aliases: true},
		{name: "hsieh", hash: "hsieh", aliases: true},
		{name: "jenkins", hash: "jenkins", aliases: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			weights := tc.weights
			if weights == nil {
				weights = []int{1, 2, 1, 3}
			}
			nodes := make([]route.Node, len(servers))
			lines := make([]string, len(servers))
			for i, s := range servers {
				nodes[i] = route.Node{Addr: s.Addr, Weight: weights[i]}
				lines[i] = s.Addr + ":" + strconv.Itoa(weights[i])
				if tc.aliases {
					nodes[i].Name = "r" + strconv.Itoa(i+1)
					lines[i] += " " + nodes[i].Name
				}
				if err := clients[i].FlushAll(ctx).Err(); err != nil {
					t.Fatalf("flushall %s: %v", s.Addr, err)
				}
			}
			h, err := route.Hash(tc.hash)
			if err != nil {
				t.Fatalf("Hash(%q): %v", tc.hash, err)
			}
			ring, err := route.NewRing(nodes, h, tc.tag)
			if err != nil {
				t.Fatalf("NewRing: %v", err)
			}

			n := tc.keys
			if n == 0 {
				n = 2000
			}
			keys := compatKeys(n, tc.tag != "")
			setThrough(t, startNutcracker(t, tc.hash, tc.tag, lines), keys)

			where := make(map[string]int, len(keys))
			for i, c := range clients {
				stored, err := c.Keys(ctx, "*").Result()
				if err != nil {
					t.Fatalf("KEYS on %s: %v", servers[i].Addr, err)
				}
				for _, k := range stored {
					if j, dup := where[k]; dup {
						t.Fatalf("key %q on both server %d and %d", k, j, i)
					}
					where[k] = i
				}
			}
			if len(where) != len(keys) {
				t.Fatalf("backends hold %d keys, want %d", len(where), len(keys))
			}
			perNode := make([]int, len(servers))
			bad := 0
			for _, k := range keys {
				got, want := ring.Pick([]byte(k)), where[k]
				perNode[want]++
				if got != want {
					if bad++; bad <= 5 {
						t.Errorf("Pick(%q) = %d, nutcracker stored it on %d", k, got, want)
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d keys placed differently from nutcracker", bad, len(keys))
			}
			for i, n := range perNode { // every server took part, so the check meant something
				if n == 0 && !tc.skewed {
					t.Errorf("server %d (weight %d) got no keys", i, weights[i])
				}
			}
		})
	}
}
