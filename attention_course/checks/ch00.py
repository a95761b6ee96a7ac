"""Chapter 0, attention in one page: softmax, weights, context, attention; two questions (beta -> 0,
why the maximum) and an experiment (how large beta must be for a lookup).

The checks of ``chapters/00_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.reference  # noqa: F401 (binds _lib.reference)

from .. import reference
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _rng,
    _unchanged,
    _check_choice,
    _number,
)

__all__ = [
    "check_softmax",
    "check_attention_weights",
    "check_context",
    "check_attention",
    "check_temperature_limits",
    "check_why_subtract_the_max",
    "check_sharpening_beta",
]


def _softmax_case(softmax: Callable, x: np.ndarray, label: str) -> np.ndarray:
    """The learner's softmax of ``x``, with the input guarded against in-place changes."""
    before = x.copy()
    with np.errstate(all="ignore"):
        got = _as_array(label, softmax(x))
    _unchanged(f"the input of {label}", before, x)
    return got


@_reports_not_attempted
def check_softmax(softmax: Callable[[np.ndarray], np.ndarray]) -> None:
    """Exercise: a numerically stable softmax over the last axis of a NumPy array."""
    softmax = _own_work(
        "softmax", softmax,
        _lib.reference.softmax,
        _lib.attention.softmax,
    )
    with _attempt("softmax"):
        x1 = np.array([0.5, -1.0, 2.0, 0.0])
        _compare("softmax of a vector", _softmax_case(softmax, x1, "softmax of a vector"), reference.softmax(x1))

        x2 = _rng(0).normal(size=(3, 5))
        label = "softmax of a (3, 5) matrix"
        got = _softmax_case(softmax, x2, label)
        if got.shape == x2.shape and np.allclose(got.sum(axis=0), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                f"{label}: the columns sum to 1 but the rows should: normalise over the "
                "last axis (axis=-1, with keepdims=True), not axis 0"
            )
        if got.shape == x2.shape and np.isclose(got.sum(), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                f"{label}: the whole matrix sums to 1 but each row should: "
                "take the max and the sum along axis=-1 with keepdims=True"
            )
        _compare(label, got, reference.softmax(x2))

        # a square matrix: a max or a sum taken without keepdims still broadcasts, along the wrong axis
        x3 = _rng(1).normal(scale=1.5, size=(4, 4))
        label = "softmax of a (4, 4) matrix"
        got = _softmax_case(softmax, x3, label)
        e = np.exp(x3 - x3.max(axis=-1, keepdims=True))
        if got.shape == x3.shape:
            for hint, wrong in (
                ("the row maxima were subtracted without keepdims=True, so x - x.max(axis=-1) subtracted row "
                 "j's maximum from column j (a (4,) vector broadcasts along the last axis). Keep the reduced "
                 "axis: x.max(axis=-1, keepdims=True)",
                 _normalise(np.exp(x3 - x3.max(axis=-1)))),
                ("the sums were taken without keepdims=True, so e / e.sum(axis=-1) divided column j by row "
                 "j's sum (a (4,) vector broadcasts along the last axis). Keep the reduced axis: "
                 "e.sum(axis=-1, keepdims=True)", e / e.sum(axis=-1)),
            ):
                if np.allclose(got, wrong, atol=1e-9):
                    raise AssertionError(f"{label}: {hint}")
        _compare(label, got, reference.softmax(x3))

        # a 3-D array: the softmax runs over the last axis only, whatever the rank
        x4 = _rng(2).normal(size=(2, 3, 4))
        _compare("softmax of a (2, 3, 4) array", _softmax_case(softmax, x4, "softmax of a (2, 3, 4) array"),
                 reference.softmax(x4), legend=" (the last axis is normalised, the others are kept)")

        extremes = (
            ([1e4, -1e4, 0.0], "subtract the *largest* score (not the smallest or the mean), so that every "
                               "exponent is at most 0"),
            ([1000.0, 999.0, 998.0], "exp(1000) overflows. Subtract the largest score first; "
                                     "softmax(x - max(x)) equals softmax(x)"),
            ([-1000.0, -1001.0, -1003.0], "every exp(-1000) underflows to 0, so the sum is 0 and 0/0 is NaN. "
                                          "Subtract the largest score: the largest term becomes exactly "
                                          "e^0 = 1 and the sum can never be 0"),
        )
        for values, hint in extremes:
            x = np.array(values)
            label = f"softmax({values})"
            got = _softmax_case(softmax, x, label)
            if not np.all(np.isfinite(got)):
                raise AssertionError(f"{label} gives inf or NaN: {hint}")
            if got.shape == x.shape and not np.isclose(got.sum(), 1.0):
                raise AssertionError(f"{label} sums to {got.sum():.4g}, not 1: an exponential overflowed or "
                                     f"underflowed on the way (inf or NaN, then cleaned up?): {hint}")
            _compare(label, got, reference.softmax(x))

        # rows of very different scales: one maximum for the whole array is not enough
        x5 = np.array([[1000.0, 999.0, 998.0, 990.0], [-1000.0, -1001.0, -1003.0, -1010.0],
                       [0.1, 0.2, -0.3, 0.0]])
        label = "softmax of rows of very different scales (around 1000, -1000 and 0)"
        got = _softmax_case(softmax, x5, label)
        if got.shape == x5.shape and not np.all(np.isfinite(got)):
            raise AssertionError(
                f"{label} gives inf or NaN: subtract each row's own maximum "
                f"(x.max(axis=-1, keepdims=True)), not one maximum for the whole array: a row far below the "
                f"global maximum underflows to 0/0"
            )
        _compare(label, got, reference.softmax(x5))

        # float32 in, float32 out: rounding of float32 is accepted
        x6 = _rng(3).normal(size=(2, 5)).astype(np.float32)
        _compare("softmax of a float32 matrix", _softmax_case(softmax, x6, "softmax of a float32 matrix"),
                 reference.softmax(x6.astype(np.float64)), atol=1e-6, rtol=1e-5)
    _say("softmax: correct, stable for large and very negative scores, and row-wise on arrays of any rank.")


