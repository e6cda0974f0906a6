package resp

import (
	"bytes"
	"testing"
)

// loopReader replays the same bytes forever, so a benchmark reads from an endless pipeline.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func benchReader(b *testing.B, one []byte) {
	const pipeline = 16
	batch := bytes.Repeat(one, pipeline)
	r := NewReader(&loopReader{data: batch}, 16<<10)
	var cmd Command
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := r.Read(&cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderGET(b *testing.B) {
	benchReader(b, AppendCommand(nil, []byte("GET"), []byte("key:__rand_int__")))
}

func BenchmarkReaderSET(b *testing.B) {
	benchReader(b, AppendCommand(nil, []byte("SET"), []byte("key:__rand_int__"), bytes.Repeat([]byte("x"), 64)))
}

func BenchmarkReaderInline(b *testing.B) {
	benchReader(b, []byte("SET key:__rand_int__ \"a value\"\r\n"))
}

func BenchmarkScanReply(b *testing.B) {
	reply := []byte("*4\r\n$3\r\nfoo\r\n$-1\r\n:42\r\n$64\r\n" + string(bytes.Repeat([]byte("v"), 64)) + "\r\n")
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for range b.N {
		if n, err := ScanReply(reply); n != len(reply) || err != nil {
			b.Fatal(n, err)
		}
	}
}
