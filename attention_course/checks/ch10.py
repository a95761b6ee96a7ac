"""Chapter 10, applications: attention pooling, soft alignment, patches, seasonal naive, MASE.

The checks of ``chapters/09_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.applications.sequences  # noqa: F401 (binds _lib.applications.sequences)
import attention_course.applications.vision  # noqa: F401 (binds _lib.applications.vision)

from .. import masks
from ..attention import masked_softmax
from ..applications.sequences import mase as _ref_mase
from ..applications.sequences import seasonal_naive_forecast
from ..applications.vision import patchify as _ref_patchify
from ._core import (
    _own_work,
    _say,
    NotAttempted,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _number,
    _reject_known,
    _call_with_hint,
    _numbered,
    _reject_shape,
    _compare_numbered,
    _tuple_of,
    _expect_shapes,
    _check_choice,
)

__all__ = [
    "check_attention_pool",
    "check_soft_align",
    "check_patchify",
    "check_seasonal_naive",
    "check_mase",
    "check_mase_meaning",
    "check_erasure_flip_rates",
]


def _ref_attention_pool(h: torch.Tensor, query: torch.Tensor, mask: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention pooling with one learned query: (pooled (B, D), weights (B, T))."""
    D = h.shape[-1]
    scores = h @ query / D**0.5  # (B, T, D) @ (D,) -> (B, T)
    weights = masked_softmax(scores, mask)  # (B, T): 0 on padding, a row of zeros if all padding
    return (weights.unsqueeze(1) @ h).squeeze(1), weights  # (B, 1, T) @ (B, T, D) -> (B, D)


def _reject_pooling_nan(label: str, w: np.ndarray, lengths: list[int]) -> None:
    for b in range(w.shape[0]):
        if np.isfinite(w[b]).all():
            continue
        if lengths[b] == 0:
            raise AssertionError(
                f"weights, {label}: sequence {b} is all padding (length 0) and its weights came out NaN: "
                f"masked_fill(~mask, -inf) then softmax gives exp(-inf) / sum(exp(-inf)) = 0/0 there. A sequence "
                f"with no real token must get zero weights (and a zero pooled vector), never NaN: "
                f"ac.masked_softmax does so, or zero the rows that have no real token"
            )
        raise AssertionError(
            f"weights, {label}: sequence {b} has {lengths[b]} real tokens, yet its weights contain NaN or inf. If "
            f"a sequence without padding comes out NaN, the mask is inverted: True = a real token, so fill the "
            f"scores where the mask is False, masked_fill(~mask, float('-inf')). Otherwise an exponential "
            f"overflowed: subtract each row's max first"
        )


