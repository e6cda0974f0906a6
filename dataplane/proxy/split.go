package proxy

import (
	"bytes"
	"slices"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

var okReply = []byte("+OK\r\n")

// split sends a multi-key command (MGET, MSET, DEL, ...) as one sub-command per group of its
// keys — per node in standalone mode, per slot in cluster mode, since Redis refuses multi-key
// commands across slots — and merge puts the replies back together in the client's order. A
// command whose keys all fall in one group goes out as it came.
func (s *session) split(pl *place, spec *command.Spec, cmd *resp.Command) {
	switch plan, node := s.planSplit(pl, spec, cmd); plan {
	case splitWhole:
		s.forward(pl, node, cmd)
	case splitSubs:
		s.pend.Add(pl.nsubs)
		for g, c := range pl.subs[:pl.nsubs] {
			s.sendAdded(c, s.conn(s.targets[g]), c.frame)
		}
		if len(cmd.Args) > keepArgsScratch {
			// A big command's memory need not wait for its replies: its arguments are in
			// the sub-commands, which the connections have copied, and only a Redis Cluster
			// may redirect (and so resend) them.
			cmd.Args = nil
			// Protocol, not placement: a Redis Cluster node may answer MOVED/ASK, and the
			// redirected sub-command is resent from its frame.
			if !s.routes.table.Cluster() {
				for _, c := range pl.subs[:pl.nsubs] {
					c.frame = nil
				}
			}
		}
	}
}

// splitPlan is what planSplit decided.
type splitPlan uint8

const (
	splitAnswered splitPlan = iota // pl holds the reply (an error)
	splitWhole                     // all keys in one group: send the command as it came
	splitSubs                      // pl.subs[:pl.nsubs] hold the sub-commands (frame), s.targets their nodes
)

// maxSplitGroups is how many groups a split may have: pl.order holds a group index per key
// in 16 bits. A Redis Cluster has 16384 slots; a ring this many nodes is not a real one.
const maxSplitGroups = 1 << 16

// planSplit groups the keys of a split command and builds its sub-commands without sending
// anything (so that split and merge can be exercised without a network). For splitWhole it
// also returns the node (-1: none serves).
//
// What a big command costs per key is kept near the key's own size (a DEL of a million keys
// must not cost ten times its 13 MB): per key, 2 bytes of group index (pl.order), and its
// bulk once more in its sub-command; the sub-commands are built into one buffer of the exact
// size, measured first, and nothing else is allocated per key.
func (s *session) planSplit(pl *place, spec *command.Spec, cmd *resp.Command) (splitPlan, int) {
	args := cmd.Args
	stride := 1
	if spec.Policy == command.SplitMSet {
		stride = 2
		if (len(args)-1)%2 != 0 {
			pl.setError("ERR wrong number of arguments for '" + spec.Name + "' command")
			return splitAnswered, 0
		}
	}
	t := s.routes.table
	nkeys := (len(args) - 1) / stride
	order := pl.order[:0]
	if cap(order) < nkeys {
		order = make([]uint16, 0, nkeys)
	}
	// One pass: each key's group (the table's: a ring node, a hash slot) and the group's key
	// count and bytes of bulks.
	ngroups := t.Groups()
	dense := ngroups <= maxDenseGroups
	// Room for as many groups as there can be, so that a split over thousands of slots does
	// not grow these by appends.
	maxGroups := min(ngroups, nkeys)
	if cap(s.counts) < maxGroups {
		s.counts, s.sizes, s.gks = make([]int, 0, maxGroups), make([]int, 0, maxGroups), make([]int, 0, maxGroups)
	}
	counts, sizes, gks := s.counts[:0], s.sizes[:0], s.gks[:0]
	for i := 1; i < len(args); i += stride {
		gk := t.Group(args[i])
		if gk < 0 { // an empty ring
			s.unindexGroups(gks, dense)
			s.noNode(pl)
			return splitAnswered, 0
		}
		g := s.findGroup(gks, gk, dense)
		if g < 0 {
			if len(gks) == maxSplitGroups {
				s.unindexGroups(gks, dense)
				pl.setError("ERR too many nodes to split '" + spec.Name + "' over")
				return splitAnswered, 0
			}
			g = len(gks)
			gks = s.addGroup(gks, gk, ngroups, dense)
			counts = append(counts, 0)
			sizes = append(sizes, 0)
		}
		order = append(order, uint16(g))
		counts[g]++
		sizes[g] += resp.BulkSize(len(args[i]))
		if stride == 2 {
			sizes[g] += resp.BulkSize(len(args[i+1]))
		}
	}
	s.counts, s.sizes, s.gks = counts, sizes, gks
	s.unindexGroups(gks, dense)
	read := command.IsReadOnly(spec)
	if len(gks) == 1 {
		pl.order = order[:0]
		return splitWhole, s.groupNode(gks[0], read)
	}
	targets := s.targets[:0]
	if cap(targets) < len(gks) {
		targets = make([]int, 0, len(gks))
	}
	for _, gk := range gks {
		node := s.groupNode(gk, read)
		if node < 0 { // an uncovered slot
			s.noNode(pl)
			return splitAnswered, 0
		}
		targets = append(targets, node)
	}
	s.targets = targets
	pl.order = order
	pl.kind, pl.policy, pl.nsubs = placeSplit, spec.Policy, len(counts)
	if missing := pl.nsubs - len(pl.subs); missing > 0 {
		// One allocation for all the calls a split over many slots needs.
		pl.subs = slices.Grow(pl.subs, missing)
		slab := make([]call, missing)
		for i := range slab {
			slab[i].req.Bind(&s.pend)
			slab[i].req.Charge(pl.budget)
			pl.subs = append(pl.subs, &slab[i])
		}
	}
	// The sub-commands, in one buffer of the exact size: each its header and name, then, in
	// one pass over the keys, each key (and value) to its group's frame, in client order
	// within each group, as Redis would apply them. Appends stay within each frame's capacity.
	total := 0
	for g, n := range counts {
		sizes[g] += resp.ArrayHeaderSize(1+n*stride) + resp.BulkSize(len(args[0]))
		total += sizes[g]
	}
	buf := pl.splitBuf
	if cap(buf) < total {
		buf = make([]byte, total)
	}
	buf = buf[:total]
	if total <= maxKeptOut {
		pl.splitBuf = buf // reused by the next split in this place; a big one is not kept
	} else {
		pl.splitBuf = nil
	}
	off := 0
	for g, c := range pl.subs[:pl.nsubs] {
		f := buf[off : off : off+sizes[g]]
		f = resp.AppendArrayHeader(f, 1+counts[g]*stride)
		c.frame, c.keys = resp.AppendBulk(f, args[0]), int32(counts[g])
		off += sizes[g]
	}
	for ki, g := range order {
		c := pl.subs[g]
		a := 1 + ki*stride
		c.frame = resp.AppendBulk(c.frame, args[a])
		if stride == 2 {
			c.frame = resp.AppendBulk(c.frame, args[a+1])
		}
	}
	return splitSubs, 0
}

// keepGroupIndex is the size past which the session's map from group key to group is dropped
// after a split rather than kept for the next one.
const keepGroupIndex = 1024

// scanGroups is how many groups planSplit finds by a scan before it turns to an index: for a
// few (the usual MGET spans a handful of nodes or slots) a scan costs less than hashing.
const scanGroups = 16

// maxDenseGroups is how many groups a table may have for planSplit to index them past
// scanGroups in an array by group (s.grpIdx, 2 bytes a group: 32 KiB for a Redis Cluster's
// slots) rather than in a map: a ring of more nodes than that is not a real one, but must not
// cost a big array per session.
const maxDenseGroups = route.Slots

// findGroup is gk's group index among gks, or -1. Past scanGroups groups they are indexed, in
// s.grpIdx when dense, else in the s.groupOf map.
func (s *session) findGroup(gks []int, gk int, dense bool) int {
	if len(gks) > scanGroups {
		if dense {
			return int(s.grpIdx[gk]) - 1
		}
		if g, ok := s.groupOf[gk]; ok {
			return g
		}
		return -1
	}
	for g, k := range gks {
		if k == gk {
			return g
		}
	}
	return -1
}

// addGroup appends gk, one of ngroups, as the next group. Past scanGroups groups the index
// holds them all, for findGroup.
func (s *session) addGroup(gks []int, gk, ngroups int, dense bool) []int {
	gks = append(gks, gk)
	switch {
	case len(gks) <= scanGroups:
	case len(gks) == scanGroups+1: // just past: index every group so far
		if dense && len(s.grpIdx) < ngroups {
			// Once per session that splits over many groups (up to 32 KiB for a Redis
			// Cluster's slots): less than a map of them, and no hashing per key. Empty:
			// unindexGroups leaves it so.
			s.grpIdx = make([]uint16, ngroups)
		}
		if !dense && s.groupOf == nil {
			s.groupOf = make(map[int]int)
		}
		for i, k := range gks {
			s.index(k, i, dense)
		}
	default:
		s.index(gk, len(gks)-1, dense)
	}
	return gks
}

func (s *session) index(gk, g int, dense bool) {
	if dense {
		s.grpIdx[gk] = uint16(g + 1)
	} else {
		s.groupOf[gk] = g
	}
}

// unindexGroups empties the group index after a split over gks.
func (s *session) unindexGroups(gks []int, dense bool) {
	switch {
	case len(gks) <= scanGroups:
	case dense:
		for _, k := range gks {
			s.grpIdx[k] = 0
		}
	case len(s.groupOf) > keepGroupIndex:
		s.groupOf = nil // a split over thousands of nodes must not pin its index
	default:
		clear(s.groupOf)
	}
}

// merge appends the client's reply to a split command, made from its sub replies. The first
// error among them is the reply, as a client of one server would see one error. Whatever the
// sub replies hold, the client gets exactly one well-formed reply.
func (s *session) merge(out []byte, pl *place) []byte {
	subs := pl.subs[:pl.nsubs]
	if pl.policy == command.Keyspace && pl.ksOp == ksInfo {
		return mergeInfo(out, pl) // INFO answers even when a node does not
	}
	for _, c := range subs {
		if resp.IsError(c.req.Reply) {
			// The backend hands over whole frames; checking costs nothing on the success path
			// and keeps one bad frame from desynchronising the client's stream.
			if n, err := resp.ScanReply(c.req.Reply); err != nil || n != len(c.req.Reply) {
				return resp.AppendError(out, "ERR unexpected reply from backend: malformed error")
			}
			return append(out, c.req.Reply...)
		}
	}
	switch pl.policy {
	case command.Broadcast:
		return s.mergeBroadcast(out, pl)
	case command.Keyspace:
		return s.mergeKeyspace(out, pl)
	case command.SplitMSet:
		for _, c := range subs {
			if !bytes.Equal(c.req.Reply, okReply) {
				return resp.AppendError(out, "ERR unexpected reply from backend to MSET")
			}
		}
		return append(out, okReply...)
	case command.SplitSum:
		var sum int64
		for _, c := range subs {
			n, err := resp.ParseInt(c.req.Reply)
			if err != nil {
				return resp.AppendError(out, "ERR unexpected reply from backend: not an integer")
			}
			sum += n
		}
		return resp.AppendInt(out, sum)
	default: // command.SplitMGet
		return s.mergeMGet(out, pl)
	}
}

// mergeMGet appends the client's MGET reply: each key's value taken, in the client's key
// order, from where its sub reply has got to (one cursor per sub reply), so that merging costs
// nothing per key but the value's own bytes. A sub reply that is not an array of exactly its
// keys' values makes the whole reply an error.
func (s *session) mergeMGet(out []byte, pl *place) []byte {
	start := len(out)
	subs := pl.subs[:pl.nsubs]
	cur := s.base[:0] // where each sub reply's next element starts
	if cap(cur) < len(subs) {
		cur = make([]int, 0, len(subs))
	}
	size := resp.ArrayHeaderSize(len(pl.order))
	for _, c := range subs {
		n, hdr, err := resp.ArrayHeader(c.req.Reply)
		if err != nil {
			s.base = cur
			return resp.AppendError(out, "ERR unexpected reply from backend: not an array")
		}
		if n != int(c.keys) { // not s.counts: that is the last split planned, maybe a later command's
			// A sub reply longer than its keys is as wrong as a short one: it is not the
			// answer to the sub-command that was sent.
			s.base = cur
			return resp.AppendError(out, "ERR unexpected reply from backend: wrong array length")
		}
		cur = append(cur, hdr)
		size += len(c.req.Reply) - hdr
	}
	s.base = cur
	out = slices.Grow(out, size)
	out = resp.AppendArrayHeader(out, len(pl.order))
	for _, g := range pl.order {
		r := subs[g].req.Reply
		m, err := resp.ScanReply(r[cur[g]:])
		if err != nil || m == 0 {
			return resp.AppendError(out[:start], "ERR unexpected reply from backend: not an array")
		}
		out = append(out, r[cur[g]:cur[g]+m]...)
		cur[g] += m
	}
	for g, c := range subs {
		if cur[g] != len(c.req.Reply) {
			return resp.AppendError(out[:start], "ERR unexpected reply from backend: not an array")
		}
	}
	return out
}
