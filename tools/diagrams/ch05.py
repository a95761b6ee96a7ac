"""Chapter 5: self-, causal and cross-attention with their masks; path lengths, recurrence against attention."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from .style import FONT, arrow, box, canvas, colour, label, tint

SOURCE = ["je", "t'", "aime", "bien", "<pad>"]  # S = 5, the last one padding
TARGET = ["<bos>", "I", "love", "you"]          # 4 target tokens


def mask_grid(ax, x: float, y: float, mask: np.ndarray, *, rows: list[str], cols: list[str],
              cell: float = 0.5) -> None:
    """A boolean (L, S) mask as a grid, lower-left at (x, y): filled = may attend (True)."""
    L, S = mask.shape
    for i in range(L):
        for j in range(S):
            allowed = bool(mask[i, j])
            ax.add_patch(Rectangle((x + j * cell, y + (L - 1 - i) * cell), cell, cell,
                                   facecolor=tint("weight", 0.55) if allowed else "white",
                                   edgecolor=colour("neutral"), linewidth=0.7,
                                   hatch=None if allowed else "////"))
    for i, name in enumerate(rows):          # one row per query
        label(ax, x - 0.12, y + (L - 1 - i + 0.5) * cell, name, ha="right", fontsize=FONT - 1,
              role="query")
    for j, name in enumerate(cols):          # one column per key
        ax.text(x + (j + 0.5) * cell, y + L * cell + 0.1, name, ha="left", va="bottom",
                rotation=60, fontsize=FONT - 1, color=colour("key"), rotation_mode="anchor")


def _sources(ax, x: float, y: float, *, q_from: str, kv_from: str | None) -> None:
    """Where Q, K and V come from: one sequence for all three, or one for Q and one for K, V."""
    w = 6.0
    q, k, v = x + 0.5, x + 2.5, x + 4.5      # left edges of the Q, K, V boxes
    if kv_from is None:
        box(ax, x, y + 2.1, w, 1.1, q_from, role="neutral", fontsize=FONT - 1)
        starts = [(q + 0.5, y + 2.1), (k + 0.5, y + 2.1), (v + 0.5, y + 2.1)]
    else:
        box(ax, x, y + 2.1, 2.6, 1.1, q_from, role="neutral", fontsize=FONT - 1)
        box(ax, x + 2.9, y + 2.1, 3.1, 1.1, kv_from, role="neutral", fontsize=FONT - 1)
        starts = [(q + 0.5, y + 2.1), (k + 1.0, y + 2.1), (v + 0.3, y + 2.1)]
    for (sx, sy), left, role, name, proj in zip(starts, (q, k, v), ("query", "key", "value"),
                                                ("$Q$", "$K$", "$V$"), ("$W_q$", "$W_k$", "$W_v$")):
        arrow(ax, (sx, sy), (left + 0.5, y + 0.8), role=role)
        label(ax, (sx + left + 0.5) / 2 + 0.12, y + 1.45, proj, ha="left", fontsize=FONT - 1)
        box(ax, left, y, 1.0, 0.8, name, role=role)


def three_attentions():
    """Encoder self-attention, decoder (causal) self-attention and cross-attention, with their masks."""
    fig, ax = canvas(23, 14.2)
    S, L = len(SOURCE), len(TARGET)
    pad = np.array([tok != "<pad>" for tok in SOURCE])
    panels = [
        ("encoder self-attention", "source tokens $X$ (T, D)", None,
         np.broadcast_to(pad, (S, S)), SOURCE, SOURCE, "mask (T, T): padding",
         "every token reads every real token;\nthe padding column is blocked"),
        ("decoder self-attention", "target tokens $X$ (T, D)", None,
         np.tril(np.ones((L, L), dtype=bool)), TARGET, TARGET, "mask (T, T): causal",
         "token $t$ reads tokens $1, \\dots, t$:\nthe lower triangle"),
        ("cross-attention", "decoder\nstates (L, D)", "encoder output\n(S, D)",
         np.broadcast_to(pad, (L, S)), TARGET, SOURCE, "mask (L, S): source padding",
         "each target token reads\nthe real source tokens"),
    ]
    for n, (title, q_from, kv_from, mask, rows, cols, caption, note) in enumerate(panels):
        x = 0.9 + n * 7.6
        label(ax, x + 3.0, 13.6, title, weight="bold")
        _sources(ax, x, 9.6, q_from=q_from, kv_from=kv_from)
        # Q and K meet in the scores, one per (query, key) pair: the mask's grid
        arrow(ax, (x + 1.0, 9.6), (x + 2.45, 8.75), role="query")
        arrow(ax, (x + 3.0, 9.6), (x + 2.75, 8.75), role="key")
        label(ax, x + 2.6, 8.45, "scores $QK^\\top$, masked", fontsize=FONT - 1)
        cell = 0.6
        gx = x + 3.0 - mask.shape[1] * cell / 2 + 0.3
        gy = 3.6 + (5 - mask.shape[0]) * cell
        mask_grid(ax, gx, gy, mask, rows=rows, cols=cols, cell=cell)
        label(ax, x + 3.0 + 0.3, 3.25, caption, va="top", fontsize=FONT - 1)
        label(ax, x + 3.0 + 0.3, 2.5, note, va="top", fontsize=FONT - 1, style="italic")
    # legend: rows are queries, columns keys; filled may attend
    lx = 5.0
    ax.add_patch(Rectangle((lx, 0.35), 0.45, 0.45, facecolor=tint("weight", 0.55),
                           edgecolor=colour("neutral"), linewidth=0.7))
    label(ax, lx + 0.65, 0.575, "True: may attend", ha="left", fontsize=FONT - 1)
    ax.add_patch(Rectangle((lx + 4.4, 0.35), 0.45, 0.45, facecolor="white", hatch="////",
                           edgecolor=colour("neutral"), linewidth=0.7))
    label(ax, lx + 5.05, 0.575, "False: blocked (weight 0)", ha="left", fontsize=FONT - 1)
    label(ax, lx + 10.6, 0.575, "rows: queries     columns: keys", ha="left", fontsize=FONT - 1)
    return fig


def path_length():
    """The path between the first and last positions: T - 1 steps through a recurrence, 1 through self-attention."""
    T = 6
    path = "#1A1A1A"                         # the highlighted path: no role, the text colour
    fig, ax = canvas(20, 12.6)
    xs = [3.2 + 2.6 * t for t in range(T)]  # centres of the positions
    bw = 1.3
    # recurrent layer: a chain of states
    label(ax, 0.3, 12.15, "recurrent layer: a path of T $-$ 1 steps, computed one after another",
          ha="left", weight="bold")
    for t, cx in enumerate(xs):
        box(ax, cx - bw / 2, 7.1, bw, 0.8, f"$x_{t + 1}$", role="neutral")
        box(ax, cx - bw / 2, 9.3, bw, 0.9, f"$h_{t + 1}$", role="state")
        arrow(ax, (cx, 7.9), (cx, 9.3), role=path if t == 0 else "neutral",
              width=2.4 if t == 0 else 1.0)
        if t < T - 1:
            arrow(ax, (cx + bw / 2, 9.75), (xs[t + 1] - bw / 2, 9.75), role=path, width=2.4)
    label(ax, (xs[0] + xs[-1]) / 2, 10.9, "$x_1$ reaches $h_T$ through T $-$ 1 = 5 state updates,"
          " each waiting for the one before", fontsize=FONT - 1, style="italic")
    ax.plot([0.3, 19.7], [6.3, 6.3], color=colour("neutral"), linewidth=0.6, linestyle=":")
    # self-attention: every output reads every input in one step
    label(ax, 0.3, 5.75, "self-attention: a path of 1 step, all positions at once", ha="left",
          weight="bold")
    for t, cx in enumerate(xs):
        box(ax, cx - bw / 2, 0.5, bw, 0.8, f"$x_{t + 1}$", role="neutral")
        box(ax, cx - bw / 2, 3.6, bw, 0.9, f"$o_{t + 1}$", role="output")
    for i, xi in enumerate(xs):             # input i -> output t, faint except x_1 -> o_T
        for t, xt in enumerate(xs):
            if (i, t) != (0, T - 1):
                ax.plot([xi, xt], [1.3, 3.6], color=tint("neutral", 0.45), linewidth=0.7, zorder=0)
    arrow(ax, (xs[0], 1.3), (xs[-1], 3.6), role=path, width=2.4)
    label(ax, (xs[0] + xs[-1]) / 2, 4.95, "$x_1$ reaches $o_T$ through one attention weight;"
          " all T$^2$ pairs are one matrix product", fontsize=FONT - 1, style="italic")
    label(ax, 1.2, 2.45, "T$^2$\npairs", fontsize=FONT - 1, role="neutral")
    return fig


FIGURES = {
    "ch05_three_attentions": three_attentions,
    "ch05_path_length": path_length,
}
