package proxy

import (
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT REPLY ON|OFF|SKIP silences the replies of the client's own connection, which is the
// proxy's: the proxy keeps the mode and drops the silenced replies when it writes a batch
// (assemble, runDeferred), as Redis does when it writes to the client. The commands still run.
// Like Redis 7.0, which sends pub/sub confirmations and messages whatever the mode, the
// replies of the subscribe commands are not silenced.

// replyMode is a session's CLIENT REPLY state.
type replyMode struct {
	off      bool // CLIENT REPLY OFF: every reply is dropped until ON
	skipNext bool // CLIENT REPLY SKIP: the next command's reply is dropped
}

// silent reports whether the reply of the command about to be handled is dropped, and
// consumes a SKIP.
func (m *replyMode) silent(spec *command.Spec) bool {
	skip := m.skipNext
	m.skipNext = false
	if spec != nil && spec.Policy == command.Subscribe {
		return false
	}
	return m.off || skip
}

// clientReplyMode answers CLIENT REPLY (its arity was checked in handle) and sets pl.silent as
// Redis does: ON answers OK (even right after a SKIP), OFF and SKIP answer nothing.
func (s *session) clientReplyMode(pl *place, out []byte, mode []byte) []byte {
	switch strings.ToLower(string(mode)) {
	case "on":
		s.reply = replyMode{}
		pl.silent = false
		return resp.AppendSimple(out, "OK")
	case "off":
		s.reply = replyMode{off: true}
		pl.silent = true
	case "skip":
		if !s.reply.off {
			s.reply.skipNext = true
		}
		pl.silent = true
	default:
		return resp.AppendError(out, "ERR syntax error")
	}
	return out
}
