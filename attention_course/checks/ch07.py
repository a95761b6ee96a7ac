"""Chapter 7, positional encoding: sinusoidal table, rotary pairs, distinct positions, shifts.

The checks of ``chapters/07_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.positional  # noqa: F401 (binds _lib.positional)

from .. import positional
from ..positional import sinusoidal_encoding
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _reject_known,
    _call_with_hint,
    _as_bool,
    _check_choice,
    _number,
)

__all__ = [
    "check_sinusoidal_encoding",
    "check_rotate_pairs",
    "check_adds_distinct_positions",
    "check_shift_matrix",
    "check_pe_dot_question",
    "check_alibi_recent_mass",
]


def _interleave(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """(..., D/2) and (..., D/2) -> (..., D) with ``even`` at features 0, 2, 4, ... and ``odd`` at 1, 3, 5, ..."""
    return torch.stack([even, odd], dim=-1).flatten(-2)


@_reports_not_attempted
def check_sinusoidal_encoding(sinusoidal_encoding: Callable) -> None:
    """Exercise: ``sinusoidal_encoding(num_positions, d_model) -> (P, D)``, PE[p, 2i] = sin(p ω_i) and
    PE[p, 2i+1] = cos(p ω_i) with ω_i = 10000^(-2i/D), positions p = 0 .. P-1."""
    sinusoidal_encoding = _own_work(
        "sinusoidal_encoding", sinusoidal_encoding,
        _lib.positional.sinusoidal_encoding,
        _lib.positional.SinusoidalPositionalEncoding,
    )
    with _attempt("sinusoidal_encoding"):
        for P, D in ((4, 4), (7, 6), (50, 16)):  # P = D first, where a transposed table keeps the shape
            label = f"sinusoidal_encoding(num_positions={P}, d_model={D})"
            result = _call_with_hint(
                label, sinusoidal_encoding, (("num_positions", P), ("d_model", D)),
                "Build the angles p·ω_i as a column of positions (P, 1) times a row of frequencies (D/2,), which "
                "broadcast to (P, D/2); then fill pe[:, 0::2] with their sines and pe[:, 1::2] with their cosines",
            )
            got = _as_array(label, result)
            expected = positional.sinusoidal_encoding(P, D)  # (P, D)
            p = torch.arange(P, dtype=torch.float64)[:, None]  # (P, 1)
            i = torch.arange(D // 2, dtype=torch.float64)  # (D/2,), the pair index
            j = torch.arange(D, dtype=torch.float64)  # (D,), the feature index
            omega = 10000.0 ** (-2 * i / D)  # (D/2,)
            angles = p * omega  # (P, D/2)
            wrong = {
                "sin and cos are swapped: the even features 2i get sin(p ω_i), the odd features 2i+1 get "
                "cos(p ω_i), so row 0 is PE(0) = [0, 1, 0, 1, ...]": _interleave(angles.cos(), angles.sin()),
                "you used ω_i = 10000^(-i/D): the exponent is -2i/D, the even feature index 2i over D, so that "
                "the wavelengths run from 2π up to 10000·2π": _interleave(
                    (p * 10000.0 ** (-i / D)).sin(), (p * 10000.0 ** (-i / D)).cos()),
                "feature j got the frequency 10000^(-j/D) of its own index, so the cosine at 2i+1 turns slower "
                "than the sine at 2i: the two features of pair i share one frequency, ω_i = 10000^(-2i/D) "
                "(10000^(-(j - j % 2)/D) for feature j). That shared frequency is what makes PE(p + k) a rotation "
                "of PE(p)": torch.where(j % 2 == 0, (p * 10000.0 ** (-j / D)).sin(), (p * 10000.0 ** (-j / D)).cos()),
                "you put all the sines first and then all the cosines, cat([sin, cos]): a valid layout (tensor2tensor "
                "uses it), but this course follows Vaswani et al. 2017 and interleaves them: PE[p, 2i] = sin, "
                "PE[p, 2i+1] = cos, that is pe[:, 0::2] = sin and pe[:, 1::2] = cos": torch.cat(
                    [angles.sin(), angles.cos()], dim=-1),
                "the base is 10000 (Vaswani et al. 2017), not 1000: ω_i = 10000^(-2i/D)": _interleave(
                    (p * 1000.0 ** (-2 * i / D)).sin(), (p * 1000.0 ** (-2 * i / D)).cos()),
                "the positions start at 1, but they count from 0 like the rows of the table: row 0 is "
                "PE(0) = [sin 0, cos 0, ...] = [0, 1, 0, 1, ...]": _interleave(
                    ((p + 1) * omega).sin(), ((p + 1) * omega).cos()),
                "the frequencies grow with i: ω_i = 10000^(-2i/D) = 1 / 10000^(2i/D) falls from 1 to about 1/10000, "
                "so that the first pairs turn fast and the last ones slowly": _interleave(
                    (p / omega).sin(), (p / omega).cos()),
                "the table is transposed: row p is position p, (P, D) = (num_positions, d_model)": expected.T,
            }
            _reject_known(label, got, expected, wrong, atol=1e-4)
            _compare(label, got, expected.numpy(), atol=1e-4,
                     legend=" (P, D): row p is position p, features (2i, 2i+1) are sin and cos of p·ω_i")
    _say("sinusoidal_encoding: correct: sin(p ω_i) at 2i, cos(p ω_i) at 2i+1, ω_i = 10000^(-2i/D).")


def _rotate_adjacent(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs (2i, 2i+1) of x (..., T, E) by angles (T, E/2), counter-clockwise."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, E/2)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, E/2)
    return _interleave(even * cos - odd * sin, even * sin + odd * cos)


@_reports_not_attempted
def check_rotate_pairs(rotate_pairs: Callable) -> None:
    """Exercise: ``rotate_pairs(x (..., T, E)) -> (..., T, E)``, RoPE: rotate the adjacent pair of features
    (2i, 2i+1) of the token at position p (= 0 .. T-1) by the angle p·ω_i, ω_i = 10000^(-2i/E), counter-clockwise,
    as ``attention_course.rotary_embedding`` does."""
    rotate_pairs = _own_work(
        "rotate_pairs", rotate_pairs,
        _lib.positional.rotary_embedding,
    )
    with _attempt("rotate_pairs"):
        gen = torch.Generator().manual_seed(75)
        for shape in ((6, 8), (2, 3, 5, 8)):  # (T, E), then (B, H, T, E)
            x = torch.randn(*shape, generator=gen)
            T, E = shape[-2:]
            label = f"rotate_pairs(x) for x of shape {shape}, T={T}, E={E}"
            result = _call_with_hint(
                label, rotate_pairs, (("x", x),),
                "x is (..., T, E): the positions run along dim -2, T = x.shape[-2] (not x.shape[1]), and the "
                "pairs along the last dim. The angles p·ω_i are (T, E/2), and broadcast against x[..., 0::2] and "
                "x[..., 1::2], (..., T, E/2) each",
            )
            got = _as_array(label, result)
            expected = positional.rotary_embedding(x)  # (..., T, E)
            p = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
            i = torch.arange(E // 2, dtype=torch.float64)  # (E/2,)
            omega = 10000.0 ** (-2 * i / E)  # (E/2,)
            cos, sin = (p * omega).cos().float(), (p * omega).sin().float()  # (T, E/2)
            x1, x2 = x[..., : E // 2], x[..., E // 2:]  # (..., T, E/2): the rotate_half layout
            wrong = {
                "you rotated the other way, by -p·ω_i (clockwise): x'_2i = x_2i cos - x_2i+1 sin and "
                "x'_2i+1 = x_2i sin + x_2i+1 cos": _rotate_adjacent(x, -p * omega),
                "you paired feature i with feature i + E/2 (rotate_half, the layout of GPT-NeoX and Hugging Face's "
                "LLaMA): a valid convention, but this exercise follows Su et al. 2021 and attention_course."
                "rotary_embedding, where pair i is the adjacent features (2i, 2i+1): x[..., 0::2] and x[..., 1::2]":
                    torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1),
                "the positions start at 1, so the first token is rotated too: they count from 0, and at position "
                "0 the angle is 0, no rotation at all": _rotate_adjacent(x, (p + 1) * omega),
                "every pair turned by the same angle: pair i turns at its own frequency, by p·ω_i with "
                "ω_i = 10000^(-2i/E), from one turn per position down to very slow ones":
                    _rotate_adjacent(x, p * torch.ones_like(omega)),
                "you used ω_i = 10000^(-i/E): the exponent is -2i/E, the even feature index 2i over E":
                    _rotate_adjacent(x, p * 10000.0 ** (-i / E)),
                "you added the sinusoidal encoding: RoPE does not add anything, it *rotates* each pair of "
                "features of the queries and keys, so that their dot product depends on the offset p - p' only":
                    x + positional.sinusoidal_encoding(T, E),
                "you scaled each feature by cos(p ω_i) and left out the sin terms: a rotation mixes the two "
                "features of a pair, x'_2i = x_2i cos - x_2i+1 sin, x'_2i+1 = x_2i sin + x_2i+1 cos":
                    _interleave(x[..., 0::2] * cos, x[..., 1::2] * cos),
            }
            _reject_known(label, got, expected, wrong)
            if got.shape == tuple(x.shape):
                norms = np.hypot(got[..., 0::2], got[..., 1::2])  # (..., T, E/2), the length of every pair
                before = np.hypot(x[..., 0::2].numpy(), x[..., 1::2].numpy())
                if not np.allclose(norms, before, atol=1e-4):
                    idx = tuple(int(k) for k in np.argwhere(~np.isclose(norms, before, atol=1e-4))[0])
                    raise AssertionError(
                        f"{label}: a rotation keeps the length of every pair (x_2i, x_2i+1), but pair {idx[-1]} of "
                        f"the token at position {idx[-2]} has length {norms[idx]:.4g} and had {before[idx]:.4g}: "
                        f"x'_2i = x_2i cos - x_2i+1 sin, x'_2i+1 = x_2i sin + x_2i+1 cos"
                    )
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (..., T, E): pair (2i, 2i+1) of the token at position p turned by p·ω_i")
    _say("rotate_pairs: correct: adjacent pairs (2i, 2i+1) turned by p·ω_i, nothing at position 0.")


def _position_adder_probes() -> list[tuple[str, Callable, tuple[int, int, int], bool, str]]:
    """(name, add_pe, (B, T, D), the right answer, why) for ``check_adds_distinct_positions``."""
    D, P = 8, 32
    pe = sinusoidal_encoding(P, D)  # (P, D)
    gen = torch.Generator().manual_seed(76)
    table = torch.nn.Parameter(torch.randn(P, D, generator=gen) * 0.02)  # a learned embedding, (P, D)

    def sequence_first(x: torch.Tensor) -> torch.Tensor:
        return x + pe[:, None, :][: x.shape[0]]  # a (P, 1, D) buffer indexed by x.size(0) = B: (B, 1, D)

    def noise_per_sequence(x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn(x.shape, generator=torch.Generator().manual_seed(77))  # (B, T, D)

    right = "every sequence gets the same T vectors, all different"
    one_per_sequence = "every token of sequence n gets the same vector, pe[n]: the vectors vary along the batch, not T"
    return [
        ("x + pe[:T], sinusoidal and batch-first", lambda x: x + pe[: x.shape[1]], (3, 5, D), True, right),
        ("x + pe[:, None][:x.size(0)], the sequence-first habit", sequence_first, (3, 5, D), False, one_per_sequence),
        ("x + pe[:, None][:x.size(0)], the sequence-first habit", sequence_first, (4, 4, D), False, one_per_sequence),
        ("x itself: nothing added", lambda x: x, (3, 5, D), False, "nothing is added: every token gets zeros"),
        ("x + random noise, different for every sequence", noise_per_sequence, (3, 5, D), False,
         "the vectors differ along T, but sequence 0 and sequence 1 get different ones at the same position: "
         "a position's vector must not depend on the sequence it is in"),
        ("x + table[:T], a learned embedding (an nn.Parameter)", lambda x: x + table[: x.shape[1]], (2, 6, D), True,
         right),
        ("x + pe[3]: one vector for every token", lambda x: x + pe[3], (3, 5, D), False,
         "every token gets the same vector, pe[3]"),
        ("x + pe[t % 2]: two vectors taking turns", lambda x: x + pe[torch.arange(x.shape[1]) % 2], (3, 5, D), False,
         "positions 0, 2 and 4 get the same vector, and so do 1 and 3"),
        ("x + pe[:T] on a batch of one sequence", lambda x: x + pe[: x.shape[1]], (1, 5, D), True, right),
    ]


def _added(add_pe: Callable, B: int, T: int, D: int) -> torch.Tensor:
    return add_pe(torch.zeros(B, T, D)).detach()  # (B, T, D): what add_pe adds, position by position


def _all_distinct(vectors: torch.Tensor) -> bool:
    """Whether no two rows of ``vectors`` (T, D) are equal up to rounding."""
    T = vectors.shape[0]
    return not any(torch.allclose(vectors[t], vectors[u]) for t in range(T) for u in range(t + 1, T))


@_reports_not_attempted
def check_adds_distinct_positions(adds_distinct_positions: Callable) -> None:
    """Exercise: ``adds_distinct_positions(add_pe, B, T, D) -> bool``: feed ``add_pe`` zeros (B, T, D) and tell
    whether what it adds is the same for every sequence of the batch and different at every position."""
    with _attempt("adds_distinct_positions"):
        probes = _position_adder_probes()
        answers = []
        for name, add_pe, (B, T, D), _, _ in probes:
            label = f"adds_distinct_positions(add_pe, B={B}, T={T}, D={D}) with add_pe = {name}"

            def batch_first_only(x: object, add_pe: Callable = add_pe, B: int = B, T: int = T, D: int = D,
                                 label: str = label) -> torch.Tensor:
                if not isinstance(x, torch.Tensor) or tuple(x.shape) != (B, T, D):
                    got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                    raise AssertionError(
                        f"{label}: add_pe was called with {got}, but it takes batch-first input (B, T, D) = "
                        f"{(B, T, D)}: feed it torch.zeros(B, T, D), and what it returns is what it added"
                    )
                return add_pe(x)

            result = _call_with_hint(
                label, adds_distinct_positions, (("add_pe", batch_first_only), ("B", B), ("T", T), ("D", D)),
                "add_pe(torch.zeros(B, T, D)) is what add_pe adds, (B, T, D), batch-first: dim 0 is the sequence, "
                "dim 1 the position. A learned embedding is an nn.Parameter, so its output requires grad: compare "
                "with torch.allclose or torch.equal, or .detach() it before .numpy()",
            )
            answers.append(_as_bool(label, result))
        truth = [right for *_, right, _ in probes]

        def same_for_every_sequence(a: torch.Tensor) -> bool:
            return torch.allclose(a, a[:1].expand_as(a))

        variants = {
            "you only checked that the positions get different vectors: also check that every sequence of the "
            "batch gets the same ones, or random noise would pass for a position encoding":
                lambda a: _all_distinct(a[0]),
            "you only checked that every sequence gets the same vectors: also check that the T positions get "
            "different ones (adding nothing, or one vector everywhere, passes your test)":
                same_for_every_sequence,
            "the axes are swapped: the input is batch-first (B, T, D), so the vectors must agree along dim 0 "
            "(the sequences) and differ along dim 1 (the positions). Your test passes the sequence-first bug":
                lambda a: _all_distinct(a[:, 0]) and torch.allclose(a, a[:, :1].expand_as(a)),
            "you tested whether anything was added at all: the added vectors must also be the same for every "
            "sequence and different at every position":
                lambda a: not torch.allclose(a, torch.zeros_like(a)),
            "you compared only some positions (neighbours t and t + 1, or the first two): with pe[t % 2], "
            "positions 0 and 2 get the same vector. Compare every pair of positions t < t'":
                lambda a: same_for_every_sequence(a) and not any(
                    torch.allclose(a[0, t], a[0, t + 1]) for t in range(a.shape[1] - 1)),
        }
        for hint, variant in variants.items():
            would = [bool(variant(_added(add_pe, *shape))) for _, add_pe, shape, _, _ in probes]
            if would != truth and answers == would:
                raise AssertionError(f"adds_distinct_positions: {hint}")
        if answers != truth and all(answers):
            raise AssertionError(
                "adds_distinct_positions returned True for every add_pe, even the ones that add nothing or one "
                "vector per sequence: look at added = add_pe(torch.zeros(B, T, D)), (B, T, D)"
            )
        for (name, _, (B, T, D), right, why), got in zip(probes, answers):
            if got != right:
                raise AssertionError(
                    f"adds_distinct_positions(add_pe, B={B}, T={T}, D={D}) with add_pe = {name} returned {got}, "
                    f"but it should return {right}: {why}"
                )
    _say("adds_distinct_positions: correct: the same vectors for every sequence, a different one per position.")


def _pair_blocks(D: int, angles: torch.Tensor, *, halves: bool = False, sign: float = 1.0) -> torch.Tensor:
    """(D, D) with a 2×2 block [[cos, sign·sin], [-sign·sin, cos]] per pair: (2i, 2i+1), or (i, i + D/2)."""
    m = torch.zeros(D, D, dtype=torch.float64)
    i = torch.arange(D // 2)
    a, b = (i, i + D // 2) if halves else (2 * i, 2 * i + 1)
    c, s = angles.cos(), angles.sin()
    m[a, a], m[a, b], m[b, a], m[b, b] = c, sign * s, -sign * s, c
    return m


def _sin_on_diagonal(D: int, angles: torch.Tensor) -> torch.Tensor:
    """(D, D) with a 2×2 block [[sin, cos], [-cos, sin]] per pair (2i, 2i+1): cos and sin swapped."""
    m = torch.zeros(D, D, dtype=torch.float64)
    a = torch.arange(0, D, 2)
    c, s = angles.cos(), angles.sin()
    m[a, a], m[a, a + 1], m[a + 1, a], m[a + 1, a + 1] = s, c, -c, s
    return m


@_reports_not_attempted
def check_shift_matrix(shift_matrix: Callable) -> None:
    """Exercise: ``shift_matrix(k, d_model) -> (D, D)``, the matrix M_k with PE(p + k) = M_k PE(p) for every
    position p, as ``attention_course.positional.sinusoidal_shift_matrix``."""
    shift_matrix = _own_work(
        "shift_matrix", shift_matrix,
        _lib.positional.sinusoidal_shift_matrix,
    )
    with _attempt("shift_matrix"):
        for k, D in ((3, 8), (-2, 6), (1, 4), (0, 6)):
            label = f"shift_matrix(k={k}, d_model={D})"
            result = _call_with_hint(
                label, shift_matrix, (("k", k), ("d_model", D)),
                "M is (D, D): zeros except one 2×2 block on the diagonal for each pair (2i, 2i+1), made of "
                "cos(k ω_i) and sin(k ω_i)",
            )
            got = _as_array(label, result)
            expected = positional.sinusoidal_shift_matrix(k, D)  # (D, D), float64
            i = torch.arange(D // 2, dtype=torch.float64)
            omega = 10000.0 ** (-2 * i / D)  # (D/2,)
            wrong = {}
            if k < 0:  # first: M_|k| is also M_k transposed, and |k| is the likelier mistake for k < 0
                wrong[f"for a negative k = {k} you built M_|k|, the shift forward (M_|k| is also M_k transposed): "
                      f"the angle is k·ω_i with its sign, so M_k for k < 0 turns each pair back (sin(k ω_i) < 0)"] = (
                    _pair_blocks(D, abs(k) * omega))
            wrong |= {
                "that is M_{-k}, the transpose: it maps PE(p) to PE(p - k). Each pair is (sin, cos), not (cos, sin): "
                "sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b put +sin(k ω_i) "
                "top right and -sin(k ω_i) bottom left, [[cos, sin], [-sin, cos]]":
                    _pair_blocks(D, k * omega, sign=-1.0),
                "every pair turned by the same angle k: pair i turns by k·ω_i, with its own frequency "
                "ω_i = 10000^(-2i/D)": _pair_blocks(D, k * torch.ones_like(omega)),
                "the angle is k·ω_i, not ω_i: that is the shift by one position, M_1; M_k turns k times as far":
                    _pair_blocks(D, omega),
                "you rotated the pairs (i, i + D/2): sinusoidal_encoding puts sin and cos of one frequency side "
                "by side, pair i is the adjacent features (2i, 2i+1)": _pair_blocks(D, k * omega, halves=True),
                f"M_k is the identity only for k = 0: shifting by k = {k} turns each pair by k·ω_i":
                    torch.eye(D, dtype=torch.float64),
                "you used ω_i = 10000^(-i/D): the exponent is -2i/D, as in the table":
                    _pair_blocks(D, k * 10000.0 ** (-i / D)),
                "the diagonal blocks hold sin and the off-diagonal ones cos: read them off the addition formulas, "
                "sin(a + b) = sin a cos b + cos a sin b puts cos(k ω_i) on the diagonal":
                    _sin_on_diagonal(D, k * omega),
            }
            _reject_known(label, got, expected, wrong)
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (D, D): one 2×2 block per pair (2i, 2i+1), turning it by k·ω_i")
            pe = positional.sinusoidal_encoding(20 + abs(k), D).double()  # (P, D)
            rows = pe[max(0, -k): 20 - min(0, k)]  # (20, D): PE(p) for the p with p + k in the table
            shifted = rows @ torch.as_tensor(got).T  # (20, D): M_k PE(p), row by row
            _compare(f"{label} @ PE(p)", shifted.numpy(), pe[max(0, k): 20 + max(0, k)].numpy(), atol=1e-4,
                     legend=" (20, D): M_k PE(p) must be PE(p + k)")
    _say("shift_matrix: correct: M_k turns each pair (sin, cos) by k·ω_i, so M_k PE(p) = PE(p + k).")


# ---------------------------------------------------------------- PE(p)·PE(p + k); an ALiBi penalty, measured


@_reports_not_attempted
def check_pe_dot_question(answer: Callable) -> None:
    """Question: what does the dot product PE(p) · PE(p + k) of two sinusoidal encodings depend on?"""
    _check_choice(
        "question (PE(p) · PE(p + k))", answer, "b",
        "Pair i contributes sin(pω)sin((p+k)ω) + cos(pω)cos((p+k)ω) = cos(kω_i), so PE(p) · PE(p + k) = "
        "Σ_i cos(k ω_i): a function of the offset k alone, D/2 at k = 0, the same at every position p. It is "
        "symmetric in k and does not fall steadily: it dips and rises again.",
        {
            "a": "write out one pair: sin(pω)sin((p+k)ω) + cos(pω)cos((p+k)ω) = cos((p+k)ω - pω) = cos(kω). The "
                 "position p cancels. Compute pe[p] @ pe[p + 5] for a few p and compare",
            "c": "the encodings of two positions are not orthogonal: each pair contributes cos(k ω_i), and the slow "
                 "pairs (small ω_i) give cos ≈ 1 even for large k. Compute pe[0] @ pe[5]",
            "d": "it depends on k only, but not monotonically: Σ_i cos(k ω_i) dips and rises again (the fast pairs "
                 "oscillate), so a far position can be more similar than a nearer one. Plot pe[0] @ pe[k] "
                 "against k",
        },
    )


def _alibi_mass(q: torch.Tensor, k: torch.Tensor, slope: float, window: int, *, sign: float = 1.0,
                causal: bool = True, after: bool = False, scale: bool = True, inclusive: bool = False,
                reduce: str = "mean", absolute: bool = False) -> float:
    """The mean over queries of the causal ALiBi weight on the ``window`` most recent keys; keywords make the
    usual mistakes."""
    T, E = q.shape
    i = torch.arange(T, dtype=torch.float64)
    offset = i[:, None] - i[None, :]  # (T, T): i - j
    dist = offset.abs() if absolute else offset
    scores = (q.double() @ k.double().T) / (E**0.5 if scale else 1.0)  # (T, T)
    if not after:
        scores = scores - sign * slope * dist
    if causal:
        scores = scores.masked_fill(offset < 0, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    if after:
        w = w - sign * slope * dist
    near = (offset >= 0) & ((offset <= window) if inclusive else (offset < window))  # (T, T)
    per_query = (w * near).sum(dim=-1)  # (T,)
    return float(per_query.sum() if reduce == "sum" else per_query.mean())


@_reports_not_attempted
def check_alibi_recent_mass(recent_mass: Callable) -> None:
    """Experiment: ``recent_mass(q (T, E), k (T, E), slope, window) -> float``: causal attention weights
    softmax(q kᵀ / √E - slope·(i - j)) over the keys j <= i, the ALiBi penalty of Press et al. 2022; return the
    mean over the T queries of the total weight each puts on its ``window`` most recent keys, 0 <= i - j < window."""
    name = "recent_mass"
    with _attempt(name):
        gen = torch.Generator().manual_seed(78)
        for T, E, slope, window in ((12, 4, 0.5, 3), (40, 8, 0.25, 4), (40, 8, 0.0, 4), (7, 6, 1.0, 1)):
            q, k = torch.randn(T, E, generator=gen), torch.randn(T, E, generator=gen)
            label = f"{name}(q, k, slope={slope}, window={window}) for T={T}, E={E}"
            result = _call_with_hint(
                label, recent_mass, (("q", q), ("k", k), ("slope", slope), ("window", window)),
                "q and k are (T, E): the scores q @ k.T are (T, T), and the offsets i - j are "
                "torch.arange(T)[:, None] - torch.arange(T)[None, :], (T, T)",
            )
            got = _number(label, result)
            expected = _alibi_mass(q, k, slope, window)
            if abs(got - expected) <= 1e-5:
                continue
            wrong = {
                "the penalty has the wrong sign: ALiBi *subtracts* slope·(i - j), so that far keys lose score; "
                "adding it rewards the distant past": _alibi_mass(q, k, slope, window, sign=-1.0),
                "there is no causal mask: query i may read only keys j <= i (ALiBi is a decoder's bias), and without "
                "the mask -slope·(i - j) even *rewards* the future keys, j > i":
                    _alibi_mass(q, k, slope, window, causal=False),
                "there is no causal mask: with -slope·|i - j| the future keys are penalised like the past ones, but "
                "they are still read. Mask j > i with -inf": _alibi_mass(q, k, slope, window, causal=False,
                                                                         absolute=True),
                "you subtracted the penalty from the weights, after the softmax: it goes on the scores, before "
                "it, so that the weights still sum to 1": _alibi_mass(q, k, slope, window, after=True),
                "the scores are not divided by √E: softmax(q kᵀ / √E - slope·(i - j))":
                    _alibi_mass(q, k, slope, window, scale=False),
                f"off by one: the {window} most recent keys are i - j = 0 .. {window - 1} (the query's own key "
                f"included), 0 <= i - j < window": _alibi_mass(q, k, slope, window, inclusive=True),
                "you summed over the queries: return the mean over the T queries":
                    _alibi_mass(q, k, slope, window, reduce="sum"),
            }
            for hint, value in wrong.items():
                if abs(value - expected) > 1e-4 and abs(got - value) <= 1e-5:
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {hint}")
            raise AssertionError(
                f"{label} is {got:.6g} but should be {expected:.6g}: scores q @ k.T / √E minus slope·(i - j), -inf "
                f"where j > i, softmax over the keys (dim=-1); then sum each row's weights over 0 <= i - j < "
                f"window and average the T rows"
            )
        # the experiment itself, with the learner's function: lengths past a training length of 32
        gen = torch.Generator().manual_seed(79)
        table = {}
        for T in (32, 128, 512):
            q, k = torch.randn(T, 16, generator=gen), torch.randn(T, 16, generator=gen)
            table[T] = [_number(name, recent_mass(q, k, slope, 8)) for slope in (0.0, 0.5)]
    rows = "; ".join(f"T = {T}: {a:.2f} without, {b:.2f} with" for T, (a, b) in table.items())
    _say(f"recent_mass: correct. The weight on the 8 most recent keys, {rows} the penalty (slope 0.5): without "
         f"it the weight spreads over every key as T grows; with it the pattern at T = 512 is the one at T = 32.")
