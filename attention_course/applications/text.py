r"""Attention for text: attention pooling for classification, sentence attention for summaries.

Two seeded toy tasks and the small models that solve them (chapter 10, section
"Attention for text", ``chapters/10a_text_classification_and_summarization.ipynb``).

**Reviews** (:func:`reviews`): word-salad movie reviews of filler words with one
or two *opinion phrases*. A phrase is an opinion word (``good``, ``dull``, ...),
optionally preceded by a negator (``not``, ``never``) that flips it. The label
rule (:func:`review_label`):

    polarity(word at i) = polarity of the word, flipped iff token i-1 is a negator;
    label = the polarity shared by every opinion word of the review (1 = positive).

The generator makes all phrases of a review agree, and may add one *stray*
negator that modifies nothing (the two tokens after it are filler).

:class:`ReviewClassifier` embeds the words, gives each a state that sees its two
neighbours (one convolution), pools the states and classifies. Its pooling is
**attention pooling** (:class:`AttentionPooling`), the readout of Yang et al.
(2016)'s hierarchical attention networks: one learned query vector scores every
position of a sequence of states (the keys, j = 1..S),

.. math:: k_j = h_j W_k,\quad e_j = \frac{q \cdot k_j}{\sqrt{E}},\quad
          a = \mathrm{softmax}(e)\ \text{over the real tokens},\quad
          \text{pooled} = \sum_j a_j h_j

**Documents** (:func:`documents`): 6-12 sentences about one of four topics; two
or three *key* sentences carry the topic's keywords, the others are filler that
sometimes mentions one keyword of another topic. The reference summary is the
key sentences. :class:`SentenceAttentionClassifier` pools sentence vectors with
the same attention pooling and is trained only to predict the topic;
:func:`top_k_sentences` then extracts the sentences it weighted most, scored by
:func:`rouge_1` (Lin 2004) against :func:`lead_k` and :func:`random_k`.

Shapes: B batch; S the positions attention pools over, words per review or
sentences per document (padded); T_w words per sentence (padded); D state
width; E key size.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..attention import scaled_dot_product_attention
from ..data import Vocab
from ..masks import padding_mask

__all__ = [
    "FILLER", "POSITIVE", "NEGATIVE", "NEGATORS", "REVIEW_VOCAB", "ReviewSet", "reviews", "review_label",
    "TOPICS", "TOPIC_NAMES", "DOC_FILLER", "DOC_VOCAB", "DocumentSet", "documents",
    "AttentionPooling", "ReviewClassifier", "SentenceAttentionClassifier",
    "fit", "predict", "drop_word", "rouge_1", "top_k_sentences", "lead_k", "random_k", "mean_rouge",
]

# --------------------------------------------------------------------------- reviews

FILLER = (
    "the", "a", "movie", "film", "plot", "story", "actor", "cast", "scene", "music", "ending", "script",
    "camera", "director", "it", "this", "was", "is", "and", "with", "i", "we", "saw", "watched", "on",
    "of", "in", "cinema", "friday", "popcorn", "seat", "ticket", "sequel", "trailer", "hour", "two",
    "hours", "long", "my", "sister", "night", "screen", "sound", "dialogue", "costumes", "city",
)
POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "superb", "charming")
NEGATIVE = ("bad", "boring", "awful", "terrible", "dull", "weak", "poor", "tedious")
NEGATORS = ("not", "never")
REVIEW_VOCAB = Vocab(FILLER + POSITIVE + NEGATIVE + NEGATORS)


@dataclass(frozen=True)
class ReviewSet:
    """A batch of reviews, padded to the longest.

    tokens (B, S) int ids of :data:`REVIEW_VOCAB` (0 = padding), lengths (B,),
    labels (B,) 1 = positive, deciding (B, S) bool: the opinion words and the
    negators that flip them; words: the reviews as word lists.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    deciding: torch.Tensor
    words: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> "ReviewSet":
        idx = torch.arange(len(self))[index] if isinstance(index, slice) else torch.as_tensor(index)
        T = int(self.lengths[idx].max()) if len(idx) else 1
        return ReviewSet(self.tokens[idx, :T], self.lengths[idx], self.labels[idx], self.deciding[idx, :T],
                         tuple(self.words[int(i)] for i in idx))


