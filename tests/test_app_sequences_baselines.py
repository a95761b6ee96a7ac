"""Chapter 9d's two new baselines: DeepBind-style max-pooling for DNA, a GRU4Rec-style recurrent recommender.

``MotifMaxPoolClassifier`` must pool by each channel's maximum over the real
positions only (padding never changes a logit) and point ``peak_position`` at
the planted motif once trained; ``NextItemGRU`` must be causal and equal a
step-by-step ``nn.GRUCell`` loop with the same weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attention_course.applications import sequences as sq

# =========================================================================== DNA: max-pooling


def test_max_pool_classifier_is_a_linear_layer_on_the_channel_maxima() -> None:
    torch.manual_seed(0)
    model = sq.MotifMaxPoolClassifier(channels=5, kernel_size=5)
    tokens = torch.randint(0, 4, (3, 20))
    with torch.no_grad():
        logits, h = model(tokens)
        x = F.one_hot(tokens, 4).float().transpose(1, 2)  # (B, 4, T)
        expected_h = torch.relu(F.conv1d(x, model.conv.weight, model.conv.bias, padding=2)).transpose(1, 2)
        expected = expected_h.amax(1) @ model.out.weight[0] + model.out.bias
    assert logits.shape == (3,) and h.shape == (3, 20, 5)
    assert torch.allclose(h, expected_h, atol=1e-6) and torch.allclose(logits, expected, atol=1e-5)


def test_max_plus_avg_pooling_appends_the_means() -> None:
    torch.manual_seed(0)
    model = sq.MotifMaxPoolClassifier(channels=3, kernel_size=3, pooling="max+avg")
    tokens = torch.randint(0, 4, (2, 12))
    with torch.no_grad():
        logits, h = model(tokens)
        pooled = torch.cat([h.amax(1), h.mean(1)], 1)  # (B, 2C)
    assert torch.allclose(logits, pooled @ model.out.weight[0] + model.out.bias, atol=1e-6)


@given(st.integers(7, 20), st.lists(st.integers(0, 3), min_size=20, max_size=20), st.sampled_from(["max", "max+avg"]))
@settings(max_examples=30, deadline=None)
def test_max_pool_classifier_is_blind_to_padding(length: int, junk: list[int], pooling: str) -> None:
    torch.manual_seed(1)
    model = sq.MotifMaxPoolClassifier(channels=4, kernel_size=5, pooling=pooling)
    tokens = torch.randint(0, 4, (1, 20), generator=torch.Generator().manual_seed(length))
    other = tokens.clone()
    other[0, length:] = torch.tensor(junk[length:])  # change only the padding
    lengths = torch.tensor([length])
    with torch.no_grad():
        logit_a, h_a = model(tokens, lengths)
        logit_b, _ = model(other, lengths)
        logit_c, h_c = model(tokens[:, :length])  # the unpadded sequence
    assert torch.allclose(logit_a, logit_b, atol=1e-6) and torch.allclose(logit_a, logit_c, atol=1e-5)
    assert (h_a[0, length:] == 0).all() and torch.allclose(h_a[0, :length], h_c[0], atol=1e-6)
    assert int(model.peak_position(h_a, lengths)) < length
    assert int(model.peak_position(h_a, lengths)) == int(model.peak_position(h_c))


def test_peak_position_follows_the_decisive_channel() -> None:
    model = sq.MotifMaxPoolClassifier(channels=2, kernel_size=3)
    with torch.no_grad():
        model.out.weight.copy_(torch.tensor([[1.0, -5.0]]))
    h = torch.zeros(1, 6, 2)
    h[0, 4, 0], h[0, 1, 1] = 2.0, 3.0  # channel 1 peaks higher but counts against the motif
    assert int(model.peak_position(h)) == 4
    with torch.no_grad():
        model.out.weight.copy_(torch.tensor([[1.0, 5.0]]))
    assert int(model.peak_position(h)) == 1


def test_max_pool_classifier_learns_the_motif_and_finds_it() -> None:
    torch.manual_seed(0)
    train = sq.planted_motif_sequences(600, 40, "TATAAT", seed=1)
    test = sq.planted_motif_sequences(300, 40, "TATAAT", seed=2)
    model = sq.MotifMaxPoolClassifier(channels=8, kernel_size=7)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(len(train), (64,), generator=g)
        logits, _ = model(train.tokens[idx])
        loss = F.binary_cross_entropy_with_logits(logits, train.labels[idx].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits, h = model(test.tokens)
    assert float(((logits > 0).long() == test.labels).float().mean()) > 0.9
    top, pos = model.peak_position(h), test.labels == 1
    inside = (top >= test.starts - 2) & (top <= test.starts + 7)
    assert float(inside[pos].float().mean()) > 0.9


def test_max_pool_classifier_rejects_bad_input() -> None:
    model = sq.MotifMaxPoolClassifier()
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.randint(0, 4, (30,)))
    with pytest.raises(ValueError, match="0..3"):
        model(torch.tensor([[0, 4, 1, 2, 3, 0, 1]]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randint(0, 4, (2, 30)), torch.tensor([3]))
    with pytest.raises(ValueError, match="odd"):
        sq.MotifMaxPoolClassifier(kernel_size=6)
    with pytest.raises(ValueError, match="pooling"):
        sq.MotifMaxPoolClassifier(pooling="mean")
    with pytest.raises(ValueError, match="C=16"):
        model.peak_position(torch.zeros(2, 30, 8))
    with pytest.raises(ValueError, match="floating"):
        model.peak_position(torch.zeros(2, 30, 16, dtype=torch.long))


# =========================================================================== recommendation: GRU


def test_next_item_gru_is_causal() -> None:
    torch.manual_seed(0)
    model = sq.NextItemGRU(30, d_model=16)
    items = torch.randint(0, 30, (3, 12))
    changed = items.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 30
    with torch.no_grad():
        scores, scores_changed = model(items), model(changed)
    assert scores.shape == (3, 12, 30)
    assert torch.allclose(scores[:, :7], scores_changed[:, :7], atol=1e-6)
    assert not torch.allclose(scores[:, 7:], scores_changed[:, 7:], atol=1e-3)


def test_next_item_gru_equals_a_step_by_step_gru_cell() -> None:
    torch.manual_seed(2)
    model = sq.NextItemGRU(25, d_model=8)
    cell = nn.GRUCell(8, 8)
    with torch.no_grad():
        for ours, theirs in (("weight_ih_l0", "weight_ih"), ("weight_hh_l0", "weight_hh"),
                             ("bias_ih_l0", "bias_ih"), ("bias_hh_l0", "bias_hh")):
            getattr(cell, theirs).copy_(getattr(model.gru, ours))
        items = torch.randint(0, 25, (4, 9))
        state = torch.zeros(4, 8)  # s_0 = 0
        expected = []
        for t in range(9):
            state = cell(model.item_embedding(items[:, t]), state)  # (B, D)
            expected.append(model.out(state))  # (B, num_items)
        assert torch.allclose(model(items), torch.stack(expected, 1), atol=1e-5)


def test_next_item_gru_learns_an_accessory_rule() -> None:
    torch.manual_seed(0)
    shop = sq.purchase_histories(800, 20, seed=4)
    train, test = shop.items[:600], shop.items[600:]
    model = sq.NextItemGRU(shop.num_items, d_model=32)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        items = train[torch.randint(600, (64,), generator=g)]
        scores = model(items[:, :-1])
        loss = F.cross_entropy(scores.reshape(-1, shop.num_items), items[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = model(test[:, :-1]).reshape(-1, shop.num_items)
    targets = test[:, 1:].reshape(-1)
    due = (shop.trigger[600:, 1:] >= 0).reshape(-1)
    markov = sq.markov_scores(train, shop.num_items)[test[:, :-1].reshape(-1)]
    assert sq.hit_rate_at_k(scores[due], targets[due], 10) > 0.8
    assert sq.hit_rate_at_k(markov[due], targets[due], 10) < 0.6


def test_next_item_gru_rejects_bad_input() -> None:
    model = sq.NextItemGRU(30)
    with pytest.raises(ValueError, match="0..29"):
        model(torch.tensor([[0, 30]]))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="d_model"):
        sq.NextItemGRU(30, d_model=0)
