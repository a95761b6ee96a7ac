"""The explorers: a live ipywidget for Jupyter and a kernel-free player for the HTML book."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

import attention_course as ac
from attention_course import widgets

matplotlib.use("Agg")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _frames(html: str) -> int:
    # matplotlib's player stores one base64 image per frame: frames[0] = "data:image/png;base64,..."
    return len(re.findall(r"frames\[\d+\] = \"data:image/png;base64", html))


EXPLORERS = {
    "temperature": lambda: widgets.softmax_temperature_explorer([0.75, 0.1, 0.3], ["a", "b", "c"]),
    "scoring rule": lambda: widgets.scoring_rule_explorer(np.arange(4.0) / 4, np.eye(3, 4), ["a", "b", "c"]),
    "heatmap": lambda: widgets.heatmap_explorer(np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 3)), ["h1", "h2"]),
}


@pytest.mark.parametrize("make", EXPLORERS.values(), ids=EXPLORERS.keys())
def test_explorer_offers_a_live_widget_and_a_kernel_free_player(make):
    explorer = make()
    bundle = explorer._repr_mimebundle_()
    assert WIDGET_MIME in bundle and "model_id" in bundle[WIDGET_MIME]
    html = bundle["text/html"]
    assert _frames(html) == len(explorer.values) >= 2
    assert 'class="anim-slider"' in html
    assert "font-awesome" not in html and "https://" not in html  # nothing fetched from a CDN


def test_temperature_frames_differ_and_sharpen():
    explorer = widgets.softmax_temperature_explorer([2.0, 0.0, -1.0], betas=(0.1, 1.0, 16.0))
    html = explorer.to_jshtml()
    frames = re.findall(r"frames\[\d+\] = \"(data:image/png;base64,[^\"]+)\"", html)
    assert len(frames) == 3 and len(set(frames)) == 3  # each position draws a different figure


def test_scoring_rule_explorer_does_not_disturb_the_global_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    widgets.scoring_rule_explorer(np.ones(4), np.eye(3, 4))
    assert torch.equal(torch.rand(3), expected)


def test_explorer_inputs_are_checked():
    with pytest.raises(ValueError, match="scores must be 1-D"):
        widgets.softmax_temperature_explorer(np.ones((2, 2)))
    with pytest.raises(ValueError, match="start=3.0 must be one of betas"):
        widgets.softmax_temperature_explorer([1.0, 2.0], betas=(1.0, 2.0), start=3.0)
    with pytest.raises(ValueError, match="query must be"):
        widgets.scoring_rule_explorer(np.ones(4), np.ones((3, 5)))
    with pytest.raises(ValueError, match="2 frame labels for 3 maps"):
        widgets.heatmap_explorer(np.ones((3, 2, 2)) / 2, ["a", "b"])


def test_prediction_steps_explorer_marks_choice_and_reference():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    explorer = widgets.prediction_steps_explorer(probs, ["a", "b", "c"], ["a", "c"], ["a", "b"], k=3)
    assert explorer.labels == ["1: a", "2: c"]
    fig = explorer.figure(1)
    ax = fig.axes[0]
    assert "wrong (reference: b)" in ax.get_title()
    colours = {t.get_text(): bar.get_facecolor() for t, bar in zip(ax.get_xticklabels(), ax.patches)}
    assert colours["c"] != colours["b"] != colours["a"]
    with pytest.raises(ValueError, match="probs must be"):
        widgets.prediction_steps_explorer(probs, ["a", "b"], ["a"], ["a"])


def test_decoder_steps_explorer_checks_its_inputs():
    with pytest.raises(ValueError, match="alignment has 1 entries for 2 target words"):
        widgets.decoder_steps_explorer(np.full((2, 3), 1 / 3), ["x", "y", "z"], ["p", "q"], [0])
    explorer = widgets.decoder_steps_explorer(np.eye(3)[[2, 0]], ["x", "y", "z"], ["p", "q"], [2, 0])
    assert _frames(explorer.to_jshtml()) == 2


# --- topk_explorer


def _bar_heights(fig, which: str) -> np.ndarray:
    """Heights of the bars whose legend label starts with ``which`` ("soft" or "hard")."""
    (bars,) = [c for c in fig.axes[0].containers if c.get_label().startswith(which)]
    return np.array([b.get_height() for b in bars])


def test_topk_explorer_offers_a_live_widget_and_a_kernel_free_player():
    explorer = widgets.topk_explorer([0.3, 2.0, -1.0, 0.9], ["a", "b", "c", "d"], ks=(1, 2, 4))
    assert explorer.values == [1, 2, 4] and explorer.labels == ["k = 1", "k = 2", "k = 4"]
    bundle = explorer._repr_mimebundle_()
    assert WIDGET_MIME in bundle and "model_id" in bundle[WIDGET_MIME]
    html = bundle["text/html"]
    assert _frames(html) == 3
    assert 'class="anim-slider"' in html
    assert "font-awesome" not in html and "https://" not in html
    assert _frames(widgets.topk_explorer([1.0, 0.0, 2.0]).to_jshtml()) == 3  # default ks: 1..S


def test_topk_explorer_puts_one_over_k_on_the_top_k_scores():
    import matplotlib.pyplot as plt
    import torch

    scores = np.random.default_rng(0).normal(size=6)
    explorer = widgets.topk_explorer(scores, [f"x{i}" for i in range(6)])
    assert explorer.values == [1, 2, 3, 4, 5, 6]
    soft_expected = torch.softmax(torch.tensor(scores), -1).numpy()
    for index, k in enumerate(explorer.values):
        fig = explorer.figure(index)
        hard = _bar_heights(fig, "hard")
        expected = np.zeros(6)
        expected[torch.topk(torch.tensor(scores), k).indices.numpy()] = 1 / k
        np.testing.assert_allclose(hard, expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(_bar_heights(fig, "soft"), soft_expected, rtol=1e-12, atol=1e-12)
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [f"x{i}" for i in range(6)]
        assert f"k = {k}" in fig.axes[0].get_title()
        plt.close(fig)
    # k = S: the plain average, whatever the scores
    np.testing.assert_allclose(expected, np.full(6, 1 / 6))


def test_topk_explorer_starts_at_the_asked_k():
    explorer = widgets.topk_explorer([1.0, 3.0, 2.0], ks=[3, 1, 2], start=2)
    assert explorer.start == 2 and explorer.values[explorer.start] == 2


def test_topk_explorer_inputs_are_checked():
    with pytest.raises(ValueError, match=r"scores must be 1-D \(S,\), got shape \(2, 2\)"):
        widgets.topk_explorer(np.ones((2, 2)))
    with pytest.raises(ValueError, match="labels has 2 entries for 3 scores"):
        widgets.topk_explorer([1.0, 2.0, 3.0], ["a", "b"])
    for ks in ([0, 1], [1, 4], [-1], [1.7], [True]):
        with pytest.raises(ValueError, match=r"every k must be an int in 1..S=3, got"):
            widgets.topk_explorer([1.0, 2.0, 3.0], ks=ks)
    with pytest.raises(ValueError, match=r"start=3 must be one of ks \[1, 2\]"):
        widgets.topk_explorer([1.0, 2.0, 3.0], ks=[1, 2], start=3)
    assert widgets.topk_explorer([1.0, 2.0, 3.0], ks=[2, 3]).start == 0  # starts at the first k by default


def test_mask_explorer_draws_each_mask_and_checks_its_inputs():
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    pad = torch.tensor([True, True, True, False]).expand(4, 4)
    ex = widgets.mask_explorer({"causal": causal, "padding": pad})
    assert ex.labels == ["causal", "padding"]
    fig = ex.figure(0)
    image = fig.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(image, dtype=bool), causal.numpy())   # the frame shows the mask itself
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["0  (1)", "1  (2)", "2  (3)", "3  (4)"]                 # allowed keys per query row
    assert "anim-slider" in ex.to_jshtml()
    with pytest.raises(ValueError, match="at least one mask"):
        widgets.mask_explorer({})
    with pytest.raises(ValueError, match=r"mask 'f' must be a 2-D bool array \(L, S\), got float32"):
        widgets.mask_explorer({"f": torch.ones(3, 3)})
    with pytest.raises(ValueError, match=r"mask 'v' must be a 2-D bool array"):
        widgets.mask_explorer({"v": torch.ones(3, dtype=torch.bool)})


def test_positional_explorer_marks_the_frame_and_draws_its_row_or_column():
    pe = ac.sinusoidal_encoding(20, 8)  # (P, D)
    ex = widgets.positional_explorer(pe, [0, 3, 7])
    assert ex.labels == ["position 0", "position 3", "position 7"] and ex.values == [0, 3, 7]
    fig = ex.figure(1)
    ax_table, ax_vec, ax_sim = fig.axes
    np.testing.assert_allclose(np.asarray(ax_table.images[0].get_array()), pe.numpy(), rtol=1e-6)
    assert ax_table.lines[0].get_ydata()[0] == 3                         # the marked row is position 3
    np.testing.assert_allclose(ax_vec.lines[0].get_ydata(), pe[3].numpy(), rtol=1e-6)  # PE(3) by dimension
    sim = ax_sim.lines[0].get_ydata()
    assert np.argmax(sim) == 3 and np.isclose(sim[3], 1.0)              # most like itself, scaled to 1
    by_dim = widgets.positional_explorer(pe, over="dimension")
    assert by_dim.values == list(range(8))                               # at most 16 frames: every dimension
    np.testing.assert_allclose(by_dim.figure(2).axes[1].lines[0].get_ydata(), pe[:, 2].numpy(), rtol=1e-6)
    assert len(widgets.positional_explorer(torch.zeros(100, 4)).values) <= 16
    assert "anim-slider" in ex.to_jshtml()
    with pytest.raises(ValueError, match=r"pe must be a \(P, D\) table, got shape \(20,\)"):
        widgets.positional_explorer(pe[:, 0])
    with pytest.raises(ValueError, match="over must be 'position' or 'dimension'"):
        widgets.positional_explorer(pe, over="row")
    with pytest.raises(ValueError, match=r"frames must be positions in 0..19"):
        widgets.positional_explorer(pe, [0, 20])


def test_tiling_explorer_draws_the_given_numbers_for_each_block_size():
    import matplotlib.pyplot as plt

    ns = [256, 512, 1024]
    standard = [16.0 * n * n for n in ns]
    tiled = {256: [3e5 + 512 * n for n in ns], 64: [2e4 + 512 * n for n in ns]}  # keys out of order on purpose
    seconds = {64: 0.3, 256: 0.05}
    ex = widgets.tiling_explorer(ns, standard, tiled, seconds, standard_seconds=0.08, time_n=1024, picture_n=512)
    assert ex.values == [64, 256] and ex.labels == ["block 64", "block 256"]   # one frame per block, in order
    fig = ex.figure(1)
    ax_pic, ax_mem, ax_t = fig.axes
    state = np.asarray(ax_pic.images[0].get_array())
    assert state.shape == (2, 2) and (state == 3).sum() == 1                  # 512 / 256 = 2 tiles a side, one live
    lines = {line.get_label(): line for line in ax_mem.lines}
    np.testing.assert_allclose(lines["standard"].get_ydata(), np.array(standard) / 2**20)
    np.testing.assert_allclose(lines["tiled, block 256"].get_ydata(), np.array(tiled[256]) / 2**20)
    np.testing.assert_allclose(lines["tiled, block 256"].get_xdata(), ns)
    heights = [bar.get_height() for bar in ax_t.patches]
    np.testing.assert_allclose(heights, [300.0, 50.0])                        # ms, in block order
    assert ax_t.patches[1].get_facecolor() != ax_t.patches[0].get_facecolor()  # this frame's block stands out
    assert "block 256" in ax_t.get_title() and "n = 1024" in ax_t.get_title()
    plt.close(fig)
    assert len(widgets.tiling_explorer(ns, standard, tiled).figure(0).axes) == 2  # no times: two panels
    assert _frames(ex.to_jshtml()) == 2


def test_tiling_explorer_inputs_are_checked():
    ns, std, tiled = [256, 512], [1e6, 4e6], {64: [1e5, 2e5]}
    with pytest.raises(ValueError, match="ns must be at least 2 increasing positive ints"):
        widgets.tiling_explorer([512, 256], std, tiled)
    with pytest.raises(ValueError, match="ns must be"):
        widgets.tiling_explorer([256.0, 512.0], std, tiled)
    with pytest.raises(ValueError, match=r"standard_bytes must be 2 positive numbers, one per length in ns, "
                                         r"got shape \(3,\)"):
        widgets.tiling_explorer(ns, [1.0, 2.0, 3.0], tiled)
    with pytest.raises(ValueError, match="at least one block size"):
        widgets.tiling_explorer(ns, std, {})
    with pytest.raises(ValueError, match="block sizes must be positive ints"):
        widgets.tiling_explorer(ns, std, {0: [1e5, 2e5]})
    with pytest.raises(ValueError, match=r"tiled_bytes\[64\] must be 2 positive numbers"):
        widgets.tiling_explorer(ns, std, {64: [1e5, -1.0]})
    with pytest.raises(ValueError, match=r"seconds must have the block sizes \[64\] as keys"):
        widgets.tiling_explorer(ns, std, tiled, {128: 0.1})
    with pytest.raises(ValueError, match="seconds and standard_seconds must be positive"):
        widgets.tiling_explorer(ns, std, tiled, {64: 0.1}, standard_seconds=0.0)
    with pytest.raises(ValueError, match="picture_n must be a positive int"):
        widgets.tiling_explorer(ns, std, tiled, picture_n=0)
