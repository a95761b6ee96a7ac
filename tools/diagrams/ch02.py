"""Chapter 2: one step of Bahdanau's attention decoder, and a context for every step."""

from __future__ import annotations

import numpy as np

from .style import arrow, box, canvas, colour, label, legend, tensor


def decoder_step():
    """Step t: s_{t-1} scores every h_i, softmax, c_t, then the GRU update and the output layer."""
    fig, ax = canvas(24, 14.6)
    S, D, cell = 5, 4, 0.45
    mid = 7.4                                   # the attention row: centre line of its boxes
    # encoder states: keys and values at once, one row per source position
    enc_x, enc_y = 9.9, 11.0
    tensor(ax, enc_x, enc_y, S, D, role="state", cell=cell)
    for i, name in enumerate(["$h_1$", "$h_2$", "", "", "$h_S$"]):
        label(ax, enc_x - 0.15, enc_y + (S - 0.5 - i) * cell, name, ha="right", fontsize=9)
    label(ax, enc_x - 0.4, enc_y + 1.5 * cell, "⋮", ha="center", fontsize=10)
    label(ax, enc_x + D * cell + 0.3, enc_y + S * cell / 2,
          "encoder states\n$h_1 \\dots h_S$  (S, D)\ncomputed once,\nread at every step",
          ha="left", fontsize=9)
    # the query: the previous decoder state
    tensor(ax, 0.6, mid - cell / 2, 1, D, role="state", cell=cell)
    label(ax, 0.6 + D * cell / 2, mid + 0.55, "$s_{t-1}$  (D)", fontsize=10)
    # 1. score
    box(ax, 3.4, mid - 1.0, 5.6, 2.0,
        "1. score every $h_i$\n$e_{ti} = \\tanh(s_{t-1} W_q + h_i W_k)\\, v$", role="weight",
        fontsize=9.5)
    label(ax, 6.2, mid - 1.45, "$W_q$, $W_k$ (D, A),  $v$ (A)", fontsize=8.5)
    arrow(ax, (2.5, mid), (3.4, mid), role="query")
    label(ax, 2.95, mid - 0.45, "query", role="query", fontsize=8.5)
    arrow(ax, (enc_x + 0.2, enc_y), (7.6, mid + 1.0), role="key")
    label(ax, 8.0, 10.0, "keys", role="key", fontsize=8.5, ha="right")
    # scores and weights, one per source position
    e_vals = np.array([[0.15], [0.5], [0.9], [0.3], [0.1]])
    a_vals = np.array([[0.05], [0.2], [0.65], [0.07], [0.03]])
    tensor(ax, 9.5, mid - S * cell / 2, S, 1, role="weight", cell=cell, values=e_vals * 0.5)
    label(ax, 9.72, mid - 1.55, "$e_t$ (S)", fontsize=9)
    arrow(ax, (9.0, mid), (9.45, mid), role="weight")
    box(ax, 10.6, mid - 1.0, 3.4, 2.0, "2. normalise\n$a_t = \\mathrm{softmax}(e_t)$",
        role="weight", fontsize=9.5)
    arrow(ax, (10.0, mid), (10.6, mid), role="weight")
    tensor(ax, 14.5, mid - S * cell / 2, S, 1, role="weight", cell=cell, values=a_vals)
    label(ax, 14.72, mid - 1.55, "$a_t$ (S)", fontsize=9)
    arrow(ax, (14.0, mid), (14.45, mid), role="weight")
    # 3. sum
    box(ax, 15.6, mid - 1.0, 3.7, 2.0, "3. sum\n$c_t = \\sum_i a_{ti}\\, h_i$", role="output",
        fontsize=9.5)
    arrow(ax, (15.0, mid), (15.6, mid), role="weight")
    arrow(ax, (enc_x + D * cell - 0.2, enc_y), (17.0, mid + 1.0), role="value")
    label(ax, 15.9, 10.0, "values", role="value", fontsize=8.5, ha="left")
    tensor(ax, 20.1, mid - cell / 2, 1, D, role="output", cell=cell)
    label(ax, 20.1 + D * cell / 2, mid + 0.55, "$c_t$  (D)", fontsize=10)
    arrow(ax, (19.3, mid), (20.05, mid), role="output")
    # the recurrent update and the output layer
    low = 2.2
    tensor(ax, 0.6, low - cell / 2, 1, 3, role="neutral", cell=cell)
    label(ax, 0.6 + 1.5 * cell, low + 0.55, "$y_{t-1}$", fontsize=10)
    label(ax, 0.6 + 1.5 * cell, low - 0.75, "previous word,\nembedded", fontsize=8.5)
    box(ax, 3.4, low - 1.0, 6.4, 2.0, "GRU update\n$s_t = \\mathrm{GRU}([y_{t-1}; c_t],\\ s_{t-1})$",
        role="state", fontsize=9.5)
    arrow(ax, (2.05, low), (3.4, low), role="neutral")
    arrow(ax, (1.5, mid - cell / 2), (4.4, low + 1.0), role="state")
    arrow(ax, (20.5, mid - cell / 2), (9.2, low + 1.0), role="output")
    tensor(ax, 10.6, low - cell / 2, 1, D, role="state", cell=cell)
    label(ax, 10.6 + D * cell / 2, low + 0.55, "$s_t$  (D)", fontsize=10)
    arrow(ax, (9.8, low), (10.55, low), role="state")
    box(ax, 13.4, low - 1.0, 5.6, 2.0, "output layer\nlogits from $[s_t; c_t; y_{t-1}]$",
        role="neutral", fontsize=9.5)
    arrow(ax, (12.45, low), (13.4, low), role="state")
    arrow(ax, (21.0, mid - cell / 2), (18.4, low + 1.0), role="output")
    arrow(ax, (19.0, low), (20.0, low), role="neutral")
    label(ax, 20.1, low, "next word $y_t$\n(softmax over\n$|\\mathcal{V}|$ words)", ha="left",
          fontsize=9)
    label(ax, 11.5, low - 1.05, "query of step $t+1$", fontsize=8.5, va="top", style="italic")
    legend(ax, 0.6, 14.0, ["query", "key", "value", "weight", "output", "state"],
           names={"output": "context", "state": "recurrent state"}, step=2.35)
    return fig


