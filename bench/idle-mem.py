#!/usr/bin/env python3
"""idle-mem.py PORT PID [N]: memory per client connection of a proxy (issue #6 target: 10,000
idle connections cost at most 10 KiB each).

Opens N (default 10000) TCP connections to 127.0.0.1:PORT, waits, and prints the RSS growth of
process PID (from /proc/PID/status) per connection: idle, then after one PING on each. Needs an
open-files limit above N for this process (ulimit -n) and for the proxy."""
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for process {pid}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    before = rss_kib(pid)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    time.sleep(2)
    idle = rss_kib(pid)
    for s in socks:
        s.sendall(b"PING\r\n")
    for s in socks:
        s.recv(16)
    time.sleep(2)
    used = rss_kib(pid)
    print(f"before {before} KiB; {n} idle connections {idle} KiB ({(idle - before) / n:.2f} KiB each); "
          f"after one PING on each {used} KiB ({(used - before) / n:.2f} KiB each)")


main()