@_reports_not_attempted
def check_attention_pool(attention_pool: Callable) -> None:
    """Exercise: ``attention_pool(h (B, T, D), query (D,), mask (B, T)) -> (pooled (B, D), weights (B, T))``:
    weights = softmax of h·query / sqrt(D) over each sequence's real tokens (mask True), exactly 0 on padding and
    all 0 for a sequence with no real token; pooled = Σ_t weights_t h_t."""
    attention_pool = _own_work(
        "attention_pool", attention_pool,
        _lib.applications.sequences.AttentionPooling,
    )
    names = ("pooled", "weights")
    hint = ("h is (B, T, D) and query (D,): h @ query is (B, T), one score per token. Each sequence's pooled vector "
            "is its weights (T,) times its tokens (T, D): weights.unsqueeze(1) @ h is (B, 1, T) @ (B, T, D) = "
            "(B, 1, D), or (weights[..., None] * h).sum(dim=1) is (B, D)")
    with _attempt("attention_pool"):
        # B, T and D all different; lengths: a full sequence, padded ones, and (second) one with no real token
        # then (third) masks that are not right-padded: padding on the left, holes inside
        cases = [(91, (3, 5, 4), masks.padding_mask(torch.tensor([5, 3, 1]), 5)),
                 (92, (4, 6, 8), masks.padding_mask(torch.tensor([2, 6, 0, 4]), 6)),
                 (90, (2, 6, 5), torch.tensor([[False, False, True, True, True, True],
                                               [True, False, True, True, False, True]]))]
        for seed, (B, T, D), mask in cases:
            gen = torch.Generator().manual_seed(seed)
            h = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
            query = torch.randn(D, generator=gen, dtype=torch.float64)  # (D,): h·q / sqrt(D) about N(0, 1)
            lengths = mask.sum(dim=-1).tolist()  # real tokens per sequence
            label = (f"attention_pool for B={B}, T={T}, D={D}, lengths={lengths}" if seed != 90 else
                     f"attention_pool for B={B}, T={T}, D={D}, mask={mask.int().tolist()} (1 = a real token)")
            result = _call_with_hint(label, attention_pool, (("h", h), ("query", query), ("mask", mask)), hint)
            if isinstance(result, (tuple, list)) and len(result) == 2:
                first, second = (_as_array(label, r) for r in result)
                if first.shape == (B, T) and second.shape == (B, D):
                    raise AssertionError(f"{label}: you returned (weights, pooled): return (pooled, weights)")
            pooled, w = _tuple_of(label, result, names)
            exp_pooled, exp_w = _ref_attention_pool(h, query, mask)
            _reject_shape(f"weights, {label}", w, (B, T), [
                ((B, T, 1), "the weights kept a trailing axis of 1: return one weight per token, (B, T)"),
                ((B, 1, T), "the weights kept an axis of 1 in the middle: return them as (B, T), .squeeze(1)"),
            ])
            _reject_shape(f"pooled, {label}", pooled, (B, D), [
                ((B, T, D), "these are the weighted tokens, one per position: sum them over the time axis, "
                            "dim=1, so that each sequence becomes one vector (B, D)"),
                ((B, 1, D), "pooled kept an axis of 1: .squeeze(1) it to (B, D)"),
                ((B, B, D), "weights @ h paired the weights of every sequence with the tokens of every sequence: "
                            "(B, T) @ (B, T, D) broadcasts the (B, T) matrix over the batch. Give the weights a "
                            "middle axis, weights.unsqueeze(1) @ h is (B, 1, T) @ (B, T, D) = (B, 1, D), then "
                            ".squeeze(1)"),
            ])
            _expect_shapes(label, (pooled, w), names, ((B, D), (B, T)),
                           " (pooled (B, D): one vector per sequence; weights (B, T): one weight per token)")
            _reject_pooling_nan(label, w, lengths)
            for b in range(B):
                if lengths[b] == 0 and np.allclose(w[b], 1.0 / T):
                    raise AssertionError(
                        f"weights, {label}: sequence {b} is all padding and got uniform weights 1/T: that is what "
                        f"a fill of -1e9 (or any finite number) does when every score of a row is filled. A "
                        f"sequence with no real token must get zero weights, so that its pooled vector is 0 and no "
                        f"padding leaks into it: fill with -inf and handle the rows with no real token, or use "
                        f"ac.masked_softmax"
                    )
            scores = h @ query  # (B, T): unscaled
            real = mask.to(h.dtype)  # (B, T): 1 on a real token
            wrong = {
                "the mask was ignored: the padding tokens got weight. Fill their scores with -inf before the "
                "softmax, scores.masked_fill(~mask, float('-inf')), or use ac.masked_softmax(scores, mask)":
                    torch.softmax(scores / D**0.5, dim=-1),
                "the mask is inverted: True means a real token, which may be attended; block the positions where "
                "it is False, masked_fill(~mask, -inf)": masked_softmax(scores / D**0.5, ~mask),
                f"you did not divide the scores by sqrt(D) = {D**0.5:.3g}: h_t · q sums D products, so its spread "
                f"grows like sqrt(D), and unscaled scores push the weights towards one-hot":
                    masked_softmax(scores, mask),
                f"you divided by D = {D} instead of sqrt(D) = {D**0.5:.3g}": masked_softmax(scores / D, mask),
                "each column sums to 1 but each sequence's weights should: you took the softmax over the batch "
                "axis (dim=0), so the sequences competed with each other for every position. The tokens of one "
                "sequence compete over the time axis, dim=-1": masked_softmax(scores / D**0.5, mask, dim=0),
                "every real token got the same weight 1/length: that is mean pooling, the baseline. Attention "
                "pooling weighs token t by the softmax of h_t · q / sqrt(D), so the query decides which tokens "
                "count": real / real.sum(dim=-1, keepdim=True).clamp(min=1.0),
                "you zeroed the padding after the softmax without renormalising, so each sequence's weights sum "
                "to less than 1: mask the scores (-inf) *before* the softmax":
                    torch.softmax(scores / D**0.5, dim=-1) * real,
                "the weights are exp(score) without the softmax's division: each sequence's weights must sum to 1 "
                "over its real tokens (divide by their sum)": torch.exp(scores / D**0.5) * real,
            }
            rebuilt = masks.padding_mask(mask.sum(dim=-1), T)  # (B, T): right padding with the same counts
            wrong["you rebuilt the mask as right padding from the number of real tokens, but this mask has padding "
                  "on the left and holes inside: use the mask you are given, position by position"] = (
                masked_softmax(scores / D**0.5, rebuilt))
            _reject_known(f"weights, {label}", w, exp_w, wrong, atol=1e-8)
            for b in range(B):
                pad = ~mask[b].numpy()
                if lengths[b] and pad.any() and np.all(w[b][~pad] == 0) and np.any(w[b][pad] != 0):
                    raise AssertionError(
                        f"weights, {label}: sequence {b} put all its weight on its padding and none on its "
                        f"{lengths[b]} real tokens: the mask is inverted. True means a real token, which may be "
                        f"attended; block the positions where it is False, masked_fill(~mask, -inf)"
                    )
            leaked = np.argwhere(~mask.numpy() & (w != 0))
            if leaked.size:
                b, t = (int(i) for i in leaked[0])
                raise AssertionError(
                    f"weights, {label}: weights[{b}, {t}] = {w[b, t]:.3g} but position {t} of sequence {b} (length "
                    f"{lengths[b]}) is padding: its weight must be exactly 0, which a score of -inf gives"
                )
            sums = w.sum(axis=-1)
            for b in range(B):
                if lengths[b] and not np.isclose(sums[b], 1.0, atol=1e-6):
                    raise AssertionError(
                        f"weights, {label}: sequence {b}'s weights sum to {sums[b]:.6g}, not 1: the softmax "
                        f"normalises over each sequence's real tokens, dim=-1"
                    )
            _compare(f"weights, {label}", w, exp_w.numpy(), atol=1e-7, rtol=1e-5,
                     legend=" (B, T): softmax of h·q / sqrt(D) over each sequence's real tokens")
            masked_mean = (real.unsqueeze(1) @ h).squeeze(1) / real.sum(-1, keepdim=True).clamp(min=1.0)  # (B, D)
            wrong_pooled = {
                "pooled is the mean of the real tokens, whatever the weights: weigh each token by its attention "
                "weight, pooled = Σ_t weights_t h_t": masked_mean,
                "pooled is the mean over all T positions, padding included, and ignores the weights: "
                "pooled = Σ_t weights_t h_t": h.mean(dim=1),
                "pooled is the plain sum of the tokens: weigh each by its attention weight, Σ_t weights_t h_t":
                    h.sum(dim=1),
            }
            _reject_known(f"pooled, {label}", pooled, exp_pooled, wrong_pooled, atol=1e-8)
            _compare(f"pooled, {label}", pooled, exp_pooled.numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, D): Σ_t weights[b, t] h[b, t], the zero vector for a sequence with no real token")
    _say("attention_pool: correct: one query scores every token, padding gets exactly 0, an empty sequence 0 "
          "(not NaN), and the pooled vector is the weighted sum.")


