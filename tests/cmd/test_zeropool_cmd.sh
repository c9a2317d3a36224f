#!/usr/bin/env bash
# shellcheck disable=SC2015 # "COND && pass || fail" is safe here: pass never fails.
# Tests of the zeropool command (scripts/zeropool): help and version, option checking and exit
# status 2 (the library's own verdict, through zeropool-config), the option -> ZEROPOOL_*
# mapping, LD_PRELOAD handling, exit status pass-through, `zeropool config`, and that the
# command and the man page cover every row of options.def. Needs no built library: a dummy
# shared object stands in for it; the options come from the real zeropool-config.
# Environment (all optional; meson sets them): ZP_CMD (the command, default: the tree's
# scripts/zeropool), ZP_CONFIGURED_CMD and ZP_MAN (meson's configured copies), ZP_VERSION,
# ZP_REAL_HELPER (a built zeropool-config), CC.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cmd=${ZP_CMD:-$root/scripts/zeropool}
version=${ZP_VERSION:-$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No ZEROPOOL_* or LD_PRELOAD from the caller may leak into the expectations.
while IFS='=' read -r var _; do
  case $var in ZEROPOOL_*) unset "$var" ;; esac
done < <(env)
unset LD_PRELOAD

passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }

# run EXPECTED_STATUS NAME CMD...: runs CMD with stdout in $out, stderr in $err.
out="" err="" status=0
run() {
  local want=$1 name=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  if [ "$status" -eq "$want" ]; then
    pass
    return 0
  fi
  fail "$name: exit status $status, expected $want (stderr: ${err:0:200})"
  return 1
}
has() { # NAME TEXT PATTERN: TEXT contains the fixed string PATTERN
  if grep -qF -- "$3" <<<"$2"; then pass; else fail "$1: no '$3' in: ${2:0:300}"; fi
}
hasnt() {
  if grep -qF -- "$3" <<<"$2"; then fail "$1: unexpected '$3' in: ${2:0:300}"; else pass; fi
}
line() { # NAME TEXT LINE: TEXT has exactly this line
  if grep -qxF -- "$3" <<<"$2"; then pass; else fail "$1: no line '$3' in: ${2:0:300}"; fi
}

trim() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$1"; }

#### a stand-in library ####
echo 'int zp_cmd_test_dummy;' >"$tmp/dummy.c"
read -r -a ccmd <<<"${CC:-cc}"
if ! "${ccmd[@]}" -shared -fPIC -o "$tmp/libdummy.so" "$tmp/dummy.c"; then
  echo "cannot build a dummy shared object with ${CC:-cc}" >&2
  exit 1
fi
cp "$tmp/libdummy.so" "$tmp/a.so"
cp "$tmp/libdummy.so" "$tmp/b.so"
export ZEROPOOL_LIB=$tmp/libdummy.so
helper=${ZP_REAL_HELPER:-$root/build/config/zeropool-config}
if [ ! -x "$helper" ]; then
  echo "no zeropool-config at $helper: build it first" >&2
  exit 1
fi
export ZEROPOOL_CONFIG_HELPER=$helper

#### help and version ####
for h in --help -h help; do
  run 0 "zeropool $h" "$cmd" "$h" && has "zeropool $h" "$out" "Usage: zeropool run"
done
run 0 "zeropool run --help" "$cmd" run --help && has "run --help" "$out" "Usage:"
run 0 "zeropool --version" "$cmd" --version && line "--version" "$out" "zeropool $version"
run 2 "no arguments" "$cmd" && has "no arguments" "$err" "Usage:"
run 2 "unknown command" "$cmd" frobnicate && has "unknown command" "$err" "zeropool: unknown command 'frobnicate'"

