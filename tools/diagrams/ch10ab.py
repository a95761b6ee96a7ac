"""Chapter 10, sections 10a and 10b: what the query, the keys and the values are in text.

Every panel of the two "roles" figures has the same layout, so the four fields can be
read side by side: the key positions are the columns (their keys, then their values),
each query is a row on the left, the row's attention weights sit under the columns they
weigh (darker = more weight), and the row's output is on the right.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .style import FONT, TEXT, arrow, box, canvas, colour, label, legend, tensor, tint

COL = 1.55        # width of one key column
ROW = 0.62        # height of one query row
CELL = 0.46       # side of a key, value or weight cell


def _weights(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Rows of raw scores, normalised to sum to 1 (a softmax needs no more for a sketch)."""
    w = np.asarray(rows, dtype=float)
    return w / w.sum(axis=1, keepdims=True)


def roles_panel(ax, x0: float, y_top: float, *, title: str, columns: Sequence[str],
                column_role: str, column_label: str, key_label: str, value_label: str,
                queries: Sequence[str], query_label: str, weights: np.ndarray,
                outputs: Sequence[str], output_label: str, weight_label: str, note: str = "",
                marked: Sequence[int] = (), marked_label: str = "") -> float:
    """One field: columns = key positions, rows = queries; returns the y below the panel.

    ``x0`` is the left edge of the panel; the grid starts 5.6 units to its right, after
    the row labels.
    """
    gx = x0 + 5.6                               # left edge of the grid
    n = len(columns)
    cx = [gx + (j + 0.5) * COL for j in range(n)]
    right = gx + n * COL                        # right edge of the grid
    label(ax, x0, y_top, title, ha="left", fontsize=FONT + 1, weight="bold")
    # the key positions: one box per column (a word, a sentence, ...)
    y = y_top - 1.0
    for j, text in enumerate(columns):
        box(ax, cx[j] - COL / 2 + 0.06, y - 0.3, COL - 0.12, 0.6, text, role=column_role,
            fontsize=FONT - 1)
    label(ax, gx - 0.25, y, column_label, ha="right", fontsize=FONT - 1)
    # their keys and their values
    for row, (role, text) in enumerate((("key", key_label), ("value", value_label))):
        y = y_top - 1.85 - 0.6 * row
        for j in range(n):
            tensor(ax, cx[j] - CELL / 2, y - CELL / 2, 1, 1, role=role, cell=CELL)
        label(ax, gx - 0.25, y, text, ha="right", fontsize=FONT - 1)
    # one row per query: the query, its weights over the columns, its output
    y0 = y_top - 3.95
    label(ax, gx - 0.25, y0 + 0.7, query_label, ha="right", fontsize=FONT - 1)
    label(ax, (gx + right) / 2, y0 + 0.7, weight_label, fontsize=FONT - 1)
    label(ax, right + 0.9, y0 + 0.7, output_label, ha="left", fontsize=FONT - 1)
    for i, (query, out) in enumerate(zip(queries, outputs)):
        y = y0 - i * ROW
        box(ax, gx - 2.55, y - 0.25, 2.3, 0.5, query, role="query", fontsize=FONT - 1)
        for j in range(n):
            tensor(ax, cx[j] - CELL / 2, y - CELL / 2, 1, 1, role="weight", cell=CELL,
                   values=np.array([[weights[i, j] / weights[i].max()]]))
        arrow(ax, (right + 0.05, y), (right + 0.85, y), role="output")
        box(ax, right + 0.9, y - 0.25, 2.4, 0.5, out, role="output", fontsize=FONT - 1)
    bottom = y0 - (len(queries) - 1) * ROW - 0.25
    last = y0 - (len(queries) - 1) * ROW
    for j in marked:                            # e.g. the sentences a summary extracts
        for yc, h in ((y_top - 1.0, 0.6), (last, CELL)):
            ax.add_patch(_outline(cx[j] - COL / 2 + 0.02, yc - h / 2 - 0.06, COL - 0.04, h + 0.12))
    if marked_label:
        label(ax, gx, bottom - 0.45, marked_label, ha="left", fontsize=FONT - 1, weight="bold")
    if note:
        label(ax, x0, bottom - (1.05 if marked_label else 0.55), note, ha="left", va="top",
              fontsize=FONT - 1, style="italic")
    return bottom


