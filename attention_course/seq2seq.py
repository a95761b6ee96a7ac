r"""Recurrent encoder–decoder (seq2seq) models, with and without attention.

- :class:`Encoder`: embedding + GRU over the source; returns every state
  :math:`h_1..h_S` (B, S, D) and the final one :math:`h_S` (B, D), D the
  recurrent state's width (``hidden_size``).
- :class:`Decoder`: a GRU cell that produces the target one token at a time.
  Without attention (``score=None``) every step sees the same fixed context
  :math:`c = h_S` (Cho et al. 2014). With attention (any scoring module from
  :mod:`attention_course.scores`) step t computes its own context from the
  previous decoder state, as in Bahdanau et al. 2014:

  .. math:: e_{ti} = \mathrm{score}(s_{t-1}, h_i),\quad a_{t\cdot} = \mathrm{softmax}(e_{t\cdot}),\quad c_t = \sum_i a_{ti} h_i

  Everything else is identical, so a comparison isolates the context.
- :func:`greedy_decode`: autoregressive decoding, feeding back the argmax.
- :func:`train`: teacher forcing, Adam, gradient clipping, a tqdm progress bar.
- :func:`token_accuracy` and :func:`accuracy_by_length`: greedy-decoding accuracy.

Shapes: B batch, S source length, T target length, D state width, Emb
embedding width, ``vocab_size`` the target vocabulary (``len(tgt_vocab)``).
Taught in chapters 1 (the bottleneck) and 2 (soft attention).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import attend
from .data import Batch, Pair, Vocab, make_batch
from .masks import padding_mask
from .scores import make_score

__all__ = [
    "Encoder", "Decoder", "Seq2Seq", "make_seq2seq", "greedy_decode", "train",
    "token_accuracy", "accuracy_by_length", "source_gradient_norms", "alignment_accuracy",
]


class Encoder(nn.Module):
    """Embedding + one-layer GRU, batch-first, padding-aware.

    ``forward(src (B, S), lengths (B,))`` -> states (B, S, D) (zero at padding)
    and the final state (B, D) at each sequence's last real token. Pass
    ``embedded`` (B, S, Emb) to run on given embeddings (to take gradients
    with respect to each input position, chapter 1).
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.gru = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.hidden_size = hidden_size

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor, embedded: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if src.dim() != 2 or lengths.shape != (src.shape[0],):
            raise ValueError(f"src must be (B, S) and lengths (B,), got {tuple(src.shape)} and {tuple(lengths.shape)}")
        B, S = src.shape
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > S):
            raise ValueError(f"lengths must lie in 1..S={S}, got min {int(lengths.min())} and max {int(lengths.max())}")
        x = self.embedding(src) if embedded is None else embedded  # (B, S, Emb)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.gru(packed)  # h: (1, B, D)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, D)
        return states, h[-1]  # (B, S, D), (B, D)


class Decoder(nn.Module):
    r"""GRU decoder with a fixed context (``score=None``) or attention (a scoring module).

    Step t: context :math:`c_t` (fixed, or attention over the encoder states with
    the previous state :math:`s_{t-1}` as the query); new state
    :math:`s_t = \mathrm{GRU}([y_{t-1}; c_t], s_{t-1})`; logits from
    :math:`[s_t; c_t; y_{t-1}]`. The initial state is :math:`s_0 = \tanh(h_S W_\text{init} + b)`
    (row vectors; ``self.init.weight`` is :math:`W_\text{init}^\top`, as ``nn.Linear`` stores it).
    States are (B, D); ``context_size`` is the encoder's state width, D in
    :func:`make_seq2seq`, which gives both the same ``hidden_size``.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, context_size: int,
                 score: nn.Module | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.init = nn.Linear(context_size, hidden_size)
        self.cell = nn.GRUCell(embed_size + context_size, hidden_size)
        self.out = nn.Linear(hidden_size + context_size + embed_size, vocab_size)
        self.score = score

    @property
    def uses_attention(self) -> bool:
        return self.score is not None

    def initial_state(self, final: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.init(final))  # (B, D)

    def step(
        self, y_prev: torch.Tensor, state: torch.Tensor, enc_states: torch.Tensor, final: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One step: y_prev (B,), state (B, D) -> logits (B, vocab_size), new state (B, D), weights (B, S) or None."""
        e = self.embedding(y_prev)  # (B, Emb)
        if self.score is None:
            context, weights = final, None  # the same c at every step
        else:
            scores = self.score(state[:, None, :], enc_states)  # (B, 1, S)
            context, weights = attend(scores, enc_states, mask[:, None, :])  # (B, 1, D), (B, 1, S)
            context, weights = context[:, 0], weights[:, 0]  # (B, D), (B, S)
        state = self.cell(torch.cat([e, context], dim=-1), state)  # (B, D)
        logits = self.out(torch.cat([state, context, e], dim=-1))  # (B, vocab_size)
        return logits, state, weights


