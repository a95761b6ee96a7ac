"""Chapter 4: soft against hard selection, the REINFORCE loop, the straight-through trick."""

from __future__ import annotations

import numpy as np

from .style import FONT, arrow, box, canvas, colour, label, tensor

WEIGHTS = np.array([0.12, 0.46, 0.08, 0.26, 0.08])  # a, one query over S = 5 keys
PICK = 1  # the sampled index (0-based row), i = 2 in the book's 1-based positions


def _selection_row(ax, y, *, hard: bool) -> None:
    """One row of soft_vs_hard: weights a, (a pick), values V, the sum or the read, output o."""
    S, Ev, cell = len(WEIGHTS), 3, 0.55
    top = y + S * cell                      # y of the grids' top edge
    row_y = [top - (i + 0.5) * cell for i in range(S)]  # centre of row i
    wx, px, vx = 2.7, 7.4, 9.0              # left edges: weights, one-hot pick, values
    # the weights a (S), shaded by value, each labelled
    tensor(ax, wx, y, S, 1, role="weight", cell=cell, values=WEIGHTS[:, None] / WEIGHTS.max())
    for i, a in enumerate(WEIGHTS):
        label(ax, wx - 0.15, row_y[i], f"$a_{i + 1}$ = {a:.2f}", ha="right", fontsize=FONT - 1)
    label(ax, wx + cell / 2, y - 0.35, "weights $a$ (S)", va="top", fontsize=FONT - 1)
    if hard:
        # sample one index from a, as a one-hot column beside the values
        box(ax, 4.1, y + 0.575, 2.3, 1.6, "sample\n$i \\sim a$", role="weight")
        arrow(ax, (wx + cell, y + 1.375), (4.1, y + 1.375), role="weight")
        onehot = np.zeros((S, 1))
        onehot[PICK] = 1.0
        tensor(ax, px, y, S, 1, role="weight", cell=cell, values=onehot)
        for i in range(S):
            label(ax, px + cell / 2, row_y[i], "1" if i == PICK else "0", fontsize=FONT - 1)
        label(ax, px + cell / 2, top + 0.3, "one-hot pick", va="bottom", fontsize=FONT - 1)
        arrow(ax, (6.4, y + 1.375), (px, row_y[PICK]), role="weight")
        label(ax, 5.25, y + 0.25, f"here $i$ = {PICK + 1}", fontsize=FONT - 1, style="italic")
    else:
        # every weight scales its value's row
        for i, a in enumerate(WEIGHTS):
            arrow(ax, (wx + cell, row_y[i]), (vx, row_y[i]), role="weight", width=0.6 + 6 * a)
        label(ax, 5.9, top + 0.35, "every $a_i$ scales its $v_i$", fontsize=FONT - 1, style="italic")
    # the values V (S, Ev): in hard attention only the picked row is read
    for i in range(S):
        read = (not hard) or i == PICK
        tensor(ax, vx, row_y[i] - cell / 2, 1, Ev, role="value" if read else "neutral", cell=cell,
               values=None if read else np.full((1, Ev), 0.0))
    label(ax, vx + Ev * cell / 2, y - 0.35, "values $V$ (S, Ev)", va="top", fontsize=FONT - 1)
    # combine, then the output o (Ev)
    cx, cy = 13.4, y + S * cell / 2
    ox = 18.0
    if hard:
        arrow(ax, (vx + Ev * cell, row_y[PICK]), (ox, cy), role="value", width=2.6)
        label(ax, 14.6, row_y[PICK] + 0.1, "read $v_i$ only", va="bottom", fontsize=FONT - 1)
        for i in range(S):
            if i != PICK:
                label(ax, vx + Ev * cell + 0.2, row_y[i], "not read", ha="left",
                      fontsize=FONT - 1, role="neutral", style="italic")
        text = "$o = v_i$"
    else:
        box(ax, cx, cy - 0.6, 2.6, 1.2, "$o = \\sum_i a_i v_i$", role="output")
        for i, a in enumerate(WEIGHTS):
            arrow(ax, (vx + Ev * cell, row_y[i]), (cx, cy + (2 - i) * 0.22), role="value",
                  width=0.6 + 6 * a)
        arrow(ax, (cx + 2.6, cy), (ox, cy), role="output")
        text = "weighted average"
    tensor(ax, ox, cy - cell / 2, 1, Ev, role="output", cell=cell)
    label(ax, ox + Ev * cell / 2, cy - 0.55, f"output $o$ (Ev)\n{text}", va="top", fontsize=FONT - 1)


