"""Our attention against code we did not write: PyTorch's fused attention,
``torch.nn.MultiheadAttention``, ``torch.softmax``; and the NumPy reference
against PyTorch in float64.

Mask conventions: ours and ``F.scaled_dot_product_attention``'s boolean
``attn_mask`` use True = may attend; ``nn.MultiheadAttention`` uses True = may
NOT attend, so it is given ``~mask``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course import (
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
    padding_mask,
    reference,
    scaled_dot_product_attention,
    softmax,
)

from _helpers import LEADING, TOL, assert_close, qkv, randn, random_mask


# --- scaled_dot_product_attention vs torch.nn.functional.scaled_dot_product_attention


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leading", LEADING)
def test_sdpa_matches_torch_without_mask(dtype: torch.dtype, leading: tuple[int, ...]) -> None:
    L, S, E, Ev = 5, 7, 8, 6
    q, k, v = qkv(leading, L, S, E, Ev, seed=1, dtype=dtype)
    out, weights = scaled_dot_product_attention(q, k, v)
    expected = F.scaled_dot_product_attention(q, k, v)
    assert out.shape == (*leading, L, Ev) and weights.shape == (*leading, L, S)
    assert out.dtype == weights.dtype == dtype
    assert_close(out, expected, TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("mask_kind", ["full", "LS", "broadcast"])
def test_sdpa_matches_torch_with_bool_mask(dtype: torch.dtype, leading: tuple[int, ...], mask_kind: str) -> None:
    L, S, E, Ev = 6, 5, 4, 3
    q, k, v = qkv(leading, L, S, E, Ev, seed=4, dtype=dtype)
    if mask_kind == "full":  # as many dims as the scores
        mask = random_mask(*leading, L, S, seed=7)
    elif mask_kind == "LS":  # one (L, S) mask for every batch element and head
        mask = random_mask(L, S, seed=8)
    else:  # size-1 leading axes, e.g. (B, 1, L, S)
        mask = random_mask(*leading[:1], *[1] * len(leading[1:]), L, S, seed=9)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out, expected, TOL[dtype])
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("L, S", [(5, 5), (4, 7), (7, 4), (1, 3)])
def test_causal_mask_matches_torch_is_causal(dtype: torch.dtype, L: int, S: int) -> None:
    q, k, v = qkv((2, 3), L, S, 8, 5, seed=10, dtype=dtype)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(L, S))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(out, expected, TOL[dtype])
    # and the mask itself is torch's top-left-aligned causal mask
    assert torch.equal(causal_mask(L, S), torch.ones(L, S, dtype=torch.bool).tril())
    assert (weights.triu(diagonal=1) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.05, 0.7, 2.5])
def test_sdpa_custom_scale_matches_torch(dtype: torch.dtype, scale: float) -> None:
    q, k, v = qkv((2, 4), 6, 5, 8, 3, seed=13, dtype=dtype)
    mask = random_mask(2, 1, 6, 5, seed=16)
    out, _ = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), TOL[dtype])
    out_default, _ = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.allclose(out, out_default), "scale= must change the result"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_mask", [False, True])
def test_sdpa_weights_match_torch_softmax(dtype: torch.dtype, use_mask: bool) -> None:
    L, S, E = 5, 6, 4
    q, k, v = qkv((3,), L, S, E, 2, seed=17, dtype=dtype)
    mask = random_mask(3, L, S, seed=20) if use_mask else None
    _, weights = scaled_dot_product_attention(q, k, v, mask)

    scores = q @ k.transpose(-2, -1) / E**0.5  # (B, L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    assert_close(weights, torch.softmax(scores, dim=-1), TOL[dtype])

    # torch's fused attention with an identity value matrix returns the weights themselves
    eye = torch.eye(S, dtype=dtype).expand(3, S, S)
    assert_close(weights, F.scaled_dot_product_attention(q, k, eye, attn_mask=mask), TOL[dtype])


# --- MultiHeadAttention vs torch.nn.MultiheadAttention with copied weights


def make_torch_mha(
    D: int, H: int, *, bias: bool, batch_first: bool, seed: int, dtype: torch.dtype = torch.float32
) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    mha = nn.MultiheadAttention(D, H, bias=bias, batch_first=batch_first, dtype=dtype)
    if bias:  # torch initialises the biases to zero; make them matter
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed + 1)
            mha.in_proj_bias.copy_(torch.randn(mha.in_proj_bias.shape, generator=g, dtype=dtype))
            mha.out_proj.bias.copy_(torch.randn(mha.out_proj.bias.shape, generator=g, dtype=dtype))
    return mha.eval()


def run_torch_mha(mha: nn.MultiheadAttention, query, key, value, **kwargs):
    """Call torch's module on batch-first inputs, whatever its own layout."""
    if mha.batch_first:
        return mha(query, key, value, need_weights=True, **kwargs)
    out, weights = mha(query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), need_weights=True, **kwargs)
    return out.transpose(0, 1), weights  # (L, B, D) -> (B, L, D); weights are batch-first either way


