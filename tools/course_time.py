"""`make course-time`: the time table of the instructors' guide, computed from the notebooks.

For every chapter this counts what a learner meets on the page and turns it into
minutes with three stated rates:

- the prose: words of the markdown cells (display math left out) at ``WPM`` words a
  minute, a pace for a first careful reading of technical text;
- the visible code: ``CELL_MINUTES`` per code cell a reader sees (read it, run it,
  look at its output);
- the waiting: the notebook's own run time on one core, the median over the seeds of
  ``bench/ROBUST.md`` (each run pinned to one core, as on Binder).

The exercise notebook's time is its task text at the same pace plus ``POINT_MINUTES``
per point. Only the counts and the run times are measured; the three rates are
assumptions, and a first cohort should replace them with what it takes.

The syllabi of the guide (which chapters in a 1-, 4- and 12-week course) are data here,
so that each session's hours are summed from the same table.

    python tools/course_time.py            # write book/course_time.md
    python tools/course_time.py --check    # exit 1 if book/course_time.md is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "course_time.md"
ROBUST = ROOT / "bench" / "ROBUST.md"

WPM = 100  # words a minute: a first, careful reading of technical prose
CELL_MINUTES = 1.0  # per visible code cell: read it, run it, look at the output
POINT_MINUTES = 8.0  # per point of an exercise (a 1-point question, a 3-point function)

CHAPTERS = {  # key: (title, chapter notebook stems, exercise notebook stem or None)
    "0": ("Attention in one page", ["00_attention_in_one_page"], "00_attention_in_one_page_exercises"),
    "1": ("The seq2seq bottleneck", ["01_seq2seq_bottleneck"], "01_seq2seq_bottleneck_exercises"),
    "2": ("Soft attention", ["02_soft_attention"], "02_soft_attention_exercises"),
    "3": ("Scoring functions", ["03_scoring_functions"], "03_scoring_functions_exercises"),
    "4": ("Hard attention", ["04_hard_attention"], "04_hard_attention_exercises"),
    "5": ("Self-attention", ["05_self_attention"], "05_self_attention_exercises"),
    "6": ("Multi-head attention", ["06_multi_head_attention"], "06_multi_head_attention_exercises"),
    "7": ("Positional encoding", ["07_positional_encoding"], "07_positional_encoding_exercises"),
    "8": ("The Transformer", ["08_transformer"], "08_transformer_exercises"),
    "9": ("Language models", ["09_language_models"], "09_language_models_exercises"),
    "10": ("Applications (10.1-10.4)", ["10_applications", "10a_text_classification_and_summarization",
                                      "10b_matching_and_translation", "10c_vision_transformer",
                                      "10d_time_series_dna_recommendation"], "10_applications_exercises"),
    "11": ("Efficient attention", ["11_efficient_attention"], "11_efficient_attention_exercises"),
    "M": ("Appendix: misconceptions", ["misconceptions"], None),
}

# Each syllabus: sessions, each a list of chapter keys. "(r)" marks reading only (no exercises).
SYLLABI = {
    "1 week (five days of about half a day each)": [
        ("Day 1", ["0", "1"]), ("Day 2", ["2", "3"]), ("Day 3", ["5", "6"]),
        ("Day 4", ["7", "8"]), ("Day 5", ["9", "11(r)"]),
    ],
    "4 weeks (two sessions a week)": [
        ("Week 1", ["0", "1", "2"]), ("Week 2", ["3", "4", "5"]),
        ("Week 3", ["6", "7", "8"]), ("Week 4", ["9", "10(r)", "11(r)", "M(r)"]),
    ],
    "12 weeks (one topic a week, a project in the last weeks)": [
        ("Week 1", ["0"]), ("Week 2", ["1"]), ("Week 3", ["2"]), ("Week 4", ["3"]), ("Week 5", ["4"]),
        ("Week 6", ["5"]), ("Week 7", ["6"]), ("Week 8", ["7"]), ("Week 9", ["8", "M(r)"]),
        ("Week 10", ["9"]), ("Week 11", ["10(r)", "11"]), ("Week 12", []),
    ],
}

DISPLAY_MATH = re.compile(r"\$\$.*?\$\$|\\begin\{(equation|aligned|align)\*?\}.*?\\end\{\1\*?\}", re.S)
ROLE = re.compile(r"\{[a-z:-]+\}`[^`]*`")
WORD = re.compile(r"[A-Za-z0-9][\w'’-]*")


def _path(stem: str) -> Path:
    for folder in ("chapters", "book"):
        for suffix in (".ipynb", ".md"):
            p = ROOT / folder / f"{stem}{suffix}"
            if p.exists():
                return p
    raise FileNotFoundError(stem)


def count(stem: str) -> dict:
    """Words of prose, visible code cells and graded points of one notebook."""
    path = _path(stem)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":  # a page of prose only
        cells = [{"cell_type": "markdown", "source": [text]}]
    else:
        cells = json.loads(text)["cells"]
    words = code = points = 0
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            words += len(WORD.findall(ROLE.sub(" x ", DISPLAY_MATH.sub(" ", text))))
            continue
        tags = cell["metadata"].get("tags", [])
        grading = cell["metadata"].get("nbgrader", {})
        points += grading.get("points", 0) if grading.get("grade") else 0
        if not {"remove-input", "hide-input", "remove-cell"} & set(tags):
            code += 1
    return {"words": words, "code": code, "points": points}


def run_seconds() -> dict[str, float]:
    """Median wall time of each notebook over the seeds of bench/ROBUST.md (one core each)."""
    times: dict[str, list[float]] = {}
    for line in ROBUST.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([^`]+)` \| (\d+) \| \w+ \| (\d+) \|", line)
        if m:
            times.setdefault(m.group(1), []).append(float(m.group(3)))
    return {stem: statistics.median(t) for stem, t in times.items()}


def chapter_minutes() -> dict[str, dict]:
    seconds = run_seconds()
    rows = {}
    for key, (title, stems, exercises) in CHAPTERS.items():
        c = [count(s) for s in stems]
        words, code = sum(x["words"] for x in c), sum(x["code"] for x in c)
        wait = sum(seconds.get(s, 0.0) for s in stems)
        reading = words / WPM + code * CELL_MINUTES + wait / 60
        ex = count(exercises) if exercises else {"words": 0, "code": 0, "points": 0}
        solving = ex["words"] / WPM + ex["points"] * POINT_MINUTES if exercises else 0.0
        rows[key] = {"title": title, "words": words, "code": code, "wait": wait, "reading": reading,
                     "ex_words": ex["words"], "points": ex["points"], "solving": solving}
    return rows


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f} h"


def render() -> str:
    rows = chapter_minutes()
    out = [
        "<!-- Written by tools/course_time.py from the notebooks and bench/ROBUST.md; do not edit. -->",
        "",
        "| chapter | words | visible code cells | run on one core (s) | reading (min) "
        "| exercise points | solving (min) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in rows.items():
        name = r["title"] if key == "M" else f"{key}. {r['title']}"
        points = str(r["points"]) if r["points"] else "–"
        solving = f"{r['solving']:.0f}" if r["points"] else "–"
        out.append(f"| {name} | {r['words']:,} | {r['code']} | {r['wait']:.0f} | {r['reading']:.0f} "
                   f"| {points} | {solving} |")
    total_r = sum(r["reading"] for r in rows.values())
    total_s = sum(r["solving"] for r in rows.values())
    total_p = sum(r["points"] for r in rows.values())
    out.append(f"| **all** | {sum(r['words'] for r in rows.values()):,} | "
               f"{sum(r['code'] for r in rows.values())} | {sum(r['wait'] for r in rows.values()):.0f} | "
               f"{total_r:.0f} | {total_p} | {total_s:.0f} |")
    out.append("")
    out.append(f"Reading: words at {WPM} a minute, {CELL_MINUTES:.0f} minute per visible code cell, plus "
               f"the notebook's median run time on one core (`bench/ROBUST.md`). Solving: the exercise "
               f"notebook's text at the same pace plus {POINT_MINUTES:.0f} minutes per point. The counts and "
               f"run times are measured; the three rates are estimates (`tools/course_time.py`).")
    for name, sessions in SYLLABI.items():
        out += ["", f"**{name}**", "", "| session | chapters | reading | exercises | total |", "|---|---|---:|---:|---:|"]
        for session, keys in sessions:
            reading = solving = 0.0
            names = []
            for k in keys:
                only_reading = k.endswith("(r)")
                key = k.removesuffix("(r)")
                reading += rows[key]["reading"]
                solving += 0.0 if only_reading else rows[key]["solving"]
                names.append(("appendix: misconceptions" if key == "M" else key)
                             + (" (reading)" if only_reading and key != "M" else ""))
            if not keys:
                out.append(f"| {session} | project (see below) | | | |")
                continue
            out.append(f"| {session} | {', '.join(names)} | {_hours(reading)} | {_hours(solving)} "
                       f"| {_hours(reading + solving)} |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if book/course_time.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python tools/course_time.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
