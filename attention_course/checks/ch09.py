"""Chapter 9, a language model from attention: the shifted loss, temperature, top-p, previous-token heads.

The checks of ``chapters/09_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

import attention_course as _lib
import attention_course.lm  # noqa: F401 (binds _lib.lm)
import attention_course.sampling  # noqa: F401 (binds _lib.sampling)

from .. import masks
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _fmt_index,
    _compare,
    _reject_known,
    _call_with_hint,
    _check_choice,
    _check_number,
    _number,
)

__all__ = [
    "check_causal_lm_loss",
    "check_nats_to_bits_question",
    "check_temperature_probs",
    "check_top_p_filter",
    "check_greedy_cycle_question",
    "check_previous_token_head",
    "check_previous_token_experiment",
    "check_masked_lm_question",
]

F = torch.nn.functional


# ---------------------------------------------------------------- the causal language-model loss


def _toy_model(V: int, T_max: int, seed: int, *, requires_grad: bool = False) -> tuple[Callable, torch.Tensor]:
    """A causal "model" ids (B, T) -> logits (B, T, V), T <= T_max: a bigram table plus a term per position,
    so that the logits depend on the token and on where it is (a shifted or misaligned pairing shows)."""
    gen = torch.Generator().manual_seed(seed)
    table = (torch.randn(V, V, generator=gen, dtype=torch.float64) * 2.0).requires_grad_(requires_grad)
    pos = torch.randn(T_max, V, generator=gen, dtype=torch.float64) * 0.7  # (T_max, V)

    def model(x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.long or x.dim() != 2:
            raise ValueError(f"model wants ids (B, T) of dtype long, got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
                             f"{' ' + str(x.dtype) if isinstance(x, torch.Tensor) else ''}")
        if x.shape[1] > T_max:
            raise ValueError(f"model reads at most {T_max} ids per row, got {x.shape[1]}")
        return table[x] + pos[: x.shape[1]]  # (B, T, V)

    return model, table


def _ce(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction=reduction)


def _lm_loss_wrong(model: Callable, ids: torch.Tensor) -> dict[str, float]:
    """{hint: the loss a known mistake gives}."""
    B, T1 = ids.shape
    V = model(ids[:, :1]).shape[-1]
    logits = model(ids[:, :-1])  # (B, T, V)
    targets = ids[:, 1:]  # (B, T)
    full = model(ids)  # (B, T+1, V)
    wrong = {
        "the targets are the inputs themselves, ids[:, :-1]: the logits at position t score the token *after* "
        "t, so the targets are the inputs shifted by one, ids[:, 1:]": _ce(logits, ids[:, :-1]),
        "no shift: you ran the model on all T+1 ids and scored each position against its own input token. The "
        "logits at t score the token after t: inputs ids[:, :-1], targets ids[:, 1:]": _ce(full, ids),
        "the shift goes the wrong way: the inputs are ids[:, 1:] and the targets ids[:, :-1], so each position "
        "predicts the token *before* it. Inputs ids[:, :-1], targets ids[:, 1:]":
            _ce(model(ids[:, 1:]), ids[:, :-1]),
        "the last position has no target: torch.roll wrapped the first token round to be the target of the "
        "last one. Drop it: inputs ids[:, :-1], targets ids[:, 1:]": _ce(full, ids.roll(-1, dims=1)),
        "that is the sum of the per-token losses: take their mean (cross_entropy's default reduction)":
            _ce(logits, targets, "sum"),
        "that is the sum over each sequence, averaged over the batch: the loss is the mean over every "
        "predicted token, B × T of them": _ce(logits, targets, "sum") / B,
        "you applied a softmax before cross_entropy: cross_entropy takes the raw logits and applies "
        "log_softmax itself": _ce(torch.softmax(logits, dim=-1), targets),
        "you took minus the target's logit, without log_softmax (nll_loss wants log-probabilities): use "
        "cross_entropy on the logits, or nll_loss on log_softmax(logits)":
            -logits.gather(-1, targets[..., None]).mean(),
        "that is in bits: the loss is in nats, the natural log that cross_entropy uses; do not divide by ln 2":
            _ce(logits, targets) / math.log(2),
        "only the last position is scored: every position t predicts token t+1, and the loss is the mean over "
        "all of them": F.cross_entropy(logits[:, -1], targets[:, -1]),
        "the targets were flattened in another order than the logits (targets.T, or a transpose before the "
        "reshape): logits.reshape(-1, V) pairs with targets.reshape(-1), both row by row":
            F.cross_entropy(logits.reshape(-1, V), targets.T.reshape(-1)),
        "only the first sequence of the batch is scored: the mean runs over every row": _ce(logits[:1], targets[:1]),
    }
    if logits.shape[1] == V:
        wrong["the logits were not transposed: cross_entropy reads the classes from dim 1, so (B, T, V) was "
              "taken as T classes at each of V positions (it only ran because T = V here). Pass "
              "logits.transpose(1, 2), (B, V, T), or flatten to (B·T, V) and (B·T,)"] = F.cross_entropy(logits,
                                                                                                        targets)
    return {hint: float(value) for hint, value in wrong.items()}


@_reports_not_attempted
def check_causal_lm_loss(causal_lm_loss: Callable) -> None:
    """Exercise: ``causal_lm_loss(model, ids (B, T+1)) -> 0-d tensor``: the mean cross-entropy, in nats, of
    predicting ids[:, 1:] from the logits of model(ids[:, :-1]) (B, T, V), the targets shifted by one."""
    causal_lm_loss = _own_work(
        "causal_lm_loss", causal_lm_loss,
        _lib.lm.position_losses,
        _lib.lm.evaluate_bits_per_char,
        _lib.lm.train_lm,
    )
    hint = ("model(x) turns ids (B, T) into logits (B, T, V); cross_entropy wants the classes on dim 1: "
            "logits.transpose(1, 2) is (B, V, T) against targets (B, T), or flatten both, logits.reshape(-1, V) "
            "and targets.reshape(-1)")
    with _attempt("causal_lm_loss"):
        # T != V (a missing transpose crashes), then T = V (it runs), then a model whose loss can be trained
        for seed, (B, T, V), grad in ((91, (3, 5, 7), False), (92, (2, 6, 6), False), (93, (4, 8, 5), True)):
            model, table = _toy_model(V, T + 1, seed, requires_grad=grad)
            gen = torch.Generator().manual_seed(seed + 100)
            ids = torch.randint(0, V, (B, T + 1), generator=gen)  # (B, T+1)
            label = f"causal_lm_loss(model, ids) for ids (B, T+1) = {(B, T + 1)} and V = {V}"
            result = _call_with_hint(label, causal_lm_loss, (("model", model), ("ids", ids)), hint)
            if isinstance(result, torch.Tensor) and result.numel() != 1:
                shape = tuple(result.shape)
                why = (" (one loss per position: take the mean)" if shape in ((B, T), (B * T,)) else
                       " (the logits: apply cross_entropy)" if shape == (B, T, V) else "")
                raise AssertionError(f"{label} returned a tensor of shape {shape}{why}: return one number, the "
                                     f"mean over all B × T = {B * T} predictions")
            got = _number(label, result.detach() if isinstance(result, torch.Tensor) else result)
            with torch.no_grad():
                expected = float(_ce(model(ids[:, :-1]), ids[:, 1:]))
                wrong = _lm_loss_wrong(model, ids)
            if not math.isfinite(got):
                raise AssertionError(f"{label} is {got}: a log of 0 (a probability that underflowed)? "
                                     f"cross_entropy on the raw logits is stable")
            if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                for why, value in wrong.items():
                    if abs(value - expected) > 1e-6 and abs(got - value) <= 1e-6 * max(1.0, abs(value)):
                        raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {why}")
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: the mean cross-entropy of "
                    f"model(ids[:, :-1]) (B, T, V) against ids[:, 1:] (B, T)")
            if grad and not (isinstance(result, torch.Tensor) and result.requires_grad):
                raise AssertionError(
                    f"{label}: the value is right, but it is a {type(result).__name__} that carries no gradient, "
                    f"so loss.backward() cannot train the model (the model's weights require grad here). Return "
                    f"the tensor itself: .item(), float() or .detach() cut it from the graph")
    _say("causal_lm_loss: correct: inputs ids[:, :-1], targets ids[:, 1:], the mean cross-entropy over all "
         "B × T predictions, in nats.")


@_reports_not_attempted
def check_nats_to_bits_question(answer: Callable[[], object]) -> None:
    """Question: a validation loss of 1.5 nats per character, in bits per character."""
    _check_number(
        "nats_to_bits", answer, 1.5 / math.log(2),
        "A nat is a natural-log unit and a bit a base-2 one: log₂ x = ln x / ln 2, so 1.5 nats are 1.5 / ln 2 "
        "≈ 2.16 bits per character. (The per-character perplexity, e^1.5 = 2^2.16 ≈ 4.5, is the same number "
        "either way.)",
        rtol=0.005,
        wrong={
            "multiplying by ln 2": (1.5 * math.log(2), "A bit is a *smaller* unit than a nat (1 nat = 1/ln 2 ≈ "
                                                       "1.44 bits), so the number of bits is larger: divide "
                                                       "by ln 2."),
            "log₂ of the loss": (math.log2(1.5), "The loss is already a logarithm (an average of -ln p): change "
                                                 "its base by dividing by ln 2, do not take another log."),
            "the perplexity": (math.exp(1.5), "e^1.5 ≈ 4.48 is the perplexity, the number of equally likely "
                                              "characters that would cost as much: the question asks for the "
                                              "loss in bits."),
            "2 to the power of the loss": (2**1.5, "2^1.5 treats the loss as if it were already in bits and "
                                                   "exponentiates it: bits = nats / ln 2."),
            "dividing by ln 10": (1.5 / math.log(10), "Dividing by ln 10 gives decimal digits (bans), base 10: "
                                                      "bits are base 2, divide by ln 2."),
        },
    )


# ---------------------------------------------------------------- temperature


def _temperature_ref(logits: torch.Tensor, tau: float) -> torch.Tensor:
    if tau == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / tau, dim=-1)


@_reports_not_attempted
def check_temperature_probs(temperature_probs: Callable) -> None:
    """Exercise: ``temperature_probs(logits (..., V), temperature) -> (..., V)``: softmax(logits / τ), and at
    τ = 0 the greedy limit, probability 1 on the argmax of each row."""
    hint = ("logits are (..., V): divide by the temperature and take the softmax over the last axis, dim=-1; "
            "for temperature 0, F.one_hot(logits.argmax(dim=-1), V) is (..., V)")
    with _attempt("temperature_probs"):
        gen = torch.Generator().manual_seed(94)
        # (B, T, V) with B, T, V all different; a (V,) row; logits near 1000 where exp overflows
        cases = [
            (torch.randn(2, 3, 5, generator=gen, dtype=torch.float64) * 1.5, (0.5, 2.0, 1.0, 0.0)),
            (torch.tensor([2.0, -1.0, 0.5, 1.5, -0.3, 0.0], dtype=torch.float64), (0.7, 0.0, 3.0)),
            (torch.tensor([[1000.0, 998.5, 990.0], [-1000.0, -1003.0, -999.0]], dtype=torch.float64), (0.5,)),
            (torch.tensor([[3.0, 1.0, 2.9, -2.0]], dtype=torch.float64), (1e-3,)),
        ]
        for logits, taus in cases:
            for tau in taus:
                shape = tuple(logits.shape)
                label = f"temperature_probs(logits, temperature={tau:g}) for logits of shape {shape}"
                result = _call_with_hint(label, temperature_probs, (("logits", logits), ("temperature", tau)),
                                         hint)
                got = _as_array(label, result)
                if tau == 0 and got.shape == shape[:-1]:
                    raise AssertionError(
                        f"{label} has shape {got.shape}, the index of the argmax: return a distribution (..., V), "
                        f"probability 1 on the argmax and 0 elsewhere, F.one_hot(logits.argmax(dim=-1), V)")
                if got.shape == tuple(logits.shape) and not np.all(np.isfinite(got)):
                    bad = _fmt_index(tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0]))
                    why = ("logits / 0 is inf or NaN: temperature 0 is the limit, handle it first, "
                           "F.one_hot(logits.argmax(dim=-1), V)" if tau == 0 else
                           "exp of logits / τ near 1000 overflows: subtract each row's max first (torch.softmax "
                           "does), exp(z - max) <= 1")
                    raise AssertionError(f"{label} is inf or NaN at {bad}: {why}")
                expected = _temperature_ref(logits, tau)
                if tau == 0:
                    wrong = {
                        "at temperature 0 you returned softmax(logits): τ → 0 puts all the probability on the "
                        "argmax": torch.softmax(logits, dim=-1),
                        "at temperature 0 every token got the same probability: τ → 0 is the greedy limit, all "
                        "the probability on the most probable token": torch.full_like(logits, 1.0 / logits.shape[-1]),
                        "at temperature 0 the probability went to the *least* probable token: argmax, not argmin":
                            F.one_hot(logits.argmin(dim=-1), logits.shape[-1]).to(logits.dtype),
                    }
                else:
                    wrong = {
                        "you multiplied by the temperature: softmax(logits / τ) divides, so τ < 1 sharpens and "
                        "τ > 1 flattens": torch.softmax(logits * tau, dim=-1),
                        "the temperature is ignored: that is softmax(logits)": torch.softmax(logits, dim=-1),
                        "you divided the probabilities by τ, softmax(logits) / τ: divide the logits, then take the "
                        "softmax, so that the result still sums to 1": torch.softmax(logits, dim=-1) / tau,
                        "those are the scaled logits, logits / τ: return probabilities, their softmax over dim=-1":
                            logits / tau,
                        "those are log-probabilities (log_softmax): return probabilities, softmax(logits / τ, "
                        "dim=-1)": torch.log_softmax(logits / tau, dim=-1),
                    }
                    if logits.dim() > 1:
                        wrong["the softmax ran over the wrong axis (dim 0): each row of V logits is one "
                              "distribution, dim=-1"] = torch.softmax(logits / tau, dim=0)
                _reject_known(label, got, expected, wrong, atol=1e-8)
                _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5,
                         legend=" (..., V): one distribution over the V tokens per row")
    _say("temperature_probs: correct: softmax(logits / τ), and at τ = 0 all the probability on the argmax, the "
         "greedy choice.")


# ---------------------------------------------------------------- top-p


def _top_p_ref(logits: torch.Tensor, p: float) -> torch.Tensor:
    """The library's semantics, in float64: keep a token if the tokens ranked above it hold less than p."""
    if p >= 1:
        return logits.clone()
    probs = logits.double().softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass ranked above each token
    keep = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before < p)
    return logits.masked_fill(~keep, float("-inf"))