def _outline(x: float, y: float, w: float, h: float):
    from matplotlib.patches import FancyBboxPatch
    return FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.12", fill=False,
                          edgecolor=TEXT, linewidth=1.6, linestyle="-")


def pooling_roles():
    """10a: one learned query over a review's word states, and over a document's sentences."""
    fig, ax = canvas(22.4, 14.0)
    legend(ax, 0.6, 13.4, ["query", "key", "value", "weight", "output", "state"],
           names={"state": "state $h_i$"}, step=2.75)
    words = ["the", "film", "was", "not", "good", "on", "friday", "night"]
    roles_panel(ax, 0.6, 12.1, title="Text classification: attention pooling over words",
                columns=words, column_role="state", column_label="word states $h_i$",
                key_label="keys $k_i = h_i W_k$", value_label="values $h_i$",
                queries=["learned $q$"], query_label="one query",
                weights=_weights([[0.3, 0.2, 0.3, 2.4, 3.0, 0.9, 0.2, 0.2]]),
                outputs=["$\\Sigma_i\\, a_i h_i$ → label"], output_label="pooled vector",
                weight_label="weights $a = \\mathrm{softmax}_i(q \\cdot k_i / \\sqrt{E})$",
                note="The same $q$ for every review, in effect \"which words decide the label?\"; "
                     "each state $h_i$ sees\nits word's two neighbours, so \"not good\" "
                     "is one piece of evidence.")
    sentences = [f"sent. {i}" for i in range(1, 8)]
    roles_panel(ax, 0.6, 5.9, title="Extractive summarization: attention pooling over sentences",
                columns=sentences, column_role="state", column_label="sentence vectors $h_i$",
                key_label="keys $k_i = h_i W_k$", value_label="values $h_i$",
                queries=["learned $q$"], query_label="one query",
                weights=_weights([[0.2, 3.0, 0.25, 0.2, 1.6, 0.3, 0.2]]),
                outputs=["$\\Sigma_i\\, a_i h_i$ → topic"], output_label="pooled vector",
                weight_label="weights $a = \\mathrm{softmax}_i(q \\cdot k_i / \\sqrt{E})$",
                marked=(1, 4), marked_label="outlined: the two largest weights, extracted as the summary",
                note="Trained on the topic only; the sentences with the largest weights, as many "
                     "as the reference has, are copied out in document order.")
    return fig


# The sentence pair of 10b's two figures and its alignment scores (rows: hypothesis words)
PREMISE = ["the", "red", "ball", "was", "chased", "by", "the", "cat"]
HYPOTHESIS = ["the", "cat", "chased", "the", "ball"]
MATCH_SCORES = [
    [2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 2.0, 0.1],     # the -> either "the"
    [0.05, 0.05, 0.1, 0.05, 0.1, 0.05, 0.2, 4.0],  # cat
    [0.05, 0.05, 0.1, 0.2, 4.0, 0.2, 0.05, 0.1],   # chased
    [2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 2.0, 0.1],     # the
    [0.05, 0.3, 4.0, 0.1, 0.1, 0.05, 0.05, 0.1],   # ball
]


