#!/bin/sh
# Builds jemalloc-private.o: Debian's libjemalloc_pic.a as one relocatable object in which
# every public name of jemalloc (malloc, free, mallocx, mallctl, malloc_conf, ...) is renamed
# zp_je_<name>. libzeropool.so links it in and exports none of it (exports.map), so neither
# the program nor a library it loads can reach this copy of jemalloc, and a program's own
# jemalloc is untouched. jemalloc's C++ operators are left out: ours route by ownership.
#   usage: jemalloc-private.sh libjemalloc_pic.a out.o
set -eu
archive=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$tmp"
ar x "$archive"
# Every member that defines a C++ name (jemalloc_cpp.o) would bring libstdc++ in.
for o in *.o; do
    if nm --defined-only -g "$o" | awk 'NF == 3 && $3 ~ /^_Z/ {found = 1} END {exit !found}'; then
        rm -f "$o"
    fi
done
ld -r -o all.o ./*.o
# The public names: defined, global, not in jemalloc's own je_ namespace.
nm --defined-only -g all.o | awk 'NF == 3 && $3 !~ /^je_/ && $3 !~ /^_/ {print $3 " zp_je_" $3}' >rename.txt
# The libm functions it calls (only for heap profiling, which alloc.c turns off) are jemath.c's:
# libzeropool.so then does not load libm into every process.
for f in exp log round; do
    echo "$f zp_je_libm_$f" >>rename.txt
done
grep -q '^mallocx zp_je_mallocx$' rename.txt || { echo "jemalloc-private.sh: no mallocx in $archive" >&2; exit 1; }
objcopy --redefine-syms=rename.txt all.o "$out"
# Nothing public may remain under its own name.
if nm --defined-only -g "$out" | awk 'NF == 3 {print $3}' | grep -qxE 'malloc|free|calloc|realloc|mallocx|mallctl|sdallocx'; then
    echo "jemalloc-private.sh: a public jemalloc name survived the renaming" >&2
    exit 1
fi
# Nothing of libm may be left: it would come back as a dependency.
if nm -u "$out" | awk '{print $2}' | grep -qxE 'exp|log|round|pow|ceil|floor|sqrt|log2|exp2'; then
    echo "jemalloc-private.sh: jemalloc refers to a libm function jemath.c does not define" >&2
    exit 1
fi
