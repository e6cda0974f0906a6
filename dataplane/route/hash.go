package route

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"sort"
	"strings"
)

// HashFunc hashes a key to 32 bits as twemproxy does. It must be safe for concurrent use and
// must not allocate: the proxy calls it once per routed key.
type HashFunc func(key []byte) uint32

// DefaultHash is the hash used when a pool names none, as in twemproxy.
const DefaultHash = "fnv1a_64"

// hashes maps twemproxy's hash names (nc_hashkit.h) to our implementations.
var hashes = map[string]HashFunc{
	"one_at_a_time": hashOneAtATime,
	"md5":           hashMD5,
	"crc16":         hashCRC16,
	"crc32":         hashCRC32,
	"crc32a":        hashCRC32a,
	"fnv1_64":       hashFNV1_64,
	"fnv1a_64":      hashFNV1a64,
	"fnv1_32":       hashFNV1_32,
	"fnv1a_32":      hashFNV1a32,
	"hsieh":         hashHsieh,
	"murmur":        hashMurmur,
	"jenkins":       hashJenkins,
}

// HashNames returns the names Hash accepts, sorted.
func HashNames() []string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Hash returns the twemproxy hash function called name ("" means DefaultHash). Every function
// reproduces nutcracker 0.5.0 on amd64 bit for bit, including its quirks: twemproxy reads keys
// as signed chars, so several functions sign-extend bytes >= 0x80.
func Hash(name string) (HashFunc, error) {
	if name == "" {
		name = DefaultHash
	}
	if h, ok := hashes[name]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("route: unknown hash %q (valid: %s)", name, strings.Join(HashNames(), ", "))
}

// sx returns b as twemproxy sees it: a signed char converted to uint32 (sign-extended).
func sx(b byte) uint32 { return uint32(int32(int8(b))) }

// hashFNV1a64 is twemproxy's "fnv1a_64": despite the name it runs in 32 bits, with the low
// halves of the 64-bit FNV offset basis and prime.
func hashFNV1a64(key []byte) uint32 {
	h := uint32(0x84222325)
	for _, c := range key {
		h ^= sx(c)
		h *= 0x000001b3
	}
	return h
}

// hashFNV1_64 is 64-bit FNV-1 truncated to 32 bits. The low 32 bits of a product depend only
// on the low 32 bits of its factors, so 32-bit arithmetic gives the same result.
func hashFNV1_64(key []byte) uint32 {
	h := uint32(0x84222325)
	for _, c := range key {
		h *= 0x000001b3
		h ^= sx(c)
	}
	return h
}

func hashFNV1_32(key []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range key {
		h *= 16777619
		h ^= sx(c)
	}
	return h
}

func hashFNV1a32(key []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= sx(c)
		h *= 16777619
	}
	return h
}

// hashCRC32a is the standard CRC-32 (IEEE).
func hashCRC32a(key []byte) uint32 { return crc32.ChecksumIEEE(key) }

// hashCRC32 is libmemcached's "crc32": bits 16..30 of the standard CRC-32.
func hashCRC32(key []byte) uint32 { return (crc32.ChecksumIEEE(key) >> 16) & 0x7fff }

// hashMD5 is the first four bytes of the MD5 digest, little-endian.
func hashMD5(key []byte) uint32 {
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint32(sum[:4])
}

// hashCRC16 is twemproxy 0.5.0's "crc16": the CRC-16/XMODEM table step, but run in a 32-bit
// register that is never masked, so the bits shifted out above 16 keep piling up and the
// result is not a CRC-16 at all. nutcracker places keys by this value, so we reproduce it.
func hashCRC16(key []byte) uint32 {
	var c uint32
	for _, b := range key {
		c = c<<8 ^ uint32(crc16XMODEM[byte(c>>8)^b])
	}
	return c
}

// hashOneAtATime is Bob Jenkins' one-at-a-time hash over signed chars.
func hashOneAtATime(key []byte) uint32 {
	var h uint32
	for _, c := range key {
		h += sx(c)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}

// hashMurmur is MurmurHash2 with twemproxy's length-dependent seed (0xdeadbeef * len).
func hashMurmur(key []byte) uint32 {
	return murmur2(key, 0xdeadbeef*uint32(len(key)))
}

func murmur2(key []byte, seed uint32) uint32 {
	const m = 0x5bd1e995
	h := seed ^ uint32(len(key))
	for len(key) >= 4 {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2])<<16 | uint32(key[1])<<8 | uint32(key[0])
		h *= m
	case 2:
		h ^= uint32(key[1])<<8 | uint32(key[0])
		h *= m
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// hashJenkins is Bob Jenkins' lookup3 hashlittle with initval 13.
func hashJenkins(key []byte) uint32 { return lookup3(key, 13) }

func lookup3(key []byte, initval uint32) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + initval
	b, c := a, a
	if len(key) == 0 {
		return c
	}
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key[0:])
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		// mix
		a -= c
		a ^= bits.RotateLeft32(c, 4)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 6)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 8)
		b += a
		a -= c
		a ^= bits.RotateLeft32(c, 16)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 19)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 4)
		b += a
		key = key[12:]
	}
	// The last 1..12 bytes, zero-padded, feed a, b and c as little-endian words.
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	// final
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// hashHsieh is Paul Hsieh's SuperFastHash as twemproxy builds it on amd64: 16-bit reads are
// byte-wise little-endian, but the odd third byte of a 3-byte tail is a sign-extended char.
func hashHsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	get16 := func(p []byte) uint32 { return uint32(p[1])<<8 | uint32(p[0]) }
	var h uint32
	rem := len(key) & 3
	for n := len(key) >> 2; n > 0; n-- {
		h += get16(key)
		tmp := get16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		key = key[4:]
		h += h >> 11
	}
	switch rem {
	case 3:
		h += get16(key)
		h ^= h << 16
		h ^= sx(key[2]) << 18
		h += h >> 11
	case 2:
		h += get16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}
