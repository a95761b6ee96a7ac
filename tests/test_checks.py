"""Every exercise check against a catalogue of wrong answers it must reject.

For each check: the reference solution passes, an untouched stub is reported as
"not attempted yet", and every wrong implementation in its catalogue raises an
AssertionError whose hint mentions what is wrong. A check that accepted any of
these would let a broken solution earn the points.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from attention_course import checks
from attention_course.attention import masked_softmax
from attention_course.positional import sinusoidal_encoding

# --------------------------------------------------------------------------- solutions


def softmax_ok(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def weights_ok(q, K):
    return softmax_ok(K @ q / np.sqrt(q.shape[0]))


def context_ok(a, V):
    return a @ V


def attention_ok(Q, K, V):
    A = softmax_ok(Q @ K.T / np.sqrt(Q.shape[-1]))
    return A @ V, A


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- wrong answers


def _naive_softmax(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_axis0(x):
    z = x - x.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _softmax_global(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _softmax_unnormalised(x):
    return np.exp(x - x.max(axis=-1, keepdims=True))


def _softmax_min(x):
    e = np.exp(x - x.min(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_inplace(x):
    x -= x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_no_return(x):
    softmax_ok(x)


SOFTMAX_WRONG = {
    "overflows (no max subtracted)": (_naive_softmax, "max"),
    "normalises over axis 0": (_softmax_axis0, "axis"),
    "normalises the whole matrix": (_softmax_global, "axis=-1"),
    "does not normalise": (_softmax_unnormalised, "should be"),
    "subtracts the minimum": (_softmax_min, "largest"),
    "modifies its input in place": (_softmax_inplace, "in place"),
    "forgets to return": (_softmax_no_return, "return"),
}

WEIGHTS_WRONG = {
    "missing 1/sqrt(E)": (lambda q, K: softmax_ok(K @ q), "sqrt(E)"),
    "divides by E": (lambda q, K: softmax_ok(K @ q / q.shape[0]), "by E"),
    "multiplies by sqrt(E)": (lambda q, K: softmax_ok(K @ q * np.sqrt(q.shape[0])), "multiplied"),
    "no softmax": (lambda q, K: K @ q / np.sqrt(q.shape[0]), "softmax"),
    "uniform weights": (lambda q, K: np.full(K.shape[0], 1.0 / K.shape[0]), "entry"),
    "keys not transposed (crashes)": (lambda q, K: softmax_ok(q @ K / 2), "raised ValueError"),
}

CONTEXT_WRONG = {
    "plain mean": (lambda a, V: V.mean(axis=0), "mean"),
    "plain sum": (lambda a, V: V.sum(axis=0), "sum"),
    "sums over the wrong axis": (lambda a, V: (a[:, None] * V).sum(axis=1), "(S,)"),
    "values transposed (crashes)": (lambda a, V: a @ V.T, "raised ValueError"),
    "weights ignored after the first key": (lambda a, V: V[0], "entry"),
}


def _attention_unscaled(Q, K, V):
    A = softmax_ok(Q @ K.T)
    return A @ V, A


def _attention_axis0(Q, K, V):
    A = _softmax_axis0(Q @ K.T / np.sqrt(Q.shape[-1]))
    return A @ V, A


def _attention_keys_not_transposed(Q, K, V):
    A = softmax_ok(Q @ K / np.sqrt(Q.shape[-1]))  # runs only when E == S
    return A @ V, A


def _attention_swapped(Q, K, V):
    C, A = attention_ok(Q, K, V)
    return A, C


def _attention_uniform(Q, K, V):
    A = np.full((Q.shape[0], K.shape[0]), 1.0 / K.shape[0])
    return A @ V, A


def _attention_mean_values(Q, K, V):
    _, A = attention_ok(Q, K, V)
    return np.broadcast_to(V.mean(axis=0), (Q.shape[0], V.shape[1])), A


def _attention_divided_by_E(Q, K, V):
    A = softmax_ok(Q @ K.T / Q.shape[-1])
    return A @ V, A


def _attention_values_keys_confused(Q, K, V):
    _, A = attention_ok(Q, K, V)
    return A @ K, A


ATTENTION_WRONG = {
    "missing 1/sqrt(d_k)": (_attention_unscaled, "sqrt(E)"),
    "softmax over the wrong axis": (_attention_axis0, "axis"),
    "keys not transposed": (_attention_keys_not_transposed, "transpose"),
    "returns (A, C)": (_attention_swapped, "shape"),
    "uniform weights": (_attention_uniform, "uniform"),
    "context ignores the weights": (_attention_mean_values, "mean"),
    "divides by E": (_attention_divided_by_E, "by E"),
    "weighted sum of the keys": (_attention_values_keys_confused, "context"),
}


# --------------------------------------------------------------------------- chapter 1: solutions and wrong answers


def teacher_forcing_ok(target_ids, bos_id, eos_id):
    bos, eos = torch.tensor([bos_id]), torch.tensor([eos_id])
    return torch.cat([bos, target_ids]), torch.cat([target_ids, eos])


def final_states_ok(states, lengths):
    B = states.shape[0]
    return states[torch.arange(B), lengths - 1]  # (B, H)


def greedy_decode_ok(step, state, bos_id, eos_id, max_len):
    ids, token = [], bos_id
    for _ in range(max_len):
        logits, state = step(token, state)
        token = int(logits.argmax())
        ids.append(token)
        if token == eos_id:
            break
    return ids


def token_accuracy_ok(predictions, targets, pad_id=0):
    real = targets != pad_id
    correct = (predictions == targets) & real
    return correct.sum().item() / real.sum().item()


def _tf_no_shift(target_ids, bos_id, eos_id):
    return target_ids.clone(), torch.cat([target_ids, torch.tensor([eos_id])])


def _tf_no_eos(target_ids, bos_id, eos_id):
    return torch.cat([torch.tensor([bos_id]), target_ids]), target_ids.clone()


def _tf_bos_at_the_end(target_ids, bos_id, eos_id):
    return torch.cat([target_ids, torch.tensor([bos_id])]), torch.cat([target_ids, torch.tensor([eos_id])])


def _tf_labels_shifted_right(target_ids, bos_id, eos_id):
    shifted = torch.cat([torch.tensor([bos_id]), target_ids])
    return shifted, shifted.clone()


def _tf_swapped(target_ids, bos_id, eos_id):
    inputs, labels = teacher_forcing_ok(target_ids, bos_id, eos_id)
    return labels, inputs


def _tf_float(target_ids, bos_id, eos_id):
    inputs = torch.tensor([bos_id] + target_ids.tolist(), dtype=torch.float32)
    return inputs, torch.tensor(target_ids.tolist() + [eos_id])


TEACHER_FORCING_WRONG = {
    "no shift (inputs = target)": (_tf_no_shift, "not shifted"),
    "eos missing": (_tf_no_eos, "<eos>"),
    "bos appended at the end": (_tf_bos_at_the_end, "goes in front"),
    "labels shifted the wrong way (= inputs)": (_tf_labels_shifted_right, "next"),
    "returns (labels, inputs)": (_tf_swapped, "(decoder_inputs, labels)"),
    "float ids": (_tf_float, "torch.long"),
}


def _final_last_column(states, lengths):
    return states[:, -1]


def _final_first_column(states, lengths):
    return states[:, 0]


def _final_off_by_one(states, lengths):
    return states[torch.arange(states.shape[0]), lengths]  # index S for a full-length sequence: IndexError


def _final_off_by_one_gather(states, lengths):
    index = lengths[:, None, None].expand(-1, 1, states.shape[-1])  # (B, 1, H)
    return states.gather(1, index)[:, 0]  # RuntimeError for a full-length sequence


def _final_mean(states, lengths):
    return states.mean(dim=1)


def _final_masked_mean(states, lengths):
    return states.sum(dim=1) / lengths[:, None]


FINAL_STATES_WRONG = {
    "states[:, -1] (padding)": (_final_last_column, "padding"),
    "states[:, 0]": (_final_first_column, "first"),
    "off by one (index lengths, crashes)": (_final_off_by_one, "lengths - 1"),
    "off by one with gather (crashes)": (_final_off_by_one_gather, "lengths - 1"),
    "mean over time": (_final_mean, "mean"),
    "mean over the real tokens": (_final_masked_mean, "mean"),
}


def _greedy_always_bos(step, state, bos_id, eos_id, max_len):
    ids = []
    for _ in range(max_len):
        logits, state = step(bos_id, state)
        ids.append(int(logits.argmax()))
        if ids[-1] == eos_id:
            break
    return ids


def _greedy_no_stop(step, state, bos_id, eos_id, max_len):
    ids, token = [], bos_id
    for _ in range(max_len):
        logits, state = step(token, state)
        token = int(logits.argmax())
        ids.append(token)
    return ids


def _greedy_drops_eos(step, state, bos_id, eos_id, max_len):
    ids, token = [], bos_id
    for _ in range(max_len):
        logits, state = step(token, state)
        token = int(logits.argmax())
        if token == eos_id:
            break
        ids.append(token)
    return ids


def _greedy_feeds_previous_input(step, state, bos_id, eos_id, max_len):
    ids, fed = [], bos_id
    for _ in range(max_len):
        logits, state = step(fed, state)
        prediction = int(logits.argmax())
        fed = ids[-1] if ids else bos_id  # one step late: the previous input, not the prediction
        ids.append(prediction)
        if prediction == eos_id:
            break
    return ids


def _greedy_one_too_many(step, state, bos_id, eos_id, max_len):
    return greedy_decode_ok(step, state, bos_id, eos_id, max_len + 1)


def _greedy_one_too_few(step, state, bos_id, eos_id, max_len):
    return greedy_decode_ok(step, state, bos_id, eos_id, max_len - 1)


def _greedy_state_not_passed(step, state, bos_id, eos_id, max_len):
    ids, token = [], bos_id
    for _ in range(max_len):
        logits, _ = step(token, state)
        token = int(logits.argmax())
        ids.append(token)
        if token == eos_id:
            break
    return ids


GREEDY_WRONG = {
    "feeds bos every time": (_greedy_always_bos, "<bos> at every step"),
    "does not stop at eos": (_greedy_no_stop, "after producing <eos>"),
    "drops the eos": (_greedy_drops_eos, "without the final <eos>"),
    "feeds the previous input": (_greedy_feeds_previous_input, "not the previous input"),
    "one id too many": (_greedy_one_too_many, "max_len"),
    "one id too few": (_greedy_one_too_few, "max_len"),
    "state not passed on": (_greedy_state_not_passed, "state"),
}


def _acc_counts_padding(predictions, targets, pad_id=0):
    return (predictions == targets).float().mean().item()


def _acc_per_sequence(predictions, targets, pad_id=0):
    real = targets != pad_id
    correct = (predictions == targets) & real
    return (correct.sum(dim=1) / real.sum(dim=1)).mean().item()


def _acc_first_token(predictions, targets, pad_id=0):
    return (predictions[:, 0] == targets[:, 0]).float().mean().item()


def _acc_count(predictions, targets, pad_id=0):
    return ((predictions == targets) & (targets != pad_id)).sum().item()


def _acc_whole_tensor(predictions, targets, pad_id=0):
    real = targets != pad_id
    return ((predictions == targets) & real).float() / real.sum()  # not reduced


TOKEN_ACCURACY_WRONG = {
    "counts padding": (_acc_counts_padding, "padding"),
    "averages per sequence, then over the batch": (_acc_per_sequence, "per sequence"),
    "compares only the first token": (_acc_first_token, "first position"),
    "a count instead of a share": (_acc_count, "count"),
    "not reduced to one number": (_acc_whole_tensor, "one number"),
}


# --------------------------------------------------------------------------- chapter 2: solutions and wrong answers


def contexts_ok(weights, states):
    return weights @ states  # (T, S) @ (S, H) -> (T, H)


def additive_scores_ok(s, states, W_q, W_k, v):
    return torch.tanh(W_q @ s + states @ W_k.T) @ v  # (S, A) @ (A,) -> (S,)


def attention_step_ok(s, states, mask, W_q, W_k, v):
    scores = additive_scores_ok(s, states, W_q, W_k, v).masked_fill(~mask, float("-inf"))  # (S,)
    weights = torch.softmax(scores, dim=-1)  # (S,)
    return weights @ states, weights  # (H,), (S,)


def alignment_accuracy_ok(weights, alignment):
    return (weights.argmax(dim=-1) == alignment).float().mean().item()


CONTEXTS_WRONG = {
    "states.T @ weights": (lambda w, h: h.T @ w, "transposed"),
    "weights @ states.T (crashes)": (lambda w, h: w @ h.T, "raised RuntimeError"),
    "one fixed context: the mean of the states": (
        lambda w, h: h.mean(dim=0).expand(w.shape[0], -1), "same context"),
    "one fixed context: the last state": (lambda w, h: h[-1].expand(w.shape[0], -1), "same context"),
    "weights transposed": (lambda w, h: w.T @ h, "transposed"),
    "sums over the target steps": (lambda w, h: (w[:, :, None] * h[None]).sum(dim=0), "over the target steps"),
}

ADDITIVE_WRONG = {
    "missing tanh": (lambda s, h, W_q, W_k, v: (W_q @ s + h @ W_k.T) @ v, "no tanh"),
    "W_q and W_k swapped": (lambda s, h, W_q, W_k, v: torch.tanh(W_k @ s + h @ W_q.T) @ v, "swapped"),
    "tanh applied after v": (lambda s, h, W_q, W_k, v: torch.tanh((W_q @ s + h @ W_k.T) @ v), "after v"),
    "sum instead of v": (lambda s, h, W_q, W_k, v: torch.tanh(W_q @ s + h @ W_k.T).sum(dim=-1), "dot product with v"),
    "softmax applied": (
        lambda s, h, W_q, W_k, v: torch.softmax(additive_scores_ok(s, h, W_q, W_k, v), dim=-1), "not scores"),
    "W_k not transposed (crashes)": (
        lambda s, h, W_q, W_k, v: torch.tanh(W_q @ s + h @ W_k) @ v, "raised RuntimeError"),
}


def _step_mask_ignored(s, states, mask, W_q, W_k, v):
    weights = torch.softmax(additive_scores_ok(s, states, W_q, W_k, v), dim=-1)
    return weights @ states, weights


def _step_mask_inverted(s, states, mask, W_q, W_k, v):
    return attention_step_ok(s, states, ~mask, W_q, W_k, v)


def _step_mask_after_softmax(s, states, mask, W_q, W_k, v):
    weights = torch.softmax(additive_scores_ok(s, states, W_q, W_k, v), dim=-1) * mask  # not renormalised
    return weights @ states, weights


def _step_padding_scored_zero(s, states, mask, W_q, W_k, v):
    scores = additive_scores_ok(s, states, W_q, W_k, v) * mask  # 0 is still a score: exp(0) = 1
    weights = torch.softmax(scores, dim=-1)
    return weights @ states, weights


def _step_minus_large_only_on_first_pad(s, states, mask, W_q, W_k, v):
    scores = additive_scores_ok(s, states, W_q, W_k, v).clone()
    scores[int(mask.sum())] = float("-inf")  # only the first padding position
    weights = torch.softmax(scores, dim=-1)
    return weights @ states, weights


def _step_swapped(s, states, mask, W_q, W_k, v):
    context, weights = attention_step_ok(s, states, mask, W_q, W_k, v)
    return weights, context


ATTENTION_STEP_WRONG = {
    "mask ignored": (_step_mask_ignored, "ignored"),
    "mask inverted": (_step_mask_inverted, "inverted"),
    "mask applied after the softmax, not renormalised": (_step_mask_after_softmax, "renormalising"),
    "padding scored as zeros": (_step_padding_scored_zero, "exp(0)"),
    "only part of the padding masked": (_step_minus_large_only_on_first_pad, "exactly 0"),
    "returns (weights, context)": (_step_swapped, "(context, weights)"),
}

ALIGNMENT_WRONG = {
    "argmax over the wrong axis": (
        lambda w, a: (w.argmax(dim=0) == a).float().mean().item(), "wrong axis"),
    "count instead of share": (lambda w, a: (w.argmax(dim=-1) == a).sum().item(), "count"),
    "compares the max value, not its position": (
        lambda w, a: (w.max(dim=-1).values == a).float().mean().item(), "position"),
    "compares with the step index, not the alignment": (
        lambda w, a: (w.argmax(dim=-1) == torch.arange(w.shape[0])).float().mean().item(), "should be"),
}


# --------------------------------------------------------------------------- chapter 3: solutions and wrong answers


def dot_scores_ok(q, k):
    return q @ k.T  # (L, E) @ (E, S) -> (L, S)


def scaled_dot_scores_ok(q, k):
    return q @ k.T / q.shape[-1] ** 0.5  # (L, S)


def general_scores_ok(q, k, W):
    return q @ W @ k.T  # (L, Eq) @ (Eq, Ek) @ (Ek, S) -> (L, S)


def concat_scores_ok(q, k, W, v):
    L, S = q.shape[0], k.shape[0]
    pairs = torch.cat([q[:, None, :].expand(L, S, -1), k[None, :, :].expand(L, S, -1)], dim=-1)  # (L, S, Eq + Ek)
    return torch.tanh(pairs @ W.T) @ v  # (L, S, A) @ (A,) -> (L, S)


def split_concat_weight_ok(W, Eq):
    return W[:, :Eq], W[:, Eq:]


def masked_softmax_ok(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    row_max = x.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(x - row_max)
    denom = e.sum(dim=-1, keepdim=True)
    return e / denom.clamp_min(1e-30)


def _dot_inplace_transpose(q, k):
    k.t_()  # transposes the caller's key in place
    return q @ k


def _scaled_inplace(q, k):
    q /= q.shape[-1] ** 0.5  # divides the caller's query
    return q @ k.T


DOT_SCORES_WRONG = {
    "keys not transposed (square case)": (lambda q, k: q @ k, "k transposed"),
    "result transposed": (lambda q, k: k @ q.T, "result is transposed"),
    "elementwise product": (lambda q, k: q * k, "elementwise"),
    "softmax applied": (lambda q, k: torch.softmax(q @ k.T, dim=-1), "not scores"),
    "scaled": (lambda q, k: q @ k.T / q.shape[-1] ** 0.5, "next exercise"),
    "transposes k in place": (_dot_inplace_transpose, "in place"),
}

SCALED_DOT_WRONG = {
    "keys not transposed (square case)": (lambda q, k: q @ k / q.shape[-1] ** 0.5, "k transposed"),
    "result transposed": (lambda q, k: k @ q.T / q.shape[-1] ** 0.5, "result is transposed"),
    "divides by E": (lambda q, k: q @ k.T / q.shape[-1], "by E ="),
    "divides by sqrt(S)": (lambda q, k: q @ k.T / k.shape[0] ** 0.5, "sqrt(S)"),
    "divides by sqrt(L)": (lambda q, k: q @ k.T / q.shape[0] ** 0.5, "sqrt(L)"),
    "no scaling": (lambda q, k: q @ k.T, "did not divide"),
    "multiplies by sqrt(E)": (lambda q, k: q @ k.T * q.shape[-1] ** 0.5, "multiplied"),
    "softmax applied": (lambda q, k: torch.softmax(q @ k.T / q.shape[-1] ** 0.5, dim=-1), "not scores"),
    "divides q in place": (_scaled_inplace, "in place"),
}

GENERAL_WRONG = {
    "W transposed (square W)": (lambda q, k, W: q @ W.T @ k.T, "W transposed"),
    "k W q order": (lambda q, k, W: k @ W @ q.T, "on the left"),
    "result transposed": (lambda q, k, W: (q @ W @ k.T).T, "result is transposed"),
    "forgets W": (lambda q, k, W: q @ k.T, "W is not used"),
    "elementwise q * W": (lambda q, k, W: (q * W) @ k.T, "elementwise"),
}


def _concat_wrong_order(q, k, W, v):
    L, S = q.shape[0], k.shape[0]
    pairs = torch.cat([k[None, :, :].expand(L, S, -1), q[:, None, :].expand(L, S, -1)], dim=-1)  # [k; q]
    return torch.tanh(pairs @ W.T) @ v


def _concat_pre(q, k, W):
    L, S = q.shape[0], k.shape[0]
    pairs = torch.cat([q[:, None, :].expand(L, S, -1), k[None, :, :].expand(L, S, -1)], dim=-1)
    return pairs @ W.T  # (L, S, A)


def _concat_query_only(q, k, W, v):
    Eq = q.shape[-1]
    per_query = torch.tanh(q @ W[:, :Eq].T) @ v  # (L,)
    return per_query[:, None].expand(-1, k.shape[0])  # the same score for every key


CONCAT_WRONG = {
    "[k; q] order": (_concat_wrong_order, "you concatenated [k; q]"),
    "missing tanh": (lambda q, k, W, v: _concat_pre(q, k, W) @ v, "no tanh"),
    "tanh after v": (lambda q, k, W, v: torch.tanh(_concat_pre(q, k, W) @ v), "after v"),
    "only the query's block": (_concat_query_only, "same score"),
    "sum instead of v": (lambda q, k, W, v: torch.tanh(_concat_pre(q, k, W)).sum(dim=-1), "summed the A features"),
    "softmax applied": (lambda q, k, W, v: torch.softmax(concat_scores_ok(q, k, W, v), dim=-1), "not scores"),
}

SPLIT_WRONG = {
    "returns (W_k, W_q)": (lambda W, Eq: (W[:, Eq:], W[:, :Eq]), "(W_k, W_q)"),
    "key block first": (lambda W, Eq: (W[:, W.shape[1] - Eq:], W[:, : W.shape[1] - Eq]), "first Eq columns"),
    "splits the rows": (lambda W, Eq: (W[:Eq], W[Eq:]), "dim=1"),
    "blocks transposed": (lambda W, Eq: (W[:, :Eq].T, W[:, Eq:].T), "looks transposed"),
    "not a pair": (lambda W, Eq: W[:, :Eq], "pair"),
}


def _ms_inverted(scores, mask):
    return masked_softmax_ok(scores, ~mask)


def _ms_after_softmax(scores, mask):
    return torch.softmax(scores, dim=-1) * mask  # not renormalised


def _ms_nan(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # NaN on a fully masked row


def _ms_minus_1e9(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)  # uniform on a fully masked row


def _ms_unstable(scores, mask):
    e = torch.exp(scores) * mask  # exp(1000) = inf
    denom = e.sum(dim=-1, keepdim=True)
    return torch.where(denom > 0, e / denom, torch.zeros_like(e))


def _ms_wrong_axis(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    col_max = x.amax(dim=-2, keepdim=True)
    col_max = torch.where(torch.isfinite(col_max), col_max, torch.zeros_like(col_max))
    e = torch.exp(x - col_max)
    return e / e.sum(dim=-2, keepdim=True).clamp_min(1e-30)


def _ms_inplace(scores, mask):
    scores.masked_fill_(~mask, float("-inf"))
    return masked_softmax_ok(scores, mask)


def _ms_ignored(scores, mask):
    return torch.softmax(scores, dim=-1)


MASKED_SOFTMAX_WRONG = {
    "mask inverted": (_ms_inverted, "mask is inverted"),
    "masked after the softmax, not renormalised": (_ms_after_softmax, "renormalising"),
    "NaN on a fully masked row": (_ms_nan, "came out NaN"),
    "-1e9 fill: uniform on a fully masked row": (_ms_minus_1e9, "fully masked"),
    "exp overflows on large scores": (_ms_unstable, "overflow"),
    "softmax over the wrong axis": (_ms_wrong_axis, "wrong axis"),
    "masks the scores in place": (_ms_inplace, "in place"),
    "mask ignored": (_ms_ignored, "mask was ignored"),
}


# --------------------------------------------------------------------------- chapter 4: solutions and wrong answers


def topk_hard_ok(scores, values, k):
    top = scores.topk(k, dim=-1).indices  # (L, k)
    weights = torch.zeros_like(scores).scatter(-1, top, 1.0)  # (L, S), 0 or 1
    return weights @ values / k, weights  # (L, Ev), (L, S)


def gumbel_argmax_ok(logits, u):
    return (logits - torch.log(-torch.log(u))).argmax(dim=-1)  # (B,)


def reinforce_ok(log_probs, picked, rewards, baseline):
    B = log_probs.shape[0]
    advantage = (rewards - baseline).detach()  # (B,), a constant weight
    return -(advantage * log_probs[torch.arange(B), picked]).mean()


def straight_through_ok(logits, u, tau):
    y = (logits - torch.log(-torch.log(u))) / tau  # (B, S)
    soft = torch.softmax(y, dim=-1)
    hard = torch.nn.functional.one_hot(y.argmax(dim=-1), y.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def _topk_weights(scores, k, **kw):
    return torch.zeros_like(scores).scatter(-1, scores.topk(k, dim=-1, **kw).indices, 1.0)


def _topk_sum(scores, values, k):
    w = _topk_weights(scores, k)
    return w @ values, w


def _topk_wrong_axis(scores, values, k):
    w = torch.zeros_like(scores).scatter(0, scores.topk(k, dim=0).indices, 1.0)
    return w @ values / k, w


def _topk_lowest(scores, values, k):
    w = _topk_weights(scores, k, largest=False)
    return w @ values / k, w


def _topk_softmax(scores, values, k):
    w = torch.softmax(scores, dim=-1)
    return w @ values, w


def _topk_k1(scores, values, k):
    return topk_hard_ok(scores, values, 1)


TOPK_WRONG = {
    "sum instead of mean": (_topk_sum, "summed"),
    "top-k over the wrong axis": (_topk_wrong_axis, "each column"),
    "lowest scores": (_topk_lowest, "lowest"),
    "softmax weights": (_topk_softmax, "softmax weights"),
    "k fixed to 1": (_topk_k1, "chose 1 key"),
    "returns (weights, output)": (lambda s, v, k: topk_hard_ok(s, v, k)[::-1], "(output, weights)"),
}

GUMBEL_WRONG = {
    "adds log(-log u) (wrong sign)": (
        lambda logits, u: (logits + torch.log(-torch.log(u))).argmax(dim=-1), "wrong sign"),
    "adds u directly": (lambda logits, u: (logits + u).argmax(dim=-1), "uniform u itself"),
    "no noise": (lambda logits, u: logits.argmax(dim=-1), "ignored the noise"),
    "argmin": (lambda logits, u: (logits - torch.log(-torch.log(u))).argmin(dim=-1), "you took the argmin"),
    "keepdim": (lambda logits, u: gumbel_argmax_ok(logits, u)[:, None], "keepdim"),
    "float indices": (lambda logits, u: gumbel_argmax_ok(logits, u).float(), "torch.long"),
    "samples 1 - u": (lambda logits, u: (logits - torch.log(-torch.log1p(-u))).argmax(dim=-1), "exactly"),
    "halves the logits": (lambda logits, u: (logits / 2 - torch.log(-torch.log(u))).argmax(dim=-1), "frequencies"),
}


def _rf_not_detached(log_probs, picked, rewards, baseline):
    B = log_probs.shape[0]
    return -((rewards - baseline) * log_probs[torch.arange(B), picked]).mean()


def _rf_picked_lp(log_probs, picked):
    return log_probs[torch.arange(log_probs.shape[0]), picked]


REINFORCE_WRONG = {
    "wrong sign": (lambda lp, p, r, b: -reinforce_ok(lp, p, r, b), "sign is wrong"),
    "no baseline": (lambda lp, p, r, b: -(r.detach() * _rf_picked_lp(lp, p)).mean(), "no baseline"),
    "sum instead of mean": (
        lambda lp, p, r, b: -((r - b).detach() * _rf_picked_lp(lp, p)).sum(), "summed over the batch"),
    "probabilities instead of log-probabilities": (
        lambda lp, p, r, b: -((r - b).detach() * _rf_picked_lp(lp, p).exp()).mean(), "exp(log_probs)"),
    "advantage not detached": (_rf_not_detached, "reached the rewards"),
    "log_probs[:, picked]": (lambda lp, p, r, b: -((r - b).detach() * lp[:, p]).mean(), "wrong entries"),
    "the most probable key": (lambda lp, p, r, b: -((r - b).detach() * lp.max(dim=-1).values).mean(), "picked one"),
    "returns a float": (lambda lp, p, r, b: reinforce_ok(lp, p, r, b).item(), "backward"),
}


def _st_soft(logits, u, tau):
    return torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)


def _st_hard_no_grad(logits, u, tau):
    y = (logits - torch.log(-torch.log(u))) / tau
    return torch.nn.functional.one_hot(y.argmax(dim=-1), y.shape[-1]).float()


def _st_wrong_sign(logits, u, tau):
    y = (logits + torch.log(-torch.log(u))) / tau  # subtracts the Gumbel noise
    soft = torch.softmax(y, dim=-1)
    hard = torch.nn.functional.one_hot(y.argmax(dim=-1), y.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def _st_detach_wrong_term(logits, u, tau):
    soft = _st_soft(logits, u, tau)
    hard = _st_hard_no_grad(logits, u, tau)
    return soft - hard.detach() + hard


STRAIGHT_THROUGH_WRONG = {
    "returns the soft sample": (_st_soft, "soft sample"),
    "hard one-hot with no gradient": (_st_hard_no_grad, "no gradient"),
    "forgets tau": (lambda logits, u, tau: straight_through_ok(logits, u, 1.0), "without the temperature"),
    "wrong-sign noise": (_st_wrong_sign, "wrong sign"),
    "detaches the wrong term": (_st_detach_wrong_term, "soft - hard.detach() + hard"),
}


# --------------------------------------------------------------------------- chapter 5: solutions and wrong answers


def self_attention_ok(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (B, T, E), (B, T, E), (B, T, Ev)
    weights = torch.softmax(Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, dim=-1)  # (B, T, T)
    return weights @ V, weights  # (B, T, Ev), (B, T, T)


def causal_mask_ok(T):
    return torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)


def padding_mask_ok(lengths, S):
    return torch.arange(S)[None, :] < lengths[:, None]  # (1, S) < (B, 1) -> (B, S)


def decoder_mask_ok(lengths, T):
    return padding_mask_ok(lengths, T)[:, None, :] & causal_mask_ok(T)  # (B, 1, T) & (T, T) -> (B, T, T)


def is_permutation_equivariant_ok(fn, X, perm):
    return torch.allclose(fn(X[:, perm]), fn(X)[:, perm])


def _sa(X, W_q, W_k, W_v, *, scale=None, dim=-1, values=None, transpose=True):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scale = Q.shape[-1] ** 0.5 if scale is None else scale
    weights = torch.softmax((Q @ (K.transpose(-2, -1) if transpose else K)) / scale, dim=dim)
    return weights @ (V if values is None else values(X, K)), weights


def _sa_batch_T(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    with warnings.catch_warnings():  # torch deprecates .T on 3-D tensors (and may make it an error: caught too)
        warnings.simplefilter("ignore", UserWarning)
        weights = torch.softmax(Q @ K.T / Q.shape[-1] ** 0.5, dim=-1)  # .T reverses all three axes of K
    return weights @ V, weights


SELF_ATTENTION_WRONG = {
    "no scaling": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scale=1.0), "did not divide"),
    "scaled by sqrt(D)": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scale=X.shape[-1] ** 0.5), "sqrt(D)"),
    "scaled by E": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, scale=Wq.shape[-1]), "divided by E ="),
    "softmax over the query axis (dim=1)": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, dim=1), "query axis"),
    "K as the values": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, values=lambda X, K: K), "K as the values"),
    "X as the values": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, values=lambda X, K: X), "X itself"),
    "K not transposed (runs when E = T)": (
        lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv, transpose=False), "K transposed"),
    "K.T on a batch": (_sa_batch_T, "transpose(-2, -1)"),
    "weights of one sequence": (lambda X, Wq, Wk, Wv: (_sa(X, Wq, Wk, Wv)[0], _sa(X, Wq, Wk, Wv)[1][0]),
                                "sequence 0 only"),
    "returns (weights, output)": (lambda X, Wq, Wk, Wv: _sa(X, Wq, Wk, Wv)[::-1], "(output, weights)"),
}

CAUSAL_MASK_WRONG = {
    "upper triangle (the future)": (lambda T: torch.ones(T, T, dtype=torch.bool).triu(), "above the diagonal"),
    "diagonal excluded": (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), "diagonal is False"),
    "float instead of bool": (lambda T: torch.ones(T, T).tril(), "dtype torch.float32"),
    "1 = blocked (logical not)": (lambda T: ~causal_mask_ok(T), "inverted"),
    "positions compared elementwise, (T,)": (lambda T: torch.arange(T) >= torch.arange(T), "shape (T,)"),
    "one extra row and column": (lambda T: causal_mask_ok(T + 1), "should have shape"),
}

PADDING_MASK_WRONG = {
    "inverted": (lambda lengths, S: ~padding_mask_ok(lengths, S), "inverted"),
    "off by one (<=)": (lambda lengths, S: torch.arange(S)[None, :] <= lengths[:, None], "off by one"),
    "returns (S, B)": (lambda lengths, S: padding_mask_ok(lengths, S).T, "transpose"),
    "float dtype": (lambda lengths, S: padding_mask_ok(lengths, S).float(), "dtype torch.float32"),
    "ignores the lengths": (lambda lengths, S: torch.ones(len(lengths), S, dtype=torch.bool), "ignores the lengths"),
}


def _dm_parts(lengths, T):
    return padding_mask_ok(lengths, T), causal_mask_ok(T)  # (B, T), (T, T)


DECODER_MASK_WRONG = {
    "or instead of and": (lambda lengths, T: _dm_parts(lengths, T)[0][:, None, :] | causal_mask_ok(T), "| (or)"),
    "causal only, (T, T)": (lambda lengths, T: causal_mask_ok(T), "causal mask alone"),
    "causal only, repeated per sequence": (
        lambda lengths, T: causal_mask_ok(T).expand(len(lengths), T, T), "causal mask alone"),
    "padding only": (lambda lengths, T: padding_mask_ok(lengths, T)[:, None, :].expand(-1, T, T), "padding mask alone"),
    "padding on the queries (B, T, 1)": (
        lambda lengths, T: padding_mask_ok(lengths, T)[:, :, None] & causal_mask_ok(T), "applied to the queries"),
    "padding on queries and keys": (
        lambda lengths, T: padding_mask_ok(lengths, T)[:, :, None] & decoder_mask_ok(lengths, T),
        "applied to the queries"),
    "(B, T) padding against (T, T) causal": (
        lambda lengths, T: padding_mask_ok(lengths, T) & causal_mask_ok(T), "query axis"),
    "float dtype": (lambda lengths, T: decoder_mask_ok(lengths, T).float(), "dtype torch.float32"),
    "causal part upside down (triu)": (
        lambda lengths, T: _dm_parts(lengths, T)[0][:, None, :] & causal_mask_ok(T).T, "in the future of query"),
    "padding off by one (<=)": (
        lambda lengths, T: (torch.arange(T)[None, None, :] <= lengths[:, None, None]) & causal_mask_ok(T),
        "padding (sequence"),
}

EQUIVARIANCE_WRONG = {
    "invariance instead of equivariance": (
        lambda fn, X, perm: torch.allclose(fn(X[:, perm]), fn(X)), "invariance"),
    "inverse permutation on the output": (
        lambda fn, X, perm: torch.allclose(fn(X[:, perm]), fn(X)[:, perm.argsort()]), "inverse permutation"),
    "exact comparison": (lambda fn, X, perm: torch.equal(fn(X[:, perm]), fn(X)[:, perm]), "torch.allclose"),
    "permutes the batch axis": (
        lambda fn, X, perm: torch.allclose(fn(X[perm]), fn(X)[perm]), "the tokens are along dim 1"),
    "always True": (lambda fn, X, perm: True, "every function"),
    "entrywise ==": (lambda fn, X, perm: fn(X[:, perm]) == fn(X)[:, perm], "one bool"),
}


# --------------------------------------------------------------------------- chapter 6: solutions and wrong answers


def split_heads_ok(x, num_heads):
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, D/H)


def merge_heads_ok(x):
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, H*Dh)


def mhsa_ok(X, W_q, W_k, W_v, W_o, num_heads):
    Q, K, V = (split_heads_ok(X @ W, num_heads) for W in (W_q, W_k, W_v))  # (B, H, T, D/H)
    weights = torch.softmax(Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5, dim=-1)  # (B, H, T, T)
    return merge_heads_ok(weights @ V) @ W_o, weights  # (B, T, D), (B, H, T, T)


def mha_parameter_count_ok(d_model, num_heads, bias=True):
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


def _split_dims(x, H):
    B, T, D = x.shape
    return B, T, D // H


def _merge_transpose_inplace(x):
    B, H, T, Dh = x.shape
    return x.transpose_(1, 2).reshape(B, T, H * Dh)  # transpose_ rearranges the caller's tensor


SPLIT_HEADS_WRONG = {
    "plain reshape to (B, H, T, D/H)": (
        lambda x, H: x.reshape(x.shape[0], H, x.shape[1], x.shape[2] // H), "straight to (B, H, T, D/H)"),
    "no transpose, (B, T, H, D/H)": (lambda x, H: x.view(*x.shape[:2], H, x.shape[2] // H), "behind the time axis"),
    "every H-th feature": (
        lambda x, H: x.view(*x.shape[:2], x.shape[2] // H, H).permute(0, 3, 1, 2), "every H-th feature"),
    "D/H heads of H features": (lambda x, H: x.view(*x.shape[:2], x.shape[2] // H, H).transpose(1, 2), "heads of"),
    "heads in front of the batch": (
        lambda x, H: x.view(*x.shape[:2], H, x.shape[2] // H).permute(2, 0, 1, 3), "in front of the batch axis"),
    "heads folded into the batch": (
        lambda x, H: split_heads_ok(x, H).reshape(-1, x.shape[1], x.shape[2] // H), "folded the heads"),
    "returns x unsplit": (lambda x, H: x, "unsplit"),
    "D / H, a float (crashes)": (lambda x, H: x.view(*x.shape[:2], H, x.shape[2] / H).transpose(1, 2), "D // H"),
}

MERGE_HEADS_WRONG = {
    "reshape without the transpose": (lambda x: x.reshape(x.shape[0], x.shape[2], -1), "straight to (B, T, H·E)"),
    "heads interleaved": (lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1), "interleaved"),
    "sum over the heads": (lambda x: x.sum(dim=1), "you summed the heads"),
    "mean over the heads": (lambda x: x.mean(dim=1), "you averaged the heads"),
    "concatenated along time": (lambda x: torch.cat(x.unbind(dim=1), dim=1), "along the time axis"),
    "transposed, not reshaped": (lambda x: x.transpose(1, 2), "not concatenated"),
    "time and features merged per head": (lambda x: x.reshape(x.shape[0], x.shape[1], -1), "time and feature axes"),
    ".view after .transpose (crashes)": (lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1), "use .reshape"),
    "transpose_ in place": (_merge_transpose_inplace, "in place"),
}


def _mhsa(X, W_q, W_k, W_v, W_o, H, *, scale=None, dim=-1, split=split_heads_ok, merge=merge_heads_ok,
          transpose=True, values=None):
    Q, K = split(X @ W_q, H), split(X @ W_k, H)  # (B, H, T, D/H)
    V = split(X @ W_v if values is None else values(X), H)
    scale = Q.shape[-1] ** 0.5 if scale is None else scale
    weights = torch.softmax(Q @ (K.transpose(-2, -1) if transpose else K) / scale, dim=dim)  # (B, H, T, T)
    return merge(weights @ V) @ W_o, weights


def _mhsa_concat_weights(X, W_q, W_k, W_v, W_o, H):
    _, weights = mhsa_ok(X, W_q, W_k, W_v, W_o, H)
    return merge_heads_ok(weights) @ W_o, weights  # (B, T, H*T) @ (D, D): runs only when H*T = D


def _mhsa_averaged(X, W_q, W_k, W_v, W_o, H):
    out, weights = mhsa_ok(X, W_q, W_k, W_v, W_o, H)
    return out, weights.mean(dim=1)  # (B, T, T), nn.MultiheadAttention's default


def _strided_split(x, H):
    B, T, D = x.shape
    return x.view(B, T, D // H, H).permute(0, 3, 1, 2)


MHSA_WRONG = {
    "concatenates the heads' attention weights": (_mhsa_concat_weights, "attention *weights*"),
    "no output projection": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, torch.eye(X.shape[-1]), H),
                             "no output projection"),
    "scaled by sqrt(D)": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, scale=X.shape[-1] ** 0.5),
                          "the model width"),
    "not scaled": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, scale=1.0), "did not divide"),
    "softmax over the queries": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, dim=2), "over the queries"),
    "softmax over the heads": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, dim=1), "over the heads"),
    "no split: one head, weights (B, 1, T, T)": (
        lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, 1), "one head of full width"),
    "no split: one head, weights (B, T, T)": (
        lambda X, Wq, Wk, Wv, Wo, H: (lambda o, w: (o, w[:, 0]))(*_mhsa(X, Wq, Wk, Wv, Wo, 1)),
        "one head of full width"),
    "heads' weights averaged": (_mhsa_averaged, "averaged the heads' weights"),
    "split with a plain reshape": (
        lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, split=lambda t, H: t.reshape(
            t.shape[0], H, t.shape[1], -1)), "plain reshape to (B, H, T, D/H)"),
    "strided split": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, split=_strided_split),
                      "every H-th feature"),
    "merged without the transpose": (
        lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, merge=lambda t: t.reshape(
            t.shape[0], t.shape[2], -1)), "merged with a plain reshape"),
    "W_o transposed": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo.T, H), "W_o is used transposed"),
    "K not transposed (runs when D/H = T)": (
        lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, transpose=False), "not by K transposed"),
    "X as the values": (lambda X, Wq, Wk, Wv, Wo, H: _mhsa(X, Wq, Wk, Wv, Wo, H, values=lambda X: X), "X itself"),
    "returns (weights, output)": (lambda *args: mhsa_ok(*args)[::-1], "(output, weights)"),
}

PARAM_COUNT_WRONG = {
    "scales with H": (lambda D, H, bias: H * mha_parameter_count_ok(D, H, bias), "does not depend on H"),
    "one head's share": (lambda D, H, bias: mha_parameter_count_ok(D, H, bias) // H, "one head's share"),
    "forgets W_o": (lambda D, H, bias: 3 * D * D + (3 * D if bias else 0), "output projection W_o"),
    "forgets the biases": (lambda D, H, bias: 4 * D * D, "left out the biases"),
    "ignores bias=False": (lambda D, H, bias: 4 * D * D + 4 * D, "bias=False"),
    "W_o without a bias": (lambda D, H, bias: 4 * D * D + (3 * D if bias else 0), "W_o has a bias too"),
    "H heads of (D/H)×(D/H)": (lambda D, H, bias: 4 * H * (D // H) ** 2 + (4 * D if bias else 0), "D×(D/H)"),
    "D² + D, one projection": (lambda D, H, bias: D * D + D, "should be"),
    "a fraction": (lambda D, H, bias: 4 * D * D / 3 + 1, "whole number"),
    "forgets to return": (lambda D, H, bias: None, "return"),
}

# --------------------------------------------------------------------------- chapter 7: solutions and wrong answers


def sinusoidal_encoding_ok(num_positions, d_model):
    p = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    pe = torch.zeros(num_positions, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(p * omega), torch.cos(p * omega)
    return pe  # (P, D)


def rotate_pairs_ok(x):
    T, E = x.shape[-2:]
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)  # (T, E/2)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, E/2)
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)  # (..., T, E)


def adds_distinct_positions_ok(add_pe, B, T, D):
    added = add_pe(torch.zeros(B, T, D))  # (B, T, D)
    same_for_every_sequence = torch.allclose(added, added[:1].expand_as(added))
    distinct = all(not torch.allclose(added[0, t], added[0, u]) for t in range(T) for u in range(t + 1, T))
    return same_for_every_sequence and distinct


def shift_matrix_ok(k, d_model):
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    i = torch.arange(0, d_model, 2)
    M[i, i], M[i, i + 1], M[i + 1, i], M[i + 1, i + 1] = c, s, -s, c  # sin(a + b), cos(a + b)
    return M  # (D, D)


def _pe(P, D, *, base=10000.0, first=0, exponent=lambda i, D: -2 * i / D, layout="interleaved", swap=False,
        per_feature=False):
    p = torch.arange(first, first + P, dtype=torch.float64)[:, None]  # (P, 1)
    if per_feature:
        j = torch.arange(D, dtype=torch.float64)
        angles = p * base ** (-j / D)  # (P, D): every feature its own frequency
        return torch.where(j % 2 == 0, angles.sin(), angles.cos())
    angles = p * base ** exponent(torch.arange(D // 2, dtype=torch.float64), D)  # (P, D/2)
    a, b = (angles.cos(), angles.sin()) if swap else (angles.sin(), angles.cos())
    if layout == "halves":
        return torch.cat([a, b], dim=-1)
    return torch.stack([a, b], dim=-1).flatten(-2)  # (P, D)


SINUSOIDAL_WRONG = {
    "sin and cos swapped": (lambda P, D: _pe(P, D, swap=True), "swapped"),
    "exponent i/D": (lambda P, D: _pe(P, D, exponent=lambda i, D: -i / D), "you used ω_i = 10000^(-i/D)"),
    "a frequency per feature": (lambda P, D: _pe(P, D, per_feature=True), "share one frequency"),
    "sines, then cosines": (lambda P, D: _pe(P, D, layout="halves"), "all the sines first"),
    "base 1000": (lambda P, D: _pe(P, D, base=1000.0), "not 1000"),
    "positions from 1": (lambda P, D: _pe(P, D, first=1), "start at 1"),
    "frequencies grow": (lambda P, D: _pe(P, D, exponent=lambda i, D: 2 * i / D), "grow with i"),
    "transposed, (D, P)": (lambda P, D: _pe(P, D).T, "transposed"),
    "sines only, (P, D/2)": (lambda P, D: _pe(P, D)[:, 0::2], "should have shape"),
}


def _rope(x, *, sign=1.0, first=0, exponent=lambda i, E: -2 * i / E, same_angle=False):
    T, E = x.shape[-2:]
    p = torch.arange(first, first + T, dtype=torch.float64)[:, None]  # (T, 1)
    omega = torch.ones(E // 2) if same_angle else 10000.0 ** exponent(torch.arange(E // 2, dtype=torch.float64), E)
    angles = sign * p * omega  # (T, E/2)
    cos, sin = angles.cos().float(), angles.sin().float()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


def _rope_rotate_half(x):
    T, E = x.shape[-2:]
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)  # (T, E/2)
    cos, sin = torch.cat([angles.cos()] * 2, dim=-1), torch.cat([angles.sin()] * 2, dim=-1)  # (T, E)
    x1, x2 = x[..., : E // 2], x[..., E // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin  # Hugging Face's rotate_half


def _rope_in_place(x):
    T, E = x.shape[-2:]
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2].clone(), x[..., 1::2].clone()
    x[..., 0::2] = even * cos - odd * sin  # writes into the caller's tensor
    x[..., 1::2] = even * sin + odd * cos
    return x


def _rope_shape_1(x):
    T, E = x.shape[1], x.shape[-1]  # T taken from dim 1: right only for (B, T, E)
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


def _rope_no_sin(x):
    T, E = x.shape[-2:]
    cos = (torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)).cos()  # (T, E/2)
    return torch.stack([x[..., 0::2] * cos, x[..., 1::2] * cos], dim=-1).flatten(-2)


def _rope_wrong_partner(x):
    T, E = x.shape[-2:]
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - even * sin, odd * sin + odd * cos], dim=-1).flatten(-2)  # no mixing


def _rope_reflection(x):
    T, E = x.shape[-2:]
    angles = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, E, 2) / E)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos + odd * sin, even * sin - odd * cos], dim=-1).flatten(-2)  # a reflection


ROTATE_WRONG = {
    "rotates the other way": (lambda x: _rope(x, sign=-1.0), "other way"),
    "rotate_half layout (i, i + E/2)": (_rope_rotate_half, "rotate_half"),
    "positions from 1": (lambda x: _rope(x, first=1), "start at 1"),
    "one angle for every pair": (lambda x: _rope(x, same_angle=True), "same angle"),
    "exponent i/E": (lambda x: _rope(x, exponent=lambda i, E: -i / E), "you used ω_i = 10000^(-i/E)"),
    "adds the sinusoidal encoding": (lambda x: x + sinusoidal_encoding(*x.shape[-2:]), "added the sinusoidal"),
    "no sin terms": (_rope_no_sin, "left out the sin terms"),
    "sin term with the wrong feature": (_rope_wrong_partner, "length of every pair"),
    "in place": (_rope_in_place, "in place"),
    "T from dim 1": (_rope_shape_1, "not x.shape[1]"),
    "a reflection": (_rope_reflection, "should be"),
}


def _ad_added(add_pe, B, T, D):
    return add_pe(torch.zeros(B, T, D))


def _ad_same(a):
    return torch.allclose(a, a[:1].expand_as(a))


def _ad_distinct(v):
    return all(not torch.allclose(v[t], v[u]) for t in range(len(v)) for u in range(t + 1, len(v)))


ADDS_DISTINCT_WRONG = {
    "only checks that the positions differ": (
        lambda add_pe, B, T, D: _ad_distinct(_ad_added(add_pe, B, T, D)[0]), "only checked that the positions"),
    "only checks that the sequences agree": (
        lambda add_pe, B, T, D: _ad_same(_ad_added(add_pe, B, T, D)), "only checked that every sequence"),
    "axes swapped": (
        lambda add_pe, B, T, D: (lambda a: _ad_distinct(a[:, 0]) and torch.allclose(a, a[:, :1].expand_as(a)))(
            _ad_added(add_pe, B, T, D)), "axes are swapped"),
    "anything added": (
        lambda add_pe, B, T, D: bool(_ad_added(add_pe, B, T, D).abs().sum() > 0), "anything was added"),
    "neighbours only": (
        lambda add_pe, B, T, D: (lambda a: _ad_same(a) and all(
            not torch.allclose(a[0, t], a[0, t + 1]) for t in range(T - 1)))(_ad_added(add_pe, B, T, D)),
        "only some positions"),
    "first two positions only": (
        lambda add_pe, B, T, D: (lambda a: _ad_same(a) and not torch.allclose(a[0, 0], a[0, 1]))(
            _ad_added(add_pe, B, T, D)), "only some positions"),
    "always True": (lambda add_pe, B, T, D: True, "True for every add_pe"),
    "entrywise comparison": (
        lambda add_pe, B, T, D: (lambda a: a == a[:1])(_ad_added(add_pe, B, T, D)), "one bool"),
    "feeds sequence-first zeros (T, B, D)": (
        lambda add_pe, B, T, D: adds_distinct_positions_ok(lambda x: add_pe(x), T, B, D), "batch-first input"),
    ".numpy() on a learned embedding's output": (
        lambda add_pe, B, T, D: (lambda a: bool(np.allclose(a, a[:1])))(_ad_added(add_pe, B, T, D).numpy()),
        ".detach() it before .numpy()"),
}


def _blocks(k, D, *, sign=1.0, halves=False, omega=None):
    omega = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D) if omega is None else omega
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    M = torch.zeros(D, D, dtype=torch.float64)
    i = torch.arange(D // 2)
    a, b = (i, i + D // 2) if halves else (2 * i, 2 * i + 1)
    M[a, a], M[a, b], M[b, a], M[b, b] = c, sign * s, -sign * s, c
    return M


SHIFT_WRONG = {
    "textbook rotation [[cos, -sin], [sin, cos]]": (lambda k, D: _blocks(k, D, sign=-1.0), "M_{-k}"),
    "rows convention, PE(p + k) = PE(p) M": (lambda k, D: shift_matrix_ok(k, D).T, "M_{-k}"),
    "one angle k for every pair": (lambda k, D: _blocks(k, D, omega=torch.ones(D // 2, dtype=torch.float64)),
                                   "same angle k"),
    "forgets k": (lambda k, D: _blocks(1, D), "not ω_i"),
    "pairs (i, i + D/2)": (lambda k, D: _blocks(k, D, halves=True), "(i, i + D/2)"),
    "the identity": (lambda k, D: torch.eye(D), "identity only for k = 0"),
    "exponent i/D": (lambda k, D: _blocks(k, D, omega=10000.0 ** (-torch.arange(D // 2, dtype=torch.float64) / D)),
                     "you used ω_i = 10000^(-i/D)"),
}


# --------------------------------------------------------------------------- chapter 8: solutions and wrong answers


def layer_norm_ok(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1): divide by D
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def feed_forward_ok(x, W1, b1, W2, b2):
    return torch.relu(x @ W1 + b1) @ W2 + b2  # (B, T, D) -> (B, T, F) -> (B, T, D)


def encoder_block_ok(x, attn, ff, norm1, norm2, mask):
    attended = attn(x, x, x, key_padding_mask=~mask)[0]  # (B, T, D); PyTorch's mask: True = ignore
    x = norm1(x + attended)
    return norm2(x + ff(x))


def pre_norm_block_ok(x, attn, ff, norm1, norm2, mask):
    h = norm1(x)
    x = x + attn(h, h, h, key_padding_mask=~mask)[0]
    return x + ff(norm2(x))


def _ln_with(x, gamma, beta, eps, *, dim=-1, unbiased=False, eps_inside=True, center=True, keepdim=True):
    mean = x.mean(dim=dim, keepdim=keepdim) if center else 0.0
    var = x.var(dim=dim, keepdim=keepdim, unbiased=unbiased)
    return gamma * (x - mean) / ((var + eps).sqrt() if eps_inside else var.sqrt() + eps) + beta


def _ln_inplace(x, gamma, beta, eps=1e-5):
    x -= x.mean(dim=-1, keepdim=True)  # writes into the caller's tensor
    return gamma * x / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps) + beta


LAYER_NORM_WRONG = {
    "unbiased variance (torch.var's default)": (
        lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, unbiased=True), "Bessel"),
    "x.std(), unbiased": (
        lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) ** 2 + eps).sqrt()
        + b, "unbiased variance"),
    "over the tokens (dim -2)": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, dim=-2), "over the tokens"),
    "over dim 0": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, dim=0), "dim=-1"),
    "over the whole tensor": (
        lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, dim=tuple(range(x.dim()))), "whole tensor"),
    "eps outside the root": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, eps_inside=False), "outside"),
    "no eps": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, 0.0), "left out eps"),
    "eps ignored (the default always)": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, 1e-5), "eps passed in"),
    "no gamma, no beta": (
        lambda x, g, b, eps=1e-5: _ln_with(x, torch.ones_like(g), torch.zeros_like(b), eps), "not applied"),
    "gamma and beta swapped": (lambda x, g, b, eps=1e-5: _ln_with(x, b, g, eps), "swapped"),
    "mean not subtracted": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, center=False), "subtract the mean"),
    "divided by the variance": (
        lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, unbiased=False) + eps)
        + b, "not by its square root"),
    "no keepdim": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, keepdim=False), "keepdim=True"),
    "modifies x in place": (_ln_inplace, "in place"),
    "normalised over (T, D)": (lambda x, g, b, eps=1e-5: _ln_with(x, g, b, eps, dim=(-2, -1)), "dim=-1"),
}


def _ff_inplace(x, W1, b1, W2, b2):
    x += 0.0 * x  # harmless numbers, but it writes into the caller's tensor
    x.mul_(2.0)
    return feed_forward_ok(x / 2.0, W1, b1, W2, b2)


def _ff_mix_tokens(x, W1, b1, W2, b2):
    return feed_forward_ok(x, W1, b1, W2, b2) + 0.1 * x.mean(dim=1, keepdim=True)  # every token sees the mean


FEED_FORWARD_WRONG = {
    "ReLU after the second layer too": (
        lambda x, W1, b1, W2, b2: torch.relu(feed_forward_ok(x, W1, b1, W2, b2)), "after the second layer too"),
    "ReLU only after the second layer": (
        lambda x, W1, b1, W2, b2: torch.relu((x @ W1 + b1) @ W2 + b2), "instead of between"),
    "no ReLU": (lambda x, W1, b1, W2, b2: (x @ W1 + b1) @ W2 + b2, "there is no ReLU"),
    "GELU": (lambda x, W1, b1, W2, b2: torch.nn.functional.gelu(x @ W1 + b1) @ W2 + b2, "GELU"),
    "no b1": (lambda x, W1, b1, W2, b2: torch.relu(x @ W1) @ W2 + b2, "b1 is missing"),
    "no b2": (lambda x, W1, b1, W2, b2: torch.relu(x @ W1 + b1) @ W2, "b2 is missing"),
    "weights transposed (runs when D = F)": (
        lambda x, W1, b1, W2, b2: torch.relu(x @ W1.T + b1) @ W2.T + b2, "transposed"),
    "along the time axis (runs when T = D = F)": (
        lambda x, W1, b1, W2, b2: feed_forward_ok(x.transpose(1, 2), W1, b1, W2, b2).transpose(1, 2),
        "mixing the tokens"),
    "adds the mean over the tokens": (_ff_mix_tokens, "position-wise"),
    "modifies x in place": (_ff_inplace, "in place"),
    "returns the hidden layer": (lambda x, W1, b1, W2, b2: torch.relu(x @ W1 + b1), "hidden layer"),
}


def _mha_out(attn, h, mask, kv=None, **kw):
    kv = h if kv is None else kv
    return attn(h, kv, kv, key_padding_mask=mask, **kw)[0]  # (B, T, D)


def _post(x, attn, ff, n1, n2, mask, *, sublayer1=None, sublayer2=None):
    """Post-norm with either sublayer replaced by ``sublayer(x, a)`` -> its new x."""
    a = _mha_out(attn, x, ~mask)
    x1 = sublayer1(x, a) if sublayer1 else n1(x + a)
    return sublayer2(x1, a) if sublayer2 else n2(x1 + ff(x1))


def _block_inplace(x, attn, ff, norm1, norm2, mask):
    x += attn(x, x, x, key_padding_mask=~mask)[0]  # writes into the caller's x
    x = norm1(x)
    return norm2(x + ff(x))


ENCODER_BLOCK_WRONG = {
    "pre-norm": (pre_norm_block_ok, "that is the pre-norm block"),
    "no attention residual": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n2, m, sublayer1=lambda x, a: n1(a)),
        "no residual connection around the attention"),
    "no feed-forward residual": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n2, m, sublayer2=lambda x, a: n2(ff(x))),
        "no residual connection around the feed-forward"),
    "residual added after the norm": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n2, m, sublayer1=lambda x, a: x + n1(a),
                                           sublayer2=lambda x, a: x + n2(ff(x))),
        "the residual is added after the norm"),
    "feed-forward reads the attention output": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n2, m, sublayer2=lambda x, a: n2(x + ff(a))),
        "reads the raw attention output"),
    "norms swapped": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n2, n1, m), "norm1 and norm2 are swapped"),
    "norm1 twice": (lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n1, m), "norm1 for both"),
    "no feed-forward": (
        lambda x, at, ff, n1, n2, m: _post(x, at, ff, n1, n2, m, sublayer2=lambda x, a: n2(x)),
        "feed-forward sublayer is missing"),
    "mask inverted (NaN)": (lambda x, at, ff, n1, n2, m: encoder_block_ok(x, at, ff, n1, n2, ~m), "~mask"),
    "mask inverted, need_weights=False (zeros)": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(x + _mha_out(at, x, m, need_weights=False))),
        "the mask is inverted"),
    "mask ignored": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(x + at(x, x, x)[0])), "padding is not masked"),
    "mask as attn_mask (crashes)": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(x + at(x, x, x, attn_mask=~m)[0])),
        "key_padding_mask"),
    "keeps the pair from attn (crashes)": (
        lambda x, at, ff, n1, n2, m: n1(x + at(x, x, x, key_padding_mask=~m)), "take [0]"),
    "returns (x, weights)": (
        lambda x, at, ff, n1, n2, m: (encoder_block_ok(x, at, ff, n1, n2, m), None), "return only the new x"),
    "modifies x in place": (_block_inplace, "in place"),
}


def _pre(x, attn, ff, n1, n2, mask, *, first=None, second=None):
    h = n1(x)
    y = first(x, h) if first else x + _mha_out(attn, h, ~mask)
    return second(y) if second else y + ff(n2(y))


PRE_NORM_WRONG = {
    "post-norm": (encoder_block_ok, "that is the post-norm block"),
    "residual from the normalised x": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, first=lambda x, h: h + _mha_out(at, h, ~m)),
        "the residual starts from the normalised x"),
    "only the queries normalised": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, first=lambda x, h: x + _mha_out(at, h, ~m, kv=x)),
        "only the queries are normalised"),
    "feed-forward without norm2": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, second=lambda y: y + ff(y)), "without norm2"),
    "norm after the feed-forward": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, second=lambda y: n2(y + ff(y))),
        "after the feed-forward's residual"),
    "no attention residual": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, first=lambda x, h: _mha_out(at, h, ~m)),
        "no residual connection around the attention"),
    "no feed-forward residual": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, second=lambda y: ff(n2(y))),
        "no residual connection around the feed-forward"),
    "norms swapped": (lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n2, n1, m), "swapped"),
    "mask inverted (NaN)": (lambda x, at, ff, n1, n2, m: pre_norm_block_ok(x, at, ff, n1, n2, ~m), "~mask"),
    "mask inverted, need_weights=False (zeros)": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, first=lambda x, h: x + _mha_out(
            at, h, m, need_weights=False)), "the mask is inverted"),
    "mask ignored": (
        lambda x, at, ff, n1, n2, m: _pre(x, at, ff, n1, n2, m, first=lambda x, h: x + at(h, h, h)[0]),
        "padding is not masked"),
}

# --------------------------------------------------------------------------- chapter 11: solutions and wrong answers


def online_softmax_update_ok(m, l, block):
    m_new = torch.maximum(m, block.max(dim=-1).values)  # (L,)
    return m_new, l * torch.exp(m - m_new) + torch.exp(block - m_new[:, None]).sum(dim=-1)


def attention_block_update_ok(m, l, acc, scores_block, values_block):
    m_new = torch.maximum(m, scores_block.max(dim=-1).values)  # (L,)
    scale = torch.exp(m - m_new)  # (L,)
    p = torch.exp(scores_block - m_new[:, None])  # (L, C)
    return m_new, l * scale + p.sum(dim=-1), acc * scale[:, None] + p @ values_block


def cached_attention_step_ok(q_t, k_t, v_t, cache_k, cache_v):
    cache_k = torch.cat([cache_k, k_t], dim=-2)  # (..., S+1, E)
    cache_v = torch.cat([cache_v, v_t], dim=-2)  # (..., S+1, Ev)
    weights = torch.softmax(q_t @ cache_k.transpose(-2, -1) / q_t.shape[-1] ** 0.5, dim=-1)  # (..., 1, S+1)
    return weights @ cache_v, cache_k, cache_v


def linear_attention_ok(q, k, v):
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1  # (B, L, E), (B, S, E)
    kv = phi_k.transpose(-2, -1) @ v  # (B, E, Ev): summed over the keys once
    z = phi_q @ phi_k.sum(dim=-2)[..., None]  # (B, L, 1)
    return phi_q @ kv / z  # (B, L, Ev)


def _os(m, l, block, *, new_max=None, old_scale=None, block_ref=None, block_sum=None):
    """The online-softmax step with one piece replaced."""
    m_new = torch.maximum(m, block.max(dim=-1).values) if new_max is None else new_max(m, block)
    old = l * torch.exp(m - m_new) if old_scale is None else old_scale(m, l, m_new)
    ref = m_new if block_ref is None else block_ref(m, m_new)
    new = torch.exp(block - ref[:, None]).sum(dim=-1) if block_sum is None else block_sum(block, ref)
    return m_new, old + new


def _os_inplace(m, l, block):
    m_new = torch.maximum(m, block.max(dim=-1).values)
    l *= torch.exp(m - m_new)  # writes into the caller's l
    return m_new, l + torch.exp(block - m_new[:, None]).sum(dim=-1)


ONLINE_SOFTMAX_WRONG = {
    "l not rescaled": (lambda m, l, b: _os(m, l, b, old_scale=lambda m, l, mn: l), "r was not rescaled"),
    "the block's max only": (
        lambda m, l, b: _os(m, l, b, new_max=lambda m, b: b.max(dim=-1).values), "this block's max only"),
    "rescaled the wrong way": (
        lambda m, l, b: _os(m, l, b, old_scale=lambda m, l, mn: l * torch.exp(mn - m)), "the wrong way"),
    "exps without subtracting the max": (
        lambda m, l, b: _os(m, l, b, old_scale=lambda m, l, mn: l, block_sum=lambda b, ref: torch.exp(b).sum(dim=-1)),
        "without subtracting"),
    "block relative to the old max": (
        lambda m, l, b: _os(m, l, b, block_ref=lambda m, mn: m), "relative to the old max"),
    "old l dropped": (lambda m, l, b: _os(m, l, b, old_scale=lambda m, l, mn: 0.0), "old r was dropped"),
    "one max for the whole block": (
        lambda m, l, b: _os(m, l, b, new_max=lambda m, b: torch.maximum(m, b.max())), "whole block"),
    "max over dim 0": (
        lambda m, l, b: _os(m, l, b, new_max=lambda m, b: torch.maximum(m, b.max(dim=0).values)), "rows (dim=0)"),
    "sum over dim 0": (
        lambda m, l, b: _os(m, l, b, block_sum=lambda b, ref: torch.exp(b - ref[:, None]).sum(dim=0)),
        "rows (dim=0)"),
    "keepdim": (lambda m, l, b: tuple(t[:, None] for t in online_softmax_update_ok(m, l, b)), "keepdim"),
    "returns l only": (lambda m, l, b: online_softmax_update_ok(m, l, b)[1], "(m_new, r_new)"),
    "max(dim=-1) pair (crashes)": (
        lambda m, l, b: _os(m, l, b, new_max=lambda m, b: torch.maximum(m, b.max(dim=-1))), "(values, indices)"),
    "modifies l in place": (_os_inplace, "in place"),
}


def _abu(m, l, acc, s, v, *, acc_scale=True, l_scale=True, divide=False, fa1=False, sign=1.0, new_max=None,
         ref=None, block_softmax=False):
    m_new = torch.maximum(m, s.max(dim=-1).values) if new_max is None else new_max(m, s)
    scale = torch.exp(sign * (m - m_new))  # (L,)
    p = torch.exp(s - (m_new if ref is None else ref(m, m_new))[:, None])  # (L, C)
    l_new = (l * scale if l_scale else l) + p.sum(dim=-1)
    pv = torch.softmax(s, dim=-1) @ v if block_softmax else p @ v
    if fa1:
        return m_new, l_new, (acc * (l * scale)[:, None] + pv) / l_new[:, None]
    acc_new = (acc * scale[:, None] if acc_scale else acc) + pv
    return m_new, l_new, acc_new / l_new[:, None] if divide else acc_new


def _abu_inplace(m, l, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=-1).values)
    scale = torch.exp(m - m_new)
    p = torch.exp(s - m_new[:, None])
    acc *= scale[:, None]  # writes into the caller's acc
    return m_new, l * scale + p.sum(dim=-1), acc + p @ v


BLOCK_UPDATE_WRONG = {
    "acc not rescaled": (lambda *a: _abu(*a, acc_scale=False), "acc was not rescaled"),
    "l not rescaled": (lambda *a: _abu(*a, l_scale=False), "r was not rescaled"),
    "acc divided early": (lambda *a: _abu(*a, divide=True), "acc was divided by r"),
    "acc kept normalised (FlashAttention-1)": (lambda *a: _abu(*a, fa1=True), "kept normalised"),
    "rescaled the wrong way": (lambda *a: _abu(*a, sign=-1.0), "the wrong way"),
    "the block's max only": (
        lambda *a: _abu(*a, new_max=lambda m, s: s.max(dim=-1).values), "this block's max only"),
    "weights relative to the old max": (lambda *a: _abu(*a, ref=lambda m, mn: m), "relative to the old max"),
    "softmax within the block": (lambda *a: _abu(*a, block_softmax=True), "normalised on their own"),
    "returns (m, l) only": (lambda *a: attention_block_update_ok(*a)[:2], "(m, r, acc)"),
    "values not transposed right (crashes)": (
        lambda m, l, acc, s, v: attention_block_update_ok(m, l, acc, s, v.T), "values_block (T_tile, Ev)"),
    "modifies acc in place": (_abu_inplace, "in place"),
}


def _kv(q, k, v, ck, cv, *, before=False, scale=None, dim=-1, cat=None):
    cat = cat or (lambda c, n: torch.cat([c, n], dim=-2))
    K, V = cat(ck, k), cat(cv, v)
    Ka, Va = (ck, cv) if before else (K, V)
    scale = q.shape[-1] ** 0.5 if scale is None else scale(q, v)
    return torch.softmax(q @ Ka.transpose(-2, -1) / scale, dim=dim) @ Va, K, V


KV_CACHE_WRONG = {
    "attends before appending": (lambda *a: _kv(*a, before=True), "before appending"),
    "no scale": (lambda *a: _kv(*a, scale=lambda q, v: 1.0), "did not divide"),
    "scaled by sqrt(Ev)": (lambda *a: _kv(*a, scale=lambda q, v: v.shape[-1] ** 0.5), "sqrt(Ev)"),
    "softmax over the query": (lambda *a: _kv(*a, dim=-2), "over the single query"),
    "overwrites the cache": (lambda *a: _kv(*a, cat=lambda c, n: n), "overwrote"),
    "prepends": (lambda *a: _kv(*a, cat=lambda c, n: torch.cat([n, c], dim=-2)), "in front of the cache"),
    "appends along dim 1 (the head axis with heads)": (
        lambda *a: _kv(*a, cat=lambda c, n: torch.cat([c, n], dim=1)), "dim=-2"),
    "appends along the feature axis (crashes)": (
        lambda *a: _kv(*a, cat=lambda c, n: torch.cat([c, n], dim=-1)), "time axis"),
    "caches not returned": (lambda *a: cached_attention_step_ok(*a)[0], "(out_t, cache_k, cache_v)"),
    "cache not extended": (lambda q, k, v, ck, cv: (cached_attention_step_ok(q, k, v, ck, cv)[0], ck, cv),
                           "the S old positions only"),
}


def _phi_relu(x):
    return torch.relu(x)


def _lin(q, k, v, *, phi=lambda x: torch.nn.functional.elu(x) + 1, normalise=True, phi_v=False):
    a = phi(q) @ phi(k).transpose(-2, -1)  # (B, L, S)
    if normalise:
        a = a / a.sum(dim=-1, keepdim=True)
    return a @ (phi(v) if phi_v else v)


LINEAR_ATTENTION_WRONG = {
    "no normaliser": (lambda q, k, v: _lin(q, k, v, normalise=False), "there is no normaliser"),
    "phi = relu": (lambda q, k, v: _lin(q, k, v, phi=_phi_relu), "phi is relu"),
    "phi = elu": (lambda q, k, v: _lin(q, k, v, phi=torch.nn.functional.elu), "without the + 1"),
    "phi = exp": (lambda q, k, v: _lin(q, k, v, phi=torch.exp), "phi is exp"),
    "softmax attention": (
        lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v,
        "softmax attention"),
    "phi on the values": (lambda q, k, v: _lin(q, k, v, phi_v=True), "values too"),
    "divided by S": (lambda q, k, v: _lin(q, k, v, normalise=False) / k.shape[-2], "divided by S"),
    "q and k scaled by 1/sqrt(E)": (
        lambda q, k, v: _lin(q / q.shape[-1] ** 0.5, k / q.shape[-1] ** 0.5, v), "no 1/sqrt(E)"),
    "q and k swapped (runs when L = S)": (lambda q, k, v: _lin(k, q, v), "swapped"),
    "normaliser summed over the features (crashes unless E = S)": (
        lambda q, k, v: (lambda pq, pk: pq @ (pk.transpose(-2, -1) @ v) / (pq @ pk.sum(dim=-1)[..., None]))(
            torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1), "phi(k).sum(dim=-2)"),
}


# --------------------------------------------------------------------------- chapter 10: solutions and wrong answers


def attention_pool_ok(h, query, mask):
    scores = h @ query / h.shape[-1] ** 0.5  # (B, T)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row of -inf gives NaN: make it 0
    return (weights[..., None] * h).sum(dim=1), weights  # (B, D), (B, T)


def soft_align_ok(a, b):
    e = torch.einsum("nid,njd->nij", a, b)  # (B, La, Lb)
    beta = torch.softmax(e, dim=2) @ b  # (B, La, D)
    alpha = torch.softmax(e.transpose(1, 2), dim=2) @ a  # (B, Lb, D)
    return beta, alpha, e


def patchify_ok(images, patch_size):
    B, C, H, W = images.shape
    if H % patch_size or W % patch_size:
        raise ValueError(f"H={H} and W={W} must be multiples of patch_size={patch_size}")
    return torch.nn.functional.unfold(images, kernel_size=patch_size, stride=patch_size).transpose(1, 2)


def seasonal_naive_ok(y, period, horizon):
    last = y[-period:]  # (m,): the last full season
    reps = -(-horizon // period)  # ceil(horizon / period)
    return last.repeat(reps)[:horizon]


def mase_ok(forecast, actual, history, period):
    scale = (history[period:] - history[:-period]).abs().mean()
    return ((actual - forecast).abs().mean() / scale).item()


def _pool(h, query, mask, *, scale=None, softmax=None, normalise=True, dim=-1, fill=float("-inf"), nan=False):
    """Attention pooling with one step changed to make a mistake."""
    scores = h @ query / (h.shape[-1] ** 0.5 if scale is None else scale)
    if mask is not None:
        scores = scores.masked_fill(~mask, fill)
    if softmax is not None:
        weights = softmax(scores)
    elif normalise:
        weights = torch.softmax(scores, dim=dim)
    else:
        weights = torch.exp(scores)
    if not nan:
        weights = weights.nan_to_num(0.0)
    return (weights[..., None] * h).sum(dim=1), weights


def _pool_mean(h, query, mask):
    weights = mask.to(h.dtype) / mask.sum(dim=-1, keepdim=True).clamp(min=1)
    return (weights[..., None] * h).sum(dim=1), weights


def _pool_inplace(h, query, mask):
    h[~mask] = 0.0  # zeroes the caller's padding vectors
    return attention_pool_ok(h, query, mask)


def _pool_zero_after(h, query, mask):
    weights = torch.softmax(h @ query / h.shape[-1] ** 0.5, dim=-1) * mask
    return (weights[..., None] * h).sum(dim=1), weights


def _pool_matmul(h, query, mask):
    _, weights = attention_pool_ok(h, query, mask)
    return weights @ h, weights  # (B, T) @ (B, T, D) broadcasts to (B, B, D)


ATTENTION_POOL_WRONG = {
    "no mask": (lambda h, q, m: _pool(h, q, None), "mask was ignored"),
    "inverted mask (ac.masked_softmax)": (
        lambda h, q, m: (lambda w: ((w[..., None] * h).sum(1), w))(
            masked_softmax(h @ q / h.shape[-1] ** 0.5, ~m)), "inverted"),
    "inverted mask, -inf fill: NaN for a full sequence": (lambda h, q, m: _pool(h, q, ~m, nan=True), "inverted"),
    "inverted mask, -1e9 fill": (lambda h, q, m: _pool(h, q, ~m, fill=-1e9), "inverted"),
    "no 1/sqrt(D)": (lambda h, q, m: _pool(h, q, m, scale=1.0), "did not divide the scores by sqrt(D)"),
    "divides by D": (lambda h, q, m: _pool(h, q, m, scale=h.shape[-1]), "instead of sqrt(D)"),
    "softmax over the batch axis": (lambda h, q, m: _pool(h, q, m, dim=0), "batch axis"),
    "mean pooling": (_pool_mean, "mean pooling"),
    "padding zeroed after the softmax": (_pool_zero_after, "after the softmax without renormalising"),
    "exp without normalising": (lambda h, q, m: _pool(h, q, m, normalise=False), "without the softmax's division"),
    "NaN for a sequence with no real token": (lambda h, q, m: _pool(h, q, m, nan=True), "came out NaN"),
    "-1e9 fill: uniform weights for a sequence with no real token": (
        lambda h, q, m: _pool(h, q, m, fill=-1e9), "uniform weights"),
    "zeroes the padding of h in place": (_pool_inplace, "in place"),
    "returns (weights, pooled)": (lambda h, q, m: attention_pool_ok(h, q, m)[::-1], "return (pooled, weights)"),
    "weights @ h without a middle axis": (_pool_matmul, "every sequence"),
    "weighted tokens not summed": (
        lambda h, q, m: (lambda p, w: (w[..., None] * h, w))(*attention_pool_ok(h, q, m)), "sum them over the time"),
    "pooled ignores the weights": (
        lambda h, q, m: (_pool_mean(h, q, m)[0], attention_pool_ok(h, q, m)[1]), "whatever the weights"),
    "weights keep a trailing axis": (
        lambda h, q, m: (lambda p, w: (p, w[..., None]))(*attention_pool_ok(h, q, m)), "trailing axis"),
    "returns the weights only": (lambda h, q, m: attention_pool_ok(h, q, m)[1], "(pooled, weights)"),
}


def _align(a, b, *, scale=1.0, beta_dim=-1, alpha_dim=-2, transpose=True, beta_from=None, alpha_from=None,
           softmax=True):
    e = a @ b.transpose(-2, -1) * scale  # (B, La, Lb)
    sm = torch.softmax if softmax else (lambda x, dim: x)
    beta = sm(e, dim=beta_dim) @ (b if beta_from is None else beta_from)
    w = sm(e, dim=alpha_dim)
    alpha = (w.transpose(-2, -1) if transpose else w) @ (a if alpha_from is None else alpha_from)
    return beta, alpha, e


def _align_scaled_inside(a, b):
    e = a @ b.transpose(-2, -1)
    s = e / a.shape[-1] ** 0.5
    return torch.softmax(s, dim=-1) @ b, torch.softmax(s, dim=-2).transpose(-2, -1) @ a, e


SOFT_ALIGN_WRONG = {
    "beta's softmax over i": (lambda a, b: _align(a, b, beta_dim=-2), "beta's softmax ran over i"),
    "alpha's softmax over j": (lambda a, b: _align(a, b, alpha_dim=-1), "alpha's softmax ran over j"),
    "alpha and beta swapped": (lambda a, b: (lambda be, al, e: (al, be, e))(*soft_align_ok(a, b)), "swapped"),
    "alpha's weights not transposed (runs when La = Lb)": (
        lambda a, b: _align(a, b, transpose=False), "not transposed"),
    "scaled by 1/sqrt(D)": (lambda a, b: _align(a, b, scale=a.shape[-1] ** -0.5), "1/sqrt(D)"),
    "scaled inside the softmax only": (_align_scaled_inside, "scaled by 1/sqrt(D)"),
    "e transposed": (lambda a, b: (lambda be, al, e: (be, al, e.transpose(-2, -1)))(*soft_align_ok(a, b)),
                     "e is transposed"),
    "no softmax": (lambda a, b: _align(a, b, softmax=False), "there is no softmax"),
    "beta from the words of a (runs when La = Lb)": (
        lambda a, b: _align(a, b, beta_from=a), "mixes the words of a"),
    "alpha from the words of b (runs when La = Lb)": (
        lambda a, b: _align(a, b, alpha_from=b), "mixes the words of b"),
    "returns (beta, alpha) only": (lambda a, b: soft_align_ok(a, b)[:2], "(beta, alpha, e)"),
    "b not transposed (crashes unless D = Lb)": (
        lambda a, b: (lambda e: (torch.softmax(e, -1) @ b, torch.softmax(e, -2).transpose(-2, -1) @ a, e))(a @ b),
        "b.transpose(-2, -1)"),
}


def _grid(images, P):
    B, C, H, W = images.shape
    return images.reshape(B, C, H // P, P, W // P, P)  # (B, C, H/P, P, W/P, P)


def _patches(images, P, order):
    B, C, H, W = images.shape
    return _grid(images, P).permute(*order).reshape(B, (H // P) * (W // P), C * P * P)


def _patchify_swapped_hw(images, P):
    B, C, W, H = images.shape  # the wrong names for the axes
    return images.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C * P * P)


def _patchify_no_check(images, P):
    B, C, H, W = images.shape
    return _patches(images, P, (0, 2, 4, 1, 3, 5))


def _patchify_checks_h_only(images, P):
    if images.shape[2] % P:
        raise ValueError(f"H={images.shape[2]} is not a multiple of patch_size={P}")
    return torch.nn.functional.unfold(images, kernel_size=P, stride=P).transpose(1, 2)


def _patchify_assert(images, P):
    assert images.shape[2] % P == 0 and images.shape[3] % P == 0, "H and W must be multiples of P"
    return _patches(images, P, (0, 2, 4, 1, 3, 5))


PATCHIFY_WRONG = {
    "patches in column-major order": (lambda x, P: _patches(x, P, (0, 4, 2, 1, 3, 5)), "patches are listed column"),
    "(P, P, C) flattening": (lambda x, P: _patches(x, P, (0, 2, 4, 3, 5, 1)), "channel-last"),
    "pixels of a patch column by column": (lambda x, P: _patches(x, P, (0, 2, 4, 1, 5, 3)), "pixels inside each patch"),
    "plain reshape without permute": (
        lambda x, P: x.reshape(x.shape[0], -1, x.shape[1] * P * P), "without a permute"),
    "H and W swapped": (_patchify_swapped_hw, "(B, C, Rw, Rh)"),
    "does not raise (F.unfold drops the pixels that do not fit)": (
        lambda x, P: torch.nn.functional.unfold(x, kernel_size=P, stride=P).transpose(1, 2), "returned a result"),
    "no check: the reshape raises RuntimeError": (_patchify_no_check, "should be a ValueError"),
    "checks H only": (_patchify_checks_h_only, "Rw = 6 is not a multiple"),
    "asserts instead of raising ValueError": (_patchify_assert, "an assert is not input validation"),
    "F.unfold without transpose": (
        lambda x, P: torch.nn.functional.unfold(x, kernel_size=P, stride=P), "looks transposed"),
    "patches not flattened": (
        lambda x, P: _grid(x, P).permute(0, 2, 4, 1, 3, 5).reshape(x.shape[0], -1, x.shape[1], P, P),
        "still a (C, ps, ps) block"),
    "grid not flattened": (
        lambda x, P: _grid(x, P).permute(0, 2, 4, 1, 3, 5).flatten(3), "still on their (Rh/ps, Rw/ps) grid"),
}


def _sn_lag_plus_one(y, period, horizon):
    T = len(y)
    return torch.stack([y[T - period - 1 + h % period] for h in range(horizon)])


def _sn_one_based(y, period, horizon):
    T = len(y)
    return torch.stack([y[T + h - period] for h in range(1, horizon + 1)])  # 1-based h in a 0-based index


def _sn_past_the_end(y, period, horizon):
    return y[len(y) - period + torch.arange(horizon)]  # IndexError once h > period


def _sn_clamped(y, period, horizon):
    T = len(y)
    return y[torch.clamp(T - period + torch.arange(horizon), max=T - 1)]


SEASONAL_NAIVE_WRONG = {
    "lag m + 1": (_sn_lag_plus_one, "one too early"),
    "1-based h in a 0-based index (lag m - 1)": (_sn_one_based, "one too late"),
    "last-value naive": (lambda y, m, H: y[-1].repeat(H), "last-value"),
    "first season repeated": (lambda y, m, H: y[:m].repeat(-(-H // m))[:H], "first season"),
    "one season only (wrong for horizon > period)": (lambda y, m, H: y[-m:][:H], "one season only"),
    "index past the end for horizon > period": (_sn_past_the_end, "runs past the end"),
    "last value repeated after one season": (_sn_clamped, "kept repeating the last value"),
    "mean of the last season": (lambda y, m, H: y[-m:].mean().repeat(H), "mean of the last season"),
    "returns None": (lambda y, m, H: None, "return"),
}


def _mase_with(forecast, actual, history, period, *, lag=None, scale_on=None, err=lambda e: e.abs(),
               diff=lambda d: d.abs(), denominator=None, reduce=lambda e: e.mean(), invert=False):
    lag = period if lag is None else lag
    base = history if scale_on is None else scale_on(actual, history)
    d = diff(base[lag:] - base[:-lag])
    scale = d.mean() if denominator is None else d.sum() / denominator(history)
    top = reduce(err(actual - forecast))
    return float(scale / top if invert else top / scale)


MASE_WRONG = {
    "lag-1 scale": (lambda f, a, h, m: _mase_with(f, a, h, m, lag=1), "lag 1"),
    "scale on the actual values": (
        lambda f, a, h, m: _mase_with(f, a, h, m, scale_on=lambda a, h: a), "history only"),
    "signed errors": (lambda f, a, h, m: _mase_with(f, a, h, m, err=lambda e: e), "cancel"),
    "signed differences in the scale": (
        lambda f, a, h, m: _mase_with(f, a, h, m, diff=lambda d: d), "scale's differences must be absolute"),
    "squared errors": (
        lambda f, a, h, m: _mase_with(f, a, h, m, err=lambda e: e**2, diff=lambda d: d**2), "squared"),
    "scale averaged over T": (lambda f, a, h, m: _mase_with(f, a, h, m, denominator=len), "T - period ="),
    "ratio upside down": (lambda f, a, h, m: _mase_with(f, a, h, m, invert=True), "upside down"),
    "sum of the errors": (lambda f, a, h, m: _mase_with(f, a, h, m, reduce=lambda e: e.sum()), "is a sum"),
    "errors not averaged (a tensor)": (
        lambda f, a, h, m: (a - f).abs() / (h[m:] - h[:-m]).abs().mean(), "must be one number"),
}


CASES = [
    (checks.check_softmax, softmax_ok, SOFTMAX_WRONG),
    (checks.check_attention_weights, weights_ok, WEIGHTS_WRONG),
    (checks.check_context, context_ok, CONTEXT_WRONG),
    (checks.check_attention, attention_ok, ATTENTION_WRONG),
    (checks.check_teacher_forcing, teacher_forcing_ok, TEACHER_FORCING_WRONG),
    (checks.check_final_states, final_states_ok, FINAL_STATES_WRONG),
    (checks.check_greedy_decode, greedy_decode_ok, GREEDY_WRONG),
    (checks.check_token_accuracy, token_accuracy_ok, TOKEN_ACCURACY_WRONG),
    (checks.check_contexts, contexts_ok, CONTEXTS_WRONG),
    (checks.check_additive_scores, additive_scores_ok, ADDITIVE_WRONG),
    (checks.check_attention_step, attention_step_ok, ATTENTION_STEP_WRONG),
    (checks.check_alignment_accuracy, alignment_accuracy_ok, ALIGNMENT_WRONG),
    (checks.check_dot_scores, dot_scores_ok, DOT_SCORES_WRONG),
    (checks.check_scaled_dot_scores, scaled_dot_scores_ok, SCALED_DOT_WRONG),
    (checks.check_general_scores, general_scores_ok, GENERAL_WRONG),
    (checks.check_concat_scores, concat_scores_ok, CONCAT_WRONG),
    (checks.check_split_concat_weight, split_concat_weight_ok, SPLIT_WRONG),
    (checks.check_masked_softmax, masked_softmax_ok, MASKED_SOFTMAX_WRONG),
    (checks.check_topk_hard_attention, topk_hard_ok, TOPK_WRONG),
    (checks.check_gumbel_argmax, gumbel_argmax_ok, GUMBEL_WRONG),
    (checks.check_reinforce_surrogate, reinforce_ok, REINFORCE_WRONG),
    (checks.check_straight_through_gumbel, straight_through_ok, STRAIGHT_THROUGH_WRONG),
    (checks.check_self_attention, self_attention_ok, SELF_ATTENTION_WRONG),
    (checks.check_causal_mask, causal_mask_ok, CAUSAL_MASK_WRONG),
    (checks.check_padding_mask, padding_mask_ok, PADDING_MASK_WRONG),
    (checks.check_decoder_mask, decoder_mask_ok, DECODER_MASK_WRONG),
    (checks.check_is_permutation_equivariant, is_permutation_equivariant_ok, EQUIVARIANCE_WRONG),
    (checks.check_split_heads, split_heads_ok, SPLIT_HEADS_WRONG),
    (checks.check_merge_heads, merge_heads_ok, MERGE_HEADS_WRONG),
    (checks.check_multihead_self_attention, mhsa_ok, MHSA_WRONG),
    (checks.check_mha_parameter_count, mha_parameter_count_ok, PARAM_COUNT_WRONG),
    (checks.check_sinusoidal_encoding, sinusoidal_encoding_ok, SINUSOIDAL_WRONG),
    (checks.check_rotate_pairs, rotate_pairs_ok, ROTATE_WRONG),
    (checks.check_adds_distinct_positions, adds_distinct_positions_ok, ADDS_DISTINCT_WRONG),
    (checks.check_shift_matrix, shift_matrix_ok, SHIFT_WRONG),
    (checks.check_layer_norm, layer_norm_ok, LAYER_NORM_WRONG),
    (checks.check_feed_forward, feed_forward_ok, FEED_FORWARD_WRONG),
    (checks.check_encoder_block, encoder_block_ok, ENCODER_BLOCK_WRONG),
    (checks.check_pre_norm_block, pre_norm_block_ok, PRE_NORM_WRONG),
    (checks.check_attention_pool, attention_pool_ok, ATTENTION_POOL_WRONG),
    (checks.check_soft_align, soft_align_ok, SOFT_ALIGN_WRONG),
    (checks.check_patchify, patchify_ok, PATCHIFY_WRONG),
    (checks.check_seasonal_naive, seasonal_naive_ok, SEASONAL_NAIVE_WRONG),
    (checks.check_mase, mase_ok, MASE_WRONG),
    (checks.check_online_softmax_update, online_softmax_update_ok, ONLINE_SOFTMAX_WRONG),
    (checks.check_attention_block_update, attention_block_update_ok, BLOCK_UPDATE_WRONG),
    (checks.check_cached_attention_step, cached_attention_step_ok, KV_CACHE_WRONG),
    (checks.check_linear_attention, linear_attention_ok, LINEAR_ATTENTION_WRONG),
]


@pytest.mark.parametrize("check, solution", [(c, s) for c, s, _ in CASES], ids=lambda f: getattr(f, "__name__", ""))
def test_solution_passes(check, solution, capsys):
    check(solution)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("check", [c for c, _, _ in CASES], ids=lambda f: f.__name__)
def test_stub_is_not_attempted_and_fails_under_nbgrader(check, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(checks.NotAttempted, match="not attempted yet"):
        check(stub)


@pytest.mark.parametrize("check", [c for c, _, _ in CASES], ids=lambda f: f.__name__)
def test_stub_is_reported_not_attempted_without_stopping_run_all(check, monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert check(stub) is None
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "correct" not in out


WRONG = [
    pytest.param(check, wrong, hint, id=f"{check.__name__}: {name}")
    for check, _, catalogue in CASES
    for name, (wrong, hint) in catalogue.items()
]


@pytest.mark.parametrize("check, wrong, hint", WRONG)
def test_wrong_answer_rejected_with_a_hint(check, wrong, hint, capsys):
    with pytest.raises(AssertionError) as info:
        check(wrong)
    assert not isinstance(info.value, checks.NotAttempted)
    assert hint in str(info.value), f"hint {hint!r} not in: {info.value}"
    assert "correct" not in capsys.readouterr().out


def test_inputs_keep_softmax_out_of_saturation():
    """With saturated inputs a missing scale factor would go unnoticed: the checks' inputs are not saturated."""
    for args in ((3, 2, 5, 4, 3), (4, 4, 4, 4, 4)):
        q, k, _ = checks.ch00._attention_inputs(*args)
        scaled = softmax_ok(q @ k.T / np.sqrt(q.shape[1]))
        unscaled = softmax_ok(q @ k.T)
        assert scaled.max() < 0.9 and unscaled.max() < 0.9  # no row is (nearly) one-hot
        assert np.abs(scaled - unscaled).max() > 0.05  # so the scale is visible in the weights


