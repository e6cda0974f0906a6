package proxy

import (
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// local answers the commands the proxy owns (command.Local).
func (s *session) local(pl *place, spec *command.Spec, args [][]byte) {
	pl.kind = placeLocal
	out := pl.local[:0]
	switch spec.Name {
	case "ping":
		switch len(args) {
		case 1:
			out = resp.AppendSimple(out, "PONG")
		case 2:
			out = resp.AppendBulk(out, args[1])
		default: // Redis's arity is -1, but PING takes one message at most
			out = resp.AppendError(out, "ERR wrong number of arguments for 'ping' command")
		}
	case "echo":
		out = resp.AppendBulk(out, args[1])
	case "quit":
		out = resp.AppendSimple(out, "OK")
		s.quit = true
	case "reset":
		s.resetConn() // before the reply: +RESET is the same in RESP2 and RESP3
		// Replies are on again (CLIENT REPLY ON), RESET's own first, as in Redis.
		pl.silent = false
		out = resp.AppendSimple(out, "RESET")
	case "select":
		switch db, ok := resp.ParseInt64Arg(args[1]); {
		case !ok:
			out = resp.AppendError(out, "ERR value is not an integer or out of range")
		case db != 0:
			out = resp.AppendError(out, "ERR DB index is out of range")
		default:
			out = resp.AppendSimple(out, "OK")
		}
	case "auth":
		out = s.auth(out, args)
	case "hello":
		out = s.hello(out, args)
	case "slowlog":
		out = s.slowlogReply(out, args)
	case "hotkey":
		out = s.hotkeyReply(out, args)
	case "config":
		out = s.configReply(out, args)
		s.gen = s.c.gen.Load() // the batch's next commands see a knob it set, as in Redis
	case "command":
		if out = s.commandReply(pl, out, args); pl.kind == placeForward {
			return // asked of a node (DOCS, GETKEYS): its reply is the command's
		}
	case "info":
		text, keyspace := s.c.info(args[1:])
		if keyspace && s.routes != nil && len(s.keyspaceNodes()) > 0 {
			if s.proto3 != s.routes.resp3 {
				pl.shape = command.ReplyShape(spec, args)
			}
			s.infoKeyspace(pl, text) // the keys live on the nodes
			return
		}
		out = resp.AppendBulkString(out, text)
	case "cluster":
		out = s.c.clusterReply(out, args)
	case "client":
		if isPause(args[1]) {
			s.clientPause(pl, args) // clientpause.go: the nodes answer
			return
		}
		if strings.EqualFold(string(args[1]), "unblock") {
			s.clientUnblock(pl, args) // clientunblock.go
			return
		}
		out = s.clientReply(pl, out, args)
	case "readonly", "readwrite":
		// Cluster clients (redis-py's read_from_replicas, go-redis's ReadOnly) send READONLY
		// on every connection to the one-node cluster the proxy shows, and fail the
		// connection if it is refused. The proxy's read_from_slave decides where reads go.
		out = resp.AppendSimple(out, "OK")
	default:
		out = resp.AppendError(out, "ERR "+spec.Name+" is not supported by the proxy")
	}
	// Replies are made in RESP2; HELLO makes its own in the protocol it switched to.
	if s.proto3 && spec.Name != "hello" && len(out) > 0 && out[0] != '-' {
		out = s.localToRESP3(out, command.ReplyShape(spec, args))
	}
	pl.local = out
}

// askKeyless sends frame to the keyless node (keyless.go) as the place's command, args (the
// client's) for the reply's conversion to the client's protocol.
func (s *session) askKeyless(pl *place, args [][]byte, frame []byte) {
	if s.routes == nil {
		pl.setError("ERR cluster " + s.c.name + " has no routing table yet")
		return
	}
	node := s.keylessNode()
	if node < 0 {
		s.noNode(pl)
		return
	}
	if s.proto3 != s.routes.resp3 {
		pl.shape = command.ReplyShape(command.Lookup(args[0]), args)
	}
	pl.kind = placeForward
	pl.main.buf = frame
	s.send(&pl.main, s.conn(node), frame)
}
