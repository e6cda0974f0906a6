package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/route"
	"github.com/aster-proxy/aster/internal/redistest"
)

// migration moves the slot of a key from its master to another one by hand, as redis-cli
// --cluster reshard does: the source answers ASK for the keys already moved, and MOVED once
// the slot is given to the destination.
type migration struct {
	t            *testing.T
	slot         int
	src, dst     *redistest.Server
	srcID, dstID string
}

// startMigration marks the slot of key importing on another master and migrating on its own.
func startMigration(t *testing.T, rc *redistest.Cluster, key string) *migration {
	t.Helper()
	m := &migration{t: t, slot: int(route.Slot([]byte(key)))}
	m.src = rc.MasterOf(m.slot)
	for _, n := range rc.Nodes {
		if n != m.src && strings.Contains(fmt.Sprint(n.Do("ROLE")), "master") {
			m.dst = n
			break
		}
	}
	if m.src == nil || m.dst == nil {
		t.Fatalf("no two masters for slot %d", m.slot)
	}
	m.srcID = fmt.Sprint(m.do(m.src, "CLUSTER", "MYID"))
	m.dstID = fmt.Sprint(m.do(m.dst, "CLUSTER", "MYID"))
	m.do(m.dst, "CLUSTER", "SETSLOT", m.slot, "IMPORTING", m.srcID)
	m.do(m.src, "CLUSTER", "SETSLOT", m.slot, "MIGRATING", m.dstID)
	return m
}

// move migrates keys of the slot to the destination.
func (m *migration) move(keys ...string) {
	m.t.Helper()
	_, dstPort, _ := strings.Cut(m.dst.Addr, ":")
	m.do(m.src, append([]any{"MIGRATE", "127.0.0.1", dstPort, "", 0, 5000, "KEYS"}, anySlice(keys)...)...)
}

// finish gives the slot to the destination on every node of rc (a replica may refuse: its
// master tells it).
func (m *migration) finish(rc *redistest.Cluster) {
	m.t.Helper()
	m.do(m.dst, "CLUSTER", "SETSLOT", m.slot, "NODE", m.dstID)
	m.do(m.src, "CLUSTER", "SETSLOT", m.slot, "NODE", m.dstID)
	for _, n := range rc.Nodes {
		_, _ = n.Do("CLUSTER", "SETSLOT", m.slot, "NODE", m.dstID)
	}
}

// do runs a command on s and fails the test if it fails.
func (m *migration) do(s *redistest.Server, args ...any) any {
	m.t.Helper()
	v, err := s.Do(args...)
	if err != nil {
		m.t.Fatalf("%v on %s: %v", args, s.Addr, err)
	}
	return v
}
