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

    .. math:: M_{bj} = [\, j < \text{lengths}_b \,]

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
