package proxy

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// splitSpecs are the commands the proxy splits, from the command table, so that a new one is
// fuzzed without touching this file.
func splitSpecs() []*command.Spec {
	var out []*command.Spec
	for _, sp := range command.All() {
		switch sp.Policy {
		case command.SplitMGet, command.SplitMSet, command.SplitSum:
			out = append(out, sp)
		}
	}
	return out
}

// fuzzTopos are the tables a fuzzed command is split over: rings of 0-8 nodes (0: every node
// ejected) and slot maps of 1-8 masters, whole or with the last slots uncovered, with or
// without a replica per master.
type fuzzTopos struct {
	rings             []*route.Ring
	slots, holed, rep []*route.SlotMap
}

func buildTopos(tb testing.TB) *fuzzTopos {
	h, _ := route.Hash("fnv1a_64")
	t := &fuzzTopos{}
	for n := 0; n <= 8; n++ {
		var nodes []route.Node
		for i := range n {
			nodes = append(nodes, route.Node{Addr: "10.0.0." + strconv.Itoa(i+1) + ":6379", Weight: 1 + i%3})
		}
		r, err := route.NewRing(nodes, h, "{}")
		if err != nil {
			tb.Fatal(err)
		}
		t.rings = append(t.rings, r)
	}
	for n := 1; n <= 8; n++ {
		build := func(end uint16, replicas bool) *route.SlotMap {
			var ranges []route.SlotRange
			per := int(end)/n + 1
			for i := range n {
				lo, hi := i*per, min((i+1)*per-1, int(end))
				r := route.SlotRange{Start: uint16(lo), End: uint16(hi), Master: route.SlotNode{Addr: "10.1.0." + strconv.Itoa(i+1) + ":7000"}}
				if replicas {
					r.Replicas = []route.SlotNode{{Addr: "10.2.0." + strconv.Itoa(i+1) + ":7000"}}
				}
				ranges = append(ranges, r)
			}
			m, err := route.NewSlotMap(ranges)
			if err != nil {
				tb.Fatal(err)
			}
			return m
		}
		t.slots = append(t.slots, build(route.Slots-1, false))
		t.holed = append(t.holed, build(route.Slots-1-4096, false))
		t.rep = append(t.rep, build(route.Slots-1, true))
	}
	return t
}

// routes picks a table: topo's low nibble is the node count, bit 4 cluster mode, bit 5 a
// slot map with a hole, bit 6 replicas read with read_from_slave.
func (t *fuzzTopos) routes(topo uint8) *routes {
	if topo&0x10 == 0 {
		return &routes{table: &route.Table{Ring: t.rings[int(topo&0x0f)%len(t.rings)]}}
	}
	i := int(topo&0x0f) % len(t.slots)
	m := t.slots[i]
	switch {
	case topo&0x20 != 0:
		m = t.holed[i]
	case topo&0x40 != 0:
		m = t.rep[i]
	}
	return &routes{table: &route.Table{Slots: m}, readFromSlave: topo&0x40 != 0}
}

// groupOf is the group a key splits into: its node on a ring, its slot in a Redis Cluster.
func groupOf(rt *routes, key []byte) int {
	if rt.table.Slots != nil {
		return int(route.Slot(key))
	}
	return rt.table.Ring.Pick(key)
}

// nodeServes says whether node may take a command for group: the ring's pick, or for a slot
// its master (or one of its replicas for a read with read_from_slave).
func nodeServes(rt *routes, group, node int, read bool) bool {
	m := rt.table.Slots
	if m == nil {
		return node == group
	}
	if node == m.Master(uint16(group)) {
		return true
	}
	return read && rt.readFromSlave && slices.Contains(m.Replicas(uint16(group)), node)
}

// Sub reply modes, chosen per sub-command by the fuzzer.
const (
	replyRight    = iota // what a server would answer
	replyError           // a well-formed error
	replyGarbage         // bytes from the fuzzer, anything at all
	replyWrongTyp        // well-formed, but not the type the command answers
	replyWrongLen        // MGET: an array with one element too many or too few
	replyModes
)

