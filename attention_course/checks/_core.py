"""What every check shares: comparing arrays, hints, "not attempted yet", the purity guard.

The chapter modules (``ch00`` ... ``ch11``) import these; a learner never calls them.
"""

from __future__ import annotations

import functools
import os
import sys
import textwrap
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch


def _say(message: object) -> None:
    """Print a check's verdict wrapped to 75 characters, the width of the book's code column
    (and of a notebook's output beside it), so that no output scrolls sideways."""
    print(textwrap.fill(str(message), width=75, subsequent_indent="  ", break_long_words=False,
                        break_on_hyphens=False))


class NotAttempted(AssertionError):
    """The exercise still raises ``NotImplementedError``."""


def _reports_not_attempted(check: Callable[..., None]) -> Callable[..., None]:
    """Make ``check`` print "not attempted yet" instead of raising, except under nbgrader.

    nbgrader sets ``NBGRADER_EXECUTION`` (to "autograde" or "validate") while it runs a
    submission; there an untouched exercise must fail its graded cell. In a learner's
    session the message is enough, and raising would stop "Run All" at the first exercise.
    """

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except NotAttempted as exc:
            if os.environ.get("NBGRADER_EXECUTION"):
                raise
            _say(exc)
            return None

    return wrapper


@contextmanager
def _attempt(exercise: str) -> Iterator[None]:
    try:
        yield
    except NotImplementedError:
        raise NotAttempted(
            f"{exercise}: not attempted yet. Replace `raise NotImplementedError()` with your code, "
            f"run the cell, then run this check again."
        ) from None
    except AssertionError:
        raise
    except Exception as exc:  # the learner's code crashed: say so, with the shapes we passed
        raise AssertionError(f"{exercise} raised {type(exc).__name__}: {exc}. {_crash_hint(exc)}") from exc


# What a crash message means, most specific first: (pattern in the message, hint).
_CRASH_HINTS = (
    (r"mat1 and mat2 shapes|mismatch in its core dimension|batch2 tensor|inconsistent tensor size|"
     r"size mismatch|shapes \(\d+,\d*\) and \(\d+,\d*\) not aligned",
     "A matrix product A @ B needs A's last size to equal B's second-to-last: print both shapes "
     "(.T or .transpose(-2, -1) swaps the last two axes)."),
    (r"could not be broadcast|must match the size of tensor|non-singleton dimension",
     "An elementwise operation (+, -, *, /, where) got shapes that do not broadcast: sizes are "
     "matched from the right and must be equal or 1. Print both shapes; keepdim=True or [..., None] "
     "keeps the reduced axis so that the result lines up again."),
    (r"is invalid for input of size|cannot reshape array",
     "A reshape asked for a shape with a different number of entries: print x.shape and the shape "
     "you asked for."),
    (r"view size is not compatible",
     ".view() needs a contiguous tensor: after a transpose use .reshape(...) or .contiguous().view(...)."),
    (r"Dimension out of range|axis \d+ is out of bounds",
     "An axis number does not exist for this tensor: dim=-1 is the last axis whatever the rank."),
    (r"expected scalar type|same dtype|dtype",
     "Two tensors have different dtypes: build new tensors with dtype=x.dtype (or .to(x.dtype))."),
)


def _crash_hint(exc: Exception) -> str:
    """The hint for a crash of the learner's code: which kind of shape error it is, if we can tell."""
    import re

    message = str(exc)
    for pattern, hint in _CRASH_HINTS:
        if re.search(pattern, message):
            return hint
    return "Check the shapes in the exercise text: print the shape of each tensor you build."


def _as_array(name: str, x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if x is None:
        raise AssertionError(f"{name} returned None: did you forget `return`?")
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} must be an array, got {type(x).__name__}") from None


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in idx) + "]"


