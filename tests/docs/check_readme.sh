#!/usr/bin/env bash
# The README's option and scaling tables must equal what the option table generates.
# usage: check_readme.sh ZEROPOOL_CONFIG README.md
set -euo pipefail
tool=$1 readme=$2
pass=0 fail=0
check() { # name, generator flag, start marker
  local name=$1 flag=$2 marker=$3
  local want have
  want=$("$tool" "$flag")
  have=$(awk -v m="$marker" 'index($0, m) { on = 1; next } on && /<!-- end / { exit } on' "$readme")
  if [ "$want" = "$have" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "README $name table is out of date; regenerate it with: $tool $flag" >&2
    diff <(echo "$want") <(echo "$have") >&2 || true
  fi
}
check options --markdown-options '<!-- options table'
check scaling --markdown-scaling '<!-- scaling table'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
