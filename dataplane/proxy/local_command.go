package proxy

import (
	"path"
	"slices"
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// COMMAND, answered from the command table (local.go dispatches it).

// commandReply answers COMMAND and its subcommands from the command table, listing only what
// the proxy accepts, so that clients that introspect (redis-cli, client libraries) see the
// proxy's truth rather than a backend's. What only a server knows in full (DOCS, the keys and
// their flags in GETKEYS and GETKEYSANDFLAGS) is asked of the keyless node, for the commands
// the proxy serves; the subcommand's arity was checked in handle.
func (s *session) commandReply(pl *place, out []byte, args [][]byte) []byte {
	if len(args) == 1 {
		specs := servedSpecs()
		out = resp.AppendArrayHeader(out, len(specs))
		for _, sp := range specs {
			out = appendCommandInfo(out, sp)
		}
		return out
	}
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "count":
		return resp.AppendInt(out, int64(len(servedSpecs())))
	case "list":
		return commandList(out, args[2:])
	case "info":
		names := args[2:]
		if len(names) == 0 {
			return s.commandReply(pl, out, args[:1])
		}
		out = resp.AppendArrayHeader(out, len(names))
		for _, n := range names {
			if sp := command.Lookup(n); sp != nil && sp.Policy != command.Unsupported {
				out = appendCommandInfo(out, sp)
			} else {
				out = resp.AppendNullBulk(out)
			}
		}
		return out
	case "docs":
		// The servers' own documentation, of the commands the proxy serves only.
		frame := resp.AppendCommand(nil, args[0], args[1])
		n := 2
		for _, sp := range servedSpecs() {
			if len(args) == 2 || slices.ContainsFunc(args[2:], func(a []byte) bool { return strings.EqualFold(string(a), sp.Name) }) {
				frame = resp.AppendBulkString(frame, sp.Name)
				n++
			}
		}
		if n == 2 {
			return resp.AppendArrayHeader(out, 0)
		}
		s.askKeyless(pl, args, patchArrayLen(frame, n))
		return nil
	case "getkeys", "getkeysandflags":
		if sp := command.Lookup(args[2]); sp == nil || sp.Policy == command.Unsupported {
			return resp.AppendError(out, "ERR Invalid command specified")
		}
		s.askKeyless(pl, args, resp.AppendCommand(nil, args...))
		return nil
	case "help":
		out = resp.AppendArrayHeader(out, len(commandHelp))
		for _, l := range commandHelp {
			out = resp.AppendSimple(out, l)
		}
		return out
	default:
		return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try COMMAND HELP.")
	}
}

// patchArrayLen rewrites the array header of a command frame built with a count of 2 (two
// arguments, then more appended) to n.
func patchArrayLen(frame []byte, n int) []byte {
	head := resp.AppendArrayHeader(nil, n)
	return append(head, frame[len("*2\r\n"):]...)
}

// commandList answers COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
// as Redis 7.0 does: the commands and their subcommands ("config|get"), of those the proxy
// serves.
func commandList(out []byte, filter [][]byte) []byte {
	var match func(name string, cats command.Category) bool
	switch {
	case len(filter) == 0:
		match = func(string, command.Category) bool { return true }
	case len(filter) == 3 && strings.EqualFold(string(filter[0]), "filterby"):
		arg := string(filter[2])
		switch strings.ToLower(string(filter[1])) {
		case "module":
			match = func(string, command.Category) bool { return false } // no modules
		case "aclcat":
			cat, ok := command.LookupCategory(strings.ToLower(arg))
			match = func(_ string, c command.Category) bool { return ok && c&cat != 0 }
		case "pattern":
			pat := strings.ToLower(arg)
			match = func(name string, _ command.Category) bool { ok, _ := path.Match(pat, name); return ok }
		}
	}
	if match == nil {
		return resp.AppendError(out, "ERR syntax error")
	}
	var names []string
	for _, sp := range servedSpecs() {
		if match(sp.Name, sp.Categories) {
			names = append(names, sp.Name)
		}
		for i := range sp.Subcommands {
			sc := &sp.Subcommands[i]
			if subServed(sc.Name) && match(sc.Name, sc.Categories) {
				names = append(names, sc.Name)
			}
		}
	}
	out = resp.AppendArrayHeader(out, len(names))
	for _, n := range names {
		out = resp.AppendBulkString(out, n)
	}
	return out
}

