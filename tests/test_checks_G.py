"""Chapters 8, 9 and 10: more wrong answers for every check, correct variants they must accept, and the
questions and experiments of those chapters' exercise notebooks (issue 17).

The catalogue of tests/test_checks.py stays where it is; this file adds to it. Each new wrong answer
is a mistake a learner makes (a hard-coded size, a mask rebuilt as right padding, float32 numerics, an
input changed in place, an experiment measured the wrong way), and the check must reject it with a
hint that names that mistake.
"""

from __future__ import annotations

import pytest
import torch

import attention_course as ac
from attention_course import checks
from attention_course.applications import text as tx
from attention_course.checks import ch08, ch10, ch11
from _helpers import (
    assert_accepted,
    assert_rejected_with_hint,
    assert_stub_not_attempted,
    right_params,
    wrong_params,
)
from test_checks import (
    attention_block_update_ok,
    attention_pool_ok,
    cached_attention_step_ok,
    encoder_block_ok,
    feed_forward_ok,
    layer_norm_ok,
    linear_attention_ok,
    mase_ok,
    online_softmax_update_ok,
    patchify_ok,
    pre_norm_block_ok,
    seasonal_naive_ok,
    soft_align_ok,
    stub,
)

F = torch.nn.functional


def _phi(x):
    return F.elu(x) + 1


# --------------------------------------------------------------------------- chapter 8


def _ln_parts(x, eps):
    mean = x.mean(dim=-1, keepdim=True)
    return mean, x.var(dim=-1, keepdim=True, unbiased=False), eps


def _ln_one_pass(x, g, b, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = (x * x).mean(dim=-1, keepdim=True) - mean * mean  # cancels catastrophically in float32
    return g * (x - mean) / torch.sqrt(var + eps) + b


def _ln_slice_assign(x, g, b, eps=1e-5):
    mean, var, _ = _ln_parts(x, eps)
    x[...] = (x - mean) / torch.sqrt(var + eps)  # writes into the caller's tensor
    return g * x + b


def _ln_range(x, g, b, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    spread = x.amax(dim=-1, keepdim=True) - x.amin(dim=-1, keepdim=True)
    return g * (x - mean) / spread + b


def _ln_mean_over_tokens(x, g, b, eps=1e-5):
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return g * (x - x.mean(dim=-2, keepdim=True)) / torch.sqrt(var + eps) + b


LAYER_NORM_NEW = {
    "beta not added": (lambda x, g, b, eps=1e-5: layer_norm_ok(x, g, torch.zeros_like(b), eps), "beta is not added"),
    "gamma not applied": (lambda x, g, b, eps=1e-5: layer_norm_ok(x, torch.ones_like(g), b, eps),
                          "gamma is not applied"),
    "beta before the scaling": (
        lambda x, g, b, eps=1e-5: g * layer_norm_ok(x, torch.ones_like(g), b, eps), "before the scaling"),
    "RMSNorm": (lambda x, g, b, eps=1e-5: g * x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() + b, "RMSNorm"),
    "one-pass variance (float32 cancellation)": (_ln_one_pass, "mean(x²) - mean(x)²"),
    "normalises x in place by slice assignment": (_ln_slice_assign, "in place"),
    "divides by the range": (_ln_range, "should be"),
    "mean over the tokens, variance per token": (_ln_mean_over_tokens, "should be"),
    "normalised over (T, D), 3-D input": (
        lambda x, g, b, eps=1e-5: layer_norm_ok(x, g, b, eps) if x.dim() == 2 else
        g * (x - x.mean((-2, -1), keepdim=True)) / (x.var((-2, -1), keepdim=True, unbiased=False) + eps).sqrt() + b,
        "last two axes"),
}

LAYER_NORM_ACCEPTED = {
    "computed in float32": lambda x, g, b, eps=1e-5: layer_norm_ok(x.float(), g.float(), b.float(), eps),
    "rsqrt and a hand-written variance": lambda x, g, b, eps=1e-5: (lambda c: g * c * torch.rsqrt(
        (c * c).mean(-1, keepdim=True) + eps) + b)(x - x.mean(-1, keepdim=True)),
    "torch.var_mean(correction=0)": lambda x, g, b, eps=1e-5: (lambda vm: g * (x - vm[1]) / (vm[0] + eps).sqrt() + b)(
        torch.var_mean(x, dim=-1, keepdim=True, correction=0)),
}


def _ff_inplace_W1(x, W1, b1, W2, b2):
    W1.mul_(1.0 + 1e-3)  # writes into the caller's weight
    return feed_forward_ok(x, W1 / (1.0 + 1e-3), b1, W2, b2)


FEED_FORWARD_NEW = {
    "b1 after the ReLU": (lambda x, W1, b1, W2, b2: (torch.relu(x @ W1) + b1) @ W2 + b2, "b1 is added after"),
    "ReLU on the input": (lambda x, W1, b1, W2, b2: (torch.relu(x) @ W1 + b1) @ W2 + b2, "applied to the input"),
    "biases swapped (runs when D = F)": (lambda x, W1, b1, W2, b2: torch.relu(x @ W1 + b2) @ W2 + b1, "swapped"),
    "adds the residual": (lambda x, W1, b1, W2, b2: x + feed_forward_ok(x, W1, b1, W2, b2), "residual x"),
    "tanh": (lambda x, W1, b1, W2, b2: torch.tanh(x @ W1 + b1) @ W2 + b2, "should be"),
    "leaky ReLU": (lambda x, W1, b1, W2, b2: F.leaky_relu(x @ W1 + b1, 0.1) @ W2 + b2, "should be"),
    "W1 @ x (runs when T = D = F, mixes the tokens)": (
        lambda x, W1, b1, W2, b2: torch.relu(W1 @ x + b1) @ W2 + b2, "position-wise"),
    "W1 modified in place": (_ff_inplace_W1, "in place"),
    "dropout left on": (
        lambda x, W1, b1, W2, b2: F.dropout(torch.relu(x @ W1 + b1), 0.2, training=True) @ W2 + b2, "dropout"),
}

FEED_FORWARD_ACCEPTED = {
    "float32": lambda x, W1, b1, W2, b2: feed_forward_ok(*(t.float() for t in (x, W1, b1, W2, b2))),
    "F.linear with the transposes": lambda x, W1, b1, W2, b2: F.linear(F.relu(F.linear(x, W1.T, b1)), W2.T, b2),
    "clamp(min=0)": lambda x, W1, b1, W2, b2: (x @ W1 + b1).clamp(min=0) @ W2 + b2,
}


def _rebuilt(mask):
    return ac.masks.padding_mask(mask.sum(dim=-1), mask.shape[-1])  # right padding with the same counts


ENCODER_BLOCK_NEW = {
    "mask rebuilt as right padding": (
        lambda x, at, ff, n1, n2, m: encoder_block_ok(x, at, ff, n1, n2, _rebuilt(m)), "rebuilt the mask"),
    "attention reads norm1(x)": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(x + at(n1(x), n1(x), n1(x),
                                                                         key_padding_mask=~m)[0])),
        "reads norm1(x)"),
    "feed-forward reads the block input": (
        lambda x, at, ff, n1, n2, m: n2(n1(x + at(x, x, x, key_padding_mask=~m)[0]) + ff(x)),
        "reads the block's input"),
    "sublayers swapped": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + at(h, h, h, key_padding_mask=~m)[0]))(n1(x + ff(x))),
        "feed-forward comes first"),
    "no norms at all": (
        lambda x, at, ff, n1, n2, m: (lambda h: h + ff(h))(x + at(x, x, x, key_padding_mask=~m)[0]), "should be"),
    "float key_padding_mask (added, not masked)": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(x + at(x, x, x, key_padding_mask=(~m).double(
        ))[0])), "should be"),
    "residual halved": (
        lambda x, at, ff, n1, n2, m: (lambda h: n2(h + ff(h)))(n1(0.5 * x + at(x, x, x, key_padding_mask=~m)[0])),
        "should be"),
    "keys and values from the attention's own output (twice)": (
        lambda x, at, ff, n1, n2, m: (lambda a: (lambda h: n2(h + ff(h)))(n1(x + at(x, a, a, key_padding_mask=~m)[
            0])))(at(x, x, x, key_padding_mask=~m)[0]), "should be"),
}

