#!/usr/bin/env bash
# pair.sh: two proxies measured at the same moment, for CPU per request: a steady A/B where
# one-after-the-other runs on a shared VM are not (issue #20: this machine's speed drifts by a
# third within minutes, more than most changes move).
#
#   bench/pair.sh [--a BIN] [--b BIN | --predixy BIN] [--rounds N] [--base-port P] -- BENCH-ARGS...
#
#   bench/pair.sh --a /tmp/asterd-old --b /tmp/asterd-new -- -c 1000 -n 300000 -t get
#   bench/pair.sh --predixy /tmp/predixy -- -c 10000 -n 300000 -t get     # A: asterd of this tree
#
# It starts 4 redis-servers (ports P..P+3, default 7701), A on P+10 and B on P+20 (asterd
# `thread = 1` over the 4 servers, ketama fnv1a_64; or predixy, WorkerThreads 1, crc16 modula),
# everything but the clients on CPU 1, writes every key, then each round runs two identical
# redis-benchmarks at once on CPU 0, one at A and one at B, and reads A's and B's CPU time
# (user + system, /proc) over their benchmark. Both proxies share CPU 1 and the servers at the
# same moment, so whatever the machine does meanwhile falls on both: B/A, their CPU per
# request, is the figure (throughput is not: they compete for the core). Prints each round and
# the median B/A. BENCH-ARGS are redis-benchmark's (give -n; -r 100000 -d 64 are added).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

A="" B="" PREDIXY="" ROUNDS=3 BASE=7701
while (($#)); do
  case $1 in
    --a) A=$2; shift 2 ;;
    --b) B=$2; shift 2 ;;
    --predixy) PREDIXY=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --base-port) BASE=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "pair.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "pair.sh: give the redis-benchmark arguments after --" >&2; exit 2; }
[[ -n $B || -n $PREDIXY ]] || { echo "pair.sh: give --b BIN or --predixy BIN" >&2; exit 2; }
[[ -z $B || -z $PREDIXY ]] || { echo "pair.sh: --b and --predixy are the same slot" >&2; exit 2; }
N=$(printf '%s ' "$@" | grep -o -- '-n [0-9]*' | awk '{print $2}')
[[ -n $N ]] || { echo "pair.sh: give the request count (-n N) among the benchmark arguments" >&2; exit 2; }
for t in redis-server redis-cli redis-benchmark taskset; do
  command -v "$t" >/dev/null || { echo "pair.sh: $t not found" >&2; exit 1; }
done

scratch
if [[ -z $A ]]; then
  A=$TMP/asterd
  go build -o "$A" ./cmd/asterd
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_servers taskset -c 1
groups=""
for p in "${PORTS[@]}"; do
  groups+="    Group g$((p - BASE + 1)) {
        + 127.0.0.1:$p
    }
"
done


# start NAME KIND BIN PORT: a proxy (KIND asterd or predixy) on CPU 1; its pid in PID_NAME.
start() {
  local name=$1 kind=$2 bin=$3 port=$4 pid i
  if [[ $kind == predixy ]]; then
    predixy_conf "$TMP/predixy.conf" predixy "$port" "StandaloneServerPool {
    Hash crc16
    HashTag \"{}\"
    Distribution modula
    MasterReadPriority 100
    RefreshMethod fixed
    ServerTimeout 1
$groups}"
    taskset -c 1 "$bin" "$TMP/predixy.conf" </dev/null >"$TMP/$name.log" 2>&1 &
  else
    asterd_toml "$TMP/asterd.$port.toml" pair "$port" "$SERVERS"
    taskset -c 1 "$bin" --config "$TMP/asterd.$port.toml" --log-level warn </dev/null >"$TMP/$name.log" 2>&1 &
  fi
  pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" %s "$pid"
  for i in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "pair.sh: $name did not answer on $port:" >&2
  cat "$TMP/$name.log" >&2
  exit 1
}
start a asterd "$A" $((BASE + 10))
if [[ -n $PREDIXY ]]; then
  start b predixy "$PREDIXY" $((BASE + 20))
  BNAME=predixy
else
  start b asterd "$B" $((BASE + 20))
  BNAME=b
fi
redis-benchmark -p $((BASE + 10)) -q -n 100000 -r 100000 -d 64 -P 16 -t set >/dev/null 2>&1

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks, user + system
ticks=$(getconf CLK_TCK)
ratios=()
echo "round  A us/req  $BNAME us/req  $BNAME/A   (A: $A; -n $N per proxy, both at once)"
for r in $(seq "$ROUNDS"); do
  a0=$(cpu "$PID_a") b0=$(cpu "$PID_b")
  taskset -c 0 redis-benchmark -p $((BASE + 10)) -q -r 100000 -d 64 "$@" >/dev/null 2>&1 &
  ja=$!
  taskset -c 0 redis-benchmark -p $((BASE + 20)) -q -r 100000 -d 64 "$@" >/dev/null 2>&1 &
  jb=$!
  wait "$ja"
  a1=$(cpu "$PID_a")
  wait "$jb"
  b1=$(cpu "$PID_b")
  line=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v n="$N" -v t="$ticks" -v r="$r" 'BEGIN {
    ua = a * 1e6 / t / n; ub = b * 1e6 / t / n
    printf "%5d  %8.2f  %8.2f  %8.3f\n", r, ua, ub, (ua > 0 ? ub / ua : 0) }')
  echo "$line"
  ratios+=("$(awk '{print $4}' <<<"$line")")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %s/A CPU per request: %.3f (%d rounds, range %s-%s)\n", b, m, NR, v[1], v[NR] }' b="$BNAME"
