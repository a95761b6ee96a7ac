"""The built book in a real browser (headless Chromium via Playwright), offline.

Runs after `jupyter-book build` (make test does that first). Serves _build/html
on 127.0.0.1, opens every page, and asserts what a reader would notice: no
JavaScript errors, no request leaving the machine, every image loaded, math
typeset, an exercise's solution toggle opens, and an explorer's slider changes
the figure. Saves a full-page screenshot of every chapter page under
_build/screenshots/.

Needs Debian's `chromium` (.ci/run installs it). Without it the tests skip with
a message, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import threading
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import require as _require

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"


def pages() -> list[str]:
    if not HTML.exists():
        return []
    return sorted(
        str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
        if not p.relative_to(HTML).parts[0].startswith(("_", "."))
        and p.name not in ("genindex.html", "search.html")
    )


@pytest.fixture(scope="session")
def server():
    _require(HTML.exists(), f"{HTML} not built: run `make book` (or `make test`, which builds it first)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


class Visit:
    """One page load with every error, failed request and outside request recorded."""

    def __init__(self, browser, server: str, page_path: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.outside: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("requestfailed", lambda req: self.failed.append(req.url))
        self.page.on("response", lambda res: self.failed.append(f"{res.status} {res.url}") if res.status >= 400 else None)

        def route(r):
            if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost"):
                r.continue_()
            else:  # offline: nothing may come from the internet
                self.outside.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(f"{server}/{page_path}", wait_until="load")
        self.page.wait_for_timeout(300)

    def close(self) -> None:
        self.page.close()


PAGES = pages()


def test_the_book_has_its_pages():
    _require(HTML.exists(), f"{HTML} not built")
    expected = {"book/intro.html", "book/notation.html", "book/glossary.html", "book/bibliography.html",
                "book/instructors.html", "chapters/00_attention_in_one_page.html",
                "chapters/00_attention_in_one_page_exercises.html", "chapters/01_seq2seq_bottleneck.html",
                "chapters/01_seq2seq_bottleneck_exercises.html", "chapters/02_soft_attention.html",
                "chapters/02_soft_attention_exercises.html", "chapters/03_scoring_functions.html",
                "chapters/03_scoring_functions_exercises.html", "chapters/04_hard_attention.html",
                "chapters/04_hard_attention_exercises.html", "chapters/05_self_attention.html",
                "chapters/05_self_attention_exercises.html", "chapters/06_multi_head_attention.html",
                "chapters/06_multi_head_attention_exercises.html", "chapters/07_positional_encoding.html",
                "chapters/07_positional_encoding_exercises.html", "chapters/08_transformer.html",
                "chapters/08_transformer_exercises.html", "chapters/09_language_models.html",
                "chapters/09_language_models_exercises.html", "chapters/11_efficient_attention.html",
                "chapters/10_applications.html", "chapters/10a_text_classification_and_summarization.html",
                "chapters/10b_matching_and_translation.html", "chapters/10c_vision_transformer.html",
                "chapters/10d_time_series_dna_recommendation.html", "chapters/10_applications_exercises.html",
                "chapters/11_efficient_attention_exercises.html", "book/history.html", "book/misconceptions.html"}
    assert expected <= set(PAGES), expected - set(PAGES)


@pytest.mark.parametrize("page_path", PAGES)
def test_page_loads_offline_without_errors(browser, server, page_path):
    visit = Visit(browser, server, page_path)
    try:
        assert visit.outside == [], f"requests leaving the machine: {visit.outside}"
        assert visit.failed == [], f"failed requests: {visit.failed}"
        assert visit.errors == [], f"JavaScript errors: {visit.errors}"
        broken = visit.page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0))"
            ".map(i => i.src)"
        )
        assert broken == [], f"images that did not load: {broken}"
        # math: MathJax (served locally) typeset every formula; no raw \( ... \) left on the page
        # (wait for "typeset", not for a visible formula: the first one may be in a collapsed
        # menu, e.g. a heading with math in the page's table of contents)
        if visit.page.locator(".math").count():
            visit.page.wait_for_selector("mjx-container", state="attached", timeout=10_000)
            try:
                visit.page.wait_for_function(
                    "document.querySelectorAll('.math:not(:has(mjx-container))').length === 0", timeout=10_000)
            except Exception:
                pass  # reported just below, with the count
            raw = visit.page.locator(".math:not(:has(mjx-container))").count()
            assert raw == 0, f"{raw} formulas left untypeset"
        if page_path.startswith("chapters/"):
            SHOTS.mkdir(parents=True, exist_ok=True)
            visit.page.screenshot(path=str(SHOTS / (Path(page_path).stem + ".png")), full_page=True)
    finally:
        visit.close()


EXERCISE_PAGES = [p for p in PAGES if p.endswith("_exercises.html")]


@pytest.mark.parametrize("page_path", EXERCISE_PAGES)
def test_solutions_are_hidden_behind_a_toggle_that_opens(browser, server, page_path):
    visit = Visit(browser, server, page_path)
    try:
        toggles = visit.page.locator("details.hide.above-input")
        assert toggles.count() >= 3, "each solution should sit behind a toggle"
        first = toggles.first
        code = first.locator("div.highlight")
        assert not code.is_visible(), "the solution is visible before the toggle is opened"
        first.locator("summary").click()
        assert first.evaluate("d => d.open") and code.is_visible()
        assert "BEGIN SOLUTION" in code.inner_text()
    finally:
        visit.close()


def test_exercise_launch_buttons_open_the_student_version(browser, server):
    _require(bool(EXERCISE_PAGES), "no exercise pages built")
    visit = Visit(browser, server, EXERCISE_PAGES[0])
    try:
        links = visit.page.eval_on_selector_all("a[href*='mybinder'], a[href*='colab']", "as => as.map(a => a.href)")
        assert links, "no Binder/Colab launch links"
        assert all("student/" in h and "chapters/" not in h for h in links), links
    finally:
        visit.close()
    visit = Visit(browser, server, "chapters/00_attention_in_one_page.html")
    try:
        binder = visit.page.eval_on_selector_all("a[href*='mybinder']", "as => as.map(a => a.href)")
        assert binder and all("lab/tree/chapters/00_attention_in_one_page.ipynb" in h for h in binder), binder
    finally:
        visit.close()


EXPLORER_PAGES = ["chapters/00_attention_in_one_page.html", "chapters/01_seq2seq_bottleneck.html",
                  "chapters/02_soft_attention.html", "chapters/03_scoring_functions.html",
                  "chapters/04_hard_attention.html", "chapters/05_self_attention.html",
                  "chapters/06_multi_head_attention.html", "chapters/07_positional_encoding.html",
                  "chapters/08_transformer.html", "chapters/09_language_models.html",
                  "chapters/10a_text_classification_and_summarization.html",
                  "chapters/10b_matching_and_translation.html", "chapters/10c_vision_transformer.html",
                  "chapters/10d_time_series_dna_recommendation.html", "chapters/11_efficient_attention.html"]


@pytest.mark.parametrize("page_path", EXPLORER_PAGES)
def test_moving_an_explorer_control_changes_the_figure(browser, server, page_path):
    visit = Visit(browser, server, page_path)
    try:
        slider = visit.page.locator("input.anim-slider").first
        assert slider.count() == 1, "no kernel-free explorer on the page"
        slider.scroll_into_view_if_needed()
        frame = slider.locator("xpath=ancestor::div[contains(@class, 'animation')]//img").first
        before = frame.get_attribute("src")
        last = int(slider.get_attribute("max"))
        assert last >= 2, "an explorer should have several positions"
        slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", last)
        visit.page.wait_for_timeout(200)
        after = frame.get_attribute("src")
        assert before and after and before != after, "moving the slider did not change the figure"
    finally:
        visit.close()


def test_exercise_pages_give_the_student_version_and_hide_the_hidden_tests(browser, server):
    _require(bool(EXERCISE_PAGES), "no exercise pages built")
    for page_path in EXERCISE_PAGES:
        visit = Visit(browser, server, page_path)
        try:
            html = visit.page.content()
            assert "HIDDEN TESTS" not in html, f"{page_path}: nbgrader's hidden tests are in the page"
            links = visit.page.eval_on_selector_all("a.btn-download-source-button", "as => as.map(a => a.href)")
            assert len(links) == 1 and links[0].endswith(".ipynb"), links
            served = visit.page.request.get(links[0]).text()
            name = Path(page_path).stem + ".ipynb"
            assert json.loads(served) == json.loads((ROOT / "student" / name).read_text()), \
                f"{page_path}: the download button does not serve student/{name}"
            assert "BEGIN SOLUTION" not in served and "HIDDEN TESTS" not in served
        finally:
            visit.close()


def test_the_intro_links_a_zip_of_every_student_notebook(browser, server):
    visit = Visit(browser, server, "book/intro.html")
    try:
        links = visit.page.eval_on_selector_all("a[href$='.zip']", "as => as.map(a => a.href)")
        assert links, "no link to the exercises' zip on the intro page"
        body = visit.page.request.get(links[0]).body()
    finally:
        visit.close()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = sorted(Path(n).name for n in archive.namelist())
        assert names == sorted(p.name for p in (ROOT / "student").glob("*.ipynb"))
        for n in archive.namelist():
            text = archive.read(n).decode()
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


@pytest.mark.parametrize("page_path", [p for p in PAGES if p.startswith(("chapters/", "book/"))])
def test_prose_numbers_are_filled_in_and_plain(page_path):
    # What {eval} put into the page (myst-nb renders each value as <span class="output text_plain">):
    # no role left raw, no empty value, no library repr such as np.float64(0.5) or tensor(3).
    html = (HTML / page_path).read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert "{eval}" not in text and "{glue" not in text, "a role was not rendered"
    for value in re.findall(r'<span class="output text_plain">(.*?)</span>', html, re.S):
        assert value.strip(), "an {eval} rendered as nothing"
        assert not re.search(r"np\.\w+\(|tensor\(|array\(", value), f"a library repr in the prose: {value!r}"


# Code blocks, printed outputs and tables: what a reader would have to scroll sideways.
SCROLLERS = "div.highlight pre, div.cell_output pre, div.output pre, .cell_output table, div.cell_output .output_area"


@pytest.mark.parametrize("page_path", [p for p in PAGES if p.startswith(("chapters/", "book/"))])
def test_nothing_scrolls_sideways_at_1280_pixels(browser, server, page_path):
    visit = Visit(browser, server, page_path)  # a 1280 x 900 window
    try:
        wide = visit.page.evaluate(
            """sel => Array.from(document.querySelectorAll(sel))
                 .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
                 .map(e => `${e.scrollWidth - e.clientWidth}px too wide: ` +
                           e.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b, '').slice(0, 90))""",
            SCROLLERS,
        )
        assert wide == [], f"{len(wide)} blocks scroll sideways:\n" + "\n".join(wide)
    finally:
        visit.close()


# Sphinx copies a figure's SVG into _images/: <figure ...><a ...><img ... src="../_images/ch00_x.svg">
CONCEPT_FIGURE = re.compile(r'<figure[^>]*>\s*<a[^>]*>\s*<img[^>]*src="[^"]*_images/ch\d\d\w*\.svg"')
FIGURE_PAGES = [p for p in PAGES if p.startswith(("chapters/", "book/"))
                and CONCEPT_FIGURE.search((HTML / p).read_text())]
CHAPTER_PAGES = [f"chapters/{n.stem}.html" for n in sorted((ROOT / "chapters").glob("*.ipynb"))
                 if not n.stem.endswith("_exercises")]


def test_every_chapter_page_shows_a_concept_figure():
    _require(HTML.exists(), f"{HTML} not built")
    missing = [p for p in CHAPTER_PAGES if p not in FIGURE_PAGES]
    assert not missing, f"chapter pages without a concept figure: {missing}"


@pytest.mark.parametrize("page_path", FIGURE_PAGES)
def test_figures_render_with_alt_text_in_light_and_dark(browser, server, page_path):
    visit = Visit(browser, server, page_path)
    try:
        figures = visit.page.locator("figure:has(img[src$='.svg'])")
        assert figures.count() >= 1
        for mode in ("light", "dark"):
            visit.page.evaluate(f"document.documentElement.dataset.theme = '{mode}'")
            visit.page.wait_for_timeout(100)
            for k in range(figures.count()):
                figure = figures.nth(k)
                img = figure.locator("img")
                assert img.evaluate("i => i.complete && i.naturalWidth > 0"), "the SVG did not load"
                assert len((img.get_attribute("alt") or "").split()) >= 5, "no alt text"
                assert figure.locator("figcaption").inner_text().strip(), "no caption"
                box = img.bounding_box()
                assert box and box["width"] >= 300, "the figure is drawn too small to read"
                figure.scroll_into_view_if_needed()
                SHOTS.joinpath("figures").mkdir(parents=True, exist_ok=True)
                name = Path(img.get_attribute("src")).stem
                figure.screenshot(path=str(SHOTS / "figures" / f"{name}-{mode}.png"))
    finally:
        visit.close()
