#!/usr/bin/env bash
# bench/peer.sh: Aster's peer benchmark. One run measures, on the same backends and with the same
# client, direct Redis (the ceiling), twemproxy (the yardstick, issue #6), predixy (the stronger
# peer, issue #20; with --predixy) and asterd.
#
# Usage: bench/peer.sh [--quick] [--rounds N] [--out FILE] [options]
#
#   --quick          small run (~2 min): 3 rounds, base 40000 requests
#   --rounds N       rounds per workload (default 5; the figure is the median over rounds)
#   --requests N     base request count (default 200000; 40000 with --quick), see "Workloads"
#   --out FILE       summary CSV (default bench/out/peer.csv); per-run rows go to FILE.raw.csv
#   --cluster        also benchmark cluster mode: a 3-master Redis Cluster, driven directly with
#                    `redis-benchmark --cluster`, and asterd (cache_type = "redis_cluster") over it
#   --hot            also the hot-key workload (issue #21): GETs over a 1,000-key hot set, and a
#                    fourth target, asterd with its client cache on (acache: client_cache enabled,
#                    the same ring over the same backends)
#   --sentinel       also benchmark Sentinel mode: one sentinel watching the four backends as groups
#                    g1..g4 (masters, no replicas), and asterd (cache_type = "redis_sentinel",
#                    aliases r1..r4: the same backends and key placement as asterd standalone, the
#                    same data path), reported as asentinel and asentinel/asterd
#   --predixy BIN    also benchmark predixy (C++, WorkerThreads 1; build it with
#                    ../shared/bench/peers/build-predixy.sh or from github joyieldInc/predixy):
#                    over the same 4 backends (StandaloneServerPool, crc16 modula: its own key
#                    placement) as "predixy", and with --cluster over the cluster as "pcluster"
#   --users          also the workloads users run (issue #20): GET P1 from 1,000 and 10,000
#                    clients (C1K, C10K; redis-benchmark, one process each, ulimit -n raised to
#                    the hard limit), a new connection per command (CONN: GET P1, 50 clients that
#                    each connect, send one GET and close, as PHP and other short-lived clients
#                    do; redis-benchmark -k 0; not on cdirect), 16 KiB values (SET16K P1,
#                    GET16K P16, over a 1,000-key set)
#                    and a mixed pipeline (MIX P16: 80% GET / 20% SET, 50 clients, by
#                    bench/mixload, which redis-benchmark cannot do; not on cdirect); then the
#                    memory per idle client of each proxy (bench/idle-mem.py, --idle N)
#   --idle N         idle connections for the memory figure of --users (default 10000)
#   --asterd BIN     use this asterd binary instead of building ./cmd/asterd
#   --thread N       asterd's `thread` (default 1)
#   --pin split|none split (default): redis-benchmark on CPU 0, every server on CPUs 1..n-1
#   --client-cpus L, --proxy-cpus L, --server-cpus L
#                    taskset CPU lists for redis-benchmark, the proxies (twemproxy, asterd) and
#                    the redis-servers, overriding --pin for each one given. On a machine with
#                    cores to spare, e.g. 8: --client-cpus 0-1 --proxy-cpus 2-3 --server-cpus 4-7,
#                    with --thread 2 (and 1) to show thread scaling, and --cluster to compare the
#                    modes without the servers taking the proxy's CPU (docs/benchmarks.md)
#   --base-port P    first port (default 7301): backends P..P+3, twemproxy P+9 (stats P+10),
#                    predixy P+14, pcluster P+44,
#                    asterd P+19 (admin P+20, metrics P+21), cluster nodes P+30..P+32,
#                    asterd-cluster P+39 (admin P+40, metrics P+41), acache P+24 (admin P+25,
#                    metrics P+26), sentinel P+50, asterd-sentinel P+59 (admin P+60, metrics P+61)
#   --max-other PCT  rerun a run (at most twice; once with --quick) when processes not started here used more than
#                    PCT% of the machine's CPU during it (default 15)
#   --keep           keep the scratch directory (configs, logs)
#
# Workloads (issue #6): SET, GET and MGET of 10 random keys, each without pipelining (P1) and with
# -P 16; 50 clients, 64-byte values, keys key:NNNNNNNNNNNN from a 100000-key space (-r). Requests
# per run: N for SET/GET P1, 5N for SET/GET P16, N/2 for MGET10 P1, 2N for MGET10 P16. Before
# measuring, every key is written through each target so that GETs hit. Within a workload the
# rounds alternate the targets (the order rotates by one each round, asterd and predixy run one
# right after the other, each first in every other round) so that slow drifts of the machine hit
# every target alike; rps, p50 and p99 are the medians over rounds, ratios are
# ratios of medians and the bracket is the min-max of the per-round ratios (the noise). A second
# table gives each proxy's own CPU time per request (from /proc/PID/stat around each run): its
# cost apart from the backends', which share the server CPUs; a third gives the backends' CPU
# time per request for each target (the redis-servers it drives), which shows what the servers
# themselves cost in cluster mode; a fourth the kernel's part of each proxy's CPU time (stime),
# the floor of system calls and loopback TCP that its own code cannot go below.
#
# Hot keys (--hot): HOTGET is GET over keys key:000000000000..key:000000000999 (-r 1000), P1 and
# -P 16, N and 5N requests, on every target (acache runs this workload only). redis-benchmark runs
# one command per run, so the hot set is read, not written during the run; how the cache stays
# true under writes is what the tests show (docs/client-cache.md). acache's first GET of each
# key goes to the servers; the run's other GETs of it are hits.
#
# "direct" is one of the four backends, driven alone: what a single redis-server does on the
# server core(s). twemproxy: ketama + fnv1a_64, servers r1..r4, server_connections 1, preconnect.
# asterd: the same ring (same aliases r1..r4, so the same key placement), thread = 1.
#
# Noise: for each run the CPU time the whole machine spent (/proc/stat) minus the CPU time of the
# processes started here (and the reaped redis-benchmark) is other processes' load; it is in the
# raw CSV (other_cpu_pct) and a run above --max-other is repeated.
#
# Only 127.0.0.1 is used. Every process started here is stopped (by PID) on exit.
set -euo pipefail

