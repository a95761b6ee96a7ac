"""Chapter 1: the encoder–decoder and its one fixed context vector."""

from __future__ import annotations

from matplotlib.patches import FancyBboxPatch

from .style import FONT, arrow, box, canvas, colour, label, tint

SOURCE = ["the", "small", "black", "cat"]               # S = 4 source words
TARGET = ["le", "chat", "noir", "petit", "<eos>"]       # the decoder's outputs
W, H_CELL, STEP = 1.3, 1.0, 2.05                          # a cell's width and height, cell to cell


def word(ax, x: float, y: float, text: str, *, w: float = W, role: str = "neutral",
         wrong: bool = False) -> None:
    """A token, as a small box with the word in it (lower-left at (x, y)).

    A ``wrong`` token has a dashed outline and a leading "·", as the chapter prints it.
    """
    box(ax, x, y, w, 0.7, "·" + text if wrong else text, role=role, fontsize=FONT - 1,
        dashed=wrong, filled=not wrong)


def strong(ax, x: float, y: float, w: float, h: float, text: str) -> None:
    """A state box drawn heavier than the others: the one vector that gets through."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.15",
                                linewidth=2.6, edgecolor=colour("state"),
                                facecolor=tint("state", 0.6)))
    label(ax, x + w / 2, y + h / 2, text)


def bottleneck():
    """Encoder GRU states h_1..h_S; only h_S (= c) reaches the decoder, at every step."""
    fig, ax = canvas(22.2, 9.0)
    y0 = 3.4                                   # bottom of the row of recurrent cells
    mid = y0 + H_CELL / 2
    xs_enc = [0.6 + STEP * i for i in range(len(SOURCE))]
    x_c = xs_enc[-1] + W + 0.9                 # the context box, between the two GRUs
    w_c, h_c = 2.1, 1.5
    xs_dec = [x_c + w_c + 0.9 + STEP * t for t in range(len(TARGET))]

    # encoder: one GRU state per source word; only the last one goes on
    for i, (x, w_) in enumerate(zip(xs_enc, SOURCE)):
        word(ax, x, 1.5, w_)
        arrow(ax, (x + W / 2, 2.2), (x + W / 2, y0), role="neutral")
        if i < len(SOURCE) - 1:
            box(ax, x, y0, W, H_CELL, f"$h_{i + 1}$", role="state")
            arrow(ax, (x + W, mid), (xs_enc[i + 1], mid), role="state")
        else:
            strong(ax, x, y0, W, H_CELL, "$h_S$")
    label(ax, 0.6, 1.15, "source words $x_1, \\dots, x_S$", ha="left", va="top", fontsize=FONT - 1)
    # a bracket over h_1 .. h_{S-1}: computed, then dropped
    left, right = xs_enc[0] + 0.1, xs_enc[-2] + W - 0.1
    ax.plot([left, left, right, right], [y0 + 1.25, y0 + 1.45, y0 + 1.45, y0 + 1.25],
            color=colour("neutral"), linewidth=1.1)
    label(ax, left, y0 + 1.7, "$h_1, \\dots, h_{S-1}$: never seen by the decoder",
          ha="left", va="bottom", fontsize=FONT - 1, style="italic")
    label(ax, 0.6, 8.6, "encoder (GRU)", ha="left", va="top", fontweight="bold")

    # the bottleneck: one vector of D numbers, whatever S is
    arrow(ax, (xs_enc[-1] + W, mid), (x_c, mid), role="state")
    strong(ax, x_c, mid - h_c / 2, w_c, h_c, "$c = h_S$\n$D$ numbers")
    arrow(ax, (x_c + w_c, mid), (xs_dec[0], mid), role="state")
    label(ax, x_c + w_c + 0.45, mid - 0.3, "$s_0$", va="top", fontsize=FONT - 1)

    # decoder: the same c enters every step (a bus below the cells)
    bus = 2.2
    ax.plot([x_c + w_c - 0.4, x_c + w_c - 0.4, xs_dec[-1] + W / 2],
            [mid - h_c / 2, bus, bus], color=colour("state"), linewidth=2.6, solid_capstyle="round")
    for x in xs_dec:
        arrow(ax, (x + W / 2, bus), (x + W / 2, y0), role="state", width=1.8)
    label(ax, (xs_dec[0] + xs_dec[-1] + W) / 2, bus - 0.35, "the same $c$ enters every step",
          va="top", fontsize=FONT - 1, style="italic")

    # decoder states s_t; each output word is fed back as the next step's input
    y_out = 6.1
    word(ax, xs_dec[0] - STEP, y_out, "<bos>")
    for t, (x, out) in enumerate(zip(xs_dec, TARGET)):
        box(ax, x, y0, W, H_CELL, f"$s_{t + 1}$", role="state")
        if t + 1 < len(TARGET):
            arrow(ax, (x + W, mid), (xs_dec[t + 1], mid), role="state")
        arrow(ax, (x + 0.85, y0 + H_CELL), (x + 0.85, y_out), role="neutral")
        word(ax, x, y_out, out)
        prev_right = x - STEP + W
        arrow(ax, (prev_right, y_out + 0.15), (x + 0.3, y0 + H_CELL), role="neutral", curve=-0.15)
    label(ax, xs_dec[0], 8.6, "decoder (GRU)", ha="left", va="top", fontweight="bold")
    label(ax, xs_dec[0], 7.55, "output words, each fed back as the next input", ha="left",
          va="center", fontsize=FONT - 1)
    return fig


def teacher_forcing():
    """Training feeds the reference words in; greedy decoding feeds its own outputs back."""
    fig, ax = canvas(16.9, 10.8)
    x0 = 7.0                                    # the first decoder cell
    xs = [x0 + STEP * t for t in range(len(TARGET))]
    inputs = ["<bos>"] + TARGET[:-1]
    greedy = ["le", "chien", "petit", "noir", "<eos>"]   # an illustrative run with one slip

    def cells(y0):
        for t, x in enumerate(xs):
            box(ax, x, y0, W, 0.9, f"$s_{t + 1}$", role="state")
            if t + 1 < len(xs):
                arrow(ax, (x + W, y0 + 0.45), (xs[t + 1], y0 + 0.45), role="state")

    # training: the inputs are the reference, shifted right by one step
    yb = 5.6
    label(ax, 0.4, 10.5, "training: teacher forcing", ha="left", va="top", fontweight="bold")
    cells(yb + 1.5)
    for x, w_in, w_out in zip(xs, inputs, TARGET):
        word(ax, x, yb, w_in)
        arrow(ax, (x + W / 2, yb + 0.7), (x + W / 2, yb + 1.5), role="neutral")
        arrow(ax, (x + W / 2, yb + 2.4), (x + W / 2, yb + 3.2), role="neutral")
        word(ax, x, yb + 3.2, w_out)
    label(ax, 0.4, yb + 3.55, "labels: target + <eos>\n(tgt_out)", ha="left", fontsize=FONT - 1)
    label(ax, 0.4, yb + 0.35, "inputs: <bos> + target\n(tgt_in)", ha="left", fontsize=FONT - 1)

    # testing: each output is fed back, so one slip changes every later input
    yb = 0.6
    label(ax, 0.4, 4.6, "testing: greedy decoding", ha="left", va="top", fontweight="bold")
    cells(yb)
    word(ax, xs[0] - STEP, yb + 2.1, "<bos>")
    for t, (x, out) in enumerate(zip(xs, greedy)):
        arrow(ax, (x + 0.85, yb + 0.9), (x + 0.85, yb + 2.1), role="neutral")
        word(ax, x, yb + 2.1, out, wrong=out != TARGET[t])
        arrow(ax, (x - STEP + W, yb + 2.25), (x + 0.3, yb + 0.9), role="neutral", curve=-0.15)
    label(ax, 0.4, yb + 2.45, "outputs, each fed back\nas the next input", ha="left",
          fontsize=FONT - 1)
    label(ax, 0.4, yb + 0.45, "(· = differs from\nthe reference)", ha="left", fontsize=FONT - 1)
    return fig


FIGURES = {"ch01_bottleneck": bottleneck, "ch01_teacher_forcing": teacher_forcing}