// FuzzSplitMerge feeds multi-key commands over arbitrary keys and tables through planSplit,
// checks the sub-commands (well-formed, every key once, grouped by node or slot, sent to a node
// that serves the group), answers them with fuzzer-chosen sub replies (right, errors, garbage,
// wrong type or length) and checks what merge makes of them: never a panic, always exactly one
// well-formed reply after what was already in the output buffer; all right → the reply a single
// server would give (for MGET each key's value in the client's order); a well-formed error →
// that error, once; a wrong but well-formed reply → an error.
func FuzzSplitMerge(f *testing.F) {
	specs := splitSpecs()
	topos := buildTopos(f)
	f.Add(uint8(0), uint8(3), []byte("a\x00b\x00c\x00{t}1\x00{t}2"), []byte{0, 0, 0})
	f.Add(uint8(2), uint8(0x13), []byte("k1\x00v1\x00k2\x00v2"), []byte{1, 0})
	f.Add(uint8(1), uint8(0x24), []byte("x\x00y\x00z"), []byte{2, 2, 2, '-', 'E', 'R', 'R'})
	// More groups than planSplit scans for (scanGroups): 40 keys over 40 slots or so.
	var many []string
	for i := range 40 {
		many = append(many, "key:"+strconv.Itoa(i))
	}
	for sel := range uint8(len(specs)) {
		f.Add(sel, uint8(0x17), []byte(strings.Join(many, "\x00")), []byte{})
	}
	f.Fuzz(func(t *testing.T, cmdSel, topo uint8, keyBytes, replies []byte) {
		spec := specs[int(cmdSel)%len(specs)]
		args := [][]byte{[]byte(strings.ToUpper(spec.Name))}
		for i, k := range bytes.Split(keyBytes, []byte{0}) {
			if i == 64 {
				break
			}
			args = append(args, k)
		}
		if !spec.CheckArity(len(args)) {
			return // the session refuses it before splitting
		}
		rt := topos.routes(topo)
		s := &session{c: &Cluster{name: "fuzz", log: hclog.NewNullLogger()}, routes: rt}
		pl := s.nextPlace()
		cmd := &resp.Command{Args: args}
		stride := 1
		if spec.Policy == command.SplitMSet {
			stride = 2
		}
		read := command.IsReadOnly(spec)

		plan, node := s.planSplit(pl, spec, cmd)
		switch plan {
		case splitAnswered:
			out := pl.local
			if n, err := resp.ScanReply(out); err != nil || n != len(out) || out[0] != '-' {
				t.Fatalf("answered with %q: not one error reply", out)
			}
			switch msg := string(out); {
			case stride == 2 && (len(args)-1)%2 != 0:
				if !strings.HasPrefix(msg, "-ERR wrong number of arguments") {
					t.Fatalf("odd MSET answered %q", out)
				}
			case rt.table.Slots == nil && len(rt.table.Ring.Nodes()) == 0:
				if !strings.HasPrefix(msg, "-ERR no backend node available") {
					t.Fatalf("empty ring answered %q", out)
				}
			case rt.table.Slots != nil && rt.table.Slots.Covered() < route.Slots:
				if msg != "-CLUSTERDOWN Hash slot not served\r\n" {
					t.Fatalf("holed slot map answered %q", out)
				}
			default:
				t.Fatalf("answered %q although every key has a node", out)
			}
			return
		case splitWhole:
			g := groupOf(rt, args[1])
			for i := 1; i < len(args); i += stride {
				if gi := groupOf(rt, args[i]); gi != g {
					t.Fatalf("sent whole although %q is in group %d and %q in %d", args[1], g, args[i], gi)
				}
			}
			if node >= 0 && !nodeServes(rt, g, node, read) {
				t.Fatalf("sent whole to node %d, which does not serve group %d", node, g)
			}
			if node < 0 && (rt.table.Slots == nil || rt.table.Slots.Master(uint16(g)) >= 0) {
				t.Fatalf("sent whole to no node although group %d is served", g)
			}
			return
		}

		// splitSubs: every sub-command is one well-formed command of one group, on a node of it.
		if pl.kind != placeSplit || pl.nsubs < 2 || len(s.targets) != pl.nsubs {
			t.Fatalf("split into kind %d, %d subs, %d targets", pl.kind, pl.nsubs, len(s.targets))
		}
		subArgs := make([][][]byte, pl.nsubs)
		seen := map[int]bool{}
		for g, c := range pl.subs[:pl.nsubs] {
			rd := resp.NewReader(bytes.NewReader(c.frame), 1<<16)
			var sc resp.Command
			if err := rd.Read(&sc); err != nil {
				t.Fatalf("sub %d %q: %v", g, c.frame, err)
			}
			if rd.Buffered() != 0 || !bytes.Equal(sc.Raw, c.frame) {
				t.Fatalf("sub %d %q is not exactly one command", g, c.frame)
			}
			if !bytes.Equal(sc.Args[0], args[0]) || (len(sc.Args)-1)%stride != 0 || len(sc.Args) < 1+stride {
				t.Fatalf("sub %d has args %q", g, sc.Args)
			}
			for _, a := range sc.Args {
				subArgs[g] = append(subArgs[g], bytes.Clone(a))
			}
			group := groupOf(rt, sc.Args[1])
			if seen[group] {
				t.Fatalf("group %d split into two subs", group)
			}
			seen[group] = true
			for i := 1; i < len(sc.Args); i += stride {
				if groupOf(rt, sc.Args[i]) != group {
					t.Fatalf("sub %d mixes groups: %q", g, sc.Args)
				}
			}
			if !nodeServes(rt, group, s.targets[g], read) {
				t.Fatalf("sub %d (group %d) goes to node %d", g, group, s.targets[g])
			}
		}
		// Each of the client's keys (and values) is in exactly one sub, where order says.
		nkeys := (len(args) - 1) / stride
		if len(pl.order) != nkeys {
			t.Fatalf("order has %d refs for %d keys", len(pl.order), nkeys)
		}
		total := 0
		for _, sa := range subArgs {
			total += (len(sa) - 1) / stride
		}
		if total != nkeys {
			t.Fatalf("subs carry %d keys, the client sent %d", total, nkeys)
		}
		// order gives each key's sub; within a sub, keys keep the client's order.
		pos := make([]int, pl.nsubs)
		for i, sub := range pl.order {
			sa := subArgs[sub]
			at := 1 + pos[sub]*stride
			if at+stride > len(sa) || !bytes.Equal(sa[at], args[1+i*stride]) || (stride == 2 && !bytes.Equal(sa[at+1], args[2+i*stride])) {
				t.Fatalf("key %d %q is not at sub %d position %d", i, args[1+i*stride], sub, pos[sub])
			}
			pos[sub]++
		}

		// Sub replies.
		modes := make([]int, pl.nsubs)
		garbage := replies
		if len(garbage) > pl.nsubs {
			garbage = garbage[pl.nsubs:]
		} else {
			garbage = nil
		}
		allRight, firstErr, anyGarbage, anyWrong := true, []byte(nil), false, false
		for g, c := range pl.subs[:pl.nsubs] {
			if g < len(replies) {
				modes[g] = int(replies[g]) % replyModes
			}
			keys := (len(subArgs[g]) - 1) / stride
			var r []byte
			switch modes[g] {
			case replyRight:
				r = rightReply(spec.Policy, subArgs[g][1:], stride)
			case replyError:
				r = []byte("-ERR sub " + strconv.Itoa(g) + " failed\r\n")
			case replyGarbage:
				// Each garbage sub takes its own slice of the fuzzer's bytes.
				part := len(garbage) / pl.nsubs
				r = bytes.Clone(garbage[g*part : (g+1)*part])
				if g == pl.nsubs-1 {
					r = bytes.Clone(garbage[g*part:])
				}
			case replyWrongTyp:
				r = []byte(":1\r\n")
				if spec.Policy != command.SplitMGet {
					r = []byte("*-1\r\n")
				}
			case replyWrongLen:
				r = rightReply(command.SplitMGet, subArgs[g][1:1+keys-1], 1)
				if replies[g]&0x80 != 0 {
					r = rightReply(command.SplitMGet, append(slices.Clone(subArgs[g][1:]), []byte("extra")), 1)
				}
				if spec.Policy != command.SplitMGet {
					r = []byte("+QUEUED\r\n")
				}
			}
			c.req.Reply = r
			allRight = allRight && modes[g] == replyRight
			switch {
			case modes[g] == replyGarbage:
				anyGarbage = true
			case modes[g] == replyError && firstErr == nil:
				firstErr = r
			case modes[g] != replyRight && modes[g] != replyError:
				anyWrong = true
			}
		}

		prefix := []byte("+before\r\n")
		out := s.merge(slices.Clone(prefix), pl)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("merge overwrote what came before: %q", out)
		}
		reply := out[len(prefix):]
		if n, err := resp.ScanReply(reply); err != nil || n != len(reply) {
			t.Fatalf("merged reply %q is not exactly one reply (%d of %d bytes, %v); modes %v", reply, n, len(reply), err, modes)
		}
		switch {
		case allRight:
			want := rightReply(spec.Policy, args[1:], stride)
			if spec.Policy == command.SplitMSet {
				want = okReply
			}
			if !bytes.Equal(reply, want) {
				t.Fatalf("all subs right, merged %q, want %q", reply, want)
			}
		case anyGarbage:
			// Anything well-formed will do.
		case firstErr != nil:
			if !bytes.Equal(reply, firstErr) {
				t.Fatalf("merged %q, want the first sub error %q; modes %v", reply, firstErr, modes)
			}
		case anyWrong:
			if reply[0] != '-' {
				t.Fatalf("wrong sub replies merged into %q, not an error; modes %v", reply, modes)
			}
		}
	})
}