#### bad options and values: one line "zeropool: ...", exit status 2 ####
bad() { # NAME EXPECTED-MESSAGE ARGS...
  local name=$1 msg=$2
  shift 2
  run 2 "$name" "$cmd" run "$@" -- true || return
  has "$name" "$err" "$msg"
  [ "$(wc -l <<<"$err")" -eq 1 ] && [[ $err == zeropool:* ]] && pass ||
    fail "$name: not one line starting with 'zeropool:': $err"
}
bad "unknown option" "unknown option '--frobnicate'" --frobnicate
bad "near miss" "did you mean --threshold?" --treshold 1M
bad "near miss with dashes" "did you mean --max-pooled?" --max-poled 1M
bad "unknown short option" "unknown option '-x'" -x
# Values: the library's parser decides, and malformed and out-of-range are refused alike,
# with the accepted range in the message.
bad "bad size" "ZEROPOOL_THRESHOLD=12Q is invalid: expected a size" --threshold 12Q
bad "bad size (=)" "ZEROPOOL_MAX_POOLED=1.5M is invalid" --max-pooled=1.5M
bad "negative size" "ZEROPOOL_POOL_BYTES=-1 is invalid" --pool-bytes -1
bad "size too small" "ZEROPOOL_THRESHOLD=1K is invalid: expected a size (K, M, G, T suffixes) from 4K to 1G" --threshold 1K
bad "budget too small" "from 1M to 1T or auto" --pool-bytes 512K
bad "bad count" "ZEROPOOL_TLS_CACHE=many is invalid: expected a whole number from 0 to 64" --tls-cache many
bad "count too large" "ZEROPOOL_TLS_CACHE=65 is invalid: expected a whole number from 0 to 64" --tls-cache 65
bad "bad power of two" "ZEROPOOL_SHARDS=3 is invalid: expected a power of two" --shards 3
bad "bad enum" "expected one of lifo, clock-pro" --eviction fifo
bad "bad zero-on-alloc" "expected one of off, on, verify" --zero-on-alloc sometimes
bad "bad on-error" "expected one of abort, report" --on-error ignore
bad "bad stats" "expected one of 0, 1, json" --stats=xml
bad "bad boolean" "ZEROPOOL_PIN=maybe is invalid: expected one of 0, 1, true, false, yes, no, on, off" --pin=maybe
bad "value for --no-" "takes no value" --no-guard=1
bad "--no- of a non-boolean" "unknown option '--no-threshold'" --no-threshold
bad "missing value" "option --threshold needs a value" --threshold
bad "missing conf value" "option --conf needs a value" --conf
bad "conf unknown key" "unknown ZEROPOOL_CONF key treshold; did you mean threshold?" --conf threshold:1M,treshold:2M
bad "conf without colon" "ZEROPOOL_CONF entry \"pin\" has no ':'" --conf pin
bad "conf bad value" "ZEROPOOL_CONF key guard=x is invalid" --conf guard:x
bad "conf bad size" "ZEROPOOL_CONF key max_pooled=lots is invalid" --conf "max_pooled:lots"
# A ';' gets a hint, on a second line.
run 2 "conf with ';'" "$cmd" run --conf "threshold:128K;verbose:true" -- true &&
  has "conf with ';'" "$err" "separates entries with ',' (key:value,key:value), not ';'"
# An inherited bad variable is refused the same way: it would reach the library too.
run 2 "inherited bad value" env ZEROPOOL_SHARDS=3 "$cmd" run --pin -- true &&
  has "inherited bad value" "$err" "ZEROPOOL_SHARDS=3 is invalid"
hasnt "refusal says no 'keeping'" "$err" "keeping"
run 2 "no program" "$cmd" run --stats && has "no program" "$err" "no program given"
run 2 "no program after --" "$cmd" run -- && has "no program after --" "$err" "no program given"
run 127 "program not found" "$cmd" run -- zp-no-such-program-here &&
  has "program not found" "$err" "zp-no-such-program-here: command not found"
run 2 "config takes no program" "$cmd" config env && has "config takes no program" "$err" "unexpected argument"