def test_self_attention_inputs_show_the_scale():
    """The check's inputs are not saturated: sqrt(E), sqrt(D) and no scale give visibly different weights."""
    for seed, (B, T, D, E, Ev) in ((61, (3, 4, 6, 4, 2)), (62, (2, 5, 8, 3, 4))):
        X, W_q, W_k, _ = checks.ch05._self_attention_inputs(seed, B, T, D, E, Ev)
        dots = (X @ W_q) @ (X @ W_k).transpose(-2, -1)  # (B, T, T)
        right = torch.softmax(dots / E**0.5, dim=-1)
        assert right.max() < 0.9  # no row is (nearly) one-hot
        for wrong in (torch.softmax(dots, dim=-1), torch.softmax(dots / D**0.5, dim=-1)):
            assert (right - wrong).abs().max() > 0.05


def test_running_sum_probe_differs_only_by_rounding():
    """The exact-comparison entry relies on one probe whose two sides differ in the last bits, and only there."""
    name, fn, X, perm = checks.ch05._equivariance_probes()[1]
    before, after = fn(X[:, perm]), fn(X)[:, perm]
    assert "token order" in name
    assert not torch.equal(before, after) and torch.allclose(before, after)
    name, fn, X, perm = checks.ch05._equivariance_probes()[0]
    assert torch.equal(fn(X[:, perm]), fn(X)[:, perm])  # the square of each token: exactly equivariant


