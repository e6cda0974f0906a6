package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestPreAuthLimitsAsRedis sends the same frames, before AUTH, to a redis-server 7.0 with
// requirepass and to asterd with a password, on a plain listener (event-loop sessions) and a
// TLS one (goroutine sessions): the first reply line must be the same, and where Redis closes
// the connection (a multibulk length > 10 or a bulk length > 16384 is a protocol error at the
// header) asterd closes it too. After AUTH, big commands work.
func TestPreAuthLimitsAsRedis(t *testing.T) {
	t.Parallel()
	certs := redistest.GenCerts(t)
	servers := startServers(t, 2)
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	a := startAsterd(t, `
[[clusters]]
name = "plain"
listen_addr = "%LISTEN%"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
auth = { password = "s3cret" }

[[clusters]]
name = "tls"
listen_addr = "`+tlsAddr+`"
cache_type = "redis"
servers = `+serverList(servers, []int{1, 1}, true)+`
auth = { password = "s3cret" }
tls_cert_file = `+strconv.Quote(certs.CertFile)+`
tls_key_file = `+strconv.Quote(certs.KeyFile)+`
tls_ca_file = `+strconv.Quote(certs.CAFile)+`
`)
	redistest.WaitListening(t, tlsAddr, 10*time.Second)
	ref := redistest.Start(t, "--requirepass", "s3cret")
	dialers := map[string]func() (net.Conn, error){
		"redis-server": func() (net.Conn, error) { return net.Dial("tcp", ref.Addr) },
		"plain":        func() (net.Conn, error) { return net.Dial("tcp", a.Addr) },
		"tls": func() (net.Conn, error) {
			return tls.Dial("tcp", tlsAddr, certs.ClientTLS(t, true))
		},
	}
	args := func(n int) string { return fmt.Sprintf("*%d\r\n", n) + strings.Repeat("$3\r\nfoo\r\n", n) }
	bulk := func(n int) string { return fmt.Sprintf("*1\r\n$%d\r\n%s\r\n", n, strings.Repeat("b", n)) }
	cases := []struct {
		name, send string
		first      string // the first reply line, the same from Redis and asterd
		closed     bool
	}{
		{"*11 header", "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length", true},
		{"*11 whole", args(11), "-ERR Protocol error: unauthenticated multibulk length", true},
		{"*1000000", "*1000000\r\n", "-ERR Protocol error: unauthenticated multibulk length", true},
		{"$16385 header", "*1\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length", true},
		{"$16385 whole", bulk(16385), "-ERR Protocol error: unauthenticated bulk length", true},
		{"100 MiB bulk header", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n", "-ERR Protocol error: unauthenticated bulk length", true},
		{"*10", "*10\r\n$4\r\nMGET\r\n" + strings.Repeat("$3\r\nfoo\r\n", 9), "-NOAUTH Authentication required.", false},
		{"$16384", "*2\r\n$4\r\nECHO\r\n$16384\r\n" + strings.Repeat("b", 16384) + "\r\n", "-NOAUTH Authentication required.", false},
		{"past proto-max-bulk-len", "*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length", true},
		{"past INT_MAX", "*2147483648\r\n", "-ERR Protocol error: invalid multibulk length", true},
	}
	for _, c := range cases {
		for _, who := range []string{"redis-server", "plain", "tls"} {
			t.Run(c.name+"/"+who, func(t *testing.T) {
				nc, err := dialers[who]()
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(nc, c.send); err != nil {
					if !c.closed {
						t.Fatal(err)
					}
					// The server refused at the header and closed while the rest was still
					// being sent (redis-server does the same): the write fails, and the
					// error line may have been overtaken by the reset.
					t.Logf("write after the refusal: %v", err)
				}
				br := bufio.NewReader(nc)
				line, err := br.ReadString('\n')
				if c.closed && line == "" && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
					return
				}
				if got := strings.TrimSuffix(line, "\r\n"); got != c.first {
					t.Fatalf("got %q (%v), want %q", got, err, c.first)
				}
				if c.closed {
					if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("connection left open after the protocol error: %v", err)
					}
					return
				}
				// Still open; and after AUTH the same connection takes big commands.
				if _, err := io.WriteString(nc, "AUTH s3cret\r\n"+
					"*3\r\n$3\r\nSET\r\n$6\r\npre:k1\r\n$1000000\r\n"+strings.Repeat("v", 1000000)+"\r\n"+
					"*2\r\n$6\r\nSTRLEN\r\n$6\r\npre:k1\r\n"); err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"+OK", "+OK", ":1000000"} {
					line, err := br.ReadString('\n')
					if got := strings.TrimSuffix(line, "\r\n"); got != want {
						t.Fatalf("after AUTH: got %q (%v), want %q", got, err, want)
					}
				}
			})
		}
	}
	// asterd is still serving.
	raw := redistest.DialRaw(t, a.Addr)
	if got, err := raw.Do("AUTH", "s3cret"); err != nil || got != "OK" {
		t.Fatalf("AUTH after the hostile clients: %q %v", got, err)
	}
}
