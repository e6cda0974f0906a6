package proxy

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// local answers the commands the proxy owns (command.Local).
func (s *session) local(sl *slot, spec *command.Spec, args [][]byte) {
	sl.kind = slotLocal
	out := sl.local[:0]
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
		out = commandReply(out, args)
	case "info":
		text, keyspace := s.c.info(args[1:])
		if keyspace && s.snap != nil && len(s.keyspaceNodes()) > 0 {
			if s.proto3 != s.snap.resp3 {
				sl.shape = command.ReplyShape(spec, args)
			}
			s.infoKeyspace(sl, text) // the keys live on the nodes
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
	sl.local = out
}

// commandReply answers COMMAND and its subcommands from the command table, listing only what
// the proxy accepts, so that clients that introspect (redis-cli, client libraries) see the
// proxy's truth rather than a backend's.
func commandReply(out []byte, args [][]byte) []byte {
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
		specs := servedSpecs()
		out = resp.AppendArrayHeader(out, len(specs))
		for _, sp := range specs {
			out = resp.AppendBulkString(out, sp.Name)
		}
		return out
	case "info":
		names := args[2:]
		if len(names) == 0 {
			return commandReply(out, args[:1])
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
		// No documentation is served; an empty reply is valid and clients fall back to none.
		return resp.AppendArrayHeader(out, 0)
	case "getkeys":
		if len(args) < 3 {
			return resp.AppendError(out, "ERR wrong number of arguments for 'command|getkeys' command")
		}
		cargs := args[2:]
		sp := command.Lookup(cargs[0])
		if sp == nil {
			return resp.AppendError(out, "ERR Invalid command specified")
		}
		if !sp.CheckArity(len(cargs)) {
			return resp.AppendError(out, "ERR Invalid number of arguments specified for command")
		}
		keys, ok := sp.Keys(cargs, nil)
		if !ok || len(keys) == 0 {
			return resp.AppendError(out, "ERR The command has no key arguments")
		}
		out = resp.AppendArrayHeader(out, len(keys))
		for _, k := range keys {
			out = resp.AppendBulk(out, cargs[k])
		}
		return out
	default:
		return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try COMMAND HELP.")
	}
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

// appendCommandInfo writes one COMMAND entry in Redis 7's ten-element form.
func appendCommandInfo(out []byte, sp *command.Spec) []byte {
	out = resp.AppendArrayHeader(out, 10)
	out = resp.AppendBulkString(out, sp.Name)
	out = resp.AppendInt(out, int64(sp.Arity))
	n := 0
	for _, f := range commandFlagNames {
		if sp.Flags&f.f != 0 {
			n++
		}
	}
	out = resp.AppendArrayHeader(out, n)
	for _, f := range commandFlagNames {
		if sp.Flags&f.f != 0 {
			out = resp.AppendSimple(out, f.name)
		}
	}
	out = resp.AppendInt(out, int64(sp.FirstKey))
	out = resp.AppendInt(out, int64(sp.LastKey))
	out = resp.AppendInt(out, int64(sp.Step))
	cats := strings.Fields(sp.Categories.String()) // "@read @string @fast"
	out = resp.AppendArrayHeader(out, len(cats))
	for _, c := range cats {
		out = resp.AppendSimple(out, c)
	}
	for i := 0; i < 3; i++ { // tips, key specs, subcommands: none
		out = resp.AppendArrayHeader(out, 0)
	}
	return out
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
		if s.slots != nil {
			cacheType = "redis_cluster"
		}
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
		line("aster_version", c.opts.Version)
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
		line("cluster", c.opts.Name)
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
