"""Chapter 10's series, DNA and purchase-history applications: data rules, model invariants, PyTorch agreement.

The generators must obey the rules their docstrings state (checked on the
data, not on the generator's own bookkeeping alone); the models' weights must
be distributions that respect masks; and where a model attends, the result
must match PyTorch's ``scaled_dot_product_attention`` or
``nn.TransformerEncoderLayer`` with copied weights.

Chapter 10d's two baselines are here too: ``MotifMaxPoolClassifier`` (DeepBind-style
max-pooling for DNA) must pool by each channel's maximum over the real positions
only (padding never changes a logit) and point ``peak_position`` at the planted
motif once trained; ``NextItemGRU`` (a GRU4Rec-style recurrent recommender) must
be causal and equal a step-by-step ``nn.GRUCell`` loop with the same weights.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attention_course import causal_mask
from attention_course.applications import sequences as sq
from attention_course.transformer import EncoderLayer

# =========================================================================== time series


def test_seasonal_series_is_seeded_and_follows_its_formula() -> None:
    a, b = sq.seasonal_series(480, 24, seed=5), sq.seasonal_series(480, 24, seed=5)
    c = sq.seasonal_series(480, 24, seed=6)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)
    assert a.values.shape == (480,) and a.season.shape == (24,)
    assert abs(float(a.season.mean())) < 1e-5 and abs(float(a.season.std(unbiased=False)) - 1) < 1e-4
    noise = a.values - a.level - a.season[torch.arange(480) % 24]  # what is left is the noise
    assert abs(float(noise.std()) - a.noise_std) < 0.1 * a.noise_std
    assert abs(float(noise.mean())) < 0.1
    quiet = sq.seasonal_series(240, 12, noise_std=0.0, level_std=0.0, seed=1)
    assert torch.allclose(quiet.values[12:], quiet.values[:-12], atol=1e-5)  # exactly periodic


def test_forecast_windows_cut_the_right_slices() -> None:
    values = torch.arange(100, dtype=torch.float32)
    past, future = sq.forecast_windows(values, 10, 4, torch.tensor([0, 7, 86]))
    assert torch.equal(past[1], torch.arange(7, 17, dtype=torch.float32))
    assert torch.equal(future[2], torch.arange(96, 100, dtype=torch.float32))
    with pytest.raises(ValueError, match="starts must lie"):
        sq.forecast_windows(values, 10, 4, torch.tensor([87]))
    with pytest.raises(ValueError, match=r"\(T,\)"):
        sq.forecast_windows(values[None], 10, 4, torch.tensor([0]))


@given(st.integers(0, 500), st.integers(0, 500), st.integers(2, 30), st.integers(1, 5))
@settings(max_examples=50)
def test_time_features_see_only_the_lag(t1: int, t2: int, period: int, harmonics: int) -> None:
    phi = sq.time_features(torch.tensor([t1, t2, t1 + period, t2 + 3 * period]), period, harmonics).double()
    assert torch.allclose(phi[0], phi[2], atol=1e-5) and torch.allclose(phi[1], phi[3], atol=1e-5)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    expected = torch.cos(2 * math.pi * k * (t1 - t2) / period).sum()
    assert torch.allclose(phi[0] @ phi[1], expected, atol=1e-4)


def _forecaster(seed: int = 0) -> sq.SeasonalAttentionForecaster:
    torch.manual_seed(seed)
    model = sq.SeasonalAttentionForecaster(12, 36, 6)
    with torch.no_grad():
        model.harmonic_weight.copy_(torch.randn(6))
        model.recency_weight.fill_(1.7)
    return model


def test_forecaster_scores_are_a_function_of_the_lag_and_match_torch() -> None:
    model = _forecaster()
    past, start = torch.randn(3, 36), torch.tensor([0, 5, 101])
    forecast, weights = model(past, start)
    assert forecast.shape == (3, 6) and weights.shape == (3, 6, 36)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 6), atol=1e-6)
    # the docstring's score: sum_k c_k cos(2 pi k lag / m) + alpha r_j
    lag = (36 + torch.arange(6)[:, None] - torch.arange(36)[None, :]).double()  # (H, S)
    k = torch.arange(1, 7, dtype=torch.float64)
    c = model.harmonic_weight.detach().double()
    score = (c * torch.cos(2 * math.pi * k * lag[..., None] / 12)).sum(-1) \
        + 1.7 * (torch.arange(36, dtype=torch.float64) - 36) / 36  # (H, S)
    assert torch.allclose(weights[0].double(), score.softmax(-1), atol=1e-5)
    assert torch.allclose(weights[1], weights[2], atol=1e-6)  # only lags matter, not absolute times
    # PyTorch's attention with the same queries, keys and values
    t_past = start[:, None] + torch.arange(36)
    t_fut = start[:, None] + 36 + torch.arange(6)
    q = torch.cat([model.harmonic_weight.detach().repeat(2) * sq.time_features(t_fut, 12, 6),
                   torch.full((3, 6, 1), 1.7)], -1)
    kk = torch.cat([sq.time_features(t_past, 12, 6), ((torch.arange(36.) - 36) / 36).expand(3, 36)[..., None]], -1)
    theirs = F.scaled_dot_product_attention(q, kk, past[..., None], scale=1.0)[..., 0]
    assert torch.allclose(forecast, theirs, atol=1e-5)
    assert torch.allclose(forecast, (weights @ past[..., None])[..., 0], atol=1e-6)


def test_forecaster_rejects_bad_input() -> None:
    model = _forecaster()
    with pytest.raises(ValueError, match="T_in=36"):
        model(torch.randn(2, 35), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        model(torch.randn(2, 36), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(B, T_in\)"):
        model(torch.randn(36), torch.tensor([0]))


def test_baselines() -> None:
    past = torch.arange(48, dtype=torch.float32)[None].repeat(2, 1)
    assert torch.equal(sq.naive_forecast(past, 5), torch.full((2, 5), 47.0))
    assert torch.equal(sq.seasonal_naive_forecast(past, 5, 12)[0], torch.arange(36, 41, dtype=torch.float32))
    assert torch.equal(sq.seasonal_mean_forecast(past, 5, 12, 1), sq.seasonal_naive_forecast(past, 5, 12))
    # mean of 36, 24, 12, 0 (+h) = 18 (+h)
    assert torch.equal(sq.seasonal_mean_forecast(past, 5, 12, 4)[0], torch.arange(18, 23, dtype=torch.float32))
    with pytest.raises(ValueError, match="seasons\\*T_season <= T_in"):
        sq.seasonal_mean_forecast(past, 5, 12, 5)
    # beyond one season the last season starts over: 36..47, then 36, 37, ...
    expected = torch.cat([torch.arange(36, 48), torch.arange(36, 48), torch.arange(36, 39)]).float()
    assert torch.equal(sq.seasonal_naive_forecast(past, 27, 12)[1], expected)
    with pytest.raises(ValueError, match="T_season <= T_in"):
        sq.seasonal_naive_forecast(past, 5, 49)


def test_mae_mase_and_seasonal_share() -> None:
    assert sq.mae(torch.zeros(2, 3), torch.full((2, 3), 2.0)) == 2.0
    train = torch.tensor([0.0, 1.0, 0.0, 3.0])  # |y_t - y_{t-2}| = 0, 2: scale 1
    assert sq.mase(torch.zeros(1, 2), torch.full((1, 2), 3.0), train, 2) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one shape"):
        sq.mae(torch.zeros(2, 3), torch.zeros(3, 2))
    w = torch.zeros(1, 2, 24)
    w[0, 0, 24 - 12] = 1.0  # query h=0 (step 24): key 12 is 12 = m steps back
    w[0, 1, 24 + 1 - 6] = 1.0  # query h=1 (step 25): key 19 is 6 = m/2 steps back
    share = sq.weight_near_seasonal_lags(w, 24, 12)
    assert share.tolist() == [[1.0, 0.0]]


# =========================================================================== DNA


def _junk_padded(length: int, junk: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens (1, 20) drawn with seed ``length``, a copy whose padding (from ``length`` on) is ``junk``, and
    lengths (1,): the two must give a model the same output."""
    tokens = torch.randint(0, 4, (1, 20), generator=torch.Generator().manual_seed(length))
    other = tokens.clone()
    other[0, length:] = torch.tensor(junk[length:])  # change only the padding
    return tokens, other, torch.tensor([length])


