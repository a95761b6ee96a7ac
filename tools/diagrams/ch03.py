"""Chapter 3: the five scoring rules side by side, and additive as concat split in two.

Row-vector convention, as in notation.md: a query q (1, E_q) and a key k (1, E_k)
multiply weights from the left, q W.
"""

from __future__ import annotations

from .style import arrow, box, canvas, label, legend, tensor

CELL = 0.34      # one vector entry
PCELL = 0.28     # one parameter entry
EQ, EK, A = 4, 3, 3  # drawn sizes: E_q, E_k and A (E_q = E_k = E = 4 for the dot rules)


def vector(ax, cx, y, parts, *, text="", side="right", fontsize=8.5):
    """A row vector centred at cx, bottom at y, made of (n, role) parts; returns (x0, x1)."""
    n = sum(k for k, _ in parts)
    x = cx - n * CELL / 2
    x0 = x
    for k, role in parts:
        tensor(ax, x, y, 1, k, role=role, cell=CELL)
        x += k * CELL
    if text:
        if side == "right":
            label(ax, x + 0.15, y + CELL / 2, text, ha="left", fontsize=fontsize)
        elif side == "left":
            label(ax, x0 - 0.15, y + CELL / 2, text, ha="right", fontsize=fontsize)
        else:
            label(ax, cx, y + CELL + 0.12, text, va="bottom", fontsize=fontsize)
    return x0, x


def param(ax, x, y_top, rows, cols, text):
    """A parameter matrix (rows, cols) hanging from y_top, with its name below."""
    tensor(ax, x, y_top - rows * PCELL, rows, cols, role="neutral", cell=PCELL)
    label(ax, x + cols * PCELL / 2, y_top - rows * PCELL - 0.2, text, va="top", fontsize=8.5)


