package proxy

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// SlowEntry is one slow command, as Redis's SLOWLOG shows it.
type SlowEntry struct {
	ID       uint64
	Time     time.Time
	Duration time.Duration
	Args     []string // at most 32, each at most 128 bytes, as Redis trims them
	Client   string   // remote address
}

const (
	slowMaxArgs   = 32
	slowMaxArgLen = 128
)

// slowLog keeps a cluster's last slow commands. Only slow commands reach it, so a mutex is
// cheap enough; the hot path only compares a duration.
type slowLog struct {
	mu         sync.Mutex
	max        int
	slowerThan time.Duration // immutable: a change makes a new slowLog (resized)
	entries    []SlowEntry   // ring; next is where the next entry goes
	next       int
	nextID     uint64
}

// resized returns a new slow log with the given limits and the newest entries of l (nil: none)
// that fit, numbering on from l's.
func (l *slowLog) resized(max int, slowerThan time.Duration) *slowLog {
	n := &slowLog{max: max, slowerThan: slowerThan}
	if l == nil {
		return n
	}
	old := l.get(max)
	l.mu.Lock()
	n.nextID = l.nextID
	l.mu.Unlock()
	for i := len(old) - 1; i >= 0; i-- {
		n.entries = append(n.entries, old[i])
	}
	n.next = len(n.entries) % max
	return n
}

func (l *slowLog) add(e SlowEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.ID = l.nextID
	l.nextID++
	if len(l.entries) < l.max {
		l.entries = append(l.entries, e)
		l.next = len(l.entries) % l.max
		return
	}
	l.entries[l.next] = e
	l.next = (l.next + 1) % l.max
}

// get returns up to n entries, newest first (n < 0: all).
func (l *slowLog) get(n int) []SlowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > len(l.entries) {
		n = len(l.entries)
	}
	out := make([]SlowEntry, 0, n)
	for i := 0; i < n; i++ {
		j := (l.next - 1 - i + 2*len(l.entries)) % len(l.entries)
		out = append(out, l.entries[j])
	}
	return out
}

func (l *slowLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *slowLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.next = nil, 0
}

// slowArgs parses a command frame into trimmed arguments (slow path: allocation is fine).
func slowArgs(frame []byte) []string {
	rd := resp.NewReader(strings.NewReader(string(frame)), len(frame)+16)
	var cmd resp.Command
	if err := rd.Read(&cmd); err != nil {
		return nil
	}
	var args []string
	for i, a := range cmd.Args {
		if i == slowMaxArgs-1 && len(cmd.Args) > slowMaxArgs {
			args = append(args, "... ("+strconv.Itoa(len(cmd.Args)-slowMaxArgs+1)+" more arguments)")
			break
		}
		if len(a) > slowMaxArgLen {
			args = append(args, string(a[:slowMaxArgLen])+"... ("+strconv.Itoa(len(a)-slowMaxArgLen)+" more bytes)")
			continue
		}
		args = append(args, string(a))
	}
	return args
}

// SlowLog returns up to n of the cluster's slowest recent commands, newest first (n < 0:
// all); nil when the cluster is unknown or its slow log is off.
func (s *Server) SlowLog(cluster string, n int) ([]SlowEntry, bool) {
	s.mu.Lock()
	c := s.clusters[cluster]
	s.mu.Unlock()
	if c == nil {
		return nil, false
	}
	l := c.slow.Load()
	if l == nil {
		return nil, true
	}
	return l.get(n), true
}

// slowlogReply answers SLOWLOG GET [n] | LEN | RESET | HELP from the cluster's slow log.
func (s *session) slowlogReply(out []byte, args [][]byte) []byte {
	l := s.c.slow.Load()
	switch strings.ToLower(string(args[1])) {
	case "get":
		n := 10
		if len(args) > 2 {
			v, ok := resp.ParseInt64Arg(args[2])
			if !ok || v < -1 {
				return resp.AppendError(out, "ERR count should be greater than or equal to -1")
			}
			n = int(v)
		}
		var entries []SlowEntry
		if l != nil {
			entries = l.get(n)
		}
		out = resp.AppendArrayHeader(out, len(entries))
		for _, e := range entries {
			out = resp.AppendArrayHeader(out, 6)
			out = resp.AppendInt(out, int64(e.ID))
			out = resp.AppendInt(out, e.Time.Unix())
			out = resp.AppendInt(out, e.Duration.Microseconds())
			out = resp.AppendArrayHeader(out, len(e.Args))
			for _, a := range e.Args {
				out = resp.AppendBulkString(out, a)
			}
			out = resp.AppendBulkString(out, e.Client)
			out = resp.AppendBulkString(out, "")
		}
		return out
	case "len":
		if l == nil {
			return resp.AppendInt(out, 0)
		}
		return resp.AppendInt(out, int64(l.len()))
	case "reset":
		if l != nil {
			l.reset()
		}
		return resp.AppendSimple(out, "OK")
	case "help":
		out = resp.AppendArrayHeader(out, 3)
		out = resp.AppendSimple(out, "SLOWLOG GET [<count>] -- the newest slow commands of this cluster")
		out = resp.AppendSimple(out, "SLOWLOG LEN -- how many are kept")
		return resp.AppendSimple(out, "SLOWLOG RESET -- forget them")
	}
	return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try SLOWLOG HELP.")
}
