#!/usr/bin/env python3
"""The benchmark driver behind scripts/bench: runs the core benchmarks, then every preload
benchmark under each allocator (LD_PRELOAD), rounds interleaved between allocators (the order
rotates every round), and writes the tables, the targets and a plot.

Each preload program reports a median over its own runs; the driver takes, per measurement,
the median of those medians across rounds (>= 3), the min of the minima and the max of the
maxima. Ratios are to glibc measured in the same rounds."""
import argparse
import csv
import glob
import io
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
FIELDS = ["benchmark", "allocator", "param", "median_ns", "min_ns", "max_ns", "runs", "note"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- allocators
class Alloc:
    def __init__(self, name, lib, env=None, memlock=False, what=""):
        self.name, self.lib, self.env, self.memlock, self.what = name, lib, env or {}, memlock, what
        self.missing = None  # reason it is skipped

    def environ(self):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("ZEROPOOL_") and k not in ("MALLOC_CONF", "GLIBC_TUNABLES",
                                                             "LD_PRELOAD", "SCUDO_OPTIONS")}
        e.update(self.env)
        if self.lib:
            e["LD_PRELOAD"] = self.lib
        e["BENCH_ALLOC"] = self.name
        return e

    def preexec(self):
        if self.memlock:
            try:
                inf = resource.RLIM_INFINITY
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (inf, inf))
            except (ValueError, OSError):
                pass


def allocators(zp_lib):
    scudo = sorted(glob.glob("/usr/lib/llvm-*/lib/clang/*/lib/linux/"
                             "libclang_rt.scudo_standalone-x86_64.so"))
    je = f"{LIBDIR}/libjemalloc.so.2"
    base = [
        Alloc("glibc", None, what="glibc malloc as is"),
        Alloc("glibc-perturb", None, {"GLIBC_TUNABLES": "glibc.malloc.perturb=165"},
              what="glibc, perturb=165: fills freed and new blocks (not calloc) with a byte"),
        Alloc("jemalloc", je, what="jemalloc 5.3 (libjemalloc.so.2)"),
        Alloc("jemalloc-junk", je, {"MALLOC_CONF": "junk:true"},
              what="jemalloc, MALLOC_CONF=junk:true: junk-fills on alloc and free"),
        Alloc("mimalloc", f"{LIBDIR}/libmimalloc.so.2", what="mimalloc 2.0 (libmimalloc.so.2)"),
        Alloc("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4",
              what="gperftools tcmalloc_minimal 2.10"),
        Alloc("scudo", scudo[-1] if scudo else "/nonexistent/libclang_rt.scudo_standalone.so",
              what="LLVM 14 scudo standalone, default options"),
    ]
    zp = [
        Alloc("zeropool", zp_lib, what="zeropool, defaults (threshold 64K, CLOCK-Pro)"),
        Alloc("zeropool-pin", zp_lib, {"ZEROPOOL_PIN": "1"}, memlock=True,
              what="ZEROPOOL_PIN=1, RLIMIT_MEMLOCK raised to unlimited"),
        Alloc("zeropool-lifo", zp_lib, {"ZEROPOOL_EVICTION": "lifo"}, what="ZEROPOOL_EVICTION=lifo"),
        Alloc("zeropool-clockpro", zp_lib, {"ZEROPOOL_EVICTION": "clock-pro"},
              what="ZEROPOOL_EVICTION=clock-pro"),
    ]
    sweep = [Alloc(f"zeropool-t{t}", zp_lib, {"ZEROPOOL_THRESHOLD": t},
                   what=f"ZEROPOOL_THRESHOLD={t}") for t in ("16K", "64K", "256K", "1M")]
    noscrub = Alloc("zeropool-noscrub", zp_lib, {"ZEROPOOL_SCRUB_SMALL": "0"},
                    what="ZEROPOOL_SCRUB_SMALL=0")
    jescrub = Alloc("jemalloc-memset", je, {"ZP_BENCH_SCRUB": "1"},
                    what="jemalloc, the program memsets each block's usable size before free "
                         "(small_churn only): the reference of a scrubbing small path")
    jejunkfree = Alloc("jemalloc-junk-free", je, {"MALLOC_CONF": "junk:free"},
                       what="jemalloc, MALLOC_CONF=junk:free: fills each freed block with 0x5a "
                            "(small_churn only): the cost floor of a scrub on free")
    for a in base + zp + sweep + [noscrub, jescrub, jejunkfree]:
        if a.lib and not os.path.exists(a.lib):
            a.missing = f"{a.lib} not found"
        elif a.lib:
            r = subprocess.run(["/bin/true"], env=a.environ(), capture_output=True, text=True)
            if r.returncode != 0:
                a.missing = f"LD_PRELOAD of {a.lib} fails: {r.stderr.strip()[:200]}"
    if os.geteuid() != 0:
        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard != resource.RLIM_INFINITY:
            zp[1].what += f" (not root: RLIMIT_MEMLOCK stays {soft >> 20} MiB; pinning degrades)"
    return base, zp, sweep, noscrub, jescrub, jejunkfree


