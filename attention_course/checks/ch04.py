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
    _check_choice,
    _number,
)

__all__ = [
    "check_topk_hard_attention",
    "check_gumbel_argmax",
    "check_reinforce_surrogate",
    "check_straight_through_gumbel",
    "check_reinforce_variance",
    "check_reward_shift_question",
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
        # then k = 1 (the argmax) and k = S (every key: the plain mean of the values)
        for seed, (L, S, E, Ev, k) in ((51, (4, 4, 3, 3, 2)), (52, (3, 6, 4, 2, 2)), (53, (5, 7, 4, 3, 3)),
                                       (50, (3, 5, 4, 2, 1)), (49, (2, 3, 4, 2, 3))):
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
                if np.all(row_sums == row_sums[0]) and row_sums[0] != k and not (
                        L == S and np.all(w.sum(axis=0) == k)):
                    raise AssertionError(
                        f"weights, {label}: each row chose {int(row_sums[0])} key"
                        f"{'s' if row_sums[0] != 1 else ''} but k = {k}: choose the k highest scores with the k "
                        f"you are given (scores.topk(k, dim=-1)), not a fixed number"
                    )
                if L == S and np.all(w.sum(axis=0) == k) and not np.all(row_sums == k):
                    raise AssertionError(
                        f"weights, {label}: each column has k ones, but each row (one query) should: take the "
                        f"top k over the keys, the last axis (dim=-1)"
                    )
                lowest = x.topk(k, dim=-1, largest=False).indices  # (L, k)
                if k < S and np.array_equal(w, torch.zeros(L, S).scatter_(-1, lowest, 1.0).numpy()):
                    raise AssertionError(
                        f"weights, {label}: you chose the k lowest scores: attention goes to the keys that "
                        f"match best, the highest scores (topk's default, largest=True)"
                    )
            _compare(f"weights, {label}", w, expected_w.numpy(), atol=0.0, legend=_SCORES_LEGEND)
            if out.shape == (L, Ev) and k != S and np.allclose(out, (expected_w @ values / S).numpy(), atol=1e-5):
                raise AssertionError(
                    f"output, {label}: you divided by S = {S}, the number of keys: the output is the mean of the "
                    f"k = {k} chosen values, weights @ values / k"
                )
            if out.shape == (L, Ev) and k != S and np.allclose(
                    out, (torch.softmax(x, dim=-1) @ values).numpy(), atol=1e-5):
                raise AssertionError(
                    f"output, {label}: the weights are right but the output is the soft-attention average, "
                    f"softmax(scores) @ values: hard attention reads only the chosen keys, weights @ values / k"
                )
            if out.shape == (L, Ev) and k > 1 and np.allclose(out, (expected_w @ values).numpy(), atol=1e-5):
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
        for seed, (B, S, baseline) in ((55, (6, 4, 0.7)), (59, (3, 5, -0.4))):
            gen = torch.Generator().manual_seed(seed)
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
                raise AssertionError(
                    f"{label} must be one number, got shape {tuple(loss.shape)}: average over the batch"
                )
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
                "you added the baseline: the advantage is rewards - baseline, how much better than expected "
                "this pick did": -((r + baseline) * chosen).mean(),
                "you used rewards.mean() as the baseline: use the baseline you are given (in training it is a "
                "running average of past rewards, not this batch's mean)": -((r - r.mean()) * chosen).mean(),
                "the picked log-probabilities are (B, 1) (gather without .squeeze(-1), or picked[:, None]), and "
                "(B, 1) * (B,) broadcasts to (B, B), every advantage times every log-probability: squeeze to (B,) "
                "first": -(advantage[None, :] * chosen[:, None]).mean(),
                "you weighted the log-probabilities of every key, not only the picked one: the estimator uses "
                "log pi(picked_n), log_probs[torch.arange(B), picked]": -(advantage[:, None] * lp).mean(),
            }
            value = float(loss.detach())
            if not np.isfinite(value):
                raise AssertionError(
                    f"{label} is {value}: log_probs are already logarithms (log_softmax of the scores): use "
                    f"them as they are, without another log"
                )
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
        for seed, tau in ((56, 0.5), (60, 3.0)):  # tau varies: a temperature fixed in the code shows
            gen = torch.Generator().manual_seed(seed)
            B, S = 6, 5
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
                plain = torch.zeros(B, S).scatter_(-1, logits0.argmax(dim=-1, keepdim=True), 1.0)
                if np.allclose(w, plain.numpy()) and not torch.equal(plain, expected_w):
                    raise AssertionError(
                        f"{label}: the one-hot is the argmax of the logits alone, the same key every time: add "
                        f"the Gumbel noise g = -log(-log u) before the argmax, argmax((logits + g) / tau)"
                    )
                flipped = torch.zeros(B, S).scatter_(-1, (logits0 - g).argmax(dim=-1, keepdim=True), 1.0)
                if np.allclose(w, flipped.numpy()) and not torch.equal(flipped, expected_w):
                    raise AssertionError(
                        f"{label}: the noise has the wrong sign: g = -log(-log u), added to the logits"
                    )
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
            if tau != 0.5 and np.allclose(grad.numpy(), weights_and_grad(_straight_through_reference, 0.5)[1].numpy(),
                                          atol=1e-6):
                raise AssertionError(
                    f"{label}: the gradient is that of the temperature 0.5, the first case's, not tau = {tau}: "
                    f"use the tau you are given, softmax((logits + g) / tau)"
                )
            _, grad_times_tau = weights_and_grad(_straight_through_reference, 1.0 / tau)
            if np.allclose(grad.numpy(), grad_times_tau.numpy(), atol=1e-6):
                raise AssertionError(
                    f"{label}: the gradient is that of softmax((logits + g) * tau): divide by the temperature, "
                    f"softmax((logits + g) / tau), so that a small tau gives a sharp, nearly one-hot sample"
                )
            _compare(f"the gradient of sum(C * {label}) with respect to the logits", grad, expected_grad.numpy(),
                     atol=1e-5, legend=" (B, S)")
    _say("straight_through_gumbel: correct: a one-hot sample forward, the soft sample's gradient backward.")


