// Package command is Aster's table of the Redis 7.x command set: for every command its arity, its
// read/write nature, where its keys are, and the proxy policy that says how a request is routed
// (forwarded whole, split across nodes and merged, answered by the proxy, or refused).
//
// The table is immutable after package initialisation, so every function here is safe for
// concurrent use. Lookup and Spec.Keys are on the per-request hot path and do not allocate.
//
// The table was checked against the COMMAND reply of redis-server 7.0 (plus the 7.2 command
// WAITAOF); TestTableMatchesRedis keeps it honest against whatever redis-server is installed.
// docs/commands.md is generated from it: run `go generate ./dataplane/command` after a change.
package command

//go:generate go test -run ^TestCommandsDocUpToDate$ -update .

import (
	"sort"
	"strconv"
	"strings"
)

// Policy says how the proxy handles a command in standalone (consistent-hash) mode.
type Policy uint8

const (
	// Forward sends the command to the node that owns its key. A Forward command for which
	// Keys finds no key has no node to go to: the proxy refuses it (MEMORY STATS), unless any
	// node may answer it (OBJECT HELP: Spec.AnyNode).
	Forward Policy = iota
	// SplitMGet splits MGET per node and merges the arrays back in the client's key order.
	SplitMGet
	// SplitMSet splits MSET per node into (key, value) pairs and replies +OK if every node did.
	SplitMSet
	// SplitSum splits DEL, UNLINK, EXISTS and TOUCH per node and sums the integer replies.
	SplitSum
	// SameNode commands take several keys that must live together (RENAME, SINTER, EVAL, ...):
	// the proxy forwards them when every key hashes to one node and refuses them otherwise. A
	// script that declares no key (EVAL with numkeys 0, ...) goes to one serving node
	// (Spec.AnyNode), as a Redis Cluster client sends it to a node of its choice.
	SameNode
	// Local commands are answered by the proxy itself: PING, ECHO, QUIT, SELECT (db 0 only),
	// COMMAND, INFO, AUTH, HELLO, CLIENT SETNAME|GETNAME|ID, ...
	Local
	// Unsupported commands are refused with "-ERR <cmd> is not supported by the proxy"; Spec.Reason
	// says why.
	Unsupported
	// Channel commands are routed by a pub/sub channel name, where SUBSCRIBE puts that channel's
	// subscribers: PUBLISH (the ring node of the channel in standalone mode, the master of its
	// slot in cluster mode) and PUBSUB NUMSUB/SHARDNUMSUB.
	Channel
	// Subscribe commands ((P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE) put the client session in subscribed
	// mode, on backend connections of its own; the proxy answers their confirmations itself.
	Subscribe
	// Block commands may block their connection (BLPOP, BZMPOP, XREAD with BLOCK, ...): the proxy
	// runs them on a connection of the client's own to the node of their keys (all on one
	// node), once the client's earlier commands are answered. BlockTimeout says whether a call
	// blocks; one that does not (XREAD without BLOCK) is forwarded like SameNode.
	Block
	// Transaction commands (MULTI, EXEC, DISCARD, WATCH, UNWATCH) are handled by the proxy: it
	// queues the transaction and runs it on a connection of the client's own to the one node
	// that all its keys, and the watched ones, are on.
	Transaction
	// Broadcast commands (SCRIPT LOAD, EXISTS, FLUSH) are sent to every node the routing table
	// serves, masters and replicas, so that a later EVALSHA finds its script wherever its keys
	// are; the first error is the reply, else the nodes' replies merged (see the proxy).
	Broadcast
	// Keyspace commands (SCAN, DBSIZE, KEYS, RANDOMKEY, FLUSHDB, FLUSHALL, TIME) cover every key
	// (or no key but a server's): they go over the nodes that hold the keyspace (the ring's
	// nodes; a Redis Cluster's masters) rather than to one of them.
	Keyspace
)

var policyNames = [...]string{
	Forward:     "forward",
	SplitMGet:   "split-mget",
	SplitMSet:   "split-mset",
	SplitSum:    "split-sum",
	SameNode:    "same-node",
	Local:       "local",
	Unsupported: "unsupported",
	Channel:     "channel",
	Subscribe:   "subscribe",
	Block:       "blocking",
	Transaction: "transaction",
	Broadcast:   "broadcast",
	Keyspace:    "keyspace",
}

// String returns the policy's name as used in docs/commands.md.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

// Flag describes a command. The first ones mirror Redis's own COMMAND flags of the same meaning.
type Flag uint16

