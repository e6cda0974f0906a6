// Package acl holds per-user access rules in the manner of Redis ACLs: which commands (and
// subcommands) a user may run, by Redis's command rules (+@all, -@dangerous, +get, -config|set,
// ...) applied left to right, and which keys it may touch, by glob patterns (Redis's ~pattern).
//
// A User is compiled once, when a configuration or routing snapshot is applied, into a bitset of
// allowed command and subcommand IDs and a list of key patterns; Check is on the per-command path
// of a restricted user and does not allocate unless it refuses. A User is immutable and safe for
// concurrent use.
package acl

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
)

// Redis's refusals as 7.2 and later word them (7.0 said "this user has no permissions to run
// ..." and "... to access one of the keys used as arguments"): clients written today match the
// newer texts, and they name the user, which helps an operator reading a client's log.
const (
	errCmdUser   = "NOPERM User "
	errCmdPrefix = " has no permissions to run the '"
	errCmdSuffix = "' command"
	// ErrKey refuses a command that names a key outside the user's patterns, or reaches keys
	// it does not name (KEYS, SCAN, FLUSHALL, ...) when the user may not touch every key.
	ErrKey = "NOPERM No permissions to access a key"
	// ErrKeylessScript refuses a user with key patterns a script that declares no key.
	ErrKeylessScript = "NOPERM No permissions to run a script that declares no keys: this user's keys are restricted"
	// ExecAbortPrefix starts the answer to a refused EXEC.
	ExecAbortPrefix = "EXECABORT Transaction discarded because of: "
	errSortBy       = "ERR BY option of SORT denied due to insufficient ACL permissions."
	errSortGet      = "ERR GET option of SORT denied due to insufficient ACL permissions."
)

// MaxPatterns and MaxPatternLen bound a user's key patterns: Check matches every key of every
// command against them.
const (
	MaxPatterns   = 256
	MaxPatternLen = 1024
)

// User is one user's compiled rules.
type User struct {
	name    string
	allowed []uint64 // one bit per command.Spec.ID / command.Subcommand.ID
	allKeys bool     // no key rule, or the pattern "*": every key
	keys    [][]byte // glob patterns, when not allKeys
}

// Name is the user's name.
func (u *User) Name() string { return u.name }

// AllKeys reports whether the user may touch every key.
func (u *User) AllKeys() bool { return u.allKeys }

// Compile builds a user's rules. commands is a space-separated list of Redis ACL command rules
// applied left to right, starting from no command at all as a new Redis user does; "" means
// every command (no rule). keys are glob patterns; nil means every key (no rule), and an empty
// non-nil list no key at all (Redis's resetkeys).
func Compile(name, commands string, keys []string) (*User, error) {
	u := &User{name: name, allowed: make([]uint64, (command.ACLCount()+63)/64)}
	if strings.TrimSpace(commands) == "" {
		u.setAll(true)
	} else {
		for _, rule := range strings.Fields(commands) {
			if err := u.apply(rule); err != nil {
				return nil, err
			}
		}
	}
	if keys == nil {
		u.allKeys = true
		return u, nil
	}
	if len(keys) > MaxPatterns {
		return nil, fmt.Errorf("%d key patterns, at most %d", len(keys), MaxPatterns)
	}
	for _, k := range keys {
		if len(k) > MaxPatternLen {
			return nil, fmt.Errorf("key pattern of %d bytes, at most %d", len(k), MaxPatternLen)
		}
		if k == "*" {
			u.allKeys = true // as Redis's ~* is allkeys
		}
		u.keys = append(u.keys, []byte(k))
	}
	if u.allKeys {
		u.keys = nil
	}
	return u, nil
}

// ValidateKeys checks key patterns as Compile does, for the configuration's error messages.
func ValidateKeys(keys []string) error {
	_, err := Compile("", "", keys)
	return err
}

// ValidateCommands checks command rules as Compile does.
func ValidateCommands(commands string) error {
	_, err := Compile("", commands, nil)
	return err
}

func (u *User) set(id int, on bool) {
	if on {
		u.allowed[id/64] |= 1 << (id % 64)
	} else {
		u.allowed[id/64] &^= 1 << (id % 64)
	}
}

func (u *User) has(id int) bool { return u.allowed[id/64]&(1<<(id%64)) != 0 }

func (u *User) setAll(on bool) {
	for i := range u.allowed {
		if on {
			u.allowed[i] = ^uint64(0)
		} else {
			u.allowed[i] = 0
		}
	}
}

// setCommand allows or denies a command with all its subcommands, as Redis's +cmd / -cmd.
func (u *User) setCommand(s *command.Spec, on bool) {
	u.set(s.ID, on)
	for _, sc := range s.Subcommands {
		u.set(sc.ID, on)
	}
}

