"""The induction-head experiment of chapter 9 (``attention_course.induction``): data, model, measures."""

from __future__ import annotations

import math

import pytest
import torch

from attention_course import induction, lm


def test_repeat_batch_repeats_the_first_period_and_marks_the_predictable_targets():
    g = torch.Generator().manual_seed(0)
    ids, keep = induction.repeat_batch(50, 33, 32, 8, 16, g)
    assert ids.shape == (50, 33) and keep.shape == (50, 32) and keep.dtype == torch.bool
    for row, mask in zip(ids, keep):
        targets = torch.nonzero(mask).flatten() + 1  # positions s of the kept targets ids[s]
        P = int(targets[0]) - 1  # the first kept target is s = P + 1
        assert 8 <= P <= 16 and targets.tolist() == list(range(P + 1, 2 * P))
        assert torch.equal(row[P:2 * P], row[:P])  # the second copy is the first
    assert ids.min() >= 0 and ids.max() < 32


def test_repeat_batch_draws_different_periods_and_is_reproducible():
    a = induction.repeat_batch(64, 33, 32, 8, 16, torch.Generator().manual_seed(1))
    b = induction.repeat_batch(64, 33, 32, 8, 16, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    periods = {int(torch.nonzero(m)[0]) for m in a[1]}  # first kept index = P
    assert len(periods) > 5


@pytest.mark.parametrize("args, match", [
    ((4, 20, 32, 8, 12), "2 \\* max_period <= length"),
    ((4, 40, 32, 9, 8), "min_period <= max_period"),
    ((4, 40, 32, 1, 8), "2 <= min_period"),
    ((0, 40, 32, 4, 8), "batch_size"),
])
def test_repeat_batch_rejects_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        induction.repeat_batch(*args, torch.Generator())


def test_repeated_sequences_are_two_equal_halves():
    ids = induction.repeated_sequences(10, 6, 20, seed=3)
    assert ids.shape == (10, 12) and torch.equal(ids[:, :6], ids[:, 6:])
    assert torch.equal(ids, induction.repeated_sequences(10, 6, 20, seed=3))


def test_attention_only_layers_add_nothing_but_attention():
    torch.manual_seed(0)
    model = induction.attention_only(16, d_model=16, num_heads=2, num_layers=2, context=12)
    x = torch.randn(3, 12, 16)
    for layer in model.layers:
        assert torch.equal(layer.feed_forward(x), torch.zeros_like(x))
    ids = torch.randint(0, 16, (3, 12))
    logits, weights = model(ids)
    assert logits.shape == (3, 12, 16) and len(weights) == 2 and weights[0].shape == (3, 2, 12, 12)


def _perfect_circuit_weights(period: int) -> list[torch.Tensor]:
    """Hand-made weights: layer 1 looks one back, layer 2 at t - P + 1 in the second copy."""
    T = 2 * period
    prev = torch.zeros(1, 1, T, T)
    prev[0, 0, 0, 0] = 1
    prev[0, 0, torch.arange(1, T), torch.arange(T - 1)] = 1
    ind = prev.clone()
    t = torch.arange(period, T)
    ind[0, 0, t] = 0
    ind[0, 0, t, t - period + 1] = 1
    return [prev, ind]


def test_head_scores_read_a_hand_made_circuit(monkeypatch):
    period = 5
    model = induction.attention_only(8, d_model=8, num_heads=1, num_layers=2, context=10)
    weights = _perfect_circuit_weights(period)
    monkeypatch.setattr(model, "forward", lambda ids: (None, weights))
    prev, ind = induction.head_scores(model, induction.repeated_sequences(1, period, 8), period)
    assert prev.shape == ind.shape == (2, 1)
    assert prev[0, 0] == pytest.approx(1.0) and ind[1, 0] == pytest.approx(1.0)
    assert ind[0, 0] < 0.3


def test_copy_losses_split_the_targets_at_the_period():
    torch.manual_seed(0)
    model = induction.attention_only(8, d_model=8, num_heads=1, num_layers=1, context=10)
    ids = induction.repeated_sequences(4, 5, 8)
    first, second = induction.copy_losses(model, ids, 5)
    per_target = lm.position_losses(model, ids)  # (4, 9)
    assert first == pytest.approx(per_target[:, :4].mean().item())
    assert second == pytest.approx(per_target[:, 5:].mean().item())
    with pytest.raises(ValueError, match=r"\(B, 2 \* period\)"):
        induction.copy_losses(model, ids, 4)


def test_ablate_head_zeroes_one_head_and_restores_the_model():
    torch.manual_seed(0)
    model = induction.attention_only(10, d_model=8, num_heads=2, num_layers=2, context=10).eval()
    ids = torch.randint(0, 10, (2, 10))
    seen = {}
    attn = model.layers[1].self_attn

    def record(module, inputs, output):  # returns None: the output is kept
        seen.setdefault("in", inputs[0].clone())

    handle = attn.out_proj.register_forward_hook(record)
    with torch.no_grad():
        before, _ = model(ids)
        seen.clear()
        with induction.ablate_head(model, 1, 1):
            during, _ = model(ids)
        after, _ = model(ids)
    handle.remove()
    assert torch.equal(seen["in"][..., 4:], torch.zeros_like(seen["in"][..., 4:]))  # head 1: features 4..7
    assert seen["in"][..., :4].abs().sum() > 0  # head 0 untouched
    assert not torch.allclose(before, during) and torch.equal(before, after)
    with pytest.raises(ValueError, match="head must be in 0..1"):
        with induction.ablate_head(model, 1, 2):
            pass
    with pytest.raises(ValueError, match="layer must be in 0..1"):
        with induction.ablate_head(model, 2, 0):
            pass


def test_training_is_reproducible_and_lowers_the_loss_on_the_second_copy():
    def run():
        torch.manual_seed(0)
        model = induction.attention_only(16, d_model=16, context=16)
        out = induction.train_induction(model, 40, batch_size=16, min_period=4, max_period=8, seed=0, warmup=10,
                                        progress=False)
        return model, out

    (m1, r1), (_, r2) = run(), run()
    assert r1["loss"] == r2["loss"]
    assert sum(r1["loss"][-5:]) < sum(r1["loss"][:5])
    with pytest.raises(ValueError, match="probe"):
        induction.train_induction(m1, 10, warmup=5, every=5, progress=False)
    assert induction.chance_loss(32) == pytest.approx(math.log(32))
