"""Chapter 5, self-attention: self-attention, causal, padding and decoder masks, equivariance.

The checks of ``chapters/05_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.masks  # noqa: F401 (binds _lib.masks)
import attention_course.multihead  # noqa: F401 (binds _lib.multihead)
import attention_course.reference  # noqa: F401 (binds _lib.reference)

from .. import masks
from ..attention import scaled_dot_product_attention
from ..positional import sinusoidal_encoding
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _fmt_index,
    _compare,
    _call_pure,
    _reject_known,
    _call_with_hint,
    _as_bool,
)

__all__ = [
    "check_self_attention",
    "check_causal_mask",
    "check_padding_mask",
    "check_decoder_mask",
    "check_is_permutation_equivariant",
]


def _self_attention_inputs(seed: int, B: int, T: int, D: int, E: int, Ev: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(B, T, D, generator=gen)  # (B, T, D)
    W_q, W_k = (torch.randn(D, E, generator=gen) / D**0.5 for _ in range(2))  # (D, E): Q, K entries ~ N(0, 1)
    W_v = torch.randn(D, Ev, generator=gen) / D**0.5  # (D, Ev)
    return X, W_q, W_k, W_v


@_reports_not_attempted
def check_self_attention(self_attention: Callable) -> None:
    """Exercise: ``self_attention(X (B, T, D), W_q (D, E), W_k (D, E), W_v (D, Ev))
    -> (output (B, T, Ev), weights (B, T, T))``: Q = X W_q, K = X W_k, V = X W_v,
    weights = softmax(Q Kᵀ / sqrt(E)) over the keys, output = weights V."""
    self_attention = _own_work(
        "self_attention", self_attention,
        _lib.attention.scaled_dot_product_attention,
        _lib.reference.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention,
        _lib.attention.attend,
        _lib.multihead.MultiHeadAttention,
        torch.nn.MultiheadAttention,
    )
    with _attempt("self_attention"):
        # E = T first, where a missing transpose of K still runs; then T, D, E and Ev all different
        for seed, (B, T, D, E, Ev) in ((61, (3, 4, 6, 4, 2)), (62, (2, 5, 8, 3, 4))):
            X, W_q, W_k, W_v = _self_attention_inputs(seed, B, T, D, E, Ev)
            label = f"self_attention for B={B}, T={T}, D={D}, E={E}, Ev={Ev}"
            result = _call_with_hint(
                label, self_attention, (("X", X), ("W_q", W_q), ("W_k", W_k), ("W_v", W_v)),
                "X is batch-first (B, T, D), and X @ W_q is (B, T, E) as it stands. The scores multiply Q "
                "(B, T, E) by K with its last two axes swapped, K.transpose(-2, -1) (B, E, T); K.T would reverse "
                "all three axes of a 3-D tensor",
            )
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"self_attention must return a pair (output, weights), got {type(result).__name__}"
                )
            out, w = (_as_array(label, r) for r in result)
            Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (B, T, E), (B, T, E), (B, T, Ev)
            expected_out, expected_w = scaled_dot_product_attention(Q, K, V)  # (B, T, Ev), (B, T, T)
            exp_out, exp_w = expected_out.numpy(), expected_w.numpy()
            if (out.shape == exp_w.shape and w.shape == exp_out.shape
                    and np.allclose(out, exp_w, atol=1e-5) and np.allclose(w, exp_out, atol=1e-5)):
                raise AssertionError(f"{label}: you returned (weights, output): return (output, weights)")
            if w.shape == (T, T):
                for b in range(B):
                    if np.allclose(w, exp_w[b], atol=1e-5):
                        raise AssertionError(
                            f"weights, {label}: you returned the (T, T) weights of sequence {b} only: keep the "
                            f"batch axis, one (T, T) matrix per sequence, (B, T, T) = {exp_w.shape}"
                        )
            dots = Q @ K.transpose(-2, -1)  # (B, T, T)
            wrong = {
                f"you did not divide the scores by sqrt(E) = {E**0.5:.3g}: a dot product of E unit-variance "
                f"features has variance E, and unscaled scores push the softmax towards one-hot rows":
                    torch.softmax(dots, dim=-1),
                f"you divided by sqrt(D) = sqrt({D}), the width of X: the scale is sqrt(E) = sqrt({E}), the size "
                f"of the queries and keys whose dot products these are (Q.shape[-1], or W_q.shape[1])":
                    torch.softmax(dots / D**0.5, dim=-1),
                f"you divided by E = {E} instead of sqrt(E) = {E**0.5:.3g}": torch.softmax(dots / E, dim=-1),
                "each column sums to 1, but each row (one query) should: you took the softmax over the query "
                "axis. dim=1 is the key axis of one (T, T) matrix but the query axis of a batch (B, T, T): "
                "use dim=-1, the keys, whatever the batch dims": torch.softmax(dots / E**0.5, dim=1),
            }
            if E == T:
                wrong["you multiplied Q by K, not by K transposed: Q @ K only runs because E = T here. Each "
                      "score is the dot product of a query row with a key row: Q @ K.transpose(-2, -1)"] = (
                    torch.softmax(Q @ K / E**0.5, dim=-1))
            _reject_known(f"weights, {label}", w, expected_w, wrong)
            _compare(f"weights, {label}", w, exp_w, atol=1e-5,
                     legend=" (B, T, T): for each sequence, one row per query, one column per key")
            wrong_out = {
                "you used K as the values: the output is weights @ V with V = X @ W_v. The keys decide *where* "
                "each query reads, the values *what* it reads": expected_w @ K,
                "you used X itself as the values: project it first, V = X @ W_v": expected_w @ X,
            }
            for hint, value in wrong_out.items():
                if out.shape == tuple(value.shape) and np.allclose(out, value.numpy(), atol=1e-5):
                    raise AssertionError(f"output, {label}: {hint}")
            _compare(f"output, {label}", out, exp_out, atol=1e-5, legend=" (B, T, Ev): one row per token")
    _say("self_attention: correct: Q, K, V from the same X, softmax(Q Kᵀ / √E) over the keys, times V.")


def _bool_mask(label: str, got: object, how: str) -> torch.Tensor:
    """The learner's mask: a bool torch tensor, else a hint (``how`` says how to build one)."""
    if got is None:
        raise AssertionError(f"{label} returned None: did you forget `return`?")
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{label} must return a torch tensor, got {type(got).__name__}")
    if got.dtype != torch.bool:
        raise AssertionError(
            f"{label} has dtype {got.dtype} but a mask is bool, True = may attend. Masks are used as "
            f"scores.masked_fill(~mask, -inf), and ~ on an int tensor is a bitwise not (~1 = -2); PyTorch's "
            f"F.scaled_dot_product_attention even *adds* a float mask to the scores, so a 0/1 float mask "
            f"blocks nothing. {how}"
        )
    return got


