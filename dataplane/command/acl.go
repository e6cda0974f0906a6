package command

import (
	"sort"
	"strings"
)

// Category is a set of Redis ACL command categories (@read, @admin, ...), one bit each.
type Category uint32

// The ACL categories of Redis 7.0, in the order ACL CAT lists them.
const (
	CatKeyspace Category = 1 << iota
	CatRead
	CatWrite
	CatSet
	CatSortedSet
	CatList
	CatHash
	CatString
	CatBitmap
	CatHyperLogLog
	CatGeo
	CatStream
	CatPubSub
	CatAdmin
	CatFast
	CatSlow
	CatBlocking
	CatDangerous
	CatConnection
	CatTransaction
	CatScripting
)

var categoryNames = [...]string{
	"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
	"hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
	"connection", "transaction", "scripting",
}

// LookupCategory finds a category by its name without the '@', ASCII case-insensitively as
// Redis does.
func LookupCategory(name string) (Category, bool) {
	for i, n := range categoryNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// String lists the categories as Redis's COMMAND INFO does: "@read @string @fast".
func (c Category) String() string {
	var b strings.Builder
	for i, n := range categoryNames {
		if c&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("@" + n)
		}
	}
	return b.String()
}

// Subcommand is one subcommand of a container command (CONFIG SET, CLIENT ID, ...), as far as
// access rules are concerned: its name and ACL categories.
type Subcommand struct {
	// Name is "container|sub" in lower case, as Redis names it in ACL rules and errors.
	Name string
	// Categories are the subcommand's own ACL categories.
	Categories Category
	// Arity is the subcommand's arity, counted from the container's name as Redis does
	// (CONFIG GET pattern is 3); 0 when unknown.
	Arity int
	// ID is unique among commands and subcommands and below ACLCount: a Spec's ID for a
	// command, Count() and up for subcommands.
	ID int

	sub string // the part after '|'
}

// proxyCategories are the categories of what the proxy adds to Redis's command set, and of the
// few commands newer than redis-server 7.0 that the table knows: they are not in the generated
// redisCategories. The proxy's own administration (HOTKEY, which both changes what every client
// of the cluster pays and reveals other clients' key names) counts as @admin @dangerous, as
// SLOWLOG and CONFIG do in Redis.
var proxyCategories = map[string]Category{
	"hotkey":            CatSlow,
	"hotkey|enable":     CatAdmin | CatSlow | CatDangerous,
	"hotkey|disable":    CatAdmin | CatSlow | CatDangerous,
	"hotkey|reset":      CatAdmin | CatSlow | CatDangerous,
	"hotkey|get":        CatAdmin | CatSlow | CatDangerous,
	"hotkey|help":       CatSlow,
	"waitaof":           CatSlow | CatConnection, // Redis 7.2
	"client|setinfo":    CatSlow | CatConnection, // Redis 7.2
	"cluster|myshardid": CatSlow,                 // Redis 7.2
}

var aclCount int

// initCategories gives every spec its categories and subcommands (called from init, after IDs).
func initCategories() {
	subs := map[string][]Subcommand{}
	add := func(name string, c Category) {
		parent, sub, ok := strings.Cut(name, "|")
		if !ok {
			s := byName[name]
			if s == nil {
				return // a Redis command the table does not have: the table's test says so
			}
			s.Categories = c
			return
		}
		subs[parent] = append(subs[parent], Subcommand{Name: name, Categories: c, Arity: subcommandArity[name], sub: sub})
	}
	for n, c := range redisCategories {
		add(n, c)
	}
	for n, c := range proxyCategories {
		add(n, c)
	}
	id := len(sorted)
	for _, s := range sorted {
		l := subs[s.Name]
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
		for i := range l {
			l[i].ID = id
			id++
		}
		s.Subcommands = l
	}
	aclCount = id
}

// ACLCount bounds the IDs of commands and subcommands: a set of allowed commands fits in
// ACLCount bits.
func ACLCount() int { return aclCount }

// Subcommand returns the subcommand args[1] names of a container command, or nil when the
// command has none or args[1] is not one Redis 7.0 (or the proxy) knows. It does not allocate.
func (s *Spec) Subcommand(args [][]byte) *Subcommand {
	if len(s.Subcommands) == 0 || len(args) < 2 {
		return nil
	}
	for i := range s.Subcommands {
		if equalFold(args[1], s.Subcommands[i].sub) {
			return &s.Subcommands[i]
		}
	}
	return nil
}

// LookupSubcommand finds "container|sub" by name, ASCII case-insensitively, or nil.
func LookupSubcommand(name string) *Subcommand {
	parent, sub, ok := strings.Cut(name, "|")
	if !ok {
		return nil
	}
	s := Lookup([]byte(parent))
	if s == nil {
		return nil
	}
	return s.Subcommand([][]byte{nil, []byte(sub)})
}
