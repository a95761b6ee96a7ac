r"""Two sentences at once: natural language inference (NLI) with cross-attention.

Taught in chapter 10, section "Two sentences: matching and translation"
(``chapters/10b_matching_and_translation.ipynb``).

- :func:`nli_pairs`: seeded premise/hypothesis pairs from a small grammar,
  labelled entailment, neutral or contradiction, each with its true word
  alignment (for each hypothesis word, the premise position of the word that
  fills the same role, or -1); :func:`nli_label` is the labelling rule,
  computed from the two sentences alone.
- :class:`DecomposableAttention`: the attend / compare / aggregate model of
  Parikh et al. 2016, whose attention is cross-attention between the sentences:

  .. math::
      e_{ij} = \frac{\mathrm{attend}(a_i)\, \mathrm{attend}(b_j)^\top}{\sqrt{E}},\qquad
      \beta_i = \sum_j \mathrm{softmax}_j(e_{ij})\, \bar b_j,\qquad
      \alpha_j = \sum_i \mathrm{softmax}_i(e_{ij})\, \bar a_i

  then :math:`v_{1,i} = \mathrm{compare}(\bar a_i, \beta_i)`,
  :math:`v_{2,j} = \mathrm{compare}(\bar b_j, \alpha_j)`, logits
  :math:`\mathrm{classify}([\sum_i v_{1,i}; \sum_j v_{2,j}])` (:math:`\bar a_i`:
  word i with its neighbours, :func:`in_context`). The paper calls the three
  networks F, G and H; the course keeps F for a feed-forward width and H for
  a number of heads.
- :class:`MeanPoolClassifier`: the baseline without cross-attention: each
  sentence encoded alone as the mean of its word vectors, then an MLP on
  :math:`[u; v; |u - v|; u \odot v]` (or on the hypothesis alone).
- :class:`ConvMaxPoolClassifier`: the order-aware baseline without
  cross-attention: each sentence encoded alone by a width-3 convolution over
  its word vectors, max-pooled over positions (a sentence encoder of the kind
  InferSent compared, Conneau et al. 2017), then the same MLP on
  :math:`[u; v; |u - v|; u \odot v]`.
- :func:`train_classifier`, :func:`train_with_checkpoints` (the same training,
  with the predictions on a held-out batch every few steps: a learning curve),
  :func:`classifier_accuracy`, :func:`alignment_hits`.
- For the section's translation part: :func:`word_dictionary` (a word-for-word
  dictionary read off aligned pairs), :func:`translate_in_place`,
  :func:`in_place_token_accuracy` and :func:`monotone_alignment_accuracy`.

Shapes: B batch, T_a premise length and T_b hypothesis length (both padded),
D word-embedding width (``embed_size``), 3D the width of a word in context (D
with ``radius=0``), E the hidden width (``hidden_size``: the queries and keys
``attend`` gives, and the comparisons); ids are ``long`` with 0 = padding.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..attention import scaled_dot_product_attention
from ..data import Pair, Vocab
from ..masks import padding_mask

__all__ = [
    "LABELS", "ROLES", "NLIPair", "NLIBatch", "nli_pairs", "nli_vocab", "nli_label", "sentence_facts",
    "make_nli_batch", "nli_batches", "in_context", "DecomposableAttention", "MeanPoolClassifier",
    "ConvMaxPoolClassifier", "train_classifier", "train_with_checkpoints", "classifier_accuracy", "alignment_hits",
    "word_dictionary", "translate_in_place", "in_place_token_accuracy", "monotone_alignment_accuracy",
]

LABELS = ("entailment", "neutral", "contradiction")
ROLES = ("subject", "size", "subject_colour", "verb", "object", "object_colour", "place")

# --------------------------------------------------------------------------- the grammar

SUBJECTS = ("cat", "dog", "boy", "girl", "man", "woman")
OBJECTS = ("ball", "box", "kite", "hat", "book", "cup")
SIZES = ("small", "big")
COLOURS = ("red", "blue", "green", "black", "white", "yellow")
PLACES = ("park", "kitchen", "garden", "street", "beach", "yard")
# past tense: the same word in the active ("the cat chased the ball") and the passive ("the ball was chased by the cat")
VERBS = ("chased", "carried", "pushed", "kicked", "held", "watched")
FUNCTION_WORDS = ("the", "in", "was", "by")
_OPTIONAL = ("size", "subject_colour", "object_colour", "place")
_VALUES = {"subject": SUBJECTS, "size": SIZES, "subject_colour": COLOURS, "verb": VERBS,
           "object": OBJECTS, "object_colour": COLOURS, "place": PLACES}
_OTHER_COLOUR = {"subject_colour": "object_colour", "object_colour": "subject_colour"}
_WORD_CLASS = {**{w: "subject" for w in SUBJECTS}, **{w: "object" for w in OBJECTS}, **{w: "size" for w in SIZES},
               **{w: "colour" for w in COLOURS}, **{w: "verb" for w in VERBS},
               **{w: "place" for w in PLACES}}


@dataclass(frozen=True)
class NLIPair:
    """One premise/hypothesis pair.

    ``label`` is one of :data:`LABELS`; ``alignment[j]`` is the premise position
    of the word that fills the same role as hypothesis word j (the same fact,
    or for a contradiction the conflicting one), -1 for function words and for
    a fact the premise does not state; ``roles[j]`` is that role (one of
    :data:`ROLES`) or None; ``edit`` is the role changed (contradiction) or
    left out of the premise (neutral), None for entailment.
    """

    premise: tuple[str, ...]
    hypothesis: tuple[str, ...]
    label: str
    alignment: tuple[int, ...]
    roles: tuple[str | None, ...]
    edit: str | None

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        if not len(self.alignment) == len(self.roles) == len(self.hypothesis):
            raise ValueError(f"alignment ({len(self.alignment)}) and roles ({len(self.roles)}) need one entry "
                             f"per hypothesis word ({len(self.hypothesis)})")


def _render(facts: dict[str, str], passive: bool, place_first: bool) -> tuple[list[str], list[str | None]]:
    """Words and their roles for one sentence stating ``facts`` (role -> word)."""
    subject = [("the", None)] + [(facts[r], r) for r in ("size", "subject_colour") if r in facts]
    subject += [(facts["subject"], "subject")]
    obj = [("the", None)] + [(facts[r], r) for r in ("object_colour",) if r in facts] + [(facts["object"], "object")]
    if passive:
        clause = obj + [("was", None), (facts["verb"], "verb"), ("by", None)] + subject
    else:
        clause = subject + [(facts["verb"], "verb")] + obj
    place = [("in", None), ("the", None), (facts["place"], "place")] if "place" in facts else []
    words = place + clause if place_first else clause + place
    return [w for w, _ in words], [r for _, r in words]


def sentence_facts(words: Sequence[str]) -> dict[str, str]:
    """The facts a sentence of the grammar states, role -> word.

    A size or colour belongs to the noun that ends its noun phrase.
    """
    facts, pending = {}, []
    for w in words:
        if w in FUNCTION_WORDS:
            continue
        if w not in _WORD_CLASS:
            raise ValueError(f"{w!r} is not a word of the NLI grammar")
        kind = _WORD_CLASS[w]
        if kind in ("size", "colour"):
            pending.append((kind, w))
            continue
        facts[kind] = w
        if kind in ("subject", "object"):
            for modifier, value in pending:
                facts["size" if modifier == "size" else f"{kind}_colour"] = value
            pending = []
    return facts


def nli_label(premise: Sequence[str], hypothesis: Sequence[str]) -> str:
    """The rule behind the labels, both sentences describing the same scene (as in SNLI).

    contradiction: some fact of the hypothesis has a different value in the
    premise (another subject, verb, object, size or place, or another colour
    for the same thing);
    neutral: no conflict, but the hypothesis states a fact the premise does
    not; entailment: every fact of the hypothesis is in the premise.
    """
    p, h = sentence_facts(premise), sentence_facts(hypothesis)
    if any(role in p and p[role] != value for role, value in h.items()):
        return "contradiction"
    if any(role not in p for role in h):
        return "neutral"
    return "entailment"


def nli_pairs(n: int, *, seed: int = 0) -> list[NLIPair]:
    """``n`` premise/hypothesis pairs, labels uniform; the hypothesis alone says nothing of the label.

    Every sentence has a subject, a verb and an object; the subject's size,
    the subject's and the object's colours and a place are optional. Each pair
    first draws the hypothesis (at least one optional fact; the two colours
    differ), then the label, and only then the premise:

    - entailment: the premise states every fact of the hypothesis, and maybe more;
    - contradiction: the same, but one of the hypothesis's facts (its verb, or
      one of its optional facts) gets another value in the premise; a colour
      is changed by swapping the two things' colours, so the hypothesis's
      colour word is still in the premise, on the other noun;
    - neutral: the premise leaves out one of the hypothesis's optional facts;
      a left-out colour, if the hypothesis says nothing of the other thing's
      colour, reappears in the premise on the other noun.

    So whatever the label, the premise usually holds the hypothesis's colour
    words: which noun a colour belongs to decides. Word order varies independently in
    the two sentences (active or passive voice, the place phrase first or
    last), so the alignment crosses.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        hyp_optional = [r for r in _OPTIONAL if rng.random() < 0.5] or [rng.choice(_OPTIONAL)]
        facts = {role: rng.choice(_VALUES[role]) for role in ROLES if role != "object_colour"}
        facts["object_colour"] = rng.choice([c for c in COLOURS if c != facts["subject_colour"]])
        hyp_facts = {r: facts[r] for r in ("subject", "verb", "object", *hyp_optional)}
        label = rng.choice(LABELS)
        prem_facts = {r: v for r, v in facts.items() if r in hyp_facts or rng.random() < 0.5}
        edit = None
        if label == "contradiction":
            edit = rng.choice(["subject", "verb", "object", *hyp_optional])
            if edit in _OTHER_COLOUR:  # swap the colours: the word stays, its noun changes
                other = _OTHER_COLOUR[edit]
                prem_facts[edit], prem_facts[other] = facts[other], facts[edit]
            else:
                prem_facts[edit] = rng.choice([v for v in _VALUES[edit] if v != facts[edit]])
        elif label == "neutral":
            edit = rng.choice(hyp_optional)
            del prem_facts[edit]
            if edit in _OTHER_COLOUR and _OTHER_COLOUR[edit] not in hyp_facts:
                prem_facts[_OTHER_COLOUR[edit]] = facts[edit]
        premise, prem_roles = _render(prem_facts, rng.random() < 0.5, rng.random() < 0.5)
        hypothesis, roles = _render(hyp_facts, rng.random() < 0.5, rng.random() < 0.5)
        where = {r: i for i, r in enumerate(prem_roles) if r is not None}
        alignment = tuple(where.get(r, -1) if r is not None else -1 for r in roles)
        pairs.append(NLIPair(tuple(premise), tuple(hypothesis), label, alignment, tuple(roles), edit))
    return pairs


