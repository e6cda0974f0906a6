package proxy_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/proxy"
	"github.com/aster-proxy/aster/dataplane/resp"
)

// benchPipeline drives the proxy with depth pipelined copies of frame per op over one
// connection and reads the replies, counting allocations of the whole process (the client side
// here allocates nothing after warm-up, so allocs/op is the proxy's).
func benchPipeline(b *testing.B, frame string, depth int, reply string, withMetrics bool) {
	var m *proxy.Metrics
	if withMetrics {
		m, _ = newTestMetrics()
	}
	benchPipelineEnv(b, envOpts{nodes: 3, metrics: m}, "", frame, depth, reply)
}

// benchPipelineEnv is benchPipeline on a proxy made with o, on a connection that first says
// hello (e.g. HELLO 3) when it is not empty.
func benchPipelineEnv(b *testing.B, o envOpts, hello, frame string, depth int, reply string) {
	e := startEnv(b, o)
	if err := e.client.Set(ctx, "bench:key", strings.Repeat("v", 64), 0).Err(); err != nil {
		b.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	if hello != "" {
		if _, err := nc.Write([]byte(hello)); err != nil {
			b.Fatal(err)
		}
		var got []byte
		for n := 0; n == 0; {
			c, err := br.ReadByte()
			if err != nil {
				b.Fatal(err)
			}
			got = append(got, c)
			if n, err = resp.ScanReply(got); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch := []byte(strings.Repeat(frame, depth))
	want := len(reply) * depth
	buf := make([]byte, want)
	roundTrip := func() {
		if _, err := nc.Write(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	if string(buf[:len(reply)]) != reply {
		b.Fatalf("reply %q, want %q", buf[:len(reply)], reply)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "cmds/s")
}

const val64 = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"

func BenchmarkProxyGET(b *testing.B) {
	for _, depth := range []int{1, 16} {
		for _, m := range []bool{false, true} {
			b.Run("P"+strconv.Itoa(depth)+"/metrics="+strconv.FormatBool(m), func(b *testing.B) {
				benchPipeline(b, "*2\r\n$3\r\nGET\r\n$9\r\nbench:key\r\n", depth, "$64\r\n"+val64+"\r\n", m)
			})
		}
	}
}

func BenchmarkProxySET(b *testing.B) {
	for _, depth := range []int{1, 16} {
		for _, m := range []bool{false, true} {
			b.Run("P"+strconv.Itoa(depth)+"/metrics="+strconv.FormatBool(m), func(b *testing.B) {
				benchPipeline(b, "*3\r\n$3\r\nSET\r\n$9\r\nbench:key\r\n$64\r\n"+val64+"\r\n", depth, "+OK\r\n", m)
			})
		}
	}
}

// BenchmarkProxyRESP3 is the converting path: a RESP3 client over RESP2 backends, and a
// RESP2 client over RESP3 backends (GET of a missing key, whose null differs).
func BenchmarkProxyRESP3(b *testing.B) {
	get := "*2\r\n$3\r\nGET\r\n$6\r\nnokey!\r\n"
	b.Run("client3-backend2", func(b *testing.B) {
		benchPipelineEnv(b, envOpts{nodes: 3}, "HELLO 3\r\n", get, 16, "_\r\n")
	})
	b.Run("client2-backend3", func(b *testing.B) {
		benchPipelineEnv(b, envOpts{nodes: 3, resp3: true}, "", get, 16, "$-1\r\n")
	})
}