die() { echo "peer.sh: $*" >&2; exit 2; }
say() { echo "peer.sh: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
QUICK=0 ROUNDS="" BASE_N="" OUT="$ROOT/bench/out/peer.csv" CLUSTER=0 HOT=0 SENTINEL=0 ASTERD="" THREAD=1 PIN=split
PREDIXY="" USERS=0 IDLE=10000
COMMAND="bench/peer.sh $*"
CLIENT_CPUS="" PROXY_CPUS="" SERVER_CPUS=""
BASE_PORT=7301 MAX_OTHER=15 KEEP=0 CLIENTS=50 DSIZE=64 KEYSPACE=100000 RUN_TIMEOUT=300
while (($#)); do
  case $1 in
    --quick) QUICK=1; shift ;;
    --cluster) CLUSTER=1; shift ;;
    --hot) HOT=1; shift ;;
    --sentinel) SENTINEL=1; shift ;;
    --users) USERS=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    --rounds | --requests | --out | --asterd | --thread | --pin | --base-port | --max-other | \
      --client-cpus | --proxy-cpus | --server-cpus | --predixy | --idle)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --rounds) ROUNDS=$2 ;; --requests) BASE_N=$2 ;; --out) OUT=$2 ;; --asterd) ASTERD=$2 ;;
        --thread) THREAD=$2 ;; --pin) PIN=$2 ;; --base-port) BASE_PORT=$2 ;; --max-other) MAX_OTHER=$2 ;;
        --client-cpus) CLIENT_CPUS=$2 ;; --proxy-cpus) PROXY_CPUS=$2 ;; --server-cpus) SERVER_CPUS=$2 ;;
        --predixy) PREDIXY=$2 ;; --idle) IDLE=$2 ;;
      esac
      shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
ROUNDS=${ROUNDS:-$((QUICK ? 3 : 5))}
MAX_TRIES=$((QUICK ? 2 : 3)) # --quick repeats a disturbed run once only, to stay near 2 minutes
BASE_N=${BASE_N:-$((QUICK ? 40000 : 200000))}
# opt VAR: the option that sets VAR.
opt() { case $1 in BASE_N) echo --requests ;; *) local o=${1,,}; echo "--${o//_/-}" ;; esac; }
for v in ROUNDS BASE_N THREAD BASE_PORT MAX_OTHER IDLE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$(opt $v) must be a number, got '${!v}'"
done
((ROUNDS >= 1)) || die "--rounds must be at least 1"
[[ $OUT == *.csv ]] || die "--out must end in .csv"
for t in redis-server redis-cli redis-benchmark nutcracker timeout awk; do
  command -v "$t" >/dev/null || die "missing $t (Debian: apt-get install redis-server redis-tools nutcracker)"
done
[[ -z $PREDIXY || -x $PREDIXY ]] || die "--predixy: $PREDIXY is not executable"
if ((USERS)); then
  command -v python3 >/dev/null || die "--users needs python3 (bench/idle-mem.py)"
  # 10,000 clients need as many descriptors in redis-benchmark and in every server it drives
  # (they inherit this shell's limit).
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  (($(ulimit -n) >= 10000 + 200)) || die "--users needs ulimit -n above 10200 (hard limit $(ulimit -Hn))"
  ((IDLE + 200 <= $(ulimit -n))) || die "--idle $IDLE is above ulimit -n ($(ulimit -n)) less 200"
fi

# --- pinning --------------------------------------------------------------------------------------
CPIN=() SPIN=()
if [[ $PIN == split ]]; then
  if (($(nproc) < 2)); then
    say "one CPU only: running unpinned"; PIN=none
  else
    command -v taskset >/dev/null || die "--pin split needs taskset (util-linux)"
    last=$(($(nproc) - 1))
    CPIN=(taskset -c 0) SPIN=(taskset -c "1-$last")
    ((last > 1)) || SPIN=(taskset -c 1)
  fi
elif [[ $PIN != none ]]; then
  die "--pin must be split or none"
fi
PPIN=("${SPIN[@]}") # the proxies share the servers' CPUs unless told otherwise
for v in CLIENT_CPUS PROXY_CPUS SERVER_CPUS; do
  [[ -z ${!v} || ${!v} =~ ^[0-9]+([,-][0-9]+)*$ ]] || die "$(opt $v): not a CPU list: '${!v}'"
  [[ -z ${!v} ]] || command -v taskset >/dev/null || die "$(opt $v) needs taskset (util-linux)"
done
[[ -z $CLIENT_CPUS ]] || CPIN=(taskset -c "$CLIENT_CPUS")
[[ -z $SERVER_CPUS ]] || SPIN=(taskset -c "$SERVER_CPUS")
[[ -z $PROXY_CPUS ]] || PPIN=(taskset -c "$PROXY_CPUS")
LAYOUT="CPUs: client ${CPIN[2]:-any}, proxies ${PPIN[2]:-any}, redis-servers ${SPIN[2]:-any}"

# --- ports, scratch dir, cleanup -----------------------------------------------------------------
BACKENDS=($BASE_PORT $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)))
TW_PORT=$((BASE_PORT + 9)) TW_STATS=$((BASE_PORT + 10)) AS_PORT=$((BASE_PORT + 19))
PX_PORT="" PXC_PORT=""
[[ -z $PREDIXY ]] || PX_PORT=$((BASE_PORT + 14))
[[ -z $PREDIXY ]] || ((!CLUSTER)) || PXC_PORT=$((BASE_PORT + 44))
AC_PORT=""
((HOT)) && AC_PORT=$((BASE_PORT + 24))
CNODES=() CAS_PORT=""
((CLUSTER)) && CNODES=($((BASE_PORT + 30)) $((BASE_PORT + 31)) $((BASE_PORT + 32))) CAS_PORT=$((BASE_PORT + 39))
SN_PORT="" SAS_PORT=""
((SENTINEL)) && SN_PORT=$((BASE_PORT + 50)) SAS_PORT=$((BASE_PORT + 59))
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${BACKENDS[@]}" $TW_PORT $TW_STATS $AS_PORT $PX_PORT $PXC_PORT $AC_PORT "${CNODES[@]}" $CAS_PORT $SN_PORT $SAS_PORT; do
  in_use "$p" && die "port $p is in use: pick another --base-port"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aster-peer.XXXXXX")
