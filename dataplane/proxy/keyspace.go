package proxy

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Keyspace-wide commands (command.Keyspace) go over the nodes that hold the keys, the ring's
// nodes or a Redis Cluster's masters: DBSIZE adds up their counts, KEYS joins their keys,
// RANDOMKEY picks among their random keys (nil only when every node is empty), FLUSHDB and
// FLUSHALL empty every one of them, FUNCTION goes to all of them, and TIME asks the first.
//
// SCAN walks them one after the other. A proxy SCAN cursor is the current node's own cursor
// with the node's position in the top scanNodeBits bits, so that the client's usual loop (SCAN
// until the cursor is 0) visits every node without the proxy keeping state. Keys that exist
// throughout a scan are returned at least once, as Redis guarantees, as long as the nodes stay
// the same: an ejection, a restore or a resharding during the scan shifts the positions, and
// keys may then be missed or returned twice.

const (
	scanNodeBits = 10 // up to 1024 nodes
	scanShift    = 64 - scanNodeBits
	scanMask     = 1<<scanShift - 1 // the node's cursor
)

// keyspaceOp says how the node replies of a keyspace command become the client's.
type keyspaceOp uint8

const (
	ksScan   keyspaceOp = iota // one node's SCAN reply, cursor rewritten
	ksKeys                     // arrays joined
	ksRandom                   // a random non-nil reply
	ksAllOK                    // +OK when every node said +OK
	ksInfo                     // INFO: the proxy's sections, the nodes' keyspace counts added up
)

// keyspaceNodes are the nodes that hold the keyspace, in a fixed order (route.Table.Primaries).
func (s *session) keyspaceNodes() []int { return s.routes.table.Primaries() }

// allNodes is every node of the table, replicas included, in index order.
func (s *session) allNodes() []int {
	s.targets = s.targets[:0]
	for i := range s.routes.pools {
		s.targets = append(s.targets, i)
	}
	return s.targets
}

func (s *session) keyspace(pl *place, spec *command.Spec, cmd *resp.Command) {
	nodes := s.keyspaceNodes()
	if len(nodes) == 0 {
		s.noNode(pl)
		return
	}
	switch spec.Name {
	case "scan":
		s.scan(pl, nodes, cmd)
	case "time":
		s.forward(pl, nodes[0], cmd)
	case "dbsize":
		s.toEvery(pl, command.SplitSum, 0, nodes, cmd)
	case "keys":
		s.toEvery(pl, command.Keyspace, ksKeys, nodes, cmd)
	case "randomkey":
		s.toEvery(pl, command.Keyspace, ksRandom, nodes, cmd)
	case "function":
		// Functions are data: loaded on the masters, they reach the replicas by replication
		// (which refuse FUNCTION LOAD). Merged as SCRIPT's replies are; KILL as SCRIPT KILL.
		if sub := cmd.Args[1]; bytes.EqualFold(sub, []byte("kill")) {
			s.kill(pl, spec, cmd)
			return
		}
		s.toEvery(pl, command.Broadcast, 0, nodes, cmd)
	default: // flushdb, flushall
		s.toEvery(pl, command.Keyspace, ksAllOK, nodes, cmd)
	}
}

// toEvery sends the command as it came to every node; merge puts the replies together as
// policy (and op, for command.Keyspace) says.
func (s *session) toEvery(pl *place, policy command.Policy, op keyspaceOp, nodes []int, cmd *resp.Command) {
	if len(pl.subs) == 0 {
		pl.subs = append(pl.subs, newCall(&s.pend, pl.budget))
	}
	s.sendEvery(pl, policy, op, nodes, frameOf(cmd, &pl.subs[0].buf))
}

// sendEvery sends frame, which it only reads, to every node.
func (s *session) sendEvery(pl *place, policy command.Policy, op keyspaceOp, nodes []int, frame []byte) {
	pl.kind, pl.policy, pl.ksOp, pl.nsubs = placeSplit, policy, op, len(nodes)
	for len(pl.subs) < len(nodes) {
		pl.subs = append(pl.subs, newCall(&s.pend, pl.budget))
	}
	s.pend.Add(len(nodes))
	for i, c := range pl.subs[:len(nodes)] {
		s.sendAdded(c, s.conn(nodes[i]), frame)
	}
}

