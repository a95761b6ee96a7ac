"""Chapters 0-3: the checks against more wrong answers, correct variants they must accept, and the
questions and experiments added to the exercise notebooks (issue 17).

Each catalogue below holds wrong answers that ``tests/test_checks.py`` does not: one per class of
weakness the issue lists (a scale typed in by hand, masks that are not right-padded, stability rows
that are all negative or of very different scales, a large score on a masked key, inputs changed in
place, ``pad_id`` and the special ids varied, misleading hints). ``NEW_WRONG_COUNTS`` counts them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_course import checks, data
from _helpers import (
    assert_accepted,
    assert_rejected_with_hint,
    assert_stub_not_attempted,
    rejection,
    right_params,
    wrong_params,
)
from test_checks import (
    additive_scores_ok,
    alignment_accuracy_ok,
    attention_ok,
    attention_step_ok,
    concat_scores_ok,
    context_ok,
    contexts_ok,
    dot_scores_ok,
    final_states_ok,
    general_scores_ok,
    greedy_decode_ok,
    masked_softmax_ok,
    scaled_dot_scores_ok,
    softmax_ok,
    split_concat_weight_ok,
    stub,
    teacher_forcing_ok,
    token_accuracy_ok,
    weights_ok,
)

# --------------------------------------------------------------------------- chapter 0


def _sm_global_max(x):
    e = np.exp(x - x.max())  # one maximum for the whole array
    return e / e.sum(axis=-1, keepdims=True)


def _sm_max_no_keepdims(x):
    e = np.exp(x - x.max(axis=-1))
    return e / e.sum(axis=-1, keepdims=True)


def _sm_sum_no_keepdims(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1)


def _sm_mean(x):
    e = np.exp(x - x.mean(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sm_exp_in_place(x):
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    return x / x.sum(axis=-1, keepdims=True)


def _sm_axis_1(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))  # only for matrices
    return e / e.sum(axis=1, keepdims=True)


def _sm_flattens_to_2d(x):
    z = x.reshape(-1, x.shape[-1])
    return softmax_ok(z) if x.ndim > 1 else softmax_ok(x)


def _sm_log_sum_exp_unstable(x):
    return np.exp(x - np.log(np.exp(x).sum(axis=-1, keepdims=True)))


def _sm_clipped(x):
    e = np.exp(np.clip(x, -50.0, 50.0))
    return e / e.sum(axis=-1, keepdims=True)


def _sm_divides_by_max(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.max(axis=-1, keepdims=True)


SOFTMAX_WRONG = {
    "one maximum for the whole array": (_sm_global_max, "each row's own maximum"),
    "max without keepdims (crashes on a (3, 5) matrix)": (_sm_max_no_keepdims, "keepdim"),
    "sum without keepdims (crashes on a (3, 5) matrix)": (_sm_sum_no_keepdims, "keepdim"),
    "subtracts the mean": (_sm_mean, "largest"),
    "exp in place into the input": (_sm_exp_in_place, "in place"),
    "axis=1: only for matrices (crashes on a vector)": (_sm_axis_1, "dim=-1"),
    "flattens to 2-D and returns it so": (_sm_flattens_to_2d, "shape"),
    "log-sum-exp without the shift": (_sm_log_sum_exp_unstable, "overflowed"),
    "clips the scores instead of shifting them": (_sm_clipped, "should be"),
    "divides by the max, not the sum": (_sm_divides_by_max, "should be"),
}

SOFTMAX_RIGHT = {
    "float32 throughout": lambda x: softmax_ok(x.astype(np.float32)),
    "scipy-style logsumexp": lambda x: np.exp(x - x.max(-1, keepdims=True)
                                              - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))),
    "apply_along_axis": lambda x: np.apply_along_axis(lambda r: np.exp(r - r.max()) / np.exp(r - r.max()).sum(), -1, x),
}


def _w_in_place(q, K):
    q /= np.sqrt(q.shape[0])
    return softmax_ok(K @ q)


def _w_keys_normalised_in_place(q, K):
    K /= np.linalg.norm(K, axis=-1, keepdims=True)
    return softmax_ok(K @ q / np.sqrt(q.shape[0]))


WEIGHTS_WRONG = {
    "sqrt(8) typed in": (lambda q, K: softmax_ok(K @ q / np.sqrt(8)), "typing a number"),
    "2 typed in (sqrt(4))": (lambda q, K: softmax_ok(K @ q / 2), "typing a number"),
    "divides by sqrt(S)": (lambda q, K: softmax_ok(K @ q / np.sqrt(len(K))), "sqrt(S)"),
    "scaled twice (q and K each by 1/sqrt(E))": (
        lambda q, K: softmax_ok((K / np.sqrt(q.shape[0])) @ (q / np.sqrt(q.shape[0]))), "by E"),
    "q @ K (crashes)": (lambda q, K: softmax_ok(q @ K / np.sqrt(q.shape[0])), "raised ValueError"),
    "divides q in place": (_w_in_place, "modified in place"),
    "normalises the keys in place": (_w_keys_normalised_in_place, "modified in place"),
    "a (1, S) row": (lambda q, K: softmax_ok(q[None, :] @ K.T / np.sqrt(q.shape[0])), "shape"),
}

WEIGHTS_RIGHT = {
    "q @ K.T": lambda q, K: softmax_ok(q @ K.T / np.sqrt(len(q))),
    "float32": lambda q, K: softmax_ok((K @ q / np.sqrt(q.shape[-1])).astype(np.float32)),
}


def _ctx_in_place(a, V):
    V *= a[:, None]
    return V.sum(axis=0)


CONTEXT_WRONG = {
    "hard attention: the value of the largest weight": (lambda a, V: V[a.argmax()], "hard attention"),
    "weighted but not summed": (lambda a, V: a[:, None] * V, "did not sum"),
    "weights the values in place": (_ctx_in_place, "modified in place"),
    "values transposed (crashes when S != Ev)": (lambda a, V: a @ V.T, "raised ValueError"),
    "the mean, written as a.sum() * mean": (lambda a, V: a.sum() * V.mean(axis=0), "mean"),
    "squared weights": (lambda a, V: (a**2) @ V, "should be"),
    "divided by S": (lambda a, V: a @ V / len(a), "should be"),
    "weights renormalised by their max": (lambda a, V: (a / a.max()) @ V, "should be"),
}

CONTEXT_RIGHT = {
    "(a * V.T).sum(axis=1)": lambda a, V: (a * V.T).sum(axis=1),
    "np.einsum": lambda a, V: np.einsum("s,se->e", a, V),
    "a list": lambda a, V: list(a @ V),
}


def _att(Q, K, V, *, scale=None, softmax=softmax_ok, values=None):
    A = softmax(Q @ K.T / (np.sqrt(Q.shape[-1]) if scale is None else scale))
    return A @ (V if values is None else values), A


def _att_in_place(Q, K, V):
    Q /= np.sqrt(Q.shape[-1])
    A = softmax_ok(Q @ K.T)
    return A @ V, A


def _att_global(x):
    e = np.exp(x - x.max())
    return e / e.sum()


ATTENTION_WRONG = {
    "2 typed in (right for E = 4 only)": (lambda Q, K, V: _att(Q, K, V, scale=2.0), "typing a number"),
    "divides by sqrt(S)": (lambda Q, K, V: _att(Q, K, V, scale=np.sqrt(K.shape[0])), "sqrt(S)"),
    "divides by sqrt(L)": (lambda Q, K, V: _att(Q, K, V, scale=np.sqrt(Q.shape[0])), "sqrt(L)"),
    "scaled twice (Q and K each by 1/sqrt(E))": (
        lambda Q, K, V: _att(Q / np.sqrt(Q.shape[-1]), K / np.sqrt(Q.shape[-1]), V, scale=1.0), "by E"),
    "one softmax over the whole matrix": (lambda Q, K, V: _att(Q, K, V, softmax=_att_global), "whole matrix"),
    "divides Q in place": (_att_in_place, "modified in place"),
    "weighted sum of the keys (square case)": (
        lambda Q, K, V: _att(Q, K, V, values=K) if K.shape == V.shape else attention_ok(Q, K, V), "*keys*"),
    "weights returned transposed": (lambda Q, K, V: (attention_ok(Q, K, V)[0], attention_ok(Q, K, V)[1].T),
                                    "transposed"),
    "context from unnormalised weights": (
        lambda Q, K, V: (np.exp(Q @ K.T / np.sqrt(Q.shape[-1])) @ V, attention_ok(Q, K, V)[1]), "context"),
}

ATTENTION_RIGHT = {
    "Q scaled first": lambda Q, K, V: _att(Q / np.sqrt(Q.shape[-1]), K, V, scale=1.0),
    "einsum": lambda Q, K, V: attention_ok(Q, K, V),
}


# --------------------------------------------------------------------------- chapter 1


TF_WRONG = {
    "bos and eos swapped": (lambda t, b, e: (torch.cat([torch.tensor([e]), t]), torch.cat([t, torch.tensor([b])])),
                            "swapped"),
    "ids 1 and 2 typed in": (lambda t, b, e: (torch.cat([torch.tensor([1]), t]), torch.cat([t, torch.tensor([2])])),
                             "not the given"),
    "inputs drop the last token": (lambda t, b, e: (torch.cat([torch.tensor([b]), t[:-1]]),
                                                    torch.cat([t, torch.tensor([e])])), "stop before the last"),
    "labels start at y_2": (lambda t, b, e: (torch.cat([torch.tensor([b]), t]), torch.cat([t[1:], torch.tensor([e])])),
                            "start at y_2"),
    "a (1, T + 1) row": (lambda t, b, e: tuple(r[None] for r in teacher_forcing_ok(t, b, e)), "1-D"),
    "Python lists": (lambda t, b, e: ([b] + t.tolist(), t.tolist() + [e]), "torch tensor"),
    "int32 ids": (lambda t, b, e: tuple(r.int() for r in teacher_forcing_ok(t, b, e)), "torch.long"),
    "three values": (lambda t, b, e: (*teacher_forcing_ok(t, b, e), len(t)), "pair"),
}

TF_RIGHT = {
    "labels from the inputs": lambda t, b, e: (torch.cat([torch.tensor([b]), t]),
                                               torch.cat([torch.cat([torch.tensor([b]), t])[1:], torch.tensor([e])])),
    "F.pad": lambda t, b, e: (torch.nn.functional.pad(t, (1, 0), value=b), torch.nn.functional.pad(t, (0, 1), value=e)),
    "new_tensor": lambda t, b, e: (t.new_tensor([b] + t.tolist()), t.new_tensor(t.tolist() + [e])),
}


def _fs_lengths_in_place(states, lengths):
    lengths -= 1
    return states[torch.arange(states.shape[0]), lengths]


FINAL_WRONG = {
    "states[:, lengths - 1]": (lambda s, n: s[:, n - 1], "(B, B, D)"),
    "states[lengths - 1]": (lambda s, n: s[n - 1], "batch"),
    "one index for all: lengths.max() - 1": (lambda s, n: s[:, int(n.max()) - 1], "same position"),
    "B = 4 typed in": (lambda s, n: s[torch.arange(4), n - 1], "raised"),
    "index lengths - 2": (lambda s, n: s[torch.arange(s.shape[0]), n - 2], "should be"),
    "lengths decremented in place": (_fs_lengths_in_place, "modified in place"),
    "flip and take the first": (lambda s, n: s.flip(1)[:, 0], "padding"),
    "sum over time": (lambda s, n: s.sum(dim=1), "should be"),
}

FINAL_RIGHT = {
    "gather": lambda s, n: s.gather(1, (n - 1).view(-1, 1, 1).expand(-1, 1, s.shape[-1])).squeeze(1),
    "a loop": lambda s, n: torch.stack([s[b, n[b] - 1] for b in range(s.shape[0])]),
    "index_select per row": lambda s, n: s[range(s.shape[0]), (n - 1).tolist()],
}


def _greedy_with(step, state, bos, eos, max_len, *, feed_bos=None, stop_at=None, record_fed=False, value=False):
    ids, token = [], bos if feed_bos is None else feed_bos
    for _ in range(max_len):
        logits, state = step(token, state)
        prediction = int(logits.max()) if value else int(logits.argmax())
        ids.append(token if record_fed else prediction)
        token = prediction
        if prediction == (eos if stop_at is None else stop_at):
            break
    return ids


def _greedy_bos_in_output(step, state, bos, eos, max_len):
    return [bos] + greedy_decode_ok(step, state, bos, eos, max_len)


GREEDY_WRONG = {
    "returns <bos> first (feeding right)": (_greedy_bos_in_output, "starts with <bos>"),
    "records the token fed, not the prediction": (
        lambda st, s, b, e, m: _greedy_with(st, s, b, e, m, record_fed=True), "starts with <bos>"),
    "feeds 1 instead of bos_id": (lambda st, s, b, e, m: _greedy_with(st, s, b, e, m, feed_bos=1),
                                  "first token you fed"),
    "stops at 2 instead of eos_id": (lambda st, s, b, e, m: _greedy_with(st, s, b, e, m, stop_at=2), "eos_id"),
    "feeds the largest logit's value": (lambda st, s, b, e, m: _greedy_with(st, s, b, e, m, value=True), "argmax"),
    "returns a list that is one step late": (
        lambda st, s, b, e, m: [b] + greedy_decode_ok(st, s, b, e, m)[:-1], "starts with <bos>"),
    "feeds <eos> first": (lambda st, s, b, e, m: _greedy_with(st, s, b, e, m, feed_bos=e), "first token you fed"),
    "starts from no state": (lambda st, s, b, e, m: greedy_decode_ok(st, None, b, e, m), "raised TypeError"),
}

GREEDY_RIGHT = {
    "argmax of the softmax": lambda st, s, b, e, m: _greedy_with(st, s, b, e, m),
    "returns a tensor": lambda st, s, b, e, m: torch.tensor(greedy_decode_ok(st, s, b, e, m)),
    "a while loop": lambda st, s, b, e, m: _greedy_while(st, s, b, e, m),
}


def _greedy_while(step, state, bos, eos, max_len):
    ids, token = [], bos
    while len(ids) < max_len and (not ids or ids[-1] != eos):
        logits, state = step(token, state)
        token = int(torch.softmax(logits, dim=-1).argmax())
        ids.append(token)
    return ids


def _acc_in_place(p, t, pad_id=0):
    p[t == pad_id] = -1
    return token_accuracy_ok(p, t, pad_id)


ACCURACY_WRONG = {
    "0 typed in as the padding": (lambda p, t, pad_id=0: token_accuracy_ok(p, t, 0), "pad_id argument"),
    "real positions from the predictions": (
        lambda p, t, pad_id=0: (((p == t) & (p != pad_id)).sum() / (p != pad_id).sum()).item(), "*predictions*"),
    "integer division": (lambda p, t, pad_id=0: (((p == t) & (t != pad_id)).sum() // (t != pad_id).sum()).item(),
                         "integer division"),
    "writes into the predictions": (_acc_in_place, "modified its argument"),
    "matches at padding counted, real tokens as denominator": (
        lambda p, t, pad_id=0: (p == t).sum().item() / (t != pad_id).sum().item(), "above 1"),
    "divided by every position": (lambda p, t, pad_id=0: ((p == t) & (t != pad_id)).sum().item() / t.numel(),
                                  "every position"),
    "mask inverted": (lambda p, t, pad_id=0: ((p == t) & (t == pad_id)).sum().item() / (t == pad_id).sum().item(),
                      "should be"),
    "argument ignored, default used": (lambda p, t, pad_id=0: token_accuracy_ok(p, t), "pad_id argument"),
}

ACCURACY_RIGHT = {
    "a 0-d tensor": lambda p, t, pad_id=0: ((p == t) & (t != pad_id)).sum() / (t != pad_id).sum(),
    "boolean indexing": lambda p, t, pad_id=0: (p == t)[t != pad_id].float().mean().item(),
}


# --------------------------------------------------------------------------- chapter 2


def _ctx_weights_in_place(w, h):
    w.div_(w.sum(dim=-1, keepdim=True))
    return w @ h


CONTEXTS_WRONG = {
    "hard attention: the most-attended state": (lambda w, h: h[w.argmax(dim=-1)], "hard attention"),
    "elementwise (crashes unless T = S = D)": (lambda w, h: w * h, "raised RuntimeError"),
    "normalises the weights in place": (_ctx_weights_in_place, "modified its argument"),
    "(weights @ states) transposed": (lambda w, h: h.T @ w.T, "transposed"),
    "divided by S": (lambda w, h: w @ h / h.shape[0], "should be"),
    "one context for all: the mean weights": (lambda w, h: (w.mean(0) @ h).expand(w.shape[0], -1), "same context"),
    "softmax of the weights again": (lambda w, h: torch.softmax(w, dim=-1) @ h, "should be"),
    "the first state for every step": (lambda w, h: h[0].expand(w.shape[0], -1), "same context"),
}

CONTEXTS_RIGHT = {
    "einsum": lambda w, h: torch.einsum("ts,sd->td", w, h),
    "broadcast and sum": lambda w, h: (w[:, :, None] * h[None]).sum(dim=1),
    "float64": lambda w, h: w.double() @ h.double(),
}


def _add_unsqueeze_in_place(s, h, W_q, W_k, v):
    s.unsqueeze_(0)
    return torch.tanh(s @ W_q.T + h @ W_k.T) @ v


ADDITIVE_WRONG = {
    "tanh of each projection separately": (
        lambda s, h, W_q, W_k, v: (torch.tanh(W_q @ s) + torch.tanh(h @ W_k.T)) @ v, "separately"),
    "W_k not transposed (runs when D = A)": (
        lambda s, h, W_q, W_k, v: torch.tanh(W_q @ s + h @ W_k) @ v if W_k.shape[0] == W_k.shape[1]
        else additive_scores_ok(s, h, W_q, W_k, v), "W_k is not transposed"),
    "s @ W_q (runs when D = A)": (
        lambda s, h, W_q, W_k, v: torch.tanh(s @ W_q + h @ W_k.T) @ v if W_q.shape[0] == W_q.shape[1]
        else additive_scores_ok(s, h, W_q, W_k, v), "W_q is transposed"),
    "unsqueezes s in place": (_add_unsqueeze_in_place, "modified its argument"),
    "ReLU instead of tanh": (lambda s, h, W_q, W_k, v: torch.relu(W_q @ s + h @ W_k.T) @ v, "should be"),
    "sigmoid instead of tanh": (lambda s, h, W_q, W_k, v: torch.sigmoid(W_q @ s + h @ W_k.T) @ v, "should be"),
    "an (S, 1) column": (lambda s, h, W_q, W_k, v: torch.tanh(W_q @ s + h @ W_k.T) @ v[:, None], "shape"),
    "hidden size 3 typed in": (lambda s, h, W_q, W_k, v: torch.tanh(W_q @ s + h @ W_k.T)[:, :3] @ v[:3],
                               "should be"),
}

ADDITIVE_RIGHT = {
    "v @ tanh(...).T": lambda s, h, W_q, W_k, v: v @ torch.tanh(W_q @ s + h @ W_k.T).T,
    "s as a row": lambda s, h, W_q, W_k, v: (torch.tanh(s[None] @ W_q.T + h @ W_k.T) @ v),
}


def _step_with(s, states, mask, W_q, W_k, v, *, fill=None, renorm=False, tail=False, from_states=False,
               zero_in_place=False, context_unmasked=False):
    e = additive_scores_ok(s, states, W_q, W_k, v)  # (S,)
    if from_states:
        mask = states.abs().sum(-1) != 0
    if tail:
        mask = torch.arange(len(mask)) < int(mask.sum())
    if zero_in_place:
        states[~mask] = 0.0
    if renorm:
        w = torch.softmax(e, dim=-1) * mask
        w = w / w.sum()
    else:
        w = torch.softmax(e.masked_fill(~mask, float("-inf") if fill is None else fill), dim=-1)
    c = torch.softmax(e, dim=-1) @ states if context_unmasked else w @ states
    return c, w


STEP_WRONG = {
    "assumes the padding is at the end": (lambda *a: _step_with(*a, tail=True), "always at the end"),
    "mask taken from zero states": (lambda *a: _step_with(*a, from_states=True), "taken from the states"),
    "softmax over all keys, then renormalised": (lambda *a: _step_with(*a, renorm=True), "so large"),
    "zeroes the padding states in place": (lambda *a: _step_with(*a, zero_in_place=True), "modified its argument"),
    "context from the unmasked weights": (lambda *a: _step_with(*a, context_unmasked=True), "context"),
    "a fill of -1 (finite, small)": (lambda *a: _step_with(*a, fill=-1.0), "exactly 0"),
    "a fill of 0 written as scores * mask": (lambda *a: _step_with(*a, fill=0.0), "exp(0)"),
    "a fill of -10": (lambda *a: _step_with(*a, fill=-10.0), "exactly 0"),
}

STEP_RIGHT = {
    "-1e9 fill": lambda *a: _step_with(*a, fill=-1e9),
    "torch.where with -inf": lambda s, h, m, W_q, W_k, v: attention_step_ok(s, h, m, W_q, W_k, v),
}


def _align_in_place(w, a):
    w[w < 0.1] = 0.0
    return alignment_accuracy_ok(w, a)


ALIGN_WRONG = {
    "divided by S": (lambda w, a: (w.argmax(dim=-1) == a).sum().item() / w.shape[1], "divided by S"),
    "one argmax of the whole matrix": (lambda w, a: (w.argmax() == a).float().mean().item(), "one argmax"),
    "integer division": (lambda w, a: ((w.argmax(dim=-1) == a).sum() // len(a)).item(), "integer division"),
    "zeroes small weights in place": (_align_in_place, "modified its argument"),
    "argmin": (lambda w, a: (w.argmin(dim=-1) == a).float().mean().item(), "should be"),
    "argmax over dim 0 (crashes when T != S)": (
        lambda w, a: (w.argmax(dim=0) == a).float().mean().item(), "wrong axis"),
    "share of the source positions hit": (
        lambda w, a: len(set(w.argmax(dim=-1).tolist()) & set(a.tolist())) / w.shape[1], "should be"),
    "compares with the alignment reversed": (
        lambda w, a: (w.argmax(dim=-1) == a.flip(0)).float().mean().item(), "should be"),
}

ALIGN_RIGHT = {
    "a 0-d tensor": lambda w, a: (w.argmax(dim=-1) == a).float().mean(),
    "a loop": lambda w, a: sum(int(w[t].argmax()) == int(a[t]) for t in range(len(a))) / len(a),
}


# --------------------------------------------------------------------------- chapter 3


DOT_WRONG = {
    "q.T @ k (square case)": (lambda q, k: q.T @ k, "q.T @ k"),
    "torch.mm(q, k) (crashes when E != S)": (lambda q, k: torch.mm(q, k) if q.shape[1] == k.shape[0]
                                             else torch.mm(q, k[:, :1]), "k transposed"),
    "sum over the wrong axis": (lambda q, k: (q[:, None] * k[None]).sum(0), "should be"),
    "divided by E": (lambda q, k: q @ k.T / q.shape[-1], "should be"),
    "cosine similarity": (lambda q, k: (q / q.norm(dim=-1, keepdim=True)) @ (k / k.norm(dim=-1, keepdim=True)).T,
                          "should be"),
    "q @ k.T + 1": (lambda q, k: q @ k.T + 1, "should be"),
    "torch.dot (1-D only)": (lambda q, k: torch.dot(q, k), "raised RuntimeError"),
    "torch.bmm (3-D only)": (lambda q, k: torch.bmm(q, k.T), "raised RuntimeError"),
}

DOT_RIGHT = {
    "einsum": lambda q, k: torch.einsum("le,se->ls", q, k),
    "broadcast and sum": lambda q, k: (q[:, None] * k[None]).sum(-1),
    "float32 from float64": lambda q, k: q.float() @ k.float().T,
    "(k @ q.T).T": lambda q, k: (k @ q.T).T,
    "numpy": lambda q, k: q.numpy() @ k.numpy().T,
}


def _scaled_k_in_place(q, k):
    k /= q.shape[-1] ** 0.5
    return q @ k.T


SCALED_WRONG = {
    "both q and k scaled": (lambda q, k: (q / q.shape[-1] ** 0.5) @ (k / q.shape[-1] ** 0.5).T, "both q and k"),
    "E ** 1/2 (precedence)": (lambda q, k: q @ k.T / q.shape[-1] ** 1 / 2, "should be"),
    "2 typed in": (lambda q, k: q @ k.T / 2, "typing"),
    "divides k in place": (_scaled_k_in_place, "in place"),
    "sqrt(len(q))": (lambda q, k: q @ k.T / len(q) ** 0.5, "sqrt(L)"),
    "sqrt(len(k))": (lambda q, k: q @ k.T / len(k) ** 0.5, "sqrt(S)"),
    "divides by sqrt(E + 1)": (lambda q, k: q @ k.T / (q.shape[-1] + 1) ** 0.5, "sqrt(5)"),
    "temperature sqrt(E) as a product": (lambda q, k: q @ k.T * q.shape[-1] ** 0.5, "multiplied"),
}

SCALED_RIGHT = {
    "q scaled first": lambda q, k: (q / q.shape[-1] ** 0.5) @ k.T,
    "math.sqrt of k's size": lambda q, k: q @ k.T / np.sqrt(k.shape[-1]),
    "torch.rsqrt": lambda q, k: q @ k.T * torch.rsqrt(torch.tensor(float(q.shape[-1]))),
}


def _general_W_in_place(q, k, W):
    W.t_()
    return q @ W.T @ k.T


GENERAL_WRONG = {
    "(q @ W) @ k (runs when Ek = S)": (lambda q, k, W: (q @ W) @ k, "k transposed"),
    "transposes W in place": (_general_W_in_place, "in place"),
    "scaled by sqrt(Ek)": (lambda q, k, W: q @ W @ k.T / k.shape[-1] ** 0.5, "should be"),
    "W.T when Eq != Ek (crashes)": (lambda q, k, W: q @ W.T @ k.T, "W transposed"),
    "q @ W @ k.T squared": (lambda q, k, W: (q @ W @ k.T) ** 2, "should be"),
    "(k W q^T) as the result": (lambda q, k, W: k @ W.T @ q.T, "transposed"),
    "a softmax applied": (lambda q, k, W: torch.softmax(q @ W @ k.T, dim=-1), "not scores"),
    "W applied to the keys only": (lambda q, k, W: q[:, : W.shape[1]] @ k.T if q.shape[1] >= W.shape[1]
                                   else q @ (k @ W.T).T * 0 + q @ k[:, : q.shape[1]].T, "W is not used"),
}

GENERAL_RIGHT = {
    "q @ (W @ k.T)": lambda q, k, W: q @ (W @ k.T),
    "(k @ W.T @ q.T).T": lambda q, k, W: (k @ W.T @ q.T).T,
    "einsum": lambda q, k, W: torch.einsum("le,ef,sf->ls", q, W, k),
}


def _concat_with(q, k, W, v, *, act=torch.tanh, transpose=True, swap_axes=False):
    (L, Eq), (S, Ek) = q.shape, k.shape
    pairs = torch.cat([q[:, None, :].expand(L, S, Eq), k[None, :, :].expand(L, S, Ek)], dim=-1)
    if swap_axes:
        pairs = pairs.transpose(0, 1)
    return act(pairs @ (W.T if transpose else W)) @ v


def _concat_in_place(q, k, W, v):
    W.mul_(1.0001)
    return concat_scores_ok(q, k, W, v)


CONCAT_WRONG = {
    "W not transposed (crashes unless A = Eq + Ek)": (lambda *a: _concat_with(*a, transpose=False), "raised"),
    "pairs laid out (S, L)": (lambda *a: _concat_with(*a, swap_axes=True), "transposed"),
    "ReLU instead of tanh": (lambda *a: _concat_with(*a, act=torch.relu), "should be"),
    "sigmoid instead of tanh": (lambda *a: _concat_with(*a, act=torch.sigmoid), "should be"),
    "changes W in place": (_concat_in_place, "in place"),
    "concatenates along the pairs axis (crashes)": (
        lambda q, k, W, v: torch.tanh(torch.cat([q, k]) @ W.T) @ v, "raised"),
    "concatenates without expanding (crashes)": (
        lambda q, k, W, v: torch.tanh(torch.cat([q, k], dim=-1) @ W.T) @ v, "raised"),
    "the mean of the hidden layer instead of v": (
        lambda q, k, W, v: _concat_with(q, k, W, torch.full_like(v, 1 / len(v))), "should be"),
}

CONCAT_RIGHT = {
    "the additive form": lambda q, k, W, v: torch.tanh(
        (q @ W[:, : q.shape[1]].T)[:, None] + (k @ W[:, q.shape[1]:].T)[None]) @ v,
    "a loop": lambda q, k, W, v: torch.stack([torch.stack([torch.tanh(W @ torch.cat([qi, kj])) @ v for kj in k])
                                              for qi in q]),
}


def _split_in_place(W, Eq):
    W.t_()
    W.t_()
    W.mul_(2)
    return W[:, :Eq], W[:, Eq:]


SPLIT_WRONG = {
    "torch.split(W, Eq, dim=1)": (lambda W, Eq: torch.split(W, Eq, dim=1), "torch.split"),
    "W.chunk(2, dim=1)": (lambda W, Eq: W.chunk(2, dim=1), "two halves"),
    "Eq = 4 typed in": (lambda W, Eq: (W[:, :4], W[:, 4:]), "W[:, :Eq]"),
    "scales W in place": (_split_in_place, "in place"),
    "one column too many": (lambda W, Eq: (W[:, : Eq + 1], W[:, Eq + 1:]), "W[:, :Eq]"),
    "the whole W twice": (lambda W, Eq: (W, W), "W[:, :Eq]"),
    "blocks swapped when Eq = Ek": (
        lambda W, Eq: (W[:, Eq:], W[:, :Eq]) if W.shape[1] == 2 * Eq else split_concat_weight_ok(W, Eq), "swapped"),
    "rows and columns mixed": (lambda W, Eq: (W[:Eq].T, W[Eq:].T), "should be"),
}

SPLIT_RIGHT = {
    "torch.split with sizes": lambda W, Eq: tuple(torch.split(W, [Eq, W.shape[1] - Eq], dim=1)),
    "copies": lambda W, Eq: (W[:, :Eq].clone(), W[:, Eq:].clone()),
    "numpy": lambda W, Eq: (W.numpy()[:, :Eq], W.numpy()[:, Eq:]),
}


def _ms_max_before_mask(scores, mask):
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True)) * mask
    return e / e.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def _ms_global_max(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x[torch.isfinite(x)].max()  # one maximum for the whole tensor
    e = torch.exp(x - m)
    return e / e.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def _ms_softmax_then_renormalise(scores, mask):
    w = torch.softmax(scores, dim=-1) * mask
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def _ms_fill_zero(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1)


def _ms_times_mask(scores, mask):
    return torch.softmax(scores * mask, dim=-1)


def _ms_tail(scores, mask):
    n = mask.expand(scores.shape).sum(-1, keepdim=True)  # as if the allowed keys came first
    return masked_softmax_ok(scores, torch.arange(scores.shape[-1]) < n)


def _ms_exp_underflow(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(dim=-1, keepdim=True).clamp(min=0)  # shifts only large positive rows
    e = torch.exp(x - m)
    return e / e.sum(dim=-1, keepdim=True).clamp_min(1e-30)


MASKED_WRONG = {
    "max taken before masking": (_ms_max_before_mask, "*before* masking"),
    "one maximum for the whole tensor": (_ms_global_max, "own largest allowed score"),
    "softmax, then zero and renormalise": (_ms_softmax_then_renormalise, "*before* masking"),
    "masked keys filled with 0": (_ms_fill_zero, "exp(0) = 1"),
    "scores * mask": (_ms_times_mask, "exp(0) = 1"),
    "as if the allowed keys came first": (_ms_tail, "exactly 0"),
    "shift only when the maximum is positive": (_ms_exp_underflow, "underflows"),
    "a causal mask treated as a padding mask (crashes)": (
        lambda s, m: masked_softmax_ok(s, m[:, None, :]) if m.dim() == 2 and m.shape[0] != s.shape[0]
        else masked_softmax_ok(s, m), "raised"),
}

MASKED_RIGHT = {
    "+1e-6 in the normaliser": lambda s, m: _ms_eps(s, m),
    "nan_to_num of a -inf softmax": lambda s, m: torch.nan_to_num(
        torch.softmax(s.masked_fill(~m, float("-inf")), dim=-1), nan=0.0),
    "-1e9 fill, fully masked rows zeroed": lambda s, m: torch.softmax(s.masked_fill(~m, -1e9), dim=-1)
    * m.expand(s.shape).any(dim=-1, keepdim=True),
}


def _ms_eps(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    return e / (e.sum(dim=-1, keepdim=True) + 1e-6)


# --------------------------------------------------------------------------- the catalogue

CASES = [
    (checks.check_softmax, softmax_ok, SOFTMAX_WRONG, SOFTMAX_RIGHT),
    (checks.check_attention_weights, weights_ok, WEIGHTS_WRONG, WEIGHTS_RIGHT),
    (checks.check_context, context_ok, CONTEXT_WRONG, CONTEXT_RIGHT),
    (checks.check_attention, attention_ok, ATTENTION_WRONG, ATTENTION_RIGHT),
    (checks.check_teacher_forcing, teacher_forcing_ok, TF_WRONG, TF_RIGHT),
    (checks.check_final_states, final_states_ok, FINAL_WRONG, FINAL_RIGHT),
    (checks.check_greedy_decode, greedy_decode_ok, GREEDY_WRONG, GREEDY_RIGHT),
    (checks.check_token_accuracy, token_accuracy_ok, ACCURACY_WRONG, ACCURACY_RIGHT),
    (checks.check_contexts, contexts_ok, CONTEXTS_WRONG, CONTEXTS_RIGHT),
    (checks.check_additive_scores, additive_scores_ok, ADDITIVE_WRONG, ADDITIVE_RIGHT),
    (checks.check_attention_step, attention_step_ok, STEP_WRONG, STEP_RIGHT),
    (checks.check_alignment_accuracy, alignment_accuracy_ok, ALIGN_WRONG, ALIGN_RIGHT),
    (checks.check_dot_scores, dot_scores_ok, DOT_WRONG, DOT_RIGHT),
    (checks.check_scaled_dot_scores, scaled_dot_scores_ok, SCALED_WRONG, SCALED_RIGHT),
    (checks.check_general_scores, general_scores_ok, GENERAL_WRONG, GENERAL_RIGHT),
    (checks.check_concat_scores, concat_scores_ok, CONCAT_WRONG, CONCAT_RIGHT),
    (checks.check_split_concat_weight, split_concat_weight_ok, SPLIT_WRONG, SPLIT_RIGHT),
    (checks.check_masked_softmax, masked_softmax_ok, MASKED_WRONG, MASKED_RIGHT),
]

NEW_WRONG_COUNTS = {check.__name__: len(wrong) for check, _, wrong, _ in CASES}

WRONG = wrong_params((check, catalogue) for check, _, catalogue, _ in CASES)

RIGHT = right_params((check, variants) for check, _, _, variants in CASES)


@pytest.mark.parametrize("check, wrong, hint", WRONG)
def test_wrong_answer_rejected_with_a_hint(check, wrong, hint, capsys):
    assert_rejected_with_hint(check, wrong, hint, capsys)


@pytest.mark.parametrize("check, right", RIGHT)
def test_a_correct_variant_is_accepted(check, right, capsys):
    assert_accepted(check, right, capsys)


def test_every_existing_check_has_at_least_six_new_wrong_answers():
    assert min(NEW_WRONG_COUNTS.values()) >= 6, NEW_WRONG_COUNTS


def test_a_naive_softmax_costs_only_the_softmax_exercise():
    """Exercises 2 and 4 of chapter 0 use the learner's softmax: their checks keep the scores moderate, so that
    an unstable softmax loses exercise 1's points and no others (tests/test_exercises.py grades it so)."""

    def naive(x):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)

    checks.check_attention_weights(lambda q, K: naive(K @ q / np.sqrt(q.shape[0])))
    checks.check_attention(lambda Q, K, V: (naive(Q @ K.T / np.sqrt(Q.shape[-1])) @ V,
                                            naive(Q @ K.T / np.sqrt(Q.shape[-1]))))

    def sharpening(Q, K, threshold):  # moderate scores there too
        beta = 1
        while naive(beta * Q @ K.T / np.sqrt(Q.shape[-1])).max(axis=-1).min() < threshold:
            beta += 1
        return beta

    checks.check_sharpening_beta(sharpening)


