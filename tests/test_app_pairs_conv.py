"""Chapter 10b's order-aware baseline and learning curves (``pairs.ConvMaxPoolClassifier``,
``pairs.train_with_checkpoints``).

The convolution is checked against a per-position computation written out from its
formula (not through ``nn.Conv1d``), its order-awareness against the mean of word
vectors, and the learning-curve training against ``train_classifier`` step for step.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attention_course.applications import pairs as pp

VOCAB = pp.nli_vocab()
PAIRS = pp.nli_pairs(300, seed=5)


def conv_model(seed: int = 0, **kwargs) -> pp.ConvMaxPoolClassifier:
    torch.manual_seed(seed)
    return pp.ConvMaxPoolClassifier(len(VOCAB), 8, **{"channels": 10, "hidden_size": 12, **kwargs}).eval()


def ids(words: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One sentence as a (1, T) batch and its length (1,)."""
    encoded = VOCAB.encode(words.split())
    return torch.tensor([encoded]), torch.tensor([len(encoded)])


def test_the_encoder_is_the_formula_written_out() -> None:
    """u = max_i ReLU(W [x_{i-1}; x_i; x_{i+1}] + c) over the real words, zeros beyond each end."""
    model = conv_model()
    batch = pp.make_nli_batch(PAIRS[:5], VOCAB)
    W, c = model.conv.weight, model.conv.bias  # (C, D, 3), (C,)
    with torch.no_grad():
        u = model.encode(batch.premise, batch.premise_lengths)  # (B, C)
        for b in range(len(batch.pairs)):
            T = int(batch.premise_lengths[b])
            x = model.embedding(batch.premise[b, :T])  # (T, D)
            x = torch.cat([torch.zeros(1, x.shape[1]), x, torch.zeros(1, x.shape[1])])  # (T + 2, D)
            h = torch.stack([torch.relu(torch.einsum("cdk,kd->c", W, x[i : i + 3]) + c) for i in range(T)])
            torch.testing.assert_close(u[b], h.max(0).values, atol=1e-6, rtol=1e-5)
        v = model.encode(batch.hypothesis, batch.hypothesis_lengths)
        logits, nothing = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    assert nothing is None and logits.shape == (len(batch.pairs), 3)
    torch.testing.assert_close(logits, model.classify(torch.cat([u, v, (u - v).abs(), u * v], -1)))


def test_it_tells_which_noun_a_colour_belongs_to_where_the_mean_cannot() -> None:
    red_cat = ids("the red cat chased the blue ball")
    blue_cat = ids("the blue cat chased the red ball")  # the same words, the colours swapped
    torch.manual_seed(0)
    mean = pp.MeanPoolClassifier(len(VOCAB), 8, 12, radius=0).eval()
    conv = conv_model()
    with torch.no_grad():
        assert torch.allclose(mean._encode(*red_cat), mean._encode(*blue_cat))  # a bag of words
        assert not torch.allclose(conv.encode(*red_cat), conv.encode(*blue_cat), atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, len(PAIRS) - 1), st.randoms(use_true_random=False))
def test_width_one_is_a_bag_of_words(index: int, rng) -> None:
    """With a window of one word there is no order left: any shuffle of the words gives the same vector."""
    model = conv_model(width=1)
    words = list(PAIRS[index].premise)
    shuffled = words[:]
    rng.shuffle(shuffled)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(*ids(" ".join(words))), model.encode(*ids(" ".join(shuffled))))


def test_padding_is_ignored_and_a_pair_alone_gives_its_batch_logits() -> None:
    model = conv_model(1)
    batch = pp.make_nli_batch(PAIRS[:6], VOCAB)
    noisy_p = torch.where(batch.premise == 0, torch.full_like(batch.premise, VOCAB.stoi["cat"]), batch.premise)
    noisy_h = torch.where(batch.hypothesis == 0, torch.full_like(batch.hypothesis, VOCAB.stoi["red"]),
                          batch.hypothesis)
    assert not torch.equal(noisy_p, batch.premise)
    with torch.no_grad():
        clean, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        noisy, _ = model(noisy_p, batch.premise_lengths, noisy_h, batch.hypothesis_lengths)
        torch.testing.assert_close(noisy, clean)
        for b, p in enumerate(batch.pairs):
            one = pp.make_nli_batch([p], VOCAB)
            alone, _ = model(one.premise, one.premise_lengths, one.hypothesis, one.hypothesis_lengths)
            torch.testing.assert_close(alone[0], clean[b], atol=1e-5, rtol=1e-5)


def test_bad_sizes_and_inputs_are_rejected() -> None:
    for bad in ({"channels": 0}, {"hidden_size": -1}, {"width": 2}, {"width": 0}, {"embed_size": 1.5}):
        with pytest.raises(ValueError):
            pp.ConvMaxPoolClassifier(len(VOCAB), **{"embed_size": 8, **bad})
    model, batch = conv_model(), pp.make_nli_batch(PAIRS[:3], VOCAB)
    with pytest.raises(ValueError, match="premise"):
        model(batch.premise.float(), batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    with pytest.raises(ValueError, match="hypothesis_lengths"):
        model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths + 50)


@pytest.mark.parametrize("make", [
    lambda: pp.ConvMaxPoolClassifier(len(VOCAB), 8, channels=10, hidden_size=12),
    lambda: pp.DecomposableAttention(len(VOCAB), 8, 12),
])
def test_checkpoints_train_exactly_as_train_classifier(make) -> None:
    """Same updates as train_classifier; the looks at the held-out batch change nothing."""
    held_out = pp.make_nli_batch(PAIRS[200:260], VOCAB)
    torch.manual_seed(3)
    ours = make()
    torch.manual_seed(3)
    plain = make()
    run = pp.train_with_checkpoints(ours, pp.nli_batches(PAIRS[:200], VOCAB, 16, seed=1), 12, held_out,
                                    lr=1e-2, every=5)
    reference = pp.train_classifier(plain, pp.nli_batches(PAIRS[:200], VOCAB, 16, seed=1), 12, lr=1e-2)
    assert run["loss"] == reference["loss"] and ours.training
    for a, b in zip(ours.parameters(), plain.parameters()):
        assert torch.equal(a, b)
    assert run["steps"] == [5, 10] and run["predicted"].shape == (2, len(held_out.pairs))
    assert run["predicted"].dtype == torch.long and run["seconds"] > 0


def test_the_last_checkpoint_is_the_final_model_and_training_learns() -> None:
    torch.manual_seed(0)
    model = pp.ConvMaxPoolClassifier(len(VOCAB), 16, channels=32, hidden_size=32)
    held_out = pp.make_nli_batch(PAIRS[200:], VOCAB)
    run = pp.train_with_checkpoints(model, pp.nli_batches(PAIRS[:200], VOCAB, 20, seed=0), 60, held_out,
                                    lr=1e-2, every=20)
    last = (run["predicted"][-1] == held_out.label).float().mean().item()
    assert last == pytest.approx(pp.classifier_accuracy(model, held_out))
    assert sum(run["loss"][-10:]) < sum(run["loss"][:10])


def test_train_with_checkpoints_rejects_bad_arguments() -> None:
    model, held_out = conv_model(), pp.make_nli_batch(PAIRS[:4], VOCAB)
    data = pp.nli_batches(PAIRS[:40], VOCAB, 8)
    for steps, every in ((0, 1), (10, 0), (10, 11), (10, True), (2.5, 1)):
        with pytest.raises(ValueError):
            pp.train_with_checkpoints(model, data, steps, held_out, every=every)  # type: ignore[arg-type]
