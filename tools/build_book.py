"""Build the book as ``jupyter-book build .`` does, reading (so executing) two pages at a time.

Jupyter Book 1.x's command line has no ``-j``, but the function behind it,
``jupyter_book.sphinx.build_sphinx``, takes Sphinx's ``jobs``. The book executes every
notebook while its page is read (``execute_notebooks: inline``), so reading is nearly
all of the build, and two readers on two cores halve it. The notebooks run torch on
one thread where it matters (their setup cells), so two of them side by side do not
fight over the cores.

    python tools/build_book.py                # like `jupyter-book build .`: only what changed
    python tools/build_book.py --strict       # warnings (and nitpicks) are errors: `-W -n --keep-going`
    python tools/build_book.py --strict --all # every page read and executed again (make test)
    python tools/build_book.py --jobs 1       # one page at a time
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(strict: bool, everything: bool, jobs: int) -> int:
    from jupyter_book.sphinx import build_sphinx

    overrides = {"external_toc_path": (ROOT / "_toc.yml").as_posix(), "latex_individualpages": False}
    if strict:
        overrides["nitpicky"] = True
    result = build_sphinx(
        ROOT, ROOT / "_build" / "html", use_external_toc=True, noconfig=True, path_config=ROOT / "_config.yml",
        confoverrides=overrides, builder="html", warningiserror=strict, keep_going=strict,
        freshenv=everything, force_all=everything, jobs=jobs,
    )
    if isinstance(result, Exception):
        raise result
    return int(result or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="warnings (and nitpicks) are errors")
    parser.add_argument("--all", action="store_true", help="read (execute) every page again, from a fresh environment")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="pages read at once")
    args = parser.parse_args()
    status = build(args.strict, args.all, args.jobs)
    if status == 0:
        print(f"\nBook built. Open: file://{ROOT / '_build' / 'html' / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
