package route

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestSlot(t *testing.T) {
	cases := []struct {
		name string
		key  string
		want uint16
	}{
		{name: "crc16 check value 0x31C3", key: "123456789", want: 12739},
		{name: "empty key", key: "", want: 0},
		{name: "tag hashes inside", key: "{123456789}.rest", want: 12739},
		{name: "later tag ignored", key: "x{123456789}{other}", want: 12739},
		{name: "empty tag hashes whole key", key: "foo{}{bar}", want: crc16([]byte("foo{}{bar}")) % Slots},
		{name: "nested open brace kept", key: "foo{{bar}}zap", want: crc16([]byte("{bar")) % Slots},
		{name: "no closing brace", key: "{123456789", want: crc16([]byte("{123456789")) % Slots},
		{name: "closing brace only", key: "12345}6789", want: crc16([]byte("12345}6789")) % Slots},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Slot([]byte(tc.key)); got != tc.want {
				t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
	// Keys sharing a tag share a slot, and differently tagged keys do not here.
	a, b := Slot([]byte("{user1000}.following")), Slot([]byte("{user1000}.followers"))
	if a != b {
		t.Errorf("{user1000}.following in slot %d, {user1000}.followers in %d; want equal", a, b)
	}
	if a != Slot([]byte("user1000")) {
		t.Errorf("{user1000}.following in slot %d, want the slot of user1000 (%d)", a, Slot([]byte("user1000")))
	}
	if c := Slot([]byte("{user1001}.following")); c == a {
		t.Errorf("{user1001} and {user1000} both in slot %d", a)
	}
	// The whole-key cases must really differ from hashing the would-be tag.
	if Slot([]byte("foo{}{bar}")) == Slot([]byte("bar")) {
		t.Error(`foo{}{bar} hashed as "bar"`)
	}
}

func TestSlotRange(t *testing.T) {
	key := make([]byte, 0, 32)
	for i := range 100000 {
		key = append(key[:0], "key:"...)
		key = append(key, byte(i), byte(i>>8), byte(i>>16))
		if s := Slot(key); s >= Slots {
			t.Fatalf("Slot(%q) = %d, out of range", key, s)
		}
	}
}

func TestHashTag(t *testing.T) {
	cases := []struct {
		name string
		key  string
		tag  string
		want string
	}{
		{name: "braces", key: "{user1000}.following", tag: "{}", want: "user1000"},
		{name: "tag in the middle", key: "a{b}c", tag: "{}", want: "b"},
		{name: "first start, first end after it", key: "x}{a}{b}", tag: "{}", want: "a"},
		{name: "nested start kept", key: "foo{{bar}}zap", tag: "{}", want: "{bar"},
		{name: "empty tag means whole key", key: "foo{}{bar}", tag: "{}", want: "foo{}{bar}"},
		{name: "no end means whole key", key: "foo{bar", tag: "{}", want: "foo{bar"},
		{name: "no start means whole key", key: "foobar}", tag: "{}", want: "foobar}"},
		{name: "same start and end char", key: "a$b$c", tag: "$$", want: "b"},
		{name: "other pair", key: "id:[42]:x", tag: "[]", want: "42"},
		{name: "no tag configured", key: "{a}b", tag: "", want: "{a}b"},
		{name: "malformed tag ignored", key: "{a}b", tag: "{", want: "{a}b"},
		{name: "empty key", key: "", tag: "{}", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := HashTag([]byte(tc.key), tc.tag); !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("HashTag(%q, %q) = %q, want %q", tc.key, tc.tag, got, tc.want)
			}
		})
	}
}

func TestSlotDoesNotAllocate(t *testing.T) {
	key := []byte("{user1000}.following")
	if n := testing.AllocsPerRun(1000, func() { Slot(key) }); n != 0 {
		t.Errorf("Slot allocates %v times per call", n)
	}
}

func BenchmarkSlot(b *testing.B) {
	for _, bc := range []struct{ name, key string }{
		{"plain", "user:1000:session:abcdef"},
		{"tagged", "{user1000}.following"},
	} {
		key := []byte(bc.key)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Slot(key)
			}
		})
	}
}

// TestCRC16TwoBytesAStepIsBytewise: the two-step table gives the CRC of the one-byte
// definition for every length (odd and even) and for every value of the two bytes a step
// takes, from every register state a first byte leads to.
func TestCRC16TwoBytesAStepIsBytewise(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			for _, k := range [][]byte{{byte(a), byte(b)}, {0x5a, byte(a), byte(b)}, {byte(a), byte(b), 0xc3, 0x01}} {
				if got, want := crc16(k), crc16Bytewise(k); got != want {
					t.Fatalf("crc16(%x) = %#x, bytewise %#x", k, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		k := make([]byte, rng.IntN(70))
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		if got, want := crc16(k), crc16Bytewise(k); got != want {
			t.Fatalf("crc16(%x) = %#x, bytewise %#x", k, got, want)
		}
	}
}
