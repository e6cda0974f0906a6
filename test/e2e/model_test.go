package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestMixedTrafficMatchesModel runs random pipelines of reads, writes and multi-key commands
// (values from empty to 40 KiB, so replies both copied and lent from the nodes' read buffers;
// keys across nodes and slots, so MGET/MSET/DEL/EXISTS are split), transactions, scripts,
// hashes and lists (BLPOP among them, on connections of their own) from several clients at
// once, half of them speaking RESP3 and a third reading their replies slowly in small pieces,
// and checks every reply against a model of what each client wrote: a client owns its keys,
// so whatever asterd batches, splits, holds back or caches, each reply must be exactly what
// Redis would give (and a RESP2 client never gets a RESP3 type). In the faulty case relays
// delay and cut the node links at random: a reply may then be an error (the keys its command
// writes become unknown to the model) but never a wrong value. The seed is logged;
// ASTER_MODEL_SEED replays one.
func TestMixedTrafficMatchesModel(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	rc := redistest.StartCluster(t, 3, 0)
	standalone := func(servers string) string {
		return `
[[clusters]]
name = "s"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = ` + servers + "\n"
	}
	relayed := `["` + redistest.StartRelay(t, servers[0].Addr, 200*time.Microsecond, 0.001).Addr + `:1 r1", "` +
		redistest.StartRelay(t, servers[1].Addr, 200*time.Microsecond, 0.001).Addr + `:1 r2"]`
	cache := `client_cache = { enabled = true, max_entries = 512, max_value_bytes = 16384, shard_count = 4 }` + "\n"
	var rcf *redistest.Cluster // with replicas, for the failovers case alone
	type driver func(t *testing.T, a *asterd, stop <-chan struct{}) (changes int)
	// clients and pipelines per client, and a driver that changes something under them
	// until they are done (it must change it at least once).
	cases := []struct {
		name               string
		config             func() string
		clients, pipelines int
		faults             bool // errors are allowed (relays cut the node links)
		drive              driver
	}{
		{"standalone", func() string { return standalone(serverList(servers, []int{1, 2, 1}, true)) }, 6, 120, false, nil},
		{"standalone cached", func() string { return standalone(serverList(servers, []int{1, 2, 1}, true)) + cache }, 6, 120, false, nil},
		// With many clients asterd is stopped (SIGSTOP) while they send their first pipelines,
		// so that its loop's epoll waits fill up (256 events) and it also reads the node
		// connections that owe replies, event or not.
		{"standalone 1000 clients", func() string { return standalone(serverList(servers, []int{1, 2, 1}, true)) }, 1000, 2, false, nil},
		{"cluster", func() string { return clusterConfig(rc.Seeds(), "") }, 6, 120, false, nil},
		{"cluster cached", func() string { return clusterConfig(rc.Seeds(), cache) }, 6, 120, false, nil},
		{"cluster 1000 clients", func() string { return clusterConfig(rc.Seeds(), "") }, 1000, 2, false, nil},
		// The relays' 512-byte steps are slow: fewer pipelines.
		{"standalone faulty cached", func() string { return standalone(relayed) + cache }, 6, 50, true, nil},
		{"standalone live changes", func() string { return standalone(serverList(servers, []int{1, 2, 1}, true)) }, 6, 120, false, liveChanges},
		{"cluster live changes", func() string { return clusterConfig(rc.Seeds(), "") }, 6, 120, false, liveChanges},
		{"cluster resharding", func() string { return clusterConfig(rc.Seeds(), "") }, 6, 200, false,
			func(t *testing.T, _ *asterd, stop <-chan struct{}) int { return reshards(t, rc, stop) }},
		// A manual failover pauses the master's writes until its replica has them all:
		// read_timeout waits that out, however slow the machine.
		{"cluster failovers", func() string {
			rcf = redistest.StartCluster(t, 3, 1)
			return strings.Replace(clusterConfig(rcf.Seeds(), ""), "read_timeout = 1000", "read_timeout = 15000", 1)
		}, 6, 200, false,
			func(t *testing.T, _ *asterd, stop <-chan struct{}) int { return failovers(t, rcf, stop) }},
	}
	seed := modelSeed(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startAsterd(t, tc.config())
			waitServing(t, a.client(t), 10*time.Second)
			clients := make([]*modelClient, tc.clients)
			for w := range clients { // all connected before any sends, so that they send at once
				clients[w] = newModelClient(t, a.Addr, fmt.Sprintf("model%d:w%d:", i, w), w%3 == 2, w%2 == 1, seed+uint64(i)<<32+uint64(w))
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var replies, failed int
			start := make(chan struct{})
			for _, m := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, f := m.run(t, tc.pipelines, tc.faults, start)
					mu.Lock()
					replies, failed = replies+r, failed+f
					mu.Unlock()
				}()
			}
			switch {
			case tc.drive != nil:
				stop := make(chan struct{})
				go func() { wg.Wait(); close(stop) }()
				close(start)
				n := tc.drive(t, a, stop)
				t.Logf("%d changes meanwhile", n)
				if n < 1 {
					t.Errorf("nothing changed while the clients ran")
				}
			case tc.clients > 256:
				_ = a.cmd.Process.Signal(syscall.SIGSTOP)
				close(start)
				time.Sleep(300 * time.Millisecond) // the first pipelines are in asterd's sockets
				_ = a.cmd.Process.Signal(syscall.SIGCONT)
			default:
				close(start)
			}
			wg.Wait()
			t.Logf("%d replies, %d of them errors", replies, failed)
			if failed*2 > replies {
				t.Errorf("%d of %d replies were errors: too few got through for the check to mean much", failed, replies)
			}
		})
	}
}

