"""Give every tracked file the time of the last commit that touched it.

A fresh ``git clone`` stamps every file with the time of the checkout, so Sphinx, which
re-reads a page whose source is newer than its last build, would re-execute every
notebook even with the previous build restored from a cache. With commit times, only
the pages changed since that build are newer than it. Used by .github/workflows/book.yml.

    python tools/restore_mtimes.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit_times(root: Path = ROOT) -> dict[str, int]:
    """{path: unix time of the newest commit that touched it}, for every tracked file."""
    log = subprocess.run(["git", "log", "--format=@%ct", "--name-only", "--no-renames"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    tracked = set(subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    times: dict[str, int] = {}
    current = 0
    for line in log.splitlines():
        if line.startswith("@"):
            current = int(line[1:])
        elif line and line in tracked and line not in times:  # newest commits come first
            times[line] = current
    return times


def modified(root: Path = ROOT) -> set[str]:
    """Tracked files with uncommitted changes: their own time is the right one."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    return {line[3:] for line in status.splitlines()}


def main() -> int:
    times = commit_times()
    for name in modified():
        times.pop(name, None)
    for name, stamp in times.items():
        os.utime(ROOT / name, (stamp, stamp))
    print(f"set the commit time of {len(times)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
