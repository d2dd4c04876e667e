"""Disk context for the redb row of scripts/bench-http.sh: how long this
machine takes to make ~one group commit's worth of writes durable.

Writes 120 random 4 KiB pages into a 128 MiB file and fdatasyncs, again
and again for N seconds (argv[2], default 5), in directory argv[1]; prints
one line with the median, p99 and worst fdatasync and how many took over
15 ms. redb's p99 cannot be better than this disk's own tail."""

import os
import random
import sys
import time

directory = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
path = os.path.join(directory, "fsync-probe.bin")
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
try:
    os.ftruncate(fd, 128 << 20)
    page = os.urandom(4096)
    pages = (128 << 20) // 4096
    took = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(120):
            os.pwrite(fd, page, random.randrange(pages) * 4096)
        start = time.perf_counter()
        os.fdatasync(fd)
        took.append((time.perf_counter() - start) * 1000)
finally:
    os.close(fd)
    os.unlink(path)
took.sort()
n = len(took)
print(
    f"disk: fdatasync of 120 random 4 KiB pages, {n} times in {seconds:g} s: "
    f"median {took[n // 2]:.2f} ms, p99 {took[int(n * 0.99)]:.2f} ms, "
    f"max {took[-1]:.2f} ms, {sum(1 for t in took if t > 15)} over 15 ms"
)
