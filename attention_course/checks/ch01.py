"""Chapter 1, the seq2seq bottleneck: teacher forcing, final states, greedy decoding, accuracy.

The checks of ``chapters/01_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

import attention_course as _lib
import attention_course.seq2seq  # noqa: F401 (binds _lib.seq2seq)

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
    "check_teacher_forcing",
    "check_final_states",
    "check_greedy_decode",
    "check_token_accuracy",
]


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
    greedy_decode = _own_work(
        "greedy_decode", greedy_decode,
        _lib.seq2seq.greedy_decode,
    )
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
    token_accuracy = _own_work(
        "token_accuracy", token_accuracy,
        _lib.seq2seq.token_accuracy,
    )
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
