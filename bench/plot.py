#!/usr/bin/env python3
"""Draws bench/results/main.png from the results a directory holds: the micro-benchmarks
(results.csv, time ratio to glibc) on top, the real servers (services.csv, throughput and
peak RSS ratios to glibc) below, each panel on its own so whole processes never share an axis
with micro-benchmarks. usage: plot.py DIR [OUT.png]

Every panel has a log axis clipped to 1/4..4x, so 1-3x differences stay readable; a
clipped bar stops at the edge and carries its real value, written along it. Bars start at 1
(glibc) and go up or down; the whisker is the spread over the rounds (lowest and highest round
over glibc's median). Allocators that fill or scrub freed memory are hatched."""
import csv
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402

LO, HI = 0.25, 4.0
SCRUBS = {"glibc-perturb", "jemalloc-junk", "zeropool", "zeropool-noscrub"}
COLORS = {"glibc-perturb": "#9e9e9e", "jemalloc": "#1f77b4", "jemalloc-junk": "#6baed6",
          "mimalloc": "#2ca02c", "tcmalloc": "#ff7f0e", "scudo": "#8c564b",
          "zeropool": "#d62728", "zeropool-noscrub": "#e377c2"}
LEGEND = {"glibc-perturb": "glibc perturb (fills freed)",
          "jemalloc-junk": "jemalloc junk (fills freed)",
          "zeropool": "zeropool (scrubs)",
          "zeropool-noscrub": "zeropool, small scrub off (scrubs large)"}


def micro_rows(path):
    """[(label, {alloc: (ratio, lo, hi)})] from results.csv, the main table rows of docs/performance.md."""
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k in ("median_ns", "min_ns", "max_ns"):
                r[k] = float(r[k])
            r["cpu_ns"] = float(r["cpu_ns"]) if r.get("cpu_ns") else None
            rows.append(r)
    tabs = {k: bench.Table(rows, field=k) for k in ("median_ns", "min_ns", "max_ns")}
    labelled = {k: bench.main_rows(t) for k, t in tabs.items()}
    out = []
    for i, (label, fmed) in enumerate(labelled["median_ns"]):
        g = fmed("glibc")
        if not g:
            continue
        cells = {}
        for a in bench.MAIN_ALLOCS:
            v = fmed(a)
            if a == "glibc" or not v:
                continue
            lo, hi = labelled["min_ns"][i][1](a), labelled["max_ns"][i][1](a)
            cells[a] = (v / g, (lo or v) / g, (hi or v) / g)
        out.append((label, cells))
    return out


def service_rows(path):
    """([(case, cells)] for throughput, [(service, cells)] for peak RSS) from services.csv."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    idx = {(r["case"], r["allocator"]): r for r in rows}
    cases, first = [], {}
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
        first.setdefault(r["service"], r["case"])

    def cells(case, key, lo, hi):
        g = idx.get((case, "glibc"))
        out = {}
        if not g or not float(g[key]):
            return out
        gv = float(g[key])
        for (c, a), r in idx.items():
            if c == case and a != "glibc":
                out[a] = (float(r[key]) / gv, float(r[lo]) / gv, float(r[hi]) / gv)
        return out
    thr = [(c, cells(c, "median", "min", "max")) for c in cases]
    rss = [(s, cells(c, "rss_kb_median", "rss_kb_min", "rss_kb_max")) for s, c in first.items()]
    return thr, rss


def clip(v):
    return min(max(v, LO * 1.02), HI / 1.02)


def panel(rows, title, ylabel, work, n):
    """gnuplot commands for one panel; its data goes to work/panelN.dat."""
    allocs = [a for a in COLORS if any(a in c for _, c in rows)]
    gap = 1.5
    width = len(allocs) + gap
    dat = os.path.join(work, f"panel{n}.dat")
    with open(dat, "w") as f:
        for a in allocs:
            f.write(f"# {a}\n")
            for i, (_, cells) in enumerate(rows):
                if a not in cells:
                    continue
                v, lo, hi = cells[a]
                x = i * width + allocs.index(a)
                cv = clip(v)
                text = bench.fmt_ratio(v) if cv != v else ""
                ty = "NaN" if not text else HI / 1.12 if v > 1 else LO * 1.12  # NaN: no label
                f.write(f"{x} {cv} {x - 0.45} {x + 0.45} {min(1, cv)} {max(1, cv)} "
                        f"{clip(lo)} {clip(hi)} {ty} \"{text}\"\n")
            f.write("\n\n")
    tics = ", ".join(f'"{label}" {i * width + (len(allocs) - 1) / 2}'
                     for i, (label, _) in enumerate(rows))
    plots = []
    for k, a in enumerate(allocs):
        fill = "pattern 4" if a in SCRUBS else "solid 0.85"
        plots.append(f'"{dat}" index {k} using 1:2:3:4:5:6 with boxxyerror lc rgb "{COLORS[a]}" '
                     f'fs {fill} border lc rgb "{COLORS[a]}" title "{LEGEND.get(a, a)}"')
    for k, a in enumerate(allocs):
        plots.append(f'"{dat}" index {k} using 1:7:(0):($8-$7) with vectors heads '
                     f'size 0.08,90 lw 1 '
                     f'lc rgb "black" notitle')
        plots.append(f'"{dat}" index {k} using 1:9:10 with labels boxed rotate by 90 '
                     f'font ",8" tc rgb "black" notitle')
    return f"""
