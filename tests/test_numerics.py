"""Numerics: huge logits, half precision, and gradients through fully masked rows."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from attention_course import (
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
    scaled_dot_product_attention,
    softmax,
)

HALF_TOL = {torch.float16: 1e-2, torch.bfloat16: 5e-2}


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def two_way(gap: float) -> tuple[float, float]:
    """Exact softmax of two logits that differ by ``gap``: (larger, smaller)."""
    small = math.exp(-gap) / (1.0 + math.exp(-gap))  # gap >= 0: no overflow
    return 1.0 - small, small


# --- logits of +-1e4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_of_huge_logits_is_exact(dtype: torch.dtype) -> None:
    x = torch.tensor(
        [
            [1e4, -1e4, 0.0],
            [1e4, 1e4, -1e4],
            [-1e4, -1e4 + 1.0, -1e4],
            [1e4, 1e4 - 2.0, -1e4],
        ],
        dtype=dtype,
    )
    a, b = two_way(2.0)
    third = math.e / (2 + math.e)
    expected = torch.tensor(
        [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.0],
            [1 / (2 + math.e), third, 1 / (2 + math.e)],
            [a, b, 0.0],
        ],
        dtype=dtype,
    )
    before = x.clone()
    for weights in (softmax(x), masked_softmax(x), masked_softmax(x, torch.ones(4, 3, dtype=torch.bool))):
        assert torch.isfinite(weights).all()
        torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-6)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_softmax_of_huge_logits_is_exact(dtype: torch.dtype) -> None:
    x = torch.tensor(
        [
            [1e4, -1e4, 1e4 - 1.0],  # the 1e4 is masked: what remains is a two-way softmax
            [1e4, -1e4, 0.0],  # only -1e4 is allowed: it gets all the weight
            [1e4, -1e4, 0.0],  # nothing allowed
            [-1e4, 1e4, 1e4],
        ],
        dtype=dtype,
    )
    mask = torch.tensor(
        [
            [False, True, True],
            [False, True, False],
            [False, False, False],
            [True, True, False],
        ]
    )
    a, b = two_way(2e4 - 1.0)  # exp(-19999) underflows: exactly (1, 0) in any float
    expected = torch.tensor([[0.0, b, a], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    weights = masked_softmax(x, mask)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sdpa_with_scores_of_1e4_is_exact(dtype: torch.dtype) -> None:
    E = 4  # scale 1/2
    query = torch.tensor([[[200.0, 0, 0, 0], [0, 200.0, 0, 0]]], dtype=dtype)  # (1, L=2, E)
    key = torch.tensor([[[100.0, 0, 0, 0], [99.99, 100.0, 0, 0], [-100.0, -100.0, 0, 0]]], dtype=dtype)  # (1, S=3, E)
    value = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]], dtype=dtype)  # (1, S, Ev)
    out, weights = scaled_dot_product_attention(query, key, value)
    scores = query @ key.transpose(-2, -1) / math.sqrt(E)
    assert scores.abs().max() >= 1e4 - 1  # the point of the test: logits of about 1e4
    # row 0: scores (1e4, 9999, -1e4); row 1: scores (0, 1e4, -1e4)
    a, b = two_way(float(scores[0, 0, 0] - scores[0, 0, 1]))
    expected_w = torch.tensor([[[a, b, 0.0], [0.0, 1.0, 0.0]]], dtype=dtype)
    torch.testing.assert_close(weights, expected_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, expected_w @ value, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()

    # with a causal mask, query 0 sees only key 0 and query 1 sees keys 0 and 1
    out, weights = scaled_dot_product_attention(query, key, value, causal_mask(2, 3))
    torch.testing.assert_close(weights, torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=dtype), atol=1e-6, rtol=0)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=dtype), atol=1e-6, rtol=0)


# --- float16 and bfloat16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_softmax_and_masked_softmax(dtype: torch.dtype) -> None:
    x = randn(3, 4, 6, seed=1) * 4
    x[0, 0, 0] = 6e4 if dtype == torch.float16 else 1e30  # near the top of the format: no overflow
    mask = torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(2)) < 0.6
    mask[1, 2] = False  # a fully masked row
    low = x.to(dtype)
    for ours, reference in (
        (softmax(low), softmax(low.float())),
        (masked_softmax(low, mask), masked_softmax(low.float(), mask)),
        (masked_softmax(low, mask[0]), masked_softmax(low.float(), mask[0])),  # an (L, S) mask
    ):
        assert ours.dtype == dtype
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours.float(), reference, atol=HALF_TOL[dtype], rtol=0)
    assert (masked_softmax(low, mask)[1, 2] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("use_mask", [False, True])
def test_low_precision_sdpa(dtype: torch.dtype, use_mask: bool) -> None:
    q, k, v = randn(2, 3, 5, 8, seed=3), randn(2, 3, 7, 8, seed=4), randn(2, 3, 7, 4, seed=5)
    mask = causal_mask(5, 7) if use_mask else None
    out, weights = scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask)
    out32, weights32 = scaled_dot_product_attention(q, k, v, mask)
    assert out.dtype == weights.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    tol = HALF_TOL[dtype]
    torch.testing.assert_close(weights.float(), weights32, atol=tol, rtol=tol)
    torch.testing.assert_close(out.float(), out32, atol=2 * tol, rtol=2 * tol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_multihead_attention(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    low = copy.deepcopy(mha).to(dtype)
    q, kv = randn(2, 5, 16, seed=6), randn(2, 7, 16, seed=7)
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(8)) < 0.7
    with torch.no_grad():
        out, weights = low(q.to(dtype), kv.to(dtype), kv.to(dtype), mask)
        out32, weights32 = mha(q, kv, kv, mask)
    assert out.dtype == weights.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    tol = HALF_TOL[dtype]
    torch.testing.assert_close(weights.float(), weights32, atol=tol, rtol=tol)
    torch.testing.assert_close(out.float(), out32, atol=2 * tol, rtol=2 * tol)


# --- gradients


def test_gradient_through_a_fully_masked_row_is_finite() -> None:
    scores = randn(2, 3, 4, seed=9, dtype=torch.float64).requires_grad_()
    mask = torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, True, True]])
    upstream = randn(2, 3, 4, seed=10, dtype=torch.float64)
    (masked_softmax(scores, mask) * upstream).sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    assert (scores.grad[:, 1] == 0).all(), "a fully masked row has no gradient"
    assert (scores.grad[:, 0, 1] == 0).all(), "a masked key has no gradient"

    # on the other rows the gradient is torch's own softmax gradient
    reference = scores.detach().clone().requires_grad_()
    (torch.softmax(reference.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0) * upstream).sum().backward()
    live = mask.any(-1)
    torch.testing.assert_close(scores.grad[:, live], reference.grad[:, live], atol=1e-12, rtol=0)


def test_gradient_through_sdpa_with_a_fully_masked_row_is_finite() -> None:
    q, k, v = (randn(2, 4, 3, seed=11 + i).requires_grad_() for i in range(3))
    mask = causal_mask(4)
    mask = mask.clone()
    mask[2] = False  # query 2 sees nothing
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    assert (out[:, 2] == 0).all()
    out.square().sum().backward()
    for t in (q, k, v):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert (q.grad[:, 2] == 0).all(), "a query with no keys gets no gradient"
    assert q.grad[:, 1].abs().sum() > 0, "the other queries do"