# ---------------------------------------------------------------- the variance of REINFORCE, measured


def _reinforce_estimates(logits: torch.Tensor, rewards: torch.Tensor, baseline: float) -> tuple[torch.Tensor, ...]:
    """p (S,), and the S possible single-sample estimates (S, S) of grad_z E[R]: row j if key j is picked,
    (R_j - b)(onehot(j) - p), the gradient of (R_j - b) log softmax(z)_j with respect to z."""
    z, R = logits.double(), rewards.double()
    p = torch.softmax(z, dim=-1)  # (S,)
    S = z.shape[-1]
    return p, (R - baseline)[:, None] * (torch.eye(S, dtype=torch.float64) - p)  # (S,), (S, S)


def _reinforce_moments(logits: torch.Tensor, rewards: torch.Tensor, baseline: float) -> dict[str, float]:
    """The exact total variance of one REINFORCE estimate, and what the usual wrong measurements give."""
    p, g = _reinforce_estimates(logits, rewards, baseline)
    S = p.shape[0]
    mean = (p[:, None] * g).sum(dim=0)  # (S,), the exact gradient
    second = float((p * (g**2).sum(dim=-1)).sum())  # E ||g||^2
    variance = second - float((mean**2).sum())
    R = rewards.double() - baseline
    pg = (p * R)[:, None] * (torch.eye(S, dtype=torch.float64) - p)  # (S, S): grad of (R - b) p_j, not log p_j
    no_reward = torch.eye(S, dtype=torch.float64) - p  # (S, S): grad log p_j without the reward
    return {
        "variance": variance,
        "second moment": second,
        "mean over the components": variance / S,
        "standard deviation": variance**0.5,
        "rewards": float((p * R**2).sum() - (p * R).sum() ** 2),
        "grad p": float((p * (pg**2).sum(-1)).sum() - ((p[:, None] * pg).sum(0) ** 2).sum()),
        "no reward": float((p * (no_reward**2).sum(-1)).sum() - ((p[:, None] * no_reward).sum(0) ** 2).sum()),
    }