set title "{title}" font ",12"
set ylabel "{ylabel}"
set logscale y
set yrange [{LO}:{HI}]
set ytics ("1/4" 0.25, "1/3" 0.333, "1/2" 0.5, "2/3" 0.667, "0.8" 0.8, "1" 1, \
           "1.25" 1.25, "1.5" 1.5, "2" 2, "3" 3, "4" 4)
set grid ytics
set xrange [-1:{len(rows) * width - gap}]
set xtics ({tics}) rotate by -20 scale 0 font ",9"
plot {", ".join(plots)}, 1 with lines lc rgb "black" lw 1.5 notitle
"""


def draw(d, png=None):
    """Draws the panels for which d holds results; False if there is nothing to draw."""
    png = png or os.path.join(d, "main.png")
    panels = []
    micro, svc = os.path.join(d, "results.csv"), os.path.join(d, "services.csv")
    if os.path.exists(micro):
        rows = micro_rows(micro)
        if rows:
            panels.append((rows, "Micro-benchmarks and single programs: time relative to glibc "
                           "(lower is better)", "time / glibc's", 1.0))
    if os.path.exists(svc):
        thr, rss = service_rows(svc)
        if thr:
            panels.append((thr, "Real servers: throughput relative to glibc (higher is better)",
                           "throughput / glibc's", 1.0))
        if rss:
            panels.append((rss, "Real servers: peak RSS relative to glibc (lower is better)",
                           "peak RSS / glibc's", 0.7))
    if not panels or not shutil.which("gnuplot"):
        return False
    total = sum(h for *_, h in panels)
    height = int(600 * total)
    gp = [f'set terminal pngcairo size 1500,{height} font ",10"', f'set output "{png}"',
          "set multiplot", "set key outside right top vertical font \",9\" "
          "title \"hatched: fills or scrubs freed memory\"",
          "set style textbox opaque noborder",
          "set lmargin 10", "set rmargin 44", "set bmargin 7"]
    y = 1.0
    for n, (rows, title, ylabel, h) in enumerate(panels):
        y -= h / total
        gp += [f"set origin 0,{y}", f"set size 1,{h / total}", panel(rows, title, ylabel, d, n)]
    gp.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(gp), text=True, capture_output=True)
    for n in range(len(panels)):
        try:
            os.remove(os.path.join(d, f"panel{n}.dat"))
        except OSError:
            pass
    if r.returncode != 0 or "error" in r.stderr.lower():
        print("plot: gnuplot failed: " + r.stderr[:800], file=sys.stderr)
        return False
    return True


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    ok = draw(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(f"plot: {'wrote' if ok else 'nothing drawn in'} "
          f"{sys.argv[2] if len(sys.argv) > 2 else os.path.join(sys.argv[1], 'main.png')}",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
