package command

import (
	"bytes"
	"fmt"
)

// keysText describes where a command's keys are, for docs/commands.md.
func (s *Spec) keysText() string {
	switch s.find {
	case findNumkeys1:
		return "numkeys at 1, keys follow"
	case findNumkeys2:
		return "numkeys at 2, keys follow"
	case findScript:
		return "numkeys at 2 (may be 0), keys follow"
	case findDestNumkeys:
		return "1, numkeys at 2, keys follow"
	case findStreams:
		return "after STREAMS: first half"
	case findSort:
		return "1, STORE destination"
	case findMigrate:
		return "3, or after KEYS"
	case findGeoStore:
		return "1, STORE/STOREDIST destination"
	case findSubcommand:
		return "2 (keyed subcommands)"
	}
	switch {
	case s.FirstKey <= 0:
		return "-"
	case s.FirstKey == s.LastKey:
		return fmt.Sprint(s.FirstKey)
	case s.LastKey > 0 && s.LastKey == s.FirstKey+s.Step:
		return fmt.Sprintf("%d, %d", s.FirstKey, s.LastKey)
	case s.Step > 1:
		return fmt.Sprintf("%d..%d step %d", s.FirstKey, s.LastKey, s.Step)
	}
	return fmt.Sprintf("%d..%d", s.FirstKey, s.LastKey)
}

// rwText is the read/write column of docs/commands.md.
func (s *Spec) rwText() string {
	switch {
	case s.Flags&Write != 0:
		return "write"
	case s.Flags&Read != 0:
		return "read"
	}
	return "-"
}

// renderDoc renders docs/commands.md from the table.
func renderDoc() []byte {
	var b bytes.Buffer
	all := All()
	counts := make(map[Policy]int)
	for _, s := range all {
		counts[s.Policy]++
	}
	b.WriteString("# Commands\n\n")
	b.WriteString("<!-- Generated from dataplane/command by `go generate ./dataplane/command`; do not edit. -->\n\n")
	b.WriteString("Every Redis 7.x command and what Aster does with it in standalone (consistent-hash) mode.\n")
	b.WriteString("Arity follows Redis: N means exactly N arguments including the name, -N at least N.\n")
	b.WriteString("Keys are argument positions (0 is the command name); -1 is the last argument.\n\n")
	b.WriteString("Policies:\n\n")
	for p := Policy(0); int(p) < len(policyNames); p++ {
		plural := "s"
		if counts[p] == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, "- `%s` (%d command%s): %s\n", p, counts[p], plural, policyDoc[p])
	}
	b.WriteString(keylessDoc)
	b.WriteString("\n| Command | Arity | Keys | Read/write | Policy | Note |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, s := range all {
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s | %s | %s |\n", s.Name, s.Arity, s.keysText(), s.rwText(), s.Policy, s.Reason)
	}
	return b.Bytes()
}

var policyDoc = [...]string{
	Forward:     "sent to the node that owns the key; without a key, HELP subcommands (`OBJECT HELP`, `XINFO HELP`, ...) go to the keyless node (below), the others (`MEMORY STATS`) are refused.",
	SplitMGet:   "split per node, replies merged in the client's key order.",
	SplitMSet:   "split per node into key/value pairs; `+OK` when every node answered `+OK`.",
	SplitSum:    "split per node; the integer replies are summed.",
	SameNode:    "forwarded when every key hashes to one node, refused otherwise; a script without keys (`EVAL`, `EVALSHA`, `FCALL` and their `_RO` forms with numkeys 0) goes to the keyless node (below).",
	Local:       "answered by the proxy.",
	Unsupported: "refused with `-ERR <cmd> is not supported by the proxy`.",
	Channel:     "routed by the channel name to the node its subscribers use (ring node; in cluster mode the slot's master).",
	Subscribe:   "subscribed mode: the session gets backend connections of its own; confirmations answered by the proxy.",
	Block:       "run on a connection of the client's own to the node of its keys (all on one node), after the client's earlier commands are answered; the command's own timeout applies, and a client that disconnects releases it.",
	Transaction: "MULTI ... EXEC queued by the proxy and run on a connection of the client's own to the one node all its keys (and the WATCHed ones) are on; a key elsewhere is refused at queue time and EXEC answers `-EXECABORT`.",
	Broadcast:   "sent to every node (in cluster mode masters and replicas); the first error is the reply, else the first node's (`SCRIPT EXISTS`: 1 only where every node has the script).",
	Keyspace:    "over every node that holds keys (standalone: the ring's nodes; cluster: the masters): `DBSIZE` sums their counts, `KEYS` joins their keys, `RANDOMKEY` takes a random node's key (nil only when all are empty), `FLUSHDB`/`FLUSHALL` empty all of them (`+OK` when all did), `FUNCTION` goes to all of them (merged as `SCRIPT`'s replies; `KILL` as `SCRIPT KILL`), `TIME` is the first node's; `SCAN` walks one node after the other, its cursor the node's own with the node's position in the top 10 bits.",
}

// keylessDoc says where the commands that name no key but need a server go.
const keylessDoc = `
Keyless commands: a command that names no key but needs a server — a script that declares no key,
a HELP subcommand — goes to one serving node, the same for every client and every call, so that a
keyless script sees the same server each time: in standalone mode the owner of the ring's first
point (the only node of a one-node ring), in cluster mode the master of slot 0 (else the first
master). A Redis Cluster client does the same with a node of its choice. A transaction without
keys runs there too. A keyless script that reads or writes keys it did not declare sees that
node's keys only.

Bad arguments: a command whose key arguments are malformed (a numkeys of 0 or past the
arguments, a key without its value, unbalanced STREAMS, an unknown subcommand) goes to the
keyless node, which answers Redis's own error for that case, as a Redis Cluster node does with a
command in which it finds no key. Arity, subcommand names and subcommand arity are checked as
Redis checks them, before anything else, with Redis's errors. See docs/compatibility.md.
`
