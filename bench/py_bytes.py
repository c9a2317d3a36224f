#!/usr/bin/env python3
"""A real program for the preload benchmarks: CPython doing bytes/bytearray work on large
buffers (1-8 MiB bytearrays, slices, joins, concatenation), timed as a whole process by
scripts/bench. usage: py_bytes.py [iterations]"""
import random
import sys


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rnd = random.Random(1)
    stamp = b"x" * 4096
    total = 0
    for _ in range(n):
        size = rnd.randrange(1 << 20, 8 << 20)
        buf = bytearray(size)                     # zero-filled
        buf[0:4096] = stamp                       # a header
        buf[size // 2:size // 2 + 4096] = stamp   # and a record in the middle
        head = bytes(buf[:size // 2])             # slice copy, then bytes copy
        joined = b"".join([head, stamp, head])    # one large join
        tail = buf[size // 4:] + head[:1 << 20]   # concatenation
        total += len(joined) + len(tail) + joined[4095] + tail[-1]
    print(total)


if __name__ == "__main__":
    main()
