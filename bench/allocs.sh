#!/usr/bin/env bash
# allocs.sh: what asterd allocates per request under load, for any redis-benchmark workload: the
# garbage a request leaves is GC work, and GC cycles on the loop's core are in the tail latency
# (issue #20: 16 KiB SETs allocated ~900 bytes each until 39566a6, from a backend write buffer
# that grew past what is kept). The microbenchmarks check the request path at 0 allocs/op; this
# checks the whole daemon, backends, big values and connection counts included.
#
#   bench/allocs.sh [--asterd BIN] [--cluster] [--base-port P] -- BENCH-ARGS...
#
#   bench/allocs.sh -- -c 50 -n 100000 -t set -d 16384
#   bench/allocs.sh --cluster -- -c 50 -P 16 -n 500000 -t get
#
# It starts 4 redis-servers (ports P..P+3, default 7801; with --cluster a 3-master Redis
# Cluster) and asterd (this tree's, or --asterd BIN; `thread = 1`, [metrics] pprof = true) on
# P+10, writes every key with the run's value size, runs the workload once to warm up (new
# connections, grown buffers), then again between two allocation profiles
# (/debug/pprof/allocs?gc=1), and prints the bytes allocated per request and where (not
# counting what serving the profiles allocated). BENCH-ARGS are redis-benchmark's (give -n;
# -r 100000 -d 64 unless given). The connections of the measured run are new, so each costs
# its session (a few KiB): with many clients and few requests each, that is most of the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BASE=7801 CLUSTER="" ASTERD=""
while (($#)); do
  case $1 in
    --asterd) ASTERD=$2; shift 2 ;;
    --cluster) CLUSTER=1; shift ;;
    --base-port) BASE=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "allocs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "allocs.sh: give the redis-benchmark arguments after --" >&2; exit 2; }
bench_args allocs.sh "$@"
need allocs.sh redis-server redis-cli redis-benchmark curl

scratch
ASTERD=$(build_asterd "$ASTERD")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ -n $CLUSTER ]]; then
  start_cluster
  export CACHE_TYPE=redis_cluster
else
  start_servers
fi
PORT=$((BASE + 10)) METRICS=$((BASE + 12))
asterd_toml "$TMP/asterd.toml" allocs "$PORT" "$SERVERS"
sed -i 's/^\[metrics\]$/[metrics]\npprof = true/' "$TMP/asterd.toml"
"$ASTERD" --config "$TMP/asterd.toml" --log-level warn </dev/null >"$TMP/asterd.log" 2>&1 &
PIDS+=("$!")
wait_pong allocs.sh asterd "$PORT" "$!" "$TMP/asterd.log"

bench() { redis-benchmark -p "$PORT" -q -r 100000 -d 64 "$@" >/dev/null 2>&1; }
bench -n "$((KEYS > 100000 ? KEYS : 100000))" -r "$KEYS" -d "$SIZE" -P 16 -t set # every key
bench "$@" # warm-up
curl -fsS -o "$TMP/before.pb.gz" "http://127.0.0.1:$METRICS/debug/pprof/allocs?gc=1"
bench "$@"
curl -fsS -o "$TMP/after.pb.gz" "http://127.0.0.1:$METRICS/debug/pprof/allocs?gc=1"
# Not what serving the profiles themselves allocated.
top=$(go tool pprof -sample_index=alloc_space -ignore 'net/http|runtime/pprof|compress/' \
  -base "$TMP/before.pb.gz" -top "$TMP/after.pb.gz" 2>/dev/null)
total=$(awk '/ total$/ { for (i = 1; i <= NF; i++) if ($i == "of") { print $(i + 1); exit } }' <<<"$top")
total=${total:-0B}
bytes=$(awk -v t="$total" 'BEGIN {
  match(t, /^[0-9.]+/); n = substr(t, 1, RLENGTH) + 0; u = substr(t, RLENGTH + 1)
  m = (u == "kB") ? 1024 : (u == "MB") ? 1048576 : (u == "GB") ? 1073741824 : 1
  printf "%.0f", n * m }')
echo "asterd allocated $total over $N requests: $(awk -v b="$bytes" -v n="$N" 'BEGIN { printf "%.1f", b / n }') bytes per request"
echo "(/debug/pprof/allocs is sampled, one sample per 512 KiB on average: small totals are rough)"
grep -E '^ +[0-9.]+[kMG]?B' <<<"$top" | head -12 || true