PRE_NORM_NEW = {
    "mask rebuilt as right padding": (
        lambda x, at, ff, n1, n2, m: pre_norm_block_ok(x, at, ff, n1, n2, _rebuilt(m)), "rebuilt the mask"),
    "queries un-normalised": (
        lambda x, at, ff, n1, n2, m: (lambda y: y + ff(n2(y)))(x + at(x, n1(x), n1(x), key_padding_mask=~m)[0]),
        "the queries read the un-normalised x"),
    "feed-forward residual from norm2(y)": (
        lambda x, at, ff, n1, n2, m: (lambda y: n2(y) + ff(n2(y)))(x + at(n1(x), n1(x), n1(x),
                                                                       key_padding_mask=~m)[0]),
        "residual starts from norm2(x)"),
    "a final norm in the block": (
        lambda x, at, ff, n1, n2, m: (lambda y: n2(y + ff(n2(y))))(x + at(n1(x), n1(x), n1(x),
                                                                        key_padding_mask=~m)[0]),
        "ends with a norm of the sum"),
    "feed-forward reads the block input": (
        lambda x, at, ff, n1, n2, m: (lambda y: y + ff(n2(x)))(x + at(n1(x), n1(x), n1(x), key_padding_mask=~m)[0]),
        "norm2 of the block's input"),
    "sublayers swapped": (
        lambda x, at, ff, n1, n2, m: (lambda z: z + at(n2(z), n2(z), n2(z), key_padding_mask=~m)[0])(x + ff(n1(x))),
        "feed-forward comes first"),
    "one norm for both sublayers": (
        lambda x, at, ff, n1, n2, m: pre_norm_block_ok(x, at, ff, n1, n1, m), "should be"),
    "float key_padding_mask": (
        lambda x, at, ff, n1, n2, m: (lambda h: (lambda y: y + ff(n2(y)))(x + at(h, h, h, key_padding_mask=(
            ~m).double())[0]))(n1(x)), "should be"),
}

def residual_norms_ok(norm_first, num_blocks, seed):
    torch.manual_seed(seed)
    blocks = [ac.transformer.EncoderLayer(32, 4, 128, norm_first=norm_first).eval() for _ in range(num_blocks)]
    x = torch.randn(4, 10, 32)  # (B, T, D)
    out = [x.norm(dim=-1).mean().item()]
    with torch.no_grad():
        for block in blocks:
            x = block(x)[0]
            out.append(x.norm(dim=-1).mean().item())
    return out


def _rn(measure=lambda x: x.norm(dim=-1).mean().item(), *, seeded=True, x_first=False, one=False, first=True,
        final_norm=False):
    def residual_norms(norm_first, num_blocks, seed):
        if seeded:
            torch.manual_seed(seed)
        if x_first:
            x = torch.randn(4, 10, 32)
        blocks = [ac.transformer.EncoderLayer(32, 4, 128, norm_first=norm_first) for _ in range(1 if one else
                                                                                                  num_blocks)]
        blocks = blocks * num_blocks if one else blocks
        if not x_first:
            x = torch.randn(4, 10, 32)
        out = [measure(x)] if first else []
        with torch.no_grad():
            for i, block in enumerate(blocks):
                x = block(x)[0]
                last = final_norm and i == len(blocks) - 1
                out.append(measure(F.layer_norm(x, (32,)) if last else x))
        return out
    return residual_norms


