package proxy

import (
	"strings"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/slowlog"
)

// SlowEntry is one slow command, as Redis's SLOWLOG shows it.
type SlowEntry = slowlog.Entry

// slowLog is a cluster's slow log (dataplane/slowlog); the proxy decides what is slow
// (batchDone) and answers SLOWLOG (slowlogReply).
type slowLog = slowlog.Log

// SlowLog returns up to n of the cluster's slowest recent commands, newest first (n < 0:
// all); nil when the cluster is unknown or its slow log is off.
func (s *Server) SlowLog(cluster string, n int) ([]SlowEntry, bool) {
	s.mu.Lock()
	c := s.clusters[cluster]
	s.mu.Unlock()
	if c == nil {
		return nil, false
	}
	l := c.gen.Load().slow
	if l == nil {
		return nil, true
	}
	return l.Get(n), true
}

// slowlogReply answers SLOWLOG GET [n] | LEN | RESET | HELP from the cluster's slow log.
func (s *session) slowlogReply(out []byte, args [][]byte) []byte {
	l := s.c.gen.Load().slow
	switch strings.ToLower(string(args[1])) {
	case "get":
		if len(args) > 3 {
			return resp.AppendError(out, "ERR unknown subcommand or wrong number of arguments for '"+clip(args[1])+"'. Try SLOWLOG HELP.")
		}
		n := 10
		if len(args) > 2 {
			v, ok := resp.ParseInt64Arg(args[2])
			if !ok || v < -1 {
				return resp.AppendError(out, "ERR count should be greater than or equal to -1")
			}
			n = int(v)
		}
		var entries []SlowEntry
		if l != nil {
			entries = l.Get(n)
		}
		out = resp.AppendArrayHeader(out, len(entries))
		for _, e := range entries {
			out = resp.AppendArrayHeader(out, 6)
			out = resp.AppendInt(out, int64(e.ID))
			out = resp.AppendInt(out, e.Time.Unix())
			out = resp.AppendInt(out, e.Duration.Microseconds())
			out = resp.AppendArrayHeader(out, len(e.Args))
			for _, a := range e.Args {
				out = resp.AppendBulkString(out, a)
			}
			out = resp.AppendBulkString(out, e.Client)
			out = resp.AppendBulkString(out, "")
		}
		return out
	case "len":
		if l == nil {
			return resp.AppendInt(out, 0)
		}
		return resp.AppendInt(out, int64(l.Len()))
	case "reset":
		if l != nil {
			l.Reset()
		}
		return resp.AppendSimple(out, "OK")
	case "help":
		out = resp.AppendArrayHeader(out, 3)
		out = resp.AppendSimple(out, "SLOWLOG GET [<count>] -- the newest slow commands of this cluster")
		out = resp.AppendSimple(out, "SLOWLOG LEN -- how many are kept")
		return resp.AppendSimple(out, "SLOWLOG RESET -- forget them")
	}
	return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try SLOWLOG HELP.")
}
