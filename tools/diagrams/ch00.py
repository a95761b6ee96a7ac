"""Chapter 0: attention's three steps, with a query, keys and values."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from .style import FONT, TEXT, arrow, box, canvas, colour, label, legend, tensor, tint

# One query against S = 4 keys: scores e, and their softmax a (rounded to 2 places).
SCORES = np.array([0.9, 2.0, -0.2, 0.4])
WEIGHTS = np.exp(SCORES) / np.exp(SCORES).sum()


def column(ax, x: float, top: float, texts: list[str], *, role: str, w: float = 1.3,
           h: float = 0.7, shade: np.ndarray | None = None, fontsize: float = FONT - 1) -> list[float]:
    """A vertical stack of cells with a number in each, top edge at ``top``.

    ``shade`` (one value in 0..1 per cell) fills each cell by its value; without it
    every cell has the role's light fill. Returns the y of each cell's centre.
    """
    centres = []
    for i, text in enumerate(texts):
        y = top - (i + 1) * h
        face = tint(role, 0.3) if shade is None else tint(role, 0.1 + 0.9 * float(shade[i]))
        ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor=colour(role), linewidth=0.9))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=TEXT)
        centres.append(y + h / 2)
    return centres


def three_steps():
    """score -> softmax -> weighted sum (the context c), for one query over S = 4 keys, row by row."""
    fig, ax = canvas(22, 8.4)
    S, E, Ev, cell = len(SCORES), 3, 2, 0.7
    top = 4.6                                  # top edge of the S rows
    rows = [top - (i + 0.5) * cell for i in range(S)]
    bottom = top - S * cell
    box_lo, box_hi = bottom - 0.3, top + 0.3   # the step boxes span the rows

    # inputs: the keys (one row per source position) and, above step 1, the query
    tensor(ax, 0.6, bottom, S, E, role="key", cell=cell, label="keys $K$ (S, E)")
    for i, y in enumerate(rows):
        label(ax, 0.35, y, f"{i + 1}", fontsize=FONT - 2, ha="right")
    label(ax, 0.35, top + 0.35, "$i$", fontsize=FONT - 1, ha="right")

    # step 1: score each key against the query, one row at a time
    b1 = 3.4
    box(ax, b1, box_lo, 2.9, box_hi - box_lo, "1. score\n\n$e_i = q \\cdot k_i \\,/ \\sqrt{E}$",
        role="weight", fontsize=FONT - 0.5)
    tensor(ax, b1 + 1.45 - E * cell / 2, box_hi + 1.0, 1, E, role="query", cell=cell,
           label="query $q$ (E)", label_side="above")
    arrow(ax, (b1 + 1.45, box_hi + 0.95), (b1 + 1.45, box_hi + 0.02), role="query")
    for y in rows:
        arrow(ax, (0.6 + E * cell, y), (b1, y), role="key")
    xe = b1 + 2.9 + 0.65
    for y in rows:
        arrow(ax, (b1 + 2.9, y), (xe, y), role="weight")
    column(ax, xe, top, [f"{e:.1f}" for e in SCORES], role="weight")
    label(ax, xe + 0.65, bottom - 0.3, "scores $e$ (S)\nany real numbers", va="top")

    # step 2: the softmax turns the whole column of scores into weights
    b2 = xe + 1.3 + 0.65
    for y in rows:
        arrow(ax, (xe + 1.3, y), (b2, y), role="weight")
    box(ax, b2, box_lo, 2.9, box_hi - box_lo, "2. normalise\n\n$a = \\mathrm{softmax}(e)$",
        role="weight", fontsize=FONT - 0.5)
    xa = b2 + 2.9 + 0.65
    for y in rows:
        arrow(ax, (b2 + 2.9, y), (xa, y), role="weight")
    column(ax, xa, top, [f"{a:.2f}" for a in WEIGHTS], role="weight", shade=WEIGHTS / WEIGHTS.max())
    label(ax, xa + 0.65, bottom - 0.3, "weights $a$ (S)\n$a_i \\geq 0$, $\\sum_i a_i = 1$",
          va="top")

    # step 3: weight each value by its a_i and add them up
    xv = xa + 1.3 + 0.75
    for y in rows:
        label(ax, xa + 1.3 + 0.375, y, "×", fontsize=FONT)
    tensor(ax, xv, bottom, S, Ev, role="value", cell=cell, label="values $V$ (S, Ev)",
           label_side="above")
    b3 = xv + Ev * cell + 0.65
    for y in rows:
        arrow(ax, (xv + Ev * cell, y), (b3, y), role="value")
    box(ax, b3, box_lo, 2.5, box_hi - box_lo, "3. sum\n\n$c = \\sum_i a_i v_i$",
        role="output", fontsize=FONT - 0.5)
    mid = (top + bottom) / 2
    xo = b3 + 2.5 + 0.65
    arrow(ax, (b3 + 2.5, mid), (xo, mid), role="output")
    tensor(ax, xo, mid - cell / 2, 1, Ev, role="output", cell=cell)
    label(ax, xo + Ev * cell / 2, mid - cell / 2 - 0.25, "context $c$\n(Ev)", va="top")

    legend(ax, 0.6, 7.8, ["query", "key", "value", "weight", "output"], step=2.4)
    label(ax, 21.4, 6.3, "each value counts in proportion\nto how well its key matches the query",
          style="italic", ha="right")
    return fig


def outline_row(ax, x: float, y: float, rows: int, cols: int, row: int, cell: float) -> None:
    """A dark frame around one row of a tensor drawn by ``tensor`` at (x, y)."""
    ax.add_patch(Rectangle((x - 0.06, y + (rows - 1 - row) * cell - 0.06), cols * cell + 0.12,
                           cell + 0.12, facecolor="none", edgecolor=TEXT, linewidth=1.8))


def matrix_form():
    """C = softmax(Q K^T / sqrt(E)) V for L = 3 queries and S = 4 keys: the shapes, row t framed."""
    fig, ax = canvas(22, 5.6)
    L, S, E, Ev, cell, t = 3, 4, 3, 2, 0.7, 1
    mid = 2.6                                    # every matrix is centred on this line
    A = np.array([[0.62, 0.2, 0.1, 0.08], [0.1, 0.7, 0.05, 0.15], [0.25, 0.05, 0.15, 0.55]])

    def place(x, rows, cols, role, name, values=None):
        y = mid - rows * cell / 2
        tensor(ax, x, y, rows, cols, role=role, cell=cell, values=values, label=name)
        return x + cols * cell, y

    def op(x, text):
        label(ax, x, mid, text, fontsize=FONT + 4)

    gap = 1.0                                    # room for an operator between matrices

    x_q = 1.9
    end, y_q = place(x_q, L, E, "query", "$Q$ (L, E)")
    op(end + gap / 2, "×")
    end, _ = place(end + gap, E, S, "key", "$K^\\top$ (E, S)")
    op(end + gap / 2, "=")
    x_e = end + gap
    end, y_e = place(x_e, L, S, "weight", "scores (L, S)\n$Q K^\\top / \\sqrt{E}$")
    arrow(ax, (end + 0.2, mid), (end + 2.2, mid), role="weight", text="softmax\nof each row",
          text_offset=(0, 0.35))
    x_a = end + 2.4
    end, y_a = place(x_a, L, S, "weight", "weights $A$ (L, S)\nrows sum to 1", values=A / A.max())
    op(end + gap / 2, "×")
    end, _ = place(end + gap, S, Ev, "value", "$V$ (S, Ev)")
    op(end + gap / 2, "=")
    x_c = end + gap
    end, y_c = place(x_c, L, Ev, "output", "$C$ (L, Ev)")
    for x, y, cols in ((x_q, y_q, E), (x_e, y_e, S), (x_a, y_a, S), (x_c, y_c, Ev)):
        outline_row(ax, x, y, L, cols, t, cell)
    y_t = mid + L * cell / 2 - (t + 0.5) * cell
    label(ax, x_q - 0.25, y_t, "row $t$", ha="right")
    legend(ax, 0.6, 5.1, ["query", "key", "value", "weight", "output"], step=2.4)
    return fig


FIGURES = {"ch00_three_steps": three_steps, "ch00_matrix_form": matrix_form}
