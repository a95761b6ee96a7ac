r"""An induction head in a few seconds of CPU: data, model, training and measurements.

Olsson et al. 2022 ("In-context learning and induction heads") and Elhage et
al. 2021 ("A mathematical framework for transformer circuits") describe a
circuit of two heads that continues a pattern seen earlier in the context:

- a **previous-token head** in layer 1 writes into every position j the token
  :math:`x_{j-1}` that came before it;
- an **induction head** in layer 2, at a query t, attends to the keys j whose
  *previous* token equals :math:`x_t` (its keys read what the layer-1 head
  wrote), that is to the token after an earlier occurrence of :math:`x_t`, and
  copies it: on ``… A B … A`` it predicts ``B``.

On P random tokens followed by the same P tokens, the induction head of query t
in the second copy attends to key :math:`t - P + 1`, and the second copy becomes
predictable. The experiment here makes that circuit form reliably in about 600
steps of a tiny model:

- :func:`repeat_batch`: rows of P random tokens, the same P again, then random
  filler, P drawn per row, with a mask of the predictable targets;
- :func:`attention_only`: a two-layer, one-head-per-layer
  :class:`~attention_course.lm.CharTransformerLM` with rotary positions whose
  feed-forward sublayers are removed;
- :func:`train_induction`: AdamW on fresh batches, loss on the predictable targets;
- :func:`copy_losses`, :func:`head_scores`, :func:`ablate_head`: the loss on
  each copy, every head's previous-token and induction score, and a head
  switched off.

Taught in chapter 9. Shapes: ids (B, T) long; weights (B, H, T, T).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterator

import torch
from torch import nn

from ._validate import shape_str
from .lm import CharTransformerLM, induction_score, position_losses, previous_token_score

__all__ = [
    "repeat_batch",
    "repeated_sequences",
    "attention_only",
    "train_induction",
    "copy_losses",
    "head_scores",
    "ablate_head",
    "chance_loss",
]


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def repeat_batch(batch_size: int, length: int, vocab_size: int, min_period: int, max_period: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of P random tokens, the same P tokens again, then random filler.

    P is drawn for each row from ``min_period..max_period``, so no fixed offset
    solves the task: the model has to find the earlier occurrence. Returns ids
    (B, length) long and a bool mask (B, length - 1) over the targets
    ``ids[:, 1:]``: True at target positions s with P < s < 2P, the tokens of
    the second copy that can be predicted (its first token cannot: nothing says
    where the first copy ends).
    """
    for name, n in (("batch_size", batch_size), ("length", length), ("vocab_size", vocab_size),
                    ("min_period", min_period), ("max_period", max_period)):
        _positive_int(name, n)
    if not 2 <= min_period <= max_period or 2 * max_period > length:
        raise ValueError(f"need 2 <= min_period <= max_period and 2 * max_period <= length, got "
                         f"min_period={min_period}, max_period={max_period}, length={length}")
    base = torch.randint(0, vocab_size, (batch_size, length), generator=generator)  # (B, length)
    period = torch.randint(min_period, max_period + 1, (batch_size, 1), generator=generator)  # (B, 1)
    t = torch.arange(length)[None]  # (1, length)
    ids = torch.where(t < 2 * period, base.gather(1, t % period), base)  # the first P, twice, then filler
    s = t[:, 1:]  # target positions 1..length-1
    return ids, (s > period) & (s < 2 * period)


def repeated_sequences(n: int, period: int, vocab_size: int, *, seed: int = 12345) -> torch.Tensor:
    """(n, 2 * period) held-out ids: ``period`` random tokens, then the same tokens again."""
    for name, v in (("n", n), ("period", period), ("vocab_size", vocab_size)):
        _positive_int(name, v)
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, vocab_size, (n, period), generator=g)  # (n, P)
    return torch.cat([first, first], dim=1)  # (n, 2P)


