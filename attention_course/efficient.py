r"""Efficient attention: the same answer in less memory, or a cheaper answer.

- :func:`online_softmax`: softmax in one streaming pass for its normaliser,
  keeping a running maximum and a running sum (Milakov & Gimelshein 2018).
- :func:`tiled_attention`: exact attention without ever building the (L, S)
  score matrix, block by block with the online softmax (FlashAttention's
  forward pass, Dao et al. 2022, in plain torch).
- :func:`linear_attention`: replace :math:`e^{q \cdot k}` by a kernel
  :math:`\phi(q) \cdot \phi(k)` so that the sum over keys can be done once
  for every query: O(S) instead of O(L S) (Katharopoulos et al. 2020).
- :class:`CausalSelfAttention` and :class:`KVCache`: autoregressive decoding
  that reuses the keys and values of the tokens already seen.

For the wider landscape (sparse, low-rank, kernel and recurrent variants) see
Tay et al. 2022, "Efficient Transformers: A Survey". Taught in chapter 11.
References (book/references.bib): milakov2018online, dao2022flashattention,
katharopoulos2020transformers, tay2022efficient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_qkv, check_same_features, require_float, require_tensor, shape_str
from .attention import scaled_dot_product_attention
from .masks import causal_mask
from .multihead import MultiHeadAttention, merge_heads, split_heads

__all__ = ["online_softmax", "tiled_attention", "linear_attention", "elu_feature_map", "KVCache", "CausalSelfAttention"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def _safe_max(m: torch.Tensor) -> torch.Tensor:
    """The running max with -inf (nothing seen yet, or only -inf) replaced by 0.

    Subtracting it is then always safe: ``exp(-inf - 0) = 0`` where the naive
    ``exp(-inf - (-inf))`` would be NaN.
    """
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


# --- online softmax


def online_softmax(x: torch.Tensor, block_size: int) -> torch.Tensor:
    r"""Softmax over the last axis, its normaliser computed in one streaming pass over blocks.

    Reading a row of scores :math:`z` (``x``'s last axis) in blocks of
    :math:`T_\text{tile}` = ``block_size`` entries, keep a running maximum
    :math:`m` and a running sum :math:`r = \sum_j e^{z_j - m}` over the
    entries seen so far. When a block raises the maximum, the old sum was
    taken relative to the old maximum and is rescaled:

    .. math::
        m' = \max\!\big(m, \max_{j \in \text{block}} z_j\big),\qquad
        r' = r\, e^{m - m'} + \sum_{j \in \text{block}} e^{z_j - m'},\qquad
        \mathrm{softmax}(z)_j = \frac{e^{z_j - m}}{r}\ \text{(at the end)},

    starting from :math:`m = -\infty`, :math:`r = 0`. Every exponent is at
    most :math:`e^0 = 1`, so scores of 1e4 do not overflow, and no block needs
    to see any other block. This is the online normaliser of Milakov &
    Gimelshein 2018 ("Online normalizer calculation for softmax",
    arXiv:1805.02867): two passes over the data (one for :math:`m, r`, one to
    write the output) instead of the safe softmax's three.

    Shapes: x (..., S) float; output (..., S). ``block_size`` is any positive
    int (the last block may be shorter; a block larger than S is one block).

    Returns what ``torch.softmax(x, -1)`` returns, except that a row whose
    entries are all ``-inf`` gives zeros (torch gives NaN), as in
    :func:`~attention_course.masked_softmax`. float16/bfloat16 are computed in
    float32 and cast back. Taught in chapter 11.
    """
    require_float("x", x)
    if x.dim() < 1:
        raise ValueError(f"x must have at least 1 dim (..., S), got shape {shape_str(x)}")
    block_size = _positive_int("block_size", block_size)
    work = x.float() if x.dtype in _LOW_PRECISION else x
    N = work.shape[-1]
    m = torch.full(work.shape[:-1], float("-inf"), dtype=work.dtype, device=work.device)  # (...,) running max m
    l = torch.zeros(work.shape[:-1], dtype=work.dtype, device=work.device)  # (...,) running sum (r in the docstring)
    for start in range(0, N, block_size):  # N = S, the row's length
        block = work[..., start : start + block_size]  # (..., T_tile)
        m_new = torch.maximum(m, block.amax(dim=-1))  # (...,)
        shift = _safe_max(m_new)  # (...,)
        l = l * torch.exp(m - shift) + torch.exp(block - shift[..., None]).sum(dim=-1)  # (...,)
        m = m_new
    e = torch.exp(work - _safe_max(m)[..., None])  # (..., S); 0 where x = -inf
    out = e / torch.where(l > 0, l, torch.ones_like(l))[..., None]  # (..., S); 0/1 on all -inf rows
    return out.to(x.dtype)


# --- tiled (FlashAttention-style) attention


def tiled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    block_size: int = 128,
    query_block_size: int | None = None,
    causal: bool = False,
    key_padding: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    r"""Exact scaled dot-product attention computed block by block, never building the (L, S) scores.

    The forward pass of FlashAttention (Dao et al. 2022, "FlashAttention: Fast
    and memory-efficient exact attention with IO-awareness", arXiv:2205.14135)
    in plain torch. For each tile of :math:`T_\text{tile}` = ``block_size`` keys
    :math:`K_j, V_j`, with scores :math:`Z_j = Q K_j^\top \cdot \text{scale}`,
    update a running row maximum :math:`m`, running sum :math:`r` and
    *unnormalised* output :math:`O`:

    .. math::
        m' = \max(m, \operatorname{rowmax} Z_j),\quad
        r' = e^{m - m'}\, r + \operatorname{rowsum} e^{Z_j - m'},\quad
        O' = e^{m - m'}\, O + e^{Z_j - m'}\, V_j,

    with the exponentials taken entry by entry and :math:`m'` subtracted row by
    row, and return :math:`O / r` at the end: the online softmax
    (:func:`online_softmax`) with the weighted sum of the values carried
    along. Each step holds one (Lq, block_size) tile of scores instead of the
    (L, S) matrix (Lq queries per block, ``query_block_size``).

    Args:
        query: (..., L, E). key: (..., S, E). value: (..., S, Ev).
        block_size: keys per block (any positive int; need not divide S; a
            block larger than S is one block).
        query_block_size: queries per block; ``None`` = all L queries at once,
            so the state is m (..., L), r (..., L), O (..., L, Ev). With query
            blocks the tile is (query_block_size, block_size), and with
            ``causal`` the key blocks wholly above the diagonal are skipped.
        causal: query ``i`` may attend key ``j`` only if ``j <= i``, aligned at
            the start (top-left) like :func:`~attention_course.causal_mask` and
            PyTorch's ``is_causal=True``, also when S != L.
        key_padding: bool (B, S), ``True`` = a real key (may be attended), as
            :func:`~attention_course.padding_mask` returns; needs query
            (B, ..., L, E) with at least 3 dims, B first.
        scale: the score scale; ``None`` = :math:`1/\sqrt{E}`.

    Returns:
        output (..., L, Ev). A query with no key it may attend gets zeros, never NaN.

    Equal (up to rounding) to ``scaled_dot_product_attention(query, key,
    value, mask)[0]`` with the mask built from ``causal`` and ``key_padding``,
    and to ``torch.nn.functional.scaled_dot_product_attention`` on rows that
    have a key. Gradients flow through it, but autograd keeps every tile, so
    only the forward pass saves memory (FlashAttention recomputes the tiles in
    its backward pass). Taught in chapter 11.
    """
    check_qkv(query, key, value)
    check_same_features(query, key)
    block_size = _positive_int("block_size", block_size)
    L, E = query.shape[-2:]
    S = key.shape[-2]
    query_block_size = L if query_block_size is None else _positive_int("query_block_size", query_block_size)
    if key_padding is not None:
        require_tensor("key_padding", key_padding)
        if key_padding.dtype != torch.bool:
            raise ValueError(f"key_padding must be a bool tensor (True = real key), got dtype {key_padding.dtype}")
        if query.dim() < 3 or key_padding.shape != (query.shape[0], S):
            raise ValueError(
                f"key_padding must be (B, S) = {(query.shape[0], S) if query.dim() >= 3 else '(B, S)'} for "
                f"query {shape_str(query)} (B, ..., L, E) and key {shape_str(key)}, got {shape_str(key_padding)}"
            )
        # (B, S) -> (B, 1, ..., 1, S): one row per batch element, shared by heads and queries
        key_padding = key_padding.view(query.shape[0], *[1] * (query.dim() - 2), S)
    if scale is None:
        scale = E**-0.5

    work_dtype = torch.float32 if query.dtype in _LOW_PRECISION else query.dtype
    q_all, k_all, v_all = (t.to(work_dtype) for t in (query, key, value))  # no copy for float32/64
    lead, Ev = query.shape[:-2], value.shape[-1]
    outputs = []
    for q_start in range(0, L, query_block_size):
        q = q_all[..., q_start : q_start + query_block_size, :]  # (..., Lq, E)
        Lq = q.shape[-2]
        m = torch.full((*lead, Lq), float("-inf"), dtype=work_dtype, device=query.device)  # (..., Lq)
        l = torch.zeros((*lead, Lq), dtype=work_dtype, device=query.device)  # (..., Lq): running sum r
        acc = torch.zeros((*lead, Lq, Ev), dtype=work_dtype, device=query.device)  # (..., Lq, Ev)
        q_pos = torch.arange(q_start, q_start + Lq, device=query.device)  # (Lq,)
        for k_start in range(0, S, block_size):
            if causal and k_start > q_start + Lq - 1:
                break  # every key from here on lies after every query of this block
            k = k_all[..., k_start : k_start + block_size, :]  # (..., Sb, E), Sb <= T_tile keys
            v = v_all[..., k_start : k_start + block_size, :]  # (..., Sb, Ev)
            Sb = k.shape[-2]
            s = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Sb): one tile of the scores
            allowed = None
            if causal:
                k_pos = torch.arange(k_start, k_start + Sb, device=query.device)  # (Sb,)
                allowed = k_pos[None, :] <= q_pos[:, None]  # (Lq, Sb)
            if key_padding is not None:
                pad = key_padding[..., k_start : k_start + Sb]  # (B, 1, ..., 1, Sb)
                allowed = pad if allowed is None else allowed & pad  # broadcasts to (..., Lq, Sb)
            if allowed is not None:
                s = s.masked_fill(~allowed, float("-inf"))  # (..., Lq, Sb)
            m_new = torch.maximum(m, s.amax(dim=-1))  # (..., Lq)
            shift = _safe_max(m_new)  # (..., Lq); 0 on rows with nothing allowed yet
            p = torch.exp(s - shift[..., None])  # (..., Lq, Sb); 0 where masked
            alpha = torch.exp(m - shift)  # (..., Lq); rescales the old state, 0 if it was empty
            l = alpha * l + p.sum(dim=-1)  # (..., Lq)
            acc = alpha[..., None] * acc + p @ v  # (..., Lq, Ev)
            m = m_new
        out = acc / torch.where(l > 0, l, torch.ones_like(l))[..., None]  # (..., Lq, Ev); 0 on empty rows
        outputs.append(out)
    if not outputs:  # L = 0
        return torch.zeros((*lead, 0, Ev), dtype=query.dtype, device=query.device)
    return torch.cat(outputs, dim=-2).to(query.dtype)  # (..., L, Ev)


# --- linear attention


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    r"""The feature map of linear attention, :math:`\phi(x) = \mathrm{elu}(x) + 1 > 0` (Katharopoulos et al. 2020)."""
    return F.elu(x) + 1.0


def linear_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    causal: bool = False,
    feature_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""Linear attention: a kernel :math:`\phi(q)\, \phi(k)^\top` in place of :math:`e^{q k^\top}`.

    Katharopoulos et al. 2020, "Transformers are RNNs: fast autoregressive
    transformers with linear attention" (arXiv:2006.16236). With the similarity
    :math:`\phi(q_i)\, \phi(k_j)^\top` (row vectors, as in ``book/notation.md``)
    the sums over keys no longer depend on the query and are computed once:

    .. math::
        \text{output}_i
        = \frac{\sum_j \phi(q_i)\, \phi(k_j)^\top\, v_j}{\sum_j \phi(q_i)\, \phi(k_j)^\top}
        = \frac{\phi(q_i) \big(\sum_j \phi(k_j)^\top v_j\big)}{\phi(q_i) \big(\sum_j \phi(k_j)\big)^\top}

    with :math:`\phi(k_j)^\top v_j` an (E_phi, Ev) outer product, E_phi the
    number of features :math:`\phi` gives. The right-hand side costs
    O((L + S) E_phi Ev) time and O(E_phi Ev) extra memory instead of the
    left-hand side's O(L S (E_phi + Ev)) time and (L, S) weights.
    There is no :math:`1/\sqrt{E}` scale (the paper has none) and no softmax:
    this is a *different* attention, not an approximation that converges to it.

    Args:
        query: (..., L, E). key: (..., S, E). value: (..., S, Ev).
        causal: query ``i`` sums over keys ``j <= i`` only (top-left aligned,
            like :func:`~attention_course.causal_mask`; queries past the last
            key see every key). Done with cumulative sums over an
            (..., S, E_phi, Ev) tensor: O(S E_phi Ev) memory, fine for the
            course's sizes; the recurrent form (the paper's RNN view, one
            (E_phi, Ev) state updated per token) needs only O(E_phi Ev).
        feature_map: :math:`\phi`, applied to query and key along the last
            axis, (..., T, E) -> (..., T, E_phi); ``None`` = :func:`elu_feature_map`
            (E_phi = E). It should give positive features so that the normaliser
            is positive; a row whose normaliser is exactly 0 gets zeros.

    Returns:
        output (..., L, Ev).

    Equivalent (the O(L S) way) to::

        A = phi(query) @ phi(key).transpose(-2, -1)        # (..., L, S)
        A = A.masked_fill(~causal_mask(L, S), 0)            # if causal
        output = (A / A.sum(-1, keepdim=True)) @ value      # (..., L, Ev)

    Taught in chapter 11.
    """
    check_qkv(query, key, value)
    check_same_features(query, key)
    phi = elu_feature_map if feature_map is None else feature_map
    fq, fk = phi(query), phi(key)  # (..., L, E_phi), (..., S, E_phi)
    for name, f, x in (("query", fq, query), ("key", fk, key)):
        if not isinstance(f, torch.Tensor) or f.shape[:-1] != x.shape[:-1]:
            got = shape_str(f) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(
                f"feature_map must map {name} {shape_str(x)} to (..., T, E_phi) keeping the leading dims, got {got}"
            )
    if fq.shape[-1] != fk.shape[-1]:
        raise ValueError(f"feature_map gave E_phi={fq.shape[-1]} features for query but E_phi={fk.shape[-1]} for key")
    L, S = query.shape[-2], key.shape[-2]
    if not causal:
        kv = fk.transpose(-2, -1) @ value  # (..., E_phi, Ev): sum_j phi(k_j)^T v_j
        z = fk.sum(dim=-2)  # (..., E_phi): sum_j phi(k_j)
        num = fq @ kv  # (..., L, Ev)
        den = (fq * z[..., None, :]).sum(dim=-1)  # (..., L)
    else:
        kv = torch.cumsum(fk[..., :, :, None] * value[..., :, None, :], dim=-3)  # (..., S, E_phi, Ev): prefix sums
        z = torch.cumsum(fk, dim=-2)  # (..., S, E_phi)
        last = torch.clamp(torch.arange(L, device=query.device), max=S - 1)  # (L,): key prefix each query sees
        kv, z = kv[..., last, :, :], z[..., last, :]  # (..., L, E_phi, Ev), (..., L, E_phi)
        num = (fq[..., :, :, None] * kv).sum(dim=-2)  # (..., L, Ev)
        den = (fq * z).sum(dim=-1)  # (..., L)
    return num / torch.where(den == 0, torch.ones_like(den), den)[..., None]  # (..., L, Ev)


# --- KV cache for autoregressive decoding


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class KVCache:
    r"""The keys and values of the tokens decoded so far, per head.

    Fields: ``keys`` (B, H, t, D/H) and ``values`` (B, H, t, D/H), t >= 1 the
    number of positions cached and D/H the head size (E in ``book/notation.md``).
    :meth:`append` returns a *new* cache with one more position (``torch.cat``):
    the old cache stays valid, which keeps the code simple and lets a caller
    branch from any point, at the price of copying the whole cache every step
    (O(t) per step, O(T^2) for T tokens). Production decoders preallocate a
    (B, H, T_max, D/H) buffer and keep a length instead. Taught in chapter 11.
    """

    keys: torch.Tensor
    values: torch.Tensor

    def __post_init__(self) -> None:
        for name, x in (("keys", self.keys), ("values", self.values)):
            require_float(name, x)
            if x.dim() != 4:
                raise ValueError(f"{name} must be (B, H, t, D/H), got shape {shape_str(x)}")
        if self.keys.shape != self.values.shape:
            raise ValueError(
                f"keys {shape_str(self.keys)} and values {shape_str(self.values)} must have the same shape"
            )

    @property
    def length(self) -> int:
        """t, the number of positions cached."""
        return self.keys.shape[2]

    def append(self, key: torch.Tensor, value: torch.Tensor) -> "KVCache":
        """A new cache with ``key`` and ``value`` (B, H, L, D/H), L new positions, added after the cached ones."""
        for name, x in (("key", key), ("value", value)):
            require_float(name, x)
            if x.dim() != 4 or x.shape[:2] != self.keys.shape[:2] or x.shape[3] != self.keys.shape[3]:
                raise ValueError(
                    f"{name} must be (B, H, L, D/H) matching the cache {shape_str(self.keys)}, got {shape_str(x)}"
                )
        return KVCache(torch.cat([self.keys, key], dim=2), torch.cat([self.values, value], dim=2))  # (B, H, t+L, D/H)


class CausalSelfAttention(nn.Module):
    r"""Causal multi-head self-attention with a token-by-token decoding step that uses a :class:`KVCache`.

    .. math:: y_t = \mathrm{MHA}(x_t,\ x_{\le t},\ x_{\le t})

    Wraps a :class:`~attention_course.MultiHeadAttention` (``self.mha``; its
    q/k/v/out projections are the parameters). :meth:`forward` runs the whole
    sequence at once with a causal mask; :meth:`step` takes one new token,
    projects only that token, appends its key and value to the cache and
    attends over the cache. The keys and values of a past token never change
    (causality), so caching them turns each step's O(t D^2) projections into
    O(D^2), and :meth:`step` over x_1..x_T gives :meth:`forward` (x).

    Args:
        d_model: model width D; divisible by ``num_heads``.
        num_heads: H.
        bias: whether the projections have biases.

    Shapes: ``forward(x (B, T, D)) -> (B, T, D)``;
    ``step(x_t (B, 1, D), cache or None) -> (y_t (B, 1, D), cache)`` with the
    cache's keys and values (B, H, t, D/H) one longer than before.
    Taught in chapter 11.
    """

    def __init__(self, d_model: int, num_heads: int, *, bias: bool = True) -> None:
        super().__init__()
        self.mha = MultiHeadAttention(d_model, num_heads, bias=bias)
        self.d_model, self.num_heads = d_model, num_heads

    def _check_x(self, name: str, x: torch.Tensor) -> None:
        require_float(name, x)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{name} must be (B, T, D) with D={self.d_model}, got shape {shape_str(x)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x("x", x)
        T = x.shape[1]
        out, _ = self.mha(x, x, x, causal_mask(T, device=x.device))  # (B, T, D)
        return out

    def step(self, x_t: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Attend from one new token over itself and the cached tokens; return its output and the longer cache."""
        self._check_x("x_t", x_t)
        if x_t.shape[1] != 1:
            raise ValueError(f"x_t must be one token (B, 1, D), got shape {shape_str(x_t)}")
        H, mha = self.num_heads, self.mha
        q = split_heads(mha.q_proj(x_t), H)  # (B, H, 1, D/H)
        k = split_heads(mha.k_proj(x_t), H)  # (B, H, 1, D/H)
        v = split_heads(mha.v_proj(x_t), H)  # (B, H, 1, D/H)
        if cache is None:
            cache = KVCache(k, v)  # (B, H, 1, D/H)
        else:
            if not isinstance(cache, KVCache):
                raise ValueError(f"cache must be a KVCache or None, got {type(cache).__name__}")
            if cache.keys.dtype != q.dtype:
                raise ValueError(f"the cache is {cache.keys.dtype} but x_t projects to {q.dtype}")
            cache = cache.append(k, v)  # (B, H, t+1, D/H); raises if B, H or D/H differ
        out, _ = scaled_dot_product_attention(q, cache.keys, cache.values)  # (B, H, 1, D/H): no mask, all are past
        return mha.out_proj(merge_heads(out)), cache  # (B, 1, D)
