"""Bad input: one test per ValueError, each checking that the message names
what it got and what it expected; and no public function modifies its input."""

from __future__ import annotations

import re

import pytest
import torch

from attention_course import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    hard_attention,
    masked_softmax,
    padding_mask,
    rotary_embedding,
    scaled_dot_product_attention,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
    split_heads,
)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- scaled_dot_product_attention and masks


def test_query_and_key_feature_sizes_differ() -> None:
    q, k, v = randn(2, 3, 64), randn(2, 5, 32), randn(2, 5, 16)
    with pytest.raises(ValueError, match=r"query has E=64 but key has E=32") as info:
        scaled_dot_product_attention(q, k, v)
    assert "(2, 3, 64)" in str(info.value) and "(2, 5, 32)" in str(info.value)


def test_key_and_value_lengths_differ() -> None:
    q, k, v = randn(2, 3, 8), randn(2, 5, 8), randn(2, 4, 8)
    with pytest.raises(ValueError, match=r"key has S=5 positions but value has S=4") as info:
        scaled_dot_product_attention(q, k, v)
    assert "(2, 5, 8)" in str(info.value) and "(2, 4, 8)" in str(info.value)


@pytest.mark.parametrize(
    "mask_shape",
    [(3, 6), (4, 5), (2, 4, 6), (3, 4, 5)],
    ids=["LS-wrong-S", "LS-wrong-L", "BLS-wrong-S", "BLS-wrong-B"],
)
def test_mask_that_does_not_broadcast(mask_shape: tuple[int, ...]) -> None:
    q, k, v = randn(2, 3, 8), randn(2, 5, 8), randn(2, 5, 8)
    mask = torch.ones(mask_shape, dtype=torch.bool)
    shape = re.escape("(" + ", ".join(map(str, mask_shape)) + ")")
    with pytest.raises(ValueError, match=rf"mask {shape} does not broadcast to the scores \(2, 3, 5\)"):
        scaled_dot_product_attention(q, k, v, mask)


def test_three_dim_mask_against_four_dim_scores_is_rejected_even_when_B_equals_H() -> None:
    B = H = 2
    T = 4
    q = k = v = randn(B, H, T, 8)
    mask = torch.ones(B, T, T, dtype=torch.bool)  # right-aligned broadcasting would line B up with H
    expected = r"mask \(2, 4, 4\) has 3 dims but the scores \(2, 2, 4, 4\) have 4"
    with pytest.raises(ValueError, match=expected):
        scaled_dot_product_attention(q, k, v, mask)
    with pytest.raises(ValueError, match=expected):
        masked_softmax(randn(B, H, T, T), mask)
    # the fix the message suggests works
    out, _ = scaled_dot_product_attention(q, k, v, mask[:, None])
    assert out.shape == (B, H, T, 8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.int64])
def test_non_boolean_mask(dtype: torch.dtype) -> None:
    q, k, v = randn(2, 3, 8), randn(2, 5, 8), randn(2, 5, 8)
    mask = torch.ones(3, 5, dtype=dtype)  # a 0/1 mask
    with pytest.raises(ValueError, match=rf"mask must be a bool tensor .*got dtype {re.escape(str(dtype))}"):
        scaled_dot_product_attention(q, k, v, mask)
    with pytest.raises(ValueError, match=rf"got dtype {re.escape(str(dtype))}"):
        masked_softmax(randn(3, 5), mask)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_query(dtype: torch.dtype) -> None:
    q = torch.ones(2, 3, 8, dtype=dtype)
    k, v = randn(2, 5, 8), randn(2, 5, 8)
    with pytest.raises(ValueError, match=rf"query must be a floating-point tensor, got dtype {re.escape(str(dtype))}"):
        scaled_dot_product_attention(q, k, v)


def test_causal_mask_needs_positive_sizes() -> None:
    with pytest.raises(ValueError, match=r"L must be a positive int, got 0"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"S must be a positive int, got 0"):
        causal_mask(3, 0)
    with pytest.raises(ValueError, match=r"L must be a positive int, got 2\.0"):
        causal_mask(2.0)