def soft_vs_hard():
    """Soft attention averages every value; hard attention samples one index and reads that value."""
    fig, ax = canvas(20.6, 13.0)
    label(ax, 0.3, 12.5, "soft attention: a weighted average of all values", ha="left",
          weight="bold")
    label(ax, 0.3, 11.85, "reads all S values; $o$ moves smoothly with the scores, so gradients"
          " reach the query and keys", ha="left", fontsize=FONT - 1)
    _selection_row(ax, 7.9, hard=False)
    ax.plot([0.3, 20.3], [6.6, 6.6], color=colour("neutral"), linewidth=0.6, linestyle=":")
    label(ax, 0.3, 6.05, "hard attention: sample one index from the weights", ha="left",
          weight="bold")
    label(ax, 0.3, 5.4, "reads one value; $o$ jumps when the pick changes, so no gradient"
          " reaches the query and keys", ha="left", fontsize=FONT - 1)
    _selection_row(ax, 1.0, hard=True)
    return fig


def reinforce_loop():
    """One REINFORCE step: sample, loss, baseline, advantage, score-function gradient."""
    fig, ax = canvas(20, 10.2)
    w, h = 4.8, 1.9
    top, bottom = 7.6, 2.4
    left, mid, right = 0.4, 7.6, 14.8
    # forward, left to right along the top
    box(ax, left, top, w, h, "1. weights\n$a = \\mathrm{softmax}(e)$", role="weight")
    box(ax, mid, top, w, h, "2. sample a pick\n$i \\sim a$", role="weight")
    box(ax, right, top, w, h, "3. read $v_i$, classify:\nloss $\\mathcal{L}_i$", role="output")
    arrow(ax, (left + w, top + h / 2), (mid, top + h / 2), role="weight")
    arrow(ax, (mid + w, top + h / 2), (right, top + h / 2), role="weight", text="$i$")
    # the learning signal, right to left along the bottom
    box(ax, right, bottom, w, h, "4. baseline $b$, a moving\naverage of the loss:\n"
        "$b \\leftarrow 0.9\\,b + 0.1\\,\\mathcal{L}_i$", role="neutral", fontsize=FONT - 0.5)
    box(ax, mid, bottom, w, h, "5. advantage\n$b - \\mathcal{L}_i$", role="neutral")
    box(ax, left, bottom, w, h, "6. gradient estimate\n"
        "$\\hat g = (\\mathcal{L}_i - b)\\,\\nabla \\log a_i$", role="neutral", fontsize=FONT - 0.5,
        weight="bold")
    arrow(ax, (right + 1.0, top), (mid + w - 0.6, bottom + h), role="output",
          text="$\\mathcal{L}_i$", text_offset=(-0.5, -0.1))
    arrow(ax, (right + w - 1.0, top), (right + w - 1.0, bottom + h), role="output",
          text="$\\mathcal{L}_i$", text_offset=(0.35, -0.25))
    arrow(ax, (right, bottom + h / 2), (mid + w, bottom + h / 2), role="neutral", text="$b$")
    arrow(ax, (mid, bottom + h / 2), (left + w, bottom + h / 2), role="neutral")
    # close the loop: the step changes the scores
    arrow(ax, (left + w / 2, bottom + h), (left + w / 2, top), role="neutral", dashed=True, width=1.6)
    label(ax, left + w / 2 + 0.3, (top + bottom + h) / 2,
          "step against $\\hat g$:\nthe scoring parameters\nmove, and with them $e$", ha="left",
          fontsize=FONT - 1)
    label(ax, 10.0, 1.45, "a pick with a loss below the baseline becomes more likely, one above it"
          " less likely", fontsize=FONT - 1, style="italic")
    label(ax, 10.0, 0.65, "$\\mathbb{E}_{i \\sim a}[\\hat g] = \\nabla J$ for every $b$ that does not"
          " depend on $i$; a good $b$ makes $\\hat g$ less noisy", fontsize=FONT - 1)
    return fig


