"""Chapter 4, hard attention: top-k, Gumbel argmax, REINFORCE, straight-through Gumbel.

The checks of ``chapters/04_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.attention  # noqa: F401 (binds _lib.attention)
import attention_course.hard  # noqa: F401 (binds _lib.hard)

from .. import scores
from ..attention import hard_attention
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _call_pure,
    _SCORES_LEGEND,
)

__all__ = [
    "check_topk_hard_attention",
    "check_gumbel_argmax",
    "check_reinforce_surrogate",
    "check_straight_through_gumbel",
]


@_reports_not_attempted
def check_topk_hard_attention(topk_hard_attention: Callable) -> None:
    """Exercise: ``topk_hard_attention(scores (L, S), values (S, Ev), k) -> (output (L, Ev), weights (L, S))``:
    weight 1 on each row's k highest scores, 0 elsewhere; output the mean of the chosen values."""
    topk_hard_attention = _own_work(
        "topk_hard_attention", topk_hard_attention,
        _lib.attention.hard_attention,
    )
    with _attempt("topk_hard_attention"):
        # square first: a top-k over the wrong axis still runs
        for seed, (L, S, E, Ev, k) in ((51, (4, 4, 3, 3, 2)), (52, (3, 6, 4, 2, 2)), (53, (5, 7, 4, 3, 3))):
            gen = torch.Generator().manual_seed(seed)
            query, key = torch.randn(L, E, generator=gen), torch.randn(S, E, generator=gen)
            values = torch.randn(S, Ev, generator=gen)  # (S, Ev)
            x = scores.scaled_dot_scores(query, key)  # (L, S), no ties
            expected_out, expected_w = hard_attention(query, key, values, k)  # (L, Ev), (L, S)
            label = f"topk_hard_attention for L={L}, S={S}, Ev={Ev}, k={k}"
            result = _call_pure(label, topk_hard_attention, ("scores", x), ("values", values), ("k", k))
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"topk_hard_attention must return a pair (output, weights), got {type(result).__name__}"
                )
            out, w = (_as_array(label, r) for r in result)
            if out.shape == (L, S) and w.shape == (L, Ev) and Ev != S:
                raise AssertionError(f"{label}: you returned (weights, output): return (output, weights)")
            if w.shape == (L, S):
                soft = torch.softmax(x, dim=-1)
                if np.allclose(w, soft.numpy(), atol=1e-6):
                    raise AssertionError(
                        f"weights, {label}: these are softmax weights, soft attention. Hard attention picks "
                        f"keys: weight 1.0 on the k highest-scoring keys of each row and 0 elsewhere"
                    )
                if not np.all((w == 0) | (w == 1)):
                    raise AssertionError(f"weights, {label}: every weight must be exactly 0 or 1 (chosen or not)")
                row_sums = w.sum(axis=-1)
                if k > 1 and np.all(row_sums == 1):
                    raise AssertionError(
                        f"weights, {label}: each row chose 1 key but k = {k}: choose the k highest scores "
                        f"(scores.topk(k, dim=-1))"
                    )
                if L == S and np.all(w.sum(axis=0) == k) and not np.all(row_sums == k):
                    raise AssertionError(
                        f"weights, {label}: each column has k ones, but each row (one query) should: take the "
                        f"top k over the keys, the last axis (dim=-1)"
                    )
                lowest = x.topk(k, dim=-1, largest=False).indices  # (L, k)
                if np.array_equal(w, torch.zeros(L, S).scatter_(-1, lowest, 1.0).numpy()):
                    raise AssertionError(
                        f"weights, {label}: you chose the k lowest scores: attention goes to the keys that "
                        f"match best, the highest scores (topk's default, largest=True)"
                    )
            _compare(f"weights, {label}", w, expected_w.numpy(), atol=0.0, legend=_SCORES_LEGEND)
            if out.shape == (L, Ev) and np.allclose(out, (expected_w @ values).numpy(), atol=1e-5):
                raise AssertionError(
                    f"output, {label}: you summed the k = {k} chosen values: the output is their mean, "
                    f"weights @ values / k"
                )
            _compare(f"output, {label}", out, expected_out.numpy(), atol=1e-5,
                     legend=" (L, Ev): one row per query")
    _say("topk_hard_attention: correct: 1 on the k best keys of each row, the mean of their values.")