def _compare_mask(label: str, got: torch.Tensor, expected: torch.Tensor, legend: str) -> None:
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(
            f"{label} has shape {tuple(got.shape)} but should have shape {tuple(expected.shape)}{legend}"
        )
    differ = torch.nonzero(got != expected)
    if len(differ):
        idx = tuple(int(i) for i in differ[0])
        raise AssertionError(
            f"{label}: entry {_fmt_index(idx)} is {bool(got[idx])} but should be {bool(expected[idx])}{legend}"
        )


def _reject_known_mask(label: str, got: torch.Tensor, expected: torch.Tensor, wrong: dict) -> None:
    """Raise the hint of the first wrong mask that ``got`` equals (and the right mask does not)."""
    for hint, value in wrong.items():
        if value.shape == got.shape and torch.equal(got, value) and not torch.equal(value, expected):
            raise AssertionError(f"{label}: {hint}")


@_reports_not_attempted
def check_causal_mask(causal_mask: Callable) -> None:
    """Exercise: ``causal_mask(T) -> (T, T)`` bool, True on and below the diagonal: query i may attend to
    keys j <= i."""
    causal_mask = _own_work(
        "causal_mask", causal_mask,
        _lib.masks.causal_mask,
        _lib.reference.causal_mask,
    )
    with _attempt("causal_mask"):
        for T in (5, 1):
            label = f"causal_mask({T})"
            got = _bool_mask(label, _call_pure(label, causal_mask, ("T", T)),
                             "Build it bool: torch.ones(T, T, dtype=torch.bool).tril()")
            expected = masks.causal_mask(T)  # (T, T)
            if got.dim() == 1 and tuple(got.shape) == (T,):
                raise AssertionError(
                    f"{label} has shape (T,) = ({T},): comparing torch.arange(T) with itself pairs each position "
                    f"with itself only. Compare every query position with every key position, a column against "
                    f"a row: torch.arange(T)[:, None] >= torch.arange(T)[None, :] is (T, T)"
                )
            wrong = {
                "it is True on and above the diagonal (.triu()), so query i would read the *future* keys "
                "j > i. Row i is query i and column j is key j; the causal mask lets query i read keys "
                "j <= i: True on and below the diagonal, .tril()": expected.T,
                "the mask is inverted: True where attention is blocked, the convention of "
                "nn.MultiheadAttention. In this course, as in F.scaled_dot_product_attention, True means "
                "*may attend*: True on and below the diagonal": ~expected,
                "the diagonal is False: query i may attend to itself, key j = i (j <= i, not j < i). "
                "Without it, row 0 has nothing at all to attend to": expected.tril(-1),
            }
            _reject_known_mask(label, got, expected, wrong)
            _compare_mask(label, got, expected, " (T, T): row i is query i, column j is key j")
    _say("causal_mask: correct: query i may read keys 0..i, itself included, and nothing later.")