def cross_roles():
    """10b: queries from one sequence, keys and values from the other."""
    fig, ax = canvas(22.4, 19.0)
    legend(ax, 0.6, 18.4, ["query", "key", "value", "weight", "output", "neutral"],
           names={"neutral": "word"}, step=2.75)
    premise, hypothesis, w_match = PREMISE, HYPOTHESIS, _weights(MATCH_SCORES)
    roles_panel(ax, 0.6, 17.0, title="Sentence matching (inference): cross-attention between two sentences",
                columns=premise, column_role="neutral", column_label="premise words $a_i$",
                key_label="keys attend$(a_i)$", value_label="values $\\bar a_i$ (with neighbours)",
                queries=hypothesis, query_label="hypothesis words $b_j$",
                weights=w_match, outputs=[f"$\\alpha_{j}$ → compare" for j in range(1, 6)],
                output_label="output $\\alpha_j$",
                weight_label="weights $\\mathrm{softmax}_i(e_{ij})$, one row per $j$",
                note="The same score matrix read down its columns lets each premise word query "
                     "the hypothesis ($\\beta_i$):\ncross-attention in both directions.")
    source = ["the", "small", "black", "cat", "sleeps"]
    target = ["le", "chat", "noir", "petit", "dort"]
    w_mt = _weights([
        [4.0, 0.1, 0.1, 0.3, 0.1],
        [0.2, 0.2, 0.3, 4.0, 0.1],
        [0.1, 0.3, 4.0, 0.4, 0.1],
        [0.1, 4.0, 0.3, 0.3, 0.1],
        [0.1, 0.1, 0.1, 0.4, 4.0],
    ])
    roles_panel(ax, 0.6, 8.1, title="Translation: the target step queries the source words",
                columns=source, column_role="neutral", column_label="source words (encoder $h_i$)",
                key_label="keys $h_i W_k$", value_label="values $h_i W_v$",
                queries=[f"step → {w}" for w in target], query_label="decoder states $s_t W_q$",
                weights=w_mt, outputs=[f"$c_{t}$ → \"{w}\"" for t, w in enumerate(target, 1)],
                output_label="context $c_t$",
                weight_label="weights $a_{ti}$, one row per step $t$",
                note="Row $t$ is the decoding step that outputs target word $t$; a source word "
                     "never has a row of its own.")
    return fig