def _gumbel_noise(u: torch.Tensor) -> torch.Tensor:
    return -torch.log(-torch.log(u))  # Gumbel(0, 1) from uniform(0, 1)


def _uniform(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).clamp(1e-6, 1 - 1e-6)  # no log(0)


def _index_vector(label: str, x: object, B: int) -> torch.Tensor:
    if x is None:
        raise AssertionError(f"{label} returned None: did you forget `return`?")
    if not isinstance(x, torch.Tensor):
        raise AssertionError(f"{label} must return a torch tensor of indices, got {type(x).__name__}")
    if x.dtype != torch.long:
        raise AssertionError(
            f"{label} has dtype {x.dtype} but indices are int64 (torch.long), as argmax returns them"
        )
    if tuple(x.shape) != (B,):
        raise AssertionError(
            f"{label} has shape {tuple(x.shape)} but should be (B,) = ({B},), one index per row "
            f"(argmax(dim=-1), without keepdim)"
        )
    return x


@_reports_not_attempted
def check_gumbel_argmax(gumbel_argmax: Callable) -> None:
    """Exercise: ``gumbel_argmax(logits (B, S), u (B, S)) -> (B,)`` long, argmax(logits - log(-log u)):
    a sample from softmax(logits) for uniform u."""
    gumbel_argmax = _own_work(
        "gumbel_argmax", gumbel_argmax,
        _lib.hard.gumbel_noise,
        torch.nn.functional.gumbel_softmax,
    )
    with _attempt("gumbel_argmax"):
        gen = torch.Generator().manual_seed(54)
        B, S = 8, 5
        logits = torch.randn(B, S, generator=gen)  # (B, S)
        u = _uniform(gen, B, S)  # (B, S)
        label = f"gumbel_argmax for B={B}, S={S}"
        got = _index_vector(label, _call_pure(label, gumbel_argmax, ("logits", logits), ("u", u)), B)
        g = _gumbel_noise(u)  # (B, S)
        expected = (logits + g).argmax(dim=-1)  # (B,)
        wrong = {
            "the noise has the wrong sign: the Gumbel noise is g = -log(-log u), so add it, "
            "argmax(logits - log(-log u))": (logits - g).argmax(dim=-1),
            "you added the uniform u itself: uniform noise does not give samples from softmax(logits). "
            "Turn it into Gumbel noise first, g = -log(-log u)": (logits + u).argmax(dim=-1),
            "you took the argmax of the logits and ignored the noise u: that is the mode, the same index "
            "every time, not a sample": logits.argmax(dim=-1),
            "you took the argmin: the sample is the index of the largest perturbed logit, "
            "argmax(logits + g)": (logits + g).argmin(dim=-1),
        }
        for hint, value in wrong.items():
            if not torch.equal(value, expected) and torch.equal(got, value):
                raise AssertionError(f"{label}: {hint}")

        # many draws for one row: the frequencies must be softmax(logits)
        N, row = 20_000, torch.tensor([1.0, 0.0, -1.0, 0.5])  # (S,)
        probs = torch.softmax(row, dim=-1)  # (S,)
        u_many = _uniform(torch.Generator().manual_seed(57), N, 4)  # (draws, S)
        many = _index_vector(f"{label} for {N} draws", gumbel_argmax(row.expand(N, 4).clone(), u_many), N)
        freq = torch.bincount(many.clamp(0, 3), minlength=4).double() / N  # (S,)
        chi2 = float((N * (freq - probs) ** 2 / probs).sum())  # 3 degrees of freedom
        if chi2 > 30.0:  # a correct sampler: chi2 = 1.8 here; above 30 has p < 1e-5
            raise AssertionError(
                f"gumbel_argmax over {N} draws of logits {row.tolist()}: the indices came up with frequencies "
                f"{[round(f, 3) for f in freq.tolist()]}, but a sample from softmax(logits) has them with "
                f"probabilities {[round(p, 3) for p in probs.tolist()]}: use argmax(logits - log(-log u))"
            )
        if not torch.equal(got, expected):
            rows = torch.nonzero(got != expected).flatten().tolist()
            raise AssertionError(
                f"{label}: rows {rows} picked {got[rows].tolist()} but should pick {expected[rows].tolist()}: "
                f"for this u the sample is argmax(logits - log(-log u)), exactly"
            )
    _say("gumbel_argmax: correct: argmax(logits + Gumbel noise), a sample from softmax(logits).")


