#!/usr/bin/env bash
# Strict mode (ZEROPOOL_STRICT=1, strict:1 in ZEROPOOL_CONF or the system-wide file): any bad
# value or unknown name stops the program before main, with one line on stderr and exit 127.
# Off by default; a good configuration with strict on changes nothing. The system-wide file is
# tried through ZEROPOOL_CONF_FILE and, as root, as /etc/zeropool.conf in a private mount
# namespace over a copy of /etc (never the machine's own /etc).
# Usage: test_strict.sh LIBZEROPOOL ZEROPOOL-CONFIG
set -uo pipefail
LIB=$(realpath "$1") CONFIG=$(realpath "$2")

# shellcheck source=tests/ops/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
tmp=$(mktemp -d /tmp/zp-strict.XXXXXX)
chmod 755 "$tmp"
trap ops_cleanup EXIT

# run NAME ENV...: /bin/echo main under the library; stdout, stderr and the exit status kept.
run() {
  local name=$1
  shift
  env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/none.conf" "$@" /bin/echo main \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}
stopped() { # NAME TEXT: exit 127, main never ran, one line on stderr naming the problem
  [ "$(cat "$tmp/$1.rc")" = 127 ] && [ ! -s "$tmp/$1.out" ] &&
    [ "$(wc -l <"$tmp/$1.err")" = 1 ] && grep -q "^zeropool: strict mode: " "$tmp/$1.err" &&
    contains "$tmp/$1.err" "$2"
}
ran() { # NAME STDERR-LINES: exit 0, main ran, that many lines on stderr
  [ "$(cat "$tmp/$1.rc")" = 0 ] && [ "$(cat "$tmp/$1.out")" = main ] &&
    [ "$(wc -l <"$tmp/$1.err")" = "$2" ]
}

#### off by default ####
run default ZEROPOOL_THRESHOLD=12x
check "default: a bad value warns (one line) and the program runs" ran default 1
run strict0 ZEROPOOL_STRICT=0 ZEROPOOL_THRESHOLD=12x
check "ZEROPOOL_STRICT=0: the same" ran strict0 1

#### the environment ####
run env-bad ZEROPOOL_STRICT=1 ZEROPOOL_THRESHOLD=12x
check "ZEROPOOL_STRICT=1, a bad value: stopped before main, one line, exit 127" \
  stopped env-bad "ZEROPOOL_THRESHOLD=12x is invalid"
run env-unknown ZEROPOOL_STRICT=1 ZEROPOOL_TRESHOLD=128K
check "ZEROPOOL_STRICT=1, an unknown variable: stopped" stopped env-unknown "ZEROPOOL_TRESHOLD"
run env-two ZEROPOOL_STRICT=on ZEROPOOL_THRESHOLD=12x ZEROPOOL_SHARDS=3
check "two bad values: still one line, which counts them" stopped env-two "2 bad settings"
run conf-bad ZEROPOOL_STRICT=1 ZEROPOOL_CONF=threshold:12x
check "ZEROPOOL_STRICT=1, a bad ZEROPOOL_CONF value: stopped" stopped conf-bad "threshold=12x"
run conf-strict "ZEROPOOL_CONF=threshold:12x,strict:1"
check "strict:1 in ZEROPOOL_CONF (after the bad entry): stopped" stopped conf-strict "threshold=12x"
run env-good ZEROPOOL_STRICT=1 ZEROPOOL_THRESHOLD=128K "ZEROPOOL_CONF=shards:2,pin:off"
check "strict with a good configuration: runs, nothing on stderr" ran env-good 0
run env-over ZEROPOOL_STRICT=0 "ZEROPOOL_CONF=strict:1,threshold:12x"
check "ZEROPOOL_STRICT=0 wins over strict:1 in ZEROPOOL_CONF" ran env-over 1

check "the line names no kept default: the program does not go on" \
  eval '! contains "$tmp/env-bad.err" "keeping"'

#### zeropool config shows what strict mode would say ####
ZEROPOOL_CONF_FILE=/nonexistent ZEROPOOL_STRICT=1 ZEROPOOL_THRESHOLD=12x "$CONFIG" >"$tmp/config.out" 2>&1
check "zeropool config: strict mode's line, and that a program would stop" \
  eval 'contains "$tmp/config.out" "zeropool: strict mode: ZEROPOOL_THRESHOLD=12x is invalid" &&
        contains "$tmp/config.out" "a program started with these settings stops before main"'
ZEROPOOL_CONF_FILE=/nonexistent ZEROPOOL_STRICT=1 ZEROPOOL_THRESHOLD=12x "$CONFIG" --check >"$tmp/check.out" 2>&1
rc=$?
check "zeropool-config --check: exit 2 and strict mode's line" \
  eval '[ $rc = 2 ] && contains "$tmp/check.out" "strict mode: ZEROPOOL_THRESHOLD=12x"'

#### the system-wide file (ZEROPOOL_CONF_FILE) ####
printf '# strict\nstrict:1\nthreshold:12x\n' >"$tmp/bad.conf"
printf 'strict:1\nthreshold:128K\n' >"$tmp/good.conf"
env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/bad.conf" /bin/echo main >"$tmp/file-bad.out" \
  2>"$tmp/file-bad.err"
echo $? >"$tmp/file-bad.rc"
check "strict:1 in the file, a bad value there: stopped" stopped file-bad "threshold=12x"
env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/good.conf" ZEROPOOL_SHARDS=3 /bin/echo main \
  >"$tmp/file-env.out" 2>"$tmp/file-env.err"
echo $? >"$tmp/file-env.rc"
check "strict:1 in the file, a bad variable: stopped" stopped file-env "ZEROPOOL_SHARDS=3"
env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/good.conf" /bin/echo main >"$tmp/file-good.out" \
  2>"$tmp/file-good.err"
echo $? >"$tmp/file-good.rc"
check "strict:1 in a good file: runs, nothing on stderr" ran file-good 0

#### /etc/zeropool.conf in a private mount namespace ####
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
  cp -a /etc "$tmp/etc"
  cp "$tmp/bad.conf" "$tmp/etc/zeropool.conf"
  unshare -m --propagation private sh -c 'mount --bind "$1/etc" /etc && exec env LD_PRELOAD="$2" /bin/echo main' \
    sh "$tmp" "$LIB" >"$tmp/etc-bad.out" 2>"$tmp/etc-bad.err"
  echo $? >"$tmp/etc-bad.rc"
  check "strict:1 in /etc/zeropool.conf (own mount namespace), a bad value: stopped" \
    stopped etc-bad "/etc/zeropool.conf key threshold=12x"
  cp "$tmp/good.conf" "$tmp/etc/zeropool.conf"
  unshare -m --propagation private sh -c 'mount --bind "$1/etc" /etc && exec env LD_PRELOAD="$2" /bin/echo main' \
    sh "$tmp" "$LIB" >"$tmp/etc-good.out" 2>"$tmp/etc-good.err"
  echo $? >"$tmp/etc-good.rc"
  check "strict:1 in a good /etc/zeropool.conf: runs, nothing on stderr" ran etc-good 0

  # Secure-execution mode: a setuid program run by a user who is not root, the library in
  # /etc/ld.so.preload. The environment does not count, ZEROPOOL_STRICT included; strict:1 in
  # the root-owned file does, and then stops setuid programs too.
  if id nobody >/dev/null 2>&1 && command -v passwd >/dev/null && [ -u "$(command -v passwd)" ]; then
    echo "$LIB" >"$tmp/etc/ld.so.preload"
    setuid_run() { # NAME: passwd --help as nobody, the environment given after NAME
      local name=$1
      shift
      unshare -m --propagation private sh -c 'mount --bind "$1/etc" /etc && shift && exec "$@"' \
        sh "$tmp" setpriv --reuid=nobody --regid=nogroup --clear-groups env "$@" passwd --help \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
      echo $? >"$tmp/$name.rc"
    }
    rm -f "$tmp/etc/zeropool.conf"
    setuid_run suid-env ZEROPOOL_STRICT=1 ZEROPOOL_THRESHOLD=12x
    check "setuid: ZEROPOOL_STRICT=1 in the environment is ignored, the program runs" \
      eval '[ "$(cat "$tmp/suid-env.rc")" = 0 ] && grep -q "secure-execution mode" "$tmp/suid-env.err" &&
            ! grep -q "strict mode" "$tmp/suid-env.err"'
    cp "$tmp/bad.conf" "$tmp/etc/zeropool.conf"
    setuid_run suid-file
    check "setuid: strict:1 in the root-owned file with a bad value stops it too" \
      eval '[ "$(cat "$tmp/suid-file.rc")" = 127 ] && grep -q "^zeropool: strict mode: " "$tmp/suid-file.err"'
    rm -f "$tmp/etc/ld.so.preload"
  else
    echo "skip setuid: needs nobody and a setuid passwd"
  fi
else
  echo "skip /etc/zeropool.conf in a mount namespace: needs root and unshare -m"
fi

ops_finish
