package e2e

import "strconv"

// The model's hashes and lists: keys of their own (so no command meets a key of another
// type), HGET among them for the client cache's field entries, and BLPOP, which asterd runs
// on a connection of the session's own after handing it to a goroutine.

// typedKeys are a model client's hash and list keys: all of them, the tagged ones (one slot,
// for transactions), and those next draws from.
type typedKeys struct {
	hkeys, lkeys []string
	tagH, tagL   []string
	hpool, lpool []string
	hashes       map[string]map[string][]byte // absent: empty
	lists        map[string][][]byte
}

func (m *modelClient) initTyped(prefix string) {
	for i := 0; i < 8; i++ {
		h, l := prefix+"h"+spreadKey("", i), prefix+"l"+spreadKey("", i)
		if i%3 == 0 {
			h, l = "{"+prefix+"}h"+strconv.Itoa(i), "{"+prefix+"}l"+strconv.Itoa(i)
			m.tagH, m.tagL = append(m.tagH, h), append(m.tagL, l)
		}
		m.hkeys, m.lkeys = append(m.hkeys, h), append(m.lkeys, l)
	}
	m.hpool, m.lpool = m.hkeys, m.lkeys
	m.hashes, m.lists = map[string]map[string][]byte{}, map[string][][]byte{}
}

// field draws one of a few field names, so that fields are both new and overwritten.
func (m *modelClient) field() string { return "f" + strconv.Itoa(m.rng.IntN(8)) }

// deleted is DEL of a hash or list key: 1 when it held something; it is then known empty.
func (m *modelClient) deleted(k string) modelCmd {
	return modelCmd{args: []string{"DEL", k}, writes: []string{k}, check: func(got any) string {
		_, known := m.value(k)
		var n int64
		if m.hashes[k] != nil || m.lists[k] != nil {
			n = 1
		}
		delete(m.hashes, k)
		delete(m.lists, k)
		delete(m.unknown, k)
		if !known {
			return ""
		}
		return want(got, n)
	}}
}

func (m *modelClient) nextHash() modelCmd {
	r := m.rng
	k := m.hpool[r.IntN(len(m.hpool))]
	hash := func() (map[string][]byte, bool) { _, known := m.value(k); return m.hashes[k], known }
	switch op := r.IntN(100); {
	case op < 30:
		args := []string{"HSET", k}
		var fs []string
		var vs [][]byte
		for range 1 + r.IntN(3) {
			f, v := m.field(), m.randValue()
			args, fs, vs = append(args, f, string(v)), append(fs, f), append(vs, v)
		}
		return modelCmd{args: args, writes: []string{k}, check: func(got any) string {
			h, known := hash()
			if !known {
				return "" // still unknown: which fields it had is
			}
			if h == nil {
				h = map[string][]byte{}
				m.hashes[k] = h
			}
			added := int64(0)
			for i, f := range fs {
				if _, ok := h[f]; !ok {
					added++
				}
				h[f] = vs[i]
			}
			return want(got, added)
		}}
	case op < 60:
		f := m.field()
		return modelCmd{args: []string{"HGET", k, f}, check: func(got any) string {
			h, known := hash()
			if !known {
				return ""
			}
			if v, ok := h[f]; ok {
				return want(got, string(v))
			}
			return want(got, nil)
		}}
	case op < 72:
		fs := []string{m.field(), m.field(), m.field()}
		return modelCmd{args: append([]string{"HMGET", k}, fs...), check: func(got any) string {
			h, known := hash()
			if !known {
				return ""
			}
			exp := make([]any, len(fs))
			for i, f := range fs {
				if v, ok := h[f]; ok {
					exp[i] = string(v)
				}
			}
			return want(got, exp)
		}}
	case op < 84:
		fs := []string{m.field(), m.field()}
		return modelCmd{args: append([]string{"HDEL", k}, fs...), writes: []string{k}, check: func(got any) string {
			h, known := hash()
			if !known {
				return ""
			}
			n := int64(0)
			for _, f := range fs {
				if _, ok := h[f]; ok {
					n++
					delete(h, f)
				}
			}
			if len(h) == 0 {
				delete(m.hashes, k) // Redis deletes an emptied hash
			}
			return want(got, n)
		}}
	case op < 94:
		return modelCmd{args: []string{"HLEN", k}, check: func(got any) string {
			if h, known := hash(); known {
				return want(got, int64(len(h)))
			}
			return ""
		}}
	default:
		return m.deleted(k)
	}
}