def test_mha_inputs_show_the_scale():
    """The multi-head check's inputs are not saturated: sqrt(D/H), sqrt(D) and no scale give different weights."""
    for seed, (B, T, D, H) in ((73, (2, 4, 8, 2)), (78, (3, 5, 12, 3))):
        X, W_q, W_k, W_v, W_o = checks.ch06._mha_inputs(seed, B, T, D)
        right = checks.ch06._mha_heads(X, W_q, W_k, W_v, H)[1]  # (B, H, T, T)
        assert right.max() < 0.9  # no row is (nearly) one-hot
        for scale in (D**0.5, 1.0):
            assert (right - checks.ch06._mha_heads(X, W_q, W_k, W_v, H, scale=scale)[1]).abs().max() > 0.05


def test_mha_parameter_count_is_ours_and_torchs():
    """The count the check takes from nn.MultiheadAttention is that of our MultiHeadAttention, 4·D² + 4·D."""
    from attention_course import MultiHeadAttention

    for D, H, bias in ((64, 4, True), (64, 16, False)):
        ours = sum(p.numel() for p in MultiHeadAttention(D, H, bias=bias).parameters())
        theirs = sum(p.numel() for p in torch.nn.MultiheadAttention(D, H, bias=bias).parameters())
        assert ours == theirs == mha_parameter_count_ok(D, H, bias)


