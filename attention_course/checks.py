"""One check per exercise, with hints that teach.

Each ``check_*`` takes the learner's function, calls it on inputs chosen so that
the usual mistakes give visibly different numbers (moderate scores that keep
the softmax out of saturation, L, S and E all different, plus a square case
where a missing transpose still runs), and

- raises :class:`NotAttempted` (an ``AssertionError``) if the function still
  raises ``NotImplementedError``: "not attempted yet";
- raises ``AssertionError`` with a hint naming the shape, axis or entry that is
  wrong, and by how much, when the answer is wrong;
- prints a one-line success message when it is right.

The exercise notebooks call these in their autograded cells; nbgrader counts a
cell that raises as failed. ``tests/test_checks.py`` shows each check a
catalogue of wrong answers that it must reject.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

from . import reference, scores
from .attention import masked_softmax
from .multihead import MultiHeadAttention
from .positional import sinusoidal_encoding

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
]


class NotAttempted(AssertionError):
    """The exercise still raises ``NotImplementedError``."""


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
    print("softmax: correct, stable for large scores, and row-wise on matrices.")


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


def check_attention_weights(attention_weights: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the weights a_i = softmax_i(q·k_i / sqrt(E)) of one query over S keys."""
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
    print("attention_weights: correct: scaled scores, softmax over the keys.")


