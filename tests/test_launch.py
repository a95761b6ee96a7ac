"""The ways in: Binder's files, Colab's install cell, packaging, the repository's address,
licences and the publishing workflow. Static and fast; the Binder environment itself is
built and run in tests/binder, and JupyterLab is driven in tests/browser/test_lab.py.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import course_html  # noqa: E402
import pins  # noqa: E402
import repository  # noqa: E402
import restore_mtimes  # noqa: E402

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LEARNER, TEST_ONLY = pins.read_pins()
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("book/*.ipynb"), *ROOT.glob("student/*.ipynb")])
URL = repository.repository_url()


# --- pins: one list, Binder's written from it -------------------------------------------

def test_binder_requirements_are_written_from_the_one_list():
    assert (ROOT / "binder" / "requirements.txt").read_text() == pins.binder_requirements(LEARNER), \
        "binder/requirements.txt is out of date: run `make pins`"


def test_binder_installs_the_learner_pins_torch_from_the_cpu_index_and_the_package():
    lines = [l for l in (ROOT / "binder" / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert lines[0] == f"--extra-index-url {pins.TORCH_CPU_INDEX}"
    assert lines[-1] == "-e ."
    binder = dict(l.split("==") for l in lines[1:-1])
    assert binder.keys() == LEARNER.keys()
    assert binder["torch"] == LEARNER["torch"] + "+cpu"
    assert all(binder[n] == v for n, v in LEARNER.items() if n != "torch")
    assert not TEST_ONLY.keys() & binder.keys()
    assert {"jupyterlab", "jupyterlab-myst", "ipywidgets", "ipykernel"} <= binder.keys()


def test_the_pin_reader_rejects_what_it_should(tmp_path):
    bad = tmp_path / "r.txt"
    for text in ("numpy>=2\n# --- test-only\n", "numpy==2\nnumpy==2\n# --- test-only\n", "numpy==2\n"):
        bad.write_text(text)
        with pytest.raises(ValueError):
            pins.read_pins(bad)


def test_runtime_python_satisfies_every_pin():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11", "Binder's Python (repo2docker's default is 3.10, too old for numpy 2.4)"
    python = Version(runtime.removeprefix("python-") + ".99")
    assert python in SpecifierSet(PYPROJECT["project"]["requires-python"])
    for name in LEARNER:
        requires = md.metadata(name).get("Requires-Python")
        if requires:
            assert python in SpecifierSet(requires), f"{name} {LEARNER[name]} needs Python {requires}"


def test_this_environment_is_the_pinned_one():
    for name, version in {**LEARNER, **TEST_ONLY}.items():
        installed = Version(md.version(name))
        assert installed.public == Version(version).public, f"{name}: pinned {version}, installed {installed}"


# --- imports: notebooks and package need nothing Binder lacks ----------------------------

def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _notebook_imports(path: Path) -> set[str]:
    found = set()
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "\n".join(l[: len(l) - len(l.lstrip())] + "pass" if l.lstrip().startswith(("%", "!")) else l
                               for l in "".join(cell["source"]).splitlines())
            found |= _imports(ast.parse(source))
    return found


def _package_imports() -> set[str]:
    found = set()
    for path in (ROOT / "attention_course").rglob("*.py"):
        found |= _imports(ast.parse(path.read_text()))
    return found


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    """{distribution: modules} for the third-party modules in ``modules``."""
    owners = md.packages_distributions()
    out: dict[str, set[str]] = {}
    for module in modules - set(sys.stdlib_module_names) - {"attention_course", "__future__"}:
        assert module in owners, f"`import {module}`: no installed distribution provides it"
        for dist in owners[module]:
            out.setdefault(pins.normalise(dist), set()).add(module)
    return out


def test_notebooks_and_package_import_only_what_binder_installs():
    modules = _package_imports()
    for path in NOTEBOOKS:
        modules |= _notebook_imports(path)
    outside = {d: m for d, m in _distributions(modules).items() if d not in LEARNER}
    assert not outside, f"imported but not in requirements.txt's learner part (so not on Binder): {outside}"


def test_pyproject_declares_every_import_of_the_package():
    declared = {pins.normalise(Requirement(r).name): Requirement(r) for r in PYPROJECT["project"]["dependencies"]}
    needed = _distributions(_package_imports())
    assert needed.keys() <= declared.keys(), f"attention_course imports {needed.keys() - declared.keys()} undeclared"
    for name, requirement in declared.items():
        assert Version(LEARNER[name]) in requirement.specifier, f"the pin {name}=={LEARNER[name]} breaks {requirement}"


def test_pyproject_has_an_extra_for_each_audience():
    extras = {k: {pins.normalise(Requirement(r).name): Requirement(r) for r in v}
              for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    assert {"lab", "book", "grading", "test"} <= extras.keys()
    assert "nbgrader" in extras["grading"] and len(extras["grading"]) == 1, "instructors install only what grading needs"
    assert Version("2.0") not in extras["book"]["jupyter-book"].specifier
    assert "jupyterlab-myst" in extras["lab"]
    for group in extras.values():
        for name, requirement in group.items():
            pinned = LEARNER.get(name) or TEST_ONLY.get(name)
            if pinned:
                assert Version(pinned) in requirement.specifier, f"the pin {name}=={pinned} breaks {requirement}"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


# --- Colab: the install cell -------------------------------------------------------------

def _install_cell(path: Path) -> str:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(cells[0]["source"])


def _run_install_cell(source: str, importable: bool) -> list[tuple[str, str]]:
    """Run the cell as IPython would (its %pip becomes a magic call); return the magics called."""
    from IPython.core.inputtransformer2 import TransformerManager

    calls: list[tuple[str, str]] = []

    class FakeShell:
        def run_line_magic(self, name, line, _stack_depth=1):
            calls.append((name, line))

    class Blocker:  # makes `import attention_course` fail, as on Colab
        def find_spec(self, name, path=None, target=None):
            if name == "attention_course" or name.startswith("attention_course."):
                raise ImportError(f"No module named {name!r}")
            return None

    code = TransformerManager().transform_cell(source)
    saved = {k: v for k, v in sys.modules.items() if k == "attention_course" or k.startswith("attention_course.")}
    try:
        if not importable:
            for k in saved:
                del sys.modules[k]
            sys.meta_path.insert(0, Blocker())
        exec(compile(code, "<install cell>", "exec"), {"get_ipython": lambda: FakeShell()})
    finally:
        if not importable:
            sys.meta_path.pop(0)
            sys.modules.update(saved)
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_the_install_cell_installs_from_the_repository_only_where_the_package_is_missing(path):
    source = _install_cell(path)
    assert _run_install_cell(source, importable=True) == []
    calls = _run_install_cell(source, importable=False)
    assert len(calls) == 1 and calls[0][0] == "pip", calls
    requirement = Requirement(re.search(r'"([^"]+)"', calls[0][1]).group(1))
    assert requirement.name == "attention_course" and requirement.url == f"git+{URL}"


# --- the repository's address: one place --------------------------------------------------

def test_every_copy_of_the_repository_address_follows_config():
    pages = repository.pages_url(URL)
    expected = {
        "README.md": [f"git clone {URL}", pages],
        "CITATION.cff": [f'repository-code: "{URL}"', f'url: "{pages}"'],
        "pyproject.toml": [f'Repository = "{URL}"', f'Homepage = "{pages}"', f'Issues = "{URL}/issues"'],
        "book/instructors.md": [f"git+{URL}"],
    }
    for name, needles in expected.items():
        text = (ROOT / name).read_text()
        for needle in needles:
            assert needle in text, f"{name} should contain {needle!r} (tools/repository.py --set moves them all)"
    # and no stale or mistyped copy anywhere
    owner = URL.split("/")[3]
    for path in repository.tracked_text_files() + sorted((ROOT / "tests").glob("*.py")):
        for found in re.findall(rf"https://(?:github\.com/{owner}/[\w.-]+|{owner.lower()}\.github\.io/[\w.-]+/?)",
                                path.read_text(), re.I):
            assert found.rstrip("/") in (URL, pages.rstrip("/")), f"{path.relative_to(ROOT)}: {found}"


def test_repository_move_rewrites_every_copy(tmp_path, monkeypatch):
    for name in ("_config.yml", "README.md", "CITATION.cff"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    monkeypatch.setattr(repository, "ROOT", tmp_path)
    monkeypatch.setattr(repository, "CONFIG", tmp_path / "_config.yml")
    monkeypatch.setattr(repository, "tracked_text_files", lambda: sorted(tmp_path.iterdir()))
    changed = repository.move("https://github.com/someone/attention")
    assert len(changed) == 3
    assert repository.repository_url(tmp_path / "_config.yml") == "https://github.com/someone/attention"
    cff = (tmp_path / "CITATION.cff").read_text()
    assert "https://someone.github.io/attention/" in cff and URL not in cff
    with pytest.raises(ValueError):
        repository.pages_url("https://gitlab.com/a/b")


# --- licences and citation ------------------------------------------------------------------

def test_licences_and_citation():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert PYPROJECT["project"]["license"] == "MIT" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    content = (ROOT / "LICENSE-CONTENT").read_text()
    assert "Attribution-ShareAlike 4.0 International" in content and "Section 1 – Definitions" in content
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors", "license", "repository-code"} <= cff.keys()
    assert cff["license"] == ["MIT", "CC-BY-SA-4.0"]
    assert cff["version"] == PYPROJECT["project"]["version"]
    assert md.metadata("attention_course")["License-Expression"] == "MIT"


# --- publishing -------------------------------------------------------------------------------

def test_the_workflow_builds_with_a_cache_keyed_on_notebooks_and_package_and_deploys_to_pages():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    uses = {s.get("uses", "").split("@")[0]: s for s in build["steps"]}
    cache = uses["actions/cache"]["with"]
    assert cache["path"] == "_build"
    for part in ("chapters/**", "book/**", "attention_course/**", "requirements.txt", "_config.yml"):
        assert part in cache["key"], f"the cache key should hash {part}"
    runs = " ".join(s.get("run", "") for s in build["steps"])
    assert "tools/build_book.py --strict" in runs and "--all" not in runs   # warnings fail it; the cache is used
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in runs
    assert "tools/restore_mtimes.py" in runs
    assert "actions/upload-pages-artifact" in uses
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_restore_mtimes_gives_each_file_its_last_commit_time(tmp_path):
    def git(*args, when=None):
        env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when} if when else {}
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "a",
                            "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b", **env})
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    (tmp_path / "b.txt").write_text("1")
    git("add", ".")
    git("commit", "-qm", "one", when="2020-01-01T00:00:00+00:00")
    (tmp_path / "b.txt").write_text("2")
    git("commit", "-qam", "two", when="2021-01-01T00:00:00+00:00")
    (tmp_path / "a.txt").write_text("uncommitted")
    assert restore_mtimes.commit_times(tmp_path) == {"a.txt": 1577836800, "b.txt": 1609459200}
    assert restore_mtimes.modified(tmp_path) == {"a.txt"}


# --- the book's extension ---------------------------------------------------------------------

def test_hidden_tests_are_cut_from_the_page_and_nothing_else():
    source = ("checks.check_softmax(softmax)\n### BEGIN HIDDEN TESTS\nassert secret()\n"
              "### END HIDDEN TESTS\nprint('done')\n")
    assert course_html.without_hidden_tests(source) == "checks.check_softmax(softmax)\nprint('done')\n"
    assert course_html.without_hidden_tests("x = 1\n") == "x = 1\n"
    two = "a\n    ### BEGIN HIDDEN TESTS\nb\n    ### END HIDDEN TESTS\nc\n### BEGIN HIDDEN TESTS\nd\n### END HIDDEN TESTS\n"
    assert course_html.without_hidden_tests(two) == "a\nc\n"


def test_the_code_digest_follows_the_package_and_the_pins(tmp_path, monkeypatch):
    (tmp_path / "attention_course").mkdir()
    (tmp_path / "attention_course" / "m.py").write_text("x = 1\n")
    (tmp_path / "requirements.txt").write_text("numpy==2\n")
    monkeypatch.setattr(course_html, "ROOT", tmp_path)
    first = course_html._code_digest()
    (tmp_path / "attention_course" / "m.py").write_text("x = 2\n")
    second = course_html._code_digest()
    (tmp_path / "requirements.txt").write_text("numpy==3\n")
    assert len({first, second, course_html._code_digest()}) == 3