#### each option sets its variable ####
maps() { # EXPECTED-LINE ARGS...: `zeropool run ARGS -- env` prints the line
  local want=$1
  shift
  run 0 "run $*" "$cmd" run "$@" -- env && line "run $*" "$out" "$want"
}
maps ZEROPOOL_THRESHOLD=128K --threshold 128K
maps ZEROPOOL_THRESHOLD=1MiB --threshold=1MiB
maps ZEROPOOL_MAX_POOLED=256M --max-pooled 256M
maps ZEROPOOL_POOL_BYTES=2G --pool-bytes=2G
maps ZEROPOOL_POOL_BYTES=auto --pool-bytes auto
maps ZEROPOOL_SHARDS=8 --shards 8
maps ZEROPOOL_TLS_CACHE=0 --tls-cache 0
maps ZEROPOOL_TLS_CACHE_BYTES=16M --tls-cache-bytes 16M
maps ZEROPOOL_MAX_PER_SHARD=32 --max-per-shard=32
maps ZEROPOOL_EVICTION=lifo --eviction lifo
maps ZEROPOOL_EVICTION=clock-pro --eviction=clock-pro
maps ZEROPOOL_PIN=1 --pin
maps ZEROPOOL_PIN=0 --no-pin
maps ZEROPOOL_PIN=yes --pin=yes
maps ZEROPOOL_STATS=on --stats=on
maps ZEROPOOL_GUARD=1 --guard
maps ZEROPOOL_GUARD=0 --no-guard
maps ZEROPOOL_DONTDUMP=1 --dontdump
maps ZEROPOOL_DONTDUMP=0 --no-dontdump
maps ZEROPOOL_ZERO_ON_ALLOC=verify --zero-on-alloc verify
maps ZEROPOOL_SCRUB_SMALL=1 --scrub-small
maps ZEROPOOL_SCRUB_SMALL=0 --no-scrub-small
maps ZEROPOOL_ON_ERROR=report --on-error=report
maps ZEROPOOL_STATS=1 --stats
maps ZEROPOOL_STATS=json --stats=json
maps ZEROPOOL_STATS_FILE=/tmp/zp.%p --stats-file /tmp/zp.%p
maps ZEROPOOL_TRACE_ALLOC=1 --trace-alloc
maps ZEROPOOL_VERBOSE=1 --verbose
maps ZEROPOOL_DISABLE=1 --disable
maps ZEROPOOL_CONF=threshold:1M,pin:on --conf threshold:1M,pin:on
maps ZEROPOOL_CONF=shards:4,guard:0 --conf shards:4 --conf=guard:0
maps ZEROPOOL_THRESHOLD=256K --threshold 1M --threshold 256K
# Several at once, and the program's own options stay the program's.
run 0 "several options" "$cmd" run --pin --shards 2 --stats=json env --help
has "program's own --help" "$out" "Usage: env"
run 0 "several options" "$cmd" run --pin --shards 2 --stats=json -- env
line "several: pin" "$out" ZEROPOOL_PIN=1
line "several: shards" "$out" ZEROPOOL_SHARDS=2
line "several: stats" "$out" ZEROPOOL_STATS=json
# Without options nothing is set; a variable from the environment stays unless an option sets it.
run 0 "no options" "$cmd" run env && hasnt "no options" "$(grep '^ZEROPOOL_' <<<"$out")" ZEROPOOL_
run 0 "inherited variable" env ZEROPOOL_GUARD=0 ZEROPOOL_PIN=1 "$cmd" run --no-pin -- env
line "inherited variable stays" "$out" ZEROPOOL_GUARD=0
line "option wins over inherited" "$out" ZEROPOOL_PIN=0