def test_position_adder_probes_say_what_they_do():
    """Each probe of check_adds_distinct_positions has the right answer it claims (by the reference solution), and
    the sequence-first probe really gives every token of a sequence the same vector."""
    probes = checks.ch07._position_adder_probes()
    for name, add_pe, (B, T, D), right, _ in probes:
        assert adds_distinct_positions_ok(add_pe, B, T, D) == right, name
    assert {right for *_, right, _ in probes} == {True, False}
    _, sequence_first, (B, T, D), _, _ = next(p for p in probes if "sequence-first" in p[0])
    added = sequence_first(torch.zeros(B, T, D))  # (B, T, D)
    assert torch.equal(added[:, 0], added[:, -1]) and not torch.equal(added[0], added[1])


def test_encoder_block_variants_match_torch():
    """The hand-built post- and pre-norm blocks the encoder checks name their mistakes against are PyTorch's."""
    for norm_first in (False, True):
        layer = checks.ch08._torch_encoder_layer(84, 8, 2, 16, norm_first)
        x = torch.randn(3, 5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])  # (B, T)
        ff = torch.nn.Sequential(layer.linear1, torch.nn.ReLU(), layer.linear2)
        variants = checks.ch08._block_variants(x, layer, mask, ff)
        with torch.no_grad():
            expected = layer(x, src_key_padding_mask=~mask)
        assert torch.allclose(variants["pre" if norm_first else "post"], expected, atol=1e-10)
        assert not torch.allclose(variants["post" if norm_first else "pre"], expected, atol=1e-3)


