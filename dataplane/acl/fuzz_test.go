package acl

import (
	"testing"

	"github.com/aster-proxy/aster/dataplane/command"
)

// FuzzRules: any rule text and pattern compile or are refused without a panic, and a compiled
// user's check of any command, and Match of any pattern, do not panic.
func FuzzRules(f *testing.F) {
	f.Add("+@all -@dangerous", "app:*", "GET", "app:1")
	f.Add("-@all +config|get +hotkey", "[a-", "CONFIG", "GET")
	f.Add("nocommands +@read -get|x", `\`, "MGET", "a")
	f.Add("+sort", "*", "SORT", "k")
	f.Add("+@keyspace", "[^", "KEYS", "*")
	f.Fuzz(func(t *testing.T, commands, pattern, name, arg string) {
		u, err := Compile("f", commands, []string{pattern})
		if err != nil {
			return
		}
		spec := command.Lookup([]byte(name))
		if spec == nil {
			return
		}
		args := [][]byte{[]byte(name), []byte(arg), []byte(arg), []byte(pattern)}
		for n := 1; n <= len(args); n++ {
			if spec.CheckArity(n) {
				_, _ = u.Check(spec, args[:n], nil)
			}
		}
		_ = Match([]byte(pattern), []byte(arg))
	})
}
