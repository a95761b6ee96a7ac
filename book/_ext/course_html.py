"""Small fixes to the HTML that Jupyter Book 1.x produces for this course.

1. Launch buttons on exercise pages open the student version. sphinx-book-theme
   builds each launch link (Binder, Colab) from the page's own path, so the page
   of ``chapters/NN_topic_exercises.ipynb`` (the instructor source, with
   solutions) would launch that notebook; the links are rewritten to
   ``student/NN_topic_exercises.ipynb``, the nbgrader release (``make student``).
   For the same reason the page's download button, which serves the copy in
   ``_sources/``, gets the student version: that copy is replaced when the build ends.
2. The hidden tests stay hidden. The code between ``### BEGIN HIDDEN TESTS`` and
   ``### END HIDDEN TESTS`` runs when the book is built (so every solution is
   checked), but it is cut from the page: nbgrader keeps it for grading.
3. All exercises in one download: ``attention-course-exercises.zip`` (the
   ``student/`` notebooks) is written at the root of the HTML output; the intro
   and the instructors' guide link to it.
4. Notebooks are re-executed when the code they run changes. The book executes
   notebooks inline (``execute_notebooks: inline``, so that ``{eval}`` can fill
   in the prose), and Sphinx re-reads only the pages whose source changed. A
   change in ``attention_course/`` or in the pinned requirements would leave stale
   outputs and numbers behind, so a digest of them is kept in the build
   environment and every notebook is re-read when it changes.
5. Each inline script appears once, and the ipywidget state is not embedded. sphinx-thebe's configuration script is
   added twice to every page, and the second ``const THEBE_JS_URL`` throws
   "Identifier 'THEBE_JS_URL' has already been declared". The explorers' pages
   show their kernel-free players, so no widget manager would read the state.
6. The colour mode defaults to "auto". Without a ``default_mode`` the theme
   logs "Got invalid theme mode" on every first visit.
7. Pages can be read in parallel (``tools/build_book.py --jobs 2``). Sphinx reads one
   page at a time when any extension does not declare itself safe for parallel
   reading, and three that Jupyter Book loads do not say: sphinx-multitoc-numbering
   (it numbers sections after all pages are read, in the main process),
   sphinx-mathjax-offline (it copies files when the build ends) and
   sphinx-jupyterbook-latex (its transforms run for LaTeX builders only). For an HTML
   build each is safe, and this says so for them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[2]
STUDENT = ROOT / "student"
EXERCISES_ZIP = "attention-course-exercises.zip"
HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S)
# What a notebook's outputs depend on besides its own source.
CODE_THE_NOTEBOOKS_RUN = ("attention_course/**/*.py", "requirements.txt", "pyproject.toml")


def _is_exercise_page(pagename: str) -> bool:
    return pagename.startswith("chapters/") and pagename.endswith("_exercises")


def point_exercises_to_student(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    if not _is_exercise_page(pagename):
        return
    name = pagename.split("/", 1)[1]
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if "url" in button:
                button["url"] = button["url"].replace(f"chapters/{name}.ipynb", f"student/{name}.ipynb")


def without_hidden_tests(source: str) -> str:
    """``source`` with every ``### BEGIN/END HIDDEN TESTS`` block (markers included) removed."""
    return HIDDEN_TESTS.sub("", source)


def strip_hidden_tests(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not _is_exercise_page(docname):
        return
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if "### BEGIN HIDDEN TESTS" not in text:
            continue
        kept = without_hidden_tests(text).rstrip("\n")
        block.children = [nodes.Text(kept)]
        block.rawsource = kept


def _code_digest() -> str:
    digest = hashlib.sha256()
    for pattern in CODE_THE_NOTEBOOKS_RUN:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def reread_notebooks_when_the_code_changes(app: Sphinx, env, added: set, changed: set, removed: set) -> list[str]:
    digest = _code_digest()
    previous = getattr(env, "course_code_digest", None)
    env.course_code_digest = digest
    if previous is None or previous == digest:
        return []  # a first build reads everything anyway
    return sorted(d for d in env.found_docs if str(env.doc2path(d)).endswith(".ipynb") and d not in added | changed)


def write_student_downloads(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    students = sorted(STUDENT.glob("*_exercises.ipynb"))
    for notebook in students:
        copy = out / "_sources" / "chapters" / notebook.name
        if copy.exists():  # the download button of the exercise page serves this file
            shutil.copyfile(notebook, copy)
    with zipfile.ZipFile(out / EXERCISES_ZIP, "w", zipfile.ZIP_DEFLATED) as archive:
        for notebook in students:
            archive.write(notebook, f"attention-course-exercises/{notebook.name}")


def tidy_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    """Each script once; no embedded ipywidget state (no widget manager loads it)."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        if attributes.get("type") == "application/vnd.jupyter.widget-state+json":
            continue
        key = (getattr(script, "filename", None) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def default_colour_mode(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


UNDECLARED_BUT_PARALLEL_SAFE = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline", "sphinx_jupyterbook_latex")


def declare_parallel_reading_safe(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    for name in UNDECLARED_BUT_PARALLEL_SAFE:
        extension = app.extensions.get(name)
        if extension is not None and getattr(extension, "parallel_read_safe", None) is None:
            extension.parallel_read_safe = True


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", declare_parallel_reading_safe)
    app.connect("env-get-outdated", reread_notebooks_when_the_code_changes)
    app.connect("doctree-read", strip_hidden_tests)
    # sphinx-book-theme adds its launch buttons at priority 501; run after it.
    app.connect("html-page-context", point_exercises_to_student, priority=600)
    app.connect("html-page-context", tidy_scripts, priority=600)
    app.connect("html-page-context", default_colour_mode, priority=600)
    app.connect("build-finished", write_student_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
