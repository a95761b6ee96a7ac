"""Grouped-query and multi-query attention (``MultiHeadAttention(..., num_kv_heads=G)``) against
PyTorch's ``scaled_dot_product_attention(..., enable_gqa=True)`` and against ordinary multi-head
attention whose key/value heads are repeated by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attention_course import MultiHeadAttention, causal_mask, split_heads


def _model(D, H, G, seed=0, **kw):
    torch.manual_seed(seed)
    return MultiHeadAttention(D, H, num_kv_heads=G, **kw).double()


@pytest.mark.parametrize("D, H, G", [(24, 6, 3), (24, 6, 2), (24, 6, 1), (32, 8, 8), (16, 4, 2)])
@pytest.mark.parametrize("masked", [False, True])
def test_gqa_matches_pytorchs_enable_gqa(D, H, G, masked):
    mha = _model(D, H, G)
    g = torch.Generator().manual_seed(1)
    B, L, S = 3, 5, 7
    x_q = torch.randn(B, L, D, generator=g, dtype=torch.float64)
    x_kv = torch.randn(B, S, D, generator=g, dtype=torch.float64)
    mask = torch.rand(B, L, S, generator=g) > 0.3 if masked else None
    if masked:
        mask[..., 0] = True  # every query may attend somewhere
    out, weights = mha(x_q, x_kv, x_kv, mask)
    q = split_heads(mha.q_proj(x_q), H)  # (B, H, L, E)
    k = split_heads(mha.k_proj(x_kv), G)  # (B, G, S, E)
    v = split_heads(mha.v_proj(x_kv), G)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None],
                                         enable_gqa=True)  # (B, H, L, E); True = may attend there too
    ref = mha.out_proj(ref.transpose(1, 2).reshape(B, L, D))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    assert weights.shape == (B, H, L, S)


@pytest.mark.parametrize("H, G", [(6, 3), (6, 1), (4, 2)])
def test_gqa_is_multi_head_attention_with_its_key_value_heads_repeated(H, G):
    D, E = 24, 24 // H
    gqa = _model(D, H, G, bias=True)
    full = MultiHeadAttention(D, H).double()
    with torch.no_grad():
        full.q_proj.load_state_dict(gqa.q_proj.state_dict())
        full.out_proj.load_state_dict(gqa.out_proj.state_dict())
        for ours, theirs in ((full.k_proj, gqa.k_proj), (full.v_proj, gqa.v_proj)):
            # nn.Linear's rows are output features: head j's block of E rows, each repeated H/G times
            w = theirs.weight.view(G, E, D).repeat_interleave(H // G, dim=0).reshape(D, D)
            b = theirs.bias.view(G, E).repeat_interleave(H // G, dim=0).reshape(D)
            ours.weight.copy_(w)
            ours.bias.copy_(b)
    x = torch.randn(2, 9, D, dtype=torch.float64)
    mask = causal_mask(9)
    out_g, w_g = gqa(x, x, x, mask)
    out_f, w_f = full(x, x, x, mask)
    torch.testing.assert_close(out_g, out_f, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w_g, w_f, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H, G", [(8, 8), (8, 4), (8, 2), (8, 1)])
def test_parameters_shrink_only_in_the_key_and_value_projections(H, G):
    D = 64
    E = D // H
    mha = MultiHeadAttention(D, H, num_kv_heads=G)
    n = sum(p.numel() for p in mha.parameters())
    assert n == 2 * (D * D + D) + 2 * (D * G * E + G * E)
    assert mha.k_proj.weight.shape == (G * E, D) and mha.q_proj.weight.shape == (D, D)


def test_default_is_ordinary_multi_head_attention():
    torch.manual_seed(3)
    a = MultiHeadAttention(16, 4)
    torch.manual_seed(3)
    b = MultiHeadAttention(16, 4, num_kv_heads=4)
    x = torch.randn(2, 5, 16)
    assert torch.equal(a(x, x, x)[0], b(x, x, x)[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"num_kv_heads": 4}, "num_heads=6 is not divisible by num_kv_heads=4"),
    ({"num_kv_heads": 0}, "num_kv_heads must be a positive int"),
    ({"num_kv_heads": 2.0}, "num_kv_heads must be a positive int"),
])
def test_bad_num_kv_heads_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(24, 6, **kwargs)
