package proxy

import (
	"bytes"
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Scripts live in each server's script cache, and EVALSHA goes wherever its keys are: so
// SCRIPT LOAD, EXISTS and FLUSH (command.Broadcast) go to every node of the routing table —
// in cluster mode replicas too, which serve EVALSHA_RO with read_from_slave. A node that
// lost its scripts (a restart, a failover to a replica that was not loaded) answers EVALSHA
// with NOSCRIPT, and clients then load the script again (redis-py's Script, Lock).

// broadcast sends the command as it came to every node; merge puts the replies together
// (mergeBroadcast). KILL and DEBUG act on one server's running script or debugger, which the
// proxy cannot pick, so they are refused; everything else, unknown subcommands and wrong
// arities included, is the servers' to answer, with Redis's own errors.
func (s *session) broadcast(sl *slot, spec *command.Spec, cmd *resp.Command) {
	if sub := cmd.Args[1]; bytes.EqualFold(sub, []byte("kill")) || bytes.EqualFold(sub, []byte("debug")) {
		sl.setError("ERR " + strings.ToUpper(spec.Name) + " " + strings.ToUpper(string(sub)) + " is not supported by the proxy")
		return
	}
	nodes := s.allNodes()
	if len(nodes) <= 1 {
		s.forward(sl, len(nodes)-1, cmd) // one node (or none: -1 answers so)
		return
	}
	s.toEvery(sl, spec.Policy, 0, nodes, cmd)
}

// mergeBroadcast appends the client's reply to a broadcast command whose sub replies hold no
// error: for arrays of integers (SCRIPT EXISTS) each element is 1 only where every node
// answered 1, since an EVALSHA may go to any of them; otherwise (the SHA1 of SCRIPT LOAD,
// which every node computes alike, FLUSH's +OK, HELP) the first node's reply.
func (s *session) mergeBroadcast(out []byte, sl *slot) []byte {
	subs := sl.subs[:sl.nsubs]
	first := subs[0].req.Reply
	elems, err := resp.ArrayElems(first, s.elems[:0])
	s.elems = elems
	if err != nil || len(elems) == 0 || elems[0][0] != ':' {
		return append(out, first...)
	}
	n := len(elems)
	for i, c := range subs[1:] {
		if elems, err = resp.ArrayElems(c.req.Reply, elems); err != nil || len(elems) != n*(i+2) {
			s.elems = elems[:0]
			return resp.AppendError(out, "ERR unexpected reply from backend: SCRIPT EXISTS arrays differ")
		}
	}
	s.elems = elems
	out = resp.AppendArrayHeader(out, n)
	for i := range n {
		all := int64(1)
		for j := i; j < len(elems); j += n {
			if v, err := resp.ParseInt(elems[j]); err != nil || v == 0 {
				all = 0
			}
		}
		out = resp.AppendInt(out, all)
	}
	return out
}