def five_rules():
    """dot, scaled dot, general, concat, additive: what each computes from q and k."""
    width, col = 23.4, 4.68
    fig, ax = canvas(width, 18.4)
    top_v, s1, v1, s2, v2, s3, e_y, p_top = 14.1, 11.8, 10.55, 8.6, 7.35, 5.4, 4.25, 2.95
    bh = 0.95                                      # op box height
    names = [("dot", "$q\\,k^\\top$"),
             ("scaled dot", "$q\\,k^\\top / \\sqrt{d_k}$"),
             ("general (bilinear)", "$q\\,W k^\\top$"),
             ("concat", "$\\tanh([q; k]\\, W)\\, v$"),
             ("additive", "$\\tanh(q W_q + k W_k)\\, v$")]
    centres = [col / 2 + j * col for j in range(5)]
    for cx, (name, formula) in zip(centres, names):
        label(ax, cx, 16.3, name, fontsize=10.5, weight="bold")
        label(ax, cx, 15.55, formula, fontsize=10)
    for j in range(1, 5):
        ax.plot([j * col, j * col], [0.3, 16.7], color="#D0D0D0", linewidth=0.8)

    def op(cx, y, w, text, role="neutral"):
        box(ax, cx - w / 2, y, w, bh, text, role=role, fontsize=9)

    def score_out(cx, y_from):
        arrow(ax, (cx, y_from), (cx, e_y + CELL), role="weight")
        tensor(ax, cx - CELL / 2, e_y, 1, 1, role="weight", cell=CELL)
        label(ax, cx + 0.35, e_y + CELL / 2, "$e$", ha="left", fontsize=9.5)

    # dot and scaled dot: q and k of the same size E
    for j in (0, 1):
        cx = centres[j]
        vector(ax, cx - 1.05, top_v, [(EQ, "query")], text="$q$ (E)", side="above")
        vector(ax, cx + 1.05, top_v, [(EQ, "key")], text="$k$ (E)", side="above")
        op(cx, s1, 2.9, "$q\\,k^\\top = \\sum_j q_j k_j$", role="weight")
        arrow(ax, (cx - 1.05, top_v), (cx - 0.6, s1 + bh), role="query")
        arrow(ax, (cx + 1.05, top_v), (cx + 0.6, s1 + bh), role="key")
    score_out(centres[0], s1)
    op(centres[1], s2, 2.2, "$\\div \\sqrt{d_k}$,  $d_k = E$", role="weight")
    arrow(ax, (centres[1], s1), (centres[1], s2 + bh), role="weight")
    score_out(centres[1], s2)
    for j in (0, 1):
        label(ax, centres[j], p_top - 0.5, "none", fontsize=9, style="italic")

    # general: project the query with W, then a dot product with the key
    cx = centres[2]
    vector(ax, cx - 1.05, top_v, [(EQ, "query")], text="$q$ ($E_q$)", side="above")
    vector(ax, cx + 1.25, top_v, [(EK, "key")], text="$k$ ($E_k$)", side="above")
    op(cx - 1.05, s1, 1.6, "$q\\,W$", role="query")
    arrow(ax, (cx - 1.05, top_v), (cx - 1.05, s1 + bh), role="query")
    vector(ax, cx - 1.05, v1, [(EK, "query")], text="($E_k$)", side="right")
    arrow(ax, (cx - 1.05, s1), (cx - 1.05, v1 + CELL), role="query")
    op(cx, s2, 2.6, "$(q W)\\, k^\\top$", role="weight")
    arrow(ax, (cx - 1.05, v1), (cx - 0.5, s2 + bh), role="query")
    arrow(ax, (cx + 1.25, top_v), (cx + 0.75, s2 + bh), role="key")
    score_out(cx, s2)
    param(ax, cx - EK * PCELL / 2, p_top - 0.1, EQ, EK, "$W$ ($E_q$, $E_k$)")

    # concat: one layer on the concatenated pair
    cx = centres[3]
    vector(ax, cx - 1.05, top_v, [(EQ, "query")], text="$q$ ($E_q$)", side="above")
    vector(ax, cx + 1.25, top_v, [(EK, "key")], text="$k$ ($E_k$)", side="above")
    op(cx, s1, 3.3, "concatenate $[q; k]$")
    arrow(ax, (cx - 1.05, top_v), (cx - 0.6, s1 + bh), role="query")
    arrow(ax, (cx + 1.25, top_v), (cx + 0.6, s1 + bh), role="key")
    vector(ax, cx, v1, [(EQ, "query"), (EK, "key")], text="($E_q{+}E_k$)", side="right")
    arrow(ax, (cx, s1), (cx, v1 + CELL), role="neutral")
    op(cx, s2, 2.6, "$\\tanh([q; k]\\, W)$", role="state")
    arrow(ax, (cx, v1), (cx, s2 + bh), role="neutral")
    vector(ax, cx, v2, [(A, "state")], text="(A)", side="right")
    arrow(ax, (cx, s2), (cx, v2 + CELL), role="state")
    op(cx, s3, 1.6, "$\\cdot\\; v$", role="weight")
    arrow(ax, (cx, v2), (cx, s3 + bh), role="state")
    score_out(cx, s3)
    param(ax, cx - 1.0, p_top - 0.1, EQ + EK, A, "$W$ ($E_q{+}E_k$, A)")
    param(ax, cx + 0.75, p_top - 0.1, A, 1, "$v$ (A)")

    # additive: project q and k apart, add, tanh, reduce with v
    cx = centres[4]
    vector(ax, cx - 1.05, top_v, [(EQ, "query")], text="$q$ ($E_q$)", side="above")
    vector(ax, cx + 1.25, top_v, [(EK, "key")], text="$k$ ($E_k$)", side="above")
    op(cx - 1.05, s1, 1.7, "$q\\,W_q$", role="query")
    op(cx + 1.05, s1, 1.7, "$k\\,W_k$", role="key")
    arrow(ax, (cx - 1.05, top_v), (cx - 1.05, s1 + bh), role="query")
    arrow(ax, (cx + 1.25, top_v), (cx + 1.05, s1 + bh), role="key")
    vector(ax, cx - 1.05, v1, [(A, "query")])
    vector(ax, cx + 1.05, v1, [(A, "key")], text="(A)", side="right")
    arrow(ax, (cx - 1.05, s1), (cx - 1.05, v1 + CELL), role="query")
    arrow(ax, (cx + 1.05, s1), (cx + 1.05, v1 + CELL), role="key")
    op(cx, s2, 2.2, "$\\tanh(\\,\\cdot + \\cdot\\,)$", role="state")
    arrow(ax, (cx - 1.05, v1), (cx - 0.5, s2 + bh), role="query")
    arrow(ax, (cx + 1.05, v1), (cx + 0.5, s2 + bh), role="key")
    vector(ax, cx, v2, [(A, "state")], text="(A)", side="right")
    arrow(ax, (cx, s2), (cx, v2 + CELL), role="state")
    op(cx, s3, 1.6, "$\\cdot\\; v$", role="weight")
    arrow(ax, (cx, v2), (cx, s3 + bh), role="state")
    score_out(cx, s3)
    param(ax, cx - 2.0, p_top - 0.1, EQ, A, "$W_q$ ($E_q$, A)")
    param(ax, cx - 0.3, p_top - 0.1, EK, A, "$W_k$ ($E_k$, A)")
    param(ax, cx + 1.55, p_top - 0.1, A, 1, "$v$ (A)")

    ax.plot([0.3, width - 0.3], [3.85, 3.85], color="#D0D0D0", linewidth=0.8)
    label(ax, 0.3, 3.6, "parameters:", fontsize=8.5, ha="left", va="top", style="italic")
    for cx, count in zip(centres[2:], ["$E_q E_k$", "$A(E_q{+}E_k) + A$", "$A(E_q{+}E_k) + A$"]):
        label(ax, cx, 3.45, count, fontsize=9)
    legend(ax, 0.5, 17.8, ["query", "key", "state", "weight", "neutral"],
           names={"state": "hidden layer", "weight": "score", "neutral": "parameters, other"},
           step=3.2)
    return fig