RESIDUAL_NORMS_WRONG = {
    "the whole tensor's norm": (_rn(lambda x: x.norm().item()), "whole (B, T, D) tensor"),
    "RMS per feature": (_rn(lambda x: (x.norm(dim=-1) / 32**0.5).mean().item()), "root mean square"),
    "squared lengths": (_rn(lambda x: x.pow(2).sum(-1).mean().item()), "squared lengths"),
    "norm along the time axis": (_rn(lambda x: x.norm(dim=1).mean().item()), "time axis"),
    "after a final layer norm": (_rn(final_norm=True), "final layer norm"),
    "not seeded": (_rn(seeded=False), "torch.manual_seed(seed) inside"),
    "x drawn before the blocks": (_rn(x_first=True), "drew x before building the blocks"),
    "one block applied N times": (_rn(one=True), "one block"),
    "the input left out": (_rn(first=False), "return 13"),
    "root mean square of the lengths": (_rn(lambda x: x.pow(2).sum(-1).mean().sqrt().item()), "should be"),
    "norm_first ignored": (lambda nf, N, s: residual_norms_ok(True, N, s), "norm_first=norm_first"),
    "a hard-coded 12 blocks": (lambda nf, N, s: residual_norms_ok(nf, 12, s), "num_blocks + 1"),
}


# --------------------------------------------------------------------------- chapter 10


def _pool_weights(h, q, mask, scores):
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
    return (w[..., None] * h).sum(1), w


def _pool_inplace_fill(h, query, mask):
    h.masked_fill_(~mask[..., None], 0.0)  # zeroes the caller's padding vectors
    return attention_pool_ok(h, query, mask)


ATTENTION_POOL_NEW = {
    "mask rebuilt as right padding": (lambda h, q, m: attention_pool_ok(h, q, _rebuilt(m)), "rebuilt the mask"),
    "divides by sqrt(T)": (lambda h, q, m: _pool_weights(h, q, m, h @ q / h.shape[1] ** 0.5), "should be"),
    "padding scored 0 (scores * mask)": (
        lambda h, q, m: (lambda w: ((w[..., None] * h).sum(1), w))(torch.softmax(h @ q / h.shape[-1] ** 0.5 * m,
                                                                                  dim=-1)), "-inf"),
    "-1e4 fill: uniform weights for an empty sequence": (
        lambda h, q, m: (lambda w: ((w[..., None] * h).sum(1), w))(torch.softmax(
            (h @ q / h.shape[-1] ** 0.5).masked_fill(~m, -1e4), dim=-1)), "uniform weights"),
    "sigmoid weights": (
        lambda h, q, m: (lambda w: ((w[..., None] * h).sum(1), w))(torch.sigmoid(h @ q / h.shape[-1] ** 0.5) * m),
        "sum to"),
    "zeroes the padding of h with masked_fill_": (_pool_inplace_fill, "in place"),
    "max pooling over the real tokens": (
        lambda h, q, m: (h.masked_fill(~m[..., None], 0.0).amax(1), attention_pool_ok(h, q, m)[1]), "should be"),
    "query scaled by sqrt(D) instead of divided": (
        lambda h, q, m: _pool_weights(h, q, m, h @ q * h.shape[-1] ** 0.5), "should be"),
}

ATTENTION_POOL_ACCEPTED = {
    "float32": lambda h, q, m: attention_pool_ok(h.float(), q.float(), m),
    "ac.masked_softmax and bmm": lambda h, q, m: (lambda w: (torch.bmm(w[:, None], h)[:, 0], w))(
        ac.masked_softmax(h @ q / h.shape[-1] ** 0.5, m)),
}


def _align_inplace(a, b):
    a /= 1.0 + 1e-9  # writes into the caller's tensor
    return soft_align_ok(a, b)


SOFT_ALIGN_NEW = {
    "e returned as the weights over j": (
        lambda a, b: (lambda be, al, e: (be, al, torch.softmax(e, -1)))(*soft_align_ok(a, b)),
        "returned the weights softmax(e, dim=-1) as e"),
    "e returned as the weights over i": (
        lambda a, b: (lambda be, al, e: (be, al, torch.softmax(e, -2)))(*soft_align_ok(a, b)),
        "returned the weights softmax(e, dim=-2) as e"),
    "beta's softmax over the batch axis": (
        lambda a, b: (lambda e: (torch.softmax(e, 0) @ b, soft_align_ok(a, b)[1], e))(a @ b.transpose(-2, -1)),
        "should be"),
    "scaled by 1/D": (
        lambda a, b: (lambda e: (torch.softmax(e / a.shape[-1], -1) @ b,
                                 torch.softmax(e / a.shape[-1], -2).transpose(-2, -1) @ a, e))(
            a @ b.transpose(-2, -1)), "should be"),
    "a divided in place": (_align_inplace, "in place"),
    "alpha from softmax over j of eᵀ": (
        lambda a, b: (lambda e: (torch.softmax(e, -1) @ b, torch.softmax(e.transpose(-2, -1), -2) @ a, e))(
            a @ b.transpose(-2, -1)), "ran over j"),
    "log_softmax": (
        lambda a, b: (lambda e: (torch.log_softmax(e, -1) @ b, torch.log_softmax(e, -2).transpose(-2, -1) @ a, e))(
            a @ b.transpose(-2, -1)), "should be"),
    "one softmax over all pairs": (
        lambda a, b: (lambda e: (lambda w: (w @ b, w.transpose(-2, -1) @ a, e))(
            torch.softmax(e.flatten(1), -1).view_as(e)))(a @ b.transpose(-2, -1)), "should be"),
}

