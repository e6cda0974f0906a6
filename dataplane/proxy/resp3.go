package proxy

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// A session speaks RESP2 until its client sends HELLO 3, and back after HELLO 2; backend
// connections speak the cluster's backend_resp_version. A reply crosses over only when the
// two differ: convert rewrites it as Redis itself would answer the client, by the command's
// reply shape (command.ReplyShape, found when the command was routed). When they agree, the
// backend's bytes go to the client untouched: the default RESP2/RESP2 path never converts.

// convert appends reply to out in the protocol place pl's client expects.
func (s *session) convert(out, reply []byte, pl *place) []byte {
	if pl.proto3 {
		return resp.ToRESP3(out, reply, pl.shape)
	}
	return resp.ToRESP2(out, reply, pl.shape)
}

// localToRESP3 rewrites a reply the proxy made in RESP2 (INFO, COMMAND, CLUSTER, ...) for a
// RESP3 client, by the command's shape, as a backend's reply would be.
func (s *session) localToRESP3(out []byte, sh *resp.Shape) []byte {
	s.conv = resp.ToRESP3(s.conv[:0], out, sh)
	out, s.conv = s.conv, out // the place keeps the converted buffer; ours is reused
	s.keepConv()
	return out
}

// deferredShape is the reply shape of a deferred command (blocking, or a transaction's): for
// EXEC, a tuple of the queued commands' own shapes, read back from the queue.
func (s *session) deferredShape(spec *command.Spec) *resp.Shape {
	if spec.Policy == command.Block {
		return command.ReplyShape(spec, s.cmd.Args)
	}
	if spec.Name != "exec" || !s.tx.active {
		return nil
	}
	sh := &resp.Shape{Kind: resp.ShapeTuple}
	rd := resp.NewReader(bytes.NewReader(s.tx.frames), 4<<10)
	var cmd resp.Command
	for i := 0; rd.Read(&cmd) == nil; i++ {
		if i == 0 {
			continue // MULTI
		}
		sh.Items = append(sh.Items, command.ReplyShape(command.Lookup(cmd.Args[0]), cmd.Args))
	}
	return sh
}
