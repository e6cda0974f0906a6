#!/usr/bin/env bash
# cachesim.sh: asterd's instructions and simulated cache misses per request, under valgrind's
# cachegrind, for one redis-benchmark workload: deterministic where timings on a shared VM are
# not (issue #20). With thousands of clients or deep pipelines a request's time goes into cache
# misses on per-client state; this counts them.
#
#   bench/cachesim.sh [--asterd BIN] [--requests N] [--ll BYTES] [--base-port P] -- BENCH-ARGS...
#
#   bench/cachesim.sh -- -c 1000 -t get          # GET from 1,000 clients
#   bench/cachesim.sh -- -c 50 -P 16 -t get      # GET pipelined 16 deep from 50 clients
#
# It starts 4 redis-servers (ports P..P+3, default 7601) and asterd (P+10, `thread = 1`, slow log
# off) twice under cachegrind: both runs take a warm-up of 20000 requests (which also connects the
# clients), the second N more (default 100000); the difference, divided by N, is the cost of N
# requests in steady state. Simulated caches: L1d 32 KiB 8-way and a last level of --ll bytes
# (default 1 MiB, 16-way: about what a core's L2 holds, which is what a shared last level leaves
# a proxy on a busy machine). Prints the totals per request, then the 20 functions with the most
# last-level misses. redis-benchmark's keys: -r 100000, 64-byte values, all written first.
# Needs valgrind, redis-server, redis-cli, redis-benchmark, python3. Runs in about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ASTERD="" N=100000 LL=1048576 BASE=7601
while (($#)); do
  case $1 in
    --asterd) ASTERD=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    --ll) LL=$2; shift 2 ;;
    --base-port) BASE=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "cachesim.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "cachesim.sh: give the redis-benchmark arguments after --" >&2; exit 2; }
need cachesim.sh valgrind redis-server redis-cli redis-benchmark python3

scratch
ASTERD=$(build_asterd "$ASTERD")
ulimit -n 20000 2>/dev/null || true

start_servers
PORT=$((BASE + 10))
asterd_toml "$TMP/asterd.toml" sim "$PORT" "$SERVERS" "slowlog_log_slower_than = -1"

# run EXTRA: asterd under cachegrind, the warm-up, then EXTRA more requests; its profile in
# $TMP/cg.EXTRA once asterd has ended.
run() {
  local extra=$1 vp i
  shift
  GODEBUG=asyncpreemptoff=1 valgrind --tool=cachegrind --cache-sim=yes --D1=32768,8,64 \
    --LL="$LL,16,64" --cachegrind-out-file="$TMP/cg.$extra" \
    "$ASTERD" --config "$TMP/asterd.toml" --log-level warn >"$TMP/asterd.$extra.log" 2>&1 &
  vp=$!
  PIDS+=("$vp")
  for i in $(seq 120); do
    redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.5
  done
  # Both runs write every key (GETs hit) and warm up the same way, so that only the N differ.
  redis-benchmark -p "$PORT" -q -n 100000 -r 100000 -d 64 -P 16 -t set >/dev/null 2>&1
  redis-benchmark -p "$PORT" -q -n 20000 -r 100000 -d 64 "$@" >/dev/null 2>&1
  if ((extra > 0)); then
    redis-benchmark -p "$PORT" -q -n "$extra" -r 100000 -d 64 "$@" 2>/dev/null | tr '\r' '\n' | grep 'per second' | tail -n 1
  fi
  kill -INT "$vp"
  wait "$vp" 2>/dev/null || true
}
run 0 "$@"
run "$N" "$@"

python3 - "$TMP/cg.0" "$TMP/cg.$N" "$N" <<'PY'
import collections, sys

def load(path):
    events, fn, cost = None, None, collections.defaultdict(lambda: [0] * 9)
    for line in open(path):
        if line.startswith('events:'):
            events = line.split()[1:]
        elif line.startswith('fn='):
            fn = line[3:].strip()
        elif line[:1].isdigit() and fn:
            for i, v in enumerate(line.split()[1:]):
                cost[fn][i] += int(v)
    return events, cost

events, warm = load(sys.argv[1])
_, full = load(sys.argv[2])
n = int(sys.argv[3])
ix = {e: i for i, e in enumerate(events)}
per = {f: [(c[i] - warm.get(f, [0] * 9)[i]) / n for i in range(len(events))] for f, c in full.items()}
tot = [sum(v[i] for v in per.values()) for i in range(len(events))]
print('per request: ' + '  '.join('%s %.1f' % (e, t) for e, t in zip(events, tot)))
print('  (Ir instructions; D1mr/D1mw L1 data read/write misses; DLmr/DLmw last-level ones)')
miss = lambda v: v[ix['DLmr']] + v[ix['DLmw']]
for f, v in sorted(per.items(), key=lambda kv: -miss(kv[1]))[:20]:
    print('%7.0f Ir %6.2f D1mr %6.2f D1mw %6.2f DLmr %6.2f DLmw  %s' % (
        v[ix['Ir']], v[ix['D1mr']], v[ix['D1mw']], v[ix['DLmr']], v[ix['DLmw']], f[-90:]))
PY
