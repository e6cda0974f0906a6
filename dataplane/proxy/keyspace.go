package proxy

import (
	"strconv"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Keyspace-wide commands (command.Keyspace) go over the nodes that hold the keys: DBSIZE adds up
// their counts; SCAN walks them one after the other. A proxy SCAN cursor is the current node's
// own cursor with the node's position in the top scanNodeBits bits, so that the client's
// usual loop (SCAN until the cursor is 0) visits every node without the proxy keeping state.
// Keys that exist throughout a scan are returned at least once, as Redis guarantees, as long as
// the nodes stay the same: an ejection, a restore or a resharding during the scan shifts the
// positions, and keys may then be missed or returned twice.

const (
	scanNodeBits = 10 // up to 1024 nodes
	scanShift    = 64 - scanNodeBits
	scanMask     = 1<<scanShift - 1 // the node's cursor
)

// keyspaceNodes are the nodes that hold the keyspace, in a fixed order: the ring's nodes in
// the table's order (standalone), the masters in address order (cluster).
func (s *session) keyspaceNodes() []int {
	if m := s.snap.slots; m != nil {
		return m.Masters()
	}
	s.targets = s.targets[:0]
	for i := range s.snap.pools {
		s.targets = append(s.targets, i)
	}
	return s.targets
}

func (s *session) keyspace(sl *slot, spec *command.Spec, cmd *resp.Command) {
	nodes := s.keyspaceNodes()
	if len(nodes) == 0 {
		s.noNode(sl)
		return
	}
	if spec.Name == "dbsize" {
		sl.kind, sl.policy, sl.nsubs = slotSplit, command.SplitSum, len(nodes)
		for len(sl.subs) < len(nodes) {
			sl.subs = append(sl.subs, newCall(&s.wg))
		}
		frame := frameOf(cmd, &sl.subs[0].buf) // read-only: every node gets the same bytes
		s.wg.Add(len(nodes))
		for i, c := range sl.subs[:len(nodes)] {
			s.sendAdded(c, s.conn(nodes[i]), frame)
		}
		return
	}
	// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
	cursor, err := strconv.ParseUint(string(cmd.Args[1]), 10, 64)
	if err != nil {
		sl.setError("ERR invalid cursor")
		return
	}
	pos := int(cursor >> scanShift)
	if pos >= len(nodes) { // past the last node: nothing left, as Redis answers a stale cursor
		sl.kind = slotLocal
		sl.local = append(sl.local[:0], "*2\r\n$1\r\n0\r\n*0\r\n"...)
		return
	}
	if len(nodes) > 1<<scanNodeBits {
		sl.setError("ERR SCAN through the proxy covers at most " + strconv.Itoa(1<<scanNodeBits) + " nodes")
		return
	}
	sl.kind, sl.policy, sl.nsubs = slotSplit, command.Keyspace, 1
	sl.scanPos, sl.scanNodes = pos, len(nodes)
	if len(sl.subs) == 0 {
		sl.subs = append(sl.subs, newCall(&s.wg))
	}
	c := sl.subs[0]
	args := s.elems[:0]
	args = append(args, cmd.Args...)
	var num [20]byte
	args[1] = strconv.AppendUint(num[:0], cursor&scanMask, 10)
	c.buf = resp.AppendCommand(c.buf[:0], args...)
	s.elems = args[:0]
	s.wg.Add(1)
	s.sendAdded(c, s.conn(nodes[pos]), c.buf)
}

// mergeScan turns a node's SCAN reply into the proxy's: the node's next cursor with the node's
// position on top, or the next node's start when the node is done.
func (s *session) mergeScan(out []byte, sl *slot) []byte {
	reply := sl.subs[0].req.Reply
	elems, err := resp.ArrayElems(reply, s.elems[:0])
	s.elems = elems[:0]
	if err != nil || len(elems) != 2 {
		return resp.AppendError(out, "ERR unexpected reply from backend to SCAN")
	}
	next, err := strconv.ParseUint(string(bulkPayload(elems[0])), 10, 64)
	if err != nil || next > scanMask {
		return resp.AppendError(out, "ERR unexpected reply from backend to SCAN: cursor out of the proxy's range")
	}
	pos := uint64(sl.scanPos)
	switch {
	case next != 0:
		next |= pos << scanShift
	case sl.scanPos+1 < sl.scanNodes:
		next = (pos + 1) << scanShift
	}
	out = resp.AppendArrayHeader(out, 2)
	var num [20]byte
	out = resp.AppendBulk(out, strconv.AppendUint(num[:0], next, 10))
	return append(out, elems[1]...)
}
