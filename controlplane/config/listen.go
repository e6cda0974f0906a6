package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// endpoint is one address the configuration makes asterd listen on.
type endpoint struct {
	path    string // key path: "admin.listen_addr", "clusters[2].listen_addr"
	label   string // how another problem names it: `clusters[2] "name"`, "admin.listen_addr"
	cluster string // the cluster's name, "" for [admin] and [metrics]
	index   int    // the cluster's index, -1 for [admin] and [metrics]
	proto   string // "tcp" or "unix"
	addr    string // as written
	// tcp: the port, and the host normalised (an IP's canonical form, a name lowercased;
	// localhost is 127.0.0.1); any4 for 0.0.0.0, any for "", "::" (every address, v4 and v6).
	port     int
	host     string
	any4     bool
	anyAddr  bool
	unixPath string // unix: the cleaned path
}

// newEndpoint reads addr; ok is false when it is no address (checked and reported elsewhere).
func newEndpoint(proto, addr string) (endpoint, bool) {
	e := endpoint{proto: proto, addr: addr}
	if proto == "unix" {
		if strings.TrimSpace(addr) == "" {
			return e, false
		}
		e.unixPath = filepath.Clean(addr)
		return e, true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return e, false
	}
	if e.port, err = strconv.Atoi(port); err != nil || e.port < 1 {
		return e, false
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.Equal(net.IPv6unspecified)):
		e.anyAddr = true // Go listens on both families there
	case ip != nil && ip.Equal(net.IPv4zero):
		e.any4 = true
	case ip != nil:
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		e.host = ip.String()
	case strings.EqualFold(host, "localhost"):
		e.host = "127.0.0.1"
	default:
		e.host = strings.ToLower(host)
	}
	return e, true
}

// ipv6 reports whether e is a specific IPv6 address (which 0.0.0.0 leaves free).
func (e endpoint) ipv6() bool {
	ip := net.ParseIP(e.host)
	return ip != nil && ip.To4() == nil
}

// clash says how a and b cannot both listen: "same" for one address, "overlap" when a
// wildcard address of one takes the other's port, "" when they can.
func clash(a, b endpoint) string {
	if a.proto != b.proto {
		return ""
	}
	if a.proto == "unix" {
		if a.unixPath == b.unixPath {
			return "same"
		}
		return ""
	}
	if a.port != b.port {
		return ""
	}
	switch {
	case a.addr == b.addr || (a.host != "" && a.host == b.host) || (a.any4 && b.any4) || (a.anyAddr && b.anyAddr):
		return "same"
	case a.anyAddr || b.anyAddr:
		return "overlap"
	case a.any4 && !b.ipv6(), b.any4 && !a.ipv6():
		return "overlap"
	}
	return ""
}

// listenClashes refuses every pair of listen addresses that cannot both be open: two clusters
// on one address or one socket path, a cluster on [admin]'s or [metrics]' address, and a
// wildcard address (0.0.0.0:P, [::]:P, :P) next to another address of its port. Each problem
// is reported on the line of the later of the two.
func (p *parser) listenClashes(cfg *Config) {
	var eps []endpoint
	for _, top := range []struct{ name, addr string }{{"admin", cfg.Admin.ListenAddr}, {"metrics", cfg.Metrics.ListenAddr}} {
		if top.addr == "" {
			continue
		}
		if e, ok := newEndpoint("tcp", top.addr); ok {
			e.path, e.label, e.index = top.name+".listen_addr", top.name+".listen_addr", -1
			eps = append(eps, e)
		}
	}
	for i, c := range cfg.Clusters {
		if c.ListenAddr == "" {
			continue
		}
		if e, ok := newEndpoint(c.ListenProto, c.ListenAddr); ok {
			e.path = indexPath("clusters", i) + ".listen_addr"
			e.label = fmt.Sprintf("clusters[%d] %q", i, c.Name)
			e.cluster, e.index = c.Name, i
			eps = append(eps, e)
		}
	}
	for j, b := range eps {
		for _, a := range eps[:j] {
			how := clash(a, b)
			if how == "" {
				continue
			}
			var msg string
			switch {
			case how == "same" && a.index >= 0:
				msg = fmt.Sprintf("%q already used by %s", b.addr, a.label)
			case how == "same":
				msg = fmt.Sprintf("%q is also %s", b.addr, a.label)
			default:
				msg = fmt.Sprintf("%q overlaps %s %q: a wildcard address takes its port on every address", b.addr, a.label, a.addr)
			}
			key := "listen_addr"
			if b.index < 0 {
				key = b.path
			}
			p.add(&Error{Line: lineOf(p.lines, b.path), Cluster: b.cluster, Index: b.index, Key: key, Msg: msg})
			break // one problem per address is enough to fix it
		}
	}
}
