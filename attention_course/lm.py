r"""A character-level language model from attention: data, model, training, baselines, sampling, heads.

A **causal (decoder-only) language model** predicts every character from the
characters before it. Given a text :math:`x_1, \dots, x_N`, it is trained to
minimise the average negative log-likelihood

.. math::
    \mathcal{L} = -\frac{1}{N - 1} \sum_{t=1}^{N-1} \log p_\theta(x_{t+1} \mid x_{\le t}),

in nats per character; divided by :math:`\ln 2` it is in **bits per character**
(the number of yes/no questions a code built on the model would need per
character). In code the targets are the inputs shifted by one: a window
``w`` of ``context + 1`` characters gives ``inputs = w[:-1]`` and
``targets = w[1:]``, and a causal mask makes position t see only ``inputs[:t+1]``.

- :class:`CharVocab`: the characters of a text, ``encode`` and ``decode``.
- :func:`split`, :func:`batches`: a train/validation split and random training windows.
- :class:`CharTransformerLM`: token embedding, positions, :math:`N_\ell` pre-norm
  :class:`~attention_course.transformer.EncoderLayer` blocks under a causal mask,
  a final layer norm and a linear read-out to the vocabulary.
- :func:`train_lm`, :func:`position_losses`, :func:`evaluate_bits_per_char`:
  AdamW for a fixed number of steps; the loss at every position; bits per
  character on held-out text.
- :func:`unigram_probs`, :func:`bigram_probs`, :func:`unigram_bits`,
  :func:`bigram_bits`, :func:`sample_bigram`: the baselines, add-alpha smoothed;
  :class:`KneserNey`: an n-gram model with interpolated Kneser–Ney smoothing.
- :func:`generate`: autoregressive sampling with
  :func:`attention_course.sampling.sample_next` (greedy, temperature, top-k, top-p).
- :func:`previous_token_score`, :func:`induction_score`: what a head's weights do.
- :func:`prefill`, :func:`decode_step`, :func:`generate_cached`: decoding with a key-value cache (chapter 11).

Shapes (``book/notation.md``): ids (B, T) long; logits (B, T, vocab_size);
attention weights (B, H, T, T) per layer. Taught in the language-model chapter.
"""

from __future__ import annotations

import math
import time
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ._validate import shape_str
from .masks import causal_mask
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding
from .sampling import sample_next
from .transformer import EncoderLayer

__all__ = [
    "CharVocab",
    "split",
    "batches",
    "CharTransformerLM",
    "train_lm",
    "nats_to_bits",
    "position_losses",
    "evaluate_bits_per_char",
    "unigram_probs",
    "bigram_probs",
    "unigram_bits",
    "bigram_bits",
    "KneserNey",
    "sample_bigram",
    "generate",
    "previous_token_score",
    "induction_score",
    "prefill",
    "decode_step",
    "generate_cached",
]