@_reports_not_attempted
def check_reinforce_surrogate(reinforce_surrogate: Callable) -> None:
    """Exercise: ``reinforce_surrogate(log_probs (B, S), picked (B,), rewards (B,), baseline) -> scalar``,
    -mean((rewards - baseline) * log_probs[n, picked_n]) with the advantage a constant."""
    reinforce_surrogate = _own_work(
        "reinforce_surrogate", reinforce_surrogate,
        _lib.hard.reinforce_surrogate,
    )
    with _attempt("reinforce_surrogate"):
        gen = torch.Generator().manual_seed(55)
        B, S, baseline = 6, 4, 0.7
        log_probs = torch.log_softmax(torch.randn(B, S, generator=gen), dim=-1).requires_grad_()  # (B, S) leaf
        picked = torch.randint(S, (B,), generator=gen)  # (B,)
        rewards = (2.0 * torch.rand(B, generator=gen)).requires_grad_()  # (B,): must get no gradient
        label = f"reinforce_surrogate for B={B}, S={S}, baseline={baseline}"
        loss = _call_pure(label, reinforce_surrogate, ("log_probs", log_probs), ("picked", picked),
                          ("rewards", rewards), ("baseline", baseline))
        if loss is None:
            raise AssertionError(f"{label} returned None: did you forget `return`?")
        if not isinstance(loss, torch.Tensor):
            raise AssertionError(
                f"{label} must return a torch tensor (a 0-d one), got {type(loss).__name__}: .item() or "
                f"float() cut the graph, and backward() needs it"
            )
        if loss.numel() != 1:
            raise AssertionError(f"{label} must be one number, got shape {tuple(loss.shape)}: average over the batch")
        lp, r = log_probs.detach(), rewards.detach()
        advantage = r - baseline  # (B,)
        chosen = lp[torch.arange(B), picked]  # (B,), log pi(picked_n)
        expected = -(advantage * chosen).mean()
        wrong = {
            "the sign is wrong: minimising the surrogate must make well-rewarded choices more likely, "
            "so it is minus the advantage times the log-probability": (advantage * chosen).mean(),
            "there is no baseline: subtract it from the rewards, (rewards - baseline), before weighting "
            "the log-probabilities": -(r * chosen).mean(),
            f"you summed over the batch: take the mean (the sum is B = {B} times too large)":
                -(advantage * chosen).sum(),
            "you used the probabilities, exp(log_probs): the score-function estimator weights the "
            "*log*-probability, whose gradient is grad log pi": -(advantage * chosen.exp()).mean(),
            "you took the log-probability of the most probable key, not of the picked one: "
            "log_probs[torch.arange(B), picked]": -(advantage * lp.max(dim=-1).values).mean(),
            "you gathered the wrong entries: log_probs[:, picked] is (B, B), every row at every picked "
            "index. Each row n needs only its own picked key: log_probs[torch.arange(B), picked]":
                -(advantage * lp[:, picked]).mean(),
        }
        value = float(loss.detach())
        for hint, w in wrong.items():
            if abs(float(w) - float(expected)) > 1e-5 and abs(value - float(w)) < 1e-5:
                raise AssertionError(f"{label} is {value:.6g} but should be {float(expected):.6g}: {hint}")
        if abs(value - float(expected)) > 1e-5:
            raise AssertionError(
                f"{label} is {value:.6g} but should be {float(expected):.6g}: "
                f"-mean((rewards - baseline) * log_probs[torch.arange(B), picked])"
            )
        if not loss.requires_grad:
            raise AssertionError(f"{label}: no gradient reaches log_probs: build the loss from log_probs itself")
        loss.backward()
        expected_grad = torch.zeros(B, S)
        expected_grad[torch.arange(B), picked] = -advantage / B  # (B, S)
        if log_probs.grad is None:
            raise AssertionError(f"{label}: no gradient reaches log_probs: build the loss from log_probs itself")
        _compare(f"the gradient of {label} with respect to log_probs", log_probs.grad, expected_grad.numpy(),
                 atol=1e-6, legend=" (B, S): nonzero only at each row's picked key")
        if rewards.grad is not None and rewards.grad.abs().max() > 0:
            raise AssertionError(
                f"{label}: a gradient reached the rewards: the advantage (rewards - baseline) is a constant "
                f"weight, not something to differentiate. Detach it: (rewards - baseline).detach()"
            )
    _say("reinforce_surrogate: correct: its gradient is the REINFORCE estimate, with a constant advantage.")