var infoKeyspaceFrame = []byte("*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n")

// infoKeyspace answers INFO with the proxy's own sections, text, which ends with the Keyspace
// header, and under it each database's counts added up over the nodes that hold the keyspace
// (mergeInfo).
func (s *session) infoKeyspace(pl *place, text string) {
	pl.local = append(pl.local[:0], text...)
	s.sendEvery(pl, command.Keyspace, ksInfo, s.keyspaceNodes(), infoKeyspaceFrame)
}

// scan sends SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] to the node the cursor is at,
// with that node's own cursor.
func (s *session) scan(pl *place, nodes []int, cmd *resp.Command) {
	cursor, err := strconv.ParseUint(string(cmd.Args[1]), 10, 64)
	if err != nil {
		pl.setError("ERR invalid cursor")
		return
	}
	pos := int(cursor >> scanShift)
	if pos >= len(nodes) { // past the last node: nothing left, as Redis answers a stale cursor
		pl.kind = placeLocal
		pl.local = append(pl.local[:0], "*2\r\n$1\r\n0\r\n*0\r\n"...)
		return
	}
	if len(nodes) > 1<<scanNodeBits {
		pl.setError("ERR SCAN through the proxy covers at most " + strconv.Itoa(1<<scanNodeBits) + " nodes")
		return
	}
	pl.kind, pl.policy, pl.ksOp, pl.nsubs = placeSplit, command.Keyspace, ksScan, 1
	pl.scanPos, pl.scanNodes = pos, len(nodes)
	if len(pl.subs) == 0 {
		pl.subs = append(pl.subs, newCall(&s.pend, pl.budget))
	}
	c := pl.subs[0]
	args := append(s.elems[:0], cmd.Args...)
	var num [20]byte
	args[1] = strconv.AppendUint(num[:0], cursor&scanMask, 10)
	c.buf = resp.AppendCommand(c.buf[:0], args...)
	s.keepElems(args)
	s.pend.Add(1)
	s.sendAdded(c, s.conn(nodes[pos]), c.buf)
}

// mergeKeyspace appends the client's reply to a keyspace command whose node replies hold no
// error.
func (s *session) mergeKeyspace(out []byte, pl *place) []byte {
	subs := pl.subs[:pl.nsubs]
	switch pl.ksOp {
	case ksScan:
		return s.mergeScan(out, pl)
	case ksAllOK:
		for _, c := range subs {
			if !bytes.Equal(c.req.Reply, okReply) {
				return resp.AppendError(out, "ERR unexpected reply from backend: not +OK")
			}
		}
		return append(out, okReply...)
	case ksRandom:
		// Start at a random node and take the first key found, so that an empty node does
		// not make the answer nil while others hold keys.
		first := rand.IntN(len(subs))
		for i := range subs {
			if r := subs[(first+i)%len(subs)].req.Reply; !resp.IsNull(r) {
				return append(out, r...)
			}
		}
		return append(out, subs[first].req.Reply...)
	default: // ksKeys
		elems := s.elems[:0]
		for _, c := range subs {
			var err error
			if elems, err = resp.ArrayElems(c.req.Reply, elems); err != nil {
				s.keepElems(elems)
				return resp.AppendError(out, "ERR unexpected reply from backend: not an array")
			}
		}
		out = resp.AppendArrayHeader(out, len(elems))
		for _, e := range elems {
			out = append(out, e...)
		}
		s.keepElems(elems)
		return out
	}
}

