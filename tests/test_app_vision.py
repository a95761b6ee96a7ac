"""Chapter 10, vision: the shape images, patchify, the tiny ViT and its baselines, and the attention read-outs.

The ViT's patch embedding is checked against ``nn.Conv2d`` (kernel = stride = P),
its attention against ``torch.nn.functional.scaled_dot_product_attention``, and
its layers are the package's ``EncoderLayer`` (checked against PyTorch in
``test_transformer.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attention_course.applications import vision as V
from attention_course.transformer import EncoderLayer


def _unpatchify(patches: torch.Tensor, C: int, P: int, gh: int, gw: int) -> torch.Tensor:
    """Inverse of patchify, written independently: (B, N, C·P·P) -> (B, C, gh·P, gw·P)."""
    B = patches.shape[0]
    out = torch.empty(B, C, gh * P, gw * P, dtype=patches.dtype)
    for n in range(gh * gw):
        i, j = divmod(n, gw)  # row-major
        out[:, :, i * P:(i + 1) * P, j * P:(j + 1) * P] = patches[:, n].reshape(B, C, P, P)
    return out


# --------------------------------------------------------------------------- data


def test_shapes_is_deterministic_and_seeded() -> None:
    a, b, c = V.shapes(40, seed=3), V.shapes(40, seed=3), V.shapes(40, seed=4)
    for x, y in ((a.images, b.images), (a.labels, b.labels), (a.masks, b.masks)):
        assert torch.equal(x, y)
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (40, 1, 28, 28) and a.images.dtype == torch.float32
    assert a.labels.dtype == torch.int64 and a.masks.dtype == torch.bool and len(a) == 40


def test_shapes_does_not_touch_global_rng() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    before = (torch.rand(1), np.random.rand())
    torch.manual_seed(0)
    np.random.seed(0)
    V.shapes(10, seed=1)
    assert (torch.rand(1), np.random.rand()) == before


def test_classes_are_balanced() -> None:
    data = V.shapes(103, size=24, seed=0)
    counts = torch.bincount(data.labels, minlength=4)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masks_follow_the_shape_rule(seed: int) -> None:
    """Without noise the image is brightness x mask, and each mask has its class's geometry."""
    data = V.shapes(60, size=24, min_radius=3, max_radius=5, noise=0.0, seed=seed)
    for image, label, mask in zip(data.images[:, 0].numpy(), data.labels.tolist(), data.masks.numpy()):
        inside = image[mask]
        assert np.all(image[~mask] == 0) and np.allclose(inside, inside[0]) and 0.8 <= inside[0] <= 1.2
        box = _box(mask)
        h, w = box.shape
        assert h == w and h % 2 == 1 and 7 <= h <= 11  # a (2r+1)-box, r in 3..5
        kind = V.SHAPE_CLASSES[label]
        if kind == "square":
            assert box.all()
        elif kind == "disc":
            assert not box[0, 0] and box[h // 2].all() and box[:, w // 2].all()
            assert np.array_equal(box, box.T) and np.array_equal(box, box[::-1])
        elif kind == "triangle":
            assert box[0].sum() == 1 and box[-1].all() and np.array_equal(box, box[:, ::-1])
            assert np.all(np.diff(box.sum(axis=1)) >= 0)  # widens towards the base
        else:  # cross
            assert box[h // 2].all() and box[:, w // 2].all() and not box[0, 0] and not box[-1, -1]
            assert np.array_equal(box, box.T)


def test_shapes_fit_inside_the_image() -> None:
    data = V.shapes(200, size=16, min_radius=7, max_radius=7, noise=0.0, seed=5)
    assert data.masks.flatten(1).sum(1).min() > 0  # never cut off: every shape is drawn whole
    squares = data.masks[data.labels == 0]
    assert torch.all(squares.flatten(1).sum(1) == 15 * 15)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=5, size=10, max_radius=5), dict(n=5, min_radius=4, max_radius=3),
                                    dict(n=5, noise=-0.1), dict(n=2.5)])
def test_shapes_rejects_bad_arguments(kwargs: dict) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ValueError):
        V.shapes(n, **kwargs)


# --------------------------------------------------------------------------- patches


@settings(max_examples=60)
@given(B=st.integers(1, 3), C=st.integers(1, 3), gh=st.integers(1, 4), gw=st.integers(1, 4), P=st.integers(1, 5),
       seed=st.integers(0, 10_000))
