"""bench/robust.py reports, for each notebook, numbers its prose shows: each headline is an
{eval} expression of that notebook, so a change in the prose cannot silently empty a column."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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


@pytest.mark.parametrize("shown, number", [("96.8%", 96.8), ("4.2e-06", 4.2e-06), ("−17", -17.0),
                                           ("×4.3", 4.3), ("none", None)])
def test_robust_reads_the_number_a_headline_shows(shown, number) -> None:
    value = robust._number(shown)
    assert (value != value) if number is None else value == pytest.approx(number)


def test_robust_spread_gives_min_median_max_over_the_runs_that_held() -> None:
    expression = robust.HEADLINES["08_transformer"]["transformer {}%"]
    rows = [{"notebook": "08_transformer", "seed": s, "error": error, "shown": {expression: shown}}
            for s, shown, error in [(1, "96.8", None), (2, "90.0", None), (3, "99.0", None), (4, "10.0", "assert")]]
    table = robust.spread(rows, [1, 2, 3, 4])
    row = next(line for line in table if "transformer …%" in line)
    assert row.split("|")[3:7] == [" 90 ", " 96.8 ", " 99 ", " 3 "]  # the failed run is left out


def test_robust_needs_one_core_per_job(tmp_path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "robust.py"), "--jobs", "2", "--cpus", "0",
                          "--out", str(tmp_path / "r.md")], capture_output=True, text=True)
    assert out.returncode == 2 and "needs 2 cores, one per job" in out.stderr
