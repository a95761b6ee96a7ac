"""The five scoring rules against the formula, written as a loop over (query, key) pairs."""

from __future__ import annotations

import math

import pytest
import torch

from attention_course import (
    SCORE_RULES,
    additive_scores,
    concat_scores,
    dot_scores,
    general_scores,
    make_score,
    scaled_dot_scores,
)

B, L, S, Eq, Ek, A = 2, 3, 4, 5, 6, 7


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def pairwise(rule, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """scores[b, i, j] = rule(query[b, i], key[b, j]), one pair at a time."""
    out = torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype)
    for b in range(query.shape[0]):
        for i in range(query.shape[1]):
            for j in range(key.shape[1]):
                out[b, i, j] = rule(query[b, i], key[b, j])
    return out


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-12, rtol=1e-12)


@pytest.fixture
def qk_same() -> tuple[torch.Tensor, torch.Tensor]:
    return randn(B, L, Ek, seed=1), randn(B, S, Ek, seed=2)


@pytest.fixture
def qk_diff() -> tuple[torch.Tensor, torch.Tensor]:
    return randn(B, L, Eq, seed=3), randn(B, S, Ek, seed=4)


# --- each rule against its formula


def test_dot_scores_is_q_dot_k(qk_same) -> None:
    q, k = qk_same
    close(dot_scores(q, k), pairwise(lambda qi, kj: sum(qi[e] * kj[e] for e in range(Ek)), q, k))


def test_scaled_dot_scores_is_q_dot_k_over_sqrt_E(qk_same) -> None:
    q, k = qk_same
    expected = pairwise(lambda qi, kj: torch.dot(qi, kj) / math.sqrt(Ek), q, k)
    close(scaled_dot_scores(q, k), expected)
    close(scaled_dot_scores(q, k, scale=0.25), pairwise(lambda qi, kj: torch.dot(qi, kj) * 0.25, q, k))


def test_general_scores_is_q_W_k(qk_diff) -> None:
    q, k = qk_diff
    W = randn(Eq, Ek, seed=5)
    expected = pairwise(lambda qi, kj: sum(qi[a] * W[a, c] * kj[c] for a in range(Eq) for c in range(Ek)), q, k)
    close(general_scores(q, k, W), expected)


def test_concat_scores_is_v_tanh_W_q_k(qk_diff) -> None:
    q, k = qk_diff
    W, v = randn(A, Eq + Ek, seed=6), randn(A, seed=7)
    expected = pairwise(lambda qi, kj: torch.dot(v, torch.tanh(W @ torch.cat([qi, kj]))), q, k)
    close(concat_scores(q, k, W, v), expected)


def test_additive_scores_is_v_tanh_Wq_q_plus_Wk_k(qk_diff) -> None:
    q, k = qk_diff
    Wq, Wk, v = randn(A, Eq, seed=8), randn(A, Ek, seed=9), randn(A, seed=10)
    expected = pairwise(lambda qi, kj: torch.dot(v, torch.tanh(Wq @ qi + Wk @ kj)), q, k)
    close(additive_scores(q, k, Wq, Wk, v), expected)


def test_additive_equals_concat_with_W_split_in_two(qk_diff) -> None:
    q, k = qk_diff
    Wq, Wk, v = randn(A, Eq, seed=11), randn(A, Ek, seed=12), randn(A, seed=13)
    W = torch.cat([Wq, Wk], dim=1)  # (A, Eq + Ek) = [W_q | W_k]
    close(additive_scores(q, k, Wq, Wk, v), concat_scores(q, k, W, v))
    # and the split matters: swapping the blocks gives different scores
    swapped = torch.cat([Wk, Wq], dim=1)  # same shape, blocks in the wrong order
    assert not torch.allclose(additive_scores(q, k, Wq, Wk, v), concat_scores(q, k, swapped, v))