def fixed_vs_dynamic():
    """Chapter 1 hands every decoder step the same c = h_S; chapter 2 builds c_t per step."""
    fig, ax = canvas(24, 10.2)
    S, T = 5, 4
    weights = np.array([[0.8, 0.1, 0.05, 0.03, 0.02],      # a crossing alignment, row t = step
                        [0.05, 0.1, 0.1, 0.7, 0.05],
                        [0.05, 0.1, 0.7, 0.1, 0.05],
                        [0.03, 0.7, 0.15, 0.07, 0.05]])
    for panel, (x0, title) in enumerate([(0.5, "chapter 1: one fixed context"),
                                         (12.7, "chapter 2: a context for every step")]):
        label(ax, x0 + 5.4, 9.8, title, fontsize=11, weight="bold")
        enc_y, ctx_y, dec_y = 7.2, 4.0, 0.9
        xs_h = [x0 + 0.6 + 2.3 * i for i in range(S)]
        xs_s = [x0 + 1.6 + 2.6 * t for t in range(T)]
        for i, x in enumerate(xs_h):
            box(ax, x, enc_y, 1.3, 0.9, f"$h_{i + 1}$" if i < S - 1 else "$h_S$", role="state",
                fontsize=10)
            if i:
                arrow(ax, (xs_h[i - 1] + 1.3, enc_y + 0.45), (x, enc_y + 0.45), role="state")
        for t, x in enumerate(xs_s):
            box(ax, x, dec_y, 1.3, 0.9, f"$s_{t + 1}$", role="state", fontsize=10)
            if t:
                arrow(ax, (xs_s[t - 1] + 1.3, dec_y + 0.45), (x, dec_y + 0.45), role="state")
        if panel == 0:
            cx = x0 + 4.8
            box(ax, cx, ctx_y, 1.6, 0.9, "$c$", role="output", fontsize=11)
            arrow(ax, (xs_h[-1] + 0.65, enc_y), (cx + 1.2, ctx_y + 0.9), role="output")
            label(ax, xs_h[-1] + 0.5, 5.9, "$c = h_S$", fontsize=9.5, ha="left")
            for x in xs_s:
                arrow(ax, (cx + 0.8, ctx_y), (x + 0.65, dec_y + 0.9), role="output")
            label(ax, x0 + 5.4, 9.0, "only the last state $h_S$ reaches the decoder",
                  fontsize=9, style="italic")
            label(ax, x0 + 0.1, 5.3, "the same $c$ at\nevery step, however\nlong the sentence",
                  fontsize=9, ha="left", style="italic")
        else:
            for t, x in enumerate(xs_s):
                cx = x + 0.1
                box(ax, cx, ctx_y, 1.1, 0.8, f"$c_{t + 1}$", role="output", fontsize=10)
                arrow(ax, (cx + 0.55, ctx_y), (x + 0.65, dec_y + 0.9), role="output")
                for i, xh in enumerate(xs_h):
                    w = weights[t, i]
                    ax.plot([xh + 0.65, cx + 0.55], [enc_y, ctx_y + 0.8], color=colour("weight"),
                            linewidth=0.4 + 4.0 * w, alpha=0.25 + 0.75 * w,
                            solid_capstyle="round", zorder=0)
            label(ax, x0 + 5.4, 9.0, "line width: the weight $a_{ti}$ of $h_i$ in $c_t$",
                  fontsize=9, style="italic")
    return fig


FIGURES = {"ch02_decoder_step": decoder_step, "ch02_fixed_vs_dynamic": fixed_vs_dynamic}
