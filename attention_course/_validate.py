"""Input checks shared by the torch modules (private).

Every public function of the package checks its inputs here and raises a
``ValueError`` that names what it got and what it expected. Nothing is ever
broadcast silently: a shape that only lines up by accident is rejected.
"""

from __future__ import annotations

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def shape_str(t: torch.Tensor) -> str:
    """``(2, 3, 4)`` for a tensor of that shape, ``(3,)`` for a vector."""
    return str(tuple(t.shape))


def require_tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def require_float(name: str, x: torch.Tensor) -> None:
    require_tensor(name, x)
    if x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def require_min_dims(name: str, x: torch.Tensor, ndim: int, legend: str) -> None:
    if x.dim() < ndim:
        raise ValueError(f"{name} must have at least {ndim} dims {legend}, got shape {shape_str(x)}")


def check_qkv(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor | None = None) -> None:
    """Check query (..., L, E), key (..., S, E), value (..., S, Ev)."""
    require_float("query", query)
    require_float("key", key)
    require_min_dims("query", query, 2, "(..., L, E)")
    require_min_dims("key", key, 2, "(..., S, E)")
    if query.shape[:-2] != key.shape[:-2]:
        raise ValueError(
            f"query {shape_str(query)} and key {shape_str(key)} must have the same leading "
            f"(batch/head) dims, got {tuple(query.shape[:-2])} and {tuple(key.shape[:-2])}"
        )
    if query.dtype != key.dtype:
        raise ValueError(f"query is {query.dtype} but key is {key.dtype}")
    if value is None:
        return
    require_float("value", value)
    require_min_dims("value", value, 2, "(..., S, Ev)")
    if value.shape[:-2] != key.shape[:-2]:
        raise ValueError(
            f"key {shape_str(key)} and value {shape_str(value)} must have the same leading "
            f"(batch/head) dims"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key has S={key.shape[-2]} positions but value has S={value.shape[-2]}; "
            f"key {shape_str(key)}, value {shape_str(value)}"
        )
    if value.dtype != query.dtype:
        raise ValueError(f"query is {query.dtype} but value is {value.dtype}")


def check_same_features(query: torch.Tensor, key: torch.Tensor) -> None:
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query has E={query.shape[-1]} but key has E={key.shape[-1]}; "
            f"query {shape_str(query)}, key {shape_str(key)}"
        )


def check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    """A mask is bool, and either (L, S)-like or has as many dims as the scores.

    Each of its dims must be 1 or equal to the scores' dim. Requiring the same
    number of dims is what stops the classic bug of a (B, T, T) mask added to
    (B, H, T, T) logits, where broadcasting from the right lines B up with H.
    """
    require_tensor("mask", mask)
    target = "(" + ", ".join(str(s) for s in scores_shape) + ")"
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}; "
            f"if your mask uses 1 for blocked positions, pass mask == 0"
        )
    if mask.dim() not in (2, len(scores_shape)):
        raise ValueError(
            f"mask {shape_str(mask)} has {mask.dim()} dims but the scores {target} have "
            f"{len(scores_shape)}: give an (L, S) mask or one with {len(scores_shape)} dims "
            f"(insert size-1 axes, e.g. mask[:, None] for a head axis)"
        )
    for m, s in zip(reversed(mask.shape), reversed(scores_shape)):
        if m not in (1, s):
            raise ValueError(f"mask {shape_str(mask)} does not broadcast to the scores {target}")
