"""Chapter 9: a decoder-only (causal) language model reads a window and predicts it shifted by one."""

from __future__ import annotations

import numpy as np

from .style import arrow, box, canvas, label, tensor


def causal_lm():
    """Inputs x_1..x_T, one causal Transformer, the next character at every position; its mask."""
    fig, ax = canvas(27, 10.5)
    chars = ["T", "o", "␣", "b", "e", ","]
    targets = ["o", "␣", "b", "e", ",", "␣"]
    x0, step, w = 1.4, 2.3, 1.5
    block_y, block_h = 4.2, 2.0
    for t, (c, nxt) in enumerate(zip(chars, targets)):
        x = x0 + t * step
        box(ax, x, 1.2, w, 1.1, c, role="neutral", fontsize=12)
        label(ax, x + w / 2, 0.6, f"$x_{t + 1}$", fontsize=9)
        arrow(ax, (x + w / 2, 2.35), (x + w / 2, block_y - 0.05), role="neutral")
        arrow(ax, (x + w / 2, block_y + block_h + 0.05), (x + w / 2, 7.55), role="output")
        box(ax, x, 7.6, w, 1.1, nxt, role="output", fontsize=12)
        label(ax, x + w / 2, 9.3, f"$p(x_{t + 2} \\mid x_{{\\leq {t + 1}}})$", fontsize=8)
    right = x0 + 5 * step + w
    box(ax, x0 - 0.3, block_y, right - x0 + 0.6, block_h,
        "decoder-only Transformer: $N_\\ell$ layers of causal self-attention + feed-forward",
        role="state", fontsize=9.5)
    label(ax, right + 0.2, 1.75, "input", ha="left", fontsize=9)
    label(ax, right + 0.2, 8.15, "target =\ninput shifted by one", ha="left", fontsize=9)
    # the causal mask: row t (a query) may read columns <= t
    mask = np.tril(np.ones((6, 6)))
    mx, my = 20.3, 2.3
    tensor(ax, mx, my, 6, 6, role="key", cell=0.75, values=mask)
    for k, c in enumerate(chars):
        label(ax, mx + (k + 0.5) * 0.75, my + 4.5 + 0.35, c, fontsize=9)
        label(ax, mx - 0.3, my + (5 - k + 0.5) * 0.75, c, fontsize=9, ha="right")
    label(ax, mx + 2.25, my + 5.6, "causal mask: position $t$\nreads positions $\\leq t$",
          fontsize=9, va="bottom")
    label(ax, mx + 2.25, my - 0.35, "keys (read)", fontsize=8.5, va="top")
    label(ax, mx - 0.9, my + 2.25, "queries", fontsize=8.5, rotation=90, ha="right")
    return fig


FIGURES = {
    "ch09_causal_lm": causal_lm,
}
