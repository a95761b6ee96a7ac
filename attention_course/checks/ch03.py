"""Chapter 3, scoring rules: dot, scaled dot, general, concat scores; the masked softmax; two questions
(-inf for a masked key, the variance after the scale) and an experiment (the softmax saturates).

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
    _check_choice,
    _check_number,
    _number,
)

__all__ = [
    "check_dot_scores",
    "check_scaled_dot_scores",
    "check_general_scores",
    "check_concat_scores",
    "check_split_concat_weight",
    "check_masked_softmax",
    "check_why_minus_infinity",
    "check_scaled_variance",
    "check_mean_largest_weight",
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
    if L == S == E:
        wrong["you computed q.T @ k, which only runs because L = S here: it sums over the queries, not over "
              "the features. The score of query i and key j sums over the E features: q @ k.T"] = q.T @ k * scale
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
        for seed, (L, S, E), dtype in ((31, (4, 4, 4), torch.float32), (32, (3, 5, 4), torch.float32),
                                       (42, (2, 7, 3), torch.float64)):  # square first: a missing .T still runs
            q, k, _ = _pair_inputs(seed, L, S, E, E)
            q, k = q.to(dtype), k.to(dtype)
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
        for seed, (L, S, E) in ((33, (4, 4, 4)), (34, (3, 5, 4)), (35, (2, 9, 6)), (43, (3, 3, 16))):
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
                f"you divided by E = {E} instead of sqrt(E) = {E**0.5:.3g} (or you scaled both q and k by "
                f"1/sqrt(E), which divides their product by E): the standard deviation of a dot product of "
                f"E features grows like sqrt(E), not E; scale once": dot / E,
                "you multiplied by sqrt(E) instead of dividing": dot * E**0.5,
                f"you divided by sqrt(S) = sqrt({S}), the number of keys: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / S**0.5,
                f"you divided by sqrt(L) = sqrt({L}), the number of queries: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / L**0.5,
            })
            for c in range(2, 11):  # a scale typed in by hand, right for another E
                if c not in (E, S, L):
                    wrong.setdefault(f"you divided by sqrt({c}) = {c**0.5:.3g}, but E = {E} here: take E from the "
                                     f"input (q.shape[-1]) instead of typing a number", dot / c**0.5)
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
        for seed, (L, S, Eq, Ek) in ((36, (4, 4, 4, 4)), (37, (3, 5, 4, 2)),
                                     (44, (2, 6, 3, 5))):  # square first: W.T still runs
            q, k, gen = _pair_inputs(seed, L, S, Eq, Ek)
            W = torch.randn(Eq, Ek, generator=gen) * 0.5  # (Eq, Ek), not symmetric
            label = f"general_scores for L={L}, S={S}, Eq={Eq}, Ek={Ek}"
            got = _as_array(label, _call_pure(label, general_scores, ("q", q), ("k", k), ("W", W)))
            expected = q @ W @ k.T  # (L, Eq) @ (Eq, Ek) @ (Ek, S) -> (L, S)
            wrong = {"these are weights (each row sums to 1), not scores: return the raw scores; the softmax "
                     "comes later, in the attention itself": torch.softmax(expected, dim=-1)}
            if Eq == Ek:
                wrong["W is not used: q @ k.T is the dot score. The general score puts the learned matrix "
                      "between them, q @ W @ k.T, so that queries and keys may differ in size "
                      "and in meaning"] = q @ k.T
                wrong["you used W transposed: W is (Eq, Ek), so q @ W maps each query (Eq) into the key "
                      "space (Ek), where it is compared with the keys: q @ W @ k.T"] = q @ W.T @ k.T
            if Ek == S:
                wrong["you multiplied by k, not by k transposed: (q @ W) @ k only runs because Ek = S here. "
                      "Each score compares q_i W with a key row k_j: q @ W @ k.T"] = q @ W @ k
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
        for seed, (L, S, Eq, Ek, A) in ((38, (3, 5, 4, 2, 3)), (39, (4, 4, 3, 3, 5)),
                                        (45, (2, 3, 2, 3, 5))):  # A = Eq + Ek: pairs @ W runs
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
            if A == Eq + Ek:
                pairs = torch.cat([q[:, None, :].expand(L, S, Eq), k[None, :, :].expand(L, S, Ek)], dim=-1)
                wrong["W is not transposed: pairs @ W only runs because A = Eq + Ek here. W is (A, Eq + Ek), "
                      "so W [q; k] for every pair is pairs @ W.T"] = torch.tanh(pairs @ W) @ v
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
        for seed, (L, S, Eq, Ek, A) in ((40, (3, 5, 4, 2, 5)), (46, (2, 4, 2, 5, 3)), (47, (3, 2, 3, 3, 6))):
            q, k, W, v = _concat_inputs(seed, L, S, Eq, Ek, A)
            label = f"split_concat_weight(W, Eq={Eq}) for W of shape (A, Eq + Ek) = ({A}, {Eq + Ek})"
            result = _call_pure(label, split_concat_weight, ("W", W), ("Eq", Eq))
            if isinstance(result, (tuple, list)) and len(result) > 2 and all(
                    isinstance(r, torch.Tensor) and r.shape[-1] <= Eq for r in result):
                raise AssertionError(
                    f"{label} returned {len(result)} pieces: torch.split(W, Eq, dim=1) cuts W into chunks of Eq "
                    f"columns each, as many as fit. Give it the two sizes: torch.split(W, [Eq, Ek], dim=1), or "
                    f"slice W[:, :Eq] and W[:, Eq:]"
                )
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(f"split_concat_weight must return a pair (W_q, W_k), got {type(result).__name__}")
            W_q, W_k = (_as_array(label, r) for r in result)
            exp_q, exp_k = W[:, :Eq].numpy(), W[:, Eq:].numpy()  # (A, Eq), (A, Ek)
            swapped = W_q.shape == exp_k.shape and W_k.shape == exp_q.shape
            if Eq != Ek and swapped and np.allclose(W_q, exp_k) and np.allclose(W_k, exp_q):
                raise AssertionError(f"{label}: you returned (W_k, W_q): return (W_q, W_k)")
            half = W.shape[1] // 2
            if Eq != half and W_q.shape == (A, half) and np.allclose(W_q, W[:, :half].numpy()):
                raise AssertionError(
                    f"{label}: you cut W into two halves of {half} columns (e.g. W.chunk(2, dim=1)): the query "
                    f"block has Eq = {Eq} columns and the key block the other Ek = {W.shape[1] - Eq}"
                )
            if Eq != Ek and W_q.shape == exp_q.shape and np.allclose(W_q, W[:, Ek:].numpy()):
                raise AssertionError(
                    f"{label}: W_q is the last Eq columns: W multiplies [q; k], the query first, so the first "
                    f"Eq columns W[:, :Eq] act on the query and the remaining Ek columns W[:, Eq:] on the key"
                )
            if Eq == Ek and np.allclose(W_q, exp_k) and np.allclose(W_k, exp_q):
                raise AssertionError(
                    f"{label}: the two blocks are swapped: W multiplies [q; k], the query first, so W_q is the "
                    f"first Eq columns, W[:, :Eq], and W_k the rest"
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
            _compare("additive_scores with your (W_q, W_k)", additive.numpy(),
                     scores.concat_scores(q, k, W, v).numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("split_concat_weight: correct: W [q; k] = W_q q + W_k k, so additive scores are concat scores.")


_reference_masked_softmax = masked_softmax  # the package's; the check below takes a learner's namesake


def _check_extreme_scores(masked_softmax: Callable, label: str, x: torch.Tensor, mask: torch.Tensor,
                          hint: str) -> None:
    """Run ``masked_softmax`` on scores far from 0 (every row has keys to attend to): raise ``hint`` if a row
    is not finite or does not sum to 1, then compare with the package's masked softmax."""
    with np.errstate(all="ignore"):
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
    if got.shape == tuple(x.shape) and not (np.isfinite(got).all()
                                            and np.allclose(got.sum(axis=-1), 1.0, atol=1e-4)):
        raise AssertionError(f"{label}: {hint}")
    _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, rtol=1e-5,
             legend=_SCORES_LEGEND)


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
            for fill in (torch.softmax(x.masked_fill(~mask, 0.0), dim=-1), torch.softmax(x * mask, dim=-1)):
                if np.allclose(got, fill.numpy(), atol=1e-6):
                    raise AssertionError(
                        f"{label}: you gave the masked keys a score of 0 (masked_fill(~mask, 0), or scores * "
                        f"mask), but exp(0) = 1: they still get weight. A masked key needs a score of -inf, "
                        f"whose exp is exactly 0"
                    )
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
                "you gave the masked keys a score of 0 (masked_fill(~mask, 0), or scores * mask), but "
                "exp(0) = 1: they still get weight. A masked key needs a score of -inf, whose exp is exactly "
                "0": torch.softmax(x.masked_fill(~mask, 0.0), dim=-1),
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
        _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5, legend=_SCORES_LEGEND)

        # 2. a batch (B, L, S) with a padding mask (B, 1, S) that broadcasts over the queries
        x = torch.randn(2, 3, 5, generator=gen)  # (B, L, S)
        mask = (torch.arange(5) < torch.tensor([5, 3])[:, None])[:, None, :]  # (B, 1, S)
        label = "masked_softmax for scores (B, L, S) = (2, 3, 5) and a padding mask (B, 1, S)"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, rtol=1e-5,
                 legend=" (B, L, S): the mask broadcasts over the L queries")

        # 3. left padding and masks with holes, and a causal mask (L, S) shared by the batch
        x = torch.randn(3, 2, 6, generator=gen)  # (B, L, S)
        for what, mask in (
            ("a left-padded mask (B, 1, S)", (torch.arange(6) >= torch.tensor([0, 2, 5])[:, None])[:, None, :]),
            ("a mask with holes inside (B, 1, S)", torch.tensor([
                [True, False, True, True, False, True],
                [False, True, True, False, True, False],
                [True, True, False, False, False, True]])[:, None, :]),
            ("a causal mask (L, S) shared by the batch", torch.ones(2, 6, dtype=torch.bool).tril(diagonal=3)),
        ):
            label = f"masked_softmax for scores (B, L, S) = (3, 2, 6) and {what}"
            got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
            expected = _reference_masked_softmax(x, mask)
            full = mask.expand(x.shape).numpy()
            if got.shape == tuple(x.shape):
                leaked = np.argwhere(~full & (got != 0))
                if leaked.size:
                    idx = tuple(int(t) for t in leaked[0])
                    raise AssertionError(f"{label}: weights{list(idx)} = {got[idx]:.3g} but that key is masked: it "
                                         f"must be exactly 0. Use the mask itself, wherever its False entries are")
            _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5, legend=" (B, L, S)")

        # 4. large scores: exp(1000) overflows float32
        x = 1000.0 + 3.0 * torch.randn(3, 4, generator=gen)  # (L, S)
        mask = torch.tensor([[True, True, False, True], [False, True, True, True], [True, False, True, False]])
        _check_extreme_scores(
            masked_softmax, "masked_softmax for scores around 1000", x, mask,
            "the rows give inf or NaN, or do not sum to 1 (every row has keys to attend to): "
            "exp(1000) overflows. Subtract each row's largest allowed score before the exponential; "
            "softmax(x - max(x)) equals softmax(x)",
        )

        # 5. all-negative scores: exp(-1000) underflows to 0, and the sum with it
        x = -1000.0 + 3.0 * torch.randn(2, 4, generator=gen)  # (L, S)
        mask = torch.tensor([[True, False, True, True], [False, True, True, False]])
        _check_extreme_scores(
            masked_softmax, "masked_softmax for scores around -1000", x, mask,
            "the rows give NaN or zeros, though every row has keys to attend to: exp(-1000) "
            "underflows to 0, so the sum is 0. Subtract each row's largest allowed score: the largest "
            "term becomes exactly e^0 = 1 and the sum can never be 0",
        )

        # 6. a masked key with by far the largest score, in rows of very different scales
        x = torch.tensor([[0.5, 1000.0, -0.3, 0.2], [-2.0, 1.0, 300.0, 0.5], [-1000.0, -999.0, -1001.0, 50.0]])
        mask = torch.tensor([[True, False, True, True], [True, True, False, True], [True, True, True, False]])
        label = "masked_softmax for rows whose largest score is on a masked key"
        with np.errstate(all="ignore"):
            got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        bad = [i for i in range(3) if got.shape == (3, 4) and not (np.isfinite(got[i]).all()
                                                                  and abs(got[i].sum() - 1.0) < 1e-4)]
        if bad == [2]:
            raise AssertionError(
                f"{label}: row 2, whose allowed scores are around -1000, gives NaN or zeros: you subtracted one "
                f"maximum for the whole tensor (about 1 here), so every exp(-1000 - 1) underflows. Subtract each "
                f"row's own largest allowed score (amax(dim=-1, keepdim=True))"
            )
        if bad:
            raise AssertionError(
                f"{label}: the rows give NaN or zeros, though every row has keys to attend to. You subtracted "
                f"the largest score of the row *before* masking it, and that score (1000, 300, 50) is on a "
                f"masked key: every allowed exponent underflows to 0. Fill the masked scores with -inf first, "
                f"then subtract the largest *allowed* score"
            )
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, rtol=1e-5,
                 legend=_SCORES_LEGEND)

        # 7. float64 scores
        x = torch.randn(2, 5, generator=gen, dtype=torch.float64) * 4  # (L, S)
        mask = torch.tensor([[False, True, True, False, True], [True, True, True, True, False]])
        label = "masked_softmax for float64 scores"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, rtol=1e-5,
                 legend=_SCORES_LEGEND)
    _say("masked_softmax: correct: blocked keys get 0 wherever they are, fully masked rows 0 (not NaN), "
         "stable for large and very negative scores.")


