#!/usr/bin/env bash
# pair.sh: two proxies measured at the same moment, for CPU per request: a steady A/B where
# one-after-the-other runs on a shared VM are not (issue #20: this machine's speed drifts by a
# third within minutes, more than most changes move).
#
#   bench/pair.sh [--a BIN] [--b BIN | --predixy BIN] [--own-servers] [--cluster] [--mix]
#                 [--rounds N] [--base-port P] -- BENCH-ARGS...
#
#   bench/pair.sh --a /tmp/asterd-old --b /tmp/asterd-new -- -c 1000 -n 300000 -t get
#   bench/pair.sh --predixy /tmp/predixy -- -c 10000 -n 300000 -t get     # A: asterd of this tree
#   bench/pair.sh --own-servers --predixy /tmp/predixy -- -c 50 -P 16 -n 100000 -t get -d 16384 -r 1000
#   bench/pair.sh --cluster --mix --predixy /tmp/predixy -- -c 50 -P 16 -n 1000000   # 80/20 GET/SET
#
# It starts 4 redis-servers (ports P..P+3, default 7701), A on P+10 and B on P+20 (asterd
# `thread = 1` over the 4 servers, ketama fnv1a_64; or predixy, WorkerThreads 1, crc16 modula),
# everything but the clients on CPU 1, writes every key, then each round runs two identical
# redis-benchmarks at once on CPU 0, one at A and one at B, and reads A's and B's CPU time
# (user + system, /proc) over their benchmark. Both proxies share CPU 1 and the servers at the
# same moment, so whatever the machine does meanwhile falls on both: B/A, their CPU per
# request, is the figure (throughput is not: they compete for the core). Prints each round and
# the median B/A. BENCH-ARGS are redis-benchmark's (give -n; -r 100000 -d 64 unless given).
#
# --own-servers gives each proxy four servers of its own (A: P..P+3, B: P+4..P+7, all on CPU 1),
# for what a proxy makes the servers spend (how it batches their requests): it prints the
# servers' CPU per request beside each proxy's, and B/A of the sum, the core's CPU per request,
# which decides throughput where proxy and servers share cores (as in bench/peer.sh).
#
# --cluster: a Redis Cluster of 3 masters (P..P+2; with --own-servers B's is P+4..P+6) instead of
# the 4 servers; asterd in cluster mode (cache_type = "redis_cluster"), predixy with a
# ClusterServerPool. --mix: bench/mixload drives the proxies instead of redis-benchmark (the mixed
# pipeline, 80% GET / 20% SET unless -get says otherwise; BENCH-ARGS are mixload's: -c -n -P -r -d
# -get).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

A="" B="" PREDIXY="" ROUNDS=3 BASE=7701 OWN="" CLUSTER="" MIX=""
while (($#)); do
  case $1 in
    --a) A=$2; shift 2 ;;
    --b) B=$2; shift 2 ;;
    --predixy) PREDIXY=$2; shift 2 ;;
    --own-servers) OWN=1; shift ;;
    --cluster) CLUSTER=1; shift ;;
    --mix) MIX=1; shift ;;
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
bench_args pair.sh "$@"
need pair.sh redis-server redis-cli redis-benchmark taskset

scratch
A=$(build_asterd "$A")
if [[ -n $MIX ]]; then
  MIXLOAD=$TMP/mixload
  go build -o "$MIXLOAD" ./bench/mixload
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

up_servers=start_servers
if [[ -n $CLUSTER ]]; then
  up_servers=start_cluster
  export CACHE_TYPE=redis_cluster
fi
$up_servers taskset -c 1
SERVERS_A=$SERVERS PORTS_A=("${PORTS[@]}")
if [[ -n $OWN ]]; then
  FIRST=$((BASE + 4)) $up_servers taskset -c 1
fi
SERVERS_B=$SERVERS PORTS_B=("${PORTS[@]}")
pool=$(predixy_pool "$([[ -n $CLUSTER ]] && echo cluster || echo standalone)" "${PORTS_B[@]}")

# start NAME KIND BIN PORT SERVERS: a proxy (KIND asterd or predixy; predixy over pool) on
# CPU 1; its pid in PID_NAME.
start() {
  local name=$1 kind=$2 bin=$3 port=$4 servers=$5 pid
  if [[ $kind == predixy ]]; then
    predixy_conf "$TMP/predixy.conf" predixy "$port" "$pool"
    taskset -c 1 "$bin" "$TMP/predixy.conf" </dev/null >"$TMP/$name.log" 2>&1 &
  else
    asterd_toml "$TMP/asterd.$port.toml" pair "$port" "$servers"
    taskset -c 1 "$bin" --config "$TMP/asterd.$port.toml" --log-level warn </dev/null >"$TMP/$name.log" 2>&1 &
  fi
  pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" %s "$pid"
  wait_pong pair.sh "$name" "$port" "$pid" "$TMP/$name.log"
}
start a asterd "$A" $((BASE + 10)) "$SERVERS_A"
if [[ -n $PREDIXY ]]; then
  start b predixy "$PREDIXY" $((BASE + 20)) "$SERVERS_B"
  BNAME=predixy
