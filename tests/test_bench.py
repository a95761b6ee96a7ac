"""bench/robust.py reports, for each notebook, numbers its prose shows: each headline is an
{eval} expression of that notebook, so a change in the prose cannot silently empty a column."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("robust", ROOT / "bench" / "robust.py")
robust = importlib.util.module_from_spec(spec)
spec.loader.exec_module(robust)


def _notebook(stem: str) -> Path:
    found = [p for p in (*ROOT.glob(f"chapters/{stem}.ipynb"), *ROOT.glob(f"book/{stem}.ipynb"))]
    assert len(found) == 1, stem
    return found[0]


@pytest.mark.parametrize("stem", sorted(robust.HEADLINES))
def test_every_headline_is_a_number_the_prose_shows(stem):
    cells = json.loads(_notebook(stem).read_text())["cells"]
    shown = {e for c in cells if c["cell_type"] == "markdown"
             for e in robust.prose.eval_expressions("".join(c["source"]))}
    missing = [expr for expr in robust.HEADLINES[stem].values() if expr not in shown]
    assert not missing, f"{stem}: not an {{eval}} of its prose: {missing}"
    assert all("{}" in label for label in robust.HEADLINES[stem])