#### LD_PRELOAD ####
run 0 "LD_PRELOAD set" "$cmd" run printenv LD_PRELOAD && line "LD_PRELOAD set" "$out" "$ZEROPOOL_LIB"
run 0 "LD_PRELOAD prepended" env LD_PRELOAD="$tmp/a.so $tmp/b.so" "$cmd" run printenv LD_PRELOAD &&
  line "LD_PRELOAD prepended" "$out" "$ZEROPOOL_LIB:$tmp/a.so:$tmp/b.so"
run 0 "LD_PRELOAD no duplicate" env LD_PRELOAD="$tmp/a.so:$ZEROPOOL_LIB" "$cmd" run printenv LD_PRELOAD &&
  line "LD_PRELOAD no duplicate" "$out" "$ZEROPOOL_LIB:$tmp/a.so"
# shellcheck disable=SC2016
run 0 "relative ZEROPOOL_LIB" bash -c 'cd "$1" && ZEROPOOL_LIB=libdummy.so "$2" run printenv LD_PRELOAD' _ "$tmp" "$cmd" &&
  line "relative ZEROPOOL_LIB" "$out" "$tmp/libdummy.so"
run 0 "command variables not passed on" env ZEROPOOL_CONFIG_HELPER=/x "$cmd" run env &&
  hasnt "command variables not passed on" "$out" "ZEROPOOL_LIB=" &&
  hasnt "command variables not passed on" "$out" "ZEROPOOL_CONFIG_HELPER="
run 2 "missing library" env ZEROPOOL_LIB="$tmp/nope.so" "$cmd" run true &&
  has "missing library" "$err" "zeropool: no library at $tmp/nope.so"

#### the exit status is the program's ####
run 7 "exit status 7" "$cmd" run -- sh -c 'exit 7'
run 0 "exit status 0" "$cmd" run true
run 1 "exit status 1" "$cmd" run false
# (in a child bash, which reports "Terminated" on its own stderr)
# shellcheck disable=SC2016
run 143 "killed by SIGTERM" bash -c '"$1" run -- sh -c "kill -TERM \$\$"; exit $?' _ "$cmd"
# exec: the program has the command's process ID.
# shellcheck disable=SC2016
run 0 "exec, same pid" bash -c '"$1" run sh -c "echo \$\$" & wait_pid=$!; wait $wait_pid; echo $wait_pid' _ "$cmd" &&
  { [ "$(sed -n 1p <<<"$out")" = "$(sed -n 2p <<<"$out")" ] && pass || fail "exec: pids differ: $out"; }
run 0 "program arguments kept" "$cmd" run printf '%s|' "a b" "" "--pin" &&
  line "program arguments kept" "$out" "a b||--pin|"

#### the tree's copy: version from meson.build, library from build/ ####
mkdir -p "$tmp/tree/scripts"
cp "$root/scripts/zeropool" "$tmp/tree/scripts/"
printf "project('zeropool', 'c',\n  version: '9.8.7',\n  meson_version: '>= 0.63')\n" >"$tmp/tree/meson.build"
run 0 "tree version" "$tmp/tree/scripts/zeropool" --version && line "tree version" "$out" "zeropool 9.8.7"
run 2 "tree library missing" env -u ZEROPOOL_LIB "$tmp/tree/scripts/zeropool" run true &&
  has "tree library missing" "$err" "$tmp/tree/build/interpose/libzeropool.so" &&
  has "tree library missing" "$err" "meson compile -C build"
mkdir -p "$tmp/tree/build/interpose"
cp "$tmp/libdummy.so" "$tmp/tree/build/interpose/libzeropool.so"
run 0 "tree library found" env -u ZEROPOOL_LIB "$tmp/tree/scripts/zeropool" run printenv LD_PRELOAD &&
  line "tree library found" "$out" "$tmp/tree/build/interpose/libzeropool.so"
ln -s "$tmp/tree/scripts/zeropool" "$tmp/zeropool-link"
run 0 "through a symlink" env -u ZEROPOOL_LIB "$tmp/zeropool-link" run printenv LD_PRELOAD &&
  line "through a symlink" "$out" "$tmp/tree/build/interpose/libzeropool.so"

