package proxy

import (
	"fmt"
	"maps"
	"slices"

	"github.com/aster-proxy/aster/dataplane/acl"
	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// rightsTable is a generation of a cluster's users' compiled rules. Sessions resolve their
// user in it once per table: a reload that changes a user's rules publishes a new table, and
// every session of that user goes by the new rules from its next batch of commands.
type rightsTable struct {
	users map[string]*acl.User // users with rules; a user not here may run everything
	known map[string]bool      // every user that may log in
}

// compileRights builds the rules of users (username → password) from rights. A user whose
// rules do not compile (a data plane older than its control plane) may run nothing: access
// rules fail closed. nil when there are no users: then every client may run everything. With
// users and no rules, the table still knows who may log in, so that the session of a user a
// reload removed is refused from its next command.
func compileRights(users map[string]string, rights map[string]route.UserRights) (*rightsTable, error) {
	if len(rights) == 0 && len(users) == 0 {
		return nil, nil
	}
	t := &rightsTable{users: map[string]*acl.User{}, known: map[string]bool{}}
	for name := range users {
		t.known[name] = true
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(rights)) {
		r := rights[name]
		u, err := acl.Compile(name, r.Commands, r.Keys)
		if err != nil {
			errs = append(errs, fmt.Errorf("user %q: %w", name, err))
			u = denyAll(name)
		}
		t.users[name] = u
	}
	if len(errs) > 0 {
		return t, fmt.Errorf("access rules: %v", errs)
	}
	return t, nil
}

func denyAll(name string) *acl.User {
	u, err := acl.Compile(name, "nocommands", []string{})
	if err != nil {
		panic(err) // cannot fail
	}
	return u
}

// user resolves a logged-in user's rules: nil for all rights. A user the table does not know
// (removed by a reload while the session was logged in) may run nothing but AUTH, HELLO, QUIT
// and RESET: it has to log in again.
func (t *rightsTable) user(name string) *acl.User {
	if t == nil {
		return nil
	}
	if u := t.users[name]; u != nil {
		return u
	}
	if !t.known[name] {
		return denyAll(name)
	}
	return nil
}

// login notes that the session authenticated as user.
func (s *session) login(user string) {
	s.setAuthed(true)
	s.username = user
	s.rightsOf = nil
	s.user = nil
	s.refreshUser()
	s.publishIdentity()
}

// refreshUser re-resolves the session's rules when the cluster's changed (once per batch).
func (s *session) refreshUser() {
	t := s.gen.rights
	if t == s.rightsOf {
		return
	}
	s.rightsOf = t
	s.user = t.user(s.username)
}

// permitted checks a command of a user with rules and answers Redis's refusal when not
// allowed: the command is not run, and a transaction it was queued into is doomed (EXECABORT),
// as in Redis; a refused EXEC discards the transaction.
func (s *session) permitted(pl *place, spec *command.Spec, args [][]byte) bool {
	msg, keys := s.user.Check(spec, args, s.keys[:0])
	s.keys = keys
	if msg == "" {
		return true
	}
	pl.setError(msg)
	s.aclRefused(spec)
	return false
}

// aclRefused does what Redis does to the client's transaction when a command is refused.
func (s *session) aclRefused(spec *command.Spec) {
	if spec.Name == "exec" {
		if d := s.tx.watch; d != nil {
			s.dropDed(d) // the node forgets the watches with the connection
		}
		s.tx.reset()
		return
	}
	s.tx.refused()
}

// permittedSubscribed is permitted for subscribed mode, which answers by itself.
func (s *session) permittedSubscribed(p *pubsub, spec *command.Spec, args [][]byte) bool {
	if s.username != "" {
		s.gen = s.c.gen.Load()
		s.refreshUser() // subscribed mode has no batches
	}
	if s.user == nil {
		return true
	}
	msg, keys := s.user.Check(spec, args, s.keys[:0])
	s.keys = keys
	if msg == "" {
		return true
	}
	p.reply(resp.AppendError(nil, msg))
	return false
}
