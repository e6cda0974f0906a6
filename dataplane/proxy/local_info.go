package proxy

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// INFO, answered by the proxy for its cluster (local.go dispatches it).

var processStart = time.Now()

// infoSections are INFO's sections in order; "default", "all" and "everything" (or no
// argument) ask for every one.
var infoSections = []string{"server", "clients", "stats", "proxy", "cluster", "keyspace"}

// info is the INFO reply for the sections asked (every one when none is): enough of Redis's
// for clients that parse them (cluster_enabled:1 matches the CLUSTER answers), and the
// cluster's own. keyspace says the Keyspace section was asked: it ends the text with its
// header only, and the nodes' counts go under it (infoKeyspace).
func (c *Cluster) info(sections [][]byte) (text string, keyspace bool) {
	want := make(map[string]bool, len(infoSections))
	for _, a := range sections {
		switch name := strings.ToLower(string(a)); name {
		case "default", "all", "everything":
			for _, s := range infoSections {
				want[s] = true
			}
		default:
			want[name] = true
		}
	}
	if len(sections) == 0 {
		for _, s := range infoSections {
			want[s] = true
		}
	}
	c.mu.Lock()
	clients := len(c.sessions)
	c.mu.Unlock()
	_, port := c.announced()
	var version uint64
	nodes := 0
	cacheType := "redis"
	if s := c.gen.Load().routes; s != nil {
		version = s.table.Version
		nodes = len(s.pools)
		cacheType = s.table.CacheType()
	}
	var b bytes.Buffer
	line := func(k, v string) { b.WriteString(k + ":" + v + "\r\n") }
	section := func(name, title string) bool {
		if !want[name] {
			return false
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + title + "\r\n")
		return true
	}
	if section("server", "Server") {
		line("redis_version", "7.0.0")
		line("redis_mode", "cluster")
		line("aster_version", c.env.Version)
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.Itoa(strconv.IntSize))
		line("go_version", runtime.Version())
		line("process_id", strconv.Itoa(os.Getpid()))
		line("run_id", c.nodeID())
		line("tcp_port", strconv.Itoa(port))
		up := int64(time.Since(processStart).Seconds())
		line("uptime_in_seconds", strconv.FormatInt(up, 10))
		line("uptime_in_days", strconv.FormatInt(up/86400, 10))
	}
	if section("clients", "Clients") {
		line("connected_clients", strconv.Itoa(clients))
		if n := c.clientLimit(); n > 0 {
			line("maxclients", strconv.Itoa(n))
		}
		// Backend connections held for single clients (blocking commands, transactions,
		// subscriptions; idle pooled ones too), counted in the cluster's descriptor share.
		line("dedicated_connections", strconv.FormatInt(c.dedHeld.Load(), 10))
	}
	if section("stats", "Stats") {
		// Every accepted connection makes a session with the next ID.
		line("total_connections_received", strconv.FormatUint(c.nextID.Load(), 10))
		line("total_commands_processed", strconv.FormatUint(c.commands.Load(), 10))
	}
	if section("proxy", "Proxy") {
		line("proxy", "aster")
		line("cluster", c.name)
		line("cache_type", cacheType)
		line("routing_table_version", strconv.FormatUint(version, 10))
		line("nodes", strconv.Itoa(nodes))
	}
	if section("cluster", "Cluster") {
		line("cluster_enabled", "1")
	}
	keyspace = section("keyspace", "Keyspace")
	return b.String(), keyspace
}
