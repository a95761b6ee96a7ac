"""Chapter 11: tiled attention, the online softmax's running state, the KV cache.

The running sum of the online softmax is called r here and in the chapter (the
FlashAttention papers write l, but notation.md keeps ell for the layer index).
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from .style import TEXT, arrow, box, canvas, colour, label, legend, tensor, tint


def _tile(ax, x, y, w, h, *, role=None, amount=0.22, dashed=False, lw=1.0, edge=None):
    """One flat rectangle (a tile of a matrix), filled with ``amount`` of the role's colour."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor=tint(role, amount) if amount else "white",
                           edgecolor=edge or colour(role), linewidth=lw,
                           linestyle="--" if dashed else "-"))


def tiled_attention():
    """The (L, S) score matrix cut into (T_tile, T_tile) tiles; one query tile sweeps the key tiles."""
    fig, ax = canvas(26, 11.8)
    rows, cols, t = 4, 5, 1.3          # query tiles, key tiles, tile side
    gx, gy = 6.2, 2.6                  # lower-left corner of the score grid
    i, j = 1, 2                        # the live tile: query tile i (from the top), key tile j
    top = gy + rows * t

    def row_y(r):                      # lower edge of query tile r (r = 0 is the top one)
        return gy + (rows - 1 - r) * t

    # Q on the left, one tile per query tile
    qx, qw = 1.2, 1.4
    for r in range(rows):
        _tile(ax, qx, row_y(r), qw, t, role="query", amount=0.85 if r == i else 0.2, lw=1.2)
    label(ax, qx + qw / 2, row_y(i) + t / 2, "$Q_i$", role="white", fontsize=11)
    label(ax, qx + qw / 2, gy - 0.45, "$Q$  (L, E)", va="top")
    # K^T above, V^T below: one tile per key tile, aligned with the grid's columns
    kh = 1.2
    for c in range(cols):
        _tile(ax, gx + c * t, top + 0.5, t, kh, role="key", amount=0.85 if c == j else 0.2, lw=1.2)
        _tile(ax, gx + c * t, gy - 0.5 - kh, t, kh, role="value", amount=0.85 if c == j else 0.2, lw=1.2)
    label(ax, gx + j * t + t / 2, top + 0.5 + kh / 2, "$K_j^\\top$", role="white", fontsize=11)
    label(ax, gx + j * t + t / 2, gy - 0.5 - kh / 2, "$V_j^\\top$", role="white", fontsize=11)
    label(ax, gx - 0.3, top + 0.5 + kh / 2, "$K^\\top$  (E, S)", ha="right")
    label(ax, gx - 0.3, gy - 0.5 - kh / 2, "$V^\\top$  (Ev, S)", ha="right")
    # the score grid: other query tiles untouched here, tile i swept left to right
    for r in range(rows):
        for c in range(cols):
            x, y = gx + c * t, row_y(r)
            if r != i:
                _tile(ax, x, y, t, t, role="neutral", amount=0.06, lw=0.8)
            elif c < j:
                _tile(ax, x, y, t, t, role="weight", amount=0.3, lw=1.0)
                label(ax, x + t / 2, y + t / 2, "done", fontsize=8)
            elif c == j:
                _tile(ax, x, y, t, t, role="weight", amount=0.9, lw=2.2, edge=TEXT)
                label(ax, x + t / 2, y + t / 2, "$Z_{ij}$", role="white", fontsize=11)
            else:
                _tile(ax, x, y, t, t, role="weight", amount=0, dashed=True, lw=1.0)
    label(ax, gx + cols * t / 2, top + 0.5 + kh + 0.5,
          "scores  (L, S), cut into ($T_{\\mathrm{tile}}$, $T_{\\mathrm{tile}}$) tiles")
    # the sweep: an arrow along the bottom of query tile i's row, left to right
    arrow(ax, (gx + 0.1, row_y(i) + 0.22), (gx + cols * t - 0.1, row_y(i) + 0.22), role="weight",
          width=1.2)
    # the running state of query tile i, on the right
    sx, sw, sh = 16.2, 9.5, 3.2
    sy = row_y(i) + t / 2 - sh / 2
    box(ax, sx, sy, sw, sh, role="state")
    label(ax, sx + 0.35, sy + sh - 0.45, "running state of query tile $i$ (one row per query)",
          ha="left", fontsize=9, weight="bold")
    label(ax, sx + 0.35, sy + sh - 1.25,
          "$m_i$, $r_i$  ($T_{\\mathrm{tile}}$,):  running max and running sum", ha="left", fontsize=9)
    label(ax, sx + 0.35, sy + sh - 2.0, "$O_i$  ($T_{\\mathrm{tile}}$, Ev):  unnormalised output",
          ha="left", fontsize=9)
    label(ax, sx + 0.35, sy + 0.45, "after the last key tile:  output rows $= O_i / r_i$",
          ha="left", fontsize=9)
    arrow(ax, (gx + cols * t + 0.1, row_y(i) + t / 2), (sx, row_y(i) + t / 2), role="weight")
    label(ax, (gx + cols * t + sx) / 2, row_y(i) + t / 2 + 0.75, "for $j = 1, 2, \\dots$:\nupdate with $Z_{ij}$, $V_j$",
          fontsize=8.5)
    # what is held in memory, and what the other query tiles do
    label(ax, sx, gy - 1.1,
          "in memory at once: $Q_i$, $K_j$, $V_j$, one ($T_{\\mathrm{tile}}$, $T_{\\mathrm{tile}}$) tile $Z_{ij}$\n"
          "and the state: never the whole (L, S) matrix",
          ha="left", va="center", fontsize=9)
    label(ax, sx, top + 1.1,
          "the other query tiles (grey) run the same sweep\nwith their own state (in parallel on a GPU)",
          ha="left", va="center", fontsize=9, style="italic")
    legend(ax, 0.6, 11.2, ["query", "key", "value", "weight", "state"],
           names={"weight": "scores", "state": "running state"}, step=3.0)
    return fig


