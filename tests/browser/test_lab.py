"""JupyterLab as a learner on Binder meets it, driven in headless Chromium.

JupyterLab runs from the Binder environment (``tools/binder_env.py``: a fresh venv
from ``binder/`` only) on 127.0.0.1, over a copy of ``chapters/``, ``student/`` and ``book/figures/`` (so
that autosave never writes into the repository). The tests do what a learner does:

- open a chapter notebook and Run All: no cell fails, jupyterlab-myst fills in every
  ``{eval}`` number of the prose and no raw MyST role is left on the screen, the concept
  figure (a ``{figure}`` directive) is drawn with its alt text, and moving the live
  ipywidget slider makes the kernel redraw the plot;
- open a student exercise notebook and Run All: every check says "not attempted yet"
  and nothing fails; then write a solution into its cell, run it and see the check pass.

Screenshots land in ``_build/screenshots/lab/``. Chromium comes from Debian, as for
``test_book.py``: without it the tests skip, except in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import binder_env  # noqa: E402
import prose  # noqa: E402
from conftest import CHROMIUM, require as _require  # noqa: E402

SHOTS = ROOT / "_build" / "screenshots" / "lab"
CHAPTER = "chapters/00_attention_in_one_page.ipynb"
STUDENT = "student/00_attention_in_one_page_exercises.ipynb"
TOKEN = "course-test"
# A MyST role left as text: {eval}`...`, {doc}`...`, {cite}`...` and the like.
RAW_ROLE = re.compile(r"\{(eval|glue|glue:\w+|doc|cite|ref|numref|term|download)\}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require(Path(CHROMIUM).exists(), "Chromium not found: `apt-get install chromium chromium-driver`")
    python = binder_env.build()
    home = tmp_path_factory.mktemp("lab")
    root = home / "course"
    for folder in ("chapters", "student", "book/figures"):  # the notebooks' figures: ../book/figures/
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "Would you like to get notified about official Jupyter news?" toast over the notebook
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # every cell in the page, not only those in view, so that the whole notebook can be read
    notebook_settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    env.pop("MPLBACKEND", None)
    env.pop("NBGRADER_EXECUTION", None)
    port = _free_port()
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(
        [str(python.parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).close()
            break
        except Exception:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail(f"JupyterLab did not start: {(home / 'lab.log').read_text()[-2000:]}")
    assert server.poll() is None, (home / "lab.log").read_text()[-2000:]
    yield {"url": url, "root": root, "log": home / "lab.log"}
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def _open(browser, lab, notebook: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:  # Binder's JupyterLab needs nothing from the internet; prove it
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    # ?reset: a fresh workspace, so the tabs an earlier test opened are not restored and
    # the status bar's "Idle" below is this notebook's kernel, not a restored tab's
    page.goto(f"{lab['url']}/lab/tree/{notebook}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # the kernel has started when the status bar says so (Run All before that asks for a kernel)
    page.wait_for_function("document.body.innerText.includes('| Idle')", timeout=90_000)
    return page, outside


def _run_all(page, timeout_ms: int) -> None:
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    page.wait_for_timeout(1000)
    try:
        page.wait_for_function(
            """() => { const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                       return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
                              && document.body.innerText.includes('| Idle'); }""",
            timeout=timeout_ms, polling=500)
    except Exception:
        _shot(page, "run-all-timed-out.png")
        prompts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "ps => ps.map(p => p.textContent)")
        raise AssertionError(f"Run All did not finish; the prompts: {prompts}") from None


def _errors_in_outputs(page) -> list[str]:
    return page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.innerText.slice(0, 300))")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def test_run_all_on_a_chapter_fills_in_the_prose_and_the_slider_redraws(browser, lab):
    expressions = {e for cell in json.loads((ROOT / CHAPTER).read_text())["cells"]
                   if cell["cell_type"] == "markdown" for e in prose.eval_expressions("".join(cell["source"]))}
    assert expressions, "the chapter's prose has no {eval} numbers to check"
    page, outside = _open(browser, lab, CHAPTER)
    try:
        _shot(page, "chapter-opened.png")
        _run_all(page, timeout_ms=240_000)
        assert _errors_in_outputs(page) == [], "a cell failed"
        # jupyterlab-myst answers each markdown cell's expressions from the kernel, after its cell ran
        page.wait_for_function(
            """exprs => ![...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown code')]
                        .some(c => exprs.includes(c.textContent))""", arg=sorted(expressions), timeout=30_000)
        markdown = page.inner_text(".jp-Notebook")
        assert not RAW_ROLE.findall(markdown), f"raw MyST roles on the screen: {set(RAW_ROLE.findall(markdown))}"
        values = prose.run(ROOT / CHAPTER)  # the same numbers, computed without the browser
        # the numbers of the cell that says 'For "Welcome"', the first worked sentence
        shown = next(c.values for c in values if 'For "Welcome"' in c.source and c.values)
        welcome = page.locator(".jp-MarkdownCell", has_text="For \"Welcome\"").first
        welcome.scroll_into_view_if_needed()
        text = welcome.text_content()
        assert all(v in text for v in shown[:3]), (shown[:3], text)
        _shot(page, "chapter-after-run-all.png")

        # the concept figure ({figure} directive, an SVG beside the book) is drawn, not a broken image
        drawing = page.locator(".jp-MarkdownCell img[src*='ch00_three_steps']").first
        drawing.scroll_into_view_if_needed(timeout=30_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=drawing.element_handle(),
                               timeout=30_000)
        assert drawing.get_attribute("alt"), "the figure lost its alt text in JupyterLab"
        _shot(page, "chapter-figure.png")

        # the live explorer: move the slider, the kernel redraws the figure
        slider = page.locator(".widget-slider .noUi-handle").first
        slider.scroll_into_view_if_needed()
        figure = page.locator(".jupyter-widgets img, .widget-output img").first
        figure.wait_for(timeout=30_000)
        before = figure.get_attribute("src")
        _shot(page, "explorer-before.png")
        slider.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("src => { const i = document.querySelector('.jupyter-widgets img, .widget-output img');"
                               " return i && i.getAttribute('src') !== src; }", arg=before, timeout=30_000)
        _shot(page, "explorer-after.png")
        assert outside == [], f"requests leaving the machine: {outside}"
    finally:
        page.close()


def test_run_all_on_a_student_notebook_says_not_attempted_then_a_solution_passes(browser, lab):
    source = json.loads((ROOT / STUDENT.replace("student/", "chapters/")).read_text())
    solution = next("".join(c["source"]) for c in source["cells"]
                    if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    solution = re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n?", "", solution).rstrip() + "\n"
    graded = [c for c in json.loads((ROOT / STUDENT).read_text())["cells"]
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    page, outside = _open(browser, lab, STUDENT)
    try:
        _run_all(page, timeout_ms=120_000)
        assert _errors_in_outputs(page) == [], "a cell failed on an untouched notebook"
        checks = page.locator(".jp-CodeCell", has_text="checks.check_")
        assert checks.count() == len(graded)
        for i in range(checks.count()):
            output = checks.nth(i).locator(".jp-OutputArea").inner_text()
            assert "not attempted yet" in output, output
        _shot(page, "student-after-run-all.png")

        # solve exercise 1 in its cell, run it and its check
        cell = page.locator(".jp-CodeCell", has_text="NotImplementedError").first
        cell.scroll_into_view_if_needed()
        editor = cell.locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(solution)
        page.keyboard.press("Shift+Enter")   # run the solution, move to its check
        page.keyboard.press("Shift+Enter")   # run the check
        first_check = checks.first
        page.wait_for_function(
            "el => /correct/.test(el.innerText)", arg=first_check.locator(".jp-OutputArea").element_handle(),
            timeout=60_000)
        first_check.scroll_into_view_if_needed()
        _shot(page, "student-solved.png")
        assert "not attempted yet" not in first_check.locator(".jp-OutputArea").inner_text()
        assert _errors_in_outputs(page) == []
        assert outside == [], f"requests leaving the machine: {outside}"
    finally:
        page.close()
