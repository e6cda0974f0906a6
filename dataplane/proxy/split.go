package proxy

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/backend"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

var okReply = []byte("+OK\r\n")

// split sends a multi-key command (MGET, MSET, DEL, ...) as one sub-command per node that owns
// some of its keys; merge puts the replies back together in the client's order. A command whose
// keys all live on one node goes out as it came.
func (s *session) split(sl *slot, spec *command.Spec, cmd *resp.Command) {
	args := cmd.Args
	stride := 1
	if spec.Policy == command.SplitMSet {
		stride = 2
		if (len(args)-1)%2 != 0 {
			sl.setError("ERR wrong number of arguments for '" + spec.Name + "' command")
			return
		}
	}
	ring := s.snap.table.Ring
	s.nodes = s.nodes[:0]
	same := true
	for i := 1; i < len(args); i += stride {
		n := ring.Pick(args[i])
		if n < 0 {
			sl.setError("ERR no backend node available in cluster " + s.c.opts.Name)
			return
		}
		s.nodes = append(s.nodes, n)
		same = same && n == s.nodes[0]
	}
	if same {
		s.forward(sl, s.nodes[0], s.rawFrame(cmd))
		return
	}

	for len(s.groupOf) < len(s.snap.pools) {
		s.groupOf = append(s.groupOf, -1)
	}
	sl.kind, sl.policy, sl.nsubs = slotSplit, spec.Policy, 0
	sl.order = sl.order[:0]
	counts := s.counts[:0] // keys per sub request
	for _, n := range s.nodes {
		g := s.groupOf[n]
		if g < 0 {
			g = sl.nsubs
			s.groupOf[n] = g
			sl.nsubs++
			counts = append(counts, 0)
		}
		sl.order = append(sl.order, keyRef{sub: int32(g), pos: int32(counts[g])})
		counts[g]++
	}
	for len(sl.subs) < sl.nsubs {
		r := &backend.Request{}
		r.Bind(&s.wg)
		sl.subs = append(sl.subs, r)
	}
	s.wg.Add(sl.nsubs)
	for g := 0; g < sl.nsubs; g++ {
		frame := resp.AppendArrayHeader(s.frame[:0], 1+counts[g]*stride)
		frame = resp.AppendBulk(frame, args[0])
		node := -1
		for ki, n := range s.nodes {
			if s.groupOf[n] != g {
				continue
			}
			node = n
			a := 1 + ki*stride
			frame = resp.AppendBulk(frame, args[a])
			if stride == 2 {
				frame = resp.AppendBulk(frame, args[a+1])
			}
		}
		s.frame = frame
		s.conn(node).Send(sl.subs[g], frame)
	}
	for _, n := range s.nodes {
		s.groupOf[n] = -1
	}
	s.counts = counts
}

// merge appends the client's reply to a split command, made from its sub replies. The first
// error among them is the reply, as a client of one server would see one error.
func (s *session) merge(out []byte, sl *slot) []byte {
	subs := sl.subs[:sl.nsubs]
	for _, r := range subs {
		if resp.IsError(r.Reply) {
			return append(out, r.Reply...)
		}
	}
	switch sl.policy {
	case command.SplitMSet:
		for _, r := range subs {
			if !bytes.Equal(r.Reply, okReply) {
				return resp.AppendError(out, "ERR unexpected reply from backend to MSET")
			}
		}
		return append(out, okReply...)
	case command.SplitSum:
		var sum int64
		for _, r := range subs {
			n, err := resp.ParseInt(r.Reply)
			if err != nil {
				return resp.AppendError(out, "ERR unexpected reply from backend: not an integer")
			}
			sum += n
		}
		return resp.AppendInt(out, sum)
	default: // command.SplitMGet
		start := len(out)
		elems, base := s.elems[:0], s.base[:0]
		for _, r := range subs {
			base = append(base, len(elems))
			var err error
			if elems, err = resp.ArrayElems(r.Reply, elems); err != nil {
				return resp.AppendError(out, "ERR unexpected reply from backend: not an array")
			}
		}
		base = append(base, len(elems))
		s.elems, s.base = elems, base
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