def nli_vocab() -> Vocab:
    """Every word of the grammar (ids 0, 1, 2 are the specials of :class:`attention_course.data.Vocab`)."""
    return Vocab([*FUNCTION_WORDS, *_WORD_CLASS])


# --------------------------------------------------------------------------- batches


@dataclass
class NLIBatch:
    """Padded tensors for B pairs: premise (B, T_a), hypothesis (B, T_b) ids (0 = padding), their
    lengths (B,), label (B,) indices into :data:`LABELS`, alignment (B, T_b) (-1: no counterpart or padding)."""

    premise: torch.Tensor
    premise_lengths: torch.Tensor
    hypothesis: torch.Tensor
    hypothesis_lengths: torch.Tensor
    label: torch.Tensor
    alignment: torch.Tensor
    pairs: list[NLIPair]


def make_nli_batch(pairs: Sequence[NLIPair], vocab: Vocab) -> NLIBatch:
    """Pad a list of pairs into an :class:`NLIBatch`."""
    if not pairs:
        raise ValueError("make_nli_batch needs at least one pair")
    B = len(pairs)
    P, Q = max(len(p.premise) for p in pairs), max(len(p.hypothesis) for p in pairs)
    premise, hypothesis = torch.zeros(B, P, dtype=torch.long), torch.zeros(B, Q, dtype=torch.long)
    alignment = torch.full((B, Q), -1, dtype=torch.long)
    for b, p in enumerate(pairs):
        premise[b, : len(p.premise)] = torch.tensor(vocab.encode(p.premise))
        hypothesis[b, : len(p.hypothesis)] = torch.tensor(vocab.encode(p.hypothesis))
        alignment[b, : len(p.hypothesis)] = torch.tensor(p.alignment)
    return NLIBatch(
        premise, torch.tensor([len(p.premise) for p in pairs]),
        hypothesis, torch.tensor([len(p.hypothesis) for p in pairs]),
        torch.tensor([LABELS.index(p.label) for p in pairs]), alignment, list(pairs))