def test_greedy_decode_blames_the_list_not_the_feeding():
    """Issue 17: an output list shifted by <bos> was blamed on the feeding."""
    with pytest.raises(AssertionError) as info:
        checks.check_greedy_decode(_greedy_bos_in_output)
    assert "feeding itself is right" in str(info.value) and "you fed" not in str(info.value)


# --------------------------------------------------------------------------- questions and experiments


def sharpening_beta_ok(Q, K, threshold):
    scores = Q @ K.T / np.sqrt(Q.shape[-1])
    beta = 1
    while softmax_ok(beta * scores).max(axis=-1).min() < threshold:
        beta += 1
    return beta


def _sharp_with(Q, K, threshold, *, scale=True, reduce=np.min, start=1, last_below=False):
    scores = Q @ K.T / (np.sqrt(Q.shape[-1]) if scale else 1.0)
    beta = start
    while reduce(softmax_ok(beta * scores).max(axis=-1)) < threshold:
        beta += 1
    return beta - 1 if last_below else beta


def accuracy_after_dropping_ok(pairs, position, tgt_vocab):
    correct = total = 0
    for pair in pairs:
        target = tgt_vocab.encode(pair.target)
        labels = target + [tgt_vocab.eos_id]
        kept = target[:position] + target[position:][1:] if position >= 0 else target[:position] + (
            target[position + 1:] if position + 1 < 0 else [])
        output = kept + [tgt_vocab.eos_id]
        output += [tgt_vocab.pad_id] * (len(labels) - len(output))
        correct += sum(o == t for o, t in zip(output, labels))
        total += len(labels)
    return correct / total