else
  start b asterd "$B" $((BASE + 20)) "$SERVERS_B"
  BNAME=b
fi
# Every key, with the run's value size, so that GETs hit.
for port in $((BASE + 10)) ${OWN:+$((BASE + 20))}; do
  redis-benchmark -p "$port" -q -n "$((KEYS > 100000 ? KEYS : 100000))" -r "$KEYS" -d "$SIZE" -P 16 -t set >/dev/null 2>&1
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks, user + system
# servers_cpu PORT...: the clock ticks of the redis-servers on PORTs.
servers_cpu() {
  local p sum=0
  for p in "$@"; do
    sum=$((sum + $(cpu "$(pgrep -f "redis-server 127.0.0.1:$p\b" | head -1)")))
  done
  echo "$sum"
}
median() {
  sort -n | awk '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f (%d rounds, range %s-%s)", m, NR, v[1], v[NR] }'
}
# drive PORT BENCH-ARGS...: one round's load on a proxy, from CPU 0.
drive() {
  local port=$1
  shift
  if [[ -n $MIX ]]; then
    GOMAXPROCS=1 taskset -c 0 "$MIXLOAD" -addr "127.0.0.1:$port" "$@" >/dev/null 2>"$TMP/mix.$port.err" ||
      { echo "pair.sh: mixload on $port failed:" >&2; cat "$TMP/mix.$port.err" >&2; return 1; }
  else
    taskset -c 0 redis-benchmark -p "$port" -q -r 100000 -d 64 "$@" >/dev/null 2>&1
  fi
}
ticks=$(getconf CLK_TCK)
ratios=() totals=()
if [[ -n $OWN ]]; then
  echo "round  A us/req  A-servers  $BNAME us/req  $BNAME-servers  $BNAME/A  $BNAME/A with servers   (A: $A; -n $N per proxy, both at once)"
else
  echo "round  A us/req  $BNAME us/req  $BNAME/A   (A: $A; -n $N per proxy, both at once)"
fi
for r in $(seq "$ROUNDS"); do
  a0=$(cpu "$PID_a") b0=$(cpu "$PID_b")
  sa0=0 sb0=0 sa1=0 sb1=0
  [[ -z $OWN ]] || { sa0=$(servers_cpu "${PORTS_A[@]}"); sb0=$(servers_cpu "${PORTS_B[@]}"); }
  drive $((BASE + 10)) "$@" &
  ja=$!
  drive $((BASE + 20)) "$@" &
  jb=$!
  wait "$ja"
  a1=$(cpu "$PID_a")
  [[ -z $OWN ]] || sa1=$(servers_cpu "${PORTS_A[@]}")
  wait "$jb"
  b1=$(cpu "$PID_b")
  [[ -z $OWN ]] || sb1=$(servers_cpu "${PORTS_B[@]}")
  line=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v sa=$((sa1 - sa0)) -v sb=$((sb1 - sb0)) \
    -v n="$N" -v t="$ticks" -v r="$r" -v own="$OWN" 'BEGIN {
    ua = a * 1e6 / t / n; ub = b * 1e6 / t / n; usa = sa * 1e6 / t / n; usb = sb * 1e6 / t / n
    if (own) printf "%5d  %8.2f  %9.2f  %8.2f  %9.2f  %8.3f  %8.3f\n", r, ua, usa, ub, usb,
      (ua > 0 ? ub / ua : 0), (ua + usa > 0 ? (ub + usb) / (ua + usa) : 0)
    else printf "%5d  %8.2f  %8.2f  %8.3f\n", r, ua, ub, (ua > 0 ? ub / ua : 0) }')
  echo "$line"
  if [[ -n $OWN ]]; then
    ratios+=("$(awk '{print $6}' <<<"$line")") totals+=("$(awk '{print $7}' <<<"$line")")
  else
    ratios+=("$(awk '{print $4}' <<<"$line")")
  fi
done
echo "median $BNAME/A CPU per request: $(printf '%s\n' "${ratios[@]}" | median)"
if [[ -n $OWN ]]; then
  echo "median $BNAME/A CPU per request with its servers: $(printf '%s\n' "${totals[@]}" | median)"
fi
