"""One seed for a whole notebook, read from the environment.

Every chapter's setup cell calls :func:`seed_everything`. ``make robust``
re-executes the notebooks with ``ATTENTION_COURSE_SEED`` = 1, 2, 3 so that
every claim a notebook asserts is checked at other seeds too.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["SEED_ENV_VAR", "seed_everything"]

SEED_ENV_VAR = "ATTENTION_COURSE_SEED"


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and PyTorch; return the seed used.

    ``seed=None`` reads ``$ATTENTION_COURSE_SEED`` (default 0).
    """
    if seed is None:
        raw = os.environ.get(SEED_ENV_VAR, "0")
        try:
            seed = int(raw)
        except ValueError:
            raise ValueError(f"{SEED_ENV_VAR} must be an integer, got {raw!r}") from None
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
