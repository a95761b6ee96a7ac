"""Chapters 4-7's checks against more wrong answers, correct variants, and the new questions and experiments.

Each catalogue below adds to the one of ``tests/test_checks.py`` (which it does not repeat): wrong answers of
the classes that catalogue missed (a scale or a k hard-coded for the sizes the check used to try, a mask sized
from ``lengths.max()``, an argument written into in place, the wrong baseline or temperature, ...), each of
which the check must reject with a hint that names the mistake; and correct variants, written differently from
the reference solution, which it must accept.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from attention_course import checks, masks
from attention_course.checks import ch04, ch05, ch06, ch07
from _helpers import (
    assert_accepted,
    assert_rejected_with_hint,
    assert_stub_not_attempted,
    rejection,
    right_params,
    wrong_params,
)
from test_checks import (
    adds_distinct_positions_ok,
    causal_mask_ok,
    decoder_mask_ok,
    gumbel_argmax_ok,
    is_permutation_equivariant_ok,
    merge_heads_ok,
    mha_parameter_count_ok,
    mhsa_ok,
    padding_mask_ok,
    reinforce_ok,
    rotate_pairs_ok,
    self_attention_ok,
    shift_matrix_ok,
    sinusoidal_encoding_ok,
    split_heads_ok,
    straight_through_ok,
    stub,
    topk_hard_ok,
)

F = torch.nn.functional

# --------------------------------------------------------------------------- chapter 4


def _topk(scores, values, k, *, kk=None, divide=None, out_weights=None):
    kk = k if kk is None else kk
    w = torch.zeros_like(scores).scatter(-1, scores.topk(kk, dim=-1).indices, 1.0)  # (L, S)
    divisor = kk if divide is None else divide(scores, k)
    return (w if out_weights is None else out_weights(scores)) @ values / divisor, w


def _topk_inplace(scores, values, k):
    top = scores.topk(k, dim=-1).indices
    weights = scores.zero_().scatter_(-1, top, 1.0)  # overwrites the caller's scores
    return weights @ values / k, weights


def _topk_long(scores, values, k):
    w = F.one_hot(scores.topk(k, dim=-1).indices, scores.shape[-1]).sum(dim=-2)  # int64
    return w @ values / k, w


def _topk_fraction(scores, values, k):
    w = torch.zeros_like(scores).scatter(-1, scores.topk(k, dim=-1).indices, 1.0 / k)  # weights 1/k
    return w @ values, w


TOPK_MORE = {
    "k hard-coded as 2": (lambda s, v, k: _topk(s, v, k, kk=2), "not a fixed number"),
    "k hard-coded as 1 (the argmax)": (lambda s, v, k: _topk(s, v, k, kk=1), "chose 1 key but k"),
    "divides by S": (lambda s, v, k: _topk(s, v, k, divide=lambda s, k: s.shape[-1]), "divided by S"),
    "softmax output, hard weights": (
        lambda s, v, k: _topk(s, v, k, out_weights=lambda s: torch.softmax(s, -1) * k), "soft-attention average"),
    "scatter_ into the scores": (_topk_inplace, "in place"),
    "weights 1/k instead of 1": (_topk_fraction, "exactly 0 or 1"),
    "int64 weights from one_hot": (_topk_long, "dtypes"),
    "k lowest scores": (lambda s, v, k: _topk(-s, v, k), "lowest"),
    "returns the output only": (lambda s, v, k: topk_hard_ok(s, v, k)[0], "must return a pair"),
}


def _topk_sorted_indices(scores, values, k):
    top = scores.argsort(dim=-1, descending=True)[:, :k]  # (L, k)
    return values[top].mean(dim=1), torch.zeros_like(scores).scatter(-1, top, 1.0)


def _topk_on_softmax(scores, values, k):
    return topk_hard_ok(torch.softmax(scores, dim=-1), values, k)  # the softmax keeps the order


TOPK_RIGHT = {"argsort and a gather": _topk_sorted_indices, "top-k of the softmax": _topk_on_softmax,
              "float64": lambda s, v, k: tuple(r.double() for r in topk_hard_ok(s, v, k))}


def _gumbel(logits, u, *, noise=lambda u: -torch.log(-torch.log(u)), pre=lambda z: z):
    return (pre(logits) + noise(u)).argmax(dim=-1)


GUMBEL_MORE = {
    "exponential noise -log u": (lambda z, u: _gumbel(z, u, noise=lambda u: -torch.log(u)), "frequencies"),
    "noise on the probabilities": (lambda z, u: _gumbel(z, u, pre=lambda z: torch.softmax(z, -1)), "frequencies"),
    "own randomness (multinomial)": (
        lambda z, u: torch.multinomial(torch.softmax(z, -1), 1, generator=torch.Generator().manual_seed(0))[:, 0],
        "exactly"),
    "argmax over the batch": (lambda z, u: (z - torch.log(-torch.log(u))).argmax(dim=0), "one index per row"),
    "int32 indices": (lambda z, u: gumbel_argmax_ok(z, u).int(), "torch.long"),
    "numpy indices": (lambda z, u: gumbel_argmax_ok(z, u).numpy(), "torch tensor"),
    "adds the noise in place": (lambda z, u: z.add_(-torch.log(-torch.log(u))).argmax(dim=-1), "in place"),
    "temperature 2 on the logits": (lambda z, u: _gumbel(z, u, pre=lambda z: 2 * z), "frequencies"),
    "forgets return": (lambda z, u: None, "return"),
}

GUMBEL_RIGHT = {
    "log_softmax first (shift-invariant)": lambda z, u: _gumbel(z, u, pre=lambda z: torch.log_softmax(z, -1)),
    "max over the last axis": lambda z, u: (z - torch.log(-torch.log(u))).max(dim=-1).indices,
}


def _rf(lp, p, r, b, *, advantage=lambda r, b: r - b, chosen=None):
    B = lp.shape[0]
    picked_lp = lp[torch.arange(B), p] if chosen is None else chosen(lp, p)
    return -(advantage(r, b).detach() * picked_lp).mean()


REINFORCE_MORE = {
    "adds the baseline": (lambda lp, p, r, b: _rf(lp, p, r, b, advantage=lambda r, b: r + b), "added the baseline"),
    "rewards.mean() as the baseline": (
        lambda lp, p, r, b: _rf(lp, p, r, b, advantage=lambda r, b: r - r.mean()), "rewards.mean()"),
    "gather without squeeze, (B, 1)": (
        lambda lp, p, r, b: _rf(lp, p, r, b, chosen=lambda lp, p: lp.gather(1, p[:, None])), "(B, 1)"),
    "every key's log-probability": (
        lambda lp, p, r, b: -((r - b).detach()[:, None] * lp).mean(), "every key"),
    "log of the log-probabilities": (
        lambda lp, p, r, b: _rf(lp, p, r, b, chosen=lambda lp, p: torch.log(lp[torch.arange(lp.shape[0]), p])),
        "already logarithms"),
    "detaches the log-probabilities": (
        lambda lp, p, r, b: _rf(lp.detach(), p, r, b), "no gradient reaches log_probs"),
    "not reduced, (B,)": (
        lambda lp, p, r, b: -((r - b).detach() * lp[torch.arange(lp.shape[0]), p]), "one number"),
    "baseline hard-coded 0.7": (lambda lp, p, r, b: reinforce_ok(lp, p, r, 0.7), "should be"),
    "batch size hard-coded 6": (
        lambda lp, p, r, b: -((r - b).detach() * lp[torch.arange(lp.shape[0]), p]).sum() / 6, "should be"),
}

REINFORCE_RIGHT = {
    "gather and squeeze": lambda lp, p, r, b: _rf(lp, p, r, b, chosen=lambda lp, p: lp.gather(1, p[:, None])[:, 0]),
    "with torch.no_grad advantage": lambda lp, p, r, b: -(
        (r.detach() - b) * lp[torch.arange(lp.shape[0]), p]).sum() / lp.shape[0],
}


def _st(logits, u, tau, *, y=lambda z, g, tau: (z + g) / tau, hard_from=None):
    g = -torch.log(-torch.log(u))
    yy = y(logits, g, tau)
    soft = torch.softmax(yy, dim=-1)
    idx = (yy if hard_from is None else hard_from(logits, g, tau)).argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(soft).scatter(-1, idx, 1.0)
    return hard - soft.detach() + soft


STRAIGHT_MORE = {
    "tau hard-coded 0.5": (lambda z, u, tau: straight_through_ok(z, u, 0.5), "the first case's"),
    "multiplies by tau": (lambda z, u, tau: _st(z, u, tau, y=lambda z, g, tau: (z + g) * tau), "* tau"),
    "one-hot without noise": (lambda z, u, tau: _st(z, u, tau, hard_from=lambda z, g, tau: z), "logits alone"),
    "no detach: hard - soft + soft": (
        lambda z, u, tau: (lambda s: torch.zeros_like(s).scatter(-1, s.argmax(-1, keepdim=True), 1.0) - s + s)(
            torch.softmax((z - torch.log(-torch.log(u))) / tau, -1)), "zero"),
    "everything detached": (lambda z, u, tau: straight_through_ok(z, u, tau).detach(), "no gradient reaches"),
    "uniform noise u": (lambda z, u, tau: _st(z, u, tau, y=lambda z, g, tau: (z + u) / tau), "should be"),
    "turns u into Gumbel noise in place": (lambda z, u, tau: _st_inplace(z, u, tau), "in place"),
    "returns numpy": (lambda z, u, tau: straight_through_ok(z, u, tau).detach().numpy(), "torch tensor"),
}


def _st_inplace(z, u, tau):
    u.log_().neg_().log_().neg_()  # turns the caller's u into Gumbel noise
    soft = torch.softmax((z + u) / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter(-1, soft.argmax(-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def _st_one_hot_of_soft(z, u, tau):
    soft = torch.softmax((z - torch.log(-torch.log(u))) / tau, -1)  # its argmax is the perturbed logits' argmax
    return F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype) - soft.detach() + soft


STRAIGHT_RIGHT = {"one_hot of the argmax of the soft sample": _st_one_hot_of_soft}


def reinforce_gradient_variance_ok(logits, rewards, baseline, n, seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.softmax(logits, dim=-1)  # (S,)
    picked = torch.multinomial(p, n, replacement=True, generator=gen)  # (n,)
    estimates = (rewards[picked] - baseline)[:, None] * (F.one_hot(picked, len(p)).to(p.dtype) - p)  # (n, S)
    return estimates.var(dim=0).sum().item()


def _rgv(logits, rewards, baseline, n, seed, *, est=None, reduce=lambda e: e.var(dim=0).sum(), gen=True):
    g = torch.Generator().manual_seed(seed) if gen else None
    p = torch.softmax(logits, dim=-1)
    j = torch.multinomial(p, n, replacement=True, generator=g)
    one_hot = F.one_hot(j, len(p)).to(p.dtype)
    e = (rewards[j] - baseline)[:, None] * (one_hot - p) if est is None else est(p, j, one_hot, rewards, baseline)
    return float(reduce(e))


REINFORCE_VARIANCE_WRONG = {
    "ignores the baseline": (lambda z, R, b, n, s: _rgv(z, R, 0.0, n, s), "variance without a baseline"),
    "second moment, not centred": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, reduce=lambda e: (e**2).sum(1).mean()),
                                   "without subtracting their mean"),
    "mean over the components": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, reduce=lambda e: e.var(dim=0).mean()),
                                 "their sum"),
    "standard deviation": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, reduce=lambda e: e.var(dim=0).sum().sqrt()),
                           "standard deviation"),
    "variance of the rewards": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, est=lambda p, j, o, R, b: R[j] - b,
                                                           reduce=lambda e: e.var()), "spread of the"),
    "gradient of p, not log p": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, est=lambda p, j, o, R, b: (
        (R[j] - b) * p[j])[:, None] * (o - p)), "not of its log"),
    "no reward weighting": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, est=lambda p, j, o, R, b: o - p),
                            "log p_j alone"),
    "ignores the seed": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, gen=False), "same seed"),
    "uniform picks": (lambda z, R, b, n, s: _rgv(z, R, b, n, s, est=lambda p, j, o, R, b: (
        R[torch.arange(n) % len(p)] - b)[:, None] * (F.one_hot(torch.arange(n) % len(p), len(p)) - p)),
        "exact total variance"),
    "forgets return": (lambda z, R, b, n, s: None, "return"),
}

# --------------------------------------------------------------------------- chapter 5


def _sa(X, Wq, Wk, Wv, *, scores=None, after=None, out=None):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    s = Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5 if scores is None else scores(Q, K, V)
    w = torch.softmax(s, dim=-1)
    w = w if after is None else after(w, Q)
    return (w @ V if out is None else out(w, Q, K, V)), w


def _sa_inplace(X, Wq, Wk, Wv):
    X -= X.mean(dim=-1, keepdim=True)  # "centre the tokens first": writes into the caller's X
    return self_attention_ok(X, Wq, Wk, Wv)


SELF_ATTENTION_MORE = {
    "scaled by sqrt(Ev)": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scores=lambda Q, K, V: Q @ K.transpose(
        -2, -1) / V.shape[-1] ** 0.5), "sqrt(Ev)"),
    "scale hard-coded sqrt(4)": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scores=lambda Q, K, V: Q @ K.transpose(
        -2, -1) / 2.0), "hard-coded, sqrt(4)"),
    "scale after the softmax": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scores=lambda Q, K, V: Q @ K.transpose(
        -2, -1), after=lambda w, Q: w / Q.shape[-1] ** 0.5), "after the softmax"),
    "K Qᵀ": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scores=lambda Q, K, V: K @ Q.transpose(
        -2, -1) / Q.shape[-1] ** 0.5), "K Qᵀ"),
    "keys from W_q": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wq, Wv), "keys come from W_q"),
    "weightsᵀ @ V": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, out=lambda w, Q, K, V: w.transpose(-2, -1) @ V),
                     "transposed weights"),
    "writes into X": (_sa_inplace, "in place"),
    "softmax over dim=-2": (lambda X, Wq, Wk, Wv: (lambda Q, K, V: (lambda w: (w @ V, w))(torch.softmax(
        Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, dim=-2)))(X @ Wq, X @ Wk, X @ Wv), "query axis"),
    "returns numpy weights of the wrong shape": (
        lambda X, Wq, Wk, Wv: (_sa(X, Wq, Wk, Wv)[0], _sa(X, Wq, Wk, Wv)[1].reshape(-1).numpy()), "shape"),
}


def _sa_manual_softmax(X, Wq, Wk, Wv):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    s = Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5
    e = torch.exp(s - s.amax(dim=-1, keepdim=True))
    w = e / (e.sum(dim=-1, keepdim=True) + 1e-9)  # a guarded normaliser
    return w @ V, w


SELF_ATTENTION_RIGHT = {
    "a hand-written stable softmax with + 1e-9": _sa_manual_softmax,
    "float64": lambda X, Wq, Wk, Wv: tuple(r for r in self_attention_ok(X.double(), Wq.double(), Wk.double(),
                                                                        Wv.double())),
    "einsum": lambda X, Wq, Wk, Wv: (lambda Q, K, V: (lambda w: (w @ V, w))(torch.softmax(torch.einsum(
        "bte,bse->bts", Q, K) / Q.shape[-1] ** 0.5, dim=-1)))(X @ Wq, X @ Wk, X @ Wv),
}

CAUSAL_MORE = {
    "int dtype": (lambda T: torch.ones(T, T, dtype=torch.int).tril(), "dtype torch.int32"),
    "T hard-coded 5": (lambda T: causal_mask_ok(5), "should have shape"),
    "numpy": (lambda T: np.tril(np.ones((T, T), dtype=bool)), "torch tensor"),
    "strict comparison j < i": (lambda T: torch.arange(T)[:, None] > torch.arange(T)[None, :], "diagonal is False"),
    "j >= i (the future)": (lambda T: torch.arange(T)[:, None] <= torch.arange(T)[None, :], "above the diagonal"),
    "list of lists": (lambda T: [[j <= i for j in range(T)] for i in range(T)], "torch tensor"),
    "blocked = True (triu(1))": (lambda T: torch.ones(T, T, dtype=torch.bool).triu(1), "inverted"),
    "float from the PyTorch helper": (lambda T: torch.nn.Transformer.generate_square_subsequent_mask(T),
                                      "dtype torch.float32"),
    "forgets return": (lambda T: None, "return"),
}

CAUSAL_RIGHT = {
    "tril of ones, then bool": lambda T: torch.tril(torch.ones(T, T)).bool(),
    "not the strict upper triangle": lambda T: ~torch.ones(T, T, dtype=torch.bool).triu(1),
    "from PyTorch's helper": lambda T: torch.nn.Transformer.generate_square_subsequent_mask(T) == 0,
}


def _pm_inplace(lengths, S):
    lengths.unsqueeze_(1)  # (B, 1), into the caller's tensor
    return torch.arange(S)[None, :] < lengths


PADDING_MORE = {
    "sized from lengths.max()": (lambda lengths, S: padding_mask_ok(lengths, int(lengths.max())), "lengths.max()"),
    "S hard-coded 6": (lambda lengths, S: padding_mask_ok(lengths, 6), "should have shape"),
    "long dtype": (lambda lengths, S: padding_mask_ok(lengths, S).long(), "dtype torch.int64"),
    "padding at the front (left-padded)": (
        lambda lengths, S: torch.arange(S)[None, :] >= (S - lengths)[:, None], "should be"),
    "clamps lengths in place": (_pm_inplace, "in place"),
    "lengths - 1": (lambda lengths, S: torch.arange(S)[None, :] < (lengths - 1)[:, None], "should be"),
    "numpy": (lambda lengths, S: padding_mask_ok(lengths, S).numpy(), "torch tensor"),
    "(S, B) from a row of lengths": (lambda lengths, S: torch.arange(S)[:, None] < lengths[None, :], "transpose"),
    ">= instead of <": (lambda lengths, S: torch.arange(S)[None, :] >= lengths[:, None], "inverted"),
}

PADDING_RIGHT = {
    "from 1 with <=": lambda lengths, S: torch.arange(1, S + 1)[None, :] <= lengths[:, None],
    "a loop": lambda lengths, S: torch.stack([torch.arange(S) < n for n in lengths]),
    "PyTorch's pad_sequence": lambda lengths, S: torch.nn.utils.rnn.pad_sequence(
        [torch.ones(int(n) or 1) * (1 if n else 0) for n in lengths] + [torch.zeros(S)], batch_first=True)[:-1] != 0,
}

DECODER_MORE = {
    "sized from lengths.max()": (
        lambda lengths, T: decoder_mask_ok(lengths, int(lengths.max())), "lengths.max()"),
    "inverted": (lambda lengths, T: ~decoder_mask_ok(lengths, T), "in the future of query"),
    "T hard-coded 5": (lambda lengths, T: decoder_mask_ok(lengths, 5), "should have shape"),
    "int dtype": (lambda lengths, T: decoder_mask_ok(lengths, T).int(), "dtype torch.int32"),
    "padding mask off by one (lengths - 1)": (
        lambda lengths, T: decoder_mask_ok(lengths - 1, T), "should be"),
    "causal mask without the diagonal": (
        lambda lengths, T: padding_mask_ok(lengths, T)[:, None, :] & torch.ones(T, T, dtype=torch.bool).tril(-1),
        "should be"),
    "the sum of the masks (an or)": (
        lambda lengths, T: padding_mask_ok(lengths, T)[:, None, :] + causal_mask_ok(T), "| (or)"),
    "padding on the queries only, expanded": (
        lambda lengths, T: padding_mask_ok(lengths, T)[:, :, None].expand(-1, T, T) & causal_mask_ok(T),
        "applied to the queries"),
    "forgets return": (lambda lengths, T: None, "return"),
}

DECODER_RIGHT = {
    "a product of bools": lambda lengths, T: padding_mask_ok(lengths, T)[:, None, :] * causal_mask_ok(T),
    "logical_and": lambda lengths, T: torch.logical_and(padding_mask_ok(lengths, T)[:, None, :], causal_mask_ok(T)),
}

EQUIVARIANCE_MORE = {
    "allclose with zero tolerance": (
        lambda fn, X, perm: torch.allclose(fn(X[:, perm]), fn(X)[:, perm], rtol=0, atol=0), "torch.allclose"),
    "permutes the features": (lambda fn, X, perm: torch.allclose(fn(X[..., perm]), fn(X)[..., perm]), "dim 1"),
    "compares the means only": (
        lambda fn, X, perm: torch.allclose(fn(X[:, perm]).mean(), fn(X)[:, perm].mean()), "returned True"),
    "always False": (lambda fn, X, perm: False, "returned False"),
    "returns a tensor of flags": (lambda fn, X, perm: torch.isclose(fn(X[:, perm]), fn(X)[:, perm]), "one bool"),
    "permutes the input twice": (
        lambda fn, X, perm: torch.allclose(fn(X[:, perm][:, perm]), fn(X)[:, perm]), "returned False"),
    "returns None": (lambda fn, X, perm: None, "return"),
    "a string": (lambda fn, X, perm: "True", "must return a bool"),
}

EQUIVARIANCE_RIGHT = {
    "max difference under 1e-5": lambda fn, X, perm: bool((fn(X[:, perm]) - fn(X)[:, perm]).abs().max() < 1e-5),
    "inverse on the other side": lambda fn, X, perm: torch.allclose(fn(X[:, perm])[:, perm.argsort()], fn(X)),
}


def _padding_leak(X, Wq, Wk, Wv, lengths, *, leak=None, drift_reduce=max, mask=False, scale=True):
    B, T, _ = X.shape
    real = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    s = Q @ K.transpose(-2, -1) / (Q.shape[-1] ** 0.5 if scale else 1.0)
    if mask:
        s = s.masked_fill(~real[:, None, :], float("-inf"))
    w = torch.softmax(s, dim=-1)
    out = w @ V
    on_pad = (w * ~real[:, None, :]).sum(-1)  # (B, T)
    value = on_pad[real].mean() if leak is None else leak(w, on_pad, real, lengths)
    gaps = []
    for n in range(B):
        x = X[n, : lengths[n]]
        q, k, v = x @ Wq, x @ Wk, x @ Wv
        o = torch.softmax(q @ k.T / (q.shape[-1] ** 0.5 if scale else 1.0), -1) @ v
        gaps.append((out[n, : lengths[n]] - o).abs())
    drift = max(float(g.max()) for g in gaps) if drift_reduce is max else float(torch.cat(
        [g.reshape(-1) for g in gaps]).mean())
    return float(value), drift


PADDING_LEAK_WRONG = {
    "with the mask": (lambda *a: _padding_leak(*a, mask=True), "with the padding mask"),
    "every query": (lambda *a: _padding_leak(*a, leak=lambda w, on, real, L: on.mean()), "padding queries too"),
    "summed over the real queries": (lambda *a: _padding_leak(*a, leak=lambda w, on, real, L: on[real].sum()),
                                     "take the mean"),
    "mean per sequence, then over sequences": (lambda *a: _padding_leak(*a, leak=lambda w, on, real, L: torch.stack(
        [on[n, : L[n]].mean() for n in range(len(L))]).mean()), "within each sequence"),
    "weight on padding queries (rows)": (lambda *a: _padding_leak(*a, leak=lambda w, on, real, L: (
        w * ~real[:, :, None]).sum(-1)[real].mean()), "the padding keys"),
    "weight on real keys": (lambda *a: _padding_leak(*a, leak=lambda w, on, real, L: 1 - on[real].mean()),
                            "1 - leak"),
    "mean drift": (lambda *a: _padding_leak(*a, drift_reduce="mean"), "a mean"),
    "no scale": (lambda *a: _padding_leak(*a, scale=False), "should be"),
    "real tokens from lengths.max()": (
        lambda X, *a: _padding_leak(X[:, : int(a[-1].max())], *a), "should be"),
    "returns one number": (lambda *a: _padding_leak(*a)[0], "(leak, drift)"),
}

# --------------------------------------------------------------------------- chapter 6

SPLIT_HEADS_MORE = {
    "transpose(0, 1)": (lambda x, H: x.view(*x.shape[:2], H, x.shape[2] // H).transpose(0, 1), "should have shape"),
    "chunks along time": (lambda x, H: torch.stack(x.chunk(H, dim=-1), dim=2), "behind the time axis"),
    "H hard-coded 3": (lambda x, H: split_heads_ok(x, 3), "view(B, T, H, D // H)"),
    "view to (B, H, T, D/H)": (lambda x, H: x.view(x.shape[0], H, x.shape[1], -1), "straight to (B, H, T, D/H)"),
    "list of heads": (lambda x, H: list(split_heads_ok(x, H).unbind(1)), "in front of the batch axis"),
    "head size hard-coded 4": (lambda x, H: x.reshape(x.shape[0], x.shape[1], -1, 4).transpose(1, 2),
                               "not a fixed number"),
    "strided, head axis behind": (lambda x, H: x.view(*x.shape[:2], x.shape[2] // H, H).transpose(2, 3),
                                  "holds x"),
    "forgets return": (lambda x, H: None, "return"),
}

SPLIT_HEADS_RIGHT = {
    "stack of chunks": lambda x, H: torch.stack(x.chunk(H, dim=-1), dim=1),
    "unflatten and permute": lambda x, H: x.unflatten(-1, (H, -1)).permute(0, 2, 1, 3),
}

MERGE_HEADS_MORE = {
    "transpose(2, 3) then reshape": (lambda x: x.transpose(2, 3).reshape(x.shape[0], x.shape[2], -1), "holds x"),
    "cat along time": (lambda x: torch.cat(x.unbind(1), dim=-2), "along the time axis"),
    "heads averaged": (lambda x: x.mean(1), "averaged"),
    "stack instead of cat": (lambda x: torch.stack(x.unbind(1), dim=2), "not concatenated"),
    "transpose(1, 3)": (lambda x: x.transpose(1, 3).reshape(x.shape[0], x.shape[2], -1), "holds x"),
    "flatten(1, 2)": (lambda x: x.flatten(1, 2), "along the time axis"),
    "numpy": (lambda x: merge_heads_ok(x).numpy()[..., ::-1], "holds x"),
    "forgets return": (lambda x: None, "return"),
}

MERGE_HEADS_RIGHT = {
    "cat of the heads along features": lambda x: torch.cat(x.unbind(1), dim=-1),
    "permute and flatten": lambda x: x.permute(0, 2, 1, 3).flatten(2),
    "contiguous view": lambda x: x.transpose(1, 2).contiguous().view(x.shape[0], x.shape[2], -1),
}


def _mh(X, Wq, Wk, Wv, Wo, H, *, scale=None, proj=lambda X, W: X @ W):
    Q, K, V = (split_heads_ok(proj(X, W), H) for W in (Wq, Wk, Wv))
    s = Q @ K.transpose(-2, -1) / (Q.shape[-1] ** 0.5 if scale is None else scale)
    w = torch.softmax(s, dim=-1)
    return merge_heads_ok(w @ V) @ Wo, w


def _mh_inplace(X, Wq, Wk, Wv, Wo, H):
    X -= X.mean(dim=-1, keepdim=True)  # "centre the tokens first": writes into the caller's X
    return mhsa_ok(X, Wq, Wk, Wv, Wo, H)


MHSA_MORE = {
    "scale hard-coded 2": (lambda *a: _mh(*a, scale=2.0), "hard-coded"),
    "scale sqrt(H)": (lambda X, Wq, Wk, Wv, Wo, H: _mh(X, Wq, Wk, Wv, Wo, H, scale=H**0.5), "should be"),
    "projections transposed": (lambda *a: _mh(*a, proj=lambda X, W: X @ W.T), "used transposed"),
    "writes into X": (_mh_inplace, "in place"),
    "H hard-coded 2": (lambda X, Wq, Wk, Wv, Wo, H: mhsa_ok(X, Wq, Wk, Wv, Wo, 2), "should"),
    "no W_o, weights ok": (lambda X, Wq, Wk, Wv, Wo, H: (mhsa_ok(X, Wq, Wk, Wv, torch.eye(X.shape[-1]), H)),
                           "no output projection"),
    "W_o applied twice": (lambda X, Wq, Wk, Wv, Wo, H: mhsa_ok(X, Wq, Wk, Wv, Wo @ Wo, H), "should be"),
    "weights of head 0 only": (lambda *a: (mhsa_ok(*a)[0], mhsa_ok(*a)[1][:, 0]), "should have shape"),
}

MHSA_RIGHT = {
    "per-head W_o blocks summed": lambda X, Wq, Wk, Wv, Wo, H: (lambda heads, w: (sum(
        heads[:, h] @ Wo[h * heads.shape[-1]:(h + 1) * heads.shape[-1]] for h in range(H)), w))(
        *(lambda Q, K, V: (lambda w: (w @ V, w))(torch.softmax(Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, -1)))(
            *(split_heads_ok(X @ W, H) for W in (Wq, Wk, Wv)))),
    "float64": lambda X, Wq, Wk, Wv, Wo, H: mhsa_ok(X.double(), Wq.double(), Wk.double(), Wv.double(), Wo.double(), H),
}

PARAM_COUNT_MORE = {
    "biases per head in q, k, v": (lambda D, H, bias: 4 * D * D + (3 * D * H + D if bias else 0), "every head its own"),
    "biases per head everywhere": (lambda D, H, bias: 4 * D * D + (4 * D * H if bias else 0), "every head its own"),
    "bias always on": (lambda D, H, bias: 4 * D * D + 4 * D, "bias=False"),
    "bias=True read as 1 bias": (lambda D, H, bias: 4 * D * D + int(bias), "should be"),
    "4·D·(D/H) (one head's projections)": (lambda D, H, bias: 4 * D * (D // H) + (4 * D if bias else 0), "should be"),
    "a list": (lambda D, H, bias: [mha_parameter_count_ok(D, H, bias)], "one number"),
    "2·D² (only W_q and W_k)": (lambda D, H, bias: 2 * D * D + (2 * D if bias else 0), "should be"),
    "counts H": (lambda D, H, bias: mha_parameter_count_ok(D, H, bias) + H, "should be"),
}

PARAM_COUNT_RIGHT = {"float": lambda D, H, bias: float(4 * D * D + 4 * D * bias),
                     "numpy int": lambda D, H, bias: np.int64(4 * (D * D + D * bias))}


def head_ablation_ok(X, W_q, W_k, W_v, W_o, num_heads):
    H = num_heads
    Q, K, V = (split_heads_ok(X @ W, H) for W in (W_q, W_k, W_v))
    heads = torch.softmax(Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, dim=-1) @ V  # (B, H, T, D/H)
    out = merge_heads_ok(heads) @ W_o
    changes = []
    for h in range(H):
        keep = torch.ones(1, H, 1, 1)
        keep[0, h] = 0.0
        changes.append((out - merge_heads_ok(heads * keep) @ W_o).norm() / out.norm())
    return torch.stack(changes)


def _ablate(X, W_q, W_k, W_v, W_o, H, *, how="heads", measure=lambda out, abl: (out - abl).norm() / out.norm()):
    Q, K, V = (split_heads_ok(X @ W, H) for W in (W_q, W_k, W_v))
    heads = torch.softmax(Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, dim=-1) @ V
    out = merge_heads_ok(heads) @ W_o
    if how == "out":
        return out
    Dh = X.shape[-1] // H
    res = []
    for h in range(H):
        if how == "heads":
            keep = torch.ones(1, H, 1, 1)
            keep[0, h] = 0.0
            abl = merge_heads_ok(heads * keep) @ W_o
        elif how == "after W_o":
            abl = out.clone()
            abl[..., h * Dh:(h + 1) * Dh] = 0
        elif how == "queries":
            Wq0 = W_q.clone()
            Wq0[:, h * Dh:(h + 1) * Dh] = 0
            abl = _ablate(X, Wq0, W_k, W_v, W_o, H, how="out")
        elif how == "only h":
            keep = torch.zeros(1, H, 1, 1)
            keep[0, h] = 1.0
            abl = out - merge_heads_ok(heads * keep) @ W_o  # out minus head h's contribution: the same
        elif how == "values":
            Wv0 = W_v.clone()
            Wv0[:, h * Dh:(h + 1) * Dh] = 0  # zero values: the head outputs 0, the same as silencing it
            abl = _ablate(X, W_q, W_k, Wv0, W_o, H, how="out")
        res.append(measure(out, abl))
    return torch.stack(res)


HEAD_ABLATION_WRONG = {
    "zeroes output features after W_o": (lambda *a: _ablate(*a, how="after W_o"), "after W_o"),
    "zeroes the head's queries": (lambda *a: _ablate(*a, how="queries"), "queries"),
    "absolute change": (lambda *a: _ablate(*a, measure=lambda o, a: (o - a).norm()), "absolute change"),
    "divides by the ablated norm": (lambda *a: _ablate(*a, measure=lambda o, a: (o - a).norm() / a.norm()),
                                    "ablated output"),
    "mean absolute difference": (lambda *a: _ablate(*a, measure=lambda o, a: (o - a).abs().mean()),
                                 "averaged the absolute"),
    "1 - change": (lambda *a: 1 - _ablate(*a), "should be"),
    "squared change": (lambda *a: _ablate(*a) ** 2, "should be"),
    "a list of floats per batch element": (lambda *a: torch.stack([_ablate(*a)] * 2), "shape (H,)"),
    "centres X in place": (
        lambda X, *a: (X.sub_(X.mean(dim=-1, keepdim=True)), _ablate(X, *a))[1], "in place"),
    "forgets return": (lambda *a: None, "return"),
}

HEAD_ABLATION_RIGHT = {
    "keeps only head h (the same, by linearity)": lambda *a: _ablate(*a, how="only h"),
    "zeroes the head's values (its output is then 0)": lambda *a: _ablate(*a, how="values"),
}

# --------------------------------------------------------------------------- chapter 7


def _pe(P, D, *, dtype=torch.float64, omega=None, first=0):
    p = torch.arange(first, first + P, dtype=dtype)[:, None]
    om = 10000.0 ** (-torch.arange(0, D, 2, dtype=dtype) / D) if omega is None else omega(D)
    pe = torch.zeros(P, D, dtype=dtype)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(p * om), torch.cos(p * om)
    return pe


SINUSOIDAL_MORE = {
    "base 10000 over D - 1": (lambda P, D: _pe(P, D, omega=lambda D: 10000.0 ** (-torch.arange(
        0, D, 2, dtype=torch.float64) / (D - 1))), "should be"),
    "exponent over D/2 (frequency per pair index i/D... twice)": (
        lambda P, D: _pe(P, D, omega=lambda D: 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / (D / 2))),
        "should be"),
    "positions from 1": (lambda P, D: _pe(P, D, first=1), "start at 1"),
    "int table": (lambda P, D: _pe(P, D).long(), "should be"),
    "P and D swapped": (lambda P, D: _pe(D, P) if D % 2 == 0 and P % 2 == 0 else _pe(P, D).T, "transposed"),
    "cos, sin layout in halves": (lambda P, D: torch.cat([_pe(P, D)[:, 1::2], _pe(P, D)[:, 0::2]], -1), "should be"),
    "numpy with one extra row": (lambda P, D: _pe(P + 1, D).numpy(), "should have shape"),
    "forgets return": (lambda P, D: None, "return"),
}

SINUSOIDAL_RIGHT = {
    "float32 angles": lambda P, D: _pe(P, D, dtype=torch.float32),
    "exp-log form": lambda P, D: _pe(P, D, omega=lambda D: torch.exp(
        -torch.arange(0, D, 2, dtype=torch.float64) * np.log(10000.0) / D)),
}


def _rp(x, *, T_from=lambda x: x.shape[-2], sign=1.0, pair="adjacent"):
    T, E = T_from(x), x.shape[-1]
    angles = sign * torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


ROTATE_MORE = {
    "T from dim 0": (lambda x: _rp(x, T_from=lambda x: x.shape[0]), "not x.shape[1]"),
    "normalises x in place": (lambda x: rotate_pairs_ok(x.div_(x.norm(dim=-1, keepdim=True))), "in place"),
    "clockwise": (lambda x: _rp(x, sign=-1.0), "other way"),
    "even and odd outputs swapped": (lambda x: _rp(x)[..., torch.arange(x.shape[-1]) ^ 1], "should be"),
    "rotates the positions' order": (lambda x: rotate_pairs_ok(x.flip(-2)).flip(-2), "should be"),
    "only the first token": (lambda x: torch.cat([rotate_pairs_ok(x)[..., :1, :], x[..., 1:, :]], -2),
                             "should be"),
    "numpy half size": (lambda x: rotate_pairs_ok(x)[..., ::2].numpy(), "should have shape"),
    "forgets return": (lambda x: None, "return"),
}

ROTATE_RIGHT = {
    "exponent over E/2 with the pair index": lambda x: (lambda T, E: (lambda a: torch.stack(
        [x[..., 0::2] * a.cos() - x[..., 1::2] * a.sin(), x[..., 0::2] * a.sin() + x[..., 1::2] * a.cos()],
        -1).flatten(-2))(torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(E // 2) / (E / 2))))(*x.shape[-2:]),
    "complex numbers": lambda x: (lambda T, E: torch.view_as_real(torch.view_as_complex(
        x.reshape(*x.shape[:-1], E // 2, 2).contiguous()) * torch.polar(torch.ones(T, E // 2), (
            torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)).float())).flatten(-2))(*x.shape[-2:]),
}

ADDS_DISTINCT_MORE = {
    "checks only the first sequence's positions": (
        lambda add_pe, B, T, D: (lambda a: all(not torch.allclose(a[0, t], a[0, u]) for t in range(T)
                                               for u in range(t + 1, T)))(add_pe(torch.zeros(B, T, D))),
        "only checked that the positions"),
    "always False": (lambda add_pe, B, T, D: False, "should return True"),
    "returns None": (lambda add_pe, B, T, D: None, "return"),
    "only when B > 1": (lambda add_pe, B, T, D: adds_distinct_positions_ok(add_pe, B, T, D) and B > 1,
                        "should return True"),
    "compares sums": (lambda add_pe, B, T, D: (lambda a: len(set(a[0].sum(-1).round(decimals=4).tolist())) == T)(
        add_pe(torch.zeros(B, T, D)).detach()), "only checked that the positions"),
    "ignores the batch": (lambda add_pe, B, T, D: adds_distinct_positions_ok(add_pe, 1, T, D),
                          "feed it torch.zeros(B, T, D)"),
    "a tensor": (lambda add_pe, B, T, D: torch.tensor(adds_distinct_positions_ok(add_pe, B, T, D)).repeat(2),
                 "one bool"),
    "a string": (lambda add_pe, B, T, D: str(adds_distinct_positions_ok(add_pe, B, T, D)), "must return a bool"),
}

SHIFT_MORE = {
    "|k| for negative k": (lambda k, D: shift_matrix_ok(abs(k), D), "negative k"),
    "sin on the diagonal": (lambda k, D: ch07._sin_on_diagonal(D, k * 10000.0 ** (
        -torch.arange(0, D, 2, dtype=torch.float64) / D)), "addition formulas"),
    "k = 1 always": (lambda k, D: shift_matrix_ok(1, D), "not ω_i"),
    "-k": (lambda k, D: shift_matrix_ok(-k, D), "M_{-k}"),
    "2·k": (lambda k, D: shift_matrix_ok(2 * k, D), "should be"),
    "D hard-coded 8": (lambda k, D: shift_matrix_ok(k, 8), "should have shape"),
    "blocks (D/2, 2, 2)": (lambda k, D: torch.stack([shift_matrix_ok(k, D)[2 * i:2 * i + 2, 2 * i:2 * i + 2]
                                                     for i in range(D // 2)]), "should have shape"),
    "forgets return": (lambda k, D: None, "return"),
}

SHIFT_RIGHT = {"float32": lambda k, D: shift_matrix_ok(k, D).float(),
               "block_diag": lambda k, D: torch.block_diag(*[torch.tensor(
                   [[np.cos(k * w), np.sin(k * w)], [-np.sin(k * w), np.cos(k * w)]]) for w in (
                   10000.0 ** (-np.arange(0, D, 2) / D))])}


def recent_mass_ok(q, k, slope, window):
    T, E = q.shape
    offset = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # (T, T): i - j
    scores = (q @ k.T / E**0.5 - slope * offset).masked_fill(offset < 0, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights * ((offset >= 0) & (offset < window))).sum(dim=-1).mean().item()


def _rm(q, k, slope, window, **kw):
    return ch07._alibi_mass(q, k, slope, window, **kw)


RECENT_MASS_WRONG = {
    "penalty added": (lambda q, k, m, w: _rm(q, k, m, w, sign=-1.0), "wrong sign"),
    "no causal mask": (lambda q, k, m, w: _rm(q, k, m, w, causal=False), "rewards* the future"),
    "no causal mask, |i - j|": (lambda q, k, m, w: _rm(q, k, m, w, causal=False, absolute=True), "still read"),
    "penalty after the softmax": (lambda q, k, m, w: _rm(q, k, m, w, after=True), "after the softmax"),
    "no 1/sqrt(E)": (lambda q, k, m, w: _rm(q, k, m, w, scale=False), "not divided by √E"),
    "window inclusive": (lambda q, k, m, w: _rm(q, k, m, w, inclusive=True), "off by one"),
    "sum over the queries": (lambda q, k, m, w: _rm(q, k, m, w, reduce="sum"), "summed over the queries"),
    "softmax over the queries": (lambda q, k, m, w: float((torch.softmax(
        (q @ k.T / q.shape[-1] ** 0.5 - m * (torch.arange(len(q))[:, None] - torch.arange(len(q))[None, :])
         ).masked_fill(torch.arange(len(q))[:, None] < torch.arange(len(q))[None, :], float("-inf")), dim=0)
        .nan_to_num() * ((lambda o: (o >= 0) & (o < w))(torch.arange(len(q))[:, None] - torch.arange(len(q))[
            None, :]))).sum(-1).mean()), "should be"),
    "slope hard-coded 0.5": (lambda q, k, m, w: recent_mass_ok(q, k, 0.5, w), "should be"),
    "forgets return": (lambda q, k, m, w: None, "return"),
}

RECENT_MASS_RIGHT = {"|i - j| under the causal mask": lambda q, k, m, w: _rm(q, k, m, w, absolute=True),
                     "float64": lambda q, k, m, w: recent_mass_ok(q.double(), k.double(), m, w)}

# --------------------------------------------------------------------------- the catalogues, run

CASES = [
    (checks.check_topk_hard_attention, topk_hard_ok, TOPK_MORE, TOPK_RIGHT),
    (checks.check_gumbel_argmax, gumbel_argmax_ok, GUMBEL_MORE, GUMBEL_RIGHT),
    (checks.check_reinforce_surrogate, reinforce_ok, REINFORCE_MORE, REINFORCE_RIGHT),
    (checks.check_straight_through_gumbel, straight_through_ok, STRAIGHT_MORE, STRAIGHT_RIGHT),
    (ch04.check_reinforce_variance, reinforce_gradient_variance_ok, REINFORCE_VARIANCE_WRONG, {}),
    (checks.check_self_attention, self_attention_ok, SELF_ATTENTION_MORE, SELF_ATTENTION_RIGHT),
    (checks.check_causal_mask, causal_mask_ok, CAUSAL_MORE, CAUSAL_RIGHT),
    (checks.check_padding_mask, padding_mask_ok, PADDING_MORE, PADDING_RIGHT),
    (checks.check_decoder_mask, decoder_mask_ok, DECODER_MORE, DECODER_RIGHT),
    (checks.check_is_permutation_equivariant, is_permutation_equivariant_ok, EQUIVARIANCE_MORE, EQUIVARIANCE_RIGHT),
    (ch05.check_padding_leak, lambda *a: _padding_leak(*a), PADDING_LEAK_WRONG, {}),
    (checks.check_split_heads, split_heads_ok, SPLIT_HEADS_MORE, SPLIT_HEADS_RIGHT),
    (checks.check_merge_heads, merge_heads_ok, MERGE_HEADS_MORE, MERGE_HEADS_RIGHT),
    (checks.check_multihead_self_attention, mhsa_ok, MHSA_MORE, MHSA_RIGHT),
    (checks.check_mha_parameter_count, mha_parameter_count_ok, PARAM_COUNT_MORE, PARAM_COUNT_RIGHT),
    (ch06.check_head_ablation, head_ablation_ok, HEAD_ABLATION_WRONG, HEAD_ABLATION_RIGHT),
    (checks.check_sinusoidal_encoding, sinusoidal_encoding_ok, SINUSOIDAL_MORE, SINUSOIDAL_RIGHT),
    (checks.check_rotate_pairs, rotate_pairs_ok, ROTATE_MORE, ROTATE_RIGHT),
    (checks.check_adds_distinct_positions, adds_distinct_positions_ok, ADDS_DISTINCT_MORE, {}),
    (checks.check_shift_matrix, shift_matrix_ok, SHIFT_MORE, SHIFT_RIGHT),
    (ch07.check_alibi_recent_mass, recent_mass_ok, RECENT_MASS_WRONG, RECENT_MASS_RIGHT),
]

# the questions: (check, right letter or number, {wrong answer: hint substring})
QUESTIONS = [
    (ch04.check_reward_shift_question, "b", {"a": "spread more", "c": "does not grow", "d": "unchanged"}),
    (ch05.check_shared_projection_question, "b", {"a": "own sum", "c": "a mask does that", "d": "untouched"}),
    (ch06.check_score_cost_question, 1000 * 1000 * 512, {
        8 * 1000 * 1000 * 512: "H heads of full width", 1000 * 1000 * 512 / 8: "one head's share",
        1000 * 512 * 512: "the projections", 8 * 1000 * 1000: "counted the dot products",
        1000 * 512: "T·D per head", 12345: "not it"}),
    (ch07.check_pe_dot_question, "b", {"a": "position p cancels", "c": "not orthogonal", "d": "dips and rises"}),
]

NEW_CHECKS = [c for c, *_ in CASES if c.__module__.endswith(("ch04", "ch05", "ch06", "ch07"))
              and c.__name__ in ("check_reinforce_variance", "check_padding_leak", "check_head_ablation",
                                 "check_alibi_recent_mass")] + [q for q, *_ in QUESTIONS]

WRONG = wrong_params((check, catalogue) for check, _, catalogue, _ in CASES)
RIGHT = right_params((check, variants) for check, _, _, variants in CASES)


@pytest.mark.parametrize("check, wrong, hint", WRONG)
def test_wrong_answer_rejected_with_a_hint(check, wrong, hint, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_rejected_with_hint(check, wrong, hint, capsys)


@pytest.mark.parametrize("check, variant", RIGHT)
def test_a_correct_variant_is_accepted(check, variant, capsys):
    assert_accepted(check, variant, capsys)


@pytest.mark.parametrize("check, solution", [(c, s) for c, s, _, _ in CASES], ids=lambda f: getattr(f, "__name__", ""))
def test_solution_passes(check, solution, capsys):
    assert_accepted(check, solution, capsys)


@pytest.mark.parametrize("check", NEW_CHECKS, ids=lambda f: f.__name__)
def test_a_new_exercise_untouched_is_not_attempted_and_fails_under_nbgrader(check, monkeypatch, capsys):
    assert_stub_not_attempted(check, stub, monkeypatch, capsys)


@pytest.mark.parametrize("check, right, wrong", QUESTIONS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_question_accepts_its_answer_and_explains_every_wrong_one(check, right, wrong, capsys):
    assert_accepted(check, lambda: right, capsys)
    if isinstance(right, str):
        assert_accepted(check, lambda: f"({right.upper()})", capsys)  # "(B)" is "b"
    for value, hint in wrong.items():
        error = rejection(check, lambda value=value: value)
        assert hint in str(error), f"{value!r}: hint {hint!r} not in: {error}"
    with pytest.raises(AssertionError, match="pass the function itself"):
        check(right)


def test_the_new_checks_are_exported_by_their_chapter_module():
    for module, names in ((ch04, ("check_reinforce_variance", "check_reward_shift_question")),
                          (ch05, ("check_shared_projection_question", "check_padding_leak")),
                          (ch06, ("check_score_cost_question", "check_head_ablation")),
                          (ch07, ("check_pe_dot_question", "check_alibi_recent_mass"))):
        for name in names:
            assert name in module.__all__ and callable(getattr(module, name))


def test_the_reinforce_variance_check_is_far_from_its_sampling_error():
    """At n = 20 000 the measured total variance stays within 3% of the exact one for ten seeds, so the 7%
    tolerance never fails a correct solution; the wrong measurements it names are more than 15% away."""
    z, R = torch.tensor([1.0, 0.0, -0.5, 0.5]), torch.tensor([7.0, 5.0, 4.0, 6.0])
    for b in (0.0, float((torch.softmax(z, -1) * R).sum())):
        exact = ch04._reinforce_moments(z, R, b)["variance"]
        for seed in range(10):
            assert abs(reinforce_gradient_variance_ok(z, R, b, 20_000, seed) - exact) < 0.03 * exact


def test_the_ablation_probe_has_one_loud_head():
    """The check's W_o makes head `loud` clearly the most important, so the message's claim holds."""
    X, Wq, Wk, Wv, Wo = ch06._mha_inputs(80, 3, 4, 16)
    Wo = Wo.clone()
    Wo[2 * 4:3 * 4] *= 3.0
    changes = head_ablation_ok(X, Wq, Wk, Wv, Wo, 4)
    assert int(changes.argmax()) == 2 and changes[2] > 1.5 * changes.sort().values[-2]


def test_alibi_keeps_the_recent_weight_where_no_penalty_dilutes_it():
    """The experiment's claim: without the penalty the weight on the 8 most recent keys falls as T grows; with
    slope 0.5 it stays within a few points of its value at T = 32."""
    gen = torch.Generator().manual_seed(79)
    table = {}
    for T in (32, 128, 512):
        q, k = torch.randn(T, 16, generator=gen), torch.randn(T, 16, generator=gen)
        table[T] = (recent_mass_ok(q, k, 0.0, 8), recent_mass_ok(q, k, 0.5, 8))
    assert table[512][0] < 0.3 * table[32][0]
    assert abs(table[512][1] - table[32][1]) < 0.05


def test_padding_leak_is_zero_with_the_mask_and_not_without():
    X = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(0))
    W = [torch.randn(4, 3, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    lengths = torch.tensor([3, 2])
    assert _padding_leak(X, *W, lengths, mask=True)[0] == 0.0
    assert _padding_leak(X, *W, lengths, mask=True)[1] < 1e-5
    assert min(_padding_leak(X, *W, lengths)) > 0.01
    assert masks.padding_mask(lengths, 5).sum() == 5