#### zeropool config ####
cat >"$tmp/helper" <<EOF
#!/bin/sh
case "\$1" in --*) exec "$helper" "\$@" ;; esac
env | grep '^ZEROPOOL_' | sort
exit 3
EOF
chmod +x "$tmp/helper"
run 3 "config with a helper" env ZEROPOOL_CONFIG_HELPER="$tmp/helper" "$cmd" config --shards 16 --conf pin:1
line "config: version" "$out" "zeropool $version"
has "config: library" "$out" "library: $ZEROPOOL_LIB (found"
line "config: option" "$out" ZEROPOOL_SHARDS=16
line "config: conf" "$out" ZEROPOOL_CONF=pin:1
hasnt "config: command variables" "$out" ZEROPOOL_LIB=
run 2 "config: bad option" env ZEROPOOL_CONFIG_HELPER="$tmp/helper" "$cmd" config --shards 6
run 2 "config: helper missing" env ZEROPOOL_CONFIG_HELPER="$tmp/none" "$cmd" config &&
  has "config: helper missing" "$err" "$tmp/none"
run 2 "config: out of range refused" "$cmd" config --pool-bytes 512K &&
  has "config: out of range refused" "$err" "from 1M to 1T"
run 0 "config with zeropool-config" "$cmd" config --threshold 128K &&
  has "zeropool-config shows the option" "$out" "ZEROPOOL_THRESHOLD=128K  (env)"
# The command's own variables are never the library's unknown variables.
run 0 "command variables not unknown" env ZEROPOOL_LIB=/x ZEROPOOL_CONFIG_HELPER="$helper" "$helper" &&
  hasnt "command variables not unknown" "$err" "unknown variable"
# Every boolean word for ZEROPOOL_STATS, as for the boolean options.
for w in on yes true 1 off no false 0 json; do
  run 0 "ZEROPOOL_STATS=$w accepted" env ZEROPOOL_STATS=$w "$helper" --check
done
# Where each value came from: the system-wide file < ZEROPOOL_CONF < a variable.
printf '# a system-wide file\nthreshold:256K\nshards:2, pin:on\n' >"$tmp/sys.conf"
run 0 "config sources" env ZEROPOOL_CONF_FILE="$tmp/sys.conf" ZEROPOOL_CONF=shards:4 "$cmd" config --no-pin
line "file value" "$out" "ZEROPOOL_THRESHOLD=256K  ($tmp/sys.conf)"
line "ZEROPOOL_CONF over the file" "$out" "ZEROPOOL_SHARDS=4  (ZEROPOOL_CONF)"
line "variable over the file" "$out" "ZEROPOOL_PIN=off  (env)"
has "file named" "$out" "system-wide file: $tmp/sys.conf (read)"
# A statistics file alone means JSON.
run 0 "stats file implies json" env ZEROPOOL_STATS_FILE=/tmp/x "$helper"
line "stats file implies json" "$out" "ZEROPOOL_STATS=json  (implied by ZEROPOOL_STATS_FILE)"