# ---------------------------------------------------------------- questions and an experiment


@_reports_not_attempted
def check_why_minus_infinity(answer: Callable[[], object]) -> None:
    """Question: why a masked key's score is set to -inf and not to 0."""
    _check_choice(
        "Exercise 6 (-inf, not 0)", answer, "b",
        "exp(-inf) = 0 exactly, so a masked key gets weight exactly 0 whatever the other scores are. A score "
        "of 0 is an ordinary score: exp(0) = 1, as much as an allowed key that scores 0, and more than one "
        "that scores below 0. (A fully masked row is the one place where -inf needs care: 0/0.)",
        {
            "a": "0 is not 'no match': it is an ordinary score, in the middle of the range, and exp(0) = 1. A "
                 "masked key with score 0 gets as much weight as an allowed key that scores 0, and more than "
                 "every allowed key with a negative score.",
            "c": "speed has nothing to do with it: both fills cost the same. The difference is in the weights: "
                 "exp(0) = 1 gives the masked key weight, exp(-inf) = 0 gives it none.",
            "d": "a row of -inf is 0/0 = NaN in a plain softmax, not uniform; uniform weights are what a "
                 "*finite* fill such as -1e9 gives a fully masked row. That is why the masked softmax handles "
                 "those rows on purpose.",
        },
    )