def test_motif_data_is_seeded_and_obeys_the_rule() -> None:
    a, b = sq.planted_motif_sequences(120, 60, seed=3), sq.planted_motif_sequences(120, 60, seed=3)
    c = sq.planted_motif_sequences(120, 60, seed=4)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    assert a.tokens.shape == (120, 60) and a.labels.tolist() == [1, 0] * 60
    found = sq.motif_matches(a.tokens, "TATAAT", 1)
    for n in range(120):
        if a.labels[n] == 1:
            assert found[n] == [int(a.starts[n])]  # one copy, where it was planted
        else:
            assert found[n] == []
    exact = sum(len(f) for f in sq.motif_matches(a.tokens[a.labels == 1], "TATAAT", 0))
    assert 0.3 * 60 < exact < 0.7 * 60  # about half the copies are exact


def test_decoys_carry_the_motifs_letters() -> None:
    data = sq.planted_motif_sequences(200, 40, seed=1)
    idx = data.starts[:, None] + torch.arange(6)
    planted = torch.gather(data.tokens, 1, idx)  # (N, 6)
    # an exact copy has 3 A and 3 T; a changed one differs in one base: so has 2..4 of each
    for letter in (0, 3):
        counts = (planted == letter).sum(1)
        assert counts.min() >= 2 and counts.max() <= 4
    a_count = (planted == 0).sum(1).float()  # decoys are shuffled copies: same letters on average
    assert abs(float(a_count[data.labels == 0].mean() - a_count[data.labels == 1].mean())) < 0.2


