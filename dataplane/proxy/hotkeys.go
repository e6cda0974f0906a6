package proxy

import (
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/hotkey"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// sampleKeys counts one command in SampleEvery into the hot-key tracker. The session counts
// on its own (no shared counter to contend on); only a sampled command finds its keys and
// takes the tracker's lock.
func (s *session) sampleKeys(t *hotkey.Tracker, spec *command.Spec, args [][]byte) {
	s.hotTick++
	if s.hotTick < uint32(t.Config().SampleEvery) {
		return
	}
	s.hotTick = 0
	keys, _ := spec.Keys(args, s.hotKeys[:0])
	s.hotKeys = keys
	for _, k := range keys {
		t.Observe(args[k])
	}
}

// hotkeyReply answers HOTKEY ENABLE | DISABLE | GET [count] | RESET | HELP.
func (s *session) hotkeyReply(out []byte, args [][]byte) []byte {
	t := s.c.gen.Load().hot
	sub := strings.ToLower(string(args[1]))
	argc := func(n int) bool { return len(args) == n }
	switch sub {
	case "enable", "disable", "reset":
		if !argc(2) {
			return resp.AppendError(out, "ERR wrong number of arguments for 'hotkey|"+sub+"' command")
		}
		switch sub {
		case "enable":
			t.SetEnabled(true)
		case "disable":
			t.SetEnabled(false)
		default:
			t.Reset()
		}
		return resp.AppendSimple(out, "OK")
	case "get":
		if len(args) > 3 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'hotkey|get' command")
		}
		n := 10
		if len(args) == 3 {
			v, ok := resp.ParseInt64Arg(args[2])
			if !ok || v < -1 {
				return resp.AppendError(out, "ERR count should be greater than or equal to -1")
			}
			n = int(v)
		}
		top := t.Top(n)
		out = resp.AppendArrayHeader(out, len(top))
		for _, h := range top {
			out = resp.AppendArrayHeader(out, 2)
			out = resp.AppendBulkString(out, h.Key)
			out = resp.AppendInt(out, int64(min(h.Count, 1<<63-1)))
		}
		return out
	case "help":
		out = resp.AppendArrayHeader(out, 5)
		out = resp.AppendSimple(out, "HOTKEY ENABLE -- start sampling this cluster's commands (hotkey_sample_every)")
		out = resp.AppendSimple(out, "HOTKEY DISABLE -- stop sampling; what was counted is kept")
		out = resp.AppendSimple(out, "HOTKEY GET [<count>] -- the hottest keys as [key, estimated commands] pairs, hottest first (default 10, -1 all)")
		out = resp.AppendSimple(out, "HOTKEY RESET -- forget what was counted")
		return resp.AppendSimple(out, "HOTKEY HELP -- this text")
	}
	return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try HOTKEY HELP.")
}

// configReply answers CONFIG GET/SET for this cluster's live knobs, named
// cluster.<name>.<knob> as in the original Aster. Other parameters match nothing (GET) or are
// unknown (SET), as Redis answers for parameters it does not have.
func (s *session) configReply(out []byte, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	prefix := "cluster." + s.c.name + "."
	switch sub {
	case "get":
		if len(args) < 3 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'config|get' command")
		}
		knobs := s.c.Knobs()
		var found []Knob
		seen := map[string]bool{}
		for _, p := range args[2:] {
			for _, k := range matchKnobs(knobs, prefix, string(p)) {
				if !seen[k.Name] {
					seen[k.Name] = true
					found = append(found, k)
				}
			}
		}
		out = resp.AppendArrayHeader(out, 2*len(found))
		for _, k := range found {
			out = resp.AppendBulkString(out, k.Name)
			out = resp.AppendBulkString(out, k.Value)
		}
		return out
	case "set":
		if len(args)%2 != 0 { // the arity (at least 4) is checked as Redis does, in handle
			return resp.AppendError(out, "ERR syntax error")
		}
		pairs := make([]string, 0, len(args)-2)
		for _, a := range args[2:] {
			pairs = append(pairs, string(a))
		}
		if err := s.c.SetKnobs(pairs...); err != nil {
			return resp.AppendError(out, "ERR "+err.Error())
		}
		return resp.AppendSimple(out, "OK")
	case "help":
		out = resp.AppendArrayHeader(out, 3)
		out = resp.AppendSimple(out, "CONFIG GET <pattern> [<pattern> ...] -- this cluster's live knobs, named cluster.<name>.<knob>")
		out = resp.AppendSimple(out, "CONFIG SET <parameter> <value> [<parameter> <value> ...] -- change them; clients stay connected")
		return resp.AppendSimple(out, "CONFIG HELP -- this text")
	case "resetstat", "rewrite":
		return resp.AppendError(out, "ERR CONFIG "+strings.ToUpper(sub)+" is not supported by the proxy")
	}
	return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try CONFIG HELP.")
}