def nli_batches(pairs: Sequence[NLIPair], vocab: Vocab, batch_size: int, *, seed: int = 0) -> Iterator[NLIBatch]:
    """Endless shuffled batches, a new permutation each epoch (from ``seed``)."""
    if batch_size < 1 or len(pairs) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} pairs, got {len(pairs)}")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(pairs))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield make_nli_batch([pairs[i] for i in order[start : start + batch_size]], vocab)


# --------------------------------------------------------------------------- models


def _check_pair_inputs(premise: torch.Tensor, premise_lengths: torch.Tensor,
                       hypothesis: torch.Tensor, hypothesis_lengths: torch.Tensor) -> None:
    for name, ids, lengths in (("premise", premise, premise_lengths), ("hypothesis", hypothesis, hypothesis_lengths)):
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"{name} must be a long tensor (B, length), got "
                             f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (ids.shape[0],):
            raise ValueError(f"{name}_lengths must be (B,) = ({ids.shape[0]},), got "
                             f"{tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else type(lengths).__name__}")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
            raise ValueError(f"{name}_lengths must lie in 1..{ids.shape[1]}, got {lengths.tolist()}")
    if premise.shape[0] != hypothesis.shape[0]:
        raise ValueError(f"premise {tuple(premise.shape)} and hypothesis {tuple(hypothesis.shape)} "
                         f"must have the same batch size B")


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out), nn.ReLU())


