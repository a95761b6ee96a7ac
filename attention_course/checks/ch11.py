"""Chapter 11, efficient attention: online softmax, block update, cached step, linear attention.

The checks of ``chapters/10_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.efficient  # noqa: F401 (binds _lib.efficient)
import attention_course.reference  # noqa: F401 (binds _lib.reference)

from .. import masks
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _fmt_index,
    _compare,
    _reject_known,
    _call_with_hint,
    _reject_shape,
    _tuple_of,
    _expect_shapes,
    _check_choice,
    _check_number,
    _number,
)

__all__ = [
    "check_online_softmax_update",
    "check_attention_block_update",
    "check_cached_attention_step",
    "check_linear_attention",
    "check_running_max_start",
    "check_kv_cache_bytes",
    "check_gqa_cache_size",
]


def _stacked(*parts: torch.Tensor | np.ndarray) -> np.ndarray:
    """One flat vector of all parts, so that a whole (m, r, ...) state compares at once."""
    return np.concatenate([np.asarray(p.detach().numpy() if isinstance(p, torch.Tensor) else p).ravel()
                           for p in parts])


def _online_softmax_reference(m: torch.Tensor, l: torch.Tensor, block: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    m_new = torch.maximum(m, block.max(dim=-1).values)  # (L,): the running max
    l_new = l * torch.exp(m - m_new) + torch.exp(block - m_new[:, None]).sum(dim=-1)  # (L,): sum of exp(z - m_new)
    return m_new, l_new


def _online_softmax_wrong(m: torch.Tensor, l: torch.Tensor, block: torch.Tensor) -> dict[str, torch.Tensor]:
    """{hint: the stacked (m, r) of a known mistake}."""
    L, C = block.shape
    bm = block.max(dim=-1).values  # (L,): this block's max only
    m_new = torch.maximum(m, bm)  # (L,)

    def exps(ref: torch.Tensor) -> torch.Tensor:
        return torch.exp(block - ref[:, None]).sum(dim=-1)  # (L,)

    whole = torch.maximum(m, block.max())  # (L,): the max over every row of the block
    wrong = {
        "r was not rescaled: r is a sum of exp(z - m_old), and once the max grows to m_new every one of its terms "
        "must shrink by exp(m_old - m_new): r_new = r * exp(m - m_new) + the block's sum":
            _stacked(m_new, l + exps(m_new)),
        "the running max is this block's max only: it is the larger of the old max and the block's, "
        "m_new = maximum(m, block.max(dim=-1))": _stacked(bm, l * torch.exp(m - bm) + exps(bm)),
        "you rescaled r the wrong way, by exp(m_new - m_old) >= 1: the max grew, so the old terms shrink, "
        "r * exp(m_old - m_new)": _stacked(m_new, l * torch.exp(m_new - m) + exps(m_new)),
        "you summed exp(block) without subtracting the max: r holds the sum of exp(z - m), relative to the running "
        "max, so the block's terms are exp(block - m_new) (and exp of a large score overflows)":
            _stacked(m_new, l + torch.exp(block).sum(dim=-1)),
        "the block's terms are taken relative to the old max, exp(block - m_old): take both the old sum and the "
        "block's terms relative to the new max m_new": _stacked(m_new, l * torch.exp(m - m_new) + exps(m)),
        "the old r was dropped: r_new is the old sum, rescaled, plus the block's, r * exp(m - m_new) + "
        "exp(block - m_new).sum(dim=-1)": _stacked(m_new, exps(m_new)),
        "you took one max over the whole block, all rows together: each row (one query) has its own running "
        "max, block.max(dim=-1)": _stacked(whole, l * torch.exp(m - whole) + exps(whole)),
    }
    if L == C:
        col = torch.maximum(m, block.max(dim=0).values)  # over the rows instead of the columns
        wrong["the max was taken over the rows (dim=0) of the block: each row's max runs over its own scores, "
              "dim=-1"] = _stacked(col, l * torch.exp(m - col) + exps(col))
        wrong["the sum was taken over the rows (dim=0) of the block: each row sums its own scores' "
              "exponentials, dim=-1"] = _stacked(m_new, l * torch.exp(m - m_new) +
                                                  torch.exp(block - m_new[:, None]).sum(dim=0))
    return wrong


def _reject_known_flat(label: str, got: np.ndarray, expected: np.ndarray, wrong: dict, atol: float = 1e-8) -> None:
    for hint, value in wrong.items():
        if value.shape == got.shape and not np.allclose(value, expected, atol=atol, equal_nan=True) and \
                np.allclose(got, value, atol=atol, equal_nan=True):
            raise AssertionError(f"{label}: {hint}")


def _finite_state(label: str, got: tuple[np.ndarray, ...], names: tuple[str, ...], why: str) -> None:
    for name, g in zip(names, got):
        if not np.all(np.isfinite(g)):
            bad = _fmt_index(tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0]))
            raise AssertionError(f"{name}, {label} is {g[tuple(np.argwhere(~np.isfinite(g))[0])]} at {bad}: {why}")


_OVERFLOW = ("exp of a score near 1000 overflows to inf: subtract the running max first, exp(block - m_new), "
             "and rescale the old sum by exp(m - m_new); both exponents are then at most 0")


@_reports_not_attempted
def check_online_softmax_update(online_softmax_update: Callable) -> None:
    """Exercise: ``online_softmax_update(m (L,), r (L,), block (L, T_tile)) -> (m_new, r_new)``: the running max and
    the running sum of exp(z - max) of each row, after one more block of T_tile scores:
    m_new = maximum(m, block.max(-1)), r_new = r * exp(m - m_new) + exp(block - m_new).sum(-1)."""
    online_softmax_update = _own_work(
        "online_softmax_update", online_softmax_update,
        _lib.efficient.online_softmax,
    )
    names = ("m_new", "r_new")
    with _attempt("online_softmax_update"):
        # one step in mid-row: rows 0 and 2 find a new max in the block, rows 1 and 3 do not; L = C, where a
        # reduction over the wrong axis still runs
        m = torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=torch.float64)  # (L,)
        l = torch.tensor([1.5, 2.5, 3.0, 1.2], dtype=torch.float64)  # (L,)
        block = torch.tensor([[1.5, -0.3, 0.2, 0.9], [0.1, 1.2, -0.5, 0.4],
                              [0.3, -2.0, 0.8, 1.4], [-0.4, 0.6, 0.0, 0.7]], dtype=torch.float64)  # (L, T_tile)
        label = "online_softmax_update(m, r, block) for L=4 rows and a block of T_tile=4 scores"
        hint = ("m and r are (L,), block (L, T_tile): block.max(dim=-1).values is (L,) (a bare .max(dim=-1) returns "
                "a pair (values, indices)); torch.maximum(m, ...) compares elementwise; block - m_new[:, None] "
                "broadcasts (L, T_tile) - (L, 1)")
        got = _tuple_of(label, _call_with_hint(label, online_softmax_update,
                                               (("m", m), ("r", l), ("block", block)), hint), names)
        _expect_shapes(label, got, names, ((4,), (4,)), " (L,): one running max and one running sum per row")
        exp_m, exp_l = _online_softmax_reference(m, l, block)
        _reject_known_flat(label, _stacked(*got), _stacked(exp_m, exp_l), _online_softmax_wrong(m, l, block))
        _compare(f"m_new, {label}", got[0], exp_m.numpy(), atol=1e-6, rtol=1e-6,
                 legend=" (L,): maximum(m, block.max(dim=-1))")
        _compare(f"r_new, {label}", got[1], exp_l.numpy(), atol=1e-6, rtol=1e-6,
                 legend=" (L,): r * exp(m - m_new) + exp(block - m_new).sum(dim=-1)")

        # a stream of blocks from the empty state (m = -inf, r = 0); row 1 has scores near 1000, row 3 near -1000
        # (all negative: a running max started at 0 instead of -inf underflows there), and row 4 mixes scales, its
        # later blocks 800 above its first (the old sum must shrink by exp(-800), to 0, without NaN)
        gen = torch.Generator().manual_seed(101)
        scores = torch.randn(5, 8, generator=gen, dtype=torch.float64) * 2.0  # (L, S)
        scores[1] += 1000.0
        scores[2] -= 30.0
        scores[3] -= 1000.0
        scores[4, 3:] += 800.0
        m = torch.full((5,), -torch.inf, dtype=torch.float64)  # (L,): the max of no scores
        l = torch.zeros(5, dtype=torch.float64)  # (L,): the sum over no scores
        start = 0
        for width in (3, 3, 2):
            block = scores[:, start:start + width]  # (L, T_tile)
            label = (f"online_softmax_update after the block of columns {start}..{start + width - 1} of scores "
                     f"(L, S) = (3, 8), starting from m = -inf, r = 0")
            got = _tuple_of(label, _call_with_hint(label, online_softmax_update,
                                                   (("m", m), ("r", l), ("block", block.clone())), hint), names)
            _expect_shapes(label, got, names, ((5,), (5,)), " (L,)")
            _finite_state(label, got, names, _OVERFLOW if start else
                          _OVERFLOW + ". On the first block m = -inf: exp(m - m_new) = exp(-inf) = 0, and r = 0")
            seen = scores[:, :start + width]  # (L, columns so far)
            exp_m = seen.max(dim=-1).values  # (L,)
            exp_l = torch.exp(seen - exp_m[:, None]).sum(dim=-1)  # (L,)
            if got[1][3] == 0.0 or abs(got[0][3]) < 1.0:
                raise AssertionError(
                    f"r_new, {label}: row 3, whose scores are all near -1000, has m = {got[0][3]:.6g} and "
                    f"r = {got[1][3]:.6g}, but its max is {exp_m[3].item():.6g} and its sum of exp(z - max) at least "
                    f"1. A running max that never drops below 0 (m started at 0, or clamped) makes every exp(z - m) "
                    f"underflow to 0 for negative scores: the max is the scores' own max, maximum(m, "
                    f"block.max(dim=-1)), and it starts at -inf"
                )
            _compare(f"m_new, {label}", got[0], exp_m.numpy(), atol=1e-6, rtol=1e-6,
                     legend=" (L,): the max of every score so far")
            # float32 scores near 1000 carry about 6e-5 of rounding into exp(z - m): a relative tolerance of 2e-4
            _compare(f"r_new, {label}", got[1], exp_l.numpy(), atol=1e-6, rtol=2e-4,
                     legend=" (L,): the sum of exp(z - m_new) over every score so far")
            m, l = (torch.as_tensor(g) for g in got)
            start += width
    _say("online_softmax_update: correct: the running max, and the running sum rescaled by exp(m - m_new); "
          "exact, and stable for scores near 1000.")


def _block_attention_reference(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.max(dim=-1).values)  # (L,)
    scale = torch.exp(m - m_new)  # (L,): how much the old terms shrink
    p = torch.exp(scores - m_new[:, None])  # (L, T_tile)
    return m_new, l * scale + p.sum(dim=-1), acc * scale[:, None] + p @ values  # (L,), (L,), (L, Ev)


def _block_attention_wrong(m, l, acc, scores, values) -> dict[str, np.ndarray]:
    bm = scores.max(dim=-1).values  # (L,)
    m_new = torch.maximum(m, bm)  # (L,)
    s = torch.exp(m - m_new)  # (L,)
    p = torch.exp(scores - m_new[:, None])  # (L, T_tile)
    l_new = l * s + p.sum(dim=-1)  # (L,)
    pb = torch.exp(scores - bm[:, None])  # (L, T_tile)
    sb = torch.exp(m - bm)  # (L,)
    po = torch.exp(scores - m[:, None])  # (L, T_tile)
    return {
        "acc was not rescaled: it is a sum of exp(z - m_old) v, so when the max grows every old term must shrink "
        "by exp(m_old - m_new), like r: acc * exp(m - m_new)[:, None] + p @ values":
            _stacked(m_new, l_new, acc + p @ values),
        "r was not rescaled (acc was): both sums shrink by exp(m_old - m_new) when the max grows":
            _stacked(m_new, l + p.sum(dim=-1), acc * s[:, None] + p @ values),
        "acc was divided by r: acc holds the unnormalised sum of exp(z - m) v, and the division by r happens "
        "once, after the last block (out = acc / r[:, None]). Dividing at every step and adding the next block's "
        "unnormalised terms mixes two scales": _stacked(m_new, l_new, (acc * s[:, None] + p @ values) / l_new[:, None]),
        "acc was kept normalised (out so far, as FlashAttention-1 does): here acc is the unnormalised sum of "
        "exp(z - m) v, as in FlashAttention-2; rescale it by exp(m - m_new) only, and divide by r at the very end":
            _stacked(m_new, l_new, (acc * (l * s)[:, None] + p @ values) / l_new[:, None]),
        "you rescaled the wrong way, by exp(m_new - m_old) >= 1: the max grew, so the old terms shrink, "
        "exp(m - m_new)": _stacked(m_new, l / s + p.sum(dim=-1), acc / s[:, None] + p @ values),
        "the running max is this block's max only: it is the larger of the old max and the block's, "
        "maximum(m, scores_block.max(dim=-1))": _stacked(bm, l * sb + pb.sum(dim=-1), acc * sb[:, None] + pb @ values),
        "the block's weights are taken relative to the old max, exp(scores - m_old): use the new max m_new for "
        "them and for the rescaling": _stacked(m_new, l * s + po.sum(dim=-1), acc * s[:, None] + po @ values),
        "the block's weights were normalised on their own (a softmax over the block): keep them unnormalised, "
        "exp(scores - m_new), and let r carry their sum": _stacked(
            m_new, l_new, acc * s[:, None] + torch.softmax(scores, dim=-1) @ values),
    }


@_reports_not_attempted
def check_attention_block_update(attention_block_update: Callable) -> None:
    """Exercise: ``attention_block_update(m (L,), r (L,), acc (L, Ev), scores_block (L, T_tile),
    values_block (T_tile, Ev)) -> (m, r, acc)``: one step of tiled (FlashAttention-style) attention; acc is the
    unnormalised sum of exp(z - m) v, rescaled by exp(m_old - m_new), and the output is acc / r after the last
    block."""
    attention_block_update = _own_work(
        "attention_block_update", attention_block_update,
        _lib.efficient.online_softmax,
        _lib.efficient.tiled_attention,
    )
    names = ("m", "r", "acc")
    hint = ("m and r are (L,), acc (L, Ev), scores_block (L, T_tile) and values_block (T_tile, Ev): the block's "
            "weights exp(scores_block - m_new[:, None]) are (L, T_tile), times values_block (T_tile, Ev) gives "
            "(L, Ev); the rescaling factor exp(m - m_new) is (L,), and [:, None] makes it (L, 1) to scale the rows "
            "of acc")
    with _attempt("attention_block_update"):
        # one step in mid-stream: rows 0 and 2 find a new max in this block, rows 1 and 3 do not
        gen = torch.Generator().manual_seed(102)
        L, C, Ev = 4, 3, 2
        m = torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=torch.float64)  # (L,)
        l = torch.tensor([1.5, 2.5, 3.0, 1.2], dtype=torch.float64)  # (L,)
        acc = torch.randn(L, Ev, generator=gen, dtype=torch.float64)  # (L, Ev)
        scores = torch.tensor([[1.5, -0.3, 0.2], [0.1, 1.2, -0.5], [0.3, -2.0, 0.8], [-0.4, 0.6, 0.0]],
                              dtype=torch.float64)  # (L, T_tile)
        values = torch.randn(C, Ev, generator=gen, dtype=torch.float64)  # (T_tile, Ev)
        label = f"attention_block_update for L={L} queries, a block of T_tile={C} keys, Ev={Ev}"
        args = (("m", m), ("r", l), ("acc", acc), ("scores_block", scores), ("values_block", values))
        got = _tuple_of(label, _call_with_hint(label, attention_block_update, args, hint), names)
        _expect_shapes(label, got, names, ((L,), (L,), (L, Ev)), " (m and r (L,), acc (L, Ev))")
        expected = _block_attention_reference(m, l, acc, scores, values)
        wrong = _block_attention_wrong(m, l, acc, scores, values)
        _reject_known_flat(label, _stacked(*got), _stacked(*expected), wrong)
        for name, g, e, legend in zip(names, got, expected, (
                " (L,): maximum(m, scores_block.max(dim=-1))",
                " (L,): r * exp(m - m_new) + exp(scores_block - m_new[:, None]).sum(dim=-1)",
                " (L, Ev): acc * exp(m - m_new)[:, None] + exp(scores_block - m_new[:, None]) @ values_block")):
            _compare(f"{name}, {label}", g, e.numpy(), atol=1e-6, rtol=1e-6, legend=legend)

        # the whole row of keys in blocks of 3, 3 and 1, from the empty state; row 1's scores are near 500
        L, S, Ev = 3, 7, 5
        scores = torch.randn(L, S, generator=gen, dtype=torch.float64) * 1.5  # (L, S)
        scores[1] += 500.0
        scores[2] -= 900.0  # all negative: exp(z) underflows to 0 unless taken relative to the max
        scores[0, 3:] += 600.0  # mixed scales: the later blocks far above the first
        values = torch.randn(S, Ev, generator=gen, dtype=torch.float64)  # (S, Ev)
        m = torch.full((L,), -torch.inf, dtype=torch.float64)
        l, acc = torch.zeros(L, dtype=torch.float64), torch.zeros(L, Ev, dtype=torch.float64)
        start = 0
        for width in (3, 3, 1):
            label = (f"attention_block_update after the keys {start}..{start + width - 1} of S={S}, L={L}, Ev={Ev}, "
                     f"starting from m = -inf, r = 0, acc = 0")
            args = (("m", m), ("r", l), ("acc", acc), ("scores_block", scores[:, start:start + width].clone()),
                    ("values_block", values[start:start + width].clone()))
            got = _tuple_of(label, _call_with_hint(label, attention_block_update, args, hint), names)
            _expect_shapes(label, got, names, ((L,), (L,), (L, Ev)), " (m and r (L,), acc (L, Ev))")
            _finite_state(label, got, names, "exp of a score near 500 overflows (and of one near -900 underflows "
                                             "to 0, so r = 0 and acc / r = 0/0): take every exponential relative "
                                             "to the running max, exp(scores_block - m_new), exp(m - m_new)")
            if got[1][2] == 0.0:
                raise AssertionError(
                    f"r, {label}: row 2, whose scores are all near -900, has r = 0: exp of its scores underflowed. "
                    f"Take them relative to the running max, exp(scores_block - m_new[:, None]), whose largest term "
                    f"is exp(0) = 1; the max starts at -inf, not 0"
                )
            seen = scores[:, :start + width]  # (L, keys so far)
            exp_m = seen.max(dim=-1).values  # (L,)
            p = torch.exp(seen - exp_m[:, None])  # (L, keys so far)
            for name, g, e in zip(names, got, (exp_m, p.sum(dim=-1), p @ values[:start + width])):
                _compare(f"{name}, {label}", g, e.numpy(), atol=1e-6, rtol=2e-4,  # float32 near 500 and 600
                         legend=" (the state after these keys: max, sum of exp(z - max), sum of exp(z - max) v)")
            m, l, acc = (torch.as_tensor(g) for g in got)
            start += width
        out = acc / l[:, None]  # (L, Ev)
        _compare("acc / r after the last block", out.numpy(), (torch.softmax(scores, dim=-1) @ values).numpy(),
                 atol=1e-5, rtol=2e-4, legend=" (L, Ev): softmax(scores) @ values, computed at once")
    _say("attention_block_update: correct: acc and r rescaled by exp(m - m_new), divided once at the end; "
          "equal to softmax(scores) @ values.")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float | None = None, dim: int = -1
            ) -> torch.Tensor:
    """softmax(q kᵀ / scale) v over the last two axes; scale defaults to sqrt(E)."""
    scale = q.shape[-1] ** 0.5 if scale is None else scale
    return torch.softmax(q @ k.transpose(-2, -1) / scale, dim=dim) @ v  # (..., L, Ev)


@_reports_not_attempted
def check_cached_attention_step(cached_attention_step: Callable) -> None:
    """Exercise: ``cached_attention_step(q_t (..., 1, E), k_t (..., 1, E), v_t (..., 1, Ev), cache_k (..., S, E),
    cache_v (..., S, Ev)) -> (out_t (..., 1, Ev), cache_k (..., S+1, E), cache_v (..., S+1, Ev))``: append the new
    key and value along the time axis (dim -2), then attend with q_t over all S+1 cached positions."""
    cached_attention_step = _own_work(
        "cached_attention_step", cached_attention_step,
        _lib.efficient.KVCache,
    )
    names = ("out_t", "cache_k", "cache_v")
    hint = ("the caches are (..., S, E) and (..., S, Ev), the new key and value (..., 1, E) and (..., 1, Ev): "
            "append along the time axis, torch.cat([cache_k, k_t], dim=-2), which works for (B, S, E) and "
            "(B, H, S, E) alike; then q_t @ cache_k.transpose(-2, -1) is (..., 1, S+1)")
    with _attempt("cached_attention_step"):
        gen = torch.Generator().manual_seed(103)
        B, S, E, Ev = 2, 3, 4, 5
        q, k, v = (torch.randn(B, 1, n, generator=gen, dtype=torch.float64) for n in (E, E, Ev))  # (B, 1, ·)
        cache_k = torch.randn(B, S, E, generator=gen, dtype=torch.float64)  # (B, S, E)
        cache_v = torch.randn(B, S, Ev, generator=gen, dtype=torch.float64)  # (B, S, Ev)
        label = f"cached_attention_step for B={B}, S={S} cached positions, E={E}, Ev={Ev}"
        args = (("q_t", q), ("k_t", k), ("v_t", v), ("cache_k", cache_k), ("cache_v", cache_v))
        got = _tuple_of(label, _call_with_hint(label, cached_attention_step, args, hint), names)
        K, V = torch.cat([cache_k, k], dim=-2), torch.cat([cache_v, v], dim=-2)  # (B, S+1, E), (B, S+1, Ev)
        expected = (_attend(q, K, V), K, V)
        for name, g, cache, new in zip(names[1:], got[1:], (cache_k, cache_v), (k, v)):
            n = cache.shape[-1]
            _reject_shape(f"{name}, {label}", g, (B, S + 1, n), [
                ((B, S, n), "it has the S old positions only: append the new one, torch.cat([cache, new], dim=-2)"),
                ((B, 1, n), "you overwrote the cache with the new position: append it, so that the next step "
                            "still sees every earlier one, torch.cat([cache, new], dim=-2)"),
                ((2 * B, S, n), "you appended along the batch axis (dim 0): the time axis is dim -2"),
                ((B, S, 2 * n), "you appended along the feature axis (dim -1): the time axis is dim -2"),
            ])
            if g.shape == (B, S + 1, n) and np.allclose(g, torch.cat([new, cache], dim=-2).numpy()):
                raise AssertionError(
                    f"{name}, {label}: the new position went in front of the cache: it is the latest, so it goes at "
                    f"the end, position S = {S}: torch.cat([cache, new], dim=-2)"
                )
            _compare(f"{name}, {label}", g, torch.cat([cache, new], dim=-2).numpy(), atol=1e-6, rtol=1e-6,
                     legend=f" (B, S+1, {'E' if name == 'cache_k' else 'Ev'}): the old cache, then the new position")
        wrong = {
            "you attended before appending, over the S old positions only: the token attends to itself too, "
            "so append k_t and v_t first and attend over all S+1": _attend(q, cache_k, cache_v),
            f"you did not divide the scores by sqrt(E) = {E**0.5:.3g}": _attend(q, K, V, scale=1.0),
            f"you divided by sqrt(Ev) = sqrt({Ev}): the scale is sqrt(E) = sqrt({E}), the size of the queries and "
            f"keys": _attend(q, K, V, scale=Ev**0.5),
            "the softmax ran over the single query (dim -2), giving every key weight 1: it runs over the keys, "
            "dim=-1": _attend(q, K, V, dim=-2),
        }
        _reject_known(f"out_t, {label}", got[0], expected[0], wrong, atol=1e-8)
        _compare(f"out_t, {label}", got[0], expected[0].numpy(), atol=1e-6, rtol=1e-5,
                 legend=" (B, 1, Ev): attention of q_t over the S+1 cached keys and values")

        # generate T = 5 steps with heads, from empty caches: the outputs must be those of causal attention
        B, H, T, E, Ev = 2, 3, 5, 6, 2  # another E than above, so that a hard-coded sqrt(4) shows
        Q, Kf = (torch.randn(B, H, T, E, generator=gen, dtype=torch.float64) for _ in range(2))  # (B, H, T, E)
        Vf = torch.randn(B, H, T, Ev, generator=gen, dtype=torch.float64)  # (B, H, T, Ev)
        causal = masks.causal_mask(T)  # (T, T), True = may attend
        scores_full = (Q @ Kf.transpose(-2, -1) / E**0.5).masked_fill(~causal, -torch.inf)  # (B, H, T, T)
        full = torch.softmax(scores_full, dim=-1) @ Vf  # (B, H, T, Ev): causal attention at once
        cache_k = torch.zeros(B, H, 0, E, dtype=torch.float64)  # (B, H, 0, E): nothing cached yet
        cache_v = torch.zeros(B, H, 0, Ev, dtype=torch.float64)
        for t in range(T):
            label = (f"cached_attention_step at step t={t} of generating T={T} tokens with heads, (B, H) = {(B, H)}, "
                     f"E={E}, Ev={Ev}, from empty caches (B, H, 0, E)")
            args = (("q_t", Q[:, :, t:t + 1]), ("k_t", Kf[:, :, t:t + 1]), ("v_t", Vf[:, :, t:t + 1]),
                    ("cache_k", cache_k), ("cache_v", cache_v))
            got = _tuple_of(label, _call_with_hint(label, cached_attention_step, args, hint), names)
            for name, g, n in zip(names[1:], got[1:], (E, Ev)):
                if g.shape != (B, H, t + 1, n):
                    raise AssertionError(
                        f"{name}, {label} has shape {g.shape} but should have shape {(B, H, t + 1, n)}: "
                        f"(B, H, t+1, {'E' if n == E else 'Ev'}), the cache grows by one position along the time "
                        f"axis, dim -2, at every step"
                    )
            hard = torch.softmax(scores_full[:, :, t:t + 1] * E**0.5 / 2.0, dim=-1) @ Vf  # (B, H, 1, Ev)
            if got[0].shape == tuple(hard.shape) and np.allclose(got[0], hard.numpy(), atol=1e-8) and \
                    not np.allclose(hard.numpy(), full[:, :, t:t + 1].numpy(), atol=1e-8):
                raise AssertionError(
                    f"out_t, {label}: you divided by 2 = sqrt(4), the head size of the first test: here E = {E}; "
                    f"take it from the query, E = q_t.shape[-1], and divide by sqrt(E)"
                )
            _compare(f"out_t, {label}", got[0], full[:, :, t:t + 1].numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, H, 1, Ev): row t of causal attention over the whole sequence")
            cache_k, cache_v = torch.as_tensor(got[1]), torch.as_tensor(got[2])
    _say("cached_attention_step: correct: append, then attend over every cached position; "
          "step by step it is causal attention.")


def _elu1(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.elu(x) + 1.0


def _linear_attention(q, k, v, *, phi: Callable = _elu1, normalise: bool = True, phi_v: bool = False
                      ) -> torch.Tensor:
    """Linear attention, computed the quadratic way: (phi(q) phi(k)ᵀ) with rows normalised, times v."""
    a = phi(q) @ phi(k).transpose(-2, -1)  # (B, L, S)
    if normalise:
        a = a / a.sum(dim=-1, keepdim=True)
    return a @ (phi(v) if phi_v else v)  # (B, L, Ev)


@_reports_not_attempted
def check_linear_attention(linear_attention: Callable) -> None:
    """Exercise: ``linear_attention(q (B, L, E), k (B, S, E), v (B, S, Ev)) -> (B, L, Ev)`` with phi = elu + 1:
    out_i = phi(q_i) (sum_j phi(k_j)ᵀ v_j) / (phi(q_i) · sum_j phi(k_j)), Katharopoulos et al. 2020."""
    linear_attention = _own_work(
        "linear_attention", linear_attention,
        _lib.efficient.linear_attention,
    )
    with _attempt("linear_attention"):
        # L = S first, where swapping q and k still runs; then L, S, E and Ev all different
        for seed, (B, L, S, E, Ev) in ((104, (1, 6, 6, 3, 3)), (105, (2, 3, 5, 4, 2))):
            gen = torch.Generator().manual_seed(seed)
            q, k = (torch.randn(B, n, E, generator=gen, dtype=torch.float64) for n in (L, S))
            v = torch.randn(B, S, Ev, generator=gen, dtype=torch.float64)
            label = f"linear_attention for B={B}, L={L}, S={S}, E={E}, Ev={Ev}"
            result = _call_with_hint(
                label, linear_attention, (("q", q), ("k", k), ("v", v)),
                "phi(k).transpose(-2, -1) @ v is (B, E, Ev), one matrix per sequence whatever S is; phi(q) @ it is "
                "(B, L, Ev). The normaliser phi(q) @ phi(k).sum(dim=-2)[..., None] is (B, L, 1)",
            )
            got = _as_array(label, result)
            expected = _linear_attention(q, k, v)  # (B, L, Ev)
            wrong = {
                "there is no normaliser: divide each query's row by phi(q_i) · sum_j phi(k_j), so that its weights "
                "phi(q_i) · phi(k_j) sum to 1 over the keys": _linear_attention(q, k, v, normalise=False),
                "phi is relu: elu(x) + 1 is positive everywhere, relu is zero for half the inputs (and a query or "
                "key of zeros makes the normaliser 0)": _linear_attention(q, k, v, phi=torch.relu),
                "phi is elu without the + 1: elu(x) > -1, so elu(x) + 1 > 0 keeps every weight positive; elu alone "
                "gives negative weights": _linear_attention(q, k, v, phi=torch.nn.functional.elu),
                "phi is exp: this exercise uses phi(x) = elu(x) + 1, torch.nn.functional.elu(x) + 1":
                    _linear_attention(q, k, v, phi=torch.exp),
                "that is softmax attention: linear attention replaces exp(q · k / sqrt(E)) by phi(q) · phi(k), "
                "which lets phi(k)ᵀ v be summed once, before any query": _attend(q, k, v),
                "you applied phi to the values too: phi maps the queries and keys only; v is summed as it is":
                    _linear_attention(q, k, v, phi_v=True),
                "you averaged over the keys (divided by S) instead of normalising each query's weights: divide by "
                "phi(q_i) · sum_j phi(k_j)": _linear_attention(q, k, v, normalise=False) / S,
                "you divided q and k by sqrt(E) before phi: there is no 1/sqrt(E) in linear attention, phi(q) · "
                "phi(k) is normalised by its row sum": _linear_attention(q / E**0.5, k / E**0.5, v),
            }
            if L == S:
                wrong["the queries and keys are swapped (it only ran because L = S here): phi(q) reads "
                      "phi(k)ᵀ v, the keys' and values' summary"] = _linear_attention(k, q, v)
            _reject_known(label, got, expected, wrong, atol=1e-8)
            # relative: a float32 answer, or + 1e-6 in the normaliser against division by 0, is correct
            _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, L, Ev): softmax-free attention with weights phi(q_i) · phi(k_j), rows summing to 1")
    _say("linear_attention: correct: phi(q) (phi(k)ᵀ v) / (phi(q) · Σ phi(k)), with phi = elu + 1.")


# ---------------------------------------------------------------- questions and the experiment


@_reports_not_attempted
def check_running_max_start(answer: Callable[[], object]) -> None:
    """Question: what goes wrong if the online softmax starts its running max at 0 instead of -inf."""
    _check_choice(
        "running_max_start", answer, "b",
        "With m = 0 the running max of a row of scores near -1000 stays 0, so every term exp(z - 0) underflows to "
        "0 (float64 gives 0 below about -745), r ends at 0 and the weights are 0/0. Starting at -inf, the max is "
        "the scores' own, the largest term is exp(0) = 1, and exp(m - m_new) = exp(-inf) = 0 on the first block "
        "needs no special case.",
        {
            "a": "For rows with a positive score, yes: the max soon exceeds 0 and the result is exact. But a row "
                 "whose scores are all below 0 never raises the max above 0, and its terms exp(z - 0) are taken "
                 "relative to the wrong reference: near -1000 they are all 0 in floating point.",
            "c": "Overflow needs an exponent above about 709. With m = 0 the first block raises the max to the "
                 "row's largest score if it is positive, so exp(z - m_new) <= 1 and exp(m - m_new) <= 1: nothing "
                 "overflows. The danger is the other way, scores far below 0, whose exp(z - 0) is 0.",
            "d": "The running max m_new = maximum(m, block max) can only rise: started at 0 it never goes below 0, "
                 "so for a row of negative scores it stays 0, not the row's max.",
        },
    )


def _kv_bytes(num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch=1):
    return 2 * num_layers * batch * num_kv_heads * tokens * head_size * bytes_per_value  # keys and values


def _measured_cache_bytes(num_layers: int, d_model: int, num_heads: int, tokens: int, batch: int,
                          dtype: torch.dtype) -> int:
    """Decode ``tokens`` steps through ``num_layers`` package CausalSelfAttention layers; the bytes cached."""
    with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
        torch.manual_seed(0)
        layers = [_lib.efficient.CausalSelfAttention(d_model, num_heads).to(dtype) for _ in range(num_layers)]
        x = torch.randn(batch, tokens, d_model).to(dtype)  # (B, T, D)
    caches = [None] * num_layers
    with torch.no_grad():
        for t in range(tokens):
            h = x[:, t:t + 1]  # (B, 1, D)
            for i, layer in enumerate(layers):
                h, caches[i] = layer.step(h, caches[i])  # the next layer reads this one's output
    return sum(c.keys.nbytes + c.values.nbytes for c in caches)


@_reports_not_attempted
def check_kv_cache_bytes(kv_cache_bytes: Callable) -> None:
    """Experiment: ``kv_cache_bytes(num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch=1) -> int``,
    the bytes a key-value cache holds: a key and a value of head_size numbers per layer, per key-value head, per
    token, per sequence. Checked against caches measured in the package's decoder layers, then for a 7B model."""
    hint = ("kv_cache_bytes(num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch) returns one "
            "number: keys and values (2) × layers × batch × heads × tokens × head size × bytes")
    with _attempt("kv_cache_bytes"):
        for L, D, H, T, B, dtype in ((3, 24, 4, 7, 5, torch.float32), (2, 16, 2, 5, 3, torch.float64),
                                     (4, 32, 8, 3, 1, torch.bfloat16)):
            nbytes = torch.empty(0, dtype=dtype).element_size()
            label = (f"kv_cache_bytes(num_layers={L}, num_kv_heads={H}, head_size={D // H}, tokens={T}, "
                     f"bytes_per_value={nbytes}, batch={B})")
            got = _number(label, _call_with_hint(label, kv_cache_bytes, (
                ("num_layers", L), ("num_kv_heads", H), ("head_size", D // H), ("tokens", T),
                ("bytes_per_value", nbytes), ("batch", B)), hint))
            measured = _measured_cache_bytes(L, D, H, T, B, dtype)
            assert measured == _kv_bytes(L, H, D // H, T, nbytes, B)  # the formula is what the package stores
            known = {
                "you counted the keys only (or the values only): the cache holds both, one key and one value per "
                "token, head and layer, a factor 2": measured / 2,
                "you left out the layers: every layer has its own cache": measured / L,
                "you left out the batch: each sequence has its own cache": measured / B,
                f"you counted values, not bytes: multiply by bytes_per_value = {nbytes}": measured / nbytes,
                "you counted bits: a byte is 8 bits, and bytes_per_value is already in bytes": measured * 8,
                f"you multiplied by the model width D = {D} and by the heads: head_size is the size of *one* "
                f"head, and heads × head_size = D": measured * H,
                f"you cached one more token than generated, tokens + 1 = {T + 1}": measured / T * (T + 1),
            }
            if abs(got - measured) > 0.5:
                for why, value in known.items():
                    if abs(value - measured) > 0.5 and abs(got - value) <= 0.5:
                        raise AssertionError(f"{label} is {got:.6g} but the caches hold {measured} bytes: {why}")
                raise AssertionError(
                    f"{label} is {got:.6g} but {L} package layers decoding {T} tokens for {B} sequences in {dtype} "
                    f"hold {measured} bytes in their caches: 2 × layers × batch × heads × tokens × head_size × "
                    f"bytes_per_value"
                )
        label = ("kv_cache_bytes(num_layers=32, num_kv_heads=32, head_size=128, tokens=4096, bytes_per_value=2, "
                 "batch=1), a 7B model in fp16")
        got = _number(label, _call_with_hint(label, kv_cache_bytes, (
            ("num_layers", 32), ("num_kv_heads", 32), ("head_size", 128), ("tokens", 4096),
            ("bytes_per_value", 2), ("batch", 1)), hint))
        if got != 2 * 32 * 32 * 128 * 4096 * 2:
            raise AssertionError(f"{label} is {got:.6g} but should be 2 × 32 × 32 × 128 × 4096 × 2 = "
                                 f"{2 * 32 * 32 * 128 * 4096 * 2} bytes, 2 GiB: return an exact whole number")
    _say("kv_cache_bytes: correct, and equal to what the package's caches hold: 2 GiB for one 4096-token "
         "sequence of a 32-layer, 32-head 7B model in fp16, as much as a 1B-parameter model's weights.")


@_reports_not_attempted
def check_gqa_cache_size(answer: Callable[[], object]) -> None:
    """Question: the cache of the same 7B model with grouped-query attention, 8 key-value heads, in GiB."""
    gib = 2**30
    _check_number(
        "gqa_cache_size", answer, 2 * 32 * 8 * 128 * 4096 * 2 / gib,
        "With 8 key-value heads shared by the 32 query heads (4 queries per key-value head), the cache is 4 times "
        "smaller: 2 × 32 × 8 × 128 × 4096 × 2 bytes = 0.5 GiB per 4096-token sequence. The query heads do not "
        "count: queries are never cached.",
        rtol=0.01,
        wrong={
            "counting the 32 query heads": (2.0, "That is the cache without grouping: only the key-value heads are "
                                                 "cached, 8 of them, each shared by 4 query heads."),
            "the keys alone": (0.25, "The cache holds keys and values, a factor 2."),
            "fp32": (1.0, "fp16 is 2 bytes per number, not 4."),
            "one layer": (0.5 / 32, "Each of the 32 layers has its own cache."),
            "gigabytes (10⁹ bytes)": (2 * 32 * 8 * 128 * 4096 * 2 / 1e9, "That is in GB, 10⁹ bytes: the question "
                                                                        "asks for GiB, 2³⁰ bytes."),
            "megabytes": (512.0, "That is the size in MiB: the question asks for GiB (divide by 1024)."),
        },
    )
