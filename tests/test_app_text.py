"""Attention for text (``attention_course.applications.text``, chapter 10a).

The data generators are checked against their documented rules (the review
label rule, the planted key sentences), attention pooling against PyTorch's
``scaled_dot_product_attention``, ROUGE-1 against hand counts, and the models
for shapes, weights that sum to 1 and padding that changes nothing.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_course import padding_mask
from attention_course.applications import text as tx

OPINION = set(tx.POSITIVE) | set(tx.NEGATIVE)


# --------------------------------------------------------------------------- reviews


def test_reviews_are_deterministic_and_seeded() -> None:
    a, b, c = tx.reviews(50, seed=3), tx.reviews(50, seed=3), tx.reviews(50, seed=4)
    assert a.words == b.words and torch.equal(a.tokens, b.tokens) and torch.equal(a.labels, b.labels)
    assert a.words != c.words


def test_reviews_follow_the_label_rule_and_mark_the_deciding_words() -> None:
    data = tx.reviews(400, seed=0, min_len=8, max_len=40)
    assert data.tokens.shape == (400, int(data.lengths.max()))
    assert int(data.lengths.min()) >= 8 and int(data.lengths.max()) <= 40
    labels = data.labels.tolist()
    assert 0.35 < sum(labels) / len(labels) < 0.65  # both classes
    n_negated = n_stray = 0
    for b, words in enumerate(data.words):
        n = int(data.lengths[b])
        assert len(words) == n
        assert tx.REVIEW_VOCAB.decode(data.tokens[b].tolist()) == list(words)
        assert (data.tokens[b, n:] == 0).all() and not data.deciding[b, n:].any()
        assert tx.review_label(words) == labels[b]
        opinions = [t for t, w in enumerate(words) if w in OPINION]
        assert 1 <= len(opinions) <= 2
        for t, w in enumerate(words):  # deciding = opinion words and the negators right before them
            flips = w in tx.NEGATORS and t + 1 < n and words[t + 1] in OPINION
            assert bool(data.deciding[b, t]) == (w in OPINION or flips)
            n_negated += flips
            n_stray += w in tx.NEGATORS and not flips
    assert n_negated > 100 and n_stray > 100  # both kinds of negator are common


def test_review_label_rule_by_hand() -> None:
    assert tx.review_label(["the", "film", "was", "good"]) == 1
    assert tx.review_label(["the", "film", "was", "not", "good"]) == 0
    assert tx.review_label(["never", "dull", "and", "not", "bad"]) == 1
    assert tx.review_label(["not", "the", "good", "plot"]) == 1  # the negator must be right before
    with pytest.raises(ValueError, match="agree"):
        tx.review_label(["good", "and", "bad"])
    with pytest.raises(ValueError):
        tx.review_label(["the", "plot"])


def test_review_set_indexing_trims_padding() -> None:
    data = tx.reviews(20, seed=1)
    short = sorted(range(20), key=lambda b: int(data.lengths[b]))[:3]
    sub = data[short]
    assert sub.tokens.shape == (3, int(data.lengths[short].max()))
    assert sub.words == tuple(data.words[b] for b in short)
    assert len(data[2:5]) == 3


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=5, min_len=3), dict(n=5, min_len=20, max_len=10)])
def test_reviews_reject_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        tx.reviews(seed=0, **kwargs)


# --------------------------------------------------------------------------- documents


def test_documents_plant_the_key_sentences() -> None:
    data = tx.documents(200, seed=0)
    again = tx.documents(200, seed=0)
    assert data.sentences == again.sentences and torch.equal(data.tokens, again.tokens)
    keyword_topic = {w: t for t, name in enumerate(tx.TOPIC_NAMES) for w in tx.TOPICS[name]}
    first_is_key = 0
    for i, doc in enumerate(data.sentences):
        N = int(data.n_sentences[i])
        topic = int(data.topics[i])
        assert len(doc) == N and 6 <= N <= 12
        assert int(data.key[i].sum()) in (2, 3) and not data.key[i, N:].any()
        assert (data.word_lengths[i, N:] == 0).all() and (data.tokens[i, N:] == 0).all()
        first_is_key += bool(data.key[i, 0])
        for s, sentence in enumerate(doc):
            assert tx.DOC_VOCAB.decode(data.tokens[i, s].tolist()) == list(sentence)
            assert int(data.word_lengths[i, s]) == len(sentence)
            topics = [keyword_topic[w] for w in sentence if w in keyword_topic]
            if data.key[i, s]:
                assert len(topics) in (2, 3) and set(topics) == {topic}
                assert len(set(sentence) & set(tx.TOPICS[tx.TOPIC_NAMES[topic]])) == len(topics)  # distinct
            else:
                assert len(topics) <= 1 and topic not in topics  # filler, at most one other topic's word
    assert first_is_key < 0.5 * len(data)  # key sentences are not simply at the start


def test_document_set_indexing() -> None:
    data = tx.documents(10, seed=2)
    sub = data[[4, 1]]
    assert sub.sentences == (data.sentences[4], data.sentences[1])
    assert torch.equal(sub.key, data.key[[4, 1]])


@pytest.mark.parametrize(
    "kwargs", [dict(n=0), dict(n=3, min_sentences=2), dict(n=3, min_words=8, max_words=5), dict(n=3, mention_rate=1.5)]
)
def test_documents_reject_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        tx.documents(seed=0, **kwargs)


# --------------------------------------------------------------------------- attention pooling


@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_attention_pooling_matches_pytorch_and_ignores_padding(lengths: list[int], seed: int) -> None:
    torch.manual_seed(seed)
    B, T, D, E = len(lengths), max(lengths), 6, 4
    pool = tx.AttentionPooling(D, E).double()
    states = torch.randn(B, T, D, dtype=torch.float64)
    mask = padding_mask(torch.tensor(lengths), T)  # (B, T)
    pooled, weights = pool(states, mask)
    assert pooled.shape == (B, D) and weights.shape == (B, T)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, dtype=torch.float64))
    assert (weights[~mask] == 0).all()
    with torch.no_grad():
        theirs = F.scaled_dot_product_attention(pool.query.expand(B, 1, E), pool.key(states), states,
                                                attn_mask=mask[:, None, :])[:, 0]
    torch.testing.assert_close(pooled, theirs, atol=1e-10, rtol=1e-10)
    noisy = states.masked_fill(~mask[..., None], 1e3)  # change the padding only
    torch.testing.assert_close(pool(noisy, mask)[0], pooled)


def test_attention_pooling_rejects_bad_shapes() -> None:
    pool = tx.AttentionPooling(6, 4)
    with pytest.raises(ValueError, match=r"\(B, S, D\)"):
        pool(torch.randn(2, 5), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError):
        pool(torch.randn(2, 5, 6), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        pool(torch.randn(2, 5, 6), torch.ones(2, 5))  # float mask


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("readout", tx.ReviewClassifier.READOUTS)
def test_review_classifier_shapes_weights_and_padding(readout: str) -> None:
    torch.manual_seed(0)
    model = tx.ReviewClassifier(len(tx.REVIEW_VOCAB), embed_size=8, hidden_size=12, key_size=6, readout=readout).eval()
    data = tx.reviews(6, seed=5)
    logits, weights = model(data.tokens, data.lengths)
    B, T = data.tokens.shape
    assert logits.shape == (B, 2) and weights.shape == (B, T)
    mask = padding_mask(data.lengths, T)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    assert (weights[~mask] == 0).all()
    longer = F.pad(data.tokens, (0, 7))  # more padding: nothing may change
    logits2, weights2 = model(longer, data.lengths)
    torch.testing.assert_close(logits2, logits)
    torch.testing.assert_close(weights2[:, :T], weights)
    alone, _ = model(data.tokens[:1, : int(data.lengths[0])], data.lengths[:1])  # one review, no padding at all
    torch.testing.assert_close(alone, logits[:1])
    if readout == "mean":
        torch.testing.assert_close(weights[mask], (1.0 / data.lengths.float()).repeat_interleave(data.lengths))


def test_review_classifier_context_sees_only_neighbours() -> None:
    torch.manual_seed(0)
    model = tx.ReviewClassifier(len(tx.REVIEW_VOCAB), embed_size=8, hidden_size=12).eval()
    tokens = torch.tensor([tx.REVIEW_VOCAB.encode("the plot was not good and the music".split())])
    changed = tokens.clone()
    changed[0, 0] = tx.REVIEW_VOCAB.stoi["never"]
    h, h2 = model.states(tokens), model.states(changed)  # (1, T, D)
    assert not torch.allclose(h[0, :2], h2[0, :2])
    torch.testing.assert_close(h[0, 2:], h2[0, 2:])  # positions 2+ cannot see position 0


def test_review_classifier_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        tx.ReviewClassifier(10, readout="max")
    with pytest.raises(ValueError):
        tx.ReviewClassifier(10, width=2)
    model = tx.ReviewClassifier(len(tx.REVIEW_VOCAB))
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.tensor([5, 5, 5]))


@pytest.mark.parametrize("readout", ["attention", "mean"])
def test_sentence_classifier_masks_padding_sentences(readout: str) -> None:
    torch.manual_seed(0)
    model = tx.SentenceAttentionClassifier(len(tx.DOC_VOCAB), embed_size=8, key_size=4, readout=readout).eval()
    data = tx.documents(5, seed=1)
    logits, weights = model(data.tokens, data.word_lengths)
    B, N, W = data.tokens.shape
    assert logits.shape == (B, len(tx.TOPIC_NAMES)) and weights.shape == (B, N)
    real = data.word_lengths > 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    assert (weights[~real] == 0).all()
    more = F.pad(data.tokens, (0, 3, 0, 2))  # two more padding sentences, three more padding words
    logits2, weights2 = model(more, F.pad(data.word_lengths, (0, 2)))
    torch.testing.assert_close(logits2, logits)
    torch.testing.assert_close(weights2[:, :N], weights)
    with pytest.raises(ValueError, match=r"\(B, S, T_w\)"):
        model(data.tokens[0], data.word_lengths[0])
    with pytest.raises(ValueError):
        tx.SentenceAttentionClassifier(10, readout="last")


def test_fit_is_seeded_and_learns() -> None:
    data = tx.documents(300, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = tx.SentenceAttentionClassifier(len(tx.DOC_VOCAB), embed_size=16, key_size=8)
        runs.append(tx.fit(model, (data.tokens, data.word_lengths), data.topics, steps=80, batch_size=32, seed=1))
    assert runs[0] == runs[1]
    assert sum(runs[0][-5:]) / 5 < 0.5 * sum(runs[0][:5]) / 5
    with pytest.raises(ValueError, match="rows"):
        tx.fit(model, (data.tokens[:10], data.word_lengths), data.topics, steps=1)


# --------------------------------------------------------------------------- erasure, ROUGE, extraction


def test_drop_word_deletes_one_word_per_row() -> None:
    data = tx.reviews(8, seed=2)
    positions = torch.tensor([0, 1, 2, 3, 0, 5, 7, 4])
    before = data.tokens.clone()
    tokens, lengths = tx.drop_word(data.tokens, data.lengths, positions)
    assert torch.equal(data.tokens, before)  # input untouched
    assert torch.equal(lengths, data.lengths - 1)
    for b in range(8):
        n = int(data.lengths[b])
        expected = data.tokens[b, :n].tolist()
        del expected[int(positions[b])]
        assert tokens[b, : n - 1].tolist() == expected and (tokens[b, n - 1 :] == 0).all()
    with pytest.raises(ValueError):
        tx.drop_word(data.tokens, data.lengths, data.lengths)  # position past the end
    with pytest.raises(ValueError):
        tx.drop_word(data.tokens, data.lengths, positions[:3])


def test_rouge_1_by_hand() -> None:
    r = tx.rouge_1("the cat sat on the mat".split(), "the cat lay on a mat".split())
    assert r["recall"] == pytest.approx(4 / 6) and r["precision"] == pytest.approx(4 / 6)
    clipped = tx.rouge_1(["the", "the", "the"], ["the", "cat"])  # "the" matches once: the reference has one
    assert clipped["recall"] == pytest.approx(1 / 2) and clipped["precision"] == pytest.approx(1 / 3)
    assert clipped["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert tx.rouge_1(["a"], ["b"]) == {"recall": 0.0, "precision": 0.0, "f1": 0.0}
    assert tx.rouge_1([], ["b"])["f1"] == 0.0
    with pytest.raises(ValueError):
        tx.rouge_1("the cat", "the cat")


words = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=8)


@given(candidate=words, reference=words)
def test_rouge_1_properties(candidate: list[str], reference: list[str]) -> None:
    r, swapped = tx.rouge_1(candidate, reference), tx.rouge_1(reference, candidate)
    assert r["recall"] == pytest.approx(swapped["precision"]) and r["f1"] == pytest.approx(swapped["f1"])
    assert all(0.0 <= v <= 1.0 for v in r.values())
    if reference:
        assert tx.rouge_1(reference, reference)["f1"] == pytest.approx(1.0)
        assert tx.rouge_1(list(reversed(candidate)), reference) == r  # order does not matter


def test_extraction_baselines_and_mean_rouge() -> None:
    assert tx.top_k_sentences(torch.tensor([0.1, 0.5, 0.05, 0.35]), 2) == [1, 3]
    assert tx.lead_k(7, 3) == [0, 1, 2]
    picked = tx.random_k(10, 4, random.Random(0))
    assert picked == sorted(picked) and len(set(picked)) == 4 and picked == tx.random_k(10, 4, random.Random(0))
    for bad in (lambda: tx.top_k_sentences(torch.ones(3), 4), lambda: tx.lead_k(3, 0),
                lambda: tx.random_k(2, 3, random.Random(0)), lambda: tx.top_k_sentences(torch.ones(2, 3), 1)):
        with pytest.raises(ValueError):
            bad()
    docs = tx.documents(20, seed=3)
    oracle = [[s for s in range(int(n)) if docs.key[i, s]] for i, n in enumerate(docs.n_sentences)]
    assert tx.mean_rouge(docs, oracle) == pytest.approx({"recall": 1.0, "precision": 1.0, "f1": 1.0})
    lead = tx.mean_rouge(docs, [tx.lead_k(int(n), len(o)) for n, o in zip(docs.n_sentences, oracle)])
    assert lead["f1"] < 0.9
    with pytest.raises(ValueError):
        tx.mean_rouge(docs, oracle[:3])
