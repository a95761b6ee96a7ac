"""The repository's address lives in one place: ``repository.url`` in ``_config.yml``.

The book's buttons (repository, issues, Binder, Colab) are built from it by Jupyter Book.
Everything else that names the repository carries a copy, and ``tests/test_launch.py``
checks each copy against it: the install cell at the top of every notebook (Colab), the
README's clone command and badges, ``pyproject.toml``'s URLs, ``CITATION.cff`` and the
instructors' guide. To move the repository, change them all at once:

    python tools/repository.py                                   # print the address and the book's
    python tools/repository.py --set https://github.com/org/name # rewrite every copy, then `make student`

GitHub Pages publishes the book at ``https://<owner>.github.io/<name>/``, derived from it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9-]+)/([A-Za-z0-9._-]+)$")


def repository_url(config: Path = CONFIG) -> str:
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)\s*$", config.read_text(), re.M)
    if not match:
        raise ValueError(f"{config.name} has no repository.url")
    return match.group(1)


def pages_url(url: str) -> str:
    """Where GitHub Pages publishes the book of the repository at ``url``."""
    match = GITHUB.match(url)
    if not match:
        raise ValueError(f"not a GitHub repository address: {url!r}")
    owner, name = match.groups()
    return f"https://{owner.lower()}.github.io/{name}/"


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.suffix in {".png", ".svg", ".zip", ".bib"} or not path.is_file():
            continue
        try:
            path.read_text()
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def move(new_url: str) -> list[Path]:
    old_url = repository_url()
    pages_url(new_url)  # validates
    replacements = [(old_url, new_url), (pages_url(old_url), pages_url(new_url))]
    changed = []
    for path in tracked_text_files():
        text = path.read_text()
        new = text
        for old, replacement in replacements:
            new = new.replace(old, replacement)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", metavar="URL", help="the repository's new address (https://github.com/owner/name)")
    args = parser.parse_args()
    if args.set:
        for path in move(args.set.rstrip("/")):
            print(f"updated {path.relative_to(ROOT)}")
        print("now run `make student` (the student notebooks are made from the chapters) and `make test`")
        return 0
    url = repository_url()
    print(f"repository: {url}\nbook:       {pages_url(url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
