# bench/lib.sh: what the benchmark scripts share (peer.sh: predixy_conf, predixy_pool and
# cluster_create; cachesim.sh: the standalone parts, need and build_asterd; pair.sh and
# allocs.sh: the rest). Sourced, not run.

# asterd_toml FILE NAME PORT SERVERS [EXTRA]: an asterd config in FILE for one standalone cluster
# NAME on 127.0.0.1:PORT (admin PORT+1, metrics PORT+2) over SERVERS (the items of its servers
# list), as the peer benchmark runs it: ketama fnv1a_64, thread = 1, one connection per node,
# room for 10,000 clients and more; EXTRA: more lines for the cluster. With CACHE_TYPE=redis_cluster
# in the environment, a Redis Cluster mode cluster over SERVERS (seed nodes) instead.
asterd_toml() {
  local hash='hash_method = "fnv1a_64"
hash_distribution = "ketama"'
  [[ ${CACHE_TYPE:-redis} == redis ]] || hash=""
  cat >"$1" <<EOF2
[[clusters]]
name = "$2"
listen_addr = "127.0.0.1:$3"
cache_type = "${CACHE_TYPE:-redis}"
servers = [$4]
$hash
thread = 1
node_connections = 1
max_connections = 21000
${5:-}

[metrics]
listen_addr = "127.0.0.1:$(($3 + 2))"

[admin]
listen_addr = "127.0.0.1:$(($3 + 1))"
EOF2
}

# scratch: a scratch directory in TMP and an EXIT trap that stops what the script started (the
# pids it adds to PIDS, the redis-servers of start_servers) and removes the directory.
scratch() {
  TMP=$(mktemp -d)
  PIDS=() ALL_PORTS=()
  trap scratch_cleanup EXIT
}
scratch_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ALL_PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}

# start_servers [CMD...]: four redis-servers on FIRST..FIRST+3 (FIRST defaults to BASE; run under
# CMD, e.g. taskset -c 1), data in TMP; SERVERS is their list for asterd_toml (aliases r1..r4),
# PORTS their ports.
start_servers() {
  local i p
  SERVERS="" PORTS=()
  for i in 0 1 2 3; do
    p=$((${FIRST:-$BASE} + i))
    "$@" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --maxclients 22000 \
      --dir "$TMP" --dbfilename "d$p.rdb" --daemonize yes --logfile "$TMP/r$p.log" >/dev/null
    SERVERS+="\"127.0.0.1:$p:1 r$((i + 1))\", "
    PORTS+=("$p") ALL_PORTS+=("$p")
  done
  SERVERS=${SERVERS%, }
}

# start_cluster [CMD...]: three cluster-enabled redis-servers on FIRST..FIRST+2 (FIRST defaults
# to BASE; run under CMD, as start_servers), made one Redis Cluster (cluster_create); SERVERS is
# their list for asterd_toml with CACHE_TYPE=redis_cluster, PORTS their ports.
start_cluster() {
  local i p addrs=() first=${FIRST:-$BASE}
  SERVERS="" PORTS=()
  for i in 0 1 2; do
    p=$((first + i))
    "$@" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --maxclients 22000 \
      --dir "$TMP" --dbfilename "d$p.rdb" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --daemonize yes --logfile "$TMP/r$p.log" >/dev/null
    SERVERS+="\"127.0.0.1:$p\", "
    PORTS+=("$p") ALL_PORTS+=("$p") addrs+=("127.0.0.1:$p")
  done
  SERVERS=${SERVERS%, }
  for p in "${PORTS[@]}"; do
    for i in $(seq 50); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  done
  cluster_create "${addrs[@]}"
}