def _compare(what: str, got: object, expected: np.ndarray, *, atol: float = 1e-6, rtol: float = 0.0,
             legend: str = "") -> None:
    """Shape, finiteness, then the entry that differs most: an entry passes within
    ``atol + rtol * |expected|`` (state ``rtol`` where a correct answer computed in float32,
    or with a standard epsilon, may differ from the float64 reference)."""
    got = _as_array(what, got)
    if got.shape != expected.shape:
        hint = ""
        if got.shape == expected.shape[::-1]:
            hint = " (it looks transposed)"
        elif got.size == expected.size:
            hint = " (same number of entries: a reshape or transpose is off)"
        raise AssertionError(
            f"{what} has shape {got.shape} but should have shape {expected.shape}{legend}{hint}"
        )
    if not np.all(np.isfinite(got)):
        bad = _fmt_index(tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0]))
        raise AssertionError(
            f"{what} contains inf or NaN, first at {bad}: an exponential overflowed or you divided by zero"
        )
    diff = np.abs(got - expected)
    tol = atol + rtol * np.abs(expected)
    excess = np.where(tol > 0, diff / np.where(tol > 0, tol, 1.0), np.where(diff > 0, np.inf, 0.0))
    if excess.max() > 1:
        idx = np.unravel_index(int(excess.argmax()), diff.shape)
        a, b = _distinct(got[idx], expected[idx])
        raise AssertionError(
            f"{what}: entry {_fmt_index(tuple(int(i) for i in idx))} is {a} but should be {b} "
            f"(off by {diff[idx]:.3g})"
        )


def _distinct(got: float, expected: float) -> tuple[str, str]:
    """The two numbers with the fewest significant digits (at least 6) that tell them apart."""
    for digits in range(6, 18):
        a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if a != b:
            return a, b
    return repr(float(got)), repr(float(expected))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _unchanged(name: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after):
        raise AssertionError(f"{name} was modified in place; work on a copy (e.g. x - x.max(...) makes a new array)")


def _number(what: str, x: object) -> float:
    """A Python number, a NumPy scalar or a 0-d tensor, as a float."""
    if x is None:
        raise AssertionError(f"{what} is None: did you forget `return`?")
    if isinstance(x, torch.Tensor) and x.numel() != 1:
        raise AssertionError(f"{what} must be one number, got a tensor of shape {tuple(x.shape)}: reduce with .sum()")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be one number, got {type(x).__name__}") from None


def _call_pure(label: str, fn: Callable, *args: tuple[str, object]) -> object:
    """``fn(*values)``; fail if it changed a tensor argument in place (its values or its shape)."""
    before = [v.detach().clone() if isinstance(v, torch.Tensor) else v for _, v in args]
    result = fn(*(v for _, v in args))
    for (name, v), old in zip(args, before):
        if isinstance(v, torch.Tensor) and not (v.shape == old.shape and torch.equal(v.detach(), old)):
            raise AssertionError(
                f"{label} modified its argument `{name}` in place: never change an input. Methods ending in "
                f"an underscore (t_, div_, masked_fill_) and augmented assignments (q /= ...) write into the "
                f"caller's tensor; write k.T, q / scale or masked_fill(...) to get a new one"
            )
    return result


def _reject_known(label: str, got: np.ndarray, expected: torch.Tensor, wrong: dict, atol: float = 1e-5) -> None:
    """Raise the hint of the first wrong answer that ``got`` matches (and the right answer does not)."""
    expected = expected.detach().numpy()
    if got.shape != expected.shape:
        return
    for hint, value in wrong.items():
        value = value.detach().numpy()
        if value.shape != got.shape or np.allclose(value, expected, atol=atol):
            continue  # not a mistake these inputs can reveal
        if np.allclose(got, value, atol=atol):
            raise AssertionError(f"{label}: {hint}")


_SCORES_LEGEND = " (L, S): one row per query, one column per key"


def _call_with_hint(label: str, fn: Callable, args: tuple[tuple[str, object], ...], hint: str) -> object:
    """:func:`_call_pure`, but a crash of the learner's code becomes an ``AssertionError`` with ``hint``."""
    try:
        return _call_pure(label, fn, *args)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as exc:
        raise AssertionError(f"{label} raised {type(exc).__name__}: {exc}. {hint}") from exc