// subServed reports whether the proxy serves a subcommand ("client|kill") of a command it
// serves: the refused ones are those its handlers refuse.
func subServed(name string) bool {
	parent, sub, _ := strings.Cut(name, "|")
	switch parent {
	case "client":
		return !clientRefused[sub]
	case "cluster":
		return !clusterUnsupported[sub]
	case "config":
		return sub != "resetstat" && sub != "rewrite"
	case "script":
		return sub != "debug"
	case "pubsub":
		return sub == "numsub" || sub == "shardnumsub" || sub == "help"
	case "memory":
		return sub == "usage" || sub == "help"
	}
	return true
}

// commandHelp is Redis 7.0's COMMAND HELP.
var commandHelp = []string{
	"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"(no subcommand)",
	"    Return details about all Redis commands.",
	"COUNT",
	"    Return the total number of commands in this Redis server.",
	"LIST",
	"    Return a list of all commands in this Redis server.",
	"INFO [<command-name> ...]",
	"    Return details about multiple Redis commands.",
	"    If no command names are given, documentation details for all",
	"    commands are returned.",
	"DOCS [<command-name> ...]",
	"    Return documentation details about multiple Redis commands.",
	"    If no command names are given, documentation details for all",
	"    commands are returned.",
	"GETKEYS <full-command>",
	"    Return the keys from a full Redis command.",
	"GETKEYSANDFLAGS <full-command>",
	"    Return the keys and the access flags from a full Redis command.",
	"HELP",
	"    Prints this help.",
}

func servedSpecs() []*command.Spec {
	var specs []*command.Spec
	for _, sp := range command.All() {
		if sp.Policy != command.Unsupported {
			specs = append(specs, sp)
		}
	}
	return specs
}

var commandFlagNames = []struct {
	f    command.Flag
	name string
}{
	{command.Write, "write"}, {command.Read, "readonly"}, {command.Fast, "fast"},
	{command.Blocking, "blocking"}, {command.PubSub, "pubsub"}, {command.Admin, "admin"},
	{command.MovableKeys, "movablekeys"},
}

// appendCommandInfo writes one COMMAND entry in Redis 7's ten-element form. A container
// (OBJECT, MEMORY, ...) has no flags of its own in Redis, whatever the table says of the
// subcommands that name keys; its subcommands are listed with their arity and categories.
func appendCommandInfo(out []byte, sp *command.Spec) []byte {
	flags := sp.Flags
	if flags&command.Container != 0 {
		flags = 0
	}
	out = appendInfoEntry(out, sp.Name, sp.Arity, flags, sp.FirstKey, sp.LastKey, sp.Step, sp.Categories)
	n := 0
	for i := range sp.Subcommands {
		if subServed(sp.Subcommands[i].Name) {
			n++
		}
	}
	out = resp.AppendArrayHeader(out, n)
	for i := range sp.Subcommands {
		sc := &sp.Subcommands[i]
		if subServed(sc.Name) {
			out = appendInfoEntry(out, sc.Name, sc.Arity, 0, 0, 0, 0, sc.Categories)
			out = resp.AppendArrayHeader(out, 0)
		}
	}
	return out
}

// appendInfoEntry writes the first nine elements of a COMMAND entry (the tenth, the
// subcommands, is the caller's).
func appendInfoEntry(out []byte, name string, arity int, flags command.Flag, first, last, step int, cats command.Category) []byte {
	out = resp.AppendArrayHeader(out, 10)
	out = resp.AppendBulkString(out, name)
	out = resp.AppendInt(out, int64(arity))
	n := 0
	for _, f := range commandFlagNames {
		if flags&f.f != 0 {
			n++
		}
	}
	out = resp.AppendArrayHeader(out, n)
	for _, f := range commandFlagNames {
		if flags&f.f != 0 {
			out = resp.AppendSimple(out, f.name)
		}
	}
	out = resp.AppendInt(out, int64(first))
	out = resp.AppendInt(out, int64(last))
	out = resp.AppendInt(out, int64(step))
	names := strings.Fields(cats.String()) // "@read @string @fast"
	out = resp.AppendArrayHeader(out, len(names))
	for _, c := range names {
		out = resp.AppendSimple(out, c)
	}
	out = resp.AppendArrayHeader(out, 0)  // tips
	return resp.AppendArrayHeader(out, 0) // key specs
}
