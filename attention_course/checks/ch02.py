"""Chapter 2, soft attention: contexts, additive scores, one decoder step, alignment accuracy; a question
(the same query at every step) and an experiment (the diagonal's alignment accuracy).

The checks of ``chapters/02_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.data  # noqa: F401 (binds _lib.data)
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
    _call_pure,
    _check_choice,
)

__all__ = [
    "check_contexts",
    "check_additive_scores",
    "check_attention_step",
    "check_alignment_accuracy",
    "check_constant_query",
    "check_diagonal_alignment",
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
        for T, S, H in ((4, 4, 3), (3, 5, 4), (3, 3, 3)):  # square first: transposed weights still run
            weights = torch.softmax(torch.randn(T, S, generator=gen), dim=-1)  # (T, S), rows sum to 1
            states = torch.randn(S, H, generator=gen)  # (S, D)
            label = f"contexts for T={T}, S={S}, D={H}"
            got = _as_array(label, _call_pure(label, contexts, ("weights", weights), ("states", states)))
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
                if T > 1 and np.allclose(got, np.broadcast_to(got[:1], got.shape), atol=1e-6):
                    raise AssertionError(
                        f"{label}: every step got the same context: that is chapter 1's fixed context "
                        f"again. Step t has its own weights, row t of `weights`: c_t = sum_i a_ti h_i, or for "
                        f"all steps at once weights @ states"
                    )
                if np.allclose(got, x[weights.argmax(dim=-1).numpy()], atol=1e-6):
                    raise AssertionError(
                        f"{label}: each step got the single most-attended state: that is hard attention "
                        f"(chapter 4). Soft attention blends every state with its weight, weights @ states"
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
                if T == S == H and np.allclose(got, (weights * states).numpy(), atol=1e-6):
                    raise AssertionError(
                        f"{label}: you multiplied elementwise (weights * states), which only runs because "
                        f"T = S = D here: it pairs a_ti with entry i of one state. The sum over the source "
                        f"positions is the matrix product weights @ states"
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
        for seed, (S, H, A) in ((22, (5, 4, 3)), (26, (6, 3, 3)), (27, (4, 2, 7))):  # D = A: a missing .T runs
            s, states, W_q, W_k, v = _additive_inputs(seed, S, H, A)
            label = f"additive_scores for S={S}, D={H}, A={A}"
            got = _as_array(label, _call_pure(label, additive_scores, ("s", s), ("states", states),
                                              ("W_q", W_q), ("W_k", W_k), ("v", v)))
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
                "you applied tanh to each projection separately, tanh(W_q s) + tanh(W_k h_i): the tanh acts "
                "on their sum, tanh(W_q s + W_k h_i), which is what lets the query and the key interact":
                    (torch.tanh(W_q @ s) + torch.tanh(states @ W_k.T)) @ v,
            }
            if H == A:
                wrong["W_k is not transposed: states @ W_k only runs because D = A here. Row i of the result "
                      "must be W_k h_i, which is row i of states @ W_k.T"] = torch.tanh(W_q @ s + states @ W_k) @ v
                wrong["W_q is transposed: s @ W_q computes W_qᵀ s, and only runs because D = A here. The "
                      "query's projection is W_q @ s"] = torch.tanh(s @ W_q + states @ W_k.T) @ v
            if got.shape == tuple(expected.shape):
                for hint, value in wrong.items():
                    if np.allclose(got, value.numpy(), atol=1e-5) and not torch.allclose(value, expected, atol=1e-5):
                        raise AssertionError(f"{label}: {hint}")
            _compare(label, got, expected.numpy(), atol=1e-5, legend=" (S,): one score per source position")
    _say("additive_scores: correct: e_i = v · tanh(W_q s + W_k h_i).")


def _step_cases() -> list[tuple[str, torch.Tensor, tuple]]:
    """(description, mask (S,), (s, states, W_q, W_k, v)) for the attention-step check: padding at the
    end, at the start, inside, none, and a masked key with by far the largest score."""
    H, A = 4, 3
    cases = []
    for seed, mask, where, zero_padding in (
        (23, [True] * 4 + [False] * 2, "the last 2 positions masked", True),
        (24, [True] * 5 + [False] * 3, "the last 3 positions masked", True),
        (28, [False] * 2 + [True] * 4, "the first 2 positions masked (left padding)", True),
        (29, [True, False, True, True, False, False, True], "positions 1, 4 and 5 masked (inside the sequence)",
         False),
        (30, [True] * 5, "nothing masked", True),
    ):
        mask = torch.tensor(mask)
        s, states, W_q, W_k, v = _additive_inputs(seed, len(mask), H, A)
        if zero_padding:
            states = states * mask[:, None]  # zeros at padding, as the encoder leaves them
        cases.append((f"S={len(mask)} with {where}", mask, (s, states, W_q, W_k, v)))
    # a masked key with by far the largest score: v scaled so that it beats every allowed key by 200
    s, states, W_q, W_k, v = _additive_inputs(31, 6, H, A)
    e = _additive_reference(s, states, W_q, W_k, v)  # (S,)
    top = int(e.argmax())
    mask = torch.ones(6, dtype=torch.bool)
    mask[top] = False
    gap = float(e[top] - e[mask].max())
    v = v * (200.0 / gap)
    cases.append((f"S=6 with position {top} masked, the key with by far the largest score", mask,
                  (s, states, W_q, W_k, v)))
    return cases


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
        for where, mask, (s, states, W_q, W_k, v) in _step_cases():
            S, H = states.shape
            label = f"attention_step for {where}"
            result = _call_pure(label, attention_step, ("s", s), ("states", states), ("mask", mask),
                                ("W_q", W_q), ("W_k", W_k), ("v", v))
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
                    if "largest score" in where:
                        raise AssertionError(
                            f"{label}: weights[{j}] is {weights[j]}. The masked key's score is so large that in a "
                            f"softmax over *all* keys every allowed key's weight underflows to 0, and renormalising "
                            f"them is 0/0. Mask the scores before the softmax (masked_fill(~mask, float('-inf'))), "
                            f"so that the largest *allowed* score sets the scale"
                        )
                    raise AssertionError(
                        f"{label}: weights[{j}] is {weights[j]}: a softmax over all -inf scores is 0/0. "
                        f"Mask only the positions where mask is False"
                    )
                n_real = int(mask.sum())
                tail = torch.arange(S) >= n_real  # what "the padding is at the end" would mask
                wrong = {
                    "the mask is inverted: True means *may attend* (a real token), False marks the padding to "
                    "exclude": masked_softmax(e[None, :], ~mask[None, :])[0] if n_real < S else None,
                    "the mask was ignored (or taken from the states, which need not be zero at a masked "
                    "position): the masked positions got weight. Set their scores to -inf "
                    "(scores.masked_fill(~mask, float('-inf'))) before the softmax": torch.softmax(e, dim=-1),
                    "you gave the masked positions a score of 0, but exp(0) = 1: after the softmax they still "
                    "get weight. Exclude them with a score of -inf": torch.softmax(torch.where(mask, e, 0.0), dim=-1),
                    "you zeroed the masked weights after the softmax without renormalising, so the weights "
                    "sum to less than 1. Mask the scores (-inf) before the softmax instead":
                        torch.softmax(e, dim=-1) * mask,
                    f"you masked the last {S - n_real} positions, as if the padding were always at the end "
                    f"(e.g. scores[mask.sum():]): here the masked positions are "
                    f"{torch.nonzero(~mask).flatten().tolist()}. "
                    f"Use the mask itself, position by position":
                        masked_softmax(e[None, :], ~tail[None, :])[0] if not torch.equal(~tail, mask) else None,
                }
                for hint, value in wrong.items():
                    if value is not None and np.allclose(weights, value.numpy(), atol=1e-6) \
                            and not torch.allclose(value, expected_w, atol=1e-6):
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
    _say("attention_step: correct: additive scores, masked softmax (wherever the mask is), context.")


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
            ([2, 0, 1, 3, 3, 0], [2, 0, 3, 3, 1, 0], 4),  # T > S
        )
        for peaks, alignment, S in cases:
            T = len(peaks)
            logits = torch.randn(T, S, generator=gen) * 0.5  # (T, S)
            logits[torch.arange(T), torch.tensor(peaks)] += 2.0  # one clear peak per row
            weights = torch.softmax(logits, dim=-1)  # (T, S)
            align = torch.tensor(alignment)  # (T,)
            label = f"alignment_accuracy for T={T}, S={S}"
            got = _number(label, _call_pure(label, alignment_accuracy, ("weights", weights), ("alignment", align)))
            hits = weights.argmax(dim=-1) == align  # (T,)
            expected = hits.float().mean().item()
            wrong = {
                f"{int(hits.sum())} is a count of steps: return a share, divide by the number of target "
                f"steps T = {T}": float(hits.sum()),
                "you compared the largest weight's *value* with the alignment: compare its *position*, "
                "weights.argmax(dim=-1)": (weights.max(dim=-1).values == align).float().mean().item(),
                f"you divided by S = {S}, the number of source positions: the share is over the T = {T} "
                f"target steps (weights.shape[0], or len(alignment))": hits.sum().item() / S,
                "you took one argmax of the whole matrix (weights.argmax() without dim), one position for "
                "every step: take one per row, weights.argmax(dim=-1)":
                    (weights.argmax() == align).float().mean().item(),
                "integer division rounds the share down to 0: divide with / after turning the count into a "
                "float (.float().mean(), or .sum().item() / T)": 0.0,
            }
            if T == S:
                wrong["you took the argmax over the wrong axis: row t of weights (T, S) is target step t's "
                      "attention over the S source positions, so take the argmax over the source axis, "
                      "dim=-1"] = (weights.argmax(dim=0) == align).float().mean().item()
            if abs(got - expected) > 1e-6:
                hints = [hint for hint, value in wrong.items() if abs(got - value) < 1e-6 < abs(value - expected)]
                if hints:  # several mistakes give 0 here: name each
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: " + " Or: ".join(hints))
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: the most-attended positions are "
                    f"{weights.argmax(dim=-1).tolist()} and the alignment is {alignment}"
                )
    _say("alignment_accuracy: correct: the share of steps that attend most to the aligned source token.")


# ---------------------------------------------------------------- a question and an experiment


@_reports_not_attempted
def check_constant_query(answer: Callable[[], object]) -> None:
    """Question: what breaks if the decoder's query is the same at every step?"""
    _check_choice(
        "Exercise 5 (the same query at every step)", answer, "c",
        "the scores e_ti = score(s, h_i) no longer depend on t, so every step gets the same weights and the "
        "same context: one fixed vector for the whole sentence, as in chapter 1 (a weighted mean of the "
        "states instead of the last one). The alignment heatmap would show the same row T times.",
        {
            "a": "the weights need not be uniform: the keys h_i still differ, so one fixed query scores them "
                 "differently. What is lost is the change from step to step: every row is the same.",
            "b": "the softmax has no trouble with any finite scores; and the keys are the encoder states, "
                 "which differ from word to word. Nothing fails: the model just cannot look somewhere new "
                 "at each step.",
            "d": "the scores are a function of the query and the keys only: with the query fixed, nothing "
                 "in them can change with t. The keys are the same at every step too.",
        },
    )


