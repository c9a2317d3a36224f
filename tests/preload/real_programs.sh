#!/usr/bin/env bash
# Real, unmodified programs under LD_PRELOAD=libzeropool.so: python3, gzip, xz, zstd, bzip2,
# sort, sqlite3, git, g++ (as a compiler and as the program it builds), perl. Each case runs
# once without the preload, then with it at the default threshold (64K) and at 4K (far more
# requests through the pool); stdout and the exit status must match the plain run exactly.
# Every preloaded process writes its statistics to a file: the pool must have served it.
# Usage: real_programs.sh LIBZEROPOOL [CASE...]   Prints "N passed, M failed".
set -u
LIB=$(realpath "$1"); shift
tmp=$(mktemp -d /tmp/zp-real.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
PY=/usr/bin/python3 # the system interpreter, not a shim that execs a chain of shells

#### inputs, made once without the preload ####
gen_text() { # ~50 MB of compressible, deterministic text
    awk 'BEGIN { srand(7); for (i = 0; i < 1100000; i++)
        printf "%08d %d lorem ipsum %x dolor sit amet %d\n", i, int(rand() * 1e9), i * 2654435761 % 4294967296, i % 977 }' 
}
gen_text > "$tmp/text"
awk 'BEGIN { srand(3); for (i = 0; i < 1500000; i++) printf "%d\t%s%d\n", int(rand() * 1e7), (i % 3 ? "k" : "z"), int(rand() * 1e5) }' > "$tmp/sortin"

cat > "$tmp/work.py" <<'EOF'
import hashlib, json, zlib
big = bytearray(32 << 20)
for i in range(0, len(big), 4096):
    big[i] = i % 251
h = hashlib.sha256(big).hexdigest()
chunks = [bytes([i % 256]) * (100000 + i) for i in range(200)]
joined = b"".join(chunks)
d = {i: ("v%d" % i) * (i % 50) for i in range(200000)}
s = json.dumps({str(k): v for k, v in list(d.items())[:50000]})
back = json.loads(s)
comp = zlib.compress(joined, 6)
grow = bytearray()
for i in range(3000):
    grow += bytes(i % 7 for _ in range(64)) * 10
    if i % 500 == 0:
        del grow[: len(grow) // 3]
print(h, len(joined), hashlib.md5(joined).hexdigest(), len(d), len(back), len(comp),
      zlib.decompress(comp) == joined, hashlib.sha1(grow).hexdigest())
EOF

cat > "$tmp/big.cc" <<'EOF'
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>
int main() {
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 0; i < 8000000; i++) v.push_back(i * 2654435761u % 1000003);
    std::sort(v.begin(), v.end());
    std::map<std::string, std::vector<char>> m;
    std::unordered_map<int, std::string> u;
    for (int i = 0; i < 300; i++) {
        m["key" + std::to_string(i)] = std::vector<char>(20000 + i * 997, char(i));
        u[i] = std::string(5000 + i * 3001, char('a' + i % 26));
    }
    std::string s;
    for (int i = 0; i < 200000; i++) s += std::to_string(i);
    std::uint64_t sum = 0;
    for (auto &kv : m) for (char c : kv.second) sum += (unsigned char)c;
    for (auto &kv : u) sum += kv.second.size();
    std::cout << v[v.size() / 2] << " " << m.size() << " " << sum << " " << s.size() << "\n";
}
EOF

cat > "$tmp/db.sql" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v INTEGER, blob BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'name' || (x * 7919 % 10007), x * 31 % 997, zeroblob(x % 300) FROM c;
CREATE INDEX t_v ON t(v);
SELECT count(*), sum(v), sum(length(blob)) FROM t;
SELECT v, count(*) FROM t GROUP BY v ORDER BY count(*) DESC, v LIMIT 5;
SELECT name FROM t WHERE v = 500 ORDER BY id LIMIT 3;
UPDATE t SET name = upper(name) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
VACUUM;
SELECT count(*), min(name), max(name) FROM t;
EOF