def _online_states(z: np.ndarray, block: int) -> list[tuple[float, float]]:
    """(m, r) after each block of the row z, as the chapter's online_normaliser computes them."""
    m, r, out = -np.inf, 0.0, []
    for start in range(0, len(z), block):
        b = z[start:start + block]
        m_new = max(m, float(b.max()))
        r = r * np.exp(m - m_new) + float(np.exp(b - m_new).sum())
        m = m_new
        out.append((m, r))
    return out


def online_softmax():
    """The running (m, r, o) of one query, block by block, on the chapter's example row."""
    z = np.array([2.0, 1.0, 0.5, 3.0, 1000.0, 999.0, 2.0, 998.5, 1.0])
    block = 3
    states = _online_states(z, block)
    fig, ax = canvas(26, 11.4)
    bw, gap, x0 = 4.3, 2.75, 0.4
    xs = [x0 + k * (bw + gap) for k in range(4)]              # boxes: start, after block 1, 2, 3
    cell = 1.15
    by = 8.6                                                   # the row of scores
    for k in range(3):
        bx = xs[k + 1] + (bw - block * cell) / 2
        for c in range(block):
            value = z[k * block + c]
            big = value > 100
            _tile(ax, bx + c * cell, by, cell, 0.8, role="weight", amount=0.8 if big else 0.2)
            label(ax, bx + (c + 0.5) * cell, by + 0.4, f"{value:g}", fontsize=9, role="white" if big else None)
        label(ax, bx + block * cell / 2, by + 1.25,
              f"block {k + 1}: $z_{{{3 * k + 1}}}, \\dots, z_{{{3 * k + 3}}}$", fontsize=9)
    label(ax, xs[0] + bw / 2, by + 0.9, "one row of scores $z$\n(S = 9), in blocks of 3",
          fontsize=9, style="italic")
    # the states, one box per moment
    sy, sh = 3.9, 3.0
    texts = ["start\n$m = -\\infty$,  $r = 0$\n$o = 0$"]
    for k, (m, r) in enumerate(states):
        texts.append(f"after block {k + 1}\n$m = {m:g}$,  $r = {r:.4f}$\n"
                     f"$o = \\sum_{{j \\leq {3 * k + 3}}} e^{{z_j - m}} v_j$")
    for k, text in enumerate(texts):
        box(ax, xs[k], sy, bw, sh, text, role="state", fontsize=9.5)
    # arrows: a new block comes in from above, the old state is rescaled from the left
    factors = ["$= e^{-\\infty} = 0$", "$= e^{2 - 1000} \\approx 0$", "$= e^{0} = 1$"]
    for k in range(3):
        cx = xs[k + 1] + bw / 2
        arrow(ax, (cx, by - 0.05), (cx, sy + sh + 0.05), role="weight")
        label(ax, cx - 0.15, (by + sy + sh) / 2, "new terms $e^{z_j - m'}$", ha="right",
              fontsize=8.5)
        ay = sy + sh / 2
        arrow(ax, (xs[k] + bw, ay), (xs[k + 1], ay), role="state")
        mid = xs[k] + bw + gap / 2
        label(ax, mid, ay + 0.15, "$\\times\\, e^{m - m'}$", fontsize=10,
              va="bottom")
        label(ax, mid, ay - 0.2, factors[k], fontsize=9, va="top")
    # the rule, written once
    label(ax, 0.6, 2.2,
          "$m' = \\max(m, \\max_j z_j)$          "
          "$r' = e^{m - m'}\\, r + \\sum_j e^{z_j - m'}$          "
          "$o' = e^{m - m'}\\, o + \\sum_j e^{z_j - m'}\\, v_j$",
          ha="left", fontsize=10)
    label(ax, 0.6, 0.9,
          "$m$, $r$, $o$: the state before a block;  $m'$, $r'$, $o'$: after it;  the sums run over the "
          "new block only.\nAt the end the weights are $e^{z_j - m} / r$ and the output is $o / r$; "
          "every exponent is $\\leq 0$, so nothing overflows.",
          ha="left", fontsize=9, style="italic")
    return fig


