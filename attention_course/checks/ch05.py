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
    _check_choice,
    _number,
)

__all__ = [
    "check_self_attention",
    "check_causal_mask",
    "check_padding_mask",
    "check_decoder_mask",
    "check_is_permutation_equivariant",
    "check_shared_projection_question",
    "check_padding_leak",
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
        # E = T first, where a missing transpose of K still runs; then T, D, E and Ev all different, twice, so that
        # a scale hard-coded for one head size shows
        seen_E = []
        for seed, (B, T, D, E, Ev) in ((61, (3, 4, 6, 4, 2)), (62, (2, 5, 8, 3, 6)), (60, (2, 3, 7, 6, 5))):
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
                f"you divided by sqrt(Ev) = sqrt({Ev}), the width of the values: the scale is sqrt(E) = sqrt({E}), "
                f"the size of the queries and keys (Q.shape[-1])": torch.softmax(dots / Ev**0.5, dim=-1),
                "you divided the weights by sqrt(E) after the softmax: the scale goes on the scores, inside "
                "the softmax, softmax(Q Kᵀ / sqrt(E)), so that each row still sums to 1":
                    torch.softmax(dots, dim=-1) / E**0.5,
                "you computed K Qᵀ, not Q Kᵀ: row t must be query t's scores against every key, Q @ "
                "K.transpose(-2, -1); K Qᵀ is its transpose": torch.softmax(dots.transpose(-2, -1) / E**0.5, dim=-1),
                "the keys come from W_q: K = X @ W_k. With K = Q every score matrix is symmetric":
                    torch.softmax(Q @ Q.transpose(-2, -1) / E**0.5, dim=-1),
                "each column sums to 1, but each row (one query) should: you took the softmax over the query "
                "axis. dim=1 is the key axis of one (T, T) matrix but the query axis of a batch (B, T, T): "
                "use dim=-1, the keys, whatever the batch dims": torch.softmax(dots / E**0.5, dim=1),
            }
            for E_seen in seen_E:
                if E_seen != E:
                    wrong[f"the scale is hard-coded, sqrt({E_seen}): it is sqrt(E) = sqrt({E}) here; compute it "
                          f"from the shapes, Q.shape[-1] ** 0.5"] = torch.softmax(dots / E_seen**0.5, dim=-1)
            seen_E.append(E)
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
                "you multiplied the values by the transposed weights, weightsᵀ @ V: row t of the output is query "
                "t's weighted sum of the values, weights @ V": expected_w.transpose(-2, -1) @ V,
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
        # B != S, then B = S where a transpose still runs, then a batch whose longest sequence is shorter than S
        # (cut from a bigger batch): a mask sized from lengths.max() shows
        for values, S in (([4, 1, 6, 0], 6), ([2, 3, 1], 3), ([2, 4, 1], 7)):
            lengths = torch.tensor(values)  # (B,)
            B = len(values)
            label = f"padding_mask(lengths={values}, S={S})"
            got = _bool_mask(
                label, _call_pure(label, padding_mask, ("lengths", lengths), ("S", S)),
                "Build it from a comparison, which gives bool: torch.arange(S)[None, :] < lengths[:, None]",
            )
            expected = masks.padding_mask(lengths, S)  # (B, S)
            longest = int(lengths.max())
            if longest < S and tuple(got.shape) == (B, longest):
                raise AssertionError(
                    f"{label} has shape {tuple(got.shape)}: you sized it from lengths.max() = {longest}, but the "
                    f"batch is padded to S = {S} (it may have been cut from a bigger batch). Use the S you are "
                    f"given: torch.arange(S)[None, :] < lengths[:, None], (B, S) = {(B, S)}"
                )
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
        # then B != T, then a batch whose longest sequence does not fill T
        for seed, values, T in ((63, [5, 3, 1, 4, 2], 5), (64, [4, 2, 6], 6), (68, [3, 1], 5)):
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
            longest = int(lengths.max())
            if longest < T and tuple(got.shape) == (B, longest, longest):
                raise AssertionError(
                    f"{label} has shape {tuple(got.shape)}: you sized it from lengths.max() = {longest}, but the "
                    f"batch is padded to T = {T}. Use the T you are given: (B, T, T) = {(B, T, T)}"
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


# ---------------------------------------------------------------- what W_q = W_k does; what a missing mask costs


@_reports_not_attempted
def check_shared_projection_question(answer: Callable) -> None:
    """Question: what changes when the queries and the keys share one projection, W_q = W_k?"""
    _check_choice(
        "question (W_q = W_k)", answer, "b",
        "With K = Q the scores Q Qᵀ / √E are a symmetric matrix (and each token's score with itself, |q_t|² / √E, is "
        "never negative): token a can only score b as high as b scores a. A relation that runs one way (a verb "
        "looking for its subject, a token reading the one before it) needs separate W_q and W_k. The weights "
        "are not symmetric, though: each row is normalised by its own sum.",
        {
            "a": "the *scores* are symmetric, Q Qᵀ = (Q Qᵀ)ᵀ, but the weights are not: the softmax normalises each "
                 "row by its own sum, so A[a, b] = exp(s_ab) / Σ_j exp(s_aj) and A[b, a] = exp(s_ab) / Σ_j exp(s_bj) "
                 "differ whenever the two rows' sums do. Print softmax(X W Wᵀ Xᵀ / √E) and look",
            "c": "nothing in Q Qᵀ hides the future: a mask does that. Every token still reads every other one",
            "d": "the values have their own projection W_v, untouched, and the weights still vary with the "
                 "content: the output is not uniform. What changes is the score matrix: try it",
        },
    )


def _padding_leak_reference(X, W_q, W_k, W_v, lengths) -> dict[str, float]:
    """(leak, drift) and what the usual wrong measurements give, for ``check_padding_leak``."""
    B, T, _ = X.shape
    real = masks.padding_mask(lengths, T)  # (B, T)
    out, w = scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)  # (B, T, Ev), (B, T, T): no mask
    on_pad = (w * (~real)[:, None, :]).sum(dim=-1)  # (B, T): each query's weight on padding keys
    alone_diff = torch.zeros(B, T)
    every_entry = []
    for n in range(B):
        Ln = int(lengths[n])
        x = X[n, :Ln]  # (Ln, D), sequence n without its padding
        o, _ = scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v)  # (Ln, Ev)
        alone_diff[n, :Ln] = (out[n, :Ln] - o).abs().max(dim=-1).values
        every_entry.append((out[n, :Ln] - o).abs().reshape(-1))
    pad_queries = (w * real[:, :, None]).sum(dim=1)  # (B, T): attention each key receives from the real queries
    return {
        "leak": float(on_pad[real].mean()),
        "drift": float(alone_diff[real].max()),
        "leak over every query": float(on_pad.mean()),
        "leak summed": float(on_pad[real].sum()),
        "leak per sequence": float(torch.stack([on_pad[n, : int(lengths[n])].mean() for n in range(B)]).mean()),
        "leak on padding queries": float((w * (~real)[:, :, None]).sum(dim=-1)[real].mean()),
        "drift mean": float(torch.cat(every_entry).mean()),
        "weight on real keys": float((1 - on_pad[real]).mean()),
        "pad_queries": float(pad_queries.mean()),
    }


