package proxy

import (
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/route"
)

// emfileListener fails Accept with EMFILE (then ENFILE) fails times, then hands out conn.
type emfileListener struct {
	mu     sync.Mutex
	fails  int
	calls  int
	conn   net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	n := l.calls
	l.mu.Unlock()
	switch {
	case n <= l.fails:
		errno := syscall.EMFILE
		if n%2 == 0 {
			errno = syscall.ENFILE
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: errno}
	case n == l.fails+1:
		return l.conn, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *emfileListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *emfileListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// Out of descriptors, the accept loop keeps its listener and backs off (5 ms doubling)
// instead of spinning, logs the streak once and its end once, and then serves the next
// client.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	const fails = 6
	var buf strings.Builder
	var bufMu sync.Mutex
	logger := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(p []byte) (int, error) {
		bufMu.Lock()
		defer bufMu.Unlock()
		return buf.Write(p)
	}), Level: hclog.Debug})
	c := MustCluster(t, route.ClusterSpec{Name: "a"}, Env{Logger: logger})
	client, server := net.Pipe()
	defer client.Close()
	ln := &emfileListener{fails: fails, conn: server, closed: make(chan struct{})}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Serve() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.sessions)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned %v after EMFILE", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the client after the EMFILE streak was never accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The backoff slept 5+10+...+160 ms: a lower bound, whatever the machine's speed.
	if took := time.Since(start); took < 315*time.Millisecond {
		t.Errorf("%d failed accepts took %v: the loop did not back off", fails, took)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	bufMu.Lock()
	log := buf.String()
	bufMu.Unlock()
	if n := strings.Count(log, "accept failing"); n != 1 {
		t.Errorf("%d 'accept failing' lines for one streak, want 1:\n%s", n, log)
	}
	if !strings.Contains(log, "accepting again") || !strings.Contains(log, "failed_accepts=6") {
		t.Errorf("the end of the streak is not logged:\n%s", log)
	}
	ln.mu.Lock()
	calls := ln.calls
	ln.mu.Unlock()
	if calls < fails+1 {
		t.Errorf("%d accepts", calls)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The clients of a TCP listener (as listen opens it) are taken as rawio.Socks, never put in
// the runtime's epoll set (rawio.Listener), when their cluster serves them from event loops:
// those waiting when the loop starts and those that come while it waits, every one. When the
// cluster does not (asSock false: TLS, an idle timeout, no loops), and on a Unix listener,
// clients are Accept's.
func TestAcceptTakesWaitingClientsAsSocks(t *testing.T) {
	const burst = 20
	for _, tc := range []struct {
		name    string
		network string
		asSock  bool
		socks   int
	}{
		{"tcp, loops", "tcp", true, 2 * burst},
		{"tcp, no loops", "tcp", false, 0},
		{"unix", "unix", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if tc.network == "unix" {
				addr = t.TempDir() + "/s"
			}
			ln, err := listen("test", route.ListenSettings{Proto: tc.network, Addr: addr})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var clients []net.Conn
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			dial := func() {
				for range burst {
					c, err := net.Dial(tc.network, ln.Addr().String())
					if err != nil {
						t.Error(err)
						return
					}
					clients = append(clients, c)
				}
			}
			dial() // waiting when the loop starts
			got := make(chan net.Conn, 2*burst)
			done := make(chan struct{})
			go func() {
				defer close(done)
				acceptLoop(ln, hclog.NewNullLogger(), func() bool { return false },
					func() bool { return tc.asSock }, func(nc net.Conn) bool { got <- nc; return true })
			}()
			socks := 0
			take := func() {
				for range burst {
					select {
					case nc := <-got:
						defer nc.Close()
						switch nc.(type) {
						case *rawio.Sock:
							socks++
						case *net.TCPConn, *net.UnixConn:
						default:
							t.Fatalf("accepted a %T", nc)
						}
					case <-time.After(10 * time.Second):
						t.Fatal("a client was not accepted")
					}
				}
			}
			take()
			dial() // coming while the loop waits
			take()
			ln.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the accept loop goes on after its listener closed")
			}
			if socks != tc.socks {
				t.Errorf("%d of %d clients taken as Socks, want %d", socks, 2*burst, tc.socks)
			}
		})
	}
}

// TestListenerIsPlainTCP: a cluster's TCP listener is a plain TCP socket, as Redis's, not
// MPTCP, which Go's listeners take by default where Linux has it (and this kernel does): its
// accept path cost a client that connects per command ~1.5% more of the proxy's CPU.
func TestListenerIsPlainTCP(t *testing.T) {
	ln, err := listen("t", route.ListenSettings{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sc, err := ln.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	proto, serr := -1, error(nil)
	if err := sc.Control(func(fd uintptr) {
		proto, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PROTOCOL)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if proto != syscall.IPPROTO_TCP {
		t.Errorf("the listener's protocol is %d, want IPPROTO_TCP (%d; MPTCP is 262)", proto, syscall.IPPROTO_TCP)
	}
}