def _keep_to_logits(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~keep, float("-inf"))


def _top_p_wrong(logits: torch.Tensor, p: float) -> dict[str, torch.Tensor]:
    probs = logits.double().softmax(dim=-1)
    V = logits.shape[-1]
    sp, order = probs.sort(dim=-1, descending=True)
    cum = sp.cumsum(dim=-1)
    before = cum - sp

    def back(keep_sorted: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)

    asc, order_a = probs.sort(dim=-1)
    keep_asc = torch.zeros_like(asc, dtype=torch.bool).scatter(-1, order_a, (asc.cumsum(-1) - asc) < p)
    k = max(1, math.ceil(p * V))
    topk = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, probs.topk(k, dim=-1).indices, True)
    wrong = {
        "the token that crosses p was dropped (you kept cumsum < p or cumsum <= p, the tokens strictly inside "
        "p): keep the smallest set that *reaches* p, so a token stays if the tokens ranked above it hold less "
        "than p, cumsum - its own probability < p": _keep_to_logits(logits, back(cum < p)),
        "one token too many: with (cumsum - probs) <= p a token is kept when the tokens above it already hold "
        "exactly p. The set is the smallest that reaches p: (cumsum - probs) < p": _keep_to_logits(
            logits, back(before <= p)),
        "you sorted in ascending order, so the least probable tokens were kept: sort descending, "
        "sort(dim=-1, descending=True)": _keep_to_logits(logits, keep_asc),
        "the mask was not mapped back to the original order: keep_sorted[i] is about the i-th *most probable* "
        "token, which sits at order[i]; scatter it back, torch.zeros_like(keep).scatter(-1, order, keep)":
            _keep_to_logits(logits, before < p),
        "the result is in sorted order: return the logits in their original order, each token where it was, "
        "the excluded ones set to -inf": _keep_to_logits(logits.gather(-1, order), before < p),
        "those are the probabilities, not the logits: filter the logits (softmax is only for deciding which "
        "tokens stay), so that a later softmax or temperature applies to them": _keep_to_logits(
            probs.to(logits.dtype), back(before < p)),
        "those are the kept probabilities renormalised: return the logits with the excluded ones set to -inf":
            torch.softmax(_top_p_ref(logits, p), dim=-1),
        "the excluded logits are 0, not -inf: a logit of 0 still gets probability e^0 / Σ in the softmax. Set "
        "them to float('-inf')": logits.masked_fill(~back(before < p), 0.0),
        f"that is top-k with k = ceil(p × V) = {k}: p is a share of the probability, not of the vocabulary; keep "
        f"the most probable tokens until their probabilities add up to p": _keep_to_logits(logits, topk),
    }
    if logits.dim() > 1:
        p0 = logits.double().softmax(dim=0)
        s0, o0 = p0.sort(dim=-1, descending=True)
        wrong["the softmax ran over the wrong axis (dim 0): each row of V logits is one distribution, "
              "softmax(dim=-1)"] = _keep_to_logits(
            logits, torch.zeros_like(s0, dtype=torch.bool).scatter(-1, o0, (s0.cumsum(-1) - s0) < p))
        sd, od = probs.sort(dim=0, descending=True)
        wrong["the sort or the cumulative sum ran over dim 0, across the rows: both run over each row's V "
              "tokens, dim=-1"] = _keep_to_logits(logits, torch.zeros_like(sd, dtype=torch.bool).scatter(
                  0, od, (sd.cumsum(0) - sd) < p))
    return wrong


