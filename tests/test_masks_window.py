"""sliding_window_mask (chapter 11): against an explicit double loop, torch's tril/triu, and causal_mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_course.attention import scaled_dot_product_attention
from attention_course.masks import causal_mask, sliding_window_mask


def loop_mask(L: int, S: int, window: int, causal: bool) -> torch.Tensor:
    return torch.tensor(
        [[(0 <= i - j < window) if causal else (abs(i - j) < window) for j in range(S)] for i in range(L)],
        dtype=torch.bool,
    ).reshape(L, S)


@given(L=st.integers(1, 12), S=st.none() | st.integers(1, 12), window=st.integers(1, 14), causal=st.booleans())
def test_sliding_window_mask_matches_its_definition(L: int, S: int | None, window: int, causal: bool) -> None:
    mask = sliding_window_mask(L, window, S, causal=causal)
    assert mask.dtype == torch.bool and mask.shape == (L, L if S is None else S)
    assert torch.equal(mask, loop_mask(L, L if S is None else S, window, causal))


@pytest.mark.parametrize("L, S", [(6, 6), (4, 9), (9, 4)])
@pytest.mark.parametrize("window", [1, 2, 5])
def test_causal_window_is_a_band_of_the_causal_mask(L: int, S: int, window: int) -> None:
    mask = sliding_window_mask(L, window, S)
    assert torch.equal(mask, torch.ones(L, S, dtype=torch.bool).tril().triu(1 - window))
    assert not (mask & ~causal_mask(L, S)).any(), "never looks ahead"
    assert (mask.sum(-1) <= window).all()


def test_window_edge_cases() -> None:
    assert torch.equal(sliding_window_mask(5, 1), torch.eye(5, dtype=torch.bool))
    assert torch.equal(sliding_window_mask(5, 1, causal=False), torch.eye(5, dtype=torch.bool))
    assert torch.equal(sliding_window_mask(5, 5), causal_mask(5))
    assert torch.equal(sliding_window_mask(5, 99, 7), causal_mask(5, 7))
    assert sliding_window_mask(5, 5, causal=False).all()
    both = sliding_window_mask(6, 3, causal=False)
    assert torch.equal(both, both.T), "the two-sided window is symmetric when S = L"
    assert torch.equal(both, sliding_window_mask(6, 3) | sliding_window_mask(6, 3).T)


def test_windowed_attention_matches_torch_with_the_same_mask() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 8, 4, generator=g) for _ in range(3))
    mask = sliding_window_mask(8, 3)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6, rtol=1e-6)
    assert (weights[..., ~mask] == 0).all()


@pytest.mark.parametrize("args", [(0, 2), (3, 0), (3, 2, 0), (3.0, 2), (3, True), (3, 2, -1)])
def test_sliding_window_mask_rejects_bad_sizes(args: tuple) -> None:
    with pytest.raises(ValueError):
        sliding_window_mask(*args)