#### the command and the man page cover options.def ####
# The command has no option table of its own: its options are the helper's list.
def_file=$root/config/options.def
man_in=$root/scripts/zeropool.1.in
man_text=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$man_in" 2>/dev/null || true)
grep -q '^opt_rows=' "$root/scripts/zeropool" && fail "scripts/zeropool keeps its own option table" || pass
rows=$(sed -n 's/^ZP_OPT(\([A-Z_]*\), *\([a-z_]*\), *\([A-Z0-9]*\), *\([^,]*\),.*/\1 \2 \3 \4/p' "$def_file")
[ "$(wc -l <<<"$rows")" -ge 19 ] && pass || fail "options.def: only $(wc -l <<<"$rows") rows read"
[ "$(wc -l <<<"$rows")" -eq "$("$helper" --list | wc -l)" ] && pass || fail "zeropool-config --list and options.def differ in length"
run 0 "--help" "$cmd" --help
help_text=$out
while read -r name field type def; do
  opt=${field//_/-}
  has "--help lists --$opt" "$help_text" "--$opt"
  grep -q "^\.B ZEROPOOL_$name\$" "$man_in" && pass || fail "zeropool.1 does not document ZEROPOOL_$name"
  if [ -n "$man_text" ]; then
    grep -qF -- "--$opt" <<<"$man_text" && pass || fail "zeropool.1 does not document --$opt"
  fi
  # Each option reaches its variable.
  case $type in
  BOOL) run 0 "--$opt sets ZEROPOOL_$name" "$cmd" run "--$opt" -- printenv "ZEROPOOL_$name" ;;
  PATH) run 0 "--$opt sets ZEROPOOL_$name" "$cmd" run "--$opt" /tmp/zp-x -- printenv "ZEROPOOL_$name" ;;
  *) ;;
  esac
done <<<"$rows"

# Defaults and ranges in the man page match the library's table, as zeropool-config prints it.
if [ -n "$man_text" ] && [ -n "${ZP_REAL_HELPER:-}" ] && [ -x "$ZP_REAL_HELPER" ]; then
  env_text=$(sed -n '/^ENVIRONMENT/,/^AUTO-CONFIGURATION/p' <<<"$man_text" | tr -s ' ')
  while IFS='|' read -r _ var type default range _; do
    var=$(tr -d '` ' <<<"$var")
    default=$(tr -d '` ' <<<"$default")
    [[ $var == ZEROPOOL_* ]] && [ "$var" != ZEROPOOL_CONF ] || continue
    range=$(trim "${range%%,*}")
    para=$(awk -v v="$var" '$1 == v && NF == 1 { on = 1; next } on && NF == 0 { exit } on' <<<"$env_text" |
      tr '\n' ' ' | tr -s ' ')
    has "zeropool.1 default of $var" "${para,,}" "default ${default,,}"
    if [[ $type == *size* || $type == *count* || $type == *power* ]]; then
      has "zeropool.1 range of $var" "${para,,}" "from ${range,,}"
    fi
  done < <("$ZP_REAL_HELPER" --markdown-options)
fi

#### one option list: every page that lists options follows the library's table ####
# (docs/configuration.md's table is generated and compared by tests/docs/check_tables.sh.)
# The keys of ZEROPOOL_CONF in the man page are the table's keys.
man_keys=$(awk '/in any case:/ { on = 1; next } on && /^Blanks around/ { exit } on' "$man_in" |
  tr -c 'a-z_\n' ' ' | tr -s ' ' '\n' | grep -E '^[a-z_]{2,}$' | grep -vx 'or' | sort)
def_keys=$("$helper" --list | cut -f1 | sort)
[ "$man_keys" = "$def_keys" ] && pass ||
  fail "zeropool.1's ZEROPOOL_CONF keys differ from the option table: $(diff <(echo "$man_keys") <(echo "$def_keys") | grep '^[<>]' | tr '\n' ' ')"
# `zeropool config` prints every option.
run 0 "config lists every option" "$cmd" config
config_out=$out
while IFS=$'\t' read -r key _; do
  grep -q "^ZEROPOOL_${key^^}=" <<<"$config_out" && pass || fail "zeropool config does not print ZEROPOOL_${key^^}"
