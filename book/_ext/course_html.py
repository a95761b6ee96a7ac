"""Small fixes to the HTML that Jupyter Book 1.x produces for this course.

1. Launch buttons on exercise pages open the student version. sphinx-book-theme
   builds each launch link (Binder, Colab) from the page's own path, so the page
   of ``chapters/NN_topic_exercises.ipynb`` (the instructor source, with
   solutions) would launch that notebook; the links are rewritten to
   ``student/NN_topic_exercises.ipynb``, the nbgrader release (``make student``).
2. Each inline script appears once, and the ipywidget state is not embedded. sphinx-thebe's configuration script is
   added twice to every page, and the second ``const THEBE_JS_URL`` throws
   "Identifier 'THEBE_JS_URL' has already been declared". The explorers' pages
   show their kernel-free players, so no widget manager would read the state.
3. The colour mode defaults to "auto". Without a ``default_mode`` the theme
   logs "Got invalid theme mode" on every first visit.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def point_exercises_to_student(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    if not (pagename.startswith("chapters/") and pagename.endswith("_exercises")):
        return
    name = pagename.split("/", 1)[1]
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if "url" in button:
                button["url"] = button["url"].replace(f"chapters/{name}.ipynb", f"student/{name}.ipynb")


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


def setup(app: Sphinx) -> dict[str, Any]:
    # sphinx-book-theme adds its launch buttons at priority 501; run after it.
    app.connect("html-page-context", point_exercises_to_student, priority=600)
    app.connect("html-page-context", tidy_scripts, priority=600)
    app.connect("html-page-context", default_colour_mode, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
