r"""Positional encodings: sinusoidal (fixed), learned, and rotary (RoPE).

Self-attention without positions is permutation-equivariant: shuffle the
tokens and the outputs shuffle the same way. These inject order.

- Sinusoidal (Vaswani et al. 2017):
  :math:`PE_{p,2i} = \sin(p\,\omega_i),\ PE_{p,2i+1} = \cos(p\,\omega_i),\ \omega_i = 10000^{-2i/D}`.
  p is the position value: the token at position 1 gets :math:`PE_0` (row 0
  of the table), the next :math:`PE_1`, and so on. For every offset k there is a
  fixed matrix :math:`M_k` with :math:`PE_{p+k} = M_k\, PE_p`
  (:func:`sinusoidal_shift_matrix`).
- Learned: one trained vector per position (:class:`LearnedPositionalEmbedding`).
- Rotary (Su et al. 2021): rotate each pair of query/key features by the angle
  :math:`p\,\omega_i`, so that :math:`\langle R_p q, R_{p'} k\rangle` depends only
  on :math:`p - p'` (:func:`rotary_embedding`). Here i numbers the pairs of
  features, i = 0..D/2 - 1 (or E/2 - 1).
- ALiBi (Press et al. 2022): nothing added to the tokens; head h adds
  :math:`-m_h\,|p - p'|` to the score of query position p and key position p'
  (:func:`alibi_slopes`, :func:`alibi_bias`).

All batch-first. Taught in chapter 7.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import require_float, shape_str

__all__ = [
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rotary_embedding",
    "alibi_slopes",
    "alibi_bias",
]


def _check_sizes(num_positions: int, d_model: int) -> None:
    for name, n in (("num_positions", num_positions), ("d_model", d_model)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")


def _frequencies(d_model: int, base: float) -> torch.Tensor:
    """omega_i = base^(-2i/D) for i = 0..D/2-1, float64."""
    return base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)


def sinusoidal_encoding(num_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    r"""The fixed sinusoidal position table of Vaswani et al. 2017.

    .. math:: PE_{p,2i} = \sin(p\,\omega_i),\quad PE_{p,2i+1} = \cos(p\,\omega_i),\quad \omega_i = \text{base}^{-2i/D}

    Returns float32 (P, D), P = ``num_positions``, D = ``d_model`` (even): row
    p is :math:`PE_p`, the encoding of position value p = 0..P-1 (0-based, so
    the first token gets row 0). Add it to batch-first input as
    ``x + pe[:T]``: (B, T, D) + (T, D).
    """
    _check_sizes(num_positions, d_model)
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] * _frequencies(d_model, base)  # (P, D/2)
    pe = torch.empty(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()  # (P, D)


def sinusoidal_shift_matrix(k: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    r"""The matrix :math:`M_k` with :math:`PE_{p+k} = M_k\,PE_p` for every position value p.

    The table's rows are taken here as column vectors, ``pe[p + k] == M_k @ pe[p]``;
    in the course's row convention the same map reads :math:`PE_{p+k} = PE_p M_k^\top`.
    Block-diagonal: for each frequency :math:`\omega_i` a 2x2 rotation by
    :math:`k\,\omega_i` acting on the pair (sin, cos). It depends on k, not on p:
    a relative shift is a linear map of the encoding.

    Returns float64 (D, D).
    """
    _check_sizes(1, d_model)
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an int offset, got {k!r}")
    theta = k * _frequencies(d_model, base)  # (D/2,)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    c, s = torch.cos(theta), torch.sin(theta)
    i = torch.arange(0, d_model, 2)
    # sin(a + b) = sin a cos b + cos a sin b ; cos(a + b) = cos a cos b - sin a sin b
    m[i, i], m[i, i + 1] = c, s
    m[i + 1, i], m[i + 1, i + 1] = -s, c
    return m


def _check_batch_first(x: torch.Tensor, d_model: int, max_positions: int) -> None:
    require_float("x", x)
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"x must be batch-first (B, T, D) with D={d_model}, got shape {shape_str(x)}")
    if x.shape[1] > max_positions:
        raise ValueError(f"x has T={x.shape[1]} positions but the encoding covers only {max_positions}")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds :func:`sinusoidal_encoding` to batch-first input (B, T, D)."""

    def __init__(self, max_positions: int, d_model: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_positions, d_model, base), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        P, D = self.pe.shape
        _check_batch_first(x, D, P)
        return x + self.pe[: x.shape[1]].to(x.dtype)  # (B, T, D) + (T, D)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trained vector per position to batch-first input (B, T, D)."""

    def __init__(self, max_positions: int, d_model: int) -> None:
        super().__init__()
        for name, n in (("max_positions", max_positions), ("d_model", d_model)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        self.embedding = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        P, D = self.embedding.weight.shape
        _check_batch_first(x, D, P)
        return x + self.embedding.weight[: x.shape[1]].to(x.dtype)  # (B, T, D) + (T, D)


def rotary_embedding(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> torch.Tensor:
    r"""Rotary position embedding (RoPE): rotate feature pairs by position-dependent angles.

    .. math::
        \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
        \begin{pmatrix} \cos p\omega_i & -\sin p\omega_i \\ \sin p\omega_i & \cos p\omega_i \end{pmatrix}
        \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix},\qquad \omega_i = \text{base}^{-2i/E}

    Apply it to queries and keys (not values) before the dot product:
    :math:`\langle R_p q, R_{p'} k \rangle = \langle q, R_{p'-p}\, k \rangle` depends only on the
    offset. Adjacent pairs (2i, 2i+1) as in Su et al. 2021.

    Shapes: x (..., T, E) with E even; positions (T,) int or float, the
    position values p, default ``0..T-1``. Returns a new tensor of x's shape and dtype.
    """
    require_float("x", x)
    if x.dim() < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must be (..., T, E) with E even, got shape {shape_str(x)}")
    T, E = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(T, device=x.device)
    if not isinstance(positions, torch.Tensor):
        raise ValueError(f"positions must be a (T,) tensor with T={T}, got {type(positions).__name__}")
    if positions.shape != (T,):
        raise ValueError(f"positions must be (T,) with T={T}, got shape {shape_str(positions)}")
    angles = positions.to(torch.float64)[:, None] * _frequencies(E, base).to(x.device)  # (T, E/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, E/2) each
    out = torch.empty_like(x)
    out[..., 0::2] = x_even * cos - x_odd * sin
    out[..., 1::2] = x_even * sin + x_odd * cos
    return out


def alibi_slopes(num_heads: int) -> torch.Tensor:
    r"""ALiBi's head slopes :math:`m_1 > \dots > m_H` (Press et al. 2022): (H,) float32.

    For H a power of two, the geometric sequence :math:`m_h = 2^{-8h/H}`, h = 1..H
    (8 heads: 1/2, 1/4, ..., 1/256). Otherwise the slopes of the largest power of two
    n < H, followed by every other slope of 2n heads, :math:`2^{-4(2h - 1)/n}`,
    until there are H (the rule of the authors' code).
    """
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")

    def power_of_two(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    n = 1 << (num_heads.bit_length() - 1)  # the largest power of two <= H
    slopes = power_of_two(n) + power_of_two(2 * n)[0::2][: num_heads - n]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(num_heads: int, query_len: int, key_len: int) -> torch.Tensor:
    r"""ALiBi's additive score bias :math:`-m_h\,|p - p'|`: (H, L, S) float32.

    Query positions p = 0..L-1, key positions p' = 0..S-1 (as :func:`rotary_embedding`
    numbers them). Under a causal mask only :math:`p' \le p` counts, where the bias is
    :math:`-m_h (p - p')`, the paper's; the absolute value extends it to keys after
    the query. Add it to the scaled scores of head h, e.g. as ``bias`` of
    :func:`~attention_course.attention.scaled_dot_product_attention`.
    """
    for name, n in (("query_len", query_len), ("key_len", key_len)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    offset = (torch.arange(query_len)[:, None] - torch.arange(key_len)[None, :]).abs()  # (L, S)
    return -alibi_slopes(num_heads)[:, None, None] * offset  # (H, L, S)