def test_patchify_layout(B: int, C: int, gh: int, gw: int, P: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(B, C, gh * P, gw * P, generator=g)
    patches = V.patchify(images, P)
    assert patches.shape == (B, gh * gw, C * P * P)
    n = int(torch.randint(gh * gw, (1,), generator=g))
    i, j = divmod(n, gw)  # row-major order
    assert torch.equal(patches[:, n], images[:, :, i * P:(i + 1) * P, j * P:(j + 1) * P].reshape(B, -1))
    assert torch.equal(_unpatchify(patches, C, P, gh, gw), images)
    assert torch.equal(patches, F.unfold(images, kernel_size=P, stride=P).transpose(1, 2))  # PyTorch's unfold agrees


@settings(max_examples=40)
@given(C=st.integers(1, 3), g=st.integers(1, 4), P=st.integers(1, 5), D=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_patchify_then_linear_equals_strided_conv(C: int, g: int, P: int, D: int, seed: int) -> None:
    torch.manual_seed(seed)
    conv = nn.Conv2d(C, D, kernel_size=P, stride=P).double()
    linear = nn.Linear(C * P * P, D).double()
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(D, C * P * P))  # (D, C, P, P) -> (D, C·P·P)
        linear.bias.copy_(conv.bias)
    images = torch.randn(2, C, g * P, (g + 1) * P, dtype=torch.float64)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)
    torch.testing.assert_close(linear(V.patchify(images, P)), expected)


def test_patchify_does_not_modify_its_input() -> None:
    images = torch.randn(2, 1, 8, 8)
    copy = images.clone()
    V.patchify(images, 4).zero_()
    assert torch.equal(images, copy)


@pytest.mark.parametrize("shape,P", [((2, 1, 24, 24), 5), ((2, 1, 24, 20), 8), ((1, 24, 24), 4), ((2, 1, 8, 8), 0)])
def test_patchify_rejects_bad_input(shape: tuple, P: int) -> None:
    with pytest.raises(ValueError, match="P=|must be|patch_size"):
        V.patchify(torch.zeros(shape), P)


def test_patch_masks_marks_patches_touching_the_shape() -> None:
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 3, 4] = True  # one pixel in patch (0, 1) of a 2 x 2 grid with P = 4
    masks[0, 7, 0] = True  # one in patch (1, 0)
    assert V.patch_masks(masks, 4).tolist() == [[False, True, True, False]]
    with pytest.raises(ValueError):
        V.patch_masks(masks.float(), 4)


# --------------------------------------------------------------------------- models


def _vit(**kwargs) -> V.TinyViT:
    torch.manual_seed(0)
    return V.TinyViT(12, 4, d_model=16, num_heads=2, d_ff=24, num_layers=2, **kwargs)


def test_vit_shapes_and_weights() -> None:
    model = _vit().eval()
    images = torch.randn(5, 1, 12, 12)
    logits, weights = model(images)
    assert logits.shape == (5, 4) and len(weights) == 2
    for w in weights:
        assert w.shape == (5, 2, 10, 10)  # T = 1 + 9 patches
        assert torch.all(w >= 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(5, 2, 10))
    assert isinstance(model.layers[0], EncoderLayer) and model.layers[0].norm_first


def test_vit_attention_matches_torch_sdpa() -> None:
    """Layer 1's output and weights, rebuilt from its projections with PyTorch's own attention."""
    model = _vit().eval()
    images = torch.randn(3, 1, 12, 12)
    x = model.embed(images)  # (B, T, D)
    layer = model.layers[0]
    with torch.no_grad():
        out_ours, w_ours = layer(x)
        h = layer.norm1(x)
        mha = layer.self_attn
        B, T, D = h.shape
        q, k, v = (p(h).view(B, T, 2, D // 2).transpose(1, 2) for p in (mha.q_proj, mha.k_proj, mha.v_proj))
        attended = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, D/H)
        x_ref = x + mha.out_proj(attended.transpose(1, 2).reshape(B, T, D))
        x_ref = x_ref + layer.feed_forward(layer.norm2(x_ref))
        w_ref = torch.softmax(q @ k.transpose(-2, -1) / (D // 2) ** 0.5, dim=-1)
    torch.testing.assert_close(out_ours, x_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w_ours, w_ref, atol=1e-6, rtol=1e-5)


def test_vit_is_blind_to_patch_order_without_positions() -> None:
    """Self-attention is permutation-equivariant: only the position embeddings tell where a patch was."""
    model = _vit().eval()
    images = torch.randn(4, 1, 12, 12)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    shuffled = _unpatchify(V.patchify(images, 4)[:, perm], 1, 4, 3, 3)
    with torch.no_grad():
        model.positions.embedding.weight.zero_()
        a, _ = model(images)
        b, _ = model(shuffled)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        model.positions.embedding.weight.normal_(std=1.0)
        c, _ = model(images)
        d, _ = model(shuffled)
    assert (c - d).abs().max() > 1e-3


def test_vit_prediction_does_not_depend_on_the_rest_of_the_batch() -> None:
    model = _vit().eval()
    images = torch.randn(6, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(images)[0][2:3], model(images[2:3])[0], atol=1e-6, rtol=1e-5)


def test_patch_bag_is_blind_to_patch_order() -> None:
    torch.manual_seed(0)
    model = V.PatchBag(12, 4, d_model=8, d_ff=16).eval()
    images = torch.randn(3, 1, 12, 12)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(2))
    shuffled = _unpatchify(V.patchify(images, 4)[:, perm], 1, 4, 3, 3)
    with torch.no_grad():
        logits, extra = model(images)
        torch.testing.assert_close(logits, model(shuffled)[0], atol=1e-6, rtol=1e-5)
    assert logits.shape == (3, 4) and extra is None


def test_cnn_and_pixel_baselines_shapes() -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 1, 24, 24)
    assert V.TinyCNN(width=4)(images)[0].shape == (2, 4)
    assert V.PixelLinear(24)(images)[0].shape == (2, 4)


@pytest.mark.parametrize("make", [lambda: _vit(), lambda: V.PatchBag(12, 4), lambda: V.PixelLinear(12)])
@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (2, 3, 12, 12), (1, 12, 12)])
def test_models_reject_wrong_images(make, shape: tuple) -> None:
    with pytest.raises(ValueError, match="images must be"):
        make()(torch.zeros(shape))