def _as_bool(label: str, x: object) -> bool:
    if x is None:
        raise AssertionError(f"{label} returned None: did you forget `return`?")
    if isinstance(x, torch.Tensor) and x.numel() != 1:
        raise AssertionError(
            f"{label} returned a tensor of shape {tuple(x.shape)}: return one bool for the whole comparison. "
            f"== compares entry by entry; torch.allclose(a, b) gives one answer"
        )
    if not isinstance(x, (bool, np.bool_, torch.Tensor)):
        raise AssertionError(f"{label} must return a bool, got {type(x).__name__}")
    return bool(x)


def _numbered(*shape: int) -> torch.Tensor:
    """0., 1., 2., ... laid out in ``shape``: the value of an entry is its flat index in the input."""
    return torch.arange(int(np.prod(shape)), dtype=torch.float32).view(*shape)


def _reject_shape(label: str, got: np.ndarray, expected_shape: tuple[int, ...],
                  wrong: list[tuple[tuple[int, ...], str]]) -> None:
    """Raise the hint of the first wrong shape that ``got`` has (and the right answer has not)."""
    expected_shape = tuple(expected_shape)
    for shape, hint in wrong:
        if got.shape == tuple(shape) != expected_shape:
            raise AssertionError(f"{label} has shape {got.shape} but should have shape {expected_shape}: {hint}")


def _compare_numbered(label: str, got: np.ndarray, expected: torch.Tensor, source_shape: tuple[int, ...],
                      legend: str) -> None:
    """:func:`_compare` for a rearrangement of :func:`_numbered` input: say which input entry landed where."""
    exp = expected.detach().numpy().astype(np.float64)
    if got.shape == exp.shape and np.all(np.isfinite(got)):
        differ = np.argwhere(got != exp)
        if len(differ):
            idx = tuple(int(i) for i in differ[0])
            value, size = got[idx], int(np.prod(source_shape))
            if value == int(value) and 0 <= value < size:
                came_from = _fmt_index(tuple(int(i) for i in np.unravel_index(int(value), source_shape)))
                should = _fmt_index(tuple(int(i) for i in np.unravel_index(int(exp[idx]), source_shape)))
                raise AssertionError(
                    f"{label}: entry {_fmt_index(idx)} holds x{came_from} but should hold x{should}{legend}"
                )
    _compare(label, got, exp, atol=0.0, legend=legend)


