package command

import "strings"

// subcommandArity is the arity of every subcommand, as Redis 7.0's COMMAND reply gives it
// (TestSubcommandArityMatchesRedis checks it against the installed server), plus Redis 7.2's
// that the proxy accepts and the proxy's own HOTKEY subcommands. Redis checks it for every
// container command before it runs one, so the proxy does too (SubcommandError).
var subcommandArity = map[string]int{
	"acl|cat": -2, "acl|deluser": -3, "acl|dryrun": -4, "acl|genpass": -2, "acl|getuser": 3,
	"acl|help": 2, "acl|list": 2, "acl|load": 2, "acl|log": -2, "acl|save": 2, "acl|setuser": -3,
	"acl|users": 2, "acl|whoami": 2, "client|caching": 3, "client|getname": 2,
	"client|getredir": 2, "client|help": 2, "client|id": 2, "client|info": 2, "client|kill": -3,
	"client|list": -2, "client|no-evict": 3, "client|pause": -3, "client|reply": 3,
	"client|setname": 3, "client|tracking": -3, "client|trackinginfo": 2, "client|unblock": -3,
	"client|unpause": 2, "cluster|addslots": -3, "cluster|addslotsrange": -4,
	"cluster|bumpepoch": 2, "cluster|count-failure-reports": 3, "cluster|countkeysinslot": 3,
	"cluster|delslots": -3, "cluster|delslotsrange": -4, "cluster|failover": -2,
	"cluster|flushslots": 2, "cluster|forget": 3, "cluster|getkeysinslot": 4, "cluster|help": 2,
	"cluster|info": 2, "cluster|keyslot": 3, "cluster|links": 2, "cluster|meet": -4,
	"cluster|myid": 2, "cluster|nodes": 2, "cluster|replicas": 3, "cluster|replicate": 3,
	"cluster|reset": -2, "cluster|saveconfig": 2, "cluster|set-config-epoch": 3,
	"cluster|setslot": -4, "cluster|shards": 2, "cluster|slaves": 3, "cluster|slots": 2,
	"command|count": 2, "command|docs": -2, "command|getkeys": -4, "command|getkeysandflags": -4,
	"command|help": 2, "command|info": -2, "command|list": -2, "config|get": -3, "config|help": 2,
	"config|resetstat": 2, "config|rewrite": 2, "config|set": -4, "function|delete": 3,
	"function|dump": 2, "function|flush": -2, "function|help": 2, "function|kill": 2,
	"function|list": -2, "function|load": -3, "function|restore": -3, "function|stats": 2,
	"latency|doctor": 2, "latency|graph": 3, "latency|help": 2, "latency|histogram": -2,
	"latency|history": 3, "latency|latest": 2, "latency|reset": -2, "memory|doctor": 2,
	"memory|help": 2, "memory|malloc-stats": 2, "memory|purge": 2, "memory|stats": 2,
	"memory|usage": -3, "module|help": 2, "module|list": 2, "module|load": -3, "module|loadex": -3,
	"module|unload": 3, "object|encoding": 3, "object|freq": 3, "object|help": 2,
	"object|idletime": 3, "object|refcount": 3, "pubsub|channels": -2, "pubsub|help": 2,
	"pubsub|numpat": 2, "pubsub|numsub": -2, "pubsub|shardchannels": -2, "pubsub|shardnumsub": -2,
	"script|debug": 3, "script|exists": -3, "script|flush": -2, "script|help": 2, "script|kill": 2,
	"script|load": 3, "slowlog|get": -2, "slowlog|help": 2, "slowlog|len": 2, "slowlog|reset": 2,
	"xgroup|create": -5, "xgroup|createconsumer": 5, "xgroup|delconsumer": 5, "xgroup|destroy": 4,
	"xgroup|help": 2, "xgroup|setid": -5, "xinfo|consumers": 4, "xinfo|groups": 3, "xinfo|help": 2,
	"xinfo|stream":   -3,
	"client|setinfo": 4, "cluster|myshardid": 2, // Redis 7.2
	"hotkey|disable": 2, "hotkey|enable": 2, "hotkey|get": -2, "hotkey|help": 2, "hotkey|reset": 2,
}

// SubcommandError is Redis's error for a container command (args[1] its subcommand) whose
// subcommand it does not know, or whose argument count does not fit the subcommand's arity;
// "" when there is none (or the command is no container). Redis answers these before it runs
// the command, whatever it is: so does the proxy, before it answers, routes or refuses it.
func (s *Spec) SubcommandError(args [][]byte) string {
	if len(s.Subcommands) == 0 || len(args) < 2 {
		return ""
	}
	sc := s.Subcommand(args)
	if sc == nil {
		// Redis prints the subcommand as a C string (%.128s: up to a NUL, 128 bytes at most),
		// with CR and LF made spaces as in every error.
		sub := args[1]
		for i, c := range sub {
			if c == 0 {
				sub = sub[:i]
				break
			}
		}
		sub = sub[:min(len(sub), 128)]
		msg := strings.NewReplacer("\r", " ", "\n", " ").Replace(string(sub))
		return "ERR unknown subcommand '" + msg + "'. Try " + strings.ToUpper(string(args[0])) + " HELP."
	}
	if a := sc.Arity; a != 0 && ((a > 0 && len(args) != a) || (a < 0 && len(args) < -a)) {
		return "ERR wrong number of arguments for '" + sc.Name + "' command"
	}
	return ""
}
