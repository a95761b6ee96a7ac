"""Chapter 2, soft attention: contexts, additive scores, one decoder step, alignment accuracy.

The checks of ``chapters/02_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.scores  # noqa: F401 (binds _lib.scores)
import attention_course.seq2seq  # noqa: F401 (binds _lib.seq2seq)

from .. import scores
from ..attention import masked_softmax
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _number,
)

__all__ = [
    "check_contexts",
    "check_additive_scores",
    "check_attention_step",
    "check_alignment_accuracy",
]


@_reports_not_attempted
def check_contexts(contexts: Callable) -> None:
    """Exercise: ``contexts(weights (T, S), states (S, D)) -> (T, D)``, c_t = sum_i a_ti h_i."""
    contexts = _own_work(
        "contexts", contexts,
        _lib.attention.attend,
    )
    with _attempt("contexts"):
        gen = torch.Generator().manual_seed(21)
        for T, S, H in ((4, 4, 3), (3, 5, 4)):  # square first: transposed weights still run
            weights = torch.softmax(torch.randn(T, S, generator=gen), dim=-1)  # (T, S), rows sum to 1
            states = torch.randn(S, H, generator=gen)  # (S, D)
            label = f"contexts for T={T}, S={S}, D={H}"
            got = _as_array(label, contexts(weights.clone(), states.clone()))
            expected = (weights @ states).numpy()  # (T, D)
            x = states.numpy()
            if got.shape == expected.shape:
                for which, fixed in (("the mean of the states", x.mean(axis=0)), ("the last state", x[-1])):
                    if np.allclose(got, np.broadcast_to(fixed, got.shape), atol=1e-6):
                        raise AssertionError(
                            f"{label}: every step got the same context, {which}: that is chapter 1's fixed "
                            f"context. Step t has its own weights, row t of `weights`: "
                            f"c_t = sum_i a_ti h_i, or for all steps at once weights @ states"
                        )
                if T == S and np.allclose(got, (weights.sum(dim=0)[:, None] * states).numpy(), atol=1e-6):
                    raise AssertionError(
                        f"{label}: you summed a_ti h_i over the target steps t; c_t sums over the source "
                        f"positions i: (weights[:, :, None] * states[None]).sum(dim=1), or simply weights @ states"
                    )
                if T == S and np.allclose(got, (weights.T @ states).numpy(), atol=1e-6):
                    raise AssertionError(
                        f"{label}: you used the weights transposed: row t of weights (T, S) holds step t's "
                        f"weights over the S source states, so c_t = sum_i a_ti h_i is row t of weights @ states"
                    )
            _compare(label, got, expected, atol=1e-5, legend=" (T, D): one context per target step")
    _say("contexts: correct: one weighted sum of the encoder states per target step.")


def _additive_inputs(seed: int, S: int, H: int, A: int):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(H, generator=gen)  # (D,), the decoder state s_{t-1}
    states = torch.randn(S, H, generator=gen)  # (S, D), the encoder states h_i
    W_q = torch.randn(A, H, generator=gen) * 0.5  # (A, D)
    W_k = torch.randn(A, H, generator=gen) * 0.5  # (A, D)
    v = torch.randn(A, generator=gen)  # (A,)
    return s, states, W_q, W_k, v


def _additive_reference(s, states, W_q, W_k, v) -> torch.Tensor:
    return scores.additive_scores(s[None, :], states, W_q, W_k, v)[0]  # (1, S) -> (S,)


@_reports_not_attempted
def check_additive_scores(additive_scores: Callable) -> None:
    """Exercise: ``additive_scores(s (D,), states (S, D), W_q (A, D), W_k (A, D), v (A,)) -> (S,)``,
    e_i = v · tanh(W_q s + W_k h_i)."""
    additive_scores = _own_work(
        "additive_scores", additive_scores,
        _lib.scores.additive_scores,
    )
    with _attempt("additive_scores"):
        S, H, A = 5, 4, 3
        s, states, W_q, W_k, v = _additive_inputs(22, S, H, A)
        label = f"additive_scores for S={S}, D={H}, A={A}"
        got = _as_array(label, additive_scores(s.clone(), states.clone(), W_q.clone(), W_k.clone(), v.clone()))
        expected = _additive_reference(s, states, W_q, W_k, v)  # (S,)
        pre = W_q @ s + states @ W_k.T  # (S, A): W_q s + W_k h_i for every i
        wrong = {
            "there is no tanh: apply it to the A-vector W_q s + W_k h_i before the dot product with v. "
            "Without it the score is v·W_q s + v·W_k h_i, whose first term is the same for every i and "
            "cancels in the softmax: the weights would not depend on the decoder state at all": pre @ v,
            "W_q and W_k are swapped: W_q projects the decoder state s (the query), W_k the encoder "
            "states h_i (the keys)": torch.tanh(W_k @ s + states @ W_q.T) @ v,
            "the tanh is applied after v: it acts on the A-vector W_q s + W_k h_i, then v turns the "
            "result into one number per source position": torch.tanh(pre @ v),
            "you summed the A features instead of taking the dot product with v: v is a learned vector, "
            "v · tanh(...)": torch.tanh(pre).sum(dim=-1),
            "these are weights (they sum to 1), not scores: return the raw scores e_i; the softmax comes "
            "in the next step": torch.softmax(expected, dim=-1),
        }
        if got.shape == tuple(expected.shape):
            for hint, value in wrong.items():
                if np.allclose(got, value.numpy(), atol=1e-5):
                    raise AssertionError(f"{label}: {hint}")
        _compare(label, got, expected.numpy(), atol=1e-5, legend=" (S,): one score per source position")
    _say("additive_scores: correct: e_i = v · tanh(W_q s + W_k h_i).")


@_reports_not_attempted
def check_attention_step(attention_step: Callable) -> None:
    """Exercise: ``attention_step(s, states, mask, W_q, W_k, v) -> (context (D,), weights (S,))``: additive
    scores, a softmax over the positions where ``mask`` is True; masked positions get weight exactly 0."""
    attention_step = _own_work(
        "attention_step", attention_step,
        _lib.scores.additive_scores,
        _lib.attention.masked_softmax,
        _lib.attention.attend,
    )
    with _attempt("attention_step"):
        H, A = 4, 3
        for S, length, seed in ((6, 4, 23), (8, 5, 24)):
            s, states, W_q, W_k, v = _additive_inputs(seed, S, H, A)
            mask = torch.arange(S) < length  # (S,), True = a real token (may attend)
            states = states * mask[:, None]  # zeros at padding, as the encoder leaves them
            label = f"attention_step for S={S} with the last {S - length} positions masked"
            result = attention_step(s.clone(), states.clone(), mask.clone(), W_q.clone(), W_k.clone(), v.clone())
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"attention_step must return a pair (context, weights), got {type(result).__name__}"
                )
            context, weights = (_as_array(label, r) for r in result)
            if context.shape == (S,) and weights.shape == (H,):
                raise AssertionError(f"{label}: you returned (weights, context): return (context, weights)")
            e = _additive_reference(s, states, W_q, W_k, v)  # (S,)
            expected_w = masked_softmax(e[None, :], mask[None, :])[0]  # (S,)
            if weights.shape == (S,):
                if not np.all(np.isfinite(weights)):
                    j = int(np.argmax(~np.isfinite(weights)))
                    raise AssertionError(
                        f"{label}: weights[{j}] is {weights[j]}: a softmax over all -inf scores is 0/0. "
                        f"Mask only the positions where mask is False"
                    )
                wrong = {
                    "the mask is inverted: True means *may attend* (a real token), False marks the padding to "
                    "exclude": masked_softmax(e[None, :], ~mask[None, :])[0],
                    "the mask was ignored: the padding positions got weight. Set their scores to -inf "
                    "(scores.masked_fill(~mask, float('-inf'))) before the softmax": torch.softmax(e, dim=-1),
                    "you gave the padding positions a score of 0, but exp(0) = 1: after the softmax they still "
                    "get weight. Exclude them with a score of -inf": torch.softmax(torch.where(mask, e, 0.0), dim=-1),
                    "you zeroed the masked weights after the softmax without renormalising, so the weights "
                    "sum to less than 1. Mask the scores (-inf) before the softmax instead":
                        torch.softmax(e, dim=-1) * mask,
                }
                for hint, value in wrong.items():
                    if np.allclose(weights, value.numpy(), atol=1e-6):
                        raise AssertionError(f"{label}: {hint}")
                leaked = np.flatnonzero(~mask.numpy() & (weights != 0))
                if leaked.size:
                    j = int(leaked[0])
                    raise AssertionError(
                        f"{label}: weights[{j}] = {weights[j]:.3g} but position {j} is masked: it must be exactly 0"
                    )
            _compare(f"weights, {label}", weights, expected_w.numpy(), atol=1e-5, legend=" (S,)")
            _compare(f"context, {label}", context, (expected_w @ states).numpy(), atol=1e-5,
                     legend=" (D,): the weighted sum of the states")
    _say("attention_step: correct: additive scores, masked softmax, context.")


@_reports_not_attempted
def check_alignment_accuracy(alignment_accuracy: Callable) -> None:
    """Exercise: ``alignment_accuracy(weights (T, S), alignment (T,)) -> float``, the share of target steps
    whose most-attended source position is the true one."""
    alignment_accuracy = _own_work(
        "alignment_accuracy", alignment_accuracy,
        _lib.seq2seq.alignment_accuracy,
    )
    with _attempt("alignment_accuracy"):
        gen = torch.Generator().manual_seed(25)
        cases = (
            ([0, 2, 3, 4, 1], [0, 2, 1, 4, 2], 5),  # T = S, so an argmax over the wrong axis still runs
            ([1, 5, 3], [1, 4, 3], 6),
        )
        for peaks, alignment, S in cases:
            T = len(peaks)
            logits = torch.randn(T, S, generator=gen) * 0.5  # (T, S)
            logits[torch.arange(T), torch.tensor(peaks)] += 2.0  # one clear peak per row
            weights = torch.softmax(logits, dim=-1)  # (T, S)
            align = torch.tensor(alignment)  # (T,)
            label = f"alignment_accuracy for T={T}, S={S}"
            got = _number(label, alignment_accuracy(weights.clone(), align.clone()))
            hits = weights.argmax(dim=-1) == align  # (T,)
            expected = hits.float().mean().item()
            wrong = {
                f"{int(hits.sum())} is a count of steps: return a share, divide by the number of target "
                f"steps T = {T}": float(hits.sum()),
                "you compared the largest weight's *value* with the alignment: compare its *position*, "
                "weights.argmax(dim=-1)": (weights.max(dim=-1).values == align).float().mean().item(),
            }
            if T == S:
                wrong["you took the argmax over the wrong axis: row t of weights (T, S) is target step t's "
                      "attention over the S source positions, so take the argmax over the source axis, "
                      "dim=-1"] = (weights.argmax(dim=0) == align).float().mean().item()
            for hint, value in wrong.items():
                if abs(got - value) < 1e-6 and abs(value - expected) > 1e-6:
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {hint}")
            if abs(got - expected) > 1e-6:
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: the most-attended positions are "
                    f"{weights.argmax(dim=-1).tolist()} and the alignment is {alignment}"
                )
    _say("alignment_accuracy: correct: the share of steps that attend most to the aligned source token.")
