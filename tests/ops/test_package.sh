#!/usr/bin/env bash
# The Debian package that scripts/package built: its layout (library under the multiarch
# directory with SONAME libzeropool.so.0, the command, its helper, the man page, pkg-config),
# then a program run under the packaged library from a scratch root (dpkg -x), through the
# packaged command, the version it carries, then (root only) `apt install`, /etc/ld.so.preload
# and `dpkg -r` in a private mount namespace: the prerm must take the library out of
# /etc/ld.so.preload first.
# Usage: test_package.sh DIR   (DIR holds zeropool_*.deb; scripts/test passes build/deb)
set -uo pipefail
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
passed=0 failed=0

if [ "${1:-}" = --in-namespace ]; then # the install, run by the part below in its namespace
  ns=$2 deb=$3 lib=$4
  cd "$ns" || exit 1
  mount --bind "$ns/etc" /etc || { echo "FAIL mount a copy of /etc"; exit 1; }
  for d in usr var; do
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ns/$d.up,workdir=$ns/$d.work" "/$d" ||
      { echo "FAIL overlay on /$d"; exit 1; }
  done
  shown() { sed 's/^/     | /' "$1"; }
  check "apt install ./${deb##*/}" eval 'apt-get install -y -q "$deb" >"$ns/apt.log" 2>&1 || { shown "$ns/apt.log"; false; }'
  check "zeropool run -- true" /usr/bin/zeropool run -- true
  check "zeropool run finds $lib" eval '[ "$(/usr/bin/zeropool run -- printenv LD_PRELOAD)" = "$lib" ]'
  # Another entry, which must stay: a library every system has (glibc's libdl stub).
  other=$(dirname "$lib")/libdl.so.2
  printf '%s\n' "$other" "$lib" >/etc/ld.so.preload
  check "with /etc/ld.so.preload, a program started afterwards maps it" eval 'grep -q "$lib" /proc/self/maps'
  dpkg -r zeropool >"$ns/remove.log" 2>&1
  check "dpkg -r says it takes the library out of /etc/ld.so.preload" \
    eval 'grep -q "zeropool: removing $lib from /etc/ld.so.preload" "$ns/remove.log" || { shown "$ns/remove.log"; false; }'
  check "only the library left /etc/ld.so.preload" eval '[ "$(cat /etc/ld.so.preload)" = "$other" ]'
  check "dpkg -r removed the library and the command" eval '[ ! -e "$lib" ] && [ ! -e /usr/bin/zeropool ]'
  printf '%s\n' "$lib" >/etc/ld.so.preload
  apt-get install -y -q "$deb" >/dev/null 2>&1
  dpkg --purge zeropool >"$ns/purge.log" 2>&1
  check "dpkg --purge: a preload file naming only the library is removed" eval '[ ! -e /etc/ld.so.preload ]'
  check "programs start without a word about the preload file" eval '[ -z "$(/bin/true 2>&1)" ]'
  echo "$passed passed, $failed failed"
  exit 0
fi

