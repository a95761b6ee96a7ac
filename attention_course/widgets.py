"""Interactive explorers that work in Jupyter *and* in the kernel-free HTML book.

An explorer is a figure drawn for one value of a control (a slider over a
temperature, a choice of scoring rule, a head selector). Displaying one gives
the front end two renderings of the same thing:

- ``application/vnd.jupyter.widget-view+json``: an ipywidgets control that
  redraws the figure live through the kernel (JupyterLab, Binder, Colab);
- ``text/html``: every frame precomputed into matplotlib's JavaScript player
  (``FuncAnimation.to_jshtml``), which needs no kernel. The book's
  ``_config.yml`` ranks ``text/html`` first for HTML output, so a reader of the
  published page still moves a slider and sees the figure change.

Plotting comes from :mod:`attention_course.viz`; nothing in the core imports
this module.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from . import reference, viz
from .scores import SCORE_RULES, make_score

__all__ = ["Explorer", "softmax_temperature_explorer", "scoring_rule_explorer", "heatmap_explorer", "decoder_steps_explorer",
           "prediction_steps_explorer", "topk_explorer", "mask_explorer",
           "positional_explorer", "tiling_explorer"]


class Explorer:
    """A figure with one control, live in Jupyter and precomputed for HTML.

    Args:
        draw: ``draw(value, fig)`` draws the figure for one control value on an
            empty ``fig``.
        values: the control's values, in order.
        labels: how each value is shown on the control (default ``str(value)``).
        description: the control's name.
        figsize: the figure size in inches.
    """

    def __init__(
        self,
        draw: Callable[[object, Figure], None],
        values: Sequence[object],
        labels: Sequence[str] | None = None,
        *,
        description: str = "value",
        figsize: tuple[float, float] = (6.0, 3.2),
        start: int = 0,
    ) -> None:
        if len(values) == 0:
            raise ValueError("an explorer needs at least one value")
        if labels is not None and len(labels) != len(values):
            raise ValueError(f"{len(labels)} labels for {len(values)} values")
        if not 0 <= start < len(values):
            raise ValueError(f"start must index the values (0..{len(values) - 1}), got {start}")
        self.draw, self.values = draw, list(values)
        self.labels = [str(v) for v in values] if labels is None else list(labels)
        self.description, self.figsize, self.start = description, figsize, start

    def figure(self, index: int) -> Figure:
        """The figure for ``values[index]`` (a new, unshown figure)."""
        fig = plt.figure(figsize=self.figsize)
        self.draw(self.values[index], fig)
        return fig

    def to_jshtml(self, dpi: int = 80) -> str:
        """Every frame in matplotlib's JavaScript player: explorable with no kernel."""
        fig = plt.figure(figsize=self.figsize, dpi=dpi)

        def update(i: int) -> list:
            fig.clear()
            self.draw(self.values[i], fig)
            return []

        update(self.start)
        anim = FuncAnimation(fig, update, frames=len(self.values), interval=700, repeat=False)
        html = anim.to_jshtml(fps=1.5, default_mode="once")
        plt.close(fig)
        # The player links Font Awesome 4 from a CDN for its button icons; the book's
        # theme already ships Font Awesome, and a page read offline must not reach out.
        return re.sub(r'<link[^>]*font-awesome[^>]*>', "", html)

    def widget(self):
        """The live ipywidgets version: a selection slider and the redrawn figure."""
        import ipywidgets as widgets

        slider = widgets.SelectionSlider(
            options=list(zip(self.labels, range(len(self.values)))),
            value=self.start,
            description=self.description,
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="95%"),
        )
        out = widgets.Output()

        def show(index: int) -> None:
            from IPython.display import display

            with out:
                out.clear_output(wait=True)
                fig = self.figure(index)
                display(fig)
                plt.close(fig)

        slider.observe(lambda change: show(change["new"]), names="value")
        show(self.start)
        return widgets.VBox([slider, out])

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.widget()._repr_mimebundle_()
        bundle["text/html"] = self.to_jshtml()
        return bundle


# --------------------------------------------------------------------------- explorers