@_reports_not_attempted
def check_top_p_filter(top_p_filter: Callable) -> None:
    """Exercise: ``top_p_filter(logits (..., V), p) -> (..., V)``: the logits with every token outside the
    nucleus set to -inf; the nucleus is the smallest set of most probable tokens whose probabilities reach p
    (a token stays if the tokens ranked above it hold less than p), and p = 1 keeps every token."""
    top_p_filter = _own_work(
        "top_p_filter", top_p_filter,
        _lib.sampling.top_p_filter,
        _lib.sampling.top_k_filter,
        _lib.sampling.sample_next,
    )
    hint = ("logits are (..., V): softmax(dim=-1), sort(dim=-1, descending=True) gives (values, order), "
            "cumsum(dim=-1) runs along each row; scatter(-1, order, keep_sorted) puts the mask back in the "
            "original order, and masked_fill(~keep, float('-inf')) builds the result")
    with _attempt("top_p_filter"):
        gen = torch.Generator().manual_seed(95)
        # a row unsorted; a batch (B, V) whose rows keep 1, 3, 4 and 2 tokens; (B, T, V) as the
        # chapter's model gives; no prefix of any row sums to within 1e-3 of p, so rounding cannot decide
        row = torch.tensor([0.2, 2.0, -1.0, 1.2, 0.9, -3.0, 1.6], dtype=torch.float64)  # (V,)
        batch = torch.tensor([[0.5, 4.0, 0.0, -1.0, 0.3],
                              [1.0, 0.2, 1.1, -0.5, 0.8],
                              [0.0, 0.1, -0.1, 0.2, 0.05],
                              [-2.0, 3.0, 2.6, -1.0, 0.0]], dtype=torch.float64)  # (B, V) = (4, 5)
        cube = (torch.randn(2, 3, 6, generator=gen) * 1.5).float()  # (B, T, V) float32
        cases = [(row, 0.6), (row, 0.9), (batch, 0.7), (cube, 0.8), (cube, 0.35)]
        for logits, p in cases:
            shape = tuple(logits.shape)
            label = f"top_p_filter(logits, p={p}) for logits of shape {shape}"
            got = _as_array(label, _call_with_hint(label, top_p_filter, (("logits", logits.clone()), ("p", p)),
                                                   hint))
            expected = _top_p_ref(logits, p)
            _top_p_compare(label, got, logits, expected, _top_p_wrong(logits, p), p)

        # the edge cases: equal probabilities; one token holding more than p; p = 1 in float32 with a tail so
        # small that a float32 cumulative sum reaches 1.0 before it
        equal = torch.zeros(4, dtype=torch.float64)  # four tokens of 0.25
        label = "top_p_filter(logits, p=0.5) for four equal logits (0.25 each)"
        got = _as_array(label, _call_with_hint(label, top_p_filter, (("logits", equal), ("p", 0.5)), hint))
        if got.shape == (4,):
            kept = int(np.isfinite(got).sum())
            if kept != 2:
                raise AssertionError(
                    f"{label} kept {kept} tokens but should keep 2 (any 2 of the 4): two tokens already reach "
                    f"p = 0.5, and the set is the smallest that does. A token stays if the tokens ranked above it "
                    f"hold less than p: 0, 0.25 stay; 0.5 is not < 0.5")
        _compare(f"{label}, kept tokens", np.where(np.isfinite(got), got, 0.0), np.zeros(4), atol=1e-12,
                 legend=" (V,)")

        sure = torch.tensor([[6.0, 1.0, 0.0, -1.0]], dtype=torch.float64)  # the first holds 0.99
        label = "top_p_filter(logits, p=0.5) where the top token alone holds 0.99"
        got = _as_array(label, _call_with_hint(label, top_p_filter, (("logits", sure), ("p", 0.5)), hint))
        if got.shape == (1, 4) and not np.isfinite(got).any():
            raise AssertionError(
                f"{label}: every token was set to -inf, so nothing is left to sample. The top token alone "
                f"already holds more than p, and it must stay: keep a token if the tokens ranked *above* it hold "
                f"less than p (for the top token that is 0), not if its own cumulative sum is below p")
        _top_p_compare(label, got, sure, _top_p_ref(sure, 0.5), _top_p_wrong(sure, 0.5), 0.5)

        tail = torch.tensor([[5.0, 0.0, -20.0, -25.0], [8.0, -12.0, 0.0, -20.0]])  # float32
        label = "top_p_filter(logits, p=1.0) for float32 logits with a tiny tail"
        got = _as_array(label, _call_with_hint(label, top_p_filter, (("logits", tail), ("p", 1.0)), hint))
        if got.shape == (2, 4) and not np.isfinite(got).all():
            raise AssertionError(
                f"{label} dropped {int((~np.isfinite(got)).sum())} tokens: p = 1 keeps every token. In float32 the "
                f"cumulative sum of the sorted probabilities rounds to exactly 1.0 before the tail (the last "
                f"probabilities are below 1e-8), and 1.0 < 1 is False: return the logits unchanged when p = 1 (or "
                f"compute the probabilities in float64)")
        _compare(label, got, tail.double().numpy(), atol=0.0, legend=" (B, V): every logit, unchanged")
    _say("top_p_filter: correct: sorted by probability, a token stays while the tokens above it hold less than p; "
         "the top token always stays, p = 1 keeps them all.")


