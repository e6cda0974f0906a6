package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ports for test servers. A port found free is only free until the server binds it; meanwhile
// it can be taken by another test of this process (tests run in parallel), by another test
// process (go test runs packages side by side, other checkouts run their suites), or by any
// process's outgoing connection (the kernel gives those ports of ip_local_port_range). So
// ports are drawn at random below that range (no outgoing connection and no Listen(":0")
// takes them), handed out once per process, and locked against other processes: a write lock
// on the port's byte of one shared file, which the kernel drops when the process ends.
const (
	portLow        = 10000 // the band starts here (well-known and registered services below)
	minPortBand    = 4000  // fewer free ports below the ephemeral range: use the kernel's choice
	portLockFile   = "redistest-ports.lock"
	portTriesLimit = 1000
)

var ports struct {
	once sync.Once
	high int      // the band is [portLow, high); 0: no band, ask the kernel
	lock *os.File // nil: no cross-process lock (the file could not be opened)
	sync.Mutex
	handedOut map[int]bool
}

func portsInit() {
	ports.handedOut = map[int]bool{}
	ports.high = 0
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo-portLow >= minPortBand {
				ports.high = lo
			}
		}
	}
	// Opened once and never closed: closing any descriptor of the file would drop every
	// lock this process holds on it.
	if f, err := os.OpenFile(filepath.Join(os.TempDir(), portLockFile), os.O_RDWR|os.O_CREATE, 0o666); err == nil {
		ports.lock = f
	}
}

// claim hands ports out, all or none: false when this process handed one out before, another
// process holds one, or one is not free now.
func claim(want ...int) bool {
	ports.Lock()
	defer ports.Unlock()
	for _, p := range want {
		if ports.handedOut[p] {
			return false
		}
	}
	var locked []int
	unlock := func() {
		for _, p := range locked {
			lockByte(p, syscall.F_UNLCK)
		}
	}
	for _, p := range want {
		if ports.lock != nil && !lockByte(p, syscall.F_WRLCK) {
			unlock()
			return false
		}
		locked = append(locked, p)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			unlock()
			return false
		}
		l.Close()
	}
	for _, p := range want {
		ports.handedOut[p] = true
	}
	return true
}

// lockByte sets (F_WRLCK) or clears (F_UNLCK) this process's lock on port's byte of the lock
// file, without waiting; false when another process holds it.
func lockByte(port int, typ int16) bool {
	if ports.lock == nil {
		return true
	}
	fl := syscall.Flock_t{Type: typ, Whence: 0, Start: int64(port), Len: 1}
	return syscall.FcntlFlock(ports.lock.Fd(), syscall.F_SETLK, &fl) == nil
}

// FreePort returns a loopback TCP port that is free now and that no other test of this
// process, and no other process using this package, gets while this process runs.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort(0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freeClusterPort is FreePort for a cluster node: p ≤ 65535-10000 with p+10000 (its cluster
// bus port) free and handed out too.
func freeClusterPort() (int, error) { return freePort(clusterBusOffset) }

// freePort returns a port p handed out as FreePort says, with p+also handed out too when
// also is not 0.
func freePort(also int) (int, error) {
	ports.once.Do(portsInit)
	for range portTriesLimit {
		var p int
		if high := ports.high - also; high-portLow >= minPortBand/2 {
			p = portLow + rand.IntN(high-portLow)
		} else {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, fmt.Errorf("find free port: %w", err)
			}
			p = l.Addr().(*net.TCPAddr).Port
			l.Close()
			if p+also > 65535 {
				continue
			}
		}
		want := []int{p}
		if also != 0 {
			want = append(want, p+also)
		}
		if claim(want...) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("find free port: none free and not handed out in %d tries", portTriesLimit)
}
