package command

// Which arguments of a command are secret: whatever shows a client's command to someone else
// (the slow log, a log line, an admin response) prints Redacted in their place. Redis 7.0
// redacts the same arguments in its SLOWLOG, checked against redis-server 7.0.15:
//
//   - AUTH: every argument.
//   - HELLO [protover [AUTH username password] [SETNAME name]]: the two after AUTH.
//   - MIGRATE ... [AUTH password | AUTH2 username password] [KEYS ...]: the password, or the
//     username and password.
//   - ACL SETUSER username rules...: the username and every rule.
//   - CONFIG SET name value [name value ...]: the value of a sensitive setting (requirepass,
//     masterauth, masteruser).
//
// Redis decides while it parses, so where it stops at a syntax error it shows the rest in
// clear (AUTH with three arguments, HELLO 4 AUTH u p, HELLO AUTH u p, HELLO 3 AUTH p, the
// second AUTH of a HELLO, MIGRATE ... FOO AUTH p, CONFIG SET with an odd count). Here the rule
// is syntactic and holds for malformed commands too: a word that introduces a secret hides
// what follows it whether or not the command is valid, and unknown options are stepped over.
// Also beyond Redis: setting names are matched more widely than Redis's list (see
// sensitiveSetting), so that the TLS key passphrases and the proxy's own secret settings
// (password, backend_password, auth, token), which CONFIG SET refuses, are hidden too; the
// arguments of an ACL or CONFIG subcommand Redis does not know are hidden (Redis refuses
// those before they run, so never logs them; the proxy logs them); and so are the secrets of
// a command given as arguments (ACL DRYRUN user AUTH pw, COMMAND GETKEYS ...).

// Redacted is shown in place of a secret argument, as Redis shows it.
const Redacted = "(redacted)"

// Secrets is a set of argument positions of one command (0 is the command's name) that carry
// a secret. Positions 0 to 62 are kept one by one; position 63 stands for itself and every
// later one (more than a slow log or an error message ever shows).
type Secrets uint64

const secretsRest = 63

// Has reports whether argument i is secret.
func (s Secrets) Has(i int) bool {
	if i < 0 {
		return false
	}
	return s&(1<<min(i, secretsRest)) != 0
}

func (s *Secrets) add(i int) { *s |= 1 << min(i, secretsRest) }

// addFrom marks i and every later position.
func (s *Secrets) addFrom(i int) {
	if i >= secretsRest {
		*s |= 1 << secretsRest
		return
	}
	*s |= ^Secrets(0) << i
}

// addNested marks the secrets of the command args, given as arguments of another from
// position at on.
func (s *Secrets) addNested(at int, args [][]byte) {
	if at >= secretsRest {
		s.addFrom(at)
		return
	}
	inner := SecretArgs(args[:min(len(args), secretsRest-at)])
	for i := 0; at+i < secretsRest; i++ {
		if inner.Has(i) {
			s.add(at + i)
		}
	}
	if len(args) > secretsRest-at && inner.Has(secretsRest-at-1) {
		s.addFrom(secretsRest) // not looked at: assume the worst
	}
}

// SecretArgs returns the positions of args (the command as the client sent it, name first)
// that carry a secret. The command and option names match in any case. args may be a prefix
// of the command (the first arguments of a long one): the answer for the positions it holds
// is the same. It does not allocate, and looks at no more than the first 64 arguments.
func SecretArgs(args [][]byte) Secrets {
	var s Secrets
	if len(args) == 0 {
		return s
	}
	switch {
	case eqFold(args[0], "auth"):
		s.addFrom(1)
	case eqFold(args[0], "hello"):
		// HELLO protover [AUTH username password] [SETNAME name]; from 1, so that a HELLO
		// without protover (HELLO AUTH u p, refused) hides its password too.
		for j := 1; j < len(args); j++ {
			if j >= secretsRest {
				s.addFrom(j) // not looked at: assume the worst
				break
			}
			switch {
			case eqFold(args[j], "auth"):
				s.add(j + 1)
				s.add(j + 2)
				j += 2
			case eqFold(args[j], "setname"):
				j++
			}
		}
	case eqFold(args[0], "migrate"):
		// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS key...]
		for j := 6; j < len(args); j++ {
			if j >= secretsRest {
				s.addFrom(j)
				break
			}
			if eqFold(args[j], "keys") {
				break // every later argument is a key
			}
			switch {
			case eqFold(args[j], "auth"):
				s.add(j + 1)
				j++
			case eqFold(args[j], "auth2"):
				s.add(j + 1)
				s.add(j + 2)
				j += 2
			}
		}
	case eqFold(args[0], "acl"):
		switch {
		case len(args) > 3 && eqFold(args[1], "dryrun"): // ACL DRYRUN username command [arg ...]
			s.addNested(3, args[3:])
		case len(args) > 2 && (eqFold(args[1], "setuser") || !oneOf(args[1], aclPlain)):
			s.addFrom(2)
		}
	case eqFold(args[0], "command"): // COMMAND GETKEYS[ANDFLAGS] command [arg ...]
		if len(args) > 2 && (eqFold(args[1], "getkeys") || eqFold(args[1], "getkeysandflags")) {
			s.addNested(2, args[2:])
		}
	case eqFold(args[0], "config"):
		if len(args) > 2 && !eqFold(args[1], "set") && !oneOf(args[1], configPlain) {
			s.addFrom(2)
		} else if len(args) > 2 && eqFold(args[1], "set") {
			for j := 2; j < len(args); j += 2 {
				if j >= secretsRest {
					s.addFrom(j)
					break
				}
				if sensitiveSetting(args[j]) {
					s.add(j + 1)
				}
			}
		}
	}
	return s
}

// The subcommands of ACL and CONFIG that take no secret. Redis does not log a subcommand it
// does not know (CONFIG SETT requirepass x, ACL SETUSR ...), the proxy does: such a one hides
// all its arguments, as it may be a mistyped SET or SETUSER.
var (
	aclPlain    = []string{"cat", "deluser", "dryrun", "genpass", "getuser", "help", "list", "load", "log", "save", "users", "whoami"}
	configPlain = []string{"get", "help", "resetstat", "rewrite"}
)

func oneOf(b []byte, words []string) bool {
	for _, w := range words {
		if eqFold(b, w) {
			return true
		}
	}
	return false
}

// sensitiveSetting reports whether CONFIG SET name takes a secret: Redis's requirepass,
// masterauth, masteruser and tls-(client-)key-file-pass, and any name of the same kind (its
// last dot-separated part contains "pass", "secret" or "token", or ends in "auth", "user" or
// "users"), so that cluster.<name>.password or backend_auth are hidden though no such knob
// exists. No other setting of Redis 7.0 matches.
func sensitiveSetting(name []byte) bool {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			name = name[i+1:]
			break
		}
	}
	return containsFold(name, "pass") || containsFold(name, "secret") || containsFold(name, "token") ||
		hasSuffixFold(name, "auth") || hasSuffixFold(name, "user") || hasSuffixFold(name, "users")
}

// eqFold reports whether b equals the lower-case ASCII word w in any case.
func eqFold(b []byte, w string) bool {
	return len(b) == len(w) && hasPrefixFold(b, w)
}

func hasPrefixFold(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(b []byte, w string) bool {
	return len(b) >= len(w) && hasPrefixFold(b[len(b)-len(w):], w)
}

func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		if hasPrefixFold(b[i:], w) {
			return true
		}
	}
	return false
}
