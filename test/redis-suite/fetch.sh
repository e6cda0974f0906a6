#!/usr/bin/env bash
# fetch.sh DIR: puts the Tcl test suite of the installed redis-server into DIR/redis-<version>
# (runtest and tests/), from Debian's source package of the same version. Nothing is vendored:
# the suite is downloaded with `apt-get source --download-only` and unpacked under DIR.
# A deb-src entry for the machine's own deb suites is added when none exists (needs root or
# sudo, like apt-get update).
set -euo pipefail
dir=${1:?usage: fetch.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

sudo_=""
if [[ $(id -u) != 0 ]]; then sudo_=sudo; fi

pkgver=$(dpkg-query -W -f='${Version}' redis-server)   # e.g. 5:7.0.15-1~deb12u10
upver=${pkgver#*:}; upver=${upver%%-*}                  # 7.0.15
out="$dir/redis-$upver"
if [[ -x "$out/runtest" && -d "$out/tests" ]]; then
  echo "$out"
  exit 0
fi

has_src() {
  grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}
if ! has_src; then
  # The same archives and suites as the deb entries (deb822 .sources files and one-line
  # sources.list), as deb-src.
  src=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    awk 'BEGIN{RS=""; ORS="\n\n"} /(^|\n)Types:[^\n]*deb([ \n]|$)/ && !/disabled/ {
           gsub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f" >>"$src"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' >"$src.list" || true
    [[ -s "$src.list" ]] && $sudo_ cp "$src.list" /etc/apt/sources.list.d/aster-redis-suite-src.list
  fi
  [[ -s "$src" ]] && $sudo_ cp "$src" /etc/apt/sources.list.d/aster-redis-suite-src.sources
  rm -f "$src" "$src.list"
  $sudo_ chmod 644 /etc/apt/sources.list.d/aster-redis-suite-src.* 2>/dev/null || true
  $sudo_ apt-get update -qq
fi

cd "$dir"
if ! ls redis_"$upver".orig.tar.* >/dev/null 2>&1; then
  apt-get source --download-only "redis=$pkgver" >&2
fi
tarball=$(ls redis_"$upver".orig.tar.* | head -1)
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
tar -xf "$tarball" -C "$out.tmp" --strip-components=1 --wildcards '*/runtest' '*/tests' '*/src/version.h'
mv "$out.tmp" "$out"
echo "$out"
