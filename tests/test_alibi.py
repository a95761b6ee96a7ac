"""ALiBi (Press et al. 2022): the head slopes of the paper, the bias -m_h |p - p'|, and
attention with it against PyTorch's scaled_dot_product_attention with a float attn_mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attention_course import MultiHeadAttention, alibi_bias, alibi_slopes, causal_mask, scaled_dot_product_attention


def test_slopes_for_eight_heads_are_the_papers():
    # "For a model with 8 heads, the slopes are the geometric sequence 1/2^1, 1/2^2, ..., 1/2^8"
    assert torch.equal(alibi_slopes(8), torch.tensor([2.0 ** -h for h in range(1, 9)]))
    # 16 heads: "1/2^0.5, 1/2^1, 1/2^1.5, ..., 1/2^8"
    torch.testing.assert_close(alibi_slopes(16), torch.tensor([2.0 ** (-h / 2) for h in range(1, 17)]))


@pytest.mark.parametrize("H", [1, 3, 5, 6, 12])
def test_slopes_for_other_head_counts_follow_the_authors_rule(H):
    n = 1 << (H.bit_length() - 1)
    expected = [2.0 ** (-8 * h / n) for h in range(1, n + 1)]
    expected += [2.0 ** (-8 * h / (2 * n)) for h in range(1, 2 * n + 1)][0::2][: H - n]
    slopes = alibi_slopes(H)
    torch.testing.assert_close(slopes, torch.tensor(expected))
    assert len(set(slopes.tolist())) == H and (slopes > 0).all() and (slopes <= 1).all()


def test_the_bias_is_minus_slope_times_distance():
    bias = alibi_bias(4, 5, 7)  # (H, L, S)
    m = alibi_slopes(4)
    for h in range(4):
        for p in range(5):
            for q in range(7):
                assert bias[h, p, q] == -m[h] * abs(p - q)
    assert (bias.diagonal(dim1=1, dim2=2) == 0).all()


def test_attention_with_the_bias_matches_pytorchs_float_attn_mask():
    g = torch.Generator().manual_seed(0)
    B, H, L, S, E = 2, 4, 6, 6, 8
    q, k, v = (torch.randn(B, H, n, E, generator=g, dtype=torch.float64) for n in (L, S, S))
    bias = alibi_bias(H, L, S).double()
    causal = causal_mask(L)  # (L, S): True = may attend
    ours, _ = scaled_dot_product_attention(q, k, v, causal, bias=bias[None])
    additive = bias.masked_fill(~causal, float("-inf"))  # PyTorch: a float mask is added to the scores
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=additive)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_multi_head_attention_with_alibi_adds_exactly_that_bias():
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4, alibi=True).double()
    plain = MultiHeadAttention(16, 4).double()
    plain.load_state_dict(mha.state_dict())
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    _, w_alibi = mha(x, x, x, causal_mask(7))
    _, w_plain = plain(x, x, x, causal_mask(7))
    # the log-weights differ by the bias, up to a constant per row
    diff = (w_alibi.log() - w_plain.log()) - alibi_bias(4, 7, 7).double()
    keep = causal_mask(7).expand_as(diff)
    rows = diff.masked_fill(~keep, 0.0)
    first = diff[..., :1]  # key 0 is allowed for every query
    torch.testing.assert_close(rows, (first.expand_as(diff)).masked_fill(~keep, 0.0), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("call, match", [
    (lambda: alibi_slopes(0), "num_heads must be a positive int"),
    (lambda: alibi_bias(4, 0, 3), "query_len must be a positive int"),
    (lambda: scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4),
                                          bias=torch.zeros(3, 4)), r"bias \(3, 4\) must be \(L, S\)"),
    (lambda: scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4),
                                          bias=torch.full((3, 5), float("nan"))), "NaN"),
    (lambda: scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4),
                                          bias=torch.zeros(3, 5, dtype=torch.long)), "float tensor"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
