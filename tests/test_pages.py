"""What a reader sees on a page, checked from the notebooks' sources.

- **A clean reading path.** Claim asserts and the code that only computes numbers for
  the prose run in hidden cells (``remove-input``); a visible cell keeps only the asserts
  that *are* the lesson (``assert torch.allclose(ours, theirs)``).
- **Short cells, short lines.** A visible code cell has at most ``CELL_LINES`` lines and
  no line longer than ``LINE_LIMIT`` characters: the book's code column shows about 75
  characters at a 1280-pixel window (tests/browser/test_book.py checks the rendered pages,
  outputs included).
- **Neutral wording.** No "our sources": the reader does not know them.
- **Figures.** Every figure directive points at an SVG that tools/figures.py draws (and
  that is up to date), with alt text and a caption; every SVG is used.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p for p in sorted(ROOT.glob("chapters/*.ipynb")) if not p.stem.endswith("_exercises")]
CHAPTERS.append(ROOT / "book" / "misconceptions.ipynb")
ALL_NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("book/*.ipynb"), *ROOT.glob("student/*.ipynb")])
PAGES = sorted([*ALL_NOTEBOOKS, *ROOT.glob("chapters/*.md"), *ROOT.glob("book/*.md")])
LINE_LIMIT = 75
CELL_LINES = 30
MAX_CLAIM_ASSERTS = 2      # visible asserts that are not a comparison with a reference
MAX_VISIBLE_ASSERTS = 6    # all visible asserts
# An assert that is the lesson compares our code with a reference implementation.
LESSON_ASSERT = re.compile(r"allclose|torch\.equal|array_equal|assert_close|torch\.testing|isclose")
INSIDER = re.compile(r"\bour sources?\b|\bsources? (?:that )?this course\b|\bsource[s]? we (?:draw|drew|use)\b",
                     re.IGNORECASE)
FIGURE = re.compile(r"```\{figure\}\s*(\S+)\n((?::[^\n]*\n)*)\n?(.*?)```", re.DOTALL)


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


HIDDEN_TESTS = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


def _visible_code(path: Path) -> list[str]:
    """What a reader sees of the code cells: cells not tagged remove-input/remove-cell,
    without nbgrader's hidden tests (the book strips them, book/_ext/course_html.py)."""
    out = []
    for cell in _cells(path):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and not {"remove-input", "remove-cell"} & set(tags):
            out.append(HIDDEN_TESTS.sub("", "".join(cell["source"])))
    return out


def _asserts(sources: list[str]) -> list[str]:
    return [line.strip() for s in sources for line in s.splitlines() if line.strip().startswith("assert")]


@pytest.mark.parametrize("path", CHAPTERS, ids=_id)
def test_claim_asserts_are_out_of_the_reading_path(path):
    visible = _asserts(_visible_code(path))
    claims = [a for a in visible if not LESSON_ASSERT.search(a)]
    assert len(claims) <= MAX_CLAIM_ASSERTS, (
        f"{len(claims)} visible claim asserts (move them to a hidden cell, tags remove-input + remove-output):\n"
        + "\n".join(claims))
    assert len(visible) <= MAX_VISIBLE_ASSERTS, f"{len(visible)} visible asserts:\n" + "\n".join(visible)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_id)
def test_visible_code_fits_the_page(path):
    long = [(len(line), line) for s in _visible_code(path) for line in s.splitlines() if len(line) > LINE_LIMIT]
    assert not long, f"{len(long)} visible lines longer than {LINE_LIMIT} characters:\n" + "\n".join(
        f"{n}: {line}" for n, line in long[:10])
    tall = [s.splitlines()[0] for s in _visible_code(path) if len(s.splitlines()) > CELL_LINES]
    assert not tall, f"visible cells longer than {CELL_LINES} lines (split them into steps): {tall}"


FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")


def _markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    return path.read_text()


def _long_code_block_lines(text: str) -> list[str]:
    """Lines longer than LINE_LIMIT in the code blocks (```python, ```bash, ```) of markdown;
    directives (```{figure}, ```{glossary}) hold prose, which wraps."""
    long, fence, indent, code = [], None, "", False
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None:
            if match:
                indent, fence = match.group(1), match.group(2)
                code = not match.group(3).strip().startswith("{")
        elif match and match.group(2).startswith(fence) and not match.group(3).strip():
            fence = None
        elif code:
            line = line[len(indent):] if line.startswith(indent) else line
            if len(line) > LINE_LIMIT:
                long.append(line)
    return long


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_code_blocks_in_the_prose_fit_the_page(path):
    long = _long_code_block_lines(_markdown(path))
    assert not long, f"{len(long)} code-block lines longer than {LINE_LIMIT} characters:\n" + "\n".join(long[:10])


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_no_insider_wording(path):
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in _cells(path))
    else:
        text = path.read_text()
    found = INSIDER.findall(text)
    assert not found, f"insider wording a reader cannot follow: {found}"


