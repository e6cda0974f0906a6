# bench/lib.sh: what the small benchmark scripts (cachesim.sh, pair.sh) share. Sourced, not run.

# asterd_toml FILE NAME PORT SERVERS [EXTRA]: an asterd config in FILE for one standalone cluster
# NAME on 127.0.0.1:PORT (admin PORT+1, metrics PORT+2) over SERVERS (the items of its servers
# list), as the peer benchmark runs it: ketama fnv1a_64, thread = 1, one connection per node,
# room for 10,000 clients and more; EXTRA: more lines for the cluster.
asterd_toml() {
  cat >"$1" <<EOF2
[[clusters]]
name = "$2"
listen_addr = "127.0.0.1:$3"
cache_type = "redis"
servers = [$4]
hash_method = "fnv1a_64"
hash_distribution = "ketama"
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
