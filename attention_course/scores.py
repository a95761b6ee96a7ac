r"""The five scoring rules (compatibility functions) between queries and keys.

Each takes query (..., L, Eq) and key (..., S, Ek) and returns raw scores
(..., L, S), one per (query, key) pair, before any softmax:

=============  ===========================================  ===================
rule           score(q, k)                                  proposed in
=============  ===========================================  ===================
dot            :math:`q\, k^\top`                           Luong et al. 2015
general        :math:`q\, W k^\top`                         Luong et al. 2015
scaled dot     :math:`q\, k^\top / \sqrt{d_k}`              Vaswani et al. 2017
concat         :math:`\tanh([q; k]\, W)\, v`                Luong et al. 2015
additive       :math:`\tanh(q W_q + k W_k)\, v`             Bahdanau et al. 2014
=============  ===========================================  ===================

Vectors are rows and multiply the weights from the left (``book/notation.md``):
W is (Eq, Ek) for general, (Eq + Ek, A) for concat, and W_q (Eq, A), W_k (Ek, A),
v (A,) for additive; :math:`[q; k]` is the query and the key joined into one row.
Additive is concat with W cut into two blocks of rows,
:math:`W = \begin{bmatrix} W_q \\ W_k \end{bmatrix}`, so that
:math:`[q; k]\, W = q W_q + k W_k`. The functions take the parameters
explicitly, the concat and additive ones in ``nn.Linear``'s layout
(``weight`` is the transpose of the W written here); the ``nn.Module``
classes own them. Taught in chapter 3 (scoring rules).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_qkv, check_same_features, require_float, shape_str

__all__ = [
    "dot_scores",
    "scaled_dot_scores",
    "general_scores",
    "concat_scores",
    "additive_scores",
    "DotScore",
    "ScaledDotScore",
    "GeneralScore",
    "ConcatScore",
    "AdditiveScore",
    "make_score",
    "SCORE_RULES",
]


def dot_scores(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    r"""Dot-product scores :math:`q\, k^\top`.

    Shapes: query (..., L, E), key (..., S, E) -> (..., L, S).

    Equivalent to ``query @ key.transpose(-2, -1)``.
    """
    check_qkv(query, key)
    check_same_features(query, key)
    return query @ key.transpose(-2, -1)  # (..., L, S)


def scaled_dot_scores(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    r"""Scaled dot-product scores :math:`q\, k^\top / \sqrt{d_k}`.

    For q and k with independent unit-variance entries, :math:`q\, k^\top` has
    variance :math:`d_k`; dividing by :math:`\sqrt{d_k}` brings it back to 1 and
    keeps the softmax out of saturation. It changes no computational cost:
    the query is scaled before the product, L*E multiplications beside the
    product's L*S*E multiply-adds.

    Shapes: query (..., L, E), key (..., S, E) -> (..., L, S).
    ``scale`` defaults to ``1 / sqrt(E)``.
    """
    check_qkv(query, key)
    check_same_features(query, key)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return (query * scale) @ key.transpose(-2, -1)  # (..., L, S); scaling Q costs L*E, not L*S


def general_scores(query: torch.Tensor, key: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""General (bilinear) scores :math:`q\, W k^\top`.

    Shapes: query (..., L, Eq), key (..., S, Ek), weight W (Eq, Ek) -> (..., L, S).

    Equivalent to ``query @ weight @ key.transpose(-2, -1)``.
    """
    check_qkv(query, key)
    require_float("weight", weight)
    if weight.shape != (query.shape[-1], key.shape[-1]):
        raise ValueError(
            f"weight must be (Eq, Ek) = ({query.shape[-1]}, {key.shape[-1]}), got {shape_str(weight)}"
        )
    return (query @ weight) @ key.transpose(-2, -1)  # (..., L, S)


def _check_v(v: torch.Tensor, hidden: int) -> None:
    require_float("v", v)
    if v.shape != (hidden,):
        raise ValueError(f"v must be (A,) with A={hidden}, got {shape_str(v)}")