// mergeScan turns a node's SCAN reply into the proxy's: the node's next cursor with the node's
// position on top, or the next node's start when the node is done.
func (s *session) mergeScan(out []byte, pl *place) []byte {
	reply := pl.subs[0].req.Reply
	elems, err := resp.ArrayElems(reply, s.elems[:0])
	defer s.keepElems(elems)
	if err != nil || len(elems) != 2 {
		return resp.AppendError(out, "ERR unexpected reply from backend to SCAN")
	}
	next, err := strconv.ParseUint(string(resp.BulkPayload(elems[0])), 10, 64)
	if err != nil || next > scanMask {
		return resp.AppendError(out, "ERR unexpected reply from backend to SCAN: cursor out of the proxy's range")
	}
	pos := uint64(pl.scanPos)
	switch {
	case next != 0:
		next |= pos << scanShift
	case pl.scanPos+1 < pl.scanNodes:
		next = (pos + 1) << scanShift
	}
	out = resp.AppendArrayHeader(out, 2)
	var num [20]byte
	out = resp.AppendBulk(out, strconv.AppendUint(num[:0], next, 10))
	return append(out, elems[1]...)
}

// mergeInfo appends INFO's reply: the proxy's sections (pl.local, ending with the Keyspace
// header) and, for each database any node reported, its fields added up over the nodes, as
// "db0:keys=…,expires=…,avg_ttl=…". avg_ttl is averaged, weighted by each node's expires. A
// node that did not answer is left out and counted in keyspace_nodes_failed, so that partial
// counts never pass for whole ones. The reply is a bulk string, or a verbatim one when the
// nodes speak RESP3 (the usual conversion then fits it to the client).
func mergeInfo(out []byte, pl *place) []byte {
	type db struct {
		num    int
		fields []string
		sums   map[string]int64
		ttlSum float64 // Σ avg_ttl × expires
	}
	var dbs []*db
	failed := 0
	for _, c := range pl.subs[:pl.nsubs] {
		payload, ok := infoPayload(c.req.Reply)
		if !ok {
			failed++
			continue
		}
		for line := range strings.SplitSeq(string(payload), "\r\n") {
			name, fields, ok := strings.Cut(line, ":")
			num, err := strconv.Atoi(strings.TrimPrefix(name, "db"))
			if !ok || !strings.HasPrefix(name, "db") || err != nil {
				continue
			}
			var d *db
			for _, x := range dbs {
				if x.num == num {
					d = x
				}
			}
			if d == nil {
				d = &db{num: num, sums: map[string]int64{}}
				dbs = append(dbs, d)
			}
			var expires, ttl int64
			for kv := range strings.SplitSeq(fields, ",") {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					continue
				}
				if _, seen := d.sums[k]; !seen {
					d.fields = append(d.fields, k)
				}
				d.sums[k] += n
				switch k {
				case "avg_ttl":
					ttl = n
				case "expires":
					expires = n
				}
			}
			d.ttlSum += float64(ttl) * float64(expires)
		}
	}
	slices.SortFunc(dbs, func(a, b *db) int { return a.num - b.num })
	var b strings.Builder
	b.Write(pl.local)
	for _, d := range dbs {
		b.WriteString("db" + strconv.Itoa(d.num) + ":")
		for i, k := range d.fields {
			v := d.sums[k]
			if k == "avg_ttl" { // weighted, not summed
				v = 0
				if e := d.sums["expires"]; e > 0 {
					v = int64(d.ttlSum / float64(e))
				}
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k + "=" + strconv.FormatInt(v, 10))
		}
		b.WriteString("\r\n")
	}
	if failed > 0 {
		b.WriteString("keyspace_nodes_failed:" + strconv.Itoa(failed) + "\r\n")
	}
	if pl.subs[0].conn.RESP3() {
		return resp.ToRESP3(out, resp.AppendBulkString(nil, b.String()), verbatim)
	}
	return resp.AppendBulkString(out, b.String())
}

var verbatim = &resp.Shape{Kind: resp.ShapeVerbatim}

// infoPayload is the text of a node's INFO reply: a bulk string (RESP2) or a verbatim one
// (RESP3); false for anything else (an error: the node did not answer).
func infoPayload(r []byte) ([]byte, bool) {
	if len(r) > 0 && r[0] == '=' {
		r = resp.ToRESP2(nil, r, nil) // the text after "txt:", as a bulk string
	}
	p := resp.BulkPayload(r)
	return p, p != nil
}
