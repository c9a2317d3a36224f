#!/usr/bin/env bash
# Other programs' own test suites (CPython's regression tests, GLib's installed tests, NumPy's
# tests) under LD_PRELOAD=libzeropool.so, each compared with a plain run: a suite passes when
# every test file or program has the same counts of tests run, passed, failed and skipped.
# Default: a CI subset (about 2 minutes); ZEROPOOL_LONG_TESTS=1 (or --long): everything, also
# at ZEROPOOL_THRESHOLD=4K. Prints "N passed, M failed, K skipped" (suites); exit 77 when no
# suite is installed (scripts/setup installs them).
# Usage: run_suites.sh LIBZEROPOOL [--long] [--json FILE] [cpython|glib|numpy ...]
set -u
here=$(dirname "$(realpath "$0")")
# The harness itself runs on the system interpreter, never under the preload.
exec env -u LD_PRELOAD /usr/bin/python3 -I "$here/suites.py" "$@"
