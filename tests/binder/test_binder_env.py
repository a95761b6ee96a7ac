"""The Binder environment runs what learners run there.

``tools/binder_env.py`` builds it without Docker, as repo2docker would, from the files
under ``binder/`` only: a fresh venv with runtime.txt's Python and ``pip install -r
binder/requirements.txt`` from the repository root (its ``-e .`` installs the package).
Then, in that environment and nowhere else:

- the versions are the pinned ones, and JupyterLab loads jupyterlab-myst (an extension
  built for another JupyterLab would be listed, and skipped, as incompatible);
- chapter 0 and a training chapter run as "Run All" does (``tools/prose.py``: cells in
  order, each markdown cell's ``{eval}`` numbers sent to the kernel as jupyterlab-myst
  sends them), with no error and every number filled in;
- every ``student/`` notebook runs from top to bottom untouched: each check says "not
  attempted yet" and nothing else fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import binder_env  # noqa: E402
import pins  # noqa: E402

CHAPTERS = ["chapters/00_attention_in_one_page.ipynb",
            "chapters/10d_time_series_dna_recommendation.ipynb"]   # trains a forecaster, a motif finder, a recommender
STUDENT = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "student").glob("*.ipynb"))
LIBRARY_REPR = re.compile(r"np\.\w+\(|tensor\(|array\(")


@pytest.fixture(scope="session")
def python() -> Path:
    return binder_env.build()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXECUTION", "VIRTUAL_ENV", "PYTHONPATH")}
    env["MPLBACKEND"] = "Agg"
    return env


def _run_all(python: Path, notebook: str) -> list[dict]:
    out = subprocess.run([str(python), str(ROOT / "tools" / "prose.py"), "--json", notebook],
                         cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=900)
    assert out.stdout.strip(), f"{notebook}: no output\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_environment_is_binders(python):
    probe = subprocess.run(
        [str(python), "-c",
         "import sys, json, importlib.metadata as md, attention_course;"
         "print(json.dumps({'python': sys.version_info[:2], 'package': attention_course.__file__,"
         f"'versions': {{n: md.version(n) for n in {sorted(pins.read_pins()[0])!r}}}}}))"],
        capture_output=True, text=True, env=_env(), check=True)
    facts = json.loads(probe.stdout)
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    assert ".".join(map(str, facts["python"])) == runtime
    assert Path(facts["package"]).is_relative_to(ROOT), "the package should be the repository's (-e .)"
    wanted = dict(line.split("==") for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
                  if "==" in line)
    assert facts["versions"] == {n: wanted[n] for n in facts["versions"]}
    # nothing from the test-only part came along: Binder stays lean
    for name in ("jupyter-book", "nbval", "pytest", "nbgrader", "playwright"):
        missing = subprocess.run([str(python), "-c", f"import importlib.metadata as md; md.version({name!r})"],
                                 capture_output=True, env=_env())
        assert missing.returncode != 0, f"{name} is in the Binder environment"


def test_jupyterlab_loads_the_myst_renderer(python):
    listing = subprocess.run([str(python.parent / "jupyter"), "labextension", "list"],
                             capture_output=True, text=True, env=_env())
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    line = next((l for l in text.splitlines() if "jupyterlab-myst" in l), "")
    assert "enabled" in line and "OK" in line, f"jupyterlab-myst is not usable:\n{text}"
    assert "is not compatible" not in text, text
    assert "@jupyter-widgets/jupyterlab-manager" in text, "no widget manager: live sliders would not draw"


@pytest.mark.parametrize("notebook", CHAPTERS)
def test_a_chapter_runs_and_its_prose_fills_in(python, notebook):
    cells = _run_all(python, notebook)
    errors = [(c["index"], e) for c in cells for e in c["errors"]]
    assert not errors, errors
    source = json.loads((ROOT / notebook).read_text())["cells"]
    assert len(cells) == len(source), "Run All stopped early"
    values = [v for c in cells for v in c["values"]]
    assert values, "no {eval} numbers in the prose"
    assert not [v for v in values if LIBRARY_REPR.search(v)], "a number shows as a library repr"


@pytest.mark.parametrize("notebook", STUDENT)
def test_an_untouched_student_notebook_runs_and_says_not_attempted(python, notebook):
    cells = _run_all(python, notebook)
    errors = [(c["index"], e) for c in cells for e in c["errors"]]
    assert not errors, f"a cell fails on the untouched notebook: {errors}"
    source = json.loads((ROOT / notebook).read_text())["cells"]
    assert len(cells) == len(source)
    graded = [i for i, c in enumerate(source) if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert graded
    for i in graded:
        text = "".join(o.get("text", "") for o in cells[i]["outputs"] if o["type"] == "stream")
        assert "not attempted yet" in text, f"cell {i}: {text!r}"
