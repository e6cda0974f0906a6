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

// BenchmarkScanSmall compares ScanReply and ReplyScanner on the replies of the hot path.
func BenchmarkScanSmall(b *testing.B) {
	for _, r := range []struct{ name, reply string }{
		{"get64", "$64\r\n" + string(bytes.Repeat([]byte("v"), 64)) + "\r\n"},
		{"ok", "+OK\r\n"},
		{"mget4", "*4\r\n$3\r\nfoo\r\n$-1\r\n:42\r\n$64\r\n" + string(bytes.Repeat([]byte("v"), 64)) + "\r\n"},
	} {
		reply := []byte(r.reply)
		b.Run(r.name+"/ScanReply", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if n, err := ScanReply(reply); n != len(reply) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
		b.Run(r.name+"/ReplyScanner", func(b *testing.B) {
			var s ReplyScanner
			b.ReportAllocs()
			for range b.N {
				if n, err := s.Scan(reply); n != len(reply) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkScanBigArrayInPieces scans a 200k-element LRANGE-like reply (3.7 MB) arriving in
// 16 KiB reads: "rescan" is ScanReply on everything read so far after each read (what the
// readers did), "resume" a ReplyScanner.
func BenchmarkScanBigArrayInPieces(b *testing.B) {
	frame := bigArray(200000)
	const piece = 16 << 10
	b.Run("rescan", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for range b.N {
			for k := piece; ; k += piece {
				n, err := ScanReply(frame[:min(k, len(frame))])
				if err != nil {
					b.Fatal(err)
				}
				if n > 0 {
					break
				}
			}
		}
	})
	b.Run("resume", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		var s ReplyScanner
		for range b.N {
			for k := piece; ; k += piece {
				n, err := s.Scan(frame[:min(k, len(frame))])
				if err != nil {
					b.Fatal(err)
				}
				if n > 0 {
					break
				}
			}
		}
	})
}
