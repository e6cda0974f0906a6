package proxy

import (
	"bytes"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

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
		if keyspace && s.snap != nil && len(s.keyspaceNodes()) > 0 {
			if s.proto3 != s.snap.resp3 {
				pl.shape = command.ReplyShape(spec, args)
			}
			s.infoKeyspace(pl, text) // the keys live on the nodes
			return
		}
		out = resp.AppendBulkString(out, text)
	case "cluster":
		out = s.c.clusterReply(out, args)
	case "client":
		out = s.clientReply(out, args)
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

// askKeyless sends frame to the keyless node (keyless.go) as the place's command, args (the
// client's) for the reply's conversion to the client's protocol.
func (s *session) askKeyless(pl *place, args [][]byte, frame []byte) {
	if s.snap == nil {
		pl.setError("ERR cluster " + s.c.name + " has no routing table yet")
		return
	}
	node := s.keylessNode()
	if node < 0 {
		s.noNode(pl)
		return
	}
	if s.proto3 != s.snap.resp3 {
		pl.shape = command.ReplyShape(command.Lookup(args[0]), args)
	}
	pl.kind = placeForward
	pl.main.buf = frame
	s.send(&pl.main, s.conn(node), frame)
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

var processStart = time.Now()

// infoSections are INFO's sections in order; "default", "all" and "everything" (or no
// argument) ask for every one.
var infoSections = []string{"server", "clients", "stats", "proxy", "cluster", "keyspace"}

// info is the INFO reply for the sections asked (every one when none is): enough of Redis's
// for clients that parse them (cluster_enabled:1 matches the CLUSTER answers), and the
// cluster's own. keyspace says the Keyspace section was asked: it ends the text with its
// header only, and the nodes' counts go under it (infoKeyspace).
func (c *Cluster) info(sections [][]byte) (text string, keyspace bool) {
	want := make(map[string]bool, len(infoSections))
	for _, a := range sections {
		switch name := strings.ToLower(string(a)); name {
		case "default", "all", "everything":
			for _, s := range infoSections {
				want[s] = true
			}
		default:
			want[name] = true
		}
	}
	if len(sections) == 0 {
		for _, s := range infoSections {
			want[s] = true
		}
	}
	c.mu.Lock()
	clients := len(c.sessions)
	c.mu.Unlock()
	_, port := c.announced()
	var version uint64
	nodes := 0
	cacheType := "redis"
	if s := c.gen.Load().snap; s != nil {
		version = s.table.Version
		nodes = len(s.pools)
		cacheType = s.table.CacheType()
	}
	var b bytes.Buffer
	line := func(k, v string) { b.WriteString(k + ":" + v + "\r\n") }
	section := func(name, title string) bool {
		if !want[name] {
			return false
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + title + "\r\n")
		return true
	}
	if section("server", "Server") {
		line("redis_version", "7.0.0")
		line("redis_mode", "cluster")
		line("aster_version", c.env.Version)
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.Itoa(strconv.IntSize))
		line("go_version", runtime.Version())
		line("process_id", strconv.Itoa(os.Getpid()))
		line("run_id", c.nodeID())
		line("tcp_port", strconv.Itoa(port))
		up := int64(time.Since(processStart).Seconds())
		line("uptime_in_seconds", strconv.FormatInt(up, 10))
		line("uptime_in_days", strconv.FormatInt(up/86400, 10))
	}
	if section("clients", "Clients") {
		line("connected_clients", strconv.Itoa(clients))
		if n := c.clientLimit(); n > 0 {
			line("maxclients", strconv.Itoa(n))
		}
		// Backend connections held for single clients (blocking commands, transactions,
		// subscriptions; idle pooled ones too), counted in the cluster's descriptor share.
		line("dedicated_connections", strconv.FormatInt(c.dedHeld.Load(), 10))
	}
	if section("stats", "Stats") {
		// Every accepted connection makes a session with the next ID.
		line("total_connections_received", strconv.FormatUint(c.nextID.Load(), 10))
		if n, ok := c.commandsProcessed(); ok {
			line("total_commands_processed", strconv.FormatUint(n, 10))
		}
	}
	if section("proxy", "Proxy") {
		line("proxy", "aster")
		line("cluster", c.name)
		line("cache_type", cacheType)
		line("routing_table_version", strconv.FormatUint(version, 10))
		line("nodes", strconv.Itoa(nodes))
	}
	if section("cluster", "Cluster") {
		line("cluster_enabled", "1")
	}
	keyspace = section("keyspace", "Keyspace")
	return b.String(), keyspace
}
