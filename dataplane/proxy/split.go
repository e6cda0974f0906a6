package proxy

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

var okReply = []byte("+OK\r\n")

// split sends a multi-key command (MGET, MSET, DEL, ...) as one sub-command per group of its
// keys — per node in standalone mode, per slot in cluster mode, since Redis refuses multi-key
// commands across slots — and merge puts the replies back together in the client's order. A
// command whose keys all fall in one group goes out as it came.
func (s *session) split(sl *slot, spec *command.Spec, cmd *resp.Command) {
	switch plan, node := s.planSplit(sl, spec, cmd); plan {
	case splitWhole:
		s.forward(sl, node, cmd)
	case splitSubs:
		s.pend.Add(sl.nsubs)
		for g, c := range sl.subs[:sl.nsubs] {
			s.sendAdded(c, s.conn(s.targets[g]), c.buf)
		}
	}
}

// splitPlan is what planSplit decided.
type splitPlan uint8

const (
	splitAnswered splitPlan = iota // sl holds the reply (an error)
	splitWhole                     // all keys in one group: send the command as it came
	splitSubs                      // sl.subs[:sl.nsubs] hold the sub-commands, s.targets their nodes
)

// planSplit groups the keys of a split command and builds its sub-commands without sending
// anything (so that split and merge can be exercised without a network). For splitWhole it
// also returns the node (-1: none serves).
func (s *session) planSplit(sl *slot, spec *command.Spec, cmd *resp.Command) (splitPlan, int) {
	args := cmd.Args
	stride := 1
	if spec.Policy == command.SplitMSet {
		stride = 2
		if (len(args)-1)%2 != 0 {
			sl.setError("ERR wrong number of arguments for '" + spec.Name + "' command")
			return splitAnswered, 0
		}
	}
	slots := s.snap.slots
	ring := s.snap.table.Ring
	s.groupKeys = s.groupKeys[:0] // group key of each key: node index (ring) or slot (cluster)
	same := true
	for i := 1; i < len(args); i += stride {
		var gk int
		if slots != nil {
			gk = int(route.Slot(args[i]))
		} else if gk = ring.Pick(args[i]); gk < 0 {
			s.noNode(sl)
			return splitAnswered, 0
		}
		s.groupKeys = append(s.groupKeys, gk)
		same = same && gk == s.groupKeys[0]
	}
	read := command.IsReadOnly(spec)
	if same {
		node := s.groupKeys[0]
		if slots != nil {
			node = s.slotNode(uint16(node), read)
		}
		return splitWhole, node
	}

	clear(s.groupOf)
	sl.order = sl.order[:0]
	counts, targets, gks := s.counts[:0], s.targets[:0], s.gks[:0] // keys, node, group key of each group
	for _, gk := range s.groupKeys {
		g := s.findGroup(gks, gk)
		if g < 0 {
			g = len(counts)
			gks = s.addGroup(gks, gk)
			node := gk
			if slots != nil {
				if node = s.slotNode(uint16(gk), read); node < 0 {
					s.noNode(sl)
					return splitAnswered, 0
				}
			}
			counts = append(counts, 0)
			targets = append(targets, node)
		}
		sl.order = append(sl.order, keyRef{sub: int32(g), pos: int32(counts[g])})
		counts[g]++
	}
	s.counts, s.targets, s.gks = counts, targets, gks
	sl.kind, sl.policy, sl.nsubs = slotSplit, spec.Policy, len(counts)
	for len(sl.subs) < sl.nsubs {
		sl.subs = append(sl.subs, newCall(&s.pend, sl.budget))
	}
	for g, c := range sl.subs[:sl.nsubs] {
		c.buf = resp.AppendArrayHeader(c.buf[:0], 1+counts[g]*stride)
		c.buf = resp.AppendBulk(c.buf, args[0])
	}
	// One pass over the keys, each to its group's frame (sl.order has its group): in client
	// order within each group, as Redis would apply them.
	for ki, ref := range sl.order {
		c := sl.subs[ref.sub]
		a := 1 + ki*stride
		c.buf = resp.AppendBulk(c.buf, args[a])
		if stride == 2 {
			c.buf = resp.AppendBulk(c.buf, args[a+1])
		}
	}
	return splitSubs, 0
}

// scanGroups is how many groups planSplit finds by a scan before it turns to a map: for a
// few (the usual MGET spans a handful of nodes or slots) a scan costs less than hashing.
const scanGroups = 16

// findGroup is gk's group index among gks, or -1.
func (s *session) findGroup(gks []int, gk int) int {
	if len(gks) > scanGroups {
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

// addGroup appends gk as the next group. Past scanGroups groups the map indexes them all,
// for findGroup.
func (s *session) addGroup(gks []int, gk int) []int {
	gks = append(gks, gk)
	switch {
	case len(gks) <= scanGroups:
	case len(s.groupOf) == 0: // just past: index every group so far
		if s.groupOf == nil {
			s.groupOf = make(map[int]int)
		}
		for i, k := range gks {
			s.groupOf[k] = i
		}
	default:
		s.groupOf[gk] = len(gks) - 1
	}
	return gks
}

// merge appends the client's reply to a split command, made from its sub replies. The first
// error among them is the reply, as a client of one server would see one error. Whatever the
// sub replies hold, the client gets exactly one well-formed reply.
func (s *session) merge(out []byte, sl *slot) []byte {
	subs := sl.subs[:sl.nsubs]
	if sl.policy == command.Keyspace && sl.ksOp == ksInfo {
		return mergeInfo(out, sl) // INFO answers even when a node does not
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
	switch sl.policy {
	case command.Broadcast:
		return s.mergeBroadcast(out, sl)
	case command.Keyspace:
		return s.mergeKeyspace(out, sl)
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
		start := len(out)
		elems, base := s.elems[:0], s.base[:0]
		for _, c := range subs {
			base = append(base, len(elems))
			var err error
			if elems, err = resp.ArrayElems(c.req.Reply, elems); err != nil {
				return resp.AppendError(out, "ERR unexpected reply from backend: not an array")
			}
		}
		base = append(base, len(elems))
		s.elems, s.base = elems, base
		if len(elems) != len(sl.order) {
			// A sub reply longer than its keys is as wrong as a short one: it is not the
			// answer to the sub-command that was sent.
			return resp.AppendError(out, "ERR unexpected reply from backend: wrong array length")
		}
		out = resp.AppendArrayHeader(out, len(sl.order))
		for _, ref := range sl.order {
			i := base[ref.sub] + int(ref.pos)
			if i >= base[ref.sub+1] {
				return resp.AppendError(out[:start], "ERR unexpected reply from backend: short array")
			}
			out = append(out, elems[i]...)
		}
		return out
	}
}