@_reports_not_attempted
def check_padding_mask(padding_mask: Callable) -> None:
    """Exercise: ``padding_mask(lengths (B,), S) -> (B, S)`` bool, True where position j < lengths[n]."""
    padding_mask = _own_work(
        "padding_mask", padding_mask,
        _lib.masks.padding_mask,
    )
    with _attempt("padding_mask"):
        for values, S in (([4, 1, 6, 0], 6), ([2, 3, 1], 3)):  # B != S, then B = S where a transpose still runs
            lengths = torch.tensor(values)  # (B,)
            B = len(values)
            label = f"padding_mask(lengths={values}, S={S})"
            got = _bool_mask(
                label, _call_pure(label, padding_mask, ("lengths", lengths), ("S", S)),
                "Build it from a comparison, which gives bool: torch.arange(S)[None, :] < lengths[:, None]",
            )
            expected = masks.padding_mask(lengths, S)  # (B, S)
            if B != S and tuple(got.shape) == (S, B):
                raise AssertionError(
                    f"{label} has shape (S, B) = {(S, B)}, the transpose: the mask has one row per sequence, "
                    f"(B, S) = {(B, S)}. Compare a column of lengths, lengths[:, None] (B, 1), with a row of "
                    f"positions, torch.arange(S)[None, :] (1, S)"
                )
            positions = torch.arange(S)  # (S,)
            wrong = {
                "the mask is inverted: True on the padding. True means *may attend*, a real token: position j "
                "of sequence n is real when j < lengths[n]": ~expected,
                "off by one: a sequence of length S_n has its real tokens at positions 0 .. S_n - 1, so position j "
                "is real when j < S_n, not j <= S_n": positions[None, :] <= lengths[:, None],
                "every position is True: the mask ignores the lengths. Position j of sequence n is a real "
                "token when j < lengths[n]": torch.ones(B, S, dtype=torch.bool),
            }
            if B == S:
                wrong["the result is transposed: row n must be sequence n, (B, S), not (S, B). Compare a "
                      "column of lengths with a row of positions: torch.arange(S)[None, :] < lengths[:, None]"] = (
                    expected.T)
            _reject_known_mask(label, got, expected, wrong)
            _compare_mask(label, got, expected, " (B, S): row n is sequence n, column j is position j")
    _say("padding_mask: correct: True on the real tokens (j < length), False on the padding.")