def _top_p_compare(label: str, got: np.ndarray, logits: torch.Tensor, expected: torch.Tensor, wrong: dict,
                   p: float) -> None:
    exp = expected.double().numpy()
    if got.shape == exp.shape:
        for why, value in wrong.items():
            value = value.double().numpy()
            if value.shape == got.shape and not np.array_equal(value, exp) and \
                    np.allclose(np.nan_to_num(got, neginf=-1e300), np.nan_to_num(value, neginf=-1e300),
                                atol=1e-6, rtol=1e-6):
                raise AssertionError(f"{label}: {why}")
        keep_exp, keep_got = np.isfinite(exp), np.isfinite(got)
        if np.isnan(got).any():
            raise AssertionError(f"{label} contains NaN: the kept logits are the input's, the others -inf")
        if (np.isposinf(got)).any():
            raise AssertionError(f"{label} contains +inf: the excluded logits are -inf, float('-inf')")
        huge = keep_got & ~keep_exp & (got < -1e6)
        if huge.any():
            idx = _fmt_index(tuple(int(i) for i in np.argwhere(huge)[0]))
            raise AssertionError(
                f"{label}: the excluded logit at {idx} is {got[tuple(np.argwhere(huge)[0])]:.3g}, a large finite "
                f"number: set excluded logits to float('-inf'), so that a softmax gives them exactly 0 and "
                f"torch.isfinite counts the kept tokens")
        if not np.array_equal(keep_exp, keep_got):
            idx = tuple(int(i) for i in np.argwhere(keep_exp != keep_got)[0])
            probs = logits.double().softmax(dim=-1).numpy()
            row = idx[:-1]
            ranked = sorted(probs[row], reverse=True)
            above = sum(q for q in ranked if q > probs[idx])
            state = "kept" if keep_got[idx] else "excluded"
            should = "excluded" if keep_got[idx] else "kept"
            raise AssertionError(
                f"{label}: the token at {_fmt_index(idx)} (probability {probs[idx]:.4f}; the tokens ranked above "
                f"it hold {above:.4f}) is {state} but should be {should}: a token stays if the tokens ranked "
                f"above it hold less than p = {p}")
        _compare(label, np.where(keep_got, got, 0.0), np.where(keep_exp, exp, 0.0), atol=1e-6, rtol=1e-6,
                 legend=" (..., V): the kept tokens keep their logits")
    else:
        _compare(label, got, exp, legend=" (..., V): the same shape as the logits")