def _ref_soft_align(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attend step of decomposable attention (Parikh et al. 2016), its network F the identity: (beta, alpha, e)."""
    e = a @ b.transpose(-2, -1)  # (B, T_a, D) @ (B, D, T_b) -> (B, T_a, T_b): e[n, i, j] = a_i · b_j
    beta = torch.softmax(e, dim=-1) @ b  # (B, T_a, T_b) @ (B, T_b, D) -> (B, T_a, D): the part of b aligned to a_i
    alpha = torch.softmax(e, dim=-2).transpose(-2, -1) @ a  # (B, T_b, T_a) @ (B, T_a, D) -> (B, T_b, D)
    return beta, alpha, e


@_reports_not_attempted
def check_soft_align(soft_align: Callable) -> None:
    """Exercise: ``soft_align(a (B, T_a, D), b (B, T_b, D)) -> (beta (B, T_a, D), alpha (B, T_b, D), e (B, T_a, T_b))``:
    e = a bᵀ (unscaled), beta_i = Σ_j softmax_j(e_ij) b_j, alpha_j = Σ_i softmax_i(e_ij) a_i."""
    names = ("beta", "alpha", "e")
    hint = ("a is (B, T_a, D) and b (B, T_b, D): e = a @ b.transpose(-2, -1) is (B, T_a, T_b). beta = "
            "softmax(e, dim=-1) @ b is (B, T_a, D). alpha takes the softmax over i, dim=-2, which is still "
            "(B, T_a, T_b): transpose it to (B, T_b, T_a) before multiplying by a (B, T_a, D)")
    with _attempt("soft_align"):
        # T_a = T_b = D first, where a missing transpose still runs; then T_a, T_b and D all different
        for seed, (B, La, Lb, D) in ((93, (2, 4, 4, 4)), (94, (2, 3, 5, 6))):
            gen = torch.Generator().manual_seed(seed)
            a = torch.randn(B, La, D, generator=gen, dtype=torch.float64) / D**0.25  # a_i · b_j about N(0, 1)
            b = torch.randn(B, Lb, D, generator=gen, dtype=torch.float64) / D**0.25
            label = f"soft_align for B={B}, T_a={La}, T_b={Lb}, D={D}"
            result = _call_with_hint(label, soft_align, (("a", a), ("b", b)), hint)
            got_beta, got_alpha, got_e = _tuple_of(label, result, names)
            beta, alpha, e = _ref_soft_align(a, b)
            soft_j, soft_i = torch.softmax(e, dim=-1), torch.softmax(e, dim=-2)  # (B, T_a, T_b) each

            wrong_e = {
                f"e is scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: decomposable attention compares the words by their "
                f"plain dot product (its learned network F sets the scale), and so does this exercise: "
                f"e = a @ b.transpose(-2, -1)": e / D**0.5,
                "e is transposed: e[n, i, j] = a_i · b_j, one row per word of a and one column per word of b: "
                "a @ b.transpose(-2, -1), (B, T_a, T_b)": e.transpose(-2, -1),
            }
            wrong_e["you returned the weights softmax(e, dim=-1) as e: return the raw scores e = a @ "
                    "b.transpose(-2, -1), before any softmax (beta and alpha read them along different axes)"] = soft_j
            wrong_e["you returned the weights softmax(e, dim=-2) as e: return the raw scores e = a @ "
                    "b.transpose(-2, -1), before any softmax"] = soft_i
            if D == Lb:
                wrong_e["you multiplied a by b, not by b transposed (it only ran because D = T_b here): "
                        "a @ b.transpose(-2, -1)"] = a @ b
            _reject_shape(f"e, {label}", got_e, (B, La, Lb), [
                ((B, Lb, La), "e is transposed: one row per word of a, a @ b.transpose(-2, -1) is (B, T_a, T_b)")])
            _reject_known(f"e, {label}", got_e, e, wrong_e, atol=1e-8)
            _compare(f"e, {label}", got_e, e.numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, T_a, T_b): e[n, i, j] = a[n, i] · b[n, j], no scaling")

            swapped = "beta and alpha are swapped: return (beta, alpha, e), with beta (B, T_a, D) the part of b " \
                      "aligned to each word of a, and alpha (B, T_b, D) the part of a aligned to each word of b"
            if (got_beta.shape == tuple(alpha.shape) and got_alpha.shape == tuple(beta.shape)
                    and np.allclose(got_beta, alpha.numpy(), atol=1e-8)
                    and np.allclose(got_alpha, beta.numpy(), atol=1e-8)
                    and not np.allclose(alpha.numpy(), beta.numpy(), atol=1e-8)):
                raise AssertionError(f"{label}: {swapped}")
            if La != Lb and got_beta.shape == (B, Lb, D) and got_alpha.shape == (B, La, D):
                raise AssertionError(f"{label}: {swapped}")
            wrong_beta = {
                "beta's softmax ran over i, the words of a (dim=-2): beta_i is the part of b aligned to a_i, so "
                "a_i's weights over the T_b words of b must sum to 1, softmax(e, dim=-1)": soft_i @ b,
                f"beta's weights are scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: this exercise uses the plain dot "
                f"product e, softmax(e, dim=-1) @ b": torch.softmax(e / D**0.5, dim=-1) @ b,
                "there is no softmax: e @ b sums b's words weighted by the raw scores. beta_i is a weighted "
                "*average* of b's words, with weights softmax over j of e_ij": e @ b,
            }
            if La == Lb:
                wrong_beta["beta mixes the words of a (it only ran because T_a = T_b here): beta_i is a weighted "
                           "average of *b*'s words, softmax(e, dim=-1) @ b"] = soft_j @ a
            _reject_known(f"beta, {label}", got_beta, beta, wrong_beta, atol=1e-8)
            _compare(f"beta, {label}", got_beta, beta.numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, T_a, D): beta[n, i] = Σ_j softmax_j(e[n, i, j]) b[n, j]")

            wrong_alpha = {
                "alpha's softmax ran over j, the words of b (dim=-1): alpha_j is the part of a aligned to b_j, so "
                "b_j's weights over the T_a words of a must sum to 1: softmax over i, dim=-2, then transpose to "
                "(B, T_b, T_a)": soft_j.transpose(-2, -1) @ a,
                f"alpha's weights are scaled by 1/sqrt(D) = 1/{D**0.5:.3g}: this exercise uses the plain dot "
                f"product e": torch.softmax(e / D**0.5, dim=-2).transpose(-2, -1) @ a,
                "there is no softmax: alpha_j is a weighted *average* of a's words, with weights softmax over i of "
                "e_ij": e.transpose(-2, -1) @ a,
            }
            if La == Lb:
                wrong_alpha["the weights were not transposed (it only ran because T_a = T_b here): softmax(e, dim=-2) "
                            "is (B, T_a, T_b), column j holding b_j's weights; transpose it to (B, T_b, T_a) before "
                            "multiplying by a"] = soft_i @ a
                wrong_alpha["alpha mixes the words of b (it only ran because T_a = T_b here): alpha_j is a weighted "
                            "average of *a*'s words"] = soft_i.transpose(-2, -1) @ b
            _reject_shape(f"alpha, {label}", got_alpha, (B, Lb, D), [])
            _reject_known(f"alpha, {label}", got_alpha, alpha, wrong_alpha, atol=1e-8)
            _compare(f"alpha, {label}", got_alpha, alpha.numpy(), atol=1e-6, rtol=1e-5,
                     legend=" (B, T_b, D): alpha[n, j] = Σ_i softmax_i(e[n, i, j]) a[n, i]")
    _say("soft_align: correct: one score matrix e = a bᵀ, read by rows for beta and by columns for alpha.")


@_reports_not_attempted
def check_patchify(patchify: Callable) -> None:
    """Exercise: ``patchify(images (B, C, Rh, Rw), patch_size ps) -> (B, N, C·ps·ps)``, N = (Rh/ps)(Rw/ps): the ps×ps
    patches in row-major order, each flattened in (C, ps, ps) order, so that a Linear with weight
    ``conv.weight.reshape(D, -1)`` on the patches equals ``Conv2d(C, D, kernel_size=ps, stride=ps)``; ValueError
    when Rh or Rw is not a multiple of ps."""
    patchify = _own_work(
        "patchify", patchify,
        _lib.applications.vision.patchify,
    )
    hint = ("images are (B, C, Rh, Rw): images.reshape(B, C, Rh // ps, ps, Rw // ps, ps) splits the height into "
            "Rh/ps rows of patches, ps pixel rows each, and the width likewise; .permute(0, 2, 4, 1, 3, 5) brings the "
            "patch grid (Rh/ps, Rw/ps) forward and each patch's (C, ps, ps) pixels behind it; "
            ".reshape(B, N, C * ps * ps) flattens both")
    with _attempt("patchify"):
        # Rh != Rw first, so that reading the image as (B, C, Rw, Rh) shows; then a square image and another ps
        for B, C, H, W, P in ((2, 3, 8, 12, 4), (3, 2, 6, 6, 3)):
            x = _numbered(B, C, H, W)  # (B, C, Rh, Rw): the value of each entry is its flat index
            label = f"patchify(images, patch_size={P}) for images of shape (B, C, Rh, Rw) = {(B, C, H, W)}"
            got = _as_array(label, _call_with_hint(label, patchify, (("images", x), ("patch_size", P)), hint))
            rows, cols = H // P, W // P
            N, F = rows * cols, C * P * P
            _reject_shape(label, got, (B, N, F), [
                ((B, F, N), "it looks transposed: (B, C·ps·ps, N) is what F.unfold returns; .transpose(1, 2) makes "
                            "it (B, N, C·ps·ps), one row per patch"),
                ((B, N, C, P, P), "each patch is still a (C, ps, ps) block: flatten it into one vector of C·ps·ps "
                                  "numbers"),
                ((B, rows, cols, F), "the patches are still on their (Rh/ps, Rw/ps) grid: flatten the grid into one "
                                     "axis of N = (Rh/ps)(Rw/ps) patches, row by row"),
                ((B, rows, cols, C, P, P), "the patches are still on their (Rh/ps, Rw/ps) grid and each is a "
                                           "(C, ps, ps) block: reshape to (B, N, C·ps·ps)"),
                ((B * N, F), "the batch axis was folded into the patches: keep it, (B, N, C·ps·ps)"),
            ])
            t = x.reshape(B, C, rows, P, cols, P)  # (B, C, Rh/ps, ps, Rw/ps, ps)
            wrong = {
                "the patches are listed column by column: list them row by row (left to right, then top to "
                "bottom), patch (r, c) at index r·(Rw/ps) + c, the order in which conv(images).flatten(2) lists a "
                "convolution's outputs": t.permute(0, 4, 2, 1, 3, 5).reshape(B, N, F),
                "each patch is flattened channel-last, in (ps, ps, C) order: flatten it in (C, ps, ps) order, channel "
                "first, the layout of conv.weight (D, C, ps, ps), so that conv.weight.reshape(D, -1) lines up with "
                "your patch vectors": t.permute(0, 2, 4, 3, 5, 1).reshape(B, N, F),
                "the pixels inside each patch are listed column by column: flatten each patch in (C, ps, ps) order, "
                "channel, then pixel row, then pixel column, as conv.weight (D, C, ps, ps) is laid out":
                    t.permute(0, 2, 4, 1, 5, 3).reshape(B, N, F),
                "you reshaped the images straight to (B, N, C·ps·ps) without a permute: a reshape keeps the memory "
                "order, so 'patch' 0 holds the first C·ps·ps numbers of channel 0 (whole pixel rows), not a ps×ps "
                "square. Split the height and the width into (Rh/ps, ps) and (Rw/ps, ps), permute the patch grid in "
                "front, then flatten": x.reshape(B, N, F),
            }
            if H != W:
                wrong["you read the images as (B, C, Rw, Rh): they are (B, C, Rh, Rw), height first, so the split is "
                      "reshape(B, C, Rh // ps, ps, Rw // ps, ps)"] = (
                    x.reshape(B, C, W // P, P, H // P, P).permute(0, 2, 4, 1, 3, 5).reshape(B, N, F))
            expected = _ref_patchify(x, P)
            _reject_known(label, got, expected, wrong, atol=0.0)
            _compare_numbered(label, got, expected, (B, C, H, W),
                              " (B, N, C·ps·ps): patch r·(Rw/ps) + c is "
                              "images[n, :, r·ps:(r+1)·ps, c·ps:(c+1)·ps] flattened, channel, then pixel row, "
                              "then pixel column")

        # images that are a non-contiguous view (as after a transpose, or channels-last memory): .view fails there
        x = _numbered(2, 3, 8, 4).transpose(-2, -1)  # (B, C, Rh, Rw) = (2, 3, 4, 8), not contiguous
        label = "patchify(images, patch_size=4) for non-contiguous images of shape (B, C, Rh, Rw) = (2, 3, 4, 8)"
        got = _as_array(label, _call_with_hint(
            label, patchify, (("images", x), ("patch_size", 4)),
            "these images are a transposed view, not contiguous in memory: .view() cannot split their axes; "
            ".reshape() copies when it must"))
        _compare_numbered(label, got, _ref_patchify(x, 4), (2, 3, 8, 4),
                          " (B, N, C·ps·ps): the same patches whatever the memory layout")

        # the reason for this layout: a Linear on the patches is the strided convolution of ViT's patch embedding
        B, C, H, W, P, Dm = 2, 3, 8, 12, 4, 5
        gen = torch.Generator().manual_seed(95)
        images = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)  # (B, C, Rh, Rw)
        with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
            torch.manual_seed(95)
            conv = torch.nn.Conv2d(C, Dm, kernel_size=P, stride=P, dtype=torch.float64)
        label = (f"patchify(images, {P}) @ conv.weight.reshape({Dm}, -1).T + conv.bias for images {(B, C, H, W)} "
                 f"and conv = Conv2d({C}, {Dm}, kernel_size={P}, stride={P})")
        patches = torch.as_tensor(_as_array(label, _call_with_hint(
            label, patchify, (("images", images), ("patch_size", P)), hint)))  # (B, N, C·ps·ps)
        with torch.no_grad():
            expected = conv(images).flatten(2).transpose(1, 2)  # (B, D, Rh/ps, Rw/ps) -> (B, N, D)
            embedded = patches @ conv.weight.reshape(Dm, -1).T + conv.bias  # (B, N, C·ps·ps) @ (C·ps·ps, D)
        _compare(label, embedded.numpy(), expected.numpy(), atol=1e-6,
                 legend=" (B, N, D): conv(images).flatten(2).transpose(1, 2), one embedding per patch")

        # images that do not split into whole patches
        for shape, P, side in (((1, 3, 8, 6), 4, "Rw = 6"), ((1, 3, 6, 8), 4, "Rh = 6")):
            label = f"patchify(images, patch_size={P}) for images of shape (B, C, Rh, Rw) = {shape}"
            try:
                patchify(torch.zeros(*shape), P)
            except ValueError:
                continue
            except (NotImplementedError, NotAttempted):
                raise
            except AssertionError as exc:
                raise AssertionError(
                    f"{label} raised AssertionError ({exc}): an assert is not input validation (python -O removes "
                    f"it). Raise ValueError naming the shapes, e.g. ValueError(f'Rh={{Rh}} and Rw={{Rw}} must be "
                    f"multiples of patch_size={{ps}}')"
                ) from None
            except Exception as exc:
                raise AssertionError(
                    f"{label} raised {type(exc).__name__} ({exc}): {side} is not a multiple of patch_size = {P}, "
                    f"and that should be a ValueError that names the shapes, raised by your own check before any "
                    f"reshape, not an error about element counts from inside PyTorch"
                ) from None
            raise AssertionError(
                f"{label} returned a result: {side} is not a multiple of patch_size = {P}, so the image does not "
                f"split into whole patches. Raise ValueError naming the shapes (F.unfold and slicing silently drop "
                f"the pixels that do not fit)"
            )
    _say("patchify: correct: row-major patches flattened in (C, ps, ps) order, the same as a stride-ps convolution "
          "followed by flatten, and a ValueError for images that do not split into whole patches.")


def _ref_seasonal_naive(y: torch.Tensor, period: int, horizon: int) -> torch.Tensor:
    """The package's seasonal naive forecast for one series: (T,) -> (horizon,)."""
    return seasonal_naive_forecast(y[None], horizon, period)[0]


def _seasonal_series(seed: int, T: int, period: int) -> torch.Tensor:
    """A trend plus a season of ``period`` steps plus noise: T distinct float64 values. (T,)"""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(T)
    season = 2.0 * torch.randn(period, generator=gen, dtype=torch.float64)  # (period,)
    return 10.0 + 0.1 * t + season[t % period] + 0.3 * torch.randn(T, generator=gen, dtype=torch.float64)


@_reports_not_attempted
def check_seasonal_naive(seasonal_naive: Callable) -> None:
    """Exercise: ``seasonal_naive(y (T,), period, horizon) -> (horizon,)``: ŷ_{T+h} = y_{T+h-κ·period} with
    κ = ceil(h/period), the smallest whole number of seasons that lands in the observed past:
    y[T - period + (h - 1) % period], 0-based; ``period`` is the season length T_season."""
    seasonal_naive = _own_work(
        "seasonal_naive", seasonal_naive,
        _lib.applications.sequences.seasonal_naive_forecast,
    )
    hint = ("y is 1-D (T,). The forecast h steps ahead (h = 1..horizon) is y[T - period + (h - 1) % period] in 0-based "
            "indexing: the last period values y[-period:], repeated for as long as the horizon needs")
    with _attempt("seasonal_naive"):
        # horizons shorter than, equal to and longer than the season; T not a multiple of period; period 1: plain naive
        for seed, T, m, H in ((96, 11, 4, 3), (96, 11, 4, 4), (96, 11, 4, 10), (97, 15, 7, 16), (98, 6, 1, 3),
                              (99, 5, 5, 7), (95, 9, 3, 1)):
            y = _seasonal_series(seed, T, m)  # (T,)
            label = f"seasonal_naive(y, period={m}, horizon={H}) for y of length T={T}"
            call_hint = hint + (f". For horizon {H} > period {m} the index T - period + h - 1 runs past the end of y: "
                                f"wrap it into the last season with % period" if H > m else "")
            got = _as_array(label, _call_with_hint(label, seasonal_naive, (("y", y), ("period", m), ("horizon", H)),
                                                   call_hint))
            expected = _ref_seasonal_naive(y, m, H)  # (horizon,)
            if got.shape == (min(m, H),) != (H,):
                raise AssertionError(
                    f"{label} has shape {got.shape} but should have shape {(H,)}: you returned one season only, "
                    f"at most period = {m} values. For horizon > period, repeat the last season cyclically: step h "
                    f"uses y[T - period + (h - 1) % period]"
                )
            steps = torch.arange(H)  # h - 1
            last = T - 1
            wrong = {
                f"each step is one too early, a lag of period + 1 = {m + 1}: the value one season before time T + h is "
                f"y_(T+h-period), which is y[T - period + (h - 1)] with 0-based indices (h = 1 is y[T - period])":
                    y[T - m - 1 + steps % m],
                "that is the naive (last-value) forecast, y[-1] for every step: the seasonal one repeats the last "
                "*season*, y[T - period + (h - 1) % period]": y[last].expand(H),
                f"you repeated the first season of the series, y[:period]: use the *last* full season, the most recent "
                f"period = {m} values y[-period:]": y[steps % m],
                f"your values come from the first season (in the right phase): use the *last* full season, the "
                f"most recent period = {m} values y[-period:]": y[(T + steps) % m],
                "after the first season you kept repeating the last value: for horizon > period start the season "
                "again, index T - period + (h - 1) % period": y[torch.clamp(T - m + steps, max=last)],
                "that is the mean of the last season, the same for every step: the seasonal naive forecast keeps "
                "each step's own value from one season before": y[T - m:].mean().expand(H),
            }
            if H <= m - 1:
                wrong[f"each step is one too late (a lag of period - 1 = {m - 1}): counting h from 1 in a 0-based "
                      f"index, y[T - period + h], skips the first value of the season. Step h = 1 is "
                      f"y[T - period]"] = (
                    y[T - m + 1 + steps])
            # the forecast copies values of y: float32 rounding (about 1e-6 here) is the only difference allowed
            _reject_known(label, got, expected, wrong, atol=1e-5)
            if got.shape == (H,) and np.all(np.isfinite(got)):
                yn = y.numpy()
                for i in range(H):
                    if abs(got[i] - expected[i].item()) > 1e-5:
                        src = np.flatnonzero(np.abs(yn - got[i]) <= 1e-5)
                        came = f" = y[{int(src[0])}]" if len(src) else ""
                        raise AssertionError(
                            f"{label}: forecast[{i}] (h = {i + 1} steps ahead) is {got[i]:.6g}{came} but should be "
                            f"y[{T - m + i % m}] = {expected[i].item():.6g}, the value a whole number of seasons "
                            f"(of {m} steps) before time T + h, the last one observed"
                        )
            _compare(label, got, expected.numpy(), atol=1e-5,
                     legend=" (horizon,): forecast[h - 1] = y[T - period + (h - 1) % period]")
    _say("seasonal_naive: correct: the last full season, repeated for any horizon.")


@_reports_not_attempted
def check_mase(mase: Callable) -> None:
    """Exercise: ``mase(forecast (T_out,), actual (T_out,), history (T,), period) -> float``: the mean absolute error
    of the forecast divided by the in-sample mean absolute error of the one-step seasonal naive forecast,
    mean_t |history[t] - history[t - period]| over t = period..T-1."""
    mase = _own_work(
        "mase", mase,
        _lib.applications.sequences.mase,
    )
    hint = ("forecast and actual are (T_out,), history (T,): history[period:] - history[:-period] are the "
            "T - period in-sample errors of the one-step seasonal naive forecast; the result is one number")
    with _attempt("mase"):
        for seed, T, m, H in ((101, 20, 4, 6), (102, 15, 5, 3), (103, 12, 1, 4)):
            full = _seasonal_series(seed, T + H, m)  # (T + T_out,)
            history, actual = full[:T], full[T:]  # (T,), (T_out,)
            gen = torch.Generator().manual_seed(seed)
            forecast = _ref_seasonal_naive(history, m, H) + 0.5 * torch.randn(H, generator=gen, dtype=torch.float64)
            label = f"mase(forecast, actual, history, period={m}) for T={T} past values and a horizon of T_out={H}"
            result = _call_with_hint(label, mase, (("forecast", forecast), ("actual", actual),
                                                   ("history", history), ("period", m)), hint)
            if isinstance(result, (torch.Tensor, np.ndarray)) and np.asarray(
                    result.detach() if isinstance(result, torch.Tensor) else result).size != 1:
                raise AssertionError(
                    f"{label} must be one number, got an array of shape {tuple(np.shape(result))}: average the "
                    f"absolute errors over the horizon, .mean(), and divide by the scale"
                )
            got = _number(label, result)
            expected = _ref_mase(forecast, actual, history, m)
            err = actual - forecast  # (T_out,)
            diffs = history[m:] - history[:-m]  # (T - period,)
            lag1 = (history[1:] - history[:-1]).abs().mean()
            wrong = {
                "the scale uses lag 1 differences, |y_t - y_(t-1)|: that is MASE for a series without a season. With "
                "a season of `period` steps the scale is the in-sample error of the *seasonal* naive forecast, "
                "mean |y_t - y_(t-period)|":
                    err.abs().mean() / lag1,
                "the scale was computed on the actual future values: it comes from the history only (in-sample), "
                "so that it is known before the forecast is scored and is the same for every method":
                    err.abs().mean() / (actual[m:] - actual[:-m]).abs().mean() if H > m else None,
                "errors of opposite sign cancel: take the mean *absolute* error, (actual - forecast).abs().mean()":
                    err.mean() / diffs.abs().mean(),
                "the scale's differences must be absolute too, mean |y_t - y_(t-period)|: signed differences cancel":
                    err.abs().mean() / diffs.mean(),
                "squared errors: MASE uses absolute errors, in the numerator and in the scale":
                    (err**2).mean() / (diffs**2).mean(),
                f"the scale's mean runs over the T - period = {T - m} differences y_t - y_(t-period), "
                f"t = period..T-1, not over T = {T}": err.abs().mean() / (diffs.abs().sum() / T),
                "the ratio is upside down: the forecast's error goes on top, mean|actual - forecast| / scale":
                    diffs.abs().mean() / err.abs().mean(),
                "the numerator is a sum: use the mean absolute error over the horizon":
                    err.abs().sum() / diffs.abs().mean(),
                "the scale was computed on the history and the future values together: it comes from the history "
                "only, so that it is known before the forecast is scored":
                    err.abs().mean() / (full[m:] - full[:-m]).abs().mean(),
                "the scale is the forecast's own seasonal differences: it comes from the observed history, "
                "history[period:] - history[:-period]":
                    err.abs().mean() / (forecast[m:] - forecast[:-m]).abs().mean() if H > m else None,
                "the scale uses the median of the absolute differences: MASE uses their mean":
                    err.abs().mean() / diffs.abs().median(),
                "you divided by the mean absolute value of the history, not by its seasonal differences: the "
                "scale is the in-sample error of the seasonal naive forecast, mean |y_t - y_(t-period)|":
                    err.abs().mean() / history.abs().mean(),
            }
            for why, value in wrong.items():
                if value is None:
                    continue
                value = float(value)
                if np.isclose(got, value, rtol=1e-6, atol=0.0) and not np.isclose(value, expected, rtol=1e-4, atol=0.0):
                    raise AssertionError(f"{label} is {got:.6g} but should be {expected:.6g}: {why}")
            if not np.isclose(got, expected, rtol=1e-5, atol=0.0):  # float32 arithmetic is fine
                raise AssertionError(
                    f"{label} is {got:.6g} but should be {expected:.6g}: MASE = mean|actual - forecast| / "
                    f"mean|history[t] - history[t - period]|, the second mean over t = period..T-1"
                )
    _say("mase: correct: the forecast's mean absolute error over the in-sample error of the seasonal naive "
          "forecast.")


# ---------------------------------------------------------------- a question and the experiment


@_reports_not_attempted
def check_mase_meaning(answer: Callable[[], object]) -> None:
    """Question: what a MASE of 0.8 on the forecast horizon says, and what it does not."""
    _check_choice(
        "mase_meaning", answer, "c",
        "MASE divides the forecast's mean absolute error by a scale from the history alone: the mean absolute "
        "error of the one-step seasonal naive forecast *in sample*. 0.8 says the forecast's errors are 80% of "
        "that yardstick. Whether it beats the seasonal naive forecast on these future values is another "
        "question: compute that forecast's MASE on the same series and compare the two.",
        {
            "a": "The scale is not the seasonal naive forecast's error on the horizon: it is its one-step error "
                 "*within the history*, y_t against y_(t-season), known before the forecast is made. Forecasting "
                 "h steps ahead is harder than one step, so the seasonal naive forecast itself often scores above "
                 "1 on the horizon; to say who wins, compare the MASEs of both methods on the same series.",
            "b": "MASE is not a share of correct forecasts, nor 1 minus an error rate: it is a ratio of two mean "
                 "absolute errors, with no upper bound. 0 is a perfect forecast; 0.8 means errors 80% the size "
                 "of the in-sample seasonal naive errors.",
            "d": "MASE has no units precisely because the scale comes from the same series: 0.8 on a series in "
                 "kWh and 0.8 on one in euros mean the same thing. Its scale is a mean absolute error, not a "
                 "variance, so it says nothing about variance explained (that would be R²).",
        },
    )


_EXPERIMENT_MODEL: dict = {}


def _erasure_setup() -> tuple[torch.nn.Module, "object"]:
    """The small review classifier and test reviews of the erasure experiment, trained once (about 2 s) and kept."""
    if not _EXPERIMENT_MODEL:
        from ..applications import text as tx

        train, test = tx.reviews(1000, seed=0), tx.reviews(300, seed=10_000)
        with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
            torch.manual_seed(0)
            model = tx.ReviewClassifier(len(tx.REVIEW_VOCAB), embed_size=16, hidden_size=24, key_size=16)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small matrices: one thread is faster, and steady on a busy machine
        try:
            tx.fit(model, (train.tokens, train.lengths), train.labels, steps=150, batch_size=64, lr=1e-2, seed=0)
        finally:
            torch.set_num_threads(threads)
        _EXPERIMENT_MODEL.update(model=model, test=test)
    return _EXPERIMENT_MODEL["model"], _EXPERIMENT_MODEL["test"]


def _erasure_reference(model, tokens, lengths, labels, seed) -> tuple[float, float, dict]:
    """(flip_top, flip_random, {mistake: (top, random)}) measured with the package."""
    from ..applications import text as tx

    pred, w = tx.predict(model, tokens, lengths)  # (B,), (B, S)
    B = tokens.shape[0]
    u = torch.rand(B, generator=torch.Generator().manual_seed(seed))  # (B,)
    random_pos = (u * lengths).long()  # (B,): a real word of each review
    pred_top, _ = tx.predict(model, *tx.drop_word(tokens, lengths, w.argmax(dim=1)))
    pred_low, _ = tx.predict(model, *tx.drop_word(tokens, lengths, w.masked_fill(w == 0, 2.0).argmin(dim=1)))
    pred_rand, _ = tx.predict(model, *tx.drop_word(tokens, lengths, random_pos))
    flip = lambda p: float((p != pred).float().mean())  # noqa: E731
    acc = lambda p: float((p == labels).float().mean())  # noqa: E731
    err = lambda p: float((p != labels).float().mean())  # noqa: E731
    top, rand = flip(pred_top), flip(pred_rand)
    mistakes = {
        "labels": (err(pred_top), err(pred_rand)),
        "accuracy drop": (acc(pred) - acc(pred_top), acc(pred) - acc(pred_rand)),
        "percent": (100 * top, 100 * rand),
        "lowest": (flip(pred_low), rand),
        "swapped": (rand, top),
        "kept": (1 - top, 1 - rand),
    }
    return top, rand, mistakes


@_reports_not_attempted
def check_erasure_flip_rates(erasure_flip_rates: Callable) -> None:
    """Experiment: ``erasure_flip_rates(model, tokens, lengths, seed) -> (flip_top, flip_random)``: the share of
    reviews whose predicted class changes when the most-attended word is deleted, and when a random real word is
    (positions (torch.rand(B, generator=torch.Generator().manual_seed(seed)) * lengths).long()), with
    ``tx.predict`` and ``tx.drop_word``."""
    hint = ("tx.predict(model, tokens, lengths) returns (pred (B,), weights (B, S)); weights.argmax(dim=1) is each "
            "review's most-attended position; tx.drop_word(tokens, lengths, positions) needs 0 <= positions < "
            "lengths, so draw the random positions as (u * lengths).long() with u uniform in [0, 1)")
    with _attempt("erasure_flip_rates"):
        model, test = _erasure_setup()
        for seed, rows in ((0, slice(0, 300)), (5, slice(0, 200))):
            tokens, lengths, labels = test.tokens[rows], test.lengths[rows], test.labels[rows]
            label = f"erasure_flip_rates(model, tokens, lengths, seed={seed}) on {len(lengths)} test reviews"
            args = (("model", model), ("tokens", tokens), ("lengths", lengths), ("seed", seed))
            weights_before = {k: v.clone() for k, v in model.state_dict().items()}
            try:
                got = _tuple_of(label, _call_with_hint(label, erasure_flip_rates, args, hint),
                                ("flip_top", "flip_random"))
            finally:
                changed = [k for k, v in model.state_dict().items() if not torch.equal(v, weights_before[k])]
                model.load_state_dict(weights_before)  # the next check gets the model it expects
            if changed:
                raise AssertionError(
                    f"{label} changed the model's weights ({changed[0]}, ...): the experiment observes a trained "
                    f"model, it must not train or edit it. Only call tx.predict on it"
                )
            got = tuple(float(_number(f"{name}, {label}", g)) for name, g in zip(("flip_top", "flip_random"), got))
            top, rand, mistakes = _erasure_reference(model, tokens, lengths, labels, seed)
            again = tuple(float(_number(label, g)) for g in _tuple_of(
                label, _call_with_hint(label, erasure_flip_rates, args, hint), ("flip_top", "flip_random")))
            if again[1] != got[1]:
                raise AssertionError(
                    f"{label}: flip_random changed between two calls with the same seed ({got[1]:.4g}, then "
                    f"{again[1]:.4g}): draw the random positions with a generator seeded by `seed`, "
                    f"torch.rand(B, generator=torch.Generator().manual_seed(seed)), not from the global RNG, so "
                    f"that the experiment can be repeated"
                )
            hints = {
                "labels": "you compared the predictions after erasure with the true labels: that is the error "
                          "rate, which counts the model's own mistakes too. The flip rate compares with the model's "
                          "prediction on the intact review, (pred_after != pred_before).mean()",
                "accuracy drop": "that is the drop in accuracy: flips in both directions cancel in it. Count the "
                                 "reviews whose prediction changed, (pred_after != pred_before).float().mean()",
                "percent": "those are percentages: return shares between 0 and 1",
                "lowest": "you deleted the *least*-attended real word: the experiment deletes the most-attended "
                          "one, weights.argmax(dim=1)",
                "swapped": "flip_top and flip_random are swapped: return (flip_top, flip_random)",
                "kept": "those are the shares of predictions that stayed the same: the flip rate counts the ones "
                        "that changed",
            }
            for kind, why in hints.items():
                wrong = mistakes[kind]
                if (abs(wrong[0] - top) > 1e-9 or abs(wrong[1] - rand) > 1e-9) and \
                        abs(got[0] - wrong[0]) < 1e-6 and abs(got[1] - wrong[1]) < 1e-6:
                    raise AssertionError(f"{label}: {why}")
            if abs(got[0] - top) > 1e-6:
                raise AssertionError(
                    f"flip_top, {label} is {got[0]:.4g} but should be {top:.4g}: predict on the intact reviews, "
                    f"delete each review's most-attended word (weights.argmax(dim=1)) with tx.drop_word, predict "
                    f"again, and take the share of reviews whose prediction changed"
                )
            # another correct draw of random real words differs by chance: about ±0.01 here; allow 0.03
            if abs(got[1] - rand) > 0.03:
                raise AssertionError(
                    f"flip_random, {label} is {got[1]:.4g} but should be about {rand:.4g} (exactly that with the "
                    f"positions (torch.rand(B, generator=torch.Generator().manual_seed(seed)) * lengths).long()): "
                    f"delete one random *real* word of each review, then count the changed predictions"
                )
    _say(f"erasure_flip_rates: correct. Deleting the most-attended word flips {100 * top:.1f}% of the predictions, "
         f"a random word {100 * rand:.1f}%: on this model the weights point at words the prediction uses.")
