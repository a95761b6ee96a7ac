"""Chapter 10, sections 10c and 10d: a vision transformer, and the query, keys and values
of a forecaster, a DNA classifier and a recommender.

Letters as in notation.md: image side R, patch side p_img, N = (R / p_img)^2 patches,
model width D, H heads, N_l layers; look-back T_in, horizon T_out, season length T_season.
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Polygon, Rectangle

from .style import FONT, TEXT, arrow, box, canvas, colour, label, legend, tensor, tint


def dimension(ax, x0: float, y0: float, x1: float, y1: float, text: str, *,
              side: str = "below", fontsize: float = FONT - 1) -> None:
    """A dimension line with end ticks from (x0, y0) to (x1, y1), labelled at its middle."""
    ax.plot([x0, x1], [y0, y1], color=TEXT, lw=0.9)
    if y0 == y1:                                  # horizontal: ticks up and down
        for x in (x0, x1):
            ax.plot([x, x], [y0 - 0.12, y0 + 0.12], color=TEXT, lw=0.9)
        dy = -0.18 if side == "below" else 0.18
        ax.text((x0 + x1) / 2, y0 + dy, text, ha="center", va="top" if side == "below" else "bottom",
                fontsize=fontsize, color=TEXT)
    else:                                         # vertical: ticks left and right
        for y in (y0, y1):
            ax.plot([x0 - 0.12, x0 + 0.12], [y, y], color=TEXT, lw=0.9)
        dx = -0.2 if side == "left" else 0.2
        ax.text(x0 + dx, (y0 + y1) / 2, text, ha="right" if side == "left" else "left", va="center",
                fontsize=fontsize, color=TEXT)


# =========================================================================== 10c: ViT


def vit():
    """Image -> patches -> W_e -> [CLS] + positions -> encoder -> head on [CLS]."""
    fig, ax = canvas(24, 8.7)
    legend(ax, 0.6, 8.15, ["neutral", "state", "query", "output"],
           names={"neutral": "pixels", "state": "vector of width $D$", "query": "the [CLS] token",
                  "output": "class scores"}, step=4.6)
    top, mid = 6.55, 3.4                          # y of the column titles, of the arrows
    rows_y = {"cls": 5.1, 1: 4.35, 2: 3.6, "dots": 2.95, "N": 2.1}
    cell = 0.36
    # A. the image, R x R pixels, cut into a grid of patches of side p_img (here 4 x 4 = N)
    g, side, x0, y0 = 4, 0.95, 1.0, 1.5
    for r in range(g):
        for c in range(g):
            ax.add_patch(Rectangle((x0 + c * side, y0 + (g - 1 - r) * side), side, side,
                                   facecolor=tint("neutral", 0.12), edgecolor=colour("neutral"),
                                   lw=1.0, zorder=1))
            label(ax, x0 + c * side + 0.08, y0 + (g - r) * side - 0.1, str(r * g + c + 1),
                  ha="left", va="top", fontsize=7, zorder=3)
    ax.add_patch(Polygon([(x0 + 1.2, y0 + 0.7), (x0 + 3.1, y0 + 0.7), (x0 + 2.15, y0 + 2.9)],
                         closed=True, facecolor=tint("neutral", 0.55), edgecolor="none", zorder=2))
    label(ax, x0 + g * side / 2, top + 0.55, "image, $R \\times R$ pixels")
    dimension(ax, x0, y0 + g * side + 0.3, x0 + side, y0 + g * side + 0.3, "$p_{\\mathrm{img}}$",
              side="above")
    dimension(ax, x0 - 0.3, y0, x0 - 0.3, y0 + g * side, "$R$", side="left")
    label(ax, x0 + g * side / 2, y0 - 0.35, "$N = (R\\, /\\, p_{\\mathrm{img}})^2$ patches",
          fontsize=FONT - 1, va="top")
    # B. cut and flatten: one row of C p_img^2 numbers per patch, in row-major order
    px = 6.6
    arrow(ax, (x0 + g * side + 0.15, mid), (px - 0.15, mid), text="cut,\nflatten",
          text_offset=(0, 0.15))
    for key in (1, 2, "N"):
        tensor(ax, px, rows_y[key] - cell / 2, 1, 6, role="neutral", cell=cell)
    for key, name in ((1, "1"), (2, "2"), ("N", "$N$")):
        label(ax, px - 0.12, rows_y[key], name, ha="right", fontsize=FONT - 2)
    label(ax, px + 3 * cell, rows_y["dots"], "$\\vdots$")
    label(ax, px + 3 * cell, top, "patches")
    label(ax, px + 3 * cell, 1.35, "$(N,\\ C p_{\\mathrm{img}}^2)$", fontsize=FONT - 1)
    # C. the patch embedding W_e: a linear map to D (a convolution with stride p_img)
    tx = 10.5
    arrow(ax, (px + 6 * cell + 0.15, mid), (tx - 0.15, mid), text="$\\times\\, W_e$",
          text_offset=(0, 0.12))
    label(ax, (px + 6 * cell + tx) / 2, mid - 0.3, "$(C p_{\\mathrm{img}}^2,\\ D)$",
          fontsize=FONT - 2, va="top")
    tensor(ax, tx, rows_y["cls"] - cell / 2, 1, 4, role="query", cell=cell)
    for key in (1, 2, "N"):
        tensor(ax, tx, rows_y[key] - cell / 2, 1, 4, role="state", cell=cell)
    label(ax, tx + 2 * cell, rows_y["dots"], "$\\vdots$")
    label(ax, tx + 2 * cell, top, "[CLS], patches")
    # D. plus a learned position embedding per place, p = 0 ([CLS]) ... N
    ex = 13.2
    label(ax, (tx + 4 * cell + ex) / 2, mid + 0.15, "+", fontsize=FONT + 4)
    for key in ("cls", 1, 2, "N"):
        tensor(ax, ex, rows_y[key] - cell / 2, 1, 4, role="state", cell=cell)
    label(ax, ex + 2 * cell, rows_y["dots"], "$\\vdots$")
    for key, p in (("cls", "0"), (1, "1"), (2, "2"), ("N", "N")):
        label(ax, ex + 4 * cell + 0.12, rows_y[key], f"$p={p}$", ha="left", fontsize=FONT - 2)
    label(ax, ex + 2 * cell, top, "$W_{\\mathrm{pos}}$")
    label(ax, (tx + ex + 4 * cell) / 2, 1.35, "$z_0$: $(1 + N,\\ D)$", fontsize=FONT - 1)
    # E. the encoder of chapter 8: every token gives a query, a key and a value
    bx, bw = 16.2, 4.6
    arrow(ax, (ex + 4 * cell + 0.9, mid), (bx - 0.05, mid))
    box(ax, bx, 1.2, bw, 4.5, role="state")
    label(ax, bx + bw / 2, 5.15, "Transformer encoder", weight="bold")
    label(ax, bx + bw / 2, 4.55, "$N_\\ell$ pre-norm layers, $H$ heads", fontsize=FONT - 1)
    for k, (role, text) in enumerate((("query", "query $q = z\\, W_q$"), ("key", "key $k = z\\, W_k$"),
                                      ("value", "value $v = z\\, W_v$"))):
        label(ax, bx + bw / 2, 3.85 - 0.5 * k, text, role=role, fontsize=FONT - 1)
    label(ax, bx + bw / 2, 1.75, "for each of the $1 + N$ tokens", fontsize=FONT - 1, style="italic")
    # F. the head reads the [CLS] token's final vector (row 0)
    hx = 21.55
    arrow(ax, (bx + bw + 0.05, 4.6), (hx - 0.05, 4.6), role="query")
    label(ax, hx + 0.95, top, "[CLS] row")
    box(ax, hx, 4.0, 1.9, 1.2, "LN,\n$W_{\\mathrm{head}}$", role="output", fontsize=FONT - 1)
    arrow(ax, (hx + 0.95, 3.95), (hx + 0.95, 3.05), role="output")
    tensor(ax, hx + 0.23, 2.55, 1, 4, role="output", cell=cell)
    label(ax, hx + 0.95, 2.2, "scores for\nthe classes", fontsize=FONT - 1, va="top")
    label(ax, 14.2, 0.45, "[CLS] has no pixels of its own: all it knows at the end "
          "it has read from the patches through attention", fontsize=9, style="italic")
    return fig


# =========================================================================== 10d: three fields

COL = 0.82        # width of one position's column
CELL = 0.46       # side of a key, value or weight cell
GX = 5.4          # x of the first column; row labels sit to its left


def _cx(j: float) -> float:
    """x of the centre of column j."""
    return GX + (j + 0.5) * COL


def _cells(ax, columns, y: float, role: str, values=None) -> None:
    """One cell per column in ``columns`` at height y (shaded by ``values``, 0..1, if given)."""
    for k, j in enumerate(columns):
        v = None if values is None else np.array([[values[k]]])
        tensor(ax, _cx(j) - CELL / 2, y - CELL / 2, 1, 1, role=role, cell=CELL, values=v)


def _row_label(ax, y: float, text: str, role: str | None = None) -> None:
    label(ax, GX - 0.2, y, text, ha="right", fontsize=FONT - 1, role=role)


def _outline(ax, j: float, y: float, h: float = CELL + 0.14) -> None:
    """A dark frame around the cell of column j at height y (the largest weights)."""
    ax.add_patch(Rectangle((_cx(j) - CELL / 2 - 0.07, y - h / 2), CELL + 0.14, h, fill=False,
                           edgecolor=TEXT, lw=1.4, zorder=4))


def _softmax(scores) -> np.ndarray:
    w = np.exp(np.asarray(scores, dtype=float))
    return w / w.sum()


def forecast_panel(ax, y_top: float) -> None:
    """Query: the step to forecast; keys: past steps (phase, recency); values: past values."""
    t_season, seasons, t_out = 4, 3, 4
    t_in = t_season * seasons
    past, future = range(t_in), [t_in + 0.35 + i for i in range(t_out)]
    label(ax, 0.5, y_top, "Forecasting: the step to forecast queries the look-back window",
          ha="left", fontsize=FONT + 1, weight="bold")
    # the series: a season of t_season steps, repeated, plus noise
    shape = np.array([0.1, 0.85, 0.45, 0.0])
    noise = np.array([0.08, -0.05, 0.1, 0.0, -0.07, 0.06, -0.1, 0.05, 0.04, -0.08, 0.02, 0.07])
    y_vals = np.tile(shape, seasons) + noise
    base, height = y_top - 1.95, 1.0
    ys = base + height * y_vals
    ax.plot([_cx(j) for j in past], ys, color=colour("value"), lw=1.4, marker="o", ms=4)
    ax.plot([_cx(j) for j in future], base + height * shape, color=colour("output"), lw=1.4,
            ls="--", marker="o", ms=4, mfc="white")
    _row_label(ax, base + 0.45, "values $v_j = y_j$", role="value")
    dimension(ax, _cx(4) - COL / 2, y_top - 0.8, _cx(7) + COL / 2, y_top - 0.8,
              "season $T_{\\mathrm{season}}$", side="above")
    # keys: the past steps; the query: one future step i
    yk = y_top - 2.55
    _cells(ax, past, yk, "key")
    _row_label(ax, yk, "keys $k_j = [\\phi(t_j);\\ r_j]$", role="key")
    i = 1                                          # the step to forecast, 2 steps ahead
    for k, x in enumerate(future):
        tensor(ax, _cx(x) - CELL / 2, yk - CELL / 2, 1, 1, role="query" if k == i else "neutral",
               cell=CELL, values=None if k == i else np.array([[0.0]]))
    label(ax, _cx(future[-1]) + 0.55, yk, "query $q_i = [c \\odot \\phi(t_i);\\ \\alpha]$",
          ha="left", fontsize=FONT - 1, role="query")
    # the weights of that query: the same phase on each past season, recent ones a little more
    scores = [4.0 + 0.35 * (j // t_season) if j % t_season == i % t_season else 0.0 for j in past]
    w = _softmax(scores)
    yw = y_top - 3.2
    _cells(ax, past, yw, "weight", values=w / w.max())
    for j in past:
        if j % t_season == i % t_season:
            _outline(ax, j, yw)
    _row_label(ax, yw, "weights $a_{ij}$")
    ax.plot([_cx(future[i])], [base + height * shape[i]], "o", color=colour("output"), ms=7, zorder=5)
    label(ax, _cx(future[-1]) + 0.55, base + height * shape[i] + 0.05,
          "output $\\hat y_i = \\Sigma_j\\, a_{ij}\\, y_j$", ha="left", fontsize=FONT - 1, role="output")
    yd = y_top - 3.8
    dimension(ax, _cx(0) - COL / 2, yd, _cx(t_in - 1) + COL / 2, yd, "look-back $T_{\\mathrm{in}}$")
    dimension(ax, _cx(future[0]) - COL / 2, yd, _cx(future[-1]) + COL / 2, yd,
              "horizon $T_{\\mathrm{out}}$")


def dna_panel(ax, y_top: float) -> None:
    """Query: one learned vector; keys and values: convolutional features of each position."""
    bases = "GCATATAATGTTGG"
    start, n = 3, len(bases)
    label(ax, 0.5, y_top, "DNA: one learned query looks for the motif along the sequence",
          ha="left", fontsize=FONT + 1, weight="bold")
    yb = y_top - 0.85
    for j, b in enumerate(bases):
        box(ax, _cx(j) - COL / 2 + 0.05, yb - 0.28, COL - 0.1, 0.56, b, role="neutral",
            fontsize=FONT - 1, weight="bold" if start <= j < start + 6 else "normal")
    ax.add_patch(Rectangle((_cx(start) - COL / 2, yb - 0.36), 6 * COL, 0.72, fill=False,
                           edgecolor=TEXT, lw=1.4, zorder=4))
    label(ax, _cx(n - 1) + 0.55, yb, "framed: the motif TATAAT", ha="left", fontsize=FONT - 1)
    _row_label(ax, yb, "sequence, $T$ bases")
    rows = (("state", "features $h_j$ (7 bases around $j$)"), ("key", "keys $k_j = h_j W_k$"),
            ("value", "values $v_j = h_j W_v$"))
    for r, (role, text) in enumerate(rows):
        y = y_top - 1.6 - 0.6 * r
        _cells(ax, range(n), y, role)
        _row_label(ax, y, text, role=None if role == "state" else role)
    yw = y_top - 3.55
    scores = [0.0] * n
    for j, s in zip(range(start - 1, start + 7), (0.8, 2.5, 3.6, 4.2, 3.9, 3.2, 2.2, 0.9)):
        scores[j] = s
    w = _softmax(scores)
    _cells(ax, range(n), yw, "weight", values=w / w.max())
    _outline(ax, int(np.argmax(w)), yw)
    _row_label(ax, yw, "weights $a_j$")
    qx = _cx(n - 1) + 0.55
    box(ax, qx, y_top - 2.51, 4.6, 0.62, "query $q$: one learned vector", role="query",
        fontsize=FONT - 1)
    box(ax, qx, yw - 0.31, 4.6, 0.62, "$\\Sigma_j\\, a_j v_j$ → motif? (logit)", role="output",
        fontsize=FONT - 1)


def recommend_panel(ax, y_top: float) -> None:
    """Query: the current position; keys and values: the earlier purchases (causal mask)."""
    items = ["e17", "e1", "P4", "e37", "e21", "e16", "e39", "A4", "P15", "e19"]
    t = 6                                          # the current position (0-based): it predicts t + 1
    label(ax, 0.5, y_top, "Recommendation: the latest purchase queries the earlier ones",
          ha="left", fontsize=FONT + 1, weight="bold")
    yb = y_top - 0.85
    scale = 1.6                                    # item boxes are wider than a column
    for j, name in enumerate(items):
        x = GX + j * COL * scale
        future = j > t
        box(ax, x + 0.06, yb - 0.28, COL * scale - 0.12, 0.56, name,
            role="query" if j == t else "neutral", fontsize=FONT - 1, dashed=future,
            textcolor=colour("neutral") if future else TEXT)
    _row_label(ax, yb, "purchases, in order")
    cols = [(j * scale + (scale - 1) / 2) for j in range(t + 1)]
    for r, (role, text) in enumerate((("key", "keys: earlier purchases"),
                                      ("value", "values: the same purchases"))):
        y = y_top - 1.6 - 0.6 * r
        _cells(ax, cols, y, role)
        _row_label(ax, y, text, role=role)
    yw = y_top - 2.85
    w = _softmax([0.2, 0.1, 4.5, 0.3, 0.0, 0.2, 0.6])
    _cells(ax, cols, yw, "weight", values=w / w.max())
    _outline(ax, cols[2], yw)
    _row_label(ax, yw, "weights of the query at $t$")
    x_mask = GX + (t + 1) * COL * scale
    label(ax, x_mask + 0.1, y_top - 1.9, "later purchases:\nhidden by the\ncausal mask", ha="left",
          va="center", fontsize=FONT - 1, style="italic", role="neutral")
    label(ax, GX + len(items) * COL * scale + 0.3, yb, "query: the purchase\nat position $t$",
          ha="left", fontsize=FONT - 1, role="query")
    box(ax, x_mask + 2.6, yw - 0.31, 5.6, 0.62, "output → item scores: A4 next",
        role="output", fontsize=FONT - 1)
    arrow(ax, (_cx(cols[-1]) + CELL / 2 + 0.1, yw), (x_mask + 2.55, yw), role="output")


def three_fields():
    """10d: what the query, the keys and the values are in each of the three fields."""
    fig, ax = canvas(24, 16.1)
    legend(ax, 0.6, 15.55, ["query", "key", "value", "weight", "output", "state"],
           names={"state": "features $h_j$"}, step=2.9)
    forecast_panel(ax, 14.4)
    dna_panel(ax, 9.1)
    recommend_panel(ax, 3.8)
    return fig


FIGURES = {"ch10c_vit": vit, "ch10d_three_fields": three_fields}
