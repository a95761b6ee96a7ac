"""Sentence pairs for inference, the decomposable attention model, and the translation baselines of chapter 10.

The NLI generator is checked against its own stated rule (``nli_label``, which
reads only the two sentences), the alignments against the roles the words
fill, the model's cross-attention against ``torch.nn.functional.scaled_dot_product_attention``,
and the translation dictionary against the toy language's lexicon in ``data``.
"""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_course import data
from attention_course.applications import pairs as pp

VOCAB = pp.nli_vocab()
COLOUR_ROLES = ("subject_colour", "object_colour")
PAIRS = pp.nli_pairs(3000, seed=5)


def role_of(words: tuple[str, ...], position: int) -> str | None:
    """The role (one of pp.ROLES) the word at ``position`` fills, from the grammar alone."""
    word = words[position]
    if word in pp.FUNCTION_WORDS:
        return None
    if word in pp.COLOURS:  # a colour belongs to the noun right after it
        noun = words[position + 1]
        return "subject_colour" if noun in pp.SUBJECTS else "object_colour"
    for role, values in (("subject", pp.SUBJECTS), ("object", pp.OBJECTS), ("size", pp.SIZES),
                         ("verb", pp.VERBS), ("place", pp.PLACES)):
        if word in values:
            return role
    raise AssertionError(f"unknown word {word!r}")


# --------------------------------------------------------------------------- the data


def test_same_seed_same_pairs_other_seed_other_pairs() -> None:
    assert pp.nli_pairs(200, seed=5) == PAIRS[:200]
    assert pp.nli_pairs(200, seed=6) != PAIRS[:200]


def test_every_label_follows_the_stated_rule() -> None:
    for p in PAIRS:
        assert pp.nli_label(p.premise, p.hypothesis) == p.label, p


def test_labels_are_balanced_and_every_edit_occurs() -> None:
    counts = collections.Counter(p.label for p in PAIRS)
    assert all(abs(counts[label] / len(PAIRS) - 1 / 3) < 0.04 for label in pp.LABELS)
    edits = collections.Counter((p.label, p.edit) for p in PAIRS)
    assert {e for (label, e) in edits if label == "contradiction"} == set(pp.ROLES)
    assert {e for (label, e) in edits if label == "neutral"} == {"size", "subject_colour", "object_colour", "place"}
    assert {e for (label, e) in edits if label == "entailment"} == {None}


def test_the_hypothesis_alone_does_not_reveal_the_label() -> None:
    # the hypothesis is drawn before the label: its length and its words are distributed alike in every class
    by_label = collections.defaultdict(list)
    for p in pp.nli_pairs(9000, seed=1):
        by_label[p.label].append(p)
    mean_length = {label: sum(len(p.hypothesis) for p in ps) / len(ps) for label, ps in by_label.items()}
    assert max(mean_length.values()) - min(mean_length.values()) < 0.1
    passive = {label: sum("was" in p.hypothesis for p in ps) / len(ps) for label, ps in by_label.items()}
    assert max(passive.values()) - min(passive.values()) < 0.04


def test_alignment_points_at_the_word_with_the_same_role() -> None:
    for p in PAIRS:
        for j, (a, role) in enumerate(zip(p.alignment, p.roles)):
            assert role == role_of(p.hypothesis, j)
            if role is None:
                assert a == -1
            elif a == -1:  # only a fact the premise leaves out has no counterpart
                assert p.label == "neutral" and role == p.edit
                assert role not in pp.sentence_facts(p.premise)
            else:
                assert role_of(p.premise, a) == role
                # the same word, except the changed fact; swapping colours changes both, if both are stated
                changed = role == p.edit or (p.edit in COLOUR_ROLES and role in COLOUR_ROLES)
                assert (p.premise[a] == p.hypothesis[j]) == (not (p.label == "contradiction" and changed))


def test_contradicting_colours_are_swapped_so_the_word_stays_in_the_premise() -> None:
    swaps = [p for p in PAIRS if p.label == "contradiction" and p.edit in ("subject_colour", "object_colour")]
    assert len(swaps) > 50
    for p in swaps:
        j = p.roles.index(p.edit)
        assert p.hypothesis[j] in p.premise  # the same colour word, on the other noun
        assert p.premise[p.alignment[j]] != p.hypothesis[j]


def test_word_order_varies_so_alignments_cross() -> None:
    crossing = 0
    for p in PAIRS:
        aligned = [a for a in p.alignment if a >= 0]
        crossing += aligned != sorted(aligned)
    assert 0.3 < crossing / len(PAIRS) < 0.9