MHA_CASES = [
    pytest.param(5, 5, id="self"),
    pytest.param(4, 7, id="cross-L<S"),
    pytest.param(6, 3, id="cross-L>S"),
]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("L, S", MHA_CASES)
def test_mha_matches_torch_without_mask(batch_first: bool, bias: bool, L: int, S: int) -> None:
    B, D, H = 3, 16, 4
    mha = make_torch_mha(D, H, bias=bias, batch_first=batch_first, seed=21)
    ours = MultiHeadAttention.from_torch(mha)
    q, k, v = qkv((B,), L, S, D, D, seed=22)
    if L == S:
        k, v = q, q  # genuine self-attention
    out, weights = ours(q, k, v)
    with torch.no_grad():
        expected, avg_weights = run_torch_mha(mha, q, k, v, average_attn_weights=True)
        _, head_weights = run_torch_mha(mha, q, k, v, average_attn_weights=False)
    assert out.shape == (B, L, D) and weights.shape == (B, H, L, S)
    assert_close(out, expected, 1e-5)
    assert_close(weights.mean(1), avg_weights, 1e-5)
    assert_close(weights, head_weights, 1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("L, S", MHA_CASES)
@pytest.mark.parametrize("mask_kind", ["LS", "BLS", "causal"])
def test_mha_matches_torch_with_attn_mask(batch_first: bool, bias: bool, L: int, S: int, mask_kind: str) -> None:
    B, D, H = 2, 12, 3
    mha = make_torch_mha(D, H, bias=bias, batch_first=batch_first, seed=25)
    ours = MultiHeadAttention.from_torch(mha)
    q, k, v = qkv((B,), L, S, D, D, seed=26)
    if mask_kind == "LS":
        mask = random_mask(L, S, seed=29)
        torch_mask = ~mask  # torch: True = may NOT attend
    elif mask_kind == "BLS":  # one mask per batch element, shared by the heads
        mask = random_mask(B, L, S, seed=30)
        torch_mask = (~mask).repeat_interleave(H, dim=0)  # torch wants (B*H, L, S), batch-major
    else:
        mask = causal_mask(L, S)
        torch_mask = ~mask
    out, weights = ours(q, k, v, mask)
    with torch.no_grad():
        expected, avg_weights = run_torch_mha(mha, q, k, v, attn_mask=torch_mask, average_attn_weights=True)
        _, head_weights = run_torch_mha(mha, q, k, v, attn_mask=torch_mask, average_attn_weights=False)
    assert_close(out, expected, 1e-5)
    assert_close(weights.mean(1), avg_weights, 1e-5)
    assert_close(weights, head_weights, 1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_causal", [False, True])
def test_mha_padding_mask_matches_torch_key_padding_mask(batch_first: bool, bias: bool, with_causal: bool) -> None:
    B, L, S, D, H = 4, 6, 6, 8, 2
    mha = make_torch_mha(D, H, bias=bias, batch_first=batch_first, seed=31)
    ours = MultiHeadAttention.from_torch(mha)
    q, k, v = qkv((B,), L, S, D, D, seed=32)
    lengths = torch.tensor([6, 1, 3, 5])  # >= 1: torch gives NaN for a fully padded row
    pm = padding_mask(lengths, S)  # (B, S)
    mask = pm[:, None, :]  # (B, 1, S): a (B, L, S) mask broadcast over the queries
    kwargs = {"key_padding_mask": ~pm}
    if with_causal:
        mask = mask & causal_mask(L, S)  # (B, L, S)
        kwargs["attn_mask"] = ~causal_mask(L, S)
    out, weights = ours(q, k, v, mask)
    with torch.no_grad():
        expected, avg_weights = run_torch_mha(mha, q, k, v, average_attn_weights=True, **kwargs)
        _, head_weights = run_torch_mha(mha, q, k, v, average_attn_weights=False, **kwargs)
    assert_close(out, expected, 1e-5)
    assert_close(weights.mean(1), avg_weights, 1e-5)
    assert_close(weights, head_weights, 1e-5)
    assert (weights[1, :, :, 1:] == 0).all(), "padding keys get no weight"


def test_mha_matches_torch_in_float64() -> None:
    B, L, S, D, H = 2, 5, 4, 12, 3
    mha = make_torch_mha(D, H, bias=True, batch_first=True, seed=35, dtype=torch.float64)
    ours = MultiHeadAttention.from_torch(mha)
    assert ours.q_proj.weight.dtype == torch.float64
    q, k, v = qkv((B,), L, S, D, D, seed=36, dtype=torch.float64)
    mask = random_mask(B, L, S, seed=40)
    out, weights = ours(q, k, v, mask)
    with torch.no_grad():
        expected, avg = mha(q, k, v, attn_mask=(~mask).repeat_interleave(H, 0), need_weights=True)
    assert_close(out, expected, 1e-10)
    assert_close(weights.mean(1), avg, 1e-10)


def test_from_torch_copies_rather_than_shares_weights() -> None:
    mha = make_torch_mha(8, 2, bias=True, batch_first=True, seed=41)
    ours = MultiHeadAttention.from_torch(mha)
    before = mha.in_proj_weight.detach().clone()
    with torch.no_grad():
        ours.q_proj.weight.add_(1.0)
    assert torch.equal(mha.in_proj_weight.detach(), before)


def test_from_torch_rejects_unsupported_configurations() -> None:
    with pytest.raises(ValueError, match="no dropout"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, dropout=0.1))
    with pytest.raises(ValueError, match="bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="equal q/k/v sizes"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))


# --- the NumPy reference vs torch, float64


def _torch_masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PyTorch's own softmax with -inf at masked keys; fully masked rows (NaN) set to 0."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)


def _mask_with_dead_rows(*shape: int, seed: int) -> torch.Tensor:
    mask = random_mask(*shape, seed=seed)
    mask[..., 1, :] = False  # a fully masked row in every (L, S) block
    return mask


@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5)])
@pytest.mark.parametrize("magnitude", [1.0, 50.0, 1e4])
def test_reference_softmax_matches_torch(shape: tuple[int, ...], magnitude: float) -> None:
    x = randn(*shape, seed=42, dtype=torch.float64) * magnitude
    for axis in range(-len(shape), 0):
        expected = torch.softmax(x, dim=axis).numpy()
        np.testing.assert_allclose(reference.softmax(x.numpy(), axis=axis), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(softmax(x).numpy(), torch.softmax(x, -1).numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("mask_shape", [(5, 6), (3, 5, 6), (3, 1, 6), (1, 5, 6)])
def test_reference_masked_softmax_matches_torch(mask_shape: tuple[int, ...]) -> None:
    scores = randn(3, 5, 6, seed=43, dtype=torch.float64) * 3
    mask = _mask_with_dead_rows(*mask_shape, seed=44) if mask_shape[-2] > 1 else random_mask(*mask_shape, seed=44)
    ref = reference.masked_softmax(scores.numpy(), mask.numpy())
    np.testing.assert_allclose(ref, _torch_masked_softmax(scores, mask).numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ref, masked_softmax(scores, mask).numpy(), atol=1e-6, rtol=0)
    if mask_shape[-2] > 1:
        assert (ref[:, 1, :] == 0).all() and not np.isnan(ref).any()


@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("dead_rows", [False, True])
def test_reference_sdpa_matches_torch(leading: tuple[int, ...], dead_rows: bool) -> None:
    L, S, E, Ev = 5, 4, 6, 3
    q, k, v = qkv(leading, L, S, E, Ev, seed=45, dtype=torch.float64)
    mask = _mask_with_dead_rows(*leading, L, S, seed=48) if dead_rows else random_mask(*leading, L, S, seed=48)
    ref_out, ref_w = reference.scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy(), mask.numpy())
    live = mask.any(-1)  # (..., L): rows with at least one key to attend to
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(ref_out[live.numpy()], expected[live].numpy(), atol=1e-6, rtol=0)
    expected_w = _torch_masked_softmax(q @ k.transpose(-2, -1) / E**0.5, mask)  # (..., L, S)
    np.testing.assert_allclose(ref_w, expected_w.numpy(), atol=1e-6, rtol=0)
    ours_out, ours_w = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(ref_out, ours_out.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ref_w, ours_w.numpy(), atol=1e-6, rtol=0)
    if dead_rows:
        assert (ref_out[..., 1, :] == 0).all() and (ref_w[..., 1, :] == 0).all()


def test_reference_sdpa_without_mask_and_causal_mask_match_torch() -> None:
    q, k, v = qkv((2,), 6, 6, 4, 4, seed=50, dtype=torch.float64)
    ref_out, _ = reference.scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy())
    np.testing.assert_allclose(ref_out, F.scaled_dot_product_attention(q, k, v).numpy(), atol=1e-6, rtol=0)
    causal = reference.causal_mask(6)
    assert np.array_equal(causal, causal_mask(6).numpy())
    ref_out, _ = reference.scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy(), causal)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(ref_out, expected.numpy(), atol=1e-6, rtol=0)