# ---------------------------------------------------------------- running
def parse_csv(text):
    rows = []
    for r in csv.reader(io.StringIO(text)):
        if len(r) != len(FIELDS) or r[0] == "benchmark":
            continue
        d = dict(zip(FIELDS, r))
        for k in ("median_ns", "min_ns", "max_ns"):
            d[k] = float(d[k])
        d["runs"] = int(d["runs"])
        d["cpu_ns"] = d["rss_kib"] = None
        for kv in d["note"].split():
            if kv.startswith("cpu_ns="):
                d["cpu_ns"] = float(kv[7:])
            elif kv.startswith("peak_rss_kib="):
                d["rss_kib"] = float(kv[13:])
        rows.append(d)
    return rows


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_cmd(cmd, alloc, timeout, failures, cpu_out=None):
    t0, c0 = time.monotonic(), children_cpu()
    try:
        r = subprocess.run(cmd, env=alloc.environ(), capture_output=True, text=True,
                           timeout=timeout, preexec_fn=alloc.preexec)
    except subprocess.TimeoutExpired:
        failures.append(f"{alloc.name}: {' '.join(cmd)}: timed out after {timeout} s")
        return None, None
    wall = time.monotonic() - t0
    if cpu_out is not None:
        cpu_out.append(children_cpu() - c0)
    if r.returncode != 0:
        failures.append(f"{alloc.name}: {os.path.basename(cmd[0])} exited {r.returncode}: "
                        f"{r.stderr.strip()[-300:]}")
        return None, wall
    return r.stdout, wall


def interleaved(label, cmd, allocs, rounds, timeout, failures, wall_bench=None, prefix=""):
    """Run cmd once per allocator per round, rotating the order. Returns aggregated rows."""
    allocs = [a for a in allocs if not a.missing]
    per = {}  # (bench, param, alloc) -> list of rows
    for rnd in range(rounds):
        order = allocs[rnd % len(allocs):] + allocs[:rnd % len(allocs)]
        for a in order:
            log(f"  {label}: round {rnd + 1}/{rounds} {a.name}")
            cpu = []
            out, wall = run_cmd(cmd, a, timeout, failures, cpu)
            if out is None:
                continue
            if wall_bench:  # the whole process is the measurement
                rows = [dict(benchmark=wall_bench[0], allocator=a.name, param=wall_bench[1],
                             median_ns=wall * 1e9, min_ns=wall * 1e9, max_ns=wall * 1e9, runs=1,
                             cpu_ns=cpu[0] * 1e9, note="whole process wall time")]
            else:
                rows = parse_csv(out)
            for r in rows:
                r["allocator"] = a.name
                r["benchmark"] = prefix + r["benchmark"]
                per.setdefault((r["benchmark"], r["param"], a.name), []).append(r)
    out = []
    for (b, p, a), rs in per.items():
        out.append(dict(benchmark=b, param=p, allocator=a,
                        median_ns=statistics.median(r["median_ns"] for r in rs),
                        min_ns=min(r["min_ns"] for r in rs), max_ns=max(r["max_ns"] for r in rs),
                        runs=sum(r["runs"] for r in rs), note=rs[-1]["note"], rounds=len(rs),
                        cpu_ns=statistics.median(r["cpu_ns"] for r in rs)
                        if all(r["cpu_ns"] is not None for r in rs) else None,
                        rss_kib=statistics.median(r["rss_kib"] for r in rs)
                        if all(r.get("rss_kib") is not None for r in rs) else None,
                        rss_min=min((r.get("rss_kib") or 0) for r in rs),
                        rss_max=max((r.get("rss_kib") or 0) for r in rs)))
    return out


# ---------------------------------------------------------------- formatting
def fmt_ns(ns):
    if ns is None:
        return "–"
    a = abs(ns)
    if a >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if a >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    if a >= 1e4:
        return f"{ns / 1e3:.0f} µs"
    if a >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_ratio(x):
    if x is None:
        return "–"
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x" if x >= 100 else f"{x:.1f}x"


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


class Table:
    """Measurements by (benchmark, param, allocator); cpu=True reads CPU time instead of wall,
    field another figure of a row (min_ns, max_ns: the spread, for the plot)."""

    def __init__(self, rows, cpu=False, field="median_ns"):
        self.rows = rows
        self.cpu, self.field = cpu, field
        self.idx = {(r["benchmark"], r["param"], r["allocator"]): r for r in rows}

    def get(self, bench, param, alloc):
        r = self.idx.get((bench, param, alloc))
        if not r:
            return None
        return r.get("cpu_ns") if self.cpu else r.get(self.field)

    def ratio(self, bench, param, alloc, ref="glibc"):
        a, b = self.get(bench, param, alloc), self.get(bench, param, ref)
        return a / b if a and b else None

    def params(self, bench):
        seen = []
        for r in self.rows:
            if r["benchmark"] == bench and r["param"] not in seen:
                seen.append(r["param"])
        return seen


