r"""The Transformer of Vaswani et al. 2017, from this package's pieces.

- :class:`FeedForward`: the position-wise network :math:`\max(0, xW_1 + b_1)W_2 + b_2`.
- :class:`EncoderLayer`: self-attention, then feed-forward, each wrapped in a
  residual connection and a layer norm.
- :class:`DecoderLayer`: masked (causal) self-attention over the target so far,
  cross-attention to the encoder's output, then feed-forward.
- :class:`Transformer`: embeddings scaled by :math:`\sqrt{D}`, sinusoidal
  positions, :math:`N_\ell` encoder and :math:`N_\ell` decoder layers, a linear output layer.
- :func:`greedy_decode`: autoregressive decoding, one token at a time.

Where the layer norm goes is a choice, ``norm_first``:

.. math::
    \text{post-norm (the paper)}:\ x \leftarrow \mathrm{LN}(x + \mathrm{Sublayer}(x)) \qquad
    \text{pre-norm}:\ x \leftarrow x + \mathrm{Sublayer}(\mathrm{LN}(x))

Pre-norm leaves an identity path from input to output and adds a final layer
norm; most code today uses it because it trains stably without a warm-up
(chapter 8 measures the difference). There is no dropout: the toy tasks are
generated fresh, and equality with PyTorch's layers is checked in eval mode.

All batch-first; masks are bool, ``True`` = may attend. Taught in chapter 8.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .masks import causal_mask, padding_mask
from .multihead import MultiHeadAttention
from .positional import SinusoidalPositionalEncoding

__all__ = ["FeedForward", "EncoderLayer", "DecoderLayer", "Transformer", "greedy_decode"]


class FeedForward(nn.Module):
    """Position-wise feed-forward: Linear(D, F) -> ReLU -> Linear(F, D), applied to every token alike."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(torch.relu(self.linear1(x)))  # (B, T, D) -> (B, T, F) -> (B, T, D)


def _check_sizes(d_model: int, num_heads: int, d_ff: int) -> None:
    for name, n in (("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")


def _copy_linear(ours: nn.Linear, theirs: nn.Linear) -> None:
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    if ours.eps != theirs.eps:
        ours.eps = theirs.eps
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


def _check_torch_layer(layer: nn.Module, kind: str) -> None:
    relu = layer.activation is nn.functional.relu or isinstance(layer.activation, nn.ReLU)
    if not relu or not layer.self_attn.batch_first:
        raise ValueError(f"from_torch needs a {kind} with activation='relu' and batch_first=True")


class EncoderLayer(nn.Module):
    """Self-attention and feed-forward sublayers, each with a residual connection and a layer norm.

    ``forward(x (B, S, D), mask=None)`` returns the new x (B, S, D) and the
    self-attention weights (B, H, S, S). ``mask``: bool, True = may attend,
    (S, S) or (B, S, S), or (B, 1, S) to hide padding keys from every query.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, norm_first: bool = False) -> None:
        super().__init__()
        _check_sizes(d_model, num_heads, d_ff)
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.norm_first:
            h = self.norm1(x)
            attended, weights = self.self_attn(h, h, h, mask)  # (B, S, D), (B, H, S, S)
            x = x + attended
            x = x + self.feed_forward(self.norm2(x))
        else:
            attended, weights = self.self_attn(x, x, x, mask)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.feed_forward(x))
        return x, weights

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "EncoderLayer":
        """A copy of a batch-first ReLU ``torch.nn.TransformerEncoderLayer``'s weights in our layer."""
        _check_torch_layer(layer, "TransformerEncoderLayer")
        D, H = layer.self_attn.embed_dim, layer.self_attn.num_heads
        like = layer.linear1.weight
        ours = cls(D, H, layer.linear1.out_features, norm_first=layer.norm_first).to(like.dtype)
        ours.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        _copy_linear(ours.feed_forward.linear1, layer.linear1)
        _copy_linear(ours.feed_forward.linear2, layer.linear2)
        _copy_norm(ours.norm1, layer.norm1)
        _copy_norm(ours.norm2, layer.norm2)
        return ours


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder's output, feed-forward; each with residual and norm.

    ``forward(y (B, T, D), memory (B, S, D), self_mask=None, memory_mask=None)``
    returns the new y (B, T, D), the self-attention weights (B, H, T, T) and the
    cross-attention weights (B, H, T, S). ``self_mask`` is usually causal
    (T, T), combined with target padding; ``memory_mask`` hides source padding,
    e.g. (B, 1, S).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, norm_first: bool = False) -> None:
        super().__init__()
        _check_sizes(d_model, num_heads, d_ff)
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm_first = norm_first

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.norm_first:
            h = self.norm1(y)
            attended, self_weights = self.self_attn(h, h, h, self_mask)  # (B, T, D), (B, H, T, T)
            y = y + attended
            read, cross_weights = self.cross_attn(self.norm2(y), memory, memory, memory_mask)  # (B, H, T, S)
            y = y + read
            y = y + self.feed_forward(self.norm3(y))
        else:
            attended, self_weights = self.self_attn(y, y, y, self_mask)
            y = self.norm1(y + attended)
            read, cross_weights = self.cross_attn(y, memory, memory, memory_mask)
            y = self.norm2(y + read)
            y = self.norm3(y + self.feed_forward(y))
        return y, self_weights, cross_weights

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> "DecoderLayer":
        """A copy of a batch-first ReLU ``torch.nn.TransformerDecoderLayer``'s weights in our layer."""
        _check_torch_layer(layer, "TransformerDecoderLayer")
        D, H = layer.self_attn.embed_dim, layer.self_attn.num_heads
        like = layer.linear1.weight
        ours = cls(D, H, layer.linear1.out_features, norm_first=layer.norm_first).to(like.dtype)
        ours.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        ours.cross_attn = MultiHeadAttention.from_torch(layer.multihead_attn)
        _copy_linear(ours.feed_forward.linear1, layer.linear1)
        _copy_linear(ours.feed_forward.linear2, layer.linear2)
        for mine, theirs in ((ours.norm1, layer.norm1), (ours.norm2, layer.norm2), (ours.norm3, layer.norm3)):
            _copy_norm(mine, theirs)
        return ours


