package proxy

import "github.com/aster-proxy/aster/dataplane/command"

// tally holds the counts of the commands a session handled since it last added them to its
// cluster's (INFO's total_commands_processed, aster_requests_total by command): one atomic add
// per batch and command name instead of one per command, which pipelined load paid in ~2% of
// the proxy's CPU. Two names are kept apart (a client's batch is mostly one command, or two
// in turn); a third adds the first's count at once. The session's owner alone touches it.
type tally struct {
	total uint32           // commands in all
	spec  [2]*command.Spec // the names counted apart; nil for unknown commands ("other")
	n     [2]uint32        // how many of each; 0: the slot is free
}

// count tallies one command (spec nil: an unknown one).
func (s *session) count(spec *command.Spec) {
	t := &s.tally
	t.total++
	if !s.c.metrics.on {
		return
	}
	for i := range t.spec {
		if t.n[i] > 0 && t.spec[i] == spec {
			t.n[i]++
			return
		}
	}
	for i := range t.spec {
		if t.n[i] == 0 {
			t.spec[i], t.n[i] = spec, 1
			return
		}
	}
	s.c.metrics.requests(t.spec[0], t.n[0])
	t.spec[0], t.n[0] = spec, 1
}

// flushTally adds the tallied commands to the cluster's counts: once per batch (assemble),
// before a command answered here (INFO reads them), and when a batch is dropped (overLimit).
func (s *session) flushTally() {
	t := &s.tally
	if t.total == 0 {
		return
	}
	s.c.commands.Add(uint64(t.total))
	t.total = 0
	for i := range t.spec {
		if t.n[i] > 0 {
			s.c.metrics.requests(t.spec[i], t.n[i])
			t.spec[i], t.n[i] = nil, 0
		}
	}
}