def concat_split():
    """[q; k] W = q W_q + k W_k, and what the split saves over L queries and S keys."""
    fig, ax = canvas(24, 12.0)
    c = 0.36
    # the algebra, top row
    label(ax, 12.0, 11.4, "one function, two ways to compute it:  "
          "$[q; k]\\, W = q\\, W_q + k\\, W_k$", fontsize=11, weight="bold")
    mid = 8.75
    tensor(ax, 0.8, mid - c / 2, 1, EQ, role="query", cell=c)
    tensor(ax, 0.8 + EQ * c, mid - c / 2, 1, EK, role="key", cell=c)
    label(ax, 0.8 + 3.5 * c, mid - 0.5, "$[q; k]$\n($E_q{+}E_k$)", va="top", fontsize=9)
    label(ax, 3.75, mid, "$\\times$", fontsize=12)
    wq_top = mid + 1.3
    tensor(ax, 4.25, wq_top - EQ * c, EQ, A, role="neutral", cell=c)
    tensor(ax, 4.25, wq_top - EQ * c - 0.1 - EK * c, EK, A, role="neutral", cell=c)
    label(ax, 4.25 + A * c + 0.15, wq_top - EQ * c / 2, "$W_q$ ($E_q$, A)", ha="left", fontsize=9)
    label(ax, 4.25 + A * c + 0.15, wq_top - EQ * c - 0.1 - EK * c / 2, "$W_k$ ($E_k$, A)",
          ha="left", fontsize=9)
    label(ax, 4.25 + A * c / 2, wq_top - (EQ + EK) * c - 0.35, "$W$ ($E_q{+}E_k$, A)",
          va="top", fontsize=9)
    label(ax, 8.1, mid, "$=$", fontsize=13)
    tensor(ax, 8.7, mid - c / 2, 1, EQ, role="query", cell=c, label="$q$ ($E_q$)")
    label(ax, 10.5, mid, "$\\times$", fontsize=12)
    tensor(ax, 10.9, mid - EQ * c / 2, EQ, A, role="neutral", cell=c, label="$W_q$")
    label(ax, 12.55, mid, "$+$", fontsize=13)
    tensor(ax, 13.1, mid - c / 2, 1, EK, role="key", cell=c, label="$k$ ($E_k$)")
    label(ax, 14.55, mid, "$\\times$", fontsize=12)
    tensor(ax, 14.95, mid - EK * c / 2, EK, A, role="neutral", cell=c, label="$W_k$")
    label(ax, 16.8, mid, "the first $E_q$ rows of $W$\nmeet $q$, the last $E_k$\nmeet $k$: "
          "split $W$ there", ha="left", fontsize=9.5, style="italic")
    ax.plot([0.4, 23.6], [6.0, 6.0], color="#D0D0D0", linewidth=0.8)

    # the cost over L queries and S keys, bottom row
    L, S = 3, 4
    cw, ch = 1.45, 0.7

    def grid(x0, y_top, text, role, filled_text):
        for l in range(L):
            for j in range(S):
                box(ax, x0 + j * cw + 0.05, y_top - (l + 1) * ch + 0.05, cw - 0.1, ch - 0.1,
                    filled_text(l, j), role=role, fontsize=8.5)
        label(ax, x0 + S * cw / 2, y_top - L * ch - 0.3, text, va="top", fontsize=9)

    names_q = ["$q_1$", "$q_2$", "$q_L$"]
    names_k = ["$k_1$", "$k_2$", "$k_3$", "$k_S$"]
    # concat as written: every pair multiplies its (E_q + E_k) vector by W
    x0, y_top = 2.3, 3.85
    label(ax, x0 + S * cw / 2 - 0.6, 5.45, "concat as written", fontsize=10.5, weight="bold")
    for l, n in enumerate(names_q):
        label(ax, x0 - 0.2, y_top - (l + 0.5) * ch, n, ha="right", role="query", fontsize=9.5)
    for j, n in enumerate(names_k):
        label(ax, x0 + (j + 0.5) * cw, y_top + 0.3, n, role="key", fontsize=9.5)
    grid(x0, y_top, "every one of the $L \\cdot S$ pairs: $[q_l; k_j]\\, W$\n"
         "$L\\, S\\, A\\, (E_q{+}E_k)$ multiply–adds", "neutral",
         lambda l, j: "$[q;k]\\,W$")
    # additive: project once per query and once per key, add per pair
    x0 = 15.6
    label(ax, x0 + S * cw / 2 - 0.9, 5.45, "additive", fontsize=10.5, weight="bold")
    for l, n in enumerate(["$q_1 W_q$", "$q_2 W_q$", "$q_L W_q$"]):
        box(ax, x0 - 1.65, y_top - (l + 1) * ch + 0.05, 1.45, ch - 0.1, n, role="query",
            fontsize=8.5)
    for j, n in enumerate(["$k_1 W_k$", "$k_2 W_k$", "$k_3 W_k$", "$k_S W_k$"]):
        box(ax, x0 + j * cw + 0.05, y_top + 0.1, cw - 0.1, ch - 0.1, n, role="key", fontsize=8.5)
    grid(x0, y_top, "$L + S$ projections, once: $(L E_q + S E_k)\\, A$\n"
         "per pair only add, tanh, $\\cdot\\, v$: about $3 L S A$", "state",
         lambda l, j: "$+$")
    return fig