def softmax_temperature_explorer(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    betas: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    *,
    start: float = 1.0,
) -> Explorer:
    """Weights ``softmax(beta * scores)`` as ``beta`` (inverse temperature) moves.

    Small beta flattens the weights towards uniform; large beta sharpens them
    towards a one-hot pick of the best key (hard attention's limit).
    """
    s = viz.to_numpy(scores)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D (S,), got shape {s.shape}")
    betas = [float(b) for b in betas]
    if start not in betas:
        raise ValueError(f"start={start} must be one of betas {betas}")

    def draw(beta: float, fig: Figure) -> None:
        ax = fig.add_subplot()
        w = reference.softmax(beta * s)
        viz.weights_bar(w, labels, scores=beta * s, ax=ax, title=f"softmax(β · scores), β = {beta:g}: largest weight {w.max():.2f}")

    return Explorer(draw, betas, [f"β = {b:g}" for b in betas], description="β (inverse temperature)",
                    figsize=(1.6 + 0.9 * len(s), 3.4), start=betas.index(start))


def scoring_rule_explorer(
    query: torch.Tensor | np.ndarray,
    keys: torch.Tensor | np.ndarray,
    labels: Sequence[str] | None = None,
    *,
    rules: Sequence[str] = SCORE_RULES,
    seed: int = 0,
) -> Explorer:
    """Scores and weights of one query (E,) against keys (S, E) under each scoring rule.

    The learned rules (general, concat, additive) use freshly initialised
    parameters from ``seed``: the point is the shape of the computation, not a
    trained model.
    """
    q = torch.as_tensor(viz.to_numpy(query), dtype=torch.float64)
    k = torch.as_tensor(viz.to_numpy(keys), dtype=torch.float64)
    if q.dim() != 1 or k.dim() != 2 or k.shape[1] != q.shape[0]:
        raise ValueError(f"query must be (E,) and keys (S, E) with the same E, got {tuple(q.shape)} and {tuple(k.shape)}")
    E = q.shape[0]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    modules = {rule: make_score(rule, E, E).double() for rule in rules}
    torch.random.set_rng_state(gen_state)  # do not disturb the notebook's own random stream
    with torch.no_grad():
        results = {rule: m(q[None, None, :], k[None]).reshape(-1).numpy() for rule, m in modules.items()}  # (S,)

    def draw(rule: str, fig: Figure) -> None:
        ax = fig.add_subplot()
        s = results[rule]
        viz.weights_bar(reference.softmax(s), labels, scores=s, ax=ax, title=f"rule: {rule}")

    return Explorer(draw, list(rules), description="scoring rule", figsize=(1.6 + 0.9 * k.shape[0], 3.4))


def heatmap_explorer(
    weights: torch.Tensor | np.ndarray,
    frame_labels: Sequence[str],
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    description: str = "head",
) -> Explorer:
    """An attention heatmap (L, S) with a selector over several maps (heads, layers or steps).

    ``weights`` is (frames, L, S): one map per selector position, one label per map in ``frame_labels``.
    """
    w = viz.to_numpy(weights)
    if w.ndim != 3:
        raise ValueError(f"weights must be (frames, L, S), got shape {w.shape}")
    if len(frame_labels) != w.shape[0]:
        raise ValueError(f"{len(frame_labels)} frame labels for {w.shape[0]} maps")
    L, S = w.shape[1:]

    def draw(i: int, fig: Figure) -> None:
        ax = fig.add_subplot()
        viz.attention_heatmap(w[i], query_labels, key_labels, ax=ax, title=f"{description}: {frame_labels[i]}")

    return Explorer(draw, list(range(w.shape[0])), list(frame_labels), description=description,
                    figsize=(2.2 + 0.75 * S, 1.6 + 0.55 * L))


