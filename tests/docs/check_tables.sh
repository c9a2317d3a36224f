#!/usr/bin/env bash
# The option and scaling tables of docs/configuration.md must equal what the option table
# (config/options.def) generates, and no other page may keep a copy of either: the top README
# points to docs/configuration.md instead.
# usage: check_tables.sh ZEROPOOL_CONFIG docs/configuration.md [OTHER.md...]
set -euo pipefail
tool=$1 doc=$2
shift 2
pass=0 fail=0
check() { # name, generator flag, start marker
  local name=$1 flag=$2 marker=$3
  local want have
  want=$("$tool" "$flag")
  have=$(awk -v m="$marker" 'index($0, m) { on = 1; next } on && /<!-- end / { exit } on' "$doc")
  if [ "$want" = "$have" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "$doc: the $name table is out of date; regenerate it with: $tool $flag" >&2
    diff <(echo "$want") <(echo "$have") >&2 || true
  fi
}
check options --markdown-options '<!-- options table'
check scaling --markdown-scaling '<!-- scaling table'
# A second copy would drift: the generated rows live in one page only.
first_row=$("$tool" --markdown-options | sed -n 3p)
for other in "$@"; do
  if grep -qF -- "$first_row" "$other" || grep -q '<!-- \(options\|scaling\) table' "$other"; then
    fail=$((fail + 1))
    echo "$other keeps a copy of a generated table: link to $doc instead" >&2
  else
    pass=$((pass + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
