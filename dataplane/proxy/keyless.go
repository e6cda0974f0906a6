package proxy

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/route"
)

// Some commands name no key yet need a server: a script that declares no key (EVAL s 0,
// FCALL f 0 and their _RO forms) and HELP subcommands (command.Spec.AnyNode). A Redis Cluster
// client sends those to a node of its choice; the proxy sends them to one serving node, the
// same for every client so that a keyless script sees the same server each time: in a ring
// the owner of the ring's first point (the only node of a one-node ring), in cluster mode the
// master of slot 0 (else the first master). A keyless transaction runs there too (txNode).
//
// A command whose key arguments are malformed (a numkeys of 0 or past the arguments, MSETNX
// with a key missing its value, XREAD with unbalanced STREAMS, an unknown subcommand, ...)
// goes there as well, and the server answers Redis's own error for that very case, as a Redis
// Cluster node runs a command in which it finds no key. The key finders (command.Spec.Keys)
// fail only where Redis's own fail, which is where the command itself is refused; should a
// server accept one all the same, in cluster mode it answers MOVED for a key elsewhere, which
// the proxy follows.

// keylessNode is that node, or -1 when no node serves.
func (s *session) keylessNode() int { return s.routes.table.Keyless() }

// sortPatternRefused is the error for a SORT (or SORT_RO) of the key of group g whose BY or
// GET pattern names keys that may be in another group (on another node): the node would
// read only its own keys and answer a different result without an error. Redis Cluster
// refuses every such pattern with the same error; the proxy lets one through when its hash
// tag (wildcard-free) puts every key it forms in the sorted key's group. A BY without '*'
// (no sorting) and GET # read no other key. "" when the command may go. A Redis Cluster node
// checks the patterns itself, with its version's own error.
func (s *session) sortPatternRefused(args [][]byte, g int) string {
	t := s.routes.table
	if t.Cluster() || len(t.Primaries()) <= 1 {
		return ""
	}
	together := func(p []byte) bool {
		tag := route.HashTag(p, t.Tag())
		return len(tag) < len(p) && !bytes.ContainsAny(tag, "*?[") && t.Group(p) == g
	}
	for i := 2; i+1 < len(args); i++ {
		switch a := args[i]; {
		case bytes.EqualFold(a, []byte("limit")):
			i += 2
		case bytes.EqualFold(a, []byte("store")):
			i++
		case bytes.EqualFold(a, []byte("by")):
			i++
			if p := args[i]; bytes.IndexByte(p, '*') >= 0 && !together(p) {
				return "ERR BY option of SORT denied in Cluster mode."
			}
		case bytes.EqualFold(a, []byte("get")):
			i++
			if p := args[i]; !bytes.Equal(p, []byte("#")) && !together(p) {
				return "ERR GET option of SORT denied in Cluster mode."
			}
		}
	}
	return ""
}

// errKeyspaceEvents refuses keyspace notifications in cluster mode. Each master publishes the
// events of its own keys on its own connections only (Redis Cluster does not spread them as
// it spreads PUBLISH), while the proxy subscribes a channel or pattern on one master: the
// client would silently get one master's events. Subscribe on each master instead.
const errKeyspaceEvents = "ERR keyspace notifications (__keyspace@/__keyevent@) come from every master of a Redis Cluster: not supported by the proxy in cluster mode, subscribe on each master"

// checkKeyspaceEvents is errKeyspaceEvents for a SUBSCRIBE or PSUBSCRIBE, in cluster mode,
// of a channel or pattern that names keyspace notifications (its literal start is, or
// begins, __keyspace@ or __keyevent@); "" otherwise. A pattern such as * that merely may
// match them is let through: it is meant for PUBLISH, which every master sees.
func (s *session) checkKeyspaceEvents(kind subKind, names [][]byte) string {
	if kind == kindShard || s.routes == nil || !s.routes.table.Cluster() { // a Redis Cluster matter
		return ""
	}
	for _, n := range names {
		lit := n
		if kind == kindPattern {
			if i := bytes.IndexAny(n, "*?[\\"); i >= 0 {
				lit = n[:i]
			}
		}
		for _, p := range [...]string{"__keyspace@", "__keyevent@"} {
			if bytes.HasPrefix(lit, []byte(p)) || (len(lit) >= len("__key") && len(lit) < len(n) && bytes.HasPrefix([]byte(p), lit)) {
				return errKeyspaceEvents
			}
		}
	}
	return ""
}
