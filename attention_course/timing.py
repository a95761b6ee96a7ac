"""Wall-clock timing for the chapters' speed measurements.

Timings on a shared 2-core machine are noisy; the minimum over a few repeats
is the least noisy estimate of what the computation itself costs (as Python's
``timeit`` advises). Used by chapters 3, 4 and later ones that measure speed.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["best_time"]


def best_time(fn: Callable[[], object], *, repeat: int = 5, number: int | None = None, warmup: int = 1,
              min_seconds: float = 0.01) -> float:
    """Seconds per call of ``fn()``: the minimum over ``repeat`` runs of ``number`` calls each.

    ``warmup`` calls run first and are not timed (the first call of a torch
    operation allocates memory and picks kernels). ``number=None`` picks it as
    ``timeit`` does: the smallest power of 2 whose run lasts ``min_seconds``, so
    that fast calls are not timed one at a time.
    """
    if repeat < 1 or (number is not None and number < 1) or warmup < 0:
        raise ValueError(f"need repeat >= 1, number >= 1, warmup >= 0; got {repeat}, {number}, {warmup}")
    for _ in range(warmup):
        fn()
    if number is None:
        number = 1
        while True:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            if time.perf_counter() - start >= min_seconds or number >= 2**20:
                break
            number *= 2
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best
