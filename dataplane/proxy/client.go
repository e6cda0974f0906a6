package proxy

import (
	"strings"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// CLIENT: the client's connection is the proxy's, not a server's, so the proxy answers what it
// can about it itself. Client libraries name their connections on connect (redis-py's
// client_name, Jedis's clientName, ...) and fail the connection when CLIENT SETNAME does, so
// SETNAME, GETNAME and ID are answered; REPLY too (clientreply.go), and UNBLOCK of a proxy
// client (clientunblock.go). PAUSE and UNPAUSE go to the servers (clientpause.go). go-redis 9
// and redis-py 5 send CLIENT SETINFO (Redis 7.2) on every connection; it is checked as Redis
// checks it and accepted, so that their connection setup is not counted as a refused command.
// LIST, INFO and KILL are about the proxy's own clients (clientlist.go); TRACKING, CACHING,
// GETREDIR and TRACKINGINFO give them client-side caching (tracking.go).

// clientRefused are Redis's other CLIENT subcommands (7.2).
var clientRefused = map[string]bool{
	"help": true, "no-evict": true, "no-touch": true,
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// clientReply answers CLIENT and its subcommands.
func (s *session) clientReply(pl *place, out []byte, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	wantArgs := 2
	switch sub {
	case "reply": // clientreply.go; its arity was checked in handle
		return s.clientReplyMode(pl, out, args[2])
	case "list": // clientlist.go, as INFO and KILL; arity checked in handle
		return s.clientList(out, args)
	case "info":
		return s.clientInfo(out)
	case "kill":
		return s.clientKill(out, args)
	case "setname":
		wantArgs = 3
	case "setinfo":
		wantArgs = 4
	case "getname", "id":
	case "tracking", "trackinginfo", "getredir", "caching": // tracking.go
		return s.clientTracking(sub, out, args)
	default:
		if clientRefused[sub] {
			return resp.AppendError(out, "ERR CLIENT "+strings.ToUpper(sub)+" is not supported by the proxy")
		}
		return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try CLIENT HELP.")
	}
	if len(args) != wantArgs {
		return resp.AppendError(out, "ERR wrong number of arguments for 'client|"+sub+"' command")
	}
	switch sub {
	case "setname":
		if !s.setName(args[2]) {
			return resp.AppendError(out, errClientName)
		}
		return resp.AppendSimple(out, "OK")
	case "setinfo":
		attr := strings.ToLower(string(args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			return resp.AppendError(out, "ERR Unrecognized option '"+clip(args[2])+"'")
		}
		if !validName(args[3]) {
			return resp.AppendError(out, "ERR "+clip(args[2])+" cannot contain spaces, newlines or special characters.")
		}
		return resp.AppendSimple(out, "OK")
	case "getname":
		if s.name == "" {
			return resp.AppendNullBulk(out)
		}
		return resp.AppendBulkString(out, s.name)
	default: // id
		return resp.AppendInt(out, int64(s.id))
	}
}

// setName sets the connection's name as CLIENT SETNAME and HELLO SETNAME do: printable ASCII
// without spaces, empty for none. false: the name is invalid and the old one stays.
func (s *session) setName(name []byte) bool {
	if !validName(name) {
		return false
	}
	s.name = string(name)
	s.publishIdentity()
	return true
}

// validName reports whether a client name or attribute is printable ASCII without spaces.
func validName(v []byte) bool {
	for _, c := range v {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}
