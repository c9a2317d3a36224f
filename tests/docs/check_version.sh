#!/usr/bin/env bash
# One version: project() in meson.build is the only place it is written; the header, the
# command, the man page, the pkg-config file and the library all carry meson's value, and no
# source file spells a version of its own. (A 0.1.1 package once reported 0.1.0: the header
# kept its own copy.)
# usage: check_version.sh SOURCE_ROOT BUILD_ROOT VERSION
set -uo pipefail
src=$1 build=$2 version=$3
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
same() { [ "$1" = "$2" ] || { echo "     want '$2', have '$1'"; return 1; }; }

check "meson.build's version is X.Y.Z" eval '[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]'
# No copy in the sources: the version, quoted, appears nowhere but meson.build.
v_re=${version//./\\.}
copies=$(cd "$src" && grep -rlE -- "[\"']$v_re[\"']" config core interpose scripts tests bench/*.c 2>/dev/null)
check "no source file spells the version ($version) itself" eval '[ -z "$copies" ] || { echo "     $copies"; false; }'
defs=$(cd "$src" && grep -rn '^#define ZEROPOOL_VERSION "[0-9]' config core interpose 2>/dev/null)
check "ZEROPOOL_VERSION is defined only by the generated header" eval '[ -z "$defs" ] || { echo "     $defs"; false; }'

h=$(sed -n 's/^#define ZEROPOOL_VERSION "\(.*\)"$/\1/p' "$build/core/zeropool_version.h" 2>/dev/null)
check "core/zeropool_version.h (generated)" same "$h" "$version"
check "zeropool --version (the configured command)" same "$("$build/scripts/zeropool" --version)" "zeropool $version"
check "the man page's header" same "$(sed -n 's/^\.TH ZEROPOOL 1 "" "\([^"]*\)".*/\1/p' "$build/scripts/zeropool.1")" "zeropool $version"
pc=$(sed -n 's/^Version: //p' "$build/meson-private/zeropool.pc" 2>/dev/null)
check "zeropool.pc" same "$pc" "$version"
check "libzeropool.so holds the version" grep -qaF -- "$version" "$build/interpose/libzeropool.so"
check "the tree's command reads meson.build" same "$("$src/scripts/zeropool" --version)" "zeropool $version"
check "scripts/version (scripts/package and scripts/fuzz)" same "$("$src/scripts/version")" "$version"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