def _drop_with(pairs, position, tgt_vocab, **kw):
    return checks.ch01._dropped_accuracy(pairs, position, tgt_vocab, **kw)


def diagonal_alignment_ok(pairs):
    hits = total = 0
    for pair in pairs:
        T, S = len(pair.target), len(pair.source)
        weights = torch.eye(T, S)
        hits += int((weights.argmax(dim=-1) == torch.tensor(pair.alignment)).sum())
        total += T
    return hits / total


def mean_largest_weight_ok(d_k, scaled, S, n, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 1, d_k, generator=g)
    k = torch.randn(n, S, d_k, generator=g)
    scores = q @ k.transpose(1, 2)  # (n, 1, S)
    if scaled:
        scores = scores / d_k**0.5
    return torch.softmax(scores, dim=-1).max(dim=-1).values.mean().item()


def _mlw(d_k, scaled, S, n, seed, **kw):
    return checks.ch03._mean_largest_weight(d_k, scaled, S, n, seed, **kw)


QUESTIONS = {  # check: (right answer, {wrong answer: a word of its hint})
    checks.check_temperature_limits: ("b", {"a": "infinity", "c": "sum to 1", "d": "adding"}),
    checks.check_why_subtract_the_max: ("c", {"a": "exp(1000)", "b": "cancels", "d": "never NaN"}),
    checks.check_dropped_word_prediction: ("b", {"a": "order-free", "c": "other way round", "d": "last"}),
    checks.check_constant_query: ("c", {"a": "uniform", "b": "softmax", "d": "fixed"}),
    checks.check_why_minus_infinity: ("b", {"a": "ordinary score", "c": "speed", "d": "0/0"}),
    checks.check_scaled_variance: (0.0625, {1.0: "variance 1", 4.0: "before the scale", 0.5: "8² = 64",
                                            0.25: "standard deviation"}),
}

