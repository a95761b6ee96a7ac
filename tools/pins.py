"""One list of pins: ``requirements.txt``. ``binder/requirements.txt`` is written from it.

``requirements.txt`` has two parts. The first is the learner's environment: what the
notebooks import, and JupyterLab with the MyST renderer that fills in the prose's
numbers. After the line that starts with ``# --- test-only`` come the tools that
build the book, run the tests and grade. Binder gets the first part, with torch from
PyTorch's CPU index (Binder has no GPU), and the course's package itself (``-e .``,
installed from the repository root as repo2docker does).

    python tools/pins.py            # write binder/requirements.txt
    python tools/pins.py --check    # exit 1 if binder/requirements.txt is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
BINDER = ROOT / "binder" / "requirements.txt"
TEST_ONLY_MARKER = "# --- test-only"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(#.*)?$")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def normalise(name: str) -> str:
    """PEP 503 normalised project name: ``Jupyter_Book`` -> ``jupyter-book``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = REQUIREMENTS) -> tuple[dict[str, str], dict[str, str]]:
    """``(learner, test_only)``: {normalised name: version} for each part of requirements.txt."""
    learner: dict[str, str] = {}
    test_only: dict[str, str] = {}
    part = learner
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(TEST_ONLY_MARKER):
            part = test_only
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = PIN.match(stripped)
        if not match:
            raise ValueError(f"{path.name}:{number}: expected an exact pin `name==version`, got {stripped!r}")
        name = normalise(match.group(1))
        if name in learner or name in test_only:
            raise ValueError(f"{path.name}:{number}: {name} is pinned twice")
        part[name] = match.group(2)
    if not test_only:
        raise ValueError(f"{path.name} has no `{TEST_ONLY_MARKER}` line separating the learner's pins")
    return learner, test_only


def binder_requirements(learner: dict[str, str]) -> str:
    lines = [
        "# Written by tools/pins.py from requirements.txt (its learner part): do not edit by hand.",
        "# Binder (repo2docker) reads only binder/ when it exists, with Python from runtime.txt,",
        "# and runs pip from the repository root, so `-e .` installs the course's package.",
        "# Binder has no GPU and 2 GB of memory: torch is the CPU build, from PyTorch's index.",
        f"--extra-index-url {TORCH_CPU_INDEX}",
    ]
    for name, version in learner.items():
        if name == "torch" and "+" not in version:
            version += "+cpu"
        lines.append(f"{name}=={version}")
    lines.append("-e .")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that binder/requirements.txt is up to date")
    args = parser.parse_args()
    learner, _ = read_pins()
    wanted = binder_requirements(learner)
    if args.check:
        if not BINDER.exists() or BINDER.read_text() != wanted:
            print("binder/requirements.txt is out of date with requirements.txt: run `python tools/pins.py`")
            return 1
        return 0
    BINDER.parent.mkdir(exist_ok=True)
    BINDER.write_text(wanted)
    print(f"wrote {BINDER.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