def md_table(head, body):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def machine():
    model = cores = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for l in out.splitlines():
            if l.startswith("Model name:"):
                model = l.split(":", 1)[1].strip()
    except OSError:
        pass
    cores = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {cores} cores, {mem:.0f} GiB, Linux {platform.release()}"


# ---------------------------------------------------------------- reports
MAIN_ALLOCS = ["glibc", "glibc-perturb", "jemalloc", "jemalloc-junk", "mimalloc", "tcmalloc",
               "scudo", "zeropool"]


def main_rows(t):
    """(label, function alloc -> ns) for the main table of docs/performance.md."""
    def one(b, p):
        return lambda a: t.get(b, p, a)

    def gm(b, ps):
        return lambda a: geomean([t.get(b, p, a) for p in ps]) if all(
            t.get(b, p, a) for p in ps) else None
    full1 = [p for p in t.params("churn.full") if p.endswith("threads=1")]
    return [
        ("malloc + write every byte + free, 1 MiB", one("churn.full", "size=1M threads=1")),
        ("same, geomean of 64K..16M", gm("churn.full", full1)),
        ("malloc 16 MiB + write 4 KiB + free", one("churn.page", "size=16M threads=1")),
        ("calloc 1 MiB + write 4 KiB + free", one("churn.calloc", "size=1M threads=1")),
        ("mix 64K..8M, every byte written", one("churn.mix", "size=64K-8M threads=1")),
        ("mix 64K..8M, 2 threads (per thread)", one("churn.mix", "size=64K-8M threads=2")),
        ("small blocks 16..4096 B", one("small_churn", "size=16-4096 threads=1")),
        ("checkpoint load (383 MB, GPT-2 shapes)", one("ckpt_load", "gpt2-8layers")),
        ("python3 bytes/bytearray work (process)", one("python", "py_bytes")),
    ]


def main_table(t, allocs_present):
    cols = [a for a in MAIN_ALLOCS if a in allocs_present]
    head = ["workload (time per op; ratio to glibc)"] + cols
    body = []
    for label, f in main_rows(t):
        g = f("glibc")
        row = [label]
        for a in cols:
            v = f(a)
            if a == "glibc":
                row.append(fmt_ns(v))
            else:
                row.append(fmt_ratio(v / g) if v and g else "–")
        body.append(row)
    return md_table(head, body), cols


