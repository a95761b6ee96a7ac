"""Chapter 8: the Transformer block (pre-norm against post-norm) and the encoder-decoder stack."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.patches import Circle

from .style import FONT, TEXT, arrow, box, canvas, colour, label, tensor

RESIDUAL = "#3A3A3A"  # the residual stream: dark grey, drawn thicker than the other arrows


def add_node(ax, x: float, y: float, r: float = 0.32) -> None:
    """A circled plus at (x, y): the residual addition."""
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=RESIDUAL, linewidth=1.4, zorder=3))
    ax.text(x, y - 0.02, "+", ha="center", va="center", fontsize=FONT + 2, color=RESIDUAL, zorder=4)


def path(ax, points: Sequence[Sequence[float]], *, width: float = 1.3, color: str = RESIDUAL,
         head: bool = True) -> None:
    """A polyline through ``points``; its last segment ends in an arrowhead."""
    xs, ys = zip(*points)
    if len(points) > 2 or not head:
        last = len(points) - (2 if head else 1)
        ax.plot(xs[: last + 1], ys[: last + 1], color=color, linewidth=width, solid_capstyle="round",
                solid_joinstyle="round")
    if head:
        arrow(ax, points[-2], points[-1], role=color, width=width)


ATTENTION = ("multi-head\nself-attention, $H$ heads", "weight")
FEED_FORWARD = ("feed-forward\n$D \\to F \\to D$", "state")


def block(ax, cx: float, *, pre_norm: bool) -> float:
    """One encoder block, bottom to top, centred on x = cx; returns the y of its top."""
    w, rail = 4.4, cx + 3.3             # sublayer boxes, and the x of the residual rail
    ln_h, sub_h, r, gap = 0.8, 1.3, 0.32, 0.5
    label(ax, cx, 0.45, "$x$  (B, T, D)")
    top = 0.8                           # the top of what was drawn last
    for sublayer in (ATTENTION, FEED_FORWARD):
        branch = top + 0.3              # the residual leaves the main line here
        steps = ["LN", sublayer, "+"] if pre_norm else [sublayer, "+", "LN"]
        for step in steps:
            if step == "+":
                yc = top + gap + r
                arrow(ax, (cx, top), (cx, yc - r), role=TEXT)
                add_node(ax, cx, yc, r)
                path(ax, [(cx, branch), (rail, branch), (rail, yc), (cx + r, yc)], width=2.4)
                top = yc + r
                continue
            text, role = ("LayerNorm", None) if step == "LN" else step
            h = ln_h if step == "LN" else sub_h
            arrow(ax, (cx, top), (cx, top + gap), role=TEXT)
            box(ax, cx - w / 2, top + gap, w, h, text, role=role,
                fontsize=FONT - 1 if step == "LN" else FONT - 0.5)
            top += gap + h
    arrow(ax, (cx, top), (cx, top + 0.6), role=TEXT)
    label(ax, cx, top + 0.95, "(B, T, D)")
    return top + 1.3


def norm_placement():
    """Pre-norm (LN inside each branch) beside post-norm (LN on the residual stream)."""
    fig, ax = canvas(24, 13.0)
    left, right = 5.0, 17.0
    for cx, pre_norm, title, formula in (
            (left, True, "pre-norm (this chapter's model)",
             "$x \\leftarrow x + \\mathrm{Sublayer}(\\mathrm{LN}(x))$"),
            (right, False, "post-norm (the paper)",
             "$x \\leftarrow \\mathrm{LN}(x + \\mathrm{Sublayer}(x))$")):
        top = block(ax, cx, pre_norm=pre_norm)
        label(ax, cx + 1.1, top + 1.6, title, fontsize=FONT + 1, weight="bold")
        label(ax, cx + 1.1, top + 0.75, formula)
    label(ax, left + 3.6, 4.6, "identity path:\nno norm on\nthe residual\nstream", ha="left",
          fontsize=FONT - 1, style="italic")
    label(ax, right + 3.6, 4.6, "a norm on\nthe residual\nstream after\nevery sum", ha="left",
          fontsize=FONT - 1, style="italic")
    ax.plot([11.6, 11.6], [0.3, 12.6], color="#BBBBBB", linewidth=0.8)
    return fig


def causal_icon(ax, x: float, y: float, n: int = 4, cell: float = 0.22) -> None:
    """A small lower-triangular mask, lower-left at (x, y): query i may attend key j <= i."""
    allowed = np.tril(np.ones((n, n)))
    tensor(ax, x, y, n, n, role="weight", cell=cell, values=0.75 * allowed)


def frame(ax, x: float, y: float, w: float, h: float, title: str, times_x: float, times_ha: str) -> None:
    """The dashed outline of a repeated block, behind its sublayers, with its "x N_l" count."""
    box(ax, x, y, w, h, role="neutral", filled=False, dashed=True).set_zorder(0.5)
    label(ax, times_x, y + h / 2 + 0.45, title, fontsize=FONT, ha=times_ha, weight="bold")
    label(ax, times_x, y + h / 2 - 0.35, "$\\times\\, N_\\ell$", fontsize=FONT + 2, ha=times_ha)


def encoder_decoder():
    """Embeddings + positions at the bottom, N_l encoder and decoder blocks, linear + softmax on top."""
    fig, ax = canvas(24, 15.0)
    enc, dec, w = 6.0, 16.0, 4.8        # column centres and box width
    sub_h, step, small = 1.2, 0.6, FONT - 0.5

    def stacked(cx: float, y: float, h: float, text: str, role: str | None = None) -> float:
        box(ax, cx - w / 2, y, w, h, text, role=role, fontsize=small)
        return y + h

    # bottom: token ids -> embeddings scaled by sqrt(D) -> + positional encoding
    for cx, tokens in ((enc, "source tokens  (B, S)"),
                       (dec, "target tokens so far  (B, T)\n<bos>, $y_1$, ..., $y_{T-1}$")):
        label(ax, cx, 0.55, tokens, fontsize=small)
        arrow(ax, (cx, 1.05 if cx == enc else 1.15), (cx, 1.5), role=TEXT)
        top = stacked(cx, 1.5, 0.9, "embedding $\\times \\sqrt{D}$")
        arrow(ax, (cx, top), (cx, top + 0.5), role=TEXT)
        add_node(ax, cx, top + 0.82)
        pe_x = cx - w / 2 - 3.4
        box(ax, pe_x, top + 0.42, 2.6, 0.8, "positional\nencoding", fontsize=FONT - 1.5)
        arrow(ax, (pe_x + 2.6, top + 0.82), (cx - 0.32, top + 0.82), role=TEXT)
    base, lift = 4.0, 3.72              # the blocks start at `base`; the sums' tops are at `lift`

    # encoder: N_l x (self-attention, feed-forward)
    enc_top = base + 0.6 + 2 * sub_h + step + 0.75
    frame(ax, enc - w / 2 - 0.4, base, w + 0.8, enc_top - base, "encoder block", enc - w / 2 - 0.7, "right")
    arrow(ax, (enc, lift), (enc, base + 0.6), role=TEXT)
    top = stacked(enc, base + 0.6, sub_h, "self-attention\nweights (B, H, S, S)", "weight")
    arrow(ax, (enc, top), (enc, top + step), role=TEXT)
    stacked(enc, top + step, sub_h, "feed-forward  $D \\to F \\to D$", "state")
    arrow(ax, (enc, enc_top - 0.75 + 0.0), (enc, enc_top + 0.9), role=TEXT)
    memory_y = enc_top + 0.9
    box(ax, enc - w / 2, memory_y, w, 0.9, "encoder output  (B, S, D)", role="neutral", fontsize=small)

    # decoder: N_l x (causal self-attention, cross-attention, feed-forward)
    cross_y = base + 0.6 + sub_h + 1.1
    dec_top = cross_y + 2 * sub_h + step + 0.75
    frame(ax, dec - w / 2 - 0.4, base, w + 0.8, dec_top - base, "decoder block", dec + w / 2 + 0.7, "left")
    arrow(ax, (dec, lift), (dec, base + 0.6), role=TEXT)
    top = stacked(dec, base + 0.6, sub_h, "causal self-attention\nweights (B, H, T, T)", "weight")
    causal_icon(ax, dec + w / 2 + 0.75, base + 0.76)
    label(ax, dec + w / 2 + 1.75, base + 1.2, "causal\nmask", ha="left", fontsize=FONT - 1)
    arrow(ax, (dec, top), (dec, cross_y), role="query", text="$Q$", text_offset=(0.35, -0.3))
    top = stacked(dec, cross_y, sub_h, "cross-attention\nweights (B, H, T, S)", "weight")
    arrow(ax, (dec, top), (dec, top + step), role=TEXT)
    stacked(dec, top + step, sub_h, "feed-forward  $D \\to F \\to D$", "state")

    # the encoder's output gives the keys and values of every decoder block's cross-attention
    mx = enc + w / 2
    for role, dy, name in (("key", 0.8, "$K$"), ("value", 0.2, "$V$")):
        y_out, y_in, bend = memory_y + 0.9 * dy, cross_y + sub_h * dy, mx + 1.5 + 1.0 * dy
        path(ax, [(mx, y_out), (bend, y_out), (bend, y_in), (dec - w / 2, y_in)], color=colour(role),
             width=1.6)
        label(ax, mx + 0.7, y_out + (0.3 if role == "key" else -0.3), name, role=role)

    # top: linear layer to the vocabulary, softmax
    arrow(ax, (dec, dec_top - 0.75), (dec, dec_top + 0.5), role=TEXT)
    top = stacked(dec, dec_top + 0.5, 0.8, "linear  $D \\to |\\mathcal{V}|$")
    arrow(ax, (dec, top), (dec, top + 0.5), role=TEXT)
    top = stacked(dec, top + 0.5, 0.8, "softmax", "output")
    arrow(ax, (dec, top), (dec, top + 0.6), role="output")
    label(ax, dec, top + 0.95, "next-token probabilities  (B, T, $|\\mathcal{V}|$)", fontsize=small)
    label(ax, 0.6, memory_y + 2.6, "every sublayer also has a residual\nconnection and a LayerNorm",
          ha="left", fontsize=FONT - 1, style="italic")
    return fig


FIGURES = {"ch08_norm_placement": norm_placement, "ch08_encoder_decoder": encoder_decoder}