def test_models_reject_bad_sizes() -> None:
    with pytest.raises(ValueError):
        V.TinyViT(24, 5)
    with pytest.raises(ValueError):
        V.TinyViT(24, 4, d_model=30, num_heads=4)
    with pytest.raises(ValueError):
        V.PatchBag(24, 7)
    with pytest.raises(ValueError):
        V.TinyCNN(width=0)
    with pytest.raises(ValueError, match="tokens must be"):
        _vit().encode(torch.zeros(2, 10, 8))


# --------------------------------------------------------------------------- training


def test_training_is_seeded_and_learns() -> None:
    data = V.shapes(200, size=12, min_radius=3, max_radius=5, noise=0.1, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = V.PixelLinear(12)
        runs.append(V.train_classifier(model, data.images, data.labels, 40, batch_size=50, lr=1e-2, seed=0)["loss"])
    assert runs[0] == runs[1]
    assert np.mean(runs[0][-5:]) < np.mean(runs[0][:5]) - 0.2
    assert V.accuracy(model, data.images, data.labels) > 0.4  # chance is 0.25
    with pytest.raises(ValueError):
        V.train_classifier(model, data.images, data.labels.float(), 5)
    with pytest.raises(ValueError):
        V.train_classifier(model, data.images, data.labels, 5, warmup=-1)


# --------------------------------------------------------------------------- attention read-outs


def test_cls_attention_maps_layout() -> None:
    g = 3
    weights = torch.zeros(2, 1, 10, 10)
    weights[:, :, :, 0] = 1.0
    weights[0, 0, 0] = 0.0
    weights[0, 0, 0, 1 + 5] = 1.0  # [CLS] looks at patch 5 = row 1, column 2
    maps = V.cls_attention_maps(weights, g)
    assert maps.shape == (2, 1, 3, 3)
    assert maps[0, 0, 1, 2] == 1 and maps[0, 0].sum() == 1 and maps[1].sum() == 0
    with pytest.raises(ValueError, match="T = 1"):
        V.cls_attention_maps(weights, 4)


def test_attention_on_shape_ratio() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 0:2, 0:2] = True  # inside patch (0, 0) of a 2 x 2 grid
    uniform = torch.full((2, 2, 2), 0.25)
    torch.testing.assert_close(V.attention_on_shape_ratio(uniform, masks, 4), torch.ones(2))
    focused = torch.zeros(2, 2, 2)
    focused[:, 0, 0] = 0.5  # all of the (un-normalised) mass on the shape's patch
    torch.testing.assert_close(V.attention_on_shape_ratio(focused, masks, 4), torch.full((2,), 4.0))
    with pytest.raises(ValueError):
        V.attention_on_shape_ratio(uniform, masks[:, :4, :4], 4)


@settings(max_examples=50)
@given(seed=st.integers(0, 10_000))
def test_mask_iou_against_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.random((3, 5, 6)) < 0.4, rng.random((3, 5, 6)) < 0.4
    expected = [(x & y).sum() / (x | y).sum() if (x | y).any() else 0.0 for x, y in zip(a, b)]
    got = V.mask_iou(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert torch.all(V.mask_iou(torch.from_numpy(a), torch.from_numpy(a))[torch.from_numpy(a).flatten(1).any(1)] == 1)


def test_mask_iou_rejects_bad_masks() -> None:
    with pytest.raises(ValueError):
        V.mask_iou(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        V.mask_iou(torch.zeros(1, 4, 4, dtype=torch.bool), torch.zeros(1, 4, 5, dtype=torch.bool))


def test_upsample_and_centre_blob() -> None:
    maps = torch.arange(4.0).reshape(1, 2, 2)
    up = V.upsample_patch_map(maps, 3)
    assert up.shape == (1, 6, 6) and up[0, 4, 1] == 2 and up[0, 2, 5] == 1
    blob = V.centre_blob(24, 60.0)
    assert blob.dtype == torch.bool and abs(int(blob.sum()) - 60) <= 12
    assert torch.equal(blob, blob.flip(0)) and torch.equal(blob, blob.T)
    with pytest.raises(ValueError):
        V.centre_blob(24, 0.0)
