r"""NumPy reference implementations, from first principles (no torch).

The torch modules are tested against these to 1e-6, and chapter 0 builds
attention by hand with them. Shapes as in :mod:`attention_course.attention`:
query (..., L, E), key (..., S, E), value (..., S, Ev), mask bool (L, S) or
with as many dims as the scores, ``True`` = may attend.

Note: NumPy has no ``np.softmax``; :func:`softmax` below is the stable one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "masked_softmax", "dot_scores", "scaled_dot_product_attention", "causal_mask"]


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ")"


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    r"""Stable softmax: :math:`e^{x_j - \max x} / \sum_{j'} e^{x_{j'} - \max x}` along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def masked_softmax(scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis where ``mask`` is True; all-masked rows give zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    if mask is None:
        return softmax(scores)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be bool (True = may attend), got dtype {mask.dtype}")
    if mask.ndim not in (2, scores.ndim) or any(m not in (1, s) for m, s in zip(mask.shape[::-1], scores.shape[::-1])):
        raise ValueError(f"mask {_shape(mask)} does not line up with the scores {_shape(scores)}")
    x = np.where(mask, scores, -np.inf)
    row_max = x.max(axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    e = np.exp(x - row_max)
    denom = e.sum(axis=-1, keepdims=True)
    return e / np.where(denom > 0, denom, 1.0)


def dot_scores(query: np.ndarray, key: np.ndarray) -> np.ndarray:
    """q·k for every query/key pair: (..., L, E), (..., S, E) -> (..., L, S)."""
    query, key = np.asarray(query, dtype=np.float64), np.asarray(key, dtype=np.float64)
    if query.ndim < 2 or key.ndim < 2 or query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query (..., L, E) and key (..., S, E) must share E, got {_shape(query)} and {_shape(key)}")
    return query @ np.swapaxes(key, -1, -2)


def scaled_dot_product_attention(
    query: np.ndarray, key: np.ndarray, value: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""softmax(Q Kᵀ / √E) V in float64; returns (output (..., L, Ev), weights (..., L, S))."""
    value = np.asarray(value, dtype=np.float64)
    scores = dot_scores(query, key) / np.sqrt(np.shape(query)[-1])  # (..., L, S)
    if value.ndim < 2 or value.shape[-2] != scores.shape[-1]:
        raise ValueError(f"value must be (..., S, Ev) with S={scores.shape[-1]}, got {_shape(value)}")
    weights = masked_softmax(scores, mask)  # (..., L, S)
    return weights @ value, weights


def causal_mask(L: int, S: int | None = None) -> np.ndarray:
    """bool (L, S), True where key j <= query i (top-left aligned)."""
    return np.tril(np.ones((L, L if S is None else S), dtype=bool))