def target_values(t):
    """(name, value, limit, 'le'|'ge', detail) for every target, from one Table."""
    z = "zeropool"
    out = []

    def add(name, value, limit, better="le", detail=""):
        out.append((name, value, limit, better, detail))

    def per_size(bench):
        ps = [p for p in t.params(bench) if p.endswith("threads=1")]
        rs = {p: t.ratio(bench, p, z) for p in ps}
        g = geomean(list(rs.values())) if rs and all(rs.values()) else None
        return g, ", ".join(f"{p.split()[0][5:]} {fmt_ratio(v)}" for p, v in rs.items())
    g, d = per_size("churn.full")
    add("large churn, every byte written (geomean 64K..16M)", g, 2.1, detail=d)
    g, d = per_size("churn.copy")
    # the floor: glibc with the program zeroing each block before its free (churn.copyzero)
    floor = [_div(t.get("churn.copyzero", p, "glibc"), t.get("churn.copy", p, "glibc"))
             for p in t.params("churn.copy") if p.endswith("threads=1")]
    if floor and all(floor):
        d += f"; floor of a scrub on free (glibc + memset before free) {fmt_ratio(geomean(floor))}"
    add("copy between two large blocks (geomean 64K..16M)", g, 1.3, detail=d)
    g, d = per_size("churn.calloc")
    add("calloc + 4 KiB written (geomean 64K..16M)", g, 1.0, detail=d)
    add("mix 64K..8M, every byte written", t.ratio("churn.mix", "size=64K-8M threads=1", z), 1.8)
    add("16 MiB, 4 KiB written", t.ratio("churn.page", "size=16M threads=1", z), 20)
    # two threads: zeropool's per-thread cost at 2 threads over its cost at 1, every case
    pairs, gpairs = [], []
    for b in ("churn.full", "churn.page", "churn.calloc", "churn.mix"):
        for p in t.params(b):
            if p.endswith("threads=1"):
                p2 = p.replace("threads=1", "threads=2")
                a1, a2 = t.get(b, p, z), t.get(b, p2, z)
                g1, g2 = t.get(b, p, "glibc"), t.get(b, p2, "glibc")
                if a1 and a2:
                    pairs.append(a2 / a1)
                if g1 and g2:
                    gpairs.append(g2 / g1)
    mix2 = _div(t.get("churn.mix", "size=64K-8M threads=2", z),
                t.get("churn.mix", "size=64K-8M threads=1", z))
    add("two threads: per-thread cost / one thread (geomean of all churn cases)",
        geomean(pairs), 1.1,
        detail=f"glibc's own: {fmt_ratio(geomean(gpairs))}; zeropool mix alone: {fmt_ratio(mix2)}")
    add("calloc 1 MiB: jemalloc time / zeropool time",
        _div(t.get("churn.calloc", "size=1M threads=1", "jemalloc"),
             t.get("churn.calloc", "size=1M threads=1", z)), 10, "ge")
    add("mix 64K..8M: jemalloc time / zeropool time",
        _div(t.get("churn.mix", "size=64K-8M threads=1", "jemalloc"),
             t.get("churn.mix", "size=64K-8M threads=1", z)), 10, "ge")
    for nt in (1, 2):
        sp = f"size=16-4096 threads={nt}"
        add(f"small-block churn, {nt} thread(s), scrub on: zeropool / (jemalloc + memset)",
            _div(t.get("small_churn", sp, z), t.get("small_churn", sp, "jemalloc-memset")), 1.05)
        add(f"small-block churn, {nt} thread(s), scrub on: zeropool / jemalloc junk:free",
            _div(t.get("small_churn", sp, z), t.get("small_churn", sp, "jemalloc-junk-free")), 1.05)
        add(f"small-block churn, {nt} thread(s), scrub off: zeropool / jemalloc",
            _div(t.get("small_churn", sp, "zeropool-noscrub"), t.get("small_churn", sp, "jemalloc")),
            1.05)
    add("cross-thread frees, 4 threads: zeropool / glibc",
        _div(t.get("xthread", "size=16-512 threads=4", z), t.get("xthread", "size=16-512 threads=4", "glibc")),
        1.2)
    lp, xp = mt_params(t)
    add("larson (server simulation, threads come and go), scrub on: zeropool / glibc time",
        t.ratio("larson", lp, z) if lp else None, 1.1,
        detail=f"scrub off: {fmt_ratio(t.ratio('larson', lp, 'zeropool-noscrub'))}, jemalloc "
               f"{fmt_ratio(t.ratio('larson', lp, 'jemalloc'))}" if lp else "")
    rss = Table(t.rows, field="rss_kib")
    add("xmalloc-test (producers and consumers): zeropool / glibc peak RSS",
        rss.ratio("xmalloc", xp, z) if xp else None, 1.5,
        detail=f"jemalloc {fmt_ratio(rss.ratio('xmalloc', xp, 'jemalloc'))}, scrub off "
               f"{fmt_ratio(rss.ratio('xmalloc', xp, 'zeropool-noscrub'))}" if xp else "")
    add("checkpoint load: glibc time / zeropool time (seed claims 3.8x)",
        _div(t.get("ckpt_load", "gpt2-8layers", "glibc"), t.get("ckpt_load", "gpt2-8layers", z)),
        3.8, "ge")
    return out


def mt_params(t):
    """The larson and xmalloc params the targets read: the most threads measured."""
    def most(b):
        ps = t.params(b)
        return max(ps, key=lambda p: int(p.rsplit("=", 1)[1])) if ps else None
    return most("larson"), most("xmalloc")


def mt_table(t, bench, allocs):
    """Time and peak RSS per allocator, medians of the rounds with their spread, both as ratios
    to glibc."""
    body = []
    for p in t.params(bench):
        g = t.idx.get((bench, p, "glibc"))
        for a in allocs:
            r = t.idx.get((bench, p, a))
            if not r:
                continue
            rss, grss = r.get("rss_kib"), g.get("rss_kib") if g else None
            body.append([p, a, fmt_ns(r["median_ns"]),
                         f"{fmt_ns(r['min_ns'])} – {fmt_ns(r['max_ns'])}",
                         fmt_ratio(r["median_ns"] / g["median_ns"]) if g else "–",
                         fmt_ratio(r["cpu_ns"] / g["cpu_ns"]) if g and r.get("cpu_ns")
                         and g.get("cpu_ns") else "–",
                         f"{rss / 1024:.1f} MiB" if rss else "–",
                         f"{r['rss_min'] / 1024:.1f} – {r['rss_max'] / 1024:.1f} MiB" if rss else "–",
                         fmt_ratio(rss / grss) if rss and grss else "–", r.get("rounds", 1)])
    return md_table(["param", "allocator", "time per op", "min – max", "time vs glibc",
                     "CPU vs glibc", "peak RSS", "min – max", "RSS vs glibc", "rounds"], body)