func modelSeed(t *testing.T) uint64 {
	if s := strings.TrimSpace(os.Getenv("ASTER_MODEL_SEED")); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ASTER_MODEL_SEED=%q: %v", s, err)
		}
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("seed %d (ASTER_MODEL_SEED=%d replays it)", v, v)
	return v
}

// modelClient is one connection and the values it wrote: nil is a key it knows absent.
type modelClient struct {
	nc       net.Conn
	raw      *redistest.Raw
	rng      *rand.Rand
	keys     []string
	count    []string // keys that only ever hold integers
	tagged   []string // the keys and counters of one slot, which transactions use
	tagCnt   []string
	pool     []string // the keys and counters next draws from: all, or the tagged ones
	cnts     []string
	txBroken bool // a MULTI failed (faults): its commands ran or failed as they came
	model    map[string][]byte
	unknown  map[string]bool // keys a failed write may or may not have changed
	resp3    bool            // the client said HELLO 3; the others must get no RESP3 type
	seed     uint64
	getSHA   string // getScript's, loaded by newModelClient
	typedKeys
}

func newModelClient(t *testing.T, addr, prefix string, slow, resp3 bool, seed uint64) *modelClient {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return nil
	}
	m := &modelClient{nc: nc, rng: rand.New(rand.NewPCG(seed, seed>>1)), model: map[string][]byte{}, unknown: map[string]bool{}, seed: seed}
	rd := net.Conn(nc)
	if slow {
		rd = &slowConn{Conn: nc, rng: rand.New(rand.NewPCG(seed, 7))}
	}
	m.raw = redistest.NewRaw(t, rd)
	if m.resp3 = resp3; resp3 {
		if _, err := nc.Write(appendCommand(nil, []string{"HELLO", "3"})); err != nil {
			t.Errorf("HELLO 3: %v", err)
			return nil
		}
		if r, err := m.raw.Receive(10 * time.Second); err != nil || !m.raw.SawResp3() {
			t.Errorf("HELLO 3: %s, %v: not a RESP3 map", showReply(r), err)
			return nil
		}
	}
	if _, err := nc.Write(appendCommand(nil, []string{"SCRIPT", "LOAD", getScript})); err != nil {
		t.Errorf("SCRIPT LOAD: %v", err)
		return nil
	}
	if r, err := m.raw.Receive(10 * time.Second); err != nil {
		t.Errorf("SCRIPT LOAD: %v", err)
		return nil
	} else if m.getSHA, _ = r.(string); len(m.getSHA) != 40 {
		t.Errorf("SCRIPT LOAD: %s", showReply(r))
		return nil
	}
	for i := 0; i < 40; i++ {
		k := prefix + spreadKey("", i)
		if i%5 == 0 { // several keys of one slot, so some multi-key commands are not split
			k = "{" + prefix + "}" + strconv.Itoa(i)
			m.tagged = append(m.tagged, k)
		}
		m.keys = append(m.keys, k)
	}
	for i := 0; i < 6; i++ {
		k := prefix + "n" + spreadKey("", i)
		if i%2 == 0 {
			k = "{" + prefix + "}n" + strconv.Itoa(i)
			m.tagCnt = append(m.tagCnt, k)
		}
		m.count = append(m.count, k)
	}
	m.pool, m.cnts = m.keys, m.count
	m.initTyped(prefix)
	for _, k := range append(m.keys, m.count...) {
		m.model[k] = nil
	}
	return m
}