SOFT_ALIGN_ACCEPTED = {
    "float32": lambda a, b: soft_align_ok(a.float(), b.float()),
    "PyTorch's attention with scale=1": lambda a, b: (
        F.scaled_dot_product_attention(a, b, b, scale=1.0), F.scaled_dot_product_attention(b, a, a, scale=1.0),
        a @ b.transpose(-2, -1)),
}


def _patchify_view(images, P):
    B, C, H, W = images.shape
    if H % P or W % P:
        raise ValueError("not a multiple")
    return images.view(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5).view(B, -1, C * P * P)


def _patchify_fixed(C=None, P=None, both=False, error=ValueError):
    def patchify(images, patch_size):
        B, c, H, W = images.shape
        c, ps = C or c, P or patch_size
        if (H % ps and W % ps) if both else (H % ps or W % ps):
            raise error(f"H={H}, W={W}, patch_size={ps}")
        x = images.reshape(B, c, H // ps, ps, W // ps, ps).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (H // ps) * (W // ps), c * ps * ps)
    return patchify


def _patchify_tensor_unfold(images, P):
    B, C, H, W = images.shape
    if H % P or W % P:
        raise ValueError("not a multiple")
    return images.unfold(2, P, P).unfold(3, P, P).reshape(B, -1, C * P * P)  # no permute: channels first


PATCHIFY_NEW = {
    ".view after the permute (crashes)": (_patchify_view, ".reshape("),
    "3 channels hard-coded": (_patchify_fixed(C=3), "images are (B, C, Rh, Rw)"),
    "patch size 4 hard-coded": (_patchify_fixed(P=4), "raised ValueError"),
    "raises only if both sides are off": (_patchify_fixed(both=True), "not a multiple of patch_size"),
    "raises TypeError": (_patchify_fixed(error=TypeError), "should be a ValueError"),
    "Tensor.unfold without the permute": (_patchify_tensor_unfold, "should hold"),
    "(ps, C, ps) flattening": (
        lambda x, P: (lambda B, C, H, W: x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 1, 5).reshape(
            B, -1, C * P * P))(*x.shape) if not (x.shape[2] % P or x.shape[3] % P) else patchify_ok(x, P),
        "should hold"),
    "batch folded into the patches": (lambda x, P: patchify_ok(x, P).flatten(0, 1), "batch axis was folded"),
}

PATCHIFY_ACCEPTED = {
    "float64": lambda x, P: patchify_ok(x.double(), P),
    "einops-style by hand with reshape": lambda x, P: _patchify_fixed()(x, P),
}


def _sn_inplace(y, period, horizon):
    y[:] = y.clone()  # writes into the caller's tensor (same values)
    y.mul_(1.0 + 1e-6)
    return seasonal_naive_ok(y / (1.0 + 1e-6), period, horizon)