def _normalise(e: np.ndarray) -> np.ndarray:
    return e / e.sum(axis=-1, keepdims=True)


def _attention_inputs(seed: int, L: int, S: int, E: int, Ev: int, scale: float = 0.6):
    rng = _rng(seed)
    q = rng.normal(scale=scale, size=(L, E))
    k = rng.normal(scale=scale, size=(S, E))
    v = rng.normal(size=(S, Ev))
    return q, k, v


def _scale_hints(what: str, got: np.ndarray, q: np.ndarray, k: np.ndarray, expected: np.ndarray) -> None:
    """Recognise the usual scaling mistakes before the generic comparison."""
    (L, E), S = q.shape, k.shape[0]
    scores = q @ k.T
    variants = {
        "you did not divide the scores by sqrt(E)": reference.softmax(scores),
        "you divided the scores by E instead of sqrt(E)": reference.softmax(scores / E),
        "you multiplied the scores by sqrt(E) instead of dividing": reference.softmax(scores * np.sqrt(E)),
        f"you divided by sqrt(S) = sqrt({S}), the number of keys: the scale is sqrt(E), the size of each "
        f"query and key (q.shape[-1])": reference.softmax(scores / np.sqrt(S)),
    }
    if L > 1:
        variants[f"you divided by sqrt(L) = sqrt({L}), the number of queries: the scale is sqrt(E), the size "
                 f"of each query and key (Q.shape[-1])"] = reference.softmax(scores / np.sqrt(L))
    for c in range(2, 11):  # a scale typed in by hand, right for another E
        if c not in (E, S, L):
            variants[f"you divided by sqrt({c}), but E = {E} here: take E from the input (q.shape[-1]) instead "
                     f"of typing a number"] = reference.softmax(scores / np.sqrt(c))
    if got.shape != expected.shape:
        return
    for hint, wrong in variants.items():
        wrong = wrong.reshape(expected.shape)
        if not np.allclose(wrong, expected, atol=1e-3) and np.allclose(got, wrong, atol=1e-6):
            raise AssertionError(f"{what}: {hint} (E={E})")


def _weights_case(attention_weights: Callable, q: np.ndarray, k: np.ndarray) -> None:
    (S, E) = k.shape
    label = f"attention_weights(query, keys) for S={S}, E={E}"
    expected = reference.softmax(k @ q / np.sqrt(E))  # (S,)
    q_before, k_before = q.copy(), k.copy()
    with np.errstate(all="ignore"):
        got = _as_array(label, attention_weights(q, k))
    _unchanged(f"the query given to {label}", q_before, q)
    _unchanged(f"the keys given to {label}", k_before, k)
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        raise AssertionError(
            f"{label} contains inf or NaN: these scores are large (up to {np.abs(k @ q).max() / np.sqrt(E):.0f}), "
            f"and exp overflows. Put them through your stable softmax of exercise 1"
        )
    if got.shape == expected.shape and not np.isclose(got.sum(), 1.0):
        raise AssertionError(f"{label} sums to {got.sum():.4g}, not 1: apply a softmax to the scores")
    if S == E and got.shape == expected.shape:
        wrong = reference.softmax(q @ k / np.sqrt(E))
        if not np.allclose(wrong, expected, atol=1e-3) and np.allclose(got, wrong, atol=1e-6):
            raise AssertionError(
                f"{label}: you computed q @ K, which only runs because S = E here: it sums the keys weighted by "
                f"q. The score of key i is q . k_i, one per row of K: K @ q"
            )
    _scale_hints(label, got, q[None, :], k, expected)
    _compare(label, got, expected, legend=" (S,), one weight per key")