# ---------------------------------------------------------------- previous-token heads


def _planted_weights(seed: int, N: int, H: int, B: int, T: int, plants: dict) -> list[torch.Tensor]:
    """N layers of causal attention weights (B, H, T, T) from random scores, with a bonus planted per head:
    plants[(layer, head)] = (offset, bonus, batch rows or None for all, query rows or None for all)."""
    gen = torch.Generator().manual_seed(seed)
    causal = masks.causal_mask(T)  # (T, T)
    out = []
    for layer in range(N):
        scores = torch.randn(B, H, T, T, generator=gen, dtype=torch.float64)  # (B, H, T, T)
        for (lay, head), (offset, bonus, rows, queries) in plants.items():
            if lay != layer:
                continue
            for t in (queries or range(T)):
                j = t + offset
                if 0 <= j <= t:
                    scores[rows if rows is not None else slice(None), head, t, j] += bonus
        out.append(torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1))
    return out


def _prev_scores(weights: list[torch.Tensor], *, offset: int = -1, divide_by_T: bool = False,
                 reduce: str = "mean", batch: slice = slice(None)) -> torch.Tensor:
    """(N, H): the previous-token score of every head (or a known mistake)."""
    rows = []
    for w in weights:
        d = w[batch].diagonal(offset=offset, dim1=-2, dim2=-1)  # (B, H, T - |offset|)
        T = w.shape[-1]
        if reduce == "mean":
            s = d.sum(-1) / T if divide_by_T else d.mean(-1)
        elif reduce == "max":
            s = d.amax(-1)
        else:
            s = d.sum(-1)
        rows.append(s.mean(0))  # (H,)
    return torch.stack(rows)  # (N, H)


