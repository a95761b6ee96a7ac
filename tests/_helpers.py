"""Small helpers shared by the test modules that compare our attention with PyTorch's.

Not a test module (no ``test_`` prefix): ``from _helpers import ...`` works because
pytest puts ``tests/`` on ``sys.path`` (the directory has no ``__init__.py``).
"""

from __future__ import annotations

import torch

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
LEADING = [(), (3,), (2, 4)]  # no batch, (B,), (B, H)


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def qkv(leading: tuple[int, ...], L: int, S: int, E: int, Ev: int, *, seed: int, dtype: torch.dtype = torch.float32):
    """query (..., L, E), key (..., S, E), value (..., S, Ev), each from its own seed."""
    return (
        randn(*leading, L, E, seed=seed, dtype=dtype),
        randn(*leading, S, E, seed=seed + 1, dtype=dtype),
        randn(*leading, S, Ev, seed=seed + 2, dtype=dtype),
    )


def random_mask(*shape: int, seed: int, p: float = 0.5) -> torch.Tensor:
    """Random bool mask (True = may attend) in which every row allows at least one key."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=g) < p
    keep = torch.randint(shape[-1], shape[:-1], generator=g)  # one allowed key per row
    mask.scatter_(-1, keep[..., None], True)
    assert mask.any(-1).all() and not mask.all(), "the mask must allow something per row and hide something"
    return mask


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol)