func (m *modelClient) nextList() modelCmd {
	r := m.rng
	k := m.lpool[r.IntN(len(m.lpool))]
	list := func() ([][]byte, bool) { _, known := m.value(k); return m.lists[k], known }
	pop := func(got any, blocking bool) string {
		l, known := list()
		if !known {
			return ""
		}
		if len(l) == 0 {
			return want(got, nil)
		}
		head := string(l[0])
		if l = l[1:]; len(l) == 0 {
			delete(m.lists, k)
		} else {
			m.lists[k] = l
		}
		if blocking {
			return want(got, []any{k, head})
		}
		return want(got, head)
	}
	switch op := r.IntN(100); {
	case op < 30:
		if len(m.lists[k]) > 24 { // keep lists short: take from them instead
			return modelCmd{args: []string{"LPOP", k}, writes: []string{k}, check: func(got any) string { return pop(got, false) }}
		}
		args := []string{"RPUSH", k}
		var vs [][]byte
		for range 1 + r.IntN(3) {
			v := m.randValue()
			args, vs = append(args, string(v)), append(vs, v)
		}
		return modelCmd{args: args, writes: []string{k}, check: func(got any) string {
			l, known := list()
			if !known {
				return ""
			}
			m.lists[k] = append(l, vs...)
			return want(got, int64(len(m.lists[k])))
		}}
	case op < 45:
		return modelCmd{args: []string{"LPOP", k}, writes: []string{k}, check: func(got any) string { return pop(got, false) }}
	case op < 60:
		// An empty list makes it wait out its 10 ms, outside a transaction.
		return modelCmd{args: []string{"BLPOP", k, "0.01"}, writes: []string{k}, check: func(got any) string { return pop(got, true) }}
	case op < 80:
		return modelCmd{args: []string{"LRANGE", k, "0", "-1"}, check: func(got any) string {
			l, known := list()
			if !known {
				return ""
			}
			exp := make([]any, len(l))
			for i, v := range l {
				exp[i] = string(v)
			}
			return want(got, exp)
		}}
	case op < 92:
		return modelCmd{args: []string{"LLEN", k}, check: func(got any) string {
			if l, known := list(); known {
				return want(got, int64(len(l)))
			}
			return ""
		}}
	default:
		return m.deleted(k)
	}
}

// Scripts: EVAL of a write (an APPEND, so that it changes what the model knows), EVALSHA of
// a script loaded on every node at the start (SCRIPT LOAD), and EVAL_RO of a read.
const (
	appendScript = "return redis.call('APPEND', KEYS[1], ARGV[1])"
	getScript    = "return redis.call('GET', KEYS[1])"
	strlenScript = "return redis.call('STRLEN', KEYS[1])"
)

func (m *modelClient) nextScript() modelCmd {
	r := m.rng
	k := m.pool[r.IntN(len(m.pool))]
	switch r.IntN(3) {
	case 0:
		v := m.randValue()
		if len(m.model[k])+len(v) > 64<<10 {
			v = v[:0]
		}
		return modelCmd{args: []string{"EVAL", appendScript, "1", k, string(v)}, writes: []string{k}, check: func(got any) string {
			if _, known := m.value(k); !known {
				return ""
			}
			m.set(k, append(append([]byte{}, m.model[k]...), v...))
			return want(got, int64(len(m.model[k])))
		}}
	case 1:
		return modelCmd{args: []string{"EVALSHA", m.getSHA, "1", k}, check: func(got any) string {
			if v, known := m.value(k); known {
				return want(got, v)
			}
			return ""
		}}
	default:
		return modelCmd{args: []string{"EVAL_RO", strlenScript, "1", k}, check: func(got any) string {
			if _, known := m.value(k); known {
				return want(got, int64(len(m.model[k])))
			}
			return ""
		}}
	}
}
