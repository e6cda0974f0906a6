#!/usr/bin/env bash
# run.sh: runs Redis's own Tcl test suite (the one of the installed redis-server, from Debian's
# source package: see fetch.sh) against redis-server directly and through asterd, with the
# same flags, and prints passed / failed / skipped per test file and layout.
#
#   test/redis-suite/run.sh [--layouts direct,one,cluster-direct,cluster] [--files "unit/x unit/y"]
#
# Layouts: direct (one redis-server), one (asterd in front of it), cluster-direct (one
# redis-server, with --cluster-mode: the baseline of the next), cluster (asterd in front of a
# Redis Cluster, with --cluster-mode). The cluster has CLUSTER_MASTERS masters (default 1, one
# node owning every slot, as Redis's own CI runs the suite with --cluster-mode: its scripts
# touch keys they do not declare, which a Redis Cluster of several masters refuses). Every layout runs with --singledb
# --ignore-encoding --ignore-digest, the needs:* tags skipped (a proxy has no DEBUG, replication,
# ...), each file in a runtest of its own so that one file's exception does not end the others.
# Through asterd the suite's CONFIG and INFO-field reads go to the server(s) behind it:
# aster_helper.tcl, which the harness has the suite's test_helper.tcl source. The tests of
# skip-proxy.txt are not run through asterd (they would stop the rest of their file) and are
# counted as failed.
#
# Environment: REDIS_SUITE_DIR (default ${TMPDIR:-/tmp}/aster-redis-suite) holds the download,
# the unpacked suite, asterd, the servers and the logs; FILE_TIMEOUT (default 900) bounds one
# file in seconds; SUITE_BASEPORT (default 21111) moves the suite's own ports, so that two runs
# can go side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${REDIS_SUITE_DIR:-${TMPDIR:-/tmp}/aster-redis-suite}
layouts=direct,one,cluster-direct,cluster
files=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --layouts) layouts=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    *) echo "usage: $0 [--layouts direct,one,cluster-direct,cluster] [--files \"unit/a unit/b\"]" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
work=$(cd "$work" && pwd)

command -v tclsh >/dev/null || { echo "tclsh missing: apt-get install tcl" >&2; exit 1; }
suite=$("$here/fetch.sh" "$work" | tail -1)
# Have the suite load the helper (a copy of the suite, patched once; nothing is vendored).
if ! grep -q aster_helper "$suite/tests/test_helper.tcl"; then
  awk -v h="$here/aster_helper.tcl" '/^if \{\$::client\} \{/ && !done {
      print "if {[info exists ::env(ASTER_BACKENDS)]} { source {" h "} }"; done=1 } { print }' \
    "$suite/tests/test_helper.tcl" >"$suite/tests/test_helper.tcl.new"
  mv "$suite/tests/test_helper.tcl.new" "$suite/tests/test_helper.tcl"
fi
if [[ -z $files ]]; then
  # Every unit of the suite's own list that runs against an external server; integration/*
  # start servers of their own.
  files=$(awk '/^set ::all_tests \{/{on=1; next} on && /^\}/{exit} on {print $1}' "$suite/tests/test_helper.tcl" | grep '^unit/')
fi

(cd "$repo" && go build -o "$work/asterd" ./cmd/asterd)

# The servers and asterds this run started, by pid (they are started in command
# substitutions, whose variables do not reach this shell): stopped on exit.
pidfile="$work/pids"
: >"$pidfile"
cleanup() { while read -r p; do kill "$p" 2>/dev/null || true; done <"$pidfile"; wait 2>/dev/null || true; }
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# clusterport: a free port P with P+10000 free too (a cluster node's bus), so at most 55535.
clusterport() {
  python3 -c '
import random, socket
for _ in range(1000):
    p = random.randint(20000, 55535)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
    except OSError:
        continue
    print(p); break'
}
waitport() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 not answering" >&2; return 1; }

# server DIR [args]: starts a redis-server on a free port, prints the port.
server() {
  local dir=$1; shift
  local port
  if [[ " $* " == *" --cluster-enabled yes "* ]]; then port=$(clusterport); else port=$(freeport); fi
  rm -rf "$dir" && mkdir -p "$dir" # a fresh one: a cluster node will not share its nodes.conf
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no "$@" >/dev/null 2>&1 &
  echo $! >>"$pidfile"
  waitport "$port"
  echo "$port"
}

# asterd NAME CACHE_TYPE SERVERS...: starts asterd, prints its port.
asterd() {
  local name=$1 type=$2; shift 2
  local port admin; port=$(freeport); admin=$(freeport)
  local list=""
  for s in "$@"; do list+="\"$s\", "; done
  cat >"$work/$name.toml" <<TOML
[[clusters]]
name = "suite"
listen_addr = "127.0.0.1:$port"
cache_type = "$type"
servers = [${list%, }]
read_timeout = 10000
write_timeout = 10000
dial_timeout = 1000
[admin]
listen_addr = "127.0.0.1:$admin"
[metrics]
listen_addr = ""
TOML
  "$work/asterd" --config "$work/$name.toml" --log-level warn >/dev/null 2>"$work/$name.log" &
  echo $! >>"$pidfile"
  waitport "$port"
  echo "$port"
}

