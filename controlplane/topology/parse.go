package topology

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// parseClusterSlots builds a slot map from a complete CLUSTER SLOTS reply (RESP2 or RESP3)
// received from the node at askedHost: each entry is [start, end, master, replica...], each
// node [endpoint, port, id, metadata...]. An endpoint that is null, "" or "?" means the node
// does not know it, and the client is to use the host it asked, as Redis documents.
func parseClusterSlots(reply []byte, askedHost string) (*route.SlotMap, error) {
	if resp.IsError(reply) {
		return nil, fmt.Errorf("CLUSTER SLOTS answered %q", trimFrame(reply))
	}
	entries, err := resp.ArrayElems(reply, nil)
	if err != nil {
		return nil, fmt.Errorf("parse CLUSTER SLOTS reply: %w", err)
	}
	ranges := make([]route.SlotRange, 0, len(entries))
	var fields [][]byte
	for i, e := range entries {
		fields, err = resp.ArrayElems(e, fields[:0])
		if err != nil {
			return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d: %w", i, err)
		}
		if len(fields) < 3 {
			return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d: %d fields, want start, end and a master", i, len(fields))
		}
		start, err1 := resp.ParseInt(fields[0])
		end, err2 := resp.ParseInt(fields[1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d slot range: %w", i, err)
		}
		if start < 0 || end < start || end >= route.Slots {
			return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d: invalid slot range %d-%d", i, start, end)
		}
		r := route.SlotRange{Start: uint16(start), End: uint16(end)}
		if r.Master, err = parseNode(fields[2], askedHost); err != nil {
			return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d (slots %d-%d) master: %w", i, start, end, err)
		}
		for j, f := range fields[3:] {
			n, err := parseNode(f, askedHost)
			if err != nil {
				return nil, fmt.Errorf("parse CLUSTER SLOTS entry %d (slots %d-%d) replica %d: %w", i, start, end, j, err)
			}
			r.Replicas = append(r.Replicas, n)
		}
		ranges = append(ranges, r)
	}
	m, err := route.NewSlotMap(ranges)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS reply: %w", err)
	}
	return m, nil
}

// parseNode reads one [endpoint, port, id, ...] node array.
func parseNode(frame []byte, askedHost string) (route.SlotNode, error) {
	f, err := resp.ArrayElems(frame, nil)
	if err != nil {
		return route.SlotNode{}, err
	}
	if len(f) < 2 {
		return route.SlotNode{}, fmt.Errorf("%d fields, want endpoint and port", len(f))
	}
	host, null, err := bulk(f[0])
	if err != nil {
		return route.SlotNode{}, fmt.Errorf("endpoint: %w", err)
	}
	if null || len(host) == 0 || string(host) == "?" {
		host = []byte(askedHost)
	}
	port, err := resp.ParseInt(f[1])
	if err != nil || port <= 0 || port > 65535 {
		return route.SlotNode{}, fmt.Errorf("invalid port %q", trimFrame(f[1]))
	}
	n := route.SlotNode{Addr: net.JoinHostPort(string(host), strconv.FormatInt(port, 10))}
	if len(f) > 2 {
		id, _, err := bulk(f[2])
		if err != nil {
			return route.SlotNode{}, fmt.Errorf("node id: %w", err)
		}
		n.ID = string(id)
	}
	return n, nil
}

// bulk returns the payload of a bulk or simple string frame; null reports a RESP2 or RESP3 null.
func bulk(frame []byte) (b []byte, null bool, err error) {
	switch {
	case string(frame) == "$-1\r\n" || string(frame) == "_\r\n":
		return nil, true, nil
	case len(frame) >= 3 && frame[0] == '+':
		return frame[1 : len(frame)-2], false, nil
	case len(frame) >= 3 && frame[0] == '$':
		i := 1
		for i < len(frame) && frame[i] != '\r' {
			i++
		}
		l, ok := resp.ParseInt64Arg(frame[1:i])
		if !ok || i+2+int(l)+2 != len(frame) {
			return nil, false, fmt.Errorf("%w: bad bulk string", resp.ErrMalformedReply)
		}
		return frame[i+2 : i+2+int(l)], false, nil
	}
	return nil, false, fmt.Errorf("%w: want a string, got %q", resp.ErrMalformedReply, trimFrame(frame))
}

// trimFrame shortens a frame for an error message.
func trimFrame(b []byte) string {
	const max = 120
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	if len(b) >= 2 && b[len(b)-2] == '\r' {
		b = b[:len(b)-2]
	}
	return string(b)
}
