"""How fast this machine's cores were during a run, so figures from different spells compare.

On a shared virtual machine the same two vCPUs have run a plain Python loop anywhere from
0.53 s to 1.36 s per 10 M additions from one hour to the next (BENCHMARKS.md), and a
benchmark's absolute figures move with them. Each run records the loop's time next to its
figures (and, from /proc/stat, the CPU time the hypervisor took back while it measured).
"""

from __future__ import annotations

import time

LOOP = 1_000_000


def python_loop_ms(repeats: int = 5) -> float:
    """Milliseconds for 1 M additions in a plain Python loop, the best of `repeats`: the speed of
    one core as this interpreter sees it, with little of the noise of a busy neighbour."""
    best = float("inf")
    for _ in range(repeats):
        started, total = time.perf_counter(), 0
        for i in range(LOOP):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
