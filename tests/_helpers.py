"""Small helpers shared by the test modules.

Tensors and comparisons for the modules that compare our attention with PyTorch's; and, for the
modules that run the exercise checks against catalogues of answers (``test_checks_E.py``,
``test_checks_F.py``, ``test_checks_G.py``), the pytest parameters built from those catalogues and
the assertions that a check accepts, rejects, or reports as not attempted.

Not a test module (no ``test_`` prefix): ``from _helpers import ...`` works because
pytest puts ``tests/`` on ``sys.path`` (the directory has no ``__init__.py``).
"""

from __future__ import annotations

from typing import Callable, Iterable

import pytest
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


# --------------------------------------------------------------------------- exercise checks


def wrong_params(catalogues: Iterable[tuple[Callable, dict]]) -> list:
    """``pytest.param(check, wrong, hint)`` for each ``name: (wrong, hint)`` of each ``(check, catalogue)``,
    with the id ``"check_name: name"``."""
    return [pytest.param(check, wrong, hint, id=f"{check.__name__}: {name}")
            for check, catalogue in catalogues for name, (wrong, hint) in catalogue.items()]


def right_params(catalogues: Iterable[tuple[Callable, dict]]) -> list:
    """``pytest.param(check, right)`` for each ``name: right`` of each ``(check, catalogue)``, with the id
    ``"check_name: name"``."""
    return [pytest.param(check, right, id=f"{check.__name__}: {name}")
            for check, catalogue in catalogues for name, right in catalogue.items()]


def rejection(check: Callable, answer: object) -> AssertionError:
    """Run ``check(answer)``, which must fail with an AssertionError that is not "not attempted yet"; return it."""
    from attention_course.checks import NotAttempted

    with pytest.raises(AssertionError) as info:
        check(answer)
    assert not isinstance(info.value, NotAttempted)
    return info.value


def assert_rejected_with_hint(check: Callable, answer: object, hint: str, capsys) -> None:
    """``check(answer)`` fails with a message containing ``hint``, and prints no "correct"."""
    error = rejection(check, answer)
    assert hint in str(error), f"hint {hint!r} not in: {error}"
    assert "correct" not in capsys.readouterr().out


def assert_accepted(check: Callable, answer: object, capsys) -> None:
    """``check(answer)`` passes and prints "correct"."""
    check(answer)
    assert "correct" in capsys.readouterr().out


def assert_stub_not_attempted(check: Callable, stub: Callable, monkeypatch, capsys) -> None:
    """An untouched ``stub`` is reported "not attempted yet" in a notebook (no exception, no "correct"),
    and raises NotAttempted under nbgrader's autograding (``NBGRADER_EXECUTION=autograde``)."""
    from attention_course.checks import NotAttempted

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert check(stub) is None
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "correct" not in out
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted, match="not attempted yet"):
        check(stub)