@pytest.mark.parametrize(
    "lengths, expected",
    [
        (torch.tensor([2, 5]), r"lengths must lie in 0\.\.S=4, got min 2 and max 5"),
        (torch.tensor([-1, 3]), r"lengths must lie in 0\.\.S=4, got min -1 and max 3"),
        (torch.tensor([2.0, 3.0]), r"lengths must be an integer tensor, got dtype torch\.float32"),
        (torch.tensor([True, False]), r"lengths must be an integer tensor, got dtype torch\.bool"),
        (torch.tensor([[2, 3]]), r"lengths must be 1-D \(B,\), got shape \(1, 2\)"),
    ],
    ids=["too-long", "negative", "float", "bool", "2-D"],
)
def test_padding_mask_rejects_bad_lengths(lengths: torch.Tensor, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        padding_mask(lengths, 4)


# --- hard attention


@pytest.mark.parametrize("k", [0, 6, -1])
def test_top_k_needs_k_in_1_to_S(k: int) -> None:
    q, key, v = randn(2, 3, 8), randn(2, 5, 8), randn(2, 5, 4)
    with pytest.raises(ValueError, match=rf"k must be an int in 1\.\.S=5, got {k}"):
        hard_attention(q, key, v, k)
    with pytest.raises(ValueError, match=rf"got {k}"):
        hard_attention(q, key, v, k, sample=True, generator=torch.Generator().manual_seed(0))


# --- multi-head attention


def test_d_model_not_divisible_by_num_heads() -> None:
    with pytest.raises(ValueError, match=r"d_model=10 is not divisible by num_heads=3"):
        MultiHeadAttention(10, 3)


def test_split_heads_with_indivisible_D() -> None:
    with pytest.raises(ValueError, match=r"D=10 must be divisible by num_heads, got num_heads=4"):
        split_heads(randn(2, 3, 10), 4)


@pytest.mark.parametrize(
    "shape",
    [(5, 2, 6), (2, 5, 12), (5, 8)],
    ids=["sequence-first-wrong-D", "wrong-D", "unbatched"],
)
def test_multihead_rejects_input_that_is_not_batch_first_B_T_D(shape: tuple[int, ...]) -> None:
    mha = MultiHeadAttention(8, 2)
    good = randn(2, 5, 8)
    bad = randn(*shape)
    got = re.escape("(" + ", ".join(map(str, shape)) + ")")
    with pytest.raises(ValueError, match=rf"query must be batch-first \(B, T, D\) with D=8, got shape {got}"):
        mha(bad, good, good)
    with pytest.raises(ValueError, match=rf"key must be batch-first \(B, T, D\) with D=8, got shape {got}"):
        mha(good, bad, good)


def test_multihead_key_and_value_lengths_differ() -> None:
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"key has S=5 positions but value has S=4"):
        mha(randn(2, 3, 8), randn(2, 5, 8), randn(2, 4, 8))


# --- positional encodings

POSITIONAL_MODULES = [SinusoidalPositionalEncoding(10, 8), LearnedPositionalEmbedding(10, 8)]  # 10 positions, D=8


def test_sinusoidal_encoding_needs_even_d_model() -> None:
    with pytest.raises(ValueError, match=r"d_model must be even \(sin/cos pairs\), got 7"):
        sinusoidal_encoding(10, 7)


@pytest.mark.parametrize("module", POSITIONAL_MODULES, ids=["sinusoidal", "learned"])
def test_positional_module_rejects_too_long_sequences(module: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"x has T=12 positions but the encoding covers only 10"):
        module(randn(2, 12, 8))
    assert module(randn(2, 10, 8)).shape == (2, 10, 8)  # exactly the maximum is fine


@pytest.mark.parametrize("module", POSITIONAL_MODULES, ids=["sinusoidal", "learned"])
@pytest.mark.parametrize("shape", [(2, 5, 6), (5, 8)], ids=["wrong-D", "unbatched"])
def test_positional_module_rejects_wrong_D(module: torch.nn.Module, shape: tuple[int, ...]) -> None:
    got = re.escape("(" + ", ".join(map(str, shape)) + ")")
    with pytest.raises(ValueError, match=rf"x must be batch-first \(B, T, D\) with D=8, got shape {got}"):
        module(randn(*shape))


