#!/usr/bin/env python3
"""Smoke test of the benchmark harness: run core_bench --smoke (JSON and CSV) and check
that it exits 0 and that every line is a well-formed measurement."""
import json
import subprocess
import sys

FIELDS = ["benchmark", "allocator", "param", "median_ns", "min_ns", "max_ns", "runs", "note"]


def main():
    exe = sys.argv[1]
    out = subprocess.run([exe, "--smoke", "--format", "json"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines, "no output"
    for l in lines:
        m = json.loads(l)
        assert list(m) == FIELDS, m
        assert m["runs"] >= 1 and m["min_ns"] <= m["median_ns"] <= m["max_ns"], m
        if not m["benchmark"].endswith(".overhead"):
            assert m["median_ns"] > 0, m
    out = subprocess.run([exe, "--smoke"], capture_output=True, text=True, timeout=20,
                         check=True).stdout.splitlines()
    assert out[0] == ",".join(FIELDS), out[0]
    for l in out[1:]:
        assert len(l.split(",")) == len(FIELDS), l
        float(l.split(",")[3])
    print(f"ok: {len(lines)} measurements")


if __name__ == "__main__":
    main()