@_reports_not_attempted
def check_decoder_mask(decoder_mask: Callable) -> None:
    """Exercise: ``decoder_mask(lengths (B,), T) -> (B, T, T)`` bool: query i of sequence n may attend to key j
    when j <= i (causal) and j < lengths[n] (a real key)."""
    with _attempt("decoder_mask"):
        # B = T first: a (B, T) padding mask then broadcasts against the (T, T) causal mask without an error
        for seed, values, T in ((63, [5, 3, 1, 4, 2], 5), (64, [4, 2, 6], 6)):
            lengths = torch.tensor(values)  # (B,)
            B = len(values)
            label = f"decoder_mask(lengths={values}, T={T})"
            result = _call_with_hint(
                label, decoder_mask, (("lengths", lengths), ("T", T)),
                "A (B, T) padding mask and a (T, T) causal mask line up B with the query axis: give the padding "
                "mask a query axis of size 1, pad[:, None, :] (B, 1, T), which broadcasts against (T, T) "
                "to (B, T, T)",
            )
            got = _bool_mask(label, result, "Combine bool masks with &, which keeps them bool")
            pad = masks.padding_mask(lengths, T)  # (B, T), True = a real token
            causal = masks.causal_mask(T)  # (T, T)
            expected = pad[:, None, :] & causal  # (B, 1, T) & (T, T) -> (B, T, T)
            if tuple(got.shape) == (T, T):
                if B == T and torch.equal(got, pad & causal):
                    raise AssertionError(
                        f"{label} has shape (T, T): the (B, T) padding mask broadcast against the (T, T) causal "
                        f"mask lines up B with the query axis (it only ran because B = T here), so row n mixes "
                        f"sequence n's padding with query n's causal row. Give the padding mask a query axis, "
                        f"pad[:, None, :] (B, 1, T): then the result is (B, T, T)"
                    )
                if torch.equal(got, causal):
                    raise AssertionError(
                        f"{label} is the causal mask alone, (T, T): the padding keys are not hidden. Combine it "
                        f"with the padding of the keys, pad[:, None, :] (B, 1, T), for one (T, T) mask per "
                        f"sequence, (B, T, T)"
                    )
            if tuple(got.shape) == (B, T) and torch.equal(got, pad):
                raise AssertionError(
                    f"{label} is the padding mask alone, (B, T): the future is not hidden. Combine it with the "
                    f"causal mask: pad[:, None, :] & causal, (B, T, T)"
                )
            wrong = {
                "you combined the masks with | (or), so a key is allowed when *either* mask allows it: query i "
                "reads the future, and the padding. A key is allowed only when both allow it: &": (
                    pad[:, None, :] | causal),
                "it is the causal mask alone, repeated for every sequence: the padding keys (positions j >= "
                "lengths[n]) are not hidden. Combine it with the padding of the keys: pad[:, None, :] & causal": (
                    causal.expand(B, T, T)),
                "it is the padding mask alone: the future is not hidden, query i reads the keys j > i. "
                "Combine it with the causal mask: pad[:, None, :] & causal": pad[:, None, :].expand(B, T, T),
                "the padding is applied to the queries, pad[:, :, None] (B, T, 1), not to the keys, "
                "pad[:, None, :] (B, 1, T): mask the *columns* (keys) j >= lengths[n]. (With the causal mask, "
                "padding the queries as well as the keys gives this same mask.) The row of a padding query then "
                "has no key at all: a softmax over a row of -inf is 0/0, NaN (nn.MultiheadAttention gives NaN "
                "there). With only the keys masked it still reads its earlier real keys, and the loss simply "
                "ignores its output": (
                    pad[:, :, None] & causal),
            }
            _reject_known_mask(label, got, expected, wrong)
            if tuple(got.shape) != (B, T, T):
                raise AssertionError(
                    f"{label} has shape {tuple(got.shape)} but should have shape (B, T, T) = {(B, T, T)}: one "
                    f"(T, T) mask per sequence, pad[:, None, :] & causal"
                )
            # use it: attention with this mask must put no weight on the future or on padding keys
            gen = torch.Generator().manual_seed(seed)
            q, k, v = (torch.randn(B, T, 4, generator=gen) for _ in range(3))  # (B, T, E)
            _, weights = scaled_dot_product_attention(q, k, v, got)  # (B, T, T)
            read = weights > 0  # (B, T, T)
            for blocked, why in ((~causal.expand(B, T, T), "in the future of query {t}"),
                                 (~pad[:, None, :].expand(B, T, T), "padding (sequence {b} has length {n})")):
                leaked = torch.nonzero(read & blocked)
                if len(leaked):
                    b, t, j = (int(i) for i in leaked[0])
                    raise AssertionError(
                        f"{label}: attention_course.scaled_dot_product_attention with your mask gives "
                        f"weights[{b}, {t}, {j}] = {float(weights[b, t, j]):.3g}, but key {j} is "
                        f"{why.format(t=t, b=b, n=values[b])}: it must get weight 0"
                    )
            _compare_mask(label, got, expected, " (B, T, T): [n, i, j] is query i reading key j of sequence n")
    _say("decoder_mask: correct: causal and key padding together; no weight on the future or on padding.")