def review_label(words: Sequence[str]) -> int:
    """The label rule: the polarity shared by the review's opinion words (1 = positive).

    An opinion word's polarity flips iff the token right before it is a negator.
    Raises ``ValueError`` if there is no opinion word or the phrases disagree.
    """
    polarities = set()
    for t, w in enumerate(words):
        if w in POSITIVE or w in NEGATIVE:
            negated = t > 0 and words[t - 1] in NEGATORS
            polarities.add(int((w in POSITIVE) != negated))
    if len(polarities) != 1:
        raise ValueError(
            f"a review needs opinion phrases that agree, got polarities {sorted(polarities)} in {list(words)}"
        )
    return polarities.pop()


def _review(rng: random.Random, length: int) -> tuple[list[str], int, list[bool]]:
    words = [rng.choice(FILLER) for _ in range(length)]
    deciding = [False] * length
    label = rng.randint(0, 1)
    n_phrases = rng.choice((1, 2)) if length >= 12 else 1
    taken: set[int] = set()
    for _ in range(n_phrases):
        negated = rng.random() < 0.5
        size = 2 if negated else 1
        while True:  # a free slot with a free token on either side, so phrases never touch
            start = rng.randrange(0, length - size + 1)
            span = set(range(start - 1, start + size + 1))
            if not span & taken:
                break
        positive = bool(label) != negated
        if negated:
            words[start] = rng.choice(NEGATORS)
        words[start + size - 1] = rng.choice(POSITIVE if positive else NEGATIVE)
        for t in range(start, start + size):
            deciding[t] = True
        taken |= set(range(start, start + size))
    if rng.random() < 0.5:  # a stray negator: the next two tokens are filler, so it flips nothing
        free = [t for t in range(length) if not {t, t + 1, t + 2} & taken]
        if free:
            words[rng.choice(free)] = rng.choice(NEGATORS)
    return words, label, deciding


