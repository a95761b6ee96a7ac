"""Plotting only: numpy + matplotlib, nothing else of ours.

Every function takes arrays (NumPy, or anything ``np.asarray`` accepts,
including CPU tensors) and an optional ``ax``, and returns the ``ax``.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["PALETTE", "attention_heatmap", "weights_bar", "curves", "to_numpy"]

#: One colour per role, in every plot and every concept figure of the book
#: (tools/diagrams draws the figures with it). Okabe and Ito's colour-blind-safe set;
#: each colour is dark enough for white text and light enough to read on a dark page.
PALETTE: dict[str, str] = {
    "query": "#D55E00",    # vermilion
    "key": "#0072B2",      # blue
    "value": "#009E73",    # bluish green
    "output": "#CC79A7",   # reddish purple
    "weight": "#E69F00",   # orange: scores, attention weights
    "state": "#56B4E9",    # sky blue: recurrent states, hidden activations
    "neutral": "#6E6E6E",  # grey: inputs, masks, everything without a role
}


def to_numpy(x: object) -> np.ndarray:
    """A float64 NumPy copy of an array or a (possibly grad-tracking) CPU tensor."""
    detach = getattr(x, "detach", None)
    if callable(detach):
        x = detach().cpu().numpy()
    return np.array(x, dtype=np.float64)


def attention_heatmap(
    weights: object,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    annotate: bool = True,
    cmap: str = "viridis",
) -> plt.Axes:
    """Draw an (L, S) weight matrix: one row per query, one column per key.

    Colours run from 0 to 1 (weights are probabilities), so two heatmaps are
    comparable at a glance; ``annotate`` writes each weight in its cell.
    """
    w = to_numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (L, S), got shape {w.shape}")
    L, S = w.shape
    for name, labels, n in (("query_labels", query_labels, L), ("key_labels", key_labels, S)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} labels for {n} rows/columns")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.7 * S, 0.8 + 0.6 * L))
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    ax.set_xticks(range(S), labels=key_labels if key_labels is not None else range(S))
    ax.set_yticks(range(L), labels=query_labels if query_labels is not None else range(L))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate and L * S <= 400:
        for i in range(L):
            for j in range(S):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center",
                        color="black" if w[i, j] > 0.6 else "white", fontsize=9)
    if title:
        ax.set_title(title)
    return ax


def weights_bar(
    weights: object,
    labels: Sequence[str] | None = None,
    *,
    scores: object | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Draw one row of attention weights (S,) as bars on a 0..1 axis.

    With ``scores`` (S,), each bar is annotated with the raw score it came from,
    so the effect of the softmax (and of scaling the scores) is visible.
    """
    w = to_numpy(weights)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D (S,), got shape {w.shape}")
    S = w.shape[0]
    if labels is not None and len(labels) != S:
        raise ValueError(f"labels has {len(labels)} entries for {S} weights")
    s = None if scores is None else to_numpy(scores)
    if s is not None and s.shape != w.shape:
        raise ValueError(f"scores has shape {s.shape} but weights has {w.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.8 * S, 3.0))
    bars = ax.bar(range(S), w, color=PALETTE["weight"])
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("weight")
    ax.set_xticks(range(S), labels=labels if labels is not None else range(S))
    for j, bar in enumerate(bars):
        text = f"{w[j]:.2f}" if s is None else f"{w[j]:.2f}\n(score {s[j]:.2f})"
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02, text, ha="center", va="bottom", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def curves(
    x: object,
    ys: dict[str, object],
    *,
    ax: plt.Axes | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logy: bool = False,
    logx: bool = False,
    ylim: tuple[float, float] | None = None,
    markers: bool = True,
) -> plt.Axes:
    """One line per entry of ``ys`` (label -> values), all over the same ``x``."""
    xs = to_numpy(x)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6))
    for label, values in ys.items():
        v = to_numpy(values)
        if v.shape != xs.shape:
            raise ValueError(f"{label!r} has shape {v.shape} but x has {xs.shape}")
        ax.plot(xs, v, marker="o" if markers else None, markersize=4, label=label)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log", base=2)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(ys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax
