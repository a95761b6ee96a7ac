"""Wall-clock timing for the chapters' speed measurements.

Timings on a shared 2-core machine are noisy; the minimum over a few repeats
is the least noisy estimate of what the computation itself costs (as Python's
``timeit`` advises). Used by chapters 3, 4 and later ones that measure speed.

Every measurement runs torch on **one thread** (``threads=1``) unless asked
otherwise. A torch operation split over two threads waits for the slower one, so
when anything else runs on the machine (a second notebook, a browser, Binder's
neighbours) its time jumps while a single-threaded loop's barely moves, and a
comparison between them measures the machine's load instead of the computation.
On one thread the comparison is about the work, and it reads the same on a
learner's one-core Binder session as on the machine that built the book.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

__all__ = ["best_time", "best_times"]


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; restore the previous count after."""
    if threads < 1:
        raise ValueError(f"need threads >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _calls_per_run(fn: Callable[[], object], min_seconds: float) -> int:
    """As ``timeit`` picks its number: the smallest power of 2 of calls whose run lasts ``min_seconds``."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_seconds or number >= 2**20:
            return number
        number *= 2


def best_time(fn: Callable[[], object], *, repeat: int = 5, number: int | None = None, warmup: int = 1,
              min_seconds: float = 0.01, threads: int = 1) -> float:
    """Seconds per call of ``fn()``: the minimum over ``repeat`` runs of ``number`` calls each.

    ``warmup`` calls run first and are not timed (the first call of a torch
    operation allocates memory and picks kernels). ``number=None`` picks it as
    ``timeit`` does: the smallest power of 2 whose run lasts ``min_seconds``, so
    that fast calls are not timed one at a time. torch runs on ``threads``
    threads meanwhile (see the module's docstring); the count is restored after.
    """
    if repeat < 1 or (number is not None and number < 1) or warmup < 0:
        raise ValueError(f"need repeat >= 1, number >= 1, warmup >= 0; got {repeat}, {number}, {warmup}")
    with _torch_threads(threads):
        return _best_time(fn, repeat, number, warmup, min_seconds)


def _best_time(fn: Callable[[], object], repeat: int, number: int | None, warmup: int, min_seconds: float) -> float:
    for _ in range(warmup):
        fn()
    if number is None:
        number = _calls_per_run(fn, min_seconds)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def best_times(fns: dict[str, Callable[[], object]], *, repeat: int = 7, warmup: int = 1,
               min_seconds: float = 0.01, threads: int = 1) -> dict[str, float]:
    """:func:`best_time` for several functions at once, measured in interleaved rounds.

    Each round times every function once (``number`` calls each, chosen per
    function as :func:`best_time` does), so a burst of load from elsewhere on
    the machine slows all of them alike instead of whichever was being timed
    then. Returns the minimum seconds per call of each, by name. Use it when a
    claim compares times. torch runs on ``threads`` threads meanwhile.
    """
    if not fns:
        raise ValueError("best_times needs at least one function")
    if repeat < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0; got {repeat}, {warmup}")
    with _torch_threads(threads):
        return _best_times(fns, repeat, warmup, min_seconds)


def _best_times(fns: dict[str, Callable[[], object]], repeat: int, warmup: int, min_seconds: float) -> dict[str, float]:
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        numbers[name] = _calls_per_run(fn, min_seconds)
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / numbers[name])
    return best


__all__ += ["peak_memory"]


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes of CPU memory that torch allocated while running ``fn()`` and held at once.

    Runs ``fn()`` once under ``torch.profiler`` with ``profile_memory=True``,
    walks the allocation and free events in time order and keeps the running
    total of the bytes allocated since ``fn`` started; returns its maximum.
    Memory alive before ``fn`` started is not counted, and freeing it does not
    lower the total (a free only counts if its allocation happened during
    ``fn``). The value ``fn`` returns is counted: it is alive when ``fn`` ends.

    Counts the tensors torch allocates on the CPU (intermediate results,
    outputs, autograd's saved tensors), not NumPy arrays or Python objects,
    and not memory the allocator keeps cached. It measures the *computation*:
    two functions that hold one 4 MB and one 8 MB tensor one after the other
    report 8 MB, not 12 MB.

    The first call in a process starts the profiler (about a second); later
    calls add little. It cannot run inside another ``torch.profiler`` session.
    It sets the environment variable ``KINETO_LOG_LEVEL`` to 6 unless already
    set, which stops the profiler printing two log lines per call. Used in
    chapter 11 to compare standard and tiled attention.
    """
    import os

    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:  # every node of every thread's tree
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append(node)
    events.sort(key=lambda node: node.start_time_ns)
    live: dict[int, int] = {}  # address -> bytes of the blocks allocated during fn and not yet freed
    current = peak = 0
    for node in events:
        size, ptr = node.extra_fields.alloc_size, node.extra_fields.ptr
        if size > 0:
            live[ptr] = size
            current += size
            peak = max(peak, current)
        elif ptr in live:  # a free of a block fn allocated; frees of older blocks are ignored
            current -= live.pop(ptr)
    return peak