def _best(scores: torch.Tensor) -> tuple[int, int, float]:
    N, H = scores.shape
    layer, head = divmod(int(scores.argmax()), H)
    return layer, head, float(scores[layer, head])


@_reports_not_attempted
def check_previous_token_head(previous_token_head: Callable) -> None:
    """Exercise: ``previous_token_head(weights) -> (layer, head, score)``: for a list of N_ℓ attention-weight
    tensors (B, H, T, T), the 0-based layer and head whose mean weight on the key just before the query
    (over the batch and the queries t = 1..T-1) is largest, and that mean."""
    previous_token_head = _own_work(
        "previous_token_head", previous_token_head,
        _lib.lm.previous_token_score,
    )
    hint = ("weights is a list of N_ℓ tensors (B, H, T, T); w.diagonal(offset=-1, dim1=-2, dim2=-1) is (B, H, "
            "T-1), the weights a_{t, t-1}; average it over the queries and the batch to get (H,) per layer, "
            "stack the layers to (N_ℓ, H), and divmod(flat argmax, H) gives (layer, head)")
    with _attempt("previous_token_head"):
        for seed, (N, H, B, T), plants in (
            (96, (3, 4, 2, 6), {(2, 1): (-1, 2.5, None, None),  # the previous-token head
                                (0, 3): (0, 4.0, None, None),  # a strong diagonal
                                (1, 2): (-1, 9.0, None, [3]),  # one query only, almost 1 there
                                (1, 0): (-1, 4.0, [0], None)}),  # the first sequence only
            (97, (2, 3, 3, 8), {(0, 2): (-1, 3.0, None, None), (1, 0): (0, 5.0, None, None),
                                (1, 1): (-1, 9.0, None, [6]), (0, 1): (-1, 5.0, [0], None)}),
        ):
            weights = _planted_weights(seed, N, H, B, T, plants)
            label = (f"previous_token_head(weights) for {N} layers of weights (B, H, T, T) = {(B, H, T, T)}")
            given = [w.clone() for w in weights]
            result = _call_with_hint(label, previous_token_head, (("weights", given),), hint)
            if len(given) != N or any(g.shape != w.shape or not torch.equal(g, w) for g, w in zip(given, weights)):
                raise AssertionError(
                    f"{label} modified the weights it was given in place (a slice assignment such as w[..., 0, :] "
                    f"= 0, a method ending in an underscore, or the list itself): never change an input; "
                    f"w.diagonal(offset=-1, dim1=-2, dim2=-1) reads the previous-token weights without touching "
                    f"the rest")
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                got = f"a tuple of {len(result)}" if isinstance(result, (tuple, list)) else type(result).__name__
                raise AssertionError(f"{label} must return (layer, head, score), got {got}")
            if isinstance(result[2], torch.Tensor) and result[2].numel() != 1:
                raise AssertionError(
                    f"{label}: the score is a tensor of shape {tuple(result[2].shape)}; return the chosen head's "
                    f"own score, one number, scores[layer, head]")
            layer = _number(f"layer, {label}", result[0])
            head = _number(f"head, {label}", result[1])
            score = _number(f"score, {label}", result[2])
            scores = _prev_scores(weights)
            exp_l, exp_h, exp_s = _best(scores)
            got = (layer, head, score)
            flat = int(scores.argmax())
            known = {
                "you scored the diagonal, a_{t,t}, each query's weight on itself: the previous token is one "
                "below it, diagonal(offset=-1)": _best(_prev_scores(weights, offset=0)),
                "you scored the key just *after* the query, diagonal(offset=1), which the causal mask keeps at 0: "
                "the previous token is diagonal(offset=-1)": _best(_prev_scores(weights, offset=1)),
                f"the score is divided by T = {T}, as if row 0 had a previous key: the queries t = 1..T-1 have "
                f"one, T-1 of them; diagonal(offset=-1).mean(-1) averages exactly those":
                    _best(_prev_scores(weights, divide_by_T=True)),
                "you took the largest weight over the queries, not the mean: a head that looks back at one "
                "position only is not a previous-token head; average over t = 1..T-1":
                    _best(_prev_scores(weights, reduce="max")),
                "you summed over the queries: the score is the mean weight, between 0 and 1":
                    _best(_prev_scores(weights, reduce="sum")),
                "you looked at the first sequence of the batch only: average over the batch too":
                    _best(_prev_scores(weights, batch=slice(0, 1))),
                "the layer and the head are swapped: return (layer, head), the layer first":
                    (exp_h, exp_l, exp_s),
                f"the flat index was split with divmod(i, N_ℓ = {N}): the table is (N_ℓ, H), so a flat index "
                f"i is layer i // H, head i % H": (*divmod(flat, N), exp_s),
                "those are 1-based: the layer and head are 0-based indices, as in weights[layer][:, head]":
                    (exp_l + 1, exp_h + 1, exp_s),
            }
            for why, value in known.items():
                if value[:2] != (exp_l, exp_h) or abs(value[2] - exp_s) > 1e-6:
                    if (layer, head) == value[:2] and abs(score - value[2]) <= 1e-6:
                        raise AssertionError(f"{label} is {_show(got)} but should be {_show((exp_l, exp_h, exp_s))}: "
                                             f"{why}")
            if (layer, head) != (exp_l, exp_h):
                raise AssertionError(
                    f"{label} is (layer, head) = {(int(layer), int(head))} but should be {(exp_l, exp_h)}: the "
                    f"previous-token scores (N_ℓ, H) are {np.round(scores.numpy(), 3).tolist()}")
            if abs(score - exp_s) > 1e-6:
                raise AssertionError(
                    f"{label}: the head is right but its score is {score:.6g}, not {exp_s:.6g}, the mean of "
                    f"a_{{t, t-1}} over t = 1..T-1 and over the batch")
    _say("previous_token_head: correct: the mean of each head's sub-diagonal, a_{t, t-1}, over the queries that "
         "have a previous key and over the batch, then the argmax of the (N_ℓ, H) table.")