class Seq2Seq(nn.Module):
    """An :class:`Encoder` and a :class:`Decoder`; ``forward`` runs teacher-forced training steps."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor, embedded: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing: logits (B, T, vocab_size) for every target step, and weights (B, T, S) or None."""
        enc_states, final = self.encoder(src, lengths, embedded)  # (B, S, D), (B, D)
        mask = padding_mask(lengths, src.shape[1])  # (B, S)
        state = self.decoder.initial_state(final)  # (B, D)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, w = self.decoder.step(tgt_in[:, t], state, enc_states, final, mask)
            logits.append(step_logits)
            weights.append(w)
        all_weights = torch.stack(weights, dim=1) if self.decoder.uses_attention else None  # (B, T, S)
        return torch.stack(logits, dim=1), all_weights  # (B, T, vocab_size)


def make_seq2seq(src_vocab: Vocab, tgt_vocab: Vocab, *, attention: str | None, embed_size: int = 32,
                 hidden_size: int = 64, attention_size: int | None = None) -> Seq2Seq:
    """A GRU seq2seq model; ``attention`` is a rule of :data:`~attention_course.scores.SCORE_RULES` or None."""
    encoder = Encoder(len(src_vocab), embed_size, hidden_size)
    score = None if attention is None else make_score(attention, hidden_size, hidden_size, attention_size)
    decoder = Decoder(len(tgt_vocab), embed_size, hidden_size, hidden_size, score)
    return Seq2Seq(encoder, decoder)


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, max_len: int,
                  bos_id: int = 1, eos_id: int = 2) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Autoregressive decoding: each step feeds back its own argmax prediction.

    Returns ids (B, T) with T <= ``max_len`` (positions after a sequence's
    ``<eos>`` are padding, 0) and the weights (B, T, S) or None.
    """
    was_training = model.training
    model.eval()
    enc_states, final = model.encoder(src, lengths)
    mask = padding_mask(lengths, src.shape[1])  # (B, S)
    state = model.decoder.initial_state(final)
    B = src.shape[0]
    y = torch.full((B,), bos_id, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    ids, weights = [], []
    for _ in range(max_len):
        logits, state, w = model.decoder.step(y, state, enc_states, final, mask)
        y = logits.argmax(dim=-1)  # (B,)
        ids.append(torch.where(done, torch.zeros_like(y), y))
        weights.append(w)
        done |= y == eos_id
        if done.all():
            break
    model.train(was_training)
    all_weights = torch.stack(weights, dim=1) if model.decoder.uses_attention else None
    return torch.stack(ids, dim=1), all_weights


def train(model: nn.Module, data: Iterator[Batch], steps: int, *, lr: float = 3e-3, clip: float = 1.0,
          warmup: int = 0, decay: bool = False, desc: str = "training",
          progress: bool = True) -> dict[str, list[float] | float]:
    """Teacher-forced cross-entropy (padding ignored) with Adam and gradient clipping.

    ``model(src, src_lengths, tgt_in)`` must return ``(logits (B, T, vocab_size), anything)``:
    a :class:`Seq2Seq` or an :class:`attention_course.transformer.Transformer`.
    ``warmup`` > 0 raises the learning rate linearly from ``lr / warmup`` to
    ``lr`` over the first ``warmup`` steps (0: constant ``lr``).
    ``decay=True`` then lowers it along a half cosine to ``lr / 10`` at the
    last step (Loshchilov & Hutter's schedule without restarts): small
    late steps let a model settle instead of hopping around a minimum.

    Returns ``{"loss": [...], "lr": [...], "seconds": wall time}``, the loss
    and the learning rate of each step.
    """
    from tqdm.auto import tqdm

    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    if not isinstance(decay, bool):
        raise ValueError(f"decay must be True or False, got {decay!r}")

    def factor(step: int) -> float:
        """The learning rate at ``step``, as a fraction of ``lr``."""
        if step < warmup:
            return (step + 1) / warmup
        if not decay or steps - 1 <= warmup:
            return 1.0
        progress = (step - warmup) / (steps - 1 - warmup)   # 0 → 1
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    losses, rates = [], []
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for _ in bar:
        batch = next(data)
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, vocab_size)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return {"loss": losses, "lr": rates, "seconds": time.perf_counter() - start}


def _correct_tokens(model: nn.Module, pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab,
                    decode: Callable) -> tuple[int, int]:
    batch = make_batch(pairs, src_vocab, tgt_vocab)
    T = batch.tgt_out.shape[1]
    ids, _ = decode(model, batch.src, batch.src_lengths, max_len=T, bos_id=tgt_vocab.bos_id, eos_id=tgt_vocab.eos_id)
    pred = torch.zeros_like(batch.tgt_out)
    pred[:, : ids.shape[1]] = ids[:, :T]
    real = batch.tgt_out != 0  # target tokens and <eos>
    return int(((pred == batch.tgt_out) & real).sum()), int(real.sum())


def token_accuracy(model: nn.Module, pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab,
                   batch_size: int = 256, *, decode: Callable | None = None) -> float:
    """Share of reference tokens (and the final ``<eos>``) that greedy decoding reproduces in place.

    ``decode`` is the greedy decoder for ``model``: :func:`greedy_decode` (the
    default, for :class:`Seq2Seq`) or :func:`attention_course.transformer.greedy_decode`.
    """
    decode = greedy_decode if decode is None else decode
    correct = total = 0
    for i in range(0, len(pairs), batch_size):
        c, n = _correct_tokens(model, pairs[i : i + batch_size], src_vocab, tgt_vocab, decode)
        correct, total = correct + c, total + n
    return correct / total


def accuracy_by_length(model: nn.Module, buckets: dict[tuple[int, int], list[Pair]], src_vocab: Vocab,
                       tgt_vocab: Vocab, *, decode: Callable | None = None) -> dict[tuple[int, int], float]:
    """:func:`token_accuracy` for each length bucket (see :func:`attention_course.data.length_buckets`)."""
    return {b: token_accuracy(model, pairs, src_vocab, tgt_vocab, decode=decode)
            for b, pairs in buckets.items() if pairs}


def source_gradient_norms(model: Seq2Seq, batch: Batch) -> torch.Tensor:
    r"""How much gradient reaches each source position: mean over the batch of
    :math:`\lVert \partial \mathcal{L} / \partial x_i \rVert`, with :math:`x_i` the embedding of source word i.

    Teacher-forced cross-entropy on ``batch``; returns (S,). The model's own
    parameter gradients are left untouched.
    """
    was_training = model.training
    model.train()
    embedded = model.encoder.embedding(batch.src).detach().requires_grad_(True)  # (B, S, Emb)
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in, embedded=embedded)  # (B, T, vocab_size)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1), ignore_index=0)
    (grad,) = torch.autograd.grad(loss, embedded)  # (B, S, Emb)
    model.train(was_training)
    real = padding_mask(batch.src_lengths, batch.src.shape[1])  # (B, S)
    norms = grad.norm(dim=-1) * real  # (B, S)
    return norms.sum(0) / real.sum(0).clamp_min(1)  # (S,)


def alignment_accuracy(weights: torch.Tensor, alignment: Sequence[int]) -> float:
    """Share of target steps whose most-attended source position is the true one.

    weights (T', S) for one sentence (T' >= len(alignment); extra steps, such as
    the one producing ``<eos>``, are ignored); alignment: the source position of
    each target token.
    """
    T = len(alignment)
    if weights.dim() != 2 or weights.shape[0] < T:
        raise ValueError(f"weights must be (T, S) with T >= {T}, got {tuple(weights.shape)}")
    return float((weights[:T].argmax(dim=-1) == torch.as_tensor(alignment)).float().mean())