def decomposable_attention():
    """10b: Parikh et al.'s attend, compare, aggregate, for the hypothesis side."""
    fig, ax = canvas(22.4, 12.4)
    legend(ax, 0.6, 11.8, ["query", "key", "weight", "output", "state", "neutral"],
           names={"output": "aligned part", "state": "comparison", "neutral": "word vector"},
           step=3.3)
    premise, hypothesis, w = PREMISE, HYPOTHESIS, _weights(MATCH_SCORES)
    c, step = 0.46, 0.58                         # weight cell, column pitch
    gx, ys = 2.9, [6.9 - 0.72 * j for j in range(len(hypothesis))]
    # the three stage headings, each with its formula
    for x, head, formula in (
            (0.6, "1. attend", "$e_{ij} = \\mathrm{attend}(a_i) \\cdot \\mathrm{attend}(b_j) / \\sqrt{E}$\n"
                               "$\\alpha_j = \\Sigma_i\\, \\mathrm{softmax}_i(e_{ij})\\, \\bar a_i$"),
            (10.4, "2. compare", "$v_{2,j} = \\mathrm{compare}(\\bar b_j, \\alpha_j)$\n"
                                 "every word on its own"),
            (16.6, "3. aggregate", "$v_2 = \\Sigma_j\\, v_{2,j}$\n"
                                   "then classify $[v_1; v_2]$")):
        label(ax, x, 10.6, head, ha="left", fontsize=FONT + 1, weight="bold")
        label(ax, x, 10.15, formula, ha="left", va="top", fontsize=FONT - 1, linespacing=1.6)
    # 1. attend: hypothesis words query the premise words
    for i, word in enumerate(premise):
        x = gx + i * step + c / 2
        tensor(ax, x - c / 2, 7.55, 1, 1, role="key", cell=c)
        label(ax, x, 8.15, word, ha="left", va="bottom", fontsize=FONT - 1, rotation=50,
              rotation_mode="anchor")
    label(ax, gx + len(premise) * step + 0.3, 8.3, "premise words $a_i$\n(the keys)", ha="left",
          fontsize=FONT - 1)
    for j, (word, y) in enumerate(zip(hypothesis, ys)):
        box(ax, 0.6, y - 0.25, 1.7, 0.5, word, role="query", fontsize=FONT - 1)
        for i in range(len(premise)):
            tensor(ax, gx + i * step, y - c / 2, 1, 1, role="weight", cell=c,
                   values=np.array([[w[j, i] / w[j].max()]]))
        right = gx + len(premise) * step
        arrow(ax, (right, y), (right + 0.7, y), role="output")
        tensor(ax, right + 0.75, y - 0.17, 1, 3, role="output", cell=0.34)
        # 2. compare: the word in context beside its aligned part, through one network
        tensor(ax, 10.4, y - 0.17, 1, 3, role="neutral", cell=0.34)
        arrow(ax, (11.5, y), (12.15, y), role=TEXT)
        arrow(ax, (14.5, y), (15.0, y), role="state")
        tensor(ax, 15.05, y - 0.17, 1, 3, role="state", cell=0.34)
        # 3. aggregate: sum the comparisons
        if j == 2:
            arrow(ax, (16.1, y), (17.25, y), role="state", width=1.0)
        else:                                   # the others join the middle arrow's head
            ax.plot([16.15, 17.2], [y, ys[2] + 0.12 * np.sign(y - ys[2])], color=colour("state"),
                    linewidth=1.0)
    label(ax, 0.6 + 0.85, ys[0] + 0.55, "hypothesis $b_j$", fontsize=FONT - 1)
    label(ax, gx + 4 * step, ys[-1] - 0.55, "weights: row $j$ sums to 1", fontsize=FONT - 1)
    label(ax, right + 1.26, ys[0] + 0.45, "$\\alpha_j$", fontsize=FONT - 1)
    label(ax, 10.91, ys[0] + 0.45, "$\\bar b_j$", fontsize=FONT - 1)
    label(ax, 15.56, ys[0] + 0.45, "$v_{2,j}$", fontsize=FONT - 1)
    box(ax, 12.2, ys[-1] - 0.3, 2.3, ys[0] - ys[-1] + 0.6, "compare\n(one network,\nall words\nin parallel)",
        role="state", fontsize=FONT - 1)
    box(ax, 17.25, ys[2] - 0.35, 0.7, 0.7, "$\\Sigma_j$", role="state")
    tensor(ax, 18.55, ys[2] + 0.15, 1, 3, role="state", cell=0.34, label="$v_2$", label_side="above",
           fontsize=FONT - 1)
    arrow(ax, (17.95, ys[2]), (18.5, ys[2] + 0.32), role="state")
    # the other direction: premise words query the hypothesis (same scores, other axis)
    box(ax, 0.6, 1.75, 15.5, 1.0, "The other way, with the same scores: each premise word "
        "queries the hypothesis,\n$\\beta_i = \\Sigma_j\\, \\mathrm{softmax}_j(e_{ij})\\, \\bar b_j$, "
        "$v_{1,i} = \\mathrm{compare}(\\bar a_i, \\beta_i)$, $v_1 = \\Sigma_i\\, v_{1,i}$",
        role="neutral", dashed=True, fontsize=FONT - 1)
    tensor(ax, 18.55, 3.0, 1, 3, role="state", cell=0.34, label="$v_1$", label_side="below",
           fontsize=FONT - 1)
    arrow(ax, (16.1, 2.25), (18.5, 3.15), role="state", dashed=True)
    box(ax, 18.25, 4.2, 3.6, 0.8, "classify $[v_1; v_2]$", role="neutral", fontsize=FONT - 1)
    arrow(ax, (19.06, ys[2] + 0.1), (19.06, 5.05), role=TEXT)
    arrow(ax, (19.06, 3.4), (19.06, 4.15), role=TEXT)
    label(ax, 20.05, 2.6, "entailment,\nneutral or\ncontradiction", ha="left", va="top", fontsize=FONT - 1)
    arrow(ax, (21.0, 4.15), (21.0, 2.75), role=TEXT)
    label(ax, 0.6, 0.9, "Nothing is summed before step 3: each word is compared with its own "
          "soft-aligned counterpart first.", ha="left", fontsize=FONT - 1, style="italic")
    return fig


FIGURES = {
    "ch10a_pooling_roles": pooling_roles,
    "ch10b_cross_roles": cross_roles,
    "ch10b_decomposable_attention": decomposable_attention,
}