def concat_scores(query: torch.Tensor, key: torch.Tensor, weight: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Concat scores :math:`\tanh([q; k]\, W)\, v`.

    Every (query, key) pair is joined into one row, passed through one linear
    layer and a tanh, and reduced to a number by ``v``.

    Shapes: query (..., L, Eq), key (..., S, Ek), weight (A, Eq + Ek), v (A,)
    -> (..., L, S). ``weight`` is :math:`W^\top`, W (Eq + Ek, A) in
    ``nn.Linear``'s layout. Builds an (..., L, S, Eq + Ek) tensor: fine for
    teaching, wasteful at scale (see :func:`additive_scores`).
    """
    check_qkv(query, key)
    require_float("weight", weight)
    Eq, Ek = query.shape[-1], key.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != Eq + Ek:
        raise ValueError(f"weight must be (A, Eq + Ek) = (A, {Eq + Ek}), got {shape_str(weight)}")
    _check_v(v, weight.shape[0])
    L, S = query.shape[-2], key.shape[-2]
    q = query.unsqueeze(-2).expand(*query.shape[:-1], S, Eq)  # (..., L, S, Eq)
    k = key.unsqueeze(-3).expand(*key.shape[:-2], L, S, Ek)  # (..., L, S, Ek)
    pairs = torch.cat([q, k], dim=-1)  # (..., L, S, Eq + Ek)
    return torch.tanh(pairs @ weight.T) @ v  # (..., L, S): [q; k] W, tanh, then v


def additive_scores(
    query: torch.Tensor, key: torch.Tensor, weight_q: torch.Tensor, weight_k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    r"""Additive (Bahdanau) scores :math:`\tanh(q W_q + k W_k)\, v`.

    The same function as :func:`concat_scores` with W cut into the blocks of
    rows :math:`W_q` (Eq, A) and :math:`W_k` (Ek, A), but the two projections
    are computed once per query and once per key and only their sum is formed
    per pair.

    Shapes: query (..., L, Eq), key (..., S, Ek), weight_q (A, Eq),
    weight_k (A, Ek), v (A,) -> (..., L, S). ``weight_q`` and ``weight_k`` are
    :math:`W_q^\top` and :math:`W_k^\top`, in ``nn.Linear``'s layout.
    """
    check_qkv(query, key)
    require_float("weight_q", weight_q)
    require_float("weight_k", weight_k)
    if weight_q.dim() != 2 or weight_q.shape[1] != query.shape[-1]:
        raise ValueError(f"weight_q must be (A, Eq) with Eq={query.shape[-1]}, got {shape_str(weight_q)}")
    if weight_k.shape != (weight_q.shape[0], key.shape[-1]):
        raise ValueError(
            f"weight_k must be (A, Ek) = ({weight_q.shape[0]}, {key.shape[-1]}), got {shape_str(weight_k)}"
        )
    _check_v(v, weight_q.shape[0])
    q = query @ weight_q.T  # (..., L, A): q W_q
    k = key @ weight_k.T  # (..., S, A): k W_k
    return torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3)) @ v  # (..., L, S, A) -> (..., L, S)


class DotScore(nn.Module):
    """:func:`dot_scores` as a module (no parameters)."""

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return dot_scores(query, key)


class ScaledDotScore(nn.Module):
    """:func:`scaled_dot_scores` as a module (no parameters)."""

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return scaled_dot_scores(query, key)


class GeneralScore(nn.Module):
    """:func:`general_scores` with a learned W (Eq, Ek): Eq·Ek parameters."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(key_size)
        self.weight = nn.Parameter(torch.empty(query_size, key_size).uniform_(-bound, bound))

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return general_scores(query, key, self.weight)


class ConcatScore(nn.Module):
    """:func:`concat_scores` with learned W (Eq + Ek, A) and v (A,); ``proj.weight`` (A, Eq + Ek) is W transposed."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(query_size + key_size, hidden_size, bias=False)
        self.v = nn.Parameter(torch.empty(hidden_size).uniform_(-1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size)))

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return concat_scores(query, key, self.proj.weight, self.v)


class AdditiveScore(nn.Module):
    r""":func:`additive_scores` with learned W_q (Eq, A), W_k (Ek, A) and v (A,).

    ``proj_q(query)`` is :math:`q W_q`: ``proj_q.weight`` (A, Eq) is :math:`W_q^\top`, as ``nn.Linear`` stores it.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.proj_q = nn.Linear(query_size, hidden_size, bias=False)
        self.proj_k = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Parameter(torch.empty(hidden_size).uniform_(-1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size)))

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return additive_scores(query, key, self.proj_q.weight, self.proj_k.weight, self.v)


SCORE_RULES = ("dot", "general", "scaled_dot", "concat", "additive")


def make_score(rule: str, query_size: int, key_size: int, hidden_size: int | None = None) -> nn.Module:
    """The scoring module for ``rule`` (one of :data:`SCORE_RULES`).

    ``dot`` and ``scaled_dot`` need ``query_size == key_size``; ``concat`` and
    ``additive`` need ``hidden_size`` (default ``key_size``).
    """
    if rule not in SCORE_RULES:
        raise ValueError(f"rule must be one of {SCORE_RULES}, got {rule!r}")
    if rule in ("dot", "scaled_dot") and query_size != key_size:
        raise ValueError(f"{rule} scores need query_size == key_size, got {query_size} and {key_size}")
    hidden = key_size if hidden_size is None else hidden_size
    if rule == "dot":
        return DotScore()
    if rule == "scaled_dot":
        return ScaledDotScore()
    if rule == "general":
        return GeneralScore(query_size, key_size)
    if rule == "concat":
        return ConcatScore(query_size, key_size, hidden)
    return AdditiveScore(query_size, key_size, hidden)