// slowConn reads at most a few hundred bytes a time and now and then pauses, so that asterd's
// replies wait in its buffers and its writes to the client are partial.
type slowConn struct {
	net.Conn
	rng *rand.Rand
}

func (c *slowConn) Read(p []byte) (int, error) {
	if n := 1 + c.rng.IntN(700); len(p) > n {
		p = p[:n]
	}
	if c.rng.IntN(40) == 0 {
		time.Sleep(time.Duration(c.rng.IntN(3000)) * time.Microsecond)
	}
	return c.Conn.Read(p)
}

// modelCmd is a command and its check: given the reply, against the model as the commands
// before it in the pipeline left it, it updates the model and says what was wrong, if
// anything. An error reply, where faults are allowed, makes the keys it would have written
// unknown instead.
type modelCmd struct {
	args   []string
	writes []string // keys whose value is unknown once the command failed
	check  func(got any) string
	onErr  func() // also run on an error reply, where faults allow one
}

// run sends n random pipelines, the first once start is closed, and checks each reply; it
// returns how many replies were errors (allowed when faults is set).
func (m *modelClient) run(t *testing.T, n int, faults bool, start <-chan struct{}) (replies, failed int) {
	if m == nil {
		<-start
		return 0, 0
	}
	for p := 0; p < n; p++ {
		depth := 1 + m.rng.IntN(1+m.rng.IntN(32))
		cmds := make([]modelCmd, 0, depth)
		for len(cmds) < depth {
			if m.rng.IntN(25) == 0 {
				cmds = append(cmds, m.tx()...)
			} else {
				cmds = append(cmds, m.next())
			}
		}
		var req []byte
		for _, c := range cmds {
			req = appendCommand(req, c.args)
		}
		cuts := m.cuts(len(req))
		if p == 0 {
			<-start
		}
		werr := make(chan error, 1)
		go func() { werr <- m.write(req, cuts) }() // written while replies are read, as clients do
		for i, c := range cmds {
			got, err := m.raw.Receive(20 * time.Second)
			if err != nil {
				t.Errorf("seed %d, pipeline %d, reply %d of %d (%s): %v", m.seed, p, i, depth, show(c.args), err)
				return
			}
			replies++
			if e, ok := got.(redistest.ErrReply); ok && faults && !strings.HasPrefix(string(e), "ERR value is not an integer") {
				failed++
				if failed == 1 {
					t.Logf("an error, allowed with faults: %s: %s", show(c.args), e)
				}
				for _, k := range c.writes {
					m.unknown[k] = true
				}
				if c.onErr != nil {
					c.onErr()
				}
				continue
			}
			if why := c.check(got); why != "" {
				t.Errorf("seed %d, pipeline %d, reply %d of %d: %s\n got  %s\n %s", m.seed, p, i, depth,
					show(c.args), showReply(got), why)
				return
			}
		}
		if err := <-werr; err != nil {
			t.Errorf("seed %d, pipeline %d: write: %v", m.seed, p, err)
			return
		}
		if !m.resp3 && m.raw.SawResp3() {
			t.Errorf("seed %d, pipeline %d: a RESP2 client got a reply of a RESP3 type", m.seed, p)
			return
		}
	}
	return
}

// cuts returns the lengths of the pieces a request of n bytes is written in: whole, or a
// third of the time cut at random bytes so that commands arrive in pieces.
func (m *modelClient) cuts(n int) []int {
	var out []int
	if m.rng.IntN(3) == 0 {
		for range 1 + m.rng.IntN(6) {
			if n < 2 {
				break
			}
			cut := 1 + m.rng.IntN(n-1)
			out, n = append(out, cut), n-cut
		}
	}
	return append(out, n)
}

func (m *modelClient) write(req []byte, cuts []int) error {
	_ = m.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for _, n := range cuts {
		if _, err := m.nc.Write(req[:n]); err != nil {
			return err
		}
		req = req[n:]
	}
	return nil
}

// want compares a reply with the expected one; "" when they agree.
func want(got, want any) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	return "want " + showReply(want)
}

// value is what the model says key holds: a string, nil when absent, or known false.
func (m *modelClient) value(key string) (v any, known bool) {
	if m.unknown[key] {
		return nil, false
	}
	if b := m.model[key]; b != nil {
		return string(b), true
	}
	return nil, true
}

// set records key's value (nil: absent), known from now on.
func (m *modelClient) set(key string, v []byte) {
	m.model[key] = v
	delete(m.unknown, key)
}