SEASONAL_NAIVE_NEW = {
    "negative index wraps to the start": (
        lambda y, m, H: y[torch.arange(H) - m], "should be"),
    "floor instead of ceil (too short)": (lambda y, m, H: y[-m:].repeat(max(H // m, 1))[:H], "should have shape"),
    "two seasons back": (lambda y, m, H: y[len(y) - 2 * m + torch.arange(H) % m] if len(y) >= 2 * m else
                         y[torch.arange(H) % m], "should be"),
    "modifies y in place": (_sn_inplace, "in place"),
    "one season too late, shifted by one": (
        lambda y, m, H: y[len(y) - m + (torch.arange(H) + 1) % m], "one too late"),
    "the mean of the whole series": (lambda y, m, H: y.mean().repeat(H), "should be"),
    "last season reversed": (lambda y, m, H: y[-m:].flip(0).repeat(-(-H // m))[:H], "should be"),
    "one step too early, wrapped": (lambda y, m, H: y[len(y) - m - 1 + torch.arange(H) % m], "one too early"),
}

SEASONAL_NAIVE_ACCEPTED = {
    "float32": lambda y, m, H: seasonal_naive_ok(y.float(), m, H),
    "a list of Python floats": lambda y, m, H: [float(v) for v in seasonal_naive_ok(y, m, H)],
    "y[-m:][steps % m]": lambda y, m, H: y[-m:][torch.arange(H) % m],
}


def _mase_inplace(f, a, h, m):
    h.add_(1.0)  # writes into the caller's history (MASE does not change with a shift)
    return mase_ok(f, a, h, m)


MASE_NEW = {
    "scale on history and future together": (
        lambda f, a, h, m: mase_ok(f, a, torch.cat([h, a]), m), "history and the future values together"),
    "scale on the forecast": (
        lambda f, a, h, m: float((a - f).abs().mean() / (f[m:] - f[:-m]).abs().mean()) if len(f) > m else
        float((a - f).abs().mean() / h.abs().mean()), "forecast's own"),
    "median scale": (
        lambda f, a, h, m: float((a - f).abs().mean() / (h[m:] - h[:-m]).abs().median()), "median"),
    "the history's mean absolute value": (
        lambda f, a, h, m: float((a - f).abs().mean() / h.abs().mean()), "mean absolute value of the history"),
    "history modified in place": (_mase_inplace, "in place"),
    "RMSE over MAE": (
        lambda f, a, h, m: float((a - f).pow(2).mean().sqrt() / (h[m:] - h[:-m]).abs().mean()), "should be"),
    "lag period - 1": (lambda f, a, h, m: mase_ok(f, a, h, m - 1) if m > 1 else mase_ok(f, a, h, 2), "should be"),
    "errors against the history's last values": (
        lambda f, a, h, m: float((h[-len(f):] - f).abs().mean() / (h[m:] - h[:-m]).abs().mean()), "should be"),
}

MASE_ACCEPTED = {
    "float32": lambda f, a, h, m: mase_ok(f.float(), a.float(), h.float(), m),
    "a 0-d tensor": lambda f, a, h, m: torch.tensor(mase_ok(f, a, h, m)),
    "numpy": lambda f, a, h, m: (lambda f, a, h: abs(a - f).mean() / abs(h[m:] - h[:-m]).mean())(
        f.numpy(), a.numpy(), h.numpy()),
}


def erasure_flip_rates_ok(model, tokens, lengths, seed):
    pred, w = tx.predict(model, tokens, lengths)  # (B,), (B, S)
    u = torch.rand(len(lengths), generator=torch.Generator().manual_seed(seed))  # (B,)
    random_pos = (u * lengths).long()  # (B,): a real word of each review
    pred_top, _ = tx.predict(model, *tx.drop_word(tokens, lengths, w.argmax(dim=1)))
    pred_rand, _ = tx.predict(model, *tx.drop_word(tokens, lengths, random_pos))
    return (pred_top != pred).float().mean().item(), (pred_rand != pred).float().mean().item()


def _erasure(*, top=lambda w, L: w.argmax(dim=1), rand=None, score="flip", percent=False, swap=False):
    def erasure_flip_rates(model, tokens, lengths, seed):
        pred, w = tx.predict(model, tokens, lengths)
        if rand is None:
            u = torch.rand(len(lengths), generator=torch.Generator().manual_seed(seed))
            pos = (u * lengths).long()
        else:
            pos = rand(lengths, seed)
        p_top, _ = tx.predict(model, *tx.drop_word(tokens, lengths, top(w, lengths)))
        p_rand, _ = tx.predict(model, *tx.drop_word(tokens, lengths, pos))
        labels = _LABELS[len(lengths)]
        measure = {
            "flip": lambda p: (p != pred).float().mean().item(),
            "labels": lambda p: (p != labels).float().mean().item(),
            "accuracy drop": lambda p: (pred == labels).float().mean().item() - (p == labels).float().mean().item(),
            "kept": lambda p: (p == pred).float().mean().item(),
        }[score]
        out = (measure(p_top), measure(p_rand))
        out = tuple(100 * v for v in out) if percent else out
        return out[::-1] if swap else out
    return erasure_flip_rates


_LABELS = {}  # the true labels by batch size, filled from the check's own test reviews


def _global_rng(lengths, seed):
    return (torch.rand(len(lengths)) * lengths).long()  # not seeded: another draw each call


ERASURE_WRONG = {
    "against the true labels": (_erasure(score="labels"), "true labels"),
    "accuracy drop": (_erasure(score="accuracy drop"), "drop in accuracy"),
    "percentages": (_erasure(percent=True), "percentages"),
    "least-attended word": (_erasure(top=lambda w, L: w.masked_fill(w == 0, 2.0).argmin(dim=1)), "least"),
    "swapped": (_erasure(swap=True), "swapped"),
    "share kept": (_erasure(score="kept"), "stayed the same"),
    "global RNG": (_erasure(rand=_global_rng), "generator seeded by `seed`"),
    "the last word instead of the top one": (_erasure(top=lambda w, L: L - 1), "flip_top"),
    "random positions over the padded width (crashes)": (
        _erasure(rand=lambda L, seed: torch.randint(0, int(L.max()) + 5, (len(L),),
                                                    generator=torch.Generator().manual_seed(seed))), "lengths"),
    "returns one number": (lambda *a: erasure_flip_rates_ok(*a)[0], "(flip_top, flip_random)"),
    "trains the model a little more first": (
        lambda model, t, L, seed: (tx.fit(model, (t, L), _LABELS[len(L)], steps=2, seed=seed),
                                   erasure_flip_rates_ok(model, t, L, seed))[1], "changed the model's weights"),
}


# --------------------------------------------------------------------------- chapter 11


def _os_m0(m, l, block):
    return online_softmax_update_ok(torch.nan_to_num(m, neginf=0.0), l, block)  # "-inf is dangerous": it is not


def _os_clamped(m, l, block):
    m_new, l_new = online_softmax_update_ok(m, l, block)
    return m_new.clamp(min=0.0), l * torch.exp(m - m_new.clamp(min=0.0)) + torch.exp(
        block - m_new.clamp(min=0.0)[:, None]).sum(-1)


def _os_no_max(m, l, block):
    m_new = torch.maximum(m, block.max(dim=-1).values)
    return m_new, (l * torch.exp(m) + torch.exp(block).sum(-1)) / torch.exp(m_new)  # overflows / underflows


def _os_inplace_m(m, l, block):
    m_old = m.clone()
    m.copy_(torch.maximum(m, block.max(dim=-1).values))  # writes into the caller's m
    return m.clone(), l * torch.exp(m_old - m) + torch.exp(block - m[:, None]).sum(-1)


def _os_mul_(m, l, block):
    m_new = torch.maximum(m, block.max(dim=-1).values)
    return m_new, l.mul_(torch.exp(m - m_new)) + torch.exp(block - m_new[:, None]).sum(-1)


def _os_mean_ref(m, l, block):
    m_new = torch.maximum(m, block.max(dim=-1).values)
    return m_new, l * torch.exp(m - m_new) + torch.exp(block - block.mean(-1, keepdim=True)).sum(-1)


ONLINE_SOFTMAX_NEW = {
    "-inf replaced by 0": (_os_m0, "started at 0"),
    "running max clamped at 0": (_os_clamped, "never drops below 0"),
    "exp without the max, divided afterwards": (_os_no_max, "overflows"),
    "m overwritten in place": (_os_inplace_m, "in place"),
    "r rescaled with mul_": (_os_mul_, "in place"),
    "block relative to its mean": (_os_mean_ref, "should be"),
    "logsumexp returned instead of r": (
        lambda m, l, b: (lambda mn, ln: (mn, mn + torch.log(ln)))(*online_softmax_update_ok(m, l, b)), "should be"),
    "one tensor (L, 2)": (lambda m, l, b: torch.stack(online_softmax_update_ok(m, l, b), dim=-1), "tuple"),
}

ONLINE_SOFTMAX_ACCEPTED = {
    "float32": lambda m, l, b: online_softmax_update_ok(m.float(), l.float(), b.float()),
    "torch.max(a, b) and amax": lambda m, l, b: (lambda mn: (mn, l * torch.exp(m - mn) + torch.exp(
        b - mn[:, None]).sum(-1)))(torch.max(m, b.amax(dim=-1))),
    "logaddexp-free, with where for -inf": lambda m, l, b: (lambda mn: (mn, torch.where(
        torch.isinf(m), torch.zeros_like(l), l * torch.exp(m - mn)) + torch.exp(b - mn[:, None]).sum(-1)))(
        torch.maximum(m, b.max(dim=-1).values)),
}


def _abu_m0(m, l, acc, s, v):
    return attention_block_update_ok(torch.nan_to_num(m, neginf=0.0), l, acc, s, v)


def _abu_no_max(m, l, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=-1).values)
    p = torch.exp(s)  # no max subtracted: overflows near 500, underflows near -900
    k = torch.exp(m - m_new)
    return m_new, l * k + p.sum(-1) * torch.exp(-m_new), acc * k[:, None] + (p @ v) * torch.exp(-m_new)[:, None]


def _abu_inplace_m(m, l, acc, s, v):
    out = attention_block_update_ok(m, l, acc, s, v)
    m.copy_(out[0])  # writes into the caller's m
    return out


def _abu_mul_(m, l, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=-1).values)
    k = torch.exp(m - m_new)
    p = torch.exp(s - m_new[:, None])
    return m_new, l.mul_(k) + p.sum(-1), acc * k[:, None] + p @ v


def _abu_no_none(m, l, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=-1).values)
    k = torch.exp(m - m_new)
    p = torch.exp(s - m_new[:, None])
    return m_new, l * k + p.sum(-1), acc * k + p @ v  # (L, Ev) * (L,): broadcasts wrongly or crashes


BLOCK_UPDATE_NEW = {
    "-inf replaced by 0": (_abu_m0, "r = 0"),
    "exp without the max": (_abu_no_max, "overflows"),
    "m overwritten in place": (_abu_inplace_m, "in place"),
    "r rescaled with mul_": (_abu_mul_, "in place"),
    "rescale without [:, None] (crashes)": (_abu_no_none, "(L, 1)"),
    "values transposed (crashes)": (
        lambda m, l, acc, s, v: attention_block_update_ok(m, l, acc, s, v.T), "values_block (T_tile, Ev)"),
    "acc rescaled twice": (
        lambda m, l, acc, s, v: (lambda mn: (lambda k, p: (mn, l * k + p.sum(-1), acc * (k * k)[:, None] + p @ v))(
            torch.exp(m - mn), torch.exp(s - mn[:, None])))(torch.maximum(m, s.max(dim=-1).values)), "should be"),
    "the block's terms rescaled too": (
        lambda m, l, acc, s, v: (lambda mn: (lambda k, p: (mn, l * k + p.sum(-1), (acc + p @ v) * k[:, None]))(
            torch.exp(m - mn), torch.exp(s - mn[:, None])))(torch.maximum(m, s.max(dim=-1).values)), "should be"),
}

BLOCK_UPDATE_ACCEPTED = {
    "float64 via double()": lambda *a: attention_block_update_ok(*(t.double() for t in a)),
    "einsum": lambda m, l, acc, s, v: (lambda mn: (lambda k, p: (mn, l * k + p.sum(-1), torch.einsum(
        "l,le->le", k, acc) + torch.einsum("lc,ce->le", p, v)))(torch.exp(m - mn), torch.exp(s - mn[:, None])))(
        torch.maximum(m, s.max(dim=-1).values)),
}


def _cached(*, scale=None, dim=-2, inplace=False):
    def cached_attention_step(q_t, k_t, v_t, cache_k, cache_v):
        if inplace:
            cache_k.mul_(1.0)
            cache_k.add_(1e-3)
        K, V = torch.cat([cache_k, k_t], dim=dim), torch.cat([cache_v, v_t], dim=dim)
        s = q_t.shape[-1] ** 0.5 if scale is None else scale(q_t, K)
        w = torch.softmax(q_t @ K.transpose(-2, -1) / s, dim=-1)
        return w @ V, K, V
    return cached_attention_step


CACHED_NEW = {
    "sqrt(4) hard-coded": (_cached(scale=lambda q, K: 2.0), "sqrt(4)"),
    "scaled by sqrt(S + 1)": (_cached(scale=lambda q, K: K.shape[-2] ** 0.5), "should be"),
    "appended along dim 1 (the heads when 4-D)": (_cached(dim=1), "dim=-2"),
    "appended along dim 2 (the features when 3-D)": (_cached(dim=2), "dim=-2"),
    "cache modified in place": (_cached(inplace=True), "in place"),
    "attends to the new token only": (
        lambda q, k, v, ck, cv: (v, torch.cat([ck, k], -2), torch.cat([cv, v], -2)), "should be"),
    "caches returned unchanged": (
        lambda q, k, v, ck, cv: (cached_attention_step_ok(q, k, v, ck, cv)[0], ck, cv), "S old positions only"),
    "returns the weights too": (
        lambda q, k, v, ck, cv: cached_attention_step_ok(q, k, v, ck, cv) + (None,), "must return the tuple"),
}

CACHED_ACCEPTED = {
    "float32": lambda *a: cached_attention_step_ok(*(t.float() for t in a)),
    "PyTorch's attention": lambda q, k, v, ck, cv: (lambda K, V: (F.scaled_dot_product_attention(q, K, V), K, V))(
        torch.cat([ck, k], -2), torch.cat([cv, v], -2)),
}


def _lin(q, k, v, *, phi_q=_phi, phi_k=_phi, eps=0.0, qdim=False):
    pq, pk = phi_q(q), phi_k(k)
    kv = pk.transpose(-2, -1) @ v
    z = (pq @ pk.sum(dim=-2)[..., None]) if not qdim else pq.sum(-2, keepdim=True) @ pk.sum(-2)[..., None]
    return pq @ kv / (z + eps)


def _lin_inplace(q, k, v):
    q.add_(0.0).mul_(1.0 + 1e-3)  # writes into the caller's q
    return linear_attention_ok(q / (1.0 + 1e-3), k, v)


LINEAR_NEW = {
    "phi on the queries only": (lambda q, k, v: _lin(q, k, v, phi_k=lambda x: x), "should be"),
    "phi on the keys only": (lambda q, k, v: _lin(q, k, v, phi_q=lambda x: x), "should be"),
    "softplus": (lambda q, k, v: _lin(q, k, v, phi_q=F.softplus, phi_k=F.softplus), "should be"),
    "normaliser summed over the queries": (lambda q, k, v: _lin(q, k, v, qdim=True), "should be"),
    "eps = 1e-2 in the normaliser": (lambda q, k, v: _lin(q, k, v, eps=1e-2), "should be"),
    "q modified in place": (_lin_inplace, "in place"),
    "phi applied to the product q kᵀ": (
        lambda q, k, v: (lambda A: A / A.sum(-1, keepdim=True) @ v)(_phi(q @ k.transpose(-2, -1))), "should be"),
    "the mean of phi(k) in the normaliser": (lambda q, k, v: _lin(q, k, v) * k.shape[-2], "should be"),
}

LINEAR_ACCEPTED = {
    "+1e-6 in the normaliser": lambda q, k, v: _lin(q, k, v, eps=1e-6),
    "float32": lambda q, k, v: linear_attention_ok(q.float(), k.float(), v.float()),
    "einsum": lambda q, k, v: (lambda pq, pk: torch.einsum("ble,bef->blf", pq, torch.einsum("bse,bsf->bef", pk, v))
                               / torch.einsum("ble,be->bl", pq, pk.sum(1))[..., None])(_phi(q), _phi(k)),
}


def kv_cache_bytes_ok(num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch=1):
    return 2 * num_layers * batch * num_kv_heads * tokens * head_size * bytes_per_value


def _kv(factor=lambda L, H, E, T, nb, B: 1):
    def kv_cache_bytes(num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch=1):
        args = (num_layers, num_kv_heads, head_size, tokens, bytes_per_value, batch)
        return kv_cache_bytes_ok(*args) * factor(*args)
    return kv_cache_bytes


KV_WRONG = {
    "keys only": (_kv(lambda *a: 0.5), "keys only"),
    "no layers": (_kv(lambda L, *a: 1 / L), "left out the layers"),
    "no batch": (_kv(lambda L, H, E, T, nb, B: 1 / B), "left out the batch"),
    "values, not bytes": (_kv(lambda L, H, E, T, nb, B: 1 / nb), "counted values, not bytes"),
    "bits": (_kv(lambda *a: 8), "counted bits"),
    "times the heads twice (D × H)": (_kv(lambda L, H, *a: H), "heads × head_size = D"),
    "tokens + 1": (_kv(lambda L, H, E, T, nb, B: (T + 1) / T), "one more token"),
    "in GiB, not bytes": (_kv(lambda *a: 2**-30), "bytes in their caches"),
    "a float near the answer": (_kv(lambda *a: 1.0 + 1e-3), "bytes in their caches"),
}


# --------------------------------------------------------------------------- the parametrised tests

NEW_WRONG = [
    (checks.check_layer_norm, LAYER_NORM_NEW),
    (checks.check_feed_forward, FEED_FORWARD_NEW),
    (checks.check_encoder_block, ENCODER_BLOCK_NEW),
    (checks.check_pre_norm_block, PRE_NORM_NEW),
    (ch08.check_residual_norms, RESIDUAL_NORMS_WRONG),
    (checks.check_attention_pool, ATTENTION_POOL_NEW),
    (checks.check_soft_align, SOFT_ALIGN_NEW),
    (checks.check_patchify, PATCHIFY_NEW),
    (checks.check_seasonal_naive, SEASONAL_NAIVE_NEW),
    (checks.check_mase, MASE_NEW),
    (ch10.check_erasure_flip_rates, ERASURE_WRONG),
    (checks.check_online_softmax_update, ONLINE_SOFTMAX_NEW),
    (checks.check_attention_block_update, BLOCK_UPDATE_NEW),
    (checks.check_cached_attention_step, CACHED_NEW),
    (checks.check_linear_attention, LINEAR_NEW),
    (ch11.check_kv_cache_bytes, KV_WRONG),
]

ACCEPTED = [
    (checks.check_layer_norm, LAYER_NORM_ACCEPTED),
    (checks.check_feed_forward, FEED_FORWARD_ACCEPTED),
    (checks.check_attention_pool, ATTENTION_POOL_ACCEPTED),
    (checks.check_soft_align, SOFT_ALIGN_ACCEPTED),
    (checks.check_patchify, PATCHIFY_ACCEPTED),
    (checks.check_seasonal_naive, SEASONAL_NAIVE_ACCEPTED),
    (checks.check_mase, MASE_ACCEPTED),
    (checks.check_online_softmax_update, ONLINE_SOFTMAX_ACCEPTED),
    (checks.check_attention_block_update, BLOCK_UPDATE_ACCEPTED),
    (checks.check_cached_attention_step, CACHED_ACCEPTED),
    (checks.check_linear_attention, LINEAR_ACCEPTED),
]


@pytest.fixture(autouse=True, scope="module")
def _erasure_labels():
    _, test = ch10._erasure_setup()
    _LABELS.update({300: test.labels[:300], 200: test.labels[:200]})


@pytest.mark.parametrize("check, wrong, hint", wrong_params(NEW_WRONG))
def test_new_wrong_answer_rejected_with_a_hint(check, wrong, hint, capsys):
    assert_rejected_with_hint(check, wrong, hint, capsys)


@pytest.mark.parametrize("check, variant", right_params(ACCEPTED))
def test_correct_variant_accepted(check, variant, capsys):
    assert_accepted(check, variant, capsys)


def test_each_existing_check_gets_at_least_eight_new_wrong_answers():
    for check, catalogue in NEW_WRONG:
        assert len(catalogue) >= 8, check.__name__


# --------------------------------------------------------------------------- questions and experiments

EXPERIMENTS = [
    (ch08.check_residual_norms, residual_norms_ok),
    (ch10.check_erasure_flip_rates, erasure_flip_rates_ok),
    (ch11.check_kv_cache_bytes, kv_cache_bytes_ok),
]

QUESTIONS = [  # (check, the right answer, {wrong answer: a word of its own hint})
    (ch08.check_layer_norm_length, 8.0, {1.0: "Variance 1 is about each feature", 64.0: "squared length",
                                         0.0: "sum to 0", 63**0.5: "D - 1", 0.125: "unit vector"}),
    (ch08.check_residual_growth_prediction, "b", {"a": "post-norm only", "c": "cannot grow",
                                                  "d": "not 1"}),
    (ch10.check_mase_meaning, "c", {"a": "within the history", "b": "not a share", "d": "no units"}),
    (ch11.check_running_max_start, "b", {"a": "never raises the max", "c": "nothing overflows",
                                         "d": "can only rise"}),
    (ch11.check_gqa_cache_size, 0.5, {2.0: "without grouping", 0.25: "keys and values", 1.0: "not 4",
                                      0.5 / 32: "32 layers", 2 * 32 * 8 * 128 * 4096 * 2 / 1e9: "GiB",
                                      512.0: "MiB"}),
]


@pytest.mark.parametrize("check, solution", [pytest.param(c, s, id=c.__name__) for c, s in EXPERIMENTS] +
                         [pytest.param(c, (lambda a=a: a), id=c.__name__) for c, a, _ in QUESTIONS])
def test_new_exercise_solution_passes(check, solution, capsys):
    assert_accepted(check, solution, capsys)


NEW_CHECKS = [c for c, _ in EXPERIMENTS] + [c for c, _, _ in QUESTIONS]


@pytest.mark.parametrize("check", NEW_CHECKS, ids=lambda c: c.__name__)
def test_new_exercise_stub_is_not_attempted(check, monkeypatch, capsys):
    assert_stub_not_attempted(check, stub, monkeypatch, capsys)


@pytest.mark.parametrize("check, answer, hint", [
    pytest.param(c, a, h, id=f"{c.__name__}: {a!r}") for c, _, wrong in QUESTIONS for a, h in wrong.items()])
def test_each_wrong_answer_to_a_question_gets_its_own_hint(check, answer, hint, capsys):
    assert_rejected_with_hint(check, lambda: answer, hint, capsys)


def test_question_hints_are_all_different():
    for check, _, wrong in QUESTIONS:
        messages = set()
        for answer in wrong:
            with pytest.raises(AssertionError) as info:
                check(lambda a=answer: a)
            messages.add(str(info.value).split(". ", 1)[-1])
        assert len(messages) == len(wrong), check.__name__


def test_experiment_references_are_measured_not_typed():
    """The checks' references come from the package: the residual curve from EncoderLayer, the cache size from
    caches that CausalSelfAttention really fills, the flip rates from tx.predict on a trained model."""
    curve, _ = ch08._residual_norms_reference(True, 12, 0)
    assert curve[-1] > 1.2 * curve[0]  # pre-norm grows
    flat, _ = ch08._residual_norms_reference(False, 12, 0)
    assert all(abs(v - 32**0.5) < 0.01 for v in flat[1:])  # post-norm: sqrt(D) after every block
    assert ch11._measured_cache_bytes(2, 16, 4, 5, 3, torch.float32) == kv_cache_bytes_ok(2, 4, 4, 5, 4, 3)
    model, test = ch10._erasure_setup()
    top, rand, _ = ch10._erasure_reference(model, test.tokens, test.lengths, test.labels, 0)
    assert top > 0.15 and top > 4 * rand  # the weights point at words the prediction uses


def test_new_checks_are_exported_by_their_modules():
    names = {"check_layer_norm_length", "check_residual_growth_prediction", "check_residual_norms"}
    assert names <= set(ch08.__all__)
    assert {"check_mase_meaning", "check_erasure_flip_rates"} <= set(ch10.__all__)
    assert {"check_running_max_start", "check_kv_cache_bytes", "check_gqa_cache_size"} <= set(ch11.__all__)
