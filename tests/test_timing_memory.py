"""peak_memory (chapter 11): known allocations, frees, and standard vs tiled attention.

The first call starts torch's profiler (about a second), so the checks share
few calls.
"""

from __future__ import annotations

import pytest
import torch

from attention_course.attention import scaled_dot_product_attention
from attention_course.efficient import tiled_attention
from attention_course.timing import peak_memory

SLACK = 4096  # bytes: the profiler may see a few small bookkeeping allocations


def test_peak_memory_of_one_tensor_and_of_two_in_turn() -> None:
    n = 100_000
    assert 4 * n <= peak_memory(lambda: torch.empty(n)) < 4 * n + SLACK
    assert 8 * n <= peak_memory(lambda: torch.empty(n, dtype=torch.float64)) < 8 * n + SLACK

    def one_after_the_other() -> None:
        a = torch.ones(n)  # 4n bytes
        del a
        b = torch.ones(3 * n)  # 12n bytes
        del b

    def both_at_once() -> None:
        a = torch.ones(n)
        b = torch.ones(3 * n)
        del a, b

    assert 12 * n <= peak_memory(one_after_the_other) < 12 * n + SLACK  # the max, not the sum
    assert 16 * n <= peak_memory(both_at_once) < 16 * n + SLACK
    assert peak_memory(lambda: None) < SLACK


def test_memory_alive_before_does_not_count() -> None:
    big = torch.ones(1_000_000)
    box = [big]
    del big
    n = 1000

    def free_old_then_allocate() -> None:
        box.clear()  # frees 4 MB allocated before fn started
        torch.ones(n)

    assert 4 * n <= peak_memory(free_old_then_allocate) < 4 * n + SLACK
    assert peak_memory(lambda: box) < SLACK


def test_tiled_attention_needs_far_less_memory_than_the_score_matrix() -> None:
    n, E = 1024, 32
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, n, E, generator=g) for _ in range(3))
    scores_bytes = n * n * 4  # the (L, S) float32 score matrix
    standard = peak_memory(lambda: scaled_dot_product_attention(q, k, v))
    keys_tiled = peak_memory(lambda: tiled_attention(q, k, v, block_size=128))  # (L, 128) tiles
    both_tiled = peak_memory(lambda: tiled_attention(q, k, v, block_size=128, query_block_size=128))  # (128, 128)
    assert standard >= scores_bytes
    assert keys_tiled < standard / 4
    assert both_tiled < scores_bytes / 4


def test_timings_run_torch_on_one_thread_and_restore_the_count():
    import torch

    from attention_course import timing

    before = torch.get_num_threads()
    seen = []
    timing.best_time(lambda: seen.append(torch.get_num_threads()), repeat=2, number=1, warmup=0)
    timing.best_times({"a": lambda: seen.append(torch.get_num_threads())}, repeat=2, warmup=0, min_seconds=0)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before
    timing.best_time(lambda: seen.append(torch.get_num_threads()), repeat=1, number=1, warmup=0, threads=2)
    assert seen[-1] == 2 and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        timing.best_time(lambda: None, threads=0)


def test_the_thread_count_is_restored_when_the_timed_function_raises():
    import torch

    from attention_course import timing

    before = torch.get_num_threads()

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        timing.best_times({"boom": boom}, warmup=0)
    assert torch.get_num_threads() == before