def test_rules_on_unbatched_and_multi_head_shapes() -> None:
    """(L, E) and (B, H, L, E) inputs give (L, S) and (B, H, L, S) scores, entry by entry the same."""
    q, k = randn(2, 3, L, Eq, seed=14), randn(2, 3, S, Ek, seed=15)
    W, v = randn(A, Eq + Ek, seed=16), randn(A, seed=17)
    Wq, Wk = W[:, :Eq], W[:, Eq:]
    batched = concat_scores(q, k, W, v)  # (2, 3, L, S)
    assert batched.shape == (2, 3, L, S)
    close(batched[1, 2], concat_scores(q[1, 2], k[1, 2], W, v))
    close(additive_scores(q, k, Wq, Wk, v)[0, 1], additive_scores(q[0, 1], k[0, 1], Wq, Wk, v))
    G = randn(Eq, Ek, seed=18)
    close(general_scores(q, k, G)[1, 0], general_scores(q[1, 0], k[1, 0], G))


# --- make_score


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_make_score_returns_a_working_module(rule: str) -> None:
    same_size = rule in ("dot", "scaled_dot")
    q_size = Ek if same_size else Eq
    torch.manual_seed(0)
    module = make_score(rule, q_size, Ek, A).double()
    assert isinstance(module, torch.nn.Module)
    q, k = randn(B, L, q_size, seed=19), randn(B, S, Ek, seed=20)
    scores = module(q, k)
    assert scores.shape == (B, L, S) and torch.isfinite(scores).all()

    # the module computes its rule with its own parameters
    params = dict(module.named_parameters())
    expected = {
        "dot": lambda: dot_scores(q, k),
        "scaled_dot": lambda: scaled_dot_scores(q, k),
        "general": lambda: general_scores(q, k, *params.values()),
        "concat": lambda: concat_scores(q, k, params["proj.weight"], params["v"]),
        "additive": lambda: additive_scores(q, k, params["proj_q.weight"], params["proj_k.weight"], params["v"]),
    }[rule]()
    close(scores, expected)

    if params:  # a trainable rule: every parameter receives a gradient
        scores.sum().backward()
        for name, p in params.items():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("dot", 0),
        ("scaled_dot", 0),
        ("general", Eq * Ek),
        ("concat", A * (Eq + Ek) + A),
        ("additive", A * Eq + A * Ek + A),
    ],
)
def test_parameter_counts(rule: str, expected: int) -> None:
    q_size = Ek if rule in ("dot", "scaled_dot") else Eq
    module = make_score(rule, q_size, Ek, A)
    assert sum(p.numel() for p in module.parameters()) == expected


def test_hidden_size_defaults_to_key_size() -> None:
    module = make_score("additive", Eq, Ek)
    assert sum(p.numel() for p in module.parameters()) == Ek * Eq + Ek * Ek + Ek


def test_make_score_rejects_an_unknown_rule() -> None:
    with pytest.raises(ValueError, match=r"rule must be one of .*'dot'.*got 'bilinear'"):
        make_score("bilinear", 4, 4)


@pytest.mark.parametrize("rule", ["dot", "scaled_dot"])
def test_make_score_rejects_dot_with_unequal_sizes(rule: str) -> None:
    with pytest.raises(ValueError, match=rf"{rule} scores need query_size == key_size, got 5 and 6"):
        make_score(rule, 5, 6)


def test_score_functions_reject_mismatched_parameters(qk_diff) -> None:
    q, k = qk_diff
    with pytest.raises(ValueError, match=rf"weight must be \(Eq, Ek\) = \({Eq}, {Ek}\), got \({Ek}, {Eq}\)"):
        general_scores(q, k, randn(Ek, Eq, seed=21))
    with pytest.raises(ValueError, match=rf"weight must be \(A, Eq \+ Ek\) = \(A, {Eq + Ek}\)"):
        concat_scores(q, k, randn(A, Eq, seed=22), randn(A, seed=23))
    with pytest.raises(ValueError, match=rf"v must be \(A,\) with A={A}"):
        additive_scores(q, k, randn(A, Eq, seed=24), randn(A, Ek, seed=25), randn(A + 1, seed=26))
    with pytest.raises(ValueError, match=rf"query has E={Eq} but key has E={Ek}"):
        dot_scores(q, k)