@_reports_not_attempted
def check_reinforce_variance(reinforce_gradient_variance: Callable) -> None:
    """Experiment: ``reinforce_gradient_variance(logits (S,), rewards (S,), baseline, n, seed) -> float``: draw n
    keys j ~ softmax(logits) (a generator seeded with ``seed``), form each draw's REINFORCE estimate of the
    gradient of E[R] with respect to the logits, (R_j - b)(onehot(j) - p), and return their total variance (the
    variance across the n draws of each of the S components, summed over the components)."""
    name = "reinforce_gradient_variance"
    with _attempt(name):
        logits = torch.tensor([1.0, 0.0, -0.5, 0.5])  # (S,)
        rewards = torch.tensor([7.0, 5.0, 4.0, 6.0])  # (S,): all far from 0, as rewards usually are
        expected_reward = float((torch.softmax(logits.double(), -1) * rewards.double()).sum())
        n = 20_000
        measured = {}
        for baseline in (0.0, round(expected_reward, 3)):
            label = f"{name}(logits, rewards, baseline={baseline}, n={n}, seed=0)"
            values = []
            for seed in (0, 0):
                result = _call_pure(label, reinforce_gradient_variance, ("logits", logits), ("rewards", rewards),
                                    ("baseline", baseline), ("n", n), ("seed", seed))
                values.append(_number(label, result))
            if values[0] != values[1]:
                raise AssertionError(
                    f"{label} gave {values[0]:.6g} and then {values[1]:.6g}: the same seed must give the same "
                    f"measurement. Draw the keys with torch.multinomial(p, n, replacement=True, "
                    f"generator=torch.Generator().manual_seed(seed)) (or call torch.manual_seed(seed) first)"
                )
            got = values[0]
            ref = _reinforce_moments(logits, rewards, baseline)
            if abs(got - ref["variance"]) <= 0.07 * ref["variance"]:
                measured[baseline] = got
                continue
            wrong = {
                "second moment": "you averaged the squared length of the estimates without subtracting their mean "
                                 "first: that is E||g||^2, the variance plus the squared length of the true gradient. "
                                 "Use the variance across the draws, estimates.var(dim=0), then sum it",
                "mean over the components": "you averaged the S components' variances: the total variance is "
                                            "their sum, estimates.var(dim=0).sum()",
                "standard deviation": "that is a standard deviation (or a square root of the total variance): "
                                      "return the variance itself, estimates.var(dim=0).sum()",
                "rewards": "you measured the spread of the (rewards - baseline) of the picked keys, not of the "
                           "gradient estimates: each draw's estimate is the vector (R_j - b)(onehot(j) - p), (S,)",
                "grad p": "you weighted the gradient of the probability p_j, not of its log: the score function is "
                          "grad log p_j = onehot(j) - p, so each estimate is (R_j - b)(onehot(j) - p)",
                "no reward": "you measured the gradient of log p_j alone: weight it by the advantage, "
                             "(R_j - b)(onehot(j) - p)",
            }
            if baseline != 0.0:
                no_baseline = _reinforce_moments(logits, rewards, 0.0)["variance"]
                if abs(got - no_baseline) <= 0.04 * no_baseline:
                    raise AssertionError(
                        f"{label} is {got:.4g}, the variance without a baseline ({no_baseline:.4g}): subtract the "
                        f"baseline from the rewards, (rewards[j] - baseline), before weighting. The exact value "
                        f"here is {ref['variance']:.4g}"
                    )
            for key, hint in wrong.items():
                if abs(got - ref[key]) <= 0.04 * abs(ref[key]) and abs(ref[key] - ref["variance"]) > 0.15 * ref[
                        "variance"]:
                    raise AssertionError(f"{label} is {got:.4g}: {hint}. The exact value here is "
                                         f"{ref['variance']:.4g}")
            raise AssertionError(
                f"{label} is {got:.4g} but the exact total variance of one estimate is {ref['variance']:.4g} (the "
                f"check accepts 7%, far more than the sampling error of {n} draws): draw j ~ softmax(logits), form "
                f"(rewards[j] - baseline) * (onehot(j) - p) for every draw, (n, S), and return "
                f".var(dim=0).sum()"
            )
    ratio = measured[0.0] / measured[round(expected_reward, 3)]
    _say(f"reinforce_gradient_variance: correct: here the baseline E[R] cuts the variance about {ratio:.0f}-fold, "
         f"and the expected gradient is the same.")


@_reports_not_attempted
def check_reward_shift_question(answer: Callable) -> None:
    """Question: add 10 to every reward (no baseline): what happens to the REINFORCE estimate?"""
    _check_choice(
        "question (adding 10 to every reward)", answer, "b",
        "Sum_j p_j (onehot(j) - p) = p - p = 0, so a constant c added to every reward adds c times a zero-mean "
        "vector: the expected gradient does not move, but each single estimate swings by c·(onehot(j) - p). "
        "A baseline is such a constant with the other sign: it changes the variance and nothing else.",
        {
            "a": "the expected gradient indeed stays, but each single estimate is now (R_j + 10)(onehot(j) - p): "
                 "the extra 10·(onehot(j) - p) changes with the pick j, so the estimates spread more. Measure it "
                 "with your reinforce_gradient_variance",
            "c": "the expected gradient does not grow: E[onehot(j) - p] = p - p = 0, so the added 10·E[onehot(j) - "
                 "p] vanishes (that is why a baseline leaves REINFORCE unbiased). And the variance does change: "
                 "measure it with your reinforce_gradient_variance",
            "d": "the expected gradient is unchanged: E[10·(onehot(j) - p)] = 10·(p - p) = 0, the same argument "
                 "that makes any baseline unbiased. Only the variance grows",
        },
    )