def test_chapter9_references_match_torch():
    """The references the chapter 10 checks compare with are PyTorch's own: attention pooling and soft alignment
    are F.scaled_dot_product_attention (one query; scale 1 in both directions), patchify is F.unfold, and a
    Linear on the patches is the strided Conv2d of a patch embedding."""
    F = torch.nn.functional
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 6, 8, generator=gen, dtype=torch.float64)  # (B, T, D)
    q = torch.randn(8, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4, [False] * 6])  # (B, T): the last sequence is empty
    pooled, weights = checks.ch10._ref_attention_pool(h, q, mask)
    theirs = F.scaled_dot_product_attention(q.expand(2, 1, 8), h[:2], h[:2], attn_mask=mask[:2, None, :])[:, 0]
    assert torch.allclose(pooled[:2], theirs, atol=1e-12)
    assert torch.all(weights[2] == 0) and torch.all(pooled[2] == 0)

    a = torch.randn(2, 4, 5, generator=gen, dtype=torch.float64)  # (B, La, D)
    b = torch.randn(2, 7, 5, generator=gen, dtype=torch.float64)  # (B, Lb, D)
    beta, alpha, e = checks.ch10._ref_soft_align(a, b)
    assert torch.allclose(beta, F.scaled_dot_product_attention(a, b, b, scale=1.0), atol=1e-12)
    assert torch.allclose(alpha, F.scaled_dot_product_attention(b, a, a, scale=1.0), atol=1e-12)

    images = torch.randn(2, 3, 8, 12, generator=gen, dtype=torch.float64)  # (B, C, H, W)
    patches = checks.ch10._ref_patchify(images, 4)  # (B, N, C·P·P): applications.vision.patchify
    assert torch.equal(patches, F.unfold(images, kernel_size=4, stride=4).transpose(1, 2))
    conv = torch.nn.Conv2d(3, 5, kernel_size=4, stride=4, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(patches @ conv.weight.reshape(5, -1).T + conv.bias,
                              conv(images).flatten(2).transpose(1, 2), atol=1e-12)


def test_seasonal_naive_reference_is_the_formula():
    """ŷ_(T+h) = y_(T+h-m·k), k = ceil(h/m), in 1-based time: the reference of check_seasonal_naive."""
    y = checks.ch10._seasonal_series(0, 13, 5)
    T = len(y)
    for m, H in ((5, 12), (1, 3), (13, 13), (3, 2)):
        expected = [y[T + h - m * -(-h // m) - 1] for h in range(1, H + 1)]  # y_t is y[t - 1]
        assert torch.equal(checks.ch10._ref_seasonal_naive(y, m, H), torch.stack(expected))


def test_the_checks_package_exports_each_chapter_modules_checks_once():
    """`checks.check_x` finds every check; each lives in exactly one chapter module."""
    import importlib
    import pkgutil

    modules = [m.name for m in pkgutil.iter_modules(checks.__path__) if m.name.startswith("ch")]
    assert modules == [f"ch{n:02d}" for n in range(12)]
    owners: dict[str, str] = {}
    for name in modules:
        module = importlib.import_module(f"attention_course.checks.{name}")
        for check in module.__all__:
            assert check not in owners, f"{check} is in both {owners[check]} and {name}"
            owners[check] = name
            assert getattr(checks, check) is getattr(module, check)
    assert sorted(owners) == sorted(n for n in checks.__all__ if n.startswith("check_"))


# --------------------------------------------------------------------------- passing by delegation
# An answer that just calls the library's version of what the exercise asks for must fail,
# with a hint that says why, however the learner reached the function: through the package
# (`attention_course.x`), a submodule, PyTorch (`F.x`), or a name imported into the notebook.


def _delegating_answers():
    import torch.nn.functional as F

    import attention_course as ac
    from attention_course import efficient, masks, multihead, positional, reference, scores, seq2seq
    from attention_course.applications import sequences, vision

    t = torch.as_tensor
    return {
        "softmax": (checks.check_softmax, lambda x: reference.softmax(x)),
        "softmax (top level)": (checks.check_softmax, lambda x: ac.softmax(t(x)).numpy()),
        "attention": (checks.check_attention, lambda Q, K, V: reference.scaled_dot_product_attention(Q, K, V)),
        "attention via torch": (checks.check_attention, lambda Q, K, V: tuple(
            r.numpy() for r in ac.scaled_dot_product_attention(t(Q), t(K), t(V)))),
        "dot_scores": (checks.check_dot_scores, lambda q, k: scores.dot_scores(q, k)),
        "scaled_dot_scores": (checks.check_scaled_dot_scores, lambda q, k: ac.scaled_dot_scores(q, k)),
        "general_scores": (checks.check_general_scores, lambda q, k, W: scores.general_scores(q, k, W)),
        "concat_scores": (checks.check_concat_scores, lambda q, k, W, v: scores.concat_scores(q, k, W, v)),
        "masked_softmax": (checks.check_masked_softmax, lambda s, m: ac.masked_softmax(s, m)),
        "self_attention via F": (checks.check_self_attention, lambda X, W_q, W_k, W_v: (
            F.scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v), None)),
        "causal_mask": (checks.check_causal_mask, lambda T: masks.causal_mask(T)),
        "padding_mask": (checks.check_padding_mask, lambda lengths, S: masks.padding_mask(lengths, S)),
        "split_heads": (checks.check_split_heads, lambda x, H: multihead.split_heads(x, H)),
        "merge_heads": (checks.check_merge_heads, lambda x: multihead.merge_heads(x)),
        "sinusoidal_encoding": (checks.check_sinusoidal_encoding, lambda P, D: positional.sinusoidal_encoding(P, D)),
        "rotate_pairs": (checks.check_rotate_pairs, lambda x: positional.rotary_embedding(x)),
        "shift_matrix": (checks.check_shift_matrix, lambda k, D: positional.sinusoidal_shift_matrix(k, D)),
        "layer_norm via F": (checks.check_layer_norm, lambda x, g, b, eps: F.layer_norm(x, x.shape[-1:], g, b, eps)),
        "layer_norm via nn": (checks.check_layer_norm, lambda x, g, b, eps: torch.nn.LayerNorm(
            x.shape[-1], eps=eps)(x)),
        "alignment_accuracy": (checks.check_alignment_accuracy, lambda w, a: seq2seq.alignment_accuracy(w, a)),
        "patchify": (checks.check_patchify, lambda images, ps: vision.patchify(images, ps)),
        "seasonal_naive": (checks.check_seasonal_naive, lambda y, period, horizon: (
            sequences.seasonal_naive_forecast(y[None], horizon, period)[0])),
        "mase": (checks.check_mase, lambda f, a, h, period: sequences.mase(f, a, h, period)),
        "linear_attention": (checks.check_linear_attention, lambda q, k, v: efficient.linear_attention(q, k, v)),
    }


@pytest.mark.parametrize("name", sorted(_delegating_answers()))
def test_an_answer_that_calls_the_librarys_version_is_rejected_with_a_reason(name):
    check, answer = _delegating_answers()[name]
    with pytest.raises(checks.Delegated, match="build it yourself"):
        check(answer)


def test_a_name_imported_into_the_learners_namespace_is_caught_and_restored():
    from attention_course import multihead

    namespace = {"split_heads": multihead.split_heads}
    exec("def answer(x, H):\n    return split_heads(x, H)\n", namespace)
    with pytest.raises(checks.Delegated, match="split_heads"):
        checks.check_split_heads(namespace["answer"])
    assert namespace["split_heads"] is multihead.split_heads  # put back, also after a failure
    assert checks.ch06._lib.multihead.split_heads is multihead.split_heads


# --------------------------------------------------------------------------- the shared machinery


@pytest.mark.parametrize("crash, hint", [
    (lambda: torch.ones(3, 4) @ torch.ones(5, 6), "matrix product"),
    (lambda: np.ones((3, 4)) @ np.ones((5, 6)), "matrix product"),
    (lambda: torch.ones(3, 4) + torch.ones(5), "broadcast"),
    (lambda: np.ones((3, 4)) * np.ones(5), "broadcast"),
    (lambda: torch.ones(2, 3).view(7), "reshape"),
    (lambda: torch.ones(2, 3).t().view(6), "contiguous"),
    (lambda: torch.ones(2, 3).sum(dim=2), "axis"),
    (lambda: torch.ones(2, 3) @ torch.ones(3, 2, dtype=torch.float64), "dtype"),
])
def test_a_crash_gets_the_hint_for_its_kind_of_error(crash, hint):
    with pytest.raises(AssertionError) as info:
        with checks._core._attempt("f"):
            crash()
    assert hint in str(info.value), str(info.value)
    said = checks._core._crash_hint(info.value.__cause__)
    assert hint in said and all(other not in said for other in {"matrix product", "broadcast"} - {hint})


def test_a_mismatch_message_prints_two_different_numbers():
    with pytest.raises(AssertionError) as info:
        checks._core._compare("x", np.array([0.8594341]), np.array([0.8594339]), atol=1e-8)
    numbers = [w for w in str(info.value).replace("(", " ").split() if w[:1].isdigit()]
    assert numbers[0] != numbers[1] and "0.8594341" in str(info.value), str(info.value)


def test_a_relative_tolerance_accepts_float32_rounding_of_large_values():
    expected = np.array([1234.5678, 1e-3])
    checks._core._compare("x", expected.astype(np.float32), expected, atol=1e-6, rtol=1e-6)
    with pytest.raises(AssertionError):
        checks._core._compare("x", expected * (1 + 1e-4), expected, atol=1e-6, rtol=1e-6)


def test_a_choice_question_says_why_each_wrong_option_is_wrong(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    ask = checks._core._reports_not_attempted(  # as every public check is
        lambda answer: checks._core._check_choice("q", answer, "b", "because B.", {"a": "A is wrong.", "c": "C!"}))
    ask(lambda: "b")
    assert "correct, (b). because B." in capsys.readouterr().out
    ask(lambda: " (B) ")
    for answer, said in ((lambda: "a", "A is wrong."), (lambda: "c", "C!"), (lambda: "d", "one of the letters a, b, c"),
                         (lambda: None, "return"), ("b", "the function itself")):
        with pytest.raises(AssertionError, match=re.escape(said)):
            ask(answer)
    assert ask(stub) is None and "not attempted yet" in capsys.readouterr().out
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(checks.NotAttempted):
        ask(stub)


def test_a_number_question_accepts_within_its_tolerance_and_names_known_mistakes(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    ask = lambda answer: checks._core._check_number("q", answer, 0.25, "why.", rtol=0.01,
                                                    wrong={"forgetting the square root": (0.0625, "Take the root.")})
    ask(lambda: 0.2501)
    ask(lambda: torch.tensor(0.25))
    for answer, said in ((lambda: 0.0625, "forgetting the square root"), (lambda: 0.3, "is not it"),
                         (lambda: float("nan"), "finite"), (lambda: "a quarter", "return a number")):
        with pytest.raises(AssertionError, match=said):
            ask(answer)