def reviews(n: int, *, seed: int, min_len: int = 8, max_len: int = 40) -> ReviewSet:
    """``n`` seeded synthetic reviews of ``min_len``..``max_len`` words (uniform), labelled by :func:`review_label`.

    Reviews of 12 words or more carry one or two opinion phrases, shorter ones
    one; half of them also carry a stray negator. Same ``seed``, same reviews.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 6 <= min_len <= max_len:
        raise ValueError(f"need 6 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    rng = random.Random(seed)
    tokens = torch.zeros(n, max_len, dtype=torch.long)  # (B, S), B = n
    deciding = torch.zeros(n, max_len, dtype=torch.bool)  # (B, S)
    lengths, labels, all_words = [], [], []
    for i in range(n):
        length = rng.randint(min_len, max_len)
        words, label, decide = _review(rng, length)
        tokens[i, :length] = torch.tensor(REVIEW_VOCAB.encode(words))
        deciding[i, :length] = torch.tensor(decide)
        lengths.append(length)
        labels.append(label)
        all_words.append(tuple(words))
    T = max(lengths)
    return ReviewSet(tokens[:, :T], torch.tensor(lengths), torch.tensor(labels), deciding[:, :T], tuple(all_words))


# --------------------------------------------------------------------------- documents

TOPICS = {
    "sport": ("match", "goal", "team", "coach", "league", "striker", "season", "referee", "stadium", "penalty"),
    "weather": ("rain", "storm", "wind", "forecast", "snow", "cloud", "thunder", "flood", "sunny", "frost"),
    "finance": ("market", "shares", "bank", "profit", "investors", "inflation", "stocks", "budget", "loan", "bond"),
    "science": ("experiment", "laboratory", "molecule", "theory", "telescope", "physics", "genome", "cells",
                "researchers", "particle"),
}
TOPIC_NAMES = tuple(TOPICS)
DOC_FILLER = (
    "the", "a", "on", "in", "of", "and", "said", "was", "were", "today", "yesterday", "people", "town",
    "report", "new", "week", "local", "officials", "many", "some", "after", "before", "morning", "evening",
    "year", "two", "three", "time", "news", "group", "during", "which", "it", "also", "at", "for", "from",
    "with", "by", "they", "this", "that", "last", "first", "most",
)
DOC_VOCAB = Vocab(DOC_FILLER + tuple(w for words in TOPICS.values() for w in words))


@dataclass(frozen=True)
class DocumentSet:
    """A batch of documents, padded to S sentences of T_w words.

    tokens (B, S, T_w) ids of :data:`DOC_VOCAB` (0 = padding), word_lengths (B, S)
    (0 for a padding sentence), n_sentences (B,), topics (B,) index into
    :data:`TOPIC_NAMES`, key (B, S) bool: the reference summary's sentences;
    sentences: each document as a tuple of word tuples.
    """

    tokens: torch.Tensor
    word_lengths: torch.Tensor
    n_sentences: torch.Tensor
    topics: torch.Tensor
    key: torch.Tensor
    sentences: tuple[tuple[tuple[str, ...], ...], ...]

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> "DocumentSet":
        idx = torch.arange(len(self))[index] if isinstance(index, slice) else torch.as_tensor(index)
        return DocumentSet(self.tokens[idx], self.word_lengths[idx], self.n_sentences[idx], self.topics[idx],
                           self.key[idx], tuple(self.sentences[int(i)] for i in idx))


def documents(n: int, *, seed: int, min_sentences: int = 6, max_sentences: int = 12,
              min_words: int = 6, max_words: int = 10, mention_rate: float = 0.5) -> DocumentSet:
    """``n`` seeded documents, each about one topic of :data:`TOPICS`.

    Each document has ``min_sentences``..``max_sentences`` sentences of
    ``min_words``..``max_words`` words. Two or three of them, at random
    positions, are *key* sentences: filler plus two or three distinct keywords
    of the document's topic. Every other sentence is filler and, with
    probability ``mention_rate``, mentions one keyword of another topic.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 4 <= min_sentences <= max_sentences:
        raise ValueError(f"need 4 <= min_sentences <= max_sentences, got {min_sentences}, {max_sentences}")
    if not 4 <= min_words <= max_words:
        raise ValueError(f"need 4 <= min_words <= max_words, got {min_words}, {max_words}")
    if not 0.0 <= mention_rate <= 1.0:
        raise ValueError(f"mention_rate must lie in [0, 1], got {mention_rate}")
    rng = random.Random(seed)
    tokens = torch.zeros(n, max_sentences, max_words, dtype=torch.long)  # (B, S, T_w), B = n
    word_lengths = torch.zeros(n, max_sentences, dtype=torch.long)  # (B, S)
    key = torch.zeros(n, max_sentences, dtype=torch.bool)  # (B, S)
    n_sentences, topics, docs = [], [], []
    for i in range(n):
        topic = rng.randrange(len(TOPIC_NAMES))
        others = [t for t in range(len(TOPIC_NAMES)) if t != topic]
        n_sent = rng.randint(min_sentences, max_sentences)
        key_positions = set(rng.sample(range(n_sent), rng.choice((2, 3))))
        doc = []
        for s in range(n_sent):
            length = rng.randint(min_words, max_words)
            words = [rng.choice(DOC_FILLER) for _ in range(length)]
            if s in key_positions:
                keywords = rng.sample(TOPICS[TOPIC_NAMES[topic]], rng.choice((2, 3)))
            elif rng.random() < mention_rate:
                keywords = [rng.choice(TOPICS[TOPIC_NAMES[rng.choice(others)]])]
            else:
                keywords = []
            for slot, word in zip(rng.sample(range(length), len(keywords)), keywords):
                words[slot] = word
            tokens[i, s, :length] = torch.tensor(DOC_VOCAB.encode(words))
            word_lengths[i, s] = length
            key[i, s] = s in key_positions
            doc.append(tuple(words))
        n_sentences.append(n_sent)
        topics.append(topic)
        docs.append(tuple(doc))
    return DocumentSet(tokens, word_lengths, torch.tensor(n_sentences), torch.tensor(topics), key, tuple(docs))


