package route

import "bytes"

// Slots is the number of hash slots in a Redis Cluster.
const Slots = 16384

// crc16XMODEM is the table for CRC-16/XMODEM (polynomial 0x1021, not reflected, init 0), the
// CRC Redis Cluster hashes keys with. Generated rather than written out so it cannot be mistyped.
var crc16XMODEM = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc16Pair is the table of two steps at once: a CRC step is linear, so after bytes x0 then
// x1 the register c becomes crc16Pair[byte(c>>8)^x0] ^ crc16XMODEM[byte(c)^x1], two lookups
// that do not wait for each other (half the serial work of a key's slot, on every key of a
// cluster-mode command).
var crc16Pair = func() (t [256]uint16) {
	for a := range t {
		v := crc16XMODEM[a]
		t[a] = v<<8 ^ crc16XMODEM[byte(v>>8)]
	}
	return t
}()

// crc16 returns the CRC-16/XMODEM of b.
func crc16(b []byte) uint16 {
	var c uint16
	for len(b) >= 2 {
		c = crc16Pair[byte(c>>8)^b[0]] ^ crc16XMODEM[byte(c)^b[1]]
		b = b[2:]
	}
	if len(b) == 1 {
		c = c<<8 ^ crc16XMODEM[byte(c>>8)^b[0]]
	}
	return c
}

// crc16Bytewise is crc16 one byte a step, as the CRC is defined: the reference the tests
// hold crc16 to.
func crc16Bytewise(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crc16XMODEM[byte(c>>8)^x]
	}
	return c
}

// Slot returns the Redis Cluster slot of key: CRC-16/XMODEM of its hash-tagged part, modulo
// Slots. The tag rule is Redis's: the bytes between the first '{' and the first '}' after it,
// when there is at least one; otherwise the whole key. It does not allocate.
func Slot(key []byte) uint16 {
	return crc16(tagged(key, '{', '}')) & (Slots - 1)
}

// tagged applies the hash-tag rule shared by Redis Cluster and twemproxy.
func tagged(key []byte, open, close byte) []byte {
	s := bytes.IndexByte(key, open)
	if s < 0 {
		return key
	}
	e := bytes.IndexByte(key[s+1:], close)
	if e <= 0 { // no end, or nothing between the two
		return key
	}
	return key[s+1 : s+1+e]
}