PIDS=()
declare -A PROXY_PID # target -> PID of the proxy serving it, for its CPU per request
declare -A SRV_PIDS  # target -> PIDs of the redis-servers it drives, for their CPU per request
LAST_PID=
on_exit() {
  local rc=$? i n
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  for n in $(seq 30); do
    local alive=0
    for i in "${PIDS[@]}"; do kill -0 "$i" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for i in "${PIDS[@]}"; do kill -KILL "$i" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((KEEP)); then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_pong PORT PID NAME LOGFILE: until the server answers PING (10 s), or fail with its log.
wait_pong() {
  local end=$((SECONDS + 10))
  while ((SECONDS < end)); do
    [[ $(timeout 2 redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  say "$3 is not answering on 127.0.0.1:$1; its log:"; tail -n 20 "$4" >&2 2>/dev/null || true
  exit 1
}

# start_redis PORT [extra redis-server args...]
start_redis() {
  local p=$1; shift
  mkdir -p "$TMP/redis-$p"
  "${SPIN[@]}" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$TMP/redis-$p" --logfile "$TMP/redis-$p/log" --maxclients $((USERS ? 11000 : 10000)) \
    "$@" </dev/null >/dev/null 2>&1 &
  PIDS+=($!) LAST_PID=$!
  wait_pong "$p" $! "redis-server :$p" "$TMP/redis-$p/log"
}

# --- asterd binary -------------------------------------------------------------------------------
if [[ -z $ASTERD ]]; then
  command -v go >/dev/null || die "go is needed to build asterd (or give --asterd BIN)"
  say "building asterd"
  (cd "$ROOT" && go build -o "$TMP/asterd" ./cmd/asterd) || die "go build ./cmd/asterd failed"
  ASTERD=$TMP/asterd
fi
[[ -x $ASTERD ]] || die "$ASTERD is not executable"

# --- standalone: 4 backends, twemproxy, asterd ---------------------------------------------------
for p in "${BACKENDS[@]}"; do start_redis "$p"; SRV_PIDS[asterd]+="$LAST_PID "; done
SRV_PIDS[twemproxy]=${SRV_PIDS[asterd]} SRV_PIDS[direct]=${SRV_PIDS[asterd]%% *}

mkdir -p "$TMP/twemproxy"
{
  echo "bench:"
  echo "  listen: 127.0.0.1:$TW_PORT"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  redis: true"
  echo "  preconnect: true"
  echo "  server_connections: 1"
  echo "  auto_eject_hosts: true"
  echo "  server_retry_timeout: 2000"
  echo "  server_failure_limit: 3"
  echo "  servers:"
  for i in "${!BACKENDS[@]}"; do echo "   - 127.0.0.1:${BACKENDS[i]}:1 r$((i + 1))"; done
} >"$TMP/twemproxy/nutcracker.yml"
nutcracker -t -c "$TMP/twemproxy/nutcracker.yml" >/dev/null 2>&1 || die "nutcracker rejects $TMP/twemproxy/nutcracker.yml"
"${PPIN[@]}" nutcracker -c "$TMP/twemproxy/nutcracker.yml" -s "$TW_STATS" -a 127.0.0.1 \
  -o "$TMP/twemproxy/log" </dev/null >/dev/null 2>&1 &
PIDS+=($!) PROXY_PID[twemproxy]=$!
wait_pong "$TW_PORT" $! twemproxy "$TMP/twemproxy/log"

# write_aster_toml FILE NAME PORT CACHE_TYPE SERVER... (EXTRA: more cluster keys)
write_aster_toml() {
  local f=$1 name=$2 port=$3 ctype=$4 list="" s; shift 4
  for s in "$@"; do list+="\"$s\", "; done
  cat >"$f" <<EOF
[[clusters]]
name = "$name"
listen_addr = "127.0.0.1:$port"
cache_type = "$ctype"
servers = [${list%, }]
${EXTRA_KEYS:-}
hash_method = "fnv1a_64"
hash_distribution = "ketama"
thread = $THREAD
node_connections = 1
max_connections = $((USERS ? 11000 : 10000)) # 10,000 clients (--users) and the script's own
${EXTRA:-}

# Metrics on, as by default, on ports of this run's own so that two asterds can run.
[metrics]
listen_addr = "127.0.0.1:$((port + 2))"

[admin]
listen_addr = "127.0.0.1:$((port + 1))"
EOF
}
start_asterd() { # NAME PORT TOMLFILE TARGET
  "$ASTERD" --check --config "$3" >"$TMP/$1.check" 2>&1 || { cat "$TMP/$1.check" >&2; die "asterd rejects $3"; }
  "${PPIN[@]}" "$ASTERD" --config "$3" --log-level warn </dev/null >"$TMP/$1.log" 2>&1 &
  PIDS+=($!) PROXY_PID[$4]=$!
  wait_pong "$2" $! "$1" "$TMP/$1.log"
}
srv=(); for i in "${!BACKENDS[@]}"; do srv+=("127.0.0.1:${BACKENDS[i]}:1 r$((i + 1))"); done
write_aster_toml "$TMP/asterd.toml" bench "$AS_PORT" redis "${srv[@]}"
start_asterd asterd "$AS_PORT" "$TMP/asterd.toml" asterd
if ((HOT)); then
  EXTRA='client_cache = { enabled = true, max_entries = 10000, max_value_bytes = 4096 }' \
    write_aster_toml "$TMP/acache.toml" benchcache "$AC_PORT" redis "${srv[@]}"
  start_asterd acache "$AC_PORT" "$TMP/acache.toml" acache
  SRV_PIDS[acache]=${SRV_PIDS[asterd]}
fi

# start_predixy NAME PORT TARGET: predixy with $TMP/NAME.conf around the pool in $TMP/NAME.pool
# (written by the caller), WorkerThreads 1 as asterd's thread = 1.
start_predixy() {
  predixy_conf "$TMP/$1.conf" "$1" "$2" "$(<"$TMP/$1.pool")"
  "${PPIN[@]}" "$PREDIXY" "$TMP/$1.conf" </dev/null >"$TMP/$1.log" 2>&1 &
  PIDS+=($!) PROXY_PID[$3]=$!
  wait_pong "$2" $! "$1" "$TMP/$1.log"
}
if [[ -n $PREDIXY ]]; then
  predixy_pool standalone "${BACKENDS[@]}" >"$TMP/predixy.pool"
  start_predixy predixy "$PX_PORT" predixy
  SRV_PIDS[predixy]=${SRV_PIDS[asterd]}
fi

# --- cluster: 3 masters, asterd in front ---------------------------------------------------------
if ((CLUSTER)); then
  for p in "${CNODES[@]}"; do
    start_redis "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000
    SRV_PIDS[acluster]+="$LAST_PID "
  done
  SRV_PIDS[cdirect]=${SRV_PIDS[acluster]}
  addrs=(); for p in "${CNODES[@]}"; do addrs+=("127.0.0.1:$p"); done
  cluster_create "${addrs[@]}" || die "no Redis Cluster"
  write_aster_toml "$TMP/asterd-cluster.toml" benchc "$CAS_PORT" redis_cluster "${addrs[@]}"
  start_asterd asterd-cluster "$CAS_PORT" "$TMP/asterd-cluster.toml" acluster
  if [[ -n $PREDIXY ]]; then
    predixy_pool cluster "${CNODES[@]}" >"$TMP/pcluster.pool"
    start_predixy pcluster "$PXC_PORT" pcluster
    SRV_PIDS[pcluster]=${SRV_PIDS[acluster]}
  fi
fi

# --- sentinel: one sentinel over the 4 backends as groups g1..g4, asterd redis_sentinel in front ---
if ((SENTINEL)); then
  mkdir -p "$TMP/sentinel"
  {
    echo "port $SN_PORT"
    echo "bind 127.0.0.1"
    echo "dir $TMP/sentinel"
    echo "logfile $TMP/sentinel/log"
    for i in "${!BACKENDS[@]}"; do echo "sentinel monitor g$((i + 1)) 127.0.0.1 ${BACKENDS[i]} 1"; done
  } >"$TMP/sentinel/sentinel.conf"
  "${SPIN[@]}" redis-server "$TMP/sentinel/sentinel.conf" --sentinel </dev/null >/dev/null 2>&1 &
  PIDS+=($!)
  wait_pong "$SN_PORT" $! sentinel "$TMP/sentinel/log"
  SRV_PIDS[asentinel]=${SRV_PIDS[asterd]}
  groups=(); for i in "${!BACKENDS[@]}"; do groups+=("g$((i + 1)):1 r$((i + 1))"); done
  EXTRA_KEYS="sentinels = [\"127.0.0.1:$SN_PORT\"]" write_aster_toml "$TMP/asterd-sentinel.toml" benchs "$SAS_PORT" redis_sentinel "${groups[@]}"
  start_asterd asterd-sentinel "$SAS_PORT" "$TMP/asterd-sentinel.toml" asentinel
fi

# --- targets -------------------------------------------------------------------------------------
# name -> port; "cdirect" is the cluster driven by redis-benchmark --cluster (keys must hold {tag}).
TARGETS=(direct twemproxy asterd)
declare -A PORT=([direct]=${BACKENDS[0]} [twemproxy]=$TW_PORT [asterd]=$AS_PORT)
if [[ -n $PREDIXY ]]; then
  TARGETS+=(predixy)
  PORT[predixy]=$PX_PORT
fi
if ((HOT)); then
  TARGETS+=(acache)
  PORT[acache]=$AC_PORT
fi
if ((CLUSTER)); then
  TARGETS+=(cdirect acluster)
  PORT[cdirect]=${CNODES[0]} PORT[acluster]=$CAS_PORT
  [[ -z $PREDIXY ]] || { TARGETS+=(pcluster); PORT[pcluster]=$PXC_PORT; }
fi
if ((SENTINEL)); then
  TARGETS+=(asentinel)
  PORT[asentinel]=$SAS_PORT
fi

# Each proxy must route into our backends: a key SET through it must appear on one of them.
check_route() { # target backend-ports...
  local t=$1 k="peer:probe:$RANDOM$RANDOM" p hit=0; shift
  [[ $(redis-cli -h 127.0.0.1 -p "${PORT[$t]}" SET "$k" 1 2>&1) == OK ]] || die "$t: SET failed"
  for p in "$@"; do
    [[ $(redis-cli -c -h 127.0.0.1 -p "$p" EXISTS "$k" 2>/dev/null) == 1 ]] && hit=1
  done
  redis-cli -h 127.0.0.1 -p "${PORT[$t]}" DEL "$k" >/dev/null 2>&1 || true
  ((hit)) || die "$t does not route to its backends ($*)"
}
check_route twemproxy "${BACKENDS[@]}"
check_route asterd "${BACKENDS[@]}"
[[ -z $PREDIXY ]] || check_route predixy "${BACKENDS[@]}"
[[ -z $PXC_PORT ]] || check_route pcluster "${CNODES[@]}"
((HOT)) && check_route acache "${BACKENDS[@]}"
((CLUSTER)) && check_route acluster "${CNODES[@]}"
((SENTINEL)) && check_route asentinel "${BACKENDS[@]}"

WORKLOADS=("SET 1" "GET 1" "MGET10 1" "SET 16" "GET 16" "MGET10 16")
((HOT)) && WORKLOADS+=("HOTGET 1" "HOTGET 16")
((USERS)) && WORKLOADS+=("C1K 1" "C10K 1" "CONN 1" "SET16K 1" "GET16K 16" "MIX 16")
# runs WORKLOAD TARGET: whether the target runs the workload (acache: the hot one alone;
# bench/mixload has no cluster mode, nor has redis-benchmark --cluster reconnecting clients).
runs() { [[ ($2 != acache || $1 == HOTGET) && ($2 != cdirect || ($1 != MIX && $1 != CONN)) ]]; }
nreq() { # workload pipeline
  case $1/$2 in
    SET/1 | GET/1 | HOTGET/1 | GET16K/*) echo "$BASE_N" ;;
    MGET10/1 | SET16K/* | CONN/*) echo $((BASE_N / 2)) ;;
    MGET10/* | C1K/*) echo $((BASE_N * 2)) ;;
    *) echo $((BASE_N * 5)) ;;
  esac
}
MIXLOAD=""
if ((USERS)); then
  say "building bench/mixload"
  (cd "$ROOT" && go build -o "$TMP/mixload" ./bench/mixload) || die "go build ./bench/mixload failed"
  MIXLOAD=$TMP/mixload
fi
mget_cmd() { # key prefix -> MGET with 10 random keys
  local c=(MGET) i
  for i in $(seq 10); do c+=("$1__rand_int__"); done
  echo "${c[@]}"
}
# run_bench TARGET WORKLOAD PIPELINE REQUESTS -> "rps avg p50 p99" or "" when it failed
run_bench() {
  local t=$1 a=(-h 127.0.0.1 -p "${PORT[$1]}" -c "$CLIENTS" -n "$4" -r "$KEYSPACE" -P "$3" --csv)
  local out
  if [[ $2 == MIX ]]; then
    out=$(GOMAXPROCS=1 timeout "$RUN_TIMEOUT" "${CPIN[@]}" "$MIXLOAD" -addr "127.0.0.1:${PORT[$1]}" -c "$CLIENTS" \
      -n "$4" -P "$3" -r "$KEYSPACE" -d "$DSIZE" -get 0.8 2>"$TMP/bench.err") || true
    awk -F, 'NR == 2 { gsub(/"/, ""); if ($2 + 0 > 0) print $2, $3, $5, $7 }' <<<"$out"
    return
  fi
  [[ $t == cdirect ]] && a+=(--cluster)
  case $2 in
    SET) a+=(-d "$DSIZE" -t set) ;;
    GET) a+=(-d "$DSIZE" -t get) ;;
    HOTGET) a+=(-d "$DSIZE" -t get -r 1000) ;; # the later -r wins: the 1,000-key hot set
    # the later -c wins: many clients, each sending steadily (the same 64 B keys as GET)
    C1K) a+=(-d "$DSIZE" -t get -c 1000) ;;
    C10K) a+=(-d "$DSIZE" -t get -c 10000) ;;
    CONN) a+=(-d "$DSIZE" -t get -k 0) ;; # each client reconnects after every reply
    # 16 KiB values over keys key:000000000000..999 (SET16K runs first and writes them)
    SET16K) a+=(-d 16384 -t set -r 1000) ;;
    GET16K) a+=(-d 16384 -t get -r 1000) ;;
    MGET10)
      # options first: everything after the command is its arguments. In --cluster mode
      # redis-benchmark puts a {tag} of the node it talks to into the keys (one slot per MGET).
      if [[ $t == cdirect ]]; then a+=($(mget_cmd 'key:{tag}:')); else a+=($(mget_cmd key:)); fi ;;
  esac
  out=$(timeout "$RUN_TIMEOUT" "${CPIN[@]}" redis-benchmark "${a[@]}" 2>"$TMP/bench.err") || true
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  # (count fields from the end: a custom command's name may hold commas)
  # --cluster prints the node list first: take the line after the header.
  awk -F, 'h && NF >= 8 { gsub(/"/, ""); if ($(NF-6) + 0 > 0) print $(NF-6), $(NF-5), $(NF-3), $(NF-1); exit }
    /^"test",/ { h = 1 }' <<<"$out"
}

# --- CPU accounting ------------------------------------------------------------------------------
# machine: "busy total" in clock ticks; ours: utime+stime+cutime+cstime of this shell and its servers.
machine_ticks() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
# cpu_ticks PID N: the sum of the first N of its utime, stime, cutime, cstime (clock ticks); 0
# when it is gone.
cpu_ticks() {
  local st f
  { st=$(<"/proc/$1/stat"); } 2>/dev/null || { echo 0; return; }
  st=${st##*) }
  read -r -a f <<<"$st"
  echo $((f[11] + f[12] + ($2 > 2 ? f[13] + f[14] : 0)))
}
our_ticks() {
  local sum=0 p
  for p in $$ "${PIDS[@]}"; do sum=$((sum + $(cpu_ticks "$p" 4))); done
  echo "$sum"
}
# proc_ticks PID...: their own utime+stime, summed.
proc_ticks() {
  local sum=0 p
  for p in "$@"; do sum=$((sum + $(cpu_ticks "$p" 2))); done
  echo "$sum"
}
# sys_ticks PID: its stime alone (the kernel's part: system calls, and on loopback the
# receiver's TCP input that a write runs).
sys_ticks() {
  local st f
  { st=$(<"/proc/$1/stat"); } 2>/dev/null || { echo 0; return; }
  st=${st##*) }
  read -r -a f <<<"$st"
  echo "${f[12]}"
}
# us_per_req TICKS N: CPU µs per request (clock-tick resolution).
us_per_req() { awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }'; }
CLK_TCK=$(getconf CLK_TCK)
percent() { awk -v a="$1" -v b="$2" 'BEGIN { v = (b > 0) ? 100 * a / b : 0; printf "%.0f", (v > 0) ? v : 0 }'; }

read -r b0 t0 < <(machine_ticks); sleep 1; read -r b1 t1 < <(machine_ticks)
BUSY_BEFORE=$(percent $((b1 - b0)) $((t1 - t0)))
say "scratch $TMP | pin=$PIN ($LAYOUT) | rounds $ROUNDS | base requests $BASE_N | CPU busy before start ${BUSY_BEFORE}%"

# --- memory per idle client (--users): on fresh proxies, before any load has grown their heaps --
# The RSS growth of each proxy over IDLE connections that send nothing, then after one PING on
# each (bench/idle-mem.py, on the client CPUs).
IDLE_LINES=()
if ((USERS && IDLE > 0)); then
  for t in twemproxy asterd predixy acluster pcluster; do
    [[ -n ${PROXY_PID[$t]:-} ]] || continue
    line=$("${CPIN[@]}" python3 "$ROOT/bench/idle-mem.py" "${PORT[$t]}" "${PROXY_PID[$t]}" "$IDLE" 2>&1) ||
      line="failed: $(tail -n 1 <<<"$line")"
    IDLE_LINES+=("$(printf '%-10s %s' "$t" "$line")")
    sleep 1 # the proxy closes the connections
  done
fi

# --- pre-fill: every key through every target (direct: the one backend it drives) ----------------
# fill KEYS [TIMES]: keys key:0..KEYS-1, each written TIMES (default 3) times on average (so all but
# e^-TIMES of them), with DSIZE-byte values.
fill() {
  local t a
  for t in "${TARGETS[@]}"; do
    [[ $t == acache ]] && continue # the backends asterd fills
    a=(-h 127.0.0.1 -p "${PORT[$t]}" -c "$CLIENTS" -n $(($1 * ${2:-3})) -r "$1" -d "$DSIZE" -P 16 -t set -q)
    [[ $t == cdirect ]] && a+=(--cluster)
    timeout "$RUN_TIMEOUT" "${CPIN[@]}" redis-benchmark "${a[@]}" >/dev/null 2>&1 || die "pre-fill through $t failed"
  done
}
fill "$KEYSPACE"

# ratio A B: A's rps over B's in this round (got[]), "" when one is missing.
ratio() { awk -v a="${got[$1]:-}" -v b="${got[$2]:-}" 'BEGIN { if (a != "" && b > 0) printf "%.3f", a / b }'; }

# --- measure -------------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
RAW=${OUT%.csv}.raw.csv
echo "round,workload,target,requests,rps,avg_ms,p50_ms,p99_ms,other_cpu_pct,tries,proxy_cpu_us_per_req,backend_cpu_us_per_req,proxy_sys_us_per_req" >"$RAW"
declare -A RPS P50 P99 CPU SCPU KCPU R_AT R_AD R_CA R_KT R_SA R_AP R_CP
FAILED=0 REPEATS=0 WORST_OTHER=0
# round_order R: the targets in run order for round R (from 0), in ORDER: rotated by R, so that
# slow drifts of the machine hit every target alike, with each asterd run right next to the
# predixy run it is compared with (the ratio #20 is about; this machine's speed drifts within
# minutes), the two in turn first.
round_order() {
  local units=() u n i t
  for t in "${TARGETS[@]}"; do
    case $t in
      predixy | pcluster) units[-1]+=" $t" ;; # right after asterd / acluster in TARGETS
      *) units+=("$t") ;;
    esac
  done
  n=${#units[@]} ORDER=()
  for ((i = 0; i < n; i++)); do
    read -r -a u <<<"${units[(i + $1) % n]}"
    if ((${#u[@]} == 2 && $1 % 2)); then ORDER+=("${u[1]}" "${u[0]}"); else ORDER+=("${u[@]}"); fi
  done
}
for wl in "${WORKLOADS[@]}"; do
  read -r name pl <<<"$wl"; w="$name P$pl"; n=$(nreq "$name" "$pl")
  # SET16K left key:0..999 at 16 KiB: the mix is of DSIZE-byte values (its first runs would
  # otherwise get a 16 KiB reply for one GET in a hundred).
  [[ $name != MIX ]] || ! ((USERS)) || fill 1000 20
  for ((r = 0; r < ROUNDS; r++)); do
    declare -A got=()
    round_order "$r"
    for t in "${ORDER[@]}"; do
      runs "$name" "$t" || continue
      for ((try = 1; ; try++)); do
        pp=${PROXY_PID[$t]:-}
        # shellcheck disable=SC2086
        read -r mb0 mt0 < <(machine_ticks); o0=$(our_ticks); [[ -z $pp ]] || { c0=$(proc_ticks "$pp"); k0=$(sys_ticks "$pp"); }; s0=$(proc_ticks ${SRV_PIDS[$t]})
        res=$(run_bench "$t" "$name" "$pl" "$n")
        # shellcheck disable=SC2086
        read -r mb1 mt1 < <(machine_ticks); o1=$(our_ticks); [[ -z $pp ]] || { c1=$(proc_ticks "$pp"); k1=$(sys_ticks "$pp"); }; s1=$(proc_ticks ${SRV_PIDS[$t]})
        span=$((mt1 - mt0)) other=$(percent $((mb1 - mb0 - (o1 - o0))) $((mt1 - mt0)))
        ((other >= 0)) || other=0
        ((span >= 100)) || other=0 # below ~0.5 s on 2 CPUs the tick rounding dominates
        [[ -z $res ]] || ((other <= MAX_OTHER || try >= MAX_TRIES)) && break
        REPEATS=$((REPEATS + 1))
        say "$w $t: other processes took ${other}% of the CPU, repeating"
        sleep $((QUICK ? 1 : 2 * try))
      done
      ((other <= WORST_OTHER)) || WORST_OTHER=$other
      if [[ -z $res ]]; then
        FAILED=$((FAILED + 1))
        say "FAILED $w on $t: $(tail -n 2 "$TMP/bench.err" | tr '\n' ' ')"
        echo "$((r + 1)),$w,$t,$n,,,,,$other,$try" >>"$RAW"
        continue
      fi
      read -r rps avg p50 p99 <<<"$res"
      got[$t]=$rps RPS[$w/$t]+="$rps " P50[$w/$t]+="$p50 " P99[$w/$t]+="$p99 "
      cpu="" kcpu="" # the proxy's own CPU time per request, in µs, and its kernel part
      [[ -z $pp ]] || { cpu=$(us_per_req $((c1 - c0)) "$n"); CPU[$w/$t]+="$cpu "; }
      [[ -z $pp ]] || { kcpu=$(us_per_req $((k1 - k0)) "$n"); KCPU[$w/$t]+="$kcpu "; }
      scpu=$(us_per_req $((s1 - s0)) "$n") # its backends'
      SCPU[$w/$t]+="$scpu "
      echo "$((r + 1)),$w,$t,$n,$rps,$avg,$p50,$p99,$other,$try,$cpu,$scpu,$kcpu" >>"$RAW"
      say "$(printf '%-10s round %d/%d %-10s %9.0f rps  p50 %-6s p99 %-6s ms  other cpu %s%%' "$w" $((r + 1)) "$ROUNDS" "$t" "$rps" "$p50" "$p99" "$other")"
    done
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "a server (PID $p) died during $w; logs in $TMP (rerun with --keep)"; done
    R_AT[$w]+="$(ratio asterd twemproxy) " R_AD[$w]+="$(ratio asterd direct) "
    ((CLUSTER)) && R_CA[$w]+="$(ratio acluster asterd) "
    [[ -z $PREDIXY ]] || R_AP[$w]+="$(ratio asterd predixy) "
    [[ -z $PXC_PORT ]] || R_CP[$w]+="$(ratio acluster pcluster) "
    ((HOT)) && R_KT[$w]+="$(ratio acache twemproxy) "
    ((SENTINEL)) && R_SA[$w]+="$(ratio asentinel asterd) "
    unset got
  done
done

# --- report --------------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
span() { printf '%s\n' "$@" | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f-%.2f", lo, hi }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b }'; }
num() { [[ -n $1 ]] && printf '%.0f' "$1" || printf -- -; }

hdr="workload,requests"
for t in "${TARGETS[@]}"; do hdr+=",${t}_rps,${t}_p50_ms,${t}_p99_ms"; done
hdr+=",asterd_over_twemproxy,asterd_over_twemproxy_range,asterd_over_direct,asterd_over_direct_range,asterd_p99_le_twemproxy"
((CLUSTER)) && hdr+=",acluster_over_asterd,acluster_over_asterd_range,acluster_over_cdirect"
[[ -z $PREDIXY ]] || hdr+=",asterd_over_predixy,asterd_over_predixy_range,asterd_p99_le_best_peer"
[[ -z $PXC_PORT ]] || hdr+=",acluster_over_pcluster,acluster_over_pcluster_range,acluster_p99_le_pcluster"
((HOT)) && hdr+=",acache_over_twemproxy,acache_over_twemproxy_range"
((SENTINEL)) && hdr+=",asentinel_over_asterd,asentinel_over_asterd_range"
PROXIES=(twemproxy asterd); [[ -z $PREDIXY ]] || PROXIES+=(predixy)
((CLUSTER)) && PROXIES+=(acluster)
[[ -z $PXC_PORT ]] || PROXIES+=(pcluster)
((HOT)) && PROXIES+=(acache)
((SENTINEL)) && PROXIES+=(asentinel)
for t in "${PROXIES[@]}"; do hdr+=",${t}_cpu_us_per_req"; done
for t in "${TARGETS[@]}"; do hdr+=",${t}_backend_cpu_us_per_req"; done
for t in "${PROXIES[@]}"; do hdr+=",${t}_sys_us_per_req"; done
echo "$hdr" >"$OUT"

echo
echo "command: $COMMAND (commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo "machine: $(uname -srm), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "aster peer benchmark $(date -u +%FT%TZ) | $(nproc) CPUs, pin=$PIN ($LAYOUT) | $ROUNDS rounds (median) | $CLIENTS clients, ${DSIZE} B values, keyspace $KEYSPACE | asterd thread=$THREAD"
echo "CPU busy before start ${BUSY_BEFORE}%, other processes' load max ${WORST_OTHER}% in a run, $REPEATS runs repeated (--max-other $MAX_OTHER)"
echo
printf '%-10s' workload
for t in "${TARGETS[@]}"; do printf ' | %-24s' "$t rps  p50/p99 ms"; done
printf ' | %-16s | %-16s | %s' "asterd/twemproxy" "asterd/direct" "p99<=tw"
((CLUSTER)) && printf ' | %-16s' "acluster/asterd"
[[ -z $PREDIXY ]] || printf ' | %-16s | %s' "asterd/predixy" "p99<=best"
[[ -z $PXC_PORT ]] || printf ' | %-16s | %s' "acluster/pcluster" "p99<=pc"
((HOT)) && printf ' | %-16s' "acache/twemproxy"
((SENTINEL)) && printf ' | %-16s' "asentinel/asterd"
echo
for wl in "${WORKLOADS[@]}"; do
  read -r name pl <<<"$wl"; w="$name P$pl"
  declare -A m=() l50=() l99=()
  row="$w,$(nreq "$name" "$pl")"
  printf '%-10s' "$w"
  for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    m[$t]=$(median ${RPS[$w/$t]:-}) l50[$t]=$(median ${P50[$w/$t]:-}) l99[$t]=$(median ${P99[$w/$t]:-})
    printf ' | %8s  %6s/%-7s' "$(num "${m[$t]}")" "${l50[$t]:--}" "${l99[$t]:--}"
    row+=",${m[$t]},${l50[$t]},${l99[$t]}"
  done
  at=$(div "${m[asterd]}" "${m[twemproxy]}") ad=$(div "${m[asterd]}" "${m[direct]}")
  # shellcheck disable=SC2086
  atr=$(span ${R_AT[$w]:-}) adr=$(span ${R_AD[$w]:-})
  p99ok=$(awk -v a="${l99[asterd]}" -v b="${l99[twemproxy]}" 'BEGIN { if (a == "" || b == "") print "-"; else print (a <= b) ? "yes" : "no" }')
  printf ' | %-16s | %-16s | %-7s' "${at:--} ($atr)" "${ad:--} ($adr)" "$p99ok"
  row+=",$at,$atr,$ad,$adr,$p99ok"
  if ((CLUSTER)); then
    ca=$(div "${m[acluster]}" "${m[asterd]}") cd=$(div "${m[acluster]}" "${m[cdirect]}")
    # shellcheck disable=SC2086
    car=$(span ${R_CA[$w]:-})
    printf ' | %-16s' "${ca:--} ($car)"
    row+=",$ca,$car,$cd"
  fi
  if [[ -n $PREDIXY ]]; then
    ap=$(div "${m[asterd]}" "${m[predixy]}")
    # shellcheck disable=SC2086
    apr=$(span ${R_AP[$w]:-})
    # asterd's p99 against the best (lowest) of the peers'
    best=$(awk -v a="${l99[asterd]}" -v b="${l99[twemproxy]}" -v c="${l99[predixy]}" 'BEGIN {
      if (a == "" || (b == "" && c == "")) { print "-"; exit }
      m = (b == "") ? c : (c == "" || b < c) ? b : c; print (a <= m) ? "yes" : "no" }')
    printf ' | %-16s | %-9s' "${ap:--} ($apr)" "$best"
    row+=",$ap,$apr,$best"
  fi
  if [[ -n $PXC_PORT ]]; then
    cp=$(div "${m[acluster]}" "${m[pcluster]}")
    # shellcheck disable=SC2086
    cpr=$(span ${R_CP[$w]:-})
    cbest=$(awk -v a="${l99[acluster]}" -v b="${l99[pcluster]}" 'BEGIN { if (a == "" || b == "") print "-"; else print (a <= b) ? "yes" : "no" }')
    printf ' | %-16s | %-7s' "${cp:--} ($cpr)" "$cbest"
    row+=",$cp,$cpr,$cbest"
  fi
  if ((HOT)); then
    kt=$(div "${m[acache]}" "${m[twemproxy]}")
    # shellcheck disable=SC2086
    ktr=$(span ${R_KT[$w]:-})
    printf ' | %-16s' "${kt:--} ($ktr)"
    row+=",$kt,$ktr"
  fi
  if ((SENTINEL)); then
    sa=$(div "${m[asentinel]}" "${m[asterd]}")
    # shellcheck disable=SC2086
    sar=$(span ${R_SA[$w]:-})
    printf ' | %-16s' "${sa:--} ($sar)"
    row+=",$sa,$sar"
  fi
  # shellcheck disable=SC2086
  for t in "${PROXIES[@]}"; do row+=",$(median ${CPU[$w/$t]:-})"; done
  # shellcheck disable=SC2086
  for t in "${TARGETS[@]}"; do row+=",$(median ${SCPU[$w/$t]:-})"; done
  # shellcheck disable=SC2086
  for t in "${PROXIES[@]}"; do row+=",$(median ${KCPU[$w/$t]:-})"; done
  echo
  echo "$row" >>"$OUT"
  unset m l50 l99
done

# cpu_table LABEL VAR TWRATIO TARGET...: the medians of VAR[workload/target] (CPU µs per request)
# for each target, then asterd/twemproxy when TWRATIO is 1, and acluster/asterd in cluster mode.
cpu_table() {
  local label=$1 tw=$3 t wl w name pl x
  local -n vals=$2
  shift 3
  echo
  printf '%-10s' "$label"
  for t in "$@"; do printf ' | %9s' "$t"; done
  ((tw)) && printf ' | %-16s' "asterd/twemproxy"
  ((tw)) && [[ -n $PREDIXY ]] && printf ' | %-16s' "asterd/predixy"
  ((CLUSTER)) && printf ' | %-16s' "acluster/asterd"
  ((tw)) && [[ -n $PXC_PORT ]] && printf ' | %-16s' "acluster/pcluster"
  echo
  for wl in "${WORKLOADS[@]}"; do
    read -r name pl <<<"$wl"; w="$name P$pl"
    local -A c=()
    printf '%-10s' "$w"
    # shellcheck disable=SC2086
    for t in "$@"; do c[$t]=$(median ${vals[$w/$t]:-}); printf ' | %9s' "${c[$t]:--}"; done
    ((tw)) && { x=$(div "${c[asterd]}" "${c[twemproxy]}"); printf ' | %-16s' "${x:--}"; }
    ((tw)) && [[ -n $PREDIXY ]] && { x=$(div "${c[asterd]}" "${c[predixy]}"); printf ' | %-16s' "${x:--}"; }
    ((CLUSTER)) && { x=$(div "${c[acluster]}" "${c[asterd]}"); printf ' | %-16s' "${x:--}"; }
    ((tw)) && [[ -n $PXC_PORT ]] && { x=$(div "${c[acluster]}" "${c[pcluster]}"); printf ' | %-16s' "${x:--}"; }
    echo
    unset c
  done
}
# The proxies' own CPU per request: their cost, apart from the backends' (which share the server
# CPUs and so also set the throughput above). Then the backends' CPU per request, for each
# target: what the redis-servers cost (cluster-enabled ones do more per command; MGET10 is one
# command per key in cluster mode).
cpu_table "CPU µs/req" CPU 1 "${PROXIES[@]}"
cpu_table "srv µs/req" SCPU 0 "${TARGETS[@]}"
# The kernel's part of each proxy's CPU per request (stime): at P1 most of it, and about the
# same for every proxy (one client read and one client write per request, a share of the
# backends'), a floor that a proxy's own code cannot go below.
cpu_table "sys µs/req" KCPU 1 "${PROXIES[@]}"
echo
if ((${#IDLE_LINES[@]})); then
  echo
  echo "idle clients: RSS growth per connection over $IDLE connections (KiB; target <= 10), fresh proxies"
  printf '%s\n' "${IDLE_LINES[@]}"
fi
echo
echo "targets: direct = one redis-server :${BACKENDS[0]}; twemproxy :$TW_PORT; asterd :$AS_PORT over 4 backends"
[[ -z $PREDIXY ]] || echo "         predixy :$PX_PORT (WorkerThreads 1, crc16 modula) over the same 4 backends"
((CLUSTER)) && echo "         cdirect = redis-benchmark --cluster on the 3-master cluster; acluster = asterd redis_cluster :$CAS_PORT"
[[ -z $PXC_PORT ]] || echo "         pcluster = predixy ClusterServerPool :$PXC_PORT over the same cluster"
((USERS)) && echo "         C1K/C10K = GET P1 from 1,000/10,000 clients; CONN = a new connection per GET; SET16K/GET16K = 16 KiB values; MIX = 80% GET / 20% SET by bench/mixload"
((HOT)) && echo "         acache = asterd :$AC_PORT with client_cache on, same backends (HOTGET only)"
((SENTINEL)) && echo "         asentinel = asterd redis_sentinel :$SAS_PORT over the same 4 backends (groups g1..g4, one sentinel :$SN_PORT)"
echo "ratios are of medians; brackets are the min-max of per-round ratios"
echo "csv: $OUT   per run: $RAW"
((FAILED == 0)) || { say "$FAILED run(s) failed"; exit 1; }