EXPERIMENTS = {  # check: (solution, {name: (wrong answer, hint)})
    checks.check_sharpening_beta: (sharpening_beta_ok, {
        "unscaled scores": (lambda Q, K, t: _sharp_with(Q, K, t, scale=False), "sqrt(E)"),
        "the sharpest row": (lambda Q, K, t: _sharp_with(Q, K, t, reduce=np.max), "*sharpest*"),
        "the mean row": (lambda Q, K, t: _sharp_with(Q, K, t, reduce=np.mean), "averaged"),
        "the last beta below": (lambda Q, K, t: _sharp_with(Q, K, t, last_below=True), "*below*"),
        "starts at beta = 10": (lambda Q, K, t: _sharp_with(Q, K, t, start=10), "try beta = 1, 2, 3"),
        "a float beta from a fine grid": (lambda Q, K, t: _sharp_with(Q, K, t) - 0.5, "should be"),
    }),
    checks.check_accuracy_after_dropping: (accuracy_after_dropping_ok, {
        "blanks the word in place": (lambda p, i, v: _drop_with(p, i, v, shift=False), "blanked"),
        "no <eos>": (lambda p, i, v: _drop_with(p, i, v, eos=False), "<eos> is missing"),
        "per sentence": (lambda p, i, v: _drop_with(p, i, v, per_sequence=True), "per sentence"),
        "divides by the kept length": (lambda p, i, v: _drop_with(p, i, v, denominator_kept=True), "T + 1"),
        "drops the word after it": (lambda p, i, v: _drop_with(p, i + 1 if i >= 0 else i, v), "should be"),
    }),
    checks.check_diagonal_alignment: (diagonal_alignment_ok, {
        "per sentence": (lambda p: checks.ch02._diagonal_share(p, per_sentence=True), "per sentence"),
        "off by one": (lambda p: checks.ch02._diagonal_share(p, offset=1), "off by one"),
        "crossing steps only": (lambda p: checks.ch02._diagonal_share(p, crossing_only=True), "word order changes"),
        "a count": (lambda p: sum(a == t for q in p for t, a in enumerate(q.alignment)), "should be"),
        "counts the <eos> step as a miss": (
            lambda p: sum(a == t for q in p for t, a in enumerate(q.alignment)) / sum(len(q.target) + 1 for q in p),
            "should be"),
    }),
    checks.check_mean_largest_weight: (mean_largest_weight_ok, {
        "1/d_k": (lambda d, s, S, n, seed: _mlw(d, s, S, n, seed, scale_by_d=s), "1/d_k"),
        "the flag ignored": (lambda d, s, S, n, seed: _mlw(d, False, S, n, seed), "not applied"),
        "softmax over the queries": (lambda d, s, S, n, seed: _mlw(d, s, S, n, seed, dim=0), "dim 0"),
        "the mean weight": (lambda d, s, S, n, seed: 1 / S, "1/S"),
        "the largest score": (lambda d, s, S, n, seed: float(torch.randn(n, S, generator=torch.Generator().manual_seed(
            seed)).mul(d**0.5).amax(dim=-1).mean()), "above 1"),
    }),
}


