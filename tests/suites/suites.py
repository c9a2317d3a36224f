"""Other programs' own test suites under LD_PRELOAD=libzeropool.so, compared with a plain run.

Each suite runs once without the preload and once with it (and, in the long run, once more at
ZEROPOOL_THRESHOLD=4K). A suite passes when every unit (a test file, a test program) has the
same counts of tests run, passed, failed and skipped as in the plain run, and the preloaded
processes' statistics show that the pool served requests with no misuse reported.

  cpython  CPython 3.11's regression tests (Debian libpython3.11-testsuite), run by the
           Debian /usr/bin/python3.11 with regrtest's JUnit XML output
  glib     GLib 2.74's installed tests (Debian libglib2.0-tests): C programs printing TAP
  numpy    NumPy's tests through pytest (python3-numpy, python3-pytest, python3-hypothesis)

Default (CI): a subset of each, about 90 s. ZEROPOOL_LONG_TESTS=1 or --long: the suites at
full size (cpython: regrtest's whole suite less network/terminal/timing tests), also at 4K. Run by run_suites.sh, which this file's harness never runs under the preload itself.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PY = "/usr/bin/python3.11"  # Debian's interpreter: its test package matches it
GLIB_DIR = "/usr/share/installed-tests/glib"
NUMPY_ROOT = "/usr/lib/python3/dist-packages"  # where Debian's python3-numpy lives

CPYTHON_CI = [
    "test_bytes", "test_json", "test_re", "test_collections", "test_zlib", "test_bz2",
    "test_lzma", "test_array", "test_memoryview", "test_hashlib", "test_struct", "test_mmap",
    "test_bisect", "test_heapq", "test_deque", "test_dict", "test_set", "test_list",
    "test_unicode", "test_codecs", "test_base64", "test_binascii",
]
# The long run: regrtest's whole suite, minus tests that need a network, a terminal or a
# desktop, or that time themselves against the wall clock.
CPYTHON_EXCLUDE = [
    "test_socket", "test_ssl", "test_asyncio", "test_urllib2net", "test_urllibnet",
    "test_timeout", "test_nntplib", "test_ftplib", "test_smtpnet", "test_ioctl", "test_tty",
    "test_pty", "test_curses", "test_tkinter", "test_ttk", "test_ttk_textonly", "test_idle",
    "test_tix", "test_turtle", "test_winsound", "test_sqlite3", "test_concurrent_futures",
    "test_multiprocessing_fork", "test_multiprocessing_forkserver",
    "test_multiprocessing_spawn", "test_signal", "test_threadsignals", "test_time",
    "test_gdb", "test_peg_generator", "test_tools", "test_venv", "test_zipfile64",
    "test_largefile", "test_launcher", "test_embed", "test_distutils", "test_httpservers",
    "test_xmlrpc", "test_docxmlrpc", "test_wsgiref", "test_site", "test_faulthandler",
    "test_subprocess", "test_selectors", "test_poll", "test_epoll", "test_sched",
    "test_thread", "test_threading", "test_queue", "test_logging", "test_support",
    "test_regrtest", "test_cppext", "test_clinic", "test_importlib", "test_pydoc",
    "test_trace", "test_sys_settrace", "test_capi",
]

GLIB_CI = [
    "array-test", "hash", "list", "slist", "queue", "sequence", "tree", "string", "strfuncs",
    "utf8-misc", "utf8-validate", "unicode", "regex", "keyfile", "markup-parse",
    "markup-escape", "checksum", "base64", "bytes", "gvariant", "date", "gdatetime",
    "bookmarkfile", "option-context", "uri", "convert", "memory-output-stream",
    "memory-input-stream", "data-input-stream", "data-output-stream",
    "buffered-input-stream", "converter-stream", "signals", "object", "type", "param",
    "value", "boxed", "properties", "slice", "asyncqueue", "cache", "dataset", "rcbox",
    "refstring", "scannerapi", "shell", "strvbuilder", "hmac", "hostutils",
]
# Timing-sensitive or environment-dependent programs (they measure throughput, need a D-Bus
# session or a desktop, or fail the same way with and without the preload when run as root).
GLIB_EXCLUDE = {
    "performance", "performance-threaded", "thread-pool-slow", "timeout", "timer",
    "memory-monitor-dbus", "memory-monitor-portal", "power-profile-monitor-dbus",
    "power-profile-monitor-portal", "static-link",
}

NUMPY_CI = [
    "numpy.core.tests.test_numeric", "numpy.core.tests.test_umath",
    "numpy.core.tests.test_regression", "numpy.fft",
    "numpy.polynomial", "numpy.ma",
]
# The long run adds these (about 3 minutes a run here; the whole of NumPy's suite takes
# half an hour on 2 cores).
NUMPY_LONG = NUMPY_CI + [
    "numpy.lib", "numpy.linalg", "numpy.random", "numpy.matrixlib",
    "numpy.core.tests.test_multiarray", "numpy.core.tests.test_ufunc",
    "numpy.core.tests.test_umath_complex", "numpy.core.tests.test_dtype",
    "numpy.core.tests.test_indexing", "numpy.core.tests.test_nditer",
    "numpy.core.tests.test_shape_base", "numpy.core.tests.test_einsum",
]


def fewer_failures(a, b):
    """Count tuples (run, passed, failed, skipped, ...): a has fewer failures than b."""
    return (a is not None and b is not None and len(a) > 2 and len(b) > 2
            and isinstance(a[2], int) and isinstance(b[2], int) and a[2] < b[2])


def counts_add(a, b):
    return tuple(x + y for x, y in zip(a, b))


#### running one suite in one mode ####

def run_cpython(env, work, long_run, log, only=None):
    xml = os.path.join(work, "junit.xml")
    cmd = [PY, "-m", "test", "-j2", "--timeout", "900", "--junit-xml", xml]
    if only:
        cmd += [u.split(".")[-1] for u in only]
    elif long_run:
        cmd += ["-x"] + CPYTHON_EXCLUDE  # -x: the names that follow are left out
    else:
        cmd += CPYTHON_CI
    rc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL).returncode
    units = {}
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            cls = case.get("classname") or case.get("name") or "?"
            parts = cls.split(".")
            unit = ".".join(parts[:2]) if parts[0] == "test" else parts[0]
            tags = {c.tag for c in case}
            skipped = "skipped" in tags
            failed = bool(tags & {"failure", "error"})
            c = (1, int(not skipped and not failed), int(failed), int(skipped))
            units[unit] = counts_add(units.get(unit, (0, 0, 0, 0)), c)
    units["(regrtest exit status)"] = (rc,)
    return units


def glib_programs(long_run, only=None):
    progs = []
    for f in sorted(os.listdir(GLIB_DIR)):
        if not f.endswith(".test"):
            continue
        name = f[:-5]
        if only is not None:
            if name not in only:
                continue
        elif name in GLIB_EXCLUDE or (not long_run and name not in GLIB_CI):
            continue
        exe = None
        with open(os.path.join(GLIB_DIR, f)) as fh:
            for line in fh:
                if line.startswith("Exec="):
                    exe = line[5:].split()
        if exe:
            progs.append((name, exe))
    return progs


def run_glib(env, work, long_run, log, only=None):
    import concurrent.futures as cf

    def one(prog):
        name, exe = prog
        # A short directory of the same length in every mode: programs bind unix sockets under
        # it (gdbus-server-auth), and a path past sun_path's 108 bytes fails with BadAddress
        # in the mode whose name is longer ("plain" > "64k").
        d = tempfile.mkdtemp(prefix="zpg.", dir="/tmp")
        e = dict(env, HOME=d, XDG_RUNTIME_DIR=d, TMPDIR=d, LC_ALL="C.UTF-8")
        try:
            p = subprocess.run(exe, cwd=d, env=e, capture_output=True, timeout=300,
                               stdin=subprocess.DEVNULL)
            out, rc = p.stdout.decode(errors="replace"), p.returncode
            err = p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as t:
            out, rc, err = (t.stdout or b"").decode(errors="replace"), "timeout", ""
        shutil.rmtree(d, ignore_errors=True)
        ok = re.findall(r"^ok \d+(.*)$", out, re.M)
        skip = sum(1 for x in ok if re.search(r"#\s*skip", x, re.I))
        notok = re.findall(r"^not ok \d+(.*)$", out, re.M)
        xfail = sum(1 for x in notok if re.search(r"#\s*todo", x, re.I))
        c = (len(ok) + len(notok), len(ok) - skip, len(notok) - xfail, skip + xfail)
        return name, c + (rc if rc in (0, 77, "timeout") or not isinstance(rc, int)
                          else ("signal %d" % -rc if rc < 0 else "exit %d" % rc),), err

    units = {}
    with cf.ThreadPoolExecutor(2) as pool:
        for name, c, err in pool.map(one, glib_programs(long_run, only)):
            units[name] = c
            if c[2] or c[4] not in (0, 77):
                log.write(("--- %s %r\n%s\n" % (name, c, err[-2000:])).encode())
    return units


def run_numpy(env, work, long_run, log, only=None):
    xml = os.path.join(work, "junit.xml")
    # test_big_arrays needs 23 GB (as much without zeropool): this machine's size, not ours.
    # NPY_AVAILABLE_MEM fixes what NumPy's memory-hungry tests believe is free, so that they
    # run or skip alike in every run whatever else the machine is doing.
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
           "-k", "not test_big_arrays", "--junitxml", xml]
    env = dict(env, NPY_AVAILABLE_MEM="4 GB")
    if only:
        cmd += [os.path.join(NUMPY_ROOT, u) for u in only]
    else:
        cmd += ["--pyargs"] + (NUMPY_LONG if long_run else NUMPY_CI)
    rc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL).returncode
    units = {}
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            f = os.path.normpath(os.path.join(work, case.get("file") or "?"))
            unit = os.path.relpath(f, NUMPY_ROOT)  # the test file, e.g. numpy/fft/tests/...
            tags = {c.tag for c in case}
            skipped = "skipped" in tags
            failed = bool(tags & {"failure", "error"})
            c = (1, int(not skipped and not failed), int(failed), int(skipped))
            units[unit] = counts_add(units.get(unit, (0, 0, 0, 0)), c)
    units["(pytest exit status)"] = (rc,)
    return units


def have_cpython():
    return os.access(PY, os.X_OK) and os.path.exists("/usr/lib/python3.11/test/test_bytes.py")


def have_glib():
    return os.path.isdir(GLIB_DIR)


def have_numpy():
    if not os.access(PY, os.X_OK):
        return False
    return subprocess.run([PY, "-c", "import numpy, pytest, hypothesis"],
                          capture_output=True).returncode == 0


SUITES = {
    "cpython": (have_cpython, run_cpython, "libpython3.11-testsuite"),
    "glib": (have_glib, run_glib, "libglib2.0-tests"),
    "numpy": (have_numpy, run_numpy, "python3-numpy python3-pytest python3-hypothesis"),
}


#### comparing ####

def totals(units):
    t = (0, 0, 0, 0)
    for v in units.values():
        if len(v) >= 4:
            t = counts_add(t, v[:4])
    return t


def pool_stats(stats_dir):
    """Sum of the pool's gets and of misuse reports over every preloaded process."""
    gets = misuse = files = 0
    for f in os.listdir(stats_dir):
        try:
            with open(os.path.join(stats_dir, f)) as fh:
                text = fh.read()
        except OSError:
            continue
        files += 1
        try:
            z = json.loads(text)["zeropool"]
            gets += z.get("pool_stats", z).get("gets", 0)
            m = z.get("misuse", 0)
            misuse += m.get("total", 0) if isinstance(m, dict) else m
        except (ValueError, KeyError, AttributeError):
            g = re.search(r'"gets":(\d+)', text)
            gets += int(g.group(1)) if g else 0
    return files, gets, misuse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lib", help="libzeropool.so")
    ap.add_argument("suites", nargs="*", help="cpython, glib, numpy (default: by mode)")
    ap.add_argument("--long", action="store_true", help="full suites, also at threshold 4K")
    ap.add_argument("--json", help="write the counts of every run to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_intermixed_args()
    long_run = a.long or os.environ.get("ZEROPOOL_LONG_TESTS") == "1"
    lib = os.path.realpath(a.lib)
    names = a.suites or ["cpython", "glib", "numpy"]
    modes = ["plain", "64k"] + (["4k"] if long_run else [])
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("ZEROPOOL_") and k not in ("LD_PRELOAD", "PYTHONPATH",
                                                              "PYTHONHOME", "PYTHONSTARTUP")}
    base_env["PATH"] = "/usr/bin:/bin:" + base_env.get("PATH", "")  # Debian's python first
    top = tempfile.mkdtemp(prefix="zp-suites.")
    passed = failed = skipped = 0
    report = {"long": long_run, "suites": {}}
    for name in names:
        have, run, pkgs = SUITES[name]
        if not have():
            print("skip %s: not installed (Debian: %s)" % (name, pkgs))
            skipped += 1
            continue
        results, why, info = {}, [], {}
        for mode in modes:
            work = os.path.join(top, name, mode)
            stats = os.path.join(work, "stats")
            os.makedirs(stats)
            env = dict(base_env)
            if mode != "plain":
                env.update(LD_PRELOAD=lib, ZEROPOOL_STATS="json",
                           ZEROPOOL_STATS_FILE=os.path.join(stats, "s.%p"))
                if mode == "4k":
                    env["ZEROPOOL_THRESHOLD"] = "4K"
            t0 = time.time()
            with open(os.path.join(top, "%s.%s.log" % (name, mode)), "wb") as log:
                results[mode] = run(env, work, long_run, log)
            secs = time.time() - t0
            t = totals(results[mode])
            info[mode] = {"run": t[0], "passed": t[1], "failed": t[2], "skipped": t[3],
                          "seconds": round(secs, 1), "units": len(results[mode])}
            line = "  %-8s %-6s %6d run, %6d passed, %4d failed, %5d skipped  (%d units, %.0f s)" % (
                name, mode, t[0], t[1], t[2], t[3], len(results[mode]), secs)
            if mode != "plain":
                files, gets, misuse = pool_stats(stats)
                info[mode].update(processes=files, pool_gets=gets, misuse=misuse)
                line += "; %d processes, %d pool gets, %d misuse" % (files, gets, misuse)
                if gets == 0:
                    why.append("%s: the pool served nothing" % mode)
                if misuse:
                    why.append("%s: %d misuse reports" % (mode, misuse))
                print(line, flush=True)
                diff = [u for u in sorted(set(results["plain"]) | set(results[mode]))
                        if results["plain"].get(u) != results[mode].get(u)]
                units = [u for u in diff if not u.startswith("(")]
                # A unit that differs runs again, plain and preloaded, twice at most. It is
                # excused as flaky only when the plain run itself changed its result and both
                # now agree: a test that varies without zeropool is not blamed on it, but one
                # that failed only under zeropool, even once, is.
                for attempt in range(2):
                    if not units:
                        break
                    again = {}
                    for m, e in (("plain", dict(base_env)), (mode, env)):
                        w = os.path.join(work, "rerun%d-%s" % (attempt, m))
                        os.makedirs(os.path.join(w, "stats"))
                        if m != "plain":
                            e = dict(e, ZEROPOOL_STATS_FILE=os.path.join(w, "stats", "s.%p"))
                        with open(os.path.join(top, "%s.%s.rerun%d.log" % (name, m, attempt)),
                                  "ab") as log:
                            again[m] = run(e, w, long_run, log, only=units)
                    same = [u for u in units if again["plain"].get(u) == again[mode].get(u)
                            and again["plain"].get(u) is not None
                            and again["plain"].get(u) != results["plain"].get(u)]
                    def excuse(u, reason):
                        print("  %-8s %-6s %s differed (plain %s, preloaded %s); %s: both %s "
                              "when run again" % (name, mode, u, results["plain"].get(u),
                                                  results[mode].get(u), reason, again[mode].get(u)))
                        info[mode].setdefault("flaky", []).append(u)

                    for u in same:
                        excuse(u, "flaky without zeropool")
                    units = [u for u in units if u not in same]
                    steady = [u for u in units if again["plain"].get(u) == results["plain"].get(u)
                              and again[mode].get(u) == again["plain"].get(u)]
                    # Plain fails steadily and the preloaded run failed less only the first
                    # time: the unit fails without zeropool, and did so under it when run
                    # again; zeropool was better once, which is not a fault of it.
                    better = [u for u in steady if fewer_failures(results[mode].get(u),
                                                                  results["plain"].get(u))]
                    for u in better:
                        excuse(u, "fails without zeropool")
                    steady = [u for u in steady if u not in better]
                    units = [u for u in units if u not in better]
                    for u in steady:
                        why.append("%s: %s: preloaded %s once, plain steady at %s (intermittent "
                                   "under zeropool)" % (mode, u, results[mode].get(u),
                                                        results["plain"].get(u)))
                    units = [u for u in units if u not in steady]
                # An exit status that differs counts unless every differing unit proved
                # flaky (then it differed because of them).
                status = [u for u in diff if u.startswith("(")]
                if units or len(status) == len(diff):
                    for u in units + status:
                        why.append("%s: %s: plain %s, preloaded %s" % (
                            mode, u, results["plain"].get(u), results[mode].get(u)))
            else:
                print(line, flush=True)
        report["suites"][name] = info
        if why:
            failed += 1
            print("FAIL %s" % name, flush=True)
            for w in why[:30]:
                print("     | " + w)
            print("     logs: %s" % top)
            a.keep = True
        else:
            passed += 1
            print("ok   %s: counts identical with and without zeropool" % name)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)
    if not a.keep:
        shutil.rmtree(top, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else (77 if passed == 0 else 0)


if __name__ == "__main__":
    sys.exit(main())
