r"""Attention for images: seeded shape images, patches, and a tiny vision transformer.

A vision transformer (ViT, Dosovitskiy et al. 2021) reads an image as a
sequence: cut it into :math:`p_\text{img} \times p_\text{img}` patches, flatten
each, embed it with one linear map, prepend a learned ``[CLS]`` token, add
learned position embeddings, and run a Transformer encoder. The class is read
from the ``[CLS]`` token's final vector.

.. math::
    z_0 = [x_\text{cls};\ \mathrm{patch}_1 W_e;\ \dots;\ \mathrm{patch}_N W_e] + W_\text{pos},\qquad
    z_\ell = \mathrm{EncoderLayer}_\ell(z_{\ell-1}),\qquad
    \hat y = \mathrm{LN}(z_{N_\ell})_0\, W_\text{head}

(one token per row; :math:`W_\text{pos}` the (1 + N, D) table of learned
position vectors, :math:`N_\ell` layers, row 0 of the last one read out).

In self-attention every token (the ``[CLS]`` token and each patch) makes a
query, a key and a value; the ``[CLS]`` row of the weights shows which
patches the ``[CLS]`` token reads from in that layer.

- :func:`shapes`: noisy single-channel images, one shape each, with its class and pixel mask.
- :func:`patchify`, :func:`patch_masks`: images to patch vectors; pixel masks to patch masks.
- :class:`TinyViT`, and the baselines :class:`PixelLinear`, :class:`PatchBag`
  (the same patch tokens, no attention) and :class:`TinyCNN`.
- :func:`train_classifier`, :func:`predict`, :func:`accuracy`.
- :func:`cls_attention_maps`, :func:`attention_on_shape_ratio`,
  :func:`upsample_patch_map`, :func:`mask_iou`, :func:`centre_blob`: reading
  the [CLS] attention against the shape masks.

Shapes: images (B, C, R_h, R_w) with C channels, height R_h and width R_w
(R for a square image's side); p_img the patch side (``patch_size``);
N = (R_h/p_img)(R_w/p_img) patches, g = R / p_img of them per side of a square
image (N = g²); T = 1 + N tokens; D model width; ``num_classes`` classes;
attention weights (B, H, T, T) per layer, H the number of heads.
Taught in chapter 10 (``chapters/10c_vision_transformer.ipynb``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validate import require_float, require_tensor, shape_str
from ..positional import LearnedPositionalEmbedding
from ..transformer import EncoderLayer, FeedForward

__all__ = [
    "SHAPE_CLASSES", "ShapeImages", "shapes", "patchify", "patch_masks",
    "TinyViT", "PatchBag", "TinyCNN", "PixelLinear",
    "train_classifier", "predict", "accuracy",
    "cls_attention_maps", "attention_on_shape_ratio", "upsample_patch_map", "mask_iou", "centre_blob",
]

SHAPE_CLASSES = ("square", "disc", "triangle", "cross")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ShapeImages:
    """A batch of B shape images: ``images`` (B, 1, R, R) float32, ``labels`` (B,) int64
    (an index into ``classes``), ``masks`` (B, R, R) bool (True = pixel of the shape)."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    classes: tuple[str, ...] = SHAPE_CLASSES

    def __len__(self) -> int:
        return self.images.shape[0]


def _shape_mask(kind: str, size: int, cy: int, cx: int, r: int) -> np.ndarray:
    """Bool (size, size) mask of one filled shape of half-size ``r`` centred at pixel (cy, cx)."""
    y, x = np.mgrid[0:size, 0:size]
    dy, dx = y - cy, x - cx
    if kind == "square":
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if kind == "disc":
        return dy**2 + dx**2 <= (r + 0.5) ** 2
    if kind == "triangle":  # apex up, base of width 2r + 1 at the bottom row
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    if kind == "cross":  # a plus sign with arms of width 2 * (r // 3) + 1
        arm = r // 3
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPE_CLASSES}")


