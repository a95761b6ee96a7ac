"""Chapter 6: multi-head attention, split -> attend per head -> concat -> W_o."""

from __future__ import annotations

import numpy as np

from .style import FONT, arrow, box, canvas, colour, label, legend, tensor


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _head_blocks(ax, x: float, y: float, rows: int, heads: int, per_head: int, cell: float,
                 role: str) -> None:
    """Thick lines between the column blocks of a (rows, heads * per_head) grid, numbered on top."""
    for h in range(1, heads):
        xs = x + h * per_head * cell
        ax.plot([xs, xs], [y, y + rows * cell], color=colour(role), linewidth=2.6,
                solid_capstyle="butt")
    for h in range(heads):
        label(ax, x + (h + 0.5) * per_head * cell, y + rows * cell + 0.25, f"{h + 1}",
              fontsize=FONT - 2, va="bottom")


def split_attend_concat():
    """(B, T, D) -> H heads (B, H, T, E) -> weights (B, H, T, S) -> concat (B, T, H*E) -> W_o."""
    fig, ax = canvas(24, 12.8)
    T, H, E, cell = 4, 3, 2, 0.4
    D = H * E
    grid_h = T * cell
    row_y = [7.2, 4.4, 1.6]                 # bottom of the grids of heads 1, 2, 3
    mid = row_y[1] + grid_h / 2             # vertical centre of the figure's rows
    rng = np.random.default_rng(6)

    # the input, and the projections that are split into heads
    x_in = 0.4
    tensor(ax, x_in, row_y[1], T, D, role="neutral", cell=cell)
    label(ax, x_in + D * cell / 2, row_y[1] - 0.3, "$X$\n(B, T, D)", va="top")
    box(ax, 3.3, mid - 1.25, 2.8, 2.5, "$Q = X W_q$\n$K = X W_k$\n$V = X W_v$", role="neutral")
    label(ax, 4.7, mid - 1.55, "(B, T, D) each;\nreshape D into\n(H, E), heads\nnext to B",
          fontsize=FONT - 1, va="top")
    arrow(ax, (x_in + D * cell, mid), (3.3, mid), role="neutral")

    x_q, x_a, x_o = 7.0, 10.8, 13.9
    for h, y in enumerate(row_y):
        c = y + grid_h / 2
        sub = f"{h + 1}"
        for k, (name, role) in enumerate((("Q", "query"), ("K", "key"), ("V", "value"))):
            tensor(ax, x_q + k * 1.0, y, T, E, role=role, cell=cell)
            label(ax, x_q + k * 1.0 + E * cell / 2, y + grid_h + 0.3, f"${name}_{sub}$", role=role)
        arrow(ax, (6.1, mid), (x_q - 0.05, c), role="neutral")
        weights = _softmax_rows(rng.normal(0, 1.4, (T, T)))
        tensor(ax, x_a, y, T, T, role="weight", cell=cell, values=weights / weights.max())
        label(ax, x_a + T * cell / 2, y + grid_h + 0.3, f"$A_{sub}$", role="weight")
        arrow(ax, (x_q + 2 * 1.0 + E * cell + 0.05, c), (x_a - 0.05, c), role="weight")
        tensor(ax, x_o, y, T, E, role="output", cell=cell)
        label(ax, x_o + E * cell / 2, y + grid_h + 0.3, f"$A_{sub} V_{sub}$", role="output")
        arrow(ax, (x_a + T * cell + 0.05, c), (x_o - 0.05, c), role="output")
    label(ax, x_q + 1.4, row_y[2] - 0.3, "(B, H, T, E)", va="top")
    label(ax, x_a + T * cell / 2, row_y[2] - 0.3, "(B, H, T, S)", va="top")
    label(ax, x_o + E * cell / 2, row_y[2] - 0.3, "(B, H, T, E)", va="top")

    # concatenate the heads' outputs, then project with W_o
    x_c = 15.9
    tensor(ax, x_c, row_y[1], T, D, role="output", cell=cell)
    _head_blocks(ax, x_c, row_y[1], T, H, E, cell, "output")
    label(ax, x_c + D * cell / 2, row_y[1] - 0.3, "(B, T, H·E)", va="top")
    for y in row_y:
        arrow(ax, (x_o + E * cell + 0.05, y + grid_h / 2), (x_c - 0.05, mid), role="output")
    box(ax, 18.8, mid - 0.8, 1.8, 1.6, "$\\times\\, W_o$\n(H·E, D)", role="output")
    arrow(ax, (x_c + D * cell, mid), (18.8, mid), role="output")
    x_out = 21.2
    tensor(ax, x_out, row_y[1], T, D, role="output", cell=cell)
    label(ax, x_out + D * cell / 2, row_y[1] - 0.3, "output\n(B, T, D)", va="top")
    arrow(ax, (20.6, mid), (x_out - 0.05, mid), role="output")
    label(ax, x_c + D * cell / 2 + 0.2, row_y[2] + 0.4,
          "the heads' outputs\nside by side,\nnot their weights", fontsize=FONT - 1, style="italic")

    # the four steps, over their columns
    top = 10.9
    for x, text in ((1.6, "input"), (6.0, "1. project, split into H heads"),
                    (12.3, "2. attend in each head"), (17.1, "3. concat"),
                    (21.2, "4. project with $W_o$")):
        label(ax, x, top, text, fontsize=FONT, weight="bold")
    label(ax, 12.3, top - 0.65, "$A_h = \\mathrm{softmax}(Q_h K_h^\\top / \\sqrt{E})$",
          fontsize=FONT - 1)
    label(ax, 6.0, top - 0.65, "$E = D / H$ columns per head", fontsize=FONT - 1)
    legend(ax, 0.6, 12.1, ["query", "key", "value", "weight", "output"])
    return fig


FIGURES = {"ch06_split_attend_concat": split_attend_concat}
