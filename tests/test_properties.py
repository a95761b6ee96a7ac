"""Invariants of attention, checked with hypothesis (200 examples each, see conftest.py).

Shapes are drawn small (B 1..3, L and S 1..7, E 1..8); tensors come from a
drawn integer seed through a ``torch.Generator``, so an example is a handful
of integers and replays exactly.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_course import (
    MultiHeadAttention,
    causal_mask,
    hard_attention,
    masked_softmax,
    rotary_embedding,
    scaled_dot_product_attention,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)

seeds = st.integers(min_value=0, max_value=2**32 - 1)
batch_sizes = st.integers(1, 3)
lengths = st.integers(1, 7)
features = st.integers(1, 8)
float_dtypes = st.sampled_from([torch.float32, torch.float64])


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_mask(g: torch.Generator, shape: tuple[int, ...], kind: str) -> torch.Tensor | None:
    """None, or a bool mask of ``shape``: random, with fully masked rows, or all False."""
    if kind == "none":
        return None
    if kind == "all_masked":
        return torch.zeros(shape, dtype=torch.bool)
    p = {"sparse": 0.2, "dense": 0.7}[kind]
    return torch.rand(shape, generator=g) < p  # may well contain fully masked rows


mask_kinds = st.sampled_from(["none", "sparse", "dense", "all_masked"])


@st.composite
def attention_problems(draw, equal_lengths: bool = False):
    """query (B, L, E), key (B, S, E), value (B, S, Ev), mask (B, L, S), (L, S) or None."""
    B, L, E, Ev = draw(batch_sizes), draw(lengths), draw(features), draw(features)
    S = L if equal_lengths else draw(lengths)
    dtype = draw(float_dtypes)
    magnitude = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e4]))
    g = generator(draw(seeds))
    q = torch.randn(B, L, E, generator=g, dtype=dtype) * magnitude
    k = torch.randn(B, S, E, generator=g, dtype=dtype)
    v = torch.randn(B, S, Ev, generator=g, dtype=dtype)
    mask_shape = draw(st.sampled_from([(B, L, S), (L, S), (B, 1, S)]))
    mask = make_mask(g, mask_shape, draw(mask_kinds))
    return q, k, v, mask


def allowed(mask: torch.Tensor | None, weights: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(weights, dtype=torch.bool)
    return mask.expand_as(weights)


# --- soft attention: weights are a distribution over the allowed keys


@given(attention_problems())
def test_weights_are_a_distribution_over_allowed_keys(problem) -> None:
    q, k, v, mask = problem
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ok = allowed(mask, weights)  # (B, L, S)
    live = ok.any(-1)  # (B, L): rows with at least one key
    tol = 1e-5 if q.dtype == torch.float32 else 1e-12

    assert not weights.isnan().any() and not out.isnan().any()
    assert (weights >= 0).all() and (weights <= 1).all()
    assert (weights[~ok] == 0).all(), "masked keys get exactly zero weight"
    sums = weights.sum(-1)  # (B, L)
    torch.testing.assert_close(sums[live], torch.ones_like(sums[live]), atol=tol, rtol=0)
    assert (weights[~live] == 0).all(), "fully masked rows get zero weights"
    assert (out[~live] == 0).all(), "fully masked rows get a zero output"
    # the output is the weighted sum of the values
    torch.testing.assert_close(out, weights @ v, atol=0, rtol=0)


@given(attention_problems())
def test_masked_softmax_never_nan_and_never_modifies_its_input(problem) -> None:
    q, k, _, mask = problem
    scores = (q @ k.transpose(-2, -1)) * 1e3  # (B, L, S), up to ~1e8: far beyond exp's range
    scores_before = scores.clone()
    mask_before = None if mask is None else mask.clone()
    weights = masked_softmax(scores, mask)
    assert not weights.isnan().any()
    assert weights.dtype == scores.dtype and weights.shape == scores.shape
    assert torch.equal(scores, scores_before)
    if mask is not None:
        assert torch.equal(mask, mask_before)
    # the largest allowed score of a row always gets the largest weight
    ok = allowed(mask, weights)
    live = ok.any(-1)
    top = scores.masked_fill(~ok, float("-inf")).argmax(-1)  # (B, L)
    assert (weights.gather(-1, top[..., None])[..., 0][live] == weights.amax(-1)[live]).all()


# --- permutation equivariance of self-attention without positions


@st.composite
def self_attention_problems(draw):
    """X (B, T, D), a permutation of 0..T-1, a MultiHeadAttention (D, H) and a seed."""
    B, T, D = draw(batch_sizes), draw(lengths), draw(features)
    H = draw(st.sampled_from([h for h in range(1, D + 1) if D % h == 0]))
    perm = draw(st.permutations(range(T)))
    g = generator(draw(seeds))
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    mha = MultiHeadAttention(D, H).double()
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(D))
    return x, torch.tensor(perm, dtype=torch.long), mha


@given(self_attention_problems())
def test_multihead_self_attention_is_permutation_equivariant(problem) -> None:
    x, perm, mha = problem
    with torch.no_grad():
        out, weights = mha(x, x, x)
        out_p, weights_p = mha(x[:, perm], x[:, perm], x[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-10, rtol=1e-10)
    # weights (B, H, T, T): both the query and the key axis are permuted
    torch.testing.assert_close(weights_p, weights[:, :, perm][:, :, :, perm], atol=1e-12, rtol=1e-10)


@given(self_attention_problems())
def test_sdpa_self_attention_is_permutation_equivariant(problem) -> None:
    x, perm, _ = problem
    out, weights = scaled_dot_product_attention(x, x, x)
    out_p, weights_p = scaled_dot_product_attention(x[:, perm], x[:, perm], x[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(weights_p, weights[:, perm][:, :, perm], atol=1e-12, rtol=1e-10)


# --- causality


@given(self_attention_problems(), st.data())
def test_causal_output_ignores_later_tokens(problem, data) -> None:
    x, _, mha = problem
    B, T, D = x.shape
    t = data.draw(st.integers(0, T - 1), label="t")
    g = generator(data.draw(seeds, label="seed"))
    changed = x.clone()
    changed[:, t + 1 :] = torch.randn(B, T - t - 1, D, generator=g, dtype=x.dtype) * 10
    mask = causal_mask(T)
    with torch.no_grad():
        out, weights = mha(x, x, x, mask)
        out_c, _ = mha(changed, changed, changed, mask)
        unmasked, _ = mha(x, x, x)
        unmasked_c, _ = mha(changed, changed, changed)
    torch.testing.assert_close(out_c[:, : t + 1], out[:, : t + 1], atol=1e-12, rtol=0)
    assert (weights.triu(diagonal=1) == 0).all()
    if t < T - 1:  # the test has teeth: without the mask, the past does see the future
        assert not torch.allclose(unmasked_c[:, : t + 1], unmasked[:, : t + 1], atol=1e-9)


# --- sinusoidal encodings: a shift by k is one linear map M_k


@given(
    P=st.integers(1, 200),
    half_D=st.integers(1, 16),
    k=st.integers(0, 300),
    base=st.sampled_from([10000.0, 100.0]),
)
def test_sinusoidal_shift_is_one_linear_map(P: int, half_D: int, k: int, base: float) -> None:
    D = 2 * half_D
    pe = sinusoidal_encoding(P + k, D, base).double()  # (P + k, D)
    m = sinusoidal_shift_matrix(k, D, base)  # (D, D), float64
    assert m.shape == (D, D) and m.dtype == torch.float64
    shifted = pe[:P] @ m.T  # row p is M_k PE[p]: the same matrix for every p
    torch.testing.assert_close(shifted, pe[k : k + P], atol=1e-5, rtol=0)
    # M_k is a rotation: orthogonal, and shifting by k then by 1 is shifting by k + 1
    torch.testing.assert_close(m @ m.T, torch.eye(D, dtype=torch.float64), atol=1e-12, rtol=0)
    m_next = sinusoidal_shift_matrix(k + 1, D, base)
    torch.testing.assert_close(sinusoidal_shift_matrix(1, D, base) @ m, m_next, atol=1e-12, rtol=0)


@given(P=st.integers(1, 64), half_D=st.integers(1, 8))
def test_sinusoidal_encoding_follows_the_formula(P: int, half_D: int) -> None:
    D = 2 * half_D
    pe = sinusoidal_encoding(P, D)
    assert pe.shape == (P, D) and pe.dtype == torch.float32
    expected = [
        [f(p * 10000.0 ** (-2 * i / D)) for i in range(half_D) for f in (math.sin, math.cos)] for p in range(P)
    ]
    torch.testing.assert_close(pe.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)


# --- rotary: scores depend only on the offset, and norms are kept


@given(
    seed=seeds,
    half_E=st.integers(1, 4),
    p=st.integers(0, 500),
    p2=st.integers(0, 500),
    s=st.integers(-200, 500),
    fractional=st.booleans(),
)
def test_rotary_scores_depend_only_on_the_offset(
    seed: int, half_E: int, p: int, p2: int, s: int, fractional: bool
) -> None:
    E = 2 * half_E
    g = generator(seed)
    q, k = torch.randn(2, 1, E, generator=g, dtype=torch.float64)  # (T=1, E) each
    offset = 0.5 if fractional else 0.0
    pos = lambda n: torch.tensor([n + offset], dtype=torch.float64)  # noqa: E731

    def score(a: float, b: float) -> torch.Tensor:
        return (rotary_embedding(q, positions=pos(a)) * rotary_embedding(k, positions=pos(b))).sum()

    torch.testing.assert_close(score(p, p2), score(p + s, p2 + s), atol=1e-9, rtol=1e-9)
    for x, n in ((q, p), (k, p2)):
        rotated = rotary_embedding(x, positions=pos(n))
        torch.testing.assert_close(rotated.norm(), x.norm(), atol=1e-12, rtol=1e-12)
        # each (2i, 2i+1) pair keeps its own norm: a rotation per pair, not a mix of pairs
        torch.testing.assert_close(
            rotated.view(E // 2, 2).norm(dim=-1), x.view(E // 2, 2).norm(dim=-1), atol=1e-12, rtol=1e-12
        )


@given(seed=seeds, B=batch_sizes, T=lengths, half_E=st.integers(1, 4))
def test_rotary_default_positions_and_batches(seed: int, B: int, T: int, half_E: int) -> None:
    E = 2 * half_E
    x = torch.randn(B, T, E, generator=generator(seed), dtype=torch.float64)
    out = rotary_embedding(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, rotary_embedding(x, positions=torch.arange(T)), atol=0, rtol=0)
    torch.testing.assert_close(out[:, 0], x[:, 0], atol=0, rtol=0)  # position 0 is no rotation
    # pair i at position t is rotated by the angle t * 10000^(-2i/E)
    for i in range(half_E):
        angle = torch.arange(T, dtype=torch.float64) * 10000.0 ** (-2 * i / E)  # (T,)
        c, s_ = torch.cos(angle), torch.sin(angle)
        x0, x1 = x[..., 2 * i], x[..., 2 * i + 1]
        torch.testing.assert_close(out[..., 2 * i], x0 * c - x1 * s_, atol=1e-12, rtol=0)
        torch.testing.assert_close(out[..., 2 * i + 1], x0 * s_ + x1 * c, atol=1e-12, rtol=0)


@given(seed=seeds, B=batch_sizes, T=st.integers(2, 7), H=st.integers(1, 3), half_E=st.integers(1, 3))
def test_rotary_multihead_weights_depend_only_on_the_offset(seed: int, B: int, T: int, H: int, half_E: int) -> None:
    """With rotary=True and one token at every position, the score of (i, j) is a function of i - j,
    and the module's weights are the causal softmax of those scores."""
    torch.manual_seed(seed)
    D = H * 2 * half_E
    mha = MultiHeadAttention(D, H, rotary=True).double()
    token = torch.randn(B, 1, D, generator=generator(seed), dtype=torch.float64)
    x = token.expand(B, T, D)  # one token repeated: only the positions differ
    _, w = mha(x, x, x, causal_mask(T))  # (B, H, T, T)
    q = rotary_embedding(mha.q_proj(x).view(B, T, H, -1).transpose(1, 2))  # (B, H, T, E)
    k = rotary_embedding(mha.k_proj(x).view(B, T, H, -1).transpose(1, 2))
    scores = q @ k.transpose(-2, -1)  # (B, H, T, T)
    for offset in range(-T + 1, T):
        diag = torch.diagonal(scores, offset=-offset, dim1=-2, dim2=-1)  # entries with i - j = offset
        torch.testing.assert_close(diag, diag[..., :1].expand_as(diag), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(w, torch.softmax(scores.masked_fill(~causal_mask(T), float("-inf")) / (D // H) ** 0.5, -1))


@given(seed=seeds, B=batch_sizes, L=lengths, S=lengths, H=st.integers(1, 3), half_E=st.integers(1, 3))
def test_rotary_multihead_matches_torch_sdpa_on_rotated_heads(seed, B, L, S, H, half_E) -> None:
    """Our rotary module = rotate each head's q and k, then torch's own scaled_dot_product_attention."""
    torch.manual_seed(seed)
    D = H * 2 * half_E
    mha = MultiHeadAttention(D, H, rotary=True).double()
    g = generator(seed)
    query = torch.randn(B, L, D, generator=g, dtype=torch.float64)
    memory = torch.randn(B, S, D, generator=g, dtype=torch.float64)
    out, _ = mha(query, memory, memory)
    q = rotary_embedding(mha.q_proj(query).view(B, L, H, -1).transpose(1, 2))  # (B, H, L, E)
    k = rotary_embedding(mha.k_proj(memory).view(B, S, H, -1).transpose(1, 2))  # (B, H, S, E)
    v = mha.v_proj(memory).view(B, S, H, -1).transpose(1, 2)  # (B, H, S, E), not rotated
    heads = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # (B, H, L, E)
    expected = mha.out_proj(heads.transpose(1, 2).reshape(B, L, D))
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-10)


# --- hard attention


@st.composite
def hard_problems(draw):
    q, k, v, mask = draw(attention_problems())
    S = k.shape[-2]
    return q, k, v, mask, draw(st.integers(1, S))


def check_hard_weights(weights: torch.Tensor, out: torch.Tensor, v: torch.Tensor, mask, k: int) -> None:
    ok = allowed(mask, weights)
    assert ((weights == 0) | (weights == 1)).all()
    assert (weights[~ok] == 0).all(), "a masked key is never chosen"
    count = weights.sum(-1)  # (B, L)
    expected_count = ok.sum(-1).clamp(max=k).to(count.dtype)  # k, or all the allowed keys if fewer
    assert torch.equal(count, expected_count)
    # the output is the mean of the chosen values (zero when nothing is chosen)
    tol = 1e-5 if v.dtype == torch.float32 else 1e-12
    mean = (weights @ v) / count.clamp(min=1)[..., None]
    torch.testing.assert_close(out, mean, atol=tol, rtol=tol)
    chosen_rows = [(b, i) for b in range(weights.shape[0]) for i in range(weights.shape[1])]
    for b, i in chosen_rows[:3]:  # spelled out for a few rows
        idx = weights[b, i].nonzero()[:, 0]
        if len(idx):
            torch.testing.assert_close(out[b, i], v[b, idx].mean(0), atol=tol, rtol=tol)
        else:
            assert (out[b, i] == 0).all()


@given(hard_problems())
def test_top_k_hard_attention(problem) -> None:
    q, k_, v, mask, k = problem
    out, weights = hard_attention(q, k_, v, k, mask)
    check_hard_weights(weights, out, v, mask, k)
    # the chosen keys score at least as high as every allowed key left out
    scores = (q @ k_.transpose(-2, -1)).double() / math.sqrt(q.shape[-1])  # (B, L, S)
    ok = allowed(mask, weights)
    chosen = weights.bool()
    low_chosen = scores.masked_fill(~chosen, float("inf")).amin(-1)  # (B, L)
    high_left = scores.masked_fill(chosen | ~ok, float("-inf")).amax(-1)  # (B, L)
    has_both = chosen.any(-1) & (ok & ~chosen).any(-1)
    tol = 1e-4 * scores.abs().amax().clamp(min=1)
    assert (low_chosen[has_both] >= high_left[has_both] - tol).all()


@given(attention_problems())
def test_top_1_hard_attention_picks_the_argmax(problem) -> None:
    q, k, v, mask = problem
    out, weights = hard_attention(q, k, v, 1, mask)
    ok = allowed(mask, weights)
    live = ok.any(-1)  # (B, L)
    scores = (q @ k.transpose(-2, -1)).double().masked_fill(~ok, float("-inf"))  # (B, L, S)
    top2 = scores.topk(min(2, scores.shape[-1]), dim=-1).values  # (B, L, 1 or 2)
    gap = top2[..., 0] - top2[..., -1] if top2.shape[-1] == 2 else torch.full_like(top2[..., 0], float("inf"))
    clear = live & (gap > 1e-4 * top2[..., 0].abs().clamp(min=1))  # rows whose argmax no rounding can flip
    assert torch.equal(weights.argmax(-1)[clear], scores.argmax(-1)[clear])
    assert (weights.sum(-1)[live] == 1).all() and (weights.sum(-1)[~live] == 0).all()
    picked = v.gather(1, weights.argmax(-1)[..., None].expand(-1, -1, v.shape[-1]))  # (B, L, Ev)
    assert torch.equal(out[live], picked[live]), "k = 1: the output is the chosen value itself"


@given(hard_problems(), seeds)
def test_sampled_hard_attention_is_reproducible_and_respects_the_mask(problem, seed: int) -> None:
    q, k_, v, mask, k = problem
    out1, w1 = hard_attention(q, k_, v, k, mask, sample=True, generator=generator(seed))
    out2, w2 = hard_attention(q, k_, v, k, mask, sample=True, generator=generator(seed))
    assert torch.equal(w1, w2) and torch.equal(out1, out2)
    check_hard_weights(w1, out1, v, mask, k)


def test_sampled_hard_attention_frequencies_approach_softmax() -> None:
    """Statistical: with k = 1, the key chosen in 20000 draws follows softmax(scores)."""
    N, S, E = 20000, 5, 4
    g = generator(2024)
    query = torch.randn(1, 1, E, generator=g, dtype=torch.float64)
    key = torch.randn(1, S, E, generator=g, dtype=torch.float64)
    value = torch.randn(1, S, 3, generator=g, dtype=torch.float64)
    scores = (query @ key.transpose(-2, -1))[0, 0] / math.sqrt(E)  # (S,)
    target = torch.softmax(scores, -1)
    assert target.max() < 0.9, "the distribution must not be nearly deterministic, or the test says little"

    q, k, v = query.expand(N, 1, E), key.expand(N, S, E), value.expand(N, S, 3)  # N independent draws
    _, weights = hard_attention(q, k, v, 1, sample=True, generator=generator(7))  # (N, 1, S)
    freq = weights[:, 0].mean(0)  # (S,)
    torch.testing.assert_close(freq, target, atol=0.02, rtol=0)

    # with a mask: the frequencies follow the softmax over the allowed keys only
    mask = torch.tensor([[True, False, True, True, False]])  # (L=1, S)
    _, weights = hard_attention(q, k, v, 1, mask, sample=True, generator=generator(8))
    freq = weights[:, 0].mean(0)
    target = torch.softmax(scores.masked_fill(~mask[0], float("-inf")), -1)
    torch.testing.assert_close(freq, target, atol=0.02, rtol=0)
    assert (freq[~mask[0]] == 0).all()


def test_sampled_hard_attention_uses_the_generator() -> None:
    g = generator(99)
    q, k, v = torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 2, generator=g)
    draws = {
        tuple(hard_attention(q, k, v, 2, sample=True, generator=generator(s))[1].flatten().tolist()) for s in range(20)
    }
    assert len(draws) > 1, "different generator seeds must give different samples"
    torch.manual_seed(0)  # the global generator must not matter when one is passed
    _, first = hard_attention(q, k, v, 2, sample=True, generator=generator(5))
    torch.manual_seed(1)
    _, again = hard_attention(q, k, v, 2, sample=True, generator=generator(5))
    assert torch.equal(again, first)
