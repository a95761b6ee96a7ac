"""The exercise notebooks with the real nbgrader: release, student versions, autograding.

- the committed student versions in student/ are what nbgrader makes from the
  instructor sources in chapters/ (else: run `make student`);
- in a student version, every graded cell fails (no check passes vacuously);
- end to end: a throw-away nbgrader course autogrades a correct, a partly
  wrong and an untouched submission, and the scores are full, partial and zero.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("student_tool", ROOT / "tools" / "student.py")
student_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_tool)

SOURCES = student_tool.exercise_sources()


def _nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_there_are_exercise_notebooks_with_graded_cells():
    assert SOURCES, "no chapters/*_exercises.ipynb found"
    for src in SOURCES:
        nb = nbformat.read(src, as_version=4)
        graded = [c for c in nb.cells if _nbgrader_meta(c).get("grade")]
        solutions = [c for c in nb.cells if _nbgrader_meta(c).get("solution")]
        assert len(graded) >= 3, f"{src.name}: at least 3 autograded exercises"
        assert len(solutions) >= 3
        for cell in solutions:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source


def test_student_versions_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_every_graded_cell_fails_in_the_student_version_under_nbgrader(src, monkeypatch):
    student = nbformat.read(ROOT / "student" / src.name, as_version=4)
    assert not any("BEGIN SOLUTION" in c.source or "HIDDEN TESTS" in c.source for c in student.cells)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the kernel inherits it, as under nbgrader
    NotebookClient(student, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "student")}}).execute()
    graded = [c for c in student.cells if _nbgrader_meta(c).get("grade")]
    assert graded
    for cell in graded:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        grade_id = _nbgrader_meta(cell)["grade_id"]
        assert errors, f"graded cell {grade_id} passes on the untouched student version"
        assert errors[0].ename == "NotAttempted", f"{grade_id}: {errors[0].ename}: {errors[0].evalue}"
        assert "not attempted yet" in errors[0].evalue


# --------------------------------------------------------------------------- nbgrader end to end

NAIVE_SOFTMAX = '''def softmax(x):
    e = np.exp(x)  # overflows for large scores
    return e / e.sum(axis=-1, keepdims=True)
'''


def _submission(released: Path, source: Path, overrides: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with each solution cell filled in, from the source or from ``overrides``."""
    nb = nbformat.read(released, as_version=4)
    solutions = {
        _nbgrader_meta(c)["grade_id"]: c.source
        for c in nbformat.read(source, as_version=4).cells
        if _nbgrader_meta(c).get("solution")
    }
    for cell in nb.cells:
        gid = _nbgrader_meta(cell).get("grade_id")
        if _nbgrader_meta(cell).get("solution") and overrides is not None:
            cell.source = overrides.get(gid, solutions[gid])
    return nb


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    src = SOURCES[0]
    aid = student_tool.assignment_id(src)
    released = student_tool.release([src], course)[src.name]
    submissions = {
        "alice": {},  # every solution correct
        "bob": {"ex1_solution": NAIVE_SOFTMAX},  # a softmax that overflows
        "carol": None,  # the untouched student version
    }
    for student, overrides in submissions.items():
        folder = course / "submitted" / student / aid
        folder.mkdir(parents=True)
        if overrides is None:
            shutil.copy(released, folder / src.name)
        else:
            nbformat.write(_submission(released, src, overrides), folder / src.name)
        student_tool.nbgrader(course, "db", "student", "add", student)
    student_tool.nbgrader(course, "autograde", aid, "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(aid, s).score for s in submissions}
        max_score = gb.find_assignment(aid).max_score
        ex1 = gb.find_grade("ex1_check", src.stem, aid, "bob")
        bob_ex1 = (ex1.score, ex1.max_score)
    return scores, max_score, bob_ex1


def test_autograde_gives_full_marks_to_a_correct_submission(graded_course):
    scores, max_score, _ = graded_course
    assert max_score >= 3
    assert scores["alice"] == max_score


def test_autograde_gives_partial_marks_to_a_partly_wrong_submission(graded_course):
    scores, max_score, (ex1_score, ex1_max) = graded_course
    assert ex1_score == 0 and ex1_max > 0
    assert scores["bob"] == max_score - ex1_max


def test_autograde_gives_zero_to_an_untouched_submission(graded_course):
    scores, _, _ = graded_course
    assert scores["carol"] == 0


def test_graded_cells_carry_points_and_ids():
    for src in SOURCES:
        ids = []
        for cell in json.loads(src.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta:
                ids.append(meta["grade_id"])
                if meta.get("grade"):
                    assert meta.get("points", 0) > 0
        assert len(ids) == len(set(ids)), f"{src.name}: duplicate grade_id"

