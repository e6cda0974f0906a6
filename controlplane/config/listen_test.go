package config

import (
	"strings"
	"testing"
)

// listenCluster is a [[clusters]] table listening on addr (proto "" for tcp).
func listenCluster(name, proto, addr string) string {
	s := "[[clusters]]\nname = \"" + name + "\"\nlisten_addr = \"" + addr + "\"\n"
	if proto != "" {
		s += "listen_proto = \"" + proto + "\"\n"
	}
	return s + "cache_type = \"redis\"\nservers = [\"127.0.0.1:6379\"]\n"
}

// listenClashCases are files with one listen clash each and the exact problem --check must
// print for it (test/e2e runs some through asterd --check), or "" for files whose
// addresses can all be open at once.
func listenClashCases() []struct{ Name, File, Want string } {
	off := "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = \"\"\n"
	return []struct{ Name, File, Want string }{
		{"two clusters, one address", off + listenCluster("a", "", "127.0.0.1:7001") + listenCluster("b", "", "127.0.0.1:7001"),
			`t.toml:12: cluster "b": listen_addr: "127.0.0.1:7001" already used by clusters[0] "a"`},
		{"cluster on admin", "[metrics]\nlisten_addr = \"\"\n[admin]\nlisten_addr = \"127.0.0.1:7790\"\n" + listenCluster("a", "", "127.0.0.1:7790"),
			`t.toml:7: cluster "a": listen_addr: "127.0.0.1:7790" is also admin.listen_addr`},
		{"cluster on the default admin address", "[metrics]\nlisten_addr = \"\"\n" + listenCluster("a", "", DefaultAdminListenAddr),
			`t.toml:5: cluster "a": listen_addr: "` + DefaultAdminListenAddr + `" is also admin.listen_addr`},
		{"cluster on metrics", "[admin]\nlisten_addr = \"\"\n[metrics]\nlisten_addr = \"127.0.0.1:9121\"\n" + listenCluster("a", "", "127.0.0.1:9121"),
			`t.toml:7: cluster "a": listen_addr: "127.0.0.1:9121" is also metrics.listen_addr`},
		{"cluster on every address of the metrics port", "[admin]\nlisten_addr = \"\"\n[metrics]\nlisten_addr = \"127.0.0.1:9121\"\n" + listenCluster("a", "", "0.0.0.0:9121"),
			`t.toml:7: cluster "a": listen_addr: "0.0.0.0:9121" overlaps metrics.listen_addr "127.0.0.1:9121": a wildcard address takes its port on every address`},
		{"0.0.0.0 then 127.0.0.1", off + listenCluster("a", "", "0.0.0.0:7001") + listenCluster("b", "", "127.0.0.1:7001"),
			`t.toml:12: cluster "b": listen_addr: "127.0.0.1:7001" overlaps clusters[0] "a" "0.0.0.0:7001": a wildcard address takes its port on every address`},
		{"127.0.0.1 then 0.0.0.0", off + listenCluster("a", "", "127.0.0.1:7001") + listenCluster("b", "", "0.0.0.0:7001"),
			`t.toml:12: cluster "b": listen_addr: "0.0.0.0:7001" overlaps clusters[0] "a" "127.0.0.1:7001": a wildcard address takes its port on every address`},
		{"[::] takes IPv4 too", off + listenCluster("a", "", "[::]:7001") + listenCluster("b", "", "127.0.0.1:7001"),
			`t.toml:12: cluster "b": listen_addr: "127.0.0.1:7001" overlaps clusters[0] "a" "[::]:7001": a wildcard address takes its port on every address`},
		{":P takes IPv6 too", off + listenCluster("a", "", "[::1]:7001") + listenCluster("b", "", ":7001"),
			`t.toml:12: cluster "b": listen_addr: ":7001" overlaps clusters[0] "a" "[::1]:7001": a wildcard address takes its port on every address`},
		{"0.0.0.0 and [::] are both everything", off + listenCluster("a", "", "0.0.0.0:7001") + listenCluster("b", "", "[::]:7001"),
			`t.toml:12: cluster "b": listen_addr: "[::]:7001" overlaps clusters[0] "a" "0.0.0.0:7001": a wildcard address takes its port on every address`},
		{"localhost is 127.0.0.1", off + listenCluster("a", "", "127.0.0.1:7001") + listenCluster("b", "", "localhost:7001"),
			`t.toml:12: cluster "b": listen_addr: "localhost:7001" already used by clusters[0] "a"`},
		{"one unix path", off + listenCluster("a", "unix", "/tmp/aster.sock") + listenCluster("b", "unix", "/tmp/./aster.sock"),
			`t.toml:13: cluster "b": listen_addr: "/tmp/./aster.sock" already used by clusters[0] "a"`},
		{"metrics on admin's port, every address", "[admin]\nlisten_addr = \"127.0.0.1:9000\"\n[metrics]\nlisten_addr = \":9000\"\n" + listenCluster("a", "", "127.0.0.1:7001"),
			`t.toml:4: metrics.listen_addr: ":9000" overlaps admin.listen_addr "127.0.0.1:9000": a wildcard address takes its port on every address`},

		{"other ports", off + listenCluster("a", "", "0.0.0.0:7001") + listenCluster("b", "", "127.0.0.1:7002"), ""},
		{"other hosts", off + listenCluster("a", "", "127.0.0.1:7001") + listenCluster("b", "", "127.0.0.2:7001"), ""},
		{"0.0.0.0 leaves IPv6", off + listenCluster("a", "", "0.0.0.0:7001") + listenCluster("b", "", "[::1]:7001"), ""},
		{"unix and tcp", off + listenCluster("a", "unix", "127.0.0.1:7001") + listenCluster("b", "", "127.0.0.1:7001"), ""},
		{"other unix paths", off + listenCluster("a", "unix", "/tmp/a.sock") + listenCluster("b", "unix", "/tmp/b.sock"), ""},
	}
}

func TestListenClashes(t *testing.T) {
	for _, c := range listenClashCases() {
		t.Run(c.Name, func(t *testing.T) {
			_, err := Parse([]byte(c.File), "t.toml")
			switch {
			case c.Want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.Want != "" && (err == nil || err.Error() != c.Want):
				t.Fatalf("err = %v\nwant %s\nfile:\n%s", err, c.Want, numbered(c.File))
			}
		})
	}
}

func numbered(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.Repeat(" ", 2) + lines[i]
	}
	return strings.Join(lines, "\n")
}
