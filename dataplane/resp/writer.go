package resp

import "strconv"

// AppendCommand appends args as a RESP array of bulk strings: *N\r\n$len\r\narg\r\n...
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendArrayHeader appends an array header *n\r\n (n = -1 gives the null array).
func AppendArrayHeader(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = appendLen(dst, n)
	return append(dst, '\r', '\n')
}

// appendLen appends a length or count in decimal. Split sub-commands and merged replies write
// several per key, nearly all under 100: those skip strconv.
func appendLen(dst []byte, n int) []byte {
	switch {
	case n >= 0 && n < 10:
		return append(dst, byte('0'+n))
	case n >= 10 && n < 100:
		return append(dst, byte('0'+n/10), byte('0'+n%10))
	}
	return strconv.AppendInt(dst, int64(n), 10)
}

// AppendBulk appends b as a bulk string $len\r\nb\r\n.
func AppendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = appendLen(dst, len(b))
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string $len\r\ns\r\n.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = appendLen(dst, len(s))
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNullBulk appends the null bulk string $-1\r\n.
func AppendNullBulk(dst []byte) []byte {
	return append(dst, "$-1\r\n"...)
}

// AppendSimple appends the simple string +s\r\n; a \r or \n in s becomes a space, since a
// simple string cannot carry them.
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = appendLine(dst, s)
	return append(dst, '\r', '\n')
}

// AppendError appends the error reply -msg\r\n; a \r or \n in msg becomes a space, so an error
// built from client input cannot break the framing (as Redis addReplyError does).
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = appendLine(dst, msg)
	return append(dst, '\r', '\n')
}

// AppendInt appends the integer reply :n\r\n.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

func appendLine(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if dst[i] == '\r' || dst[i] == '\n' {
			dst[i] = ' '
		}
	}
	return dst
}

// BulkSize is the length of AppendBulk's frame for a string of n bytes, so that a frame of
// many bulks can be made in a buffer of the exact size (a big split command's sub-commands).
func BulkSize(n int) int { return 1 + lenDigits(n) + 2 + n + 2 }

// ArrayHeaderSize is the length of AppendArrayHeader's header for n >= 0 elements.
func ArrayHeaderSize(n int) int { return 1 + lenDigits(n) + 2 }

// lenDigits is the number of decimal digits of n >= 0.
func lenDigits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