def kv_cache():
    """One decoding step with a KV cache: only the new token is projected; K and V grow by a row."""
    fig, ax = canvas(26, 12.4)
    E, cell, t = 3, 0.5, 6                 # drawn sizes: E columns, t positions in the cache
    # the new token and its three projections
    box(ax, 0.4, 5.5, 2.6, 1.3, "new token\n$x_t$  (1, D)", role="neutral", fontsize=9)
    ys = {"query": 9.6, "key": 6.0, "value": 2.4}
    names = {"query": "$q_t = x_t W_q$", "key": "$k_t = x_t W_k$", "value": "$v_t = x_t W_v$"}
    px = 4.6
    for role, y in ys.items():
        tensor(ax, px, y, 1, E, role=role, cell=cell, label=names[role], label_side="above", fontsize=9)
        arrow(ax, (3.0, 6.15), (px - 0.05, y + cell / 2), role=role)
    # the caches: t - 1 rows kept from earlier steps, the new row appended at the bottom
    kept = np.full((t, E), 0.25)
    kept[-1] = 0.95
    cx, ky, vy = 8.8, 5.0, 1.2
    tensor(ax, cx, ky, t, E, role="key", cell=cell, values=kept, label="$K$ cache  (t, E)",
           label_side="above", fontsize=9)
    tensor(ax, cx, vy, t, E, role="value", cell=cell, values=kept, label="$V$ cache  (t, Ev)",
           label_side="below", fontsize=9)
    arrow(ax, (px + E * cell + 0.05, ys["key"] + cell / 2), (cx - 0.05, ky + cell / 2), role="key")
    arrow(ax, (px + E * cell + 0.05, ys["value"] + cell / 2), (cx - 0.05, vy + cell / 2), role="value")
    label(ax, cx + E * cell + 0.5, 5.9,
          "light rows $1, \\dots, t-1$: kept from\nearlier steps, not recomputed\n"
          "dark row $t$: $k_t$ and $v_t$,\nappended at this step", ha="left", va="center", fontsize=9)
    # attention of the one new query over all t cached keys
    sx, sw = 16.6, 4.6
    box(ax, sx, 8.6, sw, 1.9, "scores $q_t K^\\top / \\sqrt{E}$\nsoftmax: weights $a$  (1, t)",
        role="weight", fontsize=9)
    arrow(ax, (px + E * cell + 0.05, ys["query"] + cell / 2), (sx, ys["query"] + cell / 2), role="query")
    arrow(ax, (cx + E * cell + 0.05, ky + t * cell - 0.25), (sx, 8.9), role="key")
    box(ax, sx, 3.4, sw, 1.6, "weighted sum\n$o_t = a V$", role="output", fontsize=9)
    arrow(ax, (sx + sw / 2, 8.6), (sx + sw / 2, 5.0), role="weight")
    arrow(ax, (cx + E * cell + 0.05, vy + t * cell - 0.25), (sx, 3.7), role="value")
    tensor(ax, 22.6, 4.0, 1, E, role="output", cell=cell, label="$o_t$  (1, Ev)", label_side="above",
           fontsize=9)
    arrow(ax, (sx + sw, 4.25), (22.55, 4.25), role="output")
    label(ax, sx, 1.6, "per step and layer: one new row of $q$, $k$, $v$\n"
          "and one row of weights, over $t$ cached keys", fontsize=9, style="italic", ha="left")
    legend(ax, 0.4, 11.9, ["query", "key", "value", "weight", "output"])
    return fig


FIGURES = {
    "ch11_tiled_attention": tiled_attention,
    "ch11_online_softmax": online_softmax,
    "ch11_kv_cache": kv_cache,
}
