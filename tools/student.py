"""`make student`: the student versions of the exercise notebooks, made by nbgrader.

The instructor sources are ``chapters/NN_topic_exercises.ipynb`` (solutions
between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, hidden tests between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``). For each, this builds a
throw-away nbgrader course in a temporary directory, with the chapter as one
assignment, runs ``nbgrader generate_assignment`` and copies the released
notebook into ``student/`` (committed; Binder's launch buttons open it).

    python tools/student.py            # write student/
    python tools/student.py --check    # exit 1 if student/ is out of date
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "chapters"
STUDENT = ROOT / "student"


def exercise_sources() -> list[Path]:
    return sorted(SOURCES.glob("*_exercises.ipynb"))


def assignment_id(source: Path) -> str:
    """``00_attention_in_one_page_exercises.ipynb`` -> ``ch00``."""
    return "ch" + source.name.split("_", 1)[0]


def nbgrader(course: Path, *args: str) -> None:
    cmd = [
        sys.executable, "-m", "nbgrader", *args,
        f"--CourseDirectory.root={course}",
        f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}",
        "--log-level=WARN",
    ]
    # nbgrader runs `alembic` from PATH: put this interpreter's bin/ (the venv's) first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    (course / "nbgrader_config.py").touch()
    result = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def release(sources: list[Path], course: Path) -> dict[str, Path]:
    """Generate every assignment in ``course``; return {notebook name: released path}.

    One nbgrader API in this process for all of them (a command per assignment would
    import nbgrader eleven times, most of the time this takes).
    """
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    (course / "nbgrader_config.py").touch()
    # nbgrader runs `alembic` from PATH for its database: put this interpreter's bin/ (the venv's) first.
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    try:
        api = NbGraderAPI(config=config)
        released = {}
        for src in sources:
            aid = assignment_id(src)
            (course / "source" / aid).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, course / "source" / aid / src.name)
            result = api.generate_assignment(aid, force=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {aid} failed:\n{result.get('error')}\n{result.get('log')}")
            released[src.name] = course / "release" / aid / src.name
    finally:
        os.environ["PATH"] = path
    return released


def _normalised(path: Path) -> str:
    return json.dumps(json.loads(path.read_text()), sort_keys=True, indent=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that student/ is up to date")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        released = release(exercise_sources(), Path(tmp))
        stale = [
            name for name, path in released.items()
            if not (STUDENT / name).exists() or _normalised(STUDENT / name) != _normalised(path)
        ]
        extra = sorted(p.name for p in STUDENT.glob("*.ipynb") if p.name not in released)
        if args.check:
            for name in stale:
                print(f"student/{name} is out of date with chapters/{name}: run `make student`")
            for name in extra:
                print(f"student/{name} has no source in chapters/")
            return 1 if stale or extra else 0
        STUDENT.mkdir(exist_ok=True)
        for name in extra:
            (STUDENT / name).unlink()
        for name, path in released.items():
            shutil.copy(path, STUDENT / name)
            print(f"wrote student/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