def _check_positive(**sizes: int) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def _pair_features(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[x; y; |x - y|; x * y] along the last dim: the comparison features of both models."""
    return torch.cat([x, y, (x - y).abs(), x * y], dim=-1)


def in_context(x: torch.Tensor, lengths: torch.Tensor, radius: int = 1) -> torch.Tensor:
    r"""Each word vector with the sums of its ``radius`` left and right neighbours.

    .. math:: \bar x_i = [x_i;\ \textstyle\sum_{\delta=1}^{r} x_{i-\delta};\ \sum_{\delta=1}^{r} x_{i+\delta}]

    with r = ``radius``. Positions outside a sentence contribute zeros, and
    padding positions are all zeros. x (B, T, D), lengths (B,) -> (B, T, 3D);
    ``radius=0`` returns x alone (B, T, D), padding zeroed. In our grammar a colour stands just
    before its noun, so with ``radius=1`` a noun's vector holds its colour,
    and the colour's vector its noun. Chapter 10 (``10b_matching_and_translation``).
    """
    if x.dim() != 3 or lengths.shape != (x.shape[0],):
        raise ValueError(f"x must be (B, T, D) and lengths (B,), got {tuple(x.shape)} and {tuple(lengths.shape)}")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    B, T, E = x.shape
    keep = padding_mask(lengths, T)[..., None]  # (B, T, 1)
    x = x * keep  # (B, T, D): zero past each length
    if radius == 0:
        return x
    padded = torch.cat([x.new_zeros(B, radius, E), x, x.new_zeros(B, radius, E)], dim=1)  # (B, T + 2r, D)
    left = sum(padded[:, radius - k : radius - k + T] for k in range(1, radius + 1))  # (B, T, D)
    right = sum(padded[:, radius + k : radius + k + T] for k in range(1, radius + 1))  # (B, T, D)
    return torch.cat([x, left, right], dim=-1) * keep  # (B, T, 3D), zero at padding positions


class DecomposableAttention(nn.Module):
    r"""The decomposable attention model of Parikh et al. 2016: attend, compare, aggregate.

    With word embeddings :math:`a_1..a_{T_a}` (premise), :math:`b_1..b_{T_b}` (hypothesis)
    and the same words in context, :math:`\bar a_i, \bar b_j` (:func:`in_context`;
    with ``radius=0`` the embeddings alone, as in the paper's plain model):

    - **attend**: :math:`e_{ij} = \mathrm{attend}(a_i)\, \mathrm{attend}(b_j)^\top / \sqrt{E}`; premise word i
      queries the hypothesis, :math:`\beta_i = \sum_j \mathrm{softmax}_j(e_{ij})\, \bar b_j`,
      and hypothesis word j queries the premise, :math:`\alpha_j = \sum_i \mathrm{softmax}_i(e_{ij})\, \bar a_i`;
    - **compare**:
      :math:`v_{1,i} = \mathrm{compare}([\bar a_i; \beta_i; |\bar a_i - \beta_i|; \bar a_i \odot \beta_i])`,
      and :math:`v_{2,j}` likewise from :math:`\bar b_j, \alpha_j`;
    - **aggregate**: :math:`v_1 = \sum_i v_{1,i}`, :math:`v_2 = \sum_j v_{2,j}`,
      logits :math:`\mathrm{classify}([v_1; v_2])`.

    attend and compare are two-layer ReLU networks, classify has one hidden
    ReLU layer (the paper's F, G and H). The attention is
    :func:`attention_course.scaled_dot_product_attention`, padding keys masked:
    queries and keys are ``attend`` of the words alone (so a word is aligned
    with a word), values the words in context. Departures from the paper, for
    a model that trains in seconds on a CPU: scores divided by
    :math:`\sqrt{E}` (chapter 3); compare also gets the difference and product
    (the baseline's features); and context from fixed neighbour sums, where
    the paper's optional intra-sentence attention learns it.

    ``forward(premise (B, T_a), premise_lengths (B,), hypothesis (B, T_b), hypothesis_lengths (B,))``
    returns logits (B, 3) and ``{"premise_to_hypothesis": (B, T_a, T_b), "hypothesis_to_premise": (B, T_b, T_a)}``;
    rows of padding queries are zero. Taught in chapter 10 (``10b_matching_and_translation``).
    """

    def __init__(self, vocab_size: int, embed_size: int = 32, hidden_size: int = 48, num_classes: int = 3,
                 *, radius: int = 1) -> None:
        super().__init__()
        _check_positive(vocab_size=vocab_size, embed_size=embed_size, hidden_size=hidden_size, num_classes=num_classes)
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"radius must be a non-negative int, got {radius!r}")
        self.radius = radius
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        d_word = (3 if radius else 1) * embed_size
        self.attend = _mlp(embed_size, hidden_size, hidden_size)  # the paper's F: D -> E
        self.compare = _mlp(4 * d_word, hidden_size, hidden_size)  # the paper's G
        self.classify = nn.Sequential(nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(),
                                      nn.Linear(hidden_size, num_classes))  # the paper's H

    def forward(self, premise: torch.Tensor, premise_lengths: torch.Tensor, hypothesis: torch.Tensor,
                hypothesis_lengths: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _check_pair_inputs(premise, premise_lengths, hypothesis, hypothesis_lengths)
        P, Q = premise.shape[1], hypothesis.shape[1]
        keep_a = padding_mask(premise_lengths, P)  # (B, T_a): True = real word; P = T_a, Q = T_b
        keep_b = padding_mask(hypothesis_lengths, Q)  # (B, T_b)
        a, b = self.embedding(premise), self.embedding(hypothesis)  # (B, T_a, D), (B, T_b, D)
        a_ctx = in_context(a, premise_lengths, self.radius)  # (B, T_a, 3D)
        b_ctx = in_context(b, hypothesis_lengths, self.radius)  # (B, T_b, 3D)
        fa, fb = self.attend(a), self.attend(b)  # (B, T_a, E), (B, T_b, E)
        # attend: e_ij = attend(a_i).attend(b_j) / sqrt(E); each word of one sentence queries the other's words
        mask_ab = keep_a[:, :, None] & keep_b[:, None, :]  # (B, T_a, T_b)
        beta, w_ab = scaled_dot_product_attention(fa, fb, b_ctx, mask_ab)  # (B, T_a, 3D), (B, T_a, T_b)
        # (B, T_b, 3D), (B, T_b, T_a):
        alpha, w_ba = scaled_dot_product_attention(fb, fa, a_ctx, mask_ab.transpose(1, 2))
        # compare each word with its soft-aligned counterpart; aggregate by summing over the real words
        v1 = self.compare(_pair_features(a_ctx, beta)) * keep_a[..., None]  # (B, T_a, E)
        v2 = self.compare(_pair_features(b_ctx, alpha)) * keep_b[..., None]  # (B, T_b, E)
        logits = self.classify(torch.cat([v1.sum(1), v2.sum(1)], dim=-1))  # (B, 3)
        return logits, {"premise_to_hypothesis": w_ab, "hypothesis_to_premise": w_ba}


class MeanPoolClassifier(nn.Module):
    r"""The baseline without cross-attention: each sentence encoded on its own, then compared.

    :math:`u = \frac{1}{T_a}\sum_i \bar a_i`, :math:`v = \frac{1}{T_b}\sum_j \bar b_j`: the means of
    the same word vectors as :class:`DecomposableAttention`'s (``radius=0``: the
    plain mean of embeddings), then logits = MLP(:math:`[u; v; |u - v|; u \odot v]`)
    with two hidden ReLU layers. With ``hypothesis_only=True`` the MLP sees
    :math:`v` alone: can the label be guessed without reading the premise?

    Same call as :class:`DecomposableAttention`; returns logits (B, 3) and None
    (nothing attends). Chapter 10's baseline (``10b_matching_and_translation``).
    """

    def __init__(self, vocab_size: int, embed_size: int = 32, hidden_size: int = 80, num_classes: int = 3,
                 *, radius: int = 1, hypothesis_only: bool = False) -> None:
        super().__init__()
        _check_positive(vocab_size=vocab_size, embed_size=embed_size, hidden_size=hidden_size, num_classes=num_classes)
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"radius must be a non-negative int, got {radius!r}")
        self.radius, self.hypothesis_only = radius, hypothesis_only
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        d_word = (3 if radius else 1) * embed_size
        d_in = d_word if hypothesis_only else 4 * d_word
        self.classify = nn.Sequential(nn.Linear(d_in, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size),
                                      nn.ReLU(), nn.Linear(hidden_size, num_classes))

    def _encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = in_context(self.embedding(ids), lengths, self.radius)  # (B, T, 3D), zero past each length
        return x.sum(1) / lengths[:, None]  # (B, 3D): the mean over the real words

    def forward(self, premise: torch.Tensor, premise_lengths: torch.Tensor, hypothesis: torch.Tensor,
                hypothesis_lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        _check_pair_inputs(premise, premise_lengths, hypothesis, hypothesis_lengths)
        v = self._encode(hypothesis, hypothesis_lengths)  # (B, 3D)
        if self.hypothesis_only:
            return self.classify(v), None
        u = self._encode(premise, premise_lengths)  # (B, 3D)
        return self.classify(_pair_features(u, v)), None  # (B, 3)


class ConvMaxPoolClassifier(nn.Module):
    r"""An order-aware baseline without cross-attention: each sentence convolved, max-pooled, then compared.

    Each sentence is encoded on its own: its word embeddings
    :math:`x_1..x_T` go through one convolution of width ``width`` (3: a
    word with its left and right neighbours) and a ReLU,
    :math:`h_t = \mathrm{ReLU}(W [x_{t-1}; x_t; x_{t+1}] + c)`, and the
    sentence vector is the largest value of each channel over the real words,
    :math:`u = \max_t h_t` (premise) and :math:`v` (hypothesis). The logits are
    an MLP of :math:`[u; v; |u - v|; u \odot v]` with two hidden ReLU layers,
    as in :class:`MeanPoolClassifier`. Unlike the mean of word vectors, a
    channel can fire on a word *together with* its neighbour ("red" before
    "cat", not "red" before "ball"), so the encoder keeps which colour belongs to
    which noun; the max over positions keeps only whether such a pattern
    occurs. A sentence encoder of the kind InferSent compared (a convolution
    or BiLSTM with max-pooling; Conneau et al. 2017); nothing attends
    across the two sentences.

    Same call as :class:`DecomposableAttention`; returns logits (B, 3) and None.
    Shapes: ids (B, T), embeddings (B, T, D), channels (B, T, C) with
    C = ``channels``. Chapter 10's order-aware baseline (``10b_matching_and_translation``).
    """

    def __init__(self, vocab_size: int, embed_size: int = 32, channels: int = 64, hidden_size: int = 64,
                 num_classes: int = 3, *, width: int = 3) -> None:
        super().__init__()
        _check_positive(vocab_size=vocab_size, embed_size=embed_size, channels=channels, hidden_size=hidden_size,
                        num_classes=num_classes, width=width)
        if width % 2 == 0:
            raise ValueError(f"width must be odd (a word and as many neighbours on each side), got {width}")
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.conv = nn.Conv1d(embed_size, channels, width, padding=width // 2)  # zeros beyond each end
        self.classify = nn.Sequential(nn.Linear(4 * channels, hidden_size), nn.ReLU(),
                                      nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                                      nn.Linear(hidden_size, num_classes))

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One sentence vector per row: ids (B, T), lengths (B,) -> (B, C)."""
        T = ids.shape[1]
        keep = padding_mask(lengths, T)[..., None]  # (B, T, 1): True = real word
        x = self.embedding(ids) * keep  # (B, T, D), zero past each length
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, D, T) -> (B, C, T) -> (B, T, C)
        return h.masked_fill(~keep, float("-inf")).amax(dim=1)  # (B, C): max over the real words

    def forward(self, premise: torch.Tensor, premise_lengths: torch.Tensor, hypothesis: torch.Tensor,
                hypothesis_lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        _check_pair_inputs(premise, premise_lengths, hypothesis, hypothesis_lengths)
        u = self.encode(premise, premise_lengths)  # (B, C)
        v = self.encode(hypothesis, hypothesis_lengths)  # (B, C)
        return self.classify(_pair_features(u, v)), None  # (B, 3)


# --------------------------------------------------------------------------- training and measuring


def train_classifier(model: nn.Module, data: Iterator[NLIBatch], steps: int, *, lr: float = 3e-3
                     ) -> dict[str, list[float] | float]:
    """Cross-entropy on the labels with Adam; returns ``{"loss": [...per step...], "seconds": wall time}``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(data)
        logits, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        loss = nn.functional.cross_entropy(logits, batch.label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return {"loss": losses, "seconds": time.perf_counter() - start}


def train_with_checkpoints(model: nn.Module, data: Iterator[NLIBatch], steps: int, eval_batch: NLIBatch, *,
                           lr: float = 3e-3, every: int = 50) -> dict[str, object]:
    """:func:`train_classifier`'s training, step for step, with a look at ``eval_batch`` every ``every`` steps.

    The updates are exactly those of ``train_classifier(model, data, steps, lr=lr)``
    (the looks are made in eval mode, without gradients). Returns
    ``{"loss": [...per step...], "seconds": training wall time (the looks excluded),
    "steps": [every, 2 * every, ...], "predicted": (checkpoints, N) long tensor}``,
    the predicted label of each of the N pairs of ``eval_batch`` at each checkpoint,
    so that any share of the pairs can be scored along the way (a learning curve).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= steps:
        raise ValueError(f"every must be an int in 1..steps={steps}, got {every!r}")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses, checkpoints, predicted, seconds = [], [], [], 0.0
    for step in range(1, steps + 1):
        model.train()
        start = time.perf_counter()
        batch = next(data)
        logits, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
        loss = nn.functional.cross_entropy(logits, batch.label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        seconds += time.perf_counter() - start
        losses.append(loss.item())
        if step % every == 0:
            model.eval()
            with torch.no_grad():
                logits, _ = model(eval_batch.premise, eval_batch.premise_lengths, eval_batch.hypothesis,
                                  eval_batch.hypothesis_lengths)
            checkpoints.append(step)
            predicted.append(logits.argmax(-1))  # (N,)
    model.train()
    return {"loss": losses, "seconds": seconds, "steps": checkpoints, "predicted": torch.stack(predicted)}


@torch.no_grad()
def classifier_accuracy(model: nn.Module, batch: NLIBatch) -> float:
    """Share of the batch's pairs whose predicted label (the argmax of the logits) is right."""
    was_training = model.training
    model.eval()
    logits, _ = model(batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths)
    model.train(was_training)
    return float((logits.argmax(-1) == batch.label).float().mean())


def alignment_hits(weights: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """For each hypothesis word with a counterpart, whether its largest weight is on that counterpart.

    weights (B, T_b, T_a): the hypothesis-to-premise weights; alignment (B, T_b), -1
    where a word has no counterpart. Returns a bool vector, one entry per
    aligned word (in row-major order), so ``.float().mean()`` is the alignment accuracy.
    """
    if weights.dim() != 3 or alignment.shape != weights.shape[:2]:
        raise ValueError(f"weights must be (B, T_b, T_a) and alignment (B, T_b), got {tuple(weights.shape)} "
                         f"and {tuple(alignment.shape)}")
    has = alignment >= 0  # (B, T_b)
    return (weights.argmax(-1) == alignment)[has]


# --------------------------------------------------------------------------- translation baselines


def word_dictionary(pairs: Sequence[Pair]) -> dict[str, str]:
    """Source word -> target word, read off each pair's alignment (``target[t]`` translates ``source[alignment[t]]``).

    Raises ``ValueError`` if a source word is seen with two translations (then
    no word-for-word dictionary exists).
    """
    dictionary: dict[str, str] = {}
    for p in pairs:
        for t, s in enumerate(p.alignment):
            word, translation = p.source[s], p.target[t]
            if dictionary.setdefault(word, translation) != translation:
                raise ValueError(f"{word!r} is translated both {dictionary[word]!r} and {translation!r}")
    return dictionary


def translate_in_place(source: Sequence[str], dictionary: dict[str, str]) -> list[str]:
    """Each source word replaced by its dictionary translation, in the source's order (no reordering)."""
    missing = [w for w in source if w not in dictionary]
    if missing:
        raise ValueError(f"words missing from the dictionary: {missing[:5]}")
    return [dictionary[w] for w in source]


def in_place_token_accuracy(predictions: Sequence[Sequence[str]], pairs: Sequence[Pair]) -> float:
    """Share of reference tokens (each target word and the final ``<eos>``) that a prediction has in place.

    The same count as :func:`attention_course.seq2seq.token_accuracy`, for
    predictions given as word lists: position t of the prediction is compared
    with position t of the reference, and a prediction of the right length
    also gets the ``<eos>`` right.
    """
    if len(predictions) != len(pairs):
        raise ValueError(f"{len(predictions)} predictions for {len(pairs)} pairs")
    correct = total = 0
    for pred, p in zip(predictions, pairs):
        reference, guess = list(p.target) + ["<eos>"], list(pred) + ["<eos>"]
        correct += sum(g == r for g, r in zip(guess, reference))
        total += len(reference)
    return correct / total


def monotone_alignment_accuracy(pairs: Sequence[Pair]) -> float:
    """Share of target words whose true source position is their own position (the diagonal guess)."""
    if not pairs:
        raise ValueError("monotone_alignment_accuracy needs at least one pair")
    hits = sum(int(s == min(t, len(p.source) - 1)) for p in pairs for t, s in enumerate(p.alignment))
    return hits / sum(len(p.alignment) for p in pairs)
