"""Next-token choice (``attention_course.sampling``): top-k and top-p keep exactly what their
definitions say, temperature 0 is greedy, draws follow the softmax, and bad input is refused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attention_course.sampling import sample_next, top_k_filter, top_p_filter

logit_rows = st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=1, max_size=12).map(
    lambda xs: torch.tensor(xs))


def _top_p_reference(logits: torch.Tensor, p: float) -> torch.Tensor:
    """The smallest set of most probable tokens with mass >= p, found by trying every prefix."""
    probs = logits.double().softmax(-1)
    order = probs.argsort(descending=True, stable=True)
    for n in range(1, len(order) + 1):
        if probs[order[:n]].sum() >= p - 1e-6:
            break
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order[:n]] = True
    return keep


@settings(max_examples=200, deadline=None)
@given(logit_rows, st.data())
def test_top_k_keeps_exactly_the_k_largest(row, data):
    k = data.draw(st.integers(1, len(row)))
    before = row.clone()
    out = top_k_filter(row, k)
    assert torch.equal(row, before)  # input untouched
    kept = torch.isfinite(out)
    assert int(kept.sum()) == k
    assert torch.equal(out[kept], row[kept])  # kept logits unchanged
    if k < len(row):
        assert row[kept].min() >= row[~kept].max()  # nothing dropped beats anything kept


@settings(max_examples=200, deadline=None)
@given(logit_rows, st.floats(0.01, 0.99))
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(row, p):
    out = top_p_filter(row, p)
    kept = torch.isfinite(out)
    probs = row.double().softmax(-1)
    assert probs[kept].sum() >= p - 1e-5  # enough mass
    smallest = probs[kept].min()
    assert probs[kept].sum() - smallest < p + 1e-5  # and no token more than needed
    if (~kept).any():
        assert probs[~kept].max() <= smallest + 1e-7  # the kept ones are the most probable
    ties = (probs - smallest).abs() < 1e-6
    assert torch.equal(kept | ties, _top_p_reference(row, p) | ties)


def test_top_p_edge_cases():
    logits = torch.tensor([[3.0, 1.0, 0.5, -2.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(top_p_filter(logits, 1.0), logits)  # p = 1: everything
    tiny = top_p_filter(logits, 1e-9)
    assert torch.isfinite(tiny[0]).tolist() == [True, False, False, False]  # the top token always
    half = top_p_filter(logits[1:], 0.5)  # four equal tokens: two of them hold 0.5
    assert int(torch.isfinite(half).sum()) == 2


def test_temperature_zero_is_greedy_and_a_tiny_one_too():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 30, generator=g)
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(-1))
    assert torch.equal(sample_next(logits, temperature=1e-30, generator=g), logits.argmax(-1))  # no NaN


def test_draws_follow_the_softmax_of_the_filtered_logits():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0])
    g = torch.Generator().manual_seed(1)
    n = 40_000
    for kwargs, probs in [
        ({}, logits.softmax(-1)),
        ({"temperature": 2.0}, (logits / 2).softmax(-1)),
        ({"top_k": 2}, torch.tensor([2.0, 1.0]).softmax(-1).tolist() + [0, 0, 0]),
        ({"top_p": 0.8}, top_p_filter(logits, 0.8).softmax(-1)),
    ]:
        draws = sample_next(logits.expand(n, -1), generator=g, **kwargs)
        freq = torch.bincount(draws, minlength=5).double() / n
        assert torch.allclose(freq, torch.as_tensor(probs).double(), atol=0.01), (kwargs, freq)


def test_a_generator_makes_draws_repeatable_and_shapes_are_kept():
    logits = torch.randn(2, 3, 7)
    a = sample_next(logits, top_k=3, top_p=0.9, generator=torch.Generator().manual_seed(5))
    b = sample_next(logits, top_k=3, top_p=0.9, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 3) and a.dtype == torch.long and torch.equal(a, b)


@pytest.mark.parametrize("call, match", [
    (lambda: top_k_filter(torch.randn(2, 5), 0), r"k must be an int in 1..V=5 \(logits \(2, 5\)\)"),
    (lambda: top_k_filter(torch.randn(2, 5), 6), "1..V=5"),
    (lambda: top_k_filter(torch.randn(2, 5), 2.0), "k must be an int"),
    (lambda: top_p_filter(torch.randn(5), 0.0), r"p must be a number in \(0, 1\]"),
    (lambda: top_p_filter(torch.randn(5), 1.5), "p must be"),
    (lambda: sample_next(torch.randn(5), temperature=-1), "temperature must be"),
    (lambda: sample_next(torch.randn(5), temperature=float("nan")), "temperature must be"),
    (lambda: sample_next(torch.tensor([1.0, float("nan")])), r"logits \(2,\) contain NaN"),
    (lambda: sample_next(torch.full((2, 3), float("-inf"))), "every token is -inf"),
    (lambda: sample_next(torch.tensor([1, 2])), "floating-point"),
    (lambda: sample_next(torch.zeros(3, 0)), r"V >= 1 tokens, got \(3, 0\)"),
])
def test_bad_input_is_refused_with_the_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()
