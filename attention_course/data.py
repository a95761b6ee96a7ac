"""Offline, seeded toy tasks for the sequence-to-sequence chapters. No downloads, ever.

- :func:`toy_translation`: a small English -> French-like language. A lexicon
  maps word to word, and one reordering rule moves adjectives after their noun
  (in reverse order), so the alignment between source and target crosses:
  ``the small black cat sees a dog`` -> ``le chat noir petit voit un chien``.
  The grammar is made up for the course; it is *like* French, not French.
- :func:`reverse_digits`: a digit sequence and its reverse, the classic
  long-range task (target position t aligns with source position S - 1 - t).
- :func:`find_by_colour` (chapter 4): pick the one item of the asked colour.
- :func:`previous_and_matching` (chapter 6): read two places at once, the
  previous token and the earlier token with the same symbol.

Every example carries its true **alignment** (for each target token, the source
position it translates), so a model's attention can be checked against it.
Vocabularies, padding, batching and length buckets are here too. Used in
chapters 1 and 2.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "PAD", "BOS", "EOS", "Vocab", "Pair", "Batch",
    "toy_translation", "toy_translation_vocabs", "reverse_digits", "make_batch", "batches", "length_buckets",
    "FindTask", "find_by_colour", "TwoPlacesTask", "previous_and_matching",
]

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


class Vocab:
    """Token <-> id. Ids 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        specials = [PAD, BOS, EOS]
        self.itos = specials + sorted(set(tokens) - set(specials))
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        unknown = [t for t in tokens if t not in self.stoi]
        if unknown:
            raise ValueError(f"tokens not in the vocabulary: {unknown[:5]}")
        return [self.stoi[t] for t in tokens]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens up to the first ``<eos>``, without ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.itos[i])
        return out