def decoder_steps_explorer(
    weights: torch.Tensor | np.ndarray,
    source: Sequence[str],
    target: Sequence[str],
    alignment: Sequence[int] | None = None,
) -> Explorer:
    r"""Step through a decoder's time steps: the mix of source words in each step's context.

    ``weights`` is (T, S): row t holds the weights :math:`a_{t\cdot}` used while
    producing ``target[t]``. With ``alignment``, the truly aligned source word
    of each step is drawn in orange.
    """
    w = viz.to_numpy(weights)
    if w.ndim != 2 or w.shape[1] != len(source) or w.shape[0] < len(target):
        raise ValueError(f"weights must be (T, S) with S={len(source)} and T >= {len(target)}, got shape {w.shape}")
    if alignment is not None and len(alignment) != len(target):
        raise ValueError(f"alignment has {len(alignment)} entries for {len(target)} target words")

    def draw(t: int, fig: Figure) -> None:
        ax = fig.add_subplot()
        viz.weights_bar(w[t], list(source), ax=ax,
                        title=f"step {t + 1}: producing “{target[t]}”, context = Σ a·h over the source")
        if alignment is not None:
            ax.patches[alignment[t]].set_color("tab:orange")
        ax.tick_params(axis="x", labelrotation=60)

    labels = [f"{t + 1}: {word}" for t, word in enumerate(target)]
    return Explorer(draw, list(range(len(target))), labels, description="decoder step",
                    figsize=(1.5 + 0.42 * len(source), 3.6))


def prediction_steps_explorer(
    probs: torch.Tensor | np.ndarray,
    vocab: Sequence[str],
    output: Sequence[str],
    reference: Sequence[str],
    *,
    k: int = 8,
) -> Explorer:
    """Step through autoregressive decoding: the k most probable next tokens at each step.

    ``probs`` is (T, vocab_size): row t is the decoder's distribution at step t, after it
    was fed its own previous outputs. The chosen token (the argmax, ``output[t]``)
    is blue, the reference token orange when it differs.
    """
    p = viz.to_numpy(probs)
    if p.ndim != 2 or p.shape[1] != len(vocab) or p.shape[0] < len(output):
        raise ValueError(f"probs must be (T, vocab_size) with vocab_size={len(vocab)} and T >= {len(output)}, "
                         f"got shape {p.shape}")

    def draw(t: int, fig: Figure) -> None:
        ax = fig.add_subplot()
        top = np.argsort(p[t])[::-1][:k]
        words = [vocab[i] for i in top]
        bars = ax.bar(range(k), p[t, top], color="lightgray")
        ref = reference[t] if t < len(reference) else "<eos>"
        for j, word in enumerate(words):
            if word == output[t]:
                bars[j].set_color("tab:blue")
            elif word == ref:
                bars[j].set_color("tab:orange")
        ax.set_xticks(range(k), labels=words, rotation=45)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("probability")
        verdict = "right" if output[t] == ref else f"wrong (reference: {ref})"
        ax.set_title(f"step {t + 1}: chose “{output[t]}”, {verdict}")

    labels = [f"{t + 1}: {w}" for t, w in enumerate(output)]
    return Explorer(draw, list(range(len(output))), labels, description="decoding step", figsize=(6.0, 3.6))


def topk_explorer(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    ks: Sequence[int] | None = None,
    *,
    start: int | None = None,
) -> Explorer:
    """Soft weights beside hard top-k picks, as ``k`` moves (chapter 4).

    Grey bars: ``softmax(scores)``. Blue bars: hard attention's share of the
    output, ``1/k`` on each of the k highest-scoring keys and 0 elsewhere (the
    output is the mean of the chosen values). At k = 1 hard attention is the
    argmax; at k = S it is the plain average, whatever the scores.
    """
    s = viz.to_numpy(scores)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D (S,), got shape {s.shape}")
    S = s.shape[0]
    if labels is not None and len(labels) != S:
        raise ValueError(f"labels has {len(labels)} entries for {S} scores")
    ks = list(range(1, S + 1)) if ks is None else list(ks)
    if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= S for k in ks):
        raise ValueError(f"every k must be an int in 1..S={S}, got {ks}")
    ks = [int(k) for k in ks]
    start = ks[0] if start is None else start
    if start not in ks:
        raise ValueError(f"start={start} must be one of ks {ks}")
    soft = reference.softmax(s)
    order = np.argsort(-s, kind="stable")

    def draw(k: int, fig: Figure) -> None:
        ax = fig.add_subplot()
        hard = np.zeros(S)
        hard[order[:k]] = 1.0 / k
        x = np.arange(S)
        ax.bar(x - 0.2, soft, width=0.4, color="lightgray", label="soft: softmax(scores)")
        ax.bar(x + 0.2, hard, width=0.4, color="tab:blue", label=f"hard top-{k}: 1/k on each pick")
        ax.set_xticks(x, labels=labels if labels is not None else [str(i) for i in x])
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("share of the output")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"k = {k}: hard attention averages the {k} highest-scoring value{'s' if k > 1 else ''}")

    return Explorer(draw, ks, [f"k = {k}" for k in ks], description="k", figsize=(1.8 + 0.7 * S, 3.6),
                    start=ks.index(start))