// rightReply is a server's answer to a sub-command over keys (key/value pairs for MSET): for
// MGET each key's value is the key itself, so the merged array shows where each came from; a
// DEL-like command counts every key.
func rightReply(p command.Policy, keys [][]byte, stride int) []byte {
	switch p {
	case command.SplitMSet:
		return slices.Clone(okReply)
	case command.SplitSum:
		return resp.AppendInt(nil, int64(len(keys)/stride))
	}
	out := resp.AppendArrayHeader(nil, len(keys))
	for _, k := range keys {
		out = resp.AppendBulk(out, k)
	}
	return out
}

// TestSplitMergeExamples pins a few merges exactly, beside the fuzzer's invariants.
func TestSplitMergeExamples(t *testing.T) {
	topos := buildTopos(t)
	s := &session{c: &Cluster{name: "ex", log: hclog.NewNullLogger()}, routes: topos.routes(0x13)}
	pl := s.nextPlace()
	cmd := &resp.Command{Args: [][]byte{[]byte("MGET"), []byte("a"), []byte("b"), []byte("c"), []byte("d")}}
	if plan, _ := s.planSplit(pl, command.Lookup([]byte("mget")), cmd); plan != splitSubs {
		t.Fatalf("MGET a b c d over 3 masters: plan %d", plan)
	}
	set := func(replies ...string) {
		for i, r := range replies {
			pl.subs[i].req.Reply = []byte(r)
		}
	}
	subs := make([]string, pl.nsubs)
	right := func() {
		for g, c := range pl.subs[:pl.nsubs] {
			var sc resp.Command
			if err := resp.NewReader(bytes.NewReader(c.frame), 4096).Read(&sc); err != nil {
				t.Fatal(err)
			}
			subs[g] = string(rightReply(command.SplitMGet, sc.Args[1:], 1))
		}
		set(subs...)
	}
	right()
	if got := string(s.merge(nil, pl)); got != "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n" {
		t.Errorf("merged %q", got)
	}
	for _, c := range []struct{ name, sub0, want string }{
		{"error passes", "-MOVED 1 x:1\r\n", "-MOVED 1 x:1\r\n"},
		{"malformed error", "-ERR no end", "-ERR unexpected reply from backend: malformed error\r\n"},
		{"not an array", ":3\r\n", "-ERR unexpected reply from backend: not an array\r\n"},
		{"too long", "*9\r\n" + strings.Repeat("$-1\r\n", 9), "-ERR unexpected reply from backend: wrong array length\r\n"},
	} {
		right()
		set(c.sub0)
		if got := string(s.merge(nil, pl)); got != c.want {
			t.Errorf("%s: merged %q, want %q", c.name, got, c.want)
		}
	}

	// Planning and merging reuse the session's scratch space: no allocation once warm.
	right()
	spec := command.Lookup([]byte("mget"))
	out := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() {
		s.n = 0
		pl := s.nextPlace()
		s.planSplit(pl, spec, cmd)
		out = s.merge(out[:0], pl)
	}); allocs != 0 {
		t.Errorf("planSplit+merge of MGET: %v allocs/op, want 0", allocs)
	}
	if string(out) != "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n" {
		t.Errorf("merged %q after reuse", out)
	}
}
