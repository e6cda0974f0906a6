package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aster-proxy/aster/dataplane/rawio"
	"github.com/aster-proxy/aster/dataplane/route"
)

// access is a cluster's client access settings (route.GroupAccess) as sessions use them: one
// immutable value, swapped whole by a reload (generation.acc), so that a change of password,
// limit or certificate never reopens the listener. Sessions load it when they admit a client,
// authenticate or pace a batch; logged-in sessions stay, new clients get the new settings.
type access struct {
	users       map[string]string // username → password; empty: no authentication
	maxConns    int               // 0: no bound
	idle        time.Duration     // 0: never (applies to clients admitted under it)
	outputLimit int               // > 0
	tls         *tls.Config       // nil: plain
}

// listener is a client socket the Server owns, keyed by protocol and address
// (route.ListenSettings; TLS is the owner's access), and handed from one
// cluster generation to the next: accepted clients go to whichever cluster owns it now.
type listener struct {
	key    string
	ln     net.Listener
	owner  atomic.Pointer[Cluster]
	closed atomic.Bool
	log    hclog.Logger
}

// listenKey is the key of the listener spec needs. Port 0 asks for a fresh port each time, so
// such a listener is never shared: its key names the cluster.
func listenKey(spec route.ClusterSpec) string {
	l := spec.Listen
	k := l.Network() + " " + l.Addr
	if l.Network() != "unix" && strings.HasSuffix(l.Addr, ":0") {
		k += " " + spec.Name
	}
	return k
}

// give hands nc to the listener's owner; when the owner is retiring meanwhile, to its
// successor; with none, nc is closed.
func (l *listener) give(nc net.Conn) {
	for {
		c := l.owner.Load()
		if c == nil {
			nc.Close()
			return
		}
		if c.admit(nc) {
			return
		}
		if l.owner.Load() == c {
			nc.Close() // retiring with no successor: the listener closes next
			return
		}
	}
}

func (l *listener) close() {
	l.closed.Store(true)
	l.ln.Close()
}

// acceptLoop accepts on ln until it is closed (stopped reports it), handing each client to
// give. When asSock says the client will be a rawio.Sock, a rawio.Listener (listen makes TCP
// listeners one) takes it without it ever entering the runtime's poller. Out of file
// descriptors (EMFILE, ENFILE) and the like, it keeps the listener and backs off instead of
// spinning, as net/http does; clients wait in the listen queue. One log line when it starts
// failing and one when it recovers. give returning false ends the loop.
func acceptLoop(ln net.Listener, log hclog.Logger, stopped, asSock func() bool, give func(net.Conn) bool) {
	var delay time.Duration
	failed := 0
	rl, _ := ln.(*rawio.Listener)
	for {
		var nc net.Conn
		var err error
		if rl != nil && asSock() {
			var sk *rawio.Sock
			if sk, err = rl.AcceptSock(); sk != nil {
				nc = sk
			}
		} else {
			nc, err = ln.Accept() // NewSock takes it over should it be served from a loop (newSession)
		}
		if err != nil {
			if stopped() || errors.Is(err, net.ErrClosed) {
				return
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
				log.Error("accept failing: retrying with backoff, new clients wait", "error", err)
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			failed++
			time.Sleep(delay)
			continue
		}
		if failed > 0 {
			log.Info("accepting again", "failed_accepts", failed)
			failed = 0
		}
		delay = 0
		if !give(nc) {
			return
		}
	}
}

// sockable reports whether a client admitted now is served as a rawio.Sock by an event loop:
// plain TCP (no TLS), no idle timeout to keep with deadlines, loops on.
func (c *Cluster) sockable() bool {
	a := c.access()
	return a.tls == nil && a.idle == 0 && !c.noLoops.Load()
}

// access returns the cluster's current access settings. A Cluster not made by NewCluster (a
// test's) has none stored: it gets the defaults.
func (c *Cluster) access() *access {
	if g := c.gen.Load(); g != nil {
		return g.acc
	}
	return &access{outputLimit: DefaultOutputLimit}
}