def test_one_hot_and_kmer_counts() -> None:
    tokens = torch.tensor([[0, 1, 2, 3, 3], [3, 3, 3, 0, 1]])
    x = sq.one_hot_dna(tokens, torch.tensor([5, 3]))
    assert x.shape == (2, 5, 4) and x[1, 3:].abs().sum() == 0 and x[0].sum() == 5
    c1 = sq.kmer_counts(tokens, 1)
    assert c1.tolist() == [[1, 1, 1, 2], [1, 1, 0, 3]]
    c2 = sq.kmer_counts(tokens, 2)
    assert c2.shape == (2, 16) and c2.sum(1).tolist() == [4, 4]
    assert c2[1, 3 * 4 + 3] == 2  # "TT" twice
    with pytest.raises(ValueError, match="0..3"):
        sq.one_hot_dna(torch.tensor([[0, 4]]))
    with pytest.raises(ValueError, match="no 6-mers"):
        sq.kmer_counts(tokens, 6)


def test_logistic_regression_fits_a_separable_rule() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g)
    y = (x[:, 0] - 2 * x[:, 2] > 0).long()
    predict = sq.fit_logistic_regression(x, y)
    assert ((predict(x) > 0.5).long() == y).float().mean() > 0.97
    with pytest.raises(ValueError, match="n_features=3"):
        predict(torch.randn(5, 4))


def test_attention_pooling_matches_torch_and_ignores_padding() -> None:
    torch.manual_seed(0)
    pool = sq.AttentionPooling(8, 6, 5)
    h, lengths = torch.randn(3, 10, 8), torch.tensor([10, 4, 1])
    pooled, weights = pool(h, lengths)
    keep = torch.arange(10)[None] < lengths[:, None]  # (B, T)
    assert torch.allclose(weights.sum(-1), torch.ones(3), atol=1e-6)
    assert (weights[~keep] == 0).all() and weights[2, 0] == 1
    q = pool.query.detach().expand(3, 1, 6)
    theirs = F.scaled_dot_product_attention(q, pool.key(h), pool.value(h), attn_mask=keep[:, None, :])
    assert torch.allclose(pooled, theirs[:, 0], atol=1e-6)


@given(st.integers(6, 20), st.lists(st.integers(0, 3), min_size=20, max_size=20))
@settings(max_examples=30)
def test_motif_classifier_is_blind_to_padding(length: int, junk: list[int]) -> None:
    torch.manual_seed(1)
    model = sq.MotifAttentionClassifier(channels=4, kernel_size=5, d_k=4)
    tokens, other, lengths = _junk_padded(length, junk)
    with torch.no_grad():
        logit_a, w_a = model(tokens, lengths)
        logit_b, w_b = model(other, lengths)
        logit_c, w_c = model(tokens[:, :length])  # the unpadded sequence
    assert torch.allclose(logit_a, logit_b, atol=1e-6) and torch.allclose(logit_a, logit_c, atol=1e-5)
    assert (w_a[0, length:] == 0).all() and torch.allclose(w_a[0, :length], w_c[0], atol=1e-6)


def test_motif_classifier_shapes_and_errors() -> None:
    model = sq.MotifAttentionClassifier()
    logits, weights = model(torch.randint(0, 4, (5, 30)))
    assert logits.shape == (5,) and weights.shape == (5, 30)
    assert torch.allclose(weights.sum(-1), torch.ones(5), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.randint(0, 4, (30,)))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randint(0, 4, (2, 30)), torch.tensor([3]))
    with pytest.raises(ValueError, match="odd"):
        sq.MotifAttentionClassifier(kernel_size=6)
    with pytest.raises(ValueError, match="A, C, G, T|ACGT"):
        sq.planted_motif_sequences(4, 40, "TATAXT")


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
    tokens, other, lengths = _junk_padded(length, junk)
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


# =========================================================================== recommendation