// next draws a command with its check.
func (m *modelClient) next() modelCmd {
	r := m.rng
	switch r.IntN(20) {
	case 0, 1:
		return m.nextHash()
	case 2, 3:
		return m.nextList()
	case 4:
		return m.nextScript()
	}
	key := func() string { return m.pool[r.IntN(len(m.pool))] }
	some := func(max int) []string { // keys, repeats allowed
		ks := make([]string, 1+r.IntN(max))
		for i := range ks {
			ks[i] = key()
		}
		return ks
	}
	// isBulk accepts what GET may answer for a key whose value is unknown.
	isBulk := func(got any) bool {
		_, ok := got.(string)
		return ok || got == nil
	}
	switch op := r.IntN(100); {
	case op < 30, op >= 93 && op < 96:
		k := key()
		if op >= 93 {
			k = m.cnts[r.IntN(len(m.cnts))]
		}
		return modelCmd{args: []string{"GET", k}, check: func(got any) string {
			if v, known := m.value(k); known {
				return want(got, v)
			} else if !isBulk(got) {
				return "want a bulk string or nil"
			}
			return ""
		}}
	case op < 45:
		k, v := key(), m.randValue()
		return modelCmd{args: []string{"SET", k, string(v)}, writes: []string{k}, check: func(got any) string {
			m.set(k, v)
			return want(got, "OK")
		}}
	case op < 55:
		ks := some(12)
		return modelCmd{args: append([]string{"MGET"}, ks...), check: func(got any) string {
			arr, ok := got.([]any)
			if !ok || len(arr) != len(ks) {
				return fmt.Sprintf("want an array of %d", len(ks))
			}
			for i, k := range ks {
				if v, known := m.value(k); known && !reflect.DeepEqual(arr[i], v) {
					return fmt.Sprintf("want %s at %d", showReply(v), i)
				} else if !known && !isBulk(arr[i]) {
					return fmt.Sprintf("want a bulk string or nil at %d", i)
				}
			}
			return ""
		}}
	case op < 62:
		args, ks := []string{"MSET"}, []string{}
		var vs [][]byte
		for range 1 + r.IntN(5) {
			k, v := key(), m.randValue()
			args, ks, vs = append(args, k, string(v)), append(ks, k), append(vs, v)
		}
		return modelCmd{args: args, writes: ks, check: func(got any) string {
			for i, k := range ks {
				m.set(k, vs[i]) // a key named twice keeps its last value, as in Redis
			}
			return want(got, "OK")
		}}
	case op < 67:
		ks := some(6)
		return modelCmd{args: append([]string{"DEL"}, ks...), writes: ks, check: func(got any) string {
			n, allKnown := int64(0), true
			for _, k := range ks {
				if v, known := m.value(k); !known {
					allKnown = false
				} else if v != nil {
					n++
				}
				m.set(k, nil)
			}
			if allKnown {
				return want(got, n)
			}
			if _, ok := got.(int64); !ok {
				return "want an integer"
			}
			return ""
		}}
	case op < 72:
		ks := some(8)
		return modelCmd{args: append([]string{"EXISTS"}, ks...), check: func(got any) string {
			n := int64(0)
			for _, k := range ks {
				if v, known := m.value(k); !known {
					return ""
				} else if v != nil {
					n++ // EXISTS counts a key named twice twice
				}
			}
			return want(got, n)
		}}
	case op < 78:
		k, v := key(), m.randValue()
		if len(m.model[k])+len(v) > 64<<10 { // keep values bounded: start the key over
			return modelCmd{args: []string{"SET", k, string(v)}, writes: []string{k}, check: func(got any) string {
				m.set(k, v)
				return want(got, "OK")
			}}
		}
		return modelCmd{args: []string{"APPEND", k, string(v)}, writes: []string{k}, check: func(got any) string {
			if _, known := m.value(k); !known {
				return "" // and it stays unknown
			}
			m.set(k, append(append([]byte{}, m.model[k]...), v...))
			return want(got, int64(len(m.model[k])))
		}}
	case op < 82:
		k := key()
		return modelCmd{args: []string{"STRLEN", k}, check: func(got any) string {
			if _, known := m.value(k); !known {
				return ""
			}
			return want(got, int64(len(m.model[k])))
		}}
	case op < 85:
		k := key()
		return modelCmd{args: []string{"GETDEL", k}, writes: []string{k}, check: func(got any) string {
			v, known := m.value(k)
			m.set(k, nil)
			if !known {
				return ""
			}
			return want(got, v)
		}}
	case op < 93:
		k, by := m.cnts[r.IntN(len(m.cnts))], int64(r.IntN(2000)-1000)
		return modelCmd{args: []string{"INCRBY", k, strconv.FormatInt(by, 10)}, writes: []string{k}, check: func(got any) string {
			v, known := m.value(k)
			n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
			if !known { // the reply tells the value
				if g, ok := got.(int64); ok {
					m.set(k, []byte(strconv.FormatInt(g, 10)))
					return ""
				}
				return "want an integer"
			}
			m.set(k, []byte(strconv.FormatInt(n+by, 10)))
			return want(got, n+by)
		}}
	case op < 98: // an error in the middle of a pipeline keeps its place
		k := key()
		return modelCmd{args: []string{"INCR", k}, writes: []string{k}, check: func(got any) string {
			v, known := m.value(k)
			if !known {
				return ""
			}
			if v == nil {
				m.set(k, []byte("1"))
				return want(got, int64(1))
			}
			n, err := strconv.ParseInt(v.(string), 10, 64)
			if err != nil { // values start with 'x'; only an empty one parses... as an error too
				return want(got, redistest.ErrReply("ERR value is not an integer or out of range"))
			}
			m.set(k, []byte(strconv.FormatInt(n+1, 10)))
			return want(got, n+1)
		}}
	default:
		v := string(m.randValue())
		return modelCmd{args: []string{"ECHO", v}, check: func(got any) string { return want(got, v) }}
	}
}