# --------------------------------------------------------------------------- models


class AttentionPooling(nn.Module):
    r"""Pool a sequence of states into one vector with a single learned query.

    .. math:: k_j = h_j W_k,\quad a = \mathrm{softmax}_j\!\left(\frac{q \cdot k_j}{\sqrt{E}}\right),
              \quad \text{pooled} = \sum_j a_j h_j

    Query: the learned vector :math:`q` (E,), the same for every input. Keys:
    :math:`h_j W_k` (``key.weight`` is :math:`W_k^\top`, ``nn.Linear``'s layout);
    values: the states :math:`h_j` themselves. Positions where ``mask`` is
    False (padding) get weight exactly 0. Yang et al. (2016) use an additive
    score :math:`q \cdot \tanh(h_j W + b)`; we use the scaled dot product of
    chapter 3.

    ``forward(states (B, S, D), mask (B, S) bool, True = real)`` -> pooled (B, D), weights (B, S).
    Taught in chapter 10 (``10a_text_classification_and_summarization``).
    """

    def __init__(self, state_size: int, key_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(state_size, key_size, bias=False)
        self.query = nn.Parameter(torch.randn(key_size) / math.sqrt(key_size))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if states.dim() != 3 or mask.shape != states.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(
                f"states must be (B, S, D) and mask bool (B, S), got {tuple(states.shape)} and "
                f"{tuple(mask.shape)} {mask.dtype}"
            )
        B, T, D = states.shape
        keys = self.key(states)  # (B, S, E); T = S here
        query = self.query.expand(B, 1, -1)  # (B, 1, E)
        pooled, weights = scaled_dot_product_attention(query, keys, states, mask[:, None, :])  # (B, 1, D), (B, 1, S)
        return pooled[:, 0], weights[:, 0]  # (B, D), (B, S)


class ReviewClassifier(nn.Module):
    r"""Embedding + a local context encoder + a readout + a linear classifier.

    The context encoder is one convolution over each word and its two
    neighbours, :math:`h_i = \mathrm{ReLU}(x_{i-1} W_{-1} + x_i W_0 + x_{i+1} W_{+1} + b)`,
    so the state at an opinion word knows whether a negator stands right before
    it, and a state knows nothing about words further away (padding embeds to 0,
    the convolution's own zero padding, so real positions never see padding).

    ``readout``: ``"attention"`` (:class:`AttentionPooling`) or ``"mean"`` (every
    real token's state weighted 1/length: attention with uniform weights).

    ``forward(tokens (B, S), lengths (B,))`` -> logits (B, 2), weights (B, S).
    """

    READOUTS = ("attention", "mean")

    def __init__(self, vocab_size: int, embed_size: int = 32, hidden_size: int = 48, key_size: int = 32,
                 readout: str = "attention", width: int = 3) -> None:
        super().__init__()
        if readout not in self.READOUTS:
            raise ValueError(f"readout must be one of {self.READOUTS}, got {readout!r}")
        if width < 1 or width % 2 == 0:
            raise ValueError(f"width must be a positive odd number, got {width}")
        self.readout = readout
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.context = nn.Conv1d(embed_size, hidden_size, width, padding=width // 2)
        self.pool = AttentionPooling(hidden_size, key_size) if readout == "attention" else None
        self.classify = nn.Linear(hidden_size, 2)

    def states(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, S) -> context states (B, S, D)."""
        x = self.embedding(tokens)  # (B, S, Emb)
        return torch.relu(self.context(x.transpose(1, 2))).transpose(1, 2)  # (B, S, D)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.dim() != 2 or lengths.shape != (tokens.shape[0],):
            raise ValueError(
                f"tokens must be (B, S) and lengths (B,), got {tuple(tokens.shape)} and {tuple(lengths.shape)}"
            )
        B, T = tokens.shape
        states = self.states(tokens)  # (B, S, D); T = S here
        mask = padding_mask(lengths, T)  # (B, S)
        if self.readout == "attention":
            pooled, weights = self.pool(states, mask)  # (B, D), (B, S)
        else:
            weights = mask.float() / lengths.clamp_min(1)[:, None].float()  # (B, S)
            pooled = (weights[:, :, None] * states).sum(1)  # (B, D)
        return self.classify(pooled), weights  # (B, 2), (B, S)


class SentenceAttentionClassifier(nn.Module):
    r"""Topic classifier over sentences: sentence vectors, attention pooling, linear.

    A sentence's vector is :math:`h_i = \tanh(\bar{x}_i W + b)`, with :math:`\bar{x}_i`
    the mean of its word embeddings; :class:`AttentionPooling` weighs the
    sentences (padding sentences get weight 0) and a linear layer reads the topic
    off the pooled document vector. With ``readout="mean"`` each of a document's
    real sentences gets weight 1/(their number) instead.

    ``forward(tokens (B, S, T_w), word_lengths (B, S))`` -> logits (B, n_topics), weights (B, S).
    """

    def __init__(self, vocab_size: int, n_topics: int = len(TOPIC_NAMES), embed_size: int = 32,
                 key_size: int = 16, readout: str = "attention") -> None:
        super().__init__()
        if readout not in ("attention", "mean"):
            raise ValueError(f"readout must be 'attention' or 'mean', got {readout!r}")
        self.readout = readout
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.sentence = nn.Linear(embed_size, embed_size)
        self.pool = AttentionPooling(embed_size, key_size)
        self.classify = nn.Linear(embed_size, n_topics)

    def sentence_vectors(self, tokens: torch.Tensor, word_lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, S, T_w), word_lengths (B, S) -> sentence vectors (B, S, D)."""
        x = self.embedding(tokens)  # (B, S, T_w, D); padding ids embed to 0
        mean = x.sum(2) / word_lengths.clamp_min(1)[..., None].float()  # (B, S, D)
        return torch.tanh(self.sentence(mean))  # (B, S, D)

    def forward(self, tokens: torch.Tensor, word_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.dim() != 3 or word_lengths.shape != tokens.shape[:2]:
            raise ValueError(
                f"tokens must be (B, S, T_w) and word_lengths (B, S), got {tuple(tokens.shape)} and "
                f"{tuple(word_lengths.shape)}"
            )
        sentences = self.sentence_vectors(tokens, word_lengths)  # (B, S, D)
        mask = word_lengths > 0  # (B, S)
        if self.readout == "attention":
            pooled, weights = self.pool(sentences, mask)  # (B, D), (B, S)
        else:
            weights = mask.float() / mask.sum(1, keepdim=True).clamp_min(1).float()  # (B, S)
            pooled = (weights[:, :, None] * sentences).sum(1)  # (B, D)
        return self.classify(pooled), weights  # (B, n_topics), (B, S)


# --------------------------------------------------------------------------- training and evaluation


def fit(model: nn.Module, inputs: Sequence[torch.Tensor], targets: torch.Tensor, *, steps: int,
        batch_size: int = 64, lr: float = 1e-2, seed: int = 0) -> list[float]:
    """Cross-entropy with Adam on random minibatches; returns the loss at each step.

    ``model(*[x[idx] for x in inputs])`` must return ``(logits (B, num_classes), weights)``;
    ``targets``, one per row of each input, are class ids. Minibatches are drawn by a generator seeded
    with ``seed`` (the global RNG is not touched).
    """
    n = targets.shape[0]
    if any(x.shape[0] != n for x in inputs):
        raise ValueError(f"every input needs {n} rows (targets), got {[tuple(x.shape) for x in inputs]}")
    gen = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        logits, _ = model(*(x[idx] for x in inputs))  # (B, num_classes)
        loss = nn.functional.cross_entropy(logits, targets[idx])
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return losses


def drop_word(
    tokens: torch.Tensor, lengths: torch.Tensor, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete one word from each review: the erasure test of a model's reliance on that word.

    tokens (B, S), lengths (B,), positions (B,) with 0 <= positions < lengths
    -> tokens (B, S - 1) with row n's word ``positions[n]`` removed and the rest
    shifted left, and lengths - 1. Needs every length >= 2. Inputs are not modified.
    """
    if tokens.dim() != 2 or lengths.shape != (tokens.shape[0],) or positions.shape != lengths.shape:
        raise ValueError(
            f"tokens must be (B, S), lengths and positions (B,), got {tuple(tokens.shape)}, "
            f"{tuple(lengths.shape)} and {tuple(positions.shape)}"
        )
    if bool((lengths < 2).any()) or bool((positions < 0).any()) or bool((positions >= lengths).any()):
        raise ValueError("need lengths >= 2 and 0 <= positions < lengths in every row")
    B, T = tokens.shape
    j = torch.arange(T - 1)[None, :]  # (1, S-1); T = S here
    source = j + (j >= positions[:, None]).long()  # (B, S-1): skip the dropped word
    new_lengths = lengths - 1
    out = tokens.gather(1, source).masked_fill(j >= new_lengths[:, None], 0)  # (B, S-1)
    return out, new_lengths


@torch.no_grad()
def predict(model: nn.Module, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode predicted classes (B,) and weights, with no gradient."""
    model.eval()
    logits, weights = model(*inputs)
    return logits.argmax(-1), weights


def rouge_1(candidate: Sequence[str], reference: Sequence[str]) -> dict[str, float]:
    r"""ROUGE-1 (Lin 2004): unigram overlap between a candidate summary and a reference.

    .. math:: \text{overlap} = \sum_w \min(c_{\text{cand}}(w),\ c_{\text{ref}}(w)),\quad
              R = \frac{\text{overlap}}{|\text{ref}|},\quad P = \frac{\text{overlap}}{|\text{cand}|},\quad
              F_1 = \frac{2PR}{P + R}

    with :math:`c(w)` the count of word w (clipped, so a repeated word matches at
    most as often as the other side has it). No stemming, no stopword removal.
    Returns ``{"recall", "precision", "f1"}``; 0 where a denominator is 0.
    """
    if isinstance(candidate, str) or isinstance(reference, str):
        raise ValueError("candidate and reference must be sequences of words, not strings")
    overlap = sum((Counter(candidate) & Counter(reference)).values())
    recall = overlap / len(reference) if reference else 0.0
    precision = overlap / len(candidate) if candidate else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"recall": recall, "precision": precision, "f1": f1}


def top_k_sentences(weights: torch.Tensor, k: int) -> list[int]:
    """The indices of the ``k`` largest weights (S,), in document order."""
    if weights.dim() != 1 or not 1 <= k <= weights.shape[0]:
        raise ValueError(f"weights must be (S,) with 1 <= k <= S, got {tuple(weights.shape)} and k={k}")
    return sorted(weights.topk(k).indices.tolist())


def lead_k(n_sentences: int, k: int) -> list[int]:
    """The lead baseline: the first ``k`` sentences."""
    if not 1 <= k <= n_sentences:
        raise ValueError(f"need 1 <= k <= n_sentences, got k={k}, n_sentences={n_sentences}")
    return list(range(k))


def random_k(n_sentences: int, k: int, rng: random.Random) -> list[int]:
    """``k`` distinct sentences drawn by ``rng``, in document order."""
    if not 1 <= k <= n_sentences:
        raise ValueError(f"need 1 <= k <= n_sentences, got k={k}, n_sentences={n_sentences}")
    return sorted(rng.sample(range(n_sentences), k))


def mean_rouge(docs: DocumentSet, picks: Sequence[Sequence[int]]) -> dict[str, float]:
    """Average :func:`rouge_1` of the picked sentences against each document's key sentences."""
    if len(picks) != len(docs):
        raise ValueError(f"{len(picks)} picks for {len(docs)} documents")
    totals = Counter()
    for doc, key, pick in zip(docs.sentences, docs.key, picks):
        reference = [w for s, sent in enumerate(doc) if key[s] for w in sent]
        candidate = [w for s in pick for w in doc[s]]
        totals.update(rouge_1(candidate, reference))
    return {name: value / len(docs) for name, value in totals.items()}