@pytest.mark.parametrize("check", list(QUESTIONS) + list(EXPERIMENTS), ids=lambda f: f.__name__)
def test_a_new_check_is_exported_by_its_chapter_module(check):
    module = {0: checks.ch00, 1: checks.ch01, 2: checks.ch02, 3: checks.ch03}
    assert any(check.__name__ in m.__all__ and getattr(m, check.__name__) is check for m in module.values())


@pytest.mark.parametrize("check", list(QUESTIONS) + list(EXPERIMENTS), ids=lambda f: f.__name__)
def test_a_new_check_reports_a_stub_as_not_attempted(check, monkeypatch, capsys):
    assert_stub_not_attempted(check, stub, monkeypatch, capsys)


@pytest.mark.parametrize("check", list(QUESTIONS), ids=lambda f: f.__name__)
def test_a_question_accepts_its_answer_and_explains_each_wrong_one(check, capsys):
    right, wrong = QUESTIONS[check]
    assert_accepted(check, lambda: right, capsys)
    for answer, word in wrong.items():
        error = rejection(check, lambda answer=answer: answer)
        assert word in str(error), (answer, str(error))


EXPERIMENT_WRONG = wrong_params((check, catalogue) for check, (_, catalogue) in EXPERIMENTS.items())


@pytest.mark.parametrize("check", list(EXPERIMENTS), ids=lambda f: f.__name__)
def test_an_experiment_accepts_its_solution(check, capsys):
    assert_accepted(check, EXPERIMENTS[check][0], capsys)