def targets(t_wall, t_cpu):
    def status(v, limit, better):
        if v is None:
            return "not measured"
        return "**met**" if (v <= limit if better == "le" else v >= limit) else "**missed**"
    body = []
    for (name, v, limit, better, detail), (_, vc, _, _, _) in zip(target_values(t_wall),
                                                                  target_values(t_cpu)):
        body.append([name, f"{'<=' if better == 'le' else '>='} {limit}x", fmt_ratio(v),
                     status(v, limit, better), fmt_ratio(vc), status(vc, limit, better), detail])
    return md_table(["target", "target", "wall-time ratio", "status", "CPU-time ratio", "status",
                     "detail (wall)"], body)


def noise_gauge(t):
    rs = []
    for r in t.rows:
        if r["allocator"] == "zeropool" and r["benchmark"].startswith("churn."):
            o = t.get(r["benchmark"], r["param"], "zeropool-clockpro")
            if o and r["median_ns"]:
                rs.append(abs(math.log(o / r["median_ns"])))
    return f"{(math.exp(sum(rs) / len(rs)) - 1) * 100:.0f}% on average" if rs else "–"


def _div(a, b):
    return a / b if a and b else None


def churn_tables(t, allocs):
    parts = []
    cols = [a for a in allocs]
    for b, title in (("churn.full", "malloc + write every byte + free"),
                     ("churn.page", "malloc + write 4 KiB + free"),
                     ("churn.calloc", "calloc + write 4 KiB + free"),
                     ("churn.copy", "copy a block into a fresh block of size + 16 (redis's reply), free it"),
                     ("churn.copyzero", "the same, the program zeroing the block before its free "
                      "(glibc's column: the floor of a scrub on free)"),
                     ("churn.mix", "mix of 64K..8M, every byte written")):
        ps = t.params(b)
        if not ps:
            continue
        body = []
        for p in ps:
            g = t.get(b, p, "glibc")
            row = [p]
            for a in cols:
                v = t.get(b, p, a)
                row.append(fmt_ns(v) if a == "glibc" else
                           (f"{fmt_ratio(v / g)}" if v and g else "–"))
            body.append(row)
        parts.append(f"#### {b}: {title}\n\n" + md_table(["param"] + cols, body))
    return "\n\n".join(parts)


def plain_table(t, bench, allocs):
    body = []
    for p in t.params(bench):
        g = t.get(bench, p, "glibc")
        for a in allocs:
            r = t.idx.get((bench, p, a))
            if not r:
                continue
            body.append([p, a, fmt_ns(r["median_ns"]), f"{fmt_ns(r['min_ns'])} – {fmt_ns(r['max_ns'])}",
                         fmt_ratio(r["median_ns"] / g) if g else "–", r.get("rounds", 1)])
    return md_table(["param", "allocator", "median", "min – max", "vs glibc", "rounds"], body)


def sweep_table(t, sweep_names):
    body = []
    cols = ["glibc", "jemalloc"] + sweep_names
    benches = ("sweep.churn.full", "sweep.churn.page", "sweep.churn.mixsmall", "sweep.churn.mix")
    for b in benches:
        for p in t.params(b):
            if "threads=1" not in p:
                continue
            g = t.get(b, p, "glibc")
            row = [f"{b[12:]} {p.split()[0][5:]}", fmt_ns(g)]
            for a in cols[1:]:
                v = t.get(b, p, a)
                row.append(fmt_ratio(v / g) if v and g else "–")
            body.append(row)
    gm_row = ["geomean of the rows", ""]
    for a in cols[1:]:
        rs = []
        for b in benches:
            for p in t.params(b):
                if "threads=1" in p and t.get(b, p, a) and t.get(b, p, "glibc"):
                    rs.append(t.get(b, p, a) / t.get(b, p, "glibc"))
        gm_row.append(fmt_ratio(geomean(rs)))
    body.append(gm_row)
    return md_table(["pattern size", "glibc"] + [f"{c} (vs glibc)" for c in cols[1:]], body)


SEED_CORE = [
    ("Ping-pong (LIFO)", "3.56 µs", "pingpong", "evict=lifo size=1M touch="),
    ("Ping-pong (ClockPro)", "3.68 µs", "pingpong", "evict=clock-pro size=1M touch="),
    ("Hot/cold buffers", "1.05 µs", "hot_cold", "evict=clock-pro sizes=hot64K-1M+cold2M-16M touch="),
    ("Multi-size workload", "6.2 µs", "multi_size", "evict=clock-pro sizes=64K-4M touch="),
    ("TLS cache (2 bufs)", "60.5 ns", "tls_hit", "bufs=2 size=4K touch="),
    ("TLS cache (4 bufs)", "108 ns", "tls_hit", "bufs=4 size=4K touch="),
    ("TLS cache (8 bufs)", "288 ns", "tls_hit", "bufs=8 size=4K touch="),
    ("TLS cache (2 bufs), 64 KiB", "(60.5 ns)", "tls_hit", "bufs=2 size=64K touch="),
    ("TLS cache (8 bufs), 64 KiB", "(288 ns)", "tls_hit", "bufs=8 size=64K touch="),
]