const (
	// Read is Redis's "readonly": the command only reads data.
	Read Flag = 1 << iota
	// Write is Redis's "write": the command may modify data.
	Write
	// Fast is Redis's "fast": O(1) or O(log N).
	Fast
	// Blocking is Redis's "blocking": the command may block the connection, so it needs a
	// connection of its own rather than a shared pipelined one.
	Blocking
	// PubSub is Redis's "pubsub": the command belongs to publish/subscribe.
	PubSub
	// Admin is Redis's "admin": server administration.
	Admin
	// MovableKeys means the key positions depend on the arguments (numkeys, a keyword, a
	// subcommand): only Spec.Keys finds them, FirstKey/LastKey/Step do not tell the whole story.
	MovableKeys
	// Container means the command has subcommands (CONFIG GET, OBJECT ENCODING, ...).
	Container
	// NoKey means the command never takes a key argument.
	NoKey
)

var flagNames = [...]string{"read", "write", "fast", "blocking", "pubsub", "admin", "movablekeys", "container", "nokey"}

// String lists the set flags, space separated, for docs and test messages.
func (f Flag) String() string {
	var b strings.Builder
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Spec is the description of one command. Specs are shared and must not be modified.
type Spec struct {
	// Name is the command name in lower case.
	Name string
	// Arity is the Redis argument count including the name: positive means exactly that many,
	// negative means at least -Arity.
	Arity int
	// Flags describe the command.
	Flags Flag
	// Policy says how the proxy routes the command.
	Policy Policy
	// FirstKey, LastKey and Step are Redis's legacy key specification: keys are args[FirstKey],
	// args[FirstKey+Step], ... up to args[LastKey]; a negative LastKey counts from the end (-1 is
	// the last argument). FirstKey 0 means no fixed key. They equal what Redis's COMMAND reports;
	// commands with MovableKeys need Keys for the full answer.
	FirstKey, LastKey, Step int
	// ID is the spec's position in All(), so that per-command data (metric children) can live
	// in a slice indexed without a map lookup on the hot path.
	ID int
	// Reason explains the policy: for Unsupported it says why (always set); for others it is an
	// optional caveat. Both go into docs/commands.md.
	Reason string
	// Categories are the command's Redis ACL categories (Redis's own; the proxy's for HOTKEY).
	Categories Category
	// Subcommands of a container command, sorted by name, each with its own categories.
	Subcommands []Subcommand

	find keyFinder    // how Keys finds keys beyond the legacy range
	from int          // findStreams, findGeoStore: where the keyword search starts
	subs []subcommand // findSubcommand: the known subcommands
}

// subcommand is one subcommand of a container command whose key (if any) is at args[2].
type subcommand struct {
	name  string // lower case
	keyed bool   // takes its key at args[2]
}

// CheckArity reports whether argc (the argument count including the command name) is valid.
func (s *Spec) CheckArity(argc int) bool {
	if s.Arity >= 0 {
		return argc == s.Arity
	}
	return argc >= -s.Arity
}

// IsReadOnly reports whether the command only reads data, so that it could be sent to a replica.
// Commands whose effect depends on their arguments (EVAL, ...) are not read-only.
func IsReadOnly(s *Spec) bool {
	return s.Flags&Read != 0 && s.Flags&Write == 0
}

// maxNameLen bounds the command names Lookup accepts; the longest Redis name is 20 bytes.
const maxNameLen = 32

var (
	byName = make(map[string]*Spec, len(table))
	sorted = make([]*Spec, 0, len(table))
)

func init() {
	for i := range table {
		s := &table[i]
		if len(s.Name) > maxNameLen {
			panic("command: name longer than maxNameLen: " + s.Name)
		}
		if _, dup := byName[s.Name]; dup {
			panic("command: duplicate spec: " + s.Name)
		}
		byName[s.Name] = s
		sorted = append(sorted, s)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i, s := range sorted {
		s.ID = i
	}
	initCategories()
}

// Count is the number of commands in the table; Spec.ID is below it.
func Count() int { return len(sorted) }

// Lookup finds a command by name, ASCII case-insensitively, or returns nil if it is unknown.
// It does not allocate.
func Lookup(name []byte) *Spec {
	var buf [maxNameLen]byte
	if len(name) == 0 || len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	// The compiler does not allocate for a map index with string(bytes).
	return byName[string(buf[:len(name)])]
}

// LookupRecent is Lookup for a name that is often one of the last two a client sent (the same
// command again and again, or two in turn, as GET and SET): a or b when name is its name,
// ASCII case-insensitively, without the map lookup. a and b may be nil.
func LookupRecent(name []byte, a, b *Spec) *Spec {
	if named(a, name) {
		return a
	}
	if named(b, name) {
		return b
	}
	return Lookup(name)
}

// named reports whether name is s's name, ASCII case-insensitively; false for a nil s.
func named(s *Spec, name []byte) bool {
	if s == nil || len(name) != len(s.Name) {
		return false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s.Name[i] {
			return false
		}
	}
	return true
}

// All returns every spec sorted by name (for docs and COMMAND COUNT). The slice is the
// caller's; the specs are shared.
func All() []*Spec {
	out := make([]*Spec, len(sorted))
	copy(out, sorted)
	return out
}
