#!/usr/bin/env python3
"""`scripts/bench services`: real servers (redis, nginx, postgres, memcached) and a Python
program run under each allocator through LD_PRELOAD, loaded by their own benchmark clients,
rounds interleaved (the allocator order rotates every round). Writes services.csv and
services.md; the plot is drawn by bench/plot.py.

Every server listens on 127.0.0.1 only, lives in a temporary directory, is bounded by a
request count or a duration plus a timeout, and is stopped by its PID. The preload is set on
the server's environment only (the load tool runs with the plain one), and the driver checks
in /proc/PID/maps that the allocator library is really mapped into the server."""
import argparse
import csv
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run as bench  # noqa: E402  (the allocator table and the formatting helpers)

ALLOCS = ["glibc", "redis-shipped", "jemalloc", "mimalloc", "tcmalloc", "zeropool",
          "zeropool-noscrub", "zeropool-before"]
FIELDS = ["service", "case", "allocator", "unit", "median", "min", "max", "rounds", "rss_kb_median",
          "rss_kb_min", "rss_kb_max", "values", "rss_values_kb"]


class Failed(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def plain_env():
    """The load tools' environment: no preload, no allocator options."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ZEROPOOL_") and k not in ("LD_PRELOAD", "MALLOC_CONF",
                                                            "GLIBC_TUNABLES", "SCUDO_OPTIONS")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Failed(f"server exited {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise Failed(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def tree(pid):
    """pid and its descendants, read from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatch:
    """Peak resident memory of a server's process tree: the largest sum of VmRSS seen every
    0.2 s (postgres backends exit with their connection, so their VmHWM is gone by the end),
    and at the end the sum of VmHWM over the processes still alive, read before the stop."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, sum(status_kb(p, "VmRSS") for p in tree(self.pid)))

    def finish(self):
        self.stop.set()
        self.th.join()
        return max(self.peak, sum(status_kb(p, "VmHWM") for p in tree(self.pid)))


def alloc_deps(path, libs):
    """The allocator libraries among path's shared-library dependencies (ldd)."""
    r = subprocess.run(["ldd", path], env=plain_env(), capture_output=True, text=True)
    real = {os.path.realpath(l): l for l in libs}
    found = set()
    for line in r.stdout.splitlines():
        m = re.search(r"=> (\S+)", line)
        if m and os.path.realpath(m.group(1)) in real:
            found.add(real[os.path.realpath(m.group(1))])
    return found


def expected_libs(alloc, binary, libs):
    """What an allocator's run may map: its library, that library's own dependencies (the
    zeropool build links libjemalloc.so.2) and the program's (Debian's redis-server links
    libjemalloc.so.2 too)."""
    want = alloc_deps(binary, libs)
    if alloc.lib:
        want |= {alloc.lib} | alloc_deps(alloc.lib, libs)
    return {os.path.basename(l) for l in want}


def check_mapped(mapped, alloc, binary, libs, what):
    want = expected_libs(alloc, binary, libs)
    if (alloc.lib in libs and os.path.basename(alloc.lib) not in mapped) or not mapped <= want:
        raise Failed(f"allocator libraries mapped into {what}: {sorted(mapped) or 'none'}, "
                     f"expected {sorted(want) or 'none'}")


def check_preload(pid, alloc, binary, libs):
    """The allocator's library must be mapped into the server, and no other's."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except OSError as e:
        raise Failed(f"cannot read /proc/{pid}/maps: {e}")
    mapped = {os.path.basename(l) for l in libs if os.path.realpath(l) in maps}
    check_mapped(mapped, alloc, binary, libs, "the server")


def run_tool(cmd, timeout, cwd=None):
    try:
        r = subprocess.run(cmd, env=plain_env(), capture_output=True, text=True,
                           timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise Failed(f"{os.path.basename(cmd[0])} timed out after {timeout} s")
    if r.returncode != 0:
        raise Failed(f"{' '.join(cmd[:3])}... exited {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout


def stop(proc, sig=signal.SIGTERM, timeout=30):
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def as_root():
    return os.geteuid() == 0


# ---------------------------------------------------------------- the servers
class Service:
    """start() returns the server's Popen; cases() yields (case, value, unit) while it runs."""
    name = program = ""
    stop_signal = signal.SIGTERM

    def __init__(self, work, quick):
        self.work, self.quick = work, quick

    def binary(self):
        return shutil.which(self.program) or os.path.join("/usr/sbin", self.program)

    def prepare(self):
        pass

    def cleanup(self):
        pass


class Redis(Service):
    name, program = "redis", "redis-server"

    def start(self, env):
        self.port = free_port()
        d = os.path.join(self.work, "redis")
        os.makedirs(d, exist_ok=True)
        p = subprocess.Popen([self.binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", d,
                              "--logfile", os.path.join(d, "log")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, p)
        return p

    def cases(self):
        # SET and GET run apart, each for about 3 s on an idle machine (125,000 and 14,000
        # requests/s under glibc): runs of a fraction of a second measured start-up and noise.
        for label, size, keys, runs in (("64 B", 64, 100000, (("set", 400000), ("get", 400000))),
                                         ("100 KB", 102400, 1000, (("set", 40000), ("get", 40000)))):
            for op, n in runs:
                n = max(n // 50, 100) if self.quick else n
                out = run_tool(["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port),
                                "-c", "50", "-n", str(n), "-d", str(size), "-r", str(keys),
                                "-t", op, "--csv"], 300)
                got = None
                for row in csv.reader(out.splitlines()):
                    if len(row) > 1 and row[0] == op.upper():
                        got = float(row[1])
                if got is None:
                    raise Failed(f"redis-benchmark printed no {op.upper()} line: {out[-300:]}")
                yield f"redis {op.upper()} {label}, 50 clients", got, "req/s"


class Nginx(Service):
    name = program = "nginx"
    stop_signal = signal.SIGQUIT  # graceful: the workers finish, then the master exits

    def prepare(self):
        d = os.path.join(self.work, "nginx")
        os.makedirs(os.path.join(d, "www"), exist_ok=True)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        os.chmod(self.work, 0o755)
        for path in (d, os.path.join(d, "www"), os.path.join(d, "tmp")):
            os.chmod(path, 0o755)
        for name, size in (("10k.bin", 10 << 10), ("1m.bin", 1 << 20)):
            with open(os.path.join(d, "www", name), "wb") as f:
                f.write(os.urandom(size))
        self.dir = d

    def start(self, env):
        self.port = free_port()
        d = self.dir
        user = "user nobody nogroup;" if as_root() else ""
        temps = " ".join(f"{k}_temp_path {d}/tmp/{k};" for k in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{user}
worker_processes 1; daemon off; master_process on; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; {temps}
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{self.port}; root {d}/www; }}
}}
""")
        p = subprocess.Popen([self.binary(), "-p", d, "-c", conf, "-e", f"{d}/error.log"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, p)
        return p

    def cases(self):
        secs = "1s" if self.quick else "5s"
        for label, f in (("10 KB", "10k.bin"), ("1 MB", "1m.bin")):
            out = run_tool(["wrk", "-t", "1", "-c", "50", "-d", secs,
                            f"http://127.0.0.1:{self.port}/{f}"], 60)
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            if not m or re.search(r"Non-2xx", out):
                raise Failed(f"wrk: no clean result: {out[-300:]}")
            yield f"nginx GET {label} file, 50 connections", float(m.group(1)), "req/s"


class Postgres(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown

    def bin(self, name):
        found = sorted(p for p in (os.path.join(d, name) for d in
                                   __import__("glob").glob("/usr/lib/postgresql/*/bin"))
                       if os.path.exists(p))
        if not found:
            raise Failed(f"postgresql's {name} not found")
        return found[-1]

    def binary(self):
        return self.bin("postgres")

    def as_user(self):
        # the cluster belongs to an unprivileged user; setpriv execs, so the PID is the server's
        if not as_root():
            return []
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def prepare(self):
        self.dir = tempfile.mkdtemp(prefix="zp-bench-pg-")
        if as_root():
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        r = subprocess.run(self.as_user() + [self.bin("initdb"), "-A", "trust", "-U", "postgres",
                                             "--no-sync", "-D", self.data],
                           env=plain_env(), capture_output=True, text=True, timeout=120,
                           cwd=self.dir)
        if r.returncode:
            raise Failed(f"initdb exited {r.returncode}: {r.stderr[-300:]}")
        p = self.start(plain_env())
        try:
            run_tool([self.bin("pgbench"), "-i", "-q", "-s", "1" if self.quick else "10"]
                     + self.conn(), 300)
        finally:
            stop(p, self.stop_signal)

    def conn(self):
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "postgres"]

    def start(self, env):
        self.port = free_port()
        p = subprocess.Popen(self.as_user() + [
            self.bin("postgres"), "-D", self.data, "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=128MB", "-c", "max_connections=20"],
            env=env, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, p, 60)
        end = time.monotonic() + 60  # listening comes before accepting: wait for recovery
        while subprocess.run([self.bin("pg_isready"), "-q"] + self.conn()[:6],
                             env=plain_env()).returncode != 0:
            if time.monotonic() > end or p.poll() is not None:
                raise Failed("postgres does not accept connections")
            time.sleep(0.1)
        return p

    def cases(self):
        secs = "2" if self.quick else "6"
        for label, opt in (("select-only", ["-S"]), ("tpcb-like", [])):
            out = run_tool([self.bin("pgbench"), "-n", "-c", "8", "-j", "2", "-T", secs] + opt
                           + self.conn(), 120)
            m = re.search(r"tps = ([\d.]+)", out)
            if not m:
                raise Failed(f"pgbench: no tps line: {out[-300:]}")
            yield f"postgres pgbench {label}, 8 clients", float(m.group(1)), "tx/s"

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Memcached(Service):
    name = program = "memcached"

    def start(self, env):
        self.port = free_port()
        user = ["-u", "nobody"] if as_root() else []
        p = subprocess.Popen([self.binary(), "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
                              "-t", "2", "-m", "1024"] + user, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, p)
        return p

    def cases(self):
        secs = "1s" if self.quick else "5s"
        for label, size in (("64 B", 64), ("32 KB", 32768)):
            out = run_tool(["memcaslap", "-s", f"127.0.0.1:{self.port}", "-T", "1", "-c", "50",
                            "-t", secs, "-X", str(size)], 60)
            m = re.search(r"Run time:.*TPS:\s*(\d+)", out)
            if not m:
                raise Failed(f"memaslap: no TPS line: {out[-300:]}")
            yield f"memcached get/set 9:1 {label}, 50 connections", float(m.group(1)), "ops/s"


class Python(Service):
    """Not a server: one whole process, throughput = iterations / wall time, peak RSS the
    VmHWM that the program reads from /proc/self/status as it ends."""
    name = "python"

    def run_once(self, env, alloc, libs):
        n = 2 if self.quick else 80
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "py_json.py"), str(n)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            err = p.communicate(timeout=600)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            raise Failed("py_json.py timed out")
        wall = time.monotonic() - t0
        m = re.search(r"^VmHWM: (\d+)$", err, re.M)
        rss = int(m.group(1)) if m else 0
        if p.returncode:
            raise Failed(f"py_json.py exited {p.returncode}: {err[-300:]}")
        m = re.search(r"^maps: (.*)$", err, re.M)
        names = m.group(1).split() if m else []
        mapped = {os.path.basename(l) for l in libs
                  if os.path.basename(os.path.realpath(l)) in names}
        check_mapped(mapped, alloc, sys.executable, libs, "python")
        return [("python3 json/dict records (whole process)", n / wall, "iter/s")], rss


SERVICES = {c.name: c for c in (Redis, Nginx, Postgres, Memcached, Python)}


# ---------------------------------------------------------------- driver
def measure(svc, alloc, libs):
    """One server lifetime under one allocator: [(case, value, unit)], peak RSS in KiB."""
    if isinstance(svc, Python):
        return svc.run_once(alloc.environ(), alloc, libs)
    p = svc.start(alloc.environ())
    try:
        check_preload(p.pid, alloc, svc.binary(), libs)
        watch = RssWatch(p.pid)
        try:
            got = list(svc.cases())
        finally:
            rss = watch.finish()
        if p.poll() is not None:
            raise Failed(f"server exited {p.returncode} during the load")
    finally:
        stop(p, svc.stop_signal)
    if p.returncode not in (0, -svc.stop_signal, 128 + svc.stop_signal):
        raise Failed(f"server exited {p.returncode} when stopped")
    return got, rss


def aggregate(samples):
    rows = []
    for (service, case, alloc), s in samples.items():
        vals, rss = [v for v, _, _ in s], [r for _, r, _ in s]
        rows.append(dict(service=service, case=case, allocator=alloc, unit=s[0][2],
                         median=statistics.median(vals), min=min(vals), max=max(vals),
                         rounds=len(vals), rss_kb_median=statistics.median(rss),
                         rss_kb_min=min(rss), rss_kb_max=max(rss),
                         values=";".join(f"{v:.1f}" for v in vals),
                         rss_values_kb=";".join(str(r) for r in rss)))
    return rows


def read_rows(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k in ("median", "min", "max", "rss_kb_median", "rss_kb_min", "rss_kb_max"):
                r[k] = float(r[k])
            r["rounds"] = int(r["rounds"])
            rows.append(r)
    return rows


def report(rows, allocs):
    idx = {(r["case"], r["allocator"]): r for r in rows}
    cases = []
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
    cols = [a for a in allocs if a != "glibc"]
    # peak RSS is one figure per server lifetime (all its cases): one row per service
    first = {}
    for r in rows:
        first.setdefault(r["service"], r["case"])

    def table(key, lo, hi, fmt_glibc, cases=cases, label=lambda c: c):
        body = []
        for c in cases:
            g = idx.get((c, "glibc"))
            row = [label(c), fmt_glibc(g) if g else "–"]
            for a in cols:
                r = idx.get((c, a))
                if r and g and g[key]:
                    gv = g[key]
                    row.append(f"{r[key] / gv:.2f} ({r[lo] / gv:.2f}–{r[hi] / gv:.2f})")
                else:
                    row.append("–")
            body.append(row)
        gm = ["geomean", ""]
        for a in cols:
            rs = [idx[(c, a)][key] / idx[(c, "glibc")][key] for c in cases
                  if (c, a) in idx and (c, "glibc") in idx and idx[(c, "glibc")][key]]
            gm.append(f"{bench.geomean(rs):.2f}" if rs else "–")
        body.append(gm)
        return bench.md_table(["case" if len(cases) > len(first) else "service", "glibc"] + cols,
                              body)

    thr = table("median", "min", "max",
                lambda g: f"{g['median']:,.0f} {g['unit']}")
    rss = table("rss_kb_median", "rss_kb_min", "rss_kb_max",
                lambda g: f"{g['rss_kb_median'] / 1024:.1f} MiB", list(first.values()),
                lambda c: next(s for s, c0 in first.items() if c0 == c))
    return thr, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build")
    ap.add_argument("--zp-lib")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--quick", action="store_true", help="one round, tiny loads: proves the "
                    "harness works, measures nothing")
    ap.add_argument("--only", default=",".join(SERVICES), help="comma list of services")
    ap.add_argument("--allocs", default=",".join(ALLOCS), help="comma list of allocators")
    ap.add_argument("--before", metavar="LIB", help="an earlier libzeropool.so, run as "
                    "zeropool-before in the same rounds (before/after figures)")
    args = ap.parse_args()
    zp_lib = args.zp_lib or os.path.join(args.build, "interpose", "libzeropool.so")
    zp_lib = os.path.abspath(zp_lib)
    base, zp, _, noscrub, _, _ = bench.allocators(zp_lib)
    by = {a.name: a for a in base + zp + [noscrub]}
    # glibc's malloc must win over a program's own allocator (Debian's redis-server links
    # libjemalloc.so.2, which would otherwise serve the "glibc" runs): preload libc itself.
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    by["glibc"] = bench.Alloc("glibc", libc, what="glibc malloc (libc.so.6 preloaded)")
    # Debian's redis-server as shipped, with the jemalloc it links and no preload: redis only.
    by["redis-shipped"] = bench.Alloc("redis-shipped", None, what="Debian's redis-server as "
                                      "shipped (its own libjemalloc.so.2); redis only")
    by["redis-shipped"].only = {"redis"}
    if args.before:
        before = os.path.abspath(args.before)
        by["zeropool-before"] = bench.Alloc("zeropool-before", before,
                                            what=f"an earlier build: {before}")
        if not os.path.exists(before):
            by["zeropool-before"].missing = f"{before} not found"
    elif "zeropool-before" in args.allocs.split(",") and args.allocs != ",".join(ALLOCS):
        log("services: skipping zeropool-before: it needs --before LIB")
    names = [n for n in ALLOCS if n in args.allocs.split(",") and n in by]
    if "glibc" not in names:
        names.insert(0, "glibc")
    allocs = []
    for n in names:
        a = by[n]
        if a.missing:
            log(f"services: skipping {n}: {a.missing}")
        else:
            allocs.append(a)
    libs = sorted({a.lib for a in base + zp + allocs if a.lib and os.path.exists(a.lib)})
    rounds = 1 if args.quick else max(3, args.rounds or 3)
    failures, samples = [], {}
    load0, t0 = bench.loadavg(), time.monotonic()
    work = tempfile.mkdtemp(prefix="zp-bench-services-")
    svcs = []
    try:
        for name in args.only.split(","):
            svc = SERVICES[name](work, args.quick)
            try:
                svc.prepare()
                svcs.append(svc)
            except (Failed, OSError, subprocess.SubprocessError) as e:
                failures.append(f"{name}: set-up: {e}")
        for rnd in range(rounds):
            order = allocs[rnd % len(allocs):] + allocs[:rnd % len(allocs)]
            for svc in svcs:
                for a in order:
                    if getattr(a, "only", None) and svc.name not in a.only:
                        continue
                    log(f"  {svc.name}: round {rnd + 1}/{rounds} {a.name}")
                    try:
                        got, rss = measure(svc, a, libs)
                    except (Failed, OSError, subprocess.SubprocessError) as e:
                        failures.append(f"{svc.name} under {a.name}: {e}")
                        continue
                    if not rss > 0:
                        failures.append(f"{svc.name} under {a.name}: no peak RSS read")
                    for case, v, unit in got:
                        if not v > 0:
                            failures.append(f"{case} under {a.name}: throughput {v}")
                        samples.setdefault((svc.name, case, a.name), []).append((v, rss, unit))
    finally:
        for svc in svcs:
            svc.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    load1, elapsed = bench.loadavg(), time.monotonic() - t0

    rows = aggregate(samples)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "services.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    thr, rss = report(rows, [a.name for a in allocs])
    mode = "quick (smoke: one round, tiny loads; the numbers mean nothing)" if args.quick else \
        f"{rounds} rounds"
    doc = [f"# zeropool on real servers ({mode})", "",
           f"Machine: {bench.machine()}. Run: {time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s; "
           f"load average {' '.join(load0)} at the start, {' '.join(load1)} at the end. "
           "Driver: bench/services/services.py via `scripts/bench services`.", "",
           "Each cell: the allocator's median over the rounds as a ratio to glibc's median, "
           "and in brackets its lowest and highest round over the same glibc median (the "
           "spread). Rounds interleaved, allocator order rotated every round; every server "
           "restarted for every allocator and round, on 127.0.0.1, with the load tool "
           "outside the preload.", "",
           "## Throughput (ratio to glibc; higher is better)", "", thr, "",
           "## Peak RSS (ratio to glibc; lower is better)", "",
           "VmHWM of the server's processes (nginx: master + worker) read from /proc before the "
           "stop, or the largest sum of VmRSS sampled every 0.2 s if larger (postgres backends "
           "exit with their connection); for python, its VmHWM as it ends.", "", rss, "",
           "## How each server is driven", "",
           "- redis 7: `redis-benchmark -c 50 -d 64 -r 100000 -n 400000` and "
           "`-d 102400 -r 1000 -n 40000`, `-t set` and `-t get` apart (about 3 s each); no persistence. The glibc runs preload libc.so.6 itself: "
           "Debian's redis-server links libjemalloc.so.2, which would otherwise serve them; "
           "redis-shipped is that redis-server as Debian ships it, with its own jemalloc and "
           "no preload (its geomean covers the redis rows only).",
           "- nginx 1.22: one worker, sendfile on, `wrk -t 1 -c 50 -d 5s` on a 10 KB and a "
           "1 MB file.",
           "- postgres 15: a throw-away cluster (initdb in a temporary directory, run as the "
           "`postgres` user), scale 10, fsync/synchronous_commit/full_page_writes off so that "
           "the disk does not set the pace; `pgbench -c 8 -j 2 -T 6`, select-only (`-S`) and "
           "tpcb-like.",
           "- memcached 1.6: 2 threads, `memaslap -T 1 -c 50 -t 5s -X SIZE` (9 gets : 1 set) with "
           "64 B and 32 KB values.",
           "- python3: bench/services/py_json.py 80 (records built, json round-trip, grouped and "
           "sorted), iterations per second of the whole process.", ""]
    if "zeropool-before" in [x.name for x in allocs]:
        doc += [f"- zeropool-before: {by['zeropool-before'].what}, in the same rounds.", ""]
    if failures:
        doc += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    with open(os.path.join(args.out, "services.md"), "w") as f:
        f.write("\n".join(doc))
    log(f"services: wrote {args.out}/services.md and services.csv in {elapsed:.0f} s")
    for f_ in failures:
        log("services: FAILED " + f_)
    return 1 if failures or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
