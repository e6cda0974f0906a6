package proxy

import (
	"crypto/subtle"
	"strings"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

const (
	errNoAuth    = "NOAUTH Authentication required."
	errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	// errHelloNoAuth is Redis 7's answer to HELLO without AUTH before authenticating.
	errHelloNoAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errNoPass      = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
)

// allowedBeforeAuth reports whether a client may send spec before authenticating, as in Redis.
func allowedBeforeAuth(spec *command.Spec) bool {
	return spec != nil && (spec.Name == "auth" || spec.Name == "hello" || spec.Name == "quit" || spec.Name == "reset")
}

// setAuthed records whether the client is authenticated (no password configured, or AUTH
// succeeded) and has the reader hold an unauthenticated client to Redis's limits, so that
// before AUTH nobody can make us buffer more than a few small commands.
func (s *session) setAuthed(v bool) {
	s.authed = v
	s.rd.SetUnauthenticated(!v)
}

// checkPassword reports whether user/pass is one of the configured users, comparing in
// constant time so that a wrong guess takes as long whatever it shares with the password.
func checkPassword(users map[string]string, user string, pass []byte) bool {
	want, ok := users[user]
	if !ok {
		// Compare anyway so that an unknown user costs the same as a wrong password.
		subtle.ConstantTimeCompare(pass, pass)
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), pass) == 1
}

// auth answers AUTH [user] pass.
func (s *session) auth(out []byte, args [][]byte) []byte {
	user, pass := "default", args[1]
	switch len(args) {
	case 2:
	case 3:
		user, pass = string(args[1]), args[2]
	default:
		return resp.AppendError(out, "ERR syntax error")
	}
	users := s.c.access().users
	if len(users) == 0 {
		if len(args) == 2 {
			return resp.AppendError(out, errNoPass)
		}
		return s.authNoPass(out, user)
	}
	if !checkPassword(users, user, pass) {
		return resp.AppendError(out, errWrongPass)
	}
	s.login(user)
	return resp.AppendSimple(out, "OK")
}

// authNoPass answers AUTH user pass when no password is configured: the client is Redis's
// default user, which has none (nopass), so any password is its, as in Redis; another user
// does not exist.
func (s *session) authNoPass(out []byte, user string) []byte {
	if user != "default" {
		return resp.AppendError(out, errWrongPass)
	}
	return resp.AppendSimple(out, "OK")
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]] as Redis does: the
// protocol (2 or 3) changes only when everything else succeeded, and the reply (server
// details) is a map in RESP3, a flat array in RESP2. Without protover the protocol stays.
func (s *session) hello(out []byte, args [][]byte) []byte {
	proto3 := s.proto3
	var name []byte // SETNAME's, set once everything else succeeded
	if len(args) >= 2 {
		v, ok := resp.ParseInt64Arg(args[1])
		if !ok {
			return resp.AppendError(out, "ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return resp.AppendError(out, "NOPROTO unsupported protocol version")
		}
		proto3 = v == 3
	}
	for i := 2; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "auth":
			if i+2 >= len(args) {
				return resp.AppendError(out, "ERR Syntax error in HELLO option '"+clip(args[i])+"'")
			}
			// As in Redis, a wrong password is answered before a later option's syntax.
			users := s.c.access().users
			if len(users) == 0 {
				if msg := s.authNoPass(nil, string(args[i+1])); msg[0] == '-' {
					return append(out, msg...)
				}
			} else if !checkPassword(users, string(args[i+1]), args[i+2]) {
				return resp.AppendError(out, errWrongPass)
			} else {
				s.login(string(args[i+1]))
			}
			i += 2
		case "setname":
			if i+1 >= len(args) {
				return resp.AppendError(out, "ERR Syntax error in HELLO option '"+clip(args[i])+"'")
			}
			i++
			name = args[i]
		default:
			return resp.AppendError(out, "ERR Syntax error in HELLO option '"+clip(args[i])+"'")
		}
	}
	if !s.authed {
		return resp.AppendError(out, errHelloNoAuth)
	}
	if name != nil && !s.setName(name) {
		return resp.AppendError(out, errClientName)
	}
	s.proto3 = proto3
	s.proto3Pub.Store(proto3)
	s.publishIdentity()
	proto := int64(2)
	if proto3 {
		proto = 3
		out = append(out, "%7\r\n"...)
	} else {
		out = resp.AppendArrayHeader(out, 14)
	}
	for _, kv := range [][2]string{
		{"server", "redis"}, {"version", "7.0.0"}, {"proto", ""}, {"id", ""},
		{"mode", "standalone"}, {"role", "master"}, {"modules", ""},
	} {
		out = resp.AppendBulkString(out, kv[0])
		switch kv[0] {
		case "proto":
			out = resp.AppendInt(out, proto)
		case "id":
			out = resp.AppendInt(out, int64(s.id))
		case "modules":
			out = resp.AppendArrayHeader(out, 0)
		default:
			out = resp.AppendBulkString(out, kv[1])
		}
	}
	return out
}
