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
    _check_choice,
    _check_number,
)

__all__ = [
    "check_layer_norm",
    "check_feed_forward",
    "check_encoder_block",
    "check_pre_norm_block",
    "check_layer_norm_length",
    "check_residual_growth_prediction",
    "check_residual_norms",
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
                "beta is not added: after scaling by gamma, shift by beta, gamma * x̂ + beta":
                    _ln(x, gamma, torch.zeros_like(beta), eps),
                "gamma is not applied: scale x̂ by gamma, then shift by beta, gamma * x̂ + beta":
                    _ln(x, torch.ones_like(gamma), beta, eps),
                "beta was added before the scaling, gamma * (x̂ + beta): the shift comes last, gamma * x̂ + beta":
                    gamma * (_ln(x, torch.ones_like(gamma), beta, eps)),
                "that is RMSNorm (LLaMA's norm), x / sqrt(mean(x²) + eps): layer norm first subtracts each token's "
                "mean, then divides by the standard deviation around it, sqrt(var + eps)":
                    gamma * x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() + beta,
            }
            if x.dim() == 3:
                wrong["you normalised over the last two axes (T, D) together, each sequence as one block: layer "
                      "norm normalises each token on its own, over its D features, dim=-1"] = (
                    _ln(x, gamma, beta, eps, dim=(-2, -1)))
            if shape[-1] == shape[-2]:
                wrong["the mean and the variance lost their last axis (no keepdim=True), so they broadcast along "
                      "the wrong axis (it only ran because T = D here): x.mean(dim=-1, keepdim=True) is "
                      "(..., T, 1)"] = (
                    gamma * (x - x.mean(-1)) / (x.var(-1, correction=0) + eps).sqrt() + beta)
            _reject_known(label, got, expected, wrong, atol=1e-8)
            # float32 arithmetic (x.float(), or a float32 model) is a correct answer: tolerance relative to the values
            _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5,
                     legend=f" {shape}: every token's D = {D} features normalised, then scaled and shifted")
        # float32 tokens far from 0 (mean 1000, spread 1), as activations can be: the variance must be computed
        # around the mean; mean(x²) - mean(x)² subtracts two numbers near 10⁶ that float32 knows to about 0.06
        D = 16
        x = (torch.randn(3, 4, D, generator=gen, dtype=torch.float64) + 1000.0).float()  # (B, T, D) float32
        gamma = (1.0 + 0.5 * torch.randn(D, generator=gen, dtype=torch.float64)).float()
        beta = (0.5 * torch.randn(D, generator=gen, dtype=torch.float64)).float()
        label = "layer_norm(x, gamma, beta, eps=1e-5) for float32 x of shape (3, 4, 16) with mean 1000 and spread 1"
        got = _as_array(label, _call_with_hint(label, layer_norm, (("x", x), ("gamma", gamma), ("beta", beta),
                                                                     ("eps", 1e-5)), "x is (B, T, D) in float32"))
        expected = torch.nn.functional.layer_norm(x.double(), (D,), gamma.double(), beta.double(), 1e-5).numpy()
        if got.shape == expected.shape and not (np.all(np.isfinite(got)) and np.allclose(got, expected, atol=2e-3)):
            off = np.nanmax(np.abs(got - expected)) if np.isfinite(got).any() else float("nan")
            raise AssertionError(
                f"{label}: your layer norm was right in float64 but is off by up to {off:.3g} (or NaN) here. "
                f"Computing the variance as mean(x²) - mean(x)² subtracts two numbers near 10⁶, which float32 stores "
                f"to about 0.06, so the difference (about 1) is lost or even negative: take the mean of (x - mean)² "
                f"(x.var(dim=-1, unbiased=False) does), the two-pass formula that nn.LayerNorm uses"
            )
        _compare(label, got, expected, atol=2e-3, legend=" (B, T, D): the float32 result, within float32 rounding")
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
            wrong["b1 is added after the ReLU, relu(x W1) + b1: the bias goes inside, relu(x W1 + b1), so that it "
                  "moves each hidden unit's threshold"] = (torch.relu(x @ W1) + b1) @ W2 + b2
            wrong["the ReLU is applied to the input, relu(x) W1: it goes on the hidden layer, between the two "
                  "linear layers, relu(x W1 + b1) W2 + b2"] = _ffn(torch.relu(x), W1, b1, W2, b2, inner=lambda t: t)
            wrong["you added the residual x: the feed-forward network itself is relu(x W1 + b1) W2 + b2; the "
                  "encoder block adds x around it"] = x + expected
            if D == F:
                wrong["b1 and b2 are swapped (it only ran because D = F here): b1 (F,) belongs to the first layer, "
                      "b2 (D,) to the second"] = _ffn(x, W1, b2, W2, b1)
                wrong["the weights are used transposed: they act as x @ W1 and h @ W2 (an nn.Linear stores the "
                      "transpose, x @ weight.T)"] = _ffn(x, W1.T, b1, W2.T, b2)
            if T == D == F:
                wrong["you multiplied along the time axis, mixing the tokens (it only ran because T = D here): "
                      "the feed-forward works on each token's D features, x @ W1 with x (B, T, D)"] = (
                    _ffn(x.transpose(1, 2), W1, b1, W2, b2).transpose(1, 2))
            _reject_known(label, got, expected, wrong, atol=1e-8)
            again = _as_array(label, _call_with_hint(label, feed_forward, args, hint))
            if again.shape == got.shape and not np.allclose(again, got, atol=1e-9):
                raise AssertionError(
                    f"{label}: two calls on the same inputs gave different outputs: something random runs in your "
                    f"function (dropout?). The network is deterministic, relu(x W1 + b1) W2 + b2; dropout belongs "
                    f"to training, not to this exercise"
                )
            # position-wise: changing one token changes that token's output only
            x2 = x.clone()
            x2[:, 0] += 1.0  # (B, T, D): only token 0 changed
            got2 = _as_array(label, _call_with_hint(label, feed_forward, (("x", x2),) + args[1:], hint))
            moved = np.abs(got2[:, 1:] - got[:, 1:]).max() if T > 1 else 0.0
            if moved > 1e-6:
                raise AssertionError(
                    f"{label}: changing token 0 changed the output of other tokens (by up to {moved:.3g}): the "
                    f"feed-forward is position-wise, each token's output depends on that token alone"
                )
            _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5, legend=" (B, T, D): one output per token")
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
        rebuilt = masks.padding_mask(mask.sum(dim=-1), mask.shape[-1])  # (B, T): right padding, same counts
        v["post, right-padded rebuild"] = (lambda h: n2(h + ff(h)))(n1(x + sa(x, ~rebuilt)))
        v["post, attention reads norm1(x)"] = (lambda h: n2(h + ff(h)))(n1(x + sa(n1(x))))
        v["post, feed-forward reads the block input"] = n2(x1 + ff(x))
        v["post, sublayers swapped"] = (lambda h: n2(h + sa(h)))(n1(x + ff(x)))
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
        v["pre, right-padded rebuild"] = (lambda y: y + ff(n2(y)))(x + sa(h, ~rebuilt))
        v["pre, only the keys and values normalised"] = (lambda y: y + ff(n2(y)))(x + attn(
            x, h, h, key_padding_mask=~mask, need_weights=False)[0])
        v["pre, feed-forward residual from the normalised y"] = (lambda z: z + ff(z))(n2(y))
        v["pre, a final norm"] = n2(y + ff(n2(y)))
        v["pre, feed-forward reads the block input"] = y + ff(n2(x))
        v["pre, sublayers swapped"] = (lambda z: z + sa(n2(z)))(x + ff(n1(x)))
    return v


