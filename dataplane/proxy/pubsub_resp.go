package proxy

import (
	"strconv"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// Pub/sub: how subscription confirmations and messages are framed for the client, RESP2
// arrays or RESP3 pushes, as Redis frames them.

// errPubSubContext is Redis's refusal of other commands in RESP2 subscribed mode.
func errPubSubContext(name string) string {
	return "ERR Can't execute '" + name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
}

// appendPushHeader starts a message or subscription confirmation frame: an array in RESP2, a
// push ('>') for RESP3 clients, as Redis sends them.
func appendPushHeader(out []byte, n int, resp3 bool) []byte {
	if resp3 {
		out = append(out, '>')
		out = strconv.AppendInt(out, int64(n), 10)
		return append(out, '\r', '\n')
	}
	return resp.AppendArrayHeader(out, n)
}

// appendSubReply appends a (un)subscribe confirmation; a nil name is Redis's null channel of
// an UNSUBSCRIBE without arguments by a client that has none.
func appendSubReply(out []byte, word string, name []byte, count int, resp3 bool) []byte {
	out = appendPushHeader(out, 3, resp3)
	out = resp.AppendBulkString(out, word)
	switch {
	case name == nil && resp3:
		out = append(out, "_\r\n"...)
	case name == nil:
		out = resp.AppendNullBulk(out)
	default:
		out = resp.AppendBulk(out, name)
	}
	return resp.AppendInt(out, int64(count))
}
