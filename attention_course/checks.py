"""One check per exercise, with hints that teach.

Each ``check_*`` takes the learner's function, calls it on inputs chosen so that
the usual mistakes give visibly different numbers (moderate scores that keep
the softmax out of saturation, L, S and E all different, plus a square case
where a missing transpose still runs), and

- says "not attempted yet" if the function still raises ``NotImplementedError``:
  in a learner's session it prints that and returns, so that "Run All" goes on to
  the next exercise; under nbgrader (autograde or validate, which set
  ``NBGRADER_EXECUTION``) it raises :class:`NotAttempted` (an ``AssertionError``),
  so the untouched exercise scores 0;
- raises ``AssertionError`` with a hint naming the shape, axis or entry that is
  wrong, and by how much, when the answer is wrong;
- prints a one-line success message when it is right.

The exercise notebooks call these in their autograded cells; nbgrader counts a
cell that raises as failed. ``tests/test_checks.py`` shows each check a
catalogue of wrong answers that it must reject.
"""

from __future__ import annotations

import functools
import os
import textwrap
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

from . import masks, multihead, positional, reference, scores
from .attention import hard_attention, masked_softmax, scaled_dot_product_attention
from .multihead import MultiHeadAttention
from .positional import sinusoidal_encoding
from .applications.sequences import mase as _ref_mase
from .applications.sequences import seasonal_naive_forecast
from .applications.vision import patchify as _ref_patchify

__all__ = [
    "NotAttempted",
    "check_softmax",
    "check_attention_weights",
    "check_context",
    "check_attention",
    "check_masked_attention",
    "check_add_positional_encoding",
    "check_multihead_forward",
    "check_teacher_forcing",
    "check_final_states",
    "check_greedy_decode",
    "check_token_accuracy",
    "check_contexts",
    "check_additive_scores",
    "check_attention_step",
    "check_alignment_accuracy",
    "check_dot_scores",
    "check_scaled_dot_scores",
    "check_general_scores",
    "check_concat_scores",
    "check_split_concat_weight",
    "check_masked_softmax",
    "check_topk_hard_attention",
    "check_gumbel_argmax",
    "check_reinforce_surrogate",
    "check_straight_through_gumbel",
    "check_self_attention",
    "check_causal_mask",
    "check_padding_mask",
    "check_decoder_mask",
    "check_is_permutation_equivariant",
    "check_split_heads",
    "check_merge_heads",
    "check_multihead_self_attention",
    "check_mha_parameter_count",
    "check_sinusoidal_encoding",
    "check_rotate_pairs",
    "check_adds_distinct_positions",
    "check_shift_matrix",
    "check_layer_norm",
    "check_feed_forward",
    "check_encoder_block",
    "check_pre_norm_block",
    "check_attention_pool",
    "check_soft_align",
    "check_patchify",
    "check_seasonal_naive",
    "check_mase",
    "check_online_softmax_update",
    "check_attention_block_update",
    "check_cached_attention_step",
    "check_linear_attention",
]


def _say(message: object) -> None:
    """Print a check's verdict wrapped to 75 characters, the width of the book's code column
    (and of a notebook's output beside it), so that no output scrolls sideways."""
    print(textwrap.fill(str(message), width=75, subsequent_indent="  ", break_long_words=False,
                        break_on_hyphens=False))


class NotAttempted(AssertionError):
    """The exercise still raises ``NotImplementedError``."""


def _reports_not_attempted(check: Callable[..., None]) -> Callable[..., None]:
    """Make ``check`` print "not attempted yet" instead of raising, except under nbgrader.

    nbgrader sets ``NBGRADER_EXECUTION`` (to "autograde" or "validate") while it runs a
    submission; there an untouched exercise must fail its graded cell. In a learner's
    session the message is enough, and raising would stop "Run All" at the first exercise.
    """

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except NotAttempted as exc:
            if os.environ.get("NBGRADER_EXECUTION"):
                raise
            _say(exc)
            return None

    return wrapper


@contextmanager
def _attempt(exercise: str) -> Iterator[None]:
    try:
        yield
    except NotImplementedError:
        raise NotAttempted(
            f"{exercise}: not attempted yet. Replace `raise NotImplementedError()` with your code, "
            f"run the cell, then run this check again."
        ) from None
    except AssertionError:
        raise
    except Exception as exc:  # the learner's code crashed: say so, with the shapes we passed
        raise AssertionError(
            f"{exercise} raised {type(exc).__name__}: {exc}. Check the shapes in the exercise text "
            f"(a matrix product needs the inner sizes to agree; .T transposes)."
        ) from exc


def _as_array(name: str, x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if x is None:
        raise AssertionError(f"{name} returned None: did you forget `return`?")
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} must be an array, got {type(x).__name__}") from None


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in idx) + "]"


def _compare(what: str, got: object, expected: np.ndarray, *, atol: float = 1e-6, legend: str = "") -> None:
    """Shape, finiteness, then the entry that differs most."""
    got = _as_array(what, got)
    if got.shape != expected.shape:
        hint = ""
        if got.shape == expected.shape[::-1]:
            hint = " (it looks transposed)"
        elif got.size == expected.size:
            hint = " (same number of entries: a reshape or transpose is off)"
        raise AssertionError(
            f"{what} has shape {got.shape} but should have shape {expected.shape}{legend}{hint}"
        )
    if not np.all(np.isfinite(got)):
        bad = _fmt_index(tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0]))
        raise AssertionError(
            f"{what} contains inf or NaN, first at {bad}: an exponential overflowed or you divided by zero"
        )
    diff = np.abs(got - expected)
    if diff.max() > atol:
        idx = np.unravel_index(int(diff.argmax()), diff.shape)
        raise AssertionError(
            f"{what}: entry {_fmt_index(tuple(int(i) for i in idx))} is {got[idx]:.6g} but should be "
            f"{expected[idx]:.6g} (off by {diff[idx]:.3g})"
        )


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _unchanged(name: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after):
        raise AssertionError(f"{name} was modified in place; work on a copy (e.g. x - x.max(...) makes a new array)")


# --------------------------------------------------------------------------- chapter 0


@_reports_not_attempted
def check_softmax(softmax: Callable[[np.ndarray], np.ndarray]) -> None:
    """Exercise: a numerically stable softmax over the last axis of a NumPy array."""
    with _attempt("softmax"):
        x1 = np.array([0.5, -1.0, 2.0, 0.0])
        _compare("softmax of a vector", softmax(x1.copy()), reference.softmax(x1))

        x2 = _rng(0).normal(size=(3, 5))
        x2_before = x2.copy()
        got = _as_array("softmax of a (3, 5) matrix", softmax(x2))
        _unchanged("the input", x2_before, x2)
        if got.shape == x2.shape and np.allclose(got.sum(axis=0), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                "softmax of a (3, 5) matrix: the columns sum to 1 but the rows should: normalise over the "
                "last axis (axis=-1, with keepdims=True), not axis 0"
            )
        if got.shape == x2.shape and np.isclose(got.sum(), 1.0) and not np.allclose(got.sum(axis=-1), 1.0):
            raise AssertionError(
                "softmax of a (3, 5) matrix: the whole matrix sums to 1 but each row should: "
                "take the max and the sum along axis=-1 with keepdims=True"
            )
        _compare("softmax of a (3, 5) matrix", got, reference.softmax(x2))

        extremes = (
            ([1e4, -1e4, 0.0], "subtract the *largest* score (not the smallest or the mean), so that every "
                               "exponent is at most 0"),
            ([1000.0, 999.0, 998.0], "exp(1000) overflows. Subtract the largest score first; "
                                     "softmax(x - max(x)) equals softmax(x)"),
        )
        for values, hint in extremes:
            x = np.array(values)
            label = f"softmax({values})"
            with np.errstate(all="ignore"):
                got = _as_array(label, softmax(x.copy()))
            if not np.all(np.isfinite(got)):
                raise AssertionError(f"{label} gives inf or NaN: {hint}")
            _compare(label, got, reference.softmax(x))
    _say("softmax: correct, stable for large scores, and row-wise on matrices.")


def _attention_inputs(seed: int, L: int, S: int, E: int, Ev: int, scale: float = 0.6):
    rng = _rng(seed)
    q = rng.normal(scale=scale, size=(L, E))
    k = rng.normal(scale=scale, size=(S, E))
    v = rng.normal(size=(S, Ev))
    return q, k, v


def _scale_hints(what: str, got: np.ndarray, q: np.ndarray, k: np.ndarray, expected: np.ndarray) -> None:
    """Recognise the usual scaling mistakes before the generic comparison."""
    E = q.shape[-1]
    scores = q @ k.T
    variants = {
        "you did not divide the scores by sqrt(E)": reference.softmax(scores),
        "you divided the scores by E instead of sqrt(E)": reference.softmax(scores / E),
        "you multiplied the scores by sqrt(E) instead of dividing": reference.softmax(scores * np.sqrt(E)),
    }
    if got.shape != expected.shape:
        return
    for hint, wrong in variants.items():
        wrong = wrong.reshape(expected.shape)
        if not np.allclose(wrong, expected, atol=1e-3) and np.allclose(got, wrong, atol=1e-6):
            raise AssertionError(f"{what}: {hint} (E={E})")


@_reports_not_attempted
def check_attention_weights(attention_weights: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the weights a_j = softmax_j(q·k_j / sqrt(E)) of one query over S keys."""
    with _attempt("attention_weights"):
        q, k, _ = _attention_inputs(1, 1, 5, 8, 3)
        q = q[0]  # (E,)
        expected = reference.softmax(k @ q / np.sqrt(q.shape[0]))  # (S,)
        got = _as_array("attention_weights(query, keys)", attention_weights(q.copy(), k.copy()))
        if got.shape == expected.shape and not np.isclose(got.sum(), 1.0):
            raise AssertionError(
                f"attention_weights(query, keys) sums to {got.sum():.4g}, not 1: apply a softmax to the scores"
            )
        _scale_hints("attention_weights(query, keys)", got, q[None, :], k, expected)
        _compare("attention_weights(query, keys)", got, expected, legend=" (S,), one weight per key")
    _say("attention_weights: correct: scaled scores, softmax over the keys.")


@_reports_not_attempted
def check_context(context: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the context c = sum_j a_j v_j for weights (S,) and values (S, Ev)."""
    with _attempt("context"):
        rng = _rng(2)
        a = reference.softmax(rng.normal(size=5))  # (S,)
        v = rng.normal(size=(5, 3))  # (S, Ev)
        expected = a @ v  # (Ev,)
        got = _as_array("context(weights, values)", context(a.copy(), v.copy()))
        if got.shape == expected.shape and np.allclose(got, v.mean(axis=0)):
            raise AssertionError("context(weights, values) is the plain mean of the values: weight each value by a_j")
        if got.shape == expected.shape and np.allclose(got, v.sum(axis=0)):
            raise AssertionError("context(weights, values) is the plain sum of the values: weight each value by a_j")
        if got.shape == (5,):
            raise AssertionError(
                "context(weights, values) has shape (S,) = (5,) but should be (Ev,) = (3,): "
                "sum over the keys (axis 0 of values), one number per value feature"
            )
        _compare("context(weights, values)", got, expected, legend=" (Ev,)")
    _say("context: correct: the weighted sum of the values.")


def _check_attention_case(attention: Callable, q: np.ndarray, k: np.ndarray, v: np.ndarray, label: str) -> None:
    expected_c, expected_a = reference.scaled_dot_product_attention(q, k, v)
    result = attention(q.copy(), k.copy(), v.copy())
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError(f"attention{label} must return a pair (context, weights), got {type(result).__name__}")
    c, a = (_as_array(f"attention{label}", r) for r in result)
    L, S = expected_a.shape
    if a.shape == expected_a.shape:
        if np.allclose(a.sum(axis=0), 1.0) and not np.allclose(a.sum(axis=1), 1.0):
            raise AssertionError(
                f"weights{label}: each column sums to 1, but each row (one query) should: "
                f"softmax over the keys, axis=-1"
            )
        if np.allclose(a, 1.0 / S) and not np.allclose(expected_a, 1.0 / S):
            raise AssertionError(f"weights{label} are uniform (1/S everywhere): the scores are not used")
        naive_k = q @ k if q.shape[1] == k.shape[0] else None  # K not transposed (runs only when E == S)
        if naive_k is not None and np.allclose(a, reference.softmax(naive_k / np.sqrt(q.shape[1]))):
            raise AssertionError(f"weights{label}: you multiplied Q by K, not by K transposed (Q @ K.T)")
        _scale_hints(f"weights{label}", a, q, k, expected_a)
    _compare(f"weights{label}", a, expected_a, legend=" (L, S): one row per query, one column per key")
    if c.shape == expected_c.shape and np.allclose(c, np.broadcast_to(v.mean(axis=0), c.shape)):
        raise AssertionError(f"context{label} is the mean of the values for every query: use the weights, A @ V")
    _compare(f"context{label}", c, expected_c, legend=" (L, Ev): one row per query")


@_reports_not_attempted
def check_attention(attention: Callable) -> None:
    """Exercise: C, A = attention(Q, K, V) with A = softmax(Q Kᵀ / sqrt(E)) (L, S) and C = A V (L, Ev)."""
    with _attempt("attention"):
        q, k, v = _attention_inputs(3, 2, 5, 4, 3)
        _check_attention_case(attention, q, k, v, " for L=2, S=5, E=4, Ev=3")
        q, k, v = _attention_inputs(4, 4, 4, 4, 4)  # square: a missing transpose still runs
        _check_attention_case(attention, q, k, v, " for L=S=E=Ev=4")
    _say("attention: correct: A = softmax(Q Kᵀ / √E) row by row, C = A V.")


@_reports_not_attempted
def check_masked_attention(masked_attention: Callable) -> None:
    """Exercise: attention with a bool mask (True = may attend); an all-False row gives zero weights and output."""
    with _attempt("masked_attention"):
        q, k, v = _attention_inputs(5, 4, 5, 3, 2)
        mask = np.array(
            [[True, True, False, False, True], [False, True, True, True, False],
             [False, False, False, False, False], [True, False, False, False, False]]
        )
        expected_c, expected_a = reference.scaled_dot_product_attention(q, k, v, mask)
        result = masked_attention(q.copy(), k.copy(), v.copy(), mask.copy())
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError("masked_attention must return a pair (context, weights)")
        c, a = (_as_array("masked_attention", r) for r in result)
        if a.shape == expected_a.shape:
            if not np.isfinite(a[2]).all():
                raise AssertionError(
                    "weights row 2 (every key masked) is NaN: softmax of all -inf is 0/0. Give such rows zero weights"
                )
            if np.allclose(a[2], 1.0 / a.shape[1]):
                raise AssertionError(
                    "weights row 2 has every key masked, and you gave it uniform weights (1/S): a fully masked "
                    "row must get zero weights and a zero output"
                )
            _, inverted_a = reference.scaled_dot_product_attention(q, k, v, ~mask)
            if np.all(np.isfinite(a)) and np.allclose(a, inverted_a, atol=1e-6):
                raise AssertionError("weights: the mask is inverted: True means *may attend*; block where it is False")
            if np.any(a[~mask] > 1e-9):
                i, j = (int(t) for t in np.argwhere((~mask) & (a > 1e-9))[0])
                raise AssertionError(f"weights[{i}, {j}] = {a[i, j]:.3g} but key {j} is masked for query {i}: it must be 0")
        _compare("weights", a, expected_a, legend=" (L, S)")
        _compare("context", c, expected_c, legend=" (L, Ev)")
    _say("masked_attention: correct, including the fully masked row.")


# --------------------------------------------------------------------------- later chapters


@_reports_not_attempted
def check_add_positional_encoding(add_positional_encoding: Callable) -> None:
    """Exercise: add a (P, D) position table to batch-first input (B, T, D): position t gets row t."""
    with _attempt("add_positional_encoding"):
        B, T, D = 3, 5, 8
        pe = sinusoidal_encoding(16, D)  # (P, D)
        x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(6))
        expected = (x + pe[:T]).numpy()  # (B, T, D)
        got = _as_array("add_positional_encoding(x, pe)", add_positional_encoding(x.clone(), pe.clone()))
        if got.shape == expected.shape:
            added = got - x.numpy()  # what was added, (B, T, D)
            if np.allclose(added, added[:, :1, :], atol=1e-5) and not np.allclose(added, added[:1], atol=1e-5):
                raise AssertionError(
                    "every token of a sequence got the same position vector, and each sequence a different one: "
                    "the encoding was indexed by the batch axis (a sequence-first (T, B, D) habit). "
                    "For batch-first x (B, T, D) add pe[:T], which broadcasts as (T, D) over B"
                )
        _compare("add_positional_encoding(x, pe)", got, expected, atol=1e-5, legend=" (B, T, D)")
    _say("add_positional_encoding: correct: position t of every sequence gets row t.")


@_reports_not_attempted
def check_multihead_forward(multihead_forward: Callable) -> None:
    """Exercise: multi-head self-attention from weight matrices, bias-free:
    ``multihead_forward(x, w_q, w_k, w_v, w_o, num_heads) -> (B, T, D)``, weights (D, D) as in ``x @ w``.
    """
    with _attempt("multihead_forward"):
        B, T, D, H = 2, 4, 8, 2
        gen = torch.Generator().manual_seed(7)
        x = torch.randn(B, T, D, generator=gen)
        w_q, w_k, w_v, w_o = (torch.randn(D, D, generator=gen) / D**0.5 for _ in range(4))
        ref = MultiHeadAttention(D, H, bias=False)
        with torch.no_grad():
            for proj, w in ((ref.q_proj, w_q), (ref.k_proj, w_k), (ref.v_proj, w_v), (ref.out_proj, w_o)):
                proj.weight.copy_(w.T)  # nn.Linear computes x @ weight.T
            expected, _ = ref(x, x, x)
        got = _as_array(
            "multihead_forward", multihead_forward(x.clone(), w_q.clone(), w_k.clone(), w_v.clone(), w_o.clone(), H)
        )
        expected = expected.numpy()
        if got.shape == expected.shape:
            with torch.no_grad():
                no_out, _ = ref(x, x, x)
                no_out = no_out @ torch.linalg.inv(w_o)  # undo W_o: the merged heads
            if np.allclose(got, no_out.numpy(), atol=1e-4):
                raise AssertionError(
                    "the output is the concatenated heads without the output projection: multiply by w_o last"
                )
        _compare("multihead_forward", got, expected, atol=1e-4, legend=" (B, T, D)")
    _say("multihead_forward: correct: split, attend per head, concatenate, project with W_o.")


# --------------------------------------------------------------------------- chapter 1: the seq2seq bottleneck


def _long_vector(what: str, x: object) -> torch.Tensor:
    if x is None:
        raise AssertionError(f"{what} is None: did you forget `return`?")
    if not isinstance(x, torch.Tensor):
        raise AssertionError(f"{what} must be a torch tensor of token ids, got {type(x).__name__}")
    if x.dtype != torch.long:
        raise AssertionError(
            f"{what} has dtype {x.dtype} but token ids are int64 (torch.long): nn.Embedding and the "
            f"cross-entropy loss take LongTensors. Build it from the target itself, e.g. with torch.cat"
        )
    if x.dim() != 1:
        raise AssertionError(f"{what} has shape {tuple(x.shape)} but should be 1-D, one id per step")
    return x


def _number(what: str, x: object) -> float:
    """A Python number, a NumPy scalar or a 0-d tensor, as a float."""
    if x is None:
        raise AssertionError(f"{what} is None: did you forget `return`?")
    if isinstance(x, torch.Tensor) and x.numel() != 1:
        raise AssertionError(f"{what} must be one number, got a tensor of shape {tuple(x.shape)}: reduce with .sum()")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be one number, got {type(x).__name__}") from None


