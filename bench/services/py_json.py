#!/usr/bin/env python3
"""The Python workload of `scripts/bench services`: dict- and str-heavy work of the kind a
web backend does (build records, json round-trips, group and sort), timed as a whole process.
usage: py_json.py [iterations]; prints the allocator libraries mapped into this process on
stderr, so that the driver can check the preload reached the interpreter, and its peak RSS."""
import json
import random
import sys


def records(rnd, n):
    return [{"id": i, "name": f"user-{rnd.randrange(1 << 30):x}", "tags": [f"t{rnd.randrange(50)}"
             for _ in range(rnd.randrange(1, 8))], "score": rnd.random(),
             "blob": "x" * rnd.randrange(16, 2048)} for i in range(n)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rnd = random.Random(7)
    total = 0
    for _ in range(n):
        recs = records(rnd, 2000)
        text = json.dumps(recs)                   # one large string (several MiB)
        back = json.loads(text)
        groups = {}
        for r in back:
            for t in r["tags"]:
                groups.setdefault(t, []).append(r)
        top = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:5]
        total += len(text) + sum(len(v) for _, v in top)
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1].rsplit("/", 1)[-1] for l in f if ".so" in l})
    print("maps: " + " ".join(libs), file=sys.stderr)
    with open("/proc/self/status") as f:
        hwm = [l.split()[1] for l in f if l.startswith("VmHWM:")]
    print("VmHWM: " + hwm[0], file=sys.stderr)
    print(total)


if __name__ == "__main__":
    main()