def test_purchase_histories_are_seeded_and_obey_the_rules() -> None:
    a, b = sq.purchase_histories(150, 20, seed=2), sq.purchase_histories(150, 20, seed=2)
    assert torch.equal(a.items, b.items) and not torch.equal(a.items, sq.purchase_histories(150, 20, seed=3).items)
    P, F_ = a.num_products, a.num_everyday
    assert len(a.names) == a.num_items == 2 * P + F_ and a.names[P + 3] == "A3"
    items, trigger = a.items, a.trigger
    is_accessory = (items >= P) & (items < 2 * P)
    assert torch.equal(is_accessory, trigger >= 0)  # every accessory, and only accessories, has a trigger
    u, t = torch.nonzero(is_accessory, as_tuple=True)
    assert torch.equal(items[u, trigger[u, t]], items[u, t] - P)  # it follows its own product
    delay = t - trigger[u, t]
    assert delay.min() >= 1 and delay.max() <= 6 and len(set(delay.tolist())) == 6
    for n in range(150):
        products = [j for j in range(20) if items[n, j] < P]
        assert len(products) == len(set(items[n, products].tolist()))  # a product is bought once per user
        for j, k in zip(products, products[1:]):  # one product waits at a time: j's accessory comes before k
            assert (trigger[n, j + 1: k] == j).any()


def test_purchase_histories_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="delays"):
        sq.purchase_histories(3, delays=(0, 4))
    with pytest.raises(ValueError, match="product_rate"):
        sq.purchase_histories(3, product_rate=1.5)


def _later_items_changed(items: torch.Tensor, num_items: int = 30, start: int = 7) -> torch.Tensor:
    """A copy of ``items`` whose purchases from ``start`` on are other items: a causal model's scores before
    ``start`` must not change."""
    changed = items.clone()
    changed[:, start:] = (changed[:, start:] + 1) % num_items
    return changed


def _model(seed: int = 0) -> sq.NextItemTransformer:
    torch.manual_seed(seed)
    return sq.NextItemTransformer(30, 12, d_model=16, num_heads=2, d_ff=24)


def test_next_item_model_is_causal_and_masks_padding() -> None:
    model = _model()
    items = torch.randint(0, 30, (3, 12))
    scores, weights = model(items)
    assert scores.shape == (3, 12, 30) and weights.shape == (3, 2, 12, 12)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 2, 12), atol=1e-6)
    assert (weights.triu(1) == 0).all()  # no query sees a later purchase
    scores_changed, _ = model(_later_items_changed(items))
    assert torch.allclose(scores[:, :7], scores_changed[:, :7], atol=1e-6)
    _, w_pad = model(items, torch.tensor([12, 5, 1]))
    assert (w_pad[1, :, :, 5:] == 0).all() and (w_pad[2, :, :, 1:] == 0).all()


def test_next_item_model_matches_torch_encoder_layer() -> None:
    model = _model(1)
    theirs = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.0, batch_first=True, norm_first=True)
    theirs.train()  # dropout 0; PyTorch's reference path, not the fused kernel
    model.block = EncoderLayer.from_torch(theirs)
    items = torch.randint(0, 30, (4, 9))
    with torch.no_grad():
        ours, _ = model(items)
        x = model.item_embedding(items) + model.position.embedding.weight[:9]
        h = theirs(x, src_mask=~causal_mask(9))  # PyTorch: True = may NOT attend
        expected = model.norm(h) @ model.item_embedding.weight.T
    assert torch.allclose(ours, expected, atol=1e-5)


def test_next_item_model_rejects_bad_input() -> None:
    model = _model()
    with pytest.raises(ValueError, match="0..29"):
        model(torch.tensor([[0, 30]]))
    with pytest.raises(ValueError, match="max_length=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 3))


def test_popularity_markov_and_hit_rate() -> None:
    train = torch.tensor([[0, 1, 2, 1], [2, 1, 2, 0]])
    assert sq.popularity_scores(train, 4).tolist() == [2, 3, 3, 0]
    markov = sq.markov_scores(train, 4)
    assert markov.shape == (4, 4)
    assert markov[1].argmax() == 2 and float(markov[1, 2]) == pytest.approx(2 + 3e-3)  # 1 -> 2 twice, plus 1e-3 x popularity 3
    assert markov[3].argmax() in (1, 2)  # never seen: popularity breaks the tie
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.1, 0.2]])
    assert sq.hit_rate_at_k(scores, torch.tensor([1, 2]), 1) == 0.5
    assert sq.hit_rate_at_k(scores, torch.tensor([1, 2]), 2) == 1.0
    with pytest.raises(ValueError, match="exceeds"):
        sq.hit_rate_at_k(scores, torch.tensor([1, 2]), 4)


# =========================================================================== recommendation: GRU


def test_next_item_gru_is_causal() -> None:
    torch.manual_seed(0)
    model = sq.NextItemGRU(30, d_model=16)
    items = torch.randint(0, 30, (3, 12))
    changed = _later_items_changed(items)
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
