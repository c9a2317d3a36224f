#!/usr/bin/env bash
# The library installed system-wide: /etc/ld.so.preload names it, so every program on the
# machine loads it, setuid ones included. Tried in a private mount namespace over a copy of /etc
# (never the machine's own /etc), with a good and with a broken /etc/zeropool.conf: every
# program of the battery must give the same exit status, stdout and stderr as without the
# library. Exit 77 (skip) when not root or when the kernel refuses the mount namespace.
# Usage: test_systemwide.sh LIBZEROPOOL
set -uo pipefail
LIB=$(realpath "$1")
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (mount namespace, setuid programs)"; exit 77; }
unshare -m --propagation private true 2>/dev/null ||
  { echo "SKIP: the kernel refuses a private mount namespace here"; exit 77; }

# shellcheck source=tests/ops/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
tmp=$(mktemp -d /tmp/zp-systemwide.XXXXXX)
chmod 755 "$tmp"
trap ops_cleanup EXIT
printf 'sort me\nb\na\n' >"$tmp/input"
chmod 644 "$tmp/input"

# The battery: one command a line, run by bash -c; ordinary programs, setuid programs run by a
# user who is not root (so that they run in secure-execution mode), interpreters, and a
# 2>&1 capture. Nothing whose output depends on the time or a process ID.
nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
battery=(
  "true"
  "false"
  "ls -d / /etc /usr"
  "sort $tmp/input"
  "grep -c a $tmp/input"
  "sed s/a/A/ $tmp/input"
  "awk '{ n += length(\$0) } END { print n }' $tmp/input"
  "gzip -c $tmp/input | gzip -dc | sha256sum"
  "xz -c $tmp/input | xz -dc | wc -c"
  "tar -cf - -C $tmp input | tar -tf -"
  "perl -e 'print join(\",\", map { \$_ * 2 } 1..5), qq(\\n)'"
  "git --version"
  "id -u"
  "cat /no/such/file"
  "sh -c 'echo out; echo err >&2; exit 3' 2>&1"
  "$nobody su --help"
  "$nobody passwd --help"
  "$nobody chfn --help"
  "$nobody mount --version"
  "$nobody newgrp --help"
  "$nobody id -un"
  "python3 -c 'import json, sys; print(json.dumps({\"a\": [1, 2]})); sys.stderr.write(\"e\\n\")'"
  "python3 -c 'b = bytearray(1 << 22); print(len(b))'"
  "node -e 'console.log([1, 2, 3].map(x => x * x).join(\" \")); console.error(\"e\")'"
  "java -version 2>&1"
)
for prog in java node python3 perl git xz setpriv; do
  command -v "$prog" >/dev/null || echo "note: $prog is not installed: its lines fail alike with and without"
done
cat >"$tmp/run.sh" <<'EOF'
# run.sh OUTDIR COMMAND...: each command's stdout, stderr and exit status into OUTDIR.
out=$1
shift
mkdir -p "$out"
i=0
for cmd in "$@"; do
  bash -c "$cmd" >"$out/$i.out" 2>"$out/$i.err" </dev/null
  echo $? >"$out/$i.rc"
  i=$((i + 1))
done
grep -c libzeropool /proc/self/maps >"$out/loaded" # this shell: is the library there?
EOF

cp -a /etc "$tmp/etc"
echo "$LIB" >"$tmp/etc/ld.so.preload"
in_namespace() { # OUTDIR: the battery with the copy of /etc over /etc
  unshare -m --propagation private bash -c 'mount --bind "$1/etc" /etc && shift && exec bash "$@"' \
    sh "$tmp" "$tmp/run.sh" "$1" "${battery[@]}"
}

bash "$tmp/run.sh" "$tmp/plain" "${battery[@]}"
printf '# good\nthreshold:128K\nscrub_small:on\n' >"$tmp/etc/zeropool.conf"
in_namespace "$tmp/good"
printf 'threshold:12x\nno_such_key:1;pin:on\nstats_interval:5m\ngarbage\n' >"$tmp/etc/zeropool.conf"
in_namespace "$tmp/broken"

check "without the preload: the library is not loaded" [ "$(cat "$tmp/plain/loaded")" = 0 ]
for conf in good broken; do
  check "$conf /etc/zeropool.conf: the library is loaded system-wide" \
    [ "$(cat "$tmp/$conf/loaded" 2>/dev/null || echo 0)" -ge 1 ]
  for ((i = 0; i < ${#battery[@]}; i++)); do
    same=1
    for part in rc out err; do
      cmp -s "$tmp/plain/$i.$part" "$tmp/$conf/$i.$part" || same=0
    done
    check "$conf /etc/zeropool.conf: ${battery[$i]}" [ $same = 1 ]
    if [ $same = 0 ]; then
      for part in rc out err; do
        diff "$tmp/plain/$i.$part" "$tmp/$conf/$i.$part" | head -5 | sed "s/^/     $part| /"
      done
    fi
  done
done
check "the machine's own /etc is untouched" [ ! -e /etc/ld.so.preload ] || ! grep -qF "$LIB" /etc/ld.so.preload
ops_finish