@dataclass(frozen=True)
class Pair:
    """One example: source and target tokens, and for each target token its source position."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.alignment) != len(self.target):
            raise ValueError(f"alignment has {len(self.alignment)} entries for {len(self.target)} target tokens")


# --------------------------------------------------------------------------- the toy language

NOUNS = {
    "cat": "chat", "dog": "chien", "bird": "oiseau", "house": "maison", "tree": "arbre", "car": "voiture",
    "child": "enfant", "teacher": "professeur", "river": "fleuve", "book": "livre", "city": "ville",
    "horse": "cheval", "flower": "fleur", "garden": "jardin", "friend": "ami", "apple": "pomme",
}
ADJECTIVES = {
    "small": "petit", "big": "grand", "black": "noir", "white": "blanc", "red": "rouge", "old": "vieux",
    "young": "jeune", "green": "vert", "happy": "heureux", "quiet": "calme", "blue": "bleu", "strong": "fort",
}
VERBS = {
    "sees": "voit", "likes": "aime", "follows": "suit", "finds": "trouve", "draws": "dessine",
    "hears": "entend", "takes": "prend", "watches": "regarde",
}
INTRANSITIVE = {"sleeps": "dort", "runs": "court", "sings": "chante", "waits": "attend"}
DETERMINERS = {"the": "le", "a": "un", "this": "ce"}
CONJUNCTION = {"and": "et"}


def _translate(source: list[str]) -> tuple[list[str], list[int]]:
    """Word-for-word, with the adjectives of each noun phrase moved after the noun, reversed."""
    target, alignment = [], []
    i = 0
    while i < len(source):
        word = source[i]
        if word in DETERMINERS:
            j = i + 1
            while source[j] in ADJECTIVES:
                j += 1  # source[j] is the noun
            target += [DETERMINERS[word], NOUNS[source[j]]]
            alignment += [i, j]
            for k in range(j - 1, i, -1):  # adjectives, last first
                target.append(ADJECTIVES[source[k]])
                alignment.append(k)
            i = j + 1
        else:
            target.append({**VERBS, **INTRANSITIVE, **CONJUNCTION}[word])
            alignment.append(i)
            i += 1
    return target, alignment


_NOUNS, _ADJECTIVES = sorted(NOUNS), sorted(ADJECTIVES)
_VERBS, _INTRANSITIVE, _DETERMINERS = sorted(VERBS), sorted(INTRANSITIVE), sorted(DETERMINERS)


def _sentence(rng: random.Random, length: int, max_adjectives: int) -> list[str] | None:
    """A sentence of exactly ``length`` tokens, or None if this draw got stuck.

    Start from c bare intransitive clauses ("the cat sleeps", joined by "and":
    4c - 1 tokens), then grow random parts until the length is reached: a clause
    becomes transitive (+2: a verb's object "the dog"), or a noun phrase gains an
    adjective (+1).
    """
    longest = 2 * (2 + max_adjectives) + 2  # tokens per clause, with its "and"
    feasible = [c for c in range(1, length + 1) if 4 * c - 1 <= length <= longest * c - 1]
    if not feasible:
        return None
    c = rng.choice(feasible[: max(1, (len(feasible) + 1) // 2)])  # favour fewer, fuller clauses
    transitive = [False] * c
    adjectives = [[0, 0] for _ in range(c)]  # per clause: adjectives of subject, object
    extra = length - (4 * c - 1)
    while extra > 0:
        moves = [("obj", i) for i in range(c) if not transitive[i] and extra >= 2]
        moves += [("adj", i, 0) for i in range(c) if adjectives[i][0] < max_adjectives]
        moves += [("adj", i, 1) for i in range(c) if transitive[i] and adjectives[i][1] < max_adjectives]
        if not moves:
            return None
        move = rng.choice(moves)
        if move[0] == "obj":
            transitive[move[1]] = True
            extra -= 2
        else:
            adjectives[move[1]][move[2]] += 1
            extra -= 1

    def noun_phrase(n_adj: int) -> list[str]:
        return [rng.choice(_DETERMINERS)] + rng.sample(_ADJECTIVES, n_adj) + [rng.choice(_NOUNS)]

    words: list[str] = []
    for i in range(c):
        if i:
            words.append("and")
        if transitive[i]:
            words += noun_phrase(adjectives[i][0]) + [rng.choice(_VERBS)] + noun_phrase(adjectives[i][1])
        else:
            words += noun_phrase(adjectives[i][0]) + [rng.choice(_INTRANSITIVE)]
    return words


def toy_translation(n: int, min_len: int = 4, max_len: int = 30, *, seed: int = 0, max_adjectives: int = 2) -> list[Pair]:
    """``n`` sentence pairs whose source lengths are spread evenly over ``min_len..max_len``.

    A sentence is one or more clauses joined by "and"; a clause is a noun
    phrase, a verb and a noun phrase, or a noun phrase and an intransitive verb;
    a noun phrase is a determiner, up to ``max_adjectives`` adjectives and a
    noun. A length is drawn uniformly, then a sentence of exactly that length is
    generated, so every length is equally represented.
    """
    if not 3 <= min_len <= max_len:
        raise ValueError(f"need 3 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if max_adjectives < 0:
        raise ValueError(f"max_adjectives must be >= 0, got {max_adjectives}")
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        length = rng.randint(min_len, max_len)
        for _ in range(100):  # a stuck draw retries the same length, so lengths stay uniform
            words = _sentence(rng, length, max_adjectives)
            if words is not None:
                break
        else:
            raise ValueError(f"no sentence has exactly {length} tokens with max_adjectives={max_adjectives}")
        target, alignment = _translate(words)
        pairs.append(Pair(tuple(words), tuple(target), tuple(alignment)))
    return pairs


def toy_translation_vocabs() -> tuple[Vocab, Vocab]:
    """Source and target vocabularies of :func:`toy_translation`, from the whole lexicon."""
    source = [*NOUNS, *ADJECTIVES, *VERBS, *INTRANSITIVE, *DETERMINERS, *CONJUNCTION]
    target = [*NOUNS.values(), *ADJECTIVES.values(), *VERBS.values(), *INTRANSITIVE.values(),
              *DETERMINERS.values(), *CONJUNCTION.values()]
    return Vocab(source), Vocab(target)


def reverse_digits(n: int, min_len: int = 4, max_len: int = 30, *, seed: int = 0) -> list[Pair]:
    """``n`` random digit strings and their reverses; lengths uniform in ``min_len..max_len``."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        S = int(rng.integers(min_len, max_len + 1))
        digits = tuple(str(d) for d in rng.integers(0, 10, size=S))
        pairs.append(Pair(digits, digits[::-1], tuple(range(S - 1, -1, -1))))
    return pairs


# --------------------------------------------------------------------------- batching


@dataclass
class Batch:
    """Padded tensors for one batch (B sequences).

    src (B, S) ids; src_lengths (B,); tgt_in (B, T) = ``<bos>`` + target;
    tgt_out (B, T) = target + ``<eos>`` (the labels); padding is id 0.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    pairs: list[Pair]


def make_batch(pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab) -> Batch:
    """Pad a list of pairs into a :class:`Batch`."""
    if not pairs:
        raise ValueError("make_batch needs at least one pair")
    B = len(pairs)
    S = max(len(p.source) for p in pairs)
    T = max(len(p.target) for p in pairs) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    for b, p in enumerate(pairs):
        s, t = src_vocab.encode(p.source), tgt_vocab.encode(p.target)
        src[b, : len(s)] = torch.tensor(s)
        tgt_in[b, : len(t) + 1] = torch.tensor([tgt_vocab.bos_id] + t)
        tgt_out[b, : len(t) + 1] = torch.tensor(t + [tgt_vocab.eos_id])
    lengths = torch.tensor([len(p.source) for p in pairs])
    return Batch(src, lengths, tgt_in, tgt_out, list(pairs))


def batches(
    pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int, *, seed: int = 0,
    by_length: bool = True,
) -> Iterator[Batch]:
    """Endless shuffled batches (a new permutation each epoch, from ``seed``).

    With ``by_length``, each batch holds sentences of similar source length (a
    pool of 50 batches is sorted by length, cut into batches, and the batches
    shuffled), so little time goes into padding; the order stays random.
    """
    if batch_size < 1 or len(pairs) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} pairs, got {len(pairs)}")
    rng = np.random.default_rng(seed)
    pool = 50 * batch_size
    while True:
        order = rng.permutation(len(pairs))
        groups = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            if by_length:
                chunk = sorted(chunk, key=lambda i: len(pairs[i].source))
            groups += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
        for g in rng.permutation(len(groups)):
            yield make_batch([pairs[i] for i in groups[g]], src_vocab, tgt_vocab)


def length_buckets(pairs: Sequence[Pair], edges: Sequence[int]) -> dict[tuple[int, int], list[Pair]]:
    """Group pairs by source length: bucket (lo, hi) holds lo <= len(source) < hi."""
    buckets: dict[tuple[int, int], list[Pair]] = {(lo, hi): [] for lo, hi in zip(edges[:-1], edges[1:])}
    for p in pairs:
        for lo, hi in buckets:
            if lo <= len(p.source) < hi:
                buckets[(lo, hi)].append(p)
                break
    return buckets


# --------------------------------------------------------------------------- a picking task (chapter 4)


@dataclass
class FindTask:
    """Find the item of the asked colour and copy its symbol (chapter 4).

    symbols (B, S) and colours (B, S) describe S items of each of B examples;
    query (B,) is the asked colour, which exactly one item of each example has,
    at position (B,); target (B,) = that item's symbol.
    """

    symbols: torch.Tensor
    colours: torch.Tensor
    query: torch.Tensor
    position: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return self.symbols.shape[0]

    def __getitem__(self, index: slice | torch.Tensor) -> "FindTask":
        return FindTask(self.symbols[index], self.colours[index], self.query[index],
                        self.position[index], self.target[index])


def find_by_colour(n: int, length: int = 16, n_symbols: int = 10, n_colours: int = 6, *, seed: int = 0) -> FindTask:
    """``n`` examples of :class:`FindTask`: S = ``length`` items, one of them in the asked colour.

    The other items take the other ``n_colours - 1`` colours at random, so the
    answer is never ambiguous and picking one item is all the task needs.
    """
    if n < 1 or length < 2 or n_symbols < 2 or n_colours < 2:
        raise ValueError(f"need n >= 1, length >= 2, n_symbols >= 2, n_colours >= 2; "
                         f"got n={n}, length={length}, n_symbols={n_symbols}, n_colours={n_colours}")
    g = torch.Generator().manual_seed(seed)
    symbols = torch.randint(n_symbols, (n, length), generator=g)  # (B, S), B = n
    query = torch.randint(n_colours, (n,), generator=g)  # (B,)
    position = torch.randint(length, (n,), generator=g)  # (B,)
    others = torch.randint(n_colours - 1, (n, length), generator=g)  # (B, S), in 0..n_colours-2
    colours = others + (others >= query[:, None]).long()  # (B, S): every colour but the asked one
    colours[torch.arange(n), position] = query
    target = symbols[torch.arange(n), position]
    return FindTask(symbols, colours, query, position, target)


@dataclass(frozen=True)
class TwoPlacesTask:
    """Sequences of T = 2·``half`` tokens, each a (symbol, value) pair; chapter 6's task.

    The first half holds ``half`` distinct symbols; the second half the same
    symbols in another order, with fresh values. For each second-half position
    t = half + i the answer has two parts, found at two different places:

    - ``prev`` (B, half): the value of the token just before, at t - 1;
    - ``match`` (B, half): the value of the first-half token with the same
      symbol as token t, at position ``match_position`` (B, half).

    ``symbols`` and ``values`` are (B, T) long, for B examples.
    """

    symbols: torch.Tensor
    values: torch.Tensor
    prev: torch.Tensor
    match: torch.Tensor
    match_position: torch.Tensor

    def __len__(self) -> int:
        return self.symbols.shape[0]

    def __getitem__(self, index: slice | torch.Tensor) -> "TwoPlacesTask":
        return TwoPlacesTask(self.symbols[index], self.values[index], self.prev[index],
                             self.match[index], self.match_position[index])


def previous_and_matching(n: int, half: int = 8, n_symbols: int = 16, n_values: int = 8, *,
                          seed: int = 0) -> TwoPlacesTask:
    """``n`` examples of :class:`TwoPlacesTask`: each answer needs two tokens at two places.

    One softmax over the positions can put its weight on one place, or split
    it; two heads can each take one place (chapter 6).
    """
    if n < 1 or half < 1 or n_symbols < half or n_values < 2:
        raise ValueError(f"need n >= 1, half >= 1, n_symbols >= half, n_values >= 2; "
                         f"got n={n}, half={half}, n_symbols={n_symbols}, n_values={n_values}")
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(n, n_symbols, generator=g).argsort(dim=1)[:, :half]  # (B, half): distinct symbols, B = n
    order = torch.rand(n, half, generator=g).argsort(dim=1)  # (B, half): a permutation per example
    second = torch.gather(first, 1, order)  # (B, half): the same symbols, reordered
    symbols = torch.cat([first, second], dim=1)  # (B, T)
    values = torch.randint(n_values, (n, 2 * half), generator=g)  # (B, T)
    prev = values[:, half - 1 : 2 * half - 1]  # (B, half): the value at t - 1 for t = half..T-1
    match = torch.gather(values, 1, order)  # (B, half): the value where the same symbol stood
    return TwoPlacesTask(symbols, values, prev, match, order)