def _diagonal_share(pairs, *, per_sentence: bool = False, offset: int = 0, crossing_only: bool = False) -> float:
    """The share of target steps t (over all pairs, pooled) whose true source position is t + offset."""
    hits = total = 0
    shares = []
    for p in pairs:
        steps = [(t, a) for t, a in enumerate(p.alignment) if not crossing_only or a != t]
        h = sum(int(a == t + offset) for t, a in steps)
        hits, total = hits + h, total + len(steps)
        shares.append(h / len(p.alignment))
    return sum(shares) / len(shares) if per_sentence else hits / max(total, 1)


@_reports_not_attempted
def check_diagonal_alignment(diagonal_alignment: Callable) -> None:
    """Experiment: ``diagonal_alignment(pairs) -> float``, the alignment accuracy, pooled over every target
    step of every pair, of attention that at step t looks at source position t (the diagonal)."""
    with _attempt("diagonal_alignment"):
        for n, lo, hi, seed in ((300, 3, 30, 123), (200, 3, 12, 7)):
            pairs = _lib.data.toy_translation(n, lo, hi, seed=seed)
            label = f"diagonal_alignment on {n} pairs of {lo}-{hi} words"
            got = _number(label, diagonal_alignment(list(pairs)))
            expected = _diagonal_share(pairs)
            wrong = {
                "you averaged the share per sentence, then over the sentences: pool every target step of "
                "every pair (hits / steps), as the chapter does": _diagonal_share(pairs, per_sentence=True),
                "off by one: positions count from 0 in the alignment, so step t's diagonal position is t, "
                "not t + 1": _diagonal_share(pairs, offset=1),
                "0 is what you get if you count only the steps where the word order changes (alignment[t] "
                "!= t: the diagonal misses every one of them) or divide integers with //. Count every target "
                "step, and divide with /": _diagonal_share(pairs, crossing_only=True),
            }
            if abs(got - expected) > 1e-9:
                for hint, value in wrong.items():
                    if abs(got - value) < 1e-9 and abs(value - expected) > 1e-9:
                        raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {hint}")
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: for each pair, the weights of the "
                    f"diagonal are torch.eye(T, S) (T = len(pair.target), S = len(pair.source)); count the "
                    f"steps whose argmax is pair.alignment[t], and divide by the number of steps of all pairs"
                )
    share = _diagonal_share(_lib.data.toy_translation(300, 3, 30, seed=123))
    _say(f"diagonal_alignment: correct: the diagonal alone, without reading a word, gets {share:.0%} of the "
         f"steps, and none of the steps where the word order changes: those are where a learned "
         f"alignment earns its keep.")
