package route

import (
	"encoding/binary"
	"hash/fnv"
	"strings"
	"testing"
)

// TestHashVectors checks each hash against values from its reference definition: published
// check values, Go's standard library, or (for twemproxy's quirks) the quirk worked by hand.
func TestHashVectors(t *testing.T) {
	cases := []struct {
		name string
		hash string
		key  string
		want uint32
	}{
		{name: "fnv1a_64 hello is low half of FNV-1a 64", hash: "fnv1a_64", key: "hello", want: 0x80aabd0b},
		{name: "fnv1a_64 empty is offset basis", hash: "fnv1a_64", key: "", want: 0x84222325},
		{name: "fnv1a_64 high byte sign-extended", hash: "fnv1a_64", key: "\xe9", want: 0x79fe2ea4},
		{name: "crc32a check value", hash: "crc32a", key: "123456789", want: 0xcbf43926},
		{name: "crc32 libmemcached", hash: "crc32", key: "123456789", want: 0x4bf4},
		{name: "md5 empty", hash: "md5", key: "", want: 0xd98c1dd4},
		{name: "crc16 single byte is XMODEM", hash: "crc16", key: "A", want: 0x58e5},
		{name: "crc16 unmasked register", hash: "crc16", key: "123456789", want: 0x869031c3},
		{name: "one_at_a_time a", hash: "one_at_a_time", key: "a", want: 0xca2e9442},
		{name: "one_at_a_time fox", hash: "one_at_a_time", key: "The quick brown fox jumps over the lazy dog", want: 0x519e91f5},
		{name: "hsieh empty", hash: "hsieh", key: "", want: 0},
		{name: "hsieh one byte", hash: "hsieh", key: "a", want: 0x93642e87},
		{name: "hsieh three bytes", hash: "hsieh", key: "abc", want: 0xe5186b3a},
		{name: "hsieh four bytes", hash: "hsieh", key: "abcd", want: 0x3ab452d8},
		{name: "hsieh nine bytes", hash: "hsieh", key: "123456789", want: 0xe4fc1670},
		{name: "hsieh signed third byte", hash: "hsieh", key: "ab\xe9", want: 0x125794e5},
		{name: "jenkins empty", hash: "jenkins", key: "", want: 0xdeadbeef + 13},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Hash(tc.hash)
			if err != nil {
				t.Fatalf("Hash(%q): %v", tc.hash, err)
			}
			if got := h([]byte(tc.key)); got != tc.want {
				t.Errorf("%s(%q) = %#x, want %#x", tc.hash, tc.key, got, tc.want)
			}
		})
	}
}

// TestFNVMatchesStdlib compares the FNV family with hash/fnv on ASCII keys, where twemproxy's
// signed chars make no difference; 64-bit results are truncated as twemproxy does.
func TestFNVMatchesStdlib(t *testing.T) {
	for _, k := range []string{"", "a", "hello", "user:1000:profile", strings.Repeat("xyz", 50)} {
		f64, f64a, f32, f32a := fnv.New64(), fnv.New64a(), fnv.New32(), fnv.New32a()
		for _, w := range []interface{ Write([]byte) (int, error) }{f64, f64a, f32, f32a} {
			_, _ = w.Write([]byte(k))
		}
		checks := []struct {
			name      string
			got, want uint32
		}{
			{"fnv1_64", hashFNV1_64([]byte(k)), uint32(f64.Sum64())},
			{"fnv1a_64", hashFNV1a64([]byte(k)), uint32(f64a.Sum64())},
			{"fnv1_32", hashFNV1_32([]byte(k)), f32.Sum32()},
			{"fnv1a_32", hashFNV1a32([]byte(k)), f32a.Sum32()},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s(%q) = %#x, want %#x", c.name, k, c.got, c.want)
			}
		}
	}
}

// TestCRC16LowBitsAreXMODEM: twemproxy's crc16 keeps extra high bits, but its low 16 bits are
// the real CRC-16/XMODEM, which Slot's crc16 computes.
func TestCRC16LowBitsAreXMODEM(t *testing.T) {
	for _, k := range []string{"", "a", "123456789", "foo{bar}", "\xff\x80\x00\x7f"} {
		if got, want := uint16(hashCRC16([]byte(k))), crc16([]byte(k)); got != want {
			t.Errorf("low bits of crc16(%q) = %#x, want XMODEM %#x", k, got, want)
		}
	}
}

// TestLookup3Vectors checks the Jenkins core against the vectors published with lookup3.c.
func TestLookup3Vectors(t *testing.T) {
	cases := []struct {
		name    string
		key     string
		initval uint32
		want    uint32
	}{
		{"empty", "", 0, 0xdeadbeef},
		{"empty deadbeef", "", 0xdeadbeef, 0xbd5b7dde},
		{"four score", "Four score and seven years ago", 0, 0x17770551},
		{"four score initval 1", "Four score and seven years ago", 1, 0xcd628161},
	}
	for _, tc := range cases {
		if got := lookup3([]byte(tc.key), tc.initval); got != tc.want {
			t.Errorf("%s: lookup3(%q, %#x) = %#x, want %#x", tc.name, tc.key, tc.initval, got, tc.want)
		}
	}
}

// TestMurmur2Verification runs SMHasher's verification procedure over the MurmurHash2 core;
// the published value for MurmurHash2 is 0x27864C1E.
func TestMurmur2Verification(t *testing.T) {
	var key [256]byte
	hashes := make([]byte, 4*256)
	for i := range 256 {
		key[i] = byte(i)
		binary.LittleEndian.PutUint32(hashes[4*i:], murmur2(key[:i], uint32(256-i)))
	}
	if got := murmur2(hashes, 0); got != 0x27864c1e {
		t.Errorf("MurmurHash2 verification = %#x, want 0x27864c1e", got)
	}
	// twemproxy seeds with 0xdeadbeef * len: 0x9c093ccd for three bytes.
	if got, want := hashMurmur([]byte("abc")), murmur2([]byte("abc"), 0x9c093ccd); got != want {
		t.Errorf("murmur(abc) = %#x, want %#x", got, want)
	}
}

func TestHashNames(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
		same    string // Hash(in) must agree with Hash(same)
	}{
		{name: "default is fnv1a_64", in: "", same: "fnv1a_64"},
		{name: "known", in: "murmur", same: "murmur"},
		{name: "unknown", in: "sha1", wantErr: true},
		{name: "case matters", in: "FNV1A_64", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Hash(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Hash(%q) succeeded, want error", tc.in)
				}
				for _, n := range []string{"fnv1a_64", "murmur", "crc32a", "jenkins"} {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not list valid hash %q", err, n)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Hash(%q): %v", tc.in, err)
			}
			want, _ := Hash(tc.same)
			if k := []byte("some key"); h(k) != want(k) {
				t.Errorf("Hash(%q) differs from Hash(%q)", tc.in, tc.same)
			}
		})
	}
	if n := len(HashNames()); n != 12 {
		t.Errorf("HashNames has %d names, want twemproxy's 12", n)
	}
}

func TestHashesDoNotAllocate(t *testing.T) {
	key := []byte("user:1000:session:\xe9abc")
	for _, name := range HashNames() {
		h, _ := Hash(name)
		if n := testing.AllocsPerRun(100, func() { h(key) }); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	key := []byte("user:1000:session:abcdef")
	for _, name := range HashNames() {
		h, _ := Hash(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h(key)
			}
		})
	}
}