@pytest.mark.parametrize("check, wrong, hint", EXPERIMENT_WRONG)
def test_a_wrong_experiment_is_rejected_with_a_hint(check, wrong, hint, capsys):
    assert_rejected_with_hint(check, wrong, hint, capsys)


def test_the_mean_largest_weight_check_accepts_any_seed():
    """The reference runs at other seeds: a correct experiment at any seed lies within the tolerance."""
    for seed in (0, 7, 12345):
        checks.check_mean_largest_weight(lambda d, s, S, n, _seed: mean_largest_weight_ok(d, s, S, n, seed))


def test_the_dropped_word_reference_is_the_package_token_accuracy():
    """_dropped_accuracy scores outputs as the chapter's token accuracy does: targets + <eos>, padding 0."""
    _, tgt_vocab = data.toy_translation_vocabs()
    pairs = data.toy_translation(50, 4, 12, seed=3)
    batch = data.make_batch(pairs, *data.toy_translation_vocabs())
    for position in (0, -1, 2):
        rows = []
        for p in pairs:
            ids = tgt_vocab.encode(p.target)
            del ids[position]
            rows.append(ids + [tgt_vocab.eos_id])
        output = torch.zeros_like(batch.tgt_out)
        for b, row in enumerate(rows):
            output[b, : len(row)] = torch.tensor(row)
        real = batch.tgt_out != tgt_vocab.pad_id
        expected = ((output == batch.tgt_out) & real).sum().item() / real.sum().item()
        assert abs(checks.ch01._dropped_accuracy(pairs, position, tgt_vocab) - expected) < 1e-12
