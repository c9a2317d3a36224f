#!/usr/bin/env python3
"""ZEROPOOL_STATS seen from outside: the JSON object parses, holds every option, every pool
counter, the size classes, small blocks and misuse counts, and its numbers agree with what the
program did; malloc_info (XML) gives the same numbers; the table is readable; small blocks
freed by threads that have exited are counted; ZEROPOOL_STATS_FILE expands %p so that a parent
and its children (exec'd or only forked) write separate files, each created atomically (no
.tmp left behind). Usage: test_stats.py LIBZEROPOOL DIR_OF_THE_PROGRAMS options.def"""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

LIB, DIR, OPTIONS_DEF = sys.argv[1:4]
PROBE = os.path.join(DIR, "misuse_stats_probe")
passed = failed = 0

POOL_KEYS = ["gets", "puts", "tls_hits", "shard_hits", "steals", "fresh", "direct", "evictions",
             "bytes_scrubbed", "bytes_dropped", "pooled_bytes", "peak_pooled_bytes",
             "pinned_bytes", "live_bytes", "reserved_bytes", "misuse"]
MISUSE_KEYS = ["double_free", "invalid_free", "wild_free", "overflow", "not_zero",
               "realloc_freed", "invalid_realloc", "wild_realloc", "guard_overflow",
               "use_after_free", "invalid_access"]


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail) if detail else ""))