def shapes(n: int, *, size: int = 28, min_radius: int = 4, max_radius: int = 6, noise: float = 0.2,
           seed: int = 0) -> ShapeImages:
    """``n`` noisy images, each with one filled shape (square, disc, triangle or cross).

    Each image is Gaussian noise (standard deviation ``noise``) plus one shape
    of brightness drawn from [0.8, 1.2], half-size ``r`` drawn from
    ``min_radius..max_radius`` (the shape fits in a (2r+1) x (2r+1) box) and
    a centre drawn so that the box lies inside the image. The classes are
    balanced (each appears n/4 times, rounded) in a shuffled order. The label
    is the shape's index in :data:`SHAPE_CLASSES`; the mask marks its pixels.

    Seeded by ``seed`` alone (NumPy's ``default_rng``; no global random state).
    Returns a :class:`ShapeImages` with images (n, 1, R, R), R = ``size``.
    """
    for name, v in (("n", n), ("size", size), ("min_radius", min_radius), ("max_radius", max_radius)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if min_radius > max_radius or 2 * max_radius + 1 > size:
        raise ValueError(f"need min_radius <= max_radius and 2 * max_radius + 1 <= size, got "
                         f"min_radius={min_radius}, max_radius={max_radius}, size={size}")
    if not noise >= 0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    K = len(SHAPE_CLASSES)
    labels = rng.permutation(np.arange(n) % K)  # (n,) balanced, shuffled
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        r = int(rng.integers(min_radius, max_radius + 1))
        cy, cx = (int(v) for v in rng.integers(r, size - r, size=2))  # the (2r+1)-box fits
        mask = _shape_mask(SHAPE_CLASSES[label], size, cy, cx, r)
        brightness = rng.uniform(0.8, 1.2)
        images[i, 0] = noise * rng.standard_normal((size, size)) + brightness * mask
        masks[i] = mask
    return ShapeImages(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)),
                       torch.from_numpy(masks))


# --------------------------------------------------------------------------- patches


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    r"""Cut images into non-overlapping square patches and flatten each: (B, C, R_h, R_w) -> (B, N, C·p_img²).

    p_img = ``patch_size`` (``ps`` in the code below). Patches come in row-major order
    (left to right, then top to bottom), N = (R_h/p_img)(R_w/p_img); each is
    flattened in (C, p_img, p_img) order, the layout of a ``Conv2d`` kernel,
    so that ``Conv2d(C, D, kernel_size=ps, stride=ps)`` equals a
    ``Linear(C·p_img², D)`` on the patches whose weight is the conv weight
    reshaped to (D, C·p_img²). Equivalent to::

        x = images.reshape(B, C, R_h // ps, ps, R_w // ps, ps)
        x.permute(0, 2, 4, 1, 3, 5).reshape(B, N, C * ps * ps)

    Raises ``ValueError`` unless images is 4-D and p_img divides R_h and R_w.
    Taught in chapter 10 (vision).
    """
    require_tensor("images", images)
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, R_h, R_w), got shape {shape_str(images)}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
    B, C, H, W = images.shape
    P = patch_size
    if H % P or W % P:
        raise ValueError(f"patch_size p_img={P} must divide the image's height R_h={H} and width R_w={W} "
                         f"(images {shape_str(images)} = (B, C, R_h, R_w))")
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, R_h/p_img, p_img, R_w/p_img, p_img); H, W = R_h, R_w
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, R_h/p_img, R_w/p_img, C, p_img, p_img)
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # (B, N, C·p_img²)