# runsuite LAYOUT PORT BACKENDS EXTRA...: every file against 127.0.0.1:PORT; per-file counts.
results="$work/results"
mkdir -p "$results"
runsuite() {
  local layout=$1 port=$2 backends=$3; shift 3
  local out="$results/$layout"
  rm -rf "$out" && mkdir -p "$out"
  # Through asterd, the tests of skip-proxy.txt (and in front of a Redis Cluster those of
  # skip-cluster.txt) are not run: see the note on them below.
  local skips="$work/skip-$layout.txt"
  cat "$here/skip-proxy.txt" >"$skips"
  [[ $layout == cluster ]] && cat "$here/skip-cluster.txt" >>"$skips"
  local f
  for f in $files; do
    # A file that failed through asterd may leave a backend running an endless script, or with
    # a setting its failed test did not restore (maxmemory 1): undo both, so that the next file
    # starts on a server as the suite expects it.
    local b
    for b in ${backends//,/ }; do
      for _ in $(seq 50); do
        redis-cli -h "${b%:*}" -p "${b##*:}" script kill >/dev/null 2>&1 || true
        redis-cli -h "${b%:*}" -p "${b##*:}" function kill >/dev/null 2>&1 || true
        [[ $(redis-cli -h "${b%:*}" -p "${b##*:}" ping 2>&1) == PONG ]] && break
        sleep 0.2
      done
      redis-cli -h "${b%:*}" -p "${b##*:}" config set maxmemory 0 lua-time-limit 5000 >/dev/null 2>&1 || true
    done
    local log="$out/${f//\//_}.log"
    (cd "$suite" && env ${backends:+ASTER_BACKENDS=$backends} timeout "${FILE_TIMEOUT:-900}" ./runtest --host 127.0.0.1 --port "$port" \
      --singledb --ignore-encoding --ignore-digest --timeout 120 --baseport "${SUITE_BASEPORT:-21111}" \
      --tags "-needs:repl -needs:debug -needs:pfdebug -needs:config-maxmemory -needs:config-resetstat -needs:latency -needs:local-process -needs:reset -needs:save" \
      ${backends:+--skipfile "$skips"} "$@" --single "$f" >"$log" 2>&1) || true
    sed -i 's/\x1b\[[0-9;]*m//g' "$log" # the suite colours its output
    local ok err skip exc listed
    ok=$(grep -c '^\[ok\]' "$log" || true)
    # The skip lists' tests fail through asterd (see docs/compatibility.md) and leave the rest
    # of their file unable to run (a hang, a script left running, a client left in raw mode,
    # an error outside an assertion): skipped to let the rest run, and counted as failed.
    listed=0
    [[ -n $backends ]] && listed=$(sed 's/^/[skip]: /' "$skips" | grep -cFx -f - "$log" || true)
    err=$(grep -c '^\[err\]' "$log" || true)
    skip=$(grep -cE '^\[(skip|ignore)\]' "$log" || true)
    exc=$(grep -cE '^\[[0-9]+/[0-9]+ done\]' "$log" || true) # a file that ran to its end says so
    printf '%-16s %-32s passed %4d failed %4d skipped %4d%s\n' "$layout" "$f" "$ok" "$((err + listed))" "$((skip - listed))" \
      "$([[ $exc -eq 0 ]] && echo '  (stopped early: exception or timeout)')" | tee -a "$results/summary.txt"
  done
}

: >"$results/summary.txt"
IFS=, read -ra want <<<"$layouts"
for layout in "${want[@]}"; do
  case $layout in
    direct)
      p=$(server "$work/srv-direct")
      runsuite direct "$p" "" ;;
    cluster-direct)
      p=$(server "$work/srv-cdirect")
      runsuite cluster-direct "$p" "" --cluster-mode ;;
    one)
      b=$(server "$work/srv-one")
      p=$(asterd one redis "127.0.0.1:$b:1 r1")
      runsuite one "$p" "127.0.0.1:$b" ;;
    cluster)
      ports=()
      for i in $(seq "${CLUSTER_MASTERS:-1}"); do
        ports+=("$(server "$work/srv-cluster$i" --cluster-enabled yes --cluster-config-file "$work/srv-cluster$i/nodes.conf" --cluster-node-timeout 5000)")
      done
      addrs=(); for q in "${ports[@]}"; do addrs+=("127.0.0.1:$q"); done
      if [[ ${#ports[@]} == 1 ]]; then
        redis-cli -p "${ports[0]}" cluster addslotsrange 0 16383 >"$work/cluster-create.log" 2>&1
      else
        redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$work/cluster-create.log" 2>&1
      fi
      for _ in $(seq 100); do
        [[ $(redis-cli -p "${ports[0]}" cluster info | grep -c 'cluster_state:ok') == 1 ]] && break; sleep 0.2
      done
      p=$(asterd cluster redis_cluster "${addrs[@]}")
      for _ in $(seq 100); do redis-cli -p "$p" set probe 1 >/dev/null 2>&1 && break; sleep 0.1; done
      runsuite cluster "$p" "$(IFS=,; echo "${addrs[*]}")" --cluster-mode ;;
    *) echo "unknown layout $layout" >&2; exit 2 ;;
  esac
done

echo
echo "== totals per layout"
awk '{l=$1; p[l]+=$4; f[l]+=$6; s[l]+=$8} END {for (l in p) printf "%-16s passed %5d failed %5d skipped %5d\n", l, p[l], f[l], s[l]}' "$results/summary.txt" | sort
echo "logs: $results"
