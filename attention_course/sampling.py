r"""Choosing the next token from a language model's logits: greedy, temperature, top-k, top-p.

A language model gives, at each step, logits :math:`z \in \mathbb{R}^V` over a
vocabulary of :math:`V` tokens. The next token is then

- **greedy**: :math:`\arg\max_i z_i`, always the most probable one;
- **sampled with temperature** :math:`\tau > 0`: from
  :math:`\mathrm{softmax}(z / \tau)`; :math:`\tau < 1` sharpens the distribution,
  :math:`\tau > 1` flattens it, and :math:`\tau \to 0` is greedy (``temperature=0``
  means exactly that);
- **top-k** (Fan et al. 2018): sampled from the :math:`k` most probable tokens only, their
  probabilities renormalised;
- **top-p**, or nucleus sampling (Holtzman et al. 2020): sampled from the smallest set of
  most probable tokens whose probabilities sum to at least :math:`p`.

:func:`top_k_filter` and :func:`top_p_filter` return the logits with every excluded token
set to :math:`-\infty`, so that a softmax gives it probability 0; :func:`sample_next`
applies temperature, then top-k, then top-p (the order of Hugging Face's ``generate``),
and draws. Shapes: logits (..., V); the filters keep the shape, :func:`sample_next`
returns (...) token ids. No function modifies its input. Taught in the language-model
chapter.
"""

from __future__ import annotations

import math

import torch

from ._validate import shape_str

__all__ = ["top_k_filter", "top_p_filter", "sample_next"]


def _check_logits(logits: object) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor (..., V), got "
                         f"{shape_str(logits) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must be (..., V) with V >= 1 tokens, got {shape_str(logits)}")
    if torch.isnan(logits).any():
        raise ValueError(f"logits {shape_str(logits)} contain NaN")
    if (logits == float("inf")).any():
        raise ValueError(f"logits {shape_str(logits)} contain +inf")
    if torch.isneginf(logits).all(dim=-1).any():
        raise ValueError(f"logits {shape_str(logits)} have a row where every token is -inf: nothing to choose")
    return logits


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row, set the others to -inf: (..., V) -> (..., V).

    Exactly ``k`` tokens stay finite per row (of the tokens that were finite), also when
    several logits tie at the k-th value (``torch.topk`` decides which of them stay).
    """
    logits = _check_logits(logits)
    V = logits.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= V:
        raise ValueError(f"k must be an int in 1..V={V} (logits {shape_str(logits)}), got {k!r}")
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(-1, logits.topk(k, dim=-1).indices, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most probable tokens whose probabilities sum to at least ``p``.

    Sorted by probability, a token stays if the tokens before it hold less than ``p`` of
    the mass; so the most probable token always stays, and ``p = 1`` keeps every token.
    (..., V) -> (..., V), the excluded logits set to -inf.
    """
    logits = _check_logits(logits)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1 or math.isnan(p):
        raise ValueError(f"p must be a number in (0, 1], got {p!r}")
    if p == 1:
        return logits.clone()  # every token; cumulative sums could reach 1.0 early by rounding
    probs = logits.float().softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
    keep_sorted = before < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token id of each row: (..., V) logits -> (...) long.

    ``temperature=0`` is greedy (the argmax, ``top_k`` and ``top_p`` then change nothing);
    otherwise the logits are divided by ``temperature``, filtered by top-k and then top-p
    when given, and one token is drawn from their softmax with ``generator``.
    """
    logits = _check_logits(logits)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    # Shifted so that each row's largest logit is 0 (the softmax does not change): a tiny
    # temperature then sends the others to -inf instead of overflowing to inf - inf = NaN.
    z = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    probs = z.float().softmax(dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