class Transformer(nn.Module):
    r"""Encoder–decoder Transformer for token sequences.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes; id 0 is padding.
        d_model: width D; num_heads: H; d_ff: feed-forward width F;
        num_layers: :math:`N_\ell` encoder and :math:`N_\ell` decoder layers;
        norm_first: pre-norm (True) or the paper's post-norm (False);
        max_positions: longest sequence the sinusoidal table covers.

    ``forward(src (B, S), src_lengths (B,), tgt_in (B, T))`` is the
    teacher-forced pass: logits (B, T, tgt_vocab_size) and a dict of attention
    weights per layer, ``{"encoder": [(B, H, S, S)...], "decoder_self":
    [(B, H, T, T)...], "decoder_cross": [(B, H, T, S)...]}``. Same call as
    :class:`attention_course.seq2seq.Seq2Seq`, so :func:`attention_course.seq2seq.train`
    trains either.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        d_ff: int = 128,
        num_layers: int = 2,
        norm_first: bool = False,
        max_positions: int = 128,
    ) -> None:
        super().__init__()
        _check_sizes(d_model, num_heads, d_ff)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        self.d_model, self.norm_first = d_model, norm_first
        self.src_embedding = nn.Embedding(src_vocab_size, d_model, padding_idx=0)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, d_model, padding_idx=0)
        for embedding in (self.src_embedding, self.tgt_embedding):
            # std D^-1/2, so that after the sqrt(D) scale a token vector has entries of size ~1,
            # like the positional encoding's, instead of drowning it (PyTorch's default is std 1)
            nn.init.normal_(embedding.weight, std=d_model**-0.5)
            with torch.no_grad():
                embedding.weight[0].zero_()
        self.positions = SinusoidalPositionalEncoding(max_positions, d_model)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, norm_first=norm_first) for _ in range(num_layers))
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff, norm_first=norm_first) for _ in range(num_layers))
        # pre-norm leaves the residual stream un-normalised: one last norm on each side
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        return self.positions(embedding(ids) * math.sqrt(self.d_model))  # (B, T, D)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Memory (B, S, D), the source key mask (B, 1, S) and the encoder weights per layer."""
        if src.dim() != 2 or src_lengths.shape != (src.shape[0],):
            raise ValueError(f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and "
                             f"{tuple(src_lengths.shape)}")
        key_mask = padding_mask(src_lengths, src.shape[1])[:, None, :]  # (B, 1, S): padding keys hidden
        x, weights = self._embed(self.src_embedding, src), []
        for layer in self.encoder_layers:
            x, w = layer(x, key_mask)
            weights.append(w)
        return self.encoder_norm(x), key_mask, weights

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
               ) -> tuple[torch.Tensor, list, list]:
        """Logits (B, T, tgt_vocab_size) at every target position; self- and cross-attention weights per layer."""
        T = tgt_in.shape[1]
        self_mask = causal_mask(T)[None] & (tgt_in != 0)[:, None, :]  # (B, T, T): earlier, non-padding tokens
        y, self_weights, cross_weights = self._embed(self.tgt_embedding, tgt_in), [], []
        for layer in self.decoder_layers:
            y, ws, wc = layer(y, memory, self_mask, memory_mask)
            self_weights.append(ws)
            cross_weights.append(wc)
        return self.output(self.decoder_norm(y)), self_weights, cross_weights

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        memory, memory_mask, enc_weights = self.encode(src, src_lengths)
        logits, self_weights, cross_weights = self.decode(tgt_in, memory, memory_mask)
        return logits, {"encoder": enc_weights, "decoder_self": self_weights, "decoder_cross": cross_weights}


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, lengths: torch.Tensor, max_len: int,
                  bos_id: int = 1, eos_id: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Autoregressive decoding: encode once, then feed back each step's argmax.

    Returns ids (B, T) with T <= ``max_len`` (padding, 0, after a sequence's
    ``<eos>``) and the last decoder layer's cross-attention weights averaged
    over heads, (B, T, S). Same signature as
    :func:`attention_course.seq2seq.greedy_decode`. Each step reruns the
    decoder over the whole prefix; chapter 11's KV cache avoids that.
    """
    was_training = model.training
    model.eval()
    memory, memory_mask, _ = model.encode(src, lengths)
    B = src.shape[0]
    tokens = torch.full((B, 1), bos_id, dtype=torch.long)  # (B, 1): <bos>
    done = torch.zeros(B, dtype=torch.bool)
    ids = []
    for _ in range(max_len):
        logits, _, cross = model.decode(tokens, memory, memory_mask)  # (B, t, tgt_vocab_size), t tokens so far
        y = logits[:, -1].argmax(dim=-1)  # (B,)
        ids.append(torch.where(done, torch.zeros_like(y), y))
        done |= y == eos_id
        tokens = torch.cat([tokens, y[:, None]], dim=1)
        if done.all():
            break
    model.train(was_training)
    weights = cross[-1].mean(dim=1)  # (B, T, S): the last step saw every earlier one
    return torch.stack(ids, dim=1), weights