@_reports_not_attempted
def check_attention_weights(attention_weights: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the weights a_j = softmax_j(q·k_j / sqrt(E)) of one query over S keys."""
    attention_weights = _own_work(
        "attention_weights", attention_weights,
        _lib.attention.scaled_dot_product_attention,
        _lib.reference.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention,
        _lib.attention.attend,
    )
    with _attempt("attention_weights"):
        # E varies, so a scale typed in fails; S = E lets q @ K run. Moderate scores only: a softmax that
        # overflows is exercise 1's to catch, and must not cost this exercise its points too
        for seed, S, E in ((1, 5, 8), (5, 6, 3), (6, 4, 4)):
            q, k, _ = _attention_inputs(seed, 1, S, E, 3)
            _weights_case(attention_weights, q[0], k)
    _say("attention_weights: correct: scaled scores, softmax over the keys.")


@_reports_not_attempted
def check_context(context: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the context c = sum_j a_j v_j for weights (S,) and values (S, Ev)."""
    with _attempt("context"):
        rng = _rng(2)
        for S, Ev in ((5, 3), (4, 4)):  # square second: values transposed still runs
            a = reference.softmax(rng.normal(size=S))  # (S,)
            v = rng.normal(size=(S, Ev))  # (S, Ev)
            label = f"context(weights, values) for S={S}, Ev={Ev}"
            expected = a @ v  # (Ev,)
            a_before, v_before = a.copy(), v.copy()
            got = _as_array(label, context(a, v))
            _unchanged(f"the weights given to {label}", a_before, a)
            _unchanged(f"the values given to {label}", v_before, v)
            if got.shape == expected.shape:
                if np.allclose(got, v.mean(axis=0)):
                    raise AssertionError(f"{label} is the plain mean of the values: weight each value by a_j")
                if np.allclose(got, v.sum(axis=0)):
                    raise AssertionError(f"{label} is the plain sum of the values: weight each value by a_j")
                if np.allclose(got, v[a.argmax()]):
                    raise AssertionError(
                        f"{label} is the value of the largest weight alone: that is hard attention (chapter 4). "
                        f"Soft attention blends every value, c = sum_j a_j v_j"
                    )
                if S == Ev and np.allclose(got, v @ a):
                    raise AssertionError(
                        f"{label}: you used the values transposed (V @ a, or a @ V.T), which only runs because "
                        f"S = Ev here: row j of V is the value v_j, so c = a @ V"
                    )
            if got.shape == (S, Ev):
                raise AssertionError(
                    f"{label} has shape (S, Ev) = {(S, Ev)}: you weighted each value (a[:, None] * V) but did not "
                    f"sum over the keys: add .sum(axis=0), or write a @ V"
                )
            if got.shape == (S,) and S != Ev:
                raise AssertionError(
                    f"{label} has shape (S,) = ({S},) but should be (Ev,) = ({Ev},): "
                    "sum over the keys (axis 0 of values), one number per value feature"
                )
            _compare(label, got, expected, legend=" (Ev,)")
    _say("context: correct: the weighted sum of the values.")


def _check_attention_case(attention: Callable, q: np.ndarray, k: np.ndarray, v: np.ndarray, label: str) -> None:
    expected_c, expected_a = reference.scaled_dot_product_attention(q, k, v)
    before = [x.copy() for x in (q, k, v)]
    with np.errstate(all="ignore"):
        result = attention(q, k, v)
    for name, old, new in zip(("Q", "K", "V"), before, (q, k, v)):
        _unchanged(f"{name}, given to attention{label},", old, new)
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError(f"attention{label} must return a pair (context, weights), got {type(result).__name__}")
    c, a = (_as_array(f"attention{label}", r) for r in result)
    L, S = expected_a.shape
    if a.shape == expected_a.shape:
        if not np.all(np.isfinite(a)):
            raise AssertionError(
                f"weights{label} contain inf or NaN: these scores are large, and exp overflows. Use your stable "
                f"softmax of exercise 1, which subtracts each row's maximum"
            )
        if np.allclose(a.sum(axis=0), 1.0) and not np.allclose(a.sum(axis=1), 1.0):
            raise AssertionError(
                f"weights{label}: each column sums to 1, but each row (one query) should: "
                f"softmax over the keys, axis=-1"
            )
        if np.isclose(a.sum(), 1.0) and not np.allclose(a.sum(axis=1), 1.0):
            raise AssertionError(
                f"weights{label}: the whole matrix sums to 1, but each row (one query) should: normalise each "
                f"row over the keys, axis=-1 with keepdims=True"
            )
        if np.allclose(a, 1.0 / S) and not np.allclose(expected_a, 1.0 / S):
            raise AssertionError(f"weights{label} are uniform (1/S everywhere): the scores are not used")
        naive_k = q @ k if q.shape[1] == k.shape[0] else None  # K not transposed (runs only when E == S)
        if naive_k is not None and np.allclose(a, reference.softmax(naive_k / np.sqrt(q.shape[1]))):
            raise AssertionError(f"weights{label}: you multiplied Q by K, not by K transposed (Q @ K.T)")
        _scale_hints(f"weights{label}", a, q, k, expected_a)
    _compare(f"weights{label}", a, expected_a, legend=" (L, S): one row per query, one column per key")
    if c.shape == expected_c.shape and np.allclose(c, np.broadcast_to(v.mean(axis=0), c.shape)):
        raise AssertionError(f"context{label} is the mean of the values for every query: use the weights, A @ V")
    if c.shape == expected_c.shape and k.shape == v.shape and np.allclose(c, expected_a @ k):
        raise AssertionError(f"context{label} is the weighted sum of the *keys*: the keys only score; the "
                             f"context blends the values, A @ V")
    _compare(f"context{label}", c, expected_c, legend=" (L, Ev): one row per query")


@_reports_not_attempted
def check_attention(attention: Callable) -> None:
    """Exercise: C, A = attention(Q, K, V) with A = softmax(Q Kᵀ / sqrt(E)) (L, S) and C = A V (L, Ev)."""
    attention = _own_work(
        "attention", attention,
        _lib.attention.scaled_dot_product_attention,
        _lib.reference.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention,
        _lib.attention.attend,
    )
    with _attempt("attention"):
        q, k, v = _attention_inputs(3, 2, 5, 4, 3)
        _check_attention_case(attention, q, k, v, " for L=2, S=5, E=4, Ev=3")
        q, k, v = _attention_inputs(4, 4, 4, 4, 4)  # square: a missing transpose still runs
        _check_attention_case(attention, q, k, v, " for L=S=E=Ev=4")
        q, k, v = _attention_inputs(8, 3, 7, 6, 2)  # another E: a scale typed in by hand fails
        _check_attention_case(attention, q, k, v, " for L=3, S=7, E=6, Ev=2")
    _say("attention: correct: A = softmax(Q Kᵀ / √E) row by row, C = A V.")


# ---------------------------------------------------------------- questions and an experiment


@_reports_not_attempted
def check_temperature_limits(answer: Callable[[], object]) -> None:
    """Question: every score multiplied by beta, beta -> 0 (and all keys equal): what are the weights?"""
    _check_choice(
        "Exercise 5 (beta -> 0)", answer, "b",
        "beta·e_i -> 0 for every key, and exp(0) = 1 for each of them, so every weight tends to 1/S: the "
        "context becomes the plain mean of the values, whatever the query. Keys that are all equal give "
        "equal scores, and the same uniform weights at any beta.",
        {
            "a": "that is the other limit, beta -> infinity, where the largest score takes all the weight. As "
                 "beta -> 0 the differences between the scores shrink to nothing.",
            "c": "the weights are a softmax, so they always sum to 1: they cannot all tend to 0. Each "
                 "exp(beta·e_i) tends to exp(0) = 1, not to 0.",
            "d": "the softmax is unchanged by *adding* a constant to every score, not by *multiplying* them: "
                 "the factor beta scales the differences between the scores, and the weights with them.",
        },
    )


@_reports_not_attempted
def check_why_subtract_the_max(answer: Callable[[], object]) -> None:
    """Question: why the stable softmax subtracts the maximum, not the mean (or the minimum)."""
    _check_choice(
        "Exercise 6 (why the maximum)", answer, "c",
        "after subtracting the maximum every exponent is at most 0, so nothing overflows, and the largest "
        "term is exactly e^0 = 1, so the sum is at least 1 and never 0/0. Any constant cancels in the "
        "quotient; only the maximum guarantees both.",
        {
            "a": "the mean does not bound the exponents: for [1000, -1000, 0] the mean is 0 and exp(1000) "
                 "still overflows. Only the maximum puts every exponent at or below 0.",
            "b": "subtracting a constant changes nothing mathematically: the factor e^(-m) cancels between the "
                 "numerator and the denominator, whichever m you take. The weights are exactly as sharp.",
            "d": "exp is defined for every real number: exp of a negative number is a small positive number, "
                 "never NaN. NaN comes from inf/inf or 0/0.",
        },
    )


def _sharpening_reference(Q: np.ndarray, K: np.ndarray, threshold: float, *, scale: bool = True,
                          reduce: Callable = np.min, first: int = 1, axis: int = -1) -> int:
    """The smallest integer beta >= first at which ``reduce`` of the rows' largest weights reaches ``threshold``."""
    scores = Q @ K.T / (np.sqrt(Q.shape[-1]) if scale else 1.0)  # (L, S)
    for beta in range(first, 10_000):
        if reduce(reference.softmax(beta * scores, axis=axis).max(axis=-1)) >= threshold:
            return beta
    return -1


_CHAPTER_KEYS = np.array([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.5], [0.5, 0.0, 0.0, 1.0]])
_CHAPTER_QUERIES = np.array([[1.2, 0.2, 0.6, 0.0], [0.2, 1.6, 0.0, 0.4], [0.4, 0.0, 0.2, 1.5]])


