"""Build the Binder environment without Docker, from the files under ``binder/`` only.

mybinder.org builds the repository with repo2docker, which reads ``binder/`` alone when
it exists: ``runtime.txt`` picks the Python, and ``pip install -r
binder/requirements.txt`` runs from the repository root (so ``-e .`` installs the
course's package) into the environment that also runs JupyterLab. This does the same
in a fresh virtual environment, ``.venv-binder``:

- with the Python that ``runtime.txt`` names (``python-3.11`` -> ``python3.11``);
- with ``binder/requirements.txt`` as it is, except that where PyTorch's CPU index
  (its ``--extra-index-url`` line) cannot be reached, as on this project's offline
  machines, that line is dropped and the same pins (``torch==2.13.0+cpu`` included) are
  resolved from the registries pip is configured with. ``.venv-binder/binder-build.txt``
  records which way it went.

What this does not reproduce is repo2docker's own base image (conda, its pinned
JupyterLab 4, which our ``jupyterlab`` pin replaces) and Binder's 2 GB memory cap:
see the README, "Binder".

    python tools/binder_env.py            # build it if missing or out of date; print its python
    python tools/binder_env.py --force    # rebuild from scratch
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
VENV = ROOT / ".venv-binder"
RECORD = VENV / "binder-build.txt"


def runtime_python() -> str:
    """``python-3.11`` in runtime.txt -> ``python3.11``."""
    runtime = (BINDER / "runtime.txt").read_text().strip()
    if not runtime.startswith("python-3."):
        raise ValueError(f"binder/runtime.txt should name a Python 3 version (python-3.X), not {runtime!r}")
    return "python" + runtime.removeprefix("python-")


def _digest() -> str:
    h = hashlib.sha256()
    for path in (BINDER / "runtime.txt", BINDER / "requirements.txt", ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    return h.hexdigest()


def _reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except Exception:
        return False


def requirements_for_here() -> tuple[str, str]:
    """binder/requirements.txt, less the index lines this machine cannot reach; and a note saying so."""
    kept, notes = [], []
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("--extra-index-url", "--index-url") and len(parts) == 2:
            if not _reachable(parts[1]):
                notes.append(f"unreachable, dropped: {line} (its pins resolved from pip's configured registries)")
                continue
            notes.append(f"reachable, used: {line}")
        kept.append(line)
    return "\n".join(kept) + "\n", "\n".join(notes)


def python_of_env() -> Path:
    return VENV / "bin" / "python"


def up_to_date() -> bool:
    return python_of_env().exists() and RECORD.exists() and RECORD.read_text().startswith(_digest())


def build(force: bool = False) -> Path:
    """Build ``.venv-binder`` unless it is up to date; return its python."""
    if up_to_date() and not force:
        return python_of_env()
    interpreter = shutil.which(runtime_python())
    if interpreter is None:
        raise RuntimeError(f"binder/runtime.txt asks for {runtime_python()}, which is not on PATH")
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(VENV)], check=True)
    requirements, note = requirements_for_here()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(requirements)
    try:
        # from the repository root, as repo2docker runs it (`-e .` is relative to the working directory)
        subprocess.run([str(python_of_env()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", f.name], cwd=ROOT, check=True)
    finally:
        Path(f.name).unlink()
    RECORD.write_text(f"{_digest()}\n{note}\n")
    return python_of_env()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    print(build(force=args.force))
    print(RECORD.read_text().split("\n", 1)[1].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
