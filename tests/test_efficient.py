"""Efficient attention (chapter 11) against code we did not write and against the O(n^2) forms.

- ``online_softmax`` against ``torch.softmax``;
- ``tiled_attention`` against ``torch.nn.functional.scaled_dot_product_attention``
  and our ``scaled_dot_product_attention`` (the reference);
- ``linear_attention`` against the same function computed with an explicit
  (L, S) similarity matrix;
- ``CausalSelfAttention.step`` with a ``KVCache`` against ``forward`` on the whole sequence.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attention_course.attention import scaled_dot_product_attention
from attention_course.efficient import (
    CausalSelfAttention,
    KVCache,
    elu_feature_map,
    linear_attention,
    online_softmax,
    tiled_attention,
)
from attention_course.masks import causal_mask, padding_mask

from _helpers import LEADING, TOL, assert_close, qkv, randn


# --- online_softmax vs torch.softmax


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block_size", [1, 3, 8, 10, 64])
def test_online_softmax_matches_torch(dtype: torch.dtype, block_size: int) -> None:
    x = randn(2, 5, 10, seed=1, dtype=dtype) * 3
    assert_close(online_softmax(x, block_size), torch.softmax(x, dim=-1), TOL[dtype])


@pytest.mark.parametrize("block_size", [1, 2, 5, 7])
def test_online_softmax_with_minus_inf_and_huge_values(block_size: int) -> None:
    x = torch.tensor(
        [
            [1e4, 1e4 - 1.0, -1e4, 5e3, 0.0, 2.0, 1e4 - 3.0],  # a naive exp(1e4) overflows to inf
            [float("-inf"), float("-inf"), float("-inf"), 2.0, float("-inf"), 1.0, -1.0],  # -inf in the first blocks
            [3.0, float("-inf"), 0.0, float("-inf"), 7.0, float("-inf"), 1e3],  # the max grows in the last block
        ]
    )
    assert torch.isinf(torch.exp(x[0])).any(), "the test must overflow a naive softmax"
    out = online_softmax(x, block_size)
    assert torch.isfinite(out).all()
    assert_close(out, torch.softmax(x, dim=-1), 1e-6)
    assert (out[x == float("-inf")] == 0).all()


def test_online_softmax_all_minus_inf_row_gives_zeros_not_nan() -> None:
    x = torch.tensor([[float("-inf")] * 5, [0.0, 1.0, float("-inf"), 2.0, 3.0]])
    out = online_softmax(x, 2)
    assert torch.equal(out[0], torch.zeros(5))
    assert_close(out[1], torch.softmax(x[1], dim=-1), 1e-6)


@settings(max_examples=60)
@given(
    rows=st.integers(1, 4),
    n=st.integers(1, 40),
    block_size=st.integers(1, 50),
    spread=st.sampled_from([1.0, 30.0, 1e4]),
    seed=st.integers(0, 2**16),
)
def test_online_softmax_property(rows: int, n: int, block_size: int, spread: float, seed: int) -> None:
    x = randn(rows, n, seed=seed, dtype=torch.float64) * spread
    x_before = x.clone()
    out = online_softmax(x, block_size)
    assert torch.equal(x, x_before), "the input must not be modified"
    assert_close(out, torch.softmax(x, dim=-1), 1e-10)


def test_online_softmax_low_precision_is_computed_in_float32() -> None:
    x = randn(3, 20, seed=2).to(torch.bfloat16)
    out = online_softmax(x, 6)
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), torch.softmax(x.float(), dim=-1).to(torch.bfloat16).float(), 1e-2)


@pytest.mark.parametrize(
    "x, block_size",
    [
        (torch.ones(3, dtype=torch.int64), 2),
        (torch.ones(3), 0),
        (torch.ones(3), 1.5),
        (torch.ones(3), True),
        (torch.tensor(1.0), 1),
    ],
)
def test_online_softmax_rejects_bad_input(x: torch.Tensor, block_size: object) -> None:
    with pytest.raises(ValueError):
        online_softmax(x, block_size)


# --- tiled_attention vs torch's fused attention and our reference


SHAPES = [(5, 5), (7, 13), (13, 7), (1, 9), (16, 16), (33, 64)]  # (L, S)
BLOCKS = [1, 4, 5, 16, 100]  # divide S or not; larger than S


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("L, S", SHAPES)
@pytest.mark.parametrize("block_size", BLOCKS)
def test_tiled_attention_matches_torch(
    dtype: torch.dtype, leading: tuple[int, ...], L: int, S: int, block_size: int
) -> None:
    q, k, v = qkv(leading, L, S, 8, 6, seed=L * 100 + S, dtype=dtype)
    inputs = [t.clone() for t in (q, k, v)]
    out = tiled_attention(q, k, v, block_size=block_size)
    assert out.shape == (*leading, L, 6) and out.dtype == dtype
    assert_close(out, F.scaled_dot_product_attention(q, k, v), TOL[dtype])
    assert_close(out, scaled_dot_product_attention(q, k, v)[0], TOL[dtype])
    assert all(torch.equal(a, b) for a, b in zip((q, k, v), inputs)), "inputs must not be modified"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("L, S", SHAPES)
@pytest.mark.parametrize("block_size", BLOCKS)
@pytest.mark.parametrize("query_block_size", [None, 3, 64])
def test_tiled_attention_causal_matches_torch_is_causal(
    dtype: torch.dtype, L: int, S: int, block_size: int, query_block_size: int | None
) -> None:
    q, k, v = qkv((2, 3), L, S, 8, 5, seed=7, dtype=dtype)
    out = tiled_attention(q, k, v, block_size=block_size, query_block_size=query_block_size, causal=True)
    # top-left aligned, like causal_mask and torch's is_causal=True
    assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), TOL[dtype])
    assert_close(out, scaled_dot_product_attention(q, k, v, causal_mask(L, S))[0], TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leading", [(4,), (4, 2)])  # (B,) and (B, H)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 3, 8, 50])
@pytest.mark.parametrize("query_block_size", [None, 4])
def test_tiled_attention_key_padding(
    dtype: torch.dtype, leading: tuple[int, ...], causal: bool, block_size: int, query_block_size: int | None
) -> None:
    L, S = 9, 11
    q, k, v = qkv(leading, L, S, 8, 4, seed=11, dtype=dtype)
    lengths = torch.tensor([11, 6, 1, 0])  # full, padded, one key, no key at all
    pad = padding_mask(lengths, S)  # (B, S)
    out = tiled_attention(
        q, k, v, block_size=block_size, query_block_size=query_block_size, causal=causal, key_padding=pad
    )

    mask = pad.view(4, *[1] * (len(leading) - 1), 1, S)  # (B, 1, ..., 1, S): broadcasts to (..., L, S)
    if causal:
        mask = mask & causal_mask(L, S)
    expected, _ = scaled_dot_product_attention(q, k, v, mask)
    assert_close(out, expected, TOL[dtype])
    # torch agrees on the rows that have a key; those that have none get zeros (torch: NaN)
    has_key = mask.expand(*leading, L, S).any(-1)  # (..., L)
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out[has_key], torch_out[has_key], TOL[dtype])
    assert not torch.isnan(out).any()
    assert (out[~has_key] == 0).all() and (~has_key).any()


@settings(max_examples=80)
@given(
    leading=st.sampled_from(LEADING),
    L=st.integers(1, 20),
    S=st.integers(1, 20),
    E=st.integers(1, 8),
    Ev=st.integers(1, 6),
    block_size=st.integers(1, 24),
    query_block_size=st.none() | st.integers(1, 24),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tiled_attention_property(leading, L, S, E, Ev, block_size, query_block_size, causal, seed) -> None:
    q, k, v = qkv(leading, L, S, E, Ev, seed=seed)
    out = tiled_attention(q, k, v, block_size=block_size, query_block_size=query_block_size, causal=causal)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), 1e-5)


def test_tiled_attention_large_scores_and_custom_scale() -> None:
    q, k, v = qkv((2,), 6, 10, 4, 3, seed=13)
    q = q * 300  # scores in the thousands: a naive exp overflows
    for scale in (None, 0.1, 3.0):
        out = tiled_attention(q, k, v, block_size=3, scale=scale)
        assert torch.isfinite(out).all()
        assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=scale), 1e-5)


def test_tiled_attention_gradients_match_reference() -> None:
    q, k, v = (t.requires_grad_() for t in qkv((2,), 5, 7, 4, 3, seed=17, dtype=torch.float64))
    tiled_attention(q, k, v, block_size=3, causal=True).sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    for got, expected in zip(grads, (q.grad, k.grad, v.grad)):
        assert_close(got, expected, 1e-10)


def test_tiled_attention_low_precision() -> None:
    q, k, v = qkv((2,), 6, 9, 8, 4, seed=19)
    out = tiled_attention(q.half(), k.half(), v.half(), block_size=4)
    assert out.dtype == torch.float16
    assert_close(out.float(), F.scaled_dot_product_attention(q, k, v), 1e-2)


def test_tiled_attention_rejects_bad_input() -> None:
    q, k, v = qkv((2,), 4, 6, 8, 3, seed=23)
    with pytest.raises(ValueError, match="E=8 but key has E=5"):
        tiled_attention(q, k[..., :5], v)
    with pytest.raises(ValueError, match="S=6 positions but value has S=5"):
        tiled_attention(q, k, v[:, :5])
    with pytest.raises(ValueError, match="block_size"):
        tiled_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match="query_block_size"):
        tiled_attention(q, k, v, query_block_size=-1)
    with pytest.raises(ValueError, match="bool"):
        tiled_attention(q, k, v, key_padding=torch.ones(2, 6))
    with pytest.raises(ValueError, match=r"\(2, 6\)"):
        tiled_attention(q, k, v, key_padding=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding"):
        tiled_attention(q[0], k[0], v[0], key_padding=torch.ones(1, 6, dtype=torch.bool))  # no batch axis
    with pytest.raises(ValueError):
        tiled_attention(q.double(), k, v)


# --- linear_attention vs its explicit O(L S) form


def linear_attention_quadratic(query, key, value, *, causal=False, feature_map=elu_feature_map):
    """The same function the O(L S) way: an explicit (..., L, S) similarity matrix, normalised per row."""
    A = feature_map(query) @ feature_map(key).transpose(-2, -1)  # (..., L, S)
    if causal:
        A = A.masked_fill(~causal_mask(query.shape[-2], key.shape[-2]), 0.0)
    return (A / A.sum(-1, keepdim=True)) @ value  # (..., L, Ev)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("L, S", [(6, 6), (4, 9), (9, 4), (1, 5)])
@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_matches_quadratic_form(dtype, leading, L, S, causal) -> None:
    q, k, v = qkv(leading, L, S, 8, 5, seed=29, dtype=dtype)
    inputs = [t.clone() for t in (q, k, v)]
    out = linear_attention(q, k, v, causal=causal)
    assert out.shape == (*leading, L, 5) and out.dtype == dtype
    assert_close(out, linear_attention_quadratic(q, k, v, causal=causal), TOL[dtype])
    assert all(torch.equal(a, b) for a, b in zip((q, k, v), inputs)), "inputs must not be modified"


@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_custom_feature_map_changes_width(causal: bool) -> None:
    g = torch.Generator().manual_seed(31)
    W = torch.randn(8, 12, generator=g, dtype=torch.float64)

    def phi(x: torch.Tensor) -> torch.Tensor:  # (..., T, 8) -> (..., T, 12), positive
        return torch.exp(x @ W / 4)

    q, k, v = qkv((2, 3), 7, 7, 8, 4, seed=37, dtype=torch.float64)
    out = linear_attention(q, k, v, causal=causal, feature_map=phi)
    assert_close(out, linear_attention_quadratic(q, k, v, causal=causal, feature_map=phi), 1e-10)


def test_linear_attention_causal_prefix_does_not_see_the_future() -> None:
    q, k, v = qkv((2,), 8, 8, 4, 3, seed=41)
    out = linear_attention(q, k, v, causal=True)
    v2 = v.clone()
    v2[:, 5:] += 100.0  # change the future
    k2 = k.clone()
    k2[:, 5:] -= 3.0
    out2 = linear_attention(q, k2, v2, causal=True)
    assert torch.equal(out[:, :5], out2[:, :5])
    assert not torch.allclose(out[:, 5:], out2[:, 5:])


def test_linear_attention_zero_normaliser_gives_zeros() -> None:
    q, k, v = qkv((), 3, 4, 2, 2, seed=43)
    out = linear_attention(q, k, v, feature_map=lambda x: torch.zeros_like(x))
    assert torch.equal(out, torch.zeros(3, 2))


def test_linear_attention_rejects_bad_input() -> None:
    q, k, v = qkv((2,), 4, 6, 8, 3, seed=47)
    with pytest.raises(ValueError, match="E=8 but key has E=7"):
        linear_attention(q, k[..., :7], v)
    with pytest.raises(ValueError, match="value"):
        linear_attention(q, k, v[:, :5])
    with pytest.raises(ValueError, match="feature_map"):
        linear_attention(q, k, v, feature_map=lambda x: x.sum(-1))
    with pytest.raises(ValueError, match="feature_map"):
        linear_attention(q, k, v, feature_map=lambda x: x[..., : x.shape[-2]])  # F depends on T


# --- CausalSelfAttention and KVCache


def make_attention(
    D: int = 16, H: int = 4, *, seed: int = 53, dtype: torch.dtype = torch.float32
) -> CausalSelfAttention:
    torch.manual_seed(seed)
    attn = CausalSelfAttention(D, H).to(dtype).eval()
    with torch.no_grad():  # nn.Linear's biases are small; make them matter
        for proj in (attn.mha.q_proj, attn.mha.k_proj, attn.mha.v_proj, attn.mha.out_proj):
            proj.bias.normal_()
    return attn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B, T", [(1, 1), (3, 7), (2, 12)])
def test_step_with_cache_matches_forward(dtype: torch.dtype, B: int, T: int) -> None:
    attn = make_attention(dtype=dtype)
    x = randn(B, T, 16, seed=59, dtype=dtype)
    with torch.no_grad():
        full = attn(x)  # (B, T, D)
        cache, outputs = None, []
        for t in range(T):
            y_t, cache = attn.step(x[:, t : t + 1], cache)  # (B, 1, D)
            assert y_t.shape == (B, 1, 16)
            assert cache.length == t + 1
            assert cache.keys.shape == cache.values.shape == (B, 4, t + 1, 4)
            outputs.append(y_t)
    assert_close(torch.cat(outputs, dim=1), full, TOL[dtype])


def test_forward_matches_torch_fused_causal_attention() -> None:
    attn = make_attention()
    mha = attn.mha
    x = randn(2, 9, 16, seed=61)
    with torch.no_grad():
        heads = [t.view(2, 9, 4, 4).transpose(1, 2) for t in (mha.q_proj(x), mha.k_proj(x), mha.v_proj(x))]
        out = F.scaled_dot_product_attention(*heads, is_causal=True)  # (B, H, T, D/H)
        expected = mha.out_proj(out.transpose(1, 2).reshape(2, 9, 16))  # (B, T, D)
        assert_close(attn(x), expected, 1e-5)


def test_step_leaves_the_old_cache_unchanged() -> None:
    attn = make_attention()
    x = randn(2, 3, 16, seed=67)
    with torch.no_grad():
        _, c1 = attn.step(x[:, :1])
        keys_before = c1.keys.clone()
        _, c2 = attn.step(x[:, 1:2], c1)
        _, c2b = attn.step(x[:, 2:3], c1)  # branch from c1 again
    assert c1.length == 1 and c2.length == 2 and c2b.length == 2
    assert torch.equal(c1.keys, keys_before)
    assert torch.equal(c2.keys[:, :, :1], c1.keys) and torch.equal(c2b.keys[:, :, :1], c1.keys)


def test_step_and_cache_reject_bad_shapes() -> None:
    attn = make_attention()
    x = randn(2, 3, 16, seed=71)
    with torch.no_grad():
        _, cache = attn.step(x[:, :1])
        with pytest.raises(ValueError, match="one token"):
            attn.step(x[:, :2], cache)
        with pytest.raises(ValueError, match="D=16"):
            attn.step(randn(2, 1, 8, seed=1), cache)
        with pytest.raises(ValueError, match=r"\(B, T, D\)"):
            attn.step(randn(2, 16, seed=1), cache)
        with pytest.raises(ValueError, match="matching the cache"):
            attn.step(x[:1, :1], cache)  # batch 1 against a batch-2 cache
        with pytest.raises(ValueError, match="KVCache"):
            attn.step(x[:, :1], (cache.keys, cache.values))
        with pytest.raises(ValueError, match="float64"):
            attn.step(x[:, :1], KVCache(cache.keys.double(), cache.values.double()))
        with pytest.raises(ValueError, match="D=16"):
            attn(randn(2, 3, 12, seed=1))
    with pytest.raises(ValueError, match="same shape"):
        KVCache(torch.zeros(2, 4, 3, 4), torch.zeros(2, 4, 2, 4))
    with pytest.raises(ValueError, match=r"\(B, H, t, D/H\)"):
        KVCache(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(10, 3)