def cube(ax, x, y, rows, cols, depth, *, role, cell, shift=0.22):
    """A (rows, cols, depth) block: depth layers of a rows x cols grid, back to front."""
    for layer in reversed(range(depth)):
        tensor(ax, x + layer * shift, y + layer * shift, rows, cols, role=role, cell=cell)
    return cols * cell + (depth - 1) * shift, rows * cell + (depth - 1) * shift


def dot_vs_additive():
    """Dot scores are one matrix product; additive scores materialise an (L, S, A) tensor."""
    fig, ax = canvas(24, 6.5)
    c, L, S, E, A_ = 0.4, 4, 5, 3, 3
    base = 2.6
    # dot: Q (L, E) times K^T (E, S) gives the (L, S) scores in one product
    label(ax, 4.6, 5.9, "dot: one matrix product", fontsize=10.5, weight="bold")
    tensor(ax, 0.6, base, L, E, role="query", cell=c, label="$Q$ (L, E)")
    label(ax, 2.2, base + L * c / 2, "$\\times$", fontsize=12)
    tensor(ax, 2.7, base + (L - E) * c / 2, E, S, role="key", cell=c, label="$K^\\top$ (E, S)")
    label(ax, 5.2, base + L * c / 2, "$=$", fontsize=13)
    tensor(ax, 5.7, base, L, S, role="weight", cell=c, label="scores (L, S)")
    label(ax, 4.6, 1.1, "BLAS: blocked for the caches,\nvectorised, each number read a few times",
          fontsize=9, style="italic")
    ax.plot([8.9, 8.9], [0.4, 6.2], color="#D0D0D0", linewidth=0.8)
    # additive: (L, A) + (S, A) broadcast to (L, S, A), tanh, then v
    label(ax, 16.4, 5.9, "additive: an (L, S, A) tensor in memory", fontsize=10.5, weight="bold")
    tensor(ax, 9.5, base, L, A_, role="query", cell=c, label="$Q W_q$ (L, A)")
    label(ax, 11.05, base + L * c / 2, "$+$", fontsize=13)
    tensor(ax, 11.5, base - 0.2, S, A_, role="key", cell=c, label="$K W_k$ (S, A)")
    arrow(ax, (12.85, base + L * c / 2), (13.75, base + L * c / 2), role="state")
    label(ax, 13.3, base + L * c / 2 + 0.25, "every\npair", fontsize=8.5, va="bottom")
    w, h = cube(ax, 13.9, base, L, S, A_, role="state", cell=c)
    label(ax, 13.9 + w / 2, base - 0.25, "tanh of each sum\n(L, S, A)", va="top", fontsize=9)
    arrow(ax, (13.9 + w + 0.1, base + L * c / 2), (17.3, base + L * c / 2), role="weight")
    label(ax, 16.75, base + L * c / 2 + 0.25, "$\\cdot\\, v$", fontsize=10, va="bottom")
    tensor(ax, 17.4, base, L, S, role="weight", cell=c, label="scores (L, S)")
    label(ax, 21.7, base + L * c / 2, "add, tanh, $\\cdot\\, v$:\nthree passes over\n"
          "$L \\cdot S \\cdot A$ numbers", fontsize=9, style="italic", ha="center")
    return fig


FIGURES = {"ch03_five_rules": five_rules, "ch03_concat_split": concat_split,
           "ch03_dot_vs_additive": dot_vs_additive}