// apply applies one rule, the way Redis's ACL SETUSER does.
func (u *User) apply(rule string) error {
	bad := func(why string) error { return fmt.Errorf("rule %q: %s", rule, why) }
	switch strings.ToLower(rule) {
	case "allcommands", "+@all":
		u.setAll(true)
		return nil
	case "nocommands", "-@all":
		u.setAll(false)
		return nil
	}
	if len(rule) < 2 || (rule[0] != '+' && rule[0] != '-') {
		return bad("not a command rule (+@category, -@category, +command, -command, +command|subcommand, allcommands, nocommands)")
	}
	on := rule[0] == '+'
	name := rule[1:]
	if name[0] == '@' {
		cat, ok := command.LookupCategory(name[1:])
		if !ok {
			return bad("unknown command category")
		}
		// A command in the category brings all its subcommands along; a subcommand in it
		// goes alone (Redis's ACLSetSelectorCommandBitsForCategory).
		for _, s := range command.All() {
			if s.Categories&cat != 0 {
				u.setCommand(s, on)
			}
			for _, sc := range s.Subcommands {
				if sc.Categories&cat != 0 {
					u.set(sc.ID, on)
				}
			}
		}
		return nil
	}
	if parent, sub, ok := strings.Cut(name, "|"); ok {
		s := command.Lookup([]byte(parent))
		switch {
		case s == nil:
			return bad("unknown command")
		case sub == "":
			return bad("empty subcommand")
		case len(s.Subcommands) == 0:
			// Redis 6's first-argument rules (+select|0) are deprecated and not supported.
			return bad("'" + s.Name + "' has no subcommands")
		}
		sc := command.LookupSubcommand(name)
		if sc == nil {
			return bad("unknown subcommand")
		}
		u.set(sc.ID, on)
		return nil
	}
	s := command.Lookup([]byte(name))
	if s == nil {
		return bad("unknown command")
	}
	u.setCommand(s, on)
	return nil
}

// noAuth reports the commands Redis lets any user run (its no_auth flag): how a client logs in
// or leaves.
func noAuth(s *command.Spec) bool {
	switch s.Name {
	case "auth", "hello", "quit", "reset":
		return true
	}
	return false
}

// wholeKeyspace reports the commands that reach keys they do not name — every key (KEYS, SCAN,
// RANDOMKEY, DBSIZE, FLUSHALL, FLUSHDB, SWAPDB): @keyspace commands that take no key. Redis
// runs them for any user allowed the command; the proxy refuses them to a user whose keys are
// restricted, since they would reach other users' keys.
func wholeKeyspace(s *command.Spec) bool {
	return s.Categories&command.CatKeyspace != 0 && s.Flags&command.NoKey != 0
}

// Check decides whether the user may run the command args (args[0] names spec; its arity was
// checked). It returns "" when allowed, else the error to answer (without the leading '-'),
// and keys, the scratch slice it used for key positions, to be reused.
func (u *User) Check(spec *command.Spec, args [][]byte, keys []int) (string, []int) {
	if noAuth(spec) {
		return "", keys
	}
	id := spec.ID
	sub := spec.Subcommand(args)
	if sub != nil {
		id = sub.ID
	}
	if !u.has(id) {
		name := spec.Name
		if sub != nil {
			name = sub.Name
		}
		msg := errCmdUser + u.name + errCmdPrefix + name + errCmdSuffix
		if spec.Name == "exec" {
			// Redis answers a refused EXEC so, and discards the transaction, if any.
			msg = ExecAbortPrefix + msg
		}
		return msg, keys
	}
	if u.allKeys || spec.Flags&command.PubSub != 0 { // channels are not keys
		return "", keys
	}
	if wholeKeyspace(spec) {
		return ErrKey, keys
	}
	keys, ok := spec.Keys(args, keys[:0])
	if !ok {
		// The proxy cannot tell which keys a malformed command names: refuse rather than
		// let the server find keys the rules did not see.
		return ErrKey, keys
	}
	for _, k := range keys {
		if !u.keyAllowed(args[k]) {
			return ErrKey, keys
		}
	}
	if len(keys) == 0 && isScript(spec.Name) {
		// A script that declares no key runs on one node with the server's rights and may
		// reach any key there: the proxy cannot hold it to the user's patterns.
		return ErrKeylessScript, keys
	}
	if spec.Name == "sort" || spec.Name == "sort_ro" {
		return sortOptions(args, spec.Name == "sort_ro"), keys
	}
	return "", keys
}

// keyAllowed reports whether key matches one of the user's patterns.
func (u *User) keyAllowed(key []byte) bool {
	for _, p := range u.keys {
		if Match(p, key) {
			return true
		}
	}
	return false
}

// sortOptions refuses SORT's BY (with a pattern) and GET to a user without access to every
// key, as Redis does: they read keys the command does not name.
func sortOptions(args [][]byte, readOnly bool) string {
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case eq(a, "asc"), eq(a, "desc"), eq(a, "alpha"):
		case eq(a, "limit") && left >= 2:
			j += 2
		case eq(a, "store") && left >= 1 && !readOnly:
			j++
		case eq(a, "by") && left >= 1:
			j++
			if bytes.IndexByte(args[j], '*') >= 0 {
				return errSortBy
			}
		case eq(a, "get") && left >= 1:
			return errSortGet
		default:
			return "" // a syntax error: the server's to answer
		}
	}
	return ""
}

// eq compares b with a lower-case ASCII word, case-insensitively.
func eq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isScript reports whether name runs a script or function whose keys are declared by numkeys.
func isScript(name string) bool {
	switch name {
	case "eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}