@_reports_not_attempted
def check_padding_leak(padding_leak: Callable) -> None:
    """Experiment: ``padding_leak(X (B, T, D), W_q, W_k, W_v, lengths (B,)) -> (leak, drift)``: self-attention on
    the padded batch *without* a mask; leak = the mean, over every real query of the batch, of the total weight
    it puts on padding keys; drift = the largest absolute difference between a real token's output there and its
    output when its sequence (X[n, :lengths[n]]) is run alone."""
    name = "padding_leak"
    with _attempt(name):
        # the longest sequence is shorter than T (a batch cut from a bigger one), and the padding is not zeros
        for seed, values, (T, D, E) in ((66, [3, 1, 4], (6, 5, 4)), (67, [5, 2, 5, 3], (5, 6, 3))):
            gen = torch.Generator().manual_seed(seed)
            B = len(values)
            X = torch.randn(B, T, D, generator=gen)  # (B, T, D): the pad token has an embedding, as in a model
            W_q, W_k, W_v = (torch.randn(D, E, generator=gen) / D**0.5 for _ in range(3))
            lengths = torch.tensor(values)
            label = f"{name}(X, W_q, W_k, W_v, lengths={values}) with T={T}"
            result = _call_with_hint(
                label, padding_leak, (("X", X), ("W_q", W_q), ("W_k", W_k), ("W_v", W_v), ("lengths", lengths)),
                "X is (B, T, D) with T the padded length, which can be more than lengths.max(): build the real-"
                "token mask with S = X.shape[1], torch.arange(T)[None, :] < lengths[:, None] (B, T)",
            )
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise AssertionError(f"{label} must return the pair (leak, drift)")
            leak, drift = (_number(f"{what}, {label}", r) for what, r in zip(("leak", "drift"), result))
            ref = _padding_leak_reference(X, W_q, W_k, W_v, lengths)
            hints = {
                "leak over every query": "you averaged over every query, the padding queries too: only the real "
                                         "queries (positions j < lengths[n]) matter, their outputs are the ones "
                                         "the model uses",
                "leak summed": "you summed the real queries' weight on padding: take the mean over them",
                "leak per sequence": "you averaged within each sequence, then over the sequences: take one mean "
                                     "over all the real queries of the batch (weights[real].mean(), with real the "
                                     "(B, T) padding mask), so that a long sequence counts with all its queries",
                "leak on padding queries": "you summed the weights over the queries (the rows) that are padding: "
                                           "the leak is what the real queries put on the padding *keys*, the "
                                           "columns j >= lengths[n], summed over the last axis",
                "weight on real keys": "that is the weight on the real keys, 1 - leak",
                "pad_queries": "you summed over the query axis: for each real query, sum its weights over the "
                               "padding keys, (weights * ~real[:, None, :]).sum(-1), then average over the real "
                               "queries",
            }
            if leak == 0.0 and ref["leak"] > 0:
                raise AssertionError(
                    f"leak, {label} is 0: either you measured with the padding mask (the experiment removes it: "
                    f"plain softmax(Q Kᵀ / √E) over all T keys), or you summed the wrong entries: the leak is what "
                    f"each real query puts on the padding keys, the columns j >= lengths[n]"
                )
            if abs(leak - ref["leak"]) > 1e-4:
                for key, hint in hints.items():
                    if abs(ref[key] - ref["leak"]) > 1e-3 and abs(leak - ref[key]) < 1e-4:
                        raise AssertionError(f"leak, {label} is {leak:.4g} but should be {ref['leak']:.4g}: {hint}")
                raise AssertionError(
                    f"leak, {label} is {leak:.4g} but should be {ref['leak']:.4g}: weights = softmax(Q Kᵀ / √E) "
                    f"without a mask, (B, T, T); sum each real query's weights over the padding keys j >= "
                    f"lengths[n]; average over the real queries"
                )
            if drift == 0.0:
                raise AssertionError(
                    f"drift, {label} is 0: did the batch run with the padding mask? Without it the real tokens "
                    f"read the padding, and their outputs move away from those of the sequence run alone"
                )
            if abs(drift - ref["drift"]) > 1e-4:
                if abs(drift - ref["drift mean"]) < 1e-4:
                    raise AssertionError(
                        f"drift, {label} is {drift:.4g}, a mean: return the largest absolute difference, "
                        f"{ref['drift']:.4g}"
                    )
                raise AssertionError(
                    f"drift, {label} is {drift:.4g} but should be {ref['drift']:.4g}: for each sequence n run "
                    f"self-attention on X[n, :lengths[n]] alone, compare its outputs with the batch's outputs at "
                    f"the real positions, and take the largest absolute difference over every real token and "
                    f"feature (the padding positions have no output alone: leave them out)"
                )
    _say(f"padding_leak: correct: without a mask the real queries put {ref['leak']:.0%} of their weight on padding "
         f"here, and their outputs move by up to {ref['drift']:.2g}.")
