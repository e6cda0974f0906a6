package topology

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

var record = flag.Bool("record", false, "re-record testdata/cluster_slots*.resp from a real cluster; the expectations in TestParseRecorded must then be updated by hand")

// TestRecordClusterSlots refreshes the recorded CLUSTER SLOTS replies; it runs only with -record.
func TestRecordClusterSlots(t *testing.T) {
	if !*record {
		t.Skip("run with -record to re-record testdata")
	}
	start := time.Now()
	c := redistest.StartCluster(t, 3, 1)
	t.Logf("cluster up in %v", time.Since(start))
	writeRaw(t, c.Nodes[0].Addr, "cluster_slots.resp")

	// A lone cluster node that never met another does not know its own IP and says "".
	lone := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"))
	if _, err := lone.Do("CLUSTER", "ADDSLOTSRANGE", 0, 16383); err != nil {
		t.Fatalf("ADDSLOTSRANGE: %v", err)
	}
	writeRaw(t, lone.Addr, "cluster_slots_lone.resp")
}

func writeRaw(t *testing.T, addr, name string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(resp.AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))); err != nil {
		t.Fatal(err)
	}
	reply, err := readReply(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), reply, 0o644); err != nil {
		t.Fatal(err)
	}
}
