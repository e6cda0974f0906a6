// Package slowlog keeps a cluster's last slow commands, as Redis's SLOWLOG does: a ring of
// bounded entries, each a command's first arguments trimmed as Redis trims them, its secret
// arguments redacted. Its one job is the record; when a command counts as slow, and the
// SLOWLOG command's reply, are the proxy's.
//
// Concurrency: a Log is safe for concurrent use: one mutex guards the ring; sessions Add from
// their goroutines (or their event loop's), readers Get, Len and Reset from theirs. Its limits
// are immutable: a change makes a new Log (Resized) that carries the newest entries over, and
// the old one may still be written by sessions that loaded it until they load the new one.
// Add allocates nothing once the ring is full.
package slowlog

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/aster-proxy/aster/dataplane/command"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// Entry is one slow command, as Redis's SLOWLOG shows it.
type Entry struct {
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

// Log keeps a cluster's last slow commands. Under overload every command can be slow, so
// recording one allocates nothing once the ring is full: each entry keeps its trimmed arguments
// as one RESP array in a buffer the ring reuses, turned into strings only when read. An entry
// holds at most 32 arguments of at most 128 bytes (plus a note of what was cut), whatever the
// command's size, so its buffer never grows past about 5 KiB.
type Log struct {
	mu         sync.Mutex
	max        int
	slowerThan time.Duration // immutable: a change makes a new Log (Resized)
	entries    []slowRec     // ring; next is where the next entry goes
	next       int
	nextID     uint64
}

// slowRec is one entry as stored.
type slowRec struct {
	id       uint64
	time     time.Time
	duration time.Duration
	args     []byte // trimmed arguments, as a RESP array of bulk strings
	client   string
}

// Resized returns a new slow log with the given limits and the newest entries of l (nil: none)
// that fit, numbering on from l's.
func (l *Log) Resized(max int, slowerThan time.Duration) *Log {
	n := &Log{max: max, slowerThan: slowerThan}
	if l == nil {
		return n
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n.nextID = l.nextID
	for i := min(max, len(l.entries)) - 1; i >= 0; i-- {
		r := l.entries[(l.next-1-i+2*len(l.entries))%len(l.entries)]
		r.args = bytes.Clone(r.args) // l may still be written by sessions that loaded it
		n.entries = append(n.entries, r)
	}
	n.next = len(n.entries) % max
	return n
}

// Add records one command (its frame as the client sent it, RESP) that took d, at t. As in
// Redis, a command the proxy does not know is not logged (a password typed as a command
// would be), and the secret arguments of a known one are stored as "(redacted)".
func (l *Log) Add(frame []byte, t time.Time, d time.Duration, client string) {
	var buf [slowMaxArgs][]byte // on the stack: nothing keeps a reference into frame
	args, total := firstArgs(frame, &buf)
	if len(args) == 0 || command.Lookup(args[0]) == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var r *slowRec
	if len(l.entries) < l.max {
		l.entries = append(l.entries, slowRec{})
		r = &l.entries[len(l.entries)-1]
		l.next = len(l.entries) % l.max
	} else {
		r = &l.entries[l.next]
		l.next = (l.next + 1) % l.max
	}
	r.id, r.time, r.duration, r.client = l.nextID, t, d, client
	l.nextID++
	r.args = appendTrimmed(r.args[:0], args, total)
}

// firstArgs returns the first arguments of frame (a RESP array of bulk strings), at most
// len(buf), in buf, and how many it has in all; none when frame is not such an array.
func firstArgs(frame []byte, buf *[slowMaxArgs][]byte) ([][]byte, int) {
	total, p, ok := lenLine(frame, 0, '*')
	if !ok {
		return nil, 0
	}
	n := min(total, len(buf))
	for i := range n {
		var size int
		if size, p, ok = lenLine(frame, p, '$'); !ok || p+size+2 > len(frame) {
			return nil, 0
		}
		buf[i] = frame[p : p+size : p+size]
		p += size + 2
	}
	return buf[:n], total
}

// lenLine parses the header "<kind><n>\r\n" at frame[p:]: n, and where what follows starts.
func lenLine(frame []byte, p int, kind byte) (n, next int, ok bool) {
	if p >= len(frame) || frame[p] != kind {
		return 0, 0, false
	}
	digits := 0
	for p++; p < len(frame) && frame[p] != '\r'; p++ {
		c := frame[p]
		if c < '0' || c > '9' || digits == 18 {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 || p+1 >= len(frame) || frame[p+1] != '\n' {
		return 0, 0, false
	}
	return n, p + 2, true
}

// appendTrimmed appends args (the first of total arguments) as Redis's SLOWLOG keeps them: at
// most 32 (the last one then says how many more there were), each at most 128 bytes (then
// saying how many more), secret ones as "(redacted)".
func appendTrimmed(dst []byte, args [][]byte, total int) []byte {
	secret := command.SecretArgs(args)
	n := min(total, slowMaxArgs)
	dst = resp.AppendArrayHeader(dst, n)
	var tmp [slowMaxArgLen + 32]byte // a trimmed argument and its note
	for i, a := range args[:n] {
		switch {
		case i == slowMaxArgs-1 && total > slowMaxArgs:
			t := append(tmp[:0], "... ("...)
			t = strconv.AppendInt(t, int64(total-slowMaxArgs+1), 10)
			a = append(t, " more arguments)"...)
		case secret.Has(i):
			a = append(tmp[:0], command.Redacted...)
		case len(a) > slowMaxArgLen:
			t := append(tmp[:0], a[:slowMaxArgLen]...)
			t = append(t, "... ("...)
			t = strconv.AppendInt(t, int64(len(a)-slowMaxArgLen), 10)
			a = append(t, " more bytes)"...)
		}
		dst = resp.AppendBulk(dst, a)
	}
	return dst
}

// entry is r as Entry (allocating: the read side).
func (r *slowRec) entry() Entry {
	e := Entry{ID: r.id, Time: r.time, Duration: r.duration, Client: r.client}
	elems, _ := resp.ArrayElems(r.args, nil)
	for _, a := range elems {
		e.Args = append(e.Args, string(resp.BulkPayload(a)))
	}
	return e
}

// Get returns up to n entries, newest first (n < 0: all).
func (l *Log) Get(n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > len(l.entries) {
		n = len(l.entries)
	}
	out := make([]Entry, 0, n)
	for i := 0; i < n; i++ {
		j := (l.next - 1 - i + 2*len(l.entries)) % len(l.entries)
		out = append(out, l.entries[j].entry())
	}
	return out
}

// Len is how many entries the log holds.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Reset forgets every entry.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.next = nil, 0
}

// Max is how many entries the log keeps.
func (l *Log) Max() int { return l.max }

// SlowerThan is how long a command must take to be logged.
func (l *Log) SlowerThan() time.Duration { return l.slowerThan }