_MASK_INVERTED = (
    "the mask is inverted for nn.MultiheadAttention: ours is True = *may attend*, but its key_padding_mask is True "
    "= *ignore this key*. Passing ours as it is hides the real tokens and attends to the padding (a sequence "
    "without padding then has no key at all: NaN, or zeros). Pass key_padding_mask=~mask"
)


def _check_encoder_block(fn: Callable, name: str, norm_first: bool, wrong: dict[str, str]) -> None:
    """Shared by the post-norm and the pre-norm exercise: ``fn(x, attn, ff, norm1, norm2, mask)`` against
    ``nn.TransformerEncoderLayer(norm_first=norm_first)`` with the same weights and the padding mask."""
    # lengths: a sequence without padding (an inverted mask leaves it no key), a padded one, a single token; then
    # masks that are not right-padded (padding on the left, holes inside), as left-padded batches for decoders are
    cases = [(84, (3, 5, 8, 2, 16), masks.padding_mask(torch.tensor([5, 3, 1]), 5)),
             (85, (2, 4, 12, 3, 20), masks.padding_mask(torch.tensor([2, 4]), 4)),
             (86, (3, 6, 8, 4, 12), torch.tensor([[True] * 6, [False, False, True, True, True, True],
                                                  [True, True, False, True, False, True]]))]
    for seed, (B, T, D, H, F), mask in cases:
        layer = _torch_encoder_layer(seed, D, H, F, norm_first)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)  # (B, T, D)
        lengths = mask.sum(dim=-1).tolist()  # real tokens per sequence
        ff = torch.nn.Sequential(layer.linear1, torch.nn.ReLU(), layer.linear2)  # (B, T, D) -> (B, T, D)
        label = (f"{name} for B={B}, T={T}, D={D}, H={H}, mask={mask.int().tolist()} (1 = a real token)")
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
        _reject_known_nan(label, got, expected, {
            "you rebuilt the mask as right padding from the number of real tokens (mask.sum), but this mask has "
            "padding on the left and holes inside: pass the mask you are given, key_padding_mask=~mask":
                variants["post, right-padded rebuild" if not norm_first else "pre, right-padded rebuild"]}, atol=1e-8)
        _compare(label, got, expected.numpy(), atol=1e-6, rtol=1e-5,
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
            "post, attention reads norm1(x)": "the attention reads norm1(x), a pre-norm habit: in the post-norm "
                                              "block the attention reads x itself and norm1 comes after the sum, "
                                              "norm1(x + attn(x, x, x))",
            "post, feed-forward reads the block input": "the feed-forward reads the block's input x: it reads the "
                                                        "first sublayer's result x1 = norm1(x + attn(x)), "
                                                        "norm2(x1 + ff(x1))",
            "post, sublayers swapped": "the feed-forward comes first: the attention sublayer comes first (the "
                                       "tokens exchange information), then the feed-forward works on each token",
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
            "pre, only the keys and values normalised": "the queries read the un-normalised x: the queries, keys "
                                                        "and values all come from h = norm1(x), attn(h, h, h)",
            "pre, feed-forward residual from the normalised y": "the feed-forward's residual starts from norm2(x): "
                                                                "add to x itself, x + ff(norm2(x))",
            "pre, a final norm": "the block ends with a norm of the sum, as in post-norm: in pre-norm the sum "
                                 "x + ff(norm2(x)) is the output, un-normalised (the stack adds one final norm "
                                 "after its last block, not each block)",
            "pre, feed-forward reads the block input": "the feed-forward reads norm2 of the block's input x: it "
                                                       "reads the sum after the attention, y = x + attn(...), "
                                                       "y + ff(norm2(y))",
            "pre, sublayers swapped": "the feed-forward comes first: the attention sublayer comes first, then the "
                                      "feed-forward, x + attn(norm1(x)), then x + ff(norm2(x))",
        })
    _say("pre_norm_block: correct: x + sublayer(norm(x)) twice, the same as "
          "nn.TransformerEncoderLayer(norm_first=True).")


