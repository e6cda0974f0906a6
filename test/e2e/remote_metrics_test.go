package e2e

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestDataPlaneMetrics scrapes a --role data asterd: its link to the control plane
// (aster_control_plane_connected, the age of its last snapshot) and the version of the table
// it serves, which follows an eject on the control plane and stays while the control plane
// is away.
func TestDataPlaneMetrics(t *testing.T) {
	t.Parallel()
	servers := startServers(t, 3)
	setup := newRemoteSetup(t, servers, "mt0k")
	control := setup.startControl(t)
	maddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	setup.startData(t, "--token", "mt0k", "--metrics-addr", maddr)
	redistest.WaitListening(t, setup.listen, 10*time.Second)
	redistest.WaitListening(t, maddr, 10*time.Second)

	remote := map[string]string{"cluster": "remote"}
	waitSample(t, maddr, "aster_control_plane_connected", nil, 1, 10*time.Second)
	_, mfs := scrape(t, maddr)
	v1, ok := sample(mfs, "aster_routing_table_version", remote)
	if !ok || v1 == 0 {
		t.Fatalf("aster_routing_table_version{remote} = %v (present %v) on a serving data plane", v1, ok)
	}
	if age, ok := sample(mfs, "aster_control_plane_last_snapshot_age_seconds", nil); !ok || age < 0 || age > 60 {
		t.Fatalf("aster_control_plane_last_snapshot_age_seconds = %v (present %v)", age, ok)
	}

	// An eject on the control plane is a new table on the data plane.
	if r := asterctl(t, nil, "--addr", setup.admin, "--token", "mt0k", "cluster", "eject", "remote", "r2"); r.code != 0 {
		t.Fatalf("asterctl eject: %v", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, mfs = scrape(t, maddr)
		if v, _ := sample(mfs, "aster_routing_table_version", remote); v > v1 {
			v1 = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aster_routing_table_version{remote} stayed %v after an eject", v1)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The control plane dies: the link shows it, the table stays.
	if err := control.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-control.done
	waitSample(t, maddr, "aster_control_plane_connected", nil, 0, 10*time.Second)
	_, mfs = scrape(t, maddr)
	if v, _ := sample(mfs, "aster_routing_table_version", remote); v != v1 {
		t.Errorf("aster_routing_table_version{remote} = %v without a control plane, want %v", v, v1)
	}
	setup.startControl(t)
	waitSample(t, maddr, "aster_control_plane_connected", nil, 1, 15*time.Second)
}

// TestTopologyRefreshMetrics scrapes asterd in front of a real Redis Cluster: the first slot
// map counts as changed, the watch's every second as unchanged, and once every node is dead
// the refreshes count as failed (the alert AsterTopologyRefreshFailing reads them).
func TestTopologyRefreshMetrics(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 0)
	maddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	a := startAsterd(t, "[metrics]\nlisten_addr = \""+maddr+"\"\n"+clusterConfig(rc.Seeds(), ""))
	waitServing(t, a.client(t), 10*time.Second)
	redistest.WaitListening(t, maddr, 10*time.Second)

	waitAtLeast := func(result string, n float64) {
		t.Helper()
		labels := map[string]string{"cluster": "rc", "result": result}
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, mfs := scrape(t, maddr)
			if v, _ := sample(mfs, "aster_topology_refreshes_total", labels); v >= n {
				return
			}
			if time.Now().After(deadline) {
				body, _ := scrape(t, maddr)
				t.Fatalf("aster_topology_refreshes_total%v never reached %v:\n%s", labels, n, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAtLeast("changed", 1)
	waitAtLeast("unchanged", 2)
	for _, n := range rc.Nodes {
		n.Kill()
	}
	waitAtLeast("failed", 2)
}