class _NoFeedForward(nn.Module):
    """Stands in for a feed-forward sublayer and adds nothing to the residual stream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def attention_only(vocab_size: int, d_model: int = 32, num_heads: int = 1, num_layers: int = 2,
                   context: int = 32, *, positions: str = "rotary") -> CharTransformerLM:
    """A :class:`~attention_course.lm.CharTransformerLM` whose feed-forward sublayers add nothing.

    Each layer is then attention and its residual connection only, the setting
    in which Elhage et al. 2021 read circuits off the weights. Rotary positions
    make "the token before" one relative offset at every position.
    """
    model = CharTransformerLM(vocab_size, d_model, num_heads, num_layers, 1, context, positions=positions)
    for layer in model.layers:
        layer.feed_forward = _NoFeedForward()
    return model


def train_induction(model: CharTransformerLM, steps: int = 600, *, batch_size: int = 64,
                    min_period: int = 8, max_period: int = 16, lr: float = 1e-2, warmup: int = 50,
                    seed: int = 0, every: int = 0,
                    probe: Callable[[CharTransformerLM], dict] | None = None,
                    progress: bool = True) -> dict:
    """Train on fresh :func:`repeat_batch` rows; the loss is the mean over the predictable targets.

    AdamW without weight decay, the learning rate rising over ``warmup`` steps
    and then constant, gradients clipped to norm 1. Every ``every`` steps
    ``probe(model)`` (in eval mode) is called and its dict recorded with the
    step: the way to watch the circuit form. Returns ``{"loss": [...],
    "log": [...], "seconds": wall time}``.
    """
    from tqdm.auto import tqdm

    steps = _positive_int("steps", steps)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 < warmup <= steps:
        raise ValueError(f"warmup must be an int in 1..steps={steps}, got {warmup!r}")
    if every and probe is None:
        raise ValueError("every > 0 needs a probe to call")
    generator = torch.Generator().manual_seed(1000 + seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses, log = [], []
    start = time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc="two-layer model", disable=not progress, mininterval=1.0):
        for group in optimiser.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        ids, keep = repeat_batch(batch_size, model.context + 1, model.vocab_size, min_period, max_period,
                                 generator)
        logits, _ = model(ids[:, :-1])  # (B, T, V)
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")[keep].mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if every and (step + 1) % every == 0:
            model.eval()
            log.append({"step": step + 1, **probe(model)})
            model.train()
    model.eval()
    return {"loss": losses, "log": log, "seconds": time.perf_counter() - start}


def _check_repeated(ids: object, period: int) -> None:
    _positive_int("period", period)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[1] != 2 * period:
        got = shape_str(ids) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"ids must be (B, 2 * period) = (B, {2 * period}), got {got}")


def copy_losses(model: CharTransformerLM, ids: torch.Tensor, period: int) -> tuple[float, float]:
    """Mean loss (nats) on the first copy (targets 1..P-1) and on the second (targets P+1..2P-1).

    ``ids`` is (B, 2P), P tokens and the same P again (:func:`repeated_sequences`).
    """
    _check_repeated(ids, period)
    loss = position_losses(model, ids)  # (B, 2P - 1): the loss of target t + 1
    return loss[:, :period - 1].mean().item(), loss[:, period:].mean().item()


@torch.no_grad()
def head_scores(model: CharTransformerLM, ids: torch.Tensor, period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every head's previous-token and induction score on ``ids`` (B, 2P): two (N_layers, H) tensors."""
    _check_repeated(ids, period)
    _, weights = model(ids)  # N_layers x (B, H, 2P, 2P)
    prev = torch.stack([previous_token_score(w).mean(0) for w in weights])
    ind = torch.stack([induction_score(w, period).mean(0) for w in weights])
    return prev, ind


@contextlib.contextmanager
def ablate_head(model: CharTransformerLM, layer: int, head: int) -> Iterator[None]:
    """Inside the ``with`` block, head ``head`` of layer ``layer`` (0-based) contributes nothing.

    Its slice of the concatenated head outputs is set to zero before the output
    projection, so the layer's other heads and the residual stream are untouched.
    """
    n_layers = len(model.layers)
    if not (isinstance(layer, int) and 0 <= layer < n_layers):
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer!r}")
    attn = model.layers[layer].self_attn
    if not (isinstance(head, int) and 0 <= head < attn.num_heads):
        raise ValueError(f"head must be in 0..{attn.num_heads - 1}, got {head!r}")
    size = attn.d_model // attn.num_heads

    def zero_head(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = inputs[0].clone()  # (B, T, D): the heads' outputs side by side
        x[..., head * size:(head + 1) * size] = 0
        return (x, *inputs[1:])

    handle = attn.out_proj.register_forward_pre_hook(zero_head)
    try:
        yield
    finally:
        handle.remove()


def chance_loss(vocab_size: int) -> float:
    """ln(vocab_size): the loss of a uniform guess, in nats."""
    return math.log(_positive_int("vocab_size", vocab_size))