# cluster_create ADDR...: the running cluster-enabled servers at ADDRs (host:port) made one Redis
# Cluster, every slot and no replicas, once every node says cluster_state:ok; fails (non-zero,
# saying why) when it does not come up.
cluster_create() {
  local i a ok log=$TMP/cluster-create-${1##*:}.log
  redis-cli --cluster create "$@" --cluster-replicas 0 --cluster-yes >"$log" 2>&1 ||
    { cat "$log" >&2; echo "redis-cli --cluster create failed" >&2; return 1; }
  for i in $(seq 100); do
    ok=1
    for a in "$@"; do
      redis-cli -h "${a%:*}" -p "${a##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    ((ok)) && return 0
    sleep 0.1
  done
  echo "the cluster on $* did not reach cluster_state:ok" >&2
  return 1
}

# predixy_pool standalone|cluster PORT...: predixy's server pool over the servers on 127.0.0.1
# at PORTs, for predixy_conf: groups g1.. of one server each, keys placed by crc16 modula (with
# {} hash tags), or a Redis Cluster that the servers seed.
predixy_pool() {
  local kind=$1 i=0 p
  shift
  if [[ $kind == cluster ]]; then
    printf 'ClusterServerPool {\n    MasterReadPriority 100\n    ServerTimeout 1\n    Servers {\n'
    for p in "$@"; do printf '        + 127.0.0.1:%s\n' "$p"; done
    printf '    }\n}\n'
    return
  fi
  printf 'StandaloneServerPool {\n    Hash crc16\n    HashTag "{}"\n    Distribution modula\n'
  printf '    MasterReadPriority 100\n    RefreshMethod fixed\n    ServerTimeout 1\n'
  for p in "$@"; do
    i=$((i + 1))
    printf '    Group g%d {\n        + 127.0.0.1:%s\n    }\n' "$i" "$p"
  done
  printf '}\n'
}

# predixy_conf FILE NAME PORT POOL: a predixy config in FILE for NAME on 127.0.0.1:PORT,
# WorkerThreads 1 (as asterd's thread = 1), no client timeout, sampled logs off, with POOL (a
# StandaloneServerPool or ClusterServerPool block) as its servers.
predixy_conf() {
  cat >"$1" <<EOF2
Name $2
Bind 127.0.0.1:$3
WorkerThreads 1
ClientTimeout 0
LogInfoSample 0
LogNoticeSample 0
Authority {
    Auth {
        Mode admin
    }
}
$4
EOF2
}

# bench_args SCRIPT BENCH-ARGS...: from redis-benchmark's arguments, N (-n, which must be
# given), KEYS (-r, default 100000) and SIZE (-d, default 64); the last of each wins.
bench_args() {
  local script=$1
  shift
  N=$(printf '%s ' "$@" | { grep -o -- '-n [0-9]*' || true; } | awk '{print $2}' | tail -1)
  [[ -n $N ]] || { echo "$script: give the request count (-n N) among the benchmark arguments" >&2; exit 2; }
  KEYS=$(printf '%s ' "$@" | { grep -o -- '-r [0-9]*' || true; } | awk '{print $2}' | tail -1)
  SIZE=$(printf '%s ' "$@" | { grep -o -- '-d [0-9]*' || true; } | awk '{print $2}' | tail -1)
  KEYS=${KEYS:-100000} SIZE=${SIZE:-64}
}

# wait_pong SCRIPT NAME PORT PID LOG: waits up to 10 s for the proxy NAME (process PID) to
# answer PING on PORT; if it dies or does not answer, prints its LOG and exits.
wait_pong() {
  local i
  for i in $(seq 100); do
    redis-cli -p "$3" ping 2>/dev/null | grep -q PONG && return 0
    kill -0 "$4" 2>/dev/null || break
    sleep 0.1
  done
  echo "$1: $2 did not answer on $3:" >&2
  cat "$5" >&2
  exit 1
}

# need SCRIPT TOOL...: exits with a message naming the first TOOL not on PATH.
need() {
  local script=$1 t
  shift
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$script: $t not found" >&2; exit 1; }
  done
}

# build_asterd BIN: BIN when given, else this tree's asterd built into $TMP (scratch first);
# prints the path.
build_asterd() {
  if [[ -n $1 ]]; then
    echo "$1"
    return
  fi
  go build -o "$TMP/asterd" ./cmd/asterd && echo "$TMP/asterd"
}
