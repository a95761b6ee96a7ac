"""The Transformer's pieces against PyTorch's own layers, and the whole model's invariants.

``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` with copied
weights must give our layers' outputs, post-norm and pre-norm, with padding
and causal masks (PyTorch's masks mean True = may *not* attend).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attention_course import causal_mask, padding_mask
from attention_course.data import make_batch, toy_translation, toy_translation_vocabs
from attention_course.seq2seq import token_accuracy, train
from attention_course.transformer import DecoderLayer, EncoderLayer, Transformer, greedy_decode

TOL = {torch.float32: dict(atol=2e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-10)}


def _randomise_biases(layer: nn.Module, seed: int) -> None:
    """PyTorch starts biases and layer-norm parameters at 0 and 1: make every one of them matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.copy_(p + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_encoder_layer_matches_torch(dtype, norm_first, with_padding) -> None:
    torch.manual_seed(3)
    B, S, D, H, F = 3, 7, 16, 4, 24
    theirs = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=dtype)
    _randomise_biases(theirs, 4)
    theirs.train()  # train mode with dropout 0: PyTorch's reference path, not the fused inference kernel
    ours = EncoderLayer.from_torch(theirs)
    x = torch.randn(B, S, D, dtype=dtype)
    lengths = torch.tensor([7, 4, 1]) if with_padding else torch.full((B,), S)
    keep = padding_mask(lengths, S)  # (B, S), True = real token
    out_theirs = theirs(x, src_key_padding_mask=~keep if with_padding else None)
    out_ours, weights = ours(x, keep[:, None, :])
    real = keep[..., None].expand_as(out_ours)  # compare real tokens (PyTorch may zero padded ones)
    torch.testing.assert_close(out_ours[real], out_theirs[real], **TOL[dtype])
    assert weights.shape == (B, H, S, S)
    assert torch.all(weights.masked_select(~keep[:, None, None, :].expand_as(weights)) == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(dtype, norm_first) -> None:
    torch.manual_seed(5)
    B, T, S, D, H, F = 2, 5, 6, 16, 2, 32
    theirs = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=dtype)
    _randomise_biases(theirs, 6)
    ours = DecoderLayer.from_torch(theirs)
    y, memory = torch.randn(B, T, D, dtype=dtype), torch.randn(B, S, D, dtype=dtype)
    src_keep = padding_mask(torch.tensor([6, 3]), S)  # (B, S)
    out_theirs = theirs(y, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=~src_keep)
    out_ours, self_w, cross_w = ours(y, memory, causal_mask(T), src_keep[:, None, :])
    torch.testing.assert_close(out_ours, out_theirs, **TOL[dtype])
    assert self_w.shape == (B, H, T, T) and cross_w.shape == (B, H, T, S)
    assert torch.all(self_w.triu(1) == 0)  # no query reads a later target token
    assert torch.all(cross_w[1, :, :, 3:] == 0)  # nor a padded source token


def test_from_torch_rejects_other_activations_and_layouts() -> None:
    with pytest.raises(ValueError, match="activation='relu' and batch_first=True"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True))
    with pytest.raises(ValueError, match="activation='relu' and batch_first=True"):
        DecoderLayer.from_torch(nn.TransformerDecoderLayer(8, 2, 16))  # sequence-first


def test_layer_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="d_ff must be a positive int"):
        EncoderLayer(8, 2, 0)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        DecoderLayer(10, 4, 16)
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        Transformer(10, 10, num_layers=0)


def _model_and_batch(norm_first: bool = False):
    torch.manual_seed(0)
    src_vocab, tgt_vocab = toy_translation_vocabs()
    pairs = toy_translation(6, 4, 9, seed=1)
    model = Transformer(len(src_vocab), len(tgt_vocab), d_model=32, num_heads=4, d_ff=64, num_layers=2,
                        norm_first=norm_first).eval()
    return model, make_batch(pairs, src_vocab, tgt_vocab), src_vocab, tgt_vocab, pairs


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_shapes_and_causality(norm_first) -> None:
    model, batch, *_ = _model_and_batch(norm_first)
    B, S = batch.src.shape
    T = batch.tgt_in.shape[1]
    with torch.no_grad():
        logits, maps = model(batch.src, batch.src_lengths, batch.tgt_in)
        assert logits.shape == (B, T, model.output.out_features)
        assert [w.shape for w in maps["encoder"]] == [(B, 4, S, S)] * 2
        assert [w.shape for w in maps["decoder_cross"]] == [(B, 4, T, S)] * 2
        changed = batch.tgt_in.clone()
        changed[:, -1] = 3  # a different last target token
        logits_changed, _ = model(batch.src, batch.src_lengths, changed)
    torch.testing.assert_close(logits_changed[:, :-1], logits[:, :-1])  # earlier positions cannot see it


def test_source_padding_changes_nothing() -> None:
    model, batch, *_ = _model_and_batch()
    padded = torch.cat([batch.src, torch.zeros(batch.src.shape[0], 3, dtype=torch.long)], dim=1)  # 3 more pads
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        logits_padded, maps = model(padded, batch.src_lengths, batch.tgt_in)
    torch.testing.assert_close(logits_padded, logits, atol=1e-5, rtol=1e-5)
    assert torch.all(maps["decoder_cross"][0][..., -3:] == 0)


def test_greedy_decode_agrees_with_teacher_forcing_on_its_own_output() -> None:
    model, batch, src_vocab, tgt_vocab, pairs = _model_and_batch()
    ids, weights = greedy_decode(model, batch.src, batch.src_lengths, max_len=8)
    assert ids.shape[0] == batch.src.shape[0] and ids.shape[1] <= 8
    assert weights.shape == (ids.shape[0], ids.shape[1], batch.src.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    fed = torch.cat([torch.full((ids.shape[0], 1), 1), ids[:, :-1]], dim=1)  # <bos> + its own predictions
    alive = torch.ones_like(ids, dtype=torch.bool)
    alive[:, 1:] = (ids[:, :-1] != 2).cummin(dim=1).values  # up to and including each <eos>
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_lengths, torch.where(alive, fed, 0))
    assert torch.equal(logits.argmax(-1)[alive], ids[alive])


def test_seq2seq_train_and_token_accuracy_work_for_the_transformer() -> None:
    model, batch, src_vocab, tgt_vocab, pairs = _model_and_batch(norm_first=True)
    history = train(model, iter([batch] * 30), 30, lr=3e-3, warmup=5, progress=False)
    assert len(history["loss"]) == 30 and history["loss"][-1] < history["loss"][0]
    acc = token_accuracy(model, pairs, src_vocab, tgt_vocab, decode=greedy_decode)
    assert 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match="warmup must be a non-negative int"):
        train(model, iter([batch]), 1, warmup=-1, progress=False)
