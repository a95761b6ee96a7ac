"""Static checks on every notebook's source: what a learner's "Run All" and Colab need.

- The prose takes its numbers from the code with MyST's ``{eval}`` role, which both the
  book (myst-nb, inline execution) and JupyterLab (jupyterlab-myst) render. Each
  expression is evaluated where its markdown cell sits, after the code cells above
  it have run, so every name it reads must be defined by an earlier code cell.
- No ``{glue}`` roles are left (JupyterLab does not render them) and nothing imports
  ``myst_nb`` (not installed on Colab or Binder).
- The first code cell installs the course's package where it is missing (Colab),
  from the repository named in ``_config.yml``.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("book/*.ipynb"), *ROOT.glob("student/*.ipynb")])
MARKDOWN_PAGES = sorted([*ROOT.glob("chapters/*.md"), *ROOT.glob("book/*.md")])
EVAL_ROLE = re.compile(r"\{eval\}`([^`]+)`")
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _python(source: str) -> str:
    """Cell source as plain Python: IPython magics (``%pip``, ``!cmd``) become ``pass``."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a cell binds at module level (assignments, imports, defs, loop targets, ...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def _free_names(expression: str) -> set[str]:
    tree = ast.parse(expression, mode="eval")
    loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    return loads - local - set(dir(builtins))


def _repository_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, re.M)
    assert match, "_config.yml has no repository.url"
    return match.group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_glue_and_no_myst_nb_import(path):
    for index, cell in enumerate(_cells(path)):
        source = "".join(cell["source"])
        assert "{glue" not in source, f"cell {index}: a {{glue}} role (JupyterLab shows it raw); use {{eval}}"
        if cell["cell_type"] == "code":
            assert not re.search(r"^\s*(from|import)\s+myst_nb\b", source, re.M), \
                f"cell {index} imports myst_nb, which Colab and Binder do not have"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_cell_has_a_unique_id(path):
    # nbformat 4.5 requires cell ids: without them nbformat warns now and will refuse later,
    # and JupyterLab and nbgrader invent new ones on every save, so diffs fill with noise.
    notebook = json.loads(path.read_text())
    if (notebook["nbformat"], notebook["nbformat_minor"]) < (4, 5):
        pytest.skip("cell ids arrived in nbformat 4.5")
    ids = [cell.get("id") for cell in notebook["cells"]]
    missing = [index for index, cell_id in enumerate(ids) if not cell_id]
    assert not missing, f"cells without an id: {missing}"
    assert len(set(ids)) == len(ids), "two cells share an id"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_markdown_cells_have_no_control_characters(path):
    # A JSON "\t" where "\\t" was meant turns $L \times S$ into "L <TAB>imes S" on the page.
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "markdown":
            found = re.search(r"[\x00-\x08\x0b-\x1f\x7f]", "".join(cell["source"]))
            assert not found, f"cell {index}: control character {found.group()!r} in the markdown"


# TeX in the markdown. MathJax renders an unknown command in red, and a backslash that
# a JSON or Python string escape ate ("\t", "\f", "\b", "\n", "\r", "\a", "\v") leaves
# a control character and the command's tail: $L \times S$ stored with a real TAB reads
# "L <TAB>imes S", "\frac" becomes "<FF>rac", "\nabla" a line break and "abla".
TEX_COMMANDS = frozenset("""
    alpha beta gamma delta epsilon varepsilon theta kappa lambda mu pi rho sigma tau
    phi omega ell Delta Theta Pi
    mathbb mathcal mathrm mathit mathtt text operatorname
    frac sqrt sum exp log ln max arg sin cos tanh bmod
    top cdot cdots dots times odot wedge partial nabla infty
    in to leftarrow iff mid sim propto approx pm
    le leq ge geq ll ne neq
    left right big Big bar hat langle rangle lceil rceil lvert rvert lVert rVert
    quad qquad begin end
""".split())
# \, \; \! \  \\ \| \#, and a backslash at the end of a line: a space, as "\ " is
TEX_SYMBOLS = frozenset([",", ";", "!", " ", "\n", "\\", "|", "#"])
# The tail of every command above whose first letter is an escape in JSON or Python.
EATEN_TAILS = sorted({c[1:] for c in TEX_COMMANDS if c[0] in "abfnrtv" and len(c) > 2}, key=len, reverse=True)
EATEN = re.compile(r"(?<![A-Za-z\\])(%s)(?![A-Za-z])" % "|".join(EATEN_TAILS))
TEX_COMMAND = re.compile(r"\\([A-Za-z]+|[^A-Za-z])")
TEXT_ARGUMENT = re.compile(r"\\(?:text|mathrm|operatorname|mathit|mathtt)\{[^{}]*\}")
FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*(\S*)")


def _math(markdown: str) -> list[str]:
    """The math of a MyST markdown text: $...$, $$...$$, {math}`...` and {math} blocks."""
    found, prose, fence = [], [], None
    for line in markdown.split("\n"):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence, info, block = opening.group(1), opening.group(2), []
        elif fence is None:
            prose.append(line)
        elif line.strip() == fence:  # the closing fence: keep math, drop code
            if info == "{math}":
                found.append("\n".join(b for b in block if not b.lstrip().startswith(":")))
            fence = None
        elif info.startswith("{") and info != "{math}":
            prose.append(line)  # a directive's body (a figure caption...) is markdown
        else:
            block.append(line)
    text = "\n".join(prose)
    found += re.findall(r"\{math\}`([^`]*)`", text)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code and the other roles
    found += re.findall(r"\$\$(.+?)\$\$", text, re.S)
    text = re.sub(r"\$\$.+?\$\$", "", text, flags=re.S)
    found += re.findall(r"(?<![\\$])\$((?:[^$\n]|\n(?!\s*\n))+?)\$", text)
    return found