@_reports_not_attempted
def check_scaled_variance(answer: Callable[[], object]) -> None:
    """Question: the variance of q·k / sqrt(d_k) for d_k = 64 when the entries have standard deviation 0.5."""
    _check_number(
        "Exercise 7 (variance after the scale)", answer, 0.0625,
        "each product q_i k_i has variance 0.5² · 0.5² = 0.0625; the sum of 64 of them has variance "
        "64 · 0.0625 = 4; dividing by sqrt(64) = 8 divides the variance by 64. The scale brings the variance "
        "to 1 only for entries of variance 1: for small entries, as in chapter 3's freshly initialised "
        "encoder states (a root mean square of about 0.2), it makes small scores smaller still.",
        rtol=0.05,
        wrong={
            "assuming entries of variance 1": (1.0, "Here each entry has standard deviation 0.5, so variance "
                                                    "0.25, and a product of two has variance 0.25 · 0.25."),
            "the variance before the scale": (4.0, "That is var(q·k) = 64 · 0.0625. Dividing by 8 divides the "
                                                   "variance by 8² = 64."),
            "dividing the variance by sqrt(d_k) = 8": (0.5, "Dividing a number by 8 divides its variance by "
                                                            "8² = 64, not by 8."),
            "the standard deviation (or one entry's variance)": (
                0.25, "0.25 is the standard deviation of the scaled score, sqrt(0.0625), and also the variance "
                      "of one entry. The question asks for the variance of the scaled dot product."),
        },
    )