dir=$1
deb=$(ls "$dir"/zeropool_*_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
[ -n "$deb" ] || { echo "no zeropool_*.deb in $dir"; exit 1; }
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
tmp=$(mktemp -d /tmp/zp-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT


#### layout ####
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/files"
for f in /usr/lib/$triplet/libzeropool.so.0 /usr/bin/zeropool /usr/libexec/zeropool/zeropool-config \
  /usr/share/man/man1/zeropool.1.gz /usr/lib/$triplet/pkgconfig/zeropool.pc /usr/include/zeropool.h \
  /usr/share/doc/zeropool/README.md.gz /usr/share/doc/zeropool/examples/zeropool-dropin.conf; do
  check "package holds $f" grep -qx -- "$f" "$tmp/files"
done
check "the example drop-in names the multiarch library" eval 'dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/doc/zeropool/examples/zeropool-dropin.conf | grep -q "^Environment=LD_PRELOAD=/usr/lib/$triplet/libzeropool.so.0$"'
check "nothing under /usr/local" eval '! grep -q "^/usr/local" "$tmp/files"'
check "package name and version" eval 'dpkg-deb -f "$deb" Package Version | tr "\n" " " | grep -q "Package: zeropool Version: "'
check "depends on libunwind (loaded for backtraces), not on libjemalloc (linked in, private)" eval '! dpkg-deb -f "$deb" Depends | grep -q libjemalloc && dpkg-deb -f "$deb" Depends | grep -q libunwind'

#### a scratch root ####
dpkg -x "$deb" "$tmp/root"
lib=$tmp/root/usr/lib/$triplet/libzeropool.so.0
check "SONAME is libzeropool.so.0" eval 'readelf -d "$lib" | grep -q "SONAME.*\[libzeropool.so.0\]"'
check "the command is configured for /usr" grep -q "^ZP_LIBDIR='/usr/lib/$triplet'" "$tmp/root/usr/bin/zeropool"
export ZEROPOOL_LIB=$lib ZEROPOOL_CONFIG_HELPER=$tmp/root/usr/libexec/zeropool/zeropool-config
# (python3: coreutils close stderr at exit, before the statistics are written)
out=$("$tmp/root/usr/bin/zeropool" run --stats -- python3 -c 'print(len(bytearray(3000000)))' 2>"$tmp/err")
check "a program runs under the packaged library" [ "$out" = 3000000 ]
check "the packaged library wrote its statistics" grep -q "zeropool: statistics (pid" "$tmp/err"
check "the packaged command's config works" eval '"$tmp/root/usr/bin/zeropool" config | grep "^ZEROPOOL_THRESHOLD=64K  (default)" >/dev/null'
check "the man page renders" eval 'MANWIDTH=80 man -l "$tmp/root/usr/share/man/man1/zeropool.1.gz" 2>/dev/null | grep ZEROPOOL_THRESHOLD >/dev/null'
unset ZEROPOOL_LIB ZEROPOOL_CONFIG_HELPER

#### one version ####
version=$("$(dirname "$0")/../../scripts/version")
check "package version is meson.build's ($version)" eval '[ "$(dpkg-deb -f "$deb" Version)" = "$version" ]'
check "the packaged command says the same version" eval '[ "$("$tmp/root/usr/bin/zeropool" --version)" = "zeropool $version" ]'
check "the packaged header says the same version" grep -qx "#define ZEROPOOL_VERSION \"$version\"" "$tmp/root/usr/include/zeropool_version.h"
check "depends on glibc 2.36 (DT_RELR)" eval 'dpkg-deb -f "$deb" Depends | grep -q "libc6 (>= 2.36)"'

#### a real install and removal, in a private mount namespace (root only) ####
# apt install, /etc/ld.so.preload naming the library, then dpkg -r: the prerm must take the
# library out of the file first and say so. /etc is a copy bind-mounted over the real one, and
# /usr and /var are overlays whose changes land in the scratch directory: the machine's
# package database, its files and its /etc are never written.
if [ "$(id -u)" != 0 ]; then
  echo "skip the install: needs root"
elif dpkg -s zeropool >/dev/null 2>&1; then
  echo "skip the install: a zeropool package is installed on this machine"
elif ! unshare -m true 2>/dev/null || ! grep -qw overlay /proc/filesystems; then
  echo "skip the install: needs a private mount namespace (unshare -m) and overlayfs"
else
  mkdir -p "$tmp/ns"
  cp -a /etc "$tmp/ns/etc"
  for d in usr var; do mkdir -p "$tmp/ns/$d.up" "$tmp/ns/$d.work"; done
  unshare -m --propagation private bash "$0" --in-namespace "$tmp/ns" "$(realpath "$deb")" \
    "/usr/lib/$triplet/libzeropool.so.0" >"$tmp/ns.out" 2>&1
  grep -v "passed, .* failed$" "$tmp/ns.out"
  passed=$((passed + $(grep -c '^ok ' "$tmp/ns.out")))
  failed=$((failed + $(grep -c '^FAIL ' "$tmp/ns.out")))
  grep -qE '^(ok  |FAIL) dpkg --purge' "$tmp/ns.out" || { failed=$((failed + 1)); echo "FAIL the install in a namespace did not run to its end"; }
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