def test_the_checks_of_this_file_catch_what_they_should():
    assert INSIDER.search("One of our sources says") and INSIDER.search("a source this course draws on")
    assert _long_code_block_lines("Text\n\n```bash\n" + "x" * 76 + "\n```\n") == ["x" * 76]
    assert _long_code_block_lines("1. Step\n\n   ```bash\n   " + "x" * 75 + "\n   ```\n") == []
    assert _long_code_block_lines("```{glossary}\n" + "word " * 40 + "\n```\n") == []
    assert LESSON_ASSERT.search("assert torch.allclose(out, ref, atol=1e-6)")
    assert not LESSON_ASSERT.search("assert acc > 0.9")
    md = "```{figure} ../book/figures/x.svg\n:name: fig-x\n:alt: A box.\n\nLook at the box.\n```"
    (target, options, caption), = FIGURE.findall(md)
    assert target == "../book/figures/x.svg" and ":alt: A box." in options and caption.strip() == "Look at the box."


def _figures() -> list[tuple[Path, str, str, str]]:
    found = []
    for path in PAGES:
        if path.suffix == ".ipynb":
            texts = ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown"]
        else:
            texts = [path.read_text()]
        for text in texts:
            for target, options, caption in FIGURE.findall(text):
                found.append((path, target, options, caption))
    return found


def test_every_figure_has_its_svg_alt_text_and_caption():
    figures = _figures()
    assert figures, "no figures in the book"
    problems = []
    for path, target, options, caption in figures:
        where = f"{_id(path)}: {target}"
        svg = (path.parent / target).resolve()
        if not svg.is_file() or svg.parent != ROOT / "book" / "figures" or svg.suffix != ".svg":
            problems.append(f"{where}: not an SVG in book/figures/")
        alt = re.search(r"^:alt:\s*(.+)$", options, re.MULTILINE)
        if not alt or len(alt.group(1).split()) < 5:
            problems.append(f"{where}: no alt text (or fewer than five words)")
        if len(caption.split()) < 5:
            problems.append(f"{where}: no caption that says what to look at")
        if not re.search(r"^:name:\s*fig-", options, re.MULTILINE):
            problems.append(f"{where}: no :name: fig-... (to refer to it)")
    assert not problems, "\n".join(problems)


def test_every_svg_is_used_and_drawn_by_its_source():
    used = {(p.parent / t).resolve().name for p, t, _, _ in _figures()}
    svgs = {p.name for p in (ROOT / "book" / "figures").glob("*.svg")}
    assert svgs - used == set(), f"figures no page shows: {svgs - used}"
    sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
    try:
        import figures
        drawn = {f"{name}.svg" for name in figures.all_figures()}
    finally:
        del sys.path[:2]
    assert svgs == drawn, f"SVGs without a source in tools/diagrams: {svgs - drawn}; not written: {drawn - svgs}"


def test_every_svg_has_a_white_background_so_it_reads_on_a_dark_page():
    for svg in (ROOT / "book" / "figures").glob("*.svg"):
        head = svg.read_text()[:3000]
        assert re.search(r'<g id="patch_1">\s*<path d="[^"]*"\s*style="fill: #ffffff', head), \
            f"{svg.name}: the figure's background is not white"


def test_every_svg_is_what_its_source_draws_today():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "figures.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def _page_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "markdown")
    return path.read_text()


def test_the_bibliography_parses_and_every_citation_is_in_it() -> None:
    from pybtex.database import parse_file  # what sphinxcontrib-bibtex reads it with

    entries = parse_file(str(ROOT / "book" / "references.bib")).entries  # raises on a syntax error or a duplicate key
    cited = {}
    for path in PAGES:
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", _page_text(path)):
            for key in keys.split(","):
                cited.setdefault(key.strip(), path.name)
    missing = {key: page for key, page in cited.items() if key not in entries}
    assert not missing, f"cited but not in references.bib: {missing}"
    assert len(cited) > 40  # the pattern finds the book's citations


def test_the_instructors_time_table_is_up_to_date() -> None:
    """book/course_time.md is what tools/course_time.py computes from the notebooks and bench/ROBUST.md."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "course_time.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    table = (ROOT / "book" / "course_time.md").read_text()
    assert "| 3. Scoring functions |" in table and "**12 weeks" in table
    assert "{include} course_time.md" in (ROOT / "book" / "instructors.md").read_text()


def test_the_time_table_counts_what_a_reader_sees() -> None:
    """Words of prose without display math, and only the code cells a reader sees."""
    sys.path.insert(0, str(ROOT / "tools"))
    import course_time

    words = course_time.WORD.findall(course_time.ROLE.sub(" x ", course_time.DISPLAY_MATH.sub(
        " ", "Two words $$\\sum_i a_i b_i$$ and {eval}`f'{x:.1f}'` here")))
    assert words == ["Two", "words", "and", "x", "here"]
    counted = course_time.count("00_attention_in_one_page_exercises")
    cells = json.loads((ROOT / "chapters" / "00_attention_in_one_page_exercises.ipynb").read_text())["cells"]
    graded = sum(c["metadata"]["nbgrader"]["points"] for c in cells
                 if c["metadata"].get("nbgrader", {}).get("grade"))
    assert counted["points"] == graded > 0