def _straight_through_reference(logits: torch.Tensor, u: torch.Tensor, tau: float) -> torch.Tensor:
    y = (logits + _gumbel_noise(u)) / tau  # (B, S)
    soft = torch.softmax(y, dim=-1)  # (B, S)
    hard = torch.zeros_like(soft).scatter_(-1, y.argmax(dim=-1, keepdim=True), 1.0)  # (B, S) one-hot
    return hard - soft.detach() + soft


@_reports_not_attempted
def check_straight_through_gumbel(straight_through_gumbel: Callable) -> None:
    """Exercise: ``straight_through_gumbel(logits (B, S), u (B, S), tau) -> (B, S)``: forward the one-hot of
    argmax((logits + g) / tau), backward the gradient of softmax((logits + g) / tau), g = -log(-log u)."""
    straight_through_gumbel = _own_work(
        "straight_through_gumbel", straight_through_gumbel,
        _lib.hard.straight_through_gumbel,
        torch.nn.functional.gumbel_softmax,
    )
    with _attempt("straight_through_gumbel"):
        gen = torch.Generator().manual_seed(56)
        B, S, tau = 6, 5, 0.5
        logits0 = torch.randn(B, S, generator=gen)  # (B, S)
        u = _uniform(gen, B, S)  # (B, S)
        C = torch.randn(B, S, generator=gen)  # a fixed linear function of the weights: sum(C * weights)
        label = f"straight_through_gumbel for B={B}, S={S}, tau={tau}"

        def weights_and_grad(fn: Callable, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
            logits = logits0.clone().requires_grad_()
            w = fn(logits, u, tau)
            (w * C).sum().backward()
            return w.detach(), logits.grad

        expected_w, expected_grad = weights_and_grad(_straight_through_reference, tau)
        _, grad_tau_1 = weights_and_grad(_straight_through_reference, 1.0)

        logits = logits0.clone().requires_grad_()
        result = _call_pure(label, straight_through_gumbel, ("logits", logits), ("u", u), ("tau", tau))
        if not isinstance(result, torch.Tensor):
            raise AssertionError(f"{label} must return a torch tensor (B, S), got {type(result).__name__}")
        w = _as_array(label, result)
        g = _gumbel_noise(u)
        soft = torch.softmax((logits0 + g) / tau, dim=-1)
        if w.shape == (B, S):
            if np.allclose(w, soft.numpy(), atol=1e-5):
                raise AssertionError(
                    f"{label}: the forward values are the soft sample softmax((logits + g) / tau), not a "
                    f"one-hot. The straight-through trick is hard - soft.detach() + soft: its value is the hard "
                    f"one-hot, its gradient the soft sample's (soft - hard.detach() + hard is the other way "
                    f"round: soft values)"
                )
            flipped = torch.zeros(B, S).scatter_(-1, (logits0 - g).argmax(dim=-1, keepdim=True), 1.0)
            if np.allclose(w, flipped.numpy()) and not torch.equal(flipped, expected_w):
                raise AssertionError(f"{label}: the noise has the wrong sign: g = -log(-log u), added to the logits")
        _compare(f"the forward values of {label}", w, expected_w.numpy(), atol=1e-5,
                 legend=" (B, S): the one-hot of each row's argmax((logits + g) / tau)")
        if not result.requires_grad:
            raise AssertionError(
                f"{label}: no gradient reaches the logits: a one-hot from argmax is a step function. Return "
                f"hard - soft.detach() + soft, whose value is the one-hot but whose gradient is the soft sample's"
            )
        (result * C).sum().backward()
        grad = logits.grad if logits.grad is not None else torch.zeros(B, S)
        if grad.abs().max() == 0:
            raise AssertionError(
                f"{label}: no gradient reaches the logits (it is zero): return hard - soft.detach() + soft"
            )
        if np.allclose(grad.numpy(), grad_tau_1.numpy(), atol=1e-6):
            raise AssertionError(
                f"{label}: the gradient is that of softmax(logits + g), without the temperature: divide "
                f"by tau = {tau} inside the softmax, softmax((logits + g) / tau)"
            )
        _compare(f"the gradient of sum(C * {label}) with respect to the logits", grad, expected_grad.numpy(),
                 atol=1e-5, legend=" (B, S)")
    _say("straight_through_gumbel: correct: a one-hot sample forward, the soft sample's gradient backward.")
