"""Chapter 3, scoring rules: dot, scaled dot, general, concat scores; the masked softmax.

The checks of ``chapters/03_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.reference  # noqa: F401 (binds _lib.reference)
import attention_course.scores  # noqa: F401 (binds _lib.scores)

from .. import scores
from ..attention import masked_softmax
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _call_pure,
    _reject_known,
    _SCORES_LEGEND,
)

__all__ = [
    "check_dot_scores",
    "check_scaled_dot_scores",
    "check_general_scores",
    "check_concat_scores",
    "check_split_concat_weight",
    "check_masked_softmax",
]


def _pair_inputs(seed: int, L: int, S: int, Eq: int, Ek: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(L, Eq, generator=gen), torch.randn(S, Ek, generator=gen), gen


def _dot_wrong(q: torch.Tensor, k: torch.Tensor, scale: float) -> dict:
    """The mistakes both dot-product exercises share (scores = q @ k.T * scale): transposes, an
    elementwise product, a softmax."""
    (L, E), S = q.shape, k.shape[0]
    expected = q @ k.T * scale  # (L, S)
    wrong = {
        "these are weights (each row sums to 1), not scores: return the raw scores; the softmax "
        "comes later, in the attention itself": torch.softmax(expected, dim=-1),
    }
    if L == S:
        wrong["the result is transposed: row i must hold query i's scores against every key, "
              "so compute q @ k.T (L, S), not k @ q.T (S, L)"] = expected.T
    if E == S:
        wrong["you multiplied q by k, not by k transposed: q @ k only runs because E = S here. "
              "Each score is the dot product of a query row with a key row: q @ k.T"] = q @ k * scale
    if L == S:
        wrong["you multiplied elementwise (q * k): that pairs query i with key i only. The score of "
              "query i and key j is the sum over the E features of q[i] * k[j]: the matrix product "
              "q @ k.T"] = (q * k) * scale
    return wrong


@_reports_not_attempted
def check_dot_scores(dot_scores: Callable) -> None:
    """Exercise: ``dot_scores(q (L, E), k (S, E)) -> (L, S)``, score[i, j] = q_i · k_j."""
    dot_scores = _own_work(
        "dot_scores", dot_scores,
        _lib.scores.dot_scores,
        _lib.reference.dot_scores,
    )
    with _attempt("dot_scores"):
        for seed, (L, S, E) in ((31, (4, 4, 4)), (32, (3, 5, 4))):  # square first: a missing .T still runs
            q, k, _ = _pair_inputs(seed, L, S, E, E)
            label = f"dot_scores for L={L}, S={S}, E={E}"
            got = _as_array(label, _call_pure(label, dot_scores, ("q", q), ("k", k)))
            expected = q @ k.T  # (L, S)
            wrong = _dot_wrong(q, k, 1.0)
            wrong["you scaled the scores by 1/sqrt(E): that is the next exercise. The plain dot-product "
                  "score is q @ k.T"] = expected / E**0.5
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("dot_scores: correct: q @ k.T, one score per (query, key) pair.")


@_reports_not_attempted
def check_scaled_dot_scores(scaled_dot_scores: Callable) -> None:
    """Exercise: ``scaled_dot_scores(q (L, E), k (S, E)) -> (L, S)``, q kᵀ / sqrt(E)."""
    scaled_dot_scores = _own_work(
        "scaled_dot_scores", scaled_dot_scores,
        _lib.scores.scaled_dot_scores,
    )
    with _attempt("scaled_dot_scores"):
        for seed, (L, S, E) in ((33, (4, 4, 4)), (34, (3, 5, 4)), (35, (2, 9, 6))):
            q, k, _ = _pair_inputs(seed, L, S, E, E)
            label = f"scaled_dot_scores for L={L}, S={S}, E={E}"
            got = _as_array(label, _call_pure(label, scaled_dot_scores, ("q", q), ("k", k)))
            dot = q @ k.T  # (L, S)
            expected = dot / E**0.5
            wrong = _dot_wrong(q, k, 1 / E**0.5)
            wrong.update({
                f"you did not divide by sqrt(E) = {E**0.5:.3g}: these are the plain dot-product scores. "
                f"A dot product of E unit-variance features has variance E; dividing by sqrt(E) brings "
                f"it back to 1": dot,
                f"you divided by E = {E} instead of sqrt(E) = {E**0.5:.3g}: the standard deviation of a "
                f"dot product of E features grows like sqrt(E), not E": dot / E,
                "you multiplied by sqrt(E) instead of dividing": dot * E**0.5,
                f"you divided by sqrt(S) = sqrt({S}), the number of keys: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / S**0.5,
                f"you divided by sqrt(L) = sqrt({L}), the number of queries: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / L**0.5,
            })
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("scaled_dot_scores: correct: q @ k.T / sqrt(E).")


@_reports_not_attempted
def check_general_scores(general_scores: Callable) -> None:
    """Exercise: ``general_scores(q (L, Eq), k (S, Ek), W (Eq, Ek)) -> (L, S)``, q W kᵀ."""
    general_scores = _own_work(
        "general_scores", general_scores,
        _lib.scores.general_scores,
    )
    with _attempt("general_scores"):
        for seed, (L, S, Eq, Ek) in ((36, (4, 4, 4, 4)), (37, (3, 5, 4, 2))):  # square first: W.T still runs
            q, k, gen = _pair_inputs(seed, L, S, Eq, Ek)
            W = torch.randn(Eq, Ek, generator=gen) * 0.5  # (Eq, Ek), not symmetric
            label = f"general_scores for L={L}, S={S}, Eq={Eq}, Ek={Ek}"
            got = _as_array(label, _call_pure(label, general_scores, ("q", q), ("k", k), ("W", W)))
            expected = q @ W @ k.T  # (L, Eq) @ (Eq, Ek) @ (Ek, S) -> (L, S)
            wrong = {}
            if Eq == Ek:
                wrong["W is not used: q @ k.T is the dot score. The general score puts the learned matrix "
                      "between them, q @ W @ k.T, so that queries and keys may differ in size "
                      "and in meaning"] = q @ k.T
                wrong["you used W transposed: W is (Eq, Ek), so q @ W maps each query (Eq) into the key "
                      "space (Ek), where it is compared with the keys: q @ W @ k.T"] = q @ W.T @ k.T
            if Eq == Ek and L == S:
                wrong["you computed k @ W @ q.T, which is the transposed result with W transposed: the "
                      "query goes on the left, q @ W @ k.T, so that row i holds query i's scores"] = k @ W @ q.T
                wrong["the result is transposed: row i must hold query i's scores, q @ W @ k.T (L, S)"] = expected.T
            if L == Eq == Ek:
                wrong["you multiplied q and W elementwise (q * W): that only runs because L = Eq = Ek here. "
                      "Use the matrix product, q @ W @ k.T"] = (q * W) @ k.T
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("general_scores: correct: q @ W @ k.T.")


def _concat_inputs(seed: int, L: int, S: int, Eq: int, Ek: int, A: int):
    q, k, gen = _pair_inputs(seed, L, S, Eq, Ek)
    W = torch.randn(A, Eq + Ek, generator=gen) * 0.5  # (A, Eq + Ek): tanh not saturated
    v = torch.randn(A, generator=gen)  # (A,)
    return q, k, W, v


@_reports_not_attempted
def check_concat_scores(concat_scores: Callable) -> None:
    """Exercise: ``concat_scores(q (L, Eq), k (S, Ek), W (A, Eq + Ek), v (A,)) -> (L, S)``,
    score[i, j] = v · tanh(W [q_i; k_j])."""
    concat_scores = _own_work(
        "concat_scores", concat_scores,
        _lib.scores.concat_scores,
        _lib.scores.additive_scores,
    )
    with _attempt("concat_scores"):
        for seed, (L, S, Eq, Ek, A) in ((38, (3, 5, 4, 2, 3)), (39, (4, 4, 3, 3, 5))):
            q, k, W, v = _concat_inputs(seed, L, S, Eq, Ek, A)
            label = f"concat_scores for L={L}, S={S}, Eq={Eq}, Ek={Ek}, A={A}"
            got = _as_array(label, _call_pure(label, concat_scores, ("q", q), ("k", k), ("W", W), ("v", v)))
            expected = scores.concat_scores(q, k, W, v)  # (L, S)
            pre = (q @ W[:, :Eq].T)[:, None, :] + (k @ W[:, Eq:].T)[None, :, :]  # (L, S, A): W [q_i; k_j]
            wrong = {
                "you concatenated [k; q]: the order is [q; k], so the first Eq columns of W act on the "
                "query and the last Ek on the key (torch.cat([q_i, k_j]))":
                    torch.tanh((k @ W[:, :Ek].T)[None, :, :] + (q @ W[:, Ek:].T)[:, None, :]) @ v,
                "there is no tanh: apply it to the A-vector W [q; k] before the dot product with v. "
                "Without it the score is a linear function of q and k, and the query's part is the same "
                "for every key (it cancels in the softmax)": pre @ v,
                "the tanh is applied after v: it acts on the A-vector W [q; k], then v turns the result "
                "into one number": torch.tanh(pre @ v),
                "you summed the A features instead of taking the dot product with v: v is a learned "
                "vector, v · tanh(...)": torch.tanh(pre).sum(dim=-1),
                "these are weights (each row sums to 1), not scores: return the raw scores":
                    torch.softmax(expected, dim=-1),
            }
            _reject_known(label, got, expected, wrong)
            if got.shape == tuple(expected.shape) and np.allclose(got, got[:, :1], atol=1e-6):
                raise AssertionError(
                    f"{label}: every key got the same score from a query, so the key is not used: W [q; k] "
                    f"needs the whole concatenation, the key's block W[:, Eq:] acting on k_j as well as "
                    f"the query's block W[:, :Eq] acting on q_i"
                )
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("concat_scores: correct: v · tanh(W [q; k]) for every (query, key) pair.")


@_reports_not_attempted
def check_split_concat_weight(split_concat_weight: Callable) -> None:
    """Exercise: ``split_concat_weight(W (A, Eq + Ek), Eq) -> (W_q (A, Eq), W_k (A, Ek))`` such that
    ``additive_scores(q, k, W_q, W_k, v) == concat_scores(q, k, W, v)``."""
    with _attempt("split_concat_weight"):
        L, S, Eq, Ek, A = 3, 5, 4, 2, 5
        q, k, W, v = _concat_inputs(40, L, S, Eq, Ek, A)
        label = f"split_concat_weight(W, Eq={Eq}) for W of shape (A, Eq + Ek) = ({A}, {Eq + Ek})"
        result = _call_pure(label, split_concat_weight, ("W", W), ("Eq", Eq))
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError(f"split_concat_weight must return a pair (W_q, W_k), got {type(result).__name__}")
        W_q, W_k = (_as_array(label, r) for r in result)
        exp_q, exp_k = W[:, :Eq].numpy(), W[:, Eq:].numpy()  # (A, Eq), (A, Ek)
        swapped = W_q.shape == exp_k.shape and W_k.shape == exp_q.shape
        if swapped and np.allclose(W_q, exp_k) and np.allclose(W_k, exp_q):
            raise AssertionError(f"{label}: you returned (W_k, W_q): return (W_q, W_k)")
        if W_q.shape == exp_q.shape and np.allclose(W_q, W[:, Ek:].numpy()):
            raise AssertionError(
                f"{label}: W_q is the last Eq columns: W multiplies [q; k], the query first, so the first "
                f"Eq columns W[:, :Eq] act on the query and the remaining Ek columns W[:, Eq:] on the key"
            )
        for name, got, exp, letter in (("W_q", W_q, exp_q, "Eq"), ("W_k", W_k, exp_k, "Ek")):
            if got.shape != exp.shape and got.shape[::-1] != exp.shape:
                raise AssertionError(
                    f"{label}: {name} has shape {got.shape} but should be (A, {letter}) = {exp.shape}: W's "
                    f"columns are [query block | key block]; split along the columns, dim=1 "
                    f"(W[:, :Eq] and W[:, Eq:])"
                )
            _compare(f"{name}, {label}", got, exp, atol=0.0, legend=f" (A, {letter})")
        W_q, W_k = (torch.as_tensor(w, dtype=W.dtype) for w in (W_q, W_k))
        additive = scores.additive_scores(q, k, W_q, W_k, v)  # (L, S)
        _compare("additive_scores with your (W_q, W_k)", additive.numpy(), scores.concat_scores(q, k, W, v).numpy(),
                 atol=1e-5, legend=_SCORES_LEGEND)
    _say("split_concat_weight: correct: W [q; k] = W_q q + W_k k, so additive scores are concat scores.")


_reference_masked_softmax = masked_softmax  # the package's; the check below takes a learner's namesake


@_reports_not_attempted
def check_masked_softmax(masked_softmax: Callable) -> None:
    """Exercise: ``masked_softmax(scores, mask) -> weights``: softmax over the last axis where the bool
    ``mask`` (broadcastable to ``scores``) is True; a fully masked row gives zeros; stable for large scores."""
    masked_softmax = _own_work(
        "masked_softmax", masked_softmax,
        _lib.attention.masked_softmax,
        _lib.reference.masked_softmax,
    )
    with _attempt("masked_softmax"):
        gen = torch.Generator().manual_seed(41)

        # 1. one (L, S) matrix: row 2 fully masked, row 3 a single key; every column has a key
        x = torch.randn(4, 5, generator=gen)  # (L, S)
        mask = torch.tensor([[True, True, False, False, True], [False, True, True, True, False],
                             [False, False, False, False, False], [True, False, False, False, False]])
        label = "masked_softmax for scores (L, S) = (4, 5)"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        expected = _reference_masked_softmax(x, mask)  # (L, S)
        if got.shape == tuple(expected.shape):
            if not np.isfinite(got[2]).all():
                raise AssertionError(
                    f"{label}: row 2 has every key masked and came out NaN: the softmax of a row of -inf is "
                    f"0/0. A fully masked row must get zero weights: e.g. replace a row maximum of -inf by "
                    f"0 before subtracting it, and divide by a denominator that is never 0"
                )
            if np.allclose(got[2], 1.0 / got.shape[1]):
                raise AssertionError(
                    f"{label}: row 2 has every key masked, and it got uniform weights 1/S: that is what a "
                    f"fill of -1e9 (or any finite number) does, since every key of a fully masked row then "
                    f"has the same score. A fully masked row must get zero weights (a query with nothing to "
                    f"attend to): fill with -inf and handle the all -inf rows"
                )
            wrong = {
                "the mask is inverted: True means *may attend*, so block the keys where it is False "
                "(scores.masked_fill(~mask, float('-inf')))": _reference_masked_softmax(x, ~mask),
                "the mask was ignored: the masked keys got weight": torch.softmax(x, dim=-1),
                "you zeroed the masked weights after the softmax without renormalising, so the rows sum to "
                "less than 1: mask the scores (-inf) before the softmax": torch.softmax(x, dim=-1) * mask,
                "you normalised over the wrong axis: each column sums to 1, but each row (one query) "
                "should: the softmax runs over the keys, the last axis (dim=-1)":
                    _reference_masked_softmax(x, mask, dim=-2),
            }
            _reject_known(label, got, expected, wrong, atol=1e-6)
            leaked = np.argwhere(~mask.numpy() & (got != 0))
            if leaked.size:
                i, j = (int(t) for t in leaked[0])
                raise AssertionError(f"{label}: weights[{i}, {j}] = {got[i, j]:.3g} but key {j} is masked for "
                                     f"query {i}: it must be exactly 0")
        _compare(label, got, expected.numpy(), atol=1e-6, legend=_SCORES_LEGEND)

        # 2. a batch (B, L, S) with a padding mask (B, 1, S) that broadcasts over the queries
        x = torch.randn(2, 3, 5, generator=gen)  # (B, L, S)
        mask = (torch.arange(5) < torch.tensor([5, 3])[:, None])[:, None, :]  # (B, 1, S)
        label = "masked_softmax for scores (B, L, S) = (2, 3, 5) and a padding mask (B, 1, S)"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6,
                 legend=" (B, L, S): the mask broadcasts over the L queries")

        # 3. large scores: exp(1000) overflows float32
        x = 1000.0 + 3.0 * torch.randn(3, 4, generator=gen)  # (L, S)
        mask = torch.tensor([[True, True, False, True], [False, True, True, True], [True, False, True, False]])
        label = "masked_softmax for scores around 1000"
        with np.errstate(all="ignore"):
            got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        if got.shape == (3, 4) and not (np.isfinite(got).all() and np.allclose(got.sum(axis=-1), 1.0, atol=1e-4)):
            raise AssertionError(
                f"{label}: the rows give inf or NaN, or do not sum to 1 (every row has keys to attend to): "
                f"exp(1000) overflows. Subtract each row's largest allowed score before the exponential; "
                f"softmax(x - max(x)) equals softmax(x)"
            )
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, legend=_SCORES_LEGEND)
    _say("masked_softmax: correct: blocked keys get 0, fully masked rows 0 (not NaN), stable for large scores.")
