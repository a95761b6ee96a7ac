"""Run a notebook as a learner's "Run All" does and print its prose with the numbers filled in.

The prose of every notebook takes its numbers from the code with MyST's ``{eval}``
role (``{eval}`f"{acc:.1%}"```). Two renderers fill them in, and both evaluate each
expression in the kernel at the point where the markdown cell sits, after the code
cells above it have run:

- myst-nb, building the book (``execute_notebooks: inline`` in ``_config.yml``);
- jupyterlab-myst, in JupyterLab (Binder): running a markdown cell sends its
  expressions to the kernel as ``user_expressions``.

This tool does what JupyterLab does, without a browser: it starts a kernel, runs the
cells in order, sends each markdown cell's expressions as ``user_expressions`` and
substitutes the results (strings without their quotes, as both renderers show them).
It needs only ``jupyter_client`` and ``nbformat``, so it runs in the Binder
environment as well as in the test one (``tests/binder``).

    python tools/prose.py chapters/00_attention_in_one_page.ipynb      # the prose, filled in
    python tools/prose.py --json NOTEBOOK                               # cells, errors and values as JSON

Exit status 1 if a code cell raised or an expression failed to evaluate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# {eval}`expression`: MyST inline role; the expression may not contain a backtick.
EVAL_ROLE = re.compile(r"\{eval\}`([^`]+)`")
QUOTED = re.compile(r"""^(["'])(.*)\1$""", re.DOTALL)


@dataclass
class Cell:
    index: int
    kind: str  # "markdown" or "code"
    source: str
    rendered: str = ""
    values: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    traceback: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: list[dict] = field(default_factory=list)


def eval_expressions(markdown: str) -> list[str]:
    """The ``{eval}`` expressions of a markdown cell, in order."""
    return EVAL_ROLE.findall(markdown)


def plain_text(result: dict) -> str:
    """What a renderer shows for one evaluated expression: text/plain without string quotes."""
    text = result.get("data", {}).get("text/plain", "")
    match = QUOTED.match(text)
    return match.group(2) if match else text


def run(path: Path, timeout: float = 300.0, cwd: Path | None = None) -> list[Cell]:
    """Execute ``path`` cell by cell in a fresh kernel; fill in every markdown cell's expressions.

    Stops at the first code cell that raises, as "Run All" does; the cells after it are
    not returned.
    """
    import nbformat
    from jupyter_client.manager import start_new_kernel

    nb = nbformat.read(path, as_version=4)
    kernel_name = nb.metadata.get("kernelspec", {}).get("name", "python3")
    km, kc = start_new_kernel(kernel_name=kernel_name, cwd=str(cwd or path.parent))
    cells: list[Cell] = []
    try:
        for index, nb_cell in enumerate(nb.cells):
            cell = Cell(index, nb_cell.cell_type, nb_cell.source)
            cells.append(cell)
            if nb_cell.cell_type == "code":
                def hook(msg, cell=cell):
                    kind = msg["header"]["msg_type"]
                    if kind in ("stream", "display_data", "execute_result", "error"):
                        cell.outputs.append({"type": kind, **msg["content"]})
                start = time.perf_counter()
                reply = kc.execute_interactive(nb_cell.source, timeout=timeout, output_hook=hook,
                                               store_history=True, allow_stdin=False)
                cell.seconds = time.perf_counter() - start
                if reply["content"]["status"] != "ok":
                    content = reply["content"]
                    cell.errors.append(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}")
                    cell.traceback = content.get("traceback", [])
                    break  # Run All stops at the first error, as JupyterLab does
            elif nb_cell.cell_type == "markdown":
                expressions = eval_expressions(nb_cell.source)
                if not expressions:
                    cell.rendered = nb_cell.source
                    continue
                reply = kc.execute_interactive(
                    "", timeout=timeout, store_history=False, allow_stdin=False,
                    user_expressions={str(i): e for i, e in enumerate(expressions)},
                    output_hook=lambda msg: None,
                )
                results = reply["content"].get("user_expressions", {})
                values = []
                for i, expression in enumerate(expressions):
                    result = results.get(str(i), {"status": "error", "ename": "Missing", "evalue": expression})
                    if result.get("status") != "ok":
                        cell.errors.append(f"{{eval}}`{expression}`: {result.get('ename')}: {result.get('evalue')}")
                        values.append(f"<{result.get('ename')}>")
                    else:
                        values.append(plain_text(result))
                cell.values = values
                it = iter(values)
                cell.rendered = EVAL_ROLE.sub(lambda m: next(it), nb_cell.source)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--json", action="store_true", help="print cells, outputs and errors as JSON")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per cell")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    cells = run(args.notebook, timeout=args.timeout)
    errors = [(c.index, e) for c in cells for e in c.errors]
    if args.json:
        print(json.dumps([c.__dict__ for c in cells], default=str))
    else:
        for c in cells:
            if c.kind == "markdown":
                print(c.rendered, end="\n\n")
        for index, error in errors:
            print(f"cell {index}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