def mask_explorer(
    masks: dict[str, torch.Tensor | np.ndarray],
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
) -> Explorer:
    """Step through named boolean masks (L, S): green = may attend (``True``), grey = blocked (chapter 5).

    Each frame shows one mask with the number of allowed pairs per query row,
    so that a fully masked row (a padding query) stands out.
    """
    if not masks:
        raise ValueError("mask_explorer needs at least one mask")
    arrays = {name: (m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m))
              for name, m in masks.items()}
    for name, a in arrays.items():
        if a.ndim != 2 or a.dtype != bool:
            raise ValueError(f"mask {name!r} must be a 2-D bool array (L, S), got {a.dtype} {a.shape}")
    L = max(a.shape[0] for a in arrays.values())
    S = max(a.shape[1] for a in arrays.values())
    names = list(arrays)

    def draw(name: str, fig: Figure) -> None:
        ax = fig.add_subplot()
        a = arrays[name]
        ax.imshow(a, cmap="Greens", vmin=-0.4, vmax=1.2, aspect="equal")
        ql = query_labels if query_labels is not None and len(query_labels) == a.shape[0] else range(a.shape[0])
        kl = key_labels if key_labels is not None and len(key_labels) == a.shape[1] else range(a.shape[1])
        ax.set_xticks(range(a.shape[1]), labels=list(kl), rotation=45)
        ax.set_yticks(range(a.shape[0]), labels=[f"{q}  ({int(n)})" for q, n in zip(ql, a.sum(axis=1))])
        ax.set_xlabel("key position (S)")
        ax.set_ylabel("query position (L), (allowed keys)")
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                ax.text(j, i, "✓" if a[i, j] else "·", ha="center", va="center", fontsize=9,
                        color="black" if a[i, j] else "gray")
        ax.set_title(f"{name}: True (✓) = may attend")

    return Explorer(draw, names, names, description="mask", figsize=(2.6 + 0.5 * S, 1.6 + 0.45 * L))


