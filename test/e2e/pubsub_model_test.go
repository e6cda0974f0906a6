package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestPubSubMatchesModel has subscribers (channels, patterns, and in cluster mode shard
// channels; RESP2 and RESP3; a third reading slowly) and publishers that pipeline PUBLISH
// (and SPUBLISH) of messages up to 20 KiB: every subscriber must get every message it is
// subscribed to exactly once, in each publisher's order, as message, pmessage or smessage,
// and nothing else. In standalone mode each PUBLISH's count of receivers is checked too.
func TestPubSubMatchesModel(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	rc := redistest.StartCluster(t, 3, 0)
	modes := []struct {
		name, config string
		cluster      bool
	}{
		{"standalone", `
[[clusters]]
name = "s"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + serverList(servers, []int{1, 1, 1}, true) + "\n", false},
		{"cluster", clusterConfig(rc.Seeds(), ""), true},
	}
	seed := modelSeed(t)
	for mi, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			a := startAsterd(t, mode.config)
			waitServing(t, a.client(t), 10*time.Second)
			rng := rand.New(rand.NewPCG(seed, uint64(mi)))
			prefix := "psm" + strconv.Itoa(mi) + ":"
			var channels, shards []string
			for i := range 12 {
				channels = append(channels, prefix+"c"+spreadKey("", i))
				if mode.cluster {
					shards = append(shards, prefix+"s{"+strconv.Itoa(i)+"}")
				}
			}
			patterns := []string{prefix + "c[0-7]*", prefix + "c*", prefix + "c?a*"}

			subs := make([]*psSubscriber, 8)
			for i := range subs {
				subs[i] = newPSSubscriber(t, a.Addr, i, i%3 == 2, i%2 == 1, seed+uint64(i))
				sub := subs[i]
				for _, ch := range channels {
					if rng.IntN(2) == 0 {
						sub.channels[ch] = true
					}
				}
				for _, p := range patterns {
					if rng.IntN(3) == 0 {
						sub.patterns[p] = true
					}
				}
				for _, sh := range shards {
					if rng.IntN(2) == 0 {
						sub.shards[sh] = true
					}
				}
				sub.subscribe(t)
			}

			type published struct{ kind, channel, payload string }
			pubs := make([][]published, 3)
			var wg sync.WaitGroup
			for p := range pubs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(100+p)))
					nc, err := net.DialTimeout("tcp", a.Addr, 5*time.Second)
					if err != nil {
						t.Errorf("publisher %d: %v", p, err)
						return
					}
					defer nc.Close()
					raw := redistest.NewRaw(t, nc)
					for seq := 0; seq < 200; {
						var req []byte
						var batch []published
						for range 1 + r.IntN(16) {
							m := published{"PUBLISH", channels[r.IntN(len(channels))], fmt.Sprintf("p%d:%d:", p, seq)}
							if len(shards) > 0 && r.IntN(3) == 0 {
								m.kind, m.channel = "SPUBLISH", shards[r.IntN(len(shards))]
							}
							m.payload += psPayload(r)
							req = appendCommand(req, []string{m.kind, m.channel, m.payload})
							batch = append(batch, m)
							seq++
						}
						if _, err := nc.Write(req); err != nil {
							t.Errorf("publisher %d: %v", p, err)
							return
						}
						for _, m := range batch {
							got, err := raw.Receive(10 * time.Second)
							if err != nil {
								t.Errorf("publisher %d: %s %s: %v", p, m.kind, m.channel, err)
								return
							}
							n, ok := got.(int64)
							if !ok {
								t.Errorf("publisher %d: %s %s = %s", p, m.kind, m.channel, showReply(got))
								return
							}
							if want := receivers(subs, m.channel); !mode.cluster && n != int64(want) {
								t.Errorf("publisher %d: PUBLISH %s = %d, want %d receivers", p, m.channel, n, want)
							}
						}
						pubs[p] = append(pubs[p], batch...)
					}
				}()
			}
			wg.Wait()
			if mode.cluster {
				time.Sleep(300 * time.Millisecond) // PUBLISH reaches the pattern's node over the cluster bus
			}
			total := 0
			defer func() { t.Logf("%d messages delivered to %d subscribers", total, len(subs)) }()
			for _, sub := range subs {
				got := sub.drain(t)
				for _, ms := range got {
					total += len(ms)
				}
				// What each subscriber must have got, per stream (kind, pattern, channel, publisher), in order.
				want := map[string][]string{}
				for p, ms := range pubs {
					for _, m := range ms {
						stream := func(kind, pattern string) string {
							return kind + "|" + pattern + "|" + m.channel + "|p" + strconv.Itoa(p)
						}
						if m.kind == "SPUBLISH" {
							if sub.shards[m.channel] {
								want[stream("smessage", "")] = append(want[stream("smessage", "")], m.payload)
							}
							continue
						}
						if sub.channels[m.channel] {
							want[stream("message", "")] = append(want[stream("message", "")], m.payload)
						}
						for pat := range sub.patterns {
							if ok, _ := path.Match(pat, m.channel); ok {
								want[stream("pmessage", pat)] = append(want[stream("pmessage", pat)], m.payload)
							}
						}
					}
				}
				if !reflect.DeepEqual(got, want) {
					for k := range want {
						if !reflect.DeepEqual(got[k], want[k]) {
							t.Errorf("subscriber %d, %s: got %d messages, want %d", sub.id, k, len(got[k]), len(want[k]))
						}
					}
					for k := range got {
						if _, ok := want[k]; !ok {
							t.Errorf("subscriber %d, %s: %d messages it is not subscribed to", sub.id, k, len(got[k]))
						}
					}
				}
				if !sub.resp3 && sub.raw.SawResp3() {
					t.Errorf("subscriber %d speaks RESP2 and got a RESP3 type", sub.id)
				}
			}
		})
	}
}

// psPayload is a message body: mostly short, some of several KiB, up to 20 KiB.
func psPayload(r *rand.Rand) string {
	n := r.IntN(40)
	if r.IntN(10) == 0 {
		n = 1000 + r.IntN(20000)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = "ab\r\n\x00\xffxyz"[r.IntN(9)]
	}
	return string(b)
}

// receivers is what PUBLISH to channel answers on one node: each subscription of the channel
// and each pattern that matches it, of every subscriber.
func receivers(subs []*psSubscriber, channel string) int {
	n := 0
	for _, s := range subs {
		if s.channels[channel] {
			n++
		}
		for p := range s.patterns {
			if ok, _ := path.Match(p, channel); ok {
				n++
			}
		}
	}
	return n
}

// psSubscriber is one subscribed client connection and what it subscribed to.
type psSubscriber struct {
	id                         int
	nc                         net.Conn
	raw                        *redistest.Raw
	resp3                      bool
	channels, patterns, shards map[string]bool
}

func newPSSubscriber(t *testing.T, addr string, id int, slow, resp3 bool, seed uint64) *psSubscriber {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	rd := net.Conn(nc)
	if slow {
		rd = &slowConn{Conn: nc, rng: rand.New(rand.NewPCG(seed, 7))}
	}
	s := &psSubscriber{id: id, nc: nc, raw: redistest.NewRaw(t, rd), resp3: resp3,
		channels: map[string]bool{}, patterns: map[string]bool{}, shards: map[string]bool{}}
	if resp3 {
		s.do(t, "HELLO", "3")
	}
	return s
}

func (s *psSubscriber) do(t *testing.T, args ...string) any {
	t.Helper()
	if _, err := s.nc.Write(appendCommand(nil, args)); err != nil {
		t.Fatalf("%s: %v", args[0], err)
	}
	r, err := s.raw.Receive(10 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v", args[0], err)
	}
	return r
}

// subscribe subscribes to everything chosen, checking each confirmation, then waits for a
// PONG: once it comes, every node the subscriptions are on has them.
func (s *psSubscriber) subscribe(t *testing.T) {
	t.Helper()
	n := 0
	confirm := func(kind string, names map[string]bool) {
		for name := range names {
			n++
			want := []any{kind, name, int64(n)}
			if got := s.do(t, strings.ToUpper(kind), name); !reflect.DeepEqual(got, want) {
				t.Fatalf("subscriber %d: %s %s = %s, want %s", s.id, kind, name, showReply(got), showReply(want))
			}
		}
	}
	confirm("subscribe", s.channels)
	confirm("psubscribe", s.patterns)
	// SSUBSCRIBE counts shard channels apart.
	n = 0
	confirm("ssubscribe", s.shards)
	if got := s.do(t, "PING"); !isPong(got) {
		t.Fatalf("subscriber %d: PING = %s", s.id, showReply(got))
	}
}

func isPong(r any) bool {
	return reflect.DeepEqual(r, "PONG") || reflect.DeepEqual(r, []any{"pong", ""})
}

// drain sends PING and reads everything up to its PONG (which comes after every message
// published before it), grouped by stream: kind|pattern|channel|publisher.
func (s *psSubscriber) drain(t *testing.T) map[string][]string {
	if _, err := s.nc.Write(appendCommand(nil, []string{"PING"})); err != nil {
		t.Fatalf("subscriber %d: PING: %v", s.id, err)
	}
	got := map[string][]string{}
	for {
		r, err := s.raw.Receive(20 * time.Second)
		if err != nil {
			t.Fatalf("subscriber %d: %v", s.id, err)
		}
		if isPong(r) {
			return got
		}
		f, ok := r.([]any)
		var kind, pattern, channel, payload string
		switch {
		case ok && len(f) == 3 && (f[0] == "message" || f[0] == "smessage"):
			kind, channel, payload = f[0].(string), fmt.Sprint(f[1]), fmt.Sprint(f[2])
		case ok && len(f) == 4 && f[0] == "pmessage":
			kind, pattern, channel, payload = "pmessage", fmt.Sprint(f[1]), fmt.Sprint(f[2]), fmt.Sprint(f[3])
		default:
			t.Fatalf("subscriber %d: unexpected %s", s.id, showReply(r))
		}
		publisher, _, _ := strings.Cut(payload, ":")
		k := kind + "|" + pattern + "|" + channel + "|" + publisher
		got[k] = append(got[k], payload)
	}
}