def _equivariance_probes() -> list[tuple[str, Callable, torch.Tensor, torch.Tensor]]:
    """(name, fn, X (B, T, D), perm (T,)) for ``check_is_permutation_equivariant``."""
    gen = torch.Generator().manual_seed(65)
    B, T, D, E = 2, 5, 6, 4
    X = torch.randn(B, T, D, generator=gen)  # (B, T, D)
    W_q, W_k, W_v = (torch.randn(D, E, generator=gen) / D**0.5 for _ in range(3))  # (D, E)
    cycle = torch.tensor([1, 2, 3, 4, 0])  # not its own inverse
    swap = torch.tensor([1, 0, 2, 3, 4])  # its own inverse

    def attention(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v, mask)[0]  # (B, T, E)

    def running_sum(x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(x[:, :1])  # (B, 1, D)
        for t in range(x.shape[1]):  # in token order: float addition is not associative
            total = total + x[:, t:t + 1]
        return x + total  # (B, T, D)

    tiny = torch.full((B, T, D), 2.0**-24)  # 1 + 2**-24 rounds to 1, but 4 * 2**-24 + 1 does not
    tiny[:, 0] = 1.0
    weights_by_position = torch.arange(1.0, T + 1)[None, :, None]  # (1, T, 1)
    return [
        ("the square of each token", lambda x: x * x, X, cycle),  # exact: no rounding differs
        ("each token plus the sum of all tokens, added up in token order", running_sum, tiny, cycle),
        ("the mean of the tokens times (position + 1)",
         lambda x: weights_by_position * x.mean(dim=1, keepdim=True), X, cycle),
        ("self-attention without positions", attention, X, swap),
        ("self-attention without positions", attention, X, cycle),
        ("causal self-attention", lambda x: attention(x, masks.causal_mask(T)), X, cycle),
        ("self-attention with positions added to its input",
         lambda x: attention(x + sinusoidal_encoding(T, D)), X, cycle),
        ("the mean of the tokens, at every position", lambda x: x.mean(dim=1, keepdim=True).expand_as(x), X, cycle),
    ]


@_reports_not_attempted
def check_is_permutation_equivariant(is_permutation_equivariant: Callable) -> None:
    """Exercise: ``is_permutation_equivariant(fn, X (B, T, D), perm (T,)) -> bool``: whether
    fn(X[:, perm]) equals fn(X)[:, perm] up to float rounding."""
    with _attempt("is_permutation_equivariant"):
        probes = _equivariance_probes()
        answers, truth = [], []
        for name, fn, X, perm in probes:
            label = f"is_permutation_equivariant(fn, X, perm={perm.tolist()}) with fn = {name}"
            result = _call_with_hint(
                label, is_permutation_equivariant, (("fn", fn), ("X", X), ("perm", perm)),
                "X is batch-first (B, T, D): the tokens are along dim 1, so X[:, perm] permutes them "
                "(X[perm] would permute the sequences of the batch), and the output's token axis is dim 1 too",
            )
            answers.append(_as_bool(label, result))
            permuted_first, permuted_after = fn(X[:, perm]), fn(X)[:, perm]
            truth.append(torch.allclose(permuted_first, permuted_after))
        variants = {
            "you compared fn(X[:, perm]) with fn(X), unpermuted: that tests *invariance*, the same output "
            "whatever the order. Equivariance means the output is permuted the same way as the input: "
            "fn(X[:, perm]) == fn(X)[:, perm]": lambda fn, X, perm: torch.allclose(fn(X[:, perm]), fn(X)),
            "you permuted the output with the inverse permutation, fn(X)[:, perm.argsort()]: X[:, perm] puts "
            "token perm[i] at position i, and so must the output, fn(X)[:, perm] (the answers agree only for "
            "a permutation that is its own inverse, such as a swap)":
                lambda fn, X, perm: torch.allclose(fn(X[:, perm]), fn(X)[:, perm.argsort()]),
            "you compared exactly (== or torch.equal). Float addition is not associative: summing the same "
            "numbers in another order can change the last bits, so an equivariant fn may give outputs that "
            "differ by 1e-7. Compare up to rounding with torch.allclose":
                lambda fn, X, perm: torch.equal(fn(X[:, perm]), fn(X)[:, perm]),
        }
        for hint, variant in variants.items():
            would = [bool(variant(fn, X, perm)) for _, fn, X, perm in probes]
            if would != truth and answers == would:
                raise AssertionError(f"is_permutation_equivariant: {hint}")
        if answers != truth and all(answers):
            not_eq = sorted({name for (name, *_), t in zip(probes, truth) if not t})
            raise AssertionError(
                f"is_permutation_equivariant returned True for every function, even for {', '.join(not_eq)}, "
                f"whose outputs do not follow the permutation: compute fn(X[:, perm]) and fn(X)[:, perm] "
                f"and compare them with torch.allclose"
            )
        for (name, fn, X, perm), got, right in zip(probes, answers, truth):
            if got != right:
                gap = float((fn(X[:, perm]) - fn(X)[:, perm]).abs().max())
                how = "agree up to rounding" if right else "differ"
                raise AssertionError(
                    f"is_permutation_equivariant(fn, X, perm={perm.tolist()}) with fn = {name} returned {got}, "
                    f"but fn(X[:, perm]) and fn(X)[:, perm] {how} (largest difference {gap:.2g})"
                )
    _say("is_permutation_equivariant: correct: fn(X[:, perm]) against fn(X)[:, perm], up to rounding.")