POSITIONS = ("learned", "rotary", "alibi")


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def _check_ids(name: str, ids: object, ndim: int | None = None, vocab_size: int | None = None) -> torch.Tensor:
    """A long tensor of ids with the given number of dims, each in 0..vocab_size-1."""
    if not isinstance(ids, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dtype != torch.long:
        raise ValueError(f"{name} must be a long (int64) tensor of token ids, got dtype {ids.dtype}")
    if ndim is not None and ids.dim() != ndim:
        legend = {1: "(T,)", 2: "(B, T)"}.get(ndim, f"{ndim}-D")
        raise ValueError(f"{name} must be {legend}, got shape {shape_str(ids)}")
    if ids.numel() and ids.min() < 0:
        raise ValueError(f"{name} has a negative id {int(ids.min())}")
    if vocab_size is not None and ids.numel() and ids.max() >= vocab_size:
        raise ValueError(f"{name} has id {int(ids.max())}, outside a vocabulary of {vocab_size}")
    return ids


# --------------------------------------------------------------------------- data


class CharVocab:
    """The distinct characters of a text, sorted, each with an id 0..vocab_size-1.

    ``encode(text) -> (T,) long``; ``decode(ids) -> str``; ``len(vocab)`` is
    the vocabulary size. Equivalent to ``itos = sorted(set(text))``,
    ``stoi = {c: i for i, c in enumerate(itos)}``.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("every entry of chars must be a single character (a str of length 1)")
        if len(set(chars)) != len(chars):
            raise ValueError("chars has duplicates")
        self.itos: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The sorted distinct characters of ``text``."""
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> torch.Tensor:
        """The ids of ``text``'s characters, (T,) long; a character outside the vocabulary is a ValueError."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        missing = sorted(set(text) - self.stoi.keys())
        if missing:
            raise ValueError(f"characters not in the vocabulary: {missing[:10]!r}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text of 1-D ``ids`` (a (T,) tensor or a list of ints)."""
        if not isinstance(ids, torch.Tensor):
            ids = torch.tensor(list(ids), dtype=torch.long)
        _check_ids("ids", ids, 1, len(self))
        return "".join(self.itos[i] for i in ids.tolist())


def split(ids: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``train_fraction`` of a 1-D id sequence and the rest: (train (N_train,), val (N - N_train,)).

    Contiguous, not shuffled: the validation text is a stretch the model never
    saw, not characters sprinkled among the training ones. Views, not copies.
    """
    _check_ids("ids", ids, 1)
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) \
            or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be a number in (0, 1), got {train_fraction!r}")
    n = int(train_fraction * len(ids))
    if n < 2 or len(ids) - n < 2:
        raise ValueError(f"ids of length {len(ids)} split at {train_fraction} leaves fewer than 2 ids on a side")
    return ids[:n], ids[n:]


def batches(data: torch.Tensor, context: int, batch_size: int, *, seed: int = 0
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random training windows: yields ``(inputs (B, T), targets (B, T))``, T = ``context``.

    Each row is a window of ``context + 1`` consecutive ids starting at a
    uniformly random place; ``inputs`` is the window without its last id and
    ``targets`` the window without its first (the same text shifted by one).
    The starts come from a ``torch.Generator`` seeded with ``seed``, so the
    same seed gives the same batches.
    """
    _check_ids("data", data, 1)
    context, batch_size = _positive_int("context", context), _positive_int("batch_size", batch_size)
    if len(data) < context + 1:
        raise ValueError(f"data has {len(data)} ids, fewer than context + 1 = {context + 1}")
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.arange(context + 1)  # (T+1,)
    while True:
        starts = torch.randint(0, len(data) - context, (batch_size,), generator=generator)  # (B,)
        windows = data[starts[:, None] + offsets]  # (B, T+1)
        yield windows[:, :-1], windows[:, 1:]  # (B, T), (B, T)


# --------------------------------------------------------------------------- model


class CharTransformerLM(nn.Module):
    r"""A decoder-only Transformer over characters: chapter 8's encoder layer under a causal mask.

    .. math::
        x_0 = \mathrm{Embed}(\text{ids}) \,[+\, W_\text{pos}],\qquad
        x_\ell = \mathrm{EncoderLayer}_\ell(x_{\ell-1},\ \text{causal mask}),\qquad
        \text{logits} = \mathrm{LN}(x_{N_\ell})\, W_\text{out}

    A pre-norm :class:`~attention_course.transformer.EncoderLayer` whose
    self-attention sees only keys :math:`j \le i` is a decoder-only block: a
    decoder layer of chapter 8 without the cross-attention, since there is no
    encoder to read.

    Args:
        vocab_size: number of distinct characters.
        d_model: width D; num_heads: H (D divisible by H); num_layers: :math:`N_\ell`;
        d_ff: feed-forward width F.
        context: the longest input, T <= context.
        positions: ``"learned"`` (a trained vector per position added to the
            tokens, as GPT-2), ``"rotary"`` (queries and keys rotated by their
            position, RoPE) or ``"alibi"`` (a per-head linear distance penalty
            on the scores).

    ``forward(ids (B, T))`` returns logits (B, T, vocab_size), where row t
    scores the character *after* ``ids[:, t]``, and the attention weights of
    every layer, a list of :math:`N_\ell` tensors (B, H, T, T).
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 context: int, *, positions: str = "learned") -> None:
        super().__init__()
        for name, n in (("vocab_size", vocab_size), ("d_model", d_model), ("num_heads", num_heads),
                        ("num_layers", num_layers), ("d_ff", d_ff), ("context", context)):
            _positive_int(name, n)
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        self.vocab_size, self.d_model, self.num_heads = vocab_size, d_model, num_heads
        self.context, self.positions_kind = context, positions
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.positions = LearnedPositionalEmbedding(context, d_model) if positions == "learned" else None
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            layer = EncoderLayer(d_model, num_heads, d_ff, norm_first=True)
            if positions != "learned":  # the same block with a position-aware attention
                layer.self_attn = MultiHeadAttention(d_model, num_heads, rotary=positions == "rotary",
                                                     alibi=positions == "alibi")
            self.layers.append(layer)
        self.norm = nn.LayerNorm(d_model)  # pre-norm leaves the residual stream un-normalised
        self.output = nn.Linear(d_model, vocab_size)
        self.register_buffer("mask", causal_mask(context), persistent=False)  # (context, context)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_ids("ids", ids, 2, self.vocab_size)
        B, T = ids.shape
        if not 1 <= T <= self.context:
            raise ValueError(f"ids (B, T) = {shape_str(ids)} must have 1 <= T <= context={self.context}")
        x = self.embedding(ids)  # (B, T, D)
        if self.positions is not None:
            x = self.positions(x)  # (B, T, D)
        mask = self.mask[:T, :T]  # (T, T): query i sees keys j <= i
        weights = []
        for layer in self.layers:
            x, w = layer(x, mask)  # (B, T, D), (B, H, T, T)
            weights.append(w)
        return self.output(self.norm(x)), weights  # (B, T, vocab_size), N_ell x (B, H, T, T)


# --------------------------------------------------------------------------- training and evaluation


def nats_to_bits(nats: float) -> float:
    """A loss in nats (natural log) in bits (log base 2): ``nats / ln 2``."""
    return nats / math.log(2)


def train_lm(model: CharTransformerLM, data: torch.Tensor, steps: int, *, batch_size: int = 32,
             lr: float = 3e-3, weight_decay: float = 0.1, warmup: int = 50, clip: float = 1.0,
             seed: int = 0, desc: str = "training", progress: bool = True) -> dict[str, list[float] | float]:
    """Train ``model`` for ``steps`` AdamW steps on random windows of ``data`` (1-D ids).

    Each step draws ``batch_size`` windows of ``model.context + 1`` ids
    (:func:`batches` with ``seed``) and minimises the mean cross-entropy of
    predicting every target from its prefix. The learning rate rises linearly
    over ``warmup`` steps, then falls along a half cosine to ``lr / 10`` at the
    last step; gradients are clipped to norm ``clip``. A fixed number of steps,
    not a time budget, so the result does not depend on the machine's speed.

    Returns ``{"loss": [...], "lr": [...], "seconds": wall time}``: the training
    loss (nats per character) and the learning rate of each step.
    """
    from tqdm.auto import tqdm

    steps = _positive_int("steps", steps)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < steps:
        raise ValueError(f"warmup must be an int in 0..steps-1={steps - 1}, got {warmup!r}")
    _check_ids("data", data, 1, model.vocab_size)
    stream = batches(data, model.context, batch_size, seed=seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices and embeddings; not biases, norms
    keep = [p for p in model.parameters() if p.dim() < 2]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": keep, "weight_decay": 0.0}], lr=lr)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(steps - 1 - warmup, 1)  # 0 -> 1
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    losses, rates = [], []
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for _ in bar:
        inputs, targets = next(stream)  # (B, T), (B, T)
        logits, _ = model(inputs)  # (B, T, vocab_size)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return {"loss": losses, "lr": rates, "seconds": time.perf_counter() - start}


@torch.no_grad()
def position_losses(model: CharTransformerLM, ids: torch.Tensor) -> torch.Tensor:
    """The loss (nats) of predicting each ``ids[:, t+1]`` from ``ids[:, :t+1]``: (B, T) ids -> (B, T-1)."""
    _check_ids("ids", ids, 2, model.vocab_size)
    if ids.shape[1] < 2:
        raise ValueError(f"ids (B, T) = {shape_str(ids)} needs T >= 2: an input and a target")
    was_training = model.training
    model.eval()
    logits, _ = model(ids[:, :-1])  # (B, T-1, vocab_size)
    model.train(was_training)
    return nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T-1)


@torch.no_grad()
def evaluate_bits_per_char(model: CharTransformerLM, data: torch.Tensor, *, batch_size: int = 64) -> float:
    """Mean bits per character of predicting ``data[1:]``, each id from the ids before it.

    ``data`` (N,) is cut into consecutive windows of ``model.context + 1`` ids
    that overlap by one, so every id from the second on is a target exactly
    once (the last window may be shorter). Within a window the first target
    sees one id of context and the last ``context``: on average about half the
    context, the same as in training. Same targets as :func:`bigram_bits`.
    """
    _check_ids("data", data, 1, model.vocab_size)
    if len(data) < 2:
        raise ValueError(f"data has {len(data)} ids: at least 2 are needed (an input and a target)")
    T = model.context
    n_full = (len(data) - 1) // T
    total, count = 0.0, 0
    full = data[: n_full * T + 1]
    windows = full.unfold(0, T + 1, T) if n_full else full.new_zeros((0, T + 1))  # (n_full, T+1)
    for i in range(0, n_full, batch_size):
        losses = position_losses(model, windows[i:i + batch_size])  # (B, T)
        total, count = total + float(losses.sum()), count + losses.numel()
    rest = data[n_full * T:]  # the ids after the last full window, with one id of overlap
    if len(rest) >= 2:
        losses = position_losses(model, rest[None])  # (1, len(rest) - 1)
        total, count = total + float(losses.sum()), count + losses.numel()
    return nats_to_bits(total / count)


# --------------------------------------------------------------------------- baselines


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0 or math.isinf(alpha):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    return float(alpha)


def unigram_probs(ids: torch.Tensor, vocab_size: int, *, alpha: float = 1.0) -> torch.Tensor:
    r"""Character frequencies with add-alpha smoothing: (vocab_size,) float64, summing to 1.

    .. math:: p(c) = \frac{n_c + \alpha}{N + \alpha\,|\mathcal{V}|}

    ``alpha = 1`` is Laplace's add-one rule: a character never seen in ``ids``
    still gets a small probability, so held-out text never costs infinitely many bits.
    """
    vocab_size = _positive_int("vocab_size", vocab_size)
    _check_ids("ids", ids, 1, vocab_size)
    alpha = _check_alpha(alpha)
    counts = torch.bincount(ids, minlength=vocab_size).double()  # (vocab_size,)
    return (counts + alpha) / (counts.sum() + alpha * vocab_size)


def bigram_probs(ids: torch.Tensor, vocab_size: int, *, alpha: float = 1.0) -> torch.Tensor:
    r"""Next-character probabilities given the previous character, add-alpha smoothed: (vocab_size, vocab_size).

    .. math:: p(b \mid a) = \frac{n_{ab} + \alpha}{n_{a\cdot} + \alpha\,|\mathcal{V}|}

    Row a is the distribution after character a (float64, each row sums to 1);
    :math:`n_{ab}` counts a followed by b in ``ids``.
    """
    vocab_size = _positive_int("vocab_size", vocab_size)
    _check_ids("ids", ids, 1, vocab_size)
    alpha = _check_alpha(alpha)
    if len(ids) < 2:
        raise ValueError(f"ids has {len(ids)} ids: a bigram needs at least 2")
    pair = ids[:-1] * vocab_size + ids[1:]  # (N-1,): a * vocab_size + b
    counts = torch.bincount(pair, minlength=vocab_size * vocab_size).double().reshape(vocab_size, vocab_size)
    return (counts + alpha) / (counts.sum(dim=1, keepdim=True) + alpha * vocab_size)


def unigram_bits(train: torch.Tensor, val: torch.Tensor, vocab_size: int, *, alpha: float = 1.0) -> float:
    """Bits per character of ``val[1:]`` under :func:`unigram_probs` fitted on ``train``.

    ``val[1:]``, not ``val``: the same targets as :func:`bigram_bits` and
    :func:`evaluate_bits_per_char`, whose first character has no predecessor.
    """
    probs = unigram_probs(train, vocab_size, alpha=alpha)
    _check_ids("val", val, 1, vocab_size)
    if len(val) < 2:
        raise ValueError(f"val has {len(val)} ids: at least 2 are needed")
    return float(-probs[val[1:]].log2().mean())


def bigram_bits(train: torch.Tensor, val: torch.Tensor, vocab_size: int, *, alpha: float = 1.0) -> float:
    """Bits per character of predicting each ``val[t+1]`` from ``val[t]`` with :func:`bigram_probs` of ``train``."""
    probs = bigram_probs(train, vocab_size, alpha=alpha)
    _check_ids("val", val, 1, vocab_size)
    if len(val) < 2:
        raise ValueError(f"val has {len(val)} ids: at least 2 are needed")
    return float(-probs[val[:-1], val[1:]].log2().mean())


class KneserNey:
    r"""A character n-gram model with interpolated Kneser–Ney smoothing: the strongest counting baseline.

    .. math::
        p_k(w \mid h) = \frac{\max(c_k(h w) - \delta,\ 0)}{c_k(h)}
                        + \frac{\delta\, N_{1+}(h\,\cdot)}{c_k(h)}\; p_{k-1}(w \mid h')

    for a context h of k characters and h' = h without its first one;
    :math:`c_k(h) = \sum_w c_k(hw)` and :math:`N_{1+}(h\,\cdot)` is the number of
    distinct w seen after h. At the highest order (k = n - 1) :math:`c` is the raw
    count; at every lower order it is the *continuation* count, the number of
    distinct characters seen before ``hw`` (Kneser and Ney 1995; Chen and
    Goodman 1999): a character that follows many contexts is a better guess for
    an unseen one than a character that is frequent in one fixed phrase. A context
    never seen in training hands the whole mass to the order below; below order 0
    is the uniform distribution over ``vocab_size``. Every distribution sums to 1.

    ``KneserNey(train_ids, vocab_size, n)`` counts every k-gram of ``train_ids``
    (1-D long) for k = 1..n; ``n = 2`` is a bigram model, ``n = 1`` a unigram.
    The first ``t`` targets of a text have fewer than n - 1 characters before
    them and use the order they have.
    """

    def __init__(self, train: torch.Tensor, vocab_size: int, n: int, *, discount: float = 0.75) -> None:
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.n = _positive_int("n", n)
        _check_ids("train", train, 1, self.vocab_size)
        if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 < discount < 1:
            raise ValueError(f"discount must be a number in (0, 1), got {discount!r}")
        if self.vocab_size ** (self.n + 1) >= 2 ** 62:
            raise ValueError(f"vocab_size={self.vocab_size} and n={self.n} are too large to index n-grams")
        if len(train) < self.n + 1:
            raise ValueError(f"train has {len(train)} ids: a model of order n={self.n} needs at least {self.n + 1}")
        self.discount = float(discount)
        ids = train.numpy().astype(np.int64)
        self._tables = []  # order k = 0..n-1: (sorted k+1-gram keys, counts, sorted contexts, c(h), N1+(h .))
        for k in range(self.n):
            if k == self.n - 1:
                grams, counts = np.unique(self._keys(ids, k + 1), return_counts=True)
            else:  # continuation counts: how many distinct characters came before the (k+1)-gram
                longer = np.unique(self._keys(ids, k + 2))
                grams, counts = np.unique(longer % self.vocab_size ** (k + 1), return_counts=True)
            contexts, which = np.unique(grams // self.vocab_size, return_inverse=True)
            self._tables.append((grams, counts, contexts, np.bincount(which, weights=counts),
                                 np.bincount(which)))

    def _keys(self, ids: np.ndarray, k: int) -> np.ndarray:
        """Every k-gram of ``ids`` as one int64, base vocab_size: (len(ids) - k + 1,)."""
        key = np.zeros(len(ids) - k + 1, dtype=np.int64)
        for i in range(k):
            key = key * self.vocab_size + ids[i:len(ids) - k + 1 + i]
        return key

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[pos] == query, values[pos], 0)

    def _probs(self, contexts: np.ndarray, lengths: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """p(target | the last ``lengths`` characters of each row of ``contexts`` (M, n-1)), float64 (M,)."""
        V = self.vocab_size
        p = np.full(len(targets), 1.0 / V)
        for k, (grams, counts, ctx, total, types) in enumerate(self._tables):
            ok = lengths >= k
            h = np.zeros(int(ok.sum()), dtype=np.int64)
            for i in range(k, 0, -1):  # the k characters before the target, oldest first
                h = h * V + contexts[ok, contexts.shape[1] - i]
            c_hw = self._lookup(grams, counts, h * V + targets[ok])
            c_h = self._lookup(ctx, total, h)
            n_h = self._lookup(ctx, types, h)
            lower = p[ok]
            p[ok] = np.where(c_h > 0, (np.maximum(c_hw - self.discount, 0)
                                       + self.discount * n_h * lower) / np.maximum(c_h, 1), lower)
        return p

    def next_probs(self, context: torch.Tensor) -> torch.Tensor:
        """The distribution of the character after ``context`` (1-D ids, any length): (vocab_size,) float64."""
        _check_ids("context", context, 1, self.vocab_size)
        width = max(self.n - 1, 1)
        last = context.numpy().astype(np.int64)[-(self.n - 1):] if self.n > 1 else np.zeros(0, np.int64)
        row = np.zeros((self.vocab_size, width), dtype=np.int64)
        if len(last):
            row[:, width - len(last):] = last
        lengths = np.full(self.vocab_size, len(last))
        return torch.from_numpy(self._probs(row, lengths, np.arange(self.vocab_size)))

    def generate(self, prompt_ids: torch.Tensor, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` characters drawn one after another from :meth:`next_probs`, after ``prompt_ids``: (n,) long.

        ``prompt_ids`` is 1-D and may be empty (the first draw then uses order 0);
        the draws use a generator seeded with ``seed``, so the same seed gives the same text.
        """
        _check_ids("prompt_ids", prompt_ids, 1, self.vocab_size)
        n = _positive_int("n", n)
        generator = torch.Generator().manual_seed(seed)
        text = prompt_ids.tolist()
        for _ in range(n):
            probs = self.next_probs(torch.tensor(text[-(self.n - 1):] if self.n > 1 else [], dtype=torch.long))
            text.append(int(torch.multinomial(probs.float(), 1, generator=generator)))
        return torch.tensor(text[len(prompt_ids):], dtype=torch.long)

    def bits(self, ids: torch.Tensor) -> float:
        """Bits per character of ``ids[1:]``, each predicted from up to n - 1 characters before it."""
        _check_ids("ids", ids, 1, self.vocab_size)
        if len(ids) < 2:
            raise ValueError(f"ids has {len(ids)} ids: at least 2 are needed")
        x = ids.numpy().astype(np.int64)
        width = max(self.n - 1, 1)
        t = np.arange(1, len(x))  # target positions
        offsets = np.arange(-width, 0)  # the width characters before each target
        contexts = x[np.clip(t[:, None] + offsets, 0, None)]  # (N-1, width); clipped rows are masked by lengths
        lengths = np.minimum(t, self.n - 1)
        return float(-np.log2(self._probs(contexts, lengths, x[t])).mean())


def sample_bigram(probs: torch.Tensor, first: int, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` characters drawn one after another from a bigram table, after ``first``: (n,) long.

    ``probs`` is (vocab_size, vocab_size), row a the distribution after
    character a (:func:`bigram_probs`); the draws use a generator seeded with ``seed``.
    """
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2 or probs.shape[0] != probs.shape[1]:
        raise ValueError(f"probs must be a square (vocab_size, vocab_size) tensor, got "
                         f"{shape_str(probs) if isinstance(probs, torch.Tensor) else type(probs).__name__}")
    vocab_size = probs.shape[0]
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < vocab_size:
        raise ValueError(f"first must be an id in 0..{vocab_size - 1}, got {first!r}")
    n = _positive_int("n", n)
    generator = torch.Generator().manual_seed(seed)
    out, current = [], first
    for _ in range(n):
        current = int(torch.multinomial(probs[current].float(), 1, generator=generator))
        out.append(current)
    return torch.tensor(out, dtype=torch.long)


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def generate(model: CharTransformerLM, prompt_ids: torch.Tensor, n: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> torch.Tensor:
    """Continue ``prompt_ids`` by ``n`` tokens, each drawn from the model given the ones before it.

    ``prompt_ids`` is (T0,) or (B, T0), T0 >= 1; the result is the ``n`` new
    ids, (n,) or (B, n). At each step the model reads the last ``model.context``
    ids, and :func:`~attention_course.sampling.sample_next` picks the next one
    from the logits of the last position: ``temperature=0`` is greedy, else
    sampled at that temperature after the optional ``top_k`` and ``top_p``
    filters. The draws come from a generator seeded with ``seed``: the same
    seed gives the same text. Each step reruns the model over the window
    (chapter 11's KV cache would avoid that).
    """
    _check_ids("prompt_ids", prompt_ids, None, model.vocab_size)
    if prompt_ids.dim() not in (1, 2) or prompt_ids.shape[-1] < 1:
        raise ValueError(f"prompt_ids must be (T0,) or (B, T0) with T0 >= 1, got shape {shape_str(prompt_ids)}")
    n = _positive_int("n", n)
    single = prompt_ids.dim() == 1
    ids = prompt_ids[None] if single else prompt_ids  # (B, T0)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    new = []
    for _ in range(n):
        logits, _ = model(ids[:, -model.context:])  # (B, t, vocab_size)
        nxt = sample_next(logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                          generator=generator)  # (B,)
        new.append(nxt)
        ids = torch.cat([ids, nxt[:, None]], dim=1)  # (B, t+1)
    model.train(was_training)
    out = torch.stack(new, dim=1)  # (B, n)
    return out[0] if single else out


# --------------------------------------------------------------------------- reading heads


def _check_weights(weights: object) -> torch.Tensor:
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
        raise ValueError(f"weights must be a floating-point tensor (..., T, T), got "
                         f"{shape_str(weights) if isinstance(weights, torch.Tensor) else type(weights).__name__}")
    if weights.dim() < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be (..., T, T), square in the last two dims, got {shape_str(weights)}")
    return weights


def previous_token_score(weights: torch.Tensor) -> torch.Tensor:
    r"""Mean weight a query puts on the position just before it: (..., T, T) -> (...).

    .. math:: \frac{1}{T - 1} \sum_{t=2}^{T} a_{t,\,t-1}

    1 for a perfect previous-token head; for uniform causal weights (row t
    spreading over its t keys) it is the mean of :math:`1/t`, t = 2..T.
    Equivalent to ``weights.diagonal(-1, -2, -1).mean(-1)``.
    """
    weights = _check_weights(weights)
    T = weights.shape[-1]
    if T < 2:
        raise ValueError(f"weights {shape_str(weights)} needs T >= 2 to have a previous position")
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1)  # (..., T-1) -> (...)


def induction_score(weights: torch.Tensor, period: int) -> torch.Tensor:
    r"""Mean weight on the token after the previous occurrence, on a sequence that repeats: (..., T, T) -> (...).

    For a sequence with :math:`x_t = x_{t - \text{period}}`, an **induction
    head** at query t looks back to where the current token last occurred,
    t - period, and attends to the token that came *after* it, t - period + 1
    (0-based), because that is what comes next now. The score is the mean of
    :math:`a_{t,\,t-\text{period}+1}` over the queries t = period .. T-1 (the
    repeat). Equivalent to
    ``weights.diagonal(-(period - 1), -2, -1)[..., -(T - period):].mean(-1)``.
    """
    weights = _check_weights(weights)
    T = weights.shape[-1]
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period < T:
        raise ValueError(f"period must be an int in 1..T-1={T - 1} for weights {shape_str(weights)}, got {period!r}")
    t = torch.arange(period, T, device=weights.device)  # (T - period,) queries in the repeat
    return weights[..., t, t - period + 1].mean(dim=-1)  # (...)


# --------------------------------------------------------------------------- decoding with a key-value cache

# Imported here, with the section that uses them (the imports above serve the rest of the module).
from .attention import scaled_dot_product_attention  # noqa: E402
from .efficient import KVCache  # noqa: E402
from .multihead import merge_heads, split_heads  # noqa: E402
from .positional import alibi_slopes, rotary_embedding  # noqa: E402


def _check_lm(model: object) -> CharTransformerLM:
    if not isinstance(model, CharTransformerLM):
        raise ValueError(f"model must be a CharTransformerLM, got {type(model).__name__}")
    for i, layer in enumerate(model.layers):
        if not isinstance(layer.self_attn, MultiHeadAttention):
            raise ValueError(f"layer {i}'s self_attn must be a MultiHeadAttention to be cached, "
                             f"got {type(layer.self_attn).__name__}")
    return model


def _check_caches(model: CharTransformerLM, caches: object, batch: int) -> list[KVCache]:
    """A list of one KVCache per layer, (B, G, t, D/H) each, all of the same length t < context."""
    n_layers = len(model.layers)
    if not isinstance(caches, (list, tuple)) or len(caches) != n_layers:
        got = f"a {type(caches).__name__} of {len(caches)}" if isinstance(caches, (list, tuple)) \
            else type(caches).__name__
        raise ValueError(f"caches must be a list of {n_layers} KVCache, one per layer (as prefill "
                         f"returns), got {got}")
    dtype = model.embedding.weight.dtype
    lengths = set()
    for i, (layer, cache) in enumerate(zip(model.layers, caches)):
        if not isinstance(cache, KVCache):
            raise ValueError(f"caches[{i}] must be a KVCache, got {type(cache).__name__}")
        attn = layer.self_attn
        expected = (batch, attn.num_kv_heads, cache.length, attn.d_model // attn.num_heads)
        if tuple(cache.keys.shape) != expected:
            raise ValueError(f"caches[{i}] holds keys {shape_str(cache.keys)}, expected (B, G, t, D/H) = "
                             f"{expected} for ids_t with B={batch} and layer {i}'s "
                             f"{attn.num_kv_heads} key/value heads")
        if cache.keys.dtype != dtype:
            raise ValueError(f"caches[{i}] is {cache.keys.dtype} but the model is {dtype}")
        lengths.add(cache.length)
    if len(lengths) != 1:
        raise ValueError(f"the layers' caches must all hold the same number of positions, got {sorted(lengths)}")
    (t,) = lengths
    if t >= model.context:
        raise ValueError(f"the caches hold t={t} positions, the model's whole context={model.context}: a new "
                         f"token would sit at position {t}, outside the window the model was built for. "
                         "lm.generate slides its window there and recomputes it; a cache cannot, because "
                         "the cached keys and values of layers 2 and up were computed while seeing the "
                         "tokens that would leave the window")
    return list(caches)


def _attend_cached(attn: MultiHeadAttention, h: torch.Tensor, cache: KVCache | None, positions: torch.Tensor
                   ) -> tuple[torch.Tensor, KVCache]:
    """Self-attention of L new tokens h (B, L, D) at absolute ``positions`` (L,) over the cache and themselves.

    Returns the output (B, L, D) and a new cache one L longer; the keys are
    stored after their rotation, so a cached key is never touched again.
    """
    H, G = attn.num_heads, attn.num_kv_heads
    q = split_heads(attn.q_proj(h), H)  # (B, H, L, E)
    k = split_heads(attn.k_proj(h), G)  # (B, G, L, E)
    v = split_heads(attn.v_proj(h), G)  # (B, G, L, E)
    if attn.rotary:
        q, k = rotary_embedding(q, positions), rotary_embedding(k, positions)  # at their absolute positions
    cache = KVCache(k, v) if cache is None else cache.append(k, v)  # (B, G, t + L, E)
    keys, values = cache.keys, cache.values  # (B, G, S, E), S = t + L
    if G < H:  # query head h reads key/value head h // (H/G)
        keys, values = keys.repeat_interleave(H // G, dim=1), values.repeat_interleave(H // G, dim=1)
    key_positions = torch.arange(keys.shape[2], device=h.device)  # (S,)
    mask = key_positions[None, :] <= positions[:, None]  # (L, S): a query sees its own and earlier positions
    bias = None
    if attn.alibi:  # -m_h |p - p'| from each query's absolute position p to every key's p'
        offset = (positions[:, None] - key_positions[None, :]).abs()  # (L, S)
        bias = (-alibi_slopes(H).to(h.device)[:, None, None] * offset)[None].to(q.dtype)  # (1, H, L, S)
    out, _ = scaled_dot_product_attention(q, keys, values, mask, bias=bias)  # (B, H, L, E)
    return attn.out_proj(merge_heads(out)), cache  # (B, L, D)


def _extend(model: CharTransformerLM, ids: torch.Tensor, caches: list[KVCache | None], start: int
            ) -> tuple[torch.Tensor, list[KVCache]]:
    """Run ``ids`` (B, L), at positions start..start+L-1, through every layer with its cache."""
    L = ids.shape[1]
    x = model.embedding(ids)  # (B, L, D)
    if model.positions is not None:  # learned positions: the rows of these absolute positions
        x = x + model.positions.embedding.weight[start:start + L].to(x.dtype)  # (B, L, D) + (L, D)
    positions = torch.arange(start, start + L, device=ids.device)  # (L,)
    new_caches = []
    for layer, cache in zip(model.layers, caches):
        if layer.norm_first:  # x + Attn(LN(x)), then x + FF(LN(x))
            attended, cache = _attend_cached(layer.self_attn, layer.norm1(x), cache, positions)
            x = x + attended
            x = x + layer.feed_forward(layer.norm2(x))
        else:  # post-norm: LN(x + Attn(x)), then LN(x + FF(x))
            attended, cache = _attend_cached(layer.self_attn, x, cache, positions)
            x = layer.norm1(x + attended)
            x = layer.norm2(x + layer.feed_forward(x))
        new_caches.append(cache)
    return model.output(model.norm(x)), new_caches  # (B, L, vocab_size), N_ell caches


@torch.no_grad()
def prefill(model: CharTransformerLM, ids: torch.Tensor) -> tuple[torch.Tensor, list[KVCache]]:
    r"""Read a prompt in one parallel pass and keep every layer's keys and values.

    ``ids`` (B, T), 1 <= T <= ``model.context``. Returns the logits (B, T,
    vocab_size), equal (up to float rounding) to ``model(ids)[0]``, and a list
    of :math:`N_\ell` :class:`~attention_course.efficient.KVCache`, one per
    layer, each with keys and values (B, G, T, D/H): G key/value heads (G = H
    unless the layer's attention is grouped-query), the keys *after* their
    rotary rotation (with ``positions="rotary"``), so that no cached key needs
    to be touched again. Continue with :func:`decode_step`.
    """
    model = _check_lm(model)
    _check_ids("ids", ids, 2, model.vocab_size)
    T = ids.shape[1]
    if not 1 <= T <= model.context:
        raise ValueError(f"ids (B, T) = {shape_str(ids)} must have 1 <= T <= context={model.context}")
    return _extend(model, ids, [None] * len(model.layers), 0)


@torch.no_grad()
def decode_step(model: CharTransformerLM, ids_t: torch.Tensor, caches: Sequence[KVCache]
                ) -> tuple[torch.Tensor, list[KVCache]]:
    """Feed one new token per row, at position t = the caches' length, and extend the caches.

    ``ids_t`` (B, 1); ``caches`` a list of one
    :class:`~attention_course.efficient.KVCache` per layer holding t positions
    (from :func:`prefill` or an earlier step), t < ``model.context``. In each
    layer only the new token is projected: its query and key are rotated to
    position t (rotary), its ALiBi bias runs from t to every cached position,
    or it gets the learned vector of position t; its key and value are
    appended, and its one query attends over all t + 1 keys. Then the
    residual, the feed-forward network, the final norm and the read-out, as in
    the full forward pass.

    Returns the logits of the new position (B, 1, vocab_size), equal (up to
    float rounding) to row t of ``model(all ids so far)[0]``, and new caches
    holding t + 1 positions; the caches passed in are not changed.
    """
    model = _check_lm(model)
    _check_ids("ids_t", ids_t, 2, model.vocab_size)
    if ids_t.shape[1] != 1:
        raise ValueError(f"ids_t must be one new token per row, (B, 1), got shape {shape_str(ids_t)}")
    caches = _check_caches(model, caches, ids_t.shape[0])
    return _extend(model, ids_t, caches, caches[0].length)


@torch.no_grad()
def generate_cached(model: CharTransformerLM, prompt_ids: torch.Tensor, n: int, *, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> torch.Tensor:
    """:func:`generate` with a key-value cache: the same tokens, each step feeding only the newest one.

    :func:`prefill` reads the prompt (T0,) or (B, T0) once; then every step
    draws the next token from the last logits exactly as :func:`generate`
    does (:func:`~attention_course.sampling.sample_next`, one generator seeded
    with ``seed``) and runs :func:`decode_step` on it. Returns the ``n`` new
    ids, (n,) or (B, n): the tokens :func:`generate` returns with the same
    arguments, as long as the model never reads more than its window, that is
    T0 + n - 1 <= ``model.context`` (the last new token is drawn, not read).
    Beyond that :func:`generate` slides its window, dropping the oldest ids
    and recomputing the rest without them, while a cache keeps every past key
    and value, so the two would differ: that is a ValueError here.
    """
    model = _check_lm(model)
    _check_ids("prompt_ids", prompt_ids, None, model.vocab_size)
    if prompt_ids.dim() not in (1, 2) or prompt_ids.shape[-1] < 1:
        raise ValueError(f"prompt_ids must be (T0,) or (B, T0) with T0 >= 1, got shape {shape_str(prompt_ids)}")
    n = _positive_int("n", n)
    T0 = prompt_ids.shape[-1]
    if T0 + n - 1 > model.context:
        raise ValueError(f"a prompt of T0={T0} ids and n={n} new ones make the model read T0 + n - 1 = "
                         f"{T0 + n - 1} positions, more than its context={model.context}. Past the window "
                         "lm.generate slides it (drops the oldest ids and recomputes the rest), while a "
                         "cache keeps every past key and value, so the two would no longer agree: use "
                         "lm.generate, or n <= context - T0 + 1")
    single = prompt_ids.dim() == 1
    ids = prompt_ids[None] if single else prompt_ids  # (B, T0)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        logits, caches = prefill(model, ids)  # (B, T0, vocab_size), N_ell x (B, G, T0, D/H)
        new = []
        for i in range(n):
            nxt = sample_next(logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                              generator=generator)  # (B,)
            new.append(nxt)
            if i < n - 1:  # the last token is only drawn
                logits, caches = decode_step(model, nxt[:, None], caches)  # (B, 1, vocab_size)
    finally:
        model.train(was_training)
    out = torch.stack(new, dim=1)  # (B, n)
    return out[0] if single else out
