"""Shared drawing pieces for the concept figures: one visual language for the book.

Coordinates are in centimetres-like "units" on an equal-aspect canvas (one unit is
0.4 inch), so a box of width 2 is the same size in every figure. Colours come from
:data:`attention_course.viz.PALETTE` by role: ``"query"``, ``"key"``, ``"value"``,
``"output"``, ``"weight"``, ``"state"``, ``"neutral"``. Figures have a white
background, so they stay legible on the theme's dark page.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

from attention_course.viz import PALETTE  # noqa: E402

UNIT = 0.4  # inches per unit
FONT = 10
TEXT = "#1A1A1A"
RC = {
    "font.family": "DejaVu Sans",
    "font.size": FONT,
    "mathtext.fontset": "dejavusans",
    "svg.fonttype": "path",     # glyphs as paths: the figure looks the same without our fonts
    "svg.hashsalt": "attention-course",  # deterministic ids, so regenerating changes no byte
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def colour(role: str | None) -> str:
    """The palette colour of a role (a hex colour passes through; None is neutral)."""
    if role is None:
        return PALETTE["neutral"]
    return PALETTE.get(role, role)


def tint(role: str | None, amount: float = 0.22) -> tuple[float, float, float]:
    """A light fill of the role's colour: ``amount`` of the colour, the rest white."""
    r, g, b = mcolors.to_rgb(colour(role))
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


def canvas(width: float, height: float) -> tuple[plt.Figure, plt.Axes]:
    """A blank figure ``width`` x ``height`` units, origin at the bottom left."""
    with plt.rc_context(RC):
        fig = plt.figure(figsize=(width * UNIT, height * UNIT))
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str = "", *,
        role: str | None = None, filled: bool = True, fontsize: float = FONT,
        dashed: bool = False, textcolor: str = TEXT, weight: str = "normal") -> FancyBboxPatch:
    """A rounded box with its lower-left corner at (x, y), outlined in the role's colour."""
    patch = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.15",
                           linewidth=1.4, edgecolor=colour(role),
                           facecolor=tint(role) if filled else "white",
                           linestyle="--" if dashed else "-")
    ax.add_patch(patch)
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=textcolor, fontweight=weight)
    return patch


def tensor(ax: plt.Axes, x: float, y: float, rows: int, cols: int, *, role: str | None = None,
           cell: float = 0.45, values: np.ndarray | None = None, label: str = "",
           label_side: str = "below", fontsize: float = FONT) -> tuple[float, float]:
    """A rows x cols grid of cells (a matrix), lower-left at (x, y); returns its (w, h).

    With ``values`` (rows, cols) in 0..1, each cell is shaded by its value (a weight
    matrix); otherwise every cell has the role's light fill.
    """
    for i in range(rows):
        for j in range(cols):
            if values is None:
                face = tint(role, 0.35)
            else:
                face = tint(role, 0.08 + 0.85 * float(values[i, j]))
            ax.add_patch(Rectangle((x + j * cell, y + (rows - 1 - i) * cell), cell, cell,
                                   facecolor=face, edgecolor=colour(role), linewidth=0.8))
    w, h = cols * cell, rows * cell
    if label:
        if label_side == "below":
            ax.text(x + w / 2, y - 0.25, label, ha="center", va="top", fontsize=fontsize, color=TEXT)
        elif label_side == "above":
            ax.text(x + w / 2, y + h + 0.2, label, ha="center", va="bottom", fontsize=fontsize, color=TEXT)
        elif label_side == "left":
            ax.text(x - 0.2, y + h / 2, label, ha="right", va="center", fontsize=fontsize, color=TEXT)
        else:
            ax.text(x + w + 0.2, y + h / 2, label, ha="left", va="center", fontsize=fontsize, color=TEXT)
    return w, h


def arrow(ax: plt.Axes, start: Sequence[float], end: Sequence[float], *, role: str | None = None,
          text: str = "", curve: float = 0.0, dashed: bool = False, width: float = 1.3,
          text_offset: Sequence[float] = (0.0, 0.25), fontsize: float = FONT - 1) -> None:
    """An arrow from ``start`` to ``end`` (optionally bent by ``curve``), with a label at its middle."""
    ax.add_patch(FancyArrowPatch(tuple(start), tuple(end), arrowstyle="-|>", mutation_scale=11,
                                 linewidth=width, color=colour(role),
                                 connectionstyle=f"arc3,rad={curve}",
                                 linestyle="--" if dashed else "-", shrinkA=2, shrinkB=2))
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=fontsize, color=TEXT)


def label(ax: plt.Axes, x: float, y: float, text: str, *, role: str | None = None,
          fontsize: float = FONT, ha: str = "center", va: str = "center", **kwargs: object) -> None:
    """Text at (x, y), in the role's colour (dark grey text without a role)."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color=TEXT if role is None else colour(role), **kwargs)


def legend(ax: plt.Axes, x: float, y: float, roles: Sequence[str], *, names: dict[str, str] | None = None,
           step: float = 2.6) -> None:
    """A row of small swatches with role names, starting at (x, y)."""
    for k, role in enumerate(roles):
        box(ax, x + k * step, y - 0.2, 0.4, 0.4, role=role)
        label(ax, x + k * step + 0.6, y, (names or {}).get(role, role), ha="left", fontsize=FONT - 1)
