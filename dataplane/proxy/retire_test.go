package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// TestRetiredPoolAnswersWhatItCarries: a node that leaves the table while it holds a request
// (a master paused by a failover) still answers it, however long after the grace period,
// within the request's read_timeout; past that the request fails on its own deadline, not
// because its connection was closed. Either way the connection closes once nothing waits on
// it.
func TestRetiredPoolAnswersWhatItCarries(t *testing.T) {
	cases := []struct {
		name        string
		readTimeout time.Duration
		paused      time.Duration // how long the node holds the request
		want        string        // the reply's start
	}{
		{"answered after the grace period", 5 * time.Second, 700 * time.Millisecond, "v"},
		{"timed out meanwhile", 300 * time.Millisecond, 700 * time.Millisecond, "ERR backend %s: read timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := redistest.Start(t), redistest.Start(t)
			h, _ := route.Hash("fnv1a_64")
			table := func(v uint64, servers ...*redistest.Server) *route.Table {
				var nodes []route.Node
				for i, s := range servers {
					nodes = append(nodes, route.Node{Addr: s.Addr, Name: "r" + strconv.Itoa(i), Weight: 1})
				}
				ring, err := route.NewRing(nodes, h, "{}")
				if err != nil {
					t.Fatal(err)
				}
				return &route.Table{Version: v, Ring: ring}
			}
			c := proxy.MustCluster(t, route.ClusterSpec{Name: "retire",
				Listen:  route.ListenSettings{Addr: "127.0.0.1:0"},
				Backend: route.BackendSettings{ReadTimeout: tc.readTimeout, WriteTimeout: time.Second, DialTimeout: time.Second}},
				proxy.Env{Logger: testLogger(t), RetireGrace: 100 * time.Millisecond})
			first := table(1, a, b)
			if err := c.Update(first); err != nil {
				t.Fatal(err)
			}
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			go c.Serve()
			t.Cleanup(c.Close)

			key := ""
			for i := 0; key == ""; i++ {
				if k := "retire:" + strconv.Itoa(i); first.Ring.Pick([]byte(k)) == 0 {
					key = k
				}
			}
			if _, err := a.Do("SET", key, "v"); err != nil {
				t.Fatal(err)
			}
			cl := redistest.DialRaw(t, c.Addr().String())
			if v, err := cl.Do("GET", key); err != nil || v != "v" { // a's pool is connected
				t.Fatalf("GET %s: %q, %v", key, v, err)
			}
			a.Pause()
			cl.Send("GET", key)
			time.Sleep(100 * time.Millisecond) // written to a, which does not read it yet
			if err := c.Update(table(2, b)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.paused - 100*time.Millisecond)
			a.Resume()
			v, err := cl.Receive(5 * time.Second)
			want := strings.ReplaceAll(tc.want, "%s", a.Addr)
			if err != nil || !strings.HasPrefix(fmt.Sprint(v), want) {
				t.Fatalf("GET on the node that left the table: %v, %v; want %q", v, err, want)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				info, err := a.Do("INFO", "clients")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(info.(string), "connected_clients:1\r\n") { // this INFO's alone
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the retired pool's connection to %s is still open: %s", a.Addr, info)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