def patch_masks(masks: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Which patches overlap the shape: pixel masks (B, R_h, R_w) bool -> (B, N) bool, row-major as in :func:`patchify`.

    A patch is True if any of its pixels is.
    """
    require_tensor("masks", masks)
    if masks.dim() != 3 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be bool (B, R_h, R_w), got {masks.dtype} of shape {shape_str(masks)}")
    return patchify(masks[:, None].float(), patch_size).amax(dim=-1) > 0  # (B, N)


# --------------------------------------------------------------------------- models


def _check_images(images: torch.Tensor, channels: int, size: int | None = None) -> None:
    require_float("images", images)
    if images.dim() != 4 or images.shape[1] != channels or (
            size is not None and tuple(images.shape[2:]) != (size, size)):
        want = f"(B, C={channels}, R={size}, R={size})" if size is not None else f"(B, C={channels}, R_h, R_w)"
        raise ValueError(f"images must be {want}, got shape {shape_str(images)}")


def _positive_ints(**sizes: int) -> None:
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")


class TinyViT(nn.Module):
    r"""A small vision transformer: patch embedding, ``[CLS]``, learned positions, pre-norm encoder layers.

    Args:
        image_size: side R of the square input images; ``patch_size`` p_img must divide it.
        in_channels: C; num_classes: number of classes.
        d_model, num_heads, d_ff, num_layers: the encoder's width D, heads,
            feed-forward width and depth (layers are
            :class:`attention_course.transformer.EncoderLayer` with
            ``norm_first=True``, as in the ViT paper; their feed-forward uses
            ReLU where the paper uses GELU).

    ``forward(images (B, C, R, R))`` returns the class logits (B, num_classes)
    and the self-attention weights of every layer, a list of (B, H, T, T) with
    T = 1 + N tokens; token 0 is ``[CLS]`` and tokens 1..N are the patches in
    row-major order. No mask: every token may attend to every token.
    """

    def __init__(self, image_size: int = 28, patch_size: int = 4, *, in_channels: int = 1, num_classes: int = 4,
                 d_model: int = 32, num_heads: int = 2, d_ff: int = 64, num_layers: int = 2) -> None:
        super().__init__()
        _positive_ints(image_size=image_size, patch_size=patch_size, in_channels=in_channels,
                       num_classes=num_classes, num_layers=num_layers)
        if image_size % patch_size:
            raise ValueError(f"patch_size={patch_size} must divide image_size={image_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size
        N = self.grid**2
        self.patch_embedding = nn.Linear(in_channels * patch_size**2, d_model)  # W_e: (C·p_img², D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.normal_(self.cls_token, std=0.02)
        self.positions = LearnedPositionalEmbedding(1 + N, d_model)  # one vector per token, [CLS] included
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, norm_first=True) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)  # pre-norm: one last norm on the residual stream
        self.head = nn.Linear(d_model, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input tokens (B, 1 + N, D): ``[CLS]`` then the patch embeddings, plus positions."""
        _check_images(images, self.in_channels, self.image_size)
        tokens = self.patch_embedding(patchify(images, self.patch_size))  # (B, N, D)
        cls = self.cls_token.expand(images.shape[0], -1, -1)  # (B, 1, D)
        return self.positions(torch.cat([cls, tokens], dim=1))  # (B, 1 + N, D)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder and head on tokens (B, T, D), token 0 being ``[CLS]``: logits (B, num_classes), weights."""
        require_float("tokens", tokens)
        D = self.head.in_features
        if tokens.dim() != 3 or tokens.shape[-1] != D:
            raise ValueError(f"tokens must be (B, T, D) with D={D}, got shape {shape_str(tokens)}")
        x, weights = tokens, []
        for layer in self.layers:
            x, w = layer(x)  # (B, T, D), (B, H, T, T)
            weights.append(w)
        return self.head(self.norm(x)[:, 0]), weights  # (B, num_classes) from [CLS]; weights per layer

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.encode(self.embed(images))


class PatchBag(nn.Module):
    """Baseline with the ViT's patch tokens but no attention: a bag of patches.

    Each patch is embedded (the same ``Linear`` as :class:`TinyViT`), passed
    through ``num_layers`` pre-norm residual feed-forward blocks *on its own*,
    and the patch vectors are averaged; the class is read from the average. No
    token ever sees another, and without positions the model cannot tell where
    a patch was. ``forward(images)`` returns ``(logits (B, num_classes), None)``.
    """

    def __init__(self, image_size: int = 28, patch_size: int = 4, *, in_channels: int = 1, num_classes: int = 4,
                 d_model: int = 32, d_ff: int = 64, num_layers: int = 2) -> None:
        super().__init__()
        _positive_ints(image_size=image_size, patch_size=patch_size, d_model=d_model, d_ff=d_ff,
                       num_layers=num_layers)
        if image_size % patch_size:
            raise ValueError(f"patch_size={patch_size} must divide image_size={image_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.patch_embedding = nn.Linear(in_channels * patch_size**2, d_model)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(num_layers))
        self.blocks = nn.ModuleList(FeedForward(d_model, d_ff) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        _check_images(images, self.in_channels, self.image_size)
        x = self.patch_embedding(patchify(images, self.patch_size))  # (B, N, D)
        for norm, block in zip(self.norms, self.blocks):
            x = x + block(norm(x))  # each patch on its own
        return self.head(self.norm(x).mean(dim=1)), None  # (B, num_classes)


class TinyCNN(nn.Module):
    """Baseline: three 3x3 convolutions (two followed by 2x2 max-pooling), a global max-pool, a linear layer.

    Locality (each unit sees a small neighbourhood) and weight sharing across
    positions are built in: the prior a ViT lacks. ``forward(images)`` returns
    ``(logits (B, num_classes), None)``.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 4, width: int = 8) -> None:
        super().__init__()
        _positive_ints(in_channels=in_channels, num_classes=num_classes, width=width)
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        _check_images(images, self.in_channels)
        features = self.features(images)  # (B, 2·width, R_h/4, R_w/4)
        return self.head(features.amax(dim=(2, 3))), None  # global max-pool -> (B, num_classes)


class PixelLinear(nn.Module):
    """Baseline: logistic regression on the raw pixels, ``Linear(C·R·R, num_classes)``. Returns ``(logits, None)``."""

    def __init__(self, image_size: int = 28, *, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        _positive_ints(image_size=image_size, in_channels=in_channels, num_classes=num_classes)
        self.image_size, self.in_channels = image_size, in_channels
        self.linear = nn.Linear(in_channels * image_size**2, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        _check_images(images, self.in_channels, self.image_size)
        return self.linear(images.flatten(1)), None  # (B, num_classes)


# --------------------------------------------------------------------------- training


def _check_data(images: torch.Tensor, labels: torch.Tensor) -> None:
    require_float("images", images)
    require_tensor("labels", labels)
    if images.dim() != 4 or labels.shape != (images.shape[0],) or labels.dtype != torch.int64:
        raise ValueError(f"images must be (B, C, R_h, R_w) and labels int64 (B,), got {shape_str(images)} and "
                         f"{labels.dtype} {shape_str(labels)}")


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int, *,
                     batch_size: int = 64, lr: float = 3e-3, warmup: int = 0, weight_decay: float = 0.0,
                     seed: int = 0) -> dict[str, list[float] | float]:
    """Cross-entropy with AdamW on random mini-batches; ``model(images)`` returns ``(logits (B, num_classes), _)``.

    Batches are drawn (without replacement within an epoch) by a generator
    seeded with ``seed``, so two models trained with the same seed see the
    same batches. ``warmup`` > 0 raises the rate linearly over the first
    ``warmup`` steps, then it decays with a cosine to 0 at ``steps``.
    Returns ``{"loss": [...one per step...], "seconds": wall time}``.
    """
    _check_data(images, labels)
    _positive_ints(steps=steps, batch_size=batch_size)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    g = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    loss_fn = nn.CrossEntropyLoss()
    n, order, losses = images.shape[0], torch.empty(0, dtype=torch.long), []
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=g)])
        idx, order = order[:batch_size], order[batch_size:]
        logits, _ = model(images[idx])  # (B, num_classes)
        loss = loss_fn(logits, labels[idx])
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class ids (B,), in eval mode and in chunks of ``batch_size``."""
    require_float("images", images)
    model.eval()
    return torch.cat([model(images[i:i + batch_size])[0].argmax(dim=-1) for i in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose predicted class is the label."""
    _check_data(images, labels)
    return float((predict(model, images) == labels).float().mean())


# --------------------------------------------------------------------------- reading the attention


def cls_attention_maps(weights: torch.Tensor, grid: int) -> torch.Tensor:
    """The ``[CLS]`` query's weights on the patches, laid out as the image: (B, H, T, T) -> (B, H, g, g).

    Row 0 of each head's weights is the ``[CLS]`` query; columns 1..N are the
    patch keys (column 0, ``[CLS]`` attending to itself, is dropped, so a map
    sums to 1 minus that weight). ``grid`` g = R / p_img, with N = g².
    """
    require_float("weights", weights)
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2] or weights.shape[-1] != 1 + grid * grid:
        raise ValueError(f"weights must be (B, H, T, T) with T = 1 + grid² = {1 + grid * grid}, "
                         f"got shape {shape_str(weights)}")
    B, H = weights.shape[:2]
    return weights[:, :, 0, 1:].reshape(B, H, grid, grid)  # (B, H, g, g), row-major like patchify


def attention_on_shape_ratio(maps: torch.Tensor, masks: torch.Tensor, patch_size: int) -> torch.Tensor:
    r"""Per image, how concentrated the attention is on the shape's patches.

    .. math::
        \text{ratio} = \frac{\sum_{j \in \text{shape}} a_j / \sum_j a_j}{|\text{shape}| / N}

    over the patch keys j, where the shape's patches are those that overlap its
    mask. 1 = no more than uniform attention would give; the largest possible
    value is N / |shape|. maps (B, g, g) patch weights; masks (B, g·p_img,
    g·p_img) bool. Returns (B,).
    """
    require_float("maps", maps)
    if maps.dim() != 3 or masks.dim() != 3 or masks.shape[0] != maps.shape[0] or \
            tuple(masks.shape[1:]) != (maps.shape[1] * patch_size, maps.shape[2] * patch_size):
        raise ValueError(f"maps must be (B, g, g) and masks (B, g·p_img, g·p_img) with p_img={patch_size}, got "
                         f"{shape_str(maps)} and {shape_str(masks)}")
    on = patch_masks(masks, patch_size).to(maps.dtype)  # (B, N)
    a = maps.flatten(1)  # (B, N)
    mass = (a * on).sum(dim=1) / a.sum(dim=1)  # (B,)
    share = on.mean(dim=1)  # (B,)
    return mass / share


def upsample_patch_map(maps: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Each patch's value copied to its p_img x p_img pixels: (..., g, g) -> (..., g·p_img, g·p_img), any dtype."""
    require_tensor("maps", maps)
    if maps.dim() < 2:
        raise ValueError(f"maps must be (..., g, g), got shape {shape_str(maps)}")
    return maps.repeat_interleave(patch_size, dim=-2).repeat_interleave(patch_size, dim=-1)


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of two bool masks (B, R_h, R_w), per image (B,); 0 when both are empty."""
    for name, m in (("predicted", predicted), ("target", target)):
        require_tensor(name, m)
        if m.dtype != torch.bool or m.dim() != 3:
            raise ValueError(f"{name} must be a bool (B, R_h, R_w) mask, got {m.dtype} of shape {shape_str(m)}")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {shape_str(predicted)} and target {shape_str(target)} differ in shape")
    inter = (predicted & target).flatten(1).sum(dim=1).float()
    union = (predicted | target).flatten(1).sum(dim=1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))


def centre_blob(size: int, area: float) -> torch.Tensor:
    """A bool (R, R) disc, R = ``size``, at the image centre with about ``area`` pixels: the trivial mask guess."""
    _positive_ints(size=size)
    if not 0 < area <= size * size:
        raise ValueError(f"area must be in (0, {size * size}], got {area!r}")
    y, x = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    return torch.from_numpy((y - c) ** 2 + (x - c) ** 2 <= area / np.pi)