def _tex_problems(markdown: str) -> list[str]:
    problems = []
    for math in _math(markdown):
        for name in TEX_COMMAND.findall(math):
            if name not in TEX_COMMANDS | TEX_SYMBOLS:
                problems.append(f"unknown command \\{name} in ${math.strip()}$ (a typo, or add it to TEX_COMMANDS)")
        if re.search(r"\\\\[A-Za-z]", math):
            problems.append(f"a doubled backslash before a command in ${math.strip()}$")
        for tail in EATEN.findall(TEXT_ARGUMENT.sub("{}", math)):
            problems.append(f"{tail!r} in ${math.strip()!r}$: the tail of a command whose backslash an escape ate")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS + MARKDOWN_PAGES, ids=IDS + [str(p.relative_to(ROOT)) for p in MARKDOWN_PAGES])
def test_math_uses_only_known_tex_commands_and_no_eaten_backslash(path):
    if path.suffix == ".md":
        problems = _tex_problems(path.read_text())
    else:
        problems = [f"cell {i}: {p}" for i, cell in enumerate(_cells(path)) if cell["cell_type"] == "markdown"
                    for p in _tex_problems("".join(cell["source"]))]
    assert not problems, "\n".join(problems)


def test_the_tex_checker_catches_what_it_should():
    good = "Shapes $L \\times S$ and\n$$\n\\frac{a}{b} \\neq \\nabla f, \\quad \\text{with } \\beta\n$$\n"
    assert _tex_problems(good) == []
    # each known-bad string: the escape ate the backslash (JSON "\t", "\f", "\n", "\b", ...)
    for bad in ["$L \times S$", "$L imes S$", "$\frac{a}{b}$", "$x \tanh(y)$",
                "$$\n\nabla f\n$$", "$a \neq b$", "$\beta = 1$", "$\right)$", "$x_\text{in}$",
                "$L \\timse S$", "$\\\\times$", "```{math}\n\\frak{a}\n```", "{math}`\\alfa`",
                "```{figure} f.svg\nCaption, $L \times S$.\n```"]:
        assert _tex_problems(bad), bad
    # not math: inline code, code blocks and escaped dollars
    assert _tex_problems("`$\\foo$` and\n```python\nx = '$\\foo$'\n```\ncosts \\$5 or \\$6") == []


@pytest.mark.parametrize("path", MARKDOWN_PAGES, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN_PAGES])
def test_markdown_pages_have_no_roles_that_need_a_kernel(path):
    text = path.read_text()
    assert "{glue" not in text and "{eval}" not in text, f"{path.name}: a markdown page has no kernel"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_eval_expression_reads_only_names_defined_above_it(path):
    defined: set[str] = set()
    problems = []
    for index, cell in enumerate(_cells(path)):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            defined |= _bound_names(ast.parse(_python(source)))
            continue
        if cell["cell_type"] != "markdown":
            continue
        for expression in EVAL_ROLE.findall(source):
            try:
                missing = _free_names(expression) - defined
            except SyntaxError as exc:
                problems.append(f"cell {index}: {{eval}}`{expression}` is not a Python expression ({exc.msg})")
                continue
            if missing:
                problems.append(f"cell {index}: {{eval}}`{expression}` reads {sorted(missing)}, "
                                "not defined by any code cell above it")
    assert not problems, "\n".join(problems)


def test_the_eval_checker_catches_what_it_should():
    assert _free_names('f"{acc:.1%}"') == {"acc"}
    assert _free_names('", ".join(f"{a:.2f}" for a in row)') == {"row"}
    assert _free_names("len(pairs) + max(xs)") == {"pairs", "xs"}
    with pytest.raises(SyntaxError):
        _free_names("acc =")
    assert {"np", "x", "f"} <= _bound_names(ast.parse(_python("import numpy as np\nx = 1\ndef f(): pass\n%pip list")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_the_first_code_cell_installs_the_package_where_it_is_missing(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    url = _repository_url()
    assert "import attention_course" in first and "except ImportError" in first, \
        "the first code cell should try `import attention_course` and install it on ImportError (Colab)"
    assert f"git+{url}" in first, f"the install line should name the repository of _config.yml ({url})"
    assert {"remove-input", "remove-output"} <= set(code[0]["metadata"].get("tags", [])), \
        "the install cell is for Colab, not the book's page"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_hidden_code_cells_still_run_in_the_book(path):
    # myst-nb's inline execution skips a `remove-cell` code cell until the next code cell
    # it renders, so an {eval} after it would read stale or missing names, and a
    # trailing one would never run. `remove-input` + `remove-output` hide the cell and run it.
    tagged = [i for i, c in enumerate(_cells(path))
              if c["cell_type"] == "code" and {"remove-cell", "remove_cell"} & set(c["metadata"].get("tags", []))]
    assert not tagged, f"code cells {tagged}: hide them with the tags remove-input + remove-output, not remove-cell"
