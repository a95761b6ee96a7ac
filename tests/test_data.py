"""The toy tasks, vocabularies and batching of ``attention_course.data``.

The translation is checked against the lexicon and against an independent
reordering (a stack of pending adjectives), not against ``_translate`` itself.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_course import data
from attention_course.data import BOS, EOS, PAD, Pair, Vocab

LEXICON = {**data.NOUNS, **data.ADJECTIVES, **data.VERBS, **data.INTRANSITIVE, **data.DETERMINERS, **data.CONJUNCTION}
CATEGORY = {
    **{w: "N" for w in data.NOUNS}, **{w: "A" for w in data.ADJECTIVES}, **{w: "V" for w in data.VERBS},
    **{w: "I" for w in data.INTRANSITIVE}, **{w: "D" for w in data.DETERMINERS}, **{w: "C" for w in data.CONJUNCTION},
}


def grammar(max_adjectives: int) -> re.Pattern[str]:
    """Sentence = clause ("and" clause)*; clause = NP verb NP | NP intransitive; NP = det adj* noun."""
    np_ = f"DA{{0,{max_adjectives}}}N"
    clause = f"{np_}(?:V{np_}|I)"
    return re.compile(f"{clause}(?:C{clause})*")


def reordered(source: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """Expected target and alignment: adjectives wait on a stack and follow their noun, last first."""
    target, alignment, pending = [], [], []
    for i, word in enumerate(source):
        if word in data.ADJECTIVES:
            pending.append(i)
            continue
        target.append(LEXICON[word])
        alignment.append(i)
        if word in data.NOUNS:
            while pending:
                k = pending.pop()
                target.append(LEXICON[source[k]])
                alignment.append(k)
    assert not pending, f"adjectives without a noun in {source}"
    return target, alignment


def check_pair(p: Pair, max_adjectives: int = 2) -> None:
    categories = "".join(CATEGORY[w] for w in p.source)
    assert grammar(max_adjectives).fullmatch(categories), f"{p.source} is not in the grammar"
    assert sorted(p.alignment) == list(range(len(p.source)))  # each source word translated exactly once
    assert len(p.target) == len(p.source)
    assert all(p.target[t] == LEXICON[p.source[s]] for t, s in enumerate(p.alignment))
    assert (list(p.target), list(p.alignment)) == reordered(p.source)
    has_adjective = any(w in data.ADJECTIVES for w in p.source)
    assert (list(p.alignment) != sorted(p.alignment)) == has_adjective  # crossing iff reordered


# --- toy_translation


def test_toy_translation_is_deterministic_per_seed() -> None:
    assert data.toy_translation(50, seed=3) == data.toy_translation(50, seed=3)
    assert data.toy_translation(50, seed=3) != data.toy_translation(50, seed=4)


def test_toy_translation_example_from_the_docstring() -> None:
    source = tuple("the small black cat sees a dog".split())
    target, alignment = reordered(source)
    assert target == "le chat noir petit voit un chien".split()
    assert alignment == [0, 3, 2, 1, 4, 5, 6]


def test_toy_translation_covers_every_length() -> None:
    pairs = data.toy_translation(3000, 3, 30, seed=0)
    lengths = Counter(len(p.source) for p in pairs)
    assert len(pairs) == 3000
    assert set(lengths) == set(range(3, 31))


def test_toy_translation_lengths_are_uniform() -> None:
    """The docstring promises every length equally often; a stuck draw must not skip its length."""
    n, lo, hi = 12_000, 3, 30
    counts = Counter(len(p.source) for p in data.toy_translation(n, lo, hi, seed=1))
    expected = n / (hi - lo + 1)  # about 430; one standard deviation is about 20
    assert all(0.8 * expected < counts[k] < 1.2 * expected for k in range(lo, hi + 1)), counts


def test_toy_translation_pairs_follow_the_grammar_and_the_lexicon() -> None:
    pairs = data.toy_translation(1000, 3, 30, seed=0)
    for p in pairs:
        check_pair(p)
    crossing = [p for p in pairs if list(p.alignment) != sorted(p.alignment)]
    assert len(crossing) > len(pairs) // 2  # most sentences have an adjective somewhere
    assert any(len(set(p.source) & set(data.CONJUNCTION)) for p in pairs)  # multi-clause sentences occur
    assert any(len(set(p.source) & set(data.VERBS)) for p in pairs)  # transitive clauses occur


@given(
    seed=st.integers(0, 2**32 - 1),
    lengths=st.tuples(st.integers(3, 30), st.integers(3, 30)).map(sorted),
    max_adjectives=st.integers(1, 3),
)
def test_toy_translation_invariants(seed: int, lengths: list[int], max_adjectives: int) -> None:
    min_len, max_len = lengths
    pairs = data.toy_translation(5, min_len, max_len, seed=seed, max_adjectives=max_adjectives)
    assert len(pairs) == 5
    for p in pairs:
        assert min_len <= len(p.source) <= max_len
        check_pair(p, max_adjectives)


@pytest.mark.parametrize(("min_len", "max_len"), [(2, 10), (0, 5), (8, 7)])
def test_toy_translation_rejects_bad_lengths(min_len: int, max_len: int) -> None:
    with pytest.raises(ValueError, match="min_len"):
        data.toy_translation(3, min_len, max_len)


def test_toy_translation_rejects_an_impossible_length() -> None:
    """Without adjectives a sentence has 4c - 1 + 2k tokens, always odd: 4 cannot be made."""
    assert {len(p.source) for p in data.toy_translation(20, 3, 3, max_adjectives=0)} == {3}
    with pytest.raises(ValueError, match="4 tokens"):
        data.toy_translation(1, 4, 4, max_adjectives=0)


# --- reverse_digits


def test_reverse_digits() -> None:
    pairs = data.reverse_digits(300, 2, 9, seed=0)
    assert {len(p.source) for p in pairs} == set(range(2, 10))
    for p in pairs:
        S = len(p.source)
        assert set(p.source) <= set("0123456789")
        assert p.target == p.source[::-1]
        assert p.alignment == tuple(S - 1 - t for t in range(S))
        assert all(p.target[t] == p.source[s] for t, s in enumerate(p.alignment))
    assert data.reverse_digits(20, seed=5) == data.reverse_digits(20, seed=5)
    assert data.reverse_digits(20, seed=5) != data.reverse_digits(20, seed=6)
    with pytest.raises(ValueError):
        data.reverse_digits(3, 0, 4)
    with pytest.raises(ValueError):
        data.reverse_digits(3, 5, 4)


def test_pair_rejects_an_alignment_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="alignment"):
        Pair(("a", "b"), ("x", "y"), (0,))


# --- Vocab


def test_vocab_specials_and_round_trip() -> None:
    vocab = Vocab(["b", "a", "c", "a", EOS])
    assert vocab.itos[:3] == [PAD, BOS, EOS]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2)
    assert [vocab.stoi[t] for t in (PAD, BOS, EOS)] == [0, 1, 2]
    assert len(vocab) == 6  # three specials, a, b, c: duplicates and specials counted once
    tokens = ["c", "a", "b", "b"]
    ids = vocab.encode(tokens)
    assert all(i > 2 for i in ids)
    assert vocab.decode(ids) == tokens


def test_vocab_decode_stops_at_eos_and_skips_pad_and_bos() -> None:
    vocab = Vocab(["a", "b"])
    a, b = vocab.encode(["a", "b"])
    assert vocab.decode([vocab.bos_id, a, vocab.pad_id, b, vocab.eos_id, a, b]) == ["a", "b"]
    assert vocab.decode(torch.tensor([b, vocab.eos_id, a])) == ["b"]
    assert vocab.decode([vocab.eos_id, a]) == []


def test_vocab_rejects_unknown_tokens_by_name() -> None:
    vocab = Vocab(["a", "b"])
    with pytest.raises(ValueError, match="zebra") as info:
        vocab.encode(["a", "zebra", "b", "yak"])
    assert "yak" in str(info.value)


# --- make_batch


@pytest.fixture(scope="module")
def translation() -> tuple[list[Pair], Vocab, Vocab]:
    pairs = data.toy_translation(1200, 3, 30, seed=0)
    src_vocab = Vocab([w for p in pairs for w in p.source])
    tgt_vocab = Vocab([w for p in pairs for w in p.target])
    return pairs, src_vocab, tgt_vocab


def test_make_batch(translation) -> None:
    pairs, src_vocab, tgt_vocab = translation
    chosen = pairs[:7]
    batch = data.make_batch(chosen, src_vocab, tgt_vocab)
    B, S, T = 7, max(len(p.source) for p in chosen), max(len(p.target) for p in chosen) + 1
    assert batch.src.shape == (B, S)
    assert batch.tgt_in.shape == batch.tgt_out.shape == (B, T)
    assert batch.src.dtype == batch.tgt_in.dtype == batch.tgt_out.dtype == torch.long
    assert batch.src_lengths.tolist() == [len(p.source) for p in chosen]
    assert batch.pairs == chosen
    assert (batch.tgt_in[:, 0] == tgt_vocab.bos_id).all()
    for b, p in enumerate(chosen):
        s, t = len(p.source), len(p.target)
        assert batch.src[b, :s].tolist() == src_vocab.encode(p.source)
        assert (batch.src[b, s:] == 0).all()
        assert batch.tgt_out[b, : t + 1].tolist() == tgt_vocab.encode(p.target) + [tgt_vocab.eos_id]
        assert (batch.tgt_out[b, t + 1 :] == 0).all() and (batch.tgt_in[b, t + 1 :] == 0).all()
        assert tgt_vocab.decode(batch.tgt_out[b]) == list(p.target)
    real = batch.tgt_in[:, 1:] != 0  # target tokens: label at step t, input at step t + 1 (teacher forcing)
    assert torch.equal(batch.tgt_in[:, 1:][real], batch.tgt_out[:, :-1][real])
    assert real.sum() == sum(len(p.target) for p in chosen)
    assert torch.equal(batch.tgt_in != 0, batch.tgt_out != 0)  # same real positions


def test_make_batch_rejects_an_empty_list(translation) -> None:
    _, src_vocab, tgt_vocab = translation
    with pytest.raises(ValueError):
        data.make_batch([], src_vocab, tgt_vocab)


# --- batches


def spread(batch: data.Batch) -> int:
    return int(batch.src_lengths.max() - batch.src_lengths.min())


def test_batches_are_deterministic_per_seed(translation) -> None:
    pairs, src_vocab, tgt_vocab = translation

    def first(seed: int, by_length: bool) -> list[list[Pair]]:
        it = data.batches(pairs, src_vocab, tgt_vocab, 8, seed=seed, by_length=by_length)
        return [next(it).pairs for _ in range(10)]

    for by_length in (True, False):
        assert first(0, by_length) == first(0, by_length)
        assert first(0, by_length) != first(1, by_length)


def test_batches_by_length_have_a_small_spread(translation) -> None:
    pairs, src_vocab, tgt_vocab = translation
    sorted_ = data.batches(pairs, src_vocab, tgt_vocab, 8, seed=0, by_length=True)
    shuffled = data.batches(pairs, src_vocab, tgt_vocab, 8, seed=0, by_length=False)
    by_length = np.mean([spread(next(sorted_)) for _ in range(100)])
    at_random = np.mean([spread(next(shuffled)) for _ in range(100)])
    assert at_random > 10  # lengths 3..30: eight at random span most of the range
    assert by_length < 0.15 * at_random, (by_length, at_random)


@pytest.mark.parametrize("by_length", [True, False])
def test_batches_show_every_pair_once_per_epoch(by_length: bool) -> None:
    batch_size = 4
    pairs = data.reverse_digits(50 * batch_size * 2, 1, 12, seed=0)  # two full pools: nothing dropped
    vocab = Vocab("0123456789")
    it = data.batches(pairs, vocab, vocab, batch_size, seed=0, by_length=by_length)
    per_epoch = len(pairs) // batch_size
    for _ in range(2):  # two epochs, each a permutation of the pairs
        seen = Counter(id(p) for _ in range(per_epoch) for p in next(it).pairs)
        assert sorted(seen.values()) == [1] * len(pairs)
        assert set(seen) == {id(p) for p in pairs}


def test_batches_drop_only_a_remainder_per_pool() -> None:
    batch_size = 4
    pairs = data.reverse_digits(50 * batch_size + 7, 1, 12, seed=0)  # one full pool, then 7 = 4 + 3 left
    vocab = Vocab("0123456789")
    it = data.batches(pairs, vocab, vocab, batch_size, seed=0)
    per_epoch = 50 + 1
    seen = Counter(id(p) for _ in range(per_epoch) for p in next(it).pairs)
    assert len(seen) == len(pairs) - 3 and set(seen.values()) == {1}


def test_batches_reject_too_few_pairs(translation) -> None:
    pairs, src_vocab, tgt_vocab = translation
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(pairs[:3], src_vocab, tgt_vocab, 4))
    with pytest.raises(ValueError):
        next(data.batches(pairs, src_vocab, tgt_vocab, 0))


# --- length_buckets


def test_length_buckets(translation) -> None:
    pairs, _, _ = translation
    edges = [3, 8, 15, 31]
    buckets = data.length_buckets(pairs, edges)
    assert list(buckets) == [(3, 8), (8, 15), (15, 31)]
    for (lo, hi), members in buckets.items():
        assert members and all(lo <= len(p.source) < hi for p in members)
    placed = Counter(id(p) for members in buckets.values() for p in members)
    assert set(placed.values()) == {1} and len(placed) == len(pairs)  # each pair in exactly one bucket


def test_length_buckets_leave_out_lengths_outside_the_edges(translation) -> None:
    pairs, _, _ = translation
    buckets = data.length_buckets(pairs, [5, 10])
    assert list(buckets) == [(5, 10)]
    assert len(buckets[(5, 10)]) == sum(5 <= len(p.source) < 10 for p in pairs)


# --- chapter 6: previous_and_matching


@given(n=st.integers(1, 20), half=st.integers(1, 6), extra=st.integers(0, 4), n_values=st.integers(2, 5),
       seed=st.integers(0, 10**6))
def test_previous_and_matching_answers_are_where_the_task_says(n, half, extra, n_values, seed):
    task = data.previous_and_matching(n, half, half + extra, n_values, seed=seed)
    T = 2 * half
    assert task.symbols.shape == task.values.shape == (n, T) and len(task) == n
    for b in range(n):
        s, v = task.symbols[b].tolist(), task.values[b].tolist()
        assert len(set(s[:half])) == half and sorted(s[:half]) == sorted(s[half:])  # same symbols, reordered
        assert max(v) < n_values and max(s) < half + extra
        for i in range(half):
            t = half + i
            j = int(task.match_position[b, i])
            assert j < half and s[j] == s[t]  # the one earlier token with the same symbol
            assert task.match[b, i] == v[j] and task.prev[b, i] == v[t - 1]


def test_previous_and_matching_is_seeded_and_sliceable():
    a, b = data.previous_and_matching(50, seed=3), data.previous_and_matching(50, seed=3)
    assert torch.equal(a.symbols, b.symbols) and torch.equal(a.match, b.match)
    assert not torch.equal(a.values, data.previous_and_matching(50, seed=4).values)
    part = a[10:20]
    assert len(part) == 10 and torch.equal(part.prev, a.prev[10:20])


def test_previous_and_matching_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="n_symbols >= half"):
        data.previous_and_matching(4, half=8, n_symbols=5)
