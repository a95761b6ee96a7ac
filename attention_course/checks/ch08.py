"""Chapter 8, the Transformer: layer norm, feed-forward, encoder blocks (post- and pre-norm).

The checks of ``chapters/08_*_exercises.ipynb``; see :mod:`attention_course.checks`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


import attention_course as _lib
import attention_course.transformer  # noqa: F401 (binds _lib.transformer)

from .. import masks
from ._core import (
    _own_work,
    _say,
    _reports_not_attempted,
    _attempt,
    _as_array,
    _compare,
    _reject_known,
    _call_with_hint,
)

__all__ = [
    "check_layer_norm",
    "check_feed_forward",
    "check_encoder_block",
    "check_pre_norm_block",
]


def _reject_known_nan(label: str, got: np.ndarray, expected: torch.Tensor, wrong: dict, atol: float = 1e-8) -> None:
    """:func:`_reject_known` where a wrong answer may hold NaN in the same places as ``got``."""
    exp = expected.detach().numpy()
    if got.shape != exp.shape:
        return
    for hint, value in wrong.items():
        value = value.detach().numpy()
        if value.shape != got.shape or np.allclose(value, exp, atol=atol, equal_nan=True):
            continue  # not a mistake these inputs can reveal
        if np.allclose(got, value, atol=atol, equal_nan=True):
            raise AssertionError(f"{label}: {hint}")


def _ln(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, *, dim: int | tuple = -1,
        correction: int = 0, eps_inside: bool = True, center: bool = True) -> torch.Tensor:
    """Layer norm with one step changed to make a mistake (the defaults are the right one)."""
    mean = x.mean(dim=dim, keepdim=True) if center else 0.0
    var = x.var(dim=dim, keepdim=True, correction=correction)
    scale = (var + eps).sqrt() if eps_inside else var.sqrt() + eps
    return gamma * (x - mean) / scale + beta


@_reports_not_attempted
def check_layer_norm(layer_norm: Callable) -> None:
    """Exercise: ``layer_norm(x (..., D), gamma (D,), beta (D,), eps) -> (..., D)``: each token's D features
    brought to mean 0 and variance 1 (the biased variance, eps inside the square root), then
    gamma * x̂ + beta, as ``torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)``."""
    layer_norm = _own_work(
        "layer_norm", layer_norm,
        torch.nn.functional.layer_norm,
        torch.nn.LayerNorm,
        torch.layer_norm,
    )
    with _attempt("layer_norm"):
        gen = torch.Generator().manual_seed(81)
        # (T, D); (B, T, D) with a large eps; then B = T = D, where a mean without keepdim still broadcasts
        for shape, eps, spread in (((4, 6), 1e-5, 2.0), ((2, 5, 8), 0.1, 0.5), ((3, 3, 3), 0.1, 0.5)):
            D = shape[-1]
            x = torch.randn(*shape, generator=gen, dtype=torch.float64) * spread + 1.0  # mean 1: not normalised yet
            gamma = 1.0 + 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            beta = 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            label = f"layer_norm(x, gamma, beta, eps={eps}) for x of shape {shape}"
            result = _call_with_hint(
                label, layer_norm, (("x", x), ("gamma", gamma), ("beta", beta), ("eps", eps)),
                f"x is {shape}: take the mean and the variance over the last axis, dim=-1, with keepdim=True so "
                f"that they are {shape[:-1] + (1,)} and broadcast against x; gamma and beta (D,) = ({D},) "
                f"broadcast by themselves",
            )
            got = _as_array(label, result)
            expected = torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)  # (..., D)
            wrong = {
                "you used the unbiased variance, which divides by D - 1 (torch.var and Tensor.std do so by "
                "default, Bessel's correction): layer norm divides by D, var(dim=-1, unbiased=False) or "
                "correction=0": _ln(x, gamma, beta, eps, correction=1),
                "you normalised over the tokens (dim -2), so each *feature* has mean 0 along the sequence, a "
                "kind of batch norm: layer norm normalises each token's own D features, dim=-1 "
                "(Ba et al. 2016)": _ln(x, gamma, beta, eps, dim=-2),
                "you normalised over the whole tensor at once: each token is normalised on its own, over its "
                "D features, dim=-1 with keepdim=True": _ln(x, gamma, beta, eps, dim=tuple(range(x.dim()))),
                "eps is outside the square root, (x - mean) / (std + eps): it goes inside, "
                "(x - mean) / sqrt(var + eps), as in nn.LayerNorm": _ln(x, gamma, beta, eps, eps_inside=False),
                f"you left out eps = {eps}: it goes inside the square root, sqrt(var + eps), and keeps a "
                f"constant token from dividing by zero": _ln(x, gamma, beta, 0.0),
                f"you did not use the eps passed in, eps = {eps}, but 1e-5: use the argument, sqrt(var + eps)":
                    _ln(x, gamma, beta, 1e-5),
                "gamma and beta are not applied: after normalising, scale by gamma and shift by beta, "
                "gamma * x̂ + beta": _ln(x, torch.ones_like(gamma), torch.zeros_like(beta), eps),
                "gamma and beta are swapped: gamma scales, beta shifts, gamma * x̂ + beta": _ln(x, beta, gamma, eps),
                "you did not subtract the mean: x̂ = (x - mean) / sqrt(var + eps)": _ln(x, gamma, beta, eps,
                                                                                      center=False),
                "you divided by the variance, not by its square root: x̂ = (x - mean) / sqrt(var + eps)":
                    gamma * (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, correction=0) + eps) + beta,
            }
            if shape[-1] == shape[-2]:
                wrong["the mean and the variance lost their last axis (no keepdim=True), so they broadcast along "
                      "the wrong axis (it only ran because T = D here): x.mean(dim=-1, keepdim=True) is "
                      "(..., T, 1)"] = (
                    gamma * (x - x.mean(-1)) / (x.var(-1, correction=0) + eps).sqrt() + beta)
            _reject_known(label, got, expected, wrong, atol=1e-8)
            _compare(label, got, expected.numpy(), atol=1e-8,
                     legend=f" {shape}: every token's D = {D} features normalised, then scaled and shifted")
    _say("layer_norm: correct: each token over its own D features, biased variance, eps inside the root.")


def _ffn(x, W1, b1, W2, b2, *, inner=torch.relu, outer=lambda t: t) -> torch.Tensor:
    return outer(inner(x @ W1 + b1) @ W2 + b2)


@_reports_not_attempted
def check_feed_forward(feed_forward: Callable) -> None:
    """Exercise: ``feed_forward(x (B, T, D), W1 (D, F), b1 (F,), W2 (F, D), b2 (D,)) -> (B, T, D)``, the
    position-wise network relu(x W1 + b1) W2 + b2, applied to every token alone."""
    feed_forward = _own_work(
        "feed_forward", feed_forward,
        _lib.transformer.FeedForward,
    )
    with _attempt("feed_forward"):
        # first T = D = F, where a transposed weight or a product over the time axis still runs
        for seed, (B, T, D, F) in ((82, (2, 4, 4, 4)), (83, (3, 5, 6, 10))):
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
            W1 = torch.randn(D, F, generator=gen, dtype=torch.float64) / D**0.5  # (D, F)
            b1 = 0.5 * torch.randn(F, generator=gen, dtype=torch.float64)  # (F,)
            W2 = torch.randn(F, D, generator=gen, dtype=torch.float64) / F**0.5  # (F, D)
            b2 = 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)  # (D,)
            args = (("x", x), ("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))
            label = f"feed_forward for B={B}, T={T}, D={D}, F={F}"
            hint = (f"x is (B, T, D) = {(B, T, D)}, W1 (D, F) = {(D, F)} and W2 (F, D) = {(F, D)}: x @ W1 + b1 "
                    f"is (B, T, F), the ReLU keeps that shape, and @ W2 + b2 brings it back to (B, T, D)")
            got = _as_array(label, _call_with_hint(label, feed_forward, args, hint))
            expected = _ffn(x, W1, b1, W2, b2)  # (B, T, D)
            zero = torch.zeros_like
            wrong = {
                "there is a ReLU after the second layer too: the network is Linear, ReLU, Linear, with nothing "
                "after the last layer, whose output may be negative (the residual connection adds it to x)":
                    _ffn(x, W1, b1, W2, b2, outer=torch.relu),
                "the ReLU is after the second layer instead of between the two: relu(x W1 + b1) W2 + b2":
                    _ffn(x, W1, b1, W2, b2, inner=lambda t: t, outer=torch.relu),
                "there is no ReLU: two linear layers in a row are one linear layer, (x W1) W2 = x (W1 W2). "
                "The ReLU between them is what lets the network compute more than a linear map":
                    _ffn(x, W1, b1, W2, b2, inner=lambda t: t),
                "that is GELU, the activation of BERT and GPT: the paper's network, and this exercise, use ReLU, "
                "torch.relu": _ffn(x, W1, b1, W2, b2, inner=torch.nn.functional.gelu),
                "b1 is missing: the first layer is x @ W1 + b1": _ffn(x, W1, zero(b1), W2, b2),
                "b2 is missing: the second layer adds b2": _ffn(x, W1, b1, W2, zero(b2)),
                "you returned the hidden layer relu(x W1 + b1), (B, T, F): the second layer brings it back to "
                "width D, @ W2 + b2": torch.relu(x @ W1 + b1),
            }
            if D == F:
                wrong["the weights are used transposed: they act as x @ W1 and h @ W2 (an nn.Linear stores the "
                      "transpose, x @ weight.T)"] = _ffn(x, W1.T, b1, W2.T, b2)
            if T == D == F:
                wrong["you multiplied along the time axis, mixing the tokens (it only ran because T = D here): "
                      "the feed-forward works on each token's D features, x @ W1 with x (B, T, D)"] = (
                    _ffn(x.transpose(1, 2), W1, b1, W2, b2).transpose(1, 2))
            _reject_known(label, got, expected, wrong, atol=1e-8)
            # position-wise: changing one token changes that token's output only
            x2 = x.clone()
            x2[:, 0] += 1.0  # (B, T, D): only token 0 changed
            got2 = _as_array(label, _call_with_hint(label, feed_forward, (("x", x2),) + args[1:], hint))
            moved = np.abs(got2[:, 1:] - got[:, 1:]).max() if T > 1 else 0.0
            if moved > 1e-9:
                raise AssertionError(
                    f"{label}: changing token 0 changed the output of other tokens (by up to {moved:.3g}): the "
                    f"feed-forward is position-wise, each token's output depends on that token alone"
                )
            _compare(label, got, expected.numpy(), atol=1e-8, legend=" (B, T, D): one output per token")
    _say("feed_forward: correct: relu(x W1 + b1) W2 + b2, token by token.")


def _torch_encoder_layer(seed: int, D: int, H: int, F: int, norm_first: bool) -> torch.nn.TransformerEncoderLayer:
    """A seeded float64 ``nn.TransformerEncoderLayer`` (ReLU, no dropout) with non-trivial norms and biases.

    Left in train mode: with dropout 0.0 that changes nothing but keeps PyTorch off its fused inference path."""
    with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
        torch.manual_seed(seed)
        layer = torch.nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation="relu", batch_first=True,
                                                 norm_first=norm_first, dtype=torch.float64)
        with torch.no_grad():
            for norm in (layer.norm1, layer.norm2):  # different norms, so that swapping them shows
                norm.weight.copy_(1.0 + 0.3 * torch.randn(D, dtype=torch.float64))
                norm.bias.copy_(0.3 * torch.randn(D, dtype=torch.float64))
            layer.self_attn.in_proj_bias.copy_(0.1 * torch.randn(3 * D, dtype=torch.float64))
            layer.self_attn.out_proj.bias.copy_(0.1 * torch.randn(D, dtype=torch.float64))
    return layer.train()


def _block_variants(x: torch.Tensor, layer: torch.nn.TransformerEncoderLayer, mask: torch.Tensor,
                    ff: Callable) -> dict[str, torch.Tensor]:
    """The encoder block with one thing changed: {name: output (B, T, D)}. ``mask`` (B, T), True = may attend."""
    attn, n1, n2 = layer.self_attn, layer.norm1, layer.norm2

    def sa(h: torch.Tensor, kpm: torch.Tensor | None = ~mask, kv: torch.Tensor | None = None,
           need_weights: bool = False) -> torch.Tensor:
        kv = h if kv is None else kv
        return attn(h, kv, kv, key_padding_mask=kpm, need_weights=need_weights)[0]  # (B, T, D)

    v = {}
    with torch.no_grad():
        a = sa(x)
        # post-norm
        x1 = n1(x + a)
        v["post"] = n2(x1 + ff(x1))
        v["post, no attention residual"] = (lambda h: n2(h + ff(h)))(n1(a))
        v["post, no feed-forward residual"] = n2(ff(x1))
        v["post, residual after the norm"] = (lambda h: h + n2(ff(h)))(x + n1(a))
        v["post, feed-forward reads the attention output"] = n2(x1 + ff(a))
        v["post, norms swapped"] = (lambda h: n1(h + ff(h)))(n2(x + a))
        v["post, norm1 twice"] = (lambda h: n1(h + ff(h)))(x1)
        v["post, no feed-forward"] = n2(x1)
        for need in (True, False):  # nn.MultiheadAttention gives NaN or 0 for a query with no key, by need_weights
            v[f"post, mask inverted {need}"] = (lambda h: n2(h + ff(h)))(n1(x + sa(x, mask, need_weights=need)))
            h = n1(x)
            v[f"pre, mask inverted {need}"] = (lambda y: y + ff(n2(y)))(x + sa(h, mask, need_weights=need))
        v["post, mask ignored"] = (lambda h: n2(h + ff(h)))(n1(x + sa(x, None)))
        # pre-norm
        h = n1(x)
        y = x + sa(h)
        v["pre"] = y + ff(n2(y))
        v["pre, residual from the normalised x"] = (lambda y: y + ff(n2(y)))(h + sa(h))
        v["pre, only the queries normalised"] = (lambda y: y + ff(n2(y)))(x + sa(h, kv=x))
        v["pre, feed-forward without norm2"] = y + ff(y)
        v["pre, norm after the feed-forward"] = n2(y + ff(y))
        v["pre, no attention residual"] = (lambda y: y + ff(n2(y)))(sa(h))
        v["pre, no feed-forward residual"] = ff(n2(y))
        v["pre, norms swapped"] = (lambda y: y + ff(n1(y)))(x + sa(n2(x)))
        v["pre, mask ignored"] = (lambda y: y + ff(n2(y)))(x + sa(h, None))
    return v


_MASK_INVERTED = (
    "the mask is inverted for nn.MultiheadAttention: ours is True = *may attend*, but its key_padding_mask is True "
    "= *ignore this key*. Passing ours as it is hides the real tokens and attends to the padding (a sequence "
    "without padding then has no key at all: NaN, or zeros). Pass key_padding_mask=~mask"
)


def _check_encoder_block(fn: Callable, name: str, norm_first: bool, wrong: dict[str, str]) -> None:
    """Shared by the post-norm and the pre-norm exercise: ``fn(x, attn, ff, norm1, norm2, mask)`` against
    ``nn.TransformerEncoderLayer(norm_first=norm_first)`` with the same weights and the padding mask."""
    # lengths: a sequence without padding (an inverted mask leaves it no key), a padded one, a single token
    for seed, (B, T, D, H, F), lengths in ((84, (3, 5, 8, 2, 16), [5, 3, 1]), (85, (2, 4, 12, 3, 20), [2, 4])):
        layer = _torch_encoder_layer(seed, D, H, F, norm_first)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
        mask = masks.padding_mask(torch.tensor(lengths), T)  # (B, T), True = a real token, may be attended
        ff = torch.nn.Sequential(layer.linear1, torch.nn.ReLU(), layer.linear2)  # (B, T, D) -> (B, T, D)
        label = f"{name} for B={B}, T={T}, D={D}, H={H}, lengths={lengths}"
        result = _call_with_hint(
            label, fn, (("x", x), ("attn", layer.self_attn), ("ff", ff), ("norm1", layer.norm1),
                        ("norm2", layer.norm2), ("mask", mask)),
            "attn is an nn.MultiheadAttention(batch_first=True): attn(q, k, v, key_padding_mask=...) returns a "
            "pair (output (B, T, D), weights), so take [0]. Its key_padding_mask is (B, T), True = ignore this "
            "key. ff, norm1 and norm2 take and return (B, T, D)",
        )
        if isinstance(result, tuple):
            raise AssertionError(
                f"{label} returned a tuple of {len(result)}: return only the new x (B, T, D). attn(...) returns "
                f"(output, weights); keep its [0]"
            )
        got = _as_array(label, result)
        with torch.no_grad():
            expected = layer(x, src_key_padding_mask=~mask)  # PyTorch's mask: True = may NOT attend
        variants = _block_variants(x, layer, mask, ff)  # variants[kind] is expected (tests/test_checks.py)
        if got.shape == tuple(expected.shape) and np.isnan(got).any() and not torch.isnan(expected).any():
            b = int(np.argwhere(np.isnan(got))[0][0])
            raise AssertionError(
                f"{label}: the output of sequence {b} (length {lengths[b]}) is NaN. A query that may attend to no "
                f"key at all gets a softmax over nothing but -inf. If sequence {b} has no padding, {_MASK_INVERTED}"
            )
        _reject_known_nan(label, got, expected, {hint: variants[key] for key, hint in wrong.items()}, atol=1e-8)
        _compare(label, got, expected.numpy(), atol=1e-8,
                 legend=f" (B, T, D): torch.nn.TransformerEncoderLayer(norm_first={norm_first}) with the same "
                        f"weights, src_key_padding_mask=~mask")


@_reports_not_attempted
def check_encoder_block(encoder_block: Callable) -> None:
    """Exercise: ``encoder_block(x (B, T, D), attn, ff, norm1, norm2, mask (B, T)) -> (B, T, D)``, the post-norm
    encoder layer of Vaswani et al.: x = norm1(x + attn(x)), then x = norm2(x + ff(x)); ``attn`` is an
    ``nn.MultiheadAttention(batch_first=True)`` and ``mask`` is True = may attend, so it takes ``~mask``."""
    encoder_block = _own_work(
        "encoder_block", encoder_block,
        _lib.transformer.EncoderLayer,
        torch.nn.TransformerEncoderLayer,
    )
    with _attempt("encoder_block"):
        _check_encoder_block(encoder_block, "encoder_block", False, {
            "pre": "that is the pre-norm block, x + attn(norm1(x)): this one is the paper's post-norm, each "
                   "sublayer's output added to its input and *then* normalised, x = norm1(x + attn(x))",
            "post, no attention residual": "there is no residual connection around the attention: add the "
                                           "sublayer's input back before the norm, norm1(x + attn(x))",
            "post, no feed-forward residual": "there is no residual connection around the feed-forward: "
                                              "norm2(x + ff(x)), with x the output of the first sublayer",
            "post, residual after the norm": "the residual is added after the norm, x + norm1(attn(x)): in the "
                                             "post-norm block the norm comes last, norm1(x + attn(x))",
            "post, feed-forward reads the attention output": "the feed-forward reads the raw attention output: it "
                                                             "reads the first sublayer's result, x1 = norm1(x + "
                                                             "attn(x)), and adds to it: norm2(x1 + ff(x1))",
            "post, norms swapped": "norm1 and norm2 are swapped: norm1 belongs to the attention sublayer, norm2 "
                                   "to the feed-forward (each has its own gamma and beta)",
            "post, norm1 twice": "you used norm1 for both sublayers: the feed-forward sublayer has its own, norm2",
            "post, no feed-forward": "the feed-forward sublayer is missing: x = norm2(x + ff(x)) after the "
                                     "attention sublayer",
            "post, mask inverted True": _MASK_INVERTED,
            "post, mask inverted False": _MASK_INVERTED,
            "post, mask ignored": "the padding is not masked: every token attends to the padding keys too. Pass "
                                  "key_padding_mask=~mask (PyTorch's True = ignore this key)",
        })
    _say("encoder_block: correct: post-norm, norm(x + sublayer(x)) twice, the same as "
          "nn.TransformerEncoderLayer, padding keys hidden.")


@_reports_not_attempted
def check_pre_norm_block(pre_norm_block: Callable) -> None:
    """Exercise: ``pre_norm_block(x, attn, ff, norm1, norm2, mask) -> (B, T, D)``: x = x + attn(norm1(x)),
    then x = x + ff(norm2(x)), as ``nn.TransformerEncoderLayer(norm_first=True)``."""
    pre_norm_block = _own_work(
        "pre_norm_block", pre_norm_block,
        _lib.transformer.EncoderLayer,
        torch.nn.TransformerEncoderLayer,
    )
    with _attempt("pre_norm_block"):
        _check_encoder_block(pre_norm_block, "pre_norm_block", True, {
            "post": "that is the post-norm block, norm1(x + attn(x)): in the pre-norm block each sublayer reads "
                    "a normalised copy and its output is added to the un-normalised x, x + attn(norm1(x))",
            "pre, residual from the normalised x": "the residual starts from the normalised x, norm1(x) + "
                                                   "attn(norm1(x)): add to x itself, x + attn(norm1(x)), so that "
                                                   "an identity path runs from input to output",
            "pre, only the queries normalised": "only the queries are normalised: the keys and values come from "
                                                "the same normalised h = norm1(x), attn(h, h, h)",
            "pre, feed-forward without norm2": "the feed-forward reads x without norm2: x + ff(norm2(x))",
            "pre, norm after the feed-forward": "norm2 is applied after the feed-forward's residual, as in "
                                                "post-norm: in pre-norm it normalises the feed-forward's input "
                                                "only, x + ff(norm2(x))",
            "pre, no attention residual": "there is no residual connection around the attention: x + "
                                          "attn(norm1(x))",
            "pre, no feed-forward residual": "there is no residual connection around the feed-forward: x + "
                                             "ff(norm2(x))",
            "pre, norms swapped": "norm1 and norm2 are swapped: norm1 belongs to the attention sublayer, norm2 "
                                  "to the feed-forward",
            "pre, mask inverted True": _MASK_INVERTED,
            "pre, mask inverted False": _MASK_INVERTED,
            "pre, mask ignored": "the padding is not masked: every token attends to the padding keys too. Pass "
                                 "key_padding_mask=~mask (PyTorch's True = ignore this key)",
        })
    _say("pre_norm_block: correct: x + sublayer(norm(x)) twice, the same as "
          "nn.TransformerEncoderLayer(norm_first=True).")