def positional_explorer(
    pe: torch.Tensor | np.ndarray,
    frames: Sequence[int] | None = None,
    *,
    over: str = "position",
    labels: Sequence[str] | None = None,
) -> Explorer:
    """Step through a position table (P, D) by position or by dimension (chapter 7).

    ``over="position"``: each frame marks one position p on the table and draws
    the vector PE(p) and its similarity PE(p)·PE(q) / PE(p)·PE(p) with every
    position q. ``over="dimension"``: each frame marks one dimension and draws
    its value against the position, to read its wavelength. ``frames`` are the
    positions (or dimensions) to offer, by default at most 16 evenly spaced.
    """
    table = viz.to_numpy(pe).astype(np.float64)
    if table.ndim != 2:
        raise ValueError(f"pe must be a (P, D) table, got shape {table.shape}")
    if over not in ("position", "dimension"):
        raise ValueError(f"over must be 'position' or 'dimension', got {over!r}")
    P, D = table.shape
    n = P if over == "position" else D
    if frames is None:
        frames = list(range(0, n, max(1, -(-n // 16))))
    frames = [int(f) for f in frames]
    if not frames or min(frames) < 0 or max(frames) >= n:
        raise ValueError(f"frames must be {over}s in 0..{n - 1}, got {frames}")
    if labels is None:
        labels = [f"{over} {f}" for f in frames]
    vmax = float(np.abs(table).max()) or 1.0

    def draw(f: int, fig: Figure) -> None:
        if over == "position":
            ax_table, ax_vec, ax_sim = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1, 1]})
        else:
            ax_table, ax_vec = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 2]})
        ax_table.imshow(table, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
        ax_table.set_xlabel("dimension")
        ax_table.set_ylabel("position")
        if over == "position":
            ax_table.axhline(f, color="black", lw=1.5)
            ax_table.set_title(f"the table, position {f} marked")
            ax_vec.plot(range(D), table[f], color="C0", marker=".", lw=1)
            ax_vec.set_xlabel("dimension")
            ax_vec.set_title(f"PE({f}), dimension by dimension")
            sim = table @ table[f] / max(float(table[f] @ table[f]), 1e-12)  # (P,)
            ax_sim.plot(range(P), sim, color="C1", lw=1.5)
            ax_sim.axvline(f, color="C1", ls=":", lw=1)
            ax_sim.axhline(0, color="grey", lw=0.5)
            ax_sim.set_ylim(-1.1, 1.1)
            ax_sim.set_xlabel("position q")
            ax_sim.set_title(f"PE({f})·PE(q) / PE({f})·PE({f})")
        else:
            ax_table.axvline(f, color="black", lw=1.5)
            ax_table.set_title(f"the table, dimension {f} marked")
            ax_vec.plot(range(P), table[:, f], color="C0", lw=1.5, marker=".")
            ax_vec.set_xlabel("position")
            ax_vec.set_title(f"dimension {f} along the positions")
        ax_vec.set_ylim(-1.15 * vmax, 1.15 * vmax)
        ax_vec.axhline(0, color="grey", lw=0.5)
        fig.tight_layout()

    return Explorer(draw, frames, list(labels), description=over, figsize=(11.0, 3.4))


def tiling_explorer(
    ns: Sequence[int],
    standard_bytes: Sequence[float] | np.ndarray,
    tiled_bytes: dict[int, Sequence[float] | np.ndarray],
    seconds: dict[int, float] | None = None,
    *,
    standard_seconds: float | None = None,
    time_n: int | None = None,
    picture_n: int | None = None,
) -> Explorer:
    """Step through the block sizes of tiled attention: which tile is live, peak memory, time (chapter 11).

    Draws only the numbers it is given (measure them first, e.g. with
    :func:`attention_course.timing.peak_memory`); it times nothing itself.

    Args:
        ns: the sequence lengths T = L = S measured, increasing.
        standard_bytes: (len(ns),) peak bytes of standard attention at each length.
        tiled_bytes: block size T_tile -> (len(ns),) peak bytes of tiled attention
            with (T_tile, T_tile) tiles at each length. One frame per block
            size, in increasing order.
        seconds: block size -> seconds per call at length ``time_n`` (same keys
            as ``tiled_bytes``); adds a panel of times, with
            ``standard_seconds`` as a reference line.
        picture_n: the length T of the score-matrix picture (default ``max(ns)``).

    Each frame shows, for one block size T_tile: the (T, T) score matrix cut
    into (T_tile, T_tile) tiles, with the tiles already done, the one tile held
    in memory and the row of tiles whose queries share a running (m, r, O)
    state (running max, running sum, unnormalised output); peak memory against
    T, standard and tiled (other block sizes in grey); and, with ``seconds``,
    the time of every block size with this one highlighted. (The figure's own
    labels write the length as n.)
    """
    ns_arr = np.asarray(ns)
    if ns_arr.ndim != 1 or len(ns_arr) < 2 or not np.issubdtype(ns_arr.dtype, np.integer) or ns_arr.min() < 1 \
            or np.any(np.diff(ns_arr) <= 0):
        raise ValueError(f"ns must be at least 2 increasing positive ints, got {list(ns)}")
    std = np.asarray(standard_bytes, dtype=np.float64)
    if std.shape != ns_arr.shape or not np.all(np.isfinite(std) & (std > 0)):
        raise ValueError(f"standard_bytes must be {len(ns_arr)} positive numbers, one per length in ns, "
                         f"got shape {std.shape}")
    if not tiled_bytes:
        raise ValueError("tiling_explorer needs tiled_bytes for at least one block size")
    tiled = {}
    for b, values in tiled_bytes.items():
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"block sizes must be positive ints, got {b!r}")
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != ns_arr.shape or not np.all(np.isfinite(arr) & (arr > 0)):
            raise ValueError(f"tiled_bytes[{b}] must be {len(ns_arr)} positive numbers, one per length in ns, "
                             f"got shape {arr.shape}")
        tiled[int(b)] = arr
    blocks = sorted(tiled)
    if seconds is not None:
        if sorted(seconds) != blocks:
            raise ValueError(f"seconds must have the block sizes {blocks} as keys, got {sorted(seconds)}")
        if any(not np.isfinite(seconds[b]) or seconds[b] <= 0 for b in blocks) or \
                (standard_seconds is not None and not standard_seconds > 0):
            raise ValueError("seconds and standard_seconds must be positive")
    n_pic = int(ns_arr[-1]) if picture_n is None else picture_n
    if isinstance(n_pic, bool) or not isinstance(n_pic, (int, np.integer)) or n_pic < 1:
        raise ValueError(f"picture_n must be a positive int, got {picture_n!r}")
    mib = 2.0**20
    # tile states for the picture: 0 not yet, 1 done, 2 the query block's row (its m, r, O are live), 3 the live tile
    cmap = plt.matplotlib.colors.ListedColormap(["white", "#c6dbef", "#fdd0a2", "tab:red"])

    def draw(b: int, fig: Figure) -> None:
        axes = fig.subplots(1, 3 if seconds is not None else 2,
                            gridspec_kw={"width_ratios": [1, 1.3, 1.1] if seconds is not None else [1, 1.3]})
        ax_pic, ax_mem = axes[0], axes[1]
        tiles = -(-n_pic // b)  # tiles per side, the last one possibly partial
        row, col = tiles // 2, tiles // 3  # a moment in the middle of the loop
        state = np.zeros((tiles, tiles))
        state[:row] = 1
        state[row] = 2
        state[row, :col] = 1
        state[row, col] = 3
        ax_pic.imshow(state, cmap=cmap, vmin=0, vmax=3, extent=(0, n_pic, n_pic, 0), interpolation="nearest")
        if tiles <= 64:
            for edge in range(b, n_pic, b):
                ax_pic.axhline(edge, color="grey", lw=0.3)
                ax_pic.axvline(edge, color="grey", lw=0.3)
        ax_pic.set_xlabel("key position (S)")
        ax_pic.set_ylabel("query position (L)")
        tile_bytes = min(b, n_pic) ** 2 * 4  # float32 scores
        tile_size = f"{tile_bytes / mib:,.0f} MiB" if tile_bytes >= mib else f"{tile_bytes / 1024:,.0f} KiB"
        ax_pic.set_title(f"n = {n_pic}: one {min(b, n_pic)}×{min(b, n_pic)} tile live\n"
                         f"({tile_size} of {n_pic * n_pic * 4 / mib:,.0f} MiB of scores)", fontsize=9)
        for other in blocks:
            if other != b:
                ax_mem.plot(ns_arr, tiled[other] / mib, color="lightgrey", lw=1, marker=".", zorder=1)
        ax_mem.plot(ns_arr, std / mib, color="black", marker="o", ms=4, label="standard", zorder=2)
        ax_mem.plot(ns_arr, tiled[b] / mib, color="tab:red", marker="o", ms=4, lw=2, label=f"tiled, block {b}",
                    zorder=3)
        ax_mem.set_xscale("log", base=2)
        ax_mem.set_yscale("log")
        ax_mem.set_xlabel("n = L = S")
        ax_mem.set_ylabel("peak memory (MiB)")
        ax_mem.grid(alpha=0.3)
        ax_mem.legend(fontsize=8, loc="upper left")
        ax_mem.set_title(f"at n = {ns_arr[-1]}: {tiled[b][-1] / mib:,.1f} MiB tiled, "
                         f"{std[-1] / mib:,.0f} MiB standard", fontsize=9)
        if seconds is not None:
            ax_t = axes[2]
            ms = [1e3 * seconds[other] for other in blocks]
            bars = ax_t.bar(range(len(blocks)), ms, color="lightgrey")
            bars[blocks.index(b)].set_color("tab:red")
            ax_t.set_xticks(range(len(blocks)), labels=[str(other) for other in blocks])
            if standard_seconds is not None:
                ax_t.axhline(1e3 * standard_seconds, color="black", ls="--", lw=1, label="standard")
                ax_t.legend(fontsize=8)
            ax_t.set_xlabel("block size")
            ax_t.set_ylabel("ms per call")
            where = f" at n = {time_n}" if time_n is not None else ""
            ax_t.set_title(f"time{where}: block {b}, {1e3 * seconds[b]:,.0f} ms", fontsize=9)
        fig.tight_layout()

    return Explorer(draw, blocks, [f"block {b}" for b in blocks], description="block size",
                    figsize=(12.0 if seconds is not None else 8.5, 3.8))