def check_context(context: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise: the context c = sum_i a_i v_i for weights (S,) and values (S, Ev)."""
    with _attempt("context"):
        rng = _rng(2)
        a = reference.softmax(rng.normal(size=5))  # (S,)
        v = rng.normal(size=(5, 3))  # (S, Ev)
        expected = a @ v  # (Ev,)
        got = _as_array("context(weights, values)", context(a.copy(), v.copy()))
        if got.shape == expected.shape and np.allclose(got, v.mean(axis=0)):
            raise AssertionError("context(weights, values) is the plain mean of the values: weight each value by a_i")
        if got.shape == expected.shape and np.allclose(got, v.sum(axis=0)):
            raise AssertionError("context(weights, values) is the plain sum of the values: weight each value by a_i")
        if got.shape == (5,):
            raise AssertionError(
                "context(weights, values) has shape (S,) = (5,) but should be (Ev,) = (3,): "
                "sum over the keys (axis 0 of values), one number per value feature"
            )
        _compare("context(weights, values)", got, expected, legend=" (Ev,)")
    print("context: correct: the weighted sum of the values.")


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


def check_attention(attention: Callable) -> None:
    """Exercise: C, A = attention(Q, K, V) with A = softmax(Q Kᵀ / sqrt(E)) (L, S) and C = A V (L, Ev)."""
    with _attempt("attention"):
        q, k, v = _attention_inputs(3, 2, 5, 4, 3)
        _check_attention_case(attention, q, k, v, " for L=2, S=5, E=4, Ev=3")
        q, k, v = _attention_inputs(4, 4, 4, 4, 4)  # square: a missing transpose still runs
        _check_attention_case(attention, q, k, v, " for L=S=E=Ev=4")
    print("attention: correct: A = softmax(Q Kᵀ / √E) row by row, C = A V.")


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
    print("masked_attention: correct, including the fully masked row.")


# --------------------------------------------------------------------------- later chapters


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
    print("add_positional_encoding: correct: position t of every sequence gets row t.")


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
    print("multihead_forward: correct: split, attend per head, concatenate, project with W_o.")


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
    print("teacher_forcing: correct: the inputs start with <bos>, the labels end with <eos>.")


def check_final_states(final_states: Callable) -> None:
    """Exercise: ``final_states(states (B, S, H), lengths (B,)) -> (B, H)``, the state at index lengths - 1."""
    with _attempt("final_states"):
        gen = torch.Generator().manual_seed(11)
        B, S, H = 4, 6, 3
        for lengths in (torch.tensor([6, 2, 4, 1]), torch.tensor([3, 5, 2, 4])):
            real = torch.arange(S)[None, :] < lengths[:, None]  # (B, S), True = a real token
            states = torch.randn(B, S, H, generator=gen) * real[..., None]  # (B, S, H), zeros at padding
            states_before, lengths_before = states.clone(), lengths.clone()
            label = f"final_states for lengths {lengths.tolist()} and S={S}"
            try:
                result = final_states(states, lengths)
            except (IndexError, RuntimeError) as exc:
                if "out of bounds" not in str(exc) and "out of range" not in str(exc):
                    raise
                raise AssertionError(
                    f"{label} raised {type(exc).__name__}: {exc}. A sequence of length n has its last real "
                    f"token at index n - 1, so take index lengths - 1: a full-length sequence has no index S"
                ) from exc
            if not (torch.equal(states, states_before) and torch.equal(lengths, lengths_before)):
                raise AssertionError(f"{label}: an input was modified in place; index it, do not assign into it")
            got = _as_array(label, result)
            expected = states[torch.arange(B), lengths - 1].numpy()  # (B, H)
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
            _compare(label, got, expected, atol=1e-6, legend=" (B, H): one state per sequence")
    print("final_states: correct: each sequence's state at its last real token.")


class _ToyDecoder:
    """``step(token_id, state) -> (logits (V,), new state)`` for checking greedy decoding.

    The next token is looked up in a table from the token fed in, so feeding the
    wrong token changes the rest of the sequence. The state is ``tensor([steps_left])``;
    when it reaches 0 the step predicts ``<eos>``, so a decoder that does not pass
    the new state on never stops. Every call is recorded.
    """

    V, BOS, EOS = 10, 1, 2
    TABLE = {0: 4, 1: 5, 2: 6, 3: 7, 4: 8, 5: 3, 6: 9, 7: 4, 8: 6, 9: 3}  # bos -> 5 -> 3 -> 7 -> 4 -> 8 -> 6 -> 9 -> 3

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(12)
        self.noise = torch.rand(self.V, self.V, generator=gen)  # (V, V), moderate logits in [0, 1)
        self.calls: list[tuple[int, int]] = []  # (token fed, steps left)

    def __call__(self, token_id: int, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        token, steps_left = int(token_id), int(state[0])
        self.calls.append((token, steps_left))
        nxt = self.EOS if steps_left <= 0 else self.TABLE[token]
        logits = self.noise[token].clone()  # (V,)
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
    print("greedy_decode: correct: each prediction fed back, stopping at <eos> or max_len.")


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
    print("token_accuracy: correct: the share of real (non-padding) tokens predicted in place.")


# --------------------------------------------------------------------------- chapter 2: soft attention


def check_contexts(contexts: Callable) -> None:
    """Exercise: ``contexts(weights (T, S), states (S, H)) -> (T, H)``, c_t = sum_i a_ti h_i."""
    with _attempt("contexts"):
        gen = torch.Generator().manual_seed(21)
        for T, S, H in ((4, 4, 3), (3, 5, 4)):  # square first: transposed weights still run
            weights = torch.softmax(torch.randn(T, S, generator=gen), dim=-1)  # (T, S), rows sum to 1
            states = torch.randn(S, H, generator=gen)  # (S, H)
            label = f"contexts for T={T}, S={S}, H={H}"
            got = _as_array(label, contexts(weights.clone(), states.clone()))
            expected = (weights @ states).numpy()  # (T, H)
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
            _compare(label, got, expected, atol=1e-5, legend=" (T, H): one context per target step")
    print("contexts: correct: one weighted sum of the encoder states per target step.")


def _additive_inputs(seed: int, S: int, H: int, A: int):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(H, generator=gen)  # (H,), the decoder state s_{t-1}
    states = torch.randn(S, H, generator=gen)  # (S, H), the encoder states h_i
    W_q = torch.randn(A, H, generator=gen) * 0.5  # (A, H)
    W_k = torch.randn(A, H, generator=gen) * 0.5  # (A, H)
    v = torch.randn(A, generator=gen)  # (A,)
    return s, states, W_q, W_k, v


def _additive_reference(s, states, W_q, W_k, v) -> torch.Tensor:
    return scores.additive_scores(s[None, :], states, W_q, W_k, v)[0]  # (1, S) -> (S,)


def check_additive_scores(additive_scores: Callable) -> None:
    """Exercise: ``additive_scores(s (H,), states (S, H), W_q (A, H), W_k (A, H), v (A,)) -> (S,)``,
    e_i = v · tanh(W_q s + W_k h_i)."""
    with _attempt("additive_scores"):
        S, H, A = 5, 4, 3
        s, states, W_q, W_k, v = _additive_inputs(22, S, H, A)
        label = f"additive_scores for S={S}, H={H}, A={A}"
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
    print("additive_scores: correct: e_i = v · tanh(W_q s + W_k h_i).")


def check_attention_step(attention_step: Callable) -> None:
    """Exercise: ``attention_step(s, states, mask, W_q, W_k, v) -> (context (H,), weights (S,))``: additive
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
                     legend=" (H,): the weighted sum of the states")
    print("attention_step: correct: additive scores, masked softmax, context.")


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
    print("alignment_accuracy: correct: the share of steps that attend most to the aligned source token.")