#### the cases: each prints what must not change; runs in its own empty directory ####
case_python()  { "$PY" -I "$tmp/work.py"; }
case_gzip()    { gzip -6 -c "$tmp/text" > t.gz && sha256sum < t.gz && gzip -dc t.gz | sha256sum; }
case_xz()      { head -c 20000000 "$tmp/text" | xz -2 -T1 -c > t.xz && sha256sum < t.xz && xz -dc t.xz | sha256sum; }
case_zstd()    { zstd -q -5 -c "$tmp/text" > t.zst && sha256sum < t.zst && zstd -q -dc t.zst | sha256sum; }
case_bzip2()   { head -c 20000000 "$tmp/text" | bzip2 -9 > t.bz2 && sha256sum < t.bz2 && bzip2 -dc t.bz2 | sha256sum; }
case_sort()    {
    sort "$tmp/sortin" | sha256sum
    sort -n -k1,1 -s --parallel=2 -S 64M "$tmp/sortin" | sha256sum
    sort -u -t$'\t' -k2,2 "$tmp/sortin" | sha256sum
}
case_sqlite3() { sqlite3 db.sqlite < "$tmp/db.sql" && sqlite3 :memory: < "$tmp/db.sql"; }
case_git()     {
    export GIT_AUTHOR_NAME=zp GIT_AUTHOR_EMAIL=zp@example.invalid GIT_AUTHOR_DATE='2024-01-01T00:00:00Z'
    export GIT_COMMITTER_NAME=zp GIT_COMMITTER_EMAIL=zp@example.invalid GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
    export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
    git init -q -b main repo && cd repo || return 1
    for i in $(seq 1 150); do seq "$i" $((i * 200)) > "f$i.txt"; done
    head -c 20000000 "$tmp/text" > big.txt
    git add . && git commit -q -m first
    sed -i 's/lorem/LOREM/' big.txt && for i in $(seq 1 150 3); do echo "$i" >> "f$i.txt"; done
    git commit -q -am second
    git log --stat --format='%H %s' | sha256sum
    git gc -q --aggressive && git fsck -q --strict && git count-objects -v | grep -E '^(count|in-pack|packs)'
    git show HEAD~1:big.txt | sha256sum
}
case_gxx()     { # g++ itself under the preload: the binary it builds must be the same
    g++ -O2 -o big "$tmp/big.cc" && sha256sum < big && ./big
}
case_cxx_run() { "$tmp/big.plain"; }
case_perl()    { perl -e 'my %h; my $s = ""; for my $i (1..300000) { $h{"k$i"} = "v" x ($i % 100); $s .= $i }
                          my @a = sort { $a cmp $b } keys %h; my $big = "x" x (50 << 20); $big =~ s/x/y/g;
                          print scalar(@a), " ", length($s), " ", substr($big, 100, 3), "\n"'; }

g++ -O2 -o "$tmp/big.plain" "$tmp/big.cc" || { echo "cannot build the C++ program"; exit 1; }

all_cases=(python gzip xz zstd bzip2 sort sqlite3 git gxx cxx_run perl)
[ $# -gt 0 ] && all_cases=("$@")

run_mode() { # case, mode, outfile: runs the case in a fresh directory, prints its status
    local c=$1 mode=$2 out=$3 dir
    dir=$(mktemp -d "$tmp/run.XXXXXX")
    (
        cd "$dir" || exit 99
        if [ "$mode" != plain ]; then
            export LD_PRELOAD=$LIB ZEROPOOL_STATS=json ZEROPOOL_STATS_FILE=$tmp/stats/$c.$mode.%p
            [ "$mode" = 4k ] && export ZEROPOOL_THRESHOLD=4K
        fi
        "case_$c"
    ) > "$out" 2> "$out.err"
    local status=$?
    rm -rf "$dir"
    return $status
}

mkdir -p "$tmp/stats"
for c in "${all_cases[@]}"; do
    run_mode "$c" plain "$tmp/$c.plain"
    want=$?
    for mode in 64k 4k; do
        start=$(date +%s.%N)
        run_mode "$c" "$mode" "$tmp/$c.$mode"
        got=$?
        secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        why=
        [ "$got" = "$want" ] || why="exit status $got, plain $want"
        [ -z "$why" ] && ! cmp -s "$tmp/$c.plain" "$tmp/$c.$mode" && why="output differs"
        # gzip's buffers are static: it never asks for 64 KiB (the pool used to be created in it
        # only by libstdc++'s start-up allocation, which a private jemalloc no longer brings in)
        small_only=
        [ "$mode" = 64k ] && [ "$c" = gzip ] && small_only=1
        [ -z "$why" ] && [ -z "$small_only" ] && ! grep -qs '"pool":true' "$tmp/stats/$c.$mode".* &&
            why="the pool served nothing"
        if [ -z "$why" ]; then
            passed=$((passed + 1)); echo "ok   $c ($mode, ${secs}s)"
        else
            failed=$((failed + 1)); echo "FAIL $c ($mode): $why"
            diff "$tmp/$c.plain" "$tmp/$c.$mode" | head -10 | sed 's/^/     | /'
            head -10 "$tmp/$c.$mode.err" | sed 's/^/     ! /'
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