def _tuple_of(label: str, result: object, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The learner's tuple of len(names) arrays, else a hint naming what to return."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"a tuple of {len(result)}" if isinstance(result, (tuple, list)) else type(result).__name__
        raise AssertionError(f"{label} must return the tuple ({', '.join(names)}), got {got}")
    return tuple(_as_array(f"{name}, {label}", r) for name, r in zip(names, result))


def _expect_shapes(label: str, got: tuple[np.ndarray, ...], names: tuple[str, ...],
                   shapes: tuple[tuple[int, ...], ...], legend: str) -> None:
    for name, g, shape in zip(names, got, shapes):
        if g.shape != tuple(shape):
            hint = ""
            if g.shape == tuple(shape) + (1,):
                hint = ": the reduced axis was kept (keepdim=True); squeeze it, or reduce without keepdim"
            raise AssertionError(f"{name}, {label} has shape {g.shape} but should have shape {tuple(shape)}"
                                 f"{hint}{legend}")


class Delegated(AssertionError):
    """The learner's answer called the library's version of what the exercise asks for."""


def _own_work(exercise: str, fn: Callable, *targets: object) -> Callable:
    """``fn``, made to fail if it calls any of ``targets`` (the course package's or PyTorch's
    version of what the exercise asks the learner to build).

    While ``fn`` runs, every name bound to a target — in the package's modules, in PyTorch's
    ``torch``, ``torch.nn.functional`` and ``torch.nn``, and in the learner's own namespace
    (``fn.__globals__``, so ``from attention_course import softmax`` is caught too) — is
    swapped for a sentinel that raises :class:`Delegated` with a hint. Everything is put
    back afterwards, also when ``fn`` raises. The check computes its expected values before
    or after, never while the learner's code runs, so it still uses the real functions.
    """
    names = {id(t): getattr(t, "__qualname__", getattr(t, "__name__", repr(t))) for t in targets}

    def sentinel_for(target: object) -> Callable:
        def sentinel(*args, **kwargs):
            raise Delegated(
                f"{exercise} calls the library's `{names[id(target)]}`: this exercise asks you to build "
                f"it yourself from tensor operations. The check compares your answer with that very "
                f"function, so calling it proves nothing; use it afterwards to test your own version."
            )

        return sentinel

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        namespaces = [vars(m) for name, m in list(sys.modules.items())
                      if m is not None and (name == "attention_course" or name.startswith("attention_course."))
                      and not name.startswith("attention_course.checks")]
        namespaces += [vars(torch), vars(torch.nn.functional), vars(torch.nn)]
        namespaces.append(getattr(fn, "__globals__", {}))
        swapped = []
        try:
            for target in targets:
                sentinel = sentinel_for(target)
                for namespace in namespaces:
                    for attr, value in list(namespace.items()):
                        if value is target:
                            swapped.append((namespace, attr, value))
                            namespace[attr] = sentinel
            return fn(*args, **kwargs)
        finally:
            for namespace, attr, value in reversed(swapped):
                namespace[attr] = value

    return guarded


# ---------------------------------------------------------------- predict-then-verify questions
# A question is a function the learner fills in (`def answer(): return "b"`), so that an
# unanswered one raises NotImplementedError when checked, as an unwritten exercise does, and
# "Run All" goes on to the next cell.


def _answer(question: str, answer: Callable[[], object]) -> object:
    if not callable(answer):
        raise AssertionError(f"{question}: pass the function itself (answer, not answer())")
    with _attempt(question):
        value = answer()
    if value is None:
        raise AssertionError(f"{question}: the function returned None: did you forget `return`?")
    return value


def _check_choice(question: str, answer: Callable[[], object], correct: str, why: str,
                  wrong: dict[str, str]) -> None:
    """A multiple-choice question: ``answer()`` returns one option letter. A wrong letter gets the
    hint written for that very option (what that choice would mean, and why it does not hold)."""
    options = sorted({correct, *wrong})
    value = _answer(question, answer)
    letter = str(value).strip().lower().strip("()")
    if letter not in options:
        raise AssertionError(f"{question}: answer with one of the letters {', '.join(options)}, got {value!r}")
    if letter != correct:
        raise AssertionError(f"{question}: not ({letter}). {wrong[letter]}")
    _say(f"{question}: correct, ({correct}). {why}")


def _check_number(question: str, answer: Callable[[], object], expected: float, why: str, *,
                  rtol: float = 0.02, atol: float = 0.0, wrong: dict[str, tuple[float, str]] | None = None) -> None:
    """A numeric question: ``answer()`` returns a number within ``atol + rtol·|expected|`` of the
    expected one. A value near one of the ``wrong`` ones (a known mistake) gets that mistake's hint."""
    value = _answer(question, answer)
    try:
        number = float(value.item() if isinstance(value, (torch.Tensor, np.ndarray)) else value)
    except (TypeError, ValueError):
        raise AssertionError(f"{question}: return a number, got {type(value).__name__}") from None
    if not np.isfinite(number):
        raise AssertionError(f"{question}: {number} is not a finite number")
    if abs(number - expected) <= atol + rtol * abs(expected):
        _say(f"{question}: correct, {number:.4g}. {why}")
        return
    for name, (value_wrong, hint) in (wrong or {}).items():
        if abs(number - value_wrong) <= atol + rtol * abs(value_wrong):
            raise AssertionError(f"{question}: {number:.4g} is what {name} gives. {hint}")
    raise AssertionError(f"{question}: {number:.4g} is not it. Work it out again step by step, then run "
                         f"the code to verify.")