def test_rotary_embedding_needs_even_E_and_matching_positions() -> None:
    with pytest.raises(ValueError, match=r"E even, got shape \(2, 4, 5\)"):
        rotary_embedding(randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"positions must be \(T,\) with T=4, got shape \(3,?\)"):
        rotary_embedding(randn(2, 4, 6), positions=torch.arange(3))


# --- nothing is modified in place


def _clones(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.clone() for t in tensors]


def _assert_unchanged(tensors, clones) -> None:
    for t, c in zip(tensors, clones):
        assert torch.equal(t, c), "an input was modified in place"


def test_sdpa_does_not_modify_its_inputs() -> None:
    q, k, v = randn(2, 4, 8, seed=1), randn(2, 6, 8, seed=2), randn(2, 6, 3, seed=3)
    mask = torch.rand(2, 4, 6, generator=torch.Generator().manual_seed(4)) < 0.5
    mask[0, 0] = False
    before = _clones(q, k, v, mask)
    out, weights = scaled_dot_product_attention(q, k, v, mask, scale=0.3)
    _assert_unchanged((q, k, v, mask), before)
    out.add_(1.0), weights.add_(1.0)  # the results share no memory with the inputs
    _assert_unchanged((q, k, v, mask), before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_masked_softmax_does_not_modify_its_inputs(dtype: torch.dtype) -> None:
    scores = (randn(3, 4, 5, seed=5) * 10).to(dtype)
    mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(6)) < 0.5
    before = _clones(scores, mask)
    for m in (mask, None):
        weights = masked_softmax(scores, m)
        _assert_unchanged((scores, mask), before)
        weights.zero_()
        _assert_unchanged((scores, mask), before)


def test_multihead_forward_does_not_modify_its_inputs() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    q, kv = randn(2, 4, 8, seed=7), randn(2, 6, 8, seed=8)
    mask = torch.rand(2, 4, 6, generator=torch.Generator().manual_seed(9)) < 0.5
    params = _clones(*mha.parameters())
    before = _clones(q, kv, mask)
    out, weights = mha(q, kv, kv, mask)
    out.sum().backward()
    _assert_unchanged((q, kv, mask), before)
    assert mask.shape == (2, 4, 6), "the caller's mask keeps its shape"
    _assert_unchanged(tuple(p.detach() for p in mha.parameters()), params)


def test_rotary_embedding_does_not_modify_its_inputs() -> None:
    x = randn(2, 3, 5, 6, seed=10)
    positions = torch.tensor([0.0, 2.5, 7.0, 1.0, 4.0])
    before = _clones(x, positions)
    out = rotary_embedding(x, positions=positions)
    _assert_unchanged((x, positions), before)
    assert not torch.equal(out, x)  # it did rotate
    out.zero_()
    _assert_unchanged((x, positions), before)


def test_rotary_positions_must_be_a_tensor():
    x = torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match=r"positions must be a \(T,\) tensor with T=4, got list"):
        rotary_embedding(x, positions=[0, 1, 2, 3])


def test_shift_matrix_offset_must_be_an_int():
    with pytest.raises(ValueError, match="k must be an int offset, got 1.5"):
        sinusoidal_shift_matrix(1.5, 8)


def test_learned_embedding_sizes_must_be_positive_ints():
    with pytest.raises(ValueError, match="d_model must be a positive int, got 0"):
        LearnedPositionalEmbedding(16, 0)


def test_vector_shapes_print_as_tuples():
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        split_heads(torch.randn(3), 1)


def test_rotary_multihead_needs_an_even_head_size() -> None:
    with pytest.raises(ValueError, match="even head size"):
        MultiHeadAttention(6, 2, rotary=True)  # head size 3
    MultiHeadAttention(8, 2, rotary=True)  # head size 4 is fine
