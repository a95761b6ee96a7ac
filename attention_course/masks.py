"""Boolean attention masks. Convention: ``True`` = may attend.

This is the convention of ``torch.nn.functional.scaled_dot_product_attention``'s
boolean ``attn_mask`` and the opposite of ``torch.nn.MultiheadAttention``'s
``attn_mask``/``key_padding_mask`` (where ``True`` means *may not* attend):
convert with ``~mask``.

Taught in chapter 5 (self-attention and masks); the convention is in
``book/notation.md``.
"""

from __future__ import annotations

import torch

from ._validate import require_tensor, shape_str

__all__ = ["causal_mask", "padding_mask"]


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def causal_mask(L: int, S: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    r"""Mask that lets query ``i`` attend only to keys ``j <= i``.

    .. math:: M_{ij} = [\, j \le i \,]

    for query i and key j, both 0-based as in the code.

    Top-left aligned, like PyTorch's ``is_causal=True``: when ``S != L`` row ``i``
    still sees keys ``0..i``.

    Args:
        L: number of queries.
        S: number of keys (default ``L``).

    Returns:
        bool tensor (L, S); ``True`` = may attend.

    Equivalent to ``torch.ones(L, S, dtype=torch.bool).tril()``.
    """
    L = _positive_int("L", L)
    S = L if S is None else _positive_int("S", S)
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    r"""Mask that hides the padding at the end of each sequence of a batch.

    .. math:: M_{nj} = [\, j < \text{lengths}_n \,]

    for sequence n of the batch and 0-based key position j.

    Args:
        lengths: int tensor (B,), each in 0..S: the true length of each sequence.
        S: padded length.

    Returns:
        bool tensor (B, S); ``True`` = a real token (may attend).
        Use ``mask[:, None, :]`` against (B, L, S) scores and
        ``mask[:, None, None, :]`` against (B, H, L, S) scores.
    """
    require_tensor("lengths", lengths)
    S = _positive_int("S", S)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (B,), got shape {shape_str(lengths)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise ValueError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if lengths.numel() and (lengths.min() < 0 or lengths.max() > S):
        raise ValueError(
            f"lengths must lie in 0..S={S}, got min {int(lengths.min())} and max {int(lengths.max())}"
        )
    positions = torch.arange(S, device=lengths.device)  # (S,)
    return positions[None, :] < lengths[:, None]  # (B, S)


__all__ += ["sliding_window_mask"]


def sliding_window_mask(
    L: int, window: int, S: int | None = None, *, causal: bool = True, device: torch.device | str | None = None
) -> torch.Tensor:
    r"""Mask that lets query ``i`` attend only to the keys within ``window`` positions of it.

    .. math::
        M_{ij} = [\, 0 \le i - j < w \,]\ \text{(causal)},\qquad
        M_{ij} = [\, |i - j| < w \,]\ \text{(not causal)}

    The local (banded) attention of sparse Transformers (Tay et al. 2022's
    survey, "fixed patterns"): each row allows at most ``window`` keys when
    causal (itself and the ``window - 1`` before it) and at most
    ``2 * window - 1`` when not, so attention costs O(L w) instead of O(L S)
    once the masked blocks are skipped. Top-left aligned like
    :func:`causal_mask`: query ``i`` sits at key position ``i`` also when S != L.

    Args:
        L: number of queries.
        window: w >= 1; ``window=1`` is the diagonal, and a causal window of at
            least S is :func:`causal_mask`.
        S: number of keys (default ``L``).
        causal: look back only (True) or both ways (False).

    Returns:
        bool tensor (L, S); ``True`` = may attend. Taught in chapter 11.

    Equivalent to ``torch.ones(L, S, dtype=torch.bool).tril().triu(1 - window)`` when causal.
    """
    L = _positive_int("L", L)
    window = _positive_int("window", window)
    S = L if S is None else _positive_int("S", S)
    offset = torch.arange(L, device=device)[:, None] - torch.arange(S, device=device)[None, :]  # (L, S): i - j
    if causal:
        return (offset >= 0) & (offset < window)  # (L, S)
    return offset.abs() < window  # (L, S)
