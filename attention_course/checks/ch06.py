"""Chapter 6, multi-head attention: split and merge heads, multi-head self-attention, parameters.

The checks of ``chapters/06_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.multihead  # noqa: F401 (binds _lib.multihead)
import attention_course.reference  # noqa: F401 (binds _lib.reference)

from .. import multihead
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _number,
    _reject_known,
    _call_with_hint,
    _numbered,
    _reject_shape,
    _compare_numbered,
    _check_number,
)

__all__ = [
    "check_split_heads",
    "check_merge_heads",
    "check_multihead_self_attention",
    "check_mha_parameter_count",
    "check_score_cost_question",
    "check_head_ablation",
]


@_reports_not_attempted
def check_split_heads(split_heads: Callable) -> None:
    """Exercise: ``split_heads(x (B, T, D), num_heads) -> (B, H, T, D/H)``: head h gets the contiguous block
    of features h*D/H .. (h+1)*D/H - 1 of every token, ``x.view(B, T, H, D // H).transpose(1, 2)``."""
    split_heads = _own_work(
        "split_heads", split_heads,
        _lib.multihead.split_heads,
    )
    with _attempt("split_heads"):
        # T = H first, where a missing transpose keeps the shape; then B = H = D/H; then B, T, H, D/H all different
        # then a head size of 6 where the others have D/H = 4: a head size hard-coded for them shows
        for B, T, D, H in ((2, 3, 12, 3), (4, 2, 16, 4), (2, 5, 12, 3), (3, 4, 12, 2)):
            Dh = D // H
            x = _numbered(B, T, D)  # (B, T, D): the value of each entry is its flat index
            label = f"split_heads(x, num_heads={H}) for x of shape (B, T, D) = {(B, T, D)}"
            result = _call_with_hint(
                label, split_heads, (("x", x), ("num_heads", H)),
                f"x is (B, T, D) = {(B, T, D)}: x.view(B, T, H, D // H) splits the feature axis into H heads of "
                f"D/H features (D // H, an int: view refuses the float D / H), then .transpose(1, 2) moves the "
                f"head axis in front of the time axis",
            )
            got = _as_array(label, result)
            expected = multihead.split_heads(x, H)  # (B, H, T, D/H)
            if got.ndim == 4 and got.shape[0] == B and got.shape[2] == T and got.shape[1] * got.shape[3] == D and (
                    got.shape[1] not in (H, Dh)):
                raise AssertionError(
                    f"{label} has shape {got.shape} but should have shape {(B, H, T, Dh)}: you made {got.shape[1]} "
                    f"heads of {got.shape[3]} features, but num_heads = {H}: take the head size from the arguments, "
                    f"D // num_heads = {Dh}, not a fixed number"
                )
            _reject_shape(label, got, (B, H, T, Dh), [
                ((B, T, H, Dh), "the features are split into H heads, but the head axis is still behind the time "
                                "axis: move it in front with .transpose(1, 2), (B, T, H, D/H) -> (B, H, T, D/H)"),
                ((B, T, D), "x came back unsplit: view(B, T, H, D // H).transpose(1, 2)"),
                ((B * H, T, Dh), "you folded the heads into the batch axis, (B·H, T, D/H), as "
                                 "nn.MultiheadAttention does inside: keep them apart, (B, H, T, D/H)"),
                ((B, Dh, T, H), f"you made D/H = {Dh} heads of {H} features: num_heads is the number of heads "
                                f"H, each of D/H features: view(B, T, H, D // H)"),
                ((H, B, T, Dh), "the head axis went in front of the batch axis: the batch stays first, "
                                "(B, H, T, D/H), so swap only axes 1 and 2: .transpose(1, 2)"),
            ])
            wrong = {
                "you reshaped x straight to (B, H, T, D/H) (or split it into (B, T, H, D/H) and left the head "
                "axis behind the time axis: here T = H, and both give these numbers): a reshape keeps the memory "
                "order, token after token, so 'head' 0 got the first T·D/H numbers of the sequence (whole tokens), "
                "not D/H features of every token. Split the feature axis where it is, view(B, T, H, D // H), then "
                "swap the head and time axes: .transpose(1, 2)": x.reshape(B, H, T, Dh),
                "head h got every H-th feature (h, h + H, h + 2H, ...): split D as (H, D/H), head first, so that "
                "head h holds the contiguous block h·D/H .. (h+1)·D/H - 1, the layout merge_heads and "
                "nn.MultiheadAttention assume: view(B, T, H, D // H)": x.view(B, T, Dh, H).permute(0, 3, 1, 2),
                f"you made D/H = {Dh} heads of {H} features: num_heads is the number of heads H, each of D/H "
                f"features: view(B, T, H, D // H)": x.view(B, T, Dh, H).transpose(1, 2),
                "the head axis went in front of the batch axis: the batch stays first, (B, H, T, D/H), so swap "
                "only axes 1 and 2: .transpose(1, 2)": x.view(B, T, H, Dh).permute(2, 0, 1, 3),
            }
            _reject_known(label, got, expected, wrong, atol=0.0)
            _compare_numbered(label, got, expected, (B, T, D),
                              f" (B, H, T, D/H): entry [n, h, t, j] is feature h·D/H + j of token t, "
                              f"x[n, t, h·{Dh} + j]")
    _say("split_heads: correct: (B, T, D) -> (B, H, T, D/H), head h the h-th block of D/H features.")


@_reports_not_attempted
def check_merge_heads(merge_heads: Callable) -> None:
    """Exercise: ``merge_heads(x (B, H, T, E)) -> (B, T, H*E)``: concatenate the heads' features,
    ``x.transpose(1, 2).reshape(B, T, H * E)``, the inverse of ``split_heads``."""
    merge_heads = _own_work(
        "merge_heads", merge_heads,
        _lib.multihead.merge_heads,
    )
    with _attempt("merge_heads"):
        for B, H, T, Dh in ((2, 3, 4, 5), (3, 4, 2, 4)):  # B, H, T, E all different; then H = E
            x = _numbered(B, H, T, Dh)  # (B, H, T, E): the value of each entry is its flat index
            label = f"merge_heads(x) for x of shape (B, H, T, E) = {(B, H, T, Dh)}"
            result = _call_with_hint(
                label, merge_heads, (("x", x),),
                f"x is (B, H, T, E) = {(B, H, T, Dh)}. After x.transpose(1, 2), (B, T, H, E), the memory is no "
                f"longer in order and .view raises: use .reshape(B, T, H * E), which copies when it must (or "
                f".contiguous().view(...))",
            )
            got = _as_array(label, result)
            expected = multihead.merge_heads(x)  # (B, T, H*E)
            summed = "summed" if got.shape == (B, T, Dh) and np.allclose(got, x.sum(dim=1).numpy()) else "averaged"
            _reject_shape(label, got, (B, T, H * Dh), [
                ((B, T, Dh), f"you {summed} the heads, (B, T, E): concatenating keeps every head's E features "
                             f"side by side, (B, T, H·E). Mixing the heads is the job of W_o, after the merge"),
                ((B, H * T, Dh), "you concatenated the heads along the time axis, (B, H·T, E): every token "
                                 "gets all H heads' features, concatenated along the feature axis: (B, T, H·E)"),
                ((B, T, H, Dh), "the heads are in place but not concatenated: merge the last two axes, "
                                ".reshape(B, T, H * E)"),
                ((B, H, T * Dh), "you merged the time and feature axes of each head: move the head axis behind "
                                 "the time axis first, .transpose(1, 2), then merge heads and features"),
            ])
            wrong = {
                "you reshaped (B, H, T, E) straight to (B, T, H·E): a reshape keeps the memory order, head "
                "after head, so row t of the result strings together features of *other tokens* of head 0. Swap "
                "the head and time axes first, x.transpose(1, 2) (B, T, H, E), then .reshape(B, T, H * E)":
                    x.reshape(B, T, H * Dh),
                "the heads' features are interleaved (feature j of every head, then feature j + 1, ...): head h's "
                "E features stay together, as block h of the result: x.transpose(1, 2).reshape(B, T, H * E)":
                    x.permute(0, 2, 3, 1).reshape(B, T, Dh * H),
            }
            _reject_known(label, got, expected, wrong, atol=0.0)
            _compare_numbered(label, got, expected, (B, H, T, Dh),
                              f" (B, T, H·E): entry [n, t, h·{Dh} + j] is feature j of head h, x[n, h, t, j]")
    _say("merge_heads: correct: (B, H, T, E) -> (B, T, H·E), the heads' outputs side by side.")


def _mha_inputs(seed: int, B: int, T: int, D: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(B, T, D, generator=gen)  # (B, T, D)
    W_q, W_k, W_v, W_o = (torch.randn(D, D, generator=gen) / D**0.5 for _ in range(4))  # (D, D), as in X @ W
    return X, W_q, W_k, W_v, W_o


def _mha_reference(X, W_q, W_k, W_v, W_o, H: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``attention_course.MultiHeadAttention`` with these weights: (output (B, T, D), weights (B, H, T, T))."""
    D = X.shape[-1]
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the learner's RNG alone
        ref = multihead.MultiHeadAttention(D, H, bias=False).to(X.dtype)
    with torch.no_grad():
        for proj, W in ((ref.q_proj, W_q), (ref.k_proj, W_k), (ref.v_proj, W_v), (ref.out_proj, W_o)):
            proj.weight.copy_(W.T)  # nn.Linear computes x @ weight.T
        return ref(X, X, X)


def _mha_heads(X, W_q, W_k, W_v, H: int, *, scale: float | None = None, dim: int = -1,
               split: Callable | None = None, transpose: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The heads' outputs (B, H, T, E) and weights (B, H, T, T), with one step changed to make a mistake."""
    split = split or (lambda t: multihead.split_heads(t, H))
    Q, K, V = (split(X @ W) for W in (W_q, W_k, W_v))  # (B, H, T, E) each
    scale = Q.shape[-1] ** 0.5 if scale is None else scale
    weights = torch.softmax(Q @ (K.transpose(-2, -1) if transpose else K) / scale, dim=dim)  # (B, H, T, T)
    return weights @ V, weights


@_reports_not_attempted
def check_multihead_self_attention(multihead_self_attention: Callable) -> None:
    """Exercise: ``multihead_self_attention(X (B, T, D), W_q, W_k, W_v, W_o (D, D), num_heads)
    -> (output (B, T, D), weights (B, H, T, T))``: project, split into H heads of D/H features, attend in each
    head with the scale sqrt(D/H), concatenate the heads' *outputs*, multiply by W_o."""
    multihead_self_attention = _own_work(
        "multihead_self_attention", multihead_self_attention,
        _lib.multihead.MultiHeadAttention,
        torch.nn.MultiheadAttention,
        torch.nn.functional.multi_head_attention_forward,
    )
    with _attempt("multihead_self_attention"):
        # first D/H = T and H·T = D, where a missing transpose of K and concatenated weights still run
        # then a head size of 5 where both earlier cases have D/H = 4: a scale hard-coded as 2 shows
        for seed, (B, T, D, H) in ((73, (2, 4, 8, 2)), (78, (3, 5, 12, 3)), (81, (2, 3, 10, 2))):
            Dh = D // H
            X, W_q, W_k, W_v, W_o = _mha_inputs(seed, B, T, D)
            label = f"multihead_self_attention for B={B}, T={T}, D={D}, H={H}"
            result = _call_with_hint(
                label, multihead_self_attention,
                (("X", X), ("W_q", W_q), ("W_k", W_k), ("W_v", W_v), ("W_o", W_o), ("num_heads", H)),
                "X @ W_q is (B, T, D); split it into heads, (B, H, T, D/H), attend in every head at once with "
                "K.transpose(-2, -1), then merge the heads' *outputs* (weights @ V, (B, H, T, D/H)) back to "
                "(B, T, D) and multiply by W_o (D, D). The weights (B, H, T, T) are returned as they are, not "
                "concatenated or projected",
            )
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"multihead_self_attention must return a pair (output, weights), got {type(result).__name__}"
                )
            out, w = (_as_array(label, r) for r in result)
            expected_out, expected_w = _mha_reference(X, W_q, W_k, W_v, W_o, H)  # (B, T, D), (B, H, T, T)
            if out.shape == tuple(expected_w.shape) and w.shape == tuple(expected_out.shape):
                raise AssertionError(f"{label}: you returned (weights, output): return (output, weights)")
            heads, _ = _mha_heads(X, W_q, W_k, W_v, H)  # (B, H, T, Dh)
            one_out, one_w = _mha_heads(X, W_q, W_k, W_v, 1)  # one head of full width: (B, 1, T, D), (B, 1, T, T)
            one_head = (f"that is one head of full width D = {D}, not H = {H} heads of D/H = {Dh} features: "
                        f"split Q, K and V into heads, (B, H, T, D/H), so that each head attends on its own")
            if w.shape == (B, T, T):
                if np.allclose(w, expected_w.mean(dim=1).numpy(), atol=1e-5):
                    raise AssertionError(
                        f"weights, {label}: you averaged the heads' weights (nn.MultiheadAttention does so by "
                        f"default, average_attn_weights=True): return every head's (T, T) matrix, (B, H, T, T)"
                    )
            if w.shape in ((B, T, T), (B, 1, T, T)) and np.allclose(w.reshape(B, T, T), one_w[:, 0], atol=1e-5):
                raise AssertionError(f"weights, {label}: {one_head}")
            wrong_w = {
                f"you divided the scores by sqrt(D) = sqrt({D}), the model width: each head's scores are dot "
                f"products of D/H = {Dh} features, so the scale is sqrt(D/H) = {Dh**0.5:.3g}":
                    _mha_heads(X, W_q, W_k, W_v, H, scale=D**0.5)[1],
                f"you did not divide the scores by sqrt(D/H) = {Dh**0.5:.3g}":
                    _mha_heads(X, W_q, W_k, W_v, H, scale=1.0)[1],
                "you took the softmax over the queries (dim=2 of (B, H, T, T)): each row, one query, sums to 1 "
                "over the keys: dim=-1": _mha_heads(X, W_q, W_k, W_v, H, dim=2)[1],
                "you took the softmax over the heads (dim=1 of (B, H, T, T)): within each head, each query's "
                "weights sum to 1 over the keys: dim=-1": _mha_heads(X, W_q, W_k, W_v, H, dim=1)[1],
                "the heads were split with a plain reshape to (B, H, T, D/H), which puts whole tokens into a head: "
                "split the feature axis, view(B, T, H, D // H), then .transpose(1, 2)":
                    _mha_heads(X, W_q, W_k, W_v, H, split=lambda t: t.reshape(B, H, T, Dh))[1],
                "head h got every H-th feature: head h holds the contiguous block of features h·D/H .. "
                "(h+1)·D/H - 1: view(B, T, H, D // H).transpose(1, 2)":
                    _mha_heads(X, W_q, W_k, W_v, H, split=lambda t: t.view(B, T, Dh, H).permute(0, 3, 1, 2))[1],
            }
            wrong_w["the query and key projections are used transposed: the weights act as X @ W (an nn.Linear "
                    "stores the transpose, x @ weight.T), so Q = X @ W_q and K = X @ W_k"] = _mha_heads(
                X, W_q.T, W_k.T, W_v, H)[1]
            wrong_w[f"the scale is hard-coded: each head's scores are divided by sqrt(D/H) = sqrt({Dh}) here; "
                    f"compute it from the shapes, Q.shape[-1] ** 0.5 after the split"] = _mha_heads(
                X, W_q, W_k, W_v, H, scale=2.0)[1] if Dh != 4 else None
            wrong_w = {hint: value for hint, value in wrong_w.items() if value is not None}
            if Dh == T:
                wrong_w[f"you multiplied Q by K, not by K transposed: Q @ K only runs because D/H = T = {T} here. "
                        f"Q @ K.transpose(-2, -1)"] = _mha_heads(X, W_q, W_k, W_v, H, transpose=False)[1]
            _reject_known(f"weights, {label}", w, expected_w, wrong_w)
            _compare(f"weights, {label}", w, expected_w.numpy(), atol=1e-5,
                     legend=" (B, H, T, T): for each sequence and head, one row per query, one column per key")
            merged = multihead.merge_heads(heads)  # (B, T, D)
            wrong_out = {
                "there is no output projection: multiply the merged heads (B, T, D) by W_o last. Without W_o "
                "each output feature comes from one head only; W_o mixes what the heads found": merged,
                f"you concatenated the heads' attention *weights*, (B, T, H·T) = (B, T, {H * T}), and projected "
                f"them (that only runs because H·T = D here): multi-head attention concatenates the heads' "
                f"*outputs*, weights @ V (B, H, T, D/H), into (B, T, D), then projects with W_o":
                    multihead.merge_heads(expected_w) @ W_o if H * T == D else None,
                "the heads' outputs were merged with a plain reshape (B, H, T, D/H) -> (B, T, D), which strings "
                "together features of other tokens: .transpose(1, 2) first, then .reshape(B, T, D)":
                    heads.reshape(B, T, D) @ W_o,
                "W_o is used transposed: the weights act as X @ W, so the merged heads (B, T, D) times W_o":
                    merged @ W_o.T,
                one_head: multihead.merge_heads(one_out) @ W_o,
                "you used X itself as the values: project it first, V = X @ W_v, then split into heads":
                    multihead.merge_heads(expected_w @ multihead.split_heads(X, H)) @ W_o,
            }
            _reject_known(f"output, {label}", out, expected_out,
                          {hint: value for hint, value in wrong_out.items() if value is not None})
            _compare(f"output, {label}", out, expected_out.numpy(), atol=1e-5, legend=" (B, T, D): one row per token")
    _say("multihead_self_attention: correct: H heads of D/H features, scaled by sqrt(D/H), outputs "
          "concatenated and projected by W_o.")


@_reports_not_attempted
def check_mha_parameter_count(mha_parameter_count: Callable) -> None:
    """Exercise: ``mha_parameter_count(d_model, num_heads, bias) -> int``, the number of parameters of
    ``nn.MultiheadAttention(d_model, num_heads, bias=bias)``: 4·D² + 4·D with biases, whatever H is."""
    mha_parameter_count = _own_work(
        "mha_parameter_count", mha_parameter_count,
        _lib.multihead.MultiHeadAttention,
        torch.nn.MultiheadAttention,
    )
    with _attempt("mha_parameter_count"):
        for D, H, bias in ((512, 8, True), (64, 4, False), (12, 3, True), (6, 6, False)):
            label = f"mha_parameter_count(d_model={D}, num_heads={H}, bias={bias})"
            result = _call_with_hint(label, mha_parameter_count, (("d_model", D), ("num_heads", H), ("bias", bias)),
                                     "Count the entries of the four projections W_q, W_k, W_v, W_o and their biases")
            got = _number(label, result)
            if got != int(got):
                raise AssertionError(f"{label} is {got}, but a count of parameters is a whole number")
            with torch.random.fork_rng(devices=[]):  # building the module draws its initial weights
                expected = sum(p.numel() for p in torch.nn.MultiheadAttention(D, H, bias=bias).parameters())
            b = 1 if bias else 0
            wrong = {
                "you gave every head its own full-width D×D projections. A head projects to D/H features, so its "
                "W_q^(h) is D×(D/H), and the H heads together have D×D: the count does not depend on H":
                    H * (4 * D * D + 4 * D * b),
                "that is one head's share: the H heads of D/H features together have D×D weights per projection "
                "(and D biases), whatever H is": (4 * D * D + 4 * D * b) / H,
                "you forgot the output projection W_o (D×D, plus D biases): four projections, W_q, W_k, W_v "
                "and W_o": 3 * D * D + 3 * D * b,
                "you left out the biases: each of the four projections has D of them, 4·D": 4 * D * D,
                "bias=False: the projections have no biases, only the 4·D² weights": 4 * D * D + 4 * D,
                "W_o has a bias too: 4·D biases in all": 4 * D * D + 3 * D,
                "you gave every head its own D biases per projection: the biases are one D-vector per "
                "projection (each head gets D/H of the query, key and value biases), 4·D in all":
                    4 * D * D + 3 * D * H * b + D * b,
                "you gave every head its own D biases in all four projections: one D-vector per projection, "
                "4·D in all": 4 * D * D + 4 * D * H * b,
                "you gave each head (D/H)×(D/H) projections: head h's W_q^(h) maps all D input features to its "
                "D/H features, so it is D×(D/H), and the H heads together are D×D": (
                    4 * H * (D // H) ** 2 + 4 * D * b),
            }
            for hint, value in wrong.items():
                if value != expected and abs(got - value) < 0.5:
                    raise AssertionError(f"{label} is {int(got)} but should be {expected}: {hint}")
            if abs(got - expected) > 0.5:
                raise AssertionError(
                    f"{label} is {int(got)} but should be {expected}: W_q, W_k, W_v and W_o are D×D each, "
                    f"{'plus D biases each' if bias else 'without biases'}"
                )
    _say("mha_parameter_count: correct: 4·D² + 4·D (4·D² without biases), the same for any number of heads.")


# ---------------------------------------------------------------- the cost of the scores; ablating a head


@_reports_not_attempted
def check_score_cost_question(answer: Callable) -> None:
    """Question: how many multiplications do the H heads' score matrices Q_h K_hᵀ cost, for T = 1000 tokens,
    D = 512 and H = 8?"""
    T, D, H = 1000, 512, 8
    _check_number(
        "question (the cost of the scores)", answer, T * T * D,
        f"Each head computes T×T dot products of D/H features, T²·D/H multiplications, and the H heads together "
        f"T²·D = {T * T * D:,}: the same as one head of full width. Splitting into heads costs nothing extra; "
        f"what grows is the memory for H (T, T) weight matrices instead of one.",
        rtol=0.001,
        wrong={
            "H heads of full width D": (H * T * T * D, "a head's queries and keys have D/H features, not D: "
                                                        "each of its T² dot products costs D/H multiplications"),
            "one head's share": (T * T * D / H, "that is one head; the H heads each pay T²·D/H"),
            "the projections": (T * D * D, "T·D² is the cost of one projection X W_q (T tokens times a D×D "
                                            "matrix), not of the scores Q_h K_hᵀ"),
            "counting H·T² instead of T²·D": (H * T * T, "you counted the dot products, H·T², but each one is "
                                                         "D/H multiplications"),
            "T·D per head": (T * D, "a head's score matrix has T² entries, one per query-key pair, not T"),
        },
    )


def _ablation_reference(X, W_q, W_k, W_v, W_o, H: int) -> dict[str, torch.Tensor]:
    """The effect of zeroing each head, and what the usual wrong experiments measure, for ``check_head_ablation``."""
    B, T, D = X.shape
    Dh = D // H
    heads, _ = _mha_heads(X, W_q, W_k, W_v, H)  # (B, H, T, D/H)
    out = multihead.merge_heads(heads) @ W_o  # (B, T, D)
    norm = out.norm()
    rel, after_wo, abs_change, by_ablated, uniform, mean_abs = [], [], [], [], [], []
    for h in range(H):
        keep = torch.ones(H, 1, 1)
        keep[h] = 0.0
        ablated = multihead.merge_heads(heads * keep) @ W_o  # (B, T, D): head h's output zeroed before W_o
        rel.append((out - ablated).norm() / norm)
        abs_change.append((out - ablated).norm())
        by_ablated.append((out - ablated).norm() / ablated.norm())
        mean_abs.append((out - ablated).abs().mean())
        cut = out.clone()
        cut[..., h * Dh:(h + 1) * Dh] = 0.0  # zeroes output features, after W_o
        after_wo.append((out - cut).norm() / norm)
        Wq0 = W_q.clone()
        Wq0[:, h * Dh:(h + 1) * Dh] = 0.0  # head h's queries zeroed: uniform attention, not silence
        uniform.append((out - multihead.merge_heads(_mha_heads(X, Wq0, W_k, W_v, H)[0]) @ W_o).norm() / norm)
    return {name: torch.stack(v) for name, v in (("rel", rel), ("after W_o", after_wo), ("absolute", abs_change),
                                                  ("by ablated", by_ablated), ("uniform", uniform),
                                                  ("mean abs", mean_abs))}


@_reports_not_attempted
def check_head_ablation(head_ablation: Callable) -> None:
    """Experiment: ``head_ablation(X (B, T, D), W_q, W_k, W_v, W_o (D, D), num_heads) -> (H,)``: for each head h,
    zero head h's output (its D/H features of the merged heads, before W_o) and return the relative change of the
    output, ||out - out_without_h|| / ||out|| (norms over the whole batch)."""
    name = "head_ablation"
    with _attempt(name):
        for seed, (B, T, D, H, loud) in ((79, (2, 5, 12, 3, 1)), (80, (3, 4, 16, 4, 2))):
            X, W_q, W_k, W_v, W_o = _mha_inputs(seed, B, T, D)
            Dh = D // H
            W_o = W_o.clone()
            W_o[loud * Dh:(loud + 1) * Dh] *= 3.0  # one head's rows of W_o louder: it should matter most
            label = f"{name}(X, W_q, W_k, W_v, W_o, num_heads={H}) for B={B}, T={T}, D={D}"
            result = _call_with_hint(
                label, head_ablation,
                (("X", X), ("W_q", W_q), ("W_k", W_k), ("W_v", W_v), ("W_o", W_o), ("num_heads", H)),
                "Split Q, K, V into heads, (B, H, T, D/H), attend, and zero head h's output, heads[:, h] = 0 on a "
                "copy (or multiply by a (1, H, 1, 1) mask), before merge_heads and W_o",
            )
            got = _as_array(label, result)
            ref = _ablation_reference(X, W_q, W_k, W_v, W_o, H)
            if got.shape != (H,):
                raise AssertionError(f"{label} has shape {got.shape} but should have shape (H,) = ({H},): one "
                                     f"relative change per head")
            hints = {
                "after W_o": "you zeroed features h·D/H .. (h+1)·D/H - 1 of the *output*, after W_o: W_o mixes "
                             "every head into every output feature, so that removes a slice of the output, not "
                             "a head. Zero head h's output before the projection, then multiply by W_o",
                "absolute": "that is the absolute change ||out - out_without_h||: divide by ||out||, so that the "
                            "number does not depend on the scale of the inputs",
                "by ablated": "you divided by the norm of the ablated output: divide by ||out||, the unablated one",
                "uniform": "you zeroed head h's queries: its scores become 0 and its weights uniform, so the head "
                           "still outputs the mean of its values. Ablation silences the head: zero its output, "
                           "A_h V_h, itself",
                "mean abs": "you averaged the absolute differences: return the norm of the difference over the "
                            "norm of the output, ||out - out_without_h|| / ||out||",
            }
            for key, hint in hints.items():
                value = ref[key].detach().numpy()
                if np.allclose(got, value, atol=1e-5) and not np.allclose(value, ref["rel"].numpy(), atol=1e-5):
                    raise AssertionError(f"{label}: {hint}")
            _compare(label, got, ref["rel"].detach().numpy(), atol=1e-5,
                     legend=" (H,): entry h is ||out - out_without_head_h|| / ||out||")
    _say(f"head_ablation: correct: removing the louder head {loud} changes the output by "
         f"{float(ref['rel'][loud]):.0%}, each other head by at most {float(ref['rel'].sort().values[-2]):.0%}. "
         f"Its change is the head's whole contribution, merge(head h alone) @ W_o: W_o is linear.")
