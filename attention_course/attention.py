r"""Softmax, masked softmax, soft (scaled dot-product) attention and hard attention.

Attention in three steps: score every key against the query, turn the scores
into weights with a softmax, and return the weighted sum of the values.
Taught in chapter 0 (the three steps), chapter 2 (soft attention), chapter 4
(hard attention) and chapter 5 (masks).
"""

from __future__ import annotations

import torch

from ._validate import check_mask, check_qkv, check_same_features, require_float, shape_str
from .scores import scaled_dot_scores

__all__ = ["softmax", "masked_softmax", "attend", "scaled_dot_product_attention", "hard_attention"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Numerically stable softmax along ``dim``.

    .. math:: \mathrm{softmax}(x)_j = \frac{e^{x_j - m}}{\sum_{j'} e^{x_{j'} - m}},\quad m = \max_{j'} x_{j'}

    Subtracting the maximum changes nothing mathematically and keeps every
    exponent at most :math:`e^0 = 1`, so scores of 1e4 do not overflow.
    float16/bfloat16 inputs are computed in float32 and cast back.

    Equivalent to ``torch.softmax(x, dim)``.
    """
    require_float("x", x)
    work = x.float() if x.dtype in _LOW_PRECISION else x
    z = work - work.amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return (e / e.sum(dim=dim, keepdim=True)).to(x.dtype)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    r"""Softmax over the positions the mask allows; masked positions get weight 0.

    .. math:: a_j = \frac{M_j\, e^{z_j - m}}{\sum_{j'} M_{j'}\, e^{z_{j'} - m}},\quad m = \max_{j' : M_{j'}} z_{j'}

    for one row of scores z and mask M (1 = may attend).

    A row whose positions are all masked gets all-zero weights (not NaN, and
    not uniform weights over padding).

    Args:
        scores: (..., L, S) float.
        mask: bool, (L, S) or with as many dims as ``scores``, each dim 1 or
            equal; ``True`` = may attend. ``None`` = no mask.
        dim: the axis to normalise; the key axis ``-1`` unless you know why not.
    """
    require_float("scores", scores)
    if mask is None:
        return softmax(scores, dim=dim)
    if scores.dim() < 2:
        raise ValueError(f"scores must have at least 2 dims (..., L, S) to be masked, got {shape_str(scores)}")
    check_mask(mask, scores.shape)
    work = scores.float() if scores.dtype in _LOW_PRECISION else scores
    work = work.masked_fill(~mask, float("-inf"))  # new tensor; input untouched
    row_max = work.amax(dim=dim, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))  # all-masked rows
    e = torch.exp(work - row_max)  # exp(-inf) = 0 at masked positions
    denom = e.sum(dim=dim, keepdim=True)
    weights = e / torch.where(denom > 0, denom, torch.ones_like(denom))  # 0 / 1 = 0 on all-masked rows
    return weights.to(scores.dtype)


def attend(scores: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Steps two and three of attention for any scoring rule: softmax, weighted sum.

    .. math:: a = \mathrm{softmax}(\text{scores}),\qquad \text{output} = a\, V

    Shapes: scores (..., L, S), value (..., S, Ev), mask as in
    :func:`masked_softmax` -> output (..., L, Ev), weights (..., L, S).
    """
    require_float("scores", scores)
    require_float("value", value)
    if scores.dim() < 2 or value.dim() < 2:
        raise ValueError(f"scores (..., L, S) and value (..., S, Ev) need 2+ dims, got {shape_str(scores)} and {shape_str(value)}")
    if scores.shape[:-2] != value.shape[:-2] or scores.shape[-1] != value.shape[-2]:
        raise ValueError(
            f"scores {shape_str(scores)} (..., L, S) and value {shape_str(value)} (..., S, Ev) "
            f"must agree on the leading dims and on S"
        )
    weights = masked_softmax(scores, mask)  # (..., L, S)
    return weights @ value, weights  # (..., L, Ev), (..., L, S)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Scaled dot-product attention, returning the output and the weights.

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

    Shapes:
        query (..., L, E), key (..., S, E), value (..., S, Ev);
        mask bool, (L, S) or with as many dims as (..., L, S), each dim 1 or
        equal, ``True`` = may attend;
        output (..., L, Ev), weights (..., L, S).

    ``bias``, if given, is a float tensor added to the scaled scores before the
    softmax (an additive position bias such as ALiBi's, :func:`~attention_course.positional.alibi_bias`),
    of shape (L, S) or with as many dims as (..., L, S), each dim 1 or equal;
    finite or -inf. PyTorch passes such a bias as a float ``attn_mask``.

    A query whose keys are all masked gets zero weights and a zero output.
    Matches ``torch.nn.functional.scaled_dot_product_attention`` (boolean
    ``attn_mask``) on rows that have at least one key to attend to.

    Equivalent to::

        scores = query @ key.transpose(-2, -1) * scale     # (..., L, S)
        scores = scores.masked_fill(~mask, -inf)
        weights = scores.softmax(-1).nan_to_num(0.0)       # (..., L, S)
        output = weights @ value                           # (..., L, Ev)

    Taught in chapters 0, 3 and 5.
    """
    check_qkv(query, key, value)
    check_same_features(query, key)
    scores = scaled_dot_scores(query, key, scale)  # (..., L, S)
    if bias is not None:
        _check_bias(bias, scores.shape)
        scores = scores + bias  # (..., L, S), broadcast
    weights = masked_softmax(scores, mask)  # (..., L, S)
    return weights @ value, weights  # (..., L, Ev), (..., L, S)


def _check_bias(bias: object, scores_shape: torch.Size) -> None:
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        raise ValueError(f"bias must be a float tensor broadcastable to the scores {tuple(scores_shape)}, got "
                         f"{shape_str(bias) if isinstance(bias, torch.Tensor) else type(bias).__name__}")
    n = len(scores_shape)
    if bias.dim() not in (2, n) or any(b not in (1, s) for b, s in zip(bias.shape[::-1], scores_shape[::-1])):
        raise ValueError(f"bias {shape_str(bias)} must be (L, S) or have {n} dims, each 1 or equal to "
                         f"the scores' {tuple(scores_shape)}")
    if torch.isnan(bias).any() or (bias == float("inf")).any():
        raise ValueError(f"bias {shape_str(bias)} contains NaN or +inf")


def hard_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    k: int = 1,
    mask: torch.Tensor | None = None,
    *,
    sample: bool = False,
    generator: torch.Generator | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Hard attention: pick ``k`` keys instead of weighting all of them.

    The weights are 1 on the chosen keys and 0 elsewhere; the output is the
    mean of the chosen values, ``(weights @ value) / k`` (for ``k = 1``, the
    value of the one chosen key, as in Xu et al. 2015's hard attention).

    - ``sample=False``: the top-k keys by scaled dot-product score.
    - ``sample=True``: k distinct keys sampled from the attention distribution
      ``softmax(scores)``, by the Gumbel-top-k trick (Kool et al. 2019).

    The choice is a step function of the scores, so no gradient reaches the
    query or the keys through it: train it with a score-function (REINFORCE)
    estimator or a relaxation (chapter 4).

    Masked keys are never chosen; a row with fewer than ``k`` allowed keys
    chooses all it has, and a fully masked row chooses none (zero output).

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev), k in 1..S;
    output (..., L, Ev), weights (..., L, S) with entries in {0, 1}.
    """
    check_qkv(query, key, value)
    check_same_features(query, key)
    S = key.shape[-2]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= S:
        raise ValueError(f"k must be an int in 1..S={S}, got {k!r}")
    scores = scaled_dot_scores(query, key, scale).float()  # (..., L, S)
    if mask is not None:
        check_mask(mask, scores.shape)
    if sample:
        logp = torch.log_softmax(scores, dim=-1)  # (..., L, S)
        u = torch.rand(scores.shape, generator=generator, device=scores.device).clamp_(1e-20, 1.0)
        scores = logp - torch.log(-torch.log(u))  # + Gumbel(0, 1) noise
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    top = scores.topk(k, dim=-1).indices  # (..., L, k)
    chosen = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True)  # (..., L, S)
    if mask is not None:
        chosen &= mask.expand_as(chosen)
    weights = chosen.to(value.dtype)  # (..., L, S), 0 or 1
    count = weights.sum(dim=-1, keepdim=True).clamp_min(1)  # (..., L, 1)
    return (weights @ value) / count, weights  # (..., L, Ev), (..., L, S)
