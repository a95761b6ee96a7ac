r"""Training hard attention: REINFORCE, straight-through Gumbel-softmax, and soft attention.

Hard attention picks one key, :math:`j \sim a = \mathrm{softmax}(z)` for scores z, and
uses its value :math:`v_j`. The pick is a step function of the scores, so the
loss :math:`\mathcal{L}(v_j)` has no gradient with respect to them. Two ways round it:

- **REINFORCE** (score-function estimator; Williams 1992, used by Mnih et al.
  2014 and Xu et al. 2015): :math:`\nabla_\theta\, \mathbb{E}_{j\sim a}[\mathcal{L}_j]
  = \mathbb{E}_{j\sim a}[(\mathcal{L}_j - b)\, \nabla_\theta \log a_j]` for any
  baseline :math:`b` that does not depend on :math:`j`. Unbiased; its variance
  is what the baseline reduces.
- **Straight-through Gumbel-softmax** (the straight-through estimator of Bengio
  et al. 2013 applied to the Gumbel-softmax / Concrete relaxation of Jang et al.
  2017 and Maddison et al. 2017): the forward pass uses
  the one-hot pick :math:`\mathrm{onehot}(\arg\max_j (\log a_j + g_j))`, the
  backward pass the gradient of the soft sample
  :math:`\mathrm{softmax}((\log a + g)/\tau)`. Low variance, but biased.

:class:`Picker` is the small model of chapter 4's task
(:func:`attention_course.data.find_by_colour`): one query (the asked colour),
S keys (the items), values (the items' symbols), and a classifier on the
context. Shapes: B examples (a batch of the task), S items, E the model's
width (``size``). Taught in chapter 4 (hard attention).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from .data import FindTask

__all__ = [
    "METHODS",
    "Picker",
    "gumbel_noise",
    "straight_through_gumbel",
    "reinforce_surrogate",
    "method_loss",
    "expected_loss",
    "accuracy",
    "train_picker",
    "gradient_estimates",
]

METHODS = ("soft", "reinforce", "reinforce_no_baseline", "gumbel_st")


class Picker(nn.Module):
    r"""Attend from the asked colour over S items, then name the chosen symbol.

    query :math:`q = \mathrm{ask}(c)\, W_q`; keys :math:`k_j = (\mathrm{sym}(s_j) + \mathrm{col}(c_j))\, W_k`;
    scores :math:`q\, k_j^\top / \sqrt{E}`; values :math:`v_j = \mathrm{val}(s_j)`;
    logits = ``out(context)``. Row vectors, as in ``book/notation.md``
    (``proj_q.weight`` is :math:`W_q^\top`, ``nn.Linear``'s layout). The scoring parameters (:meth:`score_parameters`)
    only move the weights; the value and output parameters only read the context.
    """

    def __init__(self, n_symbols: int, n_colours: int, size: int = 16) -> None:
        super().__init__()
        self.size = size
        self.symbol = nn.Embedding(n_symbols, size)
        self.colour = nn.Embedding(n_colours, size)
        self.ask = nn.Embedding(n_colours, size)
        self.proj_q = nn.Linear(size, size, bias=False)
        self.proj_k = nn.Linear(size, size, bias=False)
        self.value = nn.Embedding(n_symbols, size)
        self.out = nn.Linear(size, n_symbols)

    def score_parameters(self) -> list[nn.Parameter]:
        """The parameters that only reach the loss through the attention weights."""
        return [*self.symbol.parameters(), *self.colour.parameters(), *self.ask.parameters(),
                *self.proj_q.parameters(), *self.proj_k.parameters()]

    def log_weights(self, task: FindTask) -> torch.Tensor:
        """log a (B, S): the log-softmax of the scaled dot-product scores."""
        q = self.proj_q(self.ask(task.query))  # (B, E)
        k = self.proj_k(self.symbol(task.symbols) + self.colour(task.colours))  # (B, S, E)
        scores = (k @ q[:, :, None])[..., 0] / math.sqrt(self.size)  # (B, S)
        return torch.log_softmax(scores, dim=-1)

    def values(self, task: FindTask) -> torch.Tensor:
        """v (B, S, E)."""
        return self.value(task.symbols)


def gumbel_noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise :math:`g = -\\log(-\\log u)`, u uniform in (0, 1)."""
    u = torch.rand(shape, generator=generator).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def straight_through_gumbel(logits: torch.Tensor, tau: float = 1.0, noise: torch.Tensor | None = None,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One-hot sample from ``softmax(logits)`` whose gradient is the soft sample's.

    forward: :math:`\mathrm{onehot}(\arg\max(\mathrm{logits} + g))`; backward:
    the gradient of :math:`y = \mathrm{softmax}((\mathrm{logits} + g)/\tau)`
    (``hard - y.detach() + y``). Like ``F.gumbel_softmax(logits, tau, hard=True)``,
    with the noise explicit or drawn from ``generator``.

    Shapes: logits (..., S) -> weights (..., S), one 1 per row.
    """
    if not tau > 0:  # also rejects NaN
        raise ValueError(f"tau must be > 0, got {tau}")
    g = gumbel_noise(logits.shape, generator) if noise is None else noise
    if g.shape != logits.shape:
        raise ValueError(f"noise has shape {tuple(g.shape)} but logits have shape {tuple(logits.shape)}")
    soft = torch.softmax((logits + g) / tau, dim=-1)  # (..., S)
    hard = F.one_hot((logits + g).argmax(dim=-1), logits.shape[-1]).to(soft.dtype)  # (..., S): the exact pick
    return hard - soft.detach() + soft


def reinforce_surrogate(log_probs: torch.Tensor, picked: torch.Tensor, rewards: torch.Tensor,
                        baseline: float | torch.Tensor = 0.0) -> torch.Tensor:
    r"""A scalar whose gradient is the REINFORCE estimate of :math:`-\nabla\,\mathbb{E}[R]`.

    :math:`-\frac{1}{B}\sum_n (R_n - b)\, \log a_{n, j_n}` over the examples n
    of the batch, with baseline b and the advantage :math:`R_n - b` held
    constant (detached). Minimising it raises the log-probability of picks
    that did better than the baseline.

    Shapes: log_probs (B, S), picked (B,) long, rewards (B,) -> scalar.
    """
    if log_probs.ndim != 2 or picked.shape != log_probs.shape[:1] or rewards.shape != log_probs.shape[:1]:
        raise ValueError(f"need log_probs (B, S), picked (B,), rewards (B,); got {tuple(log_probs.shape)}, "
                         f"{tuple(picked.shape)}, {tuple(rewards.shape)}")
    if picked.dtype != torch.long or (picked.numel() and not 0 <= int(picked.min()) <= int(picked.max()) < log_probs.shape[1]):
        raise ValueError(f"picked must be long indices in 0..S-1={log_probs.shape[1] - 1}, got dtype {picked.dtype}")
    if isinstance(baseline, torch.Tensor) and baseline.shape not in ((), rewards.shape):
        raise ValueError(f"baseline must be a number or shaped like rewards {tuple(rewards.shape)}, "
                         f"got {tuple(baseline.shape)}")
    chosen = log_probs.gather(-1, picked[:, None])[:, 0]  # (B,)
    advantage = (rewards - baseline).detach()  # (B,)
    return -(advantage * chosen).mean()


def _per_item_losses(model: Picker, task: FindTask, values: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (B, S) of the answer read from each item's value alone."""
    logits = model.out(values)  # (B, S, n_symbols)
    N, S, V = logits.shape
    target = task.target[:, None].expand(N, S)  # (B, S)
    return F.cross_entropy(logits.reshape(N * S, V), target.reshape(-1), reduction="none").reshape(N, S)


def expected_loss(model: Picker, task: FindTask) -> torch.Tensor:
    r""":math:`\frac1B \sum_n \sum_j a_{nj}\, \mathcal{L}_{nj}`: hard attention's loss averaged exactly over its pick.

    S is small here, so the expectation that REINFORCE estimates by sampling can
    be summed outright; its gradient is the exact one the estimators aim at.
    :math:`\mathcal{L}_{nj}` is example n's loss if it picks item j.
    """
    logp = model.log_weights(task)  # (B, S)
    return (logp.exp() * _per_item_losses(model, task, model.values(task))).sum(-1).mean()


def method_loss(model: Picker, task: FindTask, method: str, *, baseline: float = 0.0, tau: float = 1.0,
                entropy: float = 0.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The loss to backpropagate for one batch, and the per-example cross-entropy (B,) it is built on.

    ``soft``: classify the weighted sum of values. ``reinforce``: sample a pick,
    classify its value, add :func:`reinforce_surrogate` with reward
    ``-cross-entropy`` and ``baseline``. ``reinforce_no_baseline``: the same with
    baseline 0. ``gumbel_st``: classify the value picked by
    :func:`straight_through_gumbel`. ``baseline`` is in loss units (the
    reward is minus the loss). ``entropy`` > 0 adds ``-entropy`` times the
    entropy of a, :math:`-\sum_j a_j \log a_j`, for the REINFORCE methods: a
    bonus for keeping the pick uncertain.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    logp = model.log_weights(task)  # (B, S)
    v = model.values(task)  # (B, S, E)
    if method == "soft":
        context = (logp.exp()[:, None, :] @ v)[:, 0]  # (B, E)
        ce = F.cross_entropy(model.out(context), task.target, reduction="none")
        return ce.mean(), ce.detach()
    if method == "gumbel_st":
        w = straight_through_gumbel(logp, tau, generator=generator)  # (B, S), one-hot forward
        context = (w[:, None, :] @ v)[:, 0]  # (B, E): the picked value
        ce = F.cross_entropy(model.out(context), task.target, reduction="none")
        return ce.mean(), ce.detach()
    picked = torch.multinomial(logp.detach().exp(), 1, generator=generator)[:, 0]  # (B,)
    context = v[torch.arange(len(task)), picked]  # (B, E)
    ce = F.cross_entropy(model.out(context), task.target, reduction="none")
    b = baseline if method == "reinforce" else 0.0
    bonus = entropy * (logp.exp() * logp).sum(-1).mean()  # -entropy times the entropy of a, averaged over the batch
    return ce.mean() + reinforce_surrogate(logp, picked, -ce, -b) + bonus, ce.detach()


@torch.no_grad()
def accuracy(model: Picker, task: FindTask, method: str) -> tuple[float, float]:
    """(answer accuracy, pick accuracy): hard methods pick the argmax item; soft classifies the weighted sum."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    logp = model.log_weights(task)  # (B, S)
    v = model.values(task)
    if method == "soft":
        context = (logp.exp()[:, None, :] @ v)[:, 0]
    else:
        context = v[torch.arange(len(task)), logp.argmax(-1)]
    answer = (model.out(context).argmax(-1) == task.target).float().mean()
    pick = (logp.argmax(-1) == task.position).float().mean()
    return float(answer), float(pick)


def train_picker(model: Picker, task: FindTask, method: str, steps: int, *, batch_size: int = 64,
                 lr: float = 1e-2, tau: float = 1.0, entropy: float = 0.0, seed: int = 0,
                 eval_task: FindTask | None = None,
                 eval_every: int = 50, baseline_decay: float = 0.9) -> dict[str, list | float]:
    """Adam on ``method_loss``; the REINFORCE baseline is a moving average of the loss.

    Every method sees the same batches (drawn from ``seed``); the picks draw
    from a second generator.

    Returns ``{"loss": [...], "steps": [...], "accuracy": [...], "seconds": s}``:
    the batch's mean cross-entropy at each step (without the REINFORCE and
    entropy terms, so that methods compare), and the answer accuracy on ``eval_task`` every
    ``eval_every`` steps (evaluation time excluded from ``seconds``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if steps < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(f"need steps, batch_size and eval_every >= 1; got {steps}, {batch_size}, {eval_every}")
    batches = torch.Generator().manual_seed(seed)  # the same batches for every method
    noise = torch.Generator().manual_seed(seed + 1)  # the picks' randomness
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    baseline, seconds = 0.0, 0.0
    history: dict[str, list | float] = {"loss": [], "steps": [], "accuracy": []}
    for step in range(1, steps + 1):
        start = time.perf_counter()
        idx = torch.randint(len(task), (batch_size,), generator=batches)
        loss, ce = method_loss(model, task[idx], method, baseline=baseline, tau=tau, entropy=entropy,
                               generator=noise)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        baseline = baseline_decay * baseline + (1 - baseline_decay) * float(ce.mean())
        seconds += time.perf_counter() - start
        history["loss"].append(float(ce.mean()))
        if eval_task is not None and (step % eval_every == 0 or step == steps):
            history["steps"].append(step)
            history["accuracy"].append(accuracy(model, eval_task, method)[0])
    history["seconds"] = seconds
    return history


def gradient_estimates(model: Picker, task: FindTask, method: str, n: int, *, tau: float = 1.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` independent estimates of the gradient of the scoring parameters on one batch: (n, n_params).

    ``method`` is one of :data:`METHODS` or ``"exact"`` (the gradient of
    :func:`expected_loss`, the same every time). REINFORCE's baseline here is the
    batch's exact expected loss, a constant with respect to the pick.
    """
    params = model.score_parameters()
    with torch.no_grad():
        baseline = float(expected_loss(model, task))
    rows = []
    for _ in range(n):
        if method == "exact":
            loss = expected_loss(model, task)
        else:
            loss, _ = method_loss(model, task, method, baseline=baseline, tau=tau, generator=generator)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1)
                               for gr, p in zip(grads, params)]))
    return torch.stack(rows)  # (n, n_params): one estimate per row
