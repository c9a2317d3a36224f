#!/usr/bin/env bash
# The top README stays an admin's page: at most 300 lines, the demo and the test suite within
# its first 40, every deployment recipe (a ### section under "## Deploy") ending with how to
# verify it and how to roll it back, and every relative link pointing at a file that exists.
# usage: check_readme.sh README.md
set -uo pipefail
readme=$1 dir=$(dirname "$1")
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
check "at most 300 lines ($(wc -l <"$readme"))" [ "$(wc -l <"$readme")" -le 300 ]
check "scripts/demo within the first 40 lines" eval 'head -n 40 "$readme" | grep -q "^scripts/demo "'
check "scripts/test within the first 40 lines" eval 'head -n 40 "$readme" | grep -q "^scripts/test "'
recipes=$(awk '/^## / { deploy = ($0 ~ /^## Deploy/) } deploy && /^### / { sub(/^### /, ""); print }' "$readme")
check "the Deploy section has recipes" [ -n "$recipes" ]
while IFS= read -r r; do
  [ -n "$r" ] || continue
  body=$(awk -v r="### $r" '$0 == r { on = 1; next } on && /^##/ { exit } on' "$readme")
  check "recipe '$r' says how to verify it (zeropool status)" grep -q '^- verify.*zeropool status' <<<"$body"
  check "recipe '$r' says how to roll it back" grep -q '^- roll back' <<<"$body"
done <<<"$recipes"
for link in $(grep -oE '\]\([^)#: ]+' "$readme" | sed 's/^](//' | sort -u); do
  check "link $link exists" [ -e "$dir/$link" ]
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