@_reports_not_attempted
def check_teacher_forcing(teacher_forcing: Callable) -> None:
    """Exercise: ``teacher_forcing(target_ids, bos_id, eos_id) -> (decoder_inputs, labels)``,
    inputs = [bos] + target, labels = target + [eos], both 1-D LongTensors of length T + 1."""
    with _attempt("teacher_forcing"):
        for values, bos, eos in (([5, 7, 4, 9], 1, 2), ([12, 3, 3], 10, 11)):
            target = torch.tensor(values)
            result = teacher_forcing(target, bos, eos)
            if not torch.equal(target, torch.tensor(values)):
                raise AssertionError("target_ids was modified in place; build new tensors (torch.cat makes one)")
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"teacher_forcing must return a pair (decoder_inputs, labels), got {type(result).__name__}"
                )
            label = f"for target {values}, bos_id={bos}, eos_id={eos}"
            inputs = _long_vector(f"decoder_inputs {label}", result[0]).tolist()
            labels = _long_vector(f"labels {label}", result[1]).tolist()
            exp_inputs, exp_labels = [bos] + values, values + [eos]
            if inputs == exp_labels and labels == exp_inputs:
                raise AssertionError(
                    f"teacher_forcing {label}: you returned (labels, decoder_inputs); return (decoder_inputs, labels)"
                )
            if inputs == values:
                raise AssertionError(
                    f"decoder_inputs {label} are the target itself, not shifted: put <bos> in front, "
                    f"[<bos>] + target. At step t the decoder is fed the token *before* t (and <bos> at step 1), "
                    f"never the token it has to predict"
                )
            if inputs == values + [bos]:
                raise AssertionError(
                    f"decoder_inputs {label} end with <bos>: it goes in front, [<bos>] + target, since it is "
                    f"what the decoder is fed at the first step"
                )
            if labels == values:
                raise AssertionError(
                    f"labels {label} lack the final <eos>: append it, target + [<eos>]. Without an <eos> to "
                    f"predict, the model never learns to stop"
                )
            if labels == exp_inputs:
                raise AssertionError(
                    f"labels {label} equal the decoder inputs, so each step would learn to copy its input: the "
                    f"label of step t is the *next* token, the inputs shifted left by one: target + [<eos>]"
                )
            for what, got, expected in (("decoder_inputs", inputs, exp_inputs), ("labels", labels, exp_labels)):
                if got != expected:
                    raise AssertionError(f"{what} {label} is {got} but should be {expected}")
    _say("teacher_forcing: correct: the inputs start with <bos>, the labels end with <eos>.")


@_reports_not_attempted
def check_final_states(final_states: Callable) -> None:
    """Exercise: ``final_states(states (B, S, D), lengths (B,)) -> (B, D)``, the state at index lengths - 1."""
    with _attempt("final_states"):
        gen = torch.Generator().manual_seed(11)
        B, S, H = 4, 6, 3
        for lengths in (torch.tensor([6, 2, 4, 1]), torch.tensor([3, 5, 2, 4])):
            real = torch.arange(S)[None, :] < lengths[:, None]  # (B, S), True = a real token
            states = torch.randn(B, S, H, generator=gen) * real[..., None]  # (B, S, D), zeros at padding
            states_before, lengths_before = states.clone(), lengths.clone()
            label = f"final_states for lengths {lengths.tolist()} and S={S}"
            try:
                result = final_states(states, lengths)
            except (IndexError, RuntimeError) as exc:
                if "out of bounds" not in str(exc) and "out of range" not in str(exc):
                    raise
                raise AssertionError(
                    f"{label} raised {type(exc).__name__}: {exc}. A sequence's last real "
                    f"token is at index length - 1, so take index lengths - 1: a full-length sequence has no index S"
                ) from exc
            if not (torch.equal(states, states_before) and torch.equal(lengths, lengths_before)):
                raise AssertionError(f"{label}: an input was modified in place; index it, do not assign into it")
            got = _as_array(label, result)
            expected = states[torch.arange(B), lengths - 1].numpy()  # (B, D)
            x = states.numpy()
            if got.shape == expected.shape:
                if np.allclose(got, x[:, -1]):
                    rows = [b for b in range(B) if lengths[b] < S]
                    raise AssertionError(
                        f"{label}: rows {rows} are all zeros: states[:, -1] is the last *padded* position, which "
                        f"is padding for every sequence shorter than S. Take each sequence's state at its own "
                        f"last real token, index lengths - 1 (e.g. states[torch.arange(B), lengths - 1])"
                    )
                if np.allclose(got, x[:, 0]):
                    raise AssertionError(
                        f"{label}: that is the state after the *first* token; the encoder's summary is the state "
                        f"after the last real token, index lengths - 1"
                    )
                shifted = x[np.arange(B), np.minimum(lengths.numpy(), S - 1)]
                if int(lengths.max()) < S and np.allclose(got, shifted):
                    raise AssertionError(
                        f"{label}: off by one, you took index lengths, the first padding position: "
                        f"positions count from 0, so the last real token is at index lengths - 1"
                    )
                if np.allclose(got, x.mean(axis=1)) or np.allclose(got, x.sum(axis=1) / lengths.numpy()[:, None]):
                    raise AssertionError(
                        f"{label}: you took the mean over time: the fixed context c of chapter 1 is the encoder's "
                        f"*last* real state (index lengths - 1), the one the GRU has folded every token into"
                    )
            _compare(label, got, expected, atol=1e-6, legend=" (B, D): one state per sequence")
    _say("final_states: correct: each sequence's state at its last real token.")


class _ToyDecoder:
    """``step(token_id, state) -> (logits (vocab_size,), new state)`` for checking greedy decoding.

    The next token is looked up in a table from the token fed in, so feeding the
    wrong token changes the rest of the sequence. The state is ``tensor([steps_left])``;
    when it reaches 0 the step predicts ``<eos>``, so a decoder that does not pass
    the new state on never stops. Every call is recorded.
    """

    V, BOS, EOS = 10, 1, 2
    TABLE = {0: 4, 1: 5, 2: 6, 3: 7, 4: 8, 5: 3, 6: 9, 7: 4, 8: 6, 9: 3}  # bos -> 5 -> 3 -> 7 -> 4 -> 8 -> 6 -> 9 -> 3

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(12)
        self.noise = torch.rand(self.V, self.V, generator=gen)  # (vocab_size, vocab_size), moderate logits in [0, 1)
        self.calls: list[tuple[int, int]] = []  # (token fed, steps left)

    def __call__(self, token_id: int, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        token, steps_left = int(token_id), int(state[0])
        self.calls.append((token, steps_left))
        nxt = self.EOS if steps_left <= 0 else self.TABLE[token]
        logits = self.noise[token].clone()  # (vocab_size,)
        logits[nxt] += 2.0
        return logits, state - 1

    def expected(self, steps_left: int, max_len: int) -> list[int]:
        ids, token = [], self.BOS
        for _ in range(max_len):
            token = self.EOS if steps_left <= 0 else self.TABLE[token]
            steps_left -= 1
            ids.append(token)
            if token == self.EOS:
                break
        return ids


@_reports_not_attempted
def check_greedy_decode(greedy_decode: Callable) -> None:
    """Exercise: ``greedy_decode(step, state, bos_id, eos_id, max_len) -> list of ids``: feed back each
    argmax, stop after producing ``<eos>`` (included) or after ``max_len`` ids."""
    with _attempt("greedy_decode"):
        bos, eos = _ToyDecoder.BOS, _ToyDecoder.EOS
        for steps_left, max_len in ((4, 10), (50, 6)):
            step = _ToyDecoder()
            expected = step.expected(steps_left, max_len)
            label = f"greedy_decode(step, state, bos_id={bos}, eos_id={eos}, max_len={max_len})"
            result = greedy_decode(step, torch.tensor([steps_left]), bos, eos, max_len)
            if result is None:
                raise AssertionError(f"{label} returned None: did you forget `return`?")
            try:
                got = [int(i) for i in result]
            except (TypeError, ValueError):
                raise AssertionError(f"{label} must return a list of token ids (ints), got {result!r}") from None
            fed = [token for token, _ in step.calls]
            if fed and fed[0] != bos:
                raise AssertionError(f"{label}: the first token you fed was {fed[0]}; the first input is <bos> = {bos}")
            if len(fed) > 1 and all(token == bos for token in fed):
                raise AssertionError(
                    f"{label}: you fed <bos> at every step. Greedy decoding is autoregressive: each step is fed "
                    f"the token the previous step predicted (its argmax)"
                )
            for t in range(1, min(len(fed), len(got) + 1)):
                if fed[t] != got[t - 1]:
                    raise AssertionError(
                        f"{label}: at step {t} you fed token {fed[t]}, but step {t - 1} predicted {got[t - 1]}: "
                        f"feed back the prediction you just made, not the previous input"
                    )
            for t, (_, left) in enumerate(step.calls):
                if left != steps_left - t:
                    raise AssertionError(
                        f"{label}: step {t} was not given the state that step {t - 1} returned: "
                        f"`logits, state = step(token, state)` carries the state from each step to the next"
                    )
            if eos in got and got.index(eos) < len(got) - 1:
                raise AssertionError(
                    f"{label} returned {got}: it went on after producing <eos> = {eos}: stop right after <eos>"
                )
            if got == expected[:-1] and expected[-1] == eos:
                raise AssertionError(
                    f"{label} returned {got}, without the final <eos> = {eos}: include it (the loop stops "
                    f"*after* producing it), so that the caller can tell a finished sequence from a cut-off one"
                )
            if eos not in got and len(got) != max_len:
                raise AssertionError(
                    f"{label} returned {len(got)} ids without reaching <eos>: it should produce exactly "
                    f"max_len = {max_len} ids (off by one?)"
                )
            if got != expected:
                raise AssertionError(f"{label} returned {got} but should return {expected}")
    _say("greedy_decode: correct: each prediction fed back, stopping at <eos> or max_len.")


@_reports_not_attempted
def check_token_accuracy(token_accuracy: Callable) -> None:
    """Exercise: ``token_accuracy(predictions (B, T), targets (B, T), pad_id=0) -> float``, the share of
    non-padding target positions where the prediction matches."""
    with _attempt("token_accuracy"):
        targets = torch.tensor([[4, 5, 6, 7, 8, 2], [3, 9, 2, 0, 0, 0], [6, 2, 0, 0, 0, 0]])  # (B, T)
        predictions = torch.tensor([[4, 5, 1, 7, 8, 2], [3, 4, 2, 0, 5, 0], [6, 3, 0, 0, 0, 0]])  # (B, T)
        real = targets != 0  # (B, T)
        hits = (predictions == targets) & real
        expected = hits.sum().item() / real.sum().item()  # 8 / 11
        label = "token_accuracy(predictions, targets)"
        got = _number(label, token_accuracy(predictions.clone(), targets.clone()))
        wrong = {
            f"{hits.sum().item()} is a count of correct tokens; return a share: divide by the number of "
            f"non-padding target tokens ({real.sum().item()})": float(hits.sum()),
            "you counted the padding positions too (a padded prediction of 0 matches a padded target for "
            "free): count only the positions where targets != pad_id":
                (predictions == targets).float().mean().item(),
            "you averaged per sequence and then over the batch, so a token of a short sequence weighs more "
            "than one of a long sequence: pool every real token, correct / total":
                (hits.sum(1) / real.sum(1)).mean().item(),
            "you compared only the first position of each sequence: compare every non-padding position":
                (predictions[:, 0] == targets[:, 0]).float().mean().item(),
        }
        for hint, value in wrong.items():
            if abs(got - value) < 1e-6:
                raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {hint}")
        if abs(got - expected) > 1e-6:
            raise AssertionError(
                f"{label} is {got:.6g} but should be {expected:.6g} (the targets have {real.sum().item()} "
                f"non-padding tokens, {hits.sum().item()} of them predicted correctly)"
            )
        perfect = _number(label, token_accuracy(targets.clone(), targets.clone()))
        if abs(perfect - 1.0) > 1e-6:
            raise AssertionError(f"token_accuracy(targets, targets) is {perfect:.6g} but should be 1")
    _say("token_accuracy: correct: the share of real (non-padding) tokens predicted in place.")


# --------------------------------------------------------------------------- chapter 2: soft attention


@_reports_not_attempted
def check_contexts(contexts: Callable) -> None:
    """Exercise: ``contexts(weights (T, S), states (S, D)) -> (T, D)``, c_t = sum_i a_ti h_i."""
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


# --------------------------------------------------------------------------- chapter 3: scoring rules


def _call_pure(label: str, fn: Callable, *args: tuple[str, object]) -> object:
    """``fn(*values)``; fail if it changed a tensor argument in place (its values or its shape)."""
    before = [v.detach().clone() if isinstance(v, torch.Tensor) else v for _, v in args]
    result = fn(*(v for _, v in args))
    for (name, v), old in zip(args, before):
        if isinstance(v, torch.Tensor) and not (v.shape == old.shape and torch.equal(v.detach(), old)):
            raise AssertionError(
                f"{label} modified its argument `{name}` in place: never change an input. Methods ending in "
                f"an underscore (t_, div_, masked_fill_) and augmented assignments (q /= ...) write into the "
                f"caller's tensor; write k.T, q / scale or masked_fill(...) to get a new one"
            )
    return result


def _reject_known(label: str, got: np.ndarray, expected: torch.Tensor, wrong: dict, atol: float = 1e-5) -> None:
    """Raise the hint of the first wrong answer that ``got`` matches (and the right answer does not)."""
    expected = expected.detach().numpy()
    if got.shape != expected.shape:
        return
    for hint, value in wrong.items():
        value = value.detach().numpy()
        if value.shape != got.shape or np.allclose(value, expected, atol=atol):
            continue  # not a mistake these inputs can reveal
        if np.allclose(got, value, atol=atol):
            raise AssertionError(f"{label}: {hint}")


_SCORES_LEGEND = " (L, S): one row per query, one column per key"


def _pair_inputs(seed: int, L: int, S: int, Eq: int, Ek: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(L, Eq, generator=gen), torch.randn(S, Ek, generator=gen), gen


def _dot_wrong(q: torch.Tensor, k: torch.Tensor, scale: float) -> dict:
    """The mistakes both dot-product exercises share (scores = q @ k.T * scale): transposes, an
    elementwise product, a softmax."""
    (L, E), S = q.shape, k.shape[0]
    expected = q @ k.T * scale  # (L, S)
    wrong = {
        "these are weights (each row sums to 1), not scores: return the raw scores; the softmax "
        "comes later, in the attention itself": torch.softmax(expected, dim=-1),
    }
    if L == S:
        wrong["the result is transposed: row i must hold query i's scores against every key, "
              "so compute q @ k.T (L, S), not k @ q.T (S, L)"] = expected.T
    if E == S:
        wrong["you multiplied q by k, not by k transposed: q @ k only runs because E = S here. "
              "Each score is the dot product of a query row with a key row: q @ k.T"] = q @ k * scale
    if L == S:
        wrong["you multiplied elementwise (q * k): that pairs query i with key i only. The score of "
              "query i and key j is the sum over the E features of q[i] * k[j]: the matrix product "
              "q @ k.T"] = (q * k) * scale
    return wrong


@_reports_not_attempted
def check_dot_scores(dot_scores: Callable) -> None:
    """Exercise: ``dot_scores(q (L, E), k (S, E)) -> (L, S)``, score[i, j] = q_i · k_j."""
    with _attempt("dot_scores"):
        for seed, (L, S, E) in ((31, (4, 4, 4)), (32, (3, 5, 4))):  # square first: a missing .T still runs
            q, k, _ = _pair_inputs(seed, L, S, E, E)
            label = f"dot_scores for L={L}, S={S}, E={E}"
            got = _as_array(label, _call_pure(label, dot_scores, ("q", q), ("k", k)))
            expected = q @ k.T  # (L, S)
            wrong = _dot_wrong(q, k, 1.0)
            wrong["you scaled the scores by 1/sqrt(E): that is the next exercise. The plain dot-product "
                  "score is q @ k.T"] = expected / E**0.5
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("dot_scores: correct: q @ k.T, one score per (query, key) pair.")


@_reports_not_attempted
def check_scaled_dot_scores(scaled_dot_scores: Callable) -> None:
    """Exercise: ``scaled_dot_scores(q (L, E), k (S, E)) -> (L, S)``, q kᵀ / sqrt(E)."""
    with _attempt("scaled_dot_scores"):
        for seed, (L, S, E) in ((33, (4, 4, 4)), (34, (3, 5, 4)), (35, (2, 9, 6))):
            q, k, _ = _pair_inputs(seed, L, S, E, E)
            label = f"scaled_dot_scores for L={L}, S={S}, E={E}"
            got = _as_array(label, _call_pure(label, scaled_dot_scores, ("q", q), ("k", k)))
            dot = q @ k.T  # (L, S)
            expected = dot / E**0.5
            wrong = _dot_wrong(q, k, 1 / E**0.5)
            wrong.update({
                f"you did not divide by sqrt(E) = {E**0.5:.3g}: these are the plain dot-product scores. "
                f"A dot product of E unit-variance features has variance E; dividing by sqrt(E) brings "
                f"it back to 1": dot,
                f"you divided by E = {E} instead of sqrt(E) = {E**0.5:.3g}: the standard deviation of a "
                f"dot product of E features grows like sqrt(E), not E": dot / E,
                "you multiplied by sqrt(E) instead of dividing": dot * E**0.5,
                f"you divided by sqrt(S) = sqrt({S}), the number of keys: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / S**0.5,
                f"you divided by sqrt(L) = sqrt({L}), the number of queries: the scale is sqrt(E), the "
                f"number of features each dot product sums over (q.shape[-1])": dot / L**0.5,
            })
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("scaled_dot_scores: correct: q @ k.T / sqrt(E).")


@_reports_not_attempted
def check_general_scores(general_scores: Callable) -> None:
    """Exercise: ``general_scores(q (L, Eq), k (S, Ek), W (Eq, Ek)) -> (L, S)``, q W kᵀ."""
    with _attempt("general_scores"):
        for seed, (L, S, Eq, Ek) in ((36, (4, 4, 4, 4)), (37, (3, 5, 4, 2))):  # square first: W.T still runs
            q, k, gen = _pair_inputs(seed, L, S, Eq, Ek)
            W = torch.randn(Eq, Ek, generator=gen) * 0.5  # (Eq, Ek), not symmetric
            label = f"general_scores for L={L}, S={S}, Eq={Eq}, Ek={Ek}"
            got = _as_array(label, _call_pure(label, general_scores, ("q", q), ("k", k), ("W", W)))
            expected = q @ W @ k.T  # (L, Eq) @ (Eq, Ek) @ (Ek, S) -> (L, S)
            wrong = {}
            if Eq == Ek:
                wrong["W is not used: q @ k.T is the dot score. The general score puts the learned matrix "
                      "between them, q @ W @ k.T, so that queries and keys may differ in size "
                      "and in meaning"] = q @ k.T
                wrong["you used W transposed: W is (Eq, Ek), so q @ W maps each query (Eq) into the key "
                      "space (Ek), where it is compared with the keys: q @ W @ k.T"] = q @ W.T @ k.T
            if Eq == Ek and L == S:
                wrong["you computed k @ W @ q.T, which is the transposed result with W transposed: the "
                      "query goes on the left, q @ W @ k.T, so that row i holds query i's scores"] = k @ W @ q.T
                wrong["the result is transposed: row i must hold query i's scores, q @ W @ k.T (L, S)"] = expected.T
            if L == Eq == Ek:
                wrong["you multiplied q and W elementwise (q * W): that only runs because L = Eq = Ek here. "
                      "Use the matrix product, q @ W @ k.T"] = (q * W) @ k.T
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("general_scores: correct: q @ W @ k.T.")


def _concat_inputs(seed: int, L: int, S: int, Eq: int, Ek: int, A: int):
    q, k, gen = _pair_inputs(seed, L, S, Eq, Ek)
    W = torch.randn(A, Eq + Ek, generator=gen) * 0.5  # (A, Eq + Ek): tanh not saturated
    v = torch.randn(A, generator=gen)  # (A,)
    return q, k, W, v


@_reports_not_attempted
def check_concat_scores(concat_scores: Callable) -> None:
    """Exercise: ``concat_scores(q (L, Eq), k (S, Ek), W (A, Eq + Ek), v (A,)) -> (L, S)``,
    score[i, j] = v · tanh(W [q_i; k_j])."""
    with _attempt("concat_scores"):
        for seed, (L, S, Eq, Ek, A) in ((38, (3, 5, 4, 2, 3)), (39, (4, 4, 3, 3, 5))):
            q, k, W, v = _concat_inputs(seed, L, S, Eq, Ek, A)
            label = f"concat_scores for L={L}, S={S}, Eq={Eq}, Ek={Ek}, A={A}"
            got = _as_array(label, _call_pure(label, concat_scores, ("q", q), ("k", k), ("W", W), ("v", v)))
            expected = scores.concat_scores(q, k, W, v)  # (L, S)
            pre = (q @ W[:, :Eq].T)[:, None, :] + (k @ W[:, Eq:].T)[None, :, :]  # (L, S, A): W [q_i; k_j]
            wrong = {
                "you concatenated [k; q]: the order is [q; k], so the first Eq columns of W act on the "
                "query and the last Ek on the key (torch.cat([q_i, k_j]))":
                    torch.tanh((k @ W[:, :Ek].T)[None, :, :] + (q @ W[:, Ek:].T)[:, None, :]) @ v,
                "there is no tanh: apply it to the A-vector W [q; k] before the dot product with v. "
                "Without it the score is a linear function of q and k, and the query's part is the same "
                "for every key (it cancels in the softmax)": pre @ v,
                "the tanh is applied after v: it acts on the A-vector W [q; k], then v turns the result "
                "into one number": torch.tanh(pre @ v),
                "you summed the A features instead of taking the dot product with v: v is a learned "
                "vector, v · tanh(...)": torch.tanh(pre).sum(dim=-1),
                "these are weights (each row sums to 1), not scores: return the raw scores":
                    torch.softmax(expected, dim=-1),
            }
            _reject_known(label, got, expected, wrong)
            if got.shape == tuple(expected.shape) and np.allclose(got, got[:, :1], atol=1e-6):
                raise AssertionError(
                    f"{label}: every key got the same score from a query, so the key is not used: W [q; k] "
                    f"needs the whole concatenation, the key's block W[:, Eq:] acting on k_j as well as "
                    f"the query's block W[:, :Eq] acting on q_i"
                )
            _compare(label, got, expected.numpy(), atol=1e-5, legend=_SCORES_LEGEND)
    _say("concat_scores: correct: v · tanh(W [q; k]) for every (query, key) pair.")


@_reports_not_attempted
def check_split_concat_weight(split_concat_weight: Callable) -> None:
    """Exercise: ``split_concat_weight(W (A, Eq + Ek), Eq) -> (W_q (A, Eq), W_k (A, Ek))`` such that
    ``additive_scores(q, k, W_q, W_k, v) == concat_scores(q, k, W, v)``."""
    with _attempt("split_concat_weight"):
        L, S, Eq, Ek, A = 3, 5, 4, 2, 5
        q, k, W, v = _concat_inputs(40, L, S, Eq, Ek, A)
        label = f"split_concat_weight(W, Eq={Eq}) for W of shape (A, Eq + Ek) = ({A}, {Eq + Ek})"
        result = _call_pure(label, split_concat_weight, ("W", W), ("Eq", Eq))
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError(f"split_concat_weight must return a pair (W_q, W_k), got {type(result).__name__}")
        W_q, W_k = (_as_array(label, r) for r in result)
        exp_q, exp_k = W[:, :Eq].numpy(), W[:, Eq:].numpy()  # (A, Eq), (A, Ek)
        swapped = W_q.shape == exp_k.shape and W_k.shape == exp_q.shape
        if swapped and np.allclose(W_q, exp_k) and np.allclose(W_k, exp_q):
            raise AssertionError(f"{label}: you returned (W_k, W_q): return (W_q, W_k)")
        if W_q.shape == exp_q.shape and np.allclose(W_q, W[:, Ek:].numpy()):
            raise AssertionError(
                f"{label}: W_q is the last Eq columns: W multiplies [q; k], the query first, so the first "
                f"Eq columns W[:, :Eq] act on the query and the remaining Ek columns W[:, Eq:] on the key"
            )
        for name, got, exp, letter in (("W_q", W_q, exp_q, "Eq"), ("W_k", W_k, exp_k, "Ek")):
            if got.shape != exp.shape and got.shape[::-1] != exp.shape:
                raise AssertionError(
                    f"{label}: {name} has shape {got.shape} but should be (A, {letter}) = {exp.shape}: W's "
                    f"columns are [query block | key block]; split along the columns, dim=1 "
                    f"(W[:, :Eq] and W[:, Eq:])"
                )
            _compare(f"{name}, {label}", got, exp, atol=0.0, legend=f" (A, {letter})")
        W_q, W_k = (torch.as_tensor(w, dtype=W.dtype) for w in (W_q, W_k))
        additive = scores.additive_scores(q, k, W_q, W_k, v)  # (L, S)
        _compare("additive_scores with your (W_q, W_k)", additive.numpy(), scores.concat_scores(q, k, W, v).numpy(),
                 atol=1e-5, legend=_SCORES_LEGEND)
    _say("split_concat_weight: correct: W [q; k] = W_q q + W_k k, so additive scores are concat scores.")


_reference_masked_softmax = masked_softmax  # the package's; the check below takes a learner's namesake


@_reports_not_attempted
def check_masked_softmax(masked_softmax: Callable) -> None:
    """Exercise: ``masked_softmax(scores, mask) -> weights``: softmax over the last axis where the bool
    ``mask`` (broadcastable to ``scores``) is True; a fully masked row gives zeros; stable for large scores."""
    with _attempt("masked_softmax"):
        gen = torch.Generator().manual_seed(41)

        # 1. one (L, S) matrix: row 2 fully masked, row 3 a single key; every column has a key
        x = torch.randn(4, 5, generator=gen)  # (L, S)
        mask = torch.tensor([[True, True, False, False, True], [False, True, True, True, False],
                             [False, False, False, False, False], [True, False, False, False, False]])
        label = "masked_softmax for scores (L, S) = (4, 5)"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        expected = _reference_masked_softmax(x, mask)  # (L, S)
        if got.shape == tuple(expected.shape):
            if not np.isfinite(got[2]).all():
                raise AssertionError(
                    f"{label}: row 2 has every key masked and came out NaN: the softmax of a row of -inf is "
                    f"0/0. A fully masked row must get zero weights: e.g. replace a row maximum of -inf by "
                    f"0 before subtracting it, and divide by a denominator that is never 0"
                )
            if np.allclose(got[2], 1.0 / got.shape[1]):
                raise AssertionError(
                    f"{label}: row 2 has every key masked, and it got uniform weights 1/S: that is what a "
                    f"fill of -1e9 (or any finite number) does, since every key of a fully masked row then "
                    f"has the same score. A fully masked row must get zero weights (a query with nothing to "
                    f"attend to): fill with -inf and handle the all -inf rows"
                )
            wrong = {
                "the mask is inverted: True means *may attend*, so block the keys where it is False "
                "(scores.masked_fill(~mask, float('-inf')))": _reference_masked_softmax(x, ~mask),
                "the mask was ignored: the masked keys got weight": torch.softmax(x, dim=-1),
                "you zeroed the masked weights after the softmax without renormalising, so the rows sum to "
                "less than 1: mask the scores (-inf) before the softmax": torch.softmax(x, dim=-1) * mask,
                "you normalised over the wrong axis: each column sums to 1, but each row (one query) "
                "should: the softmax runs over the keys, the last axis (dim=-1)":
                    _reference_masked_softmax(x, mask, dim=-2),
            }
            _reject_known(label, got, expected, wrong, atol=1e-6)
            leaked = np.argwhere(~mask.numpy() & (got != 0))
            if leaked.size:
                i, j = (int(t) for t in leaked[0])
                raise AssertionError(f"{label}: weights[{i}, {j}] = {got[i, j]:.3g} but key {j} is masked for "
                                     f"query {i}: it must be exactly 0")
        _compare(label, got, expected.numpy(), atol=1e-6, legend=_SCORES_LEGEND)

        # 2. a batch (B, L, S) with a padding mask (B, 1, S) that broadcasts over the queries
        x = torch.randn(2, 3, 5, generator=gen)  # (B, L, S)
        mask = (torch.arange(5) < torch.tensor([5, 3])[:, None])[:, None, :]  # (B, 1, S)
        label = "masked_softmax for scores (B, L, S) = (2, 3, 5) and a padding mask (B, 1, S)"
        got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6,
                 legend=" (B, L, S): the mask broadcasts over the L queries")

        # 3. large scores: exp(1000) overflows float32
        x = 1000.0 + 3.0 * torch.randn(3, 4, generator=gen)  # (L, S)
        mask = torch.tensor([[True, True, False, True], [False, True, True, True], [True, False, True, False]])
        label = "masked_softmax for scores around 1000"
        with np.errstate(all="ignore"):
            got = _as_array(label, _call_pure(label, masked_softmax, ("scores", x), ("mask", mask)))
        if got.shape == (3, 4) and not (np.isfinite(got).all() and np.allclose(got.sum(axis=-1), 1.0, atol=1e-4)):
            raise AssertionError(
                f"{label}: the rows give inf or NaN, or do not sum to 1 (every row has keys to attend to): "
                f"exp(1000) overflows. Subtract each row's largest allowed score before the exponential; "
                f"softmax(x - max(x)) equals softmax(x)"
            )
        _compare(label, got, _reference_masked_softmax(x, mask).numpy(), atol=1e-6, legend=_SCORES_LEGEND)
    _say("masked_softmax: correct: blocked keys get 0, fully masked rows 0 (not NaN), stable for large scores.")


# --------------------------------------------------------------------------- chapter 4: hard attention


@_reports_not_attempted
def check_topk_hard_attention(topk_hard_attention: Callable) -> None:
    """Exercise: ``topk_hard_attention(scores (L, S), values (S, Ev), k) -> (output (L, Ev), weights (L, S))``:
    weight 1 on each row's k highest scores, 0 elsewhere; output the mean of the chosen values."""
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


# --------------------------------------------------------------------------- chapter 5: self-attention


def _call_with_hint(label: str, fn: Callable, args: tuple[tuple[str, object], ...], hint: str) -> object:
    """:func:`_call_pure`, but a crash of the learner's code becomes an ``AssertionError`` with ``hint``."""
    try:
        return _call_pure(label, fn, *args)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as exc:
        raise AssertionError(f"{label} raised {type(exc).__name__}: {exc}. {hint}") from exc


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
    with _attempt("self_attention"):
        # E = T first, where a missing transpose of K still runs; then T, D, E and Ev all different
        for seed, (B, T, D, E, Ev) in ((61, (3, 4, 6, 4, 2)), (62, (2, 5, 8, 3, 4))):
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
                "each column sums to 1, but each row (one query) should: you took the softmax over the query "
                "axis. dim=1 is the key axis of one (T, T) matrix but the query axis of a batch (B, T, T): "
                "use dim=-1, the keys, whatever the batch dims": torch.softmax(dots / E**0.5, dim=1),
            }
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
    with _attempt("padding_mask"):
        for values, S in (([4, 1, 6, 0], 6), ([2, 3, 1], 3)):  # B != S, then B = S where a transpose still runs
            lengths = torch.tensor(values)  # (B,)
            B = len(values)
            label = f"padding_mask(lengths={values}, S={S})"
            got = _bool_mask(
                label, _call_pure(label, padding_mask, ("lengths", lengths), ("S", S)),
                "Build it from a comparison, which gives bool: torch.arange(S)[None, :] < lengths[:, None]",
            )
            expected = masks.padding_mask(lengths, S)  # (B, S)
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
        for seed, values, T in ((63, [5, 3, 1, 4, 2], 5), (64, [4, 2, 6], 6)):
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


