r"""Multi-head attention: project, split into heads, attend per head, merge, project.

.. math::
    \mathrm{head}_h = \mathrm{Attention}(Q W_q^{(h)}, K W_k^{(h)}, V W_v^{(h)}),\qquad
    \mathrm{MHA}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W_o

The heads' *outputs* are concatenated and projected by :math:`W_o`; their
weights are not concatenated. With head size E = D/H the parameter count and
the cost are about those of one full-width head. Vectors are rows
(``book/notation.md``): :math:`W_q^{(h)}` is (D, E), and ``q_proj`` holds the H
of them side by side as one (D, D) map, whose ``nn.Linear`` ``weight`` is its
transpose (likewise ``k_proj``, ``v_proj``; ``out_proj`` is :math:`W_o`, (H·E, D)).
Taught in chapter 6.

With ``num_kv_heads`` G < H the module is **grouped-query attention** (GQA;
Ainslie et al. 2023): only G key heads and G value heads are projected, and query
head h reads key/value head ``h // (H / G)``, so H/G query heads share each of
them. G = 1 is **multi-query attention** (MQA; Shazeer 2019). The queries keep
all H heads; what shrinks is ``k_proj`` and ``v_proj`` (D x G·E each) and, when
decoding, the keys and values a cache must hold per token: G·E instead of D.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import require_float, shape_str
from .attention import scaled_dot_product_attention
from .positional import alibi_bias, rotary_embedding

__all__ = ["split_heads", "merge_heads", "MultiHeadAttention"]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split the feature axis into heads: (B, T, D) -> (B, H, T, D/H), D/H = E the head size.

    Equivalent to ``x.view(B, T, H, D // H).transpose(1, 2)``.
    """
    require_float("x", x)
    if x.dim() != 3:
        raise ValueError(f"x must be (B, T, D), got shape {shape_str(x)}")
    B, T, D = x.shape
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1 or D % num_heads:
        raise ValueError(f"D={D} must be divisible by num_heads, got num_heads={num_heads!r}")
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, D/H)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Concatenate the heads back: (B, H, T, E) -> (B, T, H * E), E the head size.

    Inverse of :func:`split_heads`. Equivalent to
    ``x.transpose(1, 2).reshape(B, T, H * E)``.
    """
    require_float("x", x)
    if x.dim() != 4:
        raise ValueError(f"x must be (B, H, T, E), got shape {shape_str(x)}")
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, H*E), Dh = E


class MultiHeadAttention(nn.Module):
    r"""Batch-first multi-head attention with our mask convention (True = may attend).

    Args:
        d_model: model width D; must be divisible by ``num_heads``.
        num_heads: number of heads H; each head has size D/H.
        bias: whether the four projections have biases.
        num_kv_heads: number G of key/value heads (default H: ordinary
            multi-head attention); must divide ``num_heads``. G < H is
            grouped-query attention, G = 1 multi-query attention.
        rotary: rotate each head's queries and keys by their positions
            (:func:`~attention_course.positional.rotary_embedding`, positions
            ``0..L-1`` and ``0..S-1``) before the dot product, so that the
            scores see relative offsets; values are not rotated (chapter 7).
        alibi: add ALiBi's bias :math:`-m_h |p - p'|` to head h's scores
            (:func:`~attention_course.positional.alibi_bias`, positions as for
            ``rotary``); nothing is added to the tokens (chapter 7).

    ``forward(query (B, L, D), key (B, S, D), value (B, S, D), mask=None)``
    returns output (B, L, D) and the per-head weights (B, H, L, S).
    The mask is bool, ``True`` = may attend, of shape (L, S), (B, L, S) (the
    same mask for every head), or (B or 1, H or 1, L, S).

    With copied weights it computes what ``torch.nn.MultiheadAttention`` does
    (see :meth:`from_torch`), whose mask means the opposite and which is
    sequence-first unless ``batch_first=True``.
    """

    def __init__(self, d_model: int, num_heads: int, *, bias: bool = True, rotary: bool = False,
                 num_kv_heads: int | None = None, alibi: bool = False) -> None:
        super().__init__()
        if num_kv_heads is None:
            num_kv_heads = num_heads
        for name, n in (("d_model", d_model), ("num_heads", num_heads), ("num_kv_heads", num_kv_heads)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}: "
                             "each key/value head serves the same number of query heads")
        if rotary and (d_model // num_heads) % 2:
            raise ValueError(f"rotary needs an even head size, got d_model/num_heads = {d_model}/{num_heads}")
        self.d_model, self.num_heads, self.num_kv_heads, self.rotary = d_model, num_heads, num_kv_heads, rotary
        self.alibi = alibi
        kv_width = num_kv_heads * (d_model // num_heads)  # G·E
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, kv_width, bias=bias)
        self.v_proj = nn.Linear(d_model, kv_width, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _check_inputs(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
        for name, x in (("query", query), ("key", key), ("value", value)):
            require_float(name, x)
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must be batch-first (B, T, D) with D={self.d_model}, got shape {shape_str(x)}"
                )
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(
                f"query, key and value must share the batch size B, got {shape_str(query)}, "
                f"{shape_str(key)}, {shape_str(value)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key has S={key.shape[1]} positions but value has S={value.shape[1]}")

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_inputs(query, key, value)
        H, G = self.num_heads, self.num_kv_heads
        q = split_heads(self.q_proj(query), H)  # (B, H, L, D/H)
        k = split_heads(self.k_proj(key), G)  # (B, G, S, D/H)
        v = split_heads(self.v_proj(value), G)  # (B, G, S, D/H)
        if self.rotary:
            q, k = rotary_embedding(q), rotary_embedding(k)  # positions 0..L-1 and 0..S-1
        if G < H:  # query head h reads key/value head h // (H/G)
            k, v = k.repeat_interleave(H // G, dim=1), v.repeat_interleave(H // G, dim=1)  # (B, H, S, D/H)
        if mask is not None and isinstance(mask, torch.Tensor) and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # (B, L, S) -> (B, 1, L, S): one mask for all heads
        position_bias = alibi_bias(H, q.shape[-2], k.shape[-2])[None].to(q.dtype) if self.alibi else None  # (1, H, L, S)
        out, weights = scaled_dot_product_attention(q, k, v, mask, bias=position_bias)  # (B, H, L, D/H), (B, H, L, S)
        return self.out_proj(merge_heads(out)), weights  # (B, L, D), (B, H, L, S)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A copy of a ``torch.nn.MultiheadAttention``'s weights in our module.

        Only the common configuration is supported: equal query/key/value
        sizes, no ``add_bias_kv``, no ``add_zero_attn``, no dropout.
        """
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn or mha.dropout:
            raise ValueError("from_torch supports equal q/k/v sizes, no bias_kv, no zero_attn and no dropout")
        bias = mha.in_proj_bias is not None
        like = mha.in_proj_weight  # the copy keeps the original's dtype and device
        ours = cls(mha.embed_dim, mha.num_heads, bias=bias).to(dtype=like.dtype, device=like.device)
        w_q, w_k, w_v = mha.in_proj_weight.detach().chunk(3, dim=0)  # each (D, D)
        with torch.no_grad():
            for proj, w in ((ours.q_proj, w_q), (ours.k_proj, w_k), (ours.v_proj, w_v)):
                proj.weight.copy_(w)
            ours.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                b_q, b_k, b_v = mha.in_proj_bias.detach().chunk(3)
                for proj, b in ((ours.q_proj, b_q), (ours.k_proj, b_k), (ours.v_proj, b_v)):
                    proj.bias.copy_(b)
                ours.out_proj.bias.copy_(mha.out_proj.bias)
        return ours