# ---------------------------------------------------------------- questions and the experiment


@_reports_not_attempted
def check_layer_norm_length(answer: Callable[[], object]) -> None:
    """Question: the Euclidean length of a token after layer norm with gamma = 1, beta = 0, D = 64 (eps ignored)."""
    _check_number(
        "layer_norm_length", answer, 8.0,
        "Mean 0 and variance 1 over D features means Σ x̂_j² = D · 1 = D, so every token leaves a layer norm with "
        "length sqrt(D) = 8 (a hair less, because of eps), whatever it came in with.",
        rtol=0.003,
        wrong={
            "a length of 1": (1.0, "Variance 1 is about each feature, (1/D) Σ x̂_j² = 1, not about the vector: "
                                   "its squared length is Σ x̂_j² = D. A unit-length vector has variance 1/D."),
            "the squared length": (64.0, "64 is the squared length, Σ x̂_j² = D · (variance) = 64: take the square "
                                         "root."),
            "a length of 0": (0.0, "Mean 0 means the features sum to 0, not that they are 0: the vector still has "
                                   "variance 1 per feature."),
            "the unbiased variance": (63.0**0.5, "sqrt(63) would hold if layer norm divided by D - 1; it divides "
                                                 "by D, so Σ x̂_j² = D."),
            "1/sqrt(D)": (0.125, "1/8 would be 1/sqrt(D): a unit vector spread over 64 features has entries "
                                         "of about 1/8. A layer-normed token has entries of about 1."),
        },
    )