def _show(t: tuple) -> str:
    return f"({int(t[0])}, {int(t[1])}, {t[2]:.4g})"


# ---------------------------------------------------------------- the experiment

EXPERIMENT = dict(d_model=32, num_heads=2, num_layers=2, d_ff=64, context=32, steps=200, batch_size=16,
                  lr=1e-2, warmup=20, windows=32)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one thread, as the chapter does: faster on a shared CPU, and the same sums in the learner's
    run and the reference's. The previous count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _shakespeare_split() -> tuple[object, torch.Tensor, torch.Tensor]:
    from attention_course.corpora import shakespeare

    text = shakespeare()
    vocab = _lib.lm.CharVocab.from_text(text)
    train, val = _lib.lm.split(vocab.encode(text), 0.9)
    return vocab, train, val


def _experiment_model(seed: int, *, steps: int | None = None) -> torch.nn.Module:
    e = EXPERIMENT
    vocab, train, _ = _shakespeare_split()
    with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
        torch.manual_seed(seed)
        model = _lib.lm.CharTransformerLM(len(vocab), e["d_model"], e["num_heads"], e["num_layers"], e["d_ff"],
                                          e["context"], positions="rotary")
        n = e["steps"] if steps is None else steps
        if n:
            _lib.lm.train_lm(model, train, n, batch_size=e["batch_size"], lr=e["lr"], warmup=e["warmup"],
                             seed=seed, progress=False)
    return model.eval()


@functools.lru_cache(maxsize=4)
def _experiment_reference(seed: int) -> dict[str, np.ndarray]:
    """{kind: (N_ℓ, H) table}: the experiment as asked ("right") and measured in known wrong ways."""
    e = EXPERIMENT
    _, train, val = _shakespeare_split()
    n, T = e["windows"], e["context"]
    model = _experiment_model(seed)
    with torch.no_grad():
        tables = {}
        for kind, data in (("right", val), ("train", train)):
            _, maps = model(data[: n * T].reshape(n, T))
            tables[kind] = torch.stack([_lib.lm.previous_token_score(w).mean(0) for w in maps])
        _, maps = model(val[: n * T].reshape(n, T))
        tables["diagonal"] = torch.stack([w.diagonal(0, -2, -1).mean(-1).mean(0) for w in maps])
        tables["transposed"] = tables["right"].T
        _, maps = _experiment_model(seed, steps=0)(val[: n * T].reshape(n, T))
        tables["untrained"] = torch.stack([_lib.lm.previous_token_score(w).mean(0) for w in maps])
    return {k: v.numpy().astype(np.float64) for k, v in tables.items()}