@_reports_not_attempted
def check_sharpening_beta(sharpening_beta: Callable) -> None:
    """Experiment: ``sharpening_beta(Q, K, threshold)``, the smallest integer beta >= 1 at which every query's
    largest weight in softmax(beta · Q Kᵀ / sqrt(E)) reaches ``threshold``."""
    with _attempt("sharpening_beta"):
        rng = _rng(5)
        cases = (
            ("the chapter's queries and keys, threshold 0.99", _CHAPTER_QUERIES, _CHAPTER_KEYS, 0.99),
            ("random Q (4, 6) and K (7, 6), threshold 0.95", rng.normal(size=(4, 6)), rng.normal(size=(7, 6)), 0.95),
            ("the chapter's queries and keys, threshold 0.6", _CHAPTER_QUERIES, _CHAPTER_KEYS, 0.6),
        )
        for what, Q, K, threshold in cases:
            label = f"sharpening_beta for {what}"
            before = (Q.copy(), K.copy())
            got = _number(label, sharpening_beta(Q, K, threshold))
            _unchanged(f"Q, given to {label},", before[0], Q)
            _unchanged(f"K, given to {label},", before[1], K)
            expected = _sharpening_reference(Q, K, threshold)
            wrong = {
                "the scores were not divided by sqrt(E): beta multiplies the chapter's *scaled* scores, "
                "beta · Q Kᵀ / sqrt(E)": _sharpening_reference(Q, K, threshold, scale=False),
                "you stopped when the *sharpest* row reached the threshold: every query's largest weight must "
                "reach it, so take the smallest of the rows' maxima (min over the rows)":
                    _sharpening_reference(Q, K, threshold, reduce=np.max),
                "you averaged the rows' largest weights: every query's largest weight must reach the "
                "threshold, so take the smallest of them": _sharpening_reference(Q, K, threshold, reduce=np.mean),
                "that is the last beta *below* the threshold: return the first one at which it is reached":
                    expected - 1,
                "the softmax ran over the queries (axis 0): each query's weights over the keys are a row, "
                "axis=-1": _sharpening_reference(Q, K, threshold, axis=0),
            }
            if got != expected:
                hints = [hint for hint, value in wrong.items() if got == value != expected]
                if hints:  # two mistakes may give the same beta here: name each
                    raise AssertionError(f"{label} is {got:g} but should be {expected}: " + " Or: ".join(hints))
                raise AssertionError(
                    f"{label} is {got:g} but should be {expected}: try beta = 1, 2, 3, ... in turn and stop at "
                    f"the first at which the smallest of the rows' largest weights is >= threshold"
                )
    chapter = _sharpening_reference(_CHAPTER_QUERIES, _CHAPTER_KEYS, 0.99)
    _say(f"sharpening_beta: correct: the chapter's three queries each put 99% of their weight on one key "
         f"from beta = {chapter} on: a soft lookup turned into a hard one.")
