"""Chapter 7: the sinusoidal table, and one RoPE rotation (why scores see only offsets)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from attention_course.positional import sinusoidal_encoding

from .style import FONT, arrow, canvas, colour, label, tensor, tint


def _vector(ax, origin, angle_deg: float, length: float, role: str, *, dashed: bool = False,
            width: float = 2.0) -> tuple[float, float]:
    """An arrow from ``origin`` at ``angle_deg``; returns its tip."""
    a = math.radians(angle_deg)
    tip = (origin[0] + length * math.cos(a), origin[1] + length * math.sin(a))
    ax.add_patch(FancyArrowPatch(origin, tip, arrowstyle="-|>", mutation_scale=13,
                                 linewidth=1.2 if dashed else width, color=colour(role),
                                 alpha=0.55 if dashed else 1.0,
                                 linestyle=(0, (4, 3)) if dashed else "-", shrinkA=0, shrinkB=0))
    return tip


def _arc(ax, origin, radius: float, start_deg: float, end_deg: float, role: str | None,
         text: str = "", text_radius: float | None = None, head: bool = True,
         fontsize: float = FONT) -> None:
    """A circular arc from start_deg to end_deg (counter-clockwise), with an arrow head."""
    t = np.radians(np.linspace(start_deg, end_deg, 60))
    xs, ys = origin[0] + radius * np.cos(t), origin[1] + radius * np.sin(t)
    ax.plot(xs[:-3] if head else xs, ys[:-3] if head else ys, color=colour(role), linewidth=1.3)
    if head:
        ax.add_patch(FancyArrowPatch((xs[-4], ys[-4]), (xs[-1], ys[-1]), arrowstyle="-|>",
                                     mutation_scale=10, color=colour(role), linewidth=1.3,
                                     shrinkA=0, shrinkB=0))
    if text:
        mid = math.radians((start_deg + end_deg) / 2)
        r = text_radius if text_radius is not None else radius + 0.2
        c, s = math.cos(mid), math.sin(mid)
        label(ax, origin[0] + r * c, origin[1] + r * s, text, fontsize=fontsize, role=role,
              ha="left" if c > 0.3 else "right" if c < -0.3 else "center",
              va="bottom" if s > 0 else "top")


def _axes(ax, origin, reach: float, x_name: str = "", y_name: str = "") -> None:
    ox, oy = origin
    grey = tint("neutral", 0.45)
    ax.plot([ox - reach, ox + reach], [oy, oy], color=grey, linewidth=0.9)
    ax.plot([ox, ox], [oy - reach, oy + reach], color=grey, linewidth=0.9)
    if x_name:
        label(ax, ox + reach + 0.1, oy - 0.35, x_name, ha="right", va="top", fontsize=FONT - 1)
    if y_name:
        label(ax, ox - 0.15, oy + reach, y_name, ha="right", va="top", fontsize=FONT - 1)


def rope_rotation():
    """Panel 1: one pair turned by p*omega_i. Panels 2-3: same offset, same angle, same score."""
    fig, ax = canvas(24, 10.0)
    step = 20.0                      # omega_i, drawn as 20 degrees per position
    q_angle, k_angle = 15.0, 60.0    # q and k before rotation
    q_len, k_len, reach = 2.5, 1.9, 2.9
    centres = [(4.2, 5.0), (12.2, 5.0), (20.2, 5.0)]

    # panel 1: one rotation of one pair of coordinates
    o = centres[0]
    _axes(ax, o, reach, "$x_{2i}$", "$x_{2i+1}$")
    p = 3
    _vector(ax, o, q_angle, q_len, "query", dashed=True)
    tip = _vector(ax, o, q_angle + p * step, q_len, "query")
    _arc(ax, o, 1.1, q_angle, q_angle + p * step, "neutral", "$p\\,\\omega_i$")
    label(ax, o[0] + q_len * math.cos(math.radians(q_angle)) + 0.2,
          o[1] + q_len * math.sin(math.radians(q_angle)) - 0.1, "before", ha="left",
          fontsize=FONT - 1, role="query")
    label(ax, tip[0] + 0.2, tip[1] - 0.1, "after", ha="left", fontsize=FONT - 1, role="query")
    label(ax, o[0], 8.9, "one pair $(x_{2i}, x_{2i+1})$ of a query\nat position value $p$",
          fontsize=FONT)
    label(ax, o[0], 1.85, "length unchanged; the angle\ngrows by $\\omega_i$ per position",
          fontsize=FONT - 1, va="top", style="italic")

    # panels 2 and 3: the same q and k at two pairs of positions with the same offset
    for o, (pq, pk) in zip(centres[1:], ((2, 5), (6, 9))):
        _axes(ax, o, reach)
        _vector(ax, o, q_angle, q_len, "query", dashed=True)
        _vector(ax, o, k_angle, k_len, "key", dashed=True)
        a_q, a_k = q_angle + pq * step, k_angle + pk * step
        tq = _vector(ax, o, a_q, q_len, "query")
        tk = _vector(ax, o, a_k, k_len, "key")
        _arc(ax, o, 0.9, a_q, a_k, "weight", "$\\varphi + 3\\,\\omega_i$", head=False)
        for tip, angle, text, role in ((tq, a_q, f"$R_{pq}\\, q$", "query"),
                                       (tk, a_k, f"$R_{pk}\\, k$", "key")):
            a = math.radians(angle)
            label(ax, tip[0] + 0.45 * math.cos(a), tip[1] + 0.45 * math.sin(a), text, role=role)
        label(ax, o[0], 8.9, f"$q$ at $p = {pq}$, $k$ at $p' = {pk}$\noffset $p' - p = {pk - pq}$",
              fontsize=FONT)
    label(ax, 16.2, 1.85, "same offset, same angle between them, so the same score",
          fontsize=FONT - 1, va="top", style="italic")
    label(ax, 12.0, 0.55,
          "per pair: $\\langle R_p\\, q,\\ R_{p'} k\\rangle = |q|\\, |k|\\,"
          "\\cos(\\varphi + (p' - p)\\,\\omega_i)$,   $\\varphi$: the angle between $q$ and $k$"
          " before rotation (dashed)", fontsize=FONT - 1)
    return fig


def sinusoid_table():
    """The real sinusoidal table, P = 10 positions x D = 16 dimensions, and two of its 'hands'."""
    P, D, cell = 10, 16, 0.55
    pe = sinusoidal_encoding(P, D).numpy()                     # (P, D)
    omega = 10000.0 ** (-np.arange(0, D, 2) / D)              # (D/2,)
    fig, ax = canvas(24, 11.2)
    x0, y0 = 3.6, 2.2
    tensor(ax, x0, y0, P, D, role="neutral", cell=cell, values=(pe + 1) / 2)
    top = y0 + P * cell

    # rows: positions in the sequence and the position value p fed to the encoding
    label(ax, 0.8, top + 0.35, "position", fontsize=FONT - 1, va="bottom")
    label(ax, 2.7, top + 0.35, "$p$", fontsize=FONT, va="bottom")
    for r in range(P):
        y = top - (r + 0.5) * cell
        label(ax, 0.8, y, f"{r + 1}", fontsize=FONT - 1)
        label(ax, 2.7, y, f"{r}", fontsize=FONT - 1)
    label(ax, 1.75, y0 - 0.3, "$p$ = position $- 1$:\ntoken 1 gets $PE_0$", fontsize=FONT - 1,
          va="top")

    # columns: pairs (sin, cos) at falling frequencies
    for i in range(D // 2):
        xc = x0 + (2 * i + 1) * cell
        label(ax, xc, top + 0.3, f"{i}", fontsize=FONT - 1, va="bottom")
        wavelength = 2 * math.pi / omega[i]
        text = f"{wavelength:.1f}" if wavelength < 10 else f"{wavelength:,.0f}"
        label(ax, xc, y0 - 0.3, text, fontsize=FONT - 1, va="top", rotation=45)
        if i:
            ax.plot([x0 + 2 * i * cell] * 2, [y0, top], color=colour("neutral"), linewidth=2.0)
    label(ax, x0 + D * cell / 2, top + 0.95, "pair $i$: columns $2i$ (sin) and $2i + 1$ (cos)",
          fontsize=FONT - 1, va="bottom")
    arrow(ax, (x0, top + 1.95), (x0 + D * cell, top + 1.95), role="neutral", width=1.2)
    label(ax, x0 + D * cell / 2, top + 2.1,
          "frequency $\\omega_i = 10000^{-2i/D}$ falls, wavelength $2\\pi/\\omega_i$ grows",
          fontsize=FONT - 1, va="bottom")
    label(ax, x0 + D * cell / 2, y0 - 1.25, "wavelength (positions per turn)", fontsize=FONT - 1,
          va="top")
    # shading key
    kx = x0 + D * cell + 0.5
    for k, (value, text) in enumerate(((-1, "$-1$"), (1, "$+1$"))):
        y = y0 + 0.2 + 0.7 * k
        ax.add_patch(Rectangle((kx, y), 0.45, 0.45, facecolor=tint("neutral", 0.08 + 0.85 * (value + 1) / 2),
                               edgecolor=colour("neutral"), linewidth=0.8))
        label(ax, kx + 0.6, y + 0.22, text, ha="left", fontsize=FONT - 1)

    # two "hands": pair 0 turns 1 radian per position, pair 2 a tenth of that
    for cx, i in ((16.6, 0), (21.3, 2)):
        cy, r = 5.3, 1.8
        t = np.linspace(0, 2 * math.pi, 100)
        ax.plot(cx + r * np.cos(t), cy + r * np.sin(t), color=tint("neutral", 0.45), linewidth=1.0)
        for p in range(P):
            a = p * omega[i]                                     # the point (sin, cos) drawn as angle
            px, py = cx + r * math.sin(a), cy + r * math.cos(a)
            ax.plot(px, py, "o", color=colour("neutral"), markersize=4.5)
            if i == 0 or p in (0, P - 1):
                off = 0.42
                label(ax, cx + (r + off) * math.sin(a), cy + (r + off) * math.cos(a), f"{p}",
                      fontsize=FONT - 1)
        label(ax, cx, cy + r + 1.15, f"pair {i}: {omega[i]:g} rad per position",
              fontsize=FONT - 1)
        label(ax, cx, cy - r - 0.9, "neighbours far apart" if i == 0 else "neighbours close",
              fontsize=FONT - 1, style="italic")
    label(ax, 18.95, 9.6, "the point $(PE_{p,2i}, PE_{p,2i+1})$ for $p = 0, \\dots, 9$",
          fontsize=FONT - 1)
    return fig


FIGURES = {"ch07_sinusoid_table": sinusoid_table, "ch07_rope_rotation": rope_rotation}