def _as_bool(label: str, x: object) -> bool:
    if x is None:
        raise AssertionError(f"{label} returned None: did you forget `return`?")
    if isinstance(x, torch.Tensor) and x.numel() != 1:
        raise AssertionError(
            f"{label} returned a tensor of shape {tuple(x.shape)}: return one bool for the whole comparison. "
            f"== compares entry by entry; torch.allclose(a, b) gives one answer"
        )
    if not isinstance(x, (bool, np.bool_, torch.Tensor)):
        raise AssertionError(f"{label} must return a bool, got {type(x).__name__}")
    return bool(x)


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


# --------------------------------------------------------------------------- chapter 6: multi-head attention


def _numbered(*shape: int) -> torch.Tensor:
    """0., 1., 2., ... laid out in ``shape``: the value of an entry is its flat index in the input."""
    return torch.arange(int(np.prod(shape)), dtype=torch.float32).view(*shape)


def _reject_shape(label: str, got: np.ndarray, expected_shape: tuple[int, ...],
                  wrong: list[tuple[tuple[int, ...], str]]) -> None:
    """Raise the hint of the first wrong shape that ``got`` has (and the right answer has not)."""
    expected_shape = tuple(expected_shape)
    for shape, hint in wrong:
        if got.shape == tuple(shape) != expected_shape:
            raise AssertionError(f"{label} has shape {got.shape} but should have shape {expected_shape}: {hint}")


def _compare_numbered(label: str, got: np.ndarray, expected: torch.Tensor, source_shape: tuple[int, ...],
                      legend: str) -> None:
    """:func:`_compare` for a rearrangement of :func:`_numbered` input: say which input entry landed where."""
    exp = expected.detach().numpy().astype(np.float64)
    if got.shape == exp.shape and np.all(np.isfinite(got)):
        differ = np.argwhere(got != exp)
        if len(differ):
            idx = tuple(int(i) for i in differ[0])
            value, size = got[idx], int(np.prod(source_shape))
            if value == int(value) and 0 <= value < size:
                came_from = _fmt_index(tuple(int(i) for i in np.unravel_index(int(value), source_shape)))
                should = _fmt_index(tuple(int(i) for i in np.unravel_index(int(exp[idx]), source_shape)))
                raise AssertionError(
                    f"{label}: entry {_fmt_index(idx)} holds x{came_from} but should hold x{should}{legend}"
                )
    _compare(label, got, exp, atol=0.0, legend=legend)


@_reports_not_attempted
def check_split_heads(split_heads: Callable) -> None:
    """Exercise: ``split_heads(x (B, T, D), num_heads) -> (B, H, T, D/H)``: head h gets the contiguous block
    of features h*D/H .. (h+1)*D/H - 1 of every token, ``x.view(B, T, H, D // H).transpose(1, 2)``."""
    with _attempt("split_heads"):
        # T = H first, where a missing transpose keeps the shape; then B = H = D/H; then B, T, H, D/H all different
        for B, T, D, H in ((2, 3, 12, 3), (4, 2, 16, 4), (2, 5, 12, 3)):
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
    with _attempt("multihead_self_attention"):
        # first D/H = T and H·T = D, where a missing transpose of K and concatenated weights still run
        for seed, (B, T, D, H) in ((73, (2, 4, 8, 2)), (78, (3, 5, 12, 3))):
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


# --------------------------------------------------------------------------- chapter 7: positional encoding


