#!/usr/bin/env bash
# demo.sh: three local redis-servers and asterd on deploy/examples/standalone.toml.
# Installs redis-server when missing (Debian); Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
  echo "demo: installing redis-server (apt-get)"
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update && $sudo apt-get install -y redis-server redis-tools
fi
[[ -x bin/asterd ]] || go build -o bin/asterd ./cmd/asterd

tmp=$(mktemp -d)
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for port in 7101 7102 7103; do
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --logfile "$tmp/redis-$port.log" --daemonize no &
  pids+=($!)
done
bin/asterd --config deploy/examples/standalone.toml &
pids+=($!)
sleep 0.5
cat <<MSG

demo: asterd listens on 127.0.0.1:6380 in front of redis on 7101, 7102 and 7103.
  redis-cli -p 6380 set hello world
  redis-cli -p 6380 get hello
  redis-benchmark -p 6380 -t set,get,mset -q
  redis-cli -p 7101 shutdown nosave   # asterd ejects the node after 3 failed pings
Ctrl-C stops everything.
MSG
wait