def _mean_largest_weight(d_k: int, scaled: bool, S: int, n: int, seed: int, *, scale_by_d: bool = False,
                         dim: int = -1) -> float:
    """The mean, over n random queries, of the largest of the weights softmax(q·k_j · scale) over S random
    keys, with unit-variance entries; scale 1/sqrt(d_k) if ``scaled`` else 1."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 1, d_k, generator=g)  # (n, 1, E)
    k = torch.randn(n, S, d_k, generator=g)  # (n, S, E)
    scores = (q @ k.transpose(1, 2))[:, 0]  # (n, S)
    if scaled:
        scores = scores / (d_k if scale_by_d else d_k**0.5)
    return float(torch.softmax(scores, dim=dim).max(dim=-1).values.mean())


@_reports_not_attempted
def check_mean_largest_weight(mean_largest_weight: Callable) -> None:
    """Experiment: ``mean_largest_weight(d_k, scaled, S, n, seed) -> float``, the mean largest weight of one
    random query over S random keys (unit-variance entries), with or without the scale 1/sqrt(d_k)."""
    with _attempt("mean_largest_weight"):
        S, n = 10, 2000
        for d_k, scaled in ((4, False), (256, False), (4, True), (256, True)):
            label = f"mean_largest_weight(d_k={d_k}, scaled={scaled}, S={S}, n={n})"
            got = _number(label, mean_largest_weight(d_k, scaled, S, n, 0))
            # the reference at two other seeds: a correct run at any seed lies within the tolerance
            expected = np.mean([_mean_largest_weight(d_k, scaled, S, n, seed) for seed in (101, 102)])
            tol = 0.03
            if abs(got - expected) <= tol:
                continue
            wrong = {
                "you scaled by 1/d_k instead of 1/sqrt(d_k)": _mean_largest_weight(d_k, True, S, n, 101,
                                                                                    scale_by_d=True)
                if scaled else None,
                "the scale was not applied although scaled=True (or applied when scaled=False)":
                    _mean_largest_weight(d_k, not scaled, S, n, 101),
                "the softmax ran over the queries (dim 0): each query's weights over its S keys are one row, "
                "softmax(dim=-1)": _mean_largest_weight(d_k, scaled, S, n, 101, dim=0),
                f"that is 1/S = {1 / S}: you averaged all the weights (which always sum to 1 over the keys) "
                f"instead of taking each query's largest, weights.max(dim=-1)": 1 / S,
            }
            for hint, value in wrong.items():
                if value is not None and abs(got - value) <= tol < abs(value - expected):
                    raise AssertionError(f"{label} is {got:.3f} but should be about {expected:.3f}: {hint}")
            if got > 1:
                raise AssertionError(f"{label} is {got:.3f}, above 1: a weight is at most 1. Take the largest "
                                     f"*weight* (after the softmax), not the largest score")
            raise AssertionError(
                f"{label} is {got:.3f} but should be about {expected:.3f} (within {tol}): draw n queries (n, 1, "
                f"d_k) and n sets of S keys (n, S, d_k) with torch.randn, score each query against its own keys, "
                f"apply the softmax over the keys and average each query's largest weight"
            )
    raw, scaled = (_mean_largest_weight(256, flag, S, n, 101) for flag in (False, True))
    _say(f"mean_largest_weight: correct: at d_k = 256 the largest of 10 weights averages {raw:.2f} without the "
         f"scale and {scaled:.2f} with it: unscaled, the softmax saturates as d_k grows.")