def _interleave(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """(..., D/2) and (..., D/2) -> (..., D) with ``even`` at features 0, 2, 4, ... and ``odd`` at 1, 3, 5, ..."""
    return torch.stack([even, odd], dim=-1).flatten(-2)


@_reports_not_attempted
def check_sinusoidal_encoding(sinusoidal_encoding: Callable) -> None:
    """Exercise: ``sinusoidal_encoding(num_positions, d_model) -> (P, D)``, PE[p, 2i] = sin(p ω_i) and
    PE[p, 2i+1] = cos(p ω_i) with ω_i = 10000^(-2i/D), positions p = 0 .. P-1."""
    with _attempt("sinusoidal_encoding"):
        for P, D in ((4, 4), (7, 6), (50, 16)):  # P = D first, where a transposed table keeps the shape
            label = f"sinusoidal_encoding(num_positions={P}, d_model={D})"
            result = _call_with_hint(
                label, sinusoidal_encoding, (("num_positions", P), ("d_model", D)),
                "Build the angles p·ω_i as a column of positions (P, 1) times a row of frequencies (D/2,), which "
                "broadcast to (P, D/2); then fill pe[:, 0::2] with their sines and pe[:, 1::2] with their cosines",
            )
            got = _as_array(label, result)
            expected = positional.sinusoidal_encoding(P, D)  # (P, D)
            p = torch.arange(P, dtype=torch.float64)[:, None]  # (P, 1)
            i = torch.arange(D // 2, dtype=torch.float64)  # (D/2,), the pair index
            j = torch.arange(D, dtype=torch.float64)  # (D,), the feature index
            omega = 10000.0 ** (-2 * i / D)  # (D/2,)
            angles = p * omega  # (P, D/2)
            wrong = {
                "sin and cos are swapped: the even features 2i get sin(p ω_i), the odd features 2i+1 get "
                "cos(p ω_i), so row 0 is PE(0) = [0, 1, 0, 1, ...]": _interleave(angles.cos(), angles.sin()),
                "you used ω_i = 10000^(-i/D): the exponent is -2i/D, the even feature index 2i over D, so that "
                "the wavelengths run from 2π up to 10000·2π": _interleave(
                    (p * 10000.0 ** (-i / D)).sin(), (p * 10000.0 ** (-i / D)).cos()),
                "feature j got the frequency 10000^(-j/D) of its own index, so the cosine at 2i+1 turns slower "
                "than the sine at 2i: the two features of pair i share one frequency, ω_i = 10000^(-2i/D) "
                "(10000^(-(j - j % 2)/D) for feature j). That shared frequency is what makes PE(p + k) a rotation "
                "of PE(p)": torch.where(j % 2 == 0, (p * 10000.0 ** (-j / D)).sin(), (p * 10000.0 ** (-j / D)).cos()),
                "you put all the sines first and then all the cosines, cat([sin, cos]): a valid layout (tensor2tensor "
                "uses it), but this course follows Vaswani et al. 2017 and interleaves them: PE[p, 2i] = sin, "
                "PE[p, 2i+1] = cos, that is pe[:, 0::2] = sin and pe[:, 1::2] = cos": torch.cat(
                    [angles.sin(), angles.cos()], dim=-1),
                "the base is 10000 (Vaswani et al. 2017), not 1000: ω_i = 10000^(-2i/D)": _interleave(
                    (p * 1000.0 ** (-2 * i / D)).sin(), (p * 1000.0 ** (-2 * i / D)).cos()),
                "the positions start at 1, but they count from 0 like the rows of the table: row 0 is "
                "PE(0) = [sin 0, cos 0, ...] = [0, 1, 0, 1, ...]": _interleave(
                    ((p + 1) * omega).sin(), ((p + 1) * omega).cos()),
                "the frequencies grow with i: ω_i = 10000^(-2i/D) = 1 / 10000^(2i/D) falls from 1 to about 1/10000, "
                "so that the first pairs turn fast and the last ones slowly": _interleave(
                    (p / omega).sin(), (p / omega).cos()),
                "the table is transposed: row p is position p, (P, D) = (num_positions, d_model)": expected.T,
            }
            _reject_known(label, got, expected, wrong, atol=1e-4)
            _compare(label, got, expected.numpy(), atol=1e-4,
                     legend=" (P, D): row p is position p, features (2i, 2i+1) are sin and cos of p·ω_i")
    _say("sinusoidal_encoding: correct: sin(p ω_i) at 2i, cos(p ω_i) at 2i+1, ω_i = 10000^(-2i/D).")


def _rotate_adjacent(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs (2i, 2i+1) of x (..., T, E) by angles (T, E/2), counter-clockwise."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, E/2)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, E/2)
    return _interleave(even * cos - odd * sin, even * sin + odd * cos)


@_reports_not_attempted
def check_rotate_pairs(rotate_pairs: Callable) -> None:
    """Exercise: ``rotate_pairs(x (..., T, E)) -> (..., T, E)``, RoPE: rotate the adjacent pair of features
    (2i, 2i+1) of the token at position p (= 0 .. T-1) by the angle p·ω_i, ω_i = 10000^(-2i/E), counter-clockwise,
    as ``attention_course.rotary_embedding`` does."""
    with _attempt("rotate_pairs"):
        gen = torch.Generator().manual_seed(75)
        for shape in ((6, 8), (2, 3, 5, 8)):  # (T, E), then (B, H, T, E)
            x = torch.randn(*shape, generator=gen)
            T, E = shape[-2:]
            label = f"rotate_pairs(x) for x of shape {shape}, T={T}, E={E}"
            result = _call_with_hint(
                label, rotate_pairs, (("x", x),),
                "x is (..., T, E): the positions run along dim -2, T = x.shape[-2] (not x.shape[1]), and the "
                "pairs along the last dim. The angles p·ω_i are (T, E/2), and broadcast against x[..., 0::2] and "
                "x[..., 1::2], (..., T, E/2) each",
            )
            got = _as_array(label, result)
            expected = positional.rotary_embedding(x)  # (..., T, E)
            p = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
            i = torch.arange(E // 2, dtype=torch.float64)  # (E/2,)
            omega = 10000.0 ** (-2 * i / E)  # (E/2,)
            cos, sin = (p * omega).cos().float(), (p * omega).sin().float()  # (T, E/2)
            x1, x2 = x[..., : E // 2], x[..., E // 2:]  # (..., T, E/2): the rotate_half layout
            wrong = {
                "you rotated the other way, by -p·ω_i (clockwise): x'_2i = x_2i cos - x_2i+1 sin and "
                "x'_2i+1 = x_2i sin + x_2i+1 cos": _rotate_adjacent(x, -p * omega),
                "you paired feature i with feature i + E/2 (rotate_half, the layout of GPT-NeoX and Hugging Face's "
                "LLaMA): a valid convention, but this exercise follows Su et al. 2021 and attention_course."
                "rotary_embedding, where pair i is the adjacent features (2i, 2i+1): x[..., 0::2] and x[..., 1::2]":
                    torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1),
                "the positions start at 1, so the first token is rotated too: they count from 0, and at position "
                "0 the angle is 0, no rotation at all": _rotate_adjacent(x, (p + 1) * omega),
                "every pair turned by the same angle: pair i turns at its own frequency, by p·ω_i with "
                "ω_i = 10000^(-2i/E), from one turn per position down to very slow ones":
                    _rotate_adjacent(x, p * torch.ones_like(omega)),
                "you used ω_i = 10000^(-i/E): the exponent is -2i/E, the even feature index 2i over E":
                    _rotate_adjacent(x, p * 10000.0 ** (-i / E)),
                "you added the sinusoidal encoding: RoPE does not add anything, it *rotates* each pair of "
                "features of the queries and keys, so that their dot product depends on the offset p - p' only":
                    x + positional.sinusoidal_encoding(T, E),
                "you scaled each feature by cos(p ω_i) and left out the sin terms: a rotation mixes the two "
                "features of a pair, x'_2i = x_2i cos - x_2i+1 sin, x'_2i+1 = x_2i sin + x_2i+1 cos":
                    _interleave(x[..., 0::2] * cos, x[..., 1::2] * cos),
            }
            _reject_known(label, got, expected, wrong)
            if got.shape == tuple(x.shape):
                norms = np.hypot(got[..., 0::2], got[..., 1::2])  # (..., T, E/2), the length of every pair
                before = np.hypot(x[..., 0::2].numpy(), x[..., 1::2].numpy())
                if not np.allclose(norms, before, atol=1e-4):
                    idx = tuple(int(k) for k in np.argwhere(~np.isclose(norms, before, atol=1e-4))[0])
                    raise AssertionError(
                        f"{label}: a rotation keeps the length of every pair (x_2i, x_2i+1), but pair {idx[-1]} of "
                        f"the token at position {idx[-2]} has length {norms[idx]:.4g} and had {before[idx]:.4g}: "
                        f"x'_2i = x_2i cos - x_2i+1 sin, x'_2i+1 = x_2i sin + x_2i+1 cos"
                    )
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (..., T, E): pair (2i, 2i+1) of the token at position p turned by p·ω_i")
    _say("rotate_pairs: correct: adjacent pairs (2i, 2i+1) turned by p·ω_i, nothing at position 0.")


def _position_adder_probes() -> list[tuple[str, Callable, tuple[int, int, int], bool, str]]:
    """(name, add_pe, (B, T, D), the right answer, why) for ``check_adds_distinct_positions``."""
    D, P = 8, 32
    pe = sinusoidal_encoding(P, D)  # (P, D)
    gen = torch.Generator().manual_seed(76)
    table = torch.nn.Parameter(torch.randn(P, D, generator=gen) * 0.02)  # a learned embedding, (P, D)

    def sequence_first(x: torch.Tensor) -> torch.Tensor:
        return x + pe[:, None, :][: x.shape[0]]  # a (P, 1, D) buffer indexed by x.size(0) = B: (B, 1, D)

    def noise_per_sequence(x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn(x.shape, generator=torch.Generator().manual_seed(77))  # (B, T, D)

    right = "every sequence gets the same T vectors, all different"
    one_per_sequence = "every token of sequence n gets the same vector, pe[n]: the vectors vary along the batch, not T"
    return [
        ("x + pe[:T], sinusoidal and batch-first", lambda x: x + pe[: x.shape[1]], (3, 5, D), True, right),
        ("x + pe[:, None][:x.size(0)], the sequence-first habit", sequence_first, (3, 5, D), False, one_per_sequence),
        ("x + pe[:, None][:x.size(0)], the sequence-first habit", sequence_first, (4, 4, D), False, one_per_sequence),
        ("x itself: nothing added", lambda x: x, (3, 5, D), False, "nothing is added: every token gets zeros"),
        ("x + random noise, different for every sequence", noise_per_sequence, (3, 5, D), False,
         "the vectors differ along T, but sequence 0 and sequence 1 get different ones at the same position: "
         "a position's vector must not depend on the sequence it is in"),
        ("x + table[:T], a learned embedding (an nn.Parameter)", lambda x: x + table[: x.shape[1]], (2, 6, D), True,
         right),
        ("x + pe[3]: one vector for every token", lambda x: x + pe[3], (3, 5, D), False,
         "every token gets the same vector, pe[3]"),
        ("x + pe[t % 2]: two vectors taking turns", lambda x: x + pe[torch.arange(x.shape[1]) % 2], (3, 5, D), False,
         "positions 0, 2 and 4 get the same vector, and so do 1 and 3"),
        ("x + pe[:T] on a batch of one sequence", lambda x: x + pe[: x.shape[1]], (1, 5, D), True, right),
    ]


def _added(add_pe: Callable, B: int, T: int, D: int) -> torch.Tensor:
    return add_pe(torch.zeros(B, T, D)).detach()  # (B, T, D): what add_pe adds, position by position


def _all_distinct(vectors: torch.Tensor) -> bool:
    """Whether no two rows of ``vectors`` (T, D) are equal up to rounding."""
    T = vectors.shape[0]
    return not any(torch.allclose(vectors[t], vectors[u]) for t in range(T) for u in range(t + 1, T))


@_reports_not_attempted
def check_adds_distinct_positions(adds_distinct_positions: Callable) -> None:
    """Exercise: ``adds_distinct_positions(add_pe, B, T, D) -> bool``: feed ``add_pe`` zeros (B, T, D) and tell
    whether what it adds is the same for every sequence of the batch and different at every position."""
    with _attempt("adds_distinct_positions"):
        probes = _position_adder_probes()
        answers = []
        for name, add_pe, (B, T, D), _, _ in probes:
            label = f"adds_distinct_positions(add_pe, B={B}, T={T}, D={D}) with add_pe = {name}"

            def batch_first_only(x: object, add_pe: Callable = add_pe, B: int = B, T: int = T, D: int = D,
                                 label: str = label) -> torch.Tensor:
                if not isinstance(x, torch.Tensor) or tuple(x.shape) != (B, T, D):
                    got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                    raise AssertionError(
                        f"{label}: add_pe was called with {got}, but it takes batch-first input (B, T, D) = "
                        f"{(B, T, D)}: feed it torch.zeros(B, T, D), and what it returns is what it added"
                    )
                return add_pe(x)

            result = _call_with_hint(
                label, adds_distinct_positions, (("add_pe", batch_first_only), ("B", B), ("T", T), ("D", D)),
                "add_pe(torch.zeros(B, T, D)) is what add_pe adds, (B, T, D), batch-first: dim 0 is the sequence, "
                "dim 1 the position. A learned embedding is an nn.Parameter, so its output requires grad: compare "
                "with torch.allclose or torch.equal, or .detach() it before .numpy()",
            )
            answers.append(_as_bool(label, result))
        truth = [right for *_, right, _ in probes]

        def same_for_every_sequence(a: torch.Tensor) -> bool:
            return torch.allclose(a, a[:1].expand_as(a))

        variants = {
            "you only checked that the positions get different vectors: also check that every sequence of the "
            "batch gets the same ones, or random noise would pass for a position encoding":
                lambda a: _all_distinct(a[0]),
            "you only checked that every sequence gets the same vectors: also check that the T positions get "
            "different ones (adding nothing, or one vector everywhere, passes your test)":
                same_for_every_sequence,
            "the axes are swapped: the input is batch-first (B, T, D), so the vectors must agree along dim 0 "
            "(the sequences) and differ along dim 1 (the positions). Your test passes the sequence-first bug":
                lambda a: _all_distinct(a[:, 0]) and torch.allclose(a, a[:, :1].expand_as(a)),
            "you tested whether anything was added at all: the added vectors must also be the same for every "
            "sequence and different at every position":
                lambda a: not torch.allclose(a, torch.zeros_like(a)),
            "you compared only some positions (neighbours t and t + 1, or the first two): with pe[t % 2], "
            "positions 0 and 2 get the same vector. Compare every pair of positions t < t'":
                lambda a: same_for_every_sequence(a) and not any(
                    torch.allclose(a[0, t], a[0, t + 1]) for t in range(a.shape[1] - 1)),
        }
        for hint, variant in variants.items():
            would = [bool(variant(_added(add_pe, *shape))) for _, add_pe, shape, _, _ in probes]
            if would != truth and answers == would:
                raise AssertionError(f"adds_distinct_positions: {hint}")
        if answers != truth and all(answers):
            raise AssertionError(
                "adds_distinct_positions returned True for every add_pe, even the ones that add nothing or one "
                "vector per sequence: look at added = add_pe(torch.zeros(B, T, D)), (B, T, D)"
            )
        for (name, _, (B, T, D), right, why), got in zip(probes, answers):
            if got != right:
                raise AssertionError(
                    f"adds_distinct_positions(add_pe, B={B}, T={T}, D={D}) with add_pe = {name} returned {got}, "
                    f"but it should return {right}: {why}"
                )
    _say("adds_distinct_positions: correct: the same vectors for every sequence, a different one per position.")


def _pair_blocks(D: int, angles: torch.Tensor, *, halves: bool = False, sign: float = 1.0) -> torch.Tensor:
    """(D, D) with a 2×2 block [[cos, sign·sin], [-sign·sin, cos]] per pair: (2i, 2i+1), or (i, i + D/2)."""
    m = torch.zeros(D, D, dtype=torch.float64)
    i = torch.arange(D // 2)
    a, b = (i, i + D // 2) if halves else (2 * i, 2 * i + 1)
    c, s = angles.cos(), angles.sin()
    m[a, a], m[a, b], m[b, a], m[b, b] = c, sign * s, -sign * s, c
    return m


@_reports_not_attempted
def check_shift_matrix(shift_matrix: Callable) -> None:
    """Exercise: ``shift_matrix(k, d_model) -> (D, D)``, the matrix M_k with PE(p + k) = M_k PE(p) for every
    position p, as ``attention_course.positional.sinusoidal_shift_matrix``."""
    with _attempt("shift_matrix"):
        for k, D in ((3, 8), (-2, 6), (1, 4), (0, 6)):
            label = f"shift_matrix(k={k}, d_model={D})"
            result = _call_with_hint(
                label, shift_matrix, (("k", k), ("d_model", D)),
                "M is (D, D): zeros except one 2×2 block on the diagonal for each pair (2i, 2i+1), made of "
                "cos(k ω_i) and sin(k ω_i)",
            )
            got = _as_array(label, result)
            expected = positional.sinusoidal_shift_matrix(k, D)  # (D, D), float64
            i = torch.arange(D // 2, dtype=torch.float64)
            omega = 10000.0 ** (-2 * i / D)  # (D/2,)
            wrong = {
                "that is M_{-k}, the transpose: it maps PE(p) to PE(p - k). Each pair is (sin, cos), not (cos, sin): "
                "sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b put +sin(k ω_i) "
                "top right and -sin(k ω_i) bottom left, [[cos, sin], [-sin, cos]]":
                    _pair_blocks(D, k * omega, sign=-1.0),
                "every pair turned by the same angle k: pair i turns by k·ω_i, with its own frequency "
                "ω_i = 10000^(-2i/D)": _pair_blocks(D, k * torch.ones_like(omega)),
                "the angle is k·ω_i, not ω_i: that is the shift by one position, M_1; M_k turns k times as far":
                    _pair_blocks(D, omega),
                "you rotated the pairs (i, i + D/2): sinusoidal_encoding puts sin and cos of one frequency side "
                "by side, pair i is the adjacent features (2i, 2i+1)": _pair_blocks(D, k * omega, halves=True),
                f"M_k is the identity only for k = 0: shifting by k = {k} turns each pair by k·ω_i":
                    torch.eye(D, dtype=torch.float64),
                "you used ω_i = 10000^(-i/D): the exponent is -2i/D, as in the table":
                    _pair_blocks(D, k * 10000.0 ** (-i / D)),
            }
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (D, D): one 2×2 block per pair (2i, 2i+1), turning it by k·ω_i")
            pe = positional.sinusoidal_encoding(20 + abs(k), D).double()  # (P, D)
            rows = pe[max(0, -k): 20 - min(0, k)]  # (20, D): PE(p) for the p with p + k in the table
            shifted = rows @ torch.as_tensor(got).T  # (20, D): M_k PE(p), row by row
            _compare(f"{label} @ PE(p)", shifted.numpy(), pe[max(0, k): 20 + max(0, k)].numpy(), atol=1e-4,
                     legend=" (20, D): M_k PE(p) must be PE(p + k)")
    _say("shift_matrix: correct: M_k turns each pair (sin, cos) by k·ω_i, so M_k PE(p) = PE(p + k).")


# --------------------------------------------------------------------------- chapter 8: the Transformer


def _reject_known_nan(label: str, got: np.ndarray, expected: torch.Tensor, wrong: dict, atol: float = 1e-8) -> None:
    """:func:`_reject_known` where a wrong answer may hold NaN in the same places as ``got``."""
    exp = expected.detach().numpy()
    if got.shape != exp.shape:
        return
    for hint, value in wrong.items():
        value = value.detach().numpy()
        if value.shape != got.shape or np.allclose(value, exp, atol=atol, equal_nan=True):
            continue  # not a mistake these inputs can reveal
        if np.allclose(got, value, atol=atol, equal_nan=True):
            raise AssertionError(f"{label}: {hint}")


def _ln(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, *, dim: int | tuple = -1,
        correction: int = 0, eps_inside: bool = True, center: bool = True) -> torch.Tensor:
    """Layer norm with one step changed to make a mistake (the defaults are the right one)."""
    mean = x.mean(dim=dim, keepdim=True) if center else 0.0
    var = x.var(dim=dim, keepdim=True, correction=correction)
    scale = (var + eps).sqrt() if eps_inside else var.sqrt() + eps
    return gamma * (x - mean) / scale + beta


@_reports_not_attempted
def check_layer_norm(layer_norm: Callable) -> None:
    """Exercise: ``layer_norm(x (..., D), gamma (D,), beta (D,), eps) -> (..., D)``: each token's D features
    brought to mean 0 and variance 1 (the biased variance, eps inside the square root), then
    gamma * x̂ + beta, as ``torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)``."""
    with _attempt("layer_norm"):
        gen = torch.Generator().manual_seed(81)
        # (T, D); (B, T, D) with a large eps; then B = T = D, where a mean without keepdim still broadcasts
        for shape, eps, spread in (((4, 6), 1e-5, 2.0), ((2, 5, 8), 0.1, 0.5), ((3, 3, 3), 0.1, 0.5)):
            D = shape[-1]
            x = torch.randn(*shape, generator=gen, dtype=torch.float64) * spread + 1.0  # mean 1: not normalised yet
            gamma = 1.0 + 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            beta = 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            label = f"layer_norm(x, gamma, beta, eps={eps}) for x of shape {shape}"
            result = _call_with_hint(
                label, layer_norm, (("x", x), ("gamma", gamma), ("beta", beta), ("eps", eps)),
                f"x is {shape}: take the mean and the variance over the last axis, dim=-1, with keepdim=True so "
                f"that they are {shape[:-1] + (1,)} and broadcast against x; gamma and beta (D,) = ({D},) "
                f"broadcast by themselves",
            )
            got = _as_array(label, result)
            expected = torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)  # (..., D)
            wrong = {
                "you used the unbiased variance, which divides by D - 1 (torch.var and Tensor.std do so by "
                "default, Bessel's correction): layer norm divides by D, var(dim=-1, unbiased=False) or "
                "correction=0": _ln(x, gamma, beta, eps, correction=1),
                "you normalised over the tokens (dim -2), so each *feature* has mean 0 along the sequence, a "
                "kind of batch norm: layer norm normalises each token's own D features, dim=-1 "
                "(Ba et al. 2016)": _ln(x, gamma, beta, eps, dim=-2),
                "you normalised over the whole tensor at once: each token is normalised on its own, over its "
                "D features, dim=-1 with keepdim=True": _ln(x, gamma, beta, eps, dim=tuple(range(x.dim()))),
                "eps is outside the square root, (x - mean) / (std + eps): it goes inside, "
                "(x - mean) / sqrt(var + eps), as in nn.LayerNorm": _ln(x, gamma, beta, eps, eps_inside=False),
                f"you left out eps = {eps}: it goes inside the square root, sqrt(var + eps), and keeps a "
                f"constant token from dividing by zero": _ln(x, gamma, beta, 0.0),
                f"you did not use the eps passed in, eps = {eps}, but 1e-5: use the argument, sqrt(var + eps)":
                    _ln(x, gamma, beta, 1e-5),
                "gamma and beta are not applied: after normalising, scale by gamma and shift by beta, "
                "gamma * x̂ + beta": _ln(x, torch.ones_like(gamma), torch.zeros_like(beta), eps),
                "gamma and beta are swapped: gamma scales, beta shifts, gamma * x̂ + beta": _ln(x, beta, gamma, eps),
                "you did not subtract the mean: x̂ = (x - mean) / sqrt(var + eps)": _ln(x, gamma, beta, eps,
                                                                                      center=False),
                "you divided by the variance, not by its square root: x̂ = (x - mean) / sqrt(var + eps)":
                    gamma * (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, correction=0) + eps) + beta,
            }
            if shape[-1] == shape[-2]:
                wrong["the mean and the variance lost their last axis (no keepdim=True), so they broadcast along "
                      "the wrong axis (it only ran because T = D here): x.mean(dim=-1, keepdim=True) is "
                      "(..., T, 1)"] = (
                    gamma * (x - x.mean(-1)) / (x.var(-1, correction=0) + eps).sqrt() + beta)
            _reject_known(label, got, expected, wrong, atol=1e-8)
            _compare(label, got, expected.numpy(), atol=1e-8,
                     legend=f" {shape}: every token's D = {D} features normalised, then scaled and shifted")
    _say("layer_norm: correct: each token over its own D features, biased variance, eps inside the root.")


def _ffn(x, W1, b1, W2, b2, *, inner=torch.relu, outer=lambda t: t) -> torch.Tensor:
    return outer(inner(x @ W1 + b1) @ W2 + b2)


@_reports_not_attempted
def check_feed_forward(feed_forward: Callable) -> None:
    """Exercise: ``feed_forward(x (B, T, D), W1 (D, F), b1 (F,), W2 (F, D), b2 (D,)) -> (B, T, D)``, the
    position-wise network relu(x W1 + b1) W2 + b2, applied to every token alone."""
    with _attempt("feed_forward"):
        # first T = D = F, where a transposed weight or a product over the time axis still runs
        for seed, (B, T, D, F) in ((82, (2, 4, 4, 4)), (83, (3, 5, 6, 10))):
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
            W1 = torch.randn(D, F, generator=gen, dtype=torch.float64) / D**0.5  # (D, F)
            b1 = 0.5 * torch.randn(F, generator=gen, dtype=torch.float64)  # (F,)
            W2 = torch.randn(F, D, generator=gen, dtype=torch.float64) / F**0.5  # (F, D)
            b2 = 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            args = (("x", x), ("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))
            label = f"feed_forward for B={B}, T={T}, D={D}, F={F}"
            hint = (f"x is (B, T, D) = {(B, T, D)}, W1 (D, F) = {(D, F)} and W2 (F, D) = {(F, D)}: x @ W1 + b1 "
                    f"is (B, T, F), the ReLU keeps that shape, and @ W2 + b2 brings it back to (B, T, D)")
            got = _as_array(label, _call_with_hint(label, feed_forward, args, hint))
            expected = _ffn(x, W1, b1, W2, b2)  # (B, T, D)
            zero = torch.zeros_like
            wrong = {
                "there is a ReLU after the second layer too: the network is Linear, ReLU, Linear, with nothing "
                "after the last layer, whose output may be negative (the residual connection adds it to x)":
                    _ffn(x, W1, b1, W2, b2, outer=torch.relu),
                "the ReLU is after the second layer instead of between the two: relu(x W1 + b1) W2 + b2":
                    _ffn(x, W1, b1, W2, b2, inner=lambda t: t, outer=torch.relu),
                "there is no ReLU: two linear layers in a row are one linear layer, (x W1) W2 = x (W1 W2). "
                "The ReLU between them is what lets the network compute more than a linear map":
                    _ffn(x, W1, b1, W2, b2, inner=lambda t: t),
                "that is GELU, the activation of BERT and GPT: the paper's network, and this exercise, use ReLU, "
                "torch.relu": _ffn(x, W1, b1, W2, b2, inner=torch.nn.functional.gelu),
                "b1 is missing: the first layer is x @ W1 + b1": _ffn(x, W1, zero(b1), W2, b2),
                "b2 is missing: the second layer adds b2": _ffn(x, W1, b1, W2, zero(b2)),
                "you returned the hidden layer relu(x W1 + b1), (B, T, F): the second layer brings it back to "
                "width D, @ W2 + b2": torch.relu(x @ W1 + b1),
            }
            if D == F:
                wrong["the weights are used transposed: they act as x @ W1 and h @ W2 (an nn.Linear stores the "
                      "transpose, x @ weight.T)"] = _ffn(x, W1.T, b1, W2.T, b2)
            if T == D == F:
                wrong["you multiplied along the time axis, mixing the tokens (it only ran because T = D here): "
                      "the feed-forward works on each token's D features, x @ W1 with x (B, T, D)"] = (
                    _ffn(x.transpose(1, 2), W1, b1, W2, b2).transpose(1, 2))
            _reject_known(label, got, expected, wrong, atol=1e-8)
            # position-wise: changing one token changes that token's output only
            x2 = x.clone()
            x2[:, 0] += 1.0  # (B, T, D): only token 0 changed
            got2 = _as_array(label, _call_with_hint(label, feed_forward, (("x", x2),) + args[1:], hint))
            moved = np.abs(got2[:, 1:] - got[:, 1:]).max() if T > 1 else 0.0
            if moved > 1e-9:
                raise AssertionError(
                    f"{label}: changing token 0 changed the output of other tokens (by up to {moved:.3g}): the "
                    f"feed-forward is position-wise, each token's output depends on that token alone"
                )
            _compare(label, got, expected.numpy(), atol=1e-8, legend=" (B, T, D): one output per token")
    _say("feed_forward: correct: relu(x W1 + b1) W2 + b2, token by token.")


def _torch_encoder_layer(seed: int, D: int, H: int, F: int, norm_first: bool) -> torch.nn.TransformerEncoderLayer:
    """A seeded float64 ``nn.TransformerEncoderLayer`` (ReLU, no dropout) with non-trivial norms and biases.

    Left in train mode: with dropout 0.0 that changes nothing but keeps PyTorch off its fused inference path."""
    with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
        torch.manual_seed(seed)
        layer = torch.nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation="relu", batch_first=True,
                                                 norm_first=norm_first, dtype=torch.float64)
        with torch.no_grad():
            for norm in (layer.norm1, layer.norm2):  # different norms, so that swapping them shows
                norm.weight.copy_(1.0 + 0.3 * torch.randn(D, dtype=torch.float64))
                norm.bias.copy_(0.3 * torch.randn(D, dtype=torch.float64))
            layer.self_attn.in_proj_bias.copy_(0.1 * torch.randn(3 * D, dtype=torch.float64))
            layer.self_attn.out_proj.bias.copy_(0.1 * torch.randn(D, dtype=torch.float64))
    return layer.train()


def _block_variants(x: torch.Tensor, layer: torch.nn.TransformerEncoderLayer, mask: torch.Tensor,
                    ff: Callable) -> dict[str, torch.Tensor]:
    """The encoder block with one thing changed: {name: output (B, T, D)}. ``mask`` (B, T), True = may attend."""
    attn, n1, n2 = layer.self_attn, layer.norm1, layer.norm2

    def sa(h: torch.Tensor, kpm: torch.Tensor | None = ~mask, kv: torch.Tensor | None = None,
           need_weights: bool = False) -> torch.Tensor:
        kv = h if kv is None else kv
        return attn(h, kv, kv, key_padding_mask=kpm, need_weights=need_weights)[0]  # (B, T, D)

    v = {}
    with torch.no_grad():
        a = sa(x)
        # post-norm
        x1 = n1(x + a)
        v["post"] = n2(x1 + ff(x1))
        v["post, no attention residual"] = (lambda h: n2(h + ff(h)))(n1(a))
        v["post, no feed-forward residual"] = n2(ff(x1))
        v["post, residual after the norm"] = (lambda h: h + n2(ff(h)))(x + n1(a))
        v["post, feed-forward reads the attention output"] = n2(x1 + ff(a))
        v["post, norms swapped"] = (lambda h: n1(h + ff(h)))(n2(x + a))
        v["post, norm1 twice"] = (lambda h: n1(h + ff(h)))(x1)
        v["post, no feed-forward"] = n2(x1)
        for need in (True, False):  # nn.MultiheadAttention gives NaN or 0 for a query with no key, by need_weights
            v[f"post, mask inverted {need}"] = (lambda h: n2(h + ff(h)))(n1(x + sa(x, mask, need_weights=need)))
            h = n1(x)
            v[f"pre, mask inverted {need}"] = (lambda y: y + ff(n2(y)))(x + sa(h, mask, need_weights=need))
        v["post, mask ignored"] = (lambda h: n2(h + ff(h)))(n1(x + sa(x, None)))
        # pre-norm
        h = n1(x)
        y = x + sa(h)
        v["pre"] = y + ff(n2(y))
        v["pre, residual from the normalised x"] = (lambda y: y + ff(n2(y)))(h + sa(h))
        v["pre, only the queries normalised"] = (lambda y: y + ff(n2(y)))(x + sa(h, kv=x))
        v["pre, feed-forward without norm2"] = y + ff(y)
        v["pre, norm after the feed-forward"] = n2(y + ff(y))
        v["pre, no attention residual"] = (lambda y: y + ff(n2(y)))(sa(h))
        v["pre, no feed-forward residual"] = ff(n2(y))
        v["pre, norms swapped"] = (lambda y: y + ff(n1(y)))(x + sa(n2(x)))
        v["pre, mask ignored"] = (lambda y: y + ff(n2(y)))(x + sa(h, None))
    return v


_MASK_INVERTED = (
    "the mask is inverted for nn.MultiheadAttention: ours is True = *may attend*, but its key_padding_mask is True "
    "= *ignore this key*. Passing ours as it is hides the real tokens and attends to the padding (a sequence "
    "without padding then has no key at all: NaN, or zeros). Pass key_padding_mask=~mask"
)


def _check_encoder_block(fn: Callable, name: str, norm_first: bool, wrong: dict[str, str]) -> None:
    """Shared by the post-norm and the pre-norm exercise: ``fn(x, attn, ff, norm1, norm2, mask)`` against
    ``nn.TransformerEncoderLayer(norm_first=norm_first)`` with the same weights and the padding mask."""
    # lengths: a sequence without padding (an inverted mask leaves it no key), a padded one, a single token
    for seed, (B, T, D, H, F), lengths in ((84, (3, 5, 8, 2, 16), [5, 3, 1]), (85, (2, 4, 12, 3, 20), [2, 4])):
        layer = _torch_encoder_layer(seed, D, H, F, norm_first)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
        mask = masks.padding_mask(torch.tensor(lengths), T)  # (B, T), True = a real token, may be attended
        ff = torch.nn.Sequential(layer.linear1, torch.nn.ReLU(), layer.linear2)  # (B, T, D) -> (B, T, D)
        label = f"{name} for B={B}, T={T}, D={D}, H={H}, lengths={lengths}"
        result = _call_with_hint(
            label, fn, (("x", x), ("attn", layer.self_attn), ("ff", ff), ("norm1", layer.norm1),
                        ("norm2", layer.norm2), ("mask", mask)),
            "attn is an nn.MultiheadAttention(batch_first=True): attn(q, k, v, key_padding_mask=...) returns a "
            "pair (output (B, T, D), weights), so take [0]. Its key_padding_mask is (B, T), True = ignore this "
            "key. ff, norm1 and norm2 take and return (B, T, D)",
        )
        if isinstance(result, tuple):
            raise AssertionError(
                f"{label} returned a tuple of {len(result)}: return only the new x (B, T, D). attn(...) returns "
                f"(output, weights); keep its [0]"
            )
        got = _as_array(label, result)
        with torch.no_grad():
            expected = layer(x, src_key_padding_mask=~mask)  # PyTorch's mask: True = may NOT attend
        variants = _block_variants(x, layer, mask, ff)  # variants[kind] is expected (tests/test_checks.py)
        if got.shape == tuple(expected.shape) and np.isnan(got).any() and not torch.isnan(expected).any():
            b = int(np.argwhere(np.isnan(got))[0][0])
            raise AssertionError(
                f"{label}: the output of sequence {b} (length {lengths[b]}) is NaN. A query that may attend to no "
                f"key at all gets a softmax over nothing but -inf. If sequence {b} has no padding, {_MASK_INVERTED}"
            )
        _reject_known_nan(label, got, expected, {hint: variants[key] for key, hint in wrong.items()}, atol=1e-8)
        _compare(label, got, expected.numpy(), atol=1e-8,
                 legend=f" (B, T, D): torch.nn.TransformerEncoderLayer(norm_first={norm_first}) with the same "
                        f"weights, src_key_padding_mask=~mask")


@_reports_not_attempted
def check_encoder_block(encoder_block: Callable) -> None:
    """Exercise: ``encoder_block(x (B, T, D), attn, ff, norm1, norm2, mask (B, T)) -> (B, T, D)``, the post-norm
    encoder layer of Vaswani et al.: x = norm1(x + attn(x)), then x = norm2(x + ff(x)); ``attn`` is an
    ``nn.MultiheadAttention(batch_first=True)`` and ``mask`` is True = may attend, so it takes ``~mask``."""
    with _attempt("encoder_block"):
        _check_encoder_block(encoder_block, "encoder_block", False, {
            "pre": "that is the pre-norm block, x + attn(norm1(x)): this one is the paper's post-norm, each "
                   "sublayer's output added to its input and *then* normalised, x = norm1(x + attn(x))",
            "post, no attention residual": "there is no residual connection around the attention: add the "
                                           "sublayer's input back before the norm, norm1(x + attn(x))",
            "post, no feed-forward residual": "there is no residual connection around the feed-forward: "
                                              "norm2(x + ff(x)), with x the output of the first sublayer",
            "post, residual after the norm": "the residual is added after the norm, x + norm1(attn(x)): in the "
                                             "post-norm block the norm comes last, norm1(x + attn(x))",
            "post, feed-forward reads the attention output": "the feed-forward reads the raw attention output: it "
                                                             "reads the first sublayer's result, x1 = norm1(x + "
                                                             "attn(x)), and adds to it: norm2(x1 + ff(x1))",
            "post, norms swapped": "norm1 and norm2 are swapped: norm1 belongs to the attention sublayer, norm2 "
                                   "to the feed-forward (each has its own gamma and beta)",
            "post, norm1 twice": "you used norm1 for both sublayers: the feed-forward sublayer has its own, norm2",
            "post, no feed-forward": "the feed-forward sublayer is missing: x = norm2(x + ff(x)) after the "
                                     "attention sublayer",
            "post, mask inverted True": _MASK_INVERTED,
            "post, mask inverted False": _MASK_INVERTED,
            "post, mask ignored": "the padding is not masked: every token attends to the padding keys too. Pass "
                                  "key_padding_mask=~mask (PyTorch's True = ignore this key)",
        })
    _say("encoder_block: correct: post-norm, norm(x + sublayer(x)) twice, the same as "
          "nn.TransformerEncoderLayer, padding keys hidden.")


@_reports_not_attempted
def check_pre_norm_block(pre_norm_block: Callable) -> None:
    """Exercise: ``pre_norm_block(x, attn, ff, norm1, norm2, mask) -> (B, T, D)``: x = x + attn(norm1(x)),
    then x = x + ff(norm2(x)), as ``nn.TransformerEncoderLayer(norm_first=True)``."""
    with _attempt("pre_norm_block"):
        _check_encoder_block(pre_norm_block, "pre_norm_block", True, {
            "post": "that is the post-norm block, norm1(x + attn(x)): in the pre-norm block each sublayer reads "
                    "a normalised copy and its output is added to the un-normalised x, x + attn(norm1(x))",
            "pre, residual from the normalised x": "the residual starts from the normalised x, norm1(x) + "
                                                   "attn(norm1(x)): add to x itself, x + attn(norm1(x)), so that "
                                                   "an identity path runs from input to output",
            "pre, only the queries normalised": "only the queries are normalised: the keys and values come from "
                                                "the same normalised h = norm1(x), attn(h, h, h)",
            "pre, feed-forward without norm2": "the feed-forward reads x without norm2: x + ff(norm2(x))",
            "pre, norm after the feed-forward": "norm2 is applied after the feed-forward's residual, as in "
                                                "post-norm: in pre-norm it normalises the feed-forward's input "
                                                "only, x + ff(norm2(x))",
            "pre, no attention residual": "there is no residual connection around the attention: x + "
                                          "attn(norm1(x))",
            "pre, no feed-forward residual": "there is no residual connection around the feed-forward: x + "
                                             "ff(norm2(x))",
            "pre, norms swapped": "norm1 and norm2 are swapped: norm1 belongs to the attention sublayer, norm2 "
                                  "to the feed-forward",
            "pre, mask inverted True": _MASK_INVERTED,
            "pre, mask inverted False": _MASK_INVERTED,
            "pre, mask ignored": "the padding is not masked: every token attends to the padding keys too. Pass "
                                 "key_padding_mask=~mask (PyTorch's True = ignore this key)",
        })
    _say("pre_norm_block: correct: x + sublayer(norm(x)) twice, the same as "
          "nn.TransformerEncoderLayer(norm_first=True).")


# --------------------------------------------------------------------------- chapter 10: efficient attention


def _tuple_of(label: str, result: object, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The learner's tuple of len(names) arrays, else a hint naming what to return."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"a tuple of {len(result)}" if isinstance(result, (tuple, list)) else type(result).__name__
        raise AssertionError(f"{label} must return the tuple ({', '.join(names)}), got {got}")
    return tuple(_as_array(f"{name}, {label}", r) for name, r in zip(names, result))


def _expect_shapes(label: str, got: tuple[np.ndarray, ...], names: tuple[str, ...],
                   shapes: tuple[tuple[int, ...], ...], legend: str) -> None:
    for name, g, shape in zip(names, got, shapes):
        if g.shape != tuple(shape):
            hint = ""
            if g.shape == tuple(shape) + (1,):
                hint = ": the reduced axis was kept (keepdim=True); squeeze it, or reduce without keepdim"
            raise AssertionError(f"{name}, {label} has shape {g.shape} but should have shape {tuple(shape)}"
                                 f"{hint}{legend}")


def _stacked(*parts: torch.Tensor | np.ndarray) -> np.ndarray:
    """One flat vector of all parts, so that a whole (m, r, ...) state compares at once."""
    return np.concatenate([np.asarray(p.detach().numpy() if isinstance(p, torch.Tensor) else p).ravel()
                           for p in parts])


def _online_softmax_reference(m: torch.Tensor, l: torch.Tensor, block: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    m_new = torch.maximum(m, block.max(dim=-1).values)  # (L,): the running max
    l_new = l * torch.exp(m - m_new) + torch.exp(block - m_new[:, None]).sum(dim=-1)  # (L,): sum of exp(z - m_new)
    return m_new, l_new


def _online_softmax_wrong(m: torch.Tensor, l: torch.Tensor, block: torch.Tensor) -> dict[str, torch.Tensor]:
    """{hint: the stacked (m, r) of a known mistake}."""
    L, C = block.shape
    bm = block.max(dim=-1).values  # (L,): this block's max only
    m_new = torch.maximum(m, bm)  # (L,)

    def exps(ref: torch.Tensor) -> torch.Tensor:
        return torch.exp(block - ref[:, None]).sum(dim=-1)  # (L,)

    whole = torch.maximum(m, block.max())  # (L,): the max over every row of the block
    wrong = {
        "r was not rescaled: r is a sum of exp(z - m_old), and once the max grows to m_new every one of its terms "
        "must shrink by exp(m_old - m_new): r_new = r * exp(m - m_new) + the block's sum":
            _stacked(m_new, l + exps(m_new)),
        "the running max is this block's max only: it is the larger of the old max and the block's, "
        "m_new = maximum(m, block.max(dim=-1))": _stacked(bm, l * torch.exp(m - bm) + exps(bm)),
        "you rescaled r the wrong way, by exp(m_new - m_old) >= 1: the max grew, so the old terms shrink, "
        "r * exp(m_old - m_new)": _stacked(m_new, l * torch.exp(m_new - m) + exps(m_new)),
        "you summed exp(block) without subtracting the max: r holds the sum of exp(z - m), relative to the running "
        "max, so the block's terms are exp(block - m_new) (and exp of a large score overflows)":
            _stacked(m_new, l + torch.exp(block).sum(dim=-1)),
        "the block's terms are taken relative to the old max, exp(block - m_old): take both the old sum and the "
        "block's terms relative to the new max m_new": _stacked(m_new, l * torch.exp(m - m_new) + exps(m)),
        "the old r was dropped: r_new is the old sum, rescaled, plus the block's, r * exp(m - m_new) + "
        "exp(block - m_new).sum(dim=-1)": _stacked(m_new, exps(m_new)),
        "you took one max over the whole block, all rows together: each row (one query) has its own running "
        "max, block.max(dim=-1)": _stacked(whole, l * torch.exp(m - whole) + exps(whole)),
    }
    if L == C:
        col = torch.maximum(m, block.max(dim=0).values)  # over the rows instead of the columns
        wrong["the max was taken over the rows (dim=0) of the block: each row's max runs over its own scores, "
              "dim=-1"] = _stacked(col, l * torch.exp(m - col) + exps(col))
        wrong["the sum was taken over the rows (dim=0) of the block: each row sums its own scores' "
              "exponentials, dim=-1"] = _stacked(m_new, l * torch.exp(m - m_new) +
                                                  torch.exp(block - m_new[:, None]).sum(dim=0))
    return wrong


def _reject_known_flat(label: str, got: np.ndarray, expected: np.ndarray, wrong: dict, atol: float = 1e-8) -> None:
    for hint, value in wrong.items():
        if value.shape == got.shape and not np.allclose(value, expected, atol=atol, equal_nan=True) and \
                np.allclose(got, value, atol=atol, equal_nan=True):
            raise AssertionError(f"{label}: {hint}")


def _finite_state(label: str, got: tuple[np.ndarray, ...], names: tuple[str, ...], why: str) -> None:
    for name, g in zip(names, got):
        if not np.all(np.isfinite(g)):
            bad = _fmt_index(tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0]))
            raise AssertionError(f"{name}, {label} is {g[tuple(np.argwhere(~np.isfinite(g))[0])]} at {bad}: {why}")


_OVERFLOW = ("exp of a score near 1000 overflows to inf: subtract the running max first, exp(block - m_new), "
             "and rescale the old sum by exp(m - m_new); both exponents are then at most 0")


@_reports_not_attempted
def check_online_softmax_update(online_softmax_update: Callable) -> None:
    """Exercise: ``online_softmax_update(m (L,), r (L,), block (L, T_tile)) -> (m_new, r_new)``: the running max and
    the running sum of exp(z - max) of each row, after one more block of T_tile scores:
    m_new = maximum(m, block.max(-1)), r_new = r * exp(m - m_new) + exp(block - m_new).sum(-1)."""
    names = ("m_new", "r_new")
    with _attempt("online_softmax_update"):
        # one step in mid-row: rows 0 and 2 find a new max in the block, rows 1 and 3 do not; L = C, where a
        # reduction over the wrong axis still runs
        m = torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=torch.float64)  # (L,)
        l = torch.tensor([1.5, 2.5, 3.0, 1.2], dtype=torch.float64)  # (L,)
        block = torch.tensor([[1.5, -0.3, 0.2, 0.9], [0.1, 1.2, -0.5, 0.4],
                              [0.3, -2.0, 0.8, 1.4], [-0.4, 0.6, 0.0, 0.7]], dtype=torch.float64)  # (L, T_tile)
        label = "online_softmax_update(m, r, block) for L=4 rows and a block of T_tile=4 scores"
        hint = ("m and r are (L,), block (L, T_tile): block.max(dim=-1).values is (L,) (a bare .max(dim=-1) returns "
                "a pair (values, indices)); torch.maximum(m, ...) compares elementwise; block - m_new[:, None] "
                "broadcasts (L, T_tile) - (L, 1)")
        got = _tuple_of(label, _call_with_hint(label, online_softmax_update,
                                               (("m", m), ("r", l), ("block", block)), hint), names)
        _expect_shapes(label, got, names, ((4,), (4,)), " (L,): one running max and one running sum per row")
        exp_m, exp_l = _online_softmax_reference(m, l, block)
        _reject_known_flat(label, _stacked(*got), _stacked(exp_m, exp_l), _online_softmax_wrong(m, l, block))
        _compare(f"m_new, {label}", got[0], exp_m.numpy(), atol=1e-8, legend=" (L,): maximum(m, block.max(dim=-1))")
        _compare(f"r_new, {label}", got[1], exp_l.numpy(), atol=1e-8,
                 legend=" (L,): r * exp(m - m_new) + exp(block - m_new).sum(dim=-1)")

        # a stream of blocks from the empty state (m = -inf, r = 0); row 1 has scores near 1000
        gen = torch.Generator().manual_seed(101)
        scores = torch.randn(3, 8, generator=gen, dtype=torch.float64) * 2.0  # (L, S)
        scores[1] += 1000.0
        scores[2] -= 30.0
        m = torch.full((3,), -torch.inf, dtype=torch.float64)  # (L,): the max of no scores
        l = torch.zeros(3, dtype=torch.float64)  # (L,): the sum over no scores
        start = 0
        for width in (3, 3, 2):
            block = scores[:, start:start + width]  # (L, T_tile)
            label = (f"online_softmax_update after the block of columns {start}..{start + width - 1} of scores "
                     f"(L, S) = (3, 8), starting from m = -inf, r = 0")
            got = _tuple_of(label, _call_with_hint(label, online_softmax_update,
                                                   (("m", m), ("r", l), ("block", block.clone())), hint), names)
            _expect_shapes(label, got, names, ((3,), (3,)), " (L,)")
            _finite_state(label, got, names, _OVERFLOW if start else
                          _OVERFLOW + ". On the first block m = -inf: exp(m - m_new) = exp(-inf) = 0, and r = 0")
            seen = scores[:, :start + width]  # (L, columns so far)
            exp_m = seen.max(dim=-1).values  # (L,)
            exp_l = torch.exp(seen - exp_m[:, None]).sum(dim=-1)  # (L,)
            _compare(f"m_new, {label}", got[0], exp_m.numpy(), atol=1e-8, legend=" (L,): the max of every score so far")
            _compare(f"r_new, {label}", got[1], exp_l.numpy(), atol=1e-8,
                     legend=" (L,): the sum of exp(z - m_new) over every score so far")
            m, l = (torch.as_tensor(g) for g in got)
            start += width
    _say("online_softmax_update: correct: the running max, and the running sum rescaled by exp(m - m_new); "
          "exact, and stable for scores near 1000.")


def _block_attention_reference(m, l, acc, scores, values):
    m_new = torch.maximum(m, scores.max(dim=-1).values)  # (L,)
    scale = torch.exp(m - m_new)  # (L,): how much the old terms shrink
    p = torch.exp(scores - m_new[:, None])  # (L, T_tile)
    return m_new, l * scale + p.sum(dim=-1), acc * scale[:, None] + p @ values  # (L,), (L,), (L, Ev)


def _block_attention_wrong(m, l, acc, scores, values) -> dict[str, np.ndarray]:
    bm = scores.max(dim=-1).values  # (L,)
    m_new = torch.maximum(m, bm)  # (L,)
    s = torch.exp(m - m_new)  # (L,)
    p = torch.exp(scores - m_new[:, None])  # (L, T_tile)
    l_new = l * s + p.sum(dim=-1)  # (L,)
    pb = torch.exp(scores - bm[:, None])  # (L, T_tile)
    sb = torch.exp(m - bm)  # (L,)
    po = torch.exp(scores - m[:, None])  # (L, T_tile)
    return {
        "acc was not rescaled: it is a sum of exp(z - m_old) v, so when the max grows every old term must shrink "
        "by exp(m_old - m_new), like r: acc * exp(m - m_new)[:, None] + p @ values":
            _stacked(m_new, l_new, acc + p @ values),
        "r was not rescaled (acc was): both sums shrink by exp(m_old - m_new) when the max grows":
            _stacked(m_new, l + p.sum(dim=-1), acc * s[:, None] + p @ values),
        "acc was divided by r: acc holds the unnormalised sum of exp(z - m) v, and the division by r happens "
        "once, after the last block (out = acc / r[:, None]). Dividing at every step and adding the next block's "
        "unnormalised terms mixes two scales": _stacked(m_new, l_new, (acc * s[:, None] + p @ values) / l_new[:, None]),
        "acc was kept normalised (out so far, as FlashAttention-1 does): here acc is the unnormalised sum of "
        "exp(z - m) v, as in FlashAttention-2; rescale it by exp(m - m_new) only, and divide by r at the very end":
            _stacked(m_new, l_new, (acc * (l * s)[:, None] + p @ values) / l_new[:, None]),
        "you rescaled the wrong way, by exp(m_new - m_old) >= 1: the max grew, so the old terms shrink, "
        "exp(m - m_new)": _stacked(m_new, l / s + p.sum(dim=-1), acc / s[:, None] + p @ values),
        "the running max is this block's max only: it is the larger of the old max and the block's, "
        "maximum(m, scores_block.max(dim=-1))": _stacked(bm, l * sb + pb.sum(dim=-1), acc * sb[:, None] + pb @ values),
        "the block's weights are taken relative to the old max, exp(scores - m_old): use the new max m_new for "
        "them and for the rescaling": _stacked(m_new, l * s + po.sum(dim=-1), acc * s[:, None] + po @ values),
        "the block's weights were normalised on their own (a softmax over the block): keep them unnormalised, "
        "exp(scores - m_new), and let r carry their sum": _stacked(
            m_new, l_new, acc * s[:, None] + torch.softmax(scores, dim=-1) @ values),
    }


@_reports_not_attempted
def check_attention_block_update(attention_block_update: Callable) -> None:
    """Exercise: ``attention_block_update(m (L,), r (L,), acc (L, Ev), scores_block (L, T_tile),
    values_block (T_tile, Ev)) -> (m, r, acc)``: one step of tiled (FlashAttention-style) attention; acc is the
    unnormalised sum of exp(z - m) v, rescaled by exp(m_old - m_new), and the output is acc / r after the last
    block."""
    names = ("m", "r", "acc")
    hint = ("m and r are (L,), acc (L, Ev), scores_block (L, T_tile) and values_block (T_tile, Ev): the block's "
            "weights exp(scores_block - m_new[:, None]) are (L, T_tile), times values_block (T_tile, Ev) gives "
            "(L, Ev); the rescaling factor exp(m - m_new) is (L,), and [:, None] makes it (L, 1) to scale the rows "
            "of acc")
    with _attempt("attention_block_update"):
        # one step in mid-stream: rows 0 and 2 find a new max in this block, rows 1 and 3 do not
        gen = torch.Generator().manual_seed(102)
        L, C, Ev = 4, 3, 2
        m = torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=torch.float64)  # (L,)
        l = torch.tensor([1.5, 2.5, 3.0, 1.2], dtype=torch.float64)  # (L,)
        acc = torch.randn(L, Ev, generator=gen, dtype=torch.float64)  # (L, Ev)
        scores = torch.tensor([[1.5, -0.3, 0.2], [0.1, 1.2, -0.5], [0.3, -2.0, 0.8], [-0.4, 0.6, 0.0]],
                              dtype=torch.float64)  # (L, T_tile)
        values = torch.randn(C, Ev, generator=gen, dtype=torch.float64)  # (T_tile, Ev)
        label = f"attention_block_update for L={L} queries, a block of T_tile={C} keys, Ev={Ev}"
        args = (("m", m), ("r", l), ("acc", acc), ("scores_block", scores), ("values_block", values))
        got = _tuple_of(label, _call_with_hint(label, attention_block_update, args, hint), names)
        _expect_shapes(label, got, names, ((L,), (L,), (L, Ev)), " (m and r (L,), acc (L, Ev))")
        expected = _block_attention_reference(m, l, acc, scores, values)
        wrong = _block_attention_wrong(m, l, acc, scores, values)
        _reject_known_flat(label, _stacked(*got), _stacked(*expected), wrong)
        for name, g, e, legend in zip(names, got, expected, (
                " (L,): maximum(m, scores_block.max(dim=-1))",
                " (L,): r * exp(m - m_new) + exp(scores_block - m_new[:, None]).sum(dim=-1)",
                " (L, Ev): acc * exp(m - m_new)[:, None] + exp(scores_block - m_new[:, None]) @ values_block")):
            _compare(f"{name}, {label}", g, e.numpy(), atol=1e-8, legend=legend)

        # the whole row of keys in blocks of 3, 3 and 1, from the empty state; row 1's scores are near 500
        L, S, Ev = 3, 7, 5
        scores = torch.randn(L, S, generator=gen, dtype=torch.float64) * 1.5  # (L, S)
        scores[1] += 500.0
        values = torch.randn(S, Ev, generator=gen, dtype=torch.float64)  # (S, Ev)
        m = torch.full((L,), -torch.inf, dtype=torch.float64)
        l, acc = torch.zeros(L, dtype=torch.float64), torch.zeros(L, Ev, dtype=torch.float64)
        start = 0
        for width in (3, 3, 1):
            label = (f"attention_block_update after the keys {start}..{start + width - 1} of S={S}, L={L}, Ev={Ev}, "
                     f"starting from m = -inf, r = 0, acc = 0")
            args = (("m", m), ("r", l), ("acc", acc), ("scores_block", scores[:, start:start + width].clone()),
                    ("values_block", values[start:start + width].clone()))
            got = _tuple_of(label, _call_with_hint(label, attention_block_update, args, hint), names)
            _expect_shapes(label, got, names, ((L,), (L,), (L, Ev)), " (m and r (L,), acc (L, Ev))")
            _finite_state(label, got, names, "exp of a score near 500 overflows: take every exponential relative "
                                             "to the running max, exp(scores_block - m_new), exp(m - m_new)")
            seen = scores[:, :start + width]  # (L, keys so far)
            exp_m = seen.max(dim=-1).values  # (L,)
            p = torch.exp(seen - exp_m[:, None])  # (L, keys so far)
            for name, g, e in zip(names, got, (exp_m, p.sum(dim=-1), p @ values[:start + width])):
                _compare(f"{name}, {label}", g, e.numpy(), atol=1e-8,
                         legend=" (the state after these keys: max, sum of exp(z - max), sum of exp(z - max) v)")
            m, l, acc = (torch.as_tensor(g) for g in got)
            start += width
        out = acc / l[:, None]  # (L, Ev)
        _compare("acc / r after the last block", out.numpy(), (torch.softmax(scores, dim=-1) @ values).numpy(),
                 atol=1e-8, legend=" (L, Ev): softmax(scores) @ values, computed at once")
    _say("attention_block_update: correct: acc and r rescaled by exp(m - m_new), divided once at the end; "
          "equal to softmax(scores) @ values.")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float | None = None, dim: int = -1
            ) -> torch.Tensor:
    """softmax(q kᵀ / scale) v over the last two axes; scale defaults to sqrt(E)."""
    scale = q.shape[-1] ** 0.5 if scale is None else scale
    return torch.softmax(q @ k.transpose(-2, -1) / scale, dim=dim) @ v  # (..., L, Ev)


@_reports_not_attempted
def check_cached_attention_step(cached_attention_step: Callable) -> None:
    """Exercise: ``cached_attention_step(q_t (..., 1, E), k_t (..., 1, E), v_t (..., 1, Ev), cache_k (..., S, E),
    cache_v (..., S, Ev)) -> (out_t (..., 1, Ev), cache_k (..., S+1, E), cache_v (..., S+1, Ev))``: append the new
    key and value along the time axis (dim -2), then attend with q_t over all S+1 cached positions."""
    names = ("out_t", "cache_k", "cache_v")
    hint = ("the caches are (..., S, E) and (..., S, Ev), the new key and value (..., 1, E) and (..., 1, Ev): "
            "append along the time axis, torch.cat([cache_k, k_t], dim=-2), which works for (B, S, E) and "
            "(B, H, S, E) alike; then q_t @ cache_k.transpose(-2, -1) is (..., 1, S+1)")
    with _attempt("cached_attention_step"):
        gen = torch.Generator().manual_seed(103)
        B, S, E, Ev = 2, 3, 4, 5
        q, k, v = (torch.randn(B, 1, n, generator=gen, dtype=torch.float64) for n in (E, E, Ev))  # (B, 1, ·)
        cache_k = torch.randn(B, S, E, generator=gen, dtype=torch.float64)  # (B, S, E)
        cache_v = torch.randn(B, S, Ev, generator=gen, dtype=torch.float64)  # (B, S, Ev)
        label = f"cached_attention_step for B={B}, S={S} cached positions, E={E}, Ev={Ev}"
        args = (("q_t", q), ("k_t", k), ("v_t", v), ("cache_k", cache_k), ("cache_v", cache_v))
        got = _tuple_of(label, _call_with_hint(label, cached_attention_step, args, hint), names)
        K, V = torch.cat([cache_k, k], dim=-2), torch.cat([cache_v, v], dim=-2)  # (B, S+1, E), (B, S+1, Ev)
        expected = (_attend(q, K, V), K, V)
        for name, g, cache, new in zip(names[1:], got[1:], (cache_k, cache_v), (k, v)):
            n = cache.shape[-1]
            _reject_shape(f"{name}, {label}", g, (B, S + 1, n), [
                ((B, S, n), "it has the S old positions only: append the new one, torch.cat([cache, new], dim=-2)"),
                ((B, 1, n), "you overwrote the cache with the new position: append it, so that the next step "
                            "still sees every earlier one, torch.cat([cache, new], dim=-2)"),
                ((2 * B, S, n), "you appended along the batch axis (dim 0): the time axis is dim -2"),
                ((B, S, 2 * n), "you appended along the feature axis (dim -1): the time axis is dim -2"),
            ])
            if g.shape == (B, S + 1, n) and np.allclose(g, torch.cat([new, cache], dim=-2).numpy()):
                raise AssertionError(
                    f"{name}, {label}: the new position went in front of the cache: it is the latest, so it goes at "
                    f"the end, position S = {S}: torch.cat([cache, new], dim=-2)"
                )
            _compare(f"{name}, {label}", g, torch.cat([cache, new], dim=-2).numpy(), atol=0.0,
                     legend=f" (B, S+1, {'E' if name == 'cache_k' else 'Ev'}): the old cache, then the new position")
        wrong = {
            "you attended before appending, over the S old positions only: the token attends to itself too, "
            "so append k_t and v_t first and attend over all S+1": _attend(q, cache_k, cache_v),
            f"you did not divide the scores by sqrt(E) = {E**0.5:.3g}": _attend(q, K, V, scale=1.0),
            f"you divided by sqrt(Ev) = sqrt({Ev}): the scale is sqrt(E) = sqrt({E}), the size of the queries and "
            f"keys": _attend(q, K, V, scale=Ev**0.5),
            "the softmax ran over the single query (dim -2), giving every key weight 1: it runs over the keys, "
            "dim=-1": _attend(q, K, V, dim=-2),
        }
        _reject_known(f"out_t, {label}", got[0], expected[0], wrong, atol=1e-8)
        _compare(f"out_t, {label}", got[0], expected[0].numpy(), atol=1e-8,
                 legend=" (B, 1, Ev): attention of q_t over the S+1 cached keys and values")

        # generate T = 5 steps with heads, from empty caches: the outputs must be those of causal attention
        B, H, T, E, Ev = 2, 3, 5, 4, 2
        Q, Kf = (torch.randn(B, H, T, E, generator=gen, dtype=torch.float64) for _ in range(2))  # (B, H, T, E)
        Vf = torch.randn(B, H, T, Ev, generator=gen, dtype=torch.float64)  # (B, H, T, Ev)
        causal = masks.causal_mask(T)  # (T, T), True = may attend
        scores_full = (Q @ Kf.transpose(-2, -1) / E**0.5).masked_fill(~causal, -torch.inf)  # (B, H, T, T)
        full = torch.softmax(scores_full, dim=-1) @ Vf  # (B, H, T, Ev): causal attention at once
        cache_k = torch.zeros(B, H, 0, E, dtype=torch.float64)  # (B, H, 0, E): nothing cached yet
        cache_v = torch.zeros(B, H, 0, Ev, dtype=torch.float64)
        for t in range(T):
            label = (f"cached_attention_step at step t={t} of generating T={T} tokens with heads, (B, H) = {(B, H)}, "
                     f"E={E}, Ev={Ev}, from empty caches (B, H, 0, E)")
            args = (("q_t", Q[:, :, t:t + 1]), ("k_t", Kf[:, :, t:t + 1]), ("v_t", Vf[:, :, t:t + 1]),
                    ("cache_k", cache_k), ("cache_v", cache_v))
            got = _tuple_of(label, _call_with_hint(label, cached_attention_step, args, hint), names)
            for name, g, n in zip(names[1:], got[1:], (E, Ev)):
                if g.shape != (B, H, t + 1, n):
                    raise AssertionError(
                        f"{name}, {label} has shape {g.shape} but should have shape {(B, H, t + 1, n)}: "
                        f"(B, H, t+1, {'E' if n == E else 'Ev'}), the cache grows by one position along the time "
                        f"axis, dim -2, at every step"
                    )
            _compare(f"out_t, {label}", got[0], full[:, :, t:t + 1].numpy(), atol=1e-8,
                     legend=" (B, H, 1, Ev): row t of causal attention over the whole sequence")
            cache_k, cache_v = torch.as_tensor(got[1]), torch.as_tensor(got[2])
    _say("cached_attention_step: correct: append, then attend over every cached position; "
          "step by step it is causal attention.")


def _elu1(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.elu(x) + 1.0


def _linear_attention(q, k, v, *, phi: Callable = _elu1, normalise: bool = True, phi_v: bool = False
                      ) -> torch.Tensor:
    """Linear attention, computed the quadratic way: (phi(q) phi(k)ᵀ) with rows normalised, times v."""
    a = phi(q) @ phi(k).transpose(-2, -1)  # (B, L, S)
    if normalise:
        a = a / a.sum(dim=-1, keepdim=True)
    return a @ (phi(v) if phi_v else v)  # (B, L, Ev)


@_reports_not_attempted
def check_linear_attention(linear_attention: Callable) -> None:
    """Exercise: ``linear_attention(q (B, L, E), k (B, S, E), v (B, S, Ev)) -> (B, L, Ev)`` with phi = elu + 1:
    out_i = phi(q_i) (sum_j phi(k_j)ᵀ v_j) / (phi(q_i) · sum_j phi(k_j)), Katharopoulos et al. 2020."""
    with _attempt("linear_attention"):
        # L = S first, where swapping q and k still runs; then L, S, E and Ev all different
        for seed, (B, L, S, E, Ev) in ((104, (1, 6, 6, 3, 3)), (105, (2, 3, 5, 4, 2))):
            gen = torch.Generator().manual_seed(seed)
            q, k = (torch.randn(B, n, E, generator=gen, dtype=torch.float64) for n in (L, S))
            v = torch.randn(B, S, Ev, generator=gen, dtype=torch.float64)
            label = f"linear_attention for B={B}, L={L}, S={S}, E={E}, Ev={Ev}"
            result = _call_with_hint(
                label, linear_attention, (("q", q), ("k", k), ("v", v)),
                "phi(k).transpose(-2, -1) @ v is (B, E, Ev), one matrix per sequence whatever S is; phi(q) @ it is "
                "(B, L, Ev). The normaliser phi(q) @ phi(k).sum(dim=-2)[..., None] is (B, L, 1)",
            )
            got = _as_array(label, result)
            expected = _linear_attention(q, k, v)  # (B, L, Ev)
            wrong = {
                "there is no normaliser: divide each query's row by phi(q_i) · sum_j phi(k_j), so that its weights "
                "phi(q_i) · phi(k_j) sum to 1 over the keys": _linear_attention(q, k, v, normalise=False),
                "phi is relu: elu(x) + 1 is positive everywhere, relu is zero for half the inputs (and a query or "
                "key of zeros makes the normaliser 0)": _linear_attention(q, k, v, phi=torch.relu),
                "phi is elu without the + 1: elu(x) > -1, so elu(x) + 1 > 0 keeps every weight positive; elu alone "
                "gives negative weights": _linear_attention(q, k, v, phi=torch.nn.functional.elu),
                "phi is exp: this exercise uses phi(x) = elu(x) + 1, torch.nn.functional.elu(x) + 1":
                    _linear_attention(q, k, v, phi=torch.exp),
                "that is softmax attention: linear attention replaces exp(q · k / sqrt(E)) by phi(q) · phi(k), "
                "which lets phi(k)ᵀ v be summed once, before any query": _attend(q, k, v),
                "you applied phi to the values too: phi maps the queries and keys only; v is summed as it is":
                    _linear_attention(q, k, v, phi_v=True),
                "you averaged over the keys (divided by S) instead of normalising each query's weights: divide by "
                "phi(q_i) · sum_j phi(k_j)": _linear_attention(q, k, v, normalise=False) / S,
                "you divided q and k by sqrt(E) before phi: there is no 1/sqrt(E) in linear attention, phi(q) · "
                "phi(k) is normalised by its row sum": _linear_attention(q / E**0.5, k / E**0.5, v),
            }
            if L == S:
                wrong["the queries and keys are swapped (it only ran because L = S here): phi(q) reads "
                      "phi(k)ᵀ v, the keys' and values' summary"] = _linear_attention(k, q, v)
            _reject_known(label, got, expected, wrong, atol=1e-8)
            _compare(label, got, expected.numpy(), atol=1e-8,
                     legend=" (B, L, Ev): softmax-free attention with weights phi(q_i) · phi(k_j), rows summing to 1")
    _say("linear_attention: correct: phi(q) (phi(k)ᵀ v) / (phi(q) · Σ phi(k)), with phi = elu + 1.")


# --------------------------------------------------------------------------- chapter 9: applications


def _ref_attention_pool(h: torch.Tensor, query: torch.Tensor, mask: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention pooling with one learned query: (pooled (B, D), weights (B, T))."""
    D = h.shape[-1]
    scores = h @ query / D**0.5  # (B, T, D) @ (D,) -> (B, T)
    weights = masked_softmax(scores, mask)  # (B, T): 0 on padding, a row of zeros if all padding
    return (weights.unsqueeze(1) @ h).squeeze(1), weights  # (B, 1, T) @ (B, T, D) -> (B, D)


def _reject_pooling_nan(label: str, w: np.ndarray, lengths: list[int]) -> None:
    for b in range(w.shape[0]):
        if np.isfinite(w[b]).all():
            continue
        if lengths[b] == 0:
            raise AssertionError(
                f"weights, {label}: sequence {b} is all padding (length 0) and its weights came out NaN: "
                f"masked_fill(~mask, -inf) then softmax gives exp(-inf) / sum(exp(-inf)) = 0/0 there. A sequence "
                f"with no real token must get zero weights (and a zero pooled vector), never NaN: "
                f"ac.masked_softmax does so, or zero the rows that have no real token"
            )
        raise AssertionError(
            f"weights, {label}: sequence {b} has {lengths[b]} real tokens, yet its weights contain NaN or inf. If "
            f"a sequence without padding comes out NaN, the mask is inverted: True = a real token, so fill the "
            f"scores where the mask is False, masked_fill(~mask, float('-inf')). Otherwise an exponential "
            f"overflowed: subtract each row's max first"
        )


@_reports_not_attempted
def check_attention_pool(attention_pool: Callable) -> None:
    """Exercise: ``attention_pool(h (B, T, D), query (D,), mask (B, T)) -> (pooled (B, D), weights (B, T))``:
    weights = softmax of h·query / sqrt(D) over each sequence's real tokens (mask True), exactly 0 on padding and
    all 0 for a sequence with no real token; pooled = Σ_t weights_t h_t."""
    names = ("pooled", "weights")
    hint = ("h is (B, T, D) and query (D,): h @ query is (B, T), one score per token. Each sequence's pooled vector "
            "is its weights (T,) times its tokens (T, D): weights.unsqueeze(1) @ h is (B, 1, T) @ (B, T, D) = "
            "(B, 1, D), or (weights[..., None] * h).sum(dim=1) is (B, D)")
    with _attempt("attention_pool"):
        # B, T and D all different; lengths: a full sequence, padded ones, and (second) one with no real token
        for seed, (B, T, D), lengths in ((91, (3, 5, 4), [5, 3, 1]), (92, (4, 6, 8), [2, 6, 0, 4])):
            gen = torch.Generator().manual_seed(seed)
            h = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
            query = torch.randn(D, generator=gen, dtype=torch.float64)  # (D,): h·q / sqrt(D) about N(0, 1)
            mask = masks.padding_mask(torch.tensor(lengths), T)  # (B, T), True = a real token
            label = f"attention_pool for B={B}, T={T}, D={D}, lengths={lengths}"
            result = _call_with_hint(label, attention_pool, (("h", h), ("query", query), ("mask", mask)), hint)
            if isinstance(result, (tuple, list)) and len(result) == 2:
                first, second = (_as_array(label, r) for r in result)
                if first.shape == (B, T) and second.shape == (B, D):
                    raise AssertionError(f"{label}: you returned (weights, pooled): return (pooled, weights)")
            pooled, w = _tuple_of(label, result, names)
            exp_pooled, exp_w = _ref_attention_pool(h, query, mask)
            _reject_shape(f"weights, {label}", w, (B, T), [
                ((B, T, 1), "the weights kept a trailing axis of 1: return one weight per token, (B, T)"),
                ((B, 1, T), "the weights kept an axis of 1 in the middle: return them as (B, T), .squeeze(1)"),
            ])
            _reject_shape(f"pooled, {label}", pooled, (B, D), [
                ((B, T, D), "these are the weighted tokens, one per position: sum them over the time axis, "
                            "dim=1, so that each sequence becomes one vector (B, D)"),
                ((B, 1, D), "pooled kept an axis of 1: .squeeze(1) it to (B, D)"),
                ((B, B, D), "weights @ h paired the weights of every sequence with the tokens of every sequence: "
                            "(B, T) @ (B, T, D) broadcasts the (B, T) matrix over the batch. Give the weights a "
                            "middle axis, weights.unsqueeze(1) @ h is (B, 1, T) @ (B, T, D) = (B, 1, D), then "
                            ".squeeze(1)"),
            ])
            _expect_shapes(label, (pooled, w), names, ((B, D), (B, T)),
                           " (pooled (B, D): one vector per sequence; weights (B, T): one weight per token)")
            _reject_pooling_nan(label, w, lengths)
            for b in range(B):
                if lengths[b] == 0 and np.allclose(w[b], 1.0 / T):
                    raise AssertionError(
                        f"weights, {label}: sequence {b} is all padding and got uniform weights 1/T: that is what "
                        f"a fill of -1e9 (or any finite number) does when every score of a row is filled. A "
                        f"sequence with no real token must get zero weights, so that its pooled vector is 0 and no "
                        f"padding leaks into it: fill with -inf and handle the rows with no real token, or use "
                        f"ac.masked_softmax"
                    )
            scores = h @ query  # (B, T): unscaled
            real = mask.to(h.dtype)  # (B, T): 1 on a real token
            wrong = {
                "the mask was ignored: the padding tokens got weight. Fill their scores with -inf before the "
                "softmax, scores.masked_fill(~mask, float('-inf')), or use ac.masked_softmax(scores, mask)":
                    torch.softmax(scores / D**0.5, dim=-1),
                "the mask is inverted: True means a real token, which may be attended; block the positions where "
                "it is False, masked_fill(~mask, -inf)": masked_softmax(scores / D**0.5, ~mask),
                f"you did not divide the scores by sqrt(D) = {D**0.5:.3g}: h_t · q sums D products, so its spread "
                f"grows like sqrt(D), and unscaled scores push the weights towards one-hot":
                    masked_softmax(scores, mask),
                f"you divided by D = {D} instead of sqrt(D) = {D**0.5:.3g}": masked_softmax(scores / D, mask),
                "each column sums to 1 but each sequence's weights should: you took the softmax over the batch "
                "axis (dim=0), so the sequences competed with each other for every position. The tokens of one "
                "sequence compete over the time axis, dim=-1": masked_softmax(scores / D**0.5, mask, dim=0),
                "every real token got the same weight 1/length: that is mean pooling, the baseline. Attention "
                "pooling weighs token t by the softmax of h_t · q / sqrt(D), so the query decides which tokens "
                "count": real / real.sum(dim=-1, keepdim=True).clamp(min=1.0),
                "you zeroed the padding after the softmax without renormalising, so each sequence's weights sum "
                "to less than 1: mask the scores (-inf) *before* the softmax":
                    torch.softmax(scores / D**0.5, dim=-1) * real,
                "the weights are exp(score) without the softmax's division: each sequence's weights must sum to 1 "
                "over its real tokens (divide by their sum)": torch.exp(scores / D**0.5) * real,
            }
            _reject_known(f"weights, {label}", w, exp_w, wrong, atol=1e-8)
            for b in range(B):
                pad = ~mask[b].numpy()
                if lengths[b] and pad.any() and np.all(w[b][~pad] == 0) and np.any(w[b][pad] != 0):
                    raise AssertionError(
                        f"weights, {label}: sequence {b} put all its weight on its padding and none on its "
                        f"{lengths[b]} real tokens: the mask is inverted. True means a real token, which may be "
                        f"attended; block the positions where it is False, masked_fill(~mask, -inf)"
                    )
            leaked = np.argwhere(~mask.numpy() & (w != 0))
            if leaked.size:
                b, t = (int(i) for i in leaked[0])
                raise AssertionError(
                    f"weights, {label}: weights[{b}, {t}] = {w[b, t]:.3g} but position {t} of sequence {b} (length "
                    f"{lengths[b]}) is padding: its weight must be exactly 0, which a score of -inf gives"
                )
            sums = w.sum(axis=-1)
            for b in range(B):
                if lengths[b] and not np.isclose(sums[b], 1.0, atol=1e-6):
                    raise AssertionError(
                        f"weights, {label}: sequence {b}'s weights sum to {sums[b]:.6g}, not 1: the softmax "
                        f"normalises over each sequence's real tokens, dim=-1"
                    )
            _compare(f"weights, {label}", w, exp_w.numpy(), atol=1e-8,
                     legend=" (B, T): softmax of h·q / sqrt(D) over each sequence's real tokens")
            masked_mean = (real.unsqueeze(1) @ h).squeeze(1) / real.sum(-1, keepdim=True).clamp(min=1.0)  # (B, D)
            wrong_pooled = {
                "pooled is the mean of the real tokens, whatever the weights: weigh each token by its attention "
                "weight, pooled = Σ_t weights_t h_t": masked_mean,
                "pooled is the mean over all T positions, padding included, and ignores the weights: "
                "pooled = Σ_t weights_t h_t": h.mean(dim=1),
                "pooled is the plain sum of the tokens: weigh each by its attention weight, Σ_t weights_t h_t":
                    h.sum(dim=1),
            }
            _reject_known(f"pooled, {label}", pooled, exp_pooled, wrong_pooled, atol=1e-8)
            _compare(f"pooled, {label}", pooled, exp_pooled.numpy(), atol=1e-8,
                     legend=" (B, D): Σ_t weights[b, t] h[b, t], the zero vector for a sequence with no real token")
    _say("attention_pool: correct: one query scores every token, padding gets exactly 0, an empty sequence 0 "
          "(not NaN), and the pooled vector is the weighted sum.")


def _ref_soft_align(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attend step of decomposable attention (Parikh et al. 2016), its network F the identity: (beta, alpha, e)."""
    e = a @ b.transpose(-2, -1)  # (B, T_a, D) @ (B, D, T_b) -> (B, T_a, T_b): e[n, i, j] = a_i · b_j
    beta = torch.softmax(e, dim=-1) @ b  # (B, T_a, T_b) @ (B, T_b, D) -> (B, T_a, D): the part of b aligned to a_i
    alpha = torch.softmax(e, dim=-2).transpose(-2, -1) @ a  # (B, T_b, T_a) @ (B, T_a, D) -> (B, T_b, D)
    return beta, alpha, e


@_reports_not_attempted
def check_soft_align(soft_align: Callable) -> None:
    """Exercise: ``soft_align(a (B, T_a, D), b (B, T_b, D)) -> (beta (B, T_a, D), alpha (B, T_b, D), e (B, T_a, T_b))``:
    e = a bᵀ (unscaled), beta_i = Σ_j softmax_j(e_ij) b_j, alpha_j = Σ_i softmax_i(e_ij) a_i."""
    names = ("beta", "alpha", "e")
    hint = ("a is (B, T_a, D) and b (B, T_b, D): e = a @ b.transpose(-2, -1) is (B, T_a, T_b). beta = "
            "softmax(e, dim=-1) @ b is (B, T_a, D). alpha takes the softmax over i, dim=-2, which is still "
            "(B, T_a, T_b): transpose it to (B, T_b, T_a) before multiplying by a (B, T_a, D)")
    with _attempt("soft_align"):
        # T_a = T_b = D first, where a missing transpose still runs; then T_a, T_b and D all different
        for seed, (B, La, Lb, D) in ((93, (2, 4, 4, 4)), (94, (2, 3, 5, 6))):
            gen = torch.Generator().manual_seed(seed)
            a = torch.randn(B, La, D, generator=gen, dtype=torch.float64) / D**0.25  # a_i · b_j about N(0, 1)
            b = torch.randn(B, Lb, D, generator=gen, dtype=torch.float64) / D**0.25
            label = f"soft_align for B={B}, T_a={La}, T_b={Lb}, D={D}"
            result = _call_with_hint(label, soft_align, (("a", a), ("b", b)), hint)
            got_beta, got_alpha, got_e = _tuple_of(label, result, names)
            beta, alpha, e = _ref_soft_align(a, b)
            soft_j, soft_i = torch.softmax(e, dim=-1), torch.softmax(e, dim=-2)  # (B, T_a, T_b) each

            wrong_e = {
                f"e is scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: decomposable attention compares the words by their "
                f"plain dot product (its learned network F sets the scale), and so does this exercise: "
                f"e = a @ b.transpose(-2, -1)": e / D**0.5,
                "e is transposed: e[n, i, j] = a_i · b_j, one row per word of a and one column per word of b: "
                "a @ b.transpose(-2, -1), (B, T_a, T_b)": e.transpose(-2, -1),
            }
            if D == Lb:
                wrong_e["you multiplied a by b, not by b transposed (it only ran because D = T_b here): "
                        "a @ b.transpose(-2, -1)"] = a @ b
            _reject_shape(f"e, {label}", got_e, (B, La, Lb), [
                ((B, Lb, La), "e is transposed: one row per word of a, a @ b.transpose(-2, -1) is (B, T_a, T_b)")])
            _reject_known(f"e, {label}", got_e, e, wrong_e, atol=1e-8)
            _compare(f"e, {label}", got_e, e.numpy(), atol=1e-8,
                     legend=" (B, T_a, T_b): e[n, i, j] = a[n, i] · b[n, j], no scaling")

            swapped = "beta and alpha are swapped: return (beta, alpha, e), with beta (B, T_a, D) the part of b " \
                      "aligned to each word of a, and alpha (B, T_b, D) the part of a aligned to each word of b"
            if (got_beta.shape == tuple(alpha.shape) and got_alpha.shape == tuple(beta.shape)
                    and np.allclose(got_beta, alpha.numpy(), atol=1e-8)
                    and np.allclose(got_alpha, beta.numpy(), atol=1e-8)
                    and not np.allclose(alpha.numpy(), beta.numpy(), atol=1e-8)):
                raise AssertionError(f"{label}: {swapped}")
            if La != Lb and got_beta.shape == (B, Lb, D) and got_alpha.shape == (B, La, D):
                raise AssertionError(f"{label}: {swapped}")
            wrong_beta = {
                "beta's softmax ran over i, the words of a (dim=-2): beta_i is the part of b aligned to a_i, so "
                "a_i's weights over the T_b words of b must sum to 1, softmax(e, dim=-1)": soft_i @ b,
                f"beta's weights are scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: this exercise uses the plain dot "
                f"product e, softmax(e, dim=-1) @ b": torch.softmax(e / D**0.5, dim=-1) @ b,
                "there is no softmax: e @ b sums b's words weighted by the raw scores. beta_i is a weighted "
                "*average* of b's words, with weights softmax over j of e_ij": e @ b,
            }
            if La == Lb:
                wrong_beta["beta mixes the words of a (it only ran because T_a = T_b here): beta_i is a weighted "
                           "average of *b*'s words, softmax(e, dim=-1) @ b"] = soft_j @ a
            _reject_known(f"beta, {label}", got_beta, beta, wrong_beta, atol=1e-8)
            _compare(f"beta, {label}", got_beta, beta.numpy(), atol=1e-8,
                     legend=" (B, T_a, D): beta[n, i] = Σ_j softmax_j(e[n, i, j]) b[n, j]")

            wrong_alpha = {
                "alpha's softmax ran over j, the words of b (dim=-1): alpha_j is the part of a aligned to b_j, so "
                "b_j's weights over the T_a words of a must sum to 1: softmax over i, dim=-2, then transpose to "
                "(B, T_b, T_a)": soft_j.transpose(-2, -1) @ a,
                f"alpha's weights are scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: this exercise uses the plain dot "
                f"product e": torch.softmax(e / D**0.5, dim=-2).transpose(-2, -1) @ a,
                "there is no softmax: alpha_j is a weighted *average* of a's words, with weights softmax over i of "
                "e_ij": e.transpose(-2, -1) @ a,
            }
            if La == Lb:
                wrong_alpha["the weights were not transposed (it only ran because T_a = T_b here): softmax(e, dim=-2) "
                            "is (B, T_a, T_b), column j holding b_j's weights; transpose it to (B, T_b, T_a) before "
                            "multiplying by a"] = soft_i @ a
                wrong_alpha["alpha mixes the words of b (it only ran because T_a = T_b here): alpha_j is a weighted "
                            "average of *a*'s words"] = soft_i.transpose(-2, -1) @ b
            _reject_shape(f"alpha, {label}", got_alpha, (B, Lb, D), [])
            _reject_known(f"alpha, {label}", got_alpha, alpha, wrong_alpha, atol=1e-8)
            _compare(f"alpha, {label}", got_alpha, alpha.numpy(), atol=1e-8,
                     legend=" (B, T_b, D): alpha[n, j] = Σ_i softmax_i(e[n, i, j]) a[n, i]")
    _say("soft_align: correct: one score matrix e = a bᵀ, read by rows for beta and by columns for alpha.")


@_reports_not_attempted
def check_patchify(patchify: Callable) -> None:
    """Exercise: ``patchify(images (B, C, Rh, Rw), patch_size ps) -> (B, N, C·ps·ps)``, N = (Rh/ps)(Rw/ps): the ps×ps
    patches in row-major order, each flattened in (C, ps, ps) order, so that a Linear with weight
    ``conv.weight.reshape(D, -1)`` on the patches equals ``Conv2d(C, D, kernel_size=ps, stride=ps)``; ValueError
    when Rh or Rw is not a multiple of ps."""
    hint = ("images are (B, C, Rh, Rw): images.reshape(B, C, Rh // ps, ps, Rw // ps, ps) splits the height into "
            "Rh/ps rows of patches, ps pixel rows each, and the width likewise; .permute(0, 2, 4, 1, 3, 5) brings the "
            "patch grid (Rh/ps, Rw/ps) forward and each patch's (C, ps, ps) pixels behind it; "
            ".reshape(B, N, C * ps * ps) flattens both")
    with _attempt("patchify"):
        # Rh != Rw first, so that reading the image as (B, C, Rw, Rh) shows; then a square image and another ps
        for B, C, H, W, P in ((2, 3, 8, 12, 4), (3, 2, 6, 6, 3)):
            x = _numbered(B, C, H, W)  # (B, C, Rh, Rw): the value of each entry is its flat index
            label = f"patchify(images, patch_size={P}) for images of shape (B, C, Rh, Rw) = {(B, C, H, W)}"
            got = _as_array(label, _call_with_hint(label, patchify, (("images", x), ("patch_size", P)), hint))
            rows, cols = H // P, W // P
            N, F = rows * cols, C * P * P
            _reject_shape(label, got, (B, N, F), [
                ((B, F, N), "it looks transposed: (B, C·ps·ps, N) is what F.unfold returns; .transpose(1, 2) makes "
                            "it (B, N, C·ps·ps), one row per patch"),
                ((B, N, C, P, P), "each patch is still a (C, ps, ps) block: flatten it into one vector of C·ps·ps "
                                  "numbers"),
                ((B, rows, cols, F), "the patches are still on their (Rh/ps, Rw/ps) grid: flatten the grid into one "
                                     "axis of N = (Rh/ps)(Rw/ps) patches, row by row"),
                ((B, rows, cols, C, P, P), "the patches are still on their (Rh/ps, Rw/ps) grid and each is a "
                                           "(C, ps, ps) block: reshape to (B, N, C·ps·ps)"),
                ((B * N, F), "the batch axis was folded into the patches: keep it, (B, N, C·ps·ps)"),
            ])
            t = x.reshape(B, C, rows, P, cols, P)  # (B, C, Rh/ps, ps, Rw/ps, ps)
            wrong = {
                "the patches are listed column by column: list them row by row (left to right, then top to "
                "bottom), patch (r, c) at index r·(Rw/ps) + c, the order in which conv(images).flatten(2) lists a "
                "convolution's outputs": t.permute(0, 4, 2, 1, 3, 5).reshape(B, N, F),
                "each patch is flattened channel-last, in (ps, ps, C) order: flatten it in (C, ps, ps) order, channel "
                "first, the layout of conv.weight (D, C, ps, ps), so that conv.weight.reshape(D, -1) lines up with "
                "your patch vectors": t.permute(0, 2, 4, 3, 5, 1).reshape(B, N, F),
                "the pixels inside each patch are listed column by column: flatten each patch in (C, ps, ps) order, "
                "channel, then pixel row, then pixel column, as conv.weight (D, C, ps, ps) is laid out":
                    t.permute(0, 2, 4, 1, 5, 3).reshape(B, N, F),
                "you reshaped the images straight to (B, N, C·ps·ps) without a permute: a reshape keeps the memory "
                "order, so 'patch' 0 holds the first C·ps·ps numbers of channel 0 (whole pixel rows), not a ps×ps "
                "square. Split the height and the width into (Rh/ps, ps) and (Rw/ps, ps), permute the patch grid in "
                "front, then flatten": x.reshape(B, N, F),
            }
            if H != W:
                wrong["you read the images as (B, C, Rw, Rh): they are (B, C, Rh, Rw), height first, so the split is "
                      "reshape(B, C, Rh // ps, ps, Rw // ps, ps)"] = (
                    x.reshape(B, C, W // P, P, H // P, P).permute(0, 2, 4, 1, 3, 5).reshape(B, N, F))
            expected = _ref_patchify(x, P)
            _reject_known(label, got, expected, wrong, atol=0.0)
            _compare_numbered(label, got, expected, (B, C, H, W),
                              " (B, N, C·ps·ps): patch r·(Rw/ps) + c is "
                              "images[n, :, r·ps:(r+1)·ps, c·ps:(c+1)·ps] flattened, channel, then pixel row, "
                              "then pixel column")

        # the reason for this layout: a Linear on the patches is the strided convolution of ViT's patch embedding
        B, C, H, W, P, Dm = 2, 3, 8, 12, 4, 5
        gen = torch.Generator().manual_seed(95)
        images = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)  # (B, C, Rh, Rw)
        with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
            torch.manual_seed(95)
            conv = torch.nn.Conv2d(C, Dm, kernel_size=P, stride=P, dtype=torch.float64)
        label = (f"patchify(images, {P}) @ conv.weight.reshape({Dm}, -1).T + conv.bias for images {(B, C, H, W)} "
                 f"and conv = Conv2d({C}, {Dm}, kernel_size={P}, stride={P})")
        patches = torch.as_tensor(_as_array(label, _call_with_hint(
            label, patchify, (("images", images), ("patch_size", P)), hint)))  # (B, N, C·ps·ps)
        with torch.no_grad():
            expected = conv(images).flatten(2).transpose(1, 2)  # (B, D, Rh/ps, Rw/ps) -> (B, N, D)
            embedded = patches @ conv.weight.reshape(Dm, -1).T + conv.bias  # (B, N, C·ps·ps) @ (C·ps·ps, D)
        _compare(label, embedded.numpy(), expected.numpy(), atol=1e-6,
                 legend=" (B, N, D): conv(images).flatten(2).transpose(1, 2), one embedding per patch")

        # images that do not split into whole patches
        for shape, P, side in (((1, 3, 8, 6), 4, "Rw = 6"), ((1, 3, 6, 8), 4, "Rh = 6")):
            label = f"patchify(images, patch_size={P}) for images of shape (B, C, Rh, Rw) = {shape}"
            try:
                patchify(torch.zeros(*shape), P)
            except ValueError:
                continue
            except (NotImplementedError, NotAttempted):
                raise
            except AssertionError as exc:
                raise AssertionError(
                    f"{label} raised AssertionError ({exc}): an assert is not input validation (python -O removes "
                    f"it). Raise ValueError naming the shapes, e.g. ValueError(f'Rh={{Rh}} and Rw={{Rw}} must be "
                    f"multiples of patch_size={{ps}}')"
                ) from None
            except Exception as exc:
                raise AssertionError(
                    f"{label} raised {type(exc).__name__} ({exc}): {side} is not a multiple of patch_size = {P}, "
                    f"and that should be a ValueError that names the shapes, raised by your own check before any "
                    f"reshape, not an error about element counts from inside PyTorch"
                ) from None
            raise AssertionError(
                f"{label} returned a result: {side} is not a multiple of patch_size = {P}, so the image does not "
                f"split into whole patches. Raise ValueError naming the shapes (F.unfold and slicing silently drop "
                f"the pixels that do not fit)"
            )
    _say("patchify: correct: row-major patches flattened in (C, ps, ps) order, the same as a stride-ps convolution "
          "followed by flatten, and a ValueError for images that do not split into whole patches.")


def _ref_seasonal_naive(y: torch.Tensor, period: int, horizon: int) -> torch.Tensor:
    """The package's seasonal naive forecast for one series: (T,) -> (horizon,)."""
    return seasonal_naive_forecast(y[None], horizon, period)[0]


def _seasonal_series(seed: int, T: int, period: int) -> torch.Tensor:
    """A trend plus a season of ``period`` steps plus noise: T distinct float64 values. (T,)"""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(T)
    season = 2.0 * torch.randn(period, generator=gen, dtype=torch.float64)  # (period,)
    return 10.0 + 0.1 * t + season[t % period] + 0.3 * torch.randn(T, generator=gen, dtype=torch.float64)


@_reports_not_attempted
def check_seasonal_naive(seasonal_naive: Callable) -> None:
    """Exercise: ``seasonal_naive(y (T,), period, horizon) -> (horizon,)``: ŷ_{T+h} = y_{T+h-κ·period} with
    κ = ceil(h/period), the smallest whole number of seasons that lands in the observed past:
    y[T - period + (h - 1) % period], 0-based; ``period`` is the season length T_season."""
    hint = ("y is 1-D (T,). The forecast h steps ahead (h = 1..horizon) is y[T - period + (h - 1) % period] in 0-based "
            "indexing: the last period values y[-period:], repeated for as long as the horizon needs")
    with _attempt("seasonal_naive"):
        # horizons shorter than, equal to and longer than the season; T not a multiple of period; period 1: plain naive
        for seed, T, m, H in ((96, 11, 4, 3), (96, 11, 4, 4), (96, 11, 4, 10), (97, 15, 7, 16), (98, 6, 1, 3)):
            y = _seasonal_series(seed, T, m)  # (T,)
            label = f"seasonal_naive(y, period={m}, horizon={H}) for y of length T={T}"
            call_hint = hint + (f". For horizon {H} > period {m} the index T - period + h - 1 runs past the end of y: "
                                f"wrap it into the last season with % period" if H > m else "")
            got = _as_array(label, _call_with_hint(label, seasonal_naive, (("y", y), ("period", m), ("horizon", H)),
                                                   call_hint))
            expected = _ref_seasonal_naive(y, m, H)  # (horizon,)
            if got.shape == (min(m, H),) != (H,):
                raise AssertionError(
                    f"{label} has shape {got.shape} but should have shape {(H,)}: you returned one season only, "
                    f"at most period = {m} values. For horizon > period, repeat the last season cyclically: step h "
                    f"uses y[T - period + (h - 1) % period]"
                )
            steps = torch.arange(H)  # h - 1
            last = T - 1
            wrong = {
                f"each step is one too early, a lag of period + 1 = {m + 1}: the value one season before time T + h is "
                f"y_(T+h-period), which is y[T - period + (h - 1)] with 0-based indices (h = 1 is y[T - period])":
                    y[T - m - 1 + steps % m],
                "that is the naive (last-value) forecast, y[-1] for every step: the seasonal one repeats the last "
                "*season*, y[T - period + (h - 1) % period]": y[last].expand(H),
                f"you repeated the first season of the series, y[:period]: use the *last* full season, the most recent "
                f"period = {m} values y[-period:]": y[steps % m],
                f"your values come from the first season (in the right phase): use the *last* full season, the "
                f"most recent period = {m} values y[-period:]": y[(T + steps) % m],
                "after the first season you kept repeating the last value: for horizon > period start the season "
                "again, index T - period + (h - 1) % period": y[torch.clamp(T - m + steps, max=last)],
                "that is the mean of the last season, the same for every step: the seasonal naive forecast keeps "
                "each step's own value from one season before": y[T - m:].mean().expand(H),
            }
            if H <= m - 1:
                wrong[f"each step is one too late (a lag of period - 1 = {m - 1}): counting h from 1 in a 0-based "
                      f"index, y[T - period + h], skips the first value of the season. Step h = 1 is "
                      f"y[T - period]"] = (
                    y[T - m + 1 + steps])
            # the forecast copies values of y: float32 rounding (about 1e-6 here) is the only difference allowed
            _reject_known(label, got, expected, wrong, atol=1e-5)
            if got.shape == (H,) and np.all(np.isfinite(got)):
                yn = y.numpy()
                for i in range(H):
                    if abs(got[i] - expected[i].item()) > 1e-5:
                        src = np.flatnonzero(np.abs(yn - got[i]) <= 1e-5)
                        came = f" = y[{int(src[0])}]" if len(src) else ""
                        raise AssertionError(
                            f"{label}: forecast[{i}] (h = {i + 1} steps ahead) is {got[i]:.6g}{came} but should be "
                            f"y[{T - m + i % m}] = {expected[i].item():.6g}, the value a whole number of seasons "
                            f"(of {m} steps) before time T + h, the last one observed"
                        )
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (horizon,): forecast[h - 1] = y[T - period + (h - 1) % period]")
    _say("seasonal_naive: correct: the last full season, repeated for any horizon.")


@_reports_not_attempted
def check_mase(mase: Callable) -> None:
    """Exercise: ``mase(forecast (T_out,), actual (T_out,), history (T,), period) -> float``: the mean absolute error
    of the forecast divided by the in-sample mean absolute error of the one-step seasonal naive forecast,
    mean_t |history[t] - history[t - period]| over t = period..T-1."""
    hint = ("forecast and actual are (T_out,), history (T,): history[period:] - history[:-period] are the "
            "T - period in-sample errors of the one-step seasonal naive forecast; the result is one number")
    with _attempt("mase"):
        for seed, T, m, H in ((101, 20, 4, 6), (102, 15, 5, 3), (103, 12, 1, 4)):
            full = _seasonal_series(seed, T + H, m)  # (T + T_out,)
            history, actual = full[:T], full[T:]  # (T,), (T_out,)
            gen = torch.Generator().manual_seed(seed)
            forecast = _ref_seasonal_naive(history, m, H) + 0.5 * torch.randn(H, generator=gen, dtype=torch.float64)
            label = f"mase(forecast, actual, history, period={m}) for T={T} past values and a horizon of T_out={H}"
            result = _call_with_hint(label, mase, (("forecast", forecast), ("actual", actual),
                                                   ("history", history), ("period", m)), hint)
            if isinstance(result, (torch.Tensor, np.ndarray)) and np.asarray(
                    result.detach() if isinstance(result, torch.Tensor) else result).size != 1:
                raise AssertionError(
                    f"{label} must be one number, got an array of shape {tuple(np.shape(result))}: average the "
                    f"absolute errors over the horizon, .mean(), and divide by the scale"
                )
            got = _number(label, result)
            expected = _ref_mase(forecast, actual, history, m)
            err = actual - forecast  # (T_out,)
            diffs = history[m:] - history[:-m]  # (T - period,)
            lag1 = (history[1:] - history[:-1]).abs().mean()
            wrong = {
                "the scale uses lag 1 differences, |y_t - y_(t-1)|: that is MASE for a series without a season. With "
                "a season of `period` steps the scale is the in-sample error of the *seasonal* naive forecast, "
                "mean |y_t - y_(t-period)|":
                    err.abs().mean() / lag1,
                "the scale was computed on the actual future values: it comes from the history only (in-sample), "
                "so that it is known before the forecast is scored and is the same for every method":
                    err.abs().mean() / (actual[m:] - actual[:-m]).abs().mean() if H > m else None,
                "errors of opposite sign cancel: take the mean *absolute* error, (actual - forecast).abs().mean()":
                    err.mean() / diffs.abs().mean(),
                "the scale's differences must be absolute too, mean |y_t - y_(t-period)|: signed differences cancel":
                    err.abs().mean() / diffs.mean(),
                "squared errors: MASE uses absolute errors, in the numerator and in the scale":
                    (err**2).mean() / (diffs**2).mean(),
                f"the scale's mean runs over the T - period = {T - m} differences y_t - y_(t-period), "
                f"t = period..T-1, not over T = {T}": err.abs().mean() / (diffs.abs().sum() / T),
                "the ratio is upside down: the forecast's error goes on top, mean|actual - forecast| / scale":
                    diffs.abs().mean() / err.abs().mean(),
                "the numerator is a sum: use the mean absolute error over the horizon":
                    err.abs().sum() / diffs.abs().mean(),
            }
            for why, value in wrong.items():
                if value is None:
                    continue
                value = float(value)
                if np.isclose(got, value, rtol=1e-6, atol=0.0) and not np.isclose(value, expected, rtol=1e-4, atol=0.0):
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {why}")
            if not np.isclose(got, expected, rtol=1e-6, atol=0.0):  # float32 arithmetic is fine
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: MASE = mean|actual - forecast| / "
                    f"mean|history[t] - history[t - period]|, the second mean over t = period..T-1"
                )
    _say("mase: correct: the forecast's mean absolute error over the in-sample error of the seasonal naive "
          "forecast.")