@_reports_not_attempted
def check_residual_growth_prediction(answer: Callable[[], object]) -> None:
    """Question: after 12 freshly initialised blocks, how long is a token in the residual stream, post- vs pre-norm?"""
    _check_choice(
        "residual_growth_prediction", answer, "b",
        "A post-norm block ends with a layer norm, so every token leaves it with length about sqrt(D) (gamma = 1, "
        "beta = 0 at initialisation). A pre-norm block adds its sublayers' outputs to x and normalises only their "
        "inputs, so nothing rescales x: each block adds a roughly independent vector, the squared length grows "
        "about linearly with depth, and the stack needs a final layer norm.",
        {
            "a": "That holds for post-norm only. In pre-norm the norms sit on the sublayers' inputs; the residual "
                 "stream x itself is never normalised inside the stack, and every block adds to it.",
            "c": "Post-norm's last step in every block is a layer norm, and with gamma = 1, beta = 0 it gives every "
                 "token length sqrt(D), however large the sum before it was: it cannot grow across blocks.",
            "d": "Variance 1 per feature is length sqrt(D), not 1, and pre-norm does not normalise x at all: it adds "
                 "to it. Nothing shrinks the stream towards length 1.",
        },
    )


_RESIDUAL_SIZES = dict(d_model=32, num_heads=4, d_ff=128, batch=4, tokens=10)


def _residual_norms_reference(norm_first: bool, num_blocks: int, seed: int, *, draw_x_first: bool = False,
                              one_block: bool = False) -> tuple[list, dict]:
    """The experiment as asked (or with one known mistake): the mean token length after each block, and
    {kind: curve} for the measurement mistakes, from the same run."""
    D, H, F, B, T = (_RESIDUAL_SIZES[k] for k in ("d_model", "num_heads", "d_ff", "batch", "tokens"))
    with torch.random.fork_rng(devices=[]):  # leave the learner's RNG alone
        torch.manual_seed(seed)
        if draw_x_first:
            x = torch.randn(B, T, D)  # (B, T, D)
        n = 1 if one_block else num_blocks
        blocks = [_lib.transformer.EncoderLayer(D, H, F, norm_first=norm_first).eval() for _ in range(n)]
        if one_block:
            blocks = blocks * num_blocks
        if not draw_x_first:
            x = torch.randn(B, T, D)  # (B, T, D)
    states = [x]
    with torch.no_grad():
        for block in blocks:
            states.append(block(states[-1])[0])  # (B, T, D)
    curve = [float(s.norm(dim=-1).mean()) for s in states]
    final_norm = torch.nn.functional.layer_norm(states[-1], (D,))
    kinds = {
        "whole": [float(s.norm()) for s in states],
        "rms": [float(s.norm(dim=-1).mean()) / D**0.5 for s in states],
        "squared": [float(s.pow(2).sum(dim=-1).mean()) for s in states],
        "tokens": [float(s.norm(dim=1).mean()) for s in states],
        "final norm": curve[:-1] + [float(final_norm.norm(dim=-1).mean())],
    }
    return curve, kinds