def test_sentence_facts_rejects_foreign_words() -> None:
    with pytest.raises(ValueError, match="not a word"):
        pp.sentence_facts(["the", "unicorn", "chased", "the", "ball"])


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_nli_pairs_rejects_bad_n(n: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        pp.nli_pairs(n)  # type: ignore[arg-type]


def test_make_nli_batch_pads_with_zero_and_minus_one() -> None:
    chosen = PAIRS[:5]
    batch = pp.make_nli_batch(chosen, VOCAB)
    B = len(chosen)
    assert batch.premise.shape == (B, max(len(p.premise) for p in chosen))
    assert batch.hypothesis.shape == batch.alignment.shape == (B, max(len(p.hypothesis) for p in chosen))
    for b, p in enumerate(chosen):
        assert VOCAB.decode(batch.premise[b].tolist()) == list(p.premise)
        assert VOCAB.decode(batch.hypothesis[b].tolist()) == list(p.hypothesis)
        assert (batch.premise[b, len(p.premise):] == 0).all() and (batch.hypothesis[b, len(p.hypothesis):] == 0).all()
        assert batch.alignment[b, : len(p.hypothesis)].tolist() == list(p.alignment)
        assert (batch.alignment[b, len(p.hypothesis):] == -1).all()
        assert pp.LABELS[int(batch.label[b])] == p.label
    with pytest.raises(ValueError, match="at least one"):
        pp.make_nli_batch([], VOCAB)


def test_nli_batches_are_seeded_and_cover_an_epoch() -> None:
    a, b = pp.nli_batches(PAIRS[:64], VOCAB, 16, seed=3), pp.nli_batches(PAIRS[:64], VOCAB, 16, seed=3)
    epoch = [next(a) for _ in range(4)]
    assert all(torch.equal(x.premise, next(b).premise) for x in epoch)
    assert sorted(id(p) for x in epoch for p in x.pairs) == sorted(id(p) for p in PAIRS[:64])
    with pytest.raises(ValueError, match="batch_size"):
        next(pp.nli_batches(PAIRS[:3], VOCAB, 4))


# --------------------------------------------------------------------------- context and models


def test_in_context_concatenates_the_neighbours() -> None:
    x = torch.arange(1.0, 9.0).reshape(2, 4, 1)  # (B, T, E) = (2, 4, 1)
    lengths = torch.tensor([4, 2])
    out = pp.in_context(x, lengths, radius=1)  # (2, 4, 3): [x_i; x_{i-1}; x_{i+1}]
    assert out[0].tolist() == [[1, 0, 2], [2, 1, 3], [3, 2, 4], [4, 3, 0]]
    assert out[1].tolist() == [[5, 0, 6], [6, 5, 0], [0, 0, 0], [0, 0, 0]]  # padding neither seen nor kept
    wide = pp.in_context(x, lengths, radius=2)
    assert wide[0, 1].tolist() == [2, 1, 3 + 4]
    assert torch.equal(pp.in_context(x, lengths, radius=0), x * torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])[..., None])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="radius"):
            pp.in_context(x, lengths, radius=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lengths"):
        pp.in_context(x, torch.tensor([4]))


def model_and_batch(seed: int = 0) -> tuple[pp.DecomposableAttention, pp.NLIBatch]:
    torch.manual_seed(seed)
    return pp.DecomposableAttention(len(VOCAB), 8, 12).eval(), pp.make_nli_batch(PAIRS[:6], VOCAB)


def test_cross_attention_matches_pytorch_and_respects_padding() -> None:
    model, batch = model_and_batch()
    logits, w = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    B, P = batch.premise.shape
    Q = batch.hypothesis.shape[1]
    assert logits.shape == (B, 3)
    assert w["premise_to_hypothesis"].shape == (B, P, Q) and w["hypothesis_to_premise"].shape == (B, Q, P)
    with torch.no_grad():
        fa = model.attend(model.embedding(batch.premise))  # (B, P, D)
        fb = model.attend(model.embedding(batch.hypothesis))  # (B, Q, D)
        keep_a = torch.arange(P)[None] < batch.premise_lengths[:, None]
        keep_b = torch.arange(Q)[None] < batch.hypothesis_lengths[:, None]
        for b in range(B):  # one unpadded pair at a time, through PyTorch's own attention
            p, q = int(batch.premise_lengths[b]), int(batch.hypothesis_lengths[b])
            eye_q, eye_p = torch.eye(q), torch.eye(p)  # values = one-hot rows, so the output is the weights
            theirs_ba = F.scaled_dot_product_attention(fb[b : b + 1, :q], fa[b : b + 1, :p], eye_p[None])[0]
            theirs_ab = F.scaled_dot_product_attention(fa[b : b + 1, :p], fb[b : b + 1, :q], eye_q[None])[0]
            torch.testing.assert_close(w["hypothesis_to_premise"][b, :q, :p], theirs_ba, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(w["premise_to_hypothesis"][b, :p, :q], theirs_ab, atol=1e-6, rtol=1e-5)
    for name, weights, keep_q, keep_k in (("hypothesis_to_premise", w["hypothesis_to_premise"], keep_b, keep_a),
                                          ("premise_to_hypothesis", w["premise_to_hypothesis"], keep_a, keep_b)):
        sums = weights.sum(-1)
        torch.testing.assert_close(sums[keep_q], torch.ones(int(keep_q.sum())))
        assert (sums[~keep_q] == 0).all(), name  # padding queries: zero rows
        assert (weights.masked_select(~keep_k[:, None, :].expand_as(weights)) == 0).all(), name  # padding keys: zero


@pytest.mark.parametrize("make", [
    lambda: pp.DecomposableAttention(len(VOCAB), 8, 12),
    lambda: pp.DecomposableAttention(len(VOCAB), 8, 12, radius=0),
    lambda: pp.MeanPoolClassifier(len(VOCAB), 8, 12),
    lambda: pp.MeanPoolClassifier(len(VOCAB), 8, 12, radius=0),
])
def test_models_ignore_what_sits_in_the_padding(make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    batch = pp.make_nli_batch(PAIRS[:6], VOCAB)
    noisy_p = torch.where(batch.premise == 0, torch.full_like(batch.premise, VOCAB.stoi["cat"]), batch.premise)
    noisy_h = torch.where(batch.hypothesis == 0, torch.full_like(batch.hypothesis, VOCAB.stoi["red"]), batch.hypothesis)
    assert not torch.equal(noisy_p, batch.premise)
    with torch.no_grad():
        clean, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        noisy, _ = model(noisy_p, batch.premise_lengths, noisy_h, batch.hypothesis_lengths)
    torch.testing.assert_close(noisy, clean)


@pytest.mark.parametrize("make", [
    lambda: pp.DecomposableAttention(len(VOCAB), 8, 12),
    lambda: pp.MeanPoolClassifier(len(VOCAB), 8, 12),
])
def test_each_pair_alone_gives_the_same_logits_as_in_a_padded_batch(make) -> None:
    torch.manual_seed(1)
    model, batch = make().eval(), pp.make_nli_batch(PAIRS[:6], VOCAB)
    with torch.no_grad():
        together, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        for b, p in enumerate(batch.pairs):
            one = pp.make_nli_batch([p], VOCAB)
            alone, _ = model(one.premise, one.premise_lengths, one.hypothesis, one.hypothesis_lengths)
            torch.testing.assert_close(alone[0], together[b], atol=1e-5, rtol=1e-5)


def test_the_hypothesis_only_baseline_never_reads_the_premise() -> None:
    torch.manual_seed(0)
    model = pp.MeanPoolClassifier(len(VOCAB), 8, 12, radius=0, hypothesis_only=True).eval()
    batch = pp.make_nli_batch(PAIRS[:6], VOCAB)
    other = pp.make_nli_batch(PAIRS[6:12], VOCAB)
    with torch.no_grad():
        a, none = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        b, _ = model(other.premise, other.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    assert none is None
    torch.testing.assert_close(a, b)


@given(lengths=st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=5),
       seed=st.integers(0, 2**16))
def test_weights_are_distributions_over_real_words(lengths: list[tuple[int, int]], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    P, Q = max(p for p, _ in lengths), max(q for _, q in lengths)
    lp, lq = torch.tensor([p for p, _ in lengths]), torch.tensor([q for _, q in lengths])
    premise = torch.randint(3, len(VOCAB), (len(lengths), P), generator=g) * (torch.arange(P)[None] < lp[:, None])
    hypothesis = torch.randint(3, len(VOCAB), (len(lengths), Q), generator=g) * (torch.arange(Q)[None] < lq[:, None])
    torch.manual_seed(seed)
    model = pp.DecomposableAttention(len(VOCAB), 4, 6)
    with torch.no_grad():
        logits, w = model(premise, lp, hypothesis, lq)
    assert torch.isfinite(logits).all()
    w_ba = w["hypothesis_to_premise"]  # (B, Q, P)
    for b, (p, q) in enumerate(lengths):
        torch.testing.assert_close(w_ba[b, :q, :p].sum(-1), torch.ones(q))
        assert (w_ba[b, :, p:] == 0).all() and (w_ba[b, q:] == 0).all()
        assert (w_ba[b, :q, :p] >= 0).all()


def test_models_reject_bad_inputs() -> None:
    model, batch = model_and_batch()
    args = (batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    with pytest.raises(ValueError, match="same batch size"):
        model(batch.premise[:2], batch.premise_lengths[:2], *args[2:])
    with pytest.raises(ValueError, match="lengths must lie"):
        model(batch.premise, batch.premise_lengths + 50, *args[2:])
    with pytest.raises(ValueError, match="long tensor"):
        model(batch.premise.float(), *args[1:])
    with pytest.raises(ValueError, match=r"hypothesis_lengths must be \(B,\)"):
        model(*args[:3], batch.hypothesis_lengths[:, None])
    for bad in ({"embed_size": 0}, {"hidden_size": 2.0}, {"radius": -1}):
        with pytest.raises(ValueError):
            pp.DecomposableAttention(len(VOCAB), **{"embed_size": 8, "hidden_size": 8, **bad})
        with pytest.raises(ValueError):
            pp.MeanPoolClassifier(len(VOCAB), **{"embed_size": 8, "hidden_size": 8, **bad})


def test_training_lowers_the_loss_and_accuracy_counts_correctly() -> None:
    torch.manual_seed(0)
    model = pp.DecomposableAttention(len(VOCAB), 8, 16)
    run = pp.train_classifier(model, pp.nli_batches(PAIRS, VOCAB, 32, seed=0), 60, lr=1e-2)
    assert len(run["loss"]) == 60 and run["seconds"] > 0
    assert sum(run["loss"][-10:]) < sum(run["loss"][:10])
    batch = pp.make_nli_batch(PAIRS[:50], VOCAB)
    with torch.no_grad():
        logits, _ = model.eval()(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    right = float((logits.argmax(-1) == batch.label).float().mean())
    assert pp.classifier_accuracy(model, batch) == pytest.approx(right)
    with pytest.raises(ValueError, match="steps"):
        pp.train_classifier(model, pp.nli_batches(PAIRS, VOCAB, 32), 0)


def test_alignment_hits_counts_only_words_with_a_counterpart() -> None:
    weights = torch.tensor([[[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]])  # (B=1, Q=3, P=2)
    hits = pp.alignment_hits(weights, torch.tensor([[0, 0, -1]]))
    assert hits.tolist() == [True, False]
    with pytest.raises(ValueError, match="alignment"):
        pp.alignment_hits(weights, torch.tensor([[0, 0]]))


# --------------------------------------------------------------------------- translation baselines


def test_the_dictionary_read_off_the_alignments_is_the_lexicon() -> None:
    dictionary = pp.word_dictionary(data.toy_translation(3000, 3, 20, seed=0))
    lexicon = {**data.NOUNS, **data.ADJECTIVES, **data.VERBS, **data.INTRANSITIVE, **data.DETERMINERS,
               **data.CONJUNCTION}
    assert dictionary == lexicon


def test_word_dictionary_rejects_two_translations() -> None:
    pairs = [data.Pair(("a",), ("x",), (0,)), data.Pair(("a",), ("y",), (0,))]
    with pytest.raises(ValueError, match="both"):
        pp.word_dictionary(pairs)


def test_translating_in_place_is_right_exactly_where_the_order_is_kept() -> None:
    pairs = data.toy_translation(300, 3, 15, seed=2)
    dictionary = pp.word_dictionary(pairs)
    guesses = [pp.translate_in_place(p.source, dictionary) for p in pairs]
    for p, g in zip(pairs, guesses):
        assert len(g) == len(p.target)
        for t, s in enumerate(p.alignment):
            if s == t:
                assert g[t] == p.target[t]
    assert pp.in_place_token_accuracy([list(p.target) for p in pairs], pairs) == 1.0
    assert pp.in_place_token_accuracy(guesses, pairs) < 1.0
    # one wrong word in a 3-word sentence: 3 of its 4 reference tokens (3 words and <eos>) are right
    one = data.Pair(("the", "cat", "sleeps"), ("le", "chat", "dort"), (0, 1, 2))
    assert pp.in_place_token_accuracy([["le", "chien", "dort"]], [one]) == 0.75
    with pytest.raises(ValueError, match="missing"):
        pp.translate_in_place(["zebra"], dictionary)
    with pytest.raises(ValueError, match="predictions"):
        pp.in_place_token_accuracy([], [one])


def test_monotone_alignment_accuracy() -> None:
    keep = data.Pair(("a", "b", "c"), ("x", "y", "z"), (0, 1, 2))
    swap = data.Pair(("a", "b"), ("y", "x"), (1, 0))
    assert pp.monotone_alignment_accuracy([keep]) == 1.0
    assert pp.monotone_alignment_accuracy([swap]) == 0.0
    assert pp.monotone_alignment_accuracy([keep, swap]) == pytest.approx(3 / 5)
    assert pp.monotone_alignment_accuracy(data.reverse_digits(20, 2, 2, seed=0)) == 0.0
    with pytest.raises(ValueError):
        pp.monotone_alignment_accuracy([])