def core_tables(t):
    a = "zeropool-core"
    body = []
    for label, seed, b, pfx in SEED_CORE:
        cells = []
        for m in ("none", "res", "page", "full"):
            v = t.get(b, pfx + m, a)
            o = t.get(b + ".overhead", pfx + m, a)
            if v is None:
                cells.append("–")
            else:
                cells.append(fmt_ns(v) + (f" (pool {fmt_ns(o)})" if o is not None else ""))
        body.append([label, seed] + cells)
    out = [md_table(["seed row", "seed", "untouched", "resident, not written",
                     "4 KiB written", "every byte written"], body)]
    ev = []
    for p in t.params("eviction"):
        r = t.idx.get(("eviction", p, a))
        ev.append([p, fmt_ns(r["median_ns"]), r["note"]])
    if ev:
        out.append("Eviction pressure (seed: 400 ns), budget 8 MiB:\n\n" +
                   md_table(["param", "median per op", "counters (over the whole case)"], ev))
    th = []
    for p in t.params("threads"):
        r = t.idx.get(("threads", p, a))
        note = dict(kv.split("=", 1) for kv in r["note"].split() if "=" in kv)
        th.append([p, fmt_ns(r["median_ns"]), f"{float(note.get('us_per_1000_ops_per_thread', 0)):.1f} µs",
                   fmt_ns(float(note.get("aggregate_ns_per_op", 0))),
                   note.get("tls_hit", "?")])
    if th:
        out.append("Thread scaling (seed: 44.7 / 141 / 282 / 605 µs per 1000 ops at 1 / 4 / 8 / 16 "
                   "threads, thread spawning included). Here threads start before the clock; "
                   "per-thread time per op, and wall time / all ops:\n\n" +
                   md_table(["param", "per thread per op", "per 1000 ops per thread",
                             "aggregate per op", "tls hits"], th))
    return "\n\n".join(out)