@_reports_not_attempted
def check_previous_token_experiment(previous_token_experiment: Callable) -> None:
    """Experiment: ``previous_token_experiment(seed) -> (N_ℓ, H)``: seed, build and train the chapter's model at
    a small size (``EXPERIMENT``), then the mean previous-token score of every head on 32 validation windows."""
    seed = 1
    label = f"previous_token_experiment(seed={seed})"
    hint = ("follow the exercise's recipe: torch.manual_seed(seed), lm.CharTransformerLM(...), lm.train_lm(..., "
            "seed=seed, progress=False), then model(windows) returns (logits, weights) and "
            "lm.previous_token_score(w).mean(0) is (H,) for each layer's w")
    with _attempt("previous_token_experiment"), _one_thread():
        got = _as_array(label, _call_with_hint(label, previous_token_experiment, (("seed", seed),), hint))
        ref = _experiment_reference(seed)
        expected = ref["right"]
        N, H = expected.shape
        if got.shape != expected.shape:
            why = {(H, N): ": (H, N_ℓ), one row per head; stack the layers, torch.stack([...]) gives (N_ℓ, H)",
                   (N,): ": one number per layer; keep one score per head, (N_ℓ, H)",
                   (N * H,): ": flattened; keep the (N_ℓ, H) table"}.get(got.shape, "")
            if got.ndim == 3 and got.shape[1:] == expected.shape or got.ndim == 3 and got.shape[0] == N:
                why = ": there is still a batch axis, average over the 32 windows too, .mean(0)"
            raise AssertionError(f"{label} has shape {got.shape} but should be (N_ℓ, H) = {(N, H)}{why}")
        close = lambda a: np.allclose(got, a, atol=2e-4, rtol=1e-3)  # noqa: E731
        if not close(expected):
            known = {
                "untrained": "those are the scores of the untrained model: train it first, lm.train_lm(model, "
                             "train, ...), then measure",
                "train": "you measured on training windows: the exercise measures on the first 32 validation "
                         "windows, val[:32 * 32].reshape(32, 32), text the model has not seen",
                "diagonal": "you measured each query's weight on itself (the diagonal): the previous token is "
                            "one below it, lm.previous_token_score",
                "transposed": "the table is transposed: one row per layer, one column per head",
            }
            for kind, why in known.items():
                if not np.allclose(ref[kind], expected, atol=2e-4) and close(ref[kind]):
                    raise AssertionError(f"{label}: {why}")
            if close(_experiment_reference(0)["right"]):
                raise AssertionError(f"{label} gave the scores of seed 0: use the argument, "
                                     f"torch.manual_seed(seed) and train_lm(..., seed=seed)")
            _compare(label, got, expected, atol=2e-4, rtol=1e-3,
                     legend=" (N_ℓ, H): the mean weight on the previous character, per layer and head")
        T = EXPERIMENT["context"]
        uniform = float(np.mean([1.0 / t for t in range(2, T + 1)]))
    _say(f"previous_token_experiment: correct. After {EXPERIMENT['steps']} steps the best head puts "
         f"{expected.max():.2f} of its weight on the previous character, {expected.max() / uniform:.0f} times "
         f"what uniform causal weights would ({uniform:.3f}); the untrained model's best head: "
         f"{ref['untrained'].max():.2f}.")


# ---------------------------------------------------------------- questions


@_reports_not_attempted
def check_greedy_cycle_question(answer: Callable[[], object]) -> None:
    """Question: why greedy decoding with a fixed context window must end in a cycle."""
    _check_choice(
        "greedy_cycle", answer, "c",
        "Greedy decoding makes the next character a fixed function of the last 64, and there are finitely many "
        "windows of 64 characters. A sequence of windows that never repeated would need infinitely many "
        "distinct ones, so some window comes back, and from there on the text repeats what followed its first "
        "appearance, forever. Finite does not mean short: the bound is astronomically large, but small models "
        "fall into a loop within a few hundred characters.",
        {
            "a": "A better-trained model may take longer to fall into a loop, but it cannot escape one: the argument "
                 "uses only that the next character is a fixed function of the last 64, which holds for any "
                 "weights, trained or not.",
            "b": "The period is the distance between two occurrences of the same 64-character window, and nothing "
                 "bounds it by 64: the model can write a loop of several hundred characters whose windows are all "
                 "different until it comes back.",
            "d": "The positions inside the window are the same at every step (the model always reads the last 64 "
                 "characters at positions 0..63), so they do not make two equal windows different: equal windows "
                 "give equal logits, and greedy picks the same character.",
        },
    )


@_reports_not_attempted
def check_masked_lm_question(answer: Callable[[], object]) -> None:
    """Question: why a masked language model puts its loss on the masked positions only."""
    _check_choice(
        "masked_lm_loss", answer, "b",
        "In a masked LM every position sees every other, itself included. At an unmasked position the answer is "
        "in the input, at that very position, so a loss there teaches copying. Only a position whose token was "
        "replaced by [MASK] asks for a prediction, from both sides; a causal LM hides the future with its mask "
        "instead, so every position can carry a loss.",
        {
            "a": "One pass costs the same whatever positions carry a loss: the model computes every position's "
                 "output anyway. The restriction is about what a loss at an unmasked position would teach.",
            "c": "The causal mask is what the decoder-only family uses; a masked LM has no causal mask at all, "
                 "every position sees every other, which is exactly why an unmasked position can see its own "
                 "token.",
            "d": "Tokens near the end of a sentence have plenty of context on the left, and a masked LM reads the "
                 "right as well. Nothing about position limits the loss; what matters is whether the token "
                 "itself is visible.",
        },
    )