def straight_through():
    """Straight-through Gumbel-softmax: a one-hot pick forward, a soft sample's gradient backward."""
    fig, ax = canvas(20, 9.4)
    S, cell = 5, 0.5
    fwd, bwd = 5.2, 0.9                      # bottom edges of the two lanes' boxes
    # scores, plus noise
    y0 = 3.05
    tensor(ax, 0.6, y0, S, 1, role="weight", cell=cell,
           values=np.array([[0.3], [0.9], [0.2], [0.6], [0.2]]))
    label(ax, 0.6 + cell / 2, y0 - 0.3, "$\\log a$ (S)", va="top", fontsize=FONT - 1)
    box(ax, 1.9, y0 + 0.45, 2.9, 1.6, "add Gumbel\nnoise $\\gamma_i$", role="neutral")
    arrow(ax, (0.6 + cell, y0 + 1.25), (1.9, y0 + 1.25), role="weight")
    # forward lane: the exact pick
    box(ax, 6.3, fwd, 4.4, 1.6, "forward: the exact pick\n$\\arg\\max_i(\\log a_i + \\gamma_i)$",
        role="weight", fontsize=FONT - 0.5)
    arrow(ax, (4.8, y0 + 1.6), (6.3, fwd + 0.8), role="weight")
    onehot = np.zeros((S, 1))
    onehot[1] = 1.0
    cx = 11.7
    tensor(ax, cx, fwd - 0.45, S, 1, role="weight", cell=cell, values=onehot)
    label(ax, cx + cell / 2, fwd - 0.45 + S * cell + 0.15, "one-hot $w$", va="bottom",
          fontsize=FONT - 1)
    arrow(ax, (10.7, fwd + 0.8), (cx, fwd + 0.8), role="weight")
    box(ax, 13.6, fwd, 5.8, 1.6, "read $o = v_i$, classify:\nloss $\\mathcal{L}$", role="output")
    arrow(ax, (cx + cell, fwd + 0.8), (13.6, fwd + 0.8), role="weight")
    # backward lane: the relaxation whose gradient is used
    box(ax, 6.3, bwd, 4.4, 1.6, "backward: soft sample\n$y = \\mathrm{softmax}((\\log a + \\gamma)/\\tau)$",
        role="neutral", fontsize=FONT - 1, dashed=True)
    arrow(ax, (4.8, y0 + 0.9), (6.3, bwd + 0.8), role="neutral", dashed=True)
    soft = np.array([[0.15], [0.55], [0.05], [0.2], [0.05]])
    tensor(ax, cx, bwd - 0.45, S, 1, role="neutral", cell=cell, values=soft / soft.max())
    label(ax, cx + cell / 2, bwd - 0.6, "$y$", va="top", fontsize=FONT - 1)
    # the gradient: from the loss to y in place of w, then back to the scores
    arrow(ax, (15.4, fwd), (cx + cell + 0.05, bwd + 0.8), role="neutral", dashed=True)
    label(ax, 14.9, 3.2, "$\\partial \\mathcal{L} / \\partial w$, used\nas if it were "
          "$\\partial \\mathcal{L} / \\partial y$", ha="left", fontsize=FONT - 1)
    arrow(ax, (cx, bwd + 0.8), (10.7, bwd + 0.8), role="neutral", dashed=True)
    arrow(ax, (6.3, bwd + 0.4), (0.6 + cell / 2, y0 - 0.8), role="neutral", dashed=True, curve=-0.2)
    label(ax, 2.3, 0.55, "gradient to\nthe scores", fontsize=FONT - 1)
    label(ax, 16.5, 1.6, "low variance, but biased:\nthe gradient of a different function",
          fontsize=FONT - 1, style="italic")
    label(ax, 10.0, 8.75, "solid: the forward pass        dashed: where the gradient flows",
          fontsize=FONT - 1)
    return fig


FIGURES = {
    "ch04_soft_vs_hard": soft_vs_hard,
    "ch04_reinforce_loop": reinforce_loop,
    "ch04_straight_through": straight_through,
}