@_reports_not_attempted
def check_residual_norms(residual_norms: Callable) -> None:
    """Experiment: ``residual_norms(norm_first, num_blocks, seed) -> list of num_blocks + 1 floats``: seed the
    global RNG, build ``num_blocks`` package ``EncoderLayer(32, 4, 128, norm_first=...)`` (eval mode), then draw
    x = torch.randn(4, 10, 32), pass it through the blocks, and record the mean over the tokens of each token's
    Euclidean length, x.norm(dim=-1).mean(), for the input and after every block."""
    hint = ("build the blocks with ac.transformer.EncoderLayer(32, 4, 128, norm_first=norm_first) after "
            "torch.manual_seed(seed); a block returns a pair (x, weights): keep [0]")
    with _attempt("residual_norms"):
        for norm_first, N, seed in ((True, 12, 0), (False, 12, 0), (True, 5, 3)):
            label = f"residual_norms(norm_first={norm_first}, num_blocks={N}, seed={seed})"
            result = _call_with_hint(label, residual_norms, (("norm_first", norm_first), ("num_blocks", N),
                                                            ("seed", seed)), hint)
            got = _as_array(label, result).ravel()
            curve, kinds = _residual_norms_reference(norm_first, N, seed)
            expected = np.array(curve)
            if got.shape == (N,):
                raise AssertionError(
                    f"{label} returned {N} values: return {N + 1}, the input's mean token length first and then "
                    f"the value after each of the {N} blocks"
                )
            if got.shape != expected.shape:
                raise AssertionError(f"{label} returned {got.size} values; it should return num_blocks + 1 = "
                                     f"{N + 1}: the input, then one per block")
            again = _as_array(label, _call_with_hint(label, residual_norms, (("norm_first", norm_first),
                                                                            ("num_blocks", N), ("seed", seed)),
                                                     hint)).ravel()
            if not np.allclose(again, got, rtol=1e-6, atol=0.0):
                raise AssertionError(
                    f"{label} gave different numbers when called twice with the same seed: call "
                    f"torch.manual_seed(seed) inside the function, before building the blocks, so that the "
                    f"experiment can be repeated (and compared between post- and pre-norm on the same weights)"
                )
            close = lambda a: np.allclose(got, np.array(a), rtol=1e-4, atol=1e-6)  # noqa: E731
            if not close(expected):
                known = {
                    "whole": "that is the length of the whole (B, T, D) tensor, x.norm(): measure each token, "
                             "x.norm(dim=-1) (B, T), then average over the tokens, .mean()",
                    "rms": "that is the root mean square per feature, the length divided by sqrt(D): report the "
                           "Euclidean length itself, x.norm(dim=-1).mean()",
                    "squared": "those are squared lengths: x.norm(dim=-1) takes the square root",
                    "tokens": "you took the norm along the time axis (dim=1), one number per feature: a token's "
                              "length runs over its D features, x.norm(dim=-1)",
                    "final norm": "the last value went through a final layer norm: measure the residual stream "
                                  "itself, the output of the last block (the stack's final norm is not part of "
                                  "the experiment)",
                }
                for kind, why in known.items():
                    if not np.allclose(kinds[kind], expected, rtol=1e-4) and close(kinds[kind]):
                        raise AssertionError(f"{label}: {why}")
                if close(_residual_norms_reference(norm_first, N, seed, draw_x_first=True)[0]):
                    raise AssertionError(
                        f"{label}: you drew x before building the blocks, so the blocks got other weights: seed, "
                        f"build the {N} blocks, then draw x = torch.randn(4, 10, 32)")
                if N > 1 and close(_residual_norms_reference(norm_first, N, seed, one_block=True)[0]):
                    raise AssertionError(
                        f"{label}: you applied one block {N} times: build {N} blocks, each with its own weights "
                        f"(a list comprehension calls EncoderLayer once per block)")
                if np.isclose(got[0], expected[0], rtol=1e-4):
                    raise AssertionError(
                        f"{label}: the input's value is right ({expected[0]:.4g}) but the curve is "
                        f"{np.round(got, 3).tolist()}, not {np.round(expected, 3).tolist()}: build the blocks with "
                        f"norm_first=norm_first, put them in eval mode, and feed each block the previous one's "
                        f"output [0]")
                _compare(label, got, expected, atol=1e-6, rtol=1e-4,
                         legend=" (num_blocks + 1,): the mean token length, x.norm(dim=-1).mean(), before and "
                                "after each block")
    _say(f"residual_norms: correct. Post-norm stays at sqrt(D) = {32**0.5:.2f} after every block; pre-norm grows "
         f"from {curve[0]:.2f} block by block ({np.round(curve, 2).tolist()} for 5 blocks, seed 3).")