// tx draws a transaction over the keys of one slot: MULTI, commands (each answered QUEUED),
// then EXEC, whose array holds their replies, or DISCARD.
func (m *modelClient) tx() []modelCmd {
	m.pool, m.cnts, m.hpool, m.lpool = m.tagged, m.tagCnt, m.tagH, m.tagL
	inner := make([]modelCmd, 1+m.rng.IntN(6))
	for i := range inner {
		inner[i] = m.next()
	}
	m.pool, m.cnts, m.hpool, m.lpool = m.keys, m.count, m.hkeys, m.lkeys
	var writes []string
	for _, c := range inner {
		writes = append(writes, c.writes...)
	}
	unknown := func(keys []string) {
		for _, k := range keys {
			m.unknown[k] = true
		}
	}
	cmds := []modelCmd{{args: []string{"MULTI"}, check: func(got any) string { return want(got, "OK") },
		onErr: func() { m.txBroken = true }}}
	for _, c := range inner {
		cmds = append(cmds, modelCmd{args: c.args, writes: c.writes, check: func(got any) string {
			if m.txBroken { // not queued: run or failed as it came
				unknown(c.writes)
				return ""
			}
			return want(got, "QUEUED")
		}})
	}
	end := func() { m.txBroken = false }
	if m.rng.IntN(6) == 0 {
		return append(cmds, modelCmd{args: []string{"DISCARD"}, onErr: end, check: func(got any) string {
			defer end()
			if m.txBroken {
				return ""
			}
			return want(got, "OK")
		}})
	}
	return append(cmds, modelCmd{args: []string{"EXEC"}, writes: writes, onErr: end, check: func(got any) string {
		defer end()
		if m.txBroken {
			return ""
		}
		arr, ok := got.([]any)
		if !ok || len(arr) != len(inner) {
			return fmt.Sprintf("want an array of %d replies", len(inner))
		}
		for i, c := range inner {
			if why := c.check(arr[i]); why != "" {
				return fmt.Sprintf("reply %d (%s): got %s, %s", i, show(c.args), showReply(arr[i]), why)
			}
		}
		return ""
	}})
}

// randValue returns random bytes (CR and LF among them) of a size from empty to 40 KiB, mostly
// small: asterd lends replies of 4 KiB and more from the node connections' buffers.
func (m *modelClient) randValue() []byte {
	r := m.rng
	var n int
	switch p := r.IntN(100); {
	case p < 45:
		n = r.IntN(33)
	case p < 80:
		n = 33 + r.IntN(1000)
	case p < 93:
		n = 1000 + r.IntN(7000)
	default:
		n = 8000 + r.IntN(33000)
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = "x\r\nabcdefgh\x00\xff0123456789"[r.IntN(23)]
	}
	if n > 0 {
		v[0] = 'x' // never an integer, so INCR on it is an error
	}
	return v
}

func appendCommand(b []byte, args []string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// show prints a command with long arguments cut.
func show(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if len(a) > 40 {
			fmt.Fprintf(&b, "%q...(%d bytes)", a[:40], len(a))
		} else {
			fmt.Fprintf(&b, "%q", a)
		}
	}
	return b.String()
}

func showReply(v any) string {
	switch v := v.(type) {
	case string:
		return show([]string{v})
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = showReply(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case nil:
		return "nil"
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}