done < <("$helper" --list)
# The suffixes of sizes and times: what the library accepts (its own message for a bad value)
# is what --help, the man page and docs/configuration.md say.
conf_doc=$root/docs/configuration.md
for type in size time; do
  key=$("$helper" --list | awk -F '\t' -v t="$type" '$2 == t { print $1; exit }')
  [ -n "$key" ] || continue
  msg=$(env "ZEROPOOL_${key^^}=zz" "$helper" --check 2>&1 >/dev/null)
  letters=$(sed -n "s/.*a $type (\([^)]*\) suffixes).*/\1/p" <<<"$msg" | head -n 1)
  [ -n "$letters" ] && pass || { fail "no suffix list in the library's message for a bad $type: $msg"; continue; }
  spoken=$(sed 's/, \([^,]*\)$/ or \1/' <<<"$letters")   # "K, M, G, T" -> "K, M, G or T"
  slashed=${letters//, //}                                 # "K/M/G/T"
  has "--help names the $type suffixes" "$(tr -s ' \n' '  ' <<<"$help_text")" "$spoken"
  [ -z "$man_text" ] || has "zeropool.1 names the $type suffixes" "$(tr -s ' \n' '  ' <<<"$man_text")" "$spoken"
  has "docs/configuration.md names the $type suffixes" "$(cat "$conf_doc")" "$slashed"
done
# Every ZEROPOOL_* name the pages mention exists: an option, or one of the few names that are
# not options (the key list, the file override, the command's own, the test switch).
not_options=" ZEROPOOL_CONF ZEROPOOL_CONF_FILE ZEROPOOL_LIB ZEROPOOL_CONFIG_HELPER ZEROPOOL_STATUS_HELPER ZEROPOOL_LONG_TESTS ZEROPOOL_VERSION "
for page in "$root/README.md" "$root/SECURITY.md" "$root"/docs/*.md "$man_in" help; do
  if [ "$page" = help ]; then text=$help_text; else text=$(cat "$page"); fi
  # An installed path names the library by its SONAME: libzeropool.so is only the link for
  # linking against it.
  grep -qE '(/usr/lib/[^ ]*/|@LIBDIR@/)libzeropool\.so([^.]|$)' <<<"$text" &&
    fail "${page#"$root"/} gives the installed library as libzeropool.so, not libzeropool.so.0" || pass
  for name in $(grep -oE 'ZEROPOOL_[A-Z_]*[A-Z]' <<<"$text" | sort -u); do
    [[ $not_options == *" $name "* ]] && continue
    grep -qx "${name#ZEROPOOL_}" <<<"$("$helper" --list | cut -f1 | tr a-z A-Z)" && pass ||
      fail "${page#"$root"/} mentions $name, which is no option (config/options.def)"
  done
done

#### meson's configured copies ####
if [ -n "${ZP_CONFIGURED_CMD:-}" ]; then
  c=$ZP_CONFIGURED_CMD
  [ -x "$c" ] && pass || fail "configured command $c is not executable"
  grep -qE '@[A-Z_]+@' "$c" && fail "configured command still has placeholders" || pass
  run 0 "configured --version" "$c" --version && line "configured --version" "$out" "zeropool $version"
  run 0 "configured run" "$c" run --pin -- printenv LD_PRELOAD ZEROPOOL_PIN &&
    line "configured run" "$out" "$ZEROPOOL_LIB"
  # Without ZEROPOOL_LIB it looks in the install's libdir, not in the tree.
  env -u ZEROPOOL_LIB "$c" run true >/dev/null 2>"$tmp/err"
  s=$? e=$(cat "$tmp/err")
  if [ $s -eq 2 ]; then
    has "configured library path" "$e" "libzeropool.so.0 is missing" && hasnt "configured library path" "$e" "/build/interpose/"
  else
    [ $s -eq 0 ] && pass || fail "configured run without ZEROPOOL_LIB: status $s: $e"
  fi
fi
if command -v man >/dev/null 2>&1; then
  man_file=${ZP_MAN:-$man_in}
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$man_file" 2>&1 >"$tmp/man.txt")
  [ -z "$w" ] && pass || fail "man page warnings: $w"
  has "man page renders" "$(cat "$tmp/man.txt")" "ZEROPOOL_CONF"
  if [ -n "${ZP_MAN:-}" ]; then
    hasnt "man page placeholders" "$(cat "$tmp/man.txt")" "@VERSION@"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