def core_all(t):
    body = []
    for r in t.rows:
        if r["allocator"] != "zeropool-core":
            continue
        body.append([r["benchmark"], r["param"], fmt_ns(r["median_ns"]),
                     f"{fmt_ns(r['min_ns'])} – {fmt_ns(r['max_ns'])}", r["note"]])
    return md_table(["benchmark", "param", "median", "min – max", "note"], body)


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return ["?"] * 3


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="meson build directory")
    ap.add_argument("--out", required=True, help="directory for the .md, .csv and .png results")
    ap.add_argument("--zp-lib", help="libzeropool.so (default: BUILD/interpose/libzeropool.so)")
    ap.add_argument("--quick", action="store_true", help="about a minute: smoke use")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (>= 3; default 5, quick 3)")
    ap.add_argument("--only", default="core,churn,sweep,small,mt,ckpt,python",
                    help="comma list of parts to run")
    ap.add_argument("--before", metavar="LIB", help="an earlier libzeropool.so, run as "
                    "zeropool-before beside zeropool in the churn, small and mt parts")
    args = ap.parse_args()
    src = os.path.dirname(os.path.abspath(__file__))
    bdir = os.path.join(args.build, "bench")
    zp_lib = args.zp_lib or os.path.join(args.build, "interpose", "libzeropool.so")
    base, zp, sweep, noscrub, jescrub, jejunkfree = allocators(zp_lib)
    parts = set(args.only.split(","))
    before = []
    if args.before:
        b = Alloc("zeropool-before", os.path.abspath(args.before),
                  what=f"an earlier build: {os.path.abspath(args.before)}")
        if not os.path.exists(b.lib):
            b.missing = f"{b.lib} not found"
        before = [b] if not b.missing else []
    q = args.quick
    # per-process options: the harness's own runs within one process
    runs_in, ms_in = ("1", "4") if q else ("3", "25")
    hopt = ["--runs", runs_in, "--ms", ms_in] + (["--warmup", "0"] if q else [])
    # Small blocks and cross-thread frees: ~40 ns operations on two threads, where a 25 ms run
    # is at the mercy of one descheduling (runs of 1 ns to 600 ns per op were seen): 150 ms.
    sopt = hopt if q else ["--runs", runs_in, "--ms", "150"]
    rounds = max(3, args.rounds or (3 if q else 5))
    failures, rows = [], []
    load0, t0 = loadavg(), time.monotonic()
    os.makedirs(args.out, exist_ok=True)

    skipped = [a for a in base + zp + sweep + [noscrub, jescrub, jejunkfree] if a.missing]
    for a in skipped:
        log(f"bench: skipping {a.name}: {a.missing}")

    if "core" in parts:
        log("core_bench")
        core = Alloc("zeropool-core", None)
        out, _ = run_cmd([os.path.join(bdir, "core_bench")] + (["--quick", "--ms", "3"] if q else []),
                         core, 600, failures)
        if out:
            rows += parse_csv(out)
    sizes = "64K,1M,16M" if q else "64K,256K,1M,4M,16M"
    if "churn" in parts:
        rows += interleaved("churn", [os.path.join(bdir, "churn"), "--sizes", sizes,
                                      "--threads", "1,2"] + hopt,
                            base + zp + before, rounds, 300, failures)
    if "sweep" in parts:
        ssz = "16K,64K,256K,1M" if q else "16K,32K,64K,128K,256K,512K,1M"
        rows += interleaved("threshold sweep",
                            [os.path.join(bdir, "churn"), "--patterns", "full,page,mixsmall,mix",
                             "--sizes", ssz, "--threads", "1"] + hopt,
                            base[0:1] + base[2:3] + sweep, rounds, 300, failures, prefix="sweep.")
    if "small" in parts:
        rows += interleaved("small_churn", [os.path.join(bdir, "small_churn"), "--threads", "1,2"]
                            + sopt, base + [jescrub, jejunkfree, zp[0], noscrub] + before, rounds, 120,
                            failures)
        rows += interleaved("xthread", [os.path.join(bdir, "xthread"), "--threads", "2,4"] + sopt,
                            base + [zp[0], noscrub], rounds, 120, failures)
    # jemalloc-junk-free: the cost floor of a scrub on free (every freed block filled whole).
    mt_allocs = [a for a in base + [jejunkfree, zp[0], noscrub] + before
                 if a.name in ("glibc", "jemalloc", "jemalloc-junk-free", "mimalloc", "tcmalloc",
                               "zeropool", "zeropool-noscrub", "zeropool-before")]
    if "mt" in parts:
        # Threads of their own for a fixed time per run: the throughput of the whole process
        # and its peak RSS; threads: the number of CPUs. larson: 3 runs of 1 s after one of
        # warm-up. xmalloc: one run of 5 s per process, as mimalloc-bench's `-t 5`: its peak
        # RSS is the figure, and a process that starts its threads anew for each of several
        # short runs reaches a lower one (measured: 0.76x glibc for zeropool against 1.2-1.3x).
        lopt = ["--runs", "1", "--warmup", "0", "--ms", "200"] if q else \
            ["--runs", "3", "--warmup", "1", "--ms", "1000"]
        xopt = ["--runs", "1", "--warmup", "0", "--ms", "1000" if q else "5000"]
        for prog, mopt in (("larson", lopt), ("xmalloc", xopt)):
            rows += interleaved(prog, [os.path.join(bdir, prog)] + mopt, mt_allocs, rounds, 120,
                                failures)
    if "ckpt" in parts:
        ck = [os.path.join(bdir, "ckpt_load"), "--runs", "1" if q else "3", "--warmup",
              "0" if q else "1", "--ms", "1"]
        run_cmd(ck[:1] + ["--runs", "1", "--warmup", "0", "--ms", "1"], base[0], 600, failures)
        rows += interleaved("ckpt_load", ck, base + zp, rounds, 300, failures)
    if "python" in parts:
        n = "30" if q else "150"
        rows += interleaved("python", [sys.executable, os.path.join(src, "py_bytes.py"), n],
                            base + zp, rounds, 300, failures, wall_bench=("python", "py_bytes"))

    load1, elapsed = loadavg(), time.monotonic() - t0
    t = Table(rows)
    present = sorted({r["allocator"] for r in rows})
    preload_allocs = [a.name for a in base + zp + before if a.name in present]

    # raw results, one line per measurement
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS + ["rounds", "cpu_ns"])
        for r in rows:
            w.writerow([r["benchmark"], r["allocator"], r["param"], f"{r['median_ns']:.1f}",
                        f"{r['min_ns']:.1f}", f"{r['max_ns']:.1f}", r["runs"], r["note"],
                        r.get("rounds", 1),
                        "" if r.get("cpu_ns") is None else f"{r['cpu_ns']:.1f}"])

    mach = machine()
    main_md, _ = main_table(t, present)
    png = os.path.join(args.out, "main.png")
    import plot as plotter  # bench/plot.py: also draws the servers if services.csv is there
    have_png = plotter.draw(args.out, png)
    mode = "quick (smoke: 1 run per process, short runs)" if q else "full"
    how = (f"Median of {rounds} rounds interleaved between allocators (order rotated each round); "
           f"each round's figure is itself the median of {runs_in} run(s) of ~{ms_in} ms in one "
           "process, after calibration and warm-up. Ratios are to glibc in the same rounds.")
    snippet = [
        f"Measured on {mach}; `scripts/bench`{' --quick' if q else ''}, {time.strftime('%Y-%m-%d')}. "
        f"Time per operation for glibc, then each allocator's time as a multiple of glibc's "
        f"(lower is better). {how} Load average during the run: {' '.join(load0)} -> {' '.join(load1)}.",
        "",
        main_md,
        "",
        "![time, throughput and peak RSS relative to glibc](bench/results/main.png)"
        if have_png else "",
        "",
        "Every allocator gets the program unmodified through LD_PRELOAD; zeropool alone scrubs every "
        "freed large buffer and hands out only zeroed memory. Details, targets and the core API "
        "numbers: [bench/results/results.md](bench/results/results.md).",
    ]
    with open(os.path.join(args.out, "README-snippet.md"), "w") as f:
        f.write("\n".join(snippet) + "\n")

    doc = [f"# zeropool benchmarks ({mode})", "",
           f"Machine: {mach}. Run: {time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s; load average "
           f"{' '.join(load0)} at the start, {' '.join(load1)} at the end (other work on the "
           "machine shows up as spread). Programs: bench/*.c, driver bench/run.py via scripts/bench.",
           "", how, "",
           "## Allocators", "",
           md_table(["name", "what", "status"],
                    [[a.name, a.what, f"skipped: {a.missing}" if a.missing else
                      ("measured" if a.name in present else "not run in this mode")]
                     for a in base + zp + sweep + [noscrub, jescrub, jejunkfree] + before]),
           "", "## Targets", "",
           "Each ratio compares medians of the interleaved rounds. Wall time is the measure the "
           "targets were set in; CPU time (user + system of the benchmark process) is shown "
           "beside it because other work on this 2-core machine stretches wall time unevenly. "
           f"Noise gauge: `zeropool` and `zeropool-clockpro` are the same configuration; their "
           f"times differ by {noise_gauge(t)} (geomean of |log ratio| over all churn rows, "
           "wall time).", "",
           targets(t, Table(rows, cpu=True)), "",
           "## Main table", "", main_md, "",
           "The same in CPU time (user + system of the benchmark process):", "",
           main_table(Table(rows, cpu=True), present)[0], ""]
    if have_png:
        doc += ["![time, throughput and peak RSS relative to glibc](main.png)", ""]
    doc += ["## Core API (core_bench, links the pool directly)", "",
            "Time per get + put. `(pool X)` is the cycle minus a plain memset reference of the same "
            "bytes (the program's write plus the scrub's zeroing, on a resident buffer): the pool's "
            "own cost. Untouched buffers that the pool does not know to be resident cost one mincore "
            "call per put (the scrub asks the kernel what was written); 'resident, not written' "
            "buffers were written once before timing, so the pool scrubs them with one memset and "
            "no system call.", "", core_tables(t), "",
            "<details><summary>every core measurement</summary>", "", core_all(t), "", "</details>",
            "", "## Large-buffer churn (LD_PRELOAD, plain malloc/free)", "",
            "glibc: time per cycle; others: multiple of glibc. threads=2: both threads churn at "
            "once, time per cycle of one thread.", "",
            churn_tables(t, preload_allocs), "",
            "## ZEROPOOL_THRESHOLD sweep", "",
            "Requests below the threshold go to jemalloc (scrubbed on free by default), above it to "
            "the pool. mixsmall draws 4K..1M, mix 64K..8M, every byte written.", "",
            sweep_table(t, [a.name for a in sweep]), "",
            "## Small-block churn", "", plain_table(t, "small_churn", preload_allocs + [jescrub.name, jejunkfree.name,
                                                                   noscrub.name]),
            "", "## Cross-thread frees", "", plain_table(t, "xthread", preload_allocs + [noscrub.name]),
            "", "## Multithreaded servers: larson and xmalloc-test", "",
            "bench/larson.c: T lineages of threads (T = CPUs), 5000 live blocks of 8..1000 bytes "
            "each; free a random block and malloc one of a random size (its first bytes written); "
            "after 500,000 replacements a thread hands its blocks to a fresh thread and exits. "
            "bench/xmalloc.c: W producers (W = CPUs) malloc 64-byte blocks in batches of 4096, "
            "W consumers free them, at most 100 batches in between (one run of 5 s per process, as "
            "mimalloc-bench's `-t 5`). Time per operation is wall "
            "time over all threads' operations (1/throughput); peak RSS is the process's "
            "ru_maxrss. Medians of the rounds, min – max over every run and round.", "",
            mt_table(t, "larson", [a.name for a in mt_allocs]), "",
            mt_table(t, "xmalloc", [a.name for a in mt_allocs]),
            "", "## Checkpoint loader", "",
            "Whole-file pass: read every record into a fresh malloc'd buffer, checksum, free. The "
            "seed claims 200 ms -> 53 ms (3.8x) for loading GPT-2 checkpoints.", "",
            plain_table(t, "ckpt_load", preload_allocs), "",
            "## python3 bytes/bytearray work (bench/py_bytes.py, whole process)", "",
            plain_table(t, "python", preload_allocs), ""]
    if failures:
        doc += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(doc))
    log(f"bench: wrote {args.out}/results.md, results.csv, README-snippet.md"
        f"{', main.png' if have_png else ''} in {elapsed:.0f} s")
    for f_ in failures:
        log("bench: FAILED " + f_)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