def run(args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ZEROPOOL_")}
    e.update(env)
    e["LD_PRELOAD"] = LIB
    return subprocess.run([PROBE] + args, env=e, capture_output=True, text=True, timeout=60)


def json_of(stderr):
    lines = [l for l in stderr.splitlines() if l.startswith('{"zeropool":')]
    return json.loads(lines[-1])["zeropool"] if lines else None


with open(OPTIONS_DEF) as f:
    option_keys = re.findall(r"^ZP_OPT\(\s*\w+,\s*(\w+),", f.read(), re.M)

# ---- the JSON object and its consistency with the program's activity ----
r = run(["work"], ZEROPOOL_STATS="json", ZEROPOOL_ON_ERROR="report")
pid = int(r.stdout.split()[1])
z = None
try:
    z = json_of(r.stderr)
except ValueError as e:
    check("json parses", False, e)
check("json: the program ran", r.returncode == 0, r.stderr[-500:])
if z is not None:
    check("json parses", True)
    check("json: pid", z.get("pid") == pid, z.get("pid"))
    check("json: pool created", z.get("pool") is True)
    check("json: config has every option", sorted(z["config"]) == sorted(option_keys),
          set(option_keys) ^ set(z["config"]))
    check("json: config values typed", z["config"]["threshold"] == 65536 and
          z["config"]["guard"] is True and z["config"]["on_error"] == "report" and
          z["config"]["stats"] == "json", z["config"])
    check("json: pool_config", z["pool_config"].get("threshold") == 65536 and
          z["pool_config"]["check_slack"] is True, z.get("pool_config"))
    # One name per knob: the pool's configuration uses the option keys of "config" (threshold,
    # not min_buffer_size; guard, not guard_pages); check_slack is the one with no option.
    check("json: pool_config names are option keys",
          set(z["pool_config"]) - {"check_slack"} <= set(option_keys) and
          z["pool_config"]["guard"] is True and z["pool_config"]["zero_on_alloc"] == "off",
          set(z["pool_config"]) - set(option_keys) - {"check_slack"})
    p = z["pool_stats"]
    check("json: every pool counter", all(isinstance(p.get(k), int) for k in POOL_KEYS), p)
    check("json: gets, puts", p["gets"] >= 11 and p["puts"] >= 11, p)
    check("json: gets = tls_hits + shard_hits + fresh",
          p["gets"] == p["tls_hits"] + p["shard_hits"] + p["fresh"], p)
    check("json: the 1 MiB buffer was reused from the thread cache", p["tls_hits"] >= 9, p)
    check("json: bytes scrubbed or dropped cover the writes",
          p["bytes_scrubbed"] + p["bytes_dropped"] >= 10 << 20, p)
    check("json: peak >= pooled", p["peak_pooled_bytes"] >= p["pooled_bytes"] > 0, p)
    classes = {c["size"]: c for c in z["classes"]}
    check("json: 1 MiB class", classes.get(1 << 20, {}).get("gets", 0) >= 10, z["classes"])
    check("json: class gets sum to pool gets",
          sum(c["gets"] for c in z["classes"]) == p["gets"], z["classes"])
    check("json: small frees", z["small"]["frees"] >= 200, z["small"])
    check("json: small bytes scrubbed", z["small"]["bytes_scrubbed"] >= 200 * 100, z["small"])
    m = z["misuse"]
    check("json: misuse kinds", sorted(k for k in m if k != "total") == sorted(MISUSE_KEYS), m)
    check("json: one double free", m["double_free"] == 1 and m["total"] == 1, m)
    check("json: the pool counted it too", p["misuse"] == 1, p)
    check("json: jemalloc totals", z["jemalloc"]["allocated"] > 0, z.get("jemalloc"))
    # malloc_info printed to stdout before exit: the same numbers, glibc's XML shape
    xml_text = r.stdout[r.stdout.index("<malloc"):]
    try:
        root = ET.fromstring(xml_text)
        pool = {t.get("type"): int(t.get("count") or t.get("size"))
                for t in root.find("pool_stats").findall("total")}
        check("malloc_info: XML parses, same pool counters",
              pool["gets"] == p["gets"] and pool["fresh"] == p["fresh"], (pool, p))
        check("malloc_info: version", root.get("version", "").startswith("zeropool-"))
    except (ET.ParseError, AttributeError, KeyError, ValueError) as e:
        check("malloc_info: XML parses", False, e)

r = run(["work"], ZEROPOOL_STATS="json", ZEROPOOL_ON_ERROR="report", ZEROPOOL_SCRUB_SMALL="0")
z = json_of(r.stderr)
check("json: SCRUB_SMALL=0 counts frees, scrubs nothing",
      z is not None and z["small"]["frees"] >= 200 and z["small"]["bytes_scrubbed"] == 0,
      z and z["small"])

r = run(["work"], ZEROPOOL_STATS="json", ZEROPOOL_ON_ERROR="report", ZEROPOOL_ZERO_ON_ALLOC="verify",
        ZEROPOOL_GUARD="0")
z = json_of(r.stderr)
check("json: pool_config shows zero_on_alloc=verify and guard off under the option's names",
      z is not None and z["pool_config"].get("zero_on_alloc") == "verify" and
      z["pool_config"].get("guard") is False, z and z["pool_config"])

r = run(["threads"], ZEROPOOL_STATS="json")
z = json_of(r.stderr)
check("json: small frees of exited threads are kept",
      z is not None and z["small"]["frees"] >= 4000, z and z["small"])

r = run(["work"], ZEROPOOL_DISABLE="1", ZEROPOOL_STATS="json", ZEROPOOL_ON_ERROR="report")
z = json_of(r.stderr)
check("json: disabled, no pool", z is not None and z["pool"] is False and
      z["pool_stats"]["gets"] == 0 and z["classes"] == [], z)

# ---- the table, and malloc_stats ----
r = run(["work"], ZEROPOOL_STATS="1", ZEROPOOL_ON_ERROR="report")
check("table: header", re.search(r"^zeropool: statistics \(pid \d+, version ", r.stderr, re.M))
check("table: counters", re.search(r"^    gets +[1-9]", r.stderr, re.M) and
      re.search(r"^    double_free +1$", r.stderr, re.M), r.stderr[-2000:])
check("table: size classes", re.search(r"^ +1M +\d+ +\d+ +\d+ +\d+$", r.stderr, re.M),
      r.stderr[-2000:])
r = run(["mstats"])
check("malloc_stats: the table on stderr",
      re.search(r"^zeropool: statistics \(pid", r.stderr, re.M) and "pool (large requests):"
      in r.stderr, r.stderr)

# ---- ZEROPOOL_STATS_FILE: %p, one file per process, atomic ----
with tempfile.TemporaryDirectory() as d:
    r = run(["fork"], ZEROPOOL_STATS="json", ZEROPOOL_STATS_FILE=os.path.join(d, "s.%p.json"))
    parent = int(r.stdout.split()[1])
    kids = [int(x) for x in r.stdout.split("children")[1].split()] if "children" in r.stdout else []
    files = sorted(os.listdir(d))
    want = sorted("s.%d.json" % p for p in [parent] + kids)
    check("stats file: parent, exec'd child and forked child write their own", files == want,
          (files, want, r.stderr))
    ok = True
    for fn in files:
        try:
            with open(os.path.join(d, fn)) as f:
                obj = json.load(f)["zeropool"]
            ok = ok and obj["pid"] == int(fn.split(".")[1])
        except (ValueError, KeyError, OSError):
            ok = False
    check("stats file: each is whole JSON with its own pid", ok and files, files)
    check("stats file: nothing left on stderr", r.stderr == "", r.stderr)
    check("stats file: no .tmp left behind", not any(".tmp" in f for f in files), files)
    # A failure changes nothing the program sees (its descriptor 2 may be its data file):
    # kept for `zeropool status`, said only with ZEROPOOL_VERBOSE=1.
    r = run(["child"], ZEROPOOL_STATS="1", ZEROPOOL_STATS_FILE=os.path.join(d, "nodir", "x"))
    check("stats file: an unwritable path writes nothing on stderr",
          r.stderr == "" and not os.path.exists(os.path.join(d, "nodir")), r.stderr)
    r = run(["child"], ZEROPOOL_STATS="1", ZEROPOOL_VERBOSE="1",
            ZEROPOOL_STATS_FILE=os.path.join(d, "nodir", "x"))
    check("stats file: with ZEROPOOL_VERBOSE=1 the failure names the path and the errno",
          "cannot write the statistics file %s: ENOENT (errno 2)" % os.path.join(d, "nodir", "x")
          in r.stderr, r.stderr)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
