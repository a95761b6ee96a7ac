"""Chapter 0, attention in one page: softmax, weights, context, attention.

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
)

__all__ = [
    "check_softmax",
    "check_attention_weights",
    "check_context",
    "check_attention",
]


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
        _compare("softmax of a vector", softmax(x1.copy()), reference.softmax(x1))

        x2 = _rng(0).normal(size=(3, 5))
        x2_before = x2.copy()
        got = _as_array("softmax of a (3, 5) matrix", softmax(x2))
        _unchanged("the input", x2_before, x2)
        if got.shape == x2.shape and np.allclose(got.sum(axis=0), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                "softmax of a (3, 5) matrix: the columns sum to 1 but the rows should: normalise over the "
                "last axis (axis=-1, with keepdims=True), not axis 0"
            )
        if got.shape == x2.shape and np.isclose(got.sum(), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                "softmax of a (3, 5) matrix: the whole matrix sums to 1 but each row should: "
                "take the max and the sum along axis=-1 with keepdims=True"
            )
        _compare("softmax of a (3, 5) matrix", got, reference.softmax(x2))

        extremes = (
            ([1e4, -1e4, 0.0], "subtract the *largest* score (not the smallest or the mean), so that every "
                               "exponent is at most 0"),
            ([1000.0, 999.0, 998.0], "exp(1000) overflows. Subtract the largest score first; "
                                     "softmax(x - max(x)) equals softmax(x)"),
        )
        for values, hint in extremes:
            x = np.array(values)
            label = f"softmax({values})"
            with np.errstate(all="ignore"):
                got = _as_array(label, softmax(x.copy()))
            if not np.all(np.isfinite(got)):
                raise AssertionError(f"{label} gives inf or NaN: {hint}")
            _compare(label, got, reference.softmax(x))
    _say("softmax: correct, stable for large scores, and row-wise on matrices.")


def _attention_inputs(seed: int, L: int, S: int, E: int, Ev: int, scale: float = 0.6):
    rng = _rng(seed)
    q = rng.normal(scale=scale, size=(L, E))
    k = rng.normal(scale=scale, size=(S, E))
    v = rng.normal(size=(S, Ev))
    return q, k, v


def _scale_hints(what: str, got: np.ndarray, q: np.ndarray, k: np.ndarray, expected: np.ndarray) -> None:
    """Recognise the usual scaling mistakes before the generic comparison."""
    E = q.shape[-1]
    scores = q @ k.T
    variants = {
        "you did not divide the scores by sqrt(E)": reference.softmax(scores),
        "you divided the scores by E instead of sqrt(E)": reference.softmax(scores / E),
        "you multiplied the scores by sqrt(E) instead of dividing": reference.softmax(scores * np.sqrt(E)),
    }
    if got.shape != expected.shape:
        return
    for hint, wrong in variants.items():
        wrong = wrong.reshape(expected.shape)
        if not np.allclose(wrong, expected, atol=1e-3) and np.allclose(got, wrong, atol=1e-6):
            raise AssertionError(f"{what}: {hint} (E={E})")


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
        q, k, _ = _attention_inputs(1, 1, 5, 8, 3)
        q = q[0]  # (E,)
        expected = reference.softmax(k @ q / np.sqrt(q.shape[0]))  # (S,)
        got = _as_array("attention_weights(query, keys)", attention_weights(q.copy(), k.copy()))
        if got.shape == expected.shape and not np.isclose(got.sum(), 1.0):
            raise AssertionError(
                f"attention_weights(query, keys) sums to {got.sum():.4g}, not 1: apply a softmax to the scores"
            )
        _scale_hints("attention_weights(query, keys)", got, q[None, :], k, expected)
        _compare("attention_weights(query, keys)", got, expected, legend=" (S,), one weight per key")
    _say("attention_weights: correct: scaled scores, softmax over the keys.")


@_reports_not_attempted
def check_context(context: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the context c = sum_j a_j v_j for weights (S,) and values (S, Ev)."""
    with _attempt("context"):
        rng = _rng(2)
        a = reference.softmax(rng.normal(size=5))  # (S,)
        v = rng.normal(size=(5, 3))  # (S, Ev)
        expected = a @ v  # (Ev,)
        got = _as_array("context(weights, values)", context(a.copy(), v.copy()))
        if got.shape == expected.shape and np.allclose(got, v.mean(axis=0)):
            raise AssertionError("context(weights, values) is the plain mean of the values: weight each value by a_j")
        if got.shape == expected.shape and np.allclose(got, v.sum(axis=0)):
            raise AssertionError("context(weights, values) is the plain sum of the values: weight each value by a_j")
        if got.shape == (5,):
            raise AssertionError(
                "context(weights, values) has shape (S,) = (5,) but should be (Ev,) = (3,): "
                "sum over the keys (axis 0 of values), one number per value feature"
            )
        _compare("context(weights, values)", got, expected, legend=" (Ev,)")
    _say("context: correct: the weighted sum of the values.")


def _check_attention_case(attention: Callable, q: np.ndarray, k: np.ndarray, v: np.ndarray, label: str) -> None:
    expected_c, expected_a = reference.scaled_dot_product_attention(q, k, v)
    result = attention(q.copy(), k.copy(), v.copy())
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError(f"attention{label} must return a pair (context, weights), got {type(result).__name__}")
    c, a = (_as_array(f"attention{label}", r) for r in result)
    L, S = expected_a.shape
    if a.shape == expected_a.shape:
        if np.allclose(a.sum(axis=0), 1.0) and not np.allclose(a.sum(axis=1), 1.0):
            raise AssertionError(
                f"weights{label}: each column sums to 1, but each row (one query) should: "
                f"softmax over the keys, axis=-1"
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
    _say("attention: correct: A = softmax(Q Kᵀ / √E) row by row, C = A V.")
