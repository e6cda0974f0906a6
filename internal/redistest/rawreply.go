package redistest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Send writes one command and reads nothing: for pub/sub, where replies and messages come
// on their own schedule.
func (r *Raw) Send(args ...string) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = r.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.nc.Write([]byte(b.String())); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// ErrReply is an error reply received by Receive.
type ErrReply string

func (e ErrReply) Error() string { return string(e) }

// Receive reads one reply of any type within d: a string (simple or bulk, or a RESP3
// double), nil (a null bulk or array, RESP3's null), an int64, a bool (RESP3), a []any (an
// array, a RESP3 set or push, a RESP3 map as key, value, ...), or an ErrReply. A read error
// (a timeout when nothing came) is returned as it is. SawResp3 tells whether a reply used a
// type of RESP3's.
func (r *Raw) Receive(d time.Duration) (any, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	return r.receive()
}

// SawResp3 reports whether any reply Receive read was of a type only RESP3 has.
func (r *Raw) SawResp3() bool { return r.resp3 }

func (r *Raw) receive() (any, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	if strings.IndexByte("_#,~>%", line[0]) >= 0 {
		r.resp3 = true
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return ErrReply(line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '_': // RESP3's null
		return nil, nil
	case '#':
		return line[1:] == "t", nil
	case ',':
		return line[1:], nil
	case '*', '~', '>', '%': // arrays, RESP3's sets and pushes, and its maps as key, value, ...
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		if line[0] == '%' {
			n *= 2
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = r.receive(); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unsupported reply %q", line)
}
