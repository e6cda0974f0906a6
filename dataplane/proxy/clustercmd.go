package proxy

import (
	"crypto/sha1"
	"encoding/hex"
	"net"
	"strconv"
	"strings"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/dataplane/route"
)

// The proxy answers CLUSTER as a one-node Redis Cluster that owns every slot and names the
// proxy itself, in both modes: cluster-aware clients then send everything back to the proxy,
// which routes it as usual.

// lastSlot is the highest Redis Cluster slot.
const lastSlot = route.Slots - 1

// nodeID is the cluster's node ID: 40 hex digits, like Redis's, and stable across restarts
// (derived from the cluster name) so clients that cache it see the same node.
func (c *Cluster) nodeID() string {
	sum := sha1.Sum([]byte(c.name))
	return hex.EncodeToString(sum[:])
}

// announced is the address the proxy names as its node: Options.AnnounceIP, else the
// listener's IP when it is a specific one, else 127.0.0.1; and the listener's port (0 for a
// unix socket).
func (c *Cluster) announced() (ip string, port int) {
	var lip net.IP
	if a, ok := c.Addr().(*net.TCPAddr); ok {
		lip, port = a.IP, a.Port
	}
	switch {
	case c.env.AnnounceIP != "":
		ip = c.env.AnnounceIP
	case lip != nil && !lip.IsUnspecified():
		ip = lip.String()
	default:
		ip = "127.0.0.1"
	}
	return ip, port
}

// clusterUnsupported are Redis's CLUSTER subcommands that a one-node view cannot answer
// truthfully (keys live on the backends) or that would change a topology the proxy does not
// have.
var clusterUnsupported = map[string]bool{
	"countkeysinslot": true, "getkeysinslot": true, "addslots": true, "addslotsrange": true,
	"delslots": true, "delslotsrange": true, "failover": true, "forget": true, "meet": true,
	"replicate": true, "reset": true, "setslot": true, "flushslots": true, "saveconfig": true,
	"bumpepoch": true, "set-config-epoch": true, "count-failure-reports": true, "replicas": true,
	"slaves": true, "links": true,
}

var clusterHelp = []string{
	"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"INFO", "    Return information about the cluster.",
	"KEYSLOT <key>", "    Return the hash slot for <key>.",
	"MYID", "    Return the node id.",
	"NODES", "    Return cluster configuration seen by node.",
	"SHARDS", "    Return information about slot range mappings and the nodes associated with them.",
	"SLOTS", "    Return information about slots range mappings.",
	"HELP", "    Print this help.",
}

// clusterReply answers CLUSTER and its subcommands.
func (c *Cluster) clusterReply(out []byte, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	wantArgs := 2
	if sub == "keyslot" {
		wantArgs = 3
	}
	if clusterUnsupported[sub] {
		return resp.AppendError(out, "ERR CLUSTER "+strings.ToUpper(sub)+" is not supported by the proxy")
	}
	switch sub {
	case "info", "keyslot", "myid", "nodes", "shards", "slots", "help":
		if len(args) != wantArgs {
			return resp.AppendError(out, "ERR wrong number of arguments for 'cluster|"+sub+"' command")
		}
	default:
		return resp.AppendError(out, "ERR unknown subcommand '"+clip(args[1])+"'. Try CLUSTER HELP.")
	}
	id := c.nodeID()
	switch sub {
	case "info":
		return resp.AppendBulkString(out, "cluster_state:ok\r\n"+
			"cluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"+
			"cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n"+
			"cluster_known_nodes:1\r\ncluster_size:1\r\n"+
			"cluster_current_epoch:1\r\ncluster_my_epoch:1\r\n"+
			"cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"+
			"total_cluster_links_buffer_limit_exceeded:0\r\n")
	case "keyslot":
		return resp.AppendInt(out, int64(route.Slot(args[2])))
	case "myid":
		return resp.AppendBulkString(out, id)
	case "help":
		out = resp.AppendArrayHeader(out, len(clusterHelp))
		for _, l := range clusterHelp {
			out = resp.AppendSimple(out, l)
		}
		return out
	}
	ip, port := c.announced()
	switch sub {
	case "slots":
		out = resp.AppendArrayHeader(out, 1)
		out = resp.AppendArrayHeader(out, 3)
		out = resp.AppendInt(out, 0)
		out = resp.AppendInt(out, lastSlot)
		out = resp.AppendArrayHeader(out, 3)
		out = resp.AppendBulkString(out, ip)
		out = resp.AppendInt(out, int64(port))
		return resp.AppendBulkString(out, id)
	case "shards":
		out = resp.AppendArrayHeader(out, 1)
		out = resp.AppendArrayHeader(out, 4)
		out = resp.AppendBulkString(out, "slots")
		out = resp.AppendArrayHeader(out, 2)
		out = resp.AppendInt(out, 0)
		out = resp.AppendInt(out, lastSlot)
		out = resp.AppendBulkString(out, "nodes")
		out = resp.AppendArrayHeader(out, 1)
		out = resp.AppendArrayHeader(out, 14)
		out = resp.AppendBulkString(out, "id")
		out = resp.AppendBulkString(out, id)
		out = resp.AppendBulkString(out, "port")
		out = resp.AppendInt(out, int64(port))
		out = resp.AppendBulkString(out, "ip")
		out = resp.AppendBulkString(out, ip)
		out = resp.AppendBulkString(out, "endpoint")
		out = resp.AppendBulkString(out, ip)
		out = resp.AppendBulkString(out, "role")
		out = resp.AppendBulkString(out, "master")
		out = resp.AppendBulkString(out, "replication-offset")
		out = resp.AppendInt(out, 0)
		out = resp.AppendBulkString(out, "health")
		return resp.AppendBulkString(out, "online")
	default: // nodes
		// ip:port@busport, without brackets for IPv6, as Redis writes it.
		p := strconv.Itoa(port)
		return resp.AppendBulkString(out, id+" "+ip+":"+p+"@"+p+
			" myself,master - 0 0 1 connected 0-"+strconv.Itoa(lastSlot)+"\n")
	}
}
