"""Chapter 1, the seq2seq bottleneck: teacher forcing, final states, greedy decoding, accuracy; a question
and an experiment on how token accuracy punishes one missing word.

The checks of ``chapters/01_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

import attention_course as _lib
import attention_course.data  # noqa: F401 (binds _lib.data)
import attention_course.seq2seq  # noqa: F401 (binds _lib.seq2seq)

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
    "check_teacher_forcing",
    "check_final_states",
    "check_greedy_decode",
    "check_token_accuracy",
    "check_dropped_word_prediction",
    "check_accuracy_after_dropping",
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
        for values, bos, eos in (([5, 7, 4, 9], 1, 2), ([12, 3, 3], 10, 11), ([7], 3, 4)):
            target = torch.tensor(values)
            result = teacher_forcing(target, bos, eos)
            if not torch.equal(target, torch.tensor(values)):
                raise AssertionError("target_ids was modified in place; build new tensors (torch.cat makes one)")
            if not isinstance(result, tuple) or len(result) != 2:
                raise AssertionError(
                    f"teacher_forcing must return a pair (decoder_inputs, labels), got {type(result).__name__}"
                )
            label = f"for target {values}, bos_id={bos}, eos_id={eos}"
            for what, r in zip(("decoder_inputs", "labels"), result):
                if isinstance(r, torch.Tensor) and r.dim() == 2 and 1 in r.shape:
                    raise AssertionError(
                        f"{what} {label} has shape {tuple(r.shape)}: one sequence is 1-D, (T + 1,). torch.cat "
                        f"of two 1-D tensors is 1-D; drop the extra axis (no unsqueeze, no [None])"
                    )
            inputs = _long_vector(f"decoder_inputs {label}", result[0]).tolist()
            labels = _long_vector(f"labels {label}", result[1]).tolist()
            exp_inputs, exp_labels = [bos] + values, values + [eos]
            if inputs == exp_labels and labels == exp_inputs:
                raise AssertionError(
                    f"teacher_forcing {label}: you returned (labels, decoder_inputs); return (decoder_inputs, labels)"
                )
            if inputs == [eos] + values and labels == values + [bos]:
                raise AssertionError(
                    f"teacher_forcing {label}: <bos> and <eos> are swapped: the decoder starts from <bos> "
                    f"(bos_id, in front of the inputs) and learns to stop by predicting <eos> (eos_id, at the "
                    f"end of the labels)"
                )
            for used in ((1, 2), (0, 1)):
                if (bos, eos) != used and inputs == [used[0]] + values and labels == values + [used[1]]:
                    raise AssertionError(
                        f"teacher_forcing {label}: you used the ids {used[0]} and {used[1]}, not the given "
                        f"bos_id={bos} and eos_id={eos}: build the special tokens from the arguments"
                    )
            if inputs == values:
                raise AssertionError(
                    f"decoder_inputs {label} are the target itself, not shifted: put <bos> in front, "
                    f"[<bos>] + target. At step t the decoder is fed the token *before* t (and <bos> at step 1), "
                    f"never the token it has to predict"
                )
            if inputs == [bos] + values[:-1]:
                raise AssertionError(
                    f"decoder_inputs {label} stop before the last target token: they have T = {len(values)} "
                    f"entries, but T + 1 are needed, one per label: the last step is fed y_T and must predict "
                    f"<eos>. Inputs: [<bos>] + the whole target"
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
            if labels == values[1:] + [eos]:
                raise AssertionError(
                    f"labels {label} start at y_2: the first step (fed <bos>) must predict y_1, so the labels "
                    f"are the whole target followed by <eos>, target + [<eos>]"
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
        cases = (((4, 6, 3), [6, 2, 4, 1]), ((4, 6, 3), [3, 5, 2, 4]), ((3, 4, 5), [1, 4, 3]))
        for (B, S, H), lengths in cases:
            lengths = torch.tensor(lengths)
            real = torch.arange(S)[None, :] < lengths[:, None]  # (B, S), True = a real token
            states = torch.randn(B, S, H, generator=gen) * real[..., None]  # (B, S, D), zeros at padding
            states_before, lengths_before = states.clone(), lengths.clone()
            label = f"final_states for lengths {lengths.tolist()} and S={S}"
            try:
                result = final_states(states, lengths)
            except (IndexError, RuntimeError) as exc:
                if "out of bounds" not in str(exc) and "out of range" not in str(exc):
                    raise
                if "dimension 0" in str(exc):
                    raise AssertionError(
                        f"{label} raised {type(exc).__name__}: {exc}. You indexed the batch axis (axis 0) with "
                        f"positions: states[lengths - 1] picks whole sequences. Pair each sequence with its own "
                        f"position, states[torch.arange(B), lengths - 1]"
                    ) from exc
                raise AssertionError(
                    f"{label} raised {type(exc).__name__}: {exc}. A sequence's last real "
                    f"token is at index length - 1, so take index lengths - 1: a full-length sequence has no index S"
                ) from exc
            if not (torch.equal(states, states_before) and torch.equal(lengths, lengths_before)):
                raise AssertionError(f"{label}: an input was modified in place; index it, do not assign into it")
            got = _as_array(label, result)
            expected = states[torch.arange(B), lengths - 1].numpy()  # (B, D)
            if got.shape == (B, B, H):
                raise AssertionError(
                    f"{label} has shape (B, B, D) = {(B, B, H)}: states[:, lengths - 1] takes every sequence's "
                    f"state at every one of the B indices. Pair each sequence with its own index: "
                    f"states[torch.arange(B), lengths - 1]"
                )
            if got.shape == (B, S, H) and np.allclose(got, states[lengths - 1].numpy()):
                raise AssertionError(
                    f"{label}: states[lengths - 1] indexes the *batch* axis (it picks whole sequences); the "
                    f"positions are axis 1: states[torch.arange(B), lengths - 1]"
                )
            x = states.numpy()
            if got.shape == expected.shape:
                same = int(lengths.max()) - 1  # one index for every sequence: the longest one's last
                if np.allclose(got, x[:, same]):
                    rows = [b for b in range(B) if lengths[b] <= same]
                    raise AssertionError(
                        f"{label}: every sequence got its state at the same position {same}"
                        f"{' (states[:, -1], the last padded position)' if same == S - 1 else ' (lengths.max() - 1)'}"
                        f", which is padding (zeros) or too late for rows {rows}, every sequence shorter than the "
                        f"longest. Take each sequence's state at its own last real token, index lengths - 1 "
                        f"(e.g. states[torch.arange(B), lengths - 1])"
                    )
                if np.allclose(got, x[:, -1]):
                    raise AssertionError(
                        f"{label}: states[:, -1] is the last *padded* position, which is padding for every "
                        f"sequence shorter than S. Take each sequence's state at its own last real token, index "
                        f"lengths - 1 (e.g. states[torch.arange(B), lengths - 1])"
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
    the new state on never stops. ``relabel`` renames the token ids (a permutation of
    0..V-1), so that ``<bos>`` and ``<eos>`` are not always 1 and 2. Every call is recorded,
    with the prediction (argmax) it offered.
    """

    V, BOS, EOS = 10, 1, 2
    TABLE = {0: 4, 1: 5, 2: 6, 3: 7, 4: 8, 5: 3, 6: 9, 7: 4, 8: 6, 9: 3}  # bos -> 5 -> 3 -> 7 -> 4 -> 8 -> 6 -> 9 -> 3

    def __init__(self, relabel: tuple[int, ...] = tuple(range(10))) -> None:
        gen = torch.Generator().manual_seed(12)
        self.noise = torch.rand(self.V, self.V, generator=gen)  # (vocab_size, vocab_size), moderate logits in [0, 1)
        self.out = list(relabel)  # internal id -> the id the learner sees
        self.into = {o: i for i, o in enumerate(self.out)}
        self.bos, self.eos = self.out[self.BOS], self.out[self.EOS]
        self.calls: list[tuple[int, int, int]] = []  # (token fed, steps left, the argmax offered)
        self.values: list[int] = []

    def __call__(self, token_id: int, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fed, steps_left = int(token_id), int(state[0])
        token = self.into.get(fed, 0)
        nxt = self.EOS if steps_left <= 0 else self.TABLE[token]
        internal = self.noise[token].clone()  # (vocab_size,)
        internal[nxt] += 2.0
        logits = torch.empty_like(internal)
        logits[self.out] = internal  # logits[out[i]] = internal[i]
        self.calls.append((fed, steps_left, self.out[nxt]))
        self.values.append(int(logits.max()))  # what int(logits.max()) would give: a score, not an id
        return logits, state - 1

    def expected(self, steps_left: int, max_len: int) -> list[int]:
        ids, token = [], self.BOS
        for _ in range(max_len):
            token = self.EOS if steps_left <= 0 else self.TABLE[token]
            steps_left -= 1
            ids.append(self.out[token])
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
        relabelled = (7, 4, 0, 9, 2, 8, 1, 3, 6, 5)  # <bos> = 4, <eos> = 0
        for steps_left, max_len, relabel in ((4, 10, tuple(range(10))), (50, 6, tuple(range(10))),
                                             (5, 6, relabelled), (2, 6, relabelled)):
            step = _ToyDecoder(relabel)
            bos, eos = step.bos, step.eos
            expected = step.expected(steps_left, max_len)
            label = f"greedy_decode(step, state, bos_id={bos}, eos_id={eos}, max_len={max_len})"
            state = torch.tensor([steps_left])
            result = greedy_decode(step, state, bos, eos, max_len)
            if not torch.equal(state, torch.tensor([steps_left])):
                raise AssertionError(f"{label}: the state you were given was modified in place; "
                                     f"`logits, state = step(token, state)` rebinds the name to a new tensor")
            if result is None:
                raise AssertionError(f"{label} returned None: did you forget `return`?")
            try:
                got = [int(i) for i in result]
            except (TypeError, ValueError):
                raise AssertionError(f"{label} must return a list of token ids (ints), got {result!r}") from None
            fed = [token for token, _, _ in step.calls]
            offered = [best for _, _, best in step.calls]  # the argmax of each step's logits
            # the feeding, judged against what each step predicted (not against the returned list)
            if fed and fed[0] != bos:
                raise AssertionError(f"{label}: the first token you fed was {fed[0]}; the first input is <bos> = {bos}")
            if len(fed) > 1 and all(token == bos for token in fed):
                raise AssertionError(
                    f"{label}: you fed <bos> at every step. Greedy decoding is autoregressive: each step is fed "
                    f"the token the previous step predicted (its argmax)"
                )
            for t in range(1, len(fed)):
                if fed[t] != offered[t - 1]:
                    previous = fed[t - 1]
                    how = (f"that is the token you fed at step {t - 1}, the previous *input*"
                           if fed[t] == previous or (t >= 2 and fed[t] == offered[t - 2]) else
                           "that is not the argmax of the logits step "
                           f"{t - 1} returned (int(logits.argmax()) is the predicted id; logits.max() is its score)")
                    raise AssertionError(
                        f"{label}: at step {t} you fed token {fed[t]}, but step {t - 1} predicted {offered[t - 1]}: "
                        f"{how}. Feed back the prediction you just made, not the previous input"
                    )
            for t, (_, left, _) in enumerate(step.calls):
                if left != steps_left - t:
                    raise AssertionError(
                        f"{label}: step {t} was not given the state that step {t - 1} returned: "
                        f"`logits, state = step(token, state)` carries the state from each step to the next"
                    )
            # the feeding is right: now the list that was returned
            if got and got == step.values[:len(got)] and got != offered[:len(got)]:
                raise AssertionError(
                    f"{label} returned {got}: those are the largest logits' *values* rounded to ints "
                    f"(int(logits.max())), not their positions. The predicted id is int(logits.argmax())"
                )
            if got and got[0] == bos and got[1:] == expected[:len(got) - 1]:
                raise AssertionError(
                    f"{label} returned {got}, which starts with <bos> = {bos}: <bos> is the first *input*, not "
                    f"a prediction. Return only the predicted ids (the feeding itself is right)"
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
            if got and eos not in got and len(got) < max_len and len(fed) == len(got):
                raise AssertionError(
                    f"{label} returned {got}: it stopped after token {got[-1]}, which is not <eos> here: "
                    f"<eos> is eos_id = {eos}. Compare each prediction with the eos_id argument, not with a "
                    f"number typed in"
                )
            if eos not in got and len(got) != max_len:
                raise AssertionError(
                    f"{label} returned {len(got)} ids without reaching <eos>: it should produce exactly "
                    f"max_len = {max_len} ids (off by one?)"
                )
            if got != expected:
                raise AssertionError(f"{label} returned {got} but should return {expected}")
    _say("greedy_decode: correct: each prediction fed back, stopping at <eos> or max_len.")


def _accuracy_variants(predictions: torch.Tensor, targets: torch.Tensor, pad_id: int) -> tuple[float, dict]:
    """The right token accuracy, and the values of the usual mistakes with their hints."""
    real = targets != pad_id  # (B, T)
    hits = (predictions == targets) & real
    expected = hits.sum().item() / real.sum().item()
    by_prediction = predictions != pad_id
    wrong = {
        f"{hits.sum().item()} is a count of correct tokens; return a share: divide by the number of "
        f"non-padding target tokens ({real.sum().item()})": float(hits.sum()),
        "you counted the padding positions too (a padded prediction matches a padded target for "
        "free): count only the positions where targets != pad_id":
            (predictions == targets).float().mean().item(),
        "you averaged per sequence and then over the batch, so a token of a short sequence weighs more "
        "than one of a long sequence: pool every real token, correct / total":
            (hits.sum(1) / real.sum(1)).mean().item(),
        "you compared only the first position of each sequence: compare every non-padding position":
            (predictions[:, 0] == targets[:, 0]).float().mean().item(),
        "that is above 1: you counted the matches at padding positions too, but divided by the real "
        "tokens only. Count a match only where targets != pad_id": (predictions == targets).sum().item()
        / real.sum().item(),
        f"you divided by every position of the (B, T) tensor ({targets.numel()}), padding included: divide by "
        f"the real target tokens ({real.sum().item()})": hits.sum().item() / targets.numel(),
        "you took the real positions from the *predictions* (predictions != pad_id): a model may predict a "
        "word where the target is padding, or padding where it has a word. The reference decides: "
        "targets != pad_id":
            (((predictions == targets) & by_prediction).sum() / by_prediction.sum()).item(),
    }
    if pad_id != 0:
        fixed = targets != 0
        wrong[f"you treated id 0 as the padding, but pad_id = {pad_id} here (and 0 is a real token): use the "
              f"pad_id argument"] = (((predictions == targets) & fixed).sum() / fixed.sum()).item()
    if expected < 1:
        wrong["integer division: correct // total rounds the share down to 0. Divide with / (and turn the "
              "counts into Python numbers with .item())"] = 0.0
    return expected, wrong


@_reports_not_attempted
def check_token_accuracy(token_accuracy: Callable) -> None:
    """Exercise: ``token_accuracy(predictions (B, T), targets (B, T), pad_id=0) -> float``, the share of
    non-padding target positions where the prediction matches."""
    token_accuracy = _own_work(
        "token_accuracy", token_accuracy,
        _lib.seq2seq.token_accuracy,
    )
    with _attempt("token_accuracy"):
        cases = (
            (torch.tensor([[4, 5, 1, 7, 8, 2], [3, 4, 2, 0, 5, 0], [6, 3, 0, 0, 0, 4]]),
             torch.tensor([[4, 5, 6, 7, 8, 2], [3, 9, 2, 0, 0, 0], [6, 2, 0, 0, 0, 0]]), 0),  # 8 / 11
            (torch.tensor([[0, 4, 1, 9, 0, 9], [3, 0, 7, 5, 9, 9], [1, 6, 2, 9, 9, 9]]),
             torch.tensor([[0, 4, 2, 9, 9, 9], [3, 0, 0, 5, 2, 9], [6, 6, 2, 0, 9, 9]]), 9),  # 0 is a word: 7 / 12
        )
        for predictions, targets, pad_id in cases:
            label = f"token_accuracy(predictions, targets, pad_id={pad_id})"
            result = _call_pure(label, lambda p, t: token_accuracy(p, t, pad_id),
                                ("predictions", predictions), ("targets", targets))
            got = _number(label, result)
            expected, wrong = _accuracy_variants(predictions, targets, pad_id)
            if abs(got - expected) > 1e-6:
                for hint, value in wrong.items():
                    if abs(got - value) < 1e-6 and abs(value - expected) > 1e-6:
                        raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {hint}")
                real = targets != pad_id
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g} (the targets have {real.sum().item()} "
                    f"non-padding tokens, {((predictions == targets) & real).sum().item()} of them predicted "
                    f"correctly)"
                )
            perfect = _number(label, token_accuracy(targets.clone(), targets.clone(), pad_id))
            if abs(perfect - 1.0) > 1e-6:
                raise AssertionError(f"token_accuracy(targets, targets, pad_id={pad_id}) is {perfect:.6g} "
                                     f"but should be 1")
    _say("token_accuracy: correct: the share of real (non-padding) tokens predicted in place.")


# ---------------------------------------------------------------- a question and an experiment


@_reports_not_attempted
def check_dropped_word_prediction(answer: Callable[[], object]) -> None:
    """Question: a 20-word target, translated perfectly except for one dropped word; token accuracy if the
    dropped word is the first, and if it is the last."""
    _check_choice(
        "Exercise 5 (one missing word)", answer, "b",
        "token accuracy compares position by position. Dropping the first word moves every later word one "
        "place left, so almost nothing lines up any more (only where a word happens to equal its "
        "neighbour); dropping the last word costs two of the 21 positions (the last word and the <eos>), "
        "19/21 = 90%. The same mistake costs 10% or nearly everything, depending on where it happens.",
        {
            "a": "that would be an order-free count (how many reference words appear in the output). Token "
                 "accuracy compares position by position, and a dropped word shifts every word after it.",
            "c": "it is the other way round: the dropped word shifts every word *after* it, so the earlier "
                 "the drop, the more words are out of place.",
            "d": "dropping the *last* word shifts nothing but the final <eos>: the first 19 words still line "
                 "up with the reference.",
        },
    )


def _dropped_accuracy(pairs, position: int, tgt_vocab, *, shift: bool = True, eos: bool = True,
                      per_sequence: bool = False, denominator_kept: bool = False) -> float:
    """Token accuracy, against target + <eos>, of outputs that are each target with the word at
    ``position`` dropped (the rest moved left, then <eos>, then padding)."""
    correct = total = 0
    shares = []
    for p in pairs:
        target = tgt_vocab.encode(p.target)
        kept = list(target)
        if shift:
            del kept[position]
        else:
            kept[position] = tgt_vocab.pad_id  # the word blanked in place, nothing moved
        labels = target + ([tgt_vocab.eos_id] if eos else [])
        output = kept + ([tgt_vocab.eos_id] if eos else [])
        output += [tgt_vocab.pad_id] * (len(labels) - len(output))
        hits = sum(int(o == t) for o, t in zip(output, labels))
        n = len(output) - (len(labels) - len(kept) - int(eos)) if denominator_kept else len(labels)
        correct, total = correct + hits, total + n
        shares.append(hits / n)
    return sum(shares) / len(shares) if per_sequence else correct / total


@_reports_not_attempted
def check_accuracy_after_dropping(accuracy_after_dropping: Callable) -> None:
    """Experiment: ``accuracy_after_dropping(pairs, position, tgt_vocab) -> float``, the token accuracy of
    outputs that are each reference with the target word at ``position`` dropped."""
    with _attempt("accuracy_after_dropping"):
        _, tgt_vocab = _lib.data.toy_translation_vocabs()
        pairs = _lib.data.toy_translation(200, 4, 20, seed=17)
        for position in (0, -1, 2):
            label = f"accuracy_after_dropping(pairs, position={position}, tgt_vocab) on 200 pairs of 4-20 words"
            got = _number(label, accuracy_after_dropping(list(pairs), position, tgt_vocab))
            expected = _dropped_accuracy(pairs, position, tgt_vocab)
            wrong = {
                "you blanked the word in place instead of dropping it: a dropped word moves every later word "
                "one place left (del kept[position], or a slice without it)":
                    _dropped_accuracy(pairs, position, tgt_vocab, shift=False),
                "the <eos> is missing: the labels are target + [<eos>], and the output ends with <eos> too "
                "(the model still stops), so each sentence has T + 1 positions to score":
                    _dropped_accuracy(pairs, position, tgt_vocab, eos=False),
                "you averaged per sentence and then over the sentences: pool the tokens, correct / total, "
                "as the chapter's token accuracy does":
                    _dropped_accuracy(pairs, position, tgt_vocab, per_sequence=True),
                "you divided by the length of the output without padding (T positions): score all T + 1 "
                "positions of the labels, the one the output leaves empty included":
                    _dropped_accuracy(pairs, position, tgt_vocab, denominator_kept=True),
            }
            if abs(got - expected) > 1e-9:
                hints = [hint for hint, value in wrong.items() if abs(got - value) < 1e-9 < abs(value - expected)]
                if hints:  # two mistakes may give the same number here: name each
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: " + " Or: ".join(hints))
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}. For each pair: labels = "
                    f"tgt_vocab.encode(pair.target) + [eos_id]; output = the same ids without the one at "
                    f"`position`, then eos_id, then pad_id up to the labels' length; pool the matches"
                )
    first, last = (_dropped_accuracy(pairs, i, tgt_vocab) for i in (0, -1))
    _say(f"accuracy_after_dropping: correct: on these pairs one dropped word leaves {first:.0%} token "
         f"accuracy when it is the first word and {last:.0%} when it is the last.")
